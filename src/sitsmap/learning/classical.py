"""The classifiers the chain can learn, all behind the scikit-learn face.

``make_classifier`` turns ``arg_train`` into an unfitted classifier: a random
forest (configured with OTB's option names, as in iota2), LightGBM, or a
PyTorch network (:class:`~sitsmap.learning.deep.trainer.DeepClassifier`).
Every one has ``fit(X, y, groups=None)``, ``predict`` and ``predict_proba``
(float32, columns in ``classes_`` order), so the chain treats them alike.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import lightgbm
import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.preprocessing import LabelEncoder

from sitsmap.config.schema import ArgTrain
from sitsmap.learning.deep.trainer import DeepClassifier

__all__ = [
    "ClassifierProtocol",
    "LightGBM",
    "RandomForest",
    "make_classifier",
    "random_forest_parameters",
]

log = logging.getLogger(__name__)

OTB_RF_OPTIONS = {
    "classifier.rf.nbtrees": "n_estimators",
    "classifier.rf.max": "max_depth",
    "classifier.rf.min": "min_samples_split",
}
"""OTB random-forest option → scikit-learn parameter (``max`` 0 means no depth limit)."""


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


class RandomForest(RandomForestClassifier):
    """scikit-learn's random forest with the chain's ``fit(X, y, groups)`` and float32 output.

    ``groups`` is accepted and ignored (scikit-learn's third positional
    argument of ``fit`` is ``sample_weight``, which the chain must not fill).
    """

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> RandomForest:
        """Fit the forest on ``X`` and ``y``; ``groups`` is ignored."""
        return super().fit(X, y)

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


class LightGBM(lightgbm.LGBMClassifier):
    """LightGBM's classifier with the chain's ``fit(X, y, groups)`` and float32 output."""

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> LightGBM:
        """Fit the boosted trees on ``X`` and ``y``; ``groups`` is ignored."""
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
        ``classifier`` (``rf`` or ``lightgbm``) with its options.
    seed : int
        Random state of the classifier (one per run).
    n_jobs : int
        Threads of the random forest and LightGBM.
    n_dates : int, optional
        Dates of the temporal grid, for TempCNN and LTAE.
    day_of_year : sequence of int, optional
        Day of each date, for LTAE's positional encoding.

    Returns
    -------
    ClassifierProtocol
        :class:`RandomForest`, :class:`LightGBM` or
        :class:`~sitsmap.learning.deep.trainer.DeepClassifier`.
    """
    if settings.deep_learning_parameters is not None:
        return DeepClassifier.from_settings(
            settings.deep_learning_parameters, seed, n_dates=n_dates, day_of_year=day_of_year
        )
    if settings.classifier == "lightgbm":
        params = {"n_jobs": n_jobs, "verbose": -1, **settings.lightgbm_parameters}
        if "random_state" in settings.lightgbm_parameters:
            log.warning("lightgbm_parameters.random_state ignored: the run's seed is used")
        params["random_state"] = seed
        return LightGBM(**params)
    params = random_forest_parameters(settings.otb_classifier_options)
    return RandomForest(**params, random_state=seed, n_jobs=n_jobs)
