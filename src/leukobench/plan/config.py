"""Checks of config.yaml beyond its JSON schema: what a schema cannot say.

The schema (workflow/schemas/config.schema.yaml) checks types, ranges and enumerations. Here:
model names against the registry, the score variants of evaluation.calibration and evaluation.tta
against theirs (:mod:`leukobench.score_variants`: a variant added there is allowed with no schema
edit), split ratios summing to 1, dataset paths that exist, grid
values that name declared datasets and variants, the smoke-run scale, and the grids expanded
into trials: Keras trials, hybrid trials (a Keras trial's conv features to a classical classifier)
and classical trials (pixels or HOG + PCA features to a classical classifier).
"""

from __future__ import annotations

import itertools
import math
import os
import re
import urllib.parse
from pathlib import Path

import pandas as pd

from leukobench.keys import CLASSICAL_KEYS, GRID_KEYS, HYBRID_KEYS, PARTITION_KEYS
from leukobench.learn.classical import list_classifiers
from leukobench.models import (MIN_INPUT_SIZE, MODELS, builder_parameters, list_models, recipe_models, resolve_weights,
                                     transfer_models)
from leukobench.models.weights import keras_file_hash
from leukobench.keys import scaled_epochs, scaled_size
from leukobench.data.kaggle import KaggleSource, credentials_problem, fetch_due, receipt_problem
from leukobench.data.augment import Augmentation
from leukobench.data.splits import SPLIT_METHODS, check_ratios
from leukobench.score_variants import NONE, VARIANT_SETTINGS, choices

GENERATED_FORMATS = ("synthetic",)
TABULAR_FEATURES = ("pixels", "hog_pca")  # features a classical trial reads from a store (cnn ones come from a trial)
NAME_PATTERN = r"[A-Za-z0-9_-]+"  # dataset and variant names: folders of results/, and the rules' wildcards
MAX_SIZE = 1024  # px: a 1024 px RGB image is 3 MB in a store and in memory; 10,000 px would be 300 MB each
MAX_SEED = 2**32 - 1  # numpy's legacy seeding (Keras' set_random_seed) and scikit-learn's random_state take no more
URL_SCHEMES = ("http", "https")  # a dataset's url: these, or no scheme (a local archive file)
SIZE_SECTIONS = ("grid", "classical")  # the sections whose size lists make stores


def dataset_path(dataset: dict) -> str:
    """A dataset's ``path`` as the file system takes it: ``~`` and ``$VARIABLES`` expanded, as a shell would."""
    return os.path.expanduser(os.path.expandvars(dataset["path"]))


DATA_SOURCES = ("path", "url", "kaggle")  # where a dataset of a real format comes from: exactly one of them


def data_sources(dataset: dict) -> list[str]:
    """Which of :data:`DATA_SOURCES` the dataset names (the config check allows one)."""
    return [key for key in DATA_SOURCES if dataset.get(key)]


def data_source(dataset: dict) -> str | None:
    """The one of :data:`DATA_SOURCES` the dataset names, or None (a stand-in, or a generated dataset)."""
    return next(iter(data_sources(dataset)), None)


def reader_format(dataset: dict) -> str:
    """The reader of a dataset: ``synthetic`` for a generated one, which is a dataset of format
    synthetic, or a dataset of a real format with a ``synthetic`` stand-in and no path, url or
    kaggle yet (the presets: they run as shipped, and on the real data once one is given; asking for
    the real data never falls back to the stand-in), else its format."""
    stand_in = "synthetic" in dataset and data_source(dataset) is None
    return "synthetic" if dataset["format"] in GENERATED_FORMATS or stand_in else dataset["format"]


def kaggle_sources(datasets: dict) -> dict[str, tuple[str, list[str]]]:
    """The Kaggle datasets the config reads, ``owner/slug`` -> (the handle as configured, the config
    datasets that read it). One fetch serves every config dataset that names the same Kaggle dataset
    (Zhang's Original/ and Segmented/ image sets are one download)."""
    sources: dict[str, tuple[str, list[str]]] = {}
    for name, dataset in datasets.items():
        if reader_format(dataset) not in GENERATED_FORMATS and data_source(dataset) == "kaggle":
            handle = dataset["kaggle"]
            sources.setdefault(KaggleSource.parse(handle).dataset, (handle, []))[1].append(name)
    return sources


def kaggle_problems(datasets: dict, base: Path) -> list[str]:
    """What keeps the config's Kaggle datasets from being fetched or read: two versions of one Kaggle
    dataset, missing credentials where a fetch is due (no receipt yet, or another version asked for),
    a fetched tree that no longer matches its receipt. No network call."""
    problems = []
    for owner_slug, (handle, names) in kaggle_sources(datasets).items():
        handles = {datasets[name]["kaggle"] for name in names}
        if len(handles) > 1:
            problems.append(f"datasets {', '.join(names)}: kaggle names {owner_slug} as {' and '.join(sorted(handles))}; "
                            "one fetch serves them all, so give them the same (version)")
            continue
        problem = credentials_problem(names, handle) if fetch_due(handle, base) else receipt_problem(handle, base)
        if problem:
            problems.append(problem)
    return problems


class ConfigError(ValueError):
    """config.yaml holds a value the workflow cannot run with."""


def config_problems(config: dict, base: Path = Path(".")) -> list[str]:
    """Every problem found, each naming the key, the value and what is allowed."""
    problems = []
    datasets = config.get("datasets", {})
    for section in ("datasets", "variants"):
        for name in config.get(section) or {}:
            if not re.fullmatch(NAME_PATTERN, str(name)):
                problems.append(f"{section}: the name {str(name)!r} cannot name a folder of results/; "
                                "use letters, digits, '_' and '-' only")
    for section in SIZE_SECTIONS:
        too_big = [size for size in (config.get(section) or {}).get("size", []) if size > MAX_SIZE]
        if too_big:
            problems.append(f"{section}.size: {too_big} px is above the limit of {MAX_SIZE} px (each stored "
                            f"image takes size x size x 3 bytes, {MAX_SIZE} px 3 MB, and every store, feature file "
                            "and training holds them all in memory); the studies use 32 to 224 px")
    for name, dataset in datasets.items():
        if reader_format(dataset) in GENERATED_FORMATS:
            continue
        path = dataset.get("path")
        given = data_sources(dataset)
        if len(given) > 1:
            problems.append(f"datasets.{name}: give one of path, url or kaggle, not {' and '.join(given)}")
            continue
        if given == ["url"]:
            problems += _url_problems(name, str(dataset["url"]), base)
        if given and given[0] != "path":
            continue
        if not path:
            problems.append(f"datasets.{name}.path: missing; format '{dataset['format']}' needs the folder of the dataset "
                            "(or a url, or kaggle: owner/dataset)")
        elif not (base / dataset_path(dataset)).exists():
            shown = f"'{path}'" + ("" if dataset_path(dataset) == path else f" ('{dataset_path(dataset)}')")
            problems.append(f"datasets.{name}.path: {shown} does not exist; point it at the dataset's folder")
    problems += kaggle_problems(datasets, base)
    for name, variant in (config.get("variants") or {}).items():
        if "augmentation" in variant:  # its ranges are checked when a store is made, after ingest and split: here first
            try:
                Augmentation.from_config(variant["augmentation"])
            except (ValueError, TypeError) as error:
                problems.append(f"variants.{name}.augmentation: {error}")
    for section in ("grid", "classical"):
        seeds, repeats = (config.get(section) or {}).get("seed", [0]), (config.get(section) or {}).get("repeats", 1)
        if seeds and max(seeds) + repeats - 1 > MAX_SEED:
            problems.append(f"{section}.repeats: {repeats} with {section}.seed {max(seeds)} runs seeds up to "
                            f"{max(seeds) + repeats - 1}, above {MAX_SEED} (numpy and scikit-learn take seeds below "
                            f"2**32); lower {section}.seed or {section}.repeats")
    try:
        check_ratios(config["split"]["ratios"])
    except ValueError as error:
        problems.append(f"split.ratios: {error}")
    folds, asked = config["split"].get("folds"), config["grid"].get("fold", [])  # classical trials take the grid's folds
    if asked and not folds:
        problems.append(f"grid.fold: {asked} given but split.folds is not set; set split.folds (e.g. 10) or drop grid.fold")
    elif [f for f in asked if f >= folds]:
        problems.append(f"grid.fold: {asked} has folds outside 0..{folds - 1} (split.folds is {folds})")
    known = {"model": list_models(), "dataset": sorted(datasets), "variant": sorted(config.get("variants", {})),
             "classifier": list_classifiers(), "features": list(TABULAR_FEATURES)}
    grids = {"grid": config["grid"], "classical": config.get("classical") or {},
             "hybrid": {"model": (config.get("hybrid") or {}).get("models", []),
                        "classifier": (config.get("hybrid") or {}).get("classifiers", [])}}
    for section, grid in grids.items():
        for key, allowed in known.items():
            for value in grid.get(key, []):
                if value not in allowed:
                    name = {"model": "models", "classifier": "classifiers"}[key] if section == "hybrid" else key
                    problems.append(f"{section}.{name}: '{value}' is not one of {allowed}")
    hybrid_models, grid_models = (config.get("hybrid") or {}).get("models", []), config["grid"].get("model", [])
    unused = [m for m in hybrid_models if m in known["model"] and m not in grid_models]
    if unused and (config.get("hybrid") or {}).get("classifiers") and set(grid_models) <= set(known["model"]):
        problems.append(f"hybrid.models: {unused} not in grid.model {grid_models}: a hybrid trial "
                        "feeds the conv features of a trained Keras trial of the grid; add the model to grid.model "
                        "or drop it from hybrid.models")
    evaluation = config.get("evaluation") or {}
    for setting in VARIANT_SETTINGS:  # the schema says string; the registry says which
        value = evaluation.get(setting, NONE)
        if value not in choices(setting):
            problems.append(f"evaluation.{setting}: {value!r} is not one of {choices(setting)} (none, or a score variant "
                            f"of setting {setting}: leukobench.score_variants)")
    for rule in config.get("exclude", []):
        unknown = set(rule) - set(GRID_KEYS) - {"reason"}
        if unknown:
            problems.append(f"exclude: {sorted(unknown)} are not grid keys; allowed: {list(GRID_KEYS)}")
    weights = (config.get("training") or {}).get("weights")
    for model in sorted(set(config["grid"].get("model", [])) & set(transfer_models())):
        try:
            if weights == "imagenet":  # fetched before any training by the rule imagenet_weights: Keras' hash must be known
                keras_file_hash(MODELS.attribute(model, "application").weights_file)
            else:
                resolve_weights(model, weights)
        except (FileNotFoundError, KeyError) as error:
            problems.append(f"training.weights: {error.args[0]}")
    if config.get("published"):
        from leukobench.published import published_problems

        problems += published_problems(config["published"])
    if not problems and config["grid"] and keras_trials(config)[0].empty:
        problems.append("grid: every trial is excluded (see the messages above); nothing would be trained")
    return problems


def _url_problems(name: str, url: str, base: Path) -> list[str]:
    """A dataset's url: an http(s) URL with a host, or the path of a local archive file that exists."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in URL_SCHEMES:
        return [] if parts.netloc else [f"datasets.{name}.url: '{url}' has no host; give a full http(s) URL"]
    if scheme or url.startswith("//"):
        return [f"datasets.{name}.url: '{url}' is not an http(s) URL (scheme '{scheme or '//'}'); only http:// and "
                "https:// are downloaded: give the archive's http(s) URL, or the plain path of a local archive "
                "file as url, or the unpacked folder as path"]
    local = Path(os.path.expanduser(os.path.expandvars(url)))
    if not (base / local).is_file():
        return [f"datasets.{name}.url: '{url}' is neither an http(s) URL nor a local archive file that exists; "
                "fix the URL or the path"]
    return []


def check_config(config: dict, base: Path = Path(".")) -> None:
    """Raise ConfigError listing every problem, so a run stops before its first job."""
    problems = config_problems(config, base)
    if problems:
        raise ConfigError("the configuration is not valid (config.yaml or the --configfile given):\n  - " + "\n  - ".join(problems))


# The schema's defaults of the keys whose effect depends on the planned grid: a key left at its
# default says nothing, one set to another value where nothing takes it gets a warning.
TRAINING_DEFAULTS = {"class_weight": False, "early_stopping_patience": 0, "weights": "imagenet", "trainable_layers": 0,
                     "augmentation": False, "lr_schedule": "constant", "warmup_epochs": 0, "label_smoothing": 0,
                     "weight_decay": 0.004, "weights_url": "https://storage.googleapis.com/tensorflow/keras-applications/",
                     "weights_folder": None}
SECTION_DEFAULTS = {"classical": {"seed": [0], "repeats": 1}, "features": {"pca_components": 100, "seed": 0},
                    "download": {"max_unpacked_bytes": 50 * 10**9, "max_members": 1_000_000, "max_ratio": 250}}


def ineffective_keys(config: dict) -> list[str]:
    """The keys set (to other than their default) that change nothing in the planned grid, one
    message each naming the key, its value and why: what the workflow logs as warnings when it plans
    (a key that does nothing is most often a key the user believes does something). The config as
    given, before ``scale``."""
    messages = []

    def unused(key: str, value, why: str) -> None:
        messages.append(f"{key}: {value!r} has no effect: {why}")

    def changed(section: str) -> dict:
        values, defaults = config.get(section) or {}, {**SECTION_DEFAULTS.get(section, {}),
                                                        **(TRAINING_DEFAULTS if section == "training" else {})}
        return {key: value for key, value in values.items() if key not in defaults or value != defaults[key]}

    grid, classical, hybrid = config.get("grid") or {}, config.get("classical") or {}, config.get("hybrid") or {}
    if not classical.get("classifier"):
        for key, value in changed("classical").items():
            if key != "classifier":
                unused(f"classical.{key}", value, "classical.classifier is empty, so no classical trial is planned")
    elif "hog_pca" not in classical.get("features", []):
        for key, value in changed("features").items():
            unused(f"features.{key}", value, "no classical trial uses the hog_pca features (classical.features)")
    if not classical.get("classifier"):
        for key, value in changed("features").items():
            unused(f"features.{key}", value, "no classical trial is planned (classical.classifier is empty)")
    for key, other in (("models", "classifiers"), ("classifiers", "models")):
        if hybrid.get(key) and not hybrid.get(other):
            unused(f"hybrid.{key}", hybrid[key], f"hybrid.{other} is empty, so no hybrid trial is planned")
    if hybrid.get("models") and hybrid.get("classifiers") and grid and hybrid_trials(config, keras_trials(config)[0]).empty:
        unused("hybrid.models", hybrid["models"], "every Keras trial of these models is excluded, so no hybrid trial is planned")
    used = {section: set(grid.get(section, [])) | (set(classical.get(section, [])) if classical.get("classifier") else set())
            for section in ("dataset", "variant")}
    for section, key in (("datasets", "dataset"), ("variants", "variant")):
        for name in config.get(section) or {}:
            if name not in used[key]:
                messages.append(f"{section}.{name}: declared but in no grid (grid.{key}, classical.{key}): "
                                "nothing is made from it")
    for name, variant in (config.get("variants") or {}).items():
        balance = variant.get("balance", "undersample")
        if balance != "oversample":
            for key in ("augmentation", *(("augment_scope",) if variant.get("augment_scope", "train") != "train" else ())):
                if key in variant:
                    unused(f"variants.{name}.{key}", variant[key], f"only balance: oversample augments (balance is {balance})")
        if balance == "none" and "per_class" in variant:
            unused(f"variants.{name}.per_class", variant["per_class"], "balance: none keeps every image")
    downloads = [name for name, dataset in (config.get("datasets") or {}).items() if "url" in dataset]
    for name, dataset in (config.get("datasets") or {}).items():
        if "sha256" in dataset and "url" not in dataset:
            unused(f"datasets.{name}.sha256", dataset["sha256"], "the dataset has no url, nothing is downloaded")
    if not downloads:
        for key, value in changed("download").items():
            unused(f"download.{key}", value, "no dataset has a url, nothing is downloaded")
    messages += _ineffective_training_options(config, changed("training"))
    messages += _ineffective_exclusions(config)
    return messages


def _ineffective_training_options(config: dict, options: dict) -> list[str]:
    """``training:`` options set that no planned Keras trial takes (:func:`training_options`)."""
    if not options:
        return []
    trials, _ = keras_trials(config) if config.get("grid") else (pd.DataFrame(), [])
    pairs = set(zip(trials.get("model", []), trials.get("optimizer", ["adam"] * len(trials))))
    taken = set()
    for model, optimizer in pairs:
        spec = training_options({**TRAINING_DEFAULTS, **(config.get("training") or {})}, model, optimizer)
        taken |= set(spec) - {"model_options"} | set(spec["model_options"])
    imagenet = "weights" in taken and (config.get("training") or {}).get("weights", "imagenet") == "imagenet"
    if imagenet:
        taken |= {"weights_url", "weights_folder"}
    messages = []
    for key, value in options.items():
        if key not in taken:
            models = sorted({model for model, _ in pairs})
            messages.append(f"training.{key}: {value!r} has no effect: no planned Keras trial takes it "
                            f"(models {models}{', optimizers ' + str(sorted({o for _, o in pairs})) if key == 'weight_decay' else ''})")
    no_validation = not config.get("split", {}).get("ratios", {}).get("val", 0)
    if "early_stopping_patience" in options and "early_stopping_patience" in taken and no_validation:
        messages.append(f"training.early_stopping_patience: {options['early_stopping_patience']!r} has no effect: "
                        "split.ratios.val is 0, so there is no validation split to stop on")
    return messages


def _ineffective_exclusions(config: dict) -> list[str]:
    """``exclude`` rules that match no trial of the Keras grid."""
    if not config.get("grid") or not config.get("exclude"):
        return []
    trials = grid_trials({**config["grid"], "seed": repeated_seeds(config["grid"]), **partition_grid(config)})
    messages = []
    for rule in config["exclude"]:
        keys = [key for key in rule if key != "reason"]
        if any(key not in trials for key in keys) or not _matches(trials, rule).any():
            messages.append(f"exclude: {rule} has no effect: it matches no trial of the grid")
    return messages


def grid_trials(grid: dict, keys: tuple[str, ...] = GRID_KEYS) -> pd.DataFrame:
    """Every combination of the grid's lists, one row per trial, columns in ``keys`` order
    (keys the grid does not have, such as ``fold`` without k-fold, are left out)."""
    keys = [key for key in keys if key in grid]
    values = [list(dict.fromkeys(grid[key])) for key in keys]
    return pd.DataFrame(list(itertools.product(*values)), columns=keys)


def split_methods(config: dict) -> list[str]:
    method = config["split"]["method"]
    return [method] if isinstance(method, str) else list(method)


def partition_grid(config: dict) -> dict:
    """The partition dimensions of every grid (Keras and classical): the split methods and, with
    k-fold, the folds to run (``grid.fold``, default all)."""
    grid = {"split_method": split_methods(config)}
    folds = config["split"].get("folds")
    if folds:
        grid["fold"] = config["grid"].get("fold") or list(range(folds))
    return grid


SPLIT_METHOD_PATTERN = "|".join(SPLIT_METHODS)  # the wildcard constraints of the rules
PARTITION_PATTERN = rf"({SPLIT_METHOD_PATTERN})(_fold\d+)?"  # what partition() writes


def partition(split_method: str, fold=None) -> str:
    """The name of one partition of a dataset: a folder of its stores, e.g. ``subject`` or ``subject_fold3``."""
    return split_method if fold is None else f"{split_method}_fold{int(fold)}"


def parse_partition(name: str) -> tuple[str, int | None]:
    """The inverse of :func:`partition`."""
    method, _, fold = name.partition("_fold")
    return method, int(fold) if fold else None


def _matches(trials: pd.DataFrame, rule: dict) -> pd.Series:
    mask = pd.Series(True, index=trials.index)
    for key, value in rule.items():
        if key != "reason":
            mask &= trials[key].isin(value if isinstance(value, list) else [value])
    return mask


def repeated_seeds(section: dict) -> list[int]:
    """The seeds of a grid section (``grid`` or ``classical``): each listed seed and, with
    ``repeats: n``, the n - 1 that follow it, so every trial is trained n times without listing them."""
    repeats = section.get("repeats", 1)
    return list(dict.fromkeys(seed + k for seed in section.get("seed", [0]) for k in range(repeats)))


def several_seeds(*trial_tables: pd.DataFrame) -> bool:
    """Whether some planned configuration (a trial but for its seed) trains with more than one seed,
    by ``repeats`` or by seeds listed: what the seeds' figure needs, whichever section set it."""
    for trials in trial_tables:
        if len(trials) and "seed" in trials:
            if (trials.groupby([key for key in trials if key != "seed"])["seed"].nunique() > 1).any():
                return True
    return False


def keras_trials(config: dict) -> tuple[pd.DataFrame, list[str]]:
    """The Keras trials of the grid, less the excluded ones, and one message per exclusion.

    A trial is excluded when its image size is below what its model accepts (e.g. ResNet50 below
    32 px) or when it matches a rule of ``exclude`` (a partial trial, with a ``reason``).
    """
    if not config["grid"]:
        return grid_trials({key: [] for key in GRID_KEYS}), []
    trials = grid_trials({**config["grid"], "seed": repeated_seeds(config["grid"]), **partition_grid(config)})
    messages = []
    too_small = trials["size"] < trials["model"].map(lambda m: MIN_INPUT_SIZE.get(m, 1))
    for (model, size), _ in trials[too_small].groupby(["model", "size"]):
        messages.append(f"excluded {model} at {size} px: it needs images of at least {MIN_INPUT_SIZE[model]} px")
    keep = ~too_small
    for rule in config.get("exclude", []):
        hit = keep & _matches(trials, rule)
        if hit.any():
            messages.append(f"excluded {hit.sum()} trial(s) matching {rule}")
        keep &= ~hit
    trials = trials[keep].reset_index(drop=True)
    scale = config.get("scale", 1.0)
    return (trials if scale == 1.0 else _thinned_per_model(trials, scale)), messages


def _thinned_per_model(trials: pd.DataFrame, scale: float) -> pd.DataFrame:
    """A smoke run's Keras trials: for each model (each dataset, variant, partition and seed),
    the first ceil(n * scale) of the n values its trials take, key by key in grid order."""
    groups = [key for key in trials if key not in SCALE_THINS_PER_MODEL]
    kept = []
    for _, group in trials.groupby(groups, sort=False):
        for key in SCALE_THINS_PER_MODEL:
            if key in group:
                group = group[group[key].isin(_thinned(group[key].unique(), scale))]
        kept.append(group)
    return pd.concat(kept).sort_index().reset_index(drop=True) if kept else trials


def hybrid_trials(config: dict, keras: pd.DataFrame) -> pd.DataFrame:
    """Varol's Approach 2: every Keras trial of the hybrid models times each classifier."""
    hybrid = config.get("hybrid") or {}
    base = keras[keras["model"].isin(hybrid.get("models", []))]
    classifiers = pd.DataFrame({"classifier": list(dict.fromkeys(hybrid.get("classifiers", [])))})
    return base.merge(classifiers, how="cross")[[key for key in HYBRID_KEYS if key in (*base, "classifier")]]


def classical_trials(config: dict) -> pd.DataFrame:
    """Classical classifiers on store features (pixels, HOG + PCA)."""
    classical = config.get("classical") or {}
    if not classical.get("classifier"):
        return pd.DataFrame(columns=list(CLASSICAL_KEYS))
    return grid_trials({**classical, "seed": repeated_seeds(classical), **partition_grid(config)}, CLASSICAL_KEYS)


TRAINING_OPTIONS = ("class_weight", "early_stopping_patience")  # training: keys every Keras trial takes
MODEL_OPTIONS = ("weights", "trainable_layers")  # training: keys only a builder that names them takes (transfer models)
# training: keys only the reference models take (leukobench.models.recipe_models; leukobench.learn.recipe)
RECIPE_OPTIONS = ("augmentation", "lr_schedule", "warmup_epochs", "label_smoothing")
OPTIMIZER_OPTIONS = {"adamw": ("weight_decay",)}  # training: keys only the trials of that grid optimizer take


def training_options(training: dict, model: str, optimizer: str | None = None) -> dict:
    """The ``training:`` options one Keras trial of ``model`` (and grid ``optimizer``) uses, as
    keywords of :class:`leukobench.learn.train.TrainingSpec`: ``class_weight`` and
    ``early_stopping_patience`` for every model; the reference recipe's options
    (:data:`RECIPE_OPTIONS`) for the reference models only; ``weight_decay`` for the ``adamw``
    trials only; and in ``model_options`` the model options its builder takes (``weights`` and
    ``trainable_layers`` for the transfer models, none for a CNN built from scratch). The train
    rule's params: a change of an option reruns only the trials whose model uses it, and the
    studies' trials keep the params they had before the recipe existed."""
    taken = builder_parameters(model)
    recipe = RECIPE_OPTIONS if model in recipe_models() else ()
    return {**{key: training[key] for key in (*TRAINING_OPTIONS, *recipe, *OPTIMIZER_OPTIONS.get(optimizer, ()))},
            "model_options": {key: training[key] for key in MODEL_OPTIONS if key in taken}}


SCALE_KEEPS_ALL = ("dataset", "variant", "model", "classifier", "features")  # what a smoke run still exercises
# What a smoke run thins in the Keras grid per model, once the exclusions are made: where `exclude`
# ties values to models (the reference preset: adamw for its model, adam for the studies'), each
# model keeps the first of its own values, so no model drops out.
SCALE_THINS_PER_MODEL = tuple(key for key in GRID_KEYS if key not in (*SCALE_KEEPS_ALL, *PARTITION_KEYS, "seed"))


def _thinned(values: list, scale: float) -> list:
    """The first ceil(n * scale) values (at least one)."""
    return list(values)[:max(1, math.ceil(len(values) * scale))]


def smoke_min_size() -> int:
    """The smallest image size a smoke run scales a size to: the largest minimum input size of the
    registered models (:data:`leukobench.models.MIN_INPUT_SIZE`), so that scaling excludes no model."""
    return max(MIN_INPUT_SIZE.values())


def apply_scale(config: dict) -> dict:
    """A smoke run of any preset without editing it: ``scale`` < 1 shrinks epochs, images per
    class and synthetic datasets in proportion (never below what a run needs), and keeps the
    first ceil(n * scale) values of each grid list (and of the folds), except datasets, models,
    variants, classifiers and features, which all still run. The Keras grid's other lists are
    thinned per model by :func:`keras_trials`, after the exclusions."""
    scale = config.get("scale", 1.0)
    if scale == 1.0:
        return config
    scaled = {**config, "grid": dict(config["grid"]), "variants": {}, "datasets": {}}
    if config["split"].get("folds"):
        scaled["grid"]["fold"] = partition_grid(config)["fold"]
    for section, per_model in (("grid", SCALE_THINS_PER_MODEL), ("classical", ())):
        if config.get(section):
            scaled[section] = {key: values if key in (*SCALE_KEEPS_ALL, *per_model) or not isinstance(values, list)
                               else _thinned(values, scale)
                               for key, values in scaled.get(section, config[section]).items()}
    if "epochs" in scaled["grid"]:
        scaled["grid"]["epochs"] = sorted({scaled_epochs(e, scale) for e in scaled["grid"]["epochs"]})
    for section in ("grid", "classical"):
        if config.get(section, {}).get("size"):
            scaled[section] = {**scaled[section],
                               "size": sorted({scaled_size(s, scale, smoke_min_size()) for s in scaled[section]["size"]})}
    for name, variant in config["variants"].items():
        scaled["variants"][name] = {**variant, **({"per_class": max(20, round(variant["per_class"] * scale))}
                                                  if variant.get("per_class") else {})}
    for name, dataset in config["datasets"].items():
        synthetic = dataset.get("synthetic")
        if synthetic:
            dataset = {**dataset, "synthetic": {**synthetic, "cells_per_subject": max(
                10, round(synthetic.get("cells_per_subject", 50) * scale))}}
        scaled["datasets"][name] = dataset
    return scaled
