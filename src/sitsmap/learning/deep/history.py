"""Figures of a deep model's training history: loss curves and monitoring metrics per epoch.

As iota2 draws them: one figure of losses (learning and monitoring), one of
the monitoring metrics (overall accuracy, kappa, F-score; for a regression
network RMSE and R²), one line per hyperparameter combination, the kept epoch
marked. The figures are built without ``pyplot``; save them with
:func:`sitsmap.io.figures.save_figure`. :func:`not_learning` and
:func:`regression_not_learning` read a combination's history for the signs of
a network that does not learn; :func:`kept_row` finds the kept epoch.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = [
    "CRITERIA",
    "HISTORY_COLUMNS",
    "METRIC_TITLES",
    "MINIMISED",
    "REGRESSION_CRITERIA",
    "REGRESSION_HISTORY_COLUMNS",
    "REGRESSION_METRIC_TITLES",
    "criterion_column",
    "history_task",
    "kept_row",
    "not_learning",
    "plot_history",
    "regression_not_learning",
]

HISTORY_COLUMNS = (
    "learning_rate",
    "batch_size",
    "epoch",
    "train_loss",
    "val_loss",
    "val_oa",
    "val_kappa",
    "val_fscore",
    "seconds",
    "diagnosis",
)
"""Columns of ``DeepClassifier.history_``, one row per epoch and grid combination.

``learning_rate`` is the combination's (peak) rate; ``diagnosis`` is empty, or on
every row of a combination that did not learn, why (see :func:`not_learning`).
"""

REGRESSION_HISTORY_COLUMNS = (
    "learning_rate",
    "batch_size",
    "epoch",
    "train_loss",
    "val_loss",
    "val_rmse",
    "val_r2",
    "seconds",
    "diagnosis",
)
"""Columns of ``DeepRegressor.history_``: the losses are on the standardised target, the
RMSE in the target's units, R² that of the monitoring samples."""

OPTIONAL_COLUMNS = frozenset({"seconds", "diagnosis"})
"""Columns a history may lack (written by older versions)."""

JUDGED_AFTER = 10
"""Epochs after which a monitoring loss that has not moved means the network does not learn."""

CHANCE_MARGIN = 0.2
"""A monitoring accuracy up to ``chance + 0.2 × min(chance, 1 - chance)`` counts as chance:
1.2 × chance while chance is at most 0.5, and below 1 when one class dominates."""

BEYOND_CHANCE_KAPPA = 0.2
"""A best monitoring kappa above this is agreement beyond chance: the accuracy is then not
judged at chance. A small monitoring split dominated by one class can put a learning
network's accuracy below that class's share (a class-weighted network predicts the
others too): on the real 31UDS patch, 8-9 monitoring parcels and 81 % of one class,
L-TAE fits that scored 0.72-0.82 on their held-out folds were flagged at 0.65-0.75."""

FLAT_LOSS = 0.95
"""A monitoring loss above this fraction of a constant predictor's loss counts as flat."""

CRITERIA = {"fscore": "val_fscore", "oa": "val_oa", "kappa": "val_kappa", "loss": "val_loss"}
"""Selection criterion → history column; ``loss`` is minimised, the others maximised."""

REGRESSION_CRITERIA = {"rmse": "val_rmse", "r2": "val_r2", "loss": "val_loss"}
"""A regression network's selection criterion → history column (``fscore``, the
configuration's default, means ``rmse``: see :func:`criterion_column`)."""

MINIMISED = frozenset({"val_loss", "val_rmse"})
"""History columns where lower is better."""

METRIC_TITLES = {"val_oa": "Overall accuracy", "val_kappa": "Kappa", "val_fscore": "F-score"}
"""Monitoring metrics of the metric figure, with their axis titles, in drawing order."""

REGRESSION_METRIC_TITLES = {"val_rmse": "RMSE (target units)", "val_r2": "R²"}
"""A regression history's monitoring metrics, with their axis titles, in drawing order."""

REGRESSION_R2_FLOOR = 0.0
"""A regression network whose monitoring R² at its best epoch is at most this predicts no
better than the monitoring samples' mean: it is not learning."""

_COMBINATION = ["learning_rate", "batch_size"]
_MARKERS = "\u2605 kept epoch (best {criterion} overall), \u25cf best epoch of each combination"


def plot_history(history: pd.DataFrame, criterion: str = "fscore") -> tuple[Figure, Figure]:
    """Draw the training history of a deep classifier or regressor.

    Parameters
    ----------
    history : pandas.DataFrame
        ``history_`` of a fitted :class:`~sitsmap.learning.deep.trainer.DeepClassifier`
        (columns :data:`HISTORY_COLUMNS`) or
        :class:`~sitsmap.learning.deep.regressor.DeepRegressor`
        (:data:`REGRESSION_HISTORY_COLUMNS`: told by its ``val_rmse`` column).
    criterion : str
        Selection criterion that chose the kept epoch: fscore, oa, kappa or loss;
        for a regression history rmse, r2 or loss (fscore meaning rmse). Each
        combination's best epoch is marked with a dot, the kept one (best
        overall) with a star and a dotted vertical line.

    Returns
    -------
    loss_figure, metrics_figure : matplotlib.figure.Figure
        One axes of learning (solid) and monitoring (dashed) losses; one axes per
        monitoring metric (:data:`METRIC_TITLES` or :data:`REGRESSION_METRIC_TITLES`).
        Every curve is labelled with its combination; markers have labels
        starting with ``_`` (not in the legend).

    Raises
    ------
    ValueError
        If columns are missing or the criterion is unknown.
    """
    task = history_task(history)
    expected = REGRESSION_HISTORY_COLUMNS if task == "regression" else HISTORY_COLUMNS
    missing = set(expected) - set(history.columns) - OPTIONAL_COLUMNS
    if missing:
        raise ValueError(f"history lacks columns {sorted(missing)}")
    column = criterion_column(criterion, task)
    kept = _best_row(history, column)
    titles = REGRESSION_METRIC_TITLES if task == "regression" else METRIC_TITLES
    loss_name = "Loss (standardised target)" if task == "regression" else "Cross-entropy"

    loss_figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = loss_figure.subplots()
    for number, (label, runs) in enumerate(_combinations(history)):
        colour = f"C{number % 10}"
        axes.plot(runs["epoch"], runs["train_loss"], color=colour, label=f"{label} learning")
        axes.plot(
            runs["epoch"],
            runs["val_loss"],
            color=colour,
            linestyle="--",
            label=f"{label} monitoring",
        )
        _mark_best(axes, runs, "val_loss", column, colour)
    _mark_kept(axes, kept, "val_loss")
    _decorate(axes, "Learning (solid) and monitoring (dashed) loss", loss_name)
    loss_figure.suptitle(_MARKERS.format(criterion=criterion), fontsize="small")

    metrics_figure = Figure(figsize=(7, 8), layout="constrained")
    metric_axes = metrics_figure.subplots(len(titles), 1, sharex=True, squeeze=False)[:, 0]
    for axes, (metric, title) in zip(metric_axes, titles.items(), strict=True):
        for number, (label, runs) in enumerate(_combinations(history)):
            colour = f"C{number % 10}"
            axes.plot(runs["epoch"], runs[metric], color=colour, label=label)
            _mark_best(axes, runs, metric, column, colour)
        _mark_kept(axes, kept, metric)
        _decorate(axes, title, title, xlabel=axes is metric_axes[-1])
    metrics_figure.suptitle(_MARKERS.format(criterion=criterion), fontsize="small")
    return loss_figure, metrics_figure


def history_task(history: pd.DataFrame) -> str:
    """Return ``regression`` for a regression network's history, else ``classification``."""
    return "regression" if "val_rmse" in history.columns else "classification"


def criterion_column(criterion: str, task: str = "classification") -> str:
    """Return the history column of a selection criterion for ``task``.

    In regression, ``fscore`` (the configuration's default) means ``rmse``.

    Raises
    ------
    ValueError
        If the criterion is unknown for the task.
    """
    if task == "regression":
        known = REGRESSION_CRITERIA
        criterion = "rmse" if criterion == "fscore" else criterion
    else:
        known = CRITERIA
    if criterion not in known:
        raise ValueError(f"unknown {task} criterion {criterion!r}; known: {sorted(known)}")
    return known[criterion]


def kept_row(history: pd.DataFrame, criterion: str) -> pd.Series:
    """Return the history's row of the kept epoch: the first best by ``criterion``.

    Parameters
    ----------
    history : pandas.DataFrame
        A classifier's or a regressor's ``history_`` (see :func:`history_task`).
    criterion : str
        The selection criterion (see :func:`criterion_column`).

    Raises
    ------
    ValueError
        If the criterion is unknown for the history's task.
    """
    return _best_row(history, criterion_column(criterion, history_task(history)))


def _combinations(history: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Return ``(label, rows sorted by epoch)`` for each (learning rate, batch size)."""
    return [
        (f"lr={lr:g}, batch={int(batch)}", rows.sort_values("epoch"))
        for (lr, batch), rows in history.groupby(_COMBINATION, sort=False)
    ]


def _best_row(history: pd.DataFrame, column: str) -> pd.Series:
    """Return the first row that is best by ``column`` (minimum for the loss and the RMSE)."""
    index = history[column].idxmin() if column in MINIMISED else history[column].idxmax()
    return history.loc[index]


def _mark_best(axes: Axes, runs: pd.DataFrame, metric: str, column: str, colour: str) -> None:
    """Put a dot on ``metric``'s curve at the combination's best epoch by ``column``."""
    best = _best_row(runs, column)
    axes.plot(
        [best["epoch"]],
        [best[metric]],
        marker="o",
        color=colour,
        linestyle="none",
        label="_best epoch",
    )


def _mark_kept(axes: Axes, kept: pd.Series, metric: str) -> None:
    """Mark the kept epoch with a star and a dotted vertical line."""
    axes.axvline(kept["epoch"], color="black", linestyle=":", linewidth=1, label="_kept epoch")
    axes.plot(
        [kept["epoch"]],
        [kept[metric]],
        marker="*",
        markersize=14,
        color="black",
        linestyle="none",
        label="_kept",
    )


def _decorate(axes: Axes, title: str, ylabel: str, xlabel: bool = True) -> None:
    """Title, labels, grid and legend of one axes."""
    axes.set_title(title)
    if xlabel:
        axes.set_xlabel("Epoch")
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small")


def not_learning(runs: pd.DataFrame, chance: float, constant_loss: float) -> str:
    """Return why one combination's history shows a network that does not learn, or ``""``.

    Parameters
    ----------
    runs : pandas.DataFrame
        The combination's rows of a history (columns :data:`HISTORY_COLUMNS`), by epoch.
    chance : float
        Monitoring accuracy of always predicting the majority class (or ``1 / n_classes``
        when higher).
    constant_loss : float
        Monitoring loss of always predicting the class frequencies (their entropy).

    Returns
    -------
    str
        The first sign found, in words: a learning loss that diverged; a best
        monitoring accuracy at chance (see :data:`CHANCE_MARGIN`) without a kappa
        beyond chance (:data:`BEYOND_CHANCE_KAPPA`, when the history has one); or, after
        :data:`JUDGED_AFTER` epochs, a monitoring loss that never went below its
        first epoch's, or that stayed above :data:`FLAT_LOSS` × ``constant_loss``.
    """
    if runs.empty:
        return ""
    if not np.isfinite(runs["train_loss"].to_numpy(dtype=float)).all():
        return "the learning loss diverged (NaN or infinite)"
    best_oa = runs["val_oa"].max()
    beyond_chance = "val_kappa" in runs and runs["val_kappa"].max() > BEYOND_CHANCE_KAPPA
    if best_oa <= chance + CHANCE_MARGIN * min(chance, 1 - chance) and not beyond_chance:
        return f"the monitoring accuracy stays at chance ({best_oa:.2f}, chance {chance:.2f})"
    if len(runs) < JUDGED_AFTER:
        return ""
    losses = runs["val_loss"].to_numpy()
    if not losses[1:].min() < losses[0]:
        return f"the monitoring loss never went below its first epoch's ({losses[0]:.3f})"
    if math.isfinite(constant_loss) and losses.min() > FLAT_LOSS * constant_loss:
        return (
            f"the monitoring loss stays at {losses.min():.3f}, no better than the "
            f"{constant_loss:.3f} of predicting the class frequencies"
        )
    return ""


def regression_not_learning(runs: pd.DataFrame, column: str = "val_rmse") -> str:
    """Return why one combination's regression history shows a network not learning, or ``""``.

    Parameters
    ----------
    runs : pandas.DataFrame
        The combination's rows of a history (columns :data:`REGRESSION_HISTORY_COLUMNS`),
        by epoch.
    column : str
        History column of the selection criterion (its best epoch is judged).

    Returns
    -------
    str
        The first sign found, in words: a learning loss that diverged; a monitoring
        R² at the best epoch of at most :data:`REGRESSION_R2_FLOOR` (no better than
        predicting the mean); or, after :data:`JUDGED_AFTER` epochs, a monitoring
        loss that never went below its first epoch's.
    """
    if runs.empty:
        return ""
    if not np.isfinite(runs["train_loss"].to_numpy(dtype=float)).all():
        return "the learning loss diverged (NaN or infinite)"
    r2 = float(_best_row(runs, column)["val_r2"])
    if not r2 > REGRESSION_R2_FLOOR:
        return (
            f"the monitoring R² at the best epoch is {r2:.2f}, no better than predicting the mean"
        )
    if len(runs) < JUDGED_AFTER:
        return ""
    losses = runs["val_loss"].to_numpy()
    if not losses[1:].min() < losses[0]:
        return f"the monitoring loss never went below its first epoch's ({losses[0]:.3f})"
    return ""
