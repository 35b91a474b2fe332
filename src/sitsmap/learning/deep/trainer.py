"""Train a PyTorch network behind the scikit-learn face: ``fit``, ``predict``, ``predict_proba``.

The learning samples are split 80/20 by polygon into a learning part and a
monitoring part; the network is trained for every (learning rate, batch size)
of a grid, and the weights of the best epoch on the monitoring part are kept.

Settings left unset are chosen from the number of learning samples by
:func:`auto_settings`, with AdamW, a one-cycle schedule and early stopping;
settings given are honoured exactly (Adam at a constant rate, as before).
A combination that does not learn is reported (a WARNING and the history's
``diagnosis`` column); non-finite features are refused or imputed.

:class:`DeepNetwork` holds the training loop; the task's pieces (the target's
encoding and the monitoring split's strata, the output width, the loss, the
monitoring metrics, which criterion is better, the not-learning symptoms) are
small methods that :class:`DeepClassifier` and
:class:`~sitsmap.learning.deep.regressor.DeepRegressor` fill in.

The epoch loop is written for speed: the samples live on the device as two
tensors, batches are slices of a seeded random permutation (no DataLoader
unless worker processes are asked for), and the monitoring metrics come from
one batched forward pass and a confusion matrix built with ``torch.bincount``.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import nn

from sitsmap.config.schema import DeepLearningParameters
from sitsmap.errors import ConfigError, InputDataError
from sitsmap.learning.deep.augment import (
    AUGMENTATION_SEED,
    Augmentation,
    augment,
    ineffective_time_shift,
    layout_of,
)
from sitsmap.learning.deep.history import CRITERIA, HISTORY_COLUMNS, MINIMISED, not_learning
from sitsmap.learning.deep.layout import (
    DAY_VARIABLE,
    RAW_SLOT,
    VALID_VARIABLE,
    TemporalLayout,
    is_raw,
    raw_slot_count,
)
from sitsmap.learning.deep.models import build_network, check_raw_support

__all__ = [
    "HISTORY_COLUMNS",
    "DeepClassifier",
    "DeepNetwork",
    "auto_batch_size",
    "auto_epochs",
    "auto_learning_rate",
    "auto_settings",
    "check_feature_order",
    "check_raw_feature_order",
    "column_mean_std",
    "raw_mean_std",
    "confusion_metrics",
    "finite_column_stats",
    "monitoring_split",
    "select_device",
]

log = logging.getLogger(__name__)

FORWARD_ROWS = {"cpu": 8192, "cuda": 65536}
"""Rows per forward pass in ``predict_proba`` and in the monitoring evaluation, per device
type (on the CPU, blocks that fit in cache are faster than one huge matrix product)."""

AUTO_STEPS_PER_EPOCH = 50
"""Automatic batch size: about this many optimiser steps per epoch (``n / 50``)."""

AUTO_BATCH_RANGE = (32, 4096)
"""Automatic batch size bounds: below 32, batch normalisation statistics get noisy; 4096
is the reference scenario's batch for 1.78 M samples."""

AUTO_LEARNING_RATE = 1e-3
"""Automatic peak learning rate at batch 256 and below (Adam's usual rate)."""

AUTO_MAX_LEARNING_RATE = 3e-3
"""Cap of the automatic learning rate, reached at batch 2304."""

AUTO_STEPS = 10_000
"""Automatic epochs aim at about this many optimiser steps in all."""

AUTO_EPOCH_RANGE = (30, 300)
"""Automatic epochs bounds."""

AUTO_WEIGHT_DECAY = 1e-4
"""AdamW's decoupled weight decay when the learning rate is automatic."""

COSINE_WARMUP = 0.05
"""Share of the steps of the ``cosine`` schedule's linear warm-up."""

SCHEDULES = ("constant", "onecycle", "cosine")
IMPUTATIONS = ("refuse", "mean", "zero")
TEMPORAL_NETWORKS = ("TempCNN", "LTAE", "Transformer")

_DATED_NAME = re.compile(r"^(?P<variable>.+)_(?P<date>\d{8})$")
"""A feature name ``<sensor>_<variable>_<YYYYMMDD>`` (see :func:`check_feature_order`)."""


PREDICT_ROWS_PER_THREAD = 512
"""Rows per forward pass of ``predict_proba`` on the CPU, per torch thread.

A block of 512 rows keeps a network's activations in a core's cache (TempCNN's are
9.5 KB a row): on one thread it predicts 1.1 to 2.3 times faster than blocks of 8192
rows (``bench/network_inference.py``). A row's output does not depend on its block."""


def _forward_rows(device: torch.device) -> int:
    """Return the number of rows per forward pass without gradients on ``device``."""
    return FORWARD_ROWS.get(device.type, FORWARD_ROWS["cpu"])


def _predict_rows(device: torch.device) -> int:
    """Return the rows per forward pass of ``predict_proba`` on ``device``.

    On the CPU, :data:`PREDICT_ROWS_PER_THREAD` per torch thread (the process's
    budget, see :func:`~sitsmap.learning.persistence.use_threads`); on a GPU, as
    :data:`FORWARD_ROWS` says.
    """
    if device.type == "cpu":
        return PREDICT_ROWS_PER_THREAD * max(torch.get_num_threads(), 1)
    return _forward_rows(device)


def select_device(device: str | torch.device | None = None) -> torch.device:
    """Return ``device`` if given, else CUDA when available, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# ----------------------------------------------------------------- automatic settings


def auto_batch_size(n_samples: int) -> int:
    """Return the power of two nearest ``n_samples / 50``, clipped to [32, 4096]."""
    target = max(n_samples / AUTO_STEPS_PER_EPOCH, 1.0)
    low, high = AUTO_BATCH_RANGE
    return int(min(max(2 ** round(math.log2(target)), low), high))


def auto_learning_rate(batch_size: int) -> float:
    """Return ``1e-3 × sqrt(batch / 256)``, between 1e-3 and 3e-3.

    The square-root scaling keeps the gradient noise of larger batches about
    the same; the cap keeps TempCNN and L-TAE stable.
    """
    rate = AUTO_LEARNING_RATE * math.sqrt(max(batch_size, 256) / 256)
    return min(rate, AUTO_MAX_LEARNING_RATE)


def auto_epochs(n_samples: int, batch_size: int) -> int:
    """Return ``ceil(10000 / ceil(n / batch))`` epochs (10 000 steps), clipped to [30, 300]."""
    steps_per_epoch = max(math.ceil(n_samples / batch_size), 1)
    low, high = AUTO_EPOCH_RANGE
    return int(min(max(math.ceil(AUTO_STEPS / steps_per_epoch), low), high))


def auto_settings(n_samples: int) -> dict[str, float | int]:
    """Return the automatic ``batch_size``, ``learning_rate`` and ``epochs`` for ``n_samples``.

    The rule, for ``n`` learning samples (those left after the monitoring split):

    - batch size: the power of two nearest ``n / 50``, clipped to [32, 4096];
    - learning rate (peak of the schedule): ``1e-3 × sqrt(batch / 256)``,
      between 1e-3 and 3e-3;
    - epochs: ``ceil(10000 / ceil(n / batch))`` (about 10 000 optimiser steps),
      clipped to [30, 300].

    With an automatic learning rate the network is also trained with AdamW
    (weight decay 1e-4), a one-cycle schedule and early stopping, unless
    those are set.

    Examples
    --------
    >>> auto_settings(1_000)
    {'batch_size': 32, 'learning_rate': 0.001, 'epochs': 300}
    """
    batch_size = auto_batch_size(n_samples)
    return {
        "batch_size": batch_size,
        "learning_rate": auto_learning_rate(batch_size),
        "epochs": auto_epochs(n_samples, batch_size),
    }


# ------------------------------------------------------------------ data


def monitoring_split(
    y: np.ndarray, groups: np.ndarray | None, ratio: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split samples into learning and monitoring parts, whole polygons at a time.

    For each class, ``round(ratio × n)`` of its ``n`` polygons (at least one,
    at most ``n - 1``) go to monitoring, so every class with two polygons or
    more is monitored and every class keeps learning samples. A polygon holding
    several classes counts for the class of its first sample.

    Parameters
    ----------
    y : ndarray
        Class of each sample.
    groups : ndarray, optional
        Polygon id of each sample; each sample is its own polygon when omitted.
    ratio : float
        Fraction of each class's polygons used for monitoring.
    seed : int
        Seed of the draw.

    Returns
    -------
    learn, monitor : ndarray of int
        Sorted sample indices of both parts; they never share a polygon.
    """
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    if groups.shape != y.shape:
        raise InputDataError(f"{len(groups)} polygon ids given for {len(y)} samples")
    polygons, first, group_index = np.unique(groups, return_index=True, return_inverse=True)
    polygon_class = y[first]
    rng = np.random.default_rng(seed)
    monitored = np.zeros(len(polygons), dtype=bool)
    for label in np.unique(polygon_class):
        members = np.flatnonzero(polygon_class == label)
        if len(members) < 2:
            continue
        count = min(max(1, round(ratio * len(members))), len(members) - 1)
        monitored[rng.permutation(members)[:count]] = True
    in_monitoring = monitored[group_index.ravel()]
    return np.flatnonzero(~in_monitoring), np.flatnonzero(in_monitoring)


def column_mean_std(X: np.ndarray, chunk: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """Return the mean and standard deviation of each column, in float32.

    Accumulated in float64 over row chunks (Chan's merge), so no full-size
    temporary array is made. A constant column gets a scale of 1.
    """
    count = 0
    mean = np.zeros(X.shape[1])
    m2 = np.zeros(X.shape[1])
    for start in range(0, len(X), chunk):
        block = X[start : start + chunk].astype(np.float64)
        n_block = len(block)
        block_mean = block.mean(axis=0)
        block_m2 = ((block - block_mean) ** 2).sum(axis=0)
        delta = block_mean - mean
        total = count + n_block
        mean = mean + delta * n_block / total
        m2 = m2 + block_m2 + delta**2 * count * n_block / total
        count = total
    std = np.sqrt(m2 / max(count, 1))
    std[std == 0] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def raw_mean_std(
    X: np.ndarray, layout: TemporalLayout, chunk: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """Return the per-column standardisation of raw-dates rows ``X``, in float32.

    Each channel's ``T`` value columns share the mean and standard deviation of
    that channel over the valid observations only (the padding zeros would bias
    them, and a slot holds different dates from pixel to pixel, so per-slot
    statistics mean nothing). The days and validity columns get a mean of 0 and a
    scale of 1: the networks read them as they are. Accumulated in float64 over
    row chunks, in two passes; a constant channel, or one never observed, gets a
    scale of 1.

    Parameters
    ----------
    X : ndarray
        Rows ``(n_samples, layout.n_features)``.
    layout : TemporalLayout
        A raw layout (``layout.raw``).
    chunk : int
        Rows per block (raw rows are wide: 4096 rows of 15 × 91 columns are 45 MB in float64).

    Returns
    -------
    mean, scale : ndarray of float32
        ``(layout.n_features,)`` each, as :func:`column_mean_std` gives them.
    """
    n_channels, n_slots = layout.n_channels, layout.n_dates
    count = 0.0
    sums = np.zeros(n_channels)
    for values, valid in _raw_blocks(X, layout, chunk):
        count += valid.sum()
        sums += np.einsum("bct,bt->c", values, valid)
    channel_mean = sums / max(count, 1.0)
    squares = np.zeros(n_channels)
    for values, valid in _raw_blocks(X, layout, chunk):
        squares += np.einsum("bct,bt->c", (values - channel_mean[:, None]) ** 2, valid)
    channel_std = np.sqrt(squares / max(count, 1.0))
    channel_std[channel_std == 0] = 1.0
    mean = np.zeros(layout.n_features)
    scale = np.ones(layout.n_features)
    mean[: layout.n_values] = np.repeat(channel_mean, n_slots)
    scale[: layout.n_values] = np.repeat(channel_std, n_slots)
    return mean.astype(np.float32), scale.astype(np.float32)


def _raw_blocks(
    X: np.ndarray, layout: TemporalLayout, chunk: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield the values ``(b, C, T)`` and validity ``(b, T)`` of row chunks, in float64."""
    n_values, n_slots = layout.n_values, layout.n_dates
    for start in range(0, len(X), chunk):
        block = X[start : start + chunk]
        values = block[:, :n_values].astype(np.float64).reshape(len(block), -1, n_slots)
        valid = (block[:, n_values + n_slots :] > 0.5).astype(np.float64)
        yield values, valid


def confusion_metrics(confusion: torch.Tensor) -> torch.Tensor:
    """Return overall accuracy, Cohen's kappa and macro F-score of a confusion matrix.

    Parameters
    ----------
    confusion : Tensor
        ``(n_classes, n_classes)`` counts, rows true classes, columns predictions.

    Returns
    -------
    Tensor
        ``[oa, kappa, fscore]``. The F-score averages over the classes present
        among the true or predicted labels (as scikit-learn does); kappa is 0
        when chance agreement is 1.
    """
    confusion = confusion.to(torch.float64)
    total = confusion.sum().clamp(min=1)
    correct = confusion.diagonal()
    oa = correct.sum() / total
    chance = (confusion.sum(0) * confusion.sum(1)).sum() / total**2
    kappa = torch.where(chance < 1, (oa - chance) / (1 - chance).clamp(min=1e-12), 0.0)
    denominator = confusion.sum(0) + confusion.sum(1)
    present = denominator > 0
    fscores = 2 * correct / denominator.clamp(min=1)
    fscore = fscores[present].sum() / present.sum().clamp(min=1)
    return torch.stack([oa, kappa, fscore])


def finite_column_stats(X: np.ndarray, chunk: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """Return each column's count of non-finite values and the mean of its finite ones.

    Accumulated in float64 over row chunks; a column without a finite value has
    a mean of 0.

    Returns
    -------
    counts : ndarray of int64
        NaN and ±inf values per column.
    means : ndarray of float32
        Mean of the finite values per column.
    """
    counts = np.zeros(X.shape[1], dtype=np.int64)
    sums = np.zeros(X.shape[1])
    for start in range(0, len(X), chunk):
        block = X[start : start + chunk]
        finite = np.isfinite(block)
        counts += len(block) - finite.sum(axis=0)
        sums += np.where(finite, block, 0).sum(axis=0, dtype=np.float64)
    finite_counts = len(X) - counts
    means = np.divide(sums, finite_counts, out=np.zeros_like(sums), where=finite_counts > 0)
    return counts, means.astype(np.float32)


def _fill_non_finite(X: np.ndarray, values: np.ndarray, chunk: int = 16384) -> None:
    """Replace the non-finite values of ``X`` in place by their column's ``values``."""
    for start in range(0, len(X), chunk):
        block = X[start : start + chunk]
        bad = ~np.isfinite(block)
        if bad.any():
            block[bad] = np.broadcast_to(values, block.shape)[bad]


def check_feature_order(feature_names: Sequence[str], n_dates: int, dl_name: str) -> None:
    """Refuse feature names that are not in the band-by-band order the temporal networks read.

    The networks reshape a row into ``(bands, dates)``: the first ``n_dates``
    features must be the first band's dates, and so on, as the chain names
    them (``sentinel2_b2_20180101``, ``sentinel2_b2_20180111``, …). Names
    without a ``_YYYYMMDD`` suffix cannot be checked and are accepted.
    Raw-dates names (``sentinel2_b2_obs000``) must be in the raw layout's order
    (see :func:`check_raw_feature_order`).

    Raises
    ------
    InputDataError
        If the names are dated but not band by band (e.g. date by date).
    """
    if is_raw(feature_names):
        check_raw_feature_order(feature_names, n_dates, dl_name)
        return
    matches = [_DATED_NAME.match(name) for name in feature_names]
    if not all(matches) or len(matches) % n_dates:
        log.debug("feature names without date stamps: their order is not checked")
        return
    variables = np.array([m["variable"] for m in matches]).reshape(-1, n_dates)
    dates = np.array([m["date"] for m in matches]).reshape(-1, n_dates)
    if (variables == variables[:, :1]).all() and (dates == dates[:1]).all():
        return
    dates_first = (dates.reshape(n_dates, -1) == dates.reshape(n_dates, -1)[:, :1]).all()
    order = "date by date" if dates_first else "in another order"
    raise InputDataError(
        f"{dl_name} reshapes the features into (bands, {n_dates} dates), band by band, "
        f"but the feature names come {order} ({', '.join(feature_names[:3])}, …): "
        "order the columns <sensor>_<band>_<date>, all dates of a band before the next band"
    )


def check_raw_feature_order(feature_names: Sequence[str], n_slots: int, dl_name: str) -> None:
    """Refuse raw-dates feature names that are not in the raw layout's order.

    The order (:mod:`~sitsmap.learning.deep.layout`): each variable's ``n_slots``
    slots in slot order (``sentinel2_b2_obs000``, ``sentinel2_b2_obs001``, …),
    variable after variable, then the slots' days (``sentinel2_doy_obsKKK``), then
    their validity flags (``sentinel2_valid_obsKKK``).

    Raises
    ------
    InputDataError
        If the names are not in that order, or not all raw-dates names.
    """
    matches = [RAW_SLOT.match(str(name)) for name in feature_names]
    if all(matches) and n_slots > 0 and len(matches) % n_slots == 0:
        variables = np.array([m["variable"] for m in matches]).reshape(-1, n_slots)
        slots = np.array([int(m["slot"]) for m in matches]).reshape(-1, n_slots)
        kinds = [str(v).rsplit("_", 1)[-1] for v in variables[:, 0]]
        if (
            len(kinds) > 2
            and (variables == variables[:, :1]).all()
            and (slots == np.arange(n_slots)).all()
            and kinds[-2:] == [DAY_VARIABLE, VALID_VARIABLE]
            and not {DAY_VARIABLE, VALID_VARIABLE} & set(kinds[:-2])
        ):
            return
    raise InputDataError(
        f"{dl_name} reads raw-dates features as channels x {n_slots} observation slots, "
        f"then the slots' days and validity flags, but the feature names come in another "
        f"order ({', '.join(map(str, feature_names[:3]))}, …): order the columns "
        "<sensor>_<variable>_obsKKK, all slots of a variable before the next, then "
        f"<sensor>_{DAY_VARIABLE}_obsKKK, then <sensor>_{VALID_VARIABLE}_obsKKK"
    )


@dataclass
class _Samples:
    """Standardised features and targets (class indices, or standardised values)."""

    X: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class _Run:
    """What training one grid combination produced."""

    rows: list[dict[str, Any]]
    best_score: float
    best_epoch: int
    best_state: dict[str, torch.Tensor]
    diagnosis: str = ""
    """Why the combination does not learn, or empty."""


@dataclass(frozen=True)
class _Plan:
    """How one grid combination is trained, every setting resolved."""

    learning_rate: float
    batch_size: int
    epochs: int
    weight_decay: float
    lr_schedule: str
    early_stop: bool
    early_stop_patience: int
    automatic: tuple[str, ...]
    """Names of the settings chosen automatically."""


class DeepNetwork(BaseEstimator):
    """A PyTorch network trained over a learning-rate × batch-size grid: the shared loop.

    The task's pieces are methods a subclass fills in (:class:`DeepClassifier`,
    :class:`~sitsmap.learning.deep.regressor.DeepRegressor`): ``_encode_target``
    (targets and the monitoring split's strata), ``_fit_target``,
    ``_target_tensor``, ``_n_outputs``, ``_class_weights``, ``_loss_function``,
    ``_monitor`` (monitoring metrics of an epoch), ``_symptom`` (why a
    combination does not learn), ``_target_state`` and ``_restore_target``; the
    class attributes ``task``, ``criteria`` (criterion → history column) and
    ``history_columns`` name the rest.

    Settings left to None are chosen from the number ``n`` of samples in the
    learning part (after the monitoring split), see :func:`auto_settings`;
    settings given are used as given. With ``learning_rates``, ``weight_decay``,
    ``lr_schedule`` and ``enable_early_stop`` given as before (Adam, constant
    rate), training is exactly what it was before automatic settings existed.

    Parameters
    ----------
    dl_name : {"MLPClassifier", "TempCNN", "LTAE", "Transformer"}
        Network architecture (see :mod:`sitsmap.learning.deep.models`).
    epochs : int, optional
        Epochs per grid combination; None: :func:`auto_epochs`.
    learning_rates : sequence of float, optional
        The grid's (peak) learning rates; None: :func:`auto_learning_rate` of each
        batch size, with AdamW, a one-cycle schedule and early stopping unless
        ``weight_decay``, ``lr_schedule`` or ``enable_early_stop`` are given.
    batch_sizes : sequence of int, optional
        The grid's batch sizes; None: :func:`auto_batch_size`. One training per
        (learning rate, batch size).
    selection_criterion : str
        Monitoring metric that picks the kept epoch, a key of ``criteria``
        (classification: fscore, oa, kappa, loss; the loss is minimised).
    monitoring_ratio : float
        Fraction of each class's (or target bin's) polygons held back for monitoring.
    seed : int
        Seeds the split, the initial weights, dropout and the shuffling.
    num_workers : int
        DataLoader worker processes; 0 slices tensors kept on the device.
    weighted_labels : bool
        Weight the loss by inverse class frequency (classification only).
    enable_early_stop : bool, optional
        Stop a combination after ``early_stop_patience`` epochs without
        improvement; None: on when the learning rate is automatic.
    early_stop_patience : int
        See ``enable_early_stop``.
    dl_parameters : dict, optional
        Extra keyword arguments of the network's constructor.
    n_dates : int, optional
        Dates of the temporal grid (TempCNN, LTAE, Transformer), or observation
        slots of raw-dates features (then counted from ``feature_names`` when omitted).
    day_of_year : sequence of int, optional
        Day of each grid date (positional encoding of LTAE and the Transformer).
    device : str, optional
        Training device; CUDA when available, else the CPU, when omitted.
    weight_decay : float, optional
        Decoupled weight decay of AdamW (0: Adam); None: 1e-4 when the learning
        rate is automatic, else 0.
    lr_schedule : {"constant", "onecycle", "cosine"}, optional
        Learning-rate schedule, stepped every batch; None: ``onecycle`` when the
        learning rate is automatic, else ``constant``.
    impute : {"refuse", "mean", "zero"}
        Non-finite features: an error, or replaced by the column's mean over
        the samples given to ``fit``, or by 0 (in ``fit`` and in ``predict``).
    feature_names : sequence of str, optional
        Names of the feature columns: named in error messages, and checked to be
        band by band for the temporal networks (see :func:`check_feature_order`).
        Raw-dates names (``sentinel2_b2_obs000``, see
        :mod:`~sitsmap.learning.deep.layout`) make LTAE and the Transformer read
        each sample's days and validity; their values are then standardised per
        channel over the valid observations (:func:`raw_mean_std`).
    augmentation : mapping, optional
        ``jitter``, ``date_dropout`` and ``time_shift`` of the training mini-batches
        (see :mod:`sitsmap.learning.deep.augment`); unset ones are off.

    Attributes
    ----------
    mean_, scale_ : ndarray of float32
        Standardisation of the features (from the learning part).
    impute_values_ : ndarray of float32 or None
        Value replacing a non-finite feature, per column (None: refused).
    history_ : pandas.DataFrame
        One row per epoch and combination, columns ``history_columns``.
    best_params_ : dict
        ``learning_rate``, ``batch_size`` and ``epoch`` of the kept weights.
    settings_ : dict
        Every setting of the kept combination, resolved; ``automatic``: the
        names of those chosen automatically; ``augmentation``: the resolved
        jitter, date dropout and time shift (all 0: none).
    diagnosis_ : str
        Why the kept combination does not learn, or ``""``.
    module_ : torch.nn.Module
        The network with the kept weights, in eval mode, on the CPU.
    """

    task: ClassVar[str] = ""
    """``classification`` or ``regression``."""
    criteria: ClassVar[Mapping[str, str]] = {}
    """Selection criterion → history column (:data:`~sitsmap.learning.deep.history.CRITERIA`)."""
    history_columns: ClassVar[tuple[str, ...]] = ()
    """Columns of ``history_``."""
    _stratum: ClassVar[str] = "class"
    """What the monitoring split is stratified on, in words."""

    def __init__(
        self,
        dl_name: str = "MLPClassifier",
        epochs: int | None = None,
        learning_rates: Sequence[float] | None = None,
        batch_sizes: Sequence[int] | None = None,
        selection_criterion: str = "fscore",
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
    ) -> None:
        self.dl_name = dl_name
        self.epochs = epochs
        self.learning_rates = learning_rates
        self.batch_sizes = batch_sizes
        self.selection_criterion = selection_criterion
        self.monitoring_ratio = monitoring_ratio
        self.seed = seed
        self.num_workers = num_workers
        self.weighted_labels = weighted_labels
        self.enable_early_stop = enable_early_stop
        self.early_stop_patience = early_stop_patience
        self.dl_parameters = dl_parameters
        self.n_dates = n_dates
        self.day_of_year = day_of_year
        self.device = device
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.impute = impute
        self.feature_names = feature_names
        self.augmentation = augmentation

    @classmethod
    def from_settings(
        cls,
        dl: DeepLearningParameters,
        seed: int,
        n_dates: int | None = None,
        day_of_year: Sequence[int] | None = None,
        feature_names: Sequence[str] | None = None,
    ) -> Self:
        """Return an unfitted model configured by ``arg_train.deep_learning_parameters``."""
        return cls(**cls._settings_arguments(dl, seed, n_dates, day_of_year, feature_names))

    @classmethod
    def _settings_arguments(
        cls,
        dl: DeepLearningParameters,
        seed: int,
        n_dates: int | None,
        day_of_year: Sequence[int] | None,
        feature_names: Sequence[str] | None,
    ) -> dict[str, Any]:
        """Return the constructor's arguments that ``dl`` and the data give."""
        solver = dl.hyperparameters_solver
        return dict(
            dl_name=dl.dl_name,
            epochs=dl.epochs,
            learning_rates=None if solver.learning_rate is None else tuple(solver.learning_rate),
            batch_sizes=None if solver.batch_size is None else tuple(solver.batch_size),
            selection_criterion=dl.model_selection_criterion,
            monitoring_ratio=dl.monitoring_ratio,
            seed=seed,
            num_workers=dl.num_workers,
            weighted_labels=dl.weighted_labels,
            enable_early_stop=dl.enable_early_stop,
            early_stop_patience=dl.early_stop_patience,
            dl_parameters=dict(dl.dl_parameters),
            n_dates=n_dates,
            day_of_year=None if day_of_year is None else [int(d) for d in day_of_year],
            weight_decay=dl.weight_decay,
            lr_schedule=dl.lr_schedule,
            impute=dl.impute,
            feature_names=None if feature_names is None else [str(n) for n in feature_names],
            augmentation=dl.augmentation.model_dump(),
        )

    # ------------------------------------------------------------------ fit

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> Self:
        """Train on ``X`` (n_samples, n_features) and targets ``y``; return self.

        Parameters
        ----------
        X : ndarray
            Features, band-major per date as the chain extracts them.
        y : ndarray
            Target of each sample: a class code, or a value in regression.
        groups : ndarray, optional
            Polygon id of each sample; learning and monitoring never share a
            polygon. Each sample is its own polygon when omitted.

        Raises
        ------
        ConfigError
            On an unknown criterion, schedule or imputation, or an empty grid.
        InputDataError
            On targets that do not match the samples, non-finite features that
            ``impute`` refuses, or feature names in the wrong order.
        """
        self._check_settings()
        X = _as_features(X)
        y = np.asarray(y).ravel()
        if len(y) != len(X):
            raise InputDataError(f"{len(y)} labels given for {len(X)} samples")
        targets, strata = self._encode_target(y, groups)
        self.n_features_in_ = X.shape[1]
        self._check_feature_names()
        self._warn_ineffective_augmentation()
        self.impute_values_ = self._impute_values(X)
        device = select_device(self.device)
        learning, monitoring = self._split(X, targets, strata, groups, device)
        grid = self._grid(len(learning))
        if not grid:
            raise ConfigError("the hyperparameter grid is empty")
        weights = self._class_weights(learning.y, device)
        rows: list[dict[str, Any]] = []
        best: tuple[_Run, _Plan] | None = None
        for learning_rate, batch_size in grid:
            run = self._train_combination(
                learning, monitoring, learning_rate, batch_size, weights, device
            )
            plan = self._plan(learning_rate, batch_size, len(learning))
            run.diagnosis = self._diagnose(run, plan, monitoring, weights, len(learning))
            rows += [{**row, "diagnosis": run.diagnosis} for row in run.rows]
            if run.diagnosis:
                log.info("lr %g batch %d: %s", learning_rate, batch_size, run.diagnosis)
            if best is None or self._better(run.best_score, best[0].best_score):
                best = (run, plan)
        assert best is not None
        self._keep(*best, rows)
        return self

    def _check_settings(self) -> None:
        """Raise ConfigError on an unknown criterion, schedule or imputation."""
        known = {
            "selection criterion": (self.selection_criterion, tuple(self.criteria)),
            "learning-rate schedule": (self.lr_schedule, (None, *SCHEDULES)),
            "imputation": (self.impute, IMPUTATIONS),
        }
        for what, (value, values) in known.items():
            if value not in values:
                names = sorted(v for v in values if v is not None)
                raise ConfigError(f"unknown {what} {value!r}; known: {names}")

    def _check_feature_names(self) -> None:
        """Check the feature names' count and, for the temporal networks, their order.

        Raw-dates names (see :mod:`~sitsmap.learning.deep.layout`) are refused for
        the networks that need aligned dates, and checked for the others.

        Raises
        ------
        ConfigError
            On raw-dates features for the MLP or TempCNN.
        InputDataError
            On a wrong count of names, or names in the wrong order.
        """
        if self.feature_names is None:
            return
        names = list(self.feature_names)
        if len(names) != self.n_features_in_:
            raise InputDataError(
                f"{len(names)} feature names given for {self.n_features_in_} features"
            )
        check_raw_support(self.dl_name, self._raw())
        n_dates = self._n_dates()
        if self.dl_name in TEMPORAL_NETWORKS and n_dates:
            check_feature_order(names, n_dates, self.dl_name)

    def _raw(self) -> bool:
        """Whether the features are in the raw-dates layout (told by their names)."""
        return is_raw(self.feature_names)

    def _n_dates(self) -> int | None:
        """Return the length of the time axis: grid dates, or raw observation slots.

        ``n_dates`` when given; else, raw, the slots the names hold, or the grid's
        ``day_of_year`` count.
        """
        if self.n_dates:
            return int(self.n_dates)
        if self._raw():
            return raw_slot_count(list(self.feature_names or ())) or None
        return len(self.day_of_year) if self.day_of_year else None

    def _raw_layout(self) -> TemporalLayout | None:
        """Return the raw-dates layout of the features, or None for gap-filled ones.

        Raises
        ------
        InputDataError
            If raw-dates features do not split into whole time series.
        """
        if not self._raw():
            return None
        return TemporalLayout.of(self.n_features_in_, self._n_dates() or 0, raw=True)

    def _impute_values(self, X: np.ndarray) -> np.ndarray | None:
        """Return the per-column values replacing non-finite features (None: refused).

        Raises
        ------
        InputDataError
            If ``X`` holds non-finite values and ``impute`` is ``refuse``.
        """
        counts, means = finite_column_stats(X)
        if self.impute == "refuse":
            if counts.any():
                raise InputDataError(self._non_finite_message(counts))
            return None
        if counts.any():
            log.warning(
                "%d non-finite feature values replaced by the column's %s",
                counts.sum(),
                self.impute,
            )
        return means if self.impute == "mean" else np.zeros_like(means)

    def _non_finite_message(self, counts: np.ndarray) -> str:
        """One line naming how many non-finite values there are, and in which columns."""
        columns = np.flatnonzero(counts)
        names = list(self.feature_names) if self.feature_names is not None else None
        shown = [f"{names[c] if names else f'column {c}'} ({counts[c]})" for c in columns[:5]]
        more = f" and {len(columns) - 5} more" if len(columns) > 5 else ""
        return (
            f"{counts.sum()} non-finite feature values (NaN or ±inf) in {len(columns)} "
            f"column(s): {', '.join(shown)}{more}; fix the features, or set "
            "arg_train.deep_learning_parameters.impute to mean or zero"
        )

    def _split(
        self,
        X: np.ndarray,
        targets: np.ndarray,
        strata: np.ndarray,
        groups: np.ndarray | None,
        device: torch.device,
    ) -> tuple[_Samples, _Samples]:
        """Split by polygon, fit the standardisation on the learning part, move both parts.

        The split is stratified on ``strata`` (classes, or bins of the target);
        the learning part stays on the CPU when DataLoader workers read it.
        """
        learn, monitor = monitoring_split(strata, groups, self.monitoring_ratio, self.seed)
        if len(monitor) == 0:
            log.warning("no %s has two polygons: monitoring on the learning samples", self._stratum)
            monitor = learn
        self._fit_target(targets[learn])
        learning_features, monitoring_features = X[learn], X[monitor]  # copies
        if self.impute_values_ is not None:
            _fill_non_finite(learning_features, self.impute_values_)
            _fill_non_finite(monitoring_features, self.impute_values_)
        raw_layout = self._raw_layout()
        if raw_layout is None:
            self.mean_, self.scale_ = column_mean_std(learning_features)
        else:  # per channel over the valid observations; days and flags left as they are
            self.mean_, self.scale_ = raw_mean_std(learning_features, raw_layout)
        learning_device = torch.device("cpu") if self.num_workers > 0 else device
        learning = self._samples(learning_features, targets[learn], learning_device)
        monitoring = self._samples(monitoring_features, targets[monitor], device)
        log.info(
            "training %s on %d samples, monitoring on %d, device %s",
            self.dl_name,
            len(learning),
            len(monitoring),
            device,
        )
        return learning, monitoring

    def _samples(self, features: np.ndarray, targets: np.ndarray, device: torch.device) -> _Samples:
        """Standardise ``features`` in place; return them with their targets on ``device``."""
        features -= self.mean_
        features /= self.scale_
        labels = self._target_tensor(targets)
        return _Samples(torch.from_numpy(features).to(device), labels.to(device))

    def _grid(self, n_samples: int) -> list[tuple[float, int]]:
        """Return the (learning rate, batch size) combinations, automatic ones resolved."""
        batches = (
            [auto_batch_size(n_samples)]
            if self.batch_sizes is None
            else [int(b) for b in self.batch_sizes]
        )
        rates = [None] if self.learning_rates is None else [float(r) for r in self.learning_rates]
        return [
            (auto_learning_rate(batch) if rate is None else rate, batch)
            for rate, batch in itertools.product(rates, batches)
        ]

    def _plan(self, learning_rate: float, batch_size: int, n_samples: int) -> _Plan:
        """Resolve every setting of one combination trained on ``n_samples`` samples.

        With an automatic learning rate, unset optimiser settings take the
        automatic recipe (AdamW, one-cycle, early stopping); with a given one,
        they keep the former defaults (Adam, constant rate, no early stopping).
        """
        automatic = self.learning_rates is None
        unset = {  # the optimiser's settings are automatic with the learning rate only
            "learning_rate": automatic,
            "batch_size": self.batch_sizes is None,
            "epochs": self.epochs is None,
            "weight_decay": automatic and self.weight_decay is None,
            "lr_schedule": automatic and self.lr_schedule is None,
            "enable_early_stop": automatic and self.enable_early_stop is None,
        }
        return _Plan(
            learning_rate=learning_rate,
            batch_size=batch_size,
            epochs=auto_epochs(n_samples, batch_size) if self.epochs is None else self.epochs,
            weight_decay=_default(self.weight_decay, AUTO_WEIGHT_DECAY if automatic else 0.0),
            lr_schedule=_default(self.lr_schedule, "onecycle" if automatic else "constant"),
            early_stop=_default(self.enable_early_stop, automatic),
            early_stop_patience=self.early_stop_patience,
            automatic=tuple(name for name, is_unset in unset.items() if is_unset),
        )

    def _network(self) -> nn.Module:
        """Build an untrained network for the fitted data's shape and layout."""
        raw = self._raw()
        return build_network(
            self.dl_name,
            self.n_features_in_,
            self._n_outputs(),
            self._n_dates() if raw else self.n_dates,
            self.day_of_year,
            self.dl_parameters,
            raw=raw,
        )

    def _untrained_network(self) -> nn.Module:
        """Build the network to receive saved weights, leaving the global RNG as it was."""
        with torch.random.fork_rng(devices=[], device_type="cpu"):
            return self._network()

    def _criterion_column(self) -> str:
        """Return the history column of the selection criterion."""
        return self.criteria[self.selection_criterion]

    def _better(self, score: float, best: float) -> bool:
        """Return whether ``score`` improves on ``best`` for the selection criterion."""
        if np.isnan(score):
            return False
        if np.isnan(best):
            return True
        return score < best if self._criterion_column() in MINIMISED else score > best

    def _train_combination(
        self,
        learning: _Samples,
        monitoring: _Samples,
        learning_rate: float,
        batch_size: int,
        weights: torch.Tensor | None,
        device: torch.device,
    ) -> _Run:
        """Train one network; keep its best epoch's weights."""
        cuda = device.type == "cuda"
        with torch.random.fork_rng(devices=[device] if cuda else [], device_type=device.type):
            torch.manual_seed(self.seed)
            return self._train_seeded(
                learning, monitoring, learning_rate, batch_size, weights, device
            )

    def _train_seeded(
        self,
        learning: _Samples,
        monitoring: _Samples,
        learning_rate: float,
        batch_size: int,
        weights: torch.Tensor | None,
        device: torch.device,
    ) -> _Run:
        """Body of :meth:`_train_combination`, run with the global RNG seeded."""
        plan = self._plan(learning_rate, batch_size, len(learning))
        model = self._network().to(device)
        optimizer = _optimizer(model, plan)
        scheduler = _scheduler(optimizer, plan, _batches_per_epoch(len(learning), batch_size))
        loss_function = self._loss_function(weights)
        generator = torch.Generator(device=learning.X.device).manual_seed(self.seed)
        augmented = self._augmenter(device)
        column = self._criterion_column()
        run = _Run([], float("nan"), 0, {})
        for epoch in range(1, plan.epochs + 1):
            start = time.perf_counter()
            model.train()
            batches = self._batches(learning, batch_size, generator, device)
            if augmented is not None:
                batches = ((augmented(features), labels) for features, labels in batches)
            train_loss = _train_epoch(model, optimizer, loss_function, batches, scheduler)
            metrics = self._monitor(model, monitoring, loss_function)
            row = {
                "learning_rate": learning_rate,
                "batch_size": batch_size,
                "epoch": epoch,
                "train_loss": train_loss,
                **metrics,
                "seconds": time.perf_counter() - start,
            }
            run.rows.append(row)
            log.debug("lr %g batch %d epoch %d: %s", learning_rate, batch_size, epoch, row)
            if self._better(row[column], run.best_score):
                run.best_score, run.best_epoch = row[column], epoch
                run.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            elif plan.early_stop and epoch - run.best_epoch >= plan.early_stop_patience:
                log.info("early stop at epoch %d (best %d)", epoch, run.best_epoch)
                break
        if not run.best_state:  # every epoch gave NaN: keep the last weights
            run.best_epoch = len(run.rows)
            run.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return run

    def _batches(
        self,
        samples: _Samples,
        batch_size: int,
        generator: torch.Generator,
        device: torch.device,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield shuffled mini-batches on ``device`` (a batch of one sample is skipped).

        Skipping a lone last sample keeps batch normalisation defined; keep
        :func:`_batches_per_epoch` in step with this rule.
        """
        if self.num_workers > 0:
            yield from _loader_batches(samples, batch_size, generator, self.num_workers, device)
            return
        order = torch.randperm(len(samples), generator=generator, device=samples.X.device)
        for start in range(0, len(samples), batch_size):
            index = order[start : start + batch_size]
            if len(index) > 1 or len(samples) == 1:
                yield samples.X[index], samples.y[index]

    def _augmenter(self, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor] | None:
        """Return the function augmenting a training batch on ``device``, or None when off.

        Off unless asked for when the learning rate is given, so given settings train
        as before. Its draws come from a generator of its own: the shuffling, the
        initial weights and the networks' dropout draw what they drew without it.
        """
        settings = self._augmentation_settings()
        if not settings.enabled:
            return None
        layout = self._augmentation_layout()
        log.info("augmenting the training batches: %s, layout %s", settings, layout)
        generator = torch.Generator(device=device).manual_seed(self.seed + AUGMENTATION_SEED)
        mean = torch.from_numpy(self.mean_).to(device)
        scale = torch.from_numpy(self.scale_).to(device)
        return functools.partial(
            augment, layout=layout, settings=settings, generator=generator, mean=mean, scale=scale
        )

    def _augmentation_settings(self) -> Augmentation:
        """Return the augmentation's settings, resolved (off unless asked for with given rates).

        Raises
        ------
        ConfigError
            On an unknown setting or a value out of range.
        """
        return Augmentation.resolve(self.augmentation, automatic=self.learning_rates is None)

    def _augmentation_layout(self) -> TemporalLayout | None:
        """Return the time-series layout the augmentation reads rows with (None: jitter only)."""
        return layout_of(self.n_features_in_, self.n_dates, self.day_of_year, self.feature_names)

    def _warn_ineffective_augmentation(self) -> None:
        """Log a WARNING, once per fit, for an augmentation setting that cannot act."""
        message = ineffective_time_shift(self._augmentation_settings(), self._augmentation_layout())
        if message:
            log.warning(message)

    def _diagnose(
        self,
        run: _Run,
        plan: _Plan,
        monitoring: _Samples,
        weights: torch.Tensor | None,
        n_samples: int,
    ) -> str:
        """Return why a combination did not learn and its likely cause, or ``""``."""
        symptom = self._symptom(run, monitoring, weights)
        if not symptom:
            return ""
        steps = len(run.rows) * _batches_per_epoch(n_samples, plan.batch_size)
        cause = _likely_cause(plan, n_samples, steps, symptom, self.task)
        return f"{self.dl_name} is not learning: {symptom}; likely cause: {cause}"

    def _keep(self, run: _Run, plan: _Plan, rows: list[dict[str, Any]]) -> None:
        """Keep the best combination's weights, settings and diagnosis; log them."""
        self.history_ = pd.DataFrame(rows, columns=list(self.history_columns))
        self.best_params_ = {
            "learning_rate": plan.learning_rate,
            "batch_size": plan.batch_size,
            "epoch": run.best_epoch,
        }
        self.settings_ = {
            **asdict(plan),
            "automatic": list(plan.automatic),
            "augmentation": asdict(self._augmentation_settings()),
        }
        self.diagnosis_ = run.diagnosis
        module = self._untrained_network()
        module.load_state_dict(run.best_state)
        self.module_ = module.cpu().eval()
        if self.diagnosis_:
            log.warning(self.diagnosis_)
        log.info("kept %s (settings %s)", self.best_params_, self.settings_)

    # -------------------------------------------------------------- predict

    def _forward(
        self, X: np.ndarray, width: tuple[int, ...], output: Callable[[torch.Tensor], torch.Tensor]
    ) -> np.ndarray:
        """Return ``output(network(standardised X))``, float32 ``(n_samples, *width)``.

        The rows go through the network in cache-sized blocks (see
        :data:`PREDICT_ROWS_PER_THREAD`), each standardised just before, without
        autograd; non-finite features are replaced as in ``fit`` when ``impute`` is
        not ``refuse``.
        """
        X = _as_features(X)
        if X.shape[1] != self.n_features_in_:
            raise InputDataError(
                f"the model expects {self.n_features_in_} features, got {X.shape[1]}"
            )
        device = next(self.module_.parameters()).device
        mean = torch.from_numpy(self.mean_).to(device)
        scale = torch.from_numpy(self.scale_).to(device)
        impute_values = getattr(self, "impute_values_", None)
        fill = None if impute_values is None else torch.from_numpy(impute_values).to(device)
        out = np.empty((len(X), *width), dtype=np.float32)
        self.module_.eval()
        rows = _predict_rows(device)
        with torch.inference_mode():
            features, results = torch.from_numpy(X), torch.from_numpy(out)
            for start in range(0, len(X), rows):
                batch = features[start : start + rows].to(device)
                if fill is not None:
                    batch = torch.where(torch.isfinite(batch), batch, fill)
                # (batch - mean) / scale as before, the division in place: the same floats
                batch = torch.sub(batch, mean).div_(scale)
                results[start : start + len(batch)] = output(self.module_(batch))
        return out

    # ---------------------------------------------------------- persistence

    def get_state(self) -> dict[str, Any]:
        """Return the fitted model as plain objects and tensors (for ``torch.save``).

        The network is stored as its ``state_dict`` and the arguments that
        rebuild it, never as a pickled class.
        """
        params = self.get_params()
        for name, kind in (("learning_rates", float), ("batch_sizes", int), ("day_of_year", int)):
            values = params[name]
            params[name] = None if values is None else [kind(v) for v in values]
        if params["feature_names"] is not None:
            params["feature_names"] = [str(n) for n in params["feature_names"]]
        params["device"] = None if self.device is None else str(self.device)
        if params["augmentation"] is not None:
            params["augmentation"] = {
                k: None if v is None else float(v) for k, v in dict(params["augmentation"]).items()
            }
        impute_values = getattr(self, "impute_values_", None)
        return {
            "params": params,
            "n_features_in": int(self.n_features_in_),
            **self._target_state(),
            "mean": torch.from_numpy(self.mean_),
            "scale": torch.from_numpy(self.scale_),
            "impute_values": None if impute_values is None else torch.from_numpy(impute_values),
            "state_dict": {k: v.detach().cpu() for k, v in self.module_.state_dict().items()},
            "best_params": dict(self.best_params_),
            "settings": dict(getattr(self, "settings_", {})),
            "diagnosis": str(getattr(self, "diagnosis_", "")),
            "history": {c: self.history_[c].tolist() for c in self.history_.columns},
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        """Rebuild a fitted model from :meth:`get_state`'s output.

        A state saved before automatic settings existed loads too: it has no
        imputation (non-finite features were refused), settings or diagnosis.
        """
        model = cls(**state["params"])
        model.n_features_in_ = int(state["n_features_in"])
        model._restore_target(state)
        model.mean_ = state["mean"].numpy()
        model.scale_ = state["scale"].numpy()
        impute_values = state.get("impute_values")
        model.impute_values_ = None if impute_values is None else impute_values.numpy()
        model.best_params_ = dict(state["best_params"])
        model.settings_ = dict(state.get("settings", {}))
        model.diagnosis_ = str(state.get("diagnosis", ""))
        history = pd.DataFrame(state["history"], columns=list(cls.history_columns))
        model.history_ = history.fillna({"diagnosis": ""})
        module = model._untrained_network()
        module.load_state_dict(state["state_dict"])
        model.module_ = module.eval()
        return model

    # ------------------------------------------------------------ the task's pieces

    def _encode_target(
        self, y: np.ndarray, groups: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the targets as trained on and the strata of the monitoring split."""
        raise NotImplementedError

    def _fit_target(self, targets: np.ndarray) -> None:
        """Fit what the targets need from the learning part's (nothing by default)."""

    def _target_tensor(self, targets: np.ndarray) -> torch.Tensor:
        """Return the targets as the loss reads them, on the CPU."""
        raise NotImplementedError

    def _n_outputs(self) -> int:
        """Return the network's output width."""
        raise NotImplementedError

    def _class_weights(self, y: torch.Tensor, device: torch.device) -> torch.Tensor | None:
        """Return the loss's class weights, or None (the default)."""
        return None

    def _loss_function(self, weights: torch.Tensor | None) -> nn.Module:
        """Return the training loss, called as ``loss(outputs, targets)``."""
        raise NotImplementedError

    def _monitor(
        self, model: nn.Module, samples: _Samples, loss_function: nn.Module
    ) -> dict[str, float]:
        """Return an epoch's monitoring metrics, keyed by history column (``val_loss`` first)."""
        raise NotImplementedError

    def _symptom(self, run: _Run, monitoring: _Samples, weights: torch.Tensor | None) -> str:
        """Return the sign that a combination does not learn, or ``""``."""
        raise NotImplementedError

    def _target_state(self) -> dict[str, Any]:
        """Return what :meth:`get_state` stores of the targets."""
        raise NotImplementedError

    def _restore_target(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_target_state` stored."""
        raise NotImplementedError


class DeepClassifier(ClassifierMixin, DeepNetwork):
    """A PyTorch classifier trained over a learning-rate × batch-size grid.

    See :class:`DeepNetwork` for the parameters and the shared attributes; the
    loss is the cross-entropy (weighted by inverse class frequency with
    ``weighted_labels``), and the monitoring metrics are the overall accuracy,
    Cohen's kappa and the macro F-score.

    Attributes
    ----------
    classes_ : ndarray
        Class codes, in the order of ``predict_proba``'s columns.
    """

    task: ClassVar[str] = "classification"
    criteria: ClassVar[Mapping[str, str]] = CRITERIA
    history_columns: ClassVar[tuple[str, ...]] = HISTORY_COLUMNS

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Return class probabilities, float32 (n_samples, n_classes), columns in ``classes_``.

        Non-finite features are replaced as in ``fit`` when ``impute`` is not ``refuse``.
        """
        return self._forward(X, (len(self.classes_),), functools.partial(torch.softmax, dim=1))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Return the most probable class code of each sample."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def _encode_target(
        self, y: np.ndarray, groups: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return each sample's class index, twice: the target and the stratum."""
        self.classes_, y_index = np.unique(y, return_inverse=True)
        return y_index, y_index

    def _target_tensor(self, targets: np.ndarray) -> torch.Tensor:
        """Return the class indices as int64."""
        return torch.from_numpy(targets.astype(np.int64))

    def _n_outputs(self) -> int:
        """One logit per class."""
        return len(self.classes_)

    def _class_weights(self, y: torch.Tensor, device: torch.device) -> torch.Tensor | None:
        """Return inverse-frequency class weights if ``weighted_labels``, else None."""
        if not self.weighted_labels:
            return None
        counts = torch.bincount(y.cpu(), minlength=len(self.classes_)).to(torch.float32)
        weights = counts.sum() / (len(counts) * counts.clamp(min=1))
        return weights.to(device)

    def _loss_function(self, weights: torch.Tensor | None) -> nn.Module:
        """The cross-entropy, weighted by ``weights`` per class when given."""
        return nn.CrossEntropyLoss(weight=weights)

    def _monitor(
        self, model: nn.Module, samples: _Samples, loss_function: nn.Module
    ) -> dict[str, float]:
        """Return the monitoring loss, OA, kappa and macro F-score."""
        loss, oa, kappa, fscore = _evaluate(model, samples, loss_function, len(self.classes_))
        return {"val_loss": loss, "val_oa": oa, "val_kappa": kappa, "val_fscore": fscore}

    def _symptom(self, run: _Run, monitoring: _Samples, weights: torch.Tensor | None) -> str:
        """Compare the monitoring accuracy with chance and the loss with a constant prediction's."""
        counts = torch.bincount(monitoring.y.cpu(), minlength=len(self.classes_)).double()
        chance = max(float(counts.max() / counts.sum()), 1 / len(self.classes_))
        if weights is not None:  # the best constant prediction of a weighted loss
            counts = counts * weights.cpu().double()
        share = counts[counts > 0] / counts.sum()
        constant_loss = float(-(share * share.log()).sum())
        return not_learning(pd.DataFrame(run.rows), chance, constant_loss)

    def _target_state(self) -> dict[str, Any]:
        """The class codes."""
        return {"classes": torch.from_numpy(np.asarray(self.classes_))}

    def _restore_target(self, state: dict[str, Any]) -> None:
        """Restore the class codes."""
        self.classes_ = state["classes"].numpy()


def _default(value: Any, default: Any) -> Any:
    """Return ``value``, or ``default`` when it is None."""
    return default if value is None else value


UNEXPLAINED = {
    "classification": "the features may not separate the classes, or may not match the labels",
    "regression": "the features may not explain the target, or may not match it",
}
"""What an automatic combination that does not learn most likely means, per task."""


def _likely_cause(
    plan: _Plan, n_samples: int, steps: int, symptom: str, task: str = "classification"
) -> str:
    """Say in words what most likely keeps a combination from learning."""
    rate = plan.learning_rate
    setting = (
        f"learning rate {rate:g} with {_spaced(n_samples)} learning samples and batch "
        f"{plan.batch_size} ({_spaced(steps)} optimiser steps in all)"
    )
    automatic = "learning_rate" in plan.automatic
    if "diverged" in symptom or rate > 1e-2:  # Adam's rates beyond 1e-2 rarely converge
        way_out = f"set learning_rate to {rate / 10:g}" if automatic else "try 1e-3"
        return f"{setting}: too high — {way_out}, or leave learning_rate unset"
    if automatic:
        return f"{UNEXPLAINED[task]} ({setting})"
    if rate * steps < 1:  # Adam moves a weight by about the rate per step at most
        if rate < 1e-3:
            return f"{setting}: too low — try 1e-3, or leave learning_rate unset"
        return f"{setting}: too few steps — lower batch_size or raise epochs, or leave them unset"
    return f"{setting} — try 1e-3, or leave learning_rate and batch_size unset"


def _spaced(number: int) -> str:
    """Return ``number`` with spaces between thousands (``1 200``)."""
    return f"{number:,}".replace(",", " ")


def _optimizer(model: nn.Module, plan: _Plan) -> torch.optim.Optimizer:
    """Return Adam, or AdamW when the plan has a weight decay."""
    if plan.weight_decay > 0:
        return torch.optim.AdamW(
            model.parameters(), lr=plan.learning_rate, weight_decay=plan.weight_decay
        )
    return torch.optim.Adam(model.parameters(), lr=plan.learning_rate)


def _scheduler(
    optimizer: torch.optim.Optimizer, plan: _Plan, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Return the plan's learning-rate schedule, stepped every batch (None: constant)."""
    total = plan.epochs * steps_per_epoch
    if plan.lr_schedule == "constant" or total == 0:
        return None
    if plan.lr_schedule == "onecycle":
        # torch's defaults: 30 % warm-up from rate / 25, cosine annealing to rate / 1e4,
        # Adam's beta1 cycled between 0.85 and 0.95 (Smith and Topin, 2019)
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=plan.learning_rate, total_steps=total
        )
    warmup = max(1, round(COSINE_WARMUP * total))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(total, warmup))


def _warmup_cosine(total: int, warmup: int) -> Callable[[int], float]:
    """Return the factor of step ``s``: linear warm-up over ``warmup`` steps, cosine to 0."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min((step - warmup) / max(total - warmup, 1), 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def _batches_per_epoch(n_samples: int, batch_size: int) -> int:
    """Return the batches of an epoch: a batch of one sample is skipped (see ``_batches``)."""
    full, rest = divmod(n_samples, batch_size)
    kept = n_samples == 1
    return (full if batch_size > 1 or kept else 0) + (1 if rest > 1 or (rest and kept) else 0)


def _as_features(X: np.ndarray) -> np.ndarray:
    """Return ``X`` as a C-contiguous 2-D float32 array."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise InputDataError(f"features must be a 2-D array (samples, features), got {X.ndim}-D")
    return X


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_function: nn.Module,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> float:
    """Run one epoch of optimisation; return the mean of the batch losses."""
    total = None
    count = 0
    for features, labels in batches:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_function(model(features), labels)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total = loss.detach() if total is None else total + loss.detach()
        count += 1
    return float("nan") if total is None else total.item() / count


def _evaluate(
    model: nn.Module, samples: _Samples, loss_function: nn.CrossEntropyLoss, n_classes: int
) -> tuple[float, float, float, float]:
    """Return loss, OA, kappa and macro F-score of ``model`` on ``samples`` (one sync)."""
    model.eval()
    device = samples.X.device
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    weight_sum = torch.zeros((), dtype=torch.float64, device=device)
    confusion = torch.zeros(n_classes * n_classes, dtype=torch.int64, device=device)
    weight = loss_function.weight
    rows = _forward_rows(device)
    with torch.inference_mode():
        for start in range(0, len(samples), rows):
            labels = samples.y[start : start + rows]
            logits = model(samples.X[start : start + rows])
            loss_sum += nn.functional.cross_entropy(logits, labels, weight=weight, reduction="sum")
            weight_sum += len(labels) if weight is None else weight[labels].sum()
            cells = labels * n_classes + logits.argmax(dim=1)
            confusion += torch.bincount(cells, minlength=n_classes * n_classes)
    metrics = confusion_metrics(confusion.reshape(n_classes, n_classes))
    loss, oa, kappa, fscore = torch.cat([(loss_sum / weight_sum).reshape(1), metrics]).tolist()
    return loss, oa, kappa, fscore


def _loader_batches(
    samples: _Samples,
    batch_size: int,
    generator: torch.Generator,
    num_workers: int,
    device: torch.device,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield shuffled mini-batches from a DataLoader with worker processes."""
    dataset = torch.utils.data.TensorDataset(samples.X, samples.y)
    sampler = torch.utils.data.BatchSampler(
        torch.utils.data.RandomSampler(dataset, generator=generator), batch_size, drop_last=False
    )
    loader = torch.utils.data.DataLoader(
        dataset,
        sampler=sampler,
        batch_size=None,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )
    for features, labels in loader:
        if len(labels) > 1 or len(samples) == 1:
            yield features.to(device, non_blocking=True), labels.to(device, non_blocking=True)
