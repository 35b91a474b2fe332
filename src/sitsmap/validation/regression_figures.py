"""Figures of a regression map's validation: predicted vs reference, and residuals.

Functions build and return :class:`matplotlib.figure.Figure` objects without
pyplot (no global state, no GUI backend); the caller saves them
(:func:`sitsmap.io.figures.save_figure`).
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from sitsmap.validation.regression import ErrorScores, error_scores

__all__ = ["HEXBIN_FROM", "residual_figure", "scatter_figure"]

HEXBIN_FROM = 2000
"""Pairs from which the scatter plot shows a hexbin density instead of points."""


def scatter_figure(
    reference: np.ndarray, predicted: np.ndarray, title: str = "", unit: str = ""
) -> Figure:
    """Predicted against reference values, with the 1:1 line; RMSE and R² in the title.

    Points when there are few pairs, a hexbin density (log counts) from
    :data:`HEXBIN_FROM` pairs on.

    Parameters
    ----------
    reference, predicted : numpy.ndarray
        Values of the validation pixels.
    title : str
        Start of the title (e.g. ``"seed 0"``).
    unit : str
        Unit of the values, shown on the axes.

    Returns
    -------
    matplotlib.figure.Figure
        A figure that says so when there is no pair.
    """
    reference = np.asarray(reference, dtype=np.float64).ravel()
    predicted = np.asarray(predicted, dtype=np.float64).ravel()
    if reference.size == 0:
        return _empty_figure("no validation pixel")
    figure = Figure(figsize=(5.5, 5.0), layout="constrained")
    axes = figure.add_subplot()
    low, high = _limits(reference, predicted)
    if reference.size >= HEXBIN_FROM:
        cells = axes.hexbin(
            reference, predicted, gridsize=60, bins="log", mincnt=1, cmap="viridis",
            extent=(low, high, low, high),
        )  # fmt: skip
        figure.colorbar(cells, ax=axes, label="pixels")
    else:
        axes.scatter(reference, predicted, s=8, alpha=0.6, color="#2f6f9f", linewidths=0)
    axes.plot([low, high], [low, high], color="#d62728", linewidth=1, label="1:1")
    axes.set_xlim(low, high)
    axes.set_ylim(low, high)
    axes.set_aspect("equal")
    suffix = f" ({unit})" if unit else ""
    axes.set_xlabel(f"reference{suffix}")
    axes.set_ylabel(f"predicted{suffix}")
    axes.legend(loc="upper left")
    axes.set_title(_title(title, error_scores(reference, predicted)))
    return figure


def residual_figure(
    reference: np.ndarray, predicted: np.ndarray, title: str = "", unit: str = ""
) -> Figure:
    """Histogram of the residuals (predicted − reference), bias and RMSE in the title.

    Parameters
    ----------
    reference, predicted : numpy.ndarray
        Values of the validation pixels.
    title : str
        Start of the title.
    unit : str
        Unit of the values, shown on the axis.

    Returns
    -------
    matplotlib.figure.Figure
        A figure that says so when there is no pair.
    """
    residual = (
        np.asarray(predicted, dtype=np.float64).ravel()
        - np.asarray(reference, dtype=np.float64).ravel()
    )
    if residual.size == 0:
        return _empty_figure("no validation pixel")
    figure = Figure(figsize=(6.0, 4.0), layout="constrained")
    axes = figure.add_subplot()
    bins = min(60, max(10, int(np.sqrt(residual.size))))
    axes.hist(residual, bins=bins, range=_hist_range(residual), color="#2f6f9f")
    axes.axvline(0.0, color="#d62728", linewidth=1)
    suffix = f" ({unit})" if unit else ""
    axes.set_xlabel(f"predicted \u2212 reference{suffix}")
    axes.set_ylabel("pixels")
    scores = error_scores(reference, predicted)
    head = f"{title}: " if title else ""
    axes.set_title(f"{head}bias {scores.bias:.3g}, RMSE {scores.rmse:.3g}")
    return figure


def _hist_range(values: np.ndarray) -> tuple[float, float]:
    """The values' range, widened when (nearly) constant: numpy cannot split a zero range."""
    low, high = float(values.min()), float(values.max())
    if high - low <= 1e-9 * max(1.0, abs(high)):
        return low - 0.5, high + 0.5
    return low, high


def _limits(reference: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """One range for both axes, so the 1:1 line is the diagonal."""
    low = float(min(reference.min(), predicted.min()))
    high = float(max(reference.max(), predicted.max()))
    margin = 0.03 * (high - low) if high > low else max(abs(high), 1.0) * 0.05
    return low - margin, high + margin


def _title(title: str, scores: ErrorScores) -> str:
    r2 = "\u2013" if scores.r2 is None else f"{scores.r2:.3f}"
    head = f"{title}: " if title else ""
    return f"{head}RMSE {scores.rmse:.3g}, R\u00b2 {r2} ({scores.n} pixels)"


def _empty_figure(text: str) -> Figure:
    figure = Figure(figsize=(5.0, 2.0), layout="constrained")
    axes = figure.add_subplot()
    axes.set_axis_off()
    axes.text(0.5, 0.5, text, ha="center", va="center")
    return figure
