"""The classifiers the chain can learn, all behind the scikit-learn face.

``make_classifier`` turns ``arg_train`` into an unfitted classifier: a random
forest (configured with OTB's option names, as in iota2), LightGBM, a support
vector machine, or a PyTorch network
(:class:`~sitsmap.learning.deep.trainer.DeepClassifier`). Every one has
``fit(X, y, groups=None)``, ``predict`` and ``predict_proba`` (float32, columns
in ``classes_`` order, the sorted class codes), so the chain treats them alike.

Before fitting, the classical classifiers refuse infinite features (and NaN,
where they cannot learn from it) and, with ``sample_augmentation: smote``, add
synthetic samples to the smaller classes (:func:`oversample`).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

import lightgbm
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import LabelEncoder, StandardScaler
from sklearn.svm import SVC

from sitsmap.config.schema import ArgTrain
from sitsmap.errors import InputDataError
from sitsmap.learning.deep.trainer import DeepClassifier

__all__ = [
    "SVC_OPTIONS",
    "SVM",
    "ClassifierProtocol",
    "LightGBM",
    "RandomForest",
    "check_finite",
    "lightgbm_parameters",
    "make_classifier",
    "min_child_samples",
    "oversample",
    "random_forest_parameters",
]

log = logging.getLogger(__name__)

OTB_RF_OPTIONS = {
    "classifier.rf.nbtrees": "n_estimators",
    "classifier.rf.max": "max_depth",
    "classifier.rf.min": "min_samples_split",
}
"""OTB random-forest option → scikit-learn parameter (``max`` 0 means no depth limit)."""

SVC_OPTIONS = ("C", "kernel", "gamma", "degree", "coef0", "class_weight", "tol", "cache_size")
"""The scikit-learn ``SVC`` parameters ``arg_train.svm_parameters`` may set."""

MIN_CHILD_ALIASES = frozenset(
    {"min_child_samples", "min_data_in_leaf", "min_data", "min_samples_leaf", "min_data_per_leaf"}
)
"""LightGBM's names for the minimum samples in a leaf: any of them set by the user wins."""

VERBOSITY_ALIASES = frozenset({"verbose", "verbosity"})
"""LightGBM's names for its verbosity."""

L2_ALIASES = frozenset({"reg_lambda", "lambda_l2", "lambda", "l2_regularization"})
"""LightGBM's names for the L2 penalty on leaf values: any of them set by the user wins."""

LIGHTGBM_L2 = 1.0
"""The chain's default L2 penalty on LightGBM's leaf values (LightGBM's own is 0).

A leaf's value is ``-sum(gradients) / (sum(hessians) + L2)``: in multiclass
boosting, pixels the model already calls confidently wrong have gradients near -1
and hessians near 0, so without a penalty one leaf of them gets a value of up to
``count / min_sum_hessian_in_leaf`` and the training loss climbs back. Measured on
245 694 samples of 20 classes (``bench/learners.py --large``): LightGBM's defaults
reach OA 0.988 at 20 trees, then diverge (training log-loss 0.05 → 11) to 0.62 at
100 trees; with ``1.0`` (XGBoost's default) the same fit scores 0.994 (BENCHMARKS.md,
learners).
"""

SMOTE_NEIGHBOURS = 5
"""SMOTE's ``k_neighbors`` (imbalanced-learn's default), lowered for smaller classes."""

CALIBRATION_FOLDS = 5
"""Folds that calibrate the SVM's probabilities (as libsvm's ``probability=True`` uses)."""


@runtime_checkable
class ClassifierProtocol(Protocol):
    """What the chain needs from a classifier (the scikit-learn contract).

    ``isinstance`` checks it on fitted classifiers only: ``classes_`` is set by ``fit``.
    """

    classes_: np.ndarray

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> Any:
        """Learn from features ``X`` (n_samples, n_features) and labels ``y``; return self."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Return the class code of each row of ``X``."""

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Return class probabilities, columns in ``classes_`` order."""


class LearningSamples:
    """What the classical classifiers do to the learning samples before fitting.

    Attributes
    ----------
    sample_augmentation : str
        ``none``, or ``smote``: oversample the smaller classes (:func:`oversample`).
        Set by :func:`make_classifier`; not a constructor parameter, so that the
        forest stays a plain scikit-learn estimator once saved.
    learns_from_nan : bool
        Whether the classifier copes with NaN features (trees do; SMOTE and SVMs do not).
    class_counts_ : numpy.ndarray
        Samples of each class (``classes_`` order) the fit learnt from, synthetic ones included.
    """

    sample_augmentation = "none"
    learns_from_nan = True

    def _learning_samples(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the samples to fit: checked, then oversampled if asked."""
        X, y = np.asarray(X), np.asarray(y)
        smote = self.sample_augmentation == "smote"
        learner = "SMOTE" if smote else type(self).__name__
        check_finite(X, allow_nan=self.learns_from_nan and not smote, learner=learner)
        if smote:
            X, y = oversample(X, y, seed=self.get_params()["random_state"])
        self.class_counts_ = np.unique(y, return_counts=True)[1]
        return X, y


class RandomForest(LearningSamples, RandomForestClassifier):
    """scikit-learn's random forest with the chain's ``fit(X, y, groups)`` and float32 output.

    ``groups`` is accepted and ignored (scikit-learn's third positional
    argument of ``fit`` is ``sample_weight``, which the chain must not fill).
    NaN features are learnt from (scikit-learn ≥ 1.4), infinite ones refused.
    """

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> RandomForest:
        """Fit the forest on ``X`` and ``y``; ``groups`` is ignored."""
        return super().fit(*self._learning_samples(X, y))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Return class probabilities as float32, columns in ``classes_`` order."""
        return super().predict_proba(X).astype(np.float32)

    def to_sklearn(self) -> RandomForestClassifier:
        """Return the fitted forest as a plain scikit-learn estimator (same trees, shared)."""
        forest = RandomForestClassifier(**self.get_params())
        forest.__dict__.update(self.__dict__)
        return forest

    @classmethod
    def from_sklearn(cls, forest: RandomForestClassifier) -> RandomForest:
        """Wrap a fitted scikit-learn forest (e.g. :meth:`to_sklearn`'s) back into this class."""
        model = cls(**forest.get_params())
        model.__dict__.update(forest.__dict__)
        return model


class LightGBM(LearningSamples, lightgbm.LGBMClassifier):
    """LightGBM's classifier with the chain's ``fit(X, y, groups)`` and float32 output.

    LightGBM's warnings reach this module's log, each once per fit with its count.

    Attributes
    ----------
    size_from_data : bool
        Choose ``min_child_samples`` from the smallest class at fit time
        (:func:`min_child_samples`); :func:`make_classifier` sets it unless the
        user gave the setting.
    """

    size_from_data = False

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> LightGBM:
        """Fit the boosted trees on ``X`` and ``y``; ``groups`` is ignored."""
        X, y = self._learning_samples(X, y)
        if self.size_from_data:
            # LightGBM's default (20) leaves no split on a few samples per class:
            # every pixel would get one class. The chosen value is kept in the model.
            self.set_params(min_child_samples=min_child_samples(y))
        with _lightgbm_warnings_counted():
            return super().fit(X, y)

    def predict_proba(self, X: np.ndarray, *args: Any, **kwargs: Any) -> np.ndarray:
        """Return class probabilities as float32, columns in ``classes_`` order.

        With LightGBM's extra arguments (``raw_score``, ``pred_leaf``, … as
        ``predict`` passes them) LightGBM's own output is returned unchanged.
        """
        result = super().predict_proba(X, *args, **kwargs)
        return result if args or kwargs else result.astype(np.float32)

    def get_state(self) -> tuple[str, dict[str, Any]]:
        """Return the fitted model as LightGBM's text model and plain JSON values.

        The text holds every tree (LightGBM's own format); the JSON values,
        the estimator's parameters and what ``fit`` learnt besides the trees.
        """
        if not isinstance(self._objective, str):
            raise ValueError("a LightGBM model with a custom objective function cannot be saved")
        state = {
            "params": self.get_params(),
            "classes": np.asarray(self.classes_).tolist(),
            "classes_dtype": np.asarray(self.classes_).dtype.str,
            "objective": self._objective,
            "n_features_in": int(self.n_features_in_),
            "best_iteration": int(self._Booster.best_iteration),
        }
        return self._Booster.model_to_string(num_iteration=-1), state

    @classmethod
    def from_state(cls, model_text: str, state: dict[str, Any]) -> LightGBM:
        """Rebuild a fitted classifier from :meth:`get_state`'s output."""
        model = cls(**state["params"])
        booster = lightgbm.Booster(model_str=model_text)
        booster.best_iteration = int(state["best_iteration"])
        classes = np.asarray(state["classes"], dtype=np.dtype(state["classes_dtype"]))
        model._Booster = booster
        model._le = LabelEncoder().fit(classes)
        model._classes = model._le.classes_
        model._n_classes = len(classes)
        model._class_map = {c: i for i, c in enumerate(classes.tolist())}
        model._objective = str(state["objective"])
        model._n_features = booster.num_feature()
        model.fitted_ = True
        model.n_features_in_ = int(state["n_features_in"])
        return model


class SVM(LearningSamples, ClassifierMixin, BaseEstimator):
    """Support vector machine on standardised features, with calibrated probabilities.

    scikit-learn's ``SVC`` after a ``StandardScaler`` (an RBF kernel needs features
    on one scale), its probabilities calibrated by Platt's sigmoid on
    cross-validated decision values, then refit on every sample
    (``CalibratedClassifierCV(ensemble=False)``: what ``SVC(probability=True)``
    does, which scikit-learn 1.9 deprecates). Fitting grows with the square of
    the sample count: above ``max_samples`` a stratified subset is learnt.
    NaN features are refused.

    Parameters
    ----------
    C, kernel, gamma, degree, coef0, class_weight, tol, cache_size
        scikit-learn's ``SVC`` parameters (same defaults).
    max_samples : int
        Most samples learnt; more are subsampled, each class keeping its share.
    random_state : int, optional
        Seed of the subsample, the calibration folds and SMOTE.
    """

    learns_from_nan = False

    def __init__(
        self,
        C: float = 1.0,
        kernel: str = "rbf",
        gamma: str | float = "scale",
        degree: int = 3,
        coef0: float = 0.0,
        class_weight: dict | str | None = None,
        tol: float = 1e-3,
        cache_size: float = 200.0,
        max_samples: int = 20_000,
        random_state: int | None = None,
    ) -> None:
        self.C = C
        self.kernel = kernel
        self.gamma = gamma
        self.degree = degree
        self.coef0 = coef0
        self.class_weight = class_weight
        self.tol = tol
        self.cache_size = cache_size
        self.max_samples = max_samples
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> SVM:
        """Fit on ``X`` and ``y`` (a subset above ``max_samples``); ``groups`` is ignored.

        Raises
        ------
        InputDataError
            If the features hold NaN or infinite values, or a class has a single sample
            (its probabilities cannot be calibrated).
        """
        X, y = self._learning_samples(X, y)
        # shuffled once here, so that the calibration's stratified folds are random ones
        order = _stratified_subset(y, self.max_samples, self.random_state)
        X, y = X[order], y[order]
        self.class_counts_ = np.unique(y, return_counts=True)[1]
        options = {name: getattr(self, name) for name in SVC_OPTIONS}
        svc = SVC(**options, random_state=self.random_state)
        self.calibrated_ = CalibratedClassifierCV(
            make_pipeline(StandardScaler(), svc),
            method="sigmoid",
            cv=_calibration_folds(y),
            ensemble=False,
        ).fit(X, y)
        self.classes_ = self.calibrated_.classes_
        self.n_features_in_ = X.shape[1]
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Return calibrated class probabilities as float32, columns in ``classes_`` order."""
        return self.calibrated_.predict_proba(X).astype(np.float32)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Return the most probable class code of each row of ``X``."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def to_sklearn(self) -> CalibratedClassifierCV:
        """Return the fitted model as a plain scikit-learn estimator (shared, not copied)."""
        return self.calibrated_

    @classmethod
    def from_sklearn(cls, calibrated: CalibratedClassifierCV, max_samples: int) -> SVM:
        """Wrap :meth:`to_sklearn`'s estimator back; the parameters are read from its SVC."""
        svc = calibrated.calibrated_classifiers_[0].estimator[-1]
        params = {name: svc.get_params()[name] for name in SVC_OPTIONS}
        model = cls(**params, max_samples=max_samples, random_state=svc.random_state)
        model.calibrated_ = calibrated
        model.classes_ = calibrated.classes_
        model.n_features_in_ = int(calibrated.n_features_in_)
        return model


def _stratified_subset(y: np.ndarray, size: int, seed: int | None) -> np.ndarray:
    """Shuffled indices of at most about ``size`` samples, each class keeping its share.

    Every class keeps at least 2 samples (what calibration needs); below ``size``
    every sample is kept.
    """
    rng = np.random.default_rng(seed)
    if len(y) <= size:
        return rng.permutation(len(y))
    classes, counts = np.unique(y, return_counts=True)
    keep = np.minimum(counts, np.maximum(2, counts * size // len(y)))
    picks = [
        rng.choice(np.flatnonzero(y == c), k, replace=False)
        for c, k in zip(classes, keep, strict=True)
    ]
    log.info(
        "svm: %d learning samples above svm_max_samples %d: learning a stratified subset of %d",
        len(y),
        size,
        keep.sum(),
    )
    return rng.permutation(np.concatenate(picks))


def _calibration_folds(y: np.ndarray) -> int:
    """Folds for the probability calibration: 5, fewer when a class has fewer samples."""
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < 2:
        raise InputDataError(
            f"class {classes[counts.argmin()]} has a single learning sample: the svm "
            "needs 2 per class to calibrate its probabilities"
        )
    return int(min(CALIBRATION_FOLDS, counts.min()))


def check_finite(X: np.ndarray, *, allow_nan: bool, learner: str) -> None:
    """Refuse infinite features, and NaN unless ``allow_nan``, in one line.

    Parameters
    ----------
    X : numpy.ndarray
        Learning samples (n_samples, n_features).
    allow_nan : bool
        Whether NaN features are let through (the learner copes with them).
    learner : str
        What would learn from them, for the message.

    Raises
    ------
    InputDataError
        Naming how many values are bad and in which columns.
    """
    # a column's sum is finite when all its values are: only suspect columns are scanned
    with np.errstate(invalid="ignore", over="ignore"):
        suspect = np.flatnonzero(~np.isfinite(X.sum(axis=0, dtype=np.float64)))
    if suspect.size == 0:
        return
    part = X[:, suspect]
    bad = np.isinf(part) if allow_nan else ~np.isfinite(part)
    if not bad.any():
        return
    columns = suspect[bad.any(axis=0)].tolist()
    n_inf = int(np.isinf(part).sum())
    n_nan = int(bad.sum()) - n_inf
    counts = f"{n_inf} infinite" + ("" if allow_nan else f" and {n_nan} NaN")
    shown = ", ".join(map(str, columns[:10])) + (", …" if len(columns) > 10 else "")
    raise InputDataError(
        f"{learner} cannot learn from non-finite features: {counts} value(s) in "
        f"{len(columns)} column(s) of the learning samples ({shown})"
    )


def oversample(X: np.ndarray, y: np.ndarray, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Add SMOTE samples to every class until it has as many as the largest.

    ``k_neighbors`` is 5, or one less than the smallest class oversampled. A
    class with a single sample has no neighbour to interpolate with: it is left
    as is, with a warning. The synthetic samples follow the original ones.

    Parameters
    ----------
    X : numpy.ndarray
        Learning samples (n_samples, n_features), finite.
    y : numpy.ndarray
        Their class codes.
    seed : int, optional
        Seed of SMOTE's draws.

    Returns
    -------
    X, y : numpy.ndarray
        The samples with the synthetic ones appended.
    """
    from imblearn.over_sampling import SMOTE  # imported only by the runs that use it

    classes, counts = np.unique(y, return_counts=True)
    for code in classes[counts < 2]:
        log.warning("SMOTE: class %s has a single learning sample: left as is", code)
    target = int(counts.max())
    grown = {c: target for c, n in zip(classes.tolist(), counts, strict=True) if 2 <= n < target}
    if not grown:
        return X, y
    neighbours = int(min(SMOTE_NEIGHBOURS, counts[np.isin(classes, list(grown))].min() - 1))
    smote = SMOTE(sampling_strategy=grown, k_neighbors=neighbours, random_state=seed)
    X_new, y_new = smote.fit_resample(X, y)
    added = dict(zip(*np.unique(y_new[len(y) :], return_counts=True), strict=True))
    log.info(
        "SMOTE (k_neighbors=%d) added synthetic samples per class: %s",
        neighbours,
        ", ".join(f"{code}: {int(n)}" for code, n in added.items()),
    )
    return X_new, y_new


def min_child_samples(y: np.ndarray) -> int:
    """LightGBM's ``min_child_samples`` for these labels: the smallest class / 5, in [2, 20].

    LightGBM's default, 20, is kept from 100 samples per class on; on fewer it
    forbids every split. num_leaves and min_data_in_bin are left alone: on
    4 classes × 2 to 60 samples changing them moved the accuracy by under 0.03,
    as the leaf size already bounds the trees.
    """
    smallest = int(np.unique(y, return_counts=True)[1].min())
    chosen = int(np.clip(smallest // 5, 2, 20))
    log.info("lightgbm: min_child_samples=%d for a smallest class of %d", chosen, smallest)
    return chosen


class _LightGBMLog:
    """Where LightGBM's messages go: warnings to this module's log, the rest to debug.

    During a fit (:func:`_lightgbm_warnings_counted`) warnings are counted, and
    each is logged once with its count: LightGBM repeats some every iteration.
    """

    def __init__(self) -> None:
        self.local = threading.local()

    def info(self, message: str) -> None:
        """Take a message of LightGBM's C++ library (its warnings come this way too)."""
        text = message.strip()
        _, warned, rest = text.partition("[Warning]")
        if warned:
            self.warning(rest.strip())
        elif text:
            log.debug("%s", text)

    def warning(self, message: str) -> None:
        """Take a warning (of LightGBM's Python package, or from :meth:`info`)."""
        counts = getattr(self.local, "counts", None)
        if counts is None:
            log.warning("LightGBM: %s", message)
        else:
            counts[message] += 1


_LIGHTGBM_LOG = _LightGBMLog()
# LightGBM prints to stdout unless given a logger; the process's one (sitsmap's own use)
lightgbm.register_logger(_LIGHTGBM_LOG)


@contextmanager
def _lightgbm_warnings_counted() -> Iterator[None]:
    """Count LightGBM's warnings in this thread, then log each once with its count."""
    counts: Counter[str] = Counter()
    _LIGHTGBM_LOG.local.counts = counts
    try:
        yield
    finally:
        _LIGHTGBM_LOG.local.counts = None
        for message, times in counts.items():
            # trees that stop growing before num_leaves: routine, not a problem to flag
            level = logging.INFO if message.startswith(_ROUTINE) else logging.WARNING
            log.log(level, "LightGBM: %s%s", message, f" ({times} times)" if times > 1 else "")


_ROUTINE = ("No further splits with positive gain",)


def random_forest_parameters(otb_options: Mapping[str, float | int]) -> dict[str, int | None]:
    """Map OTB random-forest options to :class:`RandomForest` parameters.

    ``classifier.rf.nbtrees`` → ``n_estimators``, ``classifier.rf.max`` →
    ``max_depth`` (0 or less: unlimited), ``classifier.rf.min`` (OTB's, i.e. OpenCV's,
    minimum sample count: a node with fewer samples is not split) →
    ``min_samples_split`` (at least 2). Unknown options are rejected by the
    configuration schema.
    """
    params: dict[str, int | None] = {
        OTB_RF_OPTIONS[key]: int(value) for key, value in otb_options.items()
    }
    if params.get("max_depth") is not None and params["max_depth"] <= 0:
        params["max_depth"] = None
    if "min_samples_split" in params:
        params["min_samples_split"] = max(2, params["min_samples_split"])
    return params


def make_classifier(
    settings: ArgTrain,
    seed: int,
    n_jobs: int = 1,
    *,
    n_dates: int | None = None,
    day_of_year: Sequence[int] | None = None,
) -> ClassifierProtocol:
    """Return the unfitted classifier that ``arg_train`` asks for.

    Parameters
    ----------
    settings : ArgTrain
        The ``arg_train`` section: ``deep_learning_parameters`` when set, else
        ``classifier`` (``rf``, ``lightgbm`` or ``svm``) with its options and
        ``sample_augmentation``.
    seed : int
        Random state of the classifier (one per run).
    n_jobs : int
        Threads of the random forest and LightGBM (the SVM uses one).
    n_dates : int, optional
        Dates of the temporal grid, for TempCNN and LTAE.
    day_of_year : sequence of int, optional
        Day of each date, for LTAE's positional encoding.

    Returns
    -------
    ClassifierProtocol
        :class:`RandomForest`, :class:`LightGBM`, :class:`SVM` or
        :class:`~sitsmap.learning.deep.trainer.DeepClassifier`.
    """
    if settings.deep_learning_parameters is not None:
        return DeepClassifier.from_settings(
            settings.deep_learning_parameters, seed, n_dates=n_dates, day_of_year=day_of_year
        )
    model: RandomForest | LightGBM | SVM
    if settings.classifier == "lightgbm":
        model = _lightgbm(settings.lightgbm_parameters, seed, n_jobs)
    elif settings.classifier == "svm":
        options = settings.svm_parameters
        model = SVM(**options, max_samples=settings.svm_max_samples, random_state=seed)
    else:
        params = random_forest_parameters(settings.otb_classifier_options)
        model = RandomForest(**params, random_state=seed, n_jobs=n_jobs)
    model.sample_augmentation = settings.sample_augmentation
    return model


def _lightgbm(given: Mapping[str, Any], seed: int, n_jobs: int) -> LightGBM:
    """LightGBM with the user's parameters, the run's seed and the chain's defaults.

    The chain's defaults: one log line per warning, ``min_child_samples`` from the
    data (:func:`min_child_samples`) and ``reg_lambda`` :data:`LIGHTGBM_L2`, each unless
    the user set it (under any of LightGBM's names).
    """
    model = LightGBM(**lightgbm_parameters(given, seed, n_jobs, l2=LIGHTGBM_L2))
    model.size_from_data = not MIN_CHILD_ALIASES & set(given)
    return model


def lightgbm_parameters(
    given: Mapping[str, Any], seed: int, n_jobs: int, l2: float | None = None
) -> dict[str, Any]:
    """LightGBM's keyword arguments: the user's, the run's seed, the chain's defaults.

    Parameters
    ----------
    given : mapping
        ``arg_train.lightgbm_parameters``.
    seed : int
        The run's seed (a ``random_state`` given is ignored, with a warning).
    n_jobs : int
        Threads, unless given.
    l2 : float, optional
        ``reg_lambda`` unless the user set an L2 penalty (under any of its names);
        None keeps LightGBM's own.

    Returns
    -------
    dict
        With ``verbose`` 0 unless given, so that warnings reach the log.
    """
    params = {"n_jobs": n_jobs, **given}
    if l2 is not None and not L2_ALIASES & set(given):
        params["reg_lambda"] = l2
    if not VERBOSITY_ALIASES & set(given):
        params["verbose"] = 0  # warnings on (-1 would hide them): they reach the log
    if "random_state" in given:
        log.warning("lightgbm_parameters.random_state ignored: the run's seed is used")
    params["random_state"] = seed
    return params
