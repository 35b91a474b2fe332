"""The regressors the chain can learn (``arg_train.task: regression``), behind one face.

``make_regressor`` turns ``arg_train`` into an unfitted regressor: a random
forest (configured with OTB's option names, as the classifier is), LightGBM,
or a PyTorch network (:class:`~sitsmap.learning.deep.regressor.DeepRegressor`).
Every one has ``fit(X, y, groups=None)``, ``predict`` (float32) and
``predict_with_uncertainty``, which also returns a float32 uncertainty map where
the model has one (None otherwise), described in one line by ``uncertainty_``:

- random forest: the standard deviation of its trees' predictions;
- LightGBM with ``arg_train.quantile_interval``: the width of the interval
  between two quantile models' predictions;
- LightGBM without it: none.

Before fitting, infinite features are refused (NaN ones are learnt from: both
libraries handle them), as are non-finite targets.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, runtime_checkable

import joblib
import lightgbm
import numpy as np
from sklearn.ensemble import RandomForestRegressor

from sitsmap.config.schema import ArgTrain
from sitsmap.errors import ConfigError, InputDataError
from sitsmap.learning.classical import (
    MIN_CHILD_ALIASES,
    _lightgbm_warnings_counted,
    check_finite,
    lightgbm_parameters,
    min_child_samples,
    random_forest_parameters,
)
from sitsmap.sampling.bins import bin_edges, bin_of

__all__ = [
    "LightGBMRegression",
    "RandomForestRegression",
    "RegressorProtocol",
    "make_regressor",
    "tree_mean_and_std",
]

log = logging.getLogger(__name__)

RF_MAX_FEATURES = "sqrt"
"""Features a forest split draws from: OTB's default (``classifier.rf.var`` 0: the square
root of the feature count), which the chain's classifier forest also uses."""

CHUNK_ROWS = 65_536
"""Rows whose tree predictions are accumulated together: the forest's spread keeps four
float64 arrays of this length (2 MB), whatever the number of rows or trees."""

MIN_CHUNK_ROWS = 1_024
"""Fewest rows a thread is given: below this the threads cost more than they save."""

OBJECTIVE_ALIASES = ("objective", "objective_type", "app", "application", "loss")
"""LightGBM's names for the objective, removed from the quantile models' parameters."""


@runtime_checkable
class RegressorProtocol(Protocol):
    """What the chain needs from a regressor.

    ``isinstance`` checks it on fitted regressors only: ``uncertainty_`` is set by ``fit``.

    Attributes
    ----------
    task : str
        ``"regression"`` (a class attribute; classifiers have none).
    uncertainty_ : str or None
        One line describing the uncertainty map, or None when the model has none.
    """

    task: str
    uncertainty_: str | None

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> Any:
        """Learn from features ``X`` (n_samples, n_features) and targets ``y``; return self."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Return the predicted value of each row of ``X``, float32 (n,)."""

    def predict_with_uncertainty(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Return the predictions and their uncertainty (float32 (n,), or None)."""


def _learning_target(X: np.ndarray, y: np.ndarray, learner: str) -> tuple[np.ndarray, np.ndarray]:
    """Return ``X`` and ``y`` (float64) checked: no infinite feature, finite targets."""
    X, y = np.asarray(X), np.asarray(y, dtype=np.float64).ravel()
    check_finite(X, allow_nan=True, learner=learner)
    if len(y) != len(X):
        raise InputDataError(f"{len(y)} target values given for {len(X)} samples")
    bad = int(np.count_nonzero(~np.isfinite(y)))
    if bad:
        raise InputDataError(f"{learner} cannot learn from non-finite targets: {bad} value(s)")
    return X, y


# ----------------------------------------------------------------------------- random forest


class RandomForestRegression(RandomForestRegressor):
    """scikit-learn's random forest regressor with the chain's ``fit(X, y, groups)``.

    Predictions are float32; the uncertainty is the standard deviation of the
    trees' predictions (:func:`tree_mean_and_std`). ``groups`` is accepted and
    ignored. NaN features are learnt from (scikit-learn ≥ 1.4), infinite ones refused.
    """

    task = "regression"

    def fit(
        self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None
    ) -> RandomForestRegression:
        """Fit the forest on ``X`` and ``y``; ``groups`` is ignored."""
        super().fit(*_learning_target(X, y, type(self).__name__))
        self.uncertainty_ = self._uncertainty()
        return self

    def _uncertainty(self) -> str:
        return f"standard deviation of the {len(self.estimators_)} trees' predictions"

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Return the mean of the trees' predictions, float32 (n,)."""
        return super().predict(X).astype(np.float32)

    def predict_with_uncertainty(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the predictions and the standard deviation of the trees' ones, float32.

        Both come from one pass over the trees, a chunk of rows at a time
        (:data:`CHUNK_ROWS`), on ``n_jobs`` threads; the predictions are
        :meth:`predict`'s.
        """
        X = self._validate_X_predict(X)  # float32, NaN allowed as the trees learnt them
        mean = np.empty(X.shape[0], dtype=np.float32)
        std = np.empty(X.shape[0], dtype=np.float32)

        def run(start: int, stop: int) -> None:
            mean[start:stop], std[start:stop] = tree_mean_and_std(self.estimators_, X[start:stop])

        bounds = _chunk_bounds(X.shape[0], joblib.effective_n_jobs(self.n_jobs))
        if len(bounds) <= 2:
            run(0, X.shape[0])
            return mean, std
        # the trees' Cython walk releases the GIL: threads share the chunks
        workers = min(len(bounds) - 1, joblib.effective_n_jobs(self.n_jobs))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for job in [
                pool.submit(run, a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
            ]:
                job.result()
        return mean, std

    def to_sklearn(self) -> RandomForestRegressor:
        """Return the fitted forest as a plain scikit-learn estimator (same trees, shared)."""
        forest = RandomForestRegressor(**self.get_params())
        forest.__dict__.update(self.__dict__)
        forest.__dict__.pop("uncertainty_", None)
        return forest

    @classmethod
    def from_sklearn(cls, forest: RandomForestRegressor) -> RandomForestRegression:
        """Wrap a fitted scikit-learn forest (e.g. :meth:`to_sklearn`'s) back into this class."""
        model = cls(**forest.get_params())
        model.__dict__.update(forest.__dict__)
        model.uncertainty_ = model._uncertainty()
        return model


def tree_mean_and_std(trees: Sequence[Any], X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (ddof 0) of the trees' predictions, in one pass.

    The mean is summed in float64 then divided, as scikit-learn's forest does;
    the spread is Welford's running variance, which keeps no (trees, rows) array
    and loses no precision to cancellation (a sum of squares would).

    Parameters
    ----------
    trees : sequence
        Fitted single-output scikit-learn ``DecisionTreeRegressor`` (a forest's ``estimators_``).
    X : numpy.ndarray
        float32 rows (n, n_features), as the forest validated them.

    Returns
    -------
    mean, std : numpy.ndarray
        float64 (n,).
    """
    total = np.zeros(X.shape[0], dtype=np.float64)
    running = np.zeros(X.shape[0], dtype=np.float64)
    squares = np.zeros(X.shape[0], dtype=np.float64)
    for count, tree in enumerate(trees, start=1):
        value = tree.predict(X, check_input=False)
        total += value
        delta = value - running
        running += delta / count
        squares += delta * (value - running)
    n = max(1, len(trees))
    return total / n, np.sqrt(squares / n)


def _chunk_bounds(n_rows: int, threads: int) -> np.ndarray:
    """Row bounds of the chunks: at most :data:`CHUNK_ROWS` rows, one per thread or more."""
    chunks = max(math.ceil(n_rows / CHUNK_ROWS), min(threads, n_rows // MIN_CHUNK_ROWS), 1)
    return np.linspace(0, n_rows, chunks + 1).astype(np.int64)


# ----------------------------------------------------------------------------- LightGBM


class LightGBMRegression(lightgbm.LGBMRegressor):
    """LightGBM's regressor with the chain's ``fit(X, y, groups)`` and float32 output.

    With ``quantile_interval`` (low, high), two more models are fitted with
    ``objective="quantile"`` at those levels; the uncertainty is the width of
    the interval between their predictions (``high − low``, clipped at 0 where
    the two cross). LightGBM's warnings reach the log, each once per fit.

    Attributes
    ----------
    size_from_data : bool
        Choose ``min_child_samples`` from the smallest quantile bin of the target at
        fit time (:func:`~sitsmap.learning.classical.min_child_samples`);
        :func:`make_regressor` sets it unless the user gave the setting.
    regression_bins : int
        Quantile bins of the target for that choice (``arg_train.regression_bins``).
    quantile_interval : tuple of float or None
        The two quantile levels, or None: no uncertainty.
    quantile_models_ : list of LightGBMRegression
        The low and high quantile models (empty without ``quantile_interval``).

    The attributes are not constructor parameters: LightGBM would pass them on
    to its C++ library as unknown parameters.
    """

    task = "regression"
    size_from_data = False
    regression_bins = 10
    quantile_interval: tuple[float, float] | None = None

    def fit(
        self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None
    ) -> LightGBMRegression:
        """Fit the boosted trees (and the quantile models) on ``X`` and ``y``; ignore ``groups``."""
        X, y = _learning_target(X, y, type(self).__name__)
        if self.size_from_data:
            # LightGBM's default (20) leaves no split on a few samples: the quantile
            # bins of the target play the classes' part. Kept in the model's parameters.
            codes = bin_of(y, bin_edges(y, self.regression_bins))
            self.set_params(min_child_samples=min_child_samples(codes))
        with _lightgbm_warnings_counted():
            super().fit(X, y)
        self.quantile_models_ = [
            self._quantile_model(alpha).fit(X, y) for alpha in self.quantile_interval or ()
        ]
        self.uncertainty_ = self._uncertainty()
        return self

    def _quantile_model(self, alpha: float) -> LightGBMRegression:
        """An unfitted model with these parameters and the quantile objective at ``alpha``."""
        params = {k: v for k, v in self.get_params().items() if k not in OBJECTIVE_ALIASES}
        return LightGBMRegression(**params, objective="quantile", alpha=float(alpha))

    def _uncertainty(self) -> str | None:
        if not self.quantile_interval:
            return None
        low, high = self.quantile_interval
        return (
            f"width of the {low:g}-{high:g} quantile interval (LightGBM quantile models' "
            f"prediction at level {high:g} minus that at level {low:g})"
        )

    def predict(self, X: np.ndarray, *args: Any, **kwargs: Any) -> np.ndarray:
        """Return the predicted value of each row, float32 (n,).

        With LightGBM's extra arguments (``raw_score``, ``pred_leaf``, …)
        LightGBM's own output is returned unchanged.
        """
        result = super().predict(X, *args, **kwargs)
        return result if args or kwargs else np.asarray(result, dtype=np.float32)

    def predict_with_uncertainty(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Return the predictions and the quantile interval's width (None without one)."""
        predicted = self.predict(X)
        if not getattr(self, "quantile_models_", None):
            return predicted, None
        low, high = (model.predict(X) for model in self.quantile_models_)
        return predicted, np.maximum(high - low, np.float32(0.0))

    def get_state(self) -> tuple[list[str], dict[str, Any]]:
        """Return LightGBM's text models (main, then low and high quantile) and JSON values."""
        text, state = _booster_state(self)
        quantiles = [_booster_state(model) for model in getattr(self, "quantile_models_", [])]
        interval = self.quantile_interval
        state.update(
            size_from_data=bool(self.size_from_data),
            regression_bins=int(self.regression_bins),
            quantile_interval=None if interval is None else [float(v) for v in interval],
            quantile_models=[q_state for _, q_state in quantiles],
        )
        return [text, *(q_text for q_text, _ in quantiles)], state

    @classmethod
    def from_state(cls, texts: Sequence[str], state: dict[str, Any]) -> LightGBMRegression:
        """Rebuild a fitted regressor from :meth:`get_state`'s output.

        Raises
        ------
        ValueError
            If the texts and the quantile models' states do not match.
        """
        interval = state.get("quantile_interval")
        states = list(state.get("quantile_models", []))
        expected = 0 if interval is None else 2
        if len(states) != expected or len(texts) != 1 + expected:
            raise ValueError(
                f"expected {1 + expected} LightGBM models, found {len(texts)} with "
                f"{len(states)} quantile states"
            )
        model = _rebuild_booster(cls, texts[0], state)
        model.size_from_data = bool(state.get("size_from_data", False))
        model.regression_bins = int(state.get("regression_bins", cls.regression_bins))
        model.quantile_interval = _levels(interval)
        model.quantile_models_ = [
            _rebuild_booster(cls, text, q_state)
            for text, q_state in zip(texts[1:], states, strict=True)
        ]
        model.uncertainty_ = model._uncertainty()
        return model


def _levels(interval: Sequence[float] | None) -> tuple[float, float] | None:
    """The two quantile levels as floats, or None."""
    return None if interval is None else (float(interval[0]), float(interval[1]))


def _booster_state(model: lightgbm.LGBMRegressor) -> tuple[str, dict[str, Any]]:
    """One fitted LightGBM regressor as its text model and plain JSON values."""
    if not isinstance(model._objective, str):
        raise ValueError("a LightGBM model with a custom objective function cannot be saved")
    state = {
        "params": model.get_params(),
        "objective": model._objective,
        "n_features_in": int(model.n_features_in_),
        "best_iteration": int(model._Booster.best_iteration),
    }
    return model._Booster.model_to_string(num_iteration=-1), state


def _rebuild_booster(
    cls: type[LightGBMRegression], text: str, state: Mapping[str, Any]
) -> LightGBMRegression:
    """A fitted regressor from :func:`_booster_state`'s output (LightGBM parses the text)."""
    model = cls(**state["params"])
    booster = lightgbm.Booster(model_str=text)
    booster.best_iteration = int(state["best_iteration"])
    model._Booster = booster
    model._objective = str(state["objective"])
    model._n_features = booster.num_feature()
    model.fitted_ = True
    model.n_features_in_ = int(state["n_features_in"])
    if model.n_features_in_ != model._n_features:
        raise ValueError(
            f"the booster has {model._n_features} features, the state {model.n_features_in_}"
        )
    model.quantile_models_ = []
    model.uncertainty_ = None
    return model


# ----------------------------------------------------------------------------- factory


def make_regressor(
    settings: ArgTrain,
    seed: int,
    n_jobs: int = 1,
    *,
    n_dates: int | None = None,
    day_of_year: Sequence[int] | None = None,
    feature_names: Sequence[str] | None = None,
) -> RegressorProtocol:
    """Return the unfitted regressor that ``arg_train`` asks for.

    Parameters
    ----------
    settings : ArgTrain
        The ``arg_train`` section: ``deep_learning_parameters`` when set, else
        ``classifier`` (``rf`` or ``lightgbm``) with its options, and
        ``quantile_interval`` and ``regression_bins`` for LightGBM.
    seed : int
        Random state of the regressor (one per run).
    n_jobs : int
        Threads of the random forest and LightGBM.
    n_dates : int, optional
        Dates of the temporal grid, for TempCNN and LTAE.
    day_of_year : sequence of int, optional
        Day of each date, for LTAE's positional encoding.
    feature_names : sequence of str, optional
        The feature columns, for the network's layout checks.

    Returns
    -------
    RegressorProtocol
        :class:`RandomForestRegression`, :class:`LightGBMRegression` or
        :class:`~sitsmap.learning.deep.regressor.DeepRegressor`.

    Raises
    ------
    ConfigError
        (a ``ValueError``) for ``classifier: svm`` or ``sample_augmentation: smote``.
    """
    if settings.sample_augmentation == "smote":
        raise ConfigError(
            "arg_train.sample_augmentation smote oversamples classes and does not do "
            "regression: set it to none"
        )
    if settings.deep_learning_parameters is not None:
        # imported here: the network regressor pulls in torch, the classical ones do not need it
        from sitsmap.learning.deep.regressor import DeepRegressor

        return DeepRegressor.from_settings(
            settings.deep_learning_parameters,
            seed,
            n_dates=n_dates,
            day_of_year=day_of_year,
            feature_names=feature_names,
        )
    if settings.classifier == "svm":
        raise ConfigError(
            "arg_train.classifier svm does not do regression: use rf, lightgbm or a network"
        )
    if settings.classifier == "lightgbm":
        model = _lightgbm(settings.lightgbm_parameters, seed, n_jobs)
        model.regression_bins = int(settings.regression_bins)
        model.quantile_interval = _levels(settings.quantile_interval)
        return model
    if settings.quantile_interval is not None:
        log.info("arg_train.quantile_interval is for lightgbm: the forest's spread is used instead")
    params = random_forest_parameters(settings.otb_classifier_options)
    # each split draws sqrt(n features), as OTB's forest (and the classifier) does;
    # with scikit-learn's regressor default, every feature, one 12 000-sample
    # region model of the demo (481 features) had not finished after 22 min
    return RandomForestRegression(
        **params, max_features=RF_MAX_FEATURES, random_state=seed, n_jobs=n_jobs
    )


def _lightgbm(given: Mapping[str, Any], seed: int, n_jobs: int) -> LightGBMRegression:
    """LightGBM with the user's parameters, the run's seed and the chain's defaults."""
    # no L2 default: a squared loss has unit hessians, so a leaf's value cannot explode
    # as the classifier's multiclass ones did (see classical.LIGHTGBM_L2)
    model = LightGBMRegression(**lightgbm_parameters(given, seed, n_jobs))
    model.size_from_data = not MIN_CHILD_ALIASES & set(given)
    return model
