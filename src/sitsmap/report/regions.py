"""The eco-regions section: per-region accuracy and models, per-class scores, the map.

Only a run with eco-regions (``chain.region_path``) has this section; the page
lists it after the area-adjusted accuracy (see
:func:`sitsmap.report.sections.page_sections`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sitsmap.nomenclature import Nomenclature
from sitsmap.report.figures import figure_png, region_map_figure
from sitsmap.report.gather import Accuracy, Missing, RegionMap, RegionResult, Regions, ReportData
from sitsmap.report.markup import (
    Html,
    class_label,
    count,
    esc,
    figure,
    hex_color,
    join,
    mean_ci,
    missing,
    png_img,
    table,
    tag,
)
from sitsmap.validation.report import results_json

__all__ = ["REGIONS_KEY", "REGIONS_TITLE", "regions_section"]

REGIONS_KEY = "regions"
"""Anchor of the section."""

REGIONS_TITLE = "Eco-regions"
"""Heading of the section."""

_SCORES = (("oa", "OA"), ("kappa", "Kappa"), ("mean_fscore", "Mean F-score"))

_FALLBACKS = {"global": "global model", "nearest": "nearest region's model"}

_WRAP = {"style": "white-space:normal;text-align:left;min-width:12em"}
"""Attributes of a table cell holding a list (class codes)."""


def regions_section(data: ReportData) -> Html:
    """Per-region accuracy and models, per-class F-score and support, and the region map."""
    regions = data.regions
    if regions is None:
        return Html("")
    parts = [
        _note(regions),
        _regions_block(data, regions),
        _per_class_block(regions, data.nomenclature),
        _map_block(regions),
    ]
    heading = tag("h2", REGIONS_TITLE)
    return tag("section", join([heading, *parts]), id=REGIONS_KEY)


def _note(regions: Regions) -> Html:
    runs = max((_runs(r) for r in _results(regions).values()), default=0)
    text = (
        "One model per eco-region (chain.region_path); each region's scores are computed "
        "over its own validation polygons."
    )
    if runs > 1:
        text += (
            " Mean \u00b1 half-width of the 95 % Student-t interval over the runs where "
            f"the region has validation pixels ({runs} at most); learning samples, missing "
            "classes and fallbacks are given per run when the runs differ."
        )
    return tag("p", text, class_="note")


def _results(regions: Regions) -> dict[str, RegionResult]:
    return {} if isinstance(regions.results, Missing) else regions.results


def _runs(result: RegionResult) -> int:
    return 0 if isinstance(result.accuracy, Missing) else len(result.accuracy.seeds)


def _summary(accuracy: Accuracy) -> dict[str, Any]:
    """Mean and 95 % interval over runs, computed as ``results.json`` does."""
    return results_json([(entry.seed, entry.metrics) for entry in accuracy.seeds])["summary"]


def _region_label(region: str, regions: Regions) -> Html:
    """The region's colour on the map (when known) and its id."""
    colors = {} if isinstance(regions.region_map, Missing) else regions.region_map.colors
    names = {} if isinstance(regions.names, Missing) else regions.names
    number_of = {name: n for n, name in names.items()}
    rgb = colors.get(number_of.get(region, -1))
    if rgb is None:
        return esc(region)
    swatch = tag("span", "", class_="swatch", style=f"background:{hex_color(rgb)}")
    return Html(f"{swatch}{esc(region)}")


# --- one row per region -------------------------------------------------------------


def _regions_block(data: ReportData, regions: Regions) -> Html:
    if isinstance(regions.results, Missing):
        return missing(regions.results.reason)
    rows = [
        _region_row(region, result, regions, data.nomenclature)
        for region, result in regions.results.items()
    ]
    head = [
        "Region",
        *(label for _, label in _SCORES),
        "Validation pixels (all runs)",
        "Learning samples",
        "Classes missing from the model",
        "Fallback model",
    ]
    return tag("div", table(head, rows, _overall_foot(data.accuracy)), class_="scroll")


def _region_row(
    region: str, result: RegionResult, regions: Regions, nomenclature: Nomenclature
) -> list[Any]:
    models = result.models
    return [
        _region_label(region, regions),
        *_score_cells(result.accuracy),
        _by_run(models, "samples", count),
        (_by_run(models, "missing_classes", lambda codes: _codes(codes, nomenclature)), _WRAP),
        _by_run(models, "fallback", _fallback),
    ]


def _score_cells(accuracy: Accuracy | Missing) -> list[Any]:
    if isinstance(accuracy, Missing):
        note = tag("span", accuracy.reason, class_="note")
        return [(note, {"colspan": str(len(_SCORES) + 1), "style": "text-align:left"})]
    runs = len(accuracy.seeds)
    summary = _summary(accuracy)
    pixels = sum(int(np.asarray(entry.metrics.confusion).sum()) for entry in accuracy.seeds)
    return [*(mean_ci(summary[key], runs=runs) for key, _ in _SCORES), count(pixels)]


def _overall_foot(accuracy: Accuracy | Missing) -> list[list[Any]]:
    """The whole map's scores under the regions' (from the accuracy summary)."""
    if isinstance(accuracy, Missing):
        return []
    return [["Whole map (all regions)", *_score_cells(accuracy), "", "", ""]]


def _by_run(models: dict[int, dict], key: str, show: Callable[[Any], str]) -> str:
    """One value for all runs, or ``seed 0: …; seed 1: …`` when the runs differ."""
    values = {seed: model.get(key) for seed, model in sorted(models.items()) if key in model}
    if not values:
        return "\u2013"
    texts = {seed: show(value) for seed, value in values.items()}
    if len(set(texts.values())) == 1:
        return next(iter(texts.values()))
    return "; ".join(f"seed {seed}: {text}" for seed, text in texts.items())


def _fallback(name: str | None) -> str:
    return _FALLBACKS.get(name, str(name)) if name else "none"


def _codes(codes: list[int] | None, nomenclature: Nomenclature) -> str:
    if not codes:
        return "none"
    return ", ".join(f"{int(code)} {nomenclature.name(int(code))}" for code in codes)


# --- per-class F-score and support --------------------------------------------------


def _per_class_block(regions: Regions, nomenclature: Nomenclature) -> Html:
    scored = {
        region: result.accuracy
        for region, result in _results(regions).items()
        if not isinstance(result.accuracy, Missing)
    }
    if not scored:
        return Html("")
    cells = {region: _class_cells(accuracy) for region, accuracy in scored.items()}
    codes = sorted({code for per_class in cells.values() for code in per_class})
    empty = ["\u2013", "\u2013"]
    rows = [
        [
            class_label(nomenclature, code),
            *(cell for region in scored for cell in cells[region].get(code, empty)),
        ]
        for code in codes
    ]
    head = ["Class"]
    for region in scored:
        label = _region_label(region, regions)
        head += [Html(f"{label}<br>F-score"), Html(f"{label}<br>Validation pixels")]
    caption = tag(
        "p",
        "Per-class F-score and validation pixels (all runs) of each region; "
        "\u2013: the class has no validation pixel in the region.",
        class_="note",
    )
    return join([caption, tag("div", table(head, rows), class_="scroll")])


def _class_cells(accuracy: Accuracy) -> dict[int, list[str]]:
    """``[F-score, support]`` cells of each class with validation pixels in the region."""
    runs = len(accuracy.seeds)
    per_class = _summary(accuracy)["per_class"]
    support: dict[int, int] = {}
    for entry in accuracy.seeds:
        for code, value in entry.metrics.support.items():
            support[int(code)] = support.get(int(code), 0) + int(value)
    return {
        int(code): [mean_ci(scores["fscore"], runs=runs), count(support.get(int(code), 0))]
        for code, scores in per_class.items()
        if support.get(int(code), 0) > 0
    }


# --- region map ---------------------------------------------------------------------


def _map_block(regions: Regions) -> Html:
    region_map = regions.region_map
    if isinstance(region_map, Missing):
        return missing(region_map.reason)
    names = {} if isinstance(regions.names, Missing) else regions.names
    png = figure_png(region_map_figure(region_map.numbers, region_map.colors, names))
    image = png_img(png, "map of the eco-regions")
    parts = [figure(image, _map_caption(region_map))]
    if isinstance(regions.names, Missing):
        parts.append(tag("p", f"Region ids not available: {regions.names.reason}", class_="note"))
    return join(parts)


def _map_caption(region_map: RegionMap) -> str:
    rows, cols = region_map.numbers.shape
    full_rows, full_cols = region_map.full_shape
    caption = f"{region_map.path.name}: {full_cols} \u00d7 {full_rows} pixels"
    if (rows, cols) != region_map.full_shape:
        caption += f", shown decimated to {cols} \u00d7 {rows}"
    return caption + "; blank: outside every region"
