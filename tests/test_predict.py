"""``leukobench predict``: the evaluation's answers from image files, bad files reported, wrong models named."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import tiny_cnmc_split
from leukobench import cli
from leukobench.evaluate import predict_store
from leukobench.predict import EXIT_NONE_CLASSIFIED, EXIT_OK, EXIT_USAGE, ModelError, load_cell, predict_table, run
from leukobench.store import Preparation, build_store, load_store
from leukobench.train import TrainedModel, TrainingSpec, train_from_store

CELLS = {  # name: (preparation, loss): a one-unit sigmoid on RGB, a two-unit softmax on gray
    "rgb_sigmoid": (Preparation(size=24), "auto"),
    "gray_softmax": (Preparation(size=24, color="gray"), "categorical_crossentropy"),
}


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    """Two cells trained one epoch on a tiny store, with the evaluation's predictions and their files."""
    root = tmp_path_factory.mktemp("predict")
    manifest, splits = tiny_cnmc_split(root / "raw", cells_per_subject=4)
    made = {}
    for name, (prep, loss) in CELLS.items():
        store_path = root / f"{name}.parquet"
        build_store(manifest, splits, prep, store_path)
        folder = root / "cells" / name
        train_from_store(store_path, TrainingSpec(model="abed_cnn", epochs=1, batch_size=8, loss=loss),
                         folder / "model.keras", folder / "history.csv")
        model = load_cell(folder)
        evaluated, _ = predict_store(model, store_path)
        sources = load_store(store_path).frame.set_index("image_id")["source"]
        made[name] = {"folder": folder, "model": model, "evaluated": evaluated,
                      "files": [Path(sources[i]) for i in evaluated["image_id"]]}
    return made


def evaluated_scores(cell: dict) -> np.ndarray:
    """The evaluation's scores as one column per class."""
    evaluated = cell["evaluated"]
    if "score" in evaluated:
        return np.column_stack([1 - evaluated["score"], evaluated["score"]])
    return evaluated[[f"score_{c}" for c in cell["model"].class_names]].to_numpy()


def scores(table: pd.DataFrame) -> np.ndarray:
    return table.filter(like="score_").to_numpy(dtype=float)


def command(*args: str) -> tuple[int, str]:
    """Run ``leukobench predict`` in this process; its exit code and standard error."""
    err = io.StringIO()
    model, *images = args[0], *args[1:]
    options = {"output": None}
    if "-o" in images:
        at = images.index("-o")
        options["output"], images = images[at + 1], images[:at] + images[at + 2:]
    code = run(model, images, stdout=io.StringIO(), stderr=err, **options)
    return code, err.getvalue()


@pytest.mark.parametrize("name", CELLS)
def test_predictions_from_files_are_the_evaluations(cells, name, tmp_path):
    cell = cells[name]
    out = tmp_path / "predictions.csv"
    code, _ = command(str(cell["folder"]), *map(str, cell["files"]), "-o", str(out))
    assert code == EXIT_OK
    table = pd.read_csv(out)
    assert table.columns.tolist() == ["path", "status", "predicted_class",
                                      *(f"score_{c}" for c in cell["model"].class_names), "error"]
    assert table["path"].tolist() == list(map(str, cell["files"]))
    assert (table["status"] == "ok").all() and table["error"].isna().all()
    np.testing.assert_allclose(scores(table), evaluated_scores(cell), rtol=0, atol=1e-6)
    expected = np.asarray(cell["model"].class_names)[cell["evaluated"]["pred"].to_numpy()]
    assert table["predicted_class"].tolist() == expected.tolist()


def test_a_bad_file_among_good_ones_is_reported_and_the_rest_classified(cells, tmp_path):
    cell = cells["rgb_sigmoid"]
    folder = tmp_path / "new_cells"
    good = []
    for k, source in enumerate(cell["files"][:4]):
        good.append(folder / "sub" / f"cell{k}.bmp")
        good[-1].parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, good[-1])
    png_named_bmp = folder / "png_named.bmp"  # the content decides, not the suffix
    png_named_bmp.write_bytes(cv2.imencode(".png", cv2.imread(str(cell["files"][0])))[1].tobytes())
    (folder / "empty.bmp").write_bytes(b"")
    (folder / "truncated.bmp").write_bytes(cell["files"][1].read_bytes()[:500])
    (folder / "text.png").write_text("not an image")
    (folder / "notes.txt").write_text("skipped: no image suffix")
    (folder / ".hidden").mkdir()
    (folder / ".hidden" / "._cell0.bmp").write_bytes(b"\x00\x05\x16\x07")  # a macOS companion file: skipped
    out = tmp_path / "out.csv"

    code, err = command(str(cell["folder"] / "model.keras"), str(folder), str(tmp_path / "missing.bmp"), "-o", str(out))

    assert code == EXIT_OK
    table = pd.read_csv(out).set_index("path")
    bad = {folder / "empty.bmp": "empty file", folder / "truncated.bmp": "not a decodable image",
           folder / "text.png": "not a decodable image", tmp_path / "missing.bmp": "no such file"}
    assert sorted(table.index) == sorted(map(str, [*good, png_named_bmp, *bad]))
    for path, reason in bad.items():
        row = table.loc[str(path)]
        assert row["status"] == "error" and reason in row["error"] and row.filter(like="score_").isna().all()
        assert f"{path}: {reason}" in err
    ok = table.loc[[str(p) for p in [*good, png_named_bmp]]]
    assert (ok["status"] == "ok").all()
    alone = predict_table(cell["model"], [*cell["files"][:4], cell["files"][0]])
    np.testing.assert_allclose(scores(ok), scores(alone), rtol=0, atol=1e-6)
    assert "1 file(s) without an image suffix skipped" in err and "5 image(s) classified, 4 could not be read" in err


def test_no_readable_image_exits_3_with_every_file_reported(cells, tmp_path):
    (tmp_path / "empty.bmp").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("no")
    out = tmp_path / "out.csv"
    code, err = command(str(cells["rgb_sigmoid"]["folder"]), str(tmp_path), "-o", str(out))
    assert code == EXIT_NONE_CLASSIFIED and "none of the 2 image(s) could be classified" in err
    assert pd.read_csv(out)["status"].tolist() == ["error", "error"]


def test_no_images_at_all_is_a_usage_error(cells, tmp_path):
    (tmp_path / "empty_folder").mkdir()
    code, err = command(str(cells["rgb_sigmoid"]["folder"]), str(tmp_path / "empty_folder"))
    assert code == EXIT_USAGE and "no images" in err


def test_a_cell_folder_and_its_model_keras_give_the_same(cells):
    cell = cells["gray_softmax"]
    by_folder = predict_table(cell["folder"], cell["files"])
    by_file = predict_table(cell["folder"] / "model.keras", cell["files"])
    pd.testing.assert_frame_equal(by_folder, by_file)


def test_batch_size_changes_nothing_but_the_chunks(cells):
    cell = cells["rgb_sigmoid"]
    seen = []

    class Spy:  # records the batches the model is given
        def predict_on_batch(self, images):
            seen.append(len(images))
            return cell["model"].model.predict_on_batch(images)

    spied = TrainedModel(Spy(), cell["model"].bundle)
    one = predict_table(spied, cell["files"], batch_size=1)
    assert seen == [1] * len(cell["files"])
    seen.clear()
    three = predict_table(spied, cell["files"], batch_size=3)
    assert max(seen) == 3 and sum(seen) == len(cell["files"])
    large = predict_table(cell["model"], cell["files"], batch_size=256)
    for table in (one, three):
        assert table["predicted_class"].tolist() == large["predicted_class"].tolist()
        np.testing.assert_allclose(scores(table), scores(large), rtol=0, atol=1e-6)


def broken_cell(source: Path, folder: Path, how: str) -> tuple[Path, str]:
    """A copy of a cell broken in one way; the path to give and a fragment the error must hold."""
    shutil.copytree(source, folder)
    keras_file, json_file = folder / "model.keras", folder / "model.json"
    if how == "missing":
        return folder.parent / "nowhere", "no such model file or cell folder"
    if how == "folder without model.keras":
        keras_file.unlink()
        return folder, "folder holds no model.keras"
    if how == "a classical cell":
        keras_file.unlink()
        (folder / "classifier.joblib").write_bytes(b"")
        return folder, "classical or hybrid cell"
    if how == "cells below":
        return folder.parent, f"cells lie below it, e.g. {folder}"
    if how == "not a .keras file":
        return json_file, "not a .keras model file"
    if how == "no model.json":
        json_file.unlink()
        return keras_file, f"{json_file}: missing"
    if how == "corrupt model.json":
        json_file.write_text("{not json")
        return folder, "not a readable model.json"
    bundle = json.loads(json_file.read_text())
    if how == "model.json without class names":
        del bundle["class_names"]
        json_file.write_text(json.dumps(bundle))
        return folder, "lacks class_names"
    if how == "size disagrees":
        bundle["preparation"]["size"] = 32
        json_file.write_text(json.dumps(bundle))
        return folder, "takes images of shape (24, 24, 3) but"
    if how == "colour disagrees":
        bundle["preparation"]["color"] = "gray"
        json_file.write_text(json.dumps(bundle))
        return folder, "prepares them as (24, 24, 1)"
    if how == "classes disagree":
        bundle["class_names"] = ["a", "b", "c"]
        json_file.write_text(json.dumps(bundle))
        return folder, "has 1 output unit(s) but"
    if how == "empty model.keras":
        keras_file.write_bytes(b"")
        return folder, "Keras cannot load it"
    raise AssertionError(how)


@pytest.mark.parametrize("how", [
    "missing", "folder without model.keras", "a classical cell", "cells below", "not a .keras file", "no model.json",
    "corrupt model.json", "model.json without class names", "size disagrees", "colour disagrees", "classes disagree",
    "empty model.keras",
])
def test_a_wrong_model_path_is_named_with_what_to_give(cells, tmp_path, how):
    given, fragment = broken_cell(cells["rgb_sigmoid"]["folder"], tmp_path / "cells" / "cell", how)
    with pytest.raises(ModelError) as raised:
        load_cell(given)
    assert fragment in str(raised.value) and str(given) in str(raised.value)
    code, err = command(str(given), str(cells["rgb_sigmoid"]["files"][0]))
    assert code == EXIT_USAGE and fragment in err


def test_the_real_cnmc_images_are_all_classified(cells, cnmc_sample, tmp_path):
    out = tmp_path / "cnmc.csv"
    assert cli.main(["predict", str(cells["gray_softmax"]["folder"]), str(cnmc_sample), "-o", str(out)]) == EXIT_OK
    table = pd.read_csv(out)
    assert len(table) == 6 and (table["status"] == "ok").all()
    np.testing.assert_allclose(scores(table).sum(axis=1), 1, atol=1e-5)
    assert set(table["predicted_class"]) <= {"hem", "all"}


def test_the_command_refuses_a_batch_size_below_one(cells, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["predict", str(cells["rgb_sigmoid"]["folder"]), "x.bmp", "--batch-size", "0"])
    assert exited.value.code == 2 and "must be at least 1" in capsys.readouterr().err
