"""One function per report section: gathered data in, an HTML fragment out.

Each section starts with its ``<h2>`` (titles in :data:`SECTION_TITLES`) and
says "Not available" with the reason when its outputs are missing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from sitsmap.config.schema import STEP_NAMES
from sitsmap.learning.deep.history import MINIMISED, criterion_column, history_task
from sitsmap.nomenclature import Nomenclature
from sitsmap.report.figures import (
    SCORES,
    class_map_rgba,
    class_scores_figure,
    confusion_png,
    figure_png,
    history_pngs,
    rgba_png,
)
from sitsmap.report.gather import (
    Accuracy,
    ClassMap,
    CrossValidation,
    LearningCurves,
    Missing,
    ReportData,
    SeedAccuracy,
)
from sitsmap.report.markup import (
    Html,
    class_label,
    count,
    details,
    duration,
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
from sitsmap.report.regions import REGIONS_KEY, REGIONS_TITLE, regions_section
from sitsmap.report.regression import REGRESSION_SECTIONS, REGRESSION_TITLES
from sitsmap.report.selection import SELECTION_KEY, SELECTION_TITLE, selection_section
from sitsmap.validation.metrics import ClassificationMetrics
from sitsmap.validation.report import results_json

__all__ = ["OPTIONAL_TITLES", "SECTIONS", "SECTION_TITLES", "page_sections"]

SECTION_TITLES = {
    "accuracy": "Accuracy summary",
    "map": "Map quick-look",
    "samples": "Samples per class",
    "curves": "Learning curves",
    "confusion": "Confusion matrix",
    "scores": "Per-class scores",
    "area": "Area-adjusted accuracy",
    "crossval": "Cross-validation",
    "time": "Wall time per step",
    "config": "Configuration",
}
"""Section anchors and headings, in page order."""

OPTIONAL_TITLES = {REGIONS_KEY: REGIONS_TITLE, SELECTION_KEY: SELECTION_TITLE}
"""Sections that only some runs have (see :func:`page_sections`)."""

_GLOBAL_SCORES = (("oa", "Overall accuracy"), ("kappa", "Kappa"), ("mean_fscore", "Mean F-score"))


def _section(key: str, *parts: Any) -> Html:
    heading = tag("h2", SECTION_TITLES[key])
    return tag("section", join([heading, *parts]), id=key)


def _per_seed(seeds: Sequence[Any], render: Callable[[Any], Any]) -> Html:
    """One block per run; collapsible (first one open) when there are several."""
    if len(seeds) == 1:
        return esc(render(seeds[0]))
    return join(
        details(f"Run seed {seed}", render(seed), is_open=i == 0) for i, seed in enumerate(seeds)
    )


def _summary(accuracy: Accuracy) -> dict[str, Any]:
    """Mean and 95 % interval over runs, computed as ``results.json`` does."""
    return results_json([(entry.seed, entry.metrics) for entry in accuracy.seeds])["summary"]


# --- accuracy summary ---------------------------------------------------------------


def accuracy_section(data: ReportData) -> Html:
    """OA, kappa and mean F-score: one card each, then one row per run."""
    accuracy = data.accuracy
    if isinstance(accuracy, Missing):
        return _section("accuracy", missing(accuracy.reason))
    runs = len(accuracy.seeds)
    summary = _summary(accuracy)
    note = (
        f"Mean \u00b1 half-width of the 95 % Student-t interval over {runs} runs."
        if runs > 1
        else "One run: no interval over runs."
    )
    return _section(
        "accuracy",
        _cards(summary, runs),
        tag("p", note, class_="note"),
        _runs_table(accuracy, summary),
    )


def _cards(summary: dict[str, Any], runs: int) -> Html:
    cards = (
        tag(
            "div",
            join([tag("div", label, class_="label"), tag("div", mean_ci(summary[key], runs=runs))]),
            class_="card",
        )
        for key, label in _GLOBAL_SCORES
    )
    return tag("div", join(cards), class_="cards")


def _runs_table(accuracy: Accuracy, summary: dict[str, Any]) -> Html:
    runs = len(accuracy.seeds)
    rows = [
        [
            f"seed {entry.seed}",
            *(number(getattr(entry.metrics, key)) for key, _ in _GLOBAL_SCORES),
            count(entry.metrics.confusion.sum()),
        ]
        for entry in accuracy.seeds
    ]
    foot = []
    if runs > 1:
        means = (mean_ci(summary[key], runs=runs) for key, _ in _GLOBAL_SCORES)
        foot.append([f"mean of {runs} runs", *means, ""])
    if accuracy.fusion:
        foot.append(_fusion_row(accuracy.fusion))
    for kind, report in (accuracy.post_processing or {}).items():
        foot.append(_post_processed_row(kind, report, runs))
    head = ["Run", *(label for _, label in _GLOBAL_SCORES), "Validation pixels"]
    return table(head, rows, foot)


def _fusion_row(fusion: dict[str, Any]) -> list[Any]:
    values = [fusion.get(key) for key, _ in _GLOBAL_SCORES]
    cells = [mean_ci(v) if isinstance(v, dict) else number(v) for v in values]
    pixels = fusion.get("confusion")
    total = count(float(np.asarray(pixels).sum())) if pixels is not None else ""
    return ["fusion of runs", *cells, total]


def _post_processed_row(kind: str, report: dict[str, Any], runs: int) -> list[Any]:
    """A post-processed map's scores on the same validation polygons (mean over runs)."""
    summary = report["summary"]
    cells = (mean_ci(summary[key], runs=runs) for key, _ in _GLOBAL_SCORES)
    pixels = sum(np.asarray(entry["confusion"]).sum() for entry in report["seeds"]) / runs
    return [f"{kind} map", *cells, count(float(pixels))]


# --- map ----------------------------------------------------------------------------


def map_section(data: ReportData) -> Html:
    """The final map decimated to at most 1000 pixels a side, with a legend."""
    class_map = data.class_map
    if isinstance(class_map, Missing):
        return _section("map", missing(class_map.reason))
    rgba = class_map_rgba(class_map.classes, data.nomenclature, class_map.nodata)
    rows, cols = class_map.classes.shape
    width = min(900, max(cols, 600 * cols // max(rows, cols)))
    image = png_img(
        rgba_png(rgba), "quick-look of the final class map", "quicklook", style=f"width:{width}px"
    )
    full_rows, full_cols = class_map.full_shape
    caption = f"{class_map.path.name}: {full_cols} \u00d7 {full_rows} pixels"
    if (rows, cols) != class_map.full_shape:
        caption += f", shown decimated to {cols} \u00d7 {rows}"
    return _section(
        "map",
        tag(
            "div",
            join([figure(image, caption), _legend(class_map, data.nomenclature)]),
            class_="map",
        ),
    )


def _legend(class_map: ClassMap, nomenclature: Nomenclature) -> Html:
    codes, counts = np.unique(class_map.classes, return_counts=True)
    keep = codes != class_map.nodata
    codes, counts = codes[keep], counts[keep]
    total = max(1, int(counts.sum()))
    rows = [
        [class_label(nomenclature, code), f"{100 * n / total:.1f} %"]
        for code, n in sorted(
            zip(codes.tolist(), counts.tolist(), strict=True), key=lambda x: -x[1]
        )
    ]
    return tag(
        "div", table(["Class", "Share of map"], rows, css_class="data legend"), class_="legend"
    )


# --- samples ------------------------------------------------------------------------

_SAMPLE_COLUMNS = {
    "learning_polygons": "Learning polygons",
    "validation_polygons": "Validation polygons",
    "learning_pixels": "Learning pixels (samples)",
    "validation_pixels": "Validation pixels",
}


def samples_section(data: ReportData) -> Html:
    """Polygons and pixels per class, learning and validation sides, per run."""
    if not data.seeds:
        return _section("samples", missing("no run found in the output tree"))
    note = tag(
        "p",
        "Learning pixels are the selected samples; validation pixels are the rows of "
        "the confusion matrix (pixels of the validation polygons that the map covers).",
        class_="note",
    )
    return _section("samples", note, _per_seed(data.seeds, lambda s: _samples_table(data, s)))


def _samples_table(data: ReportData, seed: int) -> Html:
    counts = data.samples.get(seed)
    if counts is None or isinstance(counts, Missing):
        return missing(counts.reason if counts else "no sample statistics")
    rows = [
        [class_label(data.nomenclature, code), *(count(row[c]) for c in _SAMPLE_COLUMNS)]
        for code, row in counts.iterrows()
    ]
    totals = counts.sum(min_count=1)
    foot = [["Total", *(count(totals[c]) for c in _SAMPLE_COLUMNS)]]
    return table(["Class", *_SAMPLE_COLUMNS.values()], rows, foot)


# --- learning curves ----------------------------------------------------------------


def curves_section(data: ReportData) -> Html:
    """Loss and monitoring metrics per epoch of each deep model."""
    curves = [data.curves.get(seed) for seed in data.seeds]
    reasons = {c.reason for c in curves if isinstance(c, Missing)}
    if not data.seeds or (len(reasons) == 1 and all(isinstance(c, Missing) for c in curves)):
        return _section("curves", missing(reasons.pop() if reasons else "no run found"))
    return _section("curves", _per_seed(data.seeds, lambda s: _curves(data, s)))


def _curves(data: ReportData, seed: int) -> Html:
    curves = data.curves.get(seed)
    if curves is None or isinstance(curves, Missing):
        return missing(curves.reason if curves else "no learning curves")
    return join([_kept_epoch(curves, data.criterion), _curve_images(curves, data.criterion)])


def _curve_images(curves: LearningCurves, criterion: str) -> Html:
    pngs = curves.pngs if curves.history is None else history_pngs(curves.history, criterion)
    alts = ("loss per epoch", "monitoring metrics per epoch")
    images = (png_img(png, alts[min(i, 1)]) for i, png in enumerate(pngs))
    return tag("div", join(figure(image) for image in images), class_="pair")


_MONITORED = (
    ("val_oa", "OA"),
    ("val_kappa", "kappa"),
    ("val_fscore", "F-score"),
    ("val_rmse", "RMSE"),
    ("val_r2", "R\u00b2"),
)
"""Monitoring metrics of a history (a classifier's or a regressor's), as the note names them."""


def _kept_epoch(curves: LearningCurves, criterion: str) -> Html:
    history = curves.history
    if history is None or history.empty:
        return Html("")
    try:
        column = criterion_column(criterion, history_task(history))
    except (KeyError, ValueError):
        return Html("")
    if column not in history:
        return Html("")
    best = history[column].idxmin() if column in MINIMISED else history[column].idxmax()
    row = history.loc[best]
    scores = ", ".join(f"{label} {number(row[key])}" for key, label in _MONITORED if key in row)
    text = (
        f"Kept epoch {int(row['epoch'])} of {int(history['epoch'].max())} "
        f"(learning rate {row['learning_rate']:g}, batch {int(row['batch_size'])}), best "
        f"monitoring {criterion}: {scores}."
    )
    return tag("p", text, class_="note")


# --- confusion matrix ---------------------------------------------------------------


def confusion_section(data: ReportData) -> Html:
    """Per run: iota2's heat map, then the matrix as a shaded table."""
    accuracy = data.accuracy
    if isinstance(accuracy, Missing):
        return _section("confusion", missing(accuracy.reason))
    note = tag("p", "Rows are the reference (validation polygons), columns the map.", class_="note")
    by_seed = {entry.seed: entry for entry in accuracy.seeds}
    return _section(
        "confusion",
        note,
        _per_seed(list(by_seed), lambda s: _confusion(by_seed[s], data.nomenclature)),
    )


def _confusion(entry: SeedAccuracy, nomenclature: Nomenclature) -> Html:
    image = png_img(
        confusion_png(entry.metrics, nomenclature), f"confusion matrix, seed {entry.seed}"
    )
    return join(
        [figure(image), tag("div", confusion_table(entry.metrics, nomenclature), class_="scroll")]
    )


def confusion_table(metrics: ClassificationMetrics, nomenclature: Nomenclature) -> Html:
    """The confusion matrix as a table, cells shaded by their share of the reference row."""
    matrix = np.asarray(metrics.confusion, dtype=np.int64)
    totals = matrix.sum(axis=1)
    rows = []
    for i, code in enumerate(metrics.labels):
        cells = [_matrix_cell(matrix[i, j], totals[i], i == j) for j in range(len(metrics.labels))]
        rows.append(
            [
                class_label(nomenclature, code),
                *cells,
                count(totals[i]),
                number(metrics.recall[code]),
            ]
        )
    precision = [number(metrics.precision[code]) for code in metrics.labels]
    foot = [
        ["Total", *(count(v) for v in matrix.sum(axis=0)), count(matrix.sum()), ""],
        ["Precision", *precision, "", ""],
    ]
    head = [
        "Reference \\ map",
        *(tag("span", code, title=nomenclature.name(code)) for code in metrics.labels),
        "Total",
        "Recall",
    ]
    return table(head, rows, foot, css_class="data matrix")


def _matrix_cell(value: int, row_total: int, diagonal: bool) -> tuple[str, dict[str, str]]:
    share = value / row_total if row_total else 0.0
    hue = "46,160,67" if diagonal else "214,39,40"
    style = f"background:rgba({hue},{0.08 + 0.75 * share:.2f})" if value else ""
    return (count(value) if value else "", {"style": style} if style else {})


# --- per-class scores ---------------------------------------------------------------


def scores_section(data: ReportData) -> Html:
    """Precision, recall and F-score per class as bars (with 95 % intervals) and a table."""
    accuracy = data.accuracy
    if isinstance(accuracy, Missing):
        return _section("scores", missing(accuracy.reason))
    runs = len(accuracy.seeds)
    per_class = {int(code): v for code, v in _summary(accuracy)["per_class"].items()}
    if not per_class:
        return _section("scores", missing("no class has validation pixels"))
    note = (
        "Mean \u00b1 95 % interval over the runs where the class has validation pixels "
        "(error bars clipped to [0, 1])."
        if runs > 1
        else "Classes without validation pixels are left out."
    )
    return _section(
        "scores",
        tag("p", note, class_="note"),
        figure(png_img(_scores_chart(per_class, runs, data.nomenclature), "per-class scores")),
        _scores_table(per_class, runs, _support(accuracy), data.nomenclature),
    )


def _scores_chart(per_class: dict[int, dict], runs: int, nomenclature: Nomenclature) -> bytes:
    def column(key: str, part: str) -> list[float]:
        values = (per_class[code][key][part] for code in per_class)
        return [math.nan if value is None else value for value in values]

    scores = {key: column(key, "mean") for key, _ in SCORES}
    intervals = {key: column(key, "ci95") for key, _ in SCORES} if runs > 1 else None
    return figure_png(class_scores_figure(list(per_class), scores, intervals, nomenclature))


def _scores_table(
    per_class: dict[int, dict], runs: int, support: dict[int, int], nomenclature: Nomenclature
) -> Html:
    rows = [
        [
            class_label(nomenclature, code),
            *(mean_ci(scores[key], runs=runs) for key, _ in SCORES),
            count(support.get(code, 0)),
        ]
        for code, scores in per_class.items()
    ]
    head = ["Class", *(label for _, label in SCORES), "Validation pixels (all runs)"]
    return table(head, rows)


def _support(accuracy: Accuracy) -> dict[int, int]:
    totals: dict[int, int] = {}
    for entry in accuracy.seeds:
        for code, value in entry.metrics.support.items():
            totals[code] = totals.get(code, 0) + int(value)
    return totals


# --- area-adjusted accuracy ---------------------------------------------------------


def area_section(data: ReportData) -> Html:
    """Olofsson et al. estimates with their 95 % intervals, when validation computed them."""
    accuracy = data.accuracy
    if isinstance(accuracy, Missing):
        return _section("area", missing(accuracy.reason))
    blocks = {entry.seed: entry.area_adjusted for entry in accuracy.seeds if entry.area_adjusted}
    if not blocks and isinstance(accuracy.area_adjusted, dict):
        blocks = _top_level_area(accuracy.area_adjusted)
    if not blocks:
        return _section("area", missing("results.json holds no area-adjusted estimates"))
    return _section(
        "area", _per_seed(list(blocks), lambda key: _area_block(blocks[key], data.nomenclature))
    )


def _top_level_area(document: dict[str, Any]) -> dict[Any, dict]:
    """A top-level ``area_adjusted``: one block for all runs, or one per seed."""
    if "per_class" in document:
        return {"all": document}
    return {key: value for key, value in document.items() if isinstance(value, dict)}


def _area_block(block: dict[str, Any], nomenclature: Nomenclature) -> Html:
    unit = block.get("area_unit", "")
    per_class = block.get("per_class", {})
    rows = [
        [
            class_label(nomenclature, int(code)),
            number(values.get("mapped_area"), 1),
            mean_ci(values.get("adjusted_area"), 1),
            mean_ci(values.get("users_accuracy")),
            mean_ci(values.get("producers_accuracy")),
        ]
        for code, values in per_class.items()
    ]
    head = [
        "Class",
        f"Mapped area ({unit})",
        f"Adjusted area ({unit}) \u00b1 95 %",
        "User's accuracy \u00b1 95 %",
        "Producer's accuracy \u00b1 95 %",
    ]
    overall = f"Area-adjusted overall accuracy: {mean_ci(block.get('overall_accuracy'))}"
    method = block.get("method", "")
    return join(
        [tag("p", tag("strong", overall)), tag("p", method, class_="note"), table(head, rows)]
    )


# --- cross-validation ---------------------------------------------------------------

_CROSSVAL_SIDES = (("same_area", "same area"), ("left_out_area", "left-out area"))


def crossval_section(data: ReportData) -> Html:
    """Spatial cross-validation: one row per left-out fold, then the figures."""
    crossval = data.crossval
    if isinstance(crossval, Missing):
        return _section("crossval", missing(crossval.reason))
    parts: list[Any] = [_crossval_table(crossval)]
    parts += [figure(png_img(png, name), name) for name, png in crossval.pngs]
    return _section("crossval", *parts)


_REGRESSION_CROSSVAL_SCORES = (("rmse", "RMSE"), ("r2", "R\u00b2"))


def _crossval_table(crossval: CrossValidation) -> Html:
    summary = crossval.summary
    if isinstance(summary, Missing):
        return missing(summary.reason)
    folds = summary.get("folds", [])
    scores = _REGRESSION_CROSSVAL_SCORES if summary.get("task") == "regression" else _GLOBAL_SCORES
    head = [
        "Left out",
        *(f"{label} ({side})" for _, side in _CROSSVAL_SIDES for _, label in scores),
    ]
    rows = [[fold.get("left_out", "?"), *_crossval_cells(fold, scores)] for fold in folds]
    overall = summary.get("summary")
    foot = [["Summary", *_crossval_cells(overall, scores)]] if isinstance(overall, dict) else []
    return tag("div", table(head, rows, foot), class_="scroll")


def _crossval_cells(entry: dict[str, Any], scores: Sequence[tuple[str, str]]) -> list[str]:
    cells = []
    for side, _ in _CROSSVAL_SIDES:
        found = entry.get(side) or {}
        if "pixel" in found:  # a regression's: pixel and polygon scores
            found = found["pixel"] or {}
        for key, _ in scores:
            value = found.get(key)
            cells.append(mean_ci(value, runs=2) if isinstance(value, dict) else number(value))
    return cells


# --- wall time ----------------------------------------------------------------------


def time_section(data: ReportData) -> Html:
    """Summed task time of each step, from the completion records."""
    times = data.step_times
    if isinstance(times, Missing):
        return _section("time", missing(times.reason))
    return _section("time", *time_parts(times))


def time_parts(times: pd.DataFrame) -> list[Html]:
    """The step time table and its notes (see :func:`~sitsmap.report.gather.collect`)."""
    total = float(times["seconds"].sum())
    longest = max(float(times["seconds"].max()), 1e-9)
    rows = [
        [
            step,
            count(row["tasks"]),
            duration(row["seconds"]),
            f"{100 * row['seconds'] / max(total, 1e-9):.0f} %",
            _bar(row["seconds"] / longest),
        ]
        for step, row in times.iterrows()
    ]
    foot = [["Total", count(times["tasks"].sum()), duration(total), "", ""]]
    head = ["Step", "Tasks done", "Task time (sum)", "Share", ""]
    span = float(times["end"].max() - times["start"].min())
    parts: list[Html] = [
        table(head, rows, foot),
        tag(
            "p",
            f"From the first task's start to the last task's end: {duration(span)} "
            "(tasks run in parallel overlap; pauses between resumed runs count).",
            class_="note",
        ),
    ]
    not_run = [step for step in STEP_NAMES if step not in times.index]
    if not_run:
        parts.append(tag("p", f"No task completed in: {', '.join(not_run)}.", class_="note"))
    return parts


def _bar(fraction: float) -> Html:
    inner = tag("span", "", class_="bar", style=f"width:{100 * fraction:.1f}%")
    return tag("span", inner, class_="track")


# --- configuration ------------------------------------------------------------------


def config_section(data: ReportData) -> Html:
    """The resolved configuration of the run, as YAML."""
    text = data.config_text
    if isinstance(text, Missing):
        return _section("config", missing(text.reason))
    return _section("config", tag("pre", text, class_="yaml"))


SECTIONS: dict[str, Callable[[ReportData], Html]] = {
    "accuracy": accuracy_section,
    "map": map_section,
    "samples": samples_section,
    "curves": curves_section,
    "confusion": confusion_section,
    "scores": scores_section,
    "area": area_section,
    "crossval": crossval_section,
    "time": time_section,
    "config": config_section,
}
"""Section builders by anchor, in page order."""


def page_sections(data: ReportData) -> dict[str, tuple[str, Callable[[ReportData], Html]]]:
    """Title and builder of each section of this run's report, by anchor, in page order.

    Every run has the sections of :data:`SECTIONS`; a run with eco-regions also has
    the eco-regions section, after the area-adjusted accuracy, and a run that chose
    among candidates (``arg_train.model_selection``) the model selection section,
    after the learning curves. A regression's page has the sections of
    :data:`~sitsmap.report.regression.REGRESSION_TITLES` instead (errors, not
    confusion matrices).
    """
    if data.task == "regression":
        return _regression_page(data)
    page = {}
    for key, build in SECTIONS.items():
        page[key] = (SECTION_TITLES[key], build)
        if key == "curves" and data.model_selection is not None:
            page[SELECTION_KEY] = (SELECTION_TITLE, selection_section)
        if key == "area" and data.regions is not None:
            page[REGIONS_KEY] = (REGIONS_TITLE, regions_section)
    return page


def _regression_page(data: ReportData) -> dict[str, tuple[str, Callable[[ReportData], Html]]]:
    """A regression's sections: its own, and those it shares with a classification's."""
    page = {}
    for key, title in REGRESSION_TITLES.items():
        page[key] = (title, REGRESSION_SECTIONS.get(key) or SECTIONS[key])
        if key == "curves" and data.model_selection is not None:
            page[SELECTION_KEY] = (SELECTION_TITLE, selection_section)
    return page


def missing_sections(data: ReportData) -> list[tuple[str, str]]:
    """``(title, reason)`` of the main outputs that the run did not leave."""
    found = [
        ("accuracy", data.accuracy),
        ("map", data.class_map),
        ("time", data.step_times),
        ("config", data.config_text),
    ]
    found += [("samples", data.samples.get(s)) for s in data.seeds[:1]]
    if data.regions is not None:
        found += [(REGIONS_KEY, data.regions.results), (REGIONS_KEY, data.regions.region_map)]
    if data.model_selection is not None:
        found.append((SELECTION_KEY, data.model_selection))
    titles = {**SECTION_TITLES, **OPTIONAL_TITLES}
    if data.task == "regression":
        titles.update(REGRESSION_TITLES)
    return [(titles[k], v.reason) for k, v in found if isinstance(v, Missing)]
