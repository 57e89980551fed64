"""Config checks beyond the schema, and the grid expansion."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from leukobench.keys import GRID_KEYS, HYBRID_KEYS
from leukobench.plan.config import ConfigError, check_config, config_problems, grid_cells, training_options

from snakemake.utils import validate

REPO = Path(__file__).resolve().parents[1]
DEFAULT = yaml.safe_load((REPO / "config.yaml").read_text())
validate(DEFAULT, str(REPO / "workflow/schemas/config.schema.yaml"))  # fills in the schema's defaults, as the workflow does
BASE = {**copy.deepcopy(DEFAULT), "exclude": []}  # the default on one split method, so grids count plainly
BASE["split"]["method"] = "subject"


def test_the_default_config_is_valid():
    assert config_problems(DEFAULT) == []


@pytest.mark.parametrize("edit, key", [
    (lambda c: c["grid"].update(model=["varol_cnn1", "resnet9000"]), "grid.model: 'resnet9000'"),
    (lambda c: c["grid"].update(variant=["dataset9"]), "grid.variant: 'dataset9'"),
    (lambda c: c["grid"].update(dataset=["cnmc"]), "grid.dataset: 'cnmc'"),
    (lambda c: c["split"].update(ratios={"train": 0.8, "val": 0.15, "test": 0.15}), "split.ratios:.*sum to 1"),
    (lambda c: c["datasets"].update(cnmc={"format": "cnmc", "path": "/no/such/C-NMC"}), "datasets.cnmc.path: '/no/such/C-NMC' does not exist"),
    (lambda c: c["datasets"].update(cnmc={"format": "cnmc"}), "datasets.cnmc.path: missing"),
])
def test_each_bad_value_is_named(edit, key):
    config = copy.deepcopy(DEFAULT)
    edit(config)
    with pytest.raises(ConfigError, match=key):
        check_config(config)


def test_all_problems_are_reported_at_once():
    config = copy.deepcopy(BASE)
    config["grid"]["model"] = ["nope"]
    config["split"]["ratios"] = {"train": 0.5, "val": 0.1, "test": 0.1}
    assert len(config_problems(config)) == 2


def test_grid_expands_to_every_combination_once():
    grid = {**{key: [0] for key in GRID_KEYS}, "size": [32, 48, 32], "model": ["a", "b"], "epochs": [5, 10, 25]}
    cells = grid_cells(grid)
    assert list(cells.columns) == list(GRID_KEYS)
    assert len(cells) == 2 * 2 * 3 and not cells.duplicated().any()


def with_grid(**changes) -> dict:
    config = copy.deepcopy(BASE)
    config["grid"].update(changes)
    return config


def test_cells_below_a_models_minimum_size_are_excluded_with_a_message():
    from leukobench.plan.config import keras_cells

    cells, messages = keras_cells(with_grid(model=["resnet50", "abed_cnn"], size=[16, 32]))
    assert sorted(map(tuple, cells[["model", "size"]].to_numpy().tolist())) == [("abed_cnn", 32), ("resnet50", 32)]
    assert any("resnet50 at 16 px" in m and "at least 32 px" in m for m in messages)


def test_exclude_rules_drop_matching_cells_and_a_fully_excluded_grid_is_an_error():
    from leukobench.plan.config import keras_cells

    config = with_grid(model=["abed_cnn", "varol_cnn1"], size=[32, 48])
    config["exclude"] = [{"model": "varol_cnn1", "size": 48, "reason": "too slow"}]
    cells, messages = keras_cells(config)
    assert len(cells) == 3 and "excluded 1 cell(s)" in messages[0]
    config["exclude"] = [{"size": [32, 48]}]
    assert "every cell is excluded" in " ".join(config_problems(config))
    config["exclude"] = [{"colour": "rgb"}]
    assert "are not grid keys" in " ".join(config_problems(config))


def test_hybrid_cells_follow_the_keras_cells_of_their_models():
    from leukobench.plan.config import hybrid_cells, keras_cells

    config = with_grid(model=["abed_cnn", "varol_cnn1"], optimizer=["adam", "sgd"])
    config["hybrid"] = {"models": ["varol_cnn1"], "classifiers": ["svm", "nb", "rf"]}
    keras, _ = keras_cells(config)
    hybrid = hybrid_cells(config, keras)
    assert list(hybrid.columns) == [key for key in HYBRID_KEYS if key != "fold"]  # no k-fold in this config
    assert len(hybrid) == 2 * 2 * 3 and set(hybrid["model"]) == {"varol_cnn1"}
    config["hybrid"]["classifiers"] = ["xgboost"]
    assert "hybrid.classifiers: 'xgboost'" in " ".join(config_problems(config))


def test_classical_cells_and_their_checks():
    from leukobench.plan.config import classical_cells

    config = copy.deepcopy(BASE)
    config["classical"] = {"seed": [0]}  # what the schema's defaults give when the section is absent
    assert classical_cells(config).empty
    config["classical"] = {"dataset": ["synthetic"], "variant": ["balanced"], "size": [32],
                           "features": ["pixels", "hog_pca"], "classifier": ["svm", "knn"], "seed": [0]}
    assert len(classical_cells(config)) == 4
    config["classical"]["features"] = ["sift"]
    assert "classical.features: 'sift'" in " ".join(config_problems(config))


def test_scale_shrinks_epochs_images_and_synthetic_data_without_touching_the_rest():
    from leukobench.plan.config import apply_scale, keras_cells

    config = with_grid(epochs=[25, 50, 100])
    config["variants"]["balanced"]["per_class"] = 1266
    config["scale"] = 0.5
    assert set(keras_cells(apply_scale(config))[0]["epochs"]) == {12, 25}  # the first ceil(3 * 0.5) values, scaled
    config["scale"] = 0.04
    scaled = apply_scale(config)
    assert set(keras_cells(scaled)[0]["epochs"]) == {1}
    assert scaled["variants"]["balanced"]["per_class"] == 51
    assert scaled["datasets"]["synthetic"]["synthetic"]["cells_per_subject"] == 10
    assert config["grid"]["epochs"] == [25, 50, 100]  # the original is left as it was
    assert apply_scale({**config, "scale": 1.0}) is not None and apply_scale({**config, "scale": 1.0})["grid"]["epochs"] == [25, 50, 100]


def test_imagenet_weights_not_on_disk_are_fetched_later_but_a_missing_weights_file_stops_the_run(tmp_path, monkeypatch):
    """weights: imagenet with an empty Keras cache is no problem (the rule imagenet_weights fetches the
    file before any training) unless Keras' hash of the file is unknown; a weights path that does not
    exist stops the run before any job."""
    import leukobench.learn.weights as weights

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv(weights.WEIGHTS_DIR_ENV, raising=False)
    fname = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    config = with_grid(model=["vgg16"])
    config["hybrid"] = {"models": [], "classifiers": []}  # the default's hybrid model is not in this grid
    config["training"] = {**config.get("training", {}), "weights": "imagenet"}
    assert not (tmp_path / "models" / fname).exists() and config_problems(config) == []
    monkeypatch.delitem(weights.KERAS_FILE_HASHES, fname)
    problems = " ".join(config_problems(config))
    assert "training.weights:" in problems and fname in problems and "KERAS_FILE_HASHES" in problems
    config["training"]["weights"] = str(tmp_path / "nowhere.h5")
    problems = " ".join(config_problems(config))
    assert "training.weights:" in problems and str(tmp_path / "nowhere.h5") in problems
    config["training"]["weights"] = None
    assert config_problems(config) == []


def test_a_list_of_split_methods_runs_every_cell_on_each():
    from leukobench.plan.config import classical_cells, keras_cells

    config = with_grid(model=["abed_cnn"], size=[32])
    config["split"]["method"] = ["subject", "random"]
    config["classical"] = {"dataset": ["synthetic"], "variant": ["balanced"], "size": [32],
                           "features": ["pixels"], "classifier": ["lr"], "seed": [0]}
    cells, _ = keras_cells(config)
    assert sorted(cells["split_method"]) == ["random", "subject"] and "fold" not in cells
    assert sorted(classical_cells(config)["split_method"]) == ["random", "subject"]


def test_k_fold_adds_one_cell_per_fold_and_checks_the_folds_asked_for():
    from leukobench.plan.config import keras_cells, parse_partition, partition

    config = with_grid(model=["abed_cnn"], size=[32])
    config["split"]["folds"] = 10
    cells, _ = keras_cells(config)
    assert sorted(cells["fold"]) == list(range(10))
    config["grid"]["fold"] = [0, 3]
    assert sorted(keras_cells(config)[0]["fold"]) == [0, 3]
    config["grid"]["fold"] = [10]
    assert "grid.fold: [10] has folds outside 0..9" in " ".join(config_problems(config))
    config["split"]["folds"] = None
    config["grid"]["fold"] = [0]
    assert "split.folds is not set" in " ".join(config_problems(config))
    assert partition("subject", 3) == "subject_fold3" and parse_partition("subject_fold3") == ("subject", 3)
    assert partition("random") == "random" and parse_partition("random") == ("random", None)


def test_scale_thins_every_grid_list_and_the_folds_but_keeps_every_model():
    from leukobench.plan.config import apply_scale, keras_cells

    config = with_grid(model=["abed_cnn", "varol_cnn1", "vgg16"], optimizer=["adam", "sgd", "rmsprop"],
                       size=[32, 48], epochs=[25, 50, 100])
    config["split"]["folds"] = 10
    cells, _ = keras_cells(apply_scale({**config, "scale": 0.05}))
    assert sorted(set(cells["model"])) == ["abed_cnn", "varol_cnn1", "vgg16"]
    assert set(cells["optimizer"]) == {"adam"} and set(cells["epochs"]) == {1} and set(cells["fold"]) == {0}


def test_scale_keeps_every_model_whose_values_an_exclusion_sets_apart():
    """The reference preset's way: adamw for one model, adam for the others, tied by `exclude`. A smoke
    run that thinned optimizer to its first value would run one of the two groups only."""
    from leukobench.plan.config import apply_scale, keras_cells

    config = with_grid(model=["abed_cnn", "varol_cnn1", "reference_resnet_small"], optimizer=["adamw", "adam", "sgd"],
                       learning_rate=[0.01, 0.001], epochs=[10, 20])
    config["exclude"] = [{"model": ["abed_cnn", "varol_cnn1"], "optimizer": "adamw", "reason": "as published"},
                         {"model": "reference_resnet_small", "optimizer": ["adam", "sgd"], "reason": "the recipe"},
                         {"model": "varol_cnn1", "learning_rate": 0.01, "reason": "diverges"}]
    full, _ = keras_cells(config)
    cells, _ = keras_cells(apply_scale({**config, "scale": 0.05}))
    assert cells.set_index("model")[["optimizer", "learning_rate", "epochs"]].to_dict("index") == {
        "abed_cnn": {"optimizer": "adam", "learning_rate": 0.01, "epochs": 1},
        "varol_cnn1": {"optimizer": "adam", "learning_rate": 0.001, "epochs": 1},
        "reference_resnet_small": {"optimizer": "adamw", "learning_rate": 0.01, "epochs": 1}}
    assert len(cells.merge(full.assign(epochs=1).drop_duplicates())) == len(cells)  # each a cell of the full grid, fewer epochs


@pytest.mark.parametrize("edit, key", [
    (lambda c: c["datasets"].update({"..": c["datasets"]["synthetic"]}), r"datasets: the name '\.\.' cannot name a folder"),
    (lambda c: c["datasets"].update({"my cells": c["datasets"]["synthetic"]}), "datasets: the name 'my cells' cannot"),
    (lambda c: c["variants"].update({"../up": c["variants"]["balanced"]}), r"variants: the name '\.\./up' cannot"),
    (lambda c: c["variants"].update({".": c["variants"]["balanced"]}), r"variants: the name '\.' cannot"),
    (lambda c: c["grid"].update(size=[32, 10000]), r"grid\.size: \[10000\] px is above the limit of 1024 px"),
    (lambda c: c.update(classical={**c["classical"], "size": [2048]}), r"classical\.size: \[2048\] px is above"),
    (lambda c: c.update(hybrid={"models": ["varol_cnn3"], "classifiers": ["svm"]}),
     r"hybrid\.models: \['varol_cnn3'\] not in grid\.model \['varol_cnn1', 'abed_cnn'\]"),
])
def test_values_that_would_fail_deep_in_the_dag_or_plan_nothing_are_named_up_front(edit, key):
    config = copy.deepcopy(BASE)
    edit(config)
    with pytest.raises(ConfigError, match=key):
        check_config(config)


def test_a_dataset_path_expands_home_and_variables_as_a_shell_would(tmp_path, monkeypatch):
    from leukobench.plan.config import dataset_path

    (tmp_path / "lab").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LABDATA", str(tmp_path / "lab"))
    for path in ("~/lab", "$LABDATA", "${LABDATA}/"):
        config = copy.deepcopy(BASE)
        config["datasets"]["lab"] = {"format": "folder", "path": path}
        assert config_problems(config) == []
        assert Path(dataset_path(config["datasets"]["lab"])).resolve() == tmp_path / "lab"
    config["datasets"]["lab"]["path"] = "~/elsewhere"
    assert f"datasets.lab.path: '~/elsewhere' ('{tmp_path}/elsewhere') does not exist" in " ".join(config_problems(config))


def test_the_pixel_limit_defaults_to_the_readers_default():
    """ingest.max_pixels: the schema's default is open_image's (predict's) default."""
    from leukobench.data.images import DEFAULT_MAX_PIXELS

    config = copy.deepcopy(DEFAULT)
    del config["ingest"]
    validate(config, str(REPO / "workflow/schemas/config.schema.yaml"))
    assert config["ingest"] == {"max_pixels": DEFAULT_MAX_PIXELS} == DEFAULT["ingest"]


def test_transfer_options_reach_only_the_cells_of_transfer_models():
    """The train rule's params (training_options): a change of training.weights or trainable_layers is a
    change of the params of transfer-model cells only, so it retrains nothing else."""
    from leukobench.learn.models import list_models, transfer_models
    from leukobench.learn.train import TrainingSpec

    training = DEFAULT["training"]  # the schema's defaults
    changed = {**training, "weights": None, "trainable_layers": -1}
    for model in list_models():
        options, after = training_options(training, model), training_options(changed, model)
        assert {k: options[k] for k in ("class_weight", "early_stopping_patience")} == {
            "class_weight": training["class_weight"], "early_stopping_patience": training["early_stopping_patience"]}
        if model in transfer_models():
            assert options["model_options"] == {"weights": "imagenet", "trainable_layers": 0}
            assert after["model_options"] == {"weights": None, "trainable_layers": -1}
        else:
            assert options == after and options["model_options"] == {}, model
        TrainingSpec(model=model, **after)  # the keywords the train script passes
    assert training_options({**training, "class_weight": True}, "abed_cnn")["class_weight"] is True
