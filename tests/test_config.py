"""Config checks beyond the schema, and the grid expansion."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from leukobench.keys import GRID_KEYS, HYBRID_KEYS
from leukobench.plan.config import ConfigError, check_config, config_problems, grid_trials, training_options

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
    trials = grid_trials(grid)
    assert list(trials.columns) == list(GRID_KEYS)
    assert len(trials) == 2 * 2 * 3 and not trials.duplicated().any()


def with_grid(**changes) -> dict:
    config = copy.deepcopy(BASE)
    config["grid"].update(changes)
    return config


def test_trials_below_a_models_minimum_size_are_excluded_with_a_message():
    from leukobench.plan.config import keras_trials

    trials, messages = keras_trials(with_grid(model=["resnet50", "abed_cnn"], size=[16, 32]))
    assert sorted(map(tuple, trials[["model", "size"]].to_numpy().tolist())) == [("abed_cnn", 32), ("resnet50", 32)]
    assert any("resnet50 at 16 px" in m and "at least 32 px" in m for m in messages)


def test_exclude_rules_drop_matching_trials_and_a_fully_excluded_grid_is_an_error():
    from leukobench.plan.config import keras_trials

    config = with_grid(model=["abed_cnn", "varol_cnn1"], size=[32, 48])
    config["exclude"] = [{"model": "varol_cnn1", "size": 48, "reason": "too slow"}]
    trials, messages = keras_trials(config)
    assert len(trials) == 3 and "excluded 1 trial(s)" in messages[0]
    config["exclude"] = [{"size": [32, 48]}]
    assert "every trial is excluded" in " ".join(config_problems(config))
    config["exclude"] = [{"colour": "rgb"}]
    assert "are not grid keys" in " ".join(config_problems(config))


def test_hybrid_trials_follow_the_keras_trials_of_their_models():
    from leukobench.plan.config import hybrid_trials, keras_trials

    config = with_grid(model=["abed_cnn", "varol_cnn1"], optimizer=["adam", "sgd"], size=[32, 48])
    config["hybrid"] = {"models": ["varol_cnn1"], "classifiers": ["svm", "nb", "rf"]}
    keras, _ = keras_trials(config)
    hybrid = hybrid_trials(config, keras)
    assert list(hybrid.columns) == [key for key in HYBRID_KEYS if key != "fold"]  # no k-fold in this config
    assert len(hybrid) == 2 * 2 * 3 and set(hybrid["model"]) == {"varol_cnn1"}
    config["hybrid"]["classifiers"] = ["xgboost"]
    assert "hybrid.classifiers: 'xgboost'" in " ".join(config_problems(config))


def test_classical_trials_and_their_checks():
    from leukobench.plan.config import classical_trials

    config = copy.deepcopy(BASE)
    config["classical"] = {"seed": [0]}  # what the schema's defaults give when the section is absent
    assert classical_trials(config).empty
    config["classical"] = {"dataset": ["synthetic"], "variant": ["balanced"], "size": [32],
                           "features": ["pixels", "hog_pca"], "classifier": ["svm", "knn"], "seed": [0]}
    assert len(classical_trials(config)) == 4
    config["classical"]["features"] = ["sift"]
    assert "classical.features: 'sift'" in " ".join(config_problems(config))


def test_scale_shrinks_epochs_images_and_synthetic_data_without_touching_the_rest():
    from leukobench.plan.config import apply_scale, keras_trials

    config = with_grid(epochs=[25, 50, 100])
    config["variants"]["balanced"]["per_class"] = 1266
    config["scale"] = 0.5
    assert set(keras_trials(apply_scale(config))[0]["epochs"]) == {12, 25}  # the first ceil(3 * 0.5) values, scaled
    config["scale"] = 0.04
    scaled = apply_scale(config)
    assert set(keras_trials(scaled)[0]["epochs"]) == {1}
    assert scaled["variants"]["balanced"]["per_class"] == 51
    assert scaled["datasets"]["synthetic"]["synthetic"]["cells_per_subject"] == 10
    assert config["grid"]["epochs"] == [25, 50, 100]  # the original is left as it was
    assert apply_scale({**config, "scale": 1.0}) is not None and apply_scale({**config, "scale": 1.0})["grid"]["epochs"] == [25, 50, 100]


def test_imagenet_weights_not_on_disk_are_fetched_later_but_a_missing_weights_file_stops_the_run(tmp_path, monkeypatch):
    """weights: imagenet with an empty Keras cache is no problem (the rule imagenet_weights fetches the
    file before any training) unless Keras' hash of the file is unknown; a weights path that does not
    exist stops the run before any job."""
    import leukobench.models.weights as weights

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


def test_a_list_of_split_methods_runs_every_trial_on_each():
    from leukobench.plan.config import classical_trials, keras_trials

    config = with_grid(model=["abed_cnn"], size=[32])
    config["split"]["method"] = ["subject", "random"]
    config["classical"] = {"dataset": ["synthetic"], "variant": ["balanced"], "size": [32],
                           "features": ["pixels"], "classifier": ["lr"], "seed": [0]}
    trials, _ = keras_trials(config)
    assert sorted(trials["split_method"]) == ["random", "subject"] and "fold" not in trials
    assert sorted(classical_trials(config)["split_method"]) == ["random", "subject"]


def test_k_fold_adds_one_trial_per_fold_and_checks_the_folds_asked_for():
    from leukobench.plan.config import keras_trials, parse_partition, partition

    config = with_grid(model=["abed_cnn"], size=[32])
    config["split"]["folds"] = 10
    trials, _ = keras_trials(config)
    assert sorted(trials["fold"]) == list(range(10))
    config["grid"]["fold"] = [0, 3]
    assert sorted(keras_trials(config)[0]["fold"]) == [0, 3]
    config["grid"]["fold"] = [10]
    assert "grid.fold: [10] has folds outside 0..9" in " ".join(config_problems(config))
    config["split"]["folds"] = None
    config["grid"]["fold"] = [0]
    assert "split.folds is not set" in " ".join(config_problems(config))
    assert partition("subject", 3) == "subject_fold3" and parse_partition("subject_fold3") == ("subject", 3)
    assert partition("random") == "random" and parse_partition("random") == ("random", None)


def test_scale_thins_every_grid_list_and_the_folds_but_keeps_every_model():
    from leukobench.plan.config import apply_scale, keras_trials

    config = with_grid(model=["abed_cnn", "varol_cnn1", "vgg16"], optimizer=["adam", "sgd", "rmsprop"],
                       size=[32, 48], epochs=[25, 50, 100])
    config["split"]["folds"] = 10
    trials, _ = keras_trials(apply_scale({**config, "scale": 0.05}))
    assert sorted(set(trials["model"])) == ["abed_cnn", "varol_cnn1", "vgg16"]
    assert set(trials["optimizer"]) == {"adam"} and set(trials["epochs"]) == {1} and set(trials["fold"]) == {0}


def test_scale_keeps_every_model_whose_values_an_exclusion_sets_apart():
    """The reference preset's way: adamw for one model, adam for the others, tied by `exclude`. A smoke
    run that thinned optimizer to its first value would run one of the two groups only."""
    from leukobench.plan.config import apply_scale, keras_trials

    config = with_grid(model=["abed_cnn", "varol_cnn1", "reference_resnet_small"], optimizer=["adamw", "adam", "sgd"],
                       learning_rate=[0.01, 0.001], epochs=[10, 20])
    config["exclude"] = [{"model": ["abed_cnn", "varol_cnn1"], "optimizer": "adamw", "reason": "as published"},
                         {"model": "reference_resnet_small", "optimizer": ["adam", "sgd"], "reason": "the recipe"},
                         {"model": "varol_cnn1", "learning_rate": 0.01, "reason": "diverges"}]
    full, _ = keras_trials(config)
    trials, _ = keras_trials(apply_scale({**config, "scale": 0.05}))
    assert trials.set_index("model")[["optimizer", "learning_rate", "epochs"]].to_dict("index") == {
        "abed_cnn": {"optimizer": "adam", "learning_rate": 0.01, "epochs": 1},
        "varol_cnn1": {"optimizer": "adam", "learning_rate": 0.001, "epochs": 1},
        "reference_resnet_small": {"optimizer": "adamw", "learning_rate": 0.01, "epochs": 1}}
    assert len(trials.merge(full.assign(epochs=1).drop_duplicates())) == len(trials)  # each a trial of the full grid, fewer epochs


@pytest.mark.parametrize("edit, key", [
    (lambda c: c["datasets"].update({"..": c["datasets"]["synthetic"]}), r"datasets: the name '\.\.' cannot name a folder"),
    (lambda c: c["datasets"].update({"my cells": c["datasets"]["synthetic"]}), "datasets: the name 'my cells' cannot"),
    (lambda c: c["variants"].update({"../up": c["variants"]["balanced"]}), r"variants: the name '\.\./up' cannot"),
    (lambda c: c["variants"].update({".": c["variants"]["balanced"]}), r"variants: the name '\.' cannot"),
    (lambda c: c["grid"].update(size=[32, 10000]), r"grid\.size: \[10000\] px is above the limit of 1024 px"),
    (lambda c: c.update(classical={**c["classical"], "size": [2048]}), r"classical\.size: \[2048\] px is above"),
    (lambda c: c.update(hybrid={"models": ["varol_cnn4"], "classifiers": ["svm"]}),
     r"hybrid\.models: \['varol_cnn4'\] not in grid\.model \['varol_cnn3', 'abed_cnn'\]"),
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


def test_transfer_options_reach_only_the_trials_of_transfer_models():
    """The train rule's params (training_options): a change of training.weights or trainable_layers is a
    change of the params of transfer-model trials only, so it retrains nothing else."""
    from leukobench.models import list_models, transfer_models
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


# --- numbers a library bounds, URLs, keys that do nothing -------------------------------------------

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
TOO_BIG_SEED = 2**32  # numpy's np.random.seed and scikit-learn's random_state take seeds below 2**32


@pytest.mark.parametrize("edit, key", [
    (lambda c: c["grid"].update(seed=[0, TOO_BIG_SEED]), r"\['grid'\]\['seed'\]\[1\]"),
    (lambda c: c["classical"].update(seed=[TOO_BIG_SEED]), r"\['classical'\]\['seed'\]\[0\]"),
    (lambda c: c["split"].update(seed=TOO_BIG_SEED), r"\['split'\]\['seed'\]"),
    (lambda c: c["variants"]["balanced"].update(seed=TOO_BIG_SEED), r"\['variants'\]\['balanced'\]\['seed'\]"),
    (lambda c: c["datasets"]["synthetic"]["synthetic"].update(seed=TOO_BIG_SEED),
     r"\['datasets'\]\['synthetic'\]\['synthetic'\]\['seed'\]"),
    (lambda c: c.update(features={"seed": TOO_BIG_SEED}), r"\['features'\]\['seed'\]"),
    (lambda c: c["evaluation"].update(seed=TOO_BIG_SEED), r"\['evaluation'\]\['seed'\]"),
])
def test_a_seed_numpy_cannot_take_fails_at_the_config_check_naming_the_key(edit, key):
    config = copy.deepcopy(DEFAULT)
    edit(config)
    with pytest.raises(Exception, match=rf"(?s)4294967296 is greater than the maximum of 4294967295.*{key}"):
        validate(config, str(SCHEMA))


def test_the_largest_seed_numpy_takes_passes():
    config = copy.deepcopy(DEFAULT)
    largest = 2**32 - 1
    config["classical"].update(seed=[largest], repeats=1)
    config["grid"]["seed"] = [largest]
    config["split"]["seed"] = config["variants"]["balanced"]["seed"] = config["evaluation"]["seed"] = largest
    config["datasets"]["synthetic"]["synthetic"]["seed"] = config["features"]["seed"] = largest
    validate(config, str(SCHEMA))
    assert config_problems(config) == []


@pytest.mark.parametrize("augmentation, named", [
    ({"rotation_range": 720}, "rotation_range=720"), ({"brightness_range": [1.5, 0.5]}, "low > high"),
    ({"shear_range": -1}, "shear_range=-1"), ({"zoom_range": 0.2}, "unknown augmentation option"),
])
def test_augmentation_ranges_are_checked_before_any_store_is_made(augmentation, named):
    config = copy.deepcopy(DEFAULT)
    config["variants"]["balanced"].update(balance="oversample", per_class=100, augmentation=augmentation)
    problems = " ".join(config_problems(config))
    assert "variants.balanced.augmentation:" in problems and named in problems, problems


@pytest.mark.parametrize("section", ["grid", "classical"])
def test_repeats_that_run_seeds_past_numpys_bound_are_named(section):
    config = copy.deepcopy(DEFAULT)
    config[section].update(seed=[2**32 - 2], repeats=3)
    validate(config, str(SCHEMA))
    problems = " ".join(config_problems(config))
    assert f"{section}.repeats: 3 with {section}.seed 4294967294 runs seeds up to 4294967296" in problems
    config[section]["repeats"] = 2
    assert config_problems(config) == []


@pytest.mark.parametrize("url", ["file:///data/C-NMC.zip", "ftp://example.org/cnmc.zip", "s3://bucket/cnmc.zip",
                                 "FILE:/data/x.zip", "//example.org/cnmc.zip", "https://"])
def test_only_http_urls_pass_the_config_check(url, tmp_path):
    config = copy.deepcopy(BASE)
    config["datasets"]["cnmc"] = {"format": "cnmc", "url": url}
    problems = " ".join(config_problems(config))
    assert f"datasets.cnmc.url: '{url}'" in problems, problems
    for fine in ("https://example.org/cnmc.zip", "http://127.0.0.1:8080/cnmc.tar.gz"):
        config["datasets"]["cnmc"]["url"] = fine
        assert config_problems(config) == []
    (tmp_path / "cnmc.zip").write_bytes(b"PK")  # a local archive file given as url: fetched from disk
    config["datasets"]["cnmc"]["url"] = str(tmp_path / "cnmc.zip")
    assert config_problems(config) == []
    config["datasets"]["cnmc"]["url"] = str(tmp_path / "missing.zip")
    assert "datasets.cnmc.url:" in " ".join(config_problems(config))


NO_EFFECT = {  # an edit of the default config, and the key the warning names
    "classical without classifier": (lambda c: c["classical"].update(classifier=[], repeats=3), "classical.repeats: 3"),
    "classical seeds without classifier": (lambda c: c["classical"].update(classifier=[], seed=[1, 2]),
                                           "classical.seed: [1, 2]"),
    "hybrid classifiers without models": (lambda c: c["hybrid"].update(models=[]), "hybrid.classifiers: ['svm', 'nb', 'rf']"),
    "hybrid models whose trials are all excluded": (
        lambda c: c["exclude"].append({"model": "abed_cnn", "reason": "x"}), "hybrid.models: ['abed_cnn']"),
    "pca without hog features": (lambda c: c.update(classical={**c["classical"], "features": ["pixels"]},
                                                    features={"pca_components": 50, "seed": 0}),
                                 "features.pca_components: 50"),
    "recipe option without a reference model": (lambda c: c["training"].update(label_smoothing=0.1),
                                                "training.label_smoothing: 0.1"),
    "weight decay without adamw": (lambda c: c["training"].update(weight_decay=0.01), "training.weight_decay: 0.01"),
    "transfer option without a transfer model": (lambda c: c["training"].update(trainable_layers=2),
                                                 "training.trainable_layers: 2"),
    "early stopping without a validation split": (
        lambda c: (c["training"].update(early_stopping_patience=3),
                   c["split"].update(ratios={"train": 0.8, "val": 0.0, "test": 0.2})),
        "training.early_stopping_patience: 3"),
    "unused dataset": (lambda c: c["datasets"].update(spare=copy.deepcopy(c["datasets"]["synthetic"])), "datasets.spare"),
    "unused variant": (lambda c: c["variants"].update(gray={"balance": "none", "color": "gray"}), "variants.gray"),
    "augmentation without oversampling": (lambda c: c["variants"]["balanced"].update(augmentation={"rotation_range": 30}),
                                          "variants.balanced.augmentation"),
    "download bounds without a download": (lambda c: c.update(download={"max_members": 10, "max_unpacked_bytes": 50 * 10**9,
                                                                        "max_ratio": 250}), "download.max_members: 10"),
    "exclusion that matches nothing": (lambda c: c["exclude"].append({"model": "abed_cnn", "size": 64, "reason": "x"}),
                                       "exclude: {'model': 'abed_cnn', 'size': 64"),
}


@pytest.mark.parametrize("case", NO_EFFECT)
def test_a_key_that_has_no_effect_in_the_planned_grid_is_named(case):
    from leukobench.plan.config import ineffective_keys

    edit, named = NO_EFFECT[case]
    assert ineffective_keys(DEFAULT) == []
    config = copy.deepcopy(DEFAULT)
    edit(config)
    validate(config, str(SCHEMA))
    assert config_problems(config) == []  # valid: a warning, not an error
    messages = ineffective_keys(config)
    assert len([m for m in messages if m.startswith(named)]) == 1, messages
    assert all("has no effect" in m or "nothing is made from it" in m for m in messages), messages


def test_the_warning_is_logged_when_the_workflow_plans(tmp_path):
    from test_workflow import TINY, snakemake

    config = {**copy.deepcopy(TINY), "classical": {"classifier": [], "repeats": 3}}
    result = snakemake(tmp_path, config, "-n", "--cores", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "classical.repeats: 3 has no effect: classical.classifier is empty" in result.stdout + result.stderr


def test_the_defaults_the_warnings_compare_with_are_the_schemas():
    from leukobench.data.download import UnpackLimits
    from leukobench.plan.config import SECTION_DEFAULTS, TRAINING_DEFAULTS

    config = {"datasets": {"x": {"format": "synthetic"}}, "variants": {"v": {}},
              "grid": {"dataset": ["x"], "variant": ["v"], "size": [32], "model": ["abed_cnn"], "epochs": [1]},
              "download": {}, "features": {}, "classical": {}}
    validate(config, str(SCHEMA))
    assert {key: config["training"][key] for key in TRAINING_DEFAULTS} == TRAINING_DEFAULTS
    for section in ("download", "features"):
        assert config[section] == SECTION_DEFAULTS[section]
    assert {key: config["classical"][key] for key in ("seed", "repeats")} == SECTION_DEFAULTS["classical"]
    assert config["download"] == {name: getattr(UnpackLimits(), name) for name in config["download"]}
