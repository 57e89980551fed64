"""``leukobench predict``: the evaluation's answers from image files, bad files reported, wrong models named."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import tiny_cnmc_split, write_image
from leukobench import cli
from leukobench.apply import predict
from leukobench.apply.inputs import find_images
from leukobench.apply.predict import (EXIT_BROKEN_PIPE, EXIT_NONE_CLASSIFIED, EXIT_OK, EXIT_USAGE, ModelError, load_trial,
                                      predict_table, run)
from leukobench.apply.subjects import EMPTY_SUBJECT, PATTERN_SECONDS
from leukobench.data.store import Preparation, build_store, load_store
from leukobench.scoring import (MIN_FIT_IMAGES, Scoring, ScoringError, apply_temperature, digests, read_scoring,
                                write_scoring)
from leukobench.learn.saved_model import TrainedModel, class_scores, write_tta_predictions
from leukobench.learn.evaluate import evaluate_predictions
from leukobench.learn.scored_model import ScoredModel
from leukobench.metrics import subject_scores
from leukobench.predictions import EVALUATED_SPLITS, predict_labels, read_predictions, scores_of, write_predictions
from leukobench.learn.train import TrainingSpec, train_from_store
from leukobench.score_variants import pass_views, views_of

# Nearly every test applies the two trials the module's fixture trains, through the command: make test-fast leaves them out
pytestmark = pytest.mark.slow

TRIALS = {  # name: (preparation, loss): a one-unit sigmoid on RGB, a two-unit softmax on gray
    "rgb_sigmoid": (Preparation(size=24), "auto"),
    "gray_softmax": (Preparation(size=24, color="gray"), "categorical_crossentropy"),
}


@pytest.fixture(scope="module")
def trials(tmp_path_factory):
    """Two trials trained one epoch on a tiny store, with the evaluation's predictions and their files."""
    root = tmp_path_factory.mktemp("predict")
    manifest, splits = tiny_cnmc_split(root / "raw", cells_per_subject=4)
    made = {}
    for name, (prep, loss) in TRIALS.items():
        store_path = root / f"{name}.parquet"
        build_store(manifest, splits, prep, store_path)
        folder = root / "trials" / name
        train_from_store(store_path, TrainingSpec(model="abed_cnn", epochs=1, batch_size=8, loss=loss),
                         folder / "model.keras", folder / "history.csv", predictions_path=folder / "predictions.parquet")
        model = load_trial(folder)
        evaluated = pd.read_parquet(folder / "predictions.parquet")  # the scores the evaluation reads
        sources = load_store(store_path).frame.set_index("image_id")["source"]
        made[name] = {"folder": folder, "model": model, "evaluated": evaluated, "store": store_path,
                      "files": [Path(sources[i]) for i in evaluated["image_id"]]}
    return made


def evaluated_scores(trial: dict) -> np.ndarray:
    """The evaluation's scores as one column per class."""
    evaluated = trial["evaluated"]
    if "score" in evaluated:
        return np.column_stack([1 - evaluated["score"], evaluated["score"]])
    return evaluated[[f"score_{c}" for c in trial["model"].class_names]].to_numpy()


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
    if "--by-subject" in images:  # with its default pattern
        images.remove("--by-subject")
        options["by_subject"] = cli.CNMC_SUBJECT
    code = run(model, images, stdout=io.StringIO(), stderr=err, **options)
    return code, err.getvalue()


@pytest.mark.parametrize("name", TRIALS)
def test_predictions_from_files_are_the_evaluations(trials, name, tmp_path):
    trial = trials[name]
    out = tmp_path / "predictions.csv"
    code, _ = command(str(trial["folder"]), *map(str, trial["files"]), "-o", str(out))
    assert code == EXIT_OK
    table = pd.read_csv(out)
    assert table.columns.tolist() == ["path", "status", "predicted_class",
                                      *(f"score_{c}" for c in trial["model"].class_names), "error"]
    assert table["path"].tolist() == list(map(str, trial["files"]))
    assert (table["status"] == "ok").all() and table["error"].isna().all()
    np.testing.assert_allclose(scores(table), evaluated_scores(trial), rtol=0, atol=1e-6)
    expected = np.asarray(trial["model"].class_names)[trial["evaluated"]["pred"].to_numpy()]
    assert table["predicted_class"].tolist() == expected.tolist()


@pytest.mark.parametrize("name", TRIALS)
def test_the_library_call_scores_arrays_as_the_evaluation_did(trials, name, tmp_path):
    """ScoredModel, under the command: loaded once from the trial's files (model.keras, model.json, scoring.json),
    it scores an array of images prepared as the store was: the model's own scores without a scoring, the
    temperature-scaled ones with a fitted temperature, the views' mean (unscaled) with test-time augmentation;
    a scoring made from other files than the folder holds is refused."""
    trial = trials[name]
    folder = tmp_path / "trial"
    shutil.copytree(trial["folder"], folder)
    store = load_store(trial["store"])
    images = store.images[store.frame["split"].isin(EVALUATED_SPLITS).to_numpy()]  # the evaluation's order
    own = scores_of(trial["evaluated"])
    plain = ScoredModel.load(folder / "model.keras")
    assert plain.scoring == Scoring() and plain.class_names == trial["model"].class_names
    np.testing.assert_allclose(plain.scores(images), own, rtol=0, atol=1e-6)
    fitted_record(folder, temperature=2.0)
    np.testing.assert_allclose(ScoredModel.load(folder / "model.keras").scores(images), apply_temperature(own, 2.0),
                               rtol=0, atol=1e-5)
    fitted_record(folder, temperature=2.0, tta="flips")
    views = np.mean([plain.model.predict_scores(view) for view in views_of("flips")(images)], axis=0)
    np.testing.assert_allclose(ScoredModel.load(folder / "model.keras").scores(images), views, rtol=0, atol=1e-6)
    (folder / "predictions.parquet").write_bytes(b"another training's predictions")
    with pytest.raises(ScoringError, match="changed"):
        ScoredModel.load(folder / "model.keras")


def fitted_record(folder: Path, temperature: float = 2.0, tta: str = "none") -> None:
    """The scoring.json an evaluation writes for a fitted temperature (the fixture's one-epoch trials are
    no better than chance, so their own fit ends on the search's upper bound: not a result)."""
    write_scoring(folder / "scoring.json", Scoring(method="temperature", fit="fitted", temperature=temperature,
                                                   fitted_on_val_images=MIN_FIT_IMAGES, tta=tta,
                                                   made_from=digests(folder, ["model.keras", "predictions.parquet"])))


@pytest.mark.parametrize("name", TRIALS)
def test_the_trials_temperature_is_applied_unless_asked_not_to(trials, name, tmp_path):
    """The evaluation writes scoring.json (evaluation.calibration: temperature); predict gives the
    temperature-scaled scores of the evaluation's calibrated rows, and --uncalibrated the model's own."""
    trial = trials[name]
    folder = tmp_path / "trial"
    shutil.copytree(trial["folder"], folder)
    fitted_record(folder, temperature=2.0)
    temperature = read_scoring(folder).temperature
    files = list(map(str, trial["files"]))
    code, err = command(str(folder), *files, "-o", str(tmp_path / "scaled.csv"))
    assert code == EXIT_OK and f"T = {temperature:.3f}" in err
    scaled = pd.read_csv(tmp_path / "scaled.csv")
    expected = apply_temperature(scores_of(trial["evaluated"]), temperature)
    np.testing.assert_allclose(scores(scaled)[:, -1] if expected.ndim == 1 else scores(scaled),
                               expected, rtol=0, atol=1e-5)
    assert scaled["predicted_class"].tolist() == np.asarray(trial["model"].class_names)[trial["evaluated"]["pred"]].tolist()
    assert run(str(folder), files, output=str(tmp_path / "own.csv"), stdout=io.StringIO(), stderr=io.StringIO(),
               calibrated=False) == EXIT_OK
    np.testing.assert_allclose(scores(pd.read_csv(tmp_path / "own.csv")), evaluated_scores(trial), rtol=0, atol=1e-6)
    (folder / "scoring.json").write_text("{}")
    code, err = command(str(folder), *files)
    assert code == 2 and "scoring.json is not a trial's scoring" in err


def test_a_calibration_its_evaluation_could_not_fit_is_not_applied_and_predict_says_so(trials, tmp_path):
    """A validation split of one class: the evaluation records "not fitted: ..." and predict gives the
    model's own scores, saying why on standard error."""
    trial = trials["rgb_sigmoid"]
    folder = tmp_path / "trial"
    shutil.copytree(trial["folder"], folder)
    predictions, metadata = read_predictions(folder / "predictions.parquet")
    one_class = predictions[(predictions["split"] != "val") | (predictions["label"] == 1)]
    write_predictions(one_class, folder / "predictions.parquet", **metadata)
    evaluate_predictions(folder / "predictions.parquet", folder / "metrics.json", folder / "scoring.json",
                         model_path=folder / "model.keras", n_boot=50, calibration="temperature")
    assert read_scoring(folder).fit.startswith("not fitted: the validation split holds one class only: label 1 (all)")
    files = list(map(str, trial["files"]))
    code, err = command(str(folder), *files, "-o", str(tmp_path / "out.csv"))
    assert code == EXIT_OK
    assert "the trial's calibration was not fitted (the validation split holds one class only" in err
    assert "temperature-scaled" not in err
    np.testing.assert_allclose(scores(pd.read_csv(tmp_path / "out.csv")), evaluated_scores(trial), rtol=0, atol=1e-6)


def resaved(folder: Path) -> None:
    """model.keras written again (as a retrain writes it): other bytes, a model that loads."""
    import keras

    keras.models.load_model(folder / "model.keras", compile=False).save(folder / "model.keras")


def deleted(folder: Path) -> None:
    (folder / "scoring.json").unlink()


def made_a_folder(folder: Path) -> None:
    deleted(folder)
    (folder / "scoring.json").mkdir()


def with_value(**changes):
    def edit(folder: Path) -> None:
        path = folder / "scoring.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))
    return edit


@pytest.mark.parametrize("damage, message", [
    (resaved, r"scoring\.json was made from other files than the trial holds now: .*model\.keras \(sha256 "),
    (with_value(temperature=1e300), r"temperature 1e\+300 is not one a fit gives"),
    (with_value(temperature=1e-300), r"temperature 1e-300 is not one a fit gives"),
    (with_value(tta="rot16"), r"tta 'rot16' unknown"),
    (deleted, r"scoring\.json: missing, but the trial was evaluated"),
    (made_a_folder, r"scoring\.json: is a folder"),
], ids=["retrained", "temperature 1e300", "temperature 1e-300", "tta rot16", "deleted", "a folder"])
def test_a_scoring_record_that_does_not_fit_the_trial_stops_predict_unless_uncalibrated(trials, tmp_path, damage,
                                                                                      message):
    """A trial evaluated with calibration: its record must be the one its evaluation wrote, from the
    model file it holds now; otherwise predict stops (exit 2) naming the file and what differs, before
    any image is read, or with --uncalibrated gives the model's own scores and says so."""
    trial = trials["rgb_sigmoid"]
    folder = tmp_path / "trial"
    shutil.copytree(trial["folder"], folder)
    (folder / "metrics.json").write_text("[]")  # evaluated: its evaluation writes both files
    fitted_record(folder)
    damage(folder)
    files = list(map(str, trial["files"]))
    out = tmp_path / "out.csv"
    code, err = command(str(folder), *files, "-o", str(out))
    assert code == EXIT_USAGE and re.search(message, err) and "--uncalibrated" in err, err
    assert not out.exists()
    err = io.StringIO()
    assert run(str(folder), files, output=str(out), stdout=io.StringIO(), stderr=err, calibrated=False) == EXIT_OK
    assert re.search(message, err.getvalue()) and "not applied (--uncalibrated): the model's own scores" in err.getvalue()
    np.testing.assert_allclose(scores(pd.read_csv(out)), evaluated_scores(trial), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", TRIALS)
def test_by_subject_gives_the_evaluations_subject_verdicts(trials, name, tmp_path):
    trial = trials[name]
    stray = write_image(tmp_path / "no_subject_here.bmp", seed=1)
    out = tmp_path / "predictions.csv"
    code, err = command(str(trial["folder"]), *map(str, trial["files"]), str(stray), "-o", str(out), "--by-subject")
    assert code == EXIT_OK and "1 classified image(s) name no subject" in err and "no_subject_here.bmp" in err
    subjects = pd.read_csv(tmp_path / "predictions_subjects.csv", dtype={"subject": str})
    expected = subject_scores(trial["evaluated"], "mean")  # the evaluation's verdicts, from its own scores
    assert subjects["subject"].tolist() == expected["patient_id"].tolist()
    assert subjects["cells"].tolist() == expected["cells"].tolist()
    names = trial["model"].class_names
    np.testing.assert_allclose(subjects[f"score_{names[1]}"] if "score" in expected else subjects.filter(like="score_"),
                               expected["score"] if "score" in expected else expected.filter(like="score_"), atol=1e-6)
    assert subjects["predicted_class"].tolist() == np.asarray(names)[predict_labels(scores_of(expected))].tolist()
    assert len(pd.read_csv(out)) == len(trial["files"]) + 1  # the images' CSV is unchanged


@pytest.mark.parametrize("options, message", [
    ({"by_subject": r"UID_(?P<subject>H?\d+)_"}, "--by-subject needs -o"),
    ({"by_subject": r"UID_\d+_", "output": "x.csv"}, "needs a group naming the subject"),
    ({"by_subject": r"UID_(", "output": "x.csv"}, "is not a regular expression"),
    ({"by_subject": r"UID_(\d+)_", "output": "x.csv", "aggregation": "vote"}, "subject aggregation 'vote' unknown"),
])
def test_a_bad_by_subject_request_stops_before_any_work(trials, tmp_path, monkeypatch, options, message):
    monkeypatch.chdir(tmp_path)
    err = io.StringIO()
    code = run(str(trials["rgb_sigmoid"]["folder"]), list(map(str, trials["rgb_sigmoid"]["files"])), stdout=io.StringIO(),
               stderr=err, **options)
    assert code == EXIT_USAGE and message in err.getvalue() and not list(tmp_path.iterdir())


def test_saliency_writes_one_overlay_per_classified_image(trials, tmp_path):
    trial = trials["gray_softmax"]
    files = list(map(str, trial["files"][:5]))
    broken = tmp_path / "broken.bmp"
    broken.write_bytes(b"not an image")
    err = io.StringIO()
    code = run(str(trial["folder"]), [*files, str(broken)], output=str(tmp_path / "p.csv"), stdout=io.StringIO(),
               stderr=err, saliency=str(tmp_path / "heat"))
    assert code == EXIT_OK
    written = sorted(p.name for p in (tmp_path / "heat").iterdir())
    assert written == [f"{i:06d}_{Path(f).stem}.png" for i, f in enumerate(files)]  # none for the broken file
    size = trial["model"].preparation.size
    for name in written:
        overlay = cv2.imread(str(tmp_path / "heat" / name), cv2.IMREAD_UNCHANGED)
        assert overlay.shape == (size, size, 3) and overlay.dtype == np.uint8  # the image as the model saw it
    (tmp_path / "a_file").write_text("")
    err = io.StringIO()
    assert run(str(trial["folder"]), files, stdout=io.StringIO(), stderr=err, saliency=str(tmp_path / "a_file")) == EXIT_USAGE
    assert "--saliency" in err.getvalue() and "a_file" in err.getvalue()


@pytest.mark.parametrize("name", TRIALS)
def test_test_time_augmentation_is_evaluated_and_applied_by_predict_as_the_trial_set_it(trials, name, tmp_path):
    """The tta job's scores are the mean over the eight views; the evaluation gives them rows of their
    own and records the setting, which predict then applies to files (--tta none: one view)."""
    trial = trials[name]
    folder = tmp_path / "trial"
    shutil.copytree(trial["folder"], folder)
    augmented = write_tta_predictions(folder / "model.keras", trial["store"], folder / "predictions.parquet",
                                      folder / "predictions_tta.parquet", pass_views("rot8"))
    images = load_store(trial["store"]).frame["split"].isin(["val", "test"]).to_numpy()
    views = pass_views("rot8")(load_store(trial["store"]).images[images])
    by_hand = np.mean([class_scores(trial["model"].model.predict(np.ascontiguousarray(v), verbose=0)) for v in views], axis=0)
    np.testing.assert_allclose(scores_of(augmented), by_hand, atol=1e-5)
    assert not np.allclose(scores_of(augmented), scores_of(trial["evaluated"]), atol=1e-4)  # the views differ
    evaluate_predictions(folder / "predictions.parquet", folder / "metrics.json", folder / "scoring.json", n_boot=50,
                         model_path=folder / "model.keras", calibration="temperature", tta="rot8",
                         tta_path=folder / "predictions_tta.parquet")
    rows = pd.DataFrame(json.loads((folder / "metrics.json").read_text()))
    assert rows.groupby(["tta", "calibration"]).size().to_dict() == {("none", "none"): 4, ("none", "temperature"): 4,
                                                                     ("rot8", "none"): 4}
    assert read_scoring(folder).tta == "rot8"
    assert set(read_scoring(folder).made_from) == {"model.keras", "predictions.parquet", "predictions_tta.parquet"}
    fitted_record(folder, tta="rot8")  # as for a trial whose temperature was fitted (see fitted_record)
    files = list(map(str, trial["files"]))
    code, err = command(str(folder), *files, "-o", str(tmp_path / "tta.csv"))
    assert code == EXIT_OK and "'rot8' views" in err and "not applied to test-time-augmented" in err
    expected = scores_of(augmented)
    table = scores(pd.read_csv(tmp_path / "tta.csv"))
    np.testing.assert_allclose(table[:, -1] if expected.ndim == 1 else table, expected, atol=1e-5)
    assert run(str(folder), files, output=str(tmp_path / "one.csv"), stdout=io.StringIO(), stderr=io.StringIO(),
               tta="none", calibrated=False) == EXIT_OK
    np.testing.assert_allclose(scores(pd.read_csv(tmp_path / "one.csv")), evaluated_scores(trial), atol=1e-6)


def test_the_command_line_takes_by_subject_with_and_without_a_pattern():
    assert cli.parser().parse_args(["predict", "m", "x", "--by-subject"]).by_subject == r"UID_(?P<subject>H?\d+)_"
    assert cli.parser().parse_args(["predict", "m", "x", "--by-subject", r"P(\d+)"]).by_subject == r"P(\d+)"
    assert cli.parser().parse_args(["predict", "m", "x"]).by_subject is None
    assert cli.parser().parse_args(["predict", "m", "x", "--saliency", "heat"]).saliency == "heat"


def test_a_bad_file_among_good_ones_is_reported_and_the_rest_classified(trials, tmp_path):
    trial = trials["rgb_sigmoid"]
    folder = tmp_path / "new_cells"
    good = []
    for k, source in enumerate(trial["files"][:4]):
        good.append(folder / "sub" / f"trial{k}.bmp")
        good[-1].parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, good[-1])
    png_named_bmp = folder / "png_named.bmp"  # the content decides, not the suffix
    png_named_bmp.write_bytes(cv2.imencode(".png", cv2.imread(str(trial["files"][0])))[1].tobytes())
    (folder / "empty.bmp").write_bytes(b"")
    (folder / "truncated.bmp").write_bytes(trial["files"][1].read_bytes()[:500])
    (folder / "text.png").write_text("not an image")
    (folder / "notes.txt").write_text("skipped: no image suffix")
    (folder / ".hidden").mkdir()
    (folder / ".hidden" / "._trial0.bmp").write_bytes(b"\x00\x05\x16\x07")  # a macOS companion file: skipped
    out = tmp_path / "out.csv"

    code, err = command(str(trial["folder"] / "model.keras"), str(folder), str(tmp_path / "missing.bmp"), "-o", str(out))

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
    alone = predict_table(trial["model"], [*trial["files"][:4], trial["files"][0]])
    np.testing.assert_allclose(scores(ok), scores(alone), rtol=0, atol=1e-6)
    assert f"{folder}: 2 entries skipped: " in err and "1 without an image suffix" in err and "1 hidden" in err
    assert "5 image(s) classified, 4 could not be read" in err


def test_no_readable_image_exits_3_with_every_file_reported(trials, tmp_path):
    (tmp_path / "in").mkdir()  # the output beside the folder read, never inside it
    (tmp_path / "in" / "empty.bmp").write_bytes(b"")
    (tmp_path / "in" / "text.jpg").write_text("no")
    out = tmp_path / "out.csv"
    code, err = command(str(trials["rgb_sigmoid"]["folder"]), str(tmp_path / "in"), "-o", str(out))
    assert code == EXIT_NONE_CLASSIFIED and "none of the 2 image(s) could be classified" in err
    assert pd.read_csv(out)["status"].tolist() == ["error", "error"]


def test_no_images_at_all_is_a_usage_error(trials, tmp_path):
    (tmp_path / "empty_folder").mkdir()
    code, err = command(str(trials["rgb_sigmoid"]["folder"]), str(tmp_path / "empty_folder"))
    assert code == EXIT_USAGE and "no images" in err


def test_a_trial_folder_and_its_model_keras_give_the_same(trials):
    trial = trials["gray_softmax"]
    by_folder = predict_table(trial["folder"], trial["files"])
    by_file = predict_table(trial["folder"] / "model.keras", trial["files"])
    pd.testing.assert_frame_equal(by_folder, by_file)


def test_batch_size_changes_nothing_but_the_chunks(trials):
    trial = trials["rgb_sigmoid"]
    seen = []

    class Spy:  # records the batches the model is given
        def predict_on_batch(self, images):
            seen.append(len(images))
            return trial["model"].model.predict_on_batch(images)

    spied = TrainedModel(Spy(), trial["model"].record)
    one = predict_table(spied, trial["files"], batch_size=1)
    assert seen == [1] * len(trial["files"])
    seen.clear()
    three = predict_table(spied, trial["files"], batch_size=3)
    assert max(seen) == 3 and sum(seen) == len(trial["files"])
    large = predict_table(trial["model"], trial["files"], batch_size=256)
    for table in (one, three):
        assert table["predicted_class"].tolist() == large["predicted_class"].tolist()
        np.testing.assert_allclose(scores(table), scores(large), rtol=0, atol=1e-6)


def broken_trial(source: Path, folder: Path, how: str) -> tuple[Path, str]:
    """A copy of a trial broken in one way; the path to give and a fragment the error must hold."""
    shutil.copytree(source, folder)
    keras_file, json_file = folder / "model.keras", folder / "model.json"
    if how == "missing":
        return folder.parent / "nowhere", "no such model file or trial folder"
    if how == "folder without model.keras":
        keras_file.unlink()
        return folder, "folder holds no model.keras"
    if how == "a classical trial":
        keras_file.unlink()
        (folder / "classifier.joblib").write_bytes(b"")
        return folder, "classical or hybrid trial"
    if how == "trials below":
        return folder.parent, f"trials lie below it, e.g. {folder}"
    if how == "not a .keras file":
        return json_file, "not a .keras model file"
    if how == "no model.json":
        json_file.unlink()
        return keras_file, f"{json_file}: missing"
    if how == "corrupt model.json":
        json_file.write_text("{not json")
        return folder, "not a readable model.json"
    record = json.loads(json_file.read_text())
    if how == "model.json without class names":
        del record["class_names"]
        json_file.write_text(json.dumps(record))
        return folder, "lacks class_names"
    if how == "size disagrees":
        record["preparation"]["size"] = 32
        json_file.write_text(json.dumps(record))
        return folder, "takes images of shape (24, 24, 3) but"
    if how == "colour disagrees":
        record["preparation"]["color"] = "gray"
        json_file.write_text(json.dumps(record))
        return folder, "prepares them as (24, 24, 1)"
    if how == "classes disagree":
        record["class_names"] = ["a", "b", "c"]
        json_file.write_text(json.dumps(record))
        return folder, "has 1 output unit(s) but"
    if how == "empty model.keras":
        keras_file.write_bytes(b"")
        return folder, "Keras cannot load it"
    raise AssertionError(how)


@pytest.mark.parametrize("how", [
    "missing", "folder without model.keras", "a classical trial", "trials below", "not a .keras file", "no model.json",
    "corrupt model.json", "model.json without class names", "size disagrees", "colour disagrees", "classes disagree",
    "empty model.keras",
])
def test_a_wrong_model_path_is_named_with_what_to_give(trials, tmp_path, how):
    given, fragment = broken_trial(trials["rgb_sigmoid"]["folder"], tmp_path / "trials" / "trial", how)
    with pytest.raises(ModelError) as raised:
        load_trial(given)
    assert fragment in str(raised.value) and str(given) in str(raised.value)
    code, err = command(str(given), str(trials["rgb_sigmoid"]["files"][0]))
    assert code == EXIT_USAGE and fragment in err


def test_the_real_cnmc_images_are_all_classified(trials, cnmc_sample, tmp_path):
    out = tmp_path / "cnmc.csv"
    assert cli.main(["predict", str(trials["gray_softmax"]["folder"]), str(cnmc_sample), "-o", str(out)]) == EXIT_OK
    table = pd.read_csv(out)
    assert len(table) == 6 and (table["status"] == "ok").all()
    np.testing.assert_allclose(scores(table).sum(axis=1), 1, atol=1e-5)
    assert set(table["predicted_class"]) <= {"hem", "all"}


def test_the_command_refuses_a_batch_size_below_one(trials, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["predict", str(trials["rgb_sigmoid"]["folder"]), "x.bmp", "--batch-size", "0"])
    assert exited.value.code == 2 and "must be at least 1" in capsys.readouterr().err


# --- odd outputs, odd inputs, odd names: nothing of the user's destroyed, nothing blocks ---------

def within(seconds: float, fn, *args, unblock=(), **kwargs):
    """``fn(*args, **kwargs)`` on a thread; fails when it is still running after ``seconds`` (then each
    FIFO of ``unblock`` gets a writer that closes at once, so that a read blocked on it ends)."""
    outcome = {}

    def target():
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as error:  # noqa: BLE001 - handed to the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        for _ in range(int(seconds * 10)):  # every open waiting on a FIFO gets its writer, until the thread ends
            for fifo in unblock:
                try:
                    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                except OSError:
                    pass
            thread.join(0.1)
            if not thread.is_alive():
                break
        pytest.fail(f"{getattr(fn, '__name__', fn)} still running after {seconds} s: it blocked")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def copied_trial(trials, tmp_path: Path, images: int = 2) -> tuple[Path, list[Path]]:
    """A copy of the sigmoid trial's folder and of some of its images (the fixture's stay untouched)."""
    folder = tmp_path / "trial"
    shutil.copytree(trials["rgb_sigmoid"]["folder"], folder)
    (tmp_path / "imgs" / "sub").mkdir(parents=True)
    copies = [tmp_path / "imgs" / "sub" / f"c{k}.bmp" for k in range(images)]
    for source, copy in zip(trials["rgb_sigmoid"]["files"], copies):
        shutil.copy(source, copy)
    return folder, copies


@pytest.mark.parametrize("how", ["an image given by name", "an image found in a folder, given relatively",
                                 "an image through a symlink", "a hard link to an image", "model.keras",
                                 "model.json", "model.keras through a relative trial folder", "a folder"])
def test_an_output_that_is_an_input_or_a_model_file_is_refused_before_any_work(trials, tmp_path, monkeypatch, how):
    folder, images = copied_trial(trials, tmp_path)
    monkeypatch.chdir(tmp_path)
    inputs, protected = [str(images[0]), "imgs"], images[1]
    if how == "an image given by name":
        output = str(images[1])
    elif how == "an image found in a folder, given relatively":
        output = "imgs/sub/../sub/c1.bmp"
    elif how == "an image through a symlink":
        (tmp_path / "link.csv").symlink_to(images[1])
        output = "link.csv"
    elif how == "a hard link to an image":
        os.link(images[1], tmp_path / "hard.csv")
        output = str(tmp_path / "hard.csv")
    elif how in ("model.keras", "model.json"):
        output, protected = str(folder / how), folder / how
    elif how == "model.keras through a relative trial folder":
        (tmp_path / "trial_link").symlink_to(folder, target_is_directory=True)
        output, protected = "trial_link/model.keras", folder / "model.keras"
    else:
        output, protected = "imgs/sub", None
    before = protected.read_bytes() if protected else None

    code, err = command("trial", *inputs, "-o", output)

    assert code == EXIT_USAGE and f"-o {output}" in err
    if protected is None:
        assert "is a folder" in err and (tmp_path / "imgs" / "sub").is_dir()
        return
    assert protected.read_bytes() == before and protected.name in err and "the same file" in err
    assert "classified" not in err  # refused before any image was read
    assert not list(tmp_path.rglob(".*.csv")) and not list(tmp_path.rglob(".*.bmp"))


def test_an_output_symlink_is_written_through_and_stays_a_link(trials, tmp_path):
    folder, images = copied_trial(trials, tmp_path)
    target, link = tmp_path / "results" / "target.csv", tmp_path / "link.csv"
    target.parent.mkdir()
    target.write_text("old\n")
    link.symlink_to(target)
    dangling = tmp_path / "new.csv"
    dangling.symlink_to(tmp_path / "results" / "made.csv")

    for out, written in ((link, target), (dangling, tmp_path / "results" / "made.csv")):
        code, _ = command(str(folder), *map(str, images), "-o", str(out))
        assert code == EXIT_OK and out.is_symlink() and written.is_file() and not written.is_symlink()
        assert pd.read_csv(out)["status"].tolist() == ["ok", "ok"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".csv")) == ["link.csv", "new.csv"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["made.csv", "target.csv"]  # no temporary left


def test_an_output_fifo_is_written_through_not_replaced(trials, tmp_path):
    folder, images = copied_trial(trials, tmp_path)
    fifo = tmp_path / "predictions.csv"
    os.mkfifo(fifo)
    received = {}
    reader = threading.Thread(target=lambda: received.setdefault("csv", fifo.read_bytes()), daemon=True)
    reader.start()
    try:
        code, _ = within(60, command, str(folder), *map(str, images), "-o", str(fifo))
    finally:
        reader.join(10)
        if reader.is_alive():  # the command never opened the FIFO: let the reader go
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert code == EXIT_OK and stat.S_ISFIFO(os.lstat(fifo).st_mode)
    lines = received["csv"].decode().splitlines()
    assert lines[0].startswith("path,status,") and len(lines) == 3


def test_an_output_that_is_standard_output_s_file_goes_through_standard_output(trials, tmp_path):
    """``-o /dev/stdout`` with standard output appended to a file (``>> log.csv``): appended, not replaced."""
    folder, images = copied_trial(trials, tmp_path)
    log = tmp_path / "log.csv"
    log.write_text("earlier lines\n")
    with open(log, "a") as stdout:
        code = run(str(folder), list(map(str, images)), output=f"/dev/fd/{stdout.fileno()}", stdout=stdout,
                   stderr=io.StringIO())
    assert code == EXIT_OK
    lines = log.read_text().splitlines()
    assert lines[0] == "earlier lines" and lines[1].startswith("path,status,") and len(lines) == 4


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="making a device file needs root")
def test_an_output_device_is_written_through_not_replaced(trials, tmp_path):
    """What ``-o /dev/null`` does as root, on a null device of our own (the system's is left alone)."""
    folder, images = copied_trial(trials, tmp_path)
    device = tmp_path / "null"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except OSError as error:
        pytest.skip(f"cannot make a device file here: {error}")
    code, err = command(str(folder), *map(str, images), "-o", str(device))
    assert stat.S_ISCHR(os.lstat(device).st_mode) and os.lstat(device).st_rdev == os.makedev(1, 3)
    assert code == EXIT_OK or "cannot write the predictions" in err  # a nodev mount refuses to open it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imgs", "null", "trial"]


def test_a_fifo_or_odd_file_among_the_inputs_gets_an_error_row_and_never_blocks(trials, tmp_path):
    folder, images = copied_trial(trials, tmp_path)
    fifo, dangling, loop = tmp_path / "trial.jpg", tmp_path / "dangling.bmp", tmp_path / "loop.bmp"
    os.mkfifo(fifo)
    dangling.symlink_to(tmp_path / "nowhere.bmp")
    loop.symlink_to(loop)
    out = tmp_path / "out.csv"

    code, err = within(60, command, str(folder), str(images[0]), str(fifo), str(dangling), str(loop), "-o", str(out),
                       unblock=[fifo])

    assert code == EXIT_OK
    table = pd.read_csv(out).set_index("path")
    assert table.loc[str(images[0]), "status"] == "ok"
    for path, reason in ((fifo, "not a regular file (a FIFO)"), (dangling, "dangling symbolic link"),
                         (loop, "symbolic link loop")):
        assert table.loc[str(path), "status"] == "error" and reason in table.loc[str(path), "error"]
        assert f"{path}: {reason}" in err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_the_odd_entries_of_a_folder_are_counted_by_kind_and_never_block(trials, tmp_path):
    folder, images = copied_trial(trials, tmp_path)
    odd = tmp_path / "odd"
    (odd / "x.bmp").mkdir(parents=True)  # a folder named like an image: searched, not read
    shutil.copy(images[0], odd / "good.bmp")
    shutil.copy(images[1], odd / "x.bmp" / "inner.bmp")
    (odd / "notes.txt").write_text("no image suffix")
    (odd / "dangling.bmp").symlink_to(odd / "nowhere.bmp")
    (odd / "loop.bmp").symlink_to(odd / "loop.bmp")
    (odd / "up").symlink_to(odd, target_is_directory=True)  # a loop through a folder link: not followed
    os.mkfifo(odd / "trial.jpg")
    out = tmp_path / "out.csv"

    code, err = within(60, command, str(folder), str(odd), "-o", str(out), unblock=[odd / "trial.jpg"])

    assert code == EXIT_OK
    assert pd.read_csv(out)["path"].tolist() == [str(odd / "good.bmp"), str(odd / "x.bmp" / "inner.bmp")]
    assert f"{odd}: 6 entries skipped: " in err
    for kind in ("1 without an image suffix", "1 dangling link", "1 symbolic link loop",
                 "1 not a regular file (FIFO)", "1 link to a folder (not searched)",
                 "1 folder named like an image (its contents are searched)"):
        assert kind in err
    notes = []
    assert within(60, find_images, [odd], notes) == [odd / "good.bmp", odd / "x.bmp" / "inner.bmp"]
    assert len(notes) == 1 and notes[0] in err


def test_a_file_name_that_is_not_utf8_is_classified_and_written_byte_for_byte(trials, tmp_path):
    folder, images = copied_trial(trials, tmp_path)
    odd = os.fsencode(tmp_path / "lab")
    os.mkdir(odd)
    good, empty = odd + b"/cell\xff\xfe.bmp", odd + b"/empty\xe9.bmp"  # Latin-1 bytes, not UTF-8
    with open(good, "wb") as file:
        file.write(images[0].read_bytes())
    open(empty, "wb").close()
    out = tmp_path / "out.csv"
    strict = dict(encoding="utf-8", errors="strict")  # streams that fail on a surrogate escape
    stdout, stderr = io.TextIOWrapper(io.BytesIO(), **strict), io.TextIOWrapper(io.BytesIO(), **strict)

    for output in (str(out), None):
        code = run(str(folder), [os.fsdecode(odd)], output=output, stdout=stdout, stderr=stderr)
        assert code == EXIT_OK
    stdout.flush(), stderr.flush()

    for written in (out.read_bytes(), stdout.buffer.getvalue()):
        lines = written.splitlines()
        assert [line.split(b",")[0] for line in lines[1:]] == [good, empty]
        assert lines[1].split(b",")[1] == b"ok" and lines[2].split(b",")[1] == b"error"
    back = pd.read_csv(out, encoding_errors="surrogateescape", dtype={"path": object})["path"]
    assert back.map(os.fsencode).tolist() == [good, empty]
    table = predict_table(trials["rgb_sigmoid"]["model"], [os.fsdecode(odd)])
    assert table["path"].map(os.fsencode).tolist() == [good, empty] and table["status"].tolist() == ["ok", "error"]
    assert b"empty\\xe9.bmp: empty file" in stderr.buffer.getvalue()  # shown escaped, not a crash
    assert stdout.errors == "strict"  # the caller's stream is given back as it was


def test_a_closed_pipe_ends_the_command_quietly_as_cat(trials, tmp_path):
    """``leukobench predict ... | head -2``: the real command, its output pipe closed after two lines."""
    image = trials["rgb_sigmoid"]["files"][0]
    repeats = 1 + 256 * 1024 // len(str(image))  # far more CSV than a pipe holds, so a write meets the closed end
    command_line = [str(Path(sys.executable).with_name("leukobench")), "predict",
                    str(trials["rgb_sigmoid"]["folder"]), *[str(image)] * repeats]
    process = subprocess.Popen(command_line, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        head = [process.stdout.readline() for _ in range(2)]
        process.stdout.close()
        err = process.stderr.read().decode(errors="replace")
        code = process.wait(timeout=120)
    finally:
        process.kill()
    assert head[0].startswith(b"path,status,") and head[1].startswith(str(image).encode())
    assert code == EXIT_BROKEN_PIPE == 141
    assert "Broken pipe" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err
    assert "cannot write" not in err and "Traceback" not in err
    assert "I0000" not in err and "cuInit" not in err and "absl::InitializeLog" not in err  # TensorFlow's start-up


def test_sigterm_leaves_the_previous_output_and_no_temporary_file(trials, tmp_path, monkeypatch):
    folder, images = copied_trial(trials, tmp_path)
    out = tmp_path / "out.csv"
    out.write_text("the previous predictions\n")
    real = predict.write_predictions

    def killed_halfway(model, files, stream, *args, **kwargs):
        stream.write("path,status\n")
        os.kill(os.getpid(), signal.SIGTERM)
        return real(model, files, stream, *args, **kwargs)  # the signal's exception comes first

    monkeypatch.setattr(predict, "write_predictions", killed_halfway)
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as exited:
        cli.main(["predict", str(folder), *map(str, images), "-o", str(out)])
    assert exited.value.code == 128 + signal.SIGTERM
    assert out.read_text() == "the previous predictions\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imgs", "out.csv", "trial"]
    assert signal.getsignal(signal.SIGTERM) is handler


# --- every file predict writes passes one output guard -------------------------------------------

def guarded(trials, tmp_path, **options) -> tuple[int, str]:
    """``run`` on a copied trial and ``imgs/`` (its images in ``imgs/sub/``), in ``tmp_path``."""
    err = io.StringIO()
    code = run("trial", ["imgs"], stdout=io.StringIO(), stderr=err, **options)
    return code, err.getvalue()


def snapshot(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("options, named", [
    ({"saliency": "imgs"}, "--saliency imgs is or lies inside"),  # the overlays would be the next run's trials
    ({"saliency": "imgs/sub/heat"}, "--saliency imgs/sub/heat is or lies inside"),
    ({"saliency": "imgs/sub/c0.bmp"}, "--saliency imgs/sub/c0.bmp: not a folder"),
    ({"output": "imgs/predictions.csv"}, "-o imgs/predictions.csv lies inside"),
    ({"output": "p.csv", "by_subject": r"(?P<subject>c)\d", "subjects_file": "imgs/sub/s.csv"},
     "--subjects-output imgs/sub/s.csv lies inside"),
    ({"output": "p.csv", "by_subject": r"(?P<subject>c)\d", "subjects_file": "p.csv"}, "is also written by -o"),
    ({"output": "trial/scoring.json"}, "is the trial's"),
    ({"output": "/dev/null", "by_subject": r"(?P<subject>c)\d"}, "-o /dev/null is not a regular file"),
    ({"by_subject": r"(?P<subject>c)\d"}, "--by-subject needs -o FILE"),
])
def test_every_output_is_refused_before_any_work_when_it_would_land_on_an_input(trials, tmp_path, monkeypatch,
                                                                                  options, named):
    copied_trial(trials, tmp_path)
    (tmp_path / "trial" / "scoring.json").write_text("{}")  # the trial's own file, whatever it holds
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(predict, "load_trial", lambda *a, **k: pytest.fail("the model was loaded: refused too late"))
    before = snapshot(tmp_path)
    code, err = guarded(trials, tmp_path, **options)
    assert code == EXIT_USAGE and named in err, err
    assert snapshot(tmp_path) == before  # nothing written, nothing made
    assert not Path("/dev/null_subjects.csv").exists()


def test_an_overlay_that_would_replace_an_input_given_by_name_is_refused(trials, tmp_path, monkeypatch):
    folder, images = copied_trial(trials, tmp_path)
    heat = tmp_path / "heat"
    heat.mkdir()
    victim = heat / f"000000_{images[0].stem}.png"  # the name the first image's overlay gets
    shutil.copy(images[1], victim)
    before = victim.read_bytes()
    err = io.StringIO()
    code = run(str(folder), [str(images[0]), str(victim)], output=str(tmp_path / "p.csv"), stdout=io.StringIO(),
               stderr=err, saliency=str(heat))
    assert code == EXIT_USAGE and f"--saliency {victim} is the input image" in err.getvalue()
    assert victim.read_bytes() == before and not (tmp_path / "p.csv").exists()


def test_a_saliency_folder_that_cannot_be_written_is_named_and_no_csv_is_left(trials, tmp_path, monkeypatch):
    folder, images = copied_trial(trials, tmp_path)
    heat, out = tmp_path / "heat", tmp_path / "p.csv"
    heat.mkdir()
    if os.geteuid() == 0:  # root writes into a read-only folder: the write fails as it would for a user
        real = Path.write_bytes

        def refused(path, data):
            if path.parent == heat:
                raise PermissionError(errno.EACCES, "Permission denied")
            return real(path, data)

        monkeypatch.setattr(Path, "write_bytes", refused)
    else:
        heat.chmod(0o555)
    err = io.StringIO()
    code = run(str(folder), list(map(str, images)), output=str(out), stdout=io.StringIO(), stderr=err,
               saliency=str(heat))
    message = err.getvalue()
    assert code == EXIT_USAGE and str(heat) in message and "Permission denied" in message, message
    assert "the predictions" not in message  # the overlay failed, not the CSV
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_subjects_csv_goes_to_an_explicit_file_when_the_output_is_a_device(trials, tmp_path):
    folder, images = copied_trial(trials, tmp_path)
    subjects = tmp_path / "subjects.csv"
    err = io.StringIO()
    code = run(str(folder), list(map(str, images)), output="/dev/null", stdout=io.StringIO(), stderr=err,
               by_subject=r"(?P<subject>c)\d", subjects_file=str(subjects))
    assert code == EXIT_OK, err.getvalue()
    table = pd.read_csv(subjects)
    assert table["subject"].tolist() == ["c"] and table["cells"].tolist() == [len(images)]
    args = cli.parser().parse_args(["predict", "m", "x", "-o", "/dev/null", "--by-subject", "--subjects-output", "s.csv"])
    assert args.subjects_output == "s.csv" and args.output == "/dev/null"


def test_the_subjects_csv_keeps_names_that_are_not_utf8_byte_for_byte(trials, tmp_path):
    folder, images = copied_trial(trials, tmp_path)
    lab = os.fsencode(tmp_path / "lab")
    os.mkdir(lab)
    for k, subject in enumerate((b"P\xff1", b"P\xff1", b"Q\xe92")):
        with open(lab + b"/" + subject + b"_%d.bmp" % k, "wb") as file:
            file.write(images[k % 2].read_bytes())
    out = tmp_path / "out.csv"
    err = io.StringIO()
    code = run(str(folder), [os.fsdecode(lab)], output=str(out), stdout=io.StringIO(), stderr=err,
               by_subject=r"^(?P<subject>[^_]+)_")
    assert code == EXIT_OK, err.getvalue()
    lines = (tmp_path / "out_subjects.csv").read_bytes().splitlines()
    assert lines[0].startswith(b"subject,cells,") and [line.split(b",")[:2] for line in lines[1:]] == [
        [b"P\xff1", b"2"], [b"Q\xe92", b"1"]]


def test_an_empty_subject_is_an_error_row_not_a_subject(trials, tmp_path):
    """`(?P<subject>x*)` matches every name with an empty subject: those images are error rows, never pooled under ''."""
    folder, images = copied_trial(trials, tmp_path, images=3)
    named = tmp_path / "imgs" / "sub" / "x7c9.bmp"
    shutil.copy(images[2], named)
    out = tmp_path / "out.csv"
    err = io.StringIO()
    code = run(str(folder), [*map(str, images[:2]), str(named)], output=str(out), stdout=io.StringIO(), stderr=err,
               by_subject=r"(?P<subject>x?\d?)c")
    assert code == EXIT_OK, err.getvalue()
    rows = pd.read_csv(out)
    assert rows["status"].tolist() == ["error", "error", "ok"]
    assert rows["error"].iloc[0] == EMPTY_SUBJECT and rows.filter(like="score_").iloc[:2].isna().all().all()
    subjects = pd.read_csv(tmp_path / "out_subjects.csv", dtype={"subject": str}, keep_default_na=False)
    assert subjects["subject"].tolist() == ["x7"] and subjects["cells"].tolist() == [1]
    assert "2 named an empty subject" in err.getvalue()


@pytest.mark.parametrize("pattern", [r"(?P<subject>(a+)+)$", r"^(?P<subject>(\w+_?)+)$", r"(?P<subject>(a|aa)+)b"])
def test_a_pattern_that_backtracks_for_ever_is_refused_before_any_work(trials, tmp_path, monkeypatch, pattern):
    folder, images = copied_trial(trials, tmp_path)
    slow = tmp_path / "imgs" / ("a" * 40 + "_" * 3 + "!.bmp")  # what (a+)+ and (\w+_?)+ take years on
    shutil.copy(images[0], slow)
    monkeypatch.setattr(predict, "load_trial", lambda *a, **k: pytest.fail("the model was loaded before the check"))
    err = io.StringIO()
    started = __import__("time").monotonic()
    code = within(60, run, str(folder), [str(tmp_path / "imgs")], output=str(tmp_path / "p.csv"),
                  stdout=io.StringIO(), stderr=err, by_subject=pattern)
    assert code == EXIT_USAGE and f"took more than {PATTERN_SECONDS:g} s" in err.getvalue()
    assert slow.name in err.getvalue() and repr(pattern) in err.getvalue()
    assert __import__("time").monotonic() - started < 30 and not (tmp_path / "p.csv").exists()
