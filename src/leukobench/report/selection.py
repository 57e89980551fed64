"""Which trials the report shows, and how it names them: tables computed from the report's metrics.

k-fold trials collapsed over their folds, the best configuration of each model (chosen on the
validation split), short model labels, the speed/quality Pareto front and the subject-vs-random
pairs of the leakage figure, as pandas objects that :mod:`leukobench.report.tables` writes and
:mod:`leukobench.report.figures` draws. Nothing here draws or writes. Bad input raises
``ValueError`` naming the missing column.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from scipy import stats

from leukobench.keys import TRIAL_KEYS
from leukobench.learned import LEARNED
from leukobench.metrics import (INTERVAL_COLUMNS, MAJORITY_RATE, METRIC_NAMES, METRIC_NOTE, SALIENCY_COLUMNS,
                                checked_frame)
from leukobench.score_variants import VARIANT_SETTINGS, row_columns, table_groups

MODEL_NAME_COLUMNS = ("approach", "model", "features", "classifier")  # what the short label of a trial names
SPLIT_METHOD_NAMES = {"subject": "subject-disjoint", "random": "cell-level random"}
MODEL_KEYS = ("approach", "dataset", "split_method", "variant", "model", "features", "classifier")
HYPERPARAMETERS = ("size", "optimizer", "learning_rate", "loss", "epochs", "batch_size", "seed")
SELECTION_METRIC = "accuracy"
CONFIDENCE = 0.95
TABLE_METRICS = ("accuracy", "precision", "recall", "f1", "auc", "sensitivity", "specificity", "ece", "brier")
# how many of a row's trainings (one; or its folds, its seeds) did not learn (metrics.csv's learned,
# leukobench.learned); empty where metrics.csv has no verdict
DID_NOT_LEARN = "did_not_learn"


def format_value(value: object) -> str:
    """A key's value as a label shows it: floats by ``:g`` (``0.001``, ``20``), others as text."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def did_not_learn(learned: pd.Series) -> pd.Series:
    """Per row of metrics.csv, 1 where the trial did not learn, 0 where it did, NaN where the table
    says nothing (``learned`` empty, or read back as text)."""
    verdicts = learned.map(lambda value: {"true": 0.0, "false": 1.0}.get(str(value).strip().lower(), np.nan))
    return verdicts.astype(float)


def did_not_learn_text(row: pd.Series) -> str:
    """A row's :data:`DID_NOT_LEARN` in words: ``did not learn`` (one trial), ``2 of 3 seeds did not
    learn``, ``1 of 10 folds did not learn``; empty when every training learned or nothing is known."""
    count = row.get(DID_NOT_LEARN)
    if count is None or pd.isna(count) or count == 0:
        return ""
    seeds, folds = (int(value) if pd.notna(value := row.get(key, 1)) else 1 for key in ("seeds", "folds"))
    if seeds * folds == 1:
        return "did not learn"
    if folds == 1:
        return f"{int(count)} of {seeds} seeds did not learn"
    if seeds == 1:
        return f"{int(count)} of {folds} folds did not learn"
    return f"{int(count)} of {seeds * folds} trainings ({seeds} seeds x {folds} folds) did not learn"


def _count_not_learned(group: pd.DataFrame) -> dict:
    """The :data:`DID_NOT_LEARN` and ``learned`` of rows collapsed into one (folds, seeds)."""
    if DID_NOT_LEARN not in group:
        return {}
    count = group[DID_NOT_LEARN].sum(min_count=1)
    return {DID_NOT_LEARN: count, LEARNED: np.nan if pd.isna(count) else bool(count == 0)}


def _formatted_columns(columns: Sequence[str]) -> str:
    return ", ".join(map(repr, columns))


def metric_table(metrics: pd.DataFrame, metric: str, numeric: Sequence[str] = (),
                 other: Sequence[str] = ()) -> pd.DataFrame:
    """``metrics`` checked to hold ``metric`` with its interval, ``numeric`` and ``other`` columns."""
    bounds = (metric, f"{metric}_low", f"{metric}_high")
    if not isinstance(metrics, pd.DataFrame):
        raise ValueError(f"metrics must be a pandas DataFrame, got {type(metrics).__name__}")
    missing = [column for column in (*bounds, *numeric, *other) if column not in metrics.columns]
    if missing:
        raise ValueError(f"metrics lacks column(s) {_formatted_columns(missing)}; it has {list(metrics.columns)}")
    return checked_frame(metrics, "metrics", (*bounds, *numeric))


def model_labels(metrics: pd.DataFrame) -> pd.Series:
    """Short label of each row: approach, model (or features) and classifier.

    E.g. ``"cnn varol_cnn1"``, ``"hybrid varol_cnn1 + svm"``, ``"classical hog_pca + lr"``; a
    column the table lacks or a NaN (a key this kind of trial does not have) is left out.
    """
    if "approach" not in metrics.columns:
        raise ValueError(f"metrics lacks column 'approach'; it has {list(metrics.columns)}")

    def value(row: pd.Series, column: str) -> str | None:
        item = row.get(column)
        return None if item is None or pd.isna(item) else format_value(item)

    labels = []
    for _, row in metrics.iterrows():
        name = value(row, "model") or value(row, "features")
        label = " ".join(part for part in (value(row, "approach"), name) if part)
        classifier = value(row, "classifier")
        labels.append(f"{label} + {classifier}" if classifier else label)
    return pd.Series(labels, index=metrics.index, dtype=object)


def pareto_front(metrics: pd.DataFrame, metric: str = "accuracy") -> pd.Series:
    """Whether each row is on the speed/``metric`` Pareto front.

    A row is on the front when no other row is at least as fast (``images_per_second``) and at
    least as good on ``metric``, and strictly better in one of the two. Rows with a missing or
    non-positive speed or a missing ``metric`` are never on the front. Returns a boolean Series
    aligned with ``metrics``.
    """
    missing = [column for column in (metric, "images_per_second") if column not in metrics.columns]
    if missing:
        raise ValueError(f"metrics lacks column(s) {_formatted_columns(missing)}; it has {list(metrics.columns)}")
    speed = pd.to_numeric(metrics["images_per_second"], errors="coerce").to_numpy(dtype=float)
    score = pd.to_numeric(metrics[metric], errors="coerce").to_numpy(dtype=float)
    valid = np.isfinite(speed) & (speed > 0) & np.isfinite(score)
    speed, score = np.where(valid, speed, -np.inf), np.where(valid, score, -np.inf)
    at_least = (speed[None, :] >= speed[:, None]) & (score[None, :] >= score[:, None])
    better = (speed[None, :] > speed[:, None]) | (score[None, :] > score[:, None])
    dominated = (at_least & better & valid[None, :]).any(axis=1)
    return pd.Series(valid & ~dominated, index=metrics.index, name="pareto_front")


def leakage_pairs(metrics: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Pairs of trials that differ only in ``split_method`` (``subject`` vs ``random``).

    Trials are matched on every trial key the table has (:data:`leukobench.keys.TRIAL_KEYS`, and
    ``split`` when present) except ``split_method``, a missing value matching a missing value.
    A trial without a partner is left out. Returns one row per pair: the keys, ``label`` (the
    short model label and the keys that vary between pairs), ``subject``, ``subject_low``,
    ``subject_high``, ``random``, ``random_low``, ``random_high`` and ``difference`` (random −
    subject), largest difference first. Raises ValueError when a key combination repeats
    within one split method (the pairing would be ambiguous).
    """
    table = metric_table(metrics, metric, other=("split_method",))
    keys = [key for key in (*TRIAL_KEYS, "split") if key in table.columns and key != "split_method"]
    bounds = {metric: "", f"{metric}_low": "_low", f"{metric}_high": "_high"}
    parts = []
    for method in SPLIT_METHOD_NAMES:
        part = table[table["split_method"] == method]
        repeated = part.duplicated(keys, keep=False) if keys else pd.Series(len(part) > 1, index=part.index)
        if repeated.any():
            raise ValueError(f"metrics has {int(repeated.sum())} split_method={method!r} rows sharing all trial keys "
                             f"({', '.join(keys)}); cannot pair them unambiguously")
        parts.append(part[[*keys, *bounds]].rename(columns={c: method + s for c, s in bounds.items()}))
    pairs = parts[0].merge(parts[1], on=keys, how="inner") if keys else parts[0].merge(parts[1], how="cross")
    pairs = pairs.assign(difference=pairs["random"] - pairs["subject"])
    pairs = pairs.sort_values("difference", ascending=False, kind="stable").reset_index(drop=True)
    return pairs.assign(label=_pair_labels(pairs, keys)) if len(pairs) else pairs.assign(label=pd.Series(dtype=object))


def _pair_labels(pairs: pd.DataFrame, keys: list[str]) -> list[str]:
    named = "approach" in pairs.columns
    base = list(model_labels(pairs)) if named else [""] * len(pairs)
    varying = [key for key in keys if (key not in MODEL_NAME_COLUMNS or not named)
               and pairs[key].nunique(dropna=True) > 1]  # NaN: a key this kind of trial does not have
    labels = []
    for head, (_, row) in zip(base, pairs.iterrows()):
        extra = ", ".join(f"{key}={format_value(row[key])}" for key in varying if not pd.isna(row[key]))
        labels.append(", ".join(part for part in (head, extra) if part) or "pair")
    return labels


# ----------------------------------------------------------------------------- folds


def trial_keys(metrics: pd.DataFrame, without: tuple[str, ...] = ()) -> list[str]:
    return [key for key in TRIAL_KEYS if key in metrics and key not in without]


def cell_level(metrics: pd.DataFrame) -> pd.DataFrame:
    """The rows of metrics.csv about the trials' images (``level`` ``cell``) and their scores as given
    (``calibration`` ``none``), which the grid's figures and tables show; the subject-level and the
    temperature-scaled rows are left out (a table without those columns is all such rows)."""
    rows = metrics[_plain(metrics)]
    if "level" in rows:
        rows = rows[rows["level"] == "cell"]
    return rows.drop(columns=["level", "subject_aggregation", *row_columns()], errors="ignore")


def collapse_folds(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per trial and split, k-fold trials averaged over their folds (see the module docstring).

    Adds ``folds`` (1 for a trial without folds), ``<metric>_sd`` (NaN without folds) and, where
    metrics.csv says whether the trials learned, :data:`DID_NOT_LEARN` (how many of the folds did not).
    """
    table = metrics.copy()
    table["folds"] = 1
    if LEARNED in table:
        table[DID_NOT_LEARN] = did_not_learn(table[LEARNED])
    for name in METRIC_NAMES:
        table[f"{name}_sd"] = np.nan
    if "fold" not in table or table["fold"].isna().all():
        return table.drop(columns=["fold"], errors="ignore")
    plain_rows = table[table["fold"].isna()].drop(columns=["fold"])
    keys = [*trial_keys(table, without=("fold",)), "split"]
    collapsed = []
    for key, group in table[table["fold"].notna()].groupby(keys, dropna=False, sort=False):
        row = dict(zip(keys, key))
        k = len(group)
        row.update(folds=k, n=int(group["n"].sum()), leaky=bool(group.get("leaky", pd.Series([False])).any()),
                   **_count_not_learned(group))
        if MAJORITY_RATE in group:  # the folds' rates weighted by their test images
            row[MAJORITY_RATE] = float((group[MAJORITY_RATE] * group["n"]).sum() / group["n"].sum())
        for column in ("train_seconds", "predict_seconds", "images_per_second"):
            if column in group:
                row[column] = group[column].mean()
        half = stats.t.ppf(0.5 + CONFIDENCE / 2, k - 1) / np.sqrt(k) if k > 1 else np.nan
        for name in METRIC_NAMES:
            values = group[name].astype(float)
            mean, sd = values.mean(), values.std(ddof=1) if k > 1 else np.nan
            # every metric lies in [0, 1]; a t-interval over few folds can reach past either end
            row.update({name: mean, f"{name}_sd": sd, f"{name}_low": max(0.0, mean - half * sd),
                        f"{name}_high": min(1.0, mean + half * sd)})
        collapsed.append(row)
    return pd.concat([plain_rows, pd.DataFrame(collapsed)], ignore_index=True)


def collapse_seeds(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration and split: a configuration trained with several seeds
    (``repeats``) is their mean, with ``seeds`` (how many), ``<metric>_sd`` and the range over the
    seeds in ``<metric>_min`` / ``<metric>_max``; its ``seed`` is empty. Its ``_low`` / ``_high``
    are then a t-interval of the mean over the seeds (training randomness), not a bootstrap interval
    over test images. A configuration with one seed keeps its row (``seeds`` 1). Where metrics.csv
    says whether the trials learned, :data:`DID_NOT_LEARN` counts the seeds (trainings) that did not:
    they stay in the mean, which is the recipe's reliability."""
    table = metrics.copy()
    table["seeds"] = 1
    if LEARNED in table and DID_NOT_LEARN not in table:
        table[DID_NOT_LEARN] = did_not_learn(table[LEARNED])
    if "seed" not in table or table.empty:
        return table
    keys = [*trial_keys(table, without=("seed", "fold")), *(["folds"] if "folds" in table else []), "split"]
    counts = table.groupby(keys, dropna=False)["seed"].transform("nunique")
    collapsed = []
    for key, group in table[counts > 1].groupby(keys, dropna=False, sort=False):
        k = len(group)
        row = {**dict(zip(keys, key)), "seed": np.nan, "seeds": k, "n": int(group["n"].iloc[0]),
               "leaky": bool(group.get("leaky", pd.Series([False])).any()), **_count_not_learned(group)}
        if MAJORITY_RATE in group:  # the seeds' split is the same
            row[MAJORITY_RATE] = group[MAJORITY_RATE].iloc[0]
        for column in ("train_seconds", "predict_seconds", "images_per_second"):
            if column in group:
                row[column] = group[column].mean()
        half = stats.t.ppf(0.5 + CONFIDENCE / 2, k - 1) / np.sqrt(k)
        for name in METRIC_NAMES:
            values = group[name].astype(float)
            mean, sd = values.mean(), values.std(ddof=1)
            row.update({name: mean, f"{name}_sd": sd, f"{name}_min": values.min(), f"{name}_max": values.max(),
                        f"{name}_low": max(0.0, mean - half * sd), f"{name}_high": min(1.0, mean + half * sd)})
        collapsed.append(row)
    return pd.concat([table[counts == 1], pd.DataFrame(collapsed)], ignore_index=True)


# ----------------------------------------------------------------------------- best configurations


def best_configurations(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per model (see ``MODEL_KEYS``) the configuration with the best validation accuracy, with its
    test metrics; ``selected_on`` says which split chose it, ``selection`` is the accuracy it was
    chosen on, and ``configurations`` how many competed. A configuration trained with several seeds
    competes with its mean over them (:func:`collapse_seeds`), so no lucky seed wins on validation;
    seeds that did not learn stay in that mean (a recipe that often fails to start is less reliable),
    and :data:`DID_NOT_LEARN` counts them beside it."""
    summary = collapse_seeds(collapse_folds(metrics))
    keys = trial_keys(summary)
    test = summary[summary["split"] == "test"].set_index(keys, drop=False)
    val = summary[summary["split"] == "val"].set_index(keys)[SELECTION_METRIC]
    test = test.assign(selection=val.reindex(test.index).to_numpy())
    test["selected_on"] = np.where(test["selection"].notna(), "val", "test")
    test["selection"] = test["selection"].fillna(test[SELECTION_METRIC])
    test = test.reset_index(drop=True)
    groups = [key for key in MODEL_KEYS if key in test]
    best = []
    for _, group in test.groupby(groups, dropna=False, sort=True):
        chosen = group.sort_values(["selection", SELECTION_METRIC], ascending=False, kind="stable").iloc[0]
        best.append({**chosen.to_dict(), "configurations": len(group)})
    columns = [*groups, *(k for k in HYPERPARAMETERS if k in test), "selected_on", "selection", "configurations", "folds",
               "seeds", "n", MAJORITY_RATE, DID_NOT_LEARN, *(f"{m}{s}" for m in TABLE_METRICS for s in ("", "_low", "_high", "_sd", "_min", "_max")),
               *INTERVAL_COLUMNS, "leaky",
               *SALIENCY_COLUMNS]
    return pd.DataFrame(best, columns=[c for c in columns if c in test or c == "configurations"])


def trial_folders(metrics: pd.DataFrame, chosen: pd.Series) -> list[str]:
    """The folders of the trials behind a row of :func:`best_configurations` (one per fold for k-fold,
    one per seed for a configuration of several seeds)."""
    test = metrics[metrics["split"] == "test"]
    mask = pd.Series(True, index=test.index)
    for key in trial_keys(test, without=("fold", "seed") if chosen.get("seeds", 1) > 1 else ("fold",)):
        value = chosen.get(key)
        mask &= test[key].isna() if pd.isna(value) else test[key] == value
    return sorted(test.loc[mask, "trial"])


OVERLAID_TRIALS = 10  # at most this many best trials in one overlay figure


def best_trials_of_dataset(metrics: pd.DataFrame, dataset: str) -> list[tuple[str, list[str]]]:
    """The trials the overlay figures of a dataset show (ROC, reliability): of each model, the
    variant whose best configuration did best on validation, on the subject-disjoint split where
    the run has one, at most :data:`OVERLAID_TRIALS`; each as its label and its trial folders."""
    metrics = metrics[metrics["dataset"] == dataset]
    best = best_configurations(metrics)
    if (best["split_method"] == "subject").any():
        best = best[best["split_method"] == "subject"]  # the leakage-free split, where there is one
    best = best.sort_values("selection", ascending=False)
    best["model_label"] = model_labels(best).to_numpy()
    models = ["approach", *(k for k in ("model", "features", "classifier") if k in best)]
    chosen = best.groupby(models, dropna=False, sort=False).head(1).head(OVERLAID_TRIALS)
    return [(f"{row['model_label']} ({row['split_method']}, {row['variant']}, {row['size']:.0f} px"
             + (f", seed {_first_seed(metrics, row)} of {row['seeds']})" if row.get("seeds", 1) > 1 else ")"),
             _first_seed_folders(metrics, row)) for _, row in chosen.iterrows()]


def _first_seed(metrics: pd.DataFrame, chosen: pd.Series) -> int:
    folders = set(trial_folders(metrics, chosen))
    return int(metrics.loc[metrics["trial"].isin(folders), "seed"].min())


def _first_seed_folders(metrics: pd.DataFrame, chosen: pd.Series) -> list[str]:
    """The figures of one trial's test images show a configuration of several seeds by its first seed."""
    folders = trial_folders(metrics, chosen)
    if chosen.get("seeds", 1) <= 1:
        return folders
    first = metrics[metrics["trial"].isin(folders) & (metrics["seed"] == _first_seed(metrics, chosen))]
    return sorted(set(first["trial"]))


def chosen_keras_trials(metrics: pd.DataFrame) -> list[tuple[str, str]]:
    """The Keras trials a reader looks at: the trial behind each best configuration of a Keras model
    (:func:`best_configurations`, chosen on validation; a configuration of several seeds or folds by
    its first seed and fold), each as a name (its model keys but approach and dataset, e.g.
    ``varol_cnn1_subject_balanced``: unique within a dataset) and its folder. What
    ``evaluation.saliency: chosen`` draws Grad-CAM sheets of. ``metrics`` as :func:`cell_level` gives it."""
    keras = metrics[metrics["approach"] == "cnn"] if "approach" in metrics else metrics
    if keras.empty:
        return []
    chosen = []
    for _, row in best_configurations(keras).iterrows():
        name = "_".join(format_value(row[key]) for key in ("model", "split_method", "variant")
                        if key in row and not pd.isna(row[key]))
        chosen.append((name, _first_seed_folders(keras, row)[0]))
    return chosen


SUBJECT_TABLE_METRICS = ("accuracy", "sensitivity", "specificity", "balanced_accuracy", "auc")
SUBJECT_PREFIX = "subject_"  # the best-configuration tables' columns of the subject-level verdicts


def same_trial_prefixes() -> tuple[str, ...]:
    """The prefixes of the best-configuration tables' columns that show another row of the same
    trial: its subject-level verdicts, and the score variants' (:func:`leukobench.score_variants.table_groups`)."""
    return (SUBJECT_PREFIX, *(group.prefix for group in table_groups()))


def score_variant_columns() -> tuple[str, ...]:
    """The metric columns the best-configuration tables show of the score variants' rows
    (``calibrated_ece``, ``tta_accuracy``, ...), in :func:`leukobench.score_variants.table_groups` order."""
    return tuple(f"{group.prefix}{name}" for group in table_groups() for name in group.metrics)


def score_variant_legend() -> str:
    """What the score variants' columns of the best-configuration tables show, for their legend."""
    return "; ".join(f"{group.prefix}*: {group.label}" for group in table_groups())


def _plain(metrics: pd.DataFrame) -> pd.Series:
    """The rows of the scores as the trials gave them (no score variant: not temperature-scaled, no
    test-time augmentation)."""
    plain = pd.Series(True, index=metrics.index)
    for column in VARIANT_SETTINGS:
        if column in metrics:
            plain &= metrics[column].fillna("none") == "none"
    return plain


def _with_same_trial_rows(best: pd.DataFrame, metrics: pd.DataFrame, rows: pd.DataFrame, prefix: str,
                         names: Sequence[str], extra: dict[str, str]) -> pd.DataFrame:
    """``best`` with, per chosen trial, ``<prefix><metric>`` (and ``_low``, ``_high``,
    ``<prefix>interval_note``, ``<prefix>metric_note``) of its test row among ``rows``, and the ``extra`` columns (name: the
    row's column). A configuration of several seeds gets the mean over its seeds' rows, without an
    interval (the note says so). Empty where the trial has no such row or is a k-fold configuration
    (each fold's rows are in metrics.csv)."""
    rows = rows[rows["split"] == "test"].set_index("trial")
    trials = cell_level(metrics)
    columns = [f"{name}{end}" for name in names for end in ("", "_low", "_high")] + ["interval_note", METRIC_NOTE]
    values = []
    for _, chosen in best.iterrows():
        folders = trial_folders(trials, chosen)
        found = rows.loc[folders[0]] if len(folders) == 1 and folders[0] in rows.index else None
        if chosen.get("seeds", 1) > 1 and set(folders) <= set(rows.index):
            seeds = rows.loc[folders]
            found = seeds.iloc[0].copy()
            for column in (*names, *extra.values()):
                if pd.api.types.is_numeric_dtype(seeds[column]):
                    found[column] = seeds[column].mean()
            found[[f"{name}{end}" for name in names for end in ("_low", "_high")]] = np.nan
            found["interval_note"] = f"mean over {len(folders)} seeds"
        value = {name: np.nan if found is None else found[column] for name, column in extra.items()}
        value |= {f"{prefix}{c}": np.nan if found is None else found.get(c, np.nan) for c in columns}
        values.append(value)
    return pd.concat([best.reset_index(drop=True), pd.DataFrame(values)], axis=1)


def with_subject_level(best: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """The best configurations (chosen at the cell level) with the subject-level test metrics of the
    same trial: ``subjects`` (how many were judged) and ``subject_<metric>`` with ``_low``/``_high``
    and ``subject_interval_note``. Empty where the trial has no subject level (its images name no
    subject) or is a k-fold configuration."""
    if "level" not in metrics or not (metrics["level"] == "subject").any():
        return best
    rows = metrics[(metrics["level"] == "subject") & _plain(metrics)]
    return _with_same_trial_rows(best, metrics, rows, SUBJECT_PREFIX, SUBJECT_TABLE_METRICS, {"subjects": "n"})


def with_score_variants(best: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """The best configurations with, for each score variant the run evaluated, the same trial's test
    metrics of those scores as its table columns declare (:func:`leukobench.score_variants.table_groups`):
    e.g. ``calibrated_ece`` and ``calibrated_brier`` after temperature scaling, with the
    ``temperature``; ``tta_accuracy`` and ``tta_auc`` under test-time augmentation (Keras trials
    only), with its views (``tta``); each with intervals and notes. A variant the run has no rows of
    adds no columns."""
    for group in table_groups():
        if group.setting not in metrics:
            continue
        rows = metrics[metrics[group.setting].isin(group.names)]
        if rows.empty:
            continue
        if "level" in rows:
            rows = rows[rows["level"] == "cell"]
        best = _with_same_trial_rows(best, metrics, rows, group.prefix, group.metrics, group.columns)
    return best


def seed_spread(metrics: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """The configurations trained with several seeds: per configuration (every trial key but
    ``seed``) and seed, ``metric`` with its interval, and the configuration's ``label``, sorted by
    the configuration's mean (best first). Empty when no configuration has two seeds."""
    table = metric_table(metrics, metric, other=("seed",))
    keys = trial_keys(table, without=("seed",))
    table = table.assign(seeds=table.groupby(keys, dropna=False)["seed"].transform("nunique"))
    table = table[table["seeds"] > 1].copy()
    if table.empty:
        return table.assign(label=pd.Series(dtype=object), mean=pd.Series(dtype=float))
    varying = [key for key in HYPERPARAMETERS if key in table and key != "seed" and table[key].nunique(dropna=True) > 1]
    varying += [key for key in ("dataset", "split_method", "variant") if key in table and table[key].nunique() > 1]
    labels = model_labels(table)
    for key in varying:
        labels = labels + table[key].map(lambda v, k=key: "" if pd.isna(v) else f", {k} {format_value(v)}")
    table["label"] = labels
    table["mean"] = table.groupby("label")[metric].transform("mean")
    return table.sort_values(["mean", "label", "seed"], ascending=[False, True, True]).reset_index(drop=True)


def datasets_without_subjects(metrics: pd.DataFrame) -> list[str]:
    """The datasets of metrics.csv with no subject-level row: their images name no subject (Aria,
    ALL-IDB), so they have verdicts per image only and intervals resampled image by image."""
    datasets = sorted(set(metrics["dataset"].dropna()))
    if "level" not in metrics:
        return datasets
    judged = set(metrics.loc[metrics["level"] == "subject", "dataset"])
    return [dataset for dataset in datasets if dataset not in judged]
