"""Confusion matrix figure, after iota2's confusion PNG.

The function builds and returns a :class:`matplotlib.figure.Figure` without
pyplot (no global state, no GUI backend); the caller saves it.
"""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from sitsmap.nomenclature import Nomenclature
from sitsmap.validation.metrics import ClassificationMetrics

__all__ = ["confusion_figure"]


def confusion_figure(metrics: ClassificationMetrics, nomenclature: Nomenclature) -> Figure:
    """Draw the confusion matrix normalised by reference row, with counts.

    As in iota2: the diagonal in red-yellow-green, confusions in reds, each
    cell annotated with its pixel count; recall and F-score columns on the
    right, a precision row below, kappa and OA in the title.

    Parameters
    ----------
    metrics : ClassificationMetrics
        Confusion matrix (rows = reference) and scores of one run.
    nomenclature : Nomenclature
        Class names for the axes.

    Returns
    -------
    matplotlib.figure.Figure
        A figure that says so when the matrix is empty (no validation pixel).
    """
    counts = np.asarray(metrics.confusion, dtype=np.float64)
    size = len(metrics.labels)
    if size == 0 or counts.size == 0:
        return _empty_figure()
    names = [f"{code} {nomenclature.name(code)}" for code in metrics.labels]
    side = max(5.0, 0.45 * size + 3.0)
    figure = Figure(figsize=(side + 1.5, side + 0.5), layout="constrained")
    grid = figure.add_gridspec(2, 3, width_ratios=[size, 1, 1], height_ratios=[size, 1])
    matrix_axes = figure.add_subplot(grid[0, 0])
    _draw_matrix(matrix_axes, counts, names)
    _draw_scores(figure.add_subplot(grid[0, 1]), metrics, "recall", "Recall", vertical=True)
    _draw_scores(figure.add_subplot(grid[0, 2]), metrics, "fscore", "F-score", vertical=True)
    _draw_scores(figure.add_subplot(grid[1, 0]), metrics, "precision", "Precision", vertical=False)
    figure.suptitle(f"KAPPA : {metrics.kappa:.3f}   OA : {metrics.oa:.3f}")
    return figure


def _empty_figure() -> Figure:
    """The figure of a confusion matrix without any validation pixel."""
    figure = Figure(figsize=(5.0, 2.0), layout="constrained")
    axes = figure.add_subplot()
    axes.set_axis_off()
    axes.text(0.5, 0.5, "empty confusion matrix:\nno validation pixel", ha="center", va="center")
    figure.suptitle("KAPPA : nan   OA : nan")
    return figure


def _row_normalised(counts: np.ndarray) -> np.ndarray:
    totals = counts.sum(axis=1, keepdims=True)
    out = np.zeros_like(counts)
    np.divide(counts, totals, out=out, where=totals > 0)
    return out


def _draw_matrix(axes, counts: np.ndarray, names: list[str]) -> None:
    share = _row_normalised(counts)
    diagonal = np.eye(len(names), dtype=bool)
    rgba = np.where(diagonal[..., None], colormaps["RdYlGn"](share), colormaps["Reds"](share))
    axes.imshow(rgba, interpolation="nearest", aspect="auto")
    font = max(4.0, 9.0 - 0.15 * len(names))
    for (row, col), value in np.ndenumerate(counts):
        if value:
            axes.text(col, row, f"{int(value)}", ha="center", va="center", fontsize=font)
    ticks = np.arange(len(names))
    axes.set_xticks(ticks, names, rotation=90, fontsize=font + 1)
    axes.set_yticks(ticks, names, fontsize=font + 1)
    axes.xaxis.tick_top()
    axes.set_xlabel("Production")
    axes.xaxis.set_label_position("top")
    axes.set_ylabel("Reference")


def _draw_scores(
    axes, metrics: ClassificationMetrics, attribute: str, title: str, vertical: bool
) -> None:
    values = np.array([getattr(metrics, attribute)[code] for code in metrics.labels])
    image = values[:, None] if vertical else values[None, :]
    axes.imshow(colormaps["RdYlGn"](image), interpolation="nearest", aspect="auto")
    font = max(4.0, 9.0 - 0.15 * len(values))
    for index, value in enumerate(values):
        x, y = (0, index) if vertical else (index, 0)
        axes.text(
            x,
            y,
            f"{value:.3f}",
            ha="center",
            va="center",
            fontsize=font,
            rotation=0 if vertical else 90,
        )
    axes.set_xticks([])
    axes.set_yticks([])
    if vertical:
        axes.set_title(title, rotation=90, fontsize=font + 1)
    else:
        axes.set_xlabel(title)
