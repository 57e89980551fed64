"""Classical classifiers (scikit-learn) on a feature store, evaluated like a Keras trial.

The registry ``CLASSIFIERS`` (a :class:`leukobench.registry.Registry`) maps a name to a builder
that returns an unfitted, seeded ``Pipeline``: a ``StandardScaler`` first where the method depends on the features' scale (SVM,
SGD, logistic regression, MLP), then the classifier. Naive Bayes and random forests do not
depend on it; nor does KNN, on purpose: its Euclidean distance is taken on the features as
extracted (pixels in [0, 1], PCA scores, ReLU activations), because standardising them gives
every low-variance, noisy dimension (the last PCA components, the background pixels) the
weight of the informative ones (on the HOG + PCA(50) disc store of the tests: test accuracy
0.67 standardised, 1.0 not).

These are Varol's Approach 2 heads (SVM, NB, RF on FEM-k features) and Rezayi's baselines (SVM,
KNN, RF, SGD, LR, MLP), with scikit-learn's defaults unless a comment says otherwise.

Probabilities. Every classifier gives ``predict_proba``, and the predicted class is taken from it
as for the Keras trials (:func:`leukobench.predictions.predict_labels`: ``score >= 0.5`` or argmax),
so ``pred`` and ``score`` always agree. The SVM's probabilities come from Platt scaling:
``CalibratedClassifierCV(SVC(), method="sigmoid", cv=5, ensemble=False)`` fits the sigmoid on
5-fold out-of-fold decision values of the train split, then one SVC on the whole train split.
That is what ``SVC(probability=True)`` did, which scikit-learn 1.9 deprecates in favour of this.

:func:`fit_classical_trial` fits on the train split only (val is not used for fitting: nothing
here selects on it), predicts the evaluated splits, and writes the fitted model (joblib) and
``predictions.parquet`` in the form a Keras trial's training writes it
(:mod:`leukobench.predictions`); the evaluation computes the metrics from it, as for every trial.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from leukobench.learn.feature_store import TRAIN_SPLIT, load_features
from leukobench.io import atomic_path
from leukobench.predictions import EVALUATED_SPLITS, prediction_frame, write_predictions
from leukobench.registry import Registry

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator
    from sklearn.pipeline import Pipeline

# scikit-learn is imported where a classifier is built or fitted, not with the module: the planning
# reads the classifiers' names (list_classifiers) at every workflow start and dry run.

SVM_CALIBRATION_FOLDS = 5  # Platt scaling on out-of-fold decision values, as SVC(probability=True) did
LR_MAX_ITER = 5000  # lbfgs on a few thousand raw-pixel features needs far more than the default 100
MLP_MAX_ITER = 500  # the default 200 stops Adam before it converges on pixel features

Builder = Callable[..., "Pipeline"]
CLASSIFIERS: Registry[Builder] = Registry("classifier")
register_classifier = CLASSIFIERS.register


def list_classifiers() -> list[str]:
    """The registered classifier names, sorted."""
    return CLASSIFIERS.names()


def _scaled(name: str, estimator: BaseEstimator) -> Pipeline:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scale", StandardScaler()), (name, estimator)])


def scaled_rbf_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """SVC's RBF kernel with gamma='scale' on standardised features (1 / n_features), computed
    with BLAS: libsvm's own kernel loop takes minutes on the 50,000-100,000 CNN features of
    Varol's FEM-1 / FEM-2, the BLAS Gram matrix seconds."""
    from sklearn.metrics.pairwise import rbf_kernel

    return rbf_kernel(x, y, gamma=1.0 / x.shape[1])


@register_classifier("svm")
def support_vector_machine(seed: int, threads: int) -> Pipeline:
    """RBF-kernel SVC with Platt-scaled probabilities (see the module docstring)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    svc = SVC(kernel=scaled_rbf_kernel, random_state=seed)
    return _scaled("svm", CalibratedClassifierCV(svc, method="sigmoid", cv=SVM_CALIBRATION_FOLDS, ensemble=False,
                                                 n_jobs=threads))


@register_classifier("nb")
def naive_bayes(seed: int, threads: int) -> Pipeline:
    """Gaussian naive Bayes (per-feature variances: no scaling needed; nothing random)."""
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import Pipeline

    return Pipeline([("nb", GaussianNB())])


@register_classifier("rf")
def random_forest(seed: int, threads: int) -> Pipeline:
    """A random forest of 100 trees, grown on ``threads`` cores."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline

    return Pipeline([("rf", RandomForestClassifier(random_state=seed, n_jobs=threads))])


@register_classifier("knn")
def nearest_neighbours(seed: int, threads: int) -> Pipeline:
    """5 nearest neighbours, Euclidean on the unscaled features (see the module docstring)."""
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline

    return Pipeline([("knn", KNeighborsClassifier(n_jobs=threads))])


@register_classifier("sgd")
def stochastic_gradient_descent(seed: int, threads: int) -> Pipeline:
    """A linear model fitted by SGD on the log loss, so that it has ``predict_proba``."""
    from sklearn.linear_model import SGDClassifier

    return _scaled("sgd", SGDClassifier(loss="log_loss", random_state=seed, n_jobs=threads))


@register_classifier("lr")
def logistic_regression(seed: int, threads: int) -> Pipeline:
    """L2-regularised logistic regression (lbfgs; multinomial for more than two classes)."""
    from sklearn.linear_model import LogisticRegression

    return _scaled("lr", LogisticRegression(max_iter=LR_MAX_ITER, random_state=seed))


@register_classifier("mlp")
def multilayer_perceptron(seed: int, threads: int) -> Pipeline:
    """One hidden layer of 100 ReLU units, trained with Adam."""
    from sklearn.neural_network import MLPClassifier

    return _scaled("mlp", MLPClassifier(max_iter=MLP_MAX_ITER, random_state=seed))


def final_estimator(pipeline: Pipeline) -> BaseEstimator:
    """The classifier that ``params`` configure: the pipeline's last step, the SVC inside the calibration."""
    from sklearn.calibration import CalibratedClassifierCV

    last = pipeline[-1]
    return last.estimator if isinstance(last, CalibratedClassifierCV) else last


def create_classifier(name: str, seed: int = 0, threads: int = 1, class_weight=None, **params) -> Pipeline:
    """Build a registered classifier.

    Args:
        name: a name from :func:`list_classifiers`.
        seed: ``random_state`` of every random part.
        threads: cores for the classifiers that parallelise (``n_jobs``).
        class_weight: passed to the classifier (``"balanced"`` or ``{label: weight}``); only for
            those that take it (svm, rf, sgd, lr).
        **params: constructor parameters of the final classifier (e.g. ``C=10`` for svm).

    Returns:
        An unfitted ``Pipeline``.

    Raises:
        ValueError: on an unknown name, or a parameter the classifier does not have (named).
    """
    builder = CLASSIFIERS.get(name)
    if isinstance(threads, bool) or int(threads) != threads or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    pipeline = builder(seed=seed, threads=int(threads))
    final = final_estimator(pipeline)
    settings = dict(params) | ({} if class_weight is None else {"class_weight": class_weight})
    valid = final.get_params(deep=False)
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise ValueError(
            f"classifier '{name}' ({type(final).__name__}) has no parameter {', '.join(map(repr, unknown))}; "
            f"its parameters: {', '.join(sorted(valid))}"
        )
    final.set_params(**settings)
    return pipeline


def class_scores(probabilities: np.ndarray, fitted_classes: np.ndarray, n_classes: int) -> np.ndarray:
    """Scores as the Keras trials give them: ``(n,)`` P(label 1) for two classes, ``(n, k)`` otherwise.

    A class absent from the train split has no column in ``predict_proba``; it scores 0.
    """
    full = np.zeros((len(probabilities), n_classes))
    full[:, np.asarray(fitted_classes, dtype=np.int64)] = probabilities
    full = np.clip(full, 0.0, 1.0)
    return full[:, 1] if n_classes == 2 else full


def fit_classical_trial(features_path: str | os.PathLike, classifier: str, model_out: str | os.PathLike,
                       predictions_out: str | os.PathLike, trial: dict, *, seed: int = 0, threads: int = 1,
                       params: dict | None = None) -> pd.DataFrame:
    """Fit a classifier on the train split of a feature store and predict the evaluated splits.

    Args:
        features_path: a feature store (:mod:`leukobench.learn.feature_extractors`).
        classifier: a name from :func:`list_classifiers`.
        model_out: the fitted model, a joblib file of a dict: ``estimator`` (the fitted
            pipeline), ``classifier``, ``params``, ``class_names``, ``features`` (the feature
            store's metadata), ``trial``, ``train_seconds``, ``train_images``, ``sklearn_version``.
        predictions_out: ``predictions.parquet`` (:mod:`leukobench.predictions`): a Keras trial's
            columns (``score`` with two classes: P(label 1); ``score_<class name>`` per class
            otherwise) and metadata.
        trial: the trial (its ``approach`` and grid parameters), kept in both files.
        seed: seeds the classifier (the trial's seed).
        threads: cores for fitting and prediction (``n_jobs`` and the BLAS thread pool).
        params: constructor parameters of the classifier (``class_weight`` among them).

    Returns:
        The predictions written. The two files appear together, and only if everything succeeded.
    """
    params = dict(params or {})
    estimator = create_classifier(classifier, seed=seed, threads=threads, **params)  # fail fast on a bad name
    rows, features, metadata = load_features(features_path)
    class_names = metadata["class_names"]
    labels = rows["label"].to_numpy().astype(np.int64)
    train = (rows["split"] == TRAIN_SPLIT).to_numpy()
    evaluated = rows["split"].isin(EVALUATED_SPLITS).to_numpy()
    if len(np.unique(labels[train])) < 2:
        raise ValueError(f"{features_path}: the train split holds {int(train.sum())} image(s) of fewer than two "
                         f"classes; nothing can be learned")
    if not evaluated.any():
        raise ValueError(f"{features_path}: no images in the {' or '.join(EVALUATED_SPLITS)} split to evaluate")
    missing = sorted(set(range(len(class_names))) - set(np.unique(labels[train]).tolist()))
    if missing:
        print(f"note: the train split has no images of class(es) {[class_names[k] for k in missing]}; "
              f"they score 0", flush=True)

    import joblib
    import sklearn
    from threadpoolctl import threadpool_limits

    # joblib's threads, not its default worker processes: a fresh job saves the 1.4 s of starting them
    # and the copy of the features into each (the SVM's 5 calibration folds fit in parallel)
    with threadpool_limits(limits=int(threads)), joblib.parallel_config(backend="threading"):
        started = time.perf_counter()
        estimator.fit(features[train], labels[train])
        train_seconds = time.perf_counter() - started
        print(f"{classifier}: fitted on {int(train.sum())} train images x {features.shape[1]} features "
              f"in {train_seconds:.2f} s", flush=True)
        started = time.perf_counter()
        probabilities = estimator.predict_proba(features[evaluated])
        predict_seconds = time.perf_counter() - started

    predictions = prediction_frame(rows.loc[evaluated], class_scores(probabilities, estimator.classes_, len(class_names)),
                                   class_names)
    saved = {
        "estimator": estimator, "classifier": classifier, "params": params, "seed": seed,
        "class_names": class_names, "features": metadata, "features_path": str(features_path), "trial": trial,
        "train_seconds": train_seconds, "train_images": int(train.sum()), "sklearn_version": sklearn.__version__,
    }
    with atomic_path(model_out) as tmp_model:  # in place only once the predictions are too
        joblib.dump(saved, tmp_model)
        write_predictions(predictions, predictions_out, trial=trial, class_names=class_names,
                          train_seconds=train_seconds, predict_seconds=predict_seconds,
                          leaky=bool(metadata.get("store_metadata", {}).get("leaky", False)))
    return predictions


def load_classical(model_path: str | os.PathLike) -> dict:
    """The dict written by :func:`fit_classical_trial` (``estimator`` is the fitted pipeline)."""
    import joblib

    return joblib.load(model_path)
