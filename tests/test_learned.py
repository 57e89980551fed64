"""Whether a trial learned (leukobench.learned): the chance loss, the verdict from a trial's history
and predictions, its place in metrics.json, and tiny trainings that learn, train on shuffled
labels, or diverge, judged from what they wrote by an evaluation that starts no TensorFlow."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import with_shuffled_training_labels
from scipy.optimize import minimize

from leukobench.learn.evaluate import evaluate_predictions
from leukobench.learned import (CHANCE_MARGIN, LEARNED, LEARNED_NOTE, ONE_CLASS_SHARE, chance_loss, judge_keras,
                                judge_predictions, read_history)
from leukobench.predictions import CHANCE_LOSS, prediction_frame, read_predictions, write_predictions

# ----------------------------------------------------------------------------- the chance loss


def constant_answer_loss(answer: np.ndarray, labels: np.ndarray, k: int, *, smoothing=0.0, weighted=False,
                         per_output_binary=False) -> float:
    """The training loss Keras reports for a model answering ``answer`` (class probabilities) for
    every image, written out from the losses' definitions: targets smoothed towards uniform (towards
    1/2 per output for binary cross-entropy), balanced class weights averaged over the batch."""
    onehot = np.eye(k)[labels]
    if per_output_binary:
        targets = onehot * (1 - smoothing) + smoothing / 2
        losses = -(targets * np.log(answer) + (1 - targets) * np.log(1 - answer)).mean(axis=1)
    else:
        targets = onehot * (1 - smoothing) + smoothing / k
        losses = -(targets * np.log(answer)).sum(axis=1)
    counts = np.bincount(labels, minlength=k)
    weights = len(labels) / (np.count_nonzero(counts) * counts[labels]) if weighted else np.ones(len(labels))
    return float((weights * losses).sum() / len(labels))


def best_constant_answer_loss(labels: np.ndarray, k: int, **options) -> float:
    """The lowest loss of any constant answer, found numerically (softmax over free logits)."""
    def loss(logits):
        answer = np.exp(logits - logits.max())
        return constant_answer_loss(np.clip(answer / answer.sum(), 1e-12, 1 - 1e-12), labels, k, **options)

    return min(minimize(loss, start, method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 20000}).fun
               for start in (np.zeros(k), np.log(np.bincount(labels, minlength=k) + 1.0)))


@pytest.mark.parametrize("k, counts", [(2, [50, 50]), (2, [68, 32]), (4, [25, 25, 25, 25]), (4, [40, 30, 20, 10]),
                                       (3, [10, 0, 30])])
@pytest.mark.parametrize("options", [{}, {"smoothing": 0.1}, {"weighted": True}, {"smoothing": 0.2, "weighted": True}],
                         ids=["plain", "smoothing", "class-weights", "both"])
def test_the_chance_loss_is_the_lowest_loss_of_any_constant_answer(k, counts, options):
    labels = np.repeat(np.arange(k), counts)
    expected = best_constant_answer_loss(labels, k, **options)
    got = chance_loss(labels, k, label_smoothing=options.get("smoothing", 0.0), class_weight=options.get("weighted", False))
    assert got == pytest.approx(expected, abs=1e-6)


def test_the_chance_loss_of_balanced_classes_is_ln_k_and_of_binary_cross_entropy_per_output_its_mean():
    assert chance_loss(np.repeat([0, 1], 7), 2) == pytest.approx(math.log(2))
    assert chance_loss(np.repeat(np.arange(4), 9), 4) == pytest.approx(math.log(4))
    assert chance_loss(np.repeat([0, 1], [90, 10]), 2, class_weight=True) == pytest.approx(math.log(2))
    labels = np.repeat(np.arange(4), [40, 30, 20, 10])
    per_output = chance_loss(labels, 4, per_output_binary=True)
    assert per_output == pytest.approx(best_constant_answer_loss(labels, 4, per_output_binary=True), abs=1e-6)
    # smoothed targets of binary cross-entropy over 4 outputs do not sum to 1: a lower bound, never above
    smoothed = chance_loss(labels, 4, per_output_binary=True, label_smoothing=0.2)
    assert smoothed <= best_constant_answer_loss(labels, 4, per_output_binary=True, smoothing=0.2) + 1e-9


def test_the_chance_loss_refuses_what_is_no_training_split():
    with pytest.raises(ValueError, match="no labels"):
        chance_loss([], 2)
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        chance_loss([0, 2], 2)


# ----------------------------------------------------------------------------- the verdicts


def predictions_of(labels, predicted, k: int = 2) -> pd.DataFrame:
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    rows = pd.DataFrame({"image_id": [f"i{i}" for i in range(len(labels))], "patient_id": "", "split": "test",
                         "label": labels, "class_name": [f"c{label}" for label in labels]})
    scores = np.full((len(labels), k), 0.2 / (k - 1))
    scores[np.arange(len(labels)), predicted] = 0.8
    return prediction_frame(rows, scores[:, 1] if k == 2 else scores, [f"c{c}" for c in range(k)])


def history_of(losses) -> pd.DataFrame:
    return pd.DataFrame({"epoch": range(len(losses)), "loss": losses, "accuracy": 0.5})


def balanced(k: int, n: int = 40):
    return np.tile(np.arange(k), n // k)


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("losses", [
    pytest.param(lambda c: [c + 0.02, c + 0.0004, c + 0.0002], id="stuck-at-chance"),
    pytest.param(lambda c: [c * (1 - CHANCE_MARGIN / 2)] * 3, id="within-the-margin"),
    pytest.param(lambda c: [6e12, 7.7e7, 3.5e5], id="diverged"),
    pytest.param(lambda c: [float("nan"), float("nan"), 21.2], id="diverged-through-nan"),
    pytest.param(lambda c: [c, 0.3 * c, c + 5], id="fell-back"),
])
@pytest.mark.parametrize("answers", ["one-class", "nearly-one-class", "no-better-than-the-majority"])
def test_a_keras_trial_at_chance_answering_without_the_image_did_not_learn(k, losses, answers):
    chance = math.log(k)
    labels = balanced(k)
    predicted = {"one-class": np.zeros_like(labels),
                 "nearly-one-class": np.where(np.arange(len(labels)) < math.ceil(ONE_CLASS_SHARE * len(labels)), 1, 0),
                 "no-better-than-the-majority": np.roll(labels, 1)}[answers]  # every answer wrong
    verdict = judge_keras(history_of(losses(chance)), predictions_of(labels, predicted, k), [f"c{c}" for c in range(k)],
                          chance)
    assert verdict.learned is False, verdict
    assert f"{chance:.4f}" in verdict.note and "evaluated images" in verdict.note
    assert "learned: NO" in verdict.log_line()


@pytest.mark.parametrize("k", [2, 4])
def test_a_keras_trial_whose_training_loss_left_chance_learned_whatever_it_answers(k):
    chance = math.log(k)
    labels = balanced(k)
    for predicted in (labels, np.zeros_like(labels)):
        verdict = judge_keras(history_of([chance, 0.8 * chance, 0.5 * chance]), predictions_of(labels, predicted, k),
                              [f"c{c}" for c in range(k)], chance)
        assert verdict.learned is True and "below" in verdict.note and f"{0.5 * chance:.4f}" in verdict.note


def test_a_training_loss_at_chance_with_answers_that_beat_the_majority_rate_learned_within_its_epochs():
    labels = balanced(2)
    predicted = np.where(np.arange(len(labels)) < 4, 1 - labels, labels)  # 36 of 40 right
    verdict = judge_keras(history_of([0.72, 0.69]), predictions_of(labels, predicted), ["c0", "c1"], math.log(2))
    assert verdict.learned is True and "never below" in verdict.note and "0.900 above" in verdict.note


def test_the_note_tells_never_left_chance_from_fell_back_to_it():
    labels, chance = balanced(2), math.log(2)
    dead = predictions_of(labels, np.ones_like(labels))
    never = judge_keras(history_of([0.70, 0.693]), dead, ["c0", "c1"], chance)
    back = judge_keras(history_of([0.69, 0.2, 3.0]), dead, ["c0", "c1"], chance)
    assert "never below" in never.note and "lowest 0.6930" in never.note and "'c1' for 100%" in never.note
    assert "back at chance" in back.note and "0.2000 at epoch 2 of 3" in back.note


@pytest.mark.parametrize("k", [2, 4])
def test_a_classical_or_hybrid_trial_is_judged_on_its_predictions_alone(k):
    labels = balanced(k)
    names = [f"c{c}" for c in range(k)]
    assert judge_predictions(predictions_of(labels, np.full_like(labels, k - 1), k), names).learned is False
    weak = np.roll(labels, 1)  # every answer wrong, but they vary with the image: a weak classifier, not a dead one
    verdict = judge_predictions(predictions_of(labels, weak, k), names)
    assert verdict.learned is True and "no training loss" in verdict.note


def test_a_history_is_read_as_keras_writes_it_and_refused_naming_the_file_otherwise(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,accuracy,loss,val_accuracy,val_loss\n1,0.5,0.69,0.5,0.70\n0,0.5,0.71,0.5,0.70\n")
    assert read_history(path)["loss"].tolist() == [0.71, 0.69]
    path.write_text("epoch,accuracy\n0,0.5\n")
    with pytest.raises(ValueError, match=f"{path}.*loss"):
        read_history(path)
    path.write_text("epoch,accuracy,loss\n")
    with pytest.raises(ValueError, match=f"{path} holds no epoch"):
        read_history(path)


# ----------------------------------------------------------------------------- the evaluation's rows


def write_trial(folder, losses, predicted, labels=None, chance=math.log(2), approach="cnn"):
    labels = balanced(2) if labels is None else labels
    frame = predictions_of(labels, predicted)
    frame["split"] = np.where(np.arange(len(frame)) % 2 == 0, "val", "test")
    folder.mkdir(parents=True, exist_ok=True)
    write_predictions(frame, folder / "predictions.parquet", trial={"approach": approach, "model": "m"},
                      class_names=["c0", "c1"], train_seconds=1.0, predict_seconds=0.1, leaky=False,
                      chance_loss=chance if approach == "cnn" else None)
    if losses is not None:
        history_of(losses).to_csv(folder / "history.csv", index=False)
    (folder / "model.keras").write_bytes(b"the weights of one training")  # named by the trial's scoring.json
    return folder


def evaluated_rows(folder, history=True, **options):
    evaluate_predictions(folder / "predictions.parquet", folder / "metrics.json", folder / "scoring.json", n_boot=20,
                         model_path=folder / "model.keras", history_path=folder / "history.csv" if history else None,
                         **options)
    return json.loads((folder / "metrics.json").read_text())


def test_every_row_of_a_trial_says_whether_it_learned_and_why(tmp_path):
    labels = balanced(2)
    dead = evaluated_rows(write_trial(tmp_path / "dead", [0.70, 0.693], np.zeros_like(labels)), calibration="temperature")
    assert len(dead) == 4  # val and test, as given and temperature-scaled
    assert {row[LEARNED] for row in dead} == {False} and len({row[LEARNED_NOTE] for row in dead}) == 1
    assert "never below" in dead[0][LEARNED_NOTE]
    alive = evaluated_rows(write_trial(tmp_path / "alive", [0.70, 0.3], labels))
    assert {row[LEARNED] for row in alive} == {True}


def test_a_classical_trial_has_no_history_and_is_judged_on_its_predictions(tmp_path):
    labels = balanced(2)
    rows = evaluated_rows(write_trial(tmp_path / "svm", None, np.ones_like(labels), approach="classical"), history=False)
    assert {row[LEARNED] for row in rows} == {False} and "no training loss" in rows[0][LEARNED_NOTE]


def test_a_keras_trial_without_its_chance_loss_is_refused_naming_the_file(tmp_path):
    folder = write_trial(tmp_path / "old", [0.7, 0.69], balanced(2))
    table = pq.read_table(folder / "predictions.parquet")
    metadata = json.loads(table.schema.metadata[b"leukobench"])
    metadata.pop(CHANCE_LOSS)
    pq.write_table(table.replace_schema_metadata({b"leukobench": json.dumps(metadata)}), folder / "predictions.parquet")
    with pytest.raises(ValueError, match=f"{folder / 'predictions.parquet'}.*chance_loss.*train the trial again"):
        evaluated_rows(folder)
    assert not (folder / "metrics.json").exists()


# ----------------------------------------------------------------------------- learning, tested by learning

TINY = {"subjects": 12, "cells_per_subject": 10, "image_size": 32, "seed": 1, "difficulty": 0.0}  # 60 train images
TINY_TRAINING = {"model": "abed_cnn", "epochs": 3, "batch_size": 8, "seed": 0}


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    from leukobench.data.readers import read_dataset
    from leukobench.data.splits import assign_splits
    from leukobench.data.store import Preparation, build_store
    from leukobench.data.synthetic import SyntheticSpec, write_cnmc_tree

    root = tmp_path_factory.mktemp("learned")
    write_cnmc_tree(root / "raw", SyntheticSpec(**TINY))
    manifest, _ = read_dataset("synthetic", root / "raw", threads=1)
    splits = assign_splits(manifest, "subject", {"train": 0.6, "val": 0.2, "test": 0.2}, seed=0)
    build_store(manifest, splits, Preparation(size=24), root / "24px.parquet", threads=1)
    return root / "24px.parquet"


def trained(store, folder, capsys, **training):
    from leukobench.learn.train import TrainingSpec, train_from_store

    spec = TrainingSpec(**{**TINY_TRAINING, **training})
    record = train_from_store(store, spec, folder / "model.keras", folder / "history.csv", {"model": spec.model}, threads=1,
                              predictions_path=folder / "predictions.parquet")
    log = capsys.readouterr().out.strip().splitlines()
    return record, log[-1]


EVALUATE_WITHOUT_TENSORFLOW = textwrap.dedent("""
    import json, sys
    from leukobench.learn.evaluate import evaluate_predictions
    folder = sys.argv[1]
    evaluate_predictions(f"{folder}/predictions.parquet", f"{folder}/metrics.json", f"{folder}/scoring.json", n_boot=20,
                         model_path=f"{folder}/model.keras", history_path=f"{folder}/history.csv")
    started = sorted(name for name in ("tensorflow", "keras", "jax", "torch") if name in sys.modules)
    print(json.dumps(started))
""")


def verdict_from_files(folder) -> dict:
    """The trial's verdict as a fresh evaluation process writes it from the trial's files; it must
    import no deep-learning framework to do so."""
    done = subprocess.run([sys.executable, "-c", EVALUATE_WITHOUT_TENSORFLOW, str(folder)], capture_output=True,
                          text=True, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [], done.stdout
    rows = json.loads((folder / "metrics.json").read_text())
    assert len({(row[LEARNED], row[LEARNED_NOTE]) for row in rows}) == 1  # one verdict per trial
    return {LEARNED: rows[0][LEARNED], LEARNED_NOTE: rows[0][LEARNED_NOTE]}


@pytest.mark.parametrize("name, training, shuffled", [
    ("learns", {}, False),
    ("learns-another-seed", {"seed": 1}, False),
    ("shuffled-labels", {}, True),
    ("shuffled-labels-another-seed", {"seed": 1}, True),
    ("diverges-adam", {"learning_rate": 10.0}, False),
    ("diverges-sgd", {"optimizer": "sgd", "learning_rate": 100.0}, False),
])
def test_a_tiny_trial_is_flagged_when_it_did_not_learn_and_only_then(tiny_store, tmp_path, capsys, name, training, shuffled):
    store = with_shuffled_training_labels(tiny_store, tmp_path / "shuffled.parquet", training.get("seed", 0)) if shuffled \
        else tiny_store
    record, last_line = trained(store, tmp_path, capsys, **training)
    expected = name.startswith("learns")
    assert record["chance_loss"] == pytest.approx(math.log(2))  # the tiny store's training split is balanced
    assert read_predictions(tmp_path / "predictions.parquet")[1][CHANCE_LOSS] == record["chance_loss"]
    assert last_line.startswith("learned: yes" if expected else "learned: NO"), last_line
    verdict = verdict_from_files(tmp_path)
    assert verdict[LEARNED] is expected, verdict
    assert verdict[LEARNED_NOTE] in last_line  # the training log and metrics.csv say the same
