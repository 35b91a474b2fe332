"""Train a PyTorch network behind the scikit-learn face: ``fit``, ``predict``, ``predict_proba``.

The learning samples are split 80/20 by polygon into a learning part and a
monitoring part; the network is trained for every (learning rate, batch size)
of a grid, and the weights of the best epoch on the monitoring part are kept.

The epoch loop is written for speed: the samples live on the device as two
tensors, batches are slices of a seeded random permutation (no DataLoader
unless worker processes are asked for), and the monitoring metrics come from
one batched forward pass and a confusion matrix built with ``torch.bincount``.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import nn

from sitsmap.config.schema import DeepLearningParameters
from sitsmap.errors import ConfigError, InputDataError
from sitsmap.learning.deep.history import CRITERIA, HISTORY_COLUMNS
from sitsmap.learning.deep.models import build_network

__all__ = [
    "HISTORY_COLUMNS",
    "DeepClassifier",
    "column_mean_std",
    "confusion_metrics",
    "monitoring_split",
    "select_device",
]

log = logging.getLogger(__name__)

FORWARD_ROWS = {"cpu": 8192, "cuda": 65536}
"""Rows per forward pass in ``predict_proba`` and in the monitoring evaluation, per device
type (on the CPU, blocks that fit in cache are faster than one huge matrix product)."""


def _forward_rows(device: torch.device) -> int:
    """Return the number of rows per forward pass without gradients on ``device``."""
    return FORWARD_ROWS.get(device.type, FORWARD_ROWS["cpu"])


def select_device(device: str | torch.device | None = None) -> torch.device:
    """Return ``device`` if given, else CUDA when available, else the CPU."""
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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


@dataclass
class _Samples:
    """Standardised features and class indices, on the training device."""

    X: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class _Run:
    """What training one grid combination produced."""

    rows: list[dict[str, float]]
    best_score: float
    best_epoch: int
    best_state: dict[str, torch.Tensor]


class DeepClassifier(ClassifierMixin, BaseEstimator):
    """A PyTorch network trained over a learning-rate × batch-size grid.

    Parameters
    ----------
    dl_name : {"MLPClassifier", "TempCNN", "LTAE"}
        Network architecture (see :mod:`sitsmap.learning.deep.models`).
    epochs : int
        Epochs per grid combination.
    learning_rates, batch_sizes : sequence
        The grid: one training per (learning rate, batch size).
    selection_criterion : {"fscore", "oa", "kappa", "loss"}
        Monitoring metric that picks the kept epoch (loss is minimised).
    monitoring_ratio : float
        Fraction of each class's polygons held back for monitoring.
    seed : int
        Seeds the split, the initial weights, dropout and the shuffling.
    num_workers : int
        DataLoader worker processes; 0 slices tensors kept on the device.
    weighted_labels : bool
        Weight the loss by inverse class frequency.
    enable_early_stop : bool
        Stop a combination after ``early_stop_patience`` epochs without improvement.
    early_stop_patience : int
        See ``enable_early_stop``.
    dl_parameters : dict, optional
        Extra keyword arguments of the network's constructor.
    n_dates : int, optional
        Dates of the temporal grid (TempCNN, LTAE).
    day_of_year : sequence of int, optional
        Day of each date (LTAE's positional encoding).
    device : str, optional
        Training device; CUDA when available, else the CPU, when omitted.

    Attributes
    ----------
    classes_ : ndarray
        Class codes, in the order of ``predict_proba``'s columns.
    mean_, scale_ : ndarray of float32
        Standardisation of the features (from the learning part).
    history_ : pandas.DataFrame
        One row per epoch and combination, columns :data:`HISTORY_COLUMNS`.
    best_params_ : dict
        ``learning_rate``, ``batch_size`` and ``epoch`` of the kept weights.
    module_ : torch.nn.Module
        The network with the kept weights, in eval mode, on the CPU.
    """

    def __init__(
        self,
        dl_name: str = "MLPClassifier",
        epochs: int = 100,
        learning_rates: Sequence[float] = (1e-5,),
        batch_sizes: Sequence[int] = (4096,),
        selection_criterion: str = "fscore",
        monitoring_ratio: float = 0.2,
        seed: int = 0,
        num_workers: int = 0,
        weighted_labels: bool = False,
        enable_early_stop: bool = False,
        early_stop_patience: int = 10,
        dl_parameters: dict[str, Any] | None = None,
        n_dates: int | None = None,
        day_of_year: Sequence[int] | None = None,
        device: str | None = None,
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

    @classmethod
    def from_settings(
        cls,
        dl: DeepLearningParameters,
        seed: int,
        n_dates: int | None = None,
        day_of_year: Sequence[int] | None = None,
    ) -> DeepClassifier:
        """Return an unfitted classifier configured by ``arg_train.deep_learning_parameters``."""
        solver = dl.hyperparameters_solver
        return cls(
            dl_name=dl.dl_name,
            epochs=dl.epochs,
            learning_rates=tuple(solver.learning_rate),
            batch_sizes=tuple(solver.batch_size),
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
        )

    # ------------------------------------------------------------------ fit

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> DeepClassifier:
        """Train on ``X`` (n_samples, n_features) and labels ``y``; return self.

        Parameters
        ----------
        X : ndarray
            Features, band-major per date as the chain extracts them.
        y : ndarray
            Class code of each sample.
        groups : ndarray, optional
            Polygon id of each sample; learning and monitoring never share a
            polygon. Each sample is its own polygon when omitted.
        """
        if self.selection_criterion not in CRITERIA:
            raise ConfigError(
                f"unknown selection criterion {self.selection_criterion!r}; "
                f"known: {sorted(CRITERIA)}"
            )
        X = _as_features(X)
        y = np.asarray(y).ravel()
        if len(y) != len(X):
            raise InputDataError(f"{len(y)} labels given for {len(X)} samples")
        self.classes_, y_index = np.unique(y, return_inverse=True)
        self.n_features_in_ = X.shape[1]
        device = select_device(self.device)
        learning, monitoring = self._split(X, y_index, groups, device)
        rows: list[dict[str, float]] = []
        best: tuple[_Run, float, int] | None = None
        weights = self._class_weights(learning.y, device)
        for learning_rate, batch_size in itertools.product(self.learning_rates, self.batch_sizes):
            run = self._train_combination(
                learning, monitoring, float(learning_rate), int(batch_size), weights, device
            )
            rows += run.rows
            if best is None or self._better(run.best_score, best[0].best_score):
                best = (run, float(learning_rate), int(batch_size))
        if best is None:
            raise ConfigError("the hyperparameter grid is empty")
        run, learning_rate, batch_size = best
        self.history_ = pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))
        self.best_params_ = {
            "learning_rate": learning_rate,
            "batch_size": batch_size,
            "epoch": run.best_epoch,
        }
        module = self._untrained_network()
        module.load_state_dict(run.best_state)
        self.module_ = module.cpu().eval()
        log.info("kept %s", self.best_params_)
        return self

    def _split(
        self, X: np.ndarray, y_index: np.ndarray, groups: np.ndarray | None, device: torch.device
    ) -> tuple[_Samples, _Samples]:
        """Split by polygon, fit the standardisation on the learning part, move both parts.

        The learning part stays on the CPU when DataLoader workers read it.
        """
        learn, monitor = monitoring_split(y_index, groups, self.monitoring_ratio, self.seed)
        if len(monitor) == 0:
            log.warning("no class has two polygons: monitoring on the learning samples")
            monitor = learn
        learning_features = X[learn]
        self.mean_, self.scale_ = column_mean_std(learning_features)
        learning_device = torch.device("cpu") if self.num_workers > 0 else device
        learning = self._samples(learning_features, y_index[learn], learning_device)
        monitoring = self._samples(X[monitor], y_index[monitor], device)
        log.info(
            "training %s on %d samples, monitoring on %d, device %s",
            self.dl_name,
            len(learning),
            len(monitoring),
            device,
        )
        return learning, monitoring

    def _samples(self, features: np.ndarray, y_index: np.ndarray, device: torch.device) -> _Samples:
        """Standardise ``features`` in place; return them with their class indices on ``device``."""
        features -= self.mean_
        features /= self.scale_
        labels = torch.from_numpy(y_index.astype(np.int64))
        return _Samples(torch.from_numpy(features).to(device), labels.to(device))

    def _class_weights(self, y: torch.Tensor, device: torch.device) -> torch.Tensor | None:
        """Return inverse-frequency class weights if ``weighted_labels``, else None."""
        if not self.weighted_labels:
            return None
        counts = torch.bincount(y.cpu(), minlength=len(self.classes_)).to(torch.float32)
        weights = counts.sum() / (len(counts) * counts.clamp(min=1))
        return weights.to(device)

    def _network(self) -> nn.Module:
        """Build an untrained network for the fitted data's shape."""
        return build_network(
            self.dl_name,
            self.n_features_in_,
            len(self.classes_),
            self.n_dates,
            self.day_of_year,
            self.dl_parameters,
        )

    def _untrained_network(self) -> nn.Module:
        """Build the network to receive saved weights, leaving the global RNG as it was."""
        with torch.random.fork_rng(devices=[], device_type="cpu"):
            return self._network()

    def _better(self, score: float, best: float) -> bool:
        """Return whether ``score`` improves on ``best`` for the selection criterion."""
        if np.isnan(score):
            return False
        if np.isnan(best):
            return True
        return score < best if self.selection_criterion == "loss" else score > best

    def _train_combination(
        self,
        learning: _Samples,
        monitoring: _Samples,
        learning_rate: float,
        batch_size: int,
        weights: torch.Tensor | None,
        device: torch.device,
    ) -> _Run:
        """Train one network for ``epochs`` epochs; keep its best epoch's weights."""
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
        model = self._network().to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
        loss_function = nn.CrossEntropyLoss(weight=weights)
        generator = torch.Generator(device=learning.X.device).manual_seed(self.seed)
        column = CRITERIA[self.selection_criterion]
        run = _Run([], float("nan"), 0, {})
        for epoch in range(1, self.epochs + 1):
            start = time.perf_counter()
            model.train()
            batches = self._batches(learning, batch_size, generator, device)
            train_loss = _train_epoch(model, optimizer, loss_function, batches)
            val_loss, oa, kappa, fscore = _evaluate(
                model, monitoring, loss_function, len(self.classes_)
            )
            row = {
                "learning_rate": learning_rate,
                "batch_size": batch_size,
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "val_oa": oa,
                "val_kappa": kappa,
                "val_fscore": fscore,
                "seconds": time.perf_counter() - start,
            }
            run.rows.append(row)
            log.debug("lr %g batch %d epoch %d: %s", learning_rate, batch_size, epoch, row)
            if self._better(row[column], run.best_score):
                run.best_score, run.best_epoch = row[column], epoch
                run.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            elif self.enable_early_stop and epoch - run.best_epoch >= self.early_stop_patience:
                log.info("early stop at epoch %d (best %d)", epoch, run.best_epoch)
                break
        if not run.best_state:  # every epoch gave NaN: keep the last weights
            run.best_epoch = self.epochs
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

        Skipping a lone last sample keeps batch normalisation defined.
        """
        if self.num_workers > 0:
            yield from _loader_batches(samples, batch_size, generator, self.num_workers, device)
            return
        order = torch.randperm(len(samples), generator=generator, device=samples.X.device)
        for start in range(0, len(samples), batch_size):
            index = order[start : start + batch_size]
            if len(index) > 1 or len(samples) == 1:
                yield samples.X[index], samples.y[index]

    # -------------------------------------------------------------- predict

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Return class probabilities, float32 (n_samples, n_classes), columns in ``classes_``."""
        X = _as_features(X)
        if X.shape[1] != self.n_features_in_:
            raise InputDataError(
                f"the model expects {self.n_features_in_} features, got {X.shape[1]}"
            )
        device = next(self.module_.parameters()).device
        mean = torch.from_numpy(self.mean_).to(device)
        scale = torch.from_numpy(self.scale_).to(device)
        out = np.empty((len(X), len(self.classes_)), dtype=np.float32)
        self.module_.eval()
        rows = _forward_rows(device)
        with torch.inference_mode():
            for start in range(0, len(X), rows):
                batch = torch.from_numpy(X[start : start + rows]).to(device)
                logits = self.module_((batch - mean) / scale)
                out[start : start + len(batch)] = torch.softmax(logits, dim=1).cpu().numpy()
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Return the most probable class code of each sample."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    # ---------------------------------------------------------- persistence

    def get_state(self) -> dict[str, Any]:
        """Return the fitted model as plain objects and tensors (for ``torch.save``).

        The network is stored as its ``state_dict`` and the arguments that
        rebuild it, never as a pickled class.
        """
        params = self.get_params()
        params["learning_rates"] = [float(v) for v in params["learning_rates"]]
        params["batch_sizes"] = [int(v) for v in params["batch_sizes"]]
        params["day_of_year"] = (
            None if self.day_of_year is None else [int(d) for d in self.day_of_year]
        )
        params["device"] = None if self.device is None else str(self.device)
        return {
            "params": params,
            "n_features_in": int(self.n_features_in_),
            "classes": torch.from_numpy(np.asarray(self.classes_)),
            "mean": torch.from_numpy(self.mean_),
            "scale": torch.from_numpy(self.scale_),
            "state_dict": {k: v.detach().cpu() for k, v in self.module_.state_dict().items()},
            "best_params": dict(self.best_params_),
            "history": {c: self.history_[c].tolist() for c in self.history_.columns},
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> DeepClassifier:
        """Rebuild a fitted classifier from :meth:`get_state`'s output."""
        model = cls(**state["params"])
        model.n_features_in_ = int(state["n_features_in"])
        model.classes_ = state["classes"].numpy()
        model.mean_ = state["mean"].numpy()
        model.scale_ = state["scale"].numpy()
        model.best_params_ = dict(state["best_params"])
        model.history_ = pd.DataFrame(state["history"], columns=list(HISTORY_COLUMNS))
        module = model._untrained_network()
        module.load_state_dict(state["state_dict"])
        model.module_ = module.eval()
        return model


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
) -> float:
    """Run one epoch of optimisation; return the mean of the batch losses."""
    total = None
    count = 0
    for features, labels in batches:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_function(model(features), labels)
        loss.backward()
        optimizer.step()
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
