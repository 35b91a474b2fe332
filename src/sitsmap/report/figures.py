"""Figures of the report, drawn in memory and returned as PNG bytes.

Figures are built with :class:`matplotlib.figure.Figure` (no ``pyplot``, no
global state) and encoded in memory: nothing here touches a file.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.image import imsave
from matplotlib.patches import Patch

from sitsmap.learning.deep.history import plot_history
from sitsmap.nomenclature import Nomenclature
from sitsmap.validation.figures import confusion_figure
from sitsmap.validation.metrics import ClassificationMetrics

__all__ = [
    "agreement_rgba",
    "class_map_rgba",
    "class_scores_figure",
    "confusion_png",
    "figure_png",
    "figure_rgba",
    "fold_frames",
    "history_pngs",
    "place_panel_figure",
    "region_map_figure",
    "regression_bins_figure",
    "rgba_png",
    "value_colorbar_png",
    "value_range",
    "value_rgba",
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


def agreement_rgba(counts: np.ndarray, folds: int) -> np.ndarray:
    """Colour the number of folds agreeing per pixel (viridis, 1 to ``folds``); 0 transparent.

    Parameters
    ----------
    counts : numpy.ndarray
        ``(rows, cols)`` folds agreeing with each pixel's majority class.
    folds : int
        The number of folds (the brightest colour).

    Returns
    -------
    numpy.ndarray
        ``(rows, cols, 4)`` uint8 RGBA.
    """
    top = max(folds, int(counts.max(initial=0)), 1)
    levels = (np.arange(top + 1) - 0.5) / max(top - 0.5, 1e-9)
    palette = (colormaps["viridis"](np.clip(levels, 0, 1)) * 255).astype(np.uint8)
    palette[0] = (0, 0, 0, 0)
    return palette[counts]


def value_range(values: np.ndarray) -> tuple[float, float]:
    """The 2nd and 98th percentiles of the finite values; ``(0, 1)`` when there is none.

    A colour scale over them is not flattened by a few outlying values.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(finite, [2, 98]))
    return (low, high) if high > low else (low - 0.5, high + 0.5)


def value_rgba(values: np.ndarray, low: float, high: float, cmap: str = "viridis") -> np.ndarray:
    """Colour a float map from ``low`` to ``high`` (clipped); NaN is transparent.

    Returns
    -------
    numpy.ndarray
        ``(rows, cols, 4)`` uint8 RGBA.
    """
    scaled = (np.asarray(values, dtype=np.float64) - low) / max(high - low, 1e-12)
    rgba = (colormaps[cmap](np.clip(np.nan_to_num(scaled), 0, 1)) * 255).astype(np.uint8)
    rgba[~np.isfinite(values)] = (0, 0, 0, 0)
    return rgba


def value_colorbar_png(low: float, high: float, label: str, cmap: str = "viridis") -> bytes:
    """A vertical colour bar from ``low`` to ``high``, the legend of :func:`value_rgba`."""
    figure = Figure(figsize=(1.3, 3.6), layout="constrained")
    axes = figure.add_subplot()
    mappable = ScalarMappable(norm=Normalize(low, high), cmap=cmap)
    figure.colorbar(mappable, cax=axes, label=_plain(label), extend="both")
    return figure_png(figure)


def regression_bins_figure(
    labels: Sequence[str],
    scores: Mapping[str, Sequence[float | None]],
    intervals: Mapping[str, Sequence[float | None]] | None,
) -> Figure:
    """Bars of RMSE and bias per bin of the target, with their 95 % intervals.

    Parameters
    ----------
    labels : sequence of str
        The bins' ranges, left to right.
    scores : mapping
        ``{"rmse": [...], "bias": [...]}`` per bin (None where a bin has no pixel).
    intervals : mapping, optional
        Half-widths of the 95 % intervals, same layout.
    """
    figure = Figure(figsize=(max(6.0, 0.7 * len(labels) + 2), 3.8), layout="constrained")
    axes = figure.subplots()
    positions = np.arange(len(labels))
    for number, (key, label) in enumerate((("rmse", "RMSE"), ("bias", "Bias"))):
        values = np.array([np.nan if v is None else v for v in scores[key]], dtype=float)
        errors = None
        if intervals is not None:
            errors = np.nan_to_num(np.array([np.nan if v is None else v for v in intervals[key]]))
        axes.bar(
            positions + (number - 0.5) * 0.4,
            np.nan_to_num(values),
            width=0.4,
            yerr=errors,
            color=f"C{number}",
            label=label,
            error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": (0, 0, 0, 0.5)},
        )
    axes.axhline(0.0, color="black", linewidth=0.6)
    axes.set_xticks(positions, labels, rotation=30, ha="right", fontsize="small")
    axes.set_xlabel("reference value bin")
    axes.set_ylabel("error (target units)")
    axes.grid(True, axis="y", alpha=0.3)
    axes.legend(fontsize="small")
    return figure


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


# --- cross-validation: the folds' maps at one place -----------------------------------


def place_panel_figure(
    windows: Mapping[str, np.ndarray],
    agreement: np.ndarray | None,
    nomenclature: Nomenclature,
    nodata: int,
    title: str,
    lines: Sequence[np.ndarray] = (),
) -> Figure:
    """Small multiples: each fold's map over one place, same extent, and their agreement.

    Parameters
    ----------
    windows : mapping of str to numpy.ndarray
        Each fold's ``(rows, cols)`` class codes over the place, by left-out group.
    agreement : numpy.ndarray, optional
        Folds agreeing with the majority class over the place, drawn last.
    nomenclature : Nomenclature
        Colours and names of the classes (legend of the classes shown).
    nodata : int
        Code of pixels without a class (transparent).
    title : str
        Title of the figure.
    lines : sequence of numpy.ndarray
        ``(points, 2)`` pixel ``(x, y)`` polylines drawn over every map (tile borders).

    Returns
    -------
    matplotlib.figure.Figure
    """
    count = len(windows) + (agreement is not None)
    columns = min(count, 5)
    rows = -(-count // columns)
    figure = Figure(figsize=(2.6 * columns + 0.4, 2.7 * rows + 1.0), layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False)
    for axes in grid.flat:
        axes.set_axis_off()
    for axes, (fold, classes) in zip(grid.flat, windows.items(), strict=False):
        axes.imshow(class_map_rgba(classes, nomenclature, nodata), interpolation="nearest")
        axes.set_title(f"{_plain(str(fold))} left out", fontsize="small")
        _draw_lines(axes, lines)
    if agreement is not None:
        _draw_agreement(figure, grid.flat[len(windows)], agreement, len(windows))
    _class_legend(figure, windows.values(), nomenclature, nodata)
    figure.suptitle(_plain(title))
    return figure


def _draw_lines(axes, lines: Sequence[np.ndarray]) -> None:
    """Draw tile borders as dashed lines, without changing the image's extent."""
    limits = axes.get_xlim(), axes.get_ylim()
    for line in lines:
        axes.plot(line[:, 0], line[:, 1], color="white", linewidth=1.6)
        axes.plot(line[:, 0], line[:, 1], color="black", linewidth=0.9, linestyle="--")
    axes.set_xlim(limits[0])
    axes.set_ylim(limits[1])


def _draw_agreement(figure: Figure, axes, agreement: np.ndarray, folds: int) -> None:
    shown = np.ma.masked_equal(agreement, 0)
    image = axes.imshow(shown, cmap="viridis", vmin=0.5, vmax=folds + 0.5, interpolation="nearest")
    axes.set_title("folds agreeing", fontsize="small")
    bar = figure.colorbar(image, ax=axes, shrink=0.8, ticks=range(1, folds + 1))
    bar.ax.tick_params(labelsize="small")


def _class_legend(
    figure: Figure,
    maps: Iterable[np.ndarray],
    nomenclature: Nomenclature,
    nodata: int,
    columns: int = 4,
) -> None:
    codes = sorted({int(c) for m in maps for c in np.unique(m).tolist()} - {nodata})
    handles = [
        Patch(
            facecolor=np.array(nomenclature.color(code)) / 255,
            edgecolor="0.3",
            label=f"{code} {_plain(nomenclature.name(code))}",
        )
        for code in codes
    ]
    if handles:
        figure.legend(
            handles=handles,
            loc="outside lower center",
            ncols=min(columns, len(handles)),
            fontsize="small",
            frameon=False,
        )


def fold_frames(
    windows: Mapping[str, np.ndarray], nomenclature: Nomenclature, nodata: int, title: str
) -> list[np.ndarray]:
    """One image per fold of its map over one place, all the same size (an animation).

    Parameters
    ----------
    windows : mapping of str to numpy.ndarray
        Each fold's ``(rows, cols)`` class codes over the place, by left-out group.
    nomenclature : Nomenclature
        Colours and names of the classes.
    nodata : int
        Code of pixels without a class.
    title : str
        Shown above every frame.

    Returns
    -------
    list of numpy.ndarray
        ``(rows, cols, 4)`` uint8 RGBA images.
    """
    frames = []
    codes = {int(c) for m in windows.values() for c in np.unique(m).tolist()} - {nodata}
    height = 6.2 + 0.2 * math.ceil(len(codes) / 2)
    for number, (fold, classes) in enumerate(windows.items(), start=1):
        figure = Figure(figsize=(6.0, height), layout="constrained")
        axes = figure.subplots()
        axes.imshow(class_map_rgba(classes, nomenclature, nodata), interpolation="nearest")
        axes.set_axis_off()
        axes.set_title(f"fold {number}/{len(windows)}: {_plain(str(fold))} left out")
        _class_legend(figure, windows.values(), nomenclature, nodata, columns=2)
        figure.suptitle(textwrap.fill(_plain(title), 70), fontsize="small")
        frames.append(figure_rgba(figure))
    return frames


def figure_rgba(figure: Figure, dpi: int = DPI) -> np.ndarray:
    """Draw ``figure`` at its own size (no tight crop) into an ``(rows, cols, 4)`` uint8 image."""
    figure.set_dpi(dpi)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()
