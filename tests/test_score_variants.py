"""The registry of score variants (:mod:`leukobench.score_variants`): what it declares, and that a
variant added there (a test-time augmentation of the four quarter turns, ``rot4``, registered by a
fixture) is evaluated, tabled, allowed by the config check and applied by predict with no other edit."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.utils import validate

from conftest import write_image
from leukobench import cli
from leukobench.data.store import Preparation
from leukobench.apply import predict
from leukobench.apply.inputs import prepare_image
from leukobench.learn.saved_model import TrainedModel
from leukobench.learn.evaluate import evaluate_predictions
from leukobench.metrics import metrics_of_trials
from leukobench.plan.config import config_problems
from leukobench.predictions import prediction_frame, write_predictions
from leukobench.report.selection import (best_configurations, cell_level, same_trial_prefixes, score_variant_columns,
                                         score_variant_legend, with_score_variants)
from leukobench.report.tables import formatted
from leukobench.score_variants import (SCORE_VARIANTS, TTA_TABLE, VARIANT_SETTINGS, checked, choices, combined, marks,
                                       needs_model_pass, pass_views, row_columns, table_groups, views_of)
from leukobench.scoring import read_scoring

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
DEFAULT = yaml.safe_load((REPO / "config.yaml").read_text())
validate(DEFAULT, str(REPO / "workflow/schemas/config.schema.yaml"))  # the schema's defaults, as the workflow fills them
CLASSES = ["hem", "all"]


def quarter_turns(images: np.ndarray) -> list[np.ndarray]:
    return [np.rot90(images, k, axes=(1, 2)) for k in range(4)]


def register(name: str, **attributes) -> None:
    SCORE_VARIANTS.register(name, **attributes)(quarter_turns)


@pytest.fixture
def registry(monkeypatch):
    """The registry as it is, given back as it was after the test (whatever the test registered)."""
    monkeypatch.setattr(SCORE_VARIANTS, "_entries", dict(SCORE_VARIANTS._entries))
    return SCORE_VARIANTS


@pytest.fixture
def rot4(registry):
    """A new test-time augmentation, declared as one entry: the four quarter turns of each image."""
    register("rot4", setting="tta", model_pass=True, **TTA_TABLE)
    return "rot4"


# ----------------------------------------------------------------------------- what the registry declares


def test_the_registry_declares_the_own_temperature_flips_and_rot8_scores():
    assert choices("calibration") == ["none", "temperature"] and choices("tta") == ["none", "flips", "rot8"]
    assert [name for name in SCORE_VARIANTS if needs_model_pass(name)] == ["flips", "rot8"]
    assert marks() == {"calibration": "none", "tta": "none"}
    assert marks("flips") == {"calibration": "none", "tta": "flips"}
    assert marks("none", "temperature") == {"calibration": "temperature", "tta": "none"}
    assert row_columns() == ["calibration", "tta", "temperature"]
    assert [(g.prefix, g.names, g.metrics, g.columns) for g in table_groups()] == [
        ("calibrated_", ("temperature",), ("ece", "brier"), {"temperature": "temperature"}),
        ("tta_", ("flips", "rot8"), ("accuracy", "auc"), {"tta": "tta"})]


def test_a_temperature_applies_to_the_own_scores_only():
    assert combined("temperature", "none") and combined("none", "flips") and combined("none", "none")
    assert not combined("temperature", "flips") and not combined("temperature", "rot8")


def test_the_views_of_test_time_augmentation_are_the_symmetries_of_the_square():
    image = np.arange(2 * 3 * 3 * 1, dtype=np.uint8).reshape(2, 3, 3, 1)  # no symmetry: every view differs
    for name in ("none", "temperature"):  # made from the training's predictions: the images as they are
        assert len(views_of(name)(image)) == 1 and np.array_equal(views_of(name)(image)[0], image)
    for mode, count in (("flips", 4), ("rot8", 8)):
        views = pass_views(mode)(image)
        assert len({view.tobytes() for view in views}) == count and np.array_equal(views[0], image)
        assert all(np.array_equal(np.sort(v, axis=None), np.sort(image, axis=None)) for v in views)  # moved, not changed
    with pytest.raises(ValueError, match="unknown score variant 'rot16'; registered score variants: flips, none, rot8"):
        views_of("rot16")
    with pytest.raises(ValueError, match="score variant 'temperature' needs no model pass"):
        pass_views("temperature")


def test_a_setting_refuses_another_settings_variant_naming_what_it_allows():
    with pytest.raises(ValueError, match=r"evaluation.tta: 'temperature' unknown; allowed: none, flips, rot8"):
        checked("tta", "temperature")
    with pytest.raises(ValueError, match="no evaluation setting 'saliency'"):
        choices("saliency")


def test_variants_sharing_a_prefix_must_declare_the_same_columns(registry):
    register("rot4", setting="tta", model_pass=True, **{**TTA_TABLE, "table_metrics": ("accuracy",)})
    with pytest.raises(ValueError, match="share the table prefix 'tta_' but declare different columns"):
        table_groups()


# ----------------------------------------------------------------------------- the config check


def test_the_schema_leaves_the_score_variants_to_the_config_check_which_allows_the_registrys():
    """The schema says string (it is static); the config check allows what the registry declares."""
    for setting in VARIANT_SETTINGS:
        node = SCHEMA["properties"]["evaluation"]["properties"][setting]
        assert "enum" not in node and node["default"] in choices(setting)
        assert "leukobench.score_variants" in node["description"]
        for value in choices(setting):
            config = copy.deepcopy(DEFAULT)
            config["evaluation"][setting] = value
            assert config_problems(config) == [], value
    config = copy.deepcopy(DEFAULT)
    config["evaluation"].update(tta="rot16", calibration="flips")
    assert config_problems(config) == [
        "evaluation.calibration: 'flips' is not one of ['none', 'temperature'] (none, or a score variant of setting "
        "calibration: leukobench.score_variants)",
        "evaluation.tta: 'rot16' is not one of ['none', 'flips', 'rot8'] (none, or a score variant of setting tta: "
        "leukobench.score_variants)"]


# ----------------------------------------------------------------------------- one entry adds a variant


def trial_predictions(folder: Path, seed: int, model: str) -> None:
    """A binary trial's predictions, its test-time-augmented ones and a model file, as its jobs write them."""
    rng = np.random.default_rng(seed)
    frames = {"plain": [], "augmented": []}
    for split, n in (("val", 60), ("test", 80)):
        labels = rng.integers(0, 2, n)
        scores = np.clip(0.5 + (labels - 0.5) * rng.uniform(0.1, 0.9, n) + rng.normal(0, 0.2, n), 0.01, 0.99)
        rows = pd.DataFrame({"image_id": [f"{split}{i}" for i in range(n)], "split": split, "label": labels,
                             "patient_id": [f"{split}-s{i % 15}-{labels[i]}" for i in range(n)],
                             "class_name": np.array(CLASSES)[labels]})
        frames["plain"].append(prediction_frame(rows, scores, CLASSES))
        frames["augmented"].append(prediction_frame(rows, np.clip(scores + rng.normal(0, 0.1, n), 0.01, 0.99), CLASSES))
    trial = {"approach": "cnn", "dataset": "synthetic", "split_method": "subject", "variant": "balanced", "size": 24,
            "model": model, "optimizer": "adam", "learning_rate": 0.001, "loss": "auto", "epochs": 1, "batch_size": 8,
            "seed": 0}
    for kind, name in (("plain", "predictions.parquet"), ("augmented", "predictions_tta.parquet")):
        write_predictions(pd.concat(frames[kind], ignore_index=True), folder / name, trial=trial, class_names=CLASSES,
                          train_seconds=1.0, predict_seconds=2.0, leaky=False)
    (folder / "model.keras").write_bytes(f"the weights of {model}".encode())


def evaluated(folder: Path, tta: str, seed: int = 0, model: str = "m") -> pd.DataFrame:
    folder.mkdir(parents=True)
    trial_predictions(folder, seed, model)
    evaluate_predictions(folder / "predictions.parquet", folder / "metrics.json", folder / "scoring.json",
                         model_path=folder / "model.keras", n_boot=50, calibration="temperature", tta=tta,
                         tta_path=folder / "predictions_tta.parquet")
    return pd.DataFrame(json.loads((folder / "metrics.json").read_text()))


def test_a_new_variant_is_allowed_by_the_config_check_and_planned_as_a_model_pass(rot4):
    config = copy.deepcopy(DEFAULT)
    config["evaluation"]["tta"] = rot4
    assert choices("tta") == ["none", "flips", "rot4", "rot8"] and config_problems(config) == []
    assert needs_model_pass(rot4) and pass_views(rot4) is quarter_turns


def test_a_new_variant_is_evaluated_as_the_others_without_a_temperature(rot4, tmp_path):
    rows = evaluated(tmp_path / "trial", rot4)
    assert rows.groupby(["tta", "calibration"]).size().to_dict() == {("none", "none"): 4, ("none", "temperature"): 4,
                                                                     ("rot4", "none"): 4}
    assert rows[rows["tta"] == rot4]["accuracy"].notna().all()
    assert read_scoring(tmp_path / "trial").tta == rot4  # what predict applies


def test_a_new_variant_fills_the_tables_columns_of_its_prefix(rot4, tmp_path):
    evaluated(tmp_path / "trial", rot4)
    metrics = metrics_of_trials([tmp_path / "trial" / "metrics.json"])
    best = with_score_variants(best_configurations(cell_level(metrics)), metrics)
    test = metrics[(metrics["tta"] == rot4) & (metrics["split"] == "test") & (metrics["level"] == "cell")].iloc[0]
    assert best.loc[0, "tta"] == rot4
    assert best.loc[0, ["tta_accuracy", "tta_auc"]].tolist() == test[["accuracy", "auc"]].tolist()
    assert set(score_variant_columns()) <= set(best.columns)


def test_a_new_variant_with_a_prefix_of_its_own_gets_columns_and_a_legend_of_its_own(registry, tmp_path):
    register("rot4", setting="tta", model_pass=True, prefix="rot4_", table_metrics=("accuracy", "brier"),
             table_columns={}, label="its accuracy and Brier score over the four quarter turns")
    evaluated(tmp_path / "trial", "rot4")
    metrics = metrics_of_trials([tmp_path / "trial" / "metrics.json"])
    best = with_score_variants(best_configurations(cell_level(metrics)), metrics)
    assert score_variant_columns()[-2:] == ("rot4_accuracy", "rot4_brier") and "rot4_" in same_trial_prefixes()
    assert score_variant_legend().endswith("; rot4_*: its accuracy and Brier score over the four quarter turns")
    test = metrics[(metrics["tta"] == "rot4") & (metrics["split"] == "test") & (metrics["level"] == "cell")].iloc[0]
    shown = formatted(best, ("rot4_accuracy",))
    assert shown.loc[0, "rot4_accuracy"].startswith(f"{test['accuracy']:.3f} [")


class OrientedModel:
    """A stand-in for a Keras model whose score depends on where the image is bright: the mean of its
    top row (a sigmoid's one unit)."""

    def predict_on_batch(self, images: np.ndarray) -> np.ndarray:
        return images[:, 0].mean(axis=(1, 2))[:, None] / 255.0


def test_predict_applies_a_new_variant_as_the_evaluation_recorded_it(rot4, tmp_path, monkeypatch):
    folder = tmp_path / "trial"
    evaluated(folder, rot4)
    (folder / "model.json").write_text("{}")
    files = [write_image(tmp_path / "images" / f"{k}.bmp", seed=k, size=24) for k in range(3)]
    model = TrainedModel(OrientedModel(), {"preparation": vars(Preparation(size=24)), "class_names": CLASSES})
    monkeypatch.setattr(predict, "load_trial", lambda path: model)  # no Keras: the stand-in as the trial's model
    assert cli.parser().parse_args(["predict", str(folder), "x", "--tta", rot4]).tta == rot4
    out, err = tmp_path / "scores.csv", io.StringIO()
    assert predict.run(str(folder), map(str, files), output=str(out), stdout=io.StringIO(), stderr=err,
                       calibrated=False) == predict.EXIT_OK
    assert "'rot4' views" in err.getvalue()  # from the trial's scoring.json
    images = np.stack([prepare_image(f, model.preparation) for f in files])
    by_hand = np.mean([OrientedModel().predict_on_batch(view)[:, 0] for view in quarter_turns(images)], axis=0)
    own = OrientedModel().predict_on_batch(images)[:, 0]
    scores = pd.read_csv(out)["score_all"].to_numpy()
    np.testing.assert_allclose(scores, by_hand, rtol=1e-6)
    assert not np.allclose(scores, own, atol=1e-3)  # the views changed the scores
