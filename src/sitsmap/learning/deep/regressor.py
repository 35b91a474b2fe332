"""A PyTorch network as a regressor: :class:`DeepRegressor`, the twin of ``DeepClassifier``.

The same networks (MLP, TempCNN, L-TAE, Transformer; gap-filled grid and raw
dates alike) with one output unit, trained by the same loop
(:class:`~sitsmap.learning.deep.trainer.DeepNetwork`); only the task's pieces
differ:

* the target is standardised with the learning part's mean and standard
  deviation (stored; predictions are in the target's units);
* the loss is the mean squared error or the Huber loss on the standardised target;
* the monitoring split is stratified on quantile bins of each polygon's mean
  target (:func:`target_strata`), as classification stratifies on classes;
* the monitoring metrics per epoch are the loss, the RMSE (target units) and
  R²; the kept epoch is the best by ``rmse`` (the default; ``fscore``, the
  configuration's default, means it), ``r2`` or ``loss``;
* a combination does not learn when its monitoring R² at the best epoch is at
  most 0, or its monitoring loss never goes below the first epoch's
  (:func:`~sitsmap.learning.deep.history.regression_not_learning`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from sklearn.base import RegressorMixin
from torch import nn

from sitsmap.config.schema import DeepLearningParameters
from sitsmap.errors import ConfigError, InputDataError
from sitsmap.learning.deep.history import (
    REGRESSION_CRITERIA,
    REGRESSION_HISTORY_COLUMNS,
    regression_not_learning,
)
from sitsmap.learning.deep.trainer import (
    DeepClassifier,
    DeepNetwork,
    _forward_rows,
    _Run,
    _Samples,
)
from sitsmap.sampling.bins import bin_edges, bin_of

__all__ = [
    "CLASSIFICATION_CRITERIA",
    "REGRESSION_LOSSES",
    "STRATA_BINS",
    "DeepRegressor",
    "RegressionLoss",
    "model_from_state",
    "regression_metrics",
    "target_strata",
]

log = logging.getLogger(__name__)

REGRESSION_LOSSES = ("mse", "huber")
"""``deep_learning_parameters.regression_loss`` values."""

STRATA_BINS = 5
"""Quantile bins of the polygons' mean target that stratify the monitoring split: with the
20 % monitoring ratio, five bins put at least one polygon of each fifth of the target's
range in monitoring once there are ten polygons, without needing many polygons per bin."""

CLASSIFICATION_CRITERIA = ("oa", "kappa")
"""Selection criteria that only mean something for classes."""


def target_strata(
    y: np.ndarray, groups: np.ndarray | None, n_bins: int = STRATA_BINS
) -> np.ndarray:
    """Return each sample's stratum: the quantile bin of its polygon's mean target.

    Parameters
    ----------
    y : ndarray
        Finite target of each sample.
    groups : ndarray, optional
        Polygon id of each sample; each sample is its own polygon when omitted.
    n_bins : int
        Quantile bins of the polygons' mean targets (fewer when they have fewer
        distinct quantiles, see :func:`~sitsmap.sampling.bins.bin_edges`).

    Returns
    -------
    ndarray of int32
        The bin of each sample; every sample of a polygon has its polygon's.

    Raises
    ------
    InputDataError
        If ``groups`` does not have one id per sample.
    """
    y = np.asarray(y, dtype=np.float64)
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    if groups.shape != y.shape:
        raise InputDataError(f"{len(groups)} polygon ids given for {len(y)} samples")
    _, index = np.unique(groups, return_inverse=True)
    index = index.ravel()
    means = np.bincount(index, weights=y) / np.bincount(index)
    return bin_of(means, bin_edges(means, n_bins))[index]


class RegressionLoss(nn.Module):
    """The mean squared error or the Huber loss of a one-unit output against the target.

    Parameters
    ----------
    kind : {"mse", "huber"}
        The loss.
    delta : float
        Where the Huber loss turns from quadratic to linear (target's standard deviations).
    """

    def __init__(self, kind: str = "mse", delta: float = 1.0) -> None:
        super().__init__()
        self.kind = kind
        self.delta = delta

    def forward(
        self, output: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
    ) -> torch.Tensor:
        """Return the loss of ``output`` ``(batch, 1)`` against ``target`` ``(batch,)``."""
        prediction = output[:, 0]
        if self.kind == "huber":
            return nn.functional.huber_loss(
                prediction, target, reduction=reduction, delta=self.delta
            )
        return nn.functional.mse_loss(prediction, target, reduction=reduction)


def regression_metrics(
    model: nn.Module, samples: _Samples, loss_function: RegressionLoss, target_scale: float
) -> dict[str, float]:
    """Return the loss, RMSE and R² of ``model`` on standardised ``samples`` (one sync).

    Parameters
    ----------
    model : torch.nn.Module
        A one-output network.
    samples : _Samples
        Standardised features and standardised targets, on one device.
    loss_function : RegressionLoss
        The training loss (the monitoring loss is its mean over the samples).
    target_scale : float
        The target's standard deviation: the RMSE is given in the target's units.

    Returns
    -------
    dict
        ``val_loss``, ``val_rmse`` and ``val_r2`` (R² of the samples: 1 minus the
        squared error over the squared deviations from their own mean; 0 when the
        target does not vary among them).
    """
    model.eval()
    device = samples.X.device
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    squared_error = torch.zeros((), dtype=torch.float64, device=device)
    rows = _forward_rows(device)
    with torch.inference_mode():
        for start in range(0, len(samples), rows):
            target = samples.y[start : start + rows]
            output = model(samples.X[start : start + rows])
            loss_sum += loss_function(output, target, reduction="sum")
            squared_error += ((output[:, 0] - target).double() ** 2).sum()
        target = samples.y.double()
        deviations = ((target - target.mean()) ** 2).sum()
    loss, sse, sst = torch.stack([loss_sum, squared_error, deviations]).tolist()
    count = max(len(samples), 1)
    return {
        "val_loss": loss / count,
        "val_rmse": math.sqrt(sse / count) * target_scale,
        "val_r2": 1.0 - sse / sst if sst > 0 else 0.0,
    }


class DeepRegressor(RegressorMixin, DeepNetwork):
    """A PyTorch regressor trained over a learning-rate × batch-size grid.

    The parameters are :class:`~sitsmap.learning.deep.trainer.DeepNetwork`'s
    (``weighted_labels`` has no effect: it weights classes), and:

    Parameters
    ----------
    selection_criterion : {"rmse", "r2", "loss", "fscore"}
        Monitoring metric that picks the kept epoch (RMSE and loss minimised,
        R² maximised); ``fscore``, the configuration's default, means ``rmse``.
    regression_loss : {"mse", "huber"}
        Training loss on the standardised target.
    huber_delta : float
        Where the Huber loss turns linear, in standard deviations of the target.

    Attributes
    ----------
    target_mean_, target_scale_ : float
        Standardisation of the target (mean and standard deviation over the
        learning part; a constant target gets a scale of 1).
    uncertainty_ : None
        No uncertainty: :meth:`predict_with_uncertainty` gives none.
    history_ : pandas.DataFrame
        Columns :data:`~sitsmap.learning.deep.history.REGRESSION_HISTORY_COLUMNS`.
    """

    task: ClassVar[str] = "regression"
    criteria: ClassVar[Mapping[str, str]] = {
        **REGRESSION_CRITERIA,
        "fscore": REGRESSION_CRITERIA["rmse"],
    }
    history_columns: ClassVar[tuple[str, ...]] = REGRESSION_HISTORY_COLUMNS
    _stratum: ClassVar[str] = "target bin"

    def __init__(
        self,
        dl_name: str = "MLPClassifier",
        epochs: int | None = None,
        learning_rates: Sequence[float] | None = None,
        batch_sizes: Sequence[int] | None = None,
        selection_criterion: str = "rmse",
        monitoring_ratio: float = 0.2,
        seed: int = 0,
        num_workers: int = 0,
        weighted_labels: bool = False,
        enable_early_stop: bool | None = None,
        early_stop_patience: int = 10,
        dl_parameters: dict[str, Any] | None = None,
        n_dates: int | None = None,
        day_of_year: Sequence[int] | None = None,
        device: str | None = None,
        weight_decay: float | None = None,
        lr_schedule: str | None = None,
        impute: str = "refuse",
        feature_names: Sequence[str] | None = None,
        augmentation: dict[str, float | None] | None = None,
        regression_loss: str = "mse",
        huber_delta: float = 1.0,
    ) -> None:
        super().__init__(
            dl_name=dl_name,
            epochs=epochs,
            learning_rates=learning_rates,
            batch_sizes=batch_sizes,
            selection_criterion=selection_criterion,
            monitoring_ratio=monitoring_ratio,
            seed=seed,
            num_workers=num_workers,
            weighted_labels=weighted_labels,
            enable_early_stop=enable_early_stop,
            early_stop_patience=early_stop_patience,
            dl_parameters=dl_parameters,
            n_dates=n_dates,
            day_of_year=day_of_year,
            device=device,
            weight_decay=weight_decay,
            lr_schedule=lr_schedule,
            impute=impute,
            feature_names=feature_names,
            augmentation=augmentation,
        )
        self.regression_loss = regression_loss
        self.huber_delta = huber_delta

    @classmethod
    def _settings_arguments(
        cls,
        dl: DeepLearningParameters,
        seed: int,
        n_dates: int | None,
        day_of_year: Sequence[int] | None,
        feature_names: Sequence[str] | None,
    ) -> dict[str, Any]:
        """Add the regression settings; ``fscore`` (the default criterion) becomes ``rmse``.

        Raises
        ------
        ConfigError
            If the criterion is a classification one (oa, kappa).
        """
        _refuse_classification_criterion(dl.model_selection_criterion)
        arguments = super()._settings_arguments(dl, seed, n_dates, day_of_year, feature_names)
        criterion = dl.model_selection_criterion
        return {
            **arguments,
            "selection_criterion": "rmse" if criterion == "fscore" else criterion,
            "regression_loss": dl.regression_loss,
            "huber_delta": float(dl.huber_delta),
        }

    # -------------------------------------------------------------- predict

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Return the predicted target of each sample, float32 ``(n_samples,)``, target units.

        Non-finite features are replaced as in ``fit`` when ``impute`` is not ``refuse``.
        """
        mean, scale = self.target_mean_, self.target_scale_
        return self._forward(X, (), lambda output: output[:, 0].double() * scale + mean)

    def predict_with_uncertainty(self, X: np.ndarray) -> tuple[np.ndarray, None]:
        """Return :meth:`predict`'s values and no uncertainty (a network gives none)."""
        return self.predict(X), None

    # ------------------------------------------------------------ the task's pieces

    def _check_settings(self) -> None:
        """Refuse a classification criterion, an unknown loss or a Huber delta that is not > 0."""
        _refuse_classification_criterion(self.selection_criterion)
        if self.regression_loss not in REGRESSION_LOSSES:
            raise ConfigError(
                f"unknown regression loss {self.regression_loss!r}; known: "
                f"{list(REGRESSION_LOSSES)}"
            )
        if not self.huber_delta > 0:
            raise ConfigError(f"huber_delta must be > 0, got {self.huber_delta}")
        super()._check_settings()

    def _encode_target(
        self, y: np.ndarray, groups: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the target as float64 and the quantile bins of its polygons' means.

        Raises
        ------
        InputDataError
            If the target is not numeric or not finite.
        """
        try:
            values = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputDataError(f"the regression target must be numeric ({exc})") from exc
        bad = int((~np.isfinite(values)).sum())
        if bad:
            raise InputDataError(
                f"{bad} non-finite target values (NaN or ±inf) among {len(values)} samples: "
                "a regression network needs a value for every sample"
            )
        if self.weighted_labels:
            log.warning(
                "weighted_labels has no effect on a regression network (it weights classes)"
            )
        self.uncertainty_ = None
        return values, target_strata(values, groups)

    def _fit_target(self, targets: np.ndarray) -> None:
        """Store the learning part's target mean and standard deviation."""
        mean, std = float(np.mean(targets)), float(np.std(targets))
        self.target_mean_ = mean
        self.target_scale_ = std if std > 0 and math.isfinite(std) else 1.0

    def _target_tensor(self, targets: np.ndarray) -> torch.Tensor:
        """Return the standardised target as float32."""
        standardised = (targets - self.target_mean_) / self.target_scale_
        return torch.from_numpy(standardised.astype(np.float32))

    def _n_outputs(self) -> int:
        """One output unit: the standardised target."""
        return 1

    def _loss_function(self, weights: torch.Tensor | None) -> nn.Module:
        """The MSE or Huber loss (``weights`` is always None in regression)."""
        return RegressionLoss(self.regression_loss, float(self.huber_delta))

    def _monitor(
        self, model: nn.Module, samples: _Samples, loss_function: nn.Module
    ) -> dict[str, float]:
        """Return the monitoring loss, RMSE (target units) and R²."""
        assert isinstance(loss_function, RegressionLoss)
        return regression_metrics(model, samples, loss_function, self.target_scale_)

    def _symptom(self, run: _Run, monitoring: _Samples, weights: torch.Tensor | None) -> str:
        """R² at most 0 at the best epoch, or a monitoring loss that never went down."""
        return regression_not_learning(pd.DataFrame(run.rows), self._criterion_column())

    def _target_state(self) -> dict[str, Any]:
        """The task and the target's standardisation."""
        return {
            "task": self.task,
            "target_mean": float(self.target_mean_),
            "target_scale": float(self.target_scale_),
        }

    def _restore_target(self, state: dict[str, Any]) -> None:
        """Restore the target's standardisation."""
        self.target_mean_ = float(state["target_mean"])
        self.target_scale_ = float(state["target_scale"])
        self.uncertainty_ = None


def model_from_state(state: dict[str, Any]) -> DeepNetwork:
    """Rebuild a fitted classifier or regressor from its ``get_state()`` (told by ``task``).

    A state without ``task`` (every classifier's) is a :class:`DeepClassifier`'s.
    """
    if state.get("task") == DeepRegressor.task:
        return DeepRegressor.from_state(state)
    return DeepClassifier.from_state(state)


def _refuse_classification_criterion(criterion: str) -> None:
    """Raise ConfigError, one line, for a classification-only selection criterion."""
    if criterion in CLASSIFICATION_CRITERIA:
        raise ConfigError(
            f"model_selection_criterion {criterion!r} is for classification; a regression "
            "network's kept epoch is chosen by rmse, r2 or loss"
        )
