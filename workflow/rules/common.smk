# Validation and target functions. Everything the rules compute from config lives here.

import re
from pathlib import Path

from snakemake.utils import Paramspace, validate

from leukobench.plan.config import (
    NAME_PATTERN,
    PARTITION_PATTERN,
    SPLIT_METHOD_PATTERN,
    apply_scale,
    check_config,
    classical_trials,
    data_source,
    dataset_path,
    hybrid_trials,
    kaggle_sources,
    ineffective_keys,
    keras_trials,
    parse_partition,
    partition,
    reader_format,
    several_seeds,
    smoke_min_size,
    split_methods,
    training_options,
)
from leukobench.plan.provenance import code_digest, keep_meanings_in, other_entries_modules
from leukobench.score_variants import needs_model_pass
from leukobench.data import kaggle
from leukobench.data.readers import READERS
from leukobench.settings import SETTINGS, write_settings
from leukobench.models import MODELS
from leukobench.models import weights as keras_weights

# The code digests' parsed modules, kept between plannings beside the code they come from (the checkout's
# .snakemake/): shared by every working directory this checkout plans (--directory), keyed by each text.
keep_meanings_in(Path(workflow.basedir) / ".snakemake")


validate(config, schema="../schemas/config.schema.yaml")
check_config(config)
for message in ineffective_keys(config):
    logger.warning(message)
config = apply_scale(config)

KERAS_TRIALS, EXCLUDED = keras_trials(config)
for message in EXCLUDED:
    logger.warning(message)
TRIALS = Paramspace(KERAS_TRIALS)
TRIAL = f"results/trials/{TRIALS.wildcard_pattern}"
HYBRIDS = Paramspace(hybrid_trials(config, KERAS_TRIALS))
HYBRID = f"results/hybrid/{HYBRIDS.wildcard_pattern}"
KERAS_MODELS = set(KERAS_TRIALS.get("model", []))
HYBRID_MODELS = set(HYBRIDS.dataframe.get("model", []))  # their trials' training also writes conv features
CLASSICALS = Paramspace(classical_trials(config))
CLASSICAL = f"results/classical/{CLASSICALS.wildcard_pattern}"
STORE = "results/{dataset}/store/{partition}/{variant}/{size}px.parquet"  # written by store, read by every trial
FEATURES = "results/{dataset}/features/{partition}/{variant}/{size}px_{features}.parquet"
METRICS = "results/report/metrics.csv"  # written by aggregate, read by every report rule
TRIAL_LABELS = {"model": "{model}", "size": "{size} px", "trial": TRIALS.wildcard_pattern}  # a Keras trial's report figures


wildcard_constraints:
    dataset=NAME_PATTERN,
    split_method=SPLIT_METHOD_PATTERN,
    fold=r"\d+",
    partition=PARTITION_PATTERN,
    variant=NAME_PATTERN,
    size=r"\d+",
    features=r"[a-z_]+",
    owner=r"[A-Za-z0-9_-]+",  # a Kaggle dataset's owner and name (leukobench.data.kaggle.HANDLE_PATTERN)
    slug=r"[A-Za-z0-9_.-]+",


def one_of(names):
    """A wildcard constraint matching exactly these names (none: matching nothing)."""
    return "|".join(re.escape(name) for name in sorted(names)) or "(?!)"


# The CPU threads of every job that computes a result with TensorFlow or BLAS (a Keras training or pass, the
# PCA of HOG features; the fits below): their reductions split a sum by thread, so the count is part of what the
# job computes (a Keras training at 1 and at 2 threads ends on other weights). Such a job asks for these
# threads (`threads:`) and computes with them (`params: compute_threads`, the count its script uses)
# whatever the run grants it (--cores 1, --max-threads, a SLURM node's cores): the same numbers on every
# machine, and a change of the count here reruns them (the `params` trigger).
COMPUTE_THREADS = 2
# The hybrid and classical fits (scikit-learn) compute with one: most of such a job is starting Python and
# reading its features, so at one thread two of them (or a fit and an evaluation) share two cores.
FIT_THREADS = 1


WHOLE_GPU = 1_000_000  # more slots than any run has: Snakemake caps a job's request at the run's total


def gpu_slots(wildcards):
    """A Keras job's share of the run's `gpu` resource (the jobs that may hold the GPU at once): one
    slot for the studies' small CNNs; every slot for a transfer model (VGG, ResNet, DenseNet: large
    at any size), which Snakemake caps at the slots the run has, so it holds the GPU alone."""
    return WHOLE_GPU if MODELS.attribute(wildcards.model, "transfer") else 1


def trial_parameters(space):
    """A params function giving a job its trial's parameters: as Paramspace.instance, from a table
    built once (instance builds a pandas Series per call; a 1,500-job dry run spent 1.5 s on it),
    as plain Python values (to_dict gives int, float, str, not numpy scalars), ready for JSON."""
    rows = dict(zip(space.instance_patterns, space.dataframe.to_dict("records")))

    def parameters_of_trial(wildcards):
        return rows[space.wildcard_pattern.format(**dict(wildcards.items()))]

    return parameters_of_trial


def code_of(script, leaving_out=frozenset()):
    """The digest of a rule's script and the leukobench modules it imports: a change reruns the rule
    (less the modules ``leaving_out`` names: the other entries of a registry, see ingest_code)."""
    return code_digest(Path(workflow.basedir) / "workflow" / "scripts" / f"{script}.py", leaving_out=leaving_out)


def training_code(wildcards):
    """The train rule's digest for the trial's model: its script and what it reaches, less the other
    families of builders (the modules of the registry's other models, as ingest_code leaves out the
    other readers): editing one family retrains its models only."""
    return code_of("train", other_entries_modules(MODELS, wildcards.model))


def settings_of(name, section):
    """An input function: the config text ``section(wildcards)`` gives (names, notes, patterns) as
    the file results/settings/<name>.json, written here at planning time when its content changed
    (leukobench.settings). Free text from the config never goes into `params:`, which Snakemake
    pastes unescaped into a <script> of report.html; as an input it reruns the jobs that read it."""

    def settings_file(wildcards):
        return write_settings(SETTINGS.format(name=name.format(**dict(wildcards.items()))), section(wildcards))

    return settings_file


def dataset_config(wildcards):
    return config["datasets"][wildcards.dataset]


def dataset_source(wildcards):
    """Where the dataset is downloaded from, url and sha256 (a URL is free text, so a settings file)."""
    return {"url": dataset_config(wildcards)["url"], "sha256": dataset_config(wildcards).get("sha256")}


def dataset_format(wildcards):
    """The reader of the dataset's raw files (``synthetic`` for a generated one or a stand-in)."""
    return reader_format(dataset_config(wildcards))


def ingest_code(wildcards):
    """The code digest of a dataset's ingest: its script, the readers' shared part and the reader of the
    dataset's format, not the other layouts' readers (an edit of the Aria reader reruns no C-NMC ingest)."""
    return code_of("ingest", other_entries_modules(READERS, dataset_format(wildcards)))


def max_pixels(wildcards):
    """ingest.max_pixels: the images ingest rejects undecoded, and the ones a store refuses to decode."""
    return config["ingest"]["max_pixels"]


def raw_folder(wildcards):
    """Where the reader finds the raw files: generated, downloaded, fetched from Kaggle, or the configured path."""
    dataset = dataset_config(wildcards)
    if reader_format(dataset) == "synthetic":
        return f"resources/synthetic/{wildcards.dataset}"
    if data_source(dataset) == "url":
        return f"resources/raw/{wildcards.dataset}"
    if data_source(dataset) == "kaggle":
        return kaggle.files_folder(dataset["kaggle"])
    return dataset_path(dataset)


def kaggle_receipt(wildcards):
    """Ingest's second input for a dataset fetched from Kaggle: the receipt, written once the tree is
    complete (a fetch again, of another version, so reruns ingest and what follows); none otherwise."""
    dataset = dataset_config(wildcards)
    if reader_format(dataset) == "synthetic" or data_source(dataset) != "kaggle":
        return []
    return kaggle.receipt_file(dataset["kaggle"])


KAGGLE_SOURCES = kaggle_sources(config["datasets"])  # owner/slug -> (handle as configured, the datasets reading it)


def kaggle_version(wildcards):
    """The fetch's param: the version to fetch, latest or N (leukobench.data.kaggle.version_param). Only
    another version changes it, and reruns the fetch, ingest and everything after: not a pin of the
    version already fetched, nor another config dataset reading the same Kaggle dataset."""
    handle, _ = KAGGLE_SOURCES[f"{wildcards.owner}/{wildcards.slug}"]
    return kaggle.version_param(handle)


def kaggle_handles(wildcards):
    """Every Kaggle dataset of the config, as configured (the rule kaggle_versions compares each with Kaggle)."""
    return [handle for handle, _ in KAGGLE_SOURCES.values()]


def data_targets():
    """What `snakemake fetch` makes: the manifest of every dataset the grid reads (fetched, unpacked,
    ingested), nothing trained."""
    return [f"results/{name}/manifest.parquet" for name in evaluated_datasets()]


def reader_options(wildcards):
    """The reader's options (class names, patient pattern: free text, a settings file, see settings_of);
    a synthetic stand-in is read by the synthetic reader, which takes none."""
    dataset = dataset_config(wildcards)
    return {} if reader_format(dataset) == "synthetic" else dataset.get("options", {})


def synthetic_spec(wildcards):
    dataset = dataset_config(wildcards)
    if reader_format(dataset) != "synthetic":
        raise ValueError(f"dataset '{wildcards.dataset}' is not synthetic; it is read from its {data_source(dataset)}")
    return dataset["synthetic"]


def preparation(wildcards):
    """The store's parameters: the variant's settings and the size of this store, nothing else."""
    return {**config["variants"][wildcards.variant], "size": int(wildcards.size)}


def has_validation_split(wildcards):
    """Whether the splits hold a val part (split.ratios.val > 0)."""
    return config["split"]["ratios"]["val"] > 0


def split_options(wildcards):
    return {**config["split"], "method": wildcards.split_method}


def splits_of_partition(wildcards):
    return f"results/{wildcards.dataset}/splits/{parse_partition(wildcards.partition)[0]}.parquet"


def fold_of_partition(wildcards):
    return parse_partition(wildcards.partition)[1]


def partition_of_trial(wildcards):
    return partition(wildcards.split_method, getattr(wildcards, "fold", None))


def features_of_trial(wildcards):
    return FEATURES.format(**dict(wildcards.items()), partition=partition_of_trial(wildcards))


def store_of_trial(wildcards):
    return STORE.format(**dict(wildcards.items()), partition=partition_of_trial(wildcards))


def keras_training(wildcards):
    """The training: options the trial's model takes (leukobench.plan.config.training_options): changing
    training.weights or training.trainable_layers reruns the transfer-model trials only, a recipe option
    (training.augmentation, lr_schedule, warmup_epochs, label_smoothing) the reference models' trials only,
    training.weight_decay the adamw trials only. A settings file per model and optimizer (training.weights
    may be a file's path, free text; see settings_of), so an edit reruns exactly the trials it reaches."""
    return training_options(config["training"], wildcards.model, wildcards.optimizer)


IMAGENET = "resources/imagenet/{weights_file}.json"  # written by imagenet_weights once Keras' file is in place and checked


def imagenet_application(model):
    """The keras.applications base whose ImageNet weights the trials of ``model`` load (training.weights:
    imagenet, and a builder that takes weights), else None."""
    if training_options(config["training"], model)["model_options"].get("weights") != "imagenet":
        return None
    return MODELS.attribute(model, "application")


IMAGENET_FILES = {app.weights_file: app for app in map(imagenet_application, sorted(KERAS_MODELS)) if app is not None}


def imagenet_receipt(wildcards):
    """A Keras trial's input: the receipt of the ImageNet weights file its model loads (none without).
    Ancient: fetching again (a new training.weights_url or weights_folder, an edit of the fetching
    code) retrains nothing; the file is Keras' own, checked by its hash."""
    application = imagenet_application(wildcards.model)
    return [] if application is None else ancient(IMAGENET.format(weights_file=application.weights_file))


def imagenet_source(wildcards):
    """What imagenet_weights fetches, as a settings file (a URL and a folder are free text);
    url, training.weights_url + the application's folder + the file, as keras.applications builds it;
    file_hash, Keras' own hash of the file (md5 or sha256); folder, training.weights_folder (~ and
    $VARIABLES expanded here; null: Keras' cache of this machine)."""
    application = IMAGENET_FILES[wildcards.weights_file]
    return {
        "url": keras_weights.weights_url(application.url_folder, application.weights_file,
                                         config["training"]["weights_url"]),
        "file_hash": keras_weights.keras_file_hash(wildcards.weights_file),
        "folder": str(keras_weights.weights_folder(config["training"].get("weights_folder"))),
    }


def pretrained_models(wildcards):
    """The grid's models whose trials start from pretrained weights (training.weights imagenet or a
    file, for a builder that takes weights): the comparison figure marks their trials (hybrid ones too)."""
    return sorted(model for model in KERAS_MODELS
                  if training_options(config["training"], model)["model_options"].get("weights") is not None)


# Each evaluation: setting reaches only the jobs it changes (a change reruns those alone): the bootstrap,
# subject verdicts and calibration every trial's evaluation; tta the Keras trials' inspection pass and their
# evaluations (hybrid and classical trials have no test-time augmentation); saliency which Grad-CAM jobs run.
EVALUATION_OPTIONS = ("bootstrap", "seed", "min_interval_groups", "subject_aggregation", "calibration")
SALIENCY = config["evaluation"]["saliency"]  # none | chosen | all (leukobench.learn.saliency.SALIENCY_MODES)
TTA = config["evaluation"]["tta"]  # none, or a score variant of setting tta (leukobench.score_variants)
TTA_PASS = needs_model_pass(TTA)  # its scores need the Keras trials' models run again (rule tta, or inspect)


def evaluation_options(wildcards):
    """evaluation: what every trial's evaluation takes, whatever its approach: the bootstrap of its intervals
    (resamples, seed, minimum groups), its subjects' verdicts and its calibration."""
    return {key: config["evaluation"][key] for key in EVALUATION_OPTIONS}


def subject_aggregation(wildcards):
    """evaluation.subject_aggregation: how a subject's cells make its verdict (the evaluation's and the report's)."""
    return config["evaluation"]["subject_aggregation"]


def published_results(wildcards):
    """published: the study's numbers, names and notes (free text: a settings file, see settings_of)."""
    return config.get("published", {})


def trial_files(name):
    """One path per trial of every kind (Keras, hybrid, classical), e.g. every metrics.json."""
    return [
        f"results/{kind}/{trial}/{name}"
        for kind, space in (("trials", TRIALS), ("hybrid", HYBRIDS), ("classical", CLASSICALS))
        for trial in space.instance_patterns
    ]


def features_of_hybrid(wildcards):
    """The conv features of the Keras trial a hybrid trial uses (its wildcards minus the classifier)."""
    return f"{TRIAL}/features.parquet".format(**wildcards)


def of_dataset(name):
    """An input function: ``name`` (e.g. predictions.parquet) of every trial of the job's dataset."""

    def files(wildcards):
        return [path for path in trial_files(name) if f"/dataset~{wildcards.dataset}/" in path]

    return files


def tta_mode(wildcards):
    """evaluation.tta: the views a Keras trial's test-time augmentation averages (none: no such pass)."""
    return TTA


def tta_predictions(wildcards):
    """A Keras trial's test-time-augmented predictions, which its evaluation reads beside the plain ones."""
    return [f"{TRIAL}/predictions_tta.parquet".format(**wildcards)] if TTA_PASS else []


def inspect_outputs():
    """The outputs of a Keras trial's one inspection job (evaluation.saliency all: the inspect rule): its Grad-CAM
    summary and the panels of its sheet (drawn by rule saliency_sheet), and with evaluation.tta its
    test-time-augmented predictions, from one model load."""
    outputs = {"summary": f"{TRIAL}/saliency.json", "panels": f"{TRIAL}/saliency_panels.npz"}
    return outputs | ({"tta": f"{TRIAL}/predictions_tta.parquet"} if TTA_PASS else {})


def keras_datasets():
    return sorted(set(KERAS_TRIALS.get("dataset", [])))


def keras_trials_of(dataset):
    """The Keras trials of ``dataset``: (folder pattern, parameters), in the grid's order."""
    return [(trial, row) for trial, row in zip(TRIALS.instance_patterns, TRIALS.dataframe.to_dict("records"))
            if row["dataset"] == dataset]


def keras_trials_of_dataset(name):
    """An input function: ``name`` (e.g. model.keras) of every Keras trial of the job's dataset."""

    def files(wildcards):
        return [f"results/trials/{trial}/{name}" for trial, _ in keras_trials_of(wildcards.dataset)]

    return files


def stores_of_keras_trials(wildcards):
    """The store of every Keras trial of the job's dataset, in the order of keras_trials_of_dataset (a store
    is named once per trial that reads it)."""
    return [STORE.format(**row, partition=partition(row["split_method"], row.get("fold")))
            for _, row in keras_trials_of(wildcards.dataset)]


def dataset_gpu_slots(wildcards):
    """gpu_slots of the dataset's job that loads its chosen Keras trials one after the other: the GPU alone
    when one of them may be a transfer model."""
    models = {model for model, dataset in zip(KERAS_TRIALS.get("model", []), KERAS_TRIALS.get("dataset", []))
              if dataset == wildcards.dataset}
    return WHOLE_GPU if any(MODELS.attribute(model, "transfer") for model in models) else 1


def saliency_files(wildcards):
    """The Grad-CAM summaries aggregate joins to metrics.csv: every Keras trial's saliency.json
    (evaluation.saliency: all), or each dataset's summary of its chosen trials (chosen), or none."""
    if SALIENCY == "all":
        return [f"results/trials/{trial}/saliency.json" for trial in TRIALS.instance_patterns]
    if SALIENCY == "chosen":
        return [f"results/report/saliency_best_{dataset}.json" for dataset in keras_datasets()]
    return []


def sample_sheets():
    """The sample sheet of every store a trial of the grid reads (Keras, hybrid through its Keras trial,
    classical): drawn by rule samples, once per store."""
    stores = set()
    for trials in (KERAS_TRIALS, CLASSICALS.dataframe):
        for trial in trials.to_dict("records"):
            stores.add(STORE.format(**trial, partition=partition(trial["split_method"], trial.get("fold"))))
    return sorted(store.removesuffix(".parquet") + "_samples.png" for store in stores)


def evaluated_datasets():
    return sorted({*KERAS_TRIALS.get("dataset", []), *CLASSICALS.dataframe.get("dataset", [])})


def final_outputs():
    """The report: metrics, tables and figures, the stores' sample sheets; the reproduction table when the config has a study's
    published numbers, the leakage figure when trials ran on both split methods, the seeds' spread
    when a configuration trains with several seeds; and every trial's
    model, so that a model deleted from a finished run is trained again by the next run (Snakemake
    rebuilds a missing file only when something asks for it)."""
    outputs = [
        *(f"results/trials/{trial}/model.keras" for trial in TRIALS.instance_patterns),
        *(f"results/trials/{trial}/{figure}.png" for trial in TRIALS.instance_patterns
          for figure in ("roc", "confusion", "training_curves")),  # rule trial_figures
        *(f"results/{kind}/{trial}/classifier.joblib"
          for kind, space in (("hybrid", HYBRIDS), ("classical", CLASSICALS)) for trial in space.instance_patterns),
        METRICS,
        *sample_sheets(),
        *(f"results/trials/{trial}/saliency.png" for trial in TRIALS.instance_patterns if SALIENCY == "all"),  # saliency_sheet
        "results/report/comparison.png",
        "results/report/best_configurations.html",
        "results/report/hyperparameters.png",
        "results/report/accuracy_vs_time.png",
        *(f"results/report/{figure}_best_{dataset}.png" for figure in ("roc", "reliability", "subjects")
          for dataset in evaluated_datasets()),
    ]
    if config.get("published"):
        outputs.append("results/report/reproduction.html")
    if len(split_methods(config)) > 1:
        outputs.append("results/report/leakage.png")
    if several_seeds(KERAS_TRIALS, CLASSICALS.dataframe):
        outputs.append("results/report/seeds.png")
    if SALIENCY == "chosen":
        outputs.extend(f"results/report/saliency_best_{dataset}" for dataset in keras_datasets())
    return outputs
