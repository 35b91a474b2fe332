"""The report's sections of a regression run (``arg_train.task: regression``).

A regression's ``results.json`` holds errors (RMSE, MAE, bias, R² per pixel, per
polygon and per bin of the target) instead of confusion matrices: these
sections replace the accuracy summary, the map quick-look and the samples per
class, and add the errors per bin and the predicted-vs-reference figures; the
classification-only sections (confusion matrix, per-class scores, area-adjusted
accuracy) are left out. :func:`sitsmap.report.sections.page_sections` assembles
the page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sitsmap.report.figures import (
    figure_png,
    regression_bins_figure,
    rgba_png,
    value_colorbar_png,
    value_range,
    value_rgba,
)
from sitsmap.report.gather import (
    Missing,
    RegressionAccuracy,
    RegressionMap,
    ReportData,
)
from sitsmap.report.markup import (
    Html,
    count,
    details,
    esc,
    figure,
    join,
    mean_ci,
    missing,
    number,
    png_img,
    table,
    tag,
)
from sitsmap.validation.regression import LEVELS, SCORE_LABELS, SCORES, ErrorScores
from sitsmap.validation.regression_figures import residual_figure, scatter_figure

__all__ = ["REGRESSION_SECTIONS", "REGRESSION_TITLES"]

REGRESSION_TITLES = {
    "accuracy": "Accuracy summary",
    "map": "Map quick-look",
    "samples": "Samples per target bin",
    "curves": "Learning curves",
    "bins": "Errors per target bin",
    "scatter": "Predicted vs reference",
    "crossval": "Cross-validation",
    "time": "Wall time per step",
    "config": "Configuration",
}
"""Section anchors and headings of a regression's page, in page order; the keys it
shares with a classification's page keep their builders
(:data:`sitsmap.report.sections.SECTIONS`)."""

_LEVEL_LABELS = {"pixel": "pixels", "polygon": "polygons (mean prediction)"}


def _section(key: str, *parts: Any) -> Html:
    return tag("section", join([tag("h2", REGRESSION_TITLES[key]), *parts]), id=key)


def _accuracy(data: ReportData) -> RegressionAccuracy | Missing:
    accuracy = data.accuracy
    if isinstance(accuracy, Missing | RegressionAccuracy):
        return accuracy
    return Missing("results.json holds a classification's accuracy, not a regression's")


def _runs_note(runs: int) -> Html:
    text = (
        f"Mean \u00b1 half-width of the 95 % Student-t interval over {runs} runs."
        if runs > 1
        else "One run: no interval over runs."
    )
    return tag("p", text, class_="note")


# --- accuracy summary ---------------------------------------------------------------


def accuracy_section(data: ReportData) -> Html:
    """RMSE, R², MAE and bias per pixel as cards, then one row per run, pixel and polygon."""
    accuracy = _accuracy(data)
    if isinstance(accuracy, Missing):
        return _section("accuracy", missing(accuracy.reason))
    runs, summary = len(accuracy.seeds), accuracy.summary
    cards = (
        tag(
            "div",
            join(
                [
                    tag("div", f"{SCORE_LABELS[key]} (pixels)", class_="label"),
                    tag("div", mean_ci(summary["pixel"][key], runs=runs)),
                ]
            ),
            class_="card",
        )
        for key in ("rmse", "r2", "mae", "bias")
    )
    note = tag(
        "p",
        "Errors of the map against the validation polygons' values: over their pixels, and "
        "over the polygons (each polygon's mean prediction against its value). Bias is the "
        "mean of predicted \u2212 reference.",
        class_="note",
    )
    return _section(
        "accuracy",
        tag("div", join(cards), class_="cards"),
        note,
        _runs_note(runs),
        tag("div", _runs_table(accuracy), class_="scroll"),
    )


def _runs_table(accuracy: RegressionAccuracy) -> Html:
    runs = len(accuracy.seeds)
    rows = [
        [f"seed {seed}", *_score_cells([metrics.level(level) for level in LEVELS])]
        for seed, metrics in accuracy.seeds
    ]
    foot = []
    if runs > 1:
        summary = accuracy.summary
        cells = [mean_ci(summary[level][key], runs=runs) for level in LEVELS for key in SCORES]
        per_run = [count(summary[level]["n"] / runs) for level in LEVELS]
        foot.append([f"mean of {runs} runs", *cells, *per_run])
    head = ["Run", *(SCORE_LABELS[key] for _ in LEVELS for key in SCORES), "Pixels", "Polygons"]
    groups = [("", 1), *((_LEVEL_LABELS[level], len(SCORES)) for level in LEVELS), ("", 2)]
    return table(head, rows, foot, groups=groups)


def _score_cells(levels: Sequence[ErrorScores]) -> list[str]:
    scores = [number(getattr(level, key)) for level in levels for key in SCORES]
    return [*scores, *(count(level.n) for level in levels)]


# --- map ----------------------------------------------------------------------------


def map_section(data: ReportData) -> Html:
    """The regression map decimated to at most 1000 pixels a side, with a colour bar."""
    shown = data.class_map
    if isinstance(shown, Missing):
        return _section("map", missing(shown.reason))
    if not isinstance(shown, RegressionMap):
        return _section("map", missing("the final map is a class map, not a regression map"))
    low, high = value_range(shown.values)
    rows, cols = shown.values.shape
    width = min(900, max(cols, 600 * cols // max(rows, cols)))
    image = png_img(
        rgba_png(value_rgba(shown.values, low, high)),
        "quick-look of the final regression map",
        "quicklook",
        style=f"width:{width}px",
    )
    full_rows, full_cols = shown.full_shape
    caption = f"{shown.path.name}: {full_cols} \u00d7 {full_rows} pixels"
    if (rows, cols) != shown.full_shape:
        caption += f", shown decimated to {cols} \u00d7 {rows}"
    caption += "; colours from the 2nd to the 98th percentile of the values, no-data transparent"
    legend = png_img(value_colorbar_png(low, high, "mapped value"), "colour scale")
    return _section("map", tag("div", join([figure(image, caption), figure(legend)]), class_="map"))


# --- samples ------------------------------------------------------------------------

_SAMPLE_COLUMNS = {
    "learning_polygons": "Learning polygons",
    "validation_polygons": "Validation polygons",
    "learning_pixels": "Learning pixels (samples)",
    "validation_pixels": "Validation pixels",
}


def samples_section(data: ReportData) -> Html:
    """Polygons and pixels per quantile bin of the target, learning and validation, per run."""
    if not data.seeds:
        return _section("samples", missing("no run found in the output tree"))
    note = tag(
        "p",
        "The target's quantile bins over the ground truth's polygons: the split and the "
        "sample selection treat each bin as a class. Validation pixels are those of the "
        "validation polygons that the map covers.",
        class_="note",
    )
    labels = _bin_labels(data)
    return _section(
        "samples", note, _per_seed(data.seeds, lambda s: _samples_table(data, s, labels))
    )


def _samples_table(data: ReportData, seed: int, labels: list[str]) -> Html:
    counts = data.samples.get(seed)
    if counts is None or isinstance(counts, Missing):
        return missing(counts.reason if counts else "no sample statistics")
    rows = [
        [_bin_label(labels, int(k)), *(count(row[c]) for c in _SAMPLE_COLUMNS)]
        for k, row in counts.iterrows()
    ]
    totals = counts.sum(min_count=1)
    foot = [["Total", *(count(totals[c]) for c in _SAMPLE_COLUMNS)]]
    return table(["Target bin", *_SAMPLE_COLUMNS.values()], rows, foot)


def _bin_labels(data: ReportData) -> list[str]:
    """The bins' ranges, from the summary of ``results.json`` (none without it)."""
    accuracy = data.accuracy
    if not isinstance(accuracy, RegressionAccuracy):
        return []
    bins = accuracy.summary.get("bins") or []
    return [_range(entry["low"], entry["high"], k == len(bins) - 1) for k, entry in enumerate(bins)]


def _bin_label(labels: list[str], k: int) -> str:
    return f"{k}: {labels[k]}" if 0 <= k < len(labels) else f"bin {k}"


def _range(low: float, high: float, last: bool) -> str:
    return f"[{low:.4g}, {high:.4g}{']' if last else ')'}"


def _per_seed(seeds: Sequence[Any], render: Callable[[Any], Any]) -> Html:
    if len(seeds) == 1:
        return esc(render(seeds[0]))
    return join(
        details(f"Run seed {seed}", render(seed), is_open=i == 0) for i, seed in enumerate(seeds)
    )


# --- errors per bin -----------------------------------------------------------------


def bins_section(data: ReportData) -> Html:
    """RMSE, MAE, bias and R² of the pixels of each bin of the reference value."""
    accuracy = _accuracy(data)
    if isinstance(accuracy, Missing):
        return _section("bins", missing(accuracy.reason))
    bins = accuracy.summary.get("bins") or []
    if not bins:
        return _section("bins", missing("results.json holds no per-bin errors"))
    runs = len(accuracy.seeds)
    labels = _bin_labels(data)
    rows = [
        [labels[k], count(entry["n"]), *(mean_ci(entry[key], runs=runs) for key in SCORES)]
        for k, entry in enumerate(bins)
    ]
    head = ["Reference bin", "Validation pixels (all runs)", *(SCORE_LABELS[k] for k in SCORES)]
    note = tag(
        "p",
        "Pixels grouped by the quantile bin of their reference value. A model that pulls "
        "values towards the mean shows a positive bias in the low bins and a negative one in "
        "the high bins. R\u00b2 within a bin is over that bin's narrow range of values.",
        class_="note",
    )
    scores = {key: [entry[key]["mean"] for entry in bins] for key in ("rmse", "bias")}
    intervals = {key: [entry[key]["ci95"] for entry in bins] for key in ("rmse", "bias")}
    chart = figure_png(regression_bins_figure(labels, scores, intervals if runs > 1 else None))
    return _section(
        "bins",
        note,
        _runs_note(runs),
        figure(png_img(chart, "RMSE and bias per bin")),
        tag("div", table(head, rows), class_="scroll"),
    )


# --- scatter ------------------------------------------------------------------------


def scatter_section(data: ReportData) -> Html:
    """Per run: predicted against reference values, and the histogram of residuals."""
    accuracy = _accuracy(data)
    if isinstance(accuracy, Missing):
        return _section("scatter", missing(accuracy.reason))
    seeds = [seed for seed, _ in accuracy.seeds]
    note = tag(
        "p",
        "Each validation pixel's prediction against its polygon's value (a density when "
        "there are many), with the 1:1 line; then the residuals, predicted \u2212 reference.",
        class_="note",
    )
    return _section("scatter", note, _per_seed(seeds, lambda s: _scatter(accuracy, s)))


def _scatter(accuracy: RegressionAccuracy, seed: int) -> Html:
    pngs = dict(accuracy.figures.get(seed, {}))
    if seed in accuracy.pairs:  # figures missing, pairs there: draw them now
        reference, predicted = accuracy.pairs[seed]
        title = f"seed {seed}"
        pngs.setdefault("scatter", figure_png(scatter_figure(reference, predicted, title)))
        pngs.setdefault("residuals", figure_png(residual_figure(reference, predicted, title)))
    if not pngs:
        return missing(f"no scatter_seed_{seed}.png or validation pairs in final/")
    alts = {"scatter": "predicted vs reference", "residuals": "residual histogram"}
    images = [
        figure(png_img(png, f"{alts.get(kind, kind)}, seed {seed}")) for kind, png in pngs.items()
    ]
    return tag("div", join(images), class_="pair")


REGRESSION_SECTIONS: dict[str, Callable[[ReportData], Html]] = {
    "accuracy": accuracy_section,
    "map": map_section,
    "samples": samples_section,
    "bins": bins_section,
    "scatter": scatter_section,
}
"""The builders of a regression's own sections, by anchor."""
