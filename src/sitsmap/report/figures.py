"""Figures of the report, drawn in memory and returned as PNG bytes.

Figures are built with :class:`matplotlib.figure.Figure` (no ``pyplot``, no
global state) and encoded in memory: nothing here touches a file.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import imsave
from matplotlib.patches import Patch

from sitsmap.learning.deep.history import plot_history
from sitsmap.nomenclature import Nomenclature
from sitsmap.validation.figures import confusion_figure
from sitsmap.validation.metrics import ClassificationMetrics

__all__ = [
    "class_map_rgba",
    "class_scores_figure",
    "confusion_png",
    "figure_png",
    "history_pngs",
    "region_map_figure",
    "rgba_png",
]

SCORES = (("precision", "Precision"), ("recall", "Recall"), ("fscore", "F-score"))
"""Per-class scores drawn as bars, with their labels."""

DPI = 100
"""Resolution of the report's figures: enough for a screen, small to embed."""


def figure_png(figure: Figure, dpi: int = DPI) -> bytes:
    """Encode ``figure`` as PNG bytes."""
    if figure.canvas.manager is None:
        FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def rgba_png(image: np.ndarray) -> bytes:
    """Encode an ``(rows, cols, 4)`` uint8 image as PNG bytes, pixel for pixel."""
    buffer = io.BytesIO()
    imsave(buffer, image, format="png")
    return buffer.getvalue()


def class_map_rgba(classes: np.ndarray, nomenclature: Nomenclature, nodata: int) -> np.ndarray:
    """Colour a class map with the nomenclature's colours; ``nodata`` is transparent.

    Parameters
    ----------
    classes : numpy.ndarray
        ``(rows, cols)`` integer class codes.
    nomenclature : Nomenclature
        Colours of the codes (grey for a code without one).
    nodata : int
        Code of pixels outside the map.

    Returns
    -------
    numpy.ndarray
        ``(rows, cols, 4)`` uint8 RGBA.
    """
    codes, inverse = np.unique(classes, return_inverse=True)
    palette = np.array([(*nomenclature.color(code), 255) for code in codes.tolist()], np.uint8)
    palette[codes == nodata] = (0, 0, 0, 0)
    return palette.reshape(-1, 4)[inverse.reshape(classes.shape)]


def region_map_figure(
    numbers: np.ndarray,
    colors: dict[int, tuple[int, int, int]],
    names: dict[int, str],
) -> Figure:
    """The eco-regions map, coloured by its colour table, with a legend of region ids.

    Parameters
    ----------
    numbers : numpy.ndarray
        ``(rows, cols)`` region numbers; 0 (outside every region) is transparent.
    colors : dict of int to (r, g, b)
        Colour of each region number (grey for a number without one).
    names : dict of int to str
        Region id of each number, in legend order (numbers of the map without an
        id are shown as ``region <number>``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    present = {int(n) for n in np.unique(numbers).tolist() if n}
    labels = {n: names.get(n, f"region {n}") for n in sorted(present | set(names))}
    palette = _region_palette(colors, max(labels, default=0))
    rows, cols = numbers.shape
    figure = Figure(figsize=(7, 0.6 + 6 * rows / max(rows, cols, 1)), layout="constrained")
    axes = figure.subplots()
    axes.imshow(palette[numbers], interpolation="nearest")
    axes.set_axis_off()
    handles = [
        Patch(facecolor=palette[n, :3] / 255, edgecolor="0.3", label=_plain(text))
        for n, text in labels.items()
    ]
    figure.legend(handles=handles, loc="outside right upper", title="Region", frameon=False)
    return figure


def _region_palette(colors: dict[int, tuple[int, int, int]], top: int) -> np.ndarray:
    """RGBA of region numbers 0 … ``top``: 0 transparent, grey for a number without colour."""
    palette = np.zeros((top + 1, 4), dtype=np.uint8)
    for number in range(1, top + 1):
        palette[number] = (*colors.get(number, (128, 128, 128)), 255)
    return palette


def confusion_png(metrics: ClassificationMetrics, nomenclature: Nomenclature) -> bytes:
    """The iota2-style confusion heat map of one run (see :func:`confusion_figure`)."""
    return figure_png(confusion_figure(metrics, _plain_names(nomenclature)))


def history_pngs(history: pd.DataFrame, criterion: str) -> list[bytes]:
    """Loss and monitoring-metric curves of a deep model's training history."""
    return [figure_png(figure) for figure in plot_history(history, criterion=criterion)]


def class_scores_figure(
    codes: Sequence[int],
    scores: dict[str, Sequence[float]],
    intervals: dict[str, Sequence[float]] | None,
    nomenclature: Nomenclature,
) -> Figure:
    """Horizontal bars of precision, recall and F-score per class.

    Parameters
    ----------
    codes : sequence of int
        Classes, drawn top to bottom.
    scores : dict of str to sequence of float
        ``{"precision": [...], "recall": [...], "fscore": [...]}`` in ``codes`` order
        (NaN for a score that cannot be computed).
    intervals : dict of str to sequence of float, optional
        Half-widths of the 95 % intervals, same layout; drawn as error bars clipped
        to [0, 1].
    nomenclature : Nomenclature
        Class names of the axis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    names = [f"{code} {_plain(nomenclature.name(code))}" for code in codes]
    height = 0.8 / len(SCORES)
    figure = Figure(figsize=(8, 1.2 + 0.42 * len(codes)), layout="constrained")
    axes = figure.subplots()
    positions = np.arange(len(codes))
    for number, (key, label) in enumerate(SCORES):
        values = np.nan_to_num(np.asarray(scores[key], dtype=float))
        errors = None if intervals is None else _clipped_errors(values, intervals[key])
        axes.barh(
            positions + (number - 1) * height,
            values,
            height=height,
            xerr=errors,
            color=f"C{number}",
            label=label,
            error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": (0, 0, 0, 0.5)},
        )
    axes.set_yticks(positions, names)
    axes.invert_yaxis()
    axes.set_xlim(0, 1.05)
    axes.set_xlabel("Score")
    axes.grid(True, axis="x", alpha=0.3)
    figure.legend(loc="outside upper center", ncols=len(SCORES), fontsize="small", frameon=False)
    return figure


def _clipped_errors(values: np.ndarray, half_widths: Sequence[float | None]) -> np.ndarray:
    """Error bar extents ``(2, n)``: the 95 % interval clipped to the possible range [0, 1]."""
    half = np.array([0.0 if v is None else v for v in half_widths], dtype=float)
    half = np.nan_to_num(half)
    return np.vstack([np.minimum(half, values), np.minimum(half, 1.0 - values)])


def _plain(text: str) -> str:
    """Escape ``$`` so that matplotlib draws a class name as written, not as mathtext."""
    return text.replace("$", r"\$")


def _plain_names(nomenclature: Nomenclature) -> Nomenclature:
    names = {code: _plain(name) for code, name in nomenclature.names.items()}
    return Nomenclature(names=names, colors=nomenclature.colors)
