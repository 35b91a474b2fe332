"""The report of a spatial cross-validation (``sitsmap crossval``), a page of its own.

A cross-validation's output tree holds no plain run: ``crossval/summary.json``
(written by :func:`sitsmap.pipeline.steps.crossval.summarise_folds`) says how
each fold scores, on the area it learnt from and on the group it left out, and
how the folds' maps compare. :func:`collect_crossval` reads it and the figures
beside it; :func:`render_crossval_report` builds the page:

- accuracy per fold (OA, kappa, mean F-score, same area vs left out);
- F-score per class and fold, and each fold's confusion matrices;
- the agreement between the folds' maps (all together and pair by pair);
- the folds' maps side by side at a tile border, a city and a crop area, and
  animated where they disagree most.

A regression's cross-validation (``"task": "regression"`` in ``summary.json``)
gets its own page: RMSE, MAE, bias and R² per fold (pixels and polygons), and
the per-pixel spread of the folds' predictions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sitsmap import __version__
from sitsmap.config.loader import load_config
from sitsmap.io.binary import read_bytes
from sitsmap.io.jsonfile import read_json
from sitsmap.nomenclature import Nomenclature
from sitsmap.pipeline.layout import OutputLayout
from sitsmap.report.figures import (
    agreement_rgba,
    confusion_png,
    rgba_png,
    value_colorbar_png,
    value_range,
    value_rgba,
)
from sitsmap.report.gather import (
    Missing,
    RegressionMap,
    _attempt,
    _config_text,
    _nomenclature,
    _quicklook,
    _step_times,
)
from sitsmap.report.html import page_header, render_page
from sitsmap.report.markup import (
    Html,
    class_label,
    count,
    data_img,
    details,
    esc,
    figure,
    join,
    missing,
    number,
    png_img,
    table,
    tag,
)
from sitsmap.report.sections import config_section, time_parts
from sitsmap.sampling.bins import REGRESSION_NODATA
from sitsmap.validation.metrics import compute_metrics

__all__ = [
    "CROSSVAL_TITLES",
    "CrossvalData",
    "collect_crossval",
    "is_crossval",
    "render_crossval_report",
]

CROSSVAL_TITLES = {
    "folds": "Accuracy per fold",
    "classes": "F-score per class and fold",
    "confusion": "Confusion matrices per fold",
    "agreement": "Agreement between the folds' maps",
    "places": "The folds' maps side by side",
    "time": "Wall time per step",
    "config": "Configuration",
}
"""Section anchors and headings, in page order."""

REGRESSION_CROSSVAL_TITLES = {
    "folds": "Errors per fold",
    "spread": "Spread of the folds' maps",
    "time": "Wall time per step",
    "config": "Configuration",
}
"""A regression's section anchors and headings, in page order."""

REGRESSION_SCORES = (("rmse", "RMSE"), ("mae", "MAE"), ("bias", "Bias"), ("r2", "R\u00b2"))
"""Scores of a regression fold, pooled over its runs."""

AREAS = (("same_area", "same area"), ("left_out_area", "left out"))
"""The two scores of a fold: on its own area's validation polygons, on the left-out group."""

SCORES = (("oa", "OA"), ("kappa", "Kappa"), ("mean_fscore", "Mean F-score"))
"""Overall scores of a fold."""

_IMAGES = {".png": "image/png", ".gif": "image/gif"}


@dataclass(frozen=True)
class AgreementMap:
    """A decimated copy of ``crossval/agreement.tif``."""

    path: Path
    counts: np.ndarray
    full_shape: tuple[int, int]


@dataclass(frozen=True)
class CrossvalData:
    """Everything the cross-validation report shows; a part that cannot be read is Missing.

    ``images`` maps the paths of ``summary.json`` (relative to ``crossval/``) to
    the bytes of the panels and the animation.
    """

    output_dir: Path
    summary: dict[str, Any]
    nomenclature: Nomenclature
    seeds: list[int]
    fscore_png: bytes | Missing
    agreement_map: AgreementMap | Missing
    images: dict[str, bytes | Missing]
    step_times: pd.DataFrame | Missing
    config_text: str | Missing
    notes: list[str] = field(default_factory=list)
    task: str = "classification"
    """``regression`` when ``summary.json`` says so (errors per fold, spread of the maps)."""
    spread_map: RegressionMap | Missing | None = None
    """A regression's decimated ``crossval/spread.tif``; None for a classification."""


def is_crossval(output_dir: Path) -> bool:
    """Whether ``output_dir`` holds a cross-validation and no plain run's results."""
    layout = OutputLayout(Path(output_dir))
    return (layout.crossval / "summary.json").is_file() and not layout.results_json.exists()


def collect_crossval(output_dir: Path) -> CrossvalData:
    """Read a cross-validation's summary, figures, step times and configuration.

    Parameters
    ----------
    output_dir : Path
        The cross-validation's ``chain.output_path``.

    Returns
    -------
    CrossvalData

    Raises
    ------
    InputDataError
        If ``crossval/summary.json`` cannot be read.
    """
    layout = OutputLayout(Path(output_dir))
    crossval = layout.crossval
    summary = read_json(crossval / "summary.json")
    notes: list[str] = []
    config = _attempt(lambda: load_config(layout.config), layout.root)
    if isinstance(config, Missing):
        notes.append("configuration not available: classes shown by code")
    paths = [p.get("panel") for p in summary.get("places", [])]
    paths.append((summary.get("animation") or {}).get("path"))
    regression = summary.get("task") == "regression"
    chart = REGRESSION_CHART if regression else "fscore_per_fold.png"
    return CrossvalData(
        output_dir=layout.root,
        summary=summary,
        nomenclature=_nomenclature(config, notes, layout.root),
        seeds=[] if isinstance(config, Missing) else list(config.seeds),
        fscore_png=_attempt(lambda: read_bytes(crossval / chart), layout.root),
        agreement_map=(
            Missing("a regression's folds are compared by their spread")
            if regression
            else _attempt(lambda: _agreement_map(layout, summary), layout.root)
        ),
        images={p: _attempt(lambda p=p: read_bytes(crossval / p), layout.root) for p in paths if p},
        step_times=_attempt(lambda: _step_times(layout), layout.root),
        config_text=_config_text(config, layout),
        notes=notes,
        task="regression" if regression else "classification",
        spread_map=_attempt(lambda: _spread_map(layout, summary), layout.root)
        if regression
        else None,
    )


REGRESSION_CHART = "rmse_per_fold.png"
"""A regression's chart of RMSE and R² per fold, in ``crossval/``."""


def _spread_map(layout: OutputLayout, summary: dict[str, Any]) -> RegressionMap:
    """A decimated read of a regression's spread raster, no-data as NaN."""
    path = layout.inside(layout.crossval / summary["spread"]["raster"])
    info, values = _quicklook(path)
    values = values.astype(np.float32)
    nodata = REGRESSION_NODATA if info.nodata is None else float(info.nodata)
    values[(values == nodata) | ~np.isfinite(values)] = np.nan
    return RegressionMap(path, values, (info.grid.height, info.grid.width))


def _agreement_map(layout: OutputLayout, summary: dict[str, Any]) -> AgreementMap:
    agreement = summary["agreement"]
    path = layout.inside(layout.crossval / agreement["raster"])
    info, counts = _quicklook(path)
    return AgreementMap(path, counts, (info.grid.height, info.grid.width))


# --- the page -----------------------------------------------------------------------


def render_crossval_report(data: CrossvalData, generated: dt.datetime | None = None) -> str:
    """Return the HTML document of the cross-validation report.

    Parameters
    ----------
    data : CrossvalData
        What the cross-validation left, as read by :func:`collect_crossval`.
    generated : datetime, optional
        Time shown in the header; now when omitted.

    Returns
    -------
    str
        One self-contained HTML5 document.
    """
    when = (generated or dt.datetime.now()).strftime("%Y-%m-%d %H:%M")
    if data.task == "regression":
        page = {
            key: (title, _REGRESSION_SECTIONS[key])
            for key, title in REGRESSION_CROSSVAL_TITLES.items()
        }
    else:
        page = {key: (CROSSVAL_TITLES[key], build) for key, build in _SECTIONS.items()}
    banner = Html("")
    if data.notes:
        banner = tag("div", tag("ul", join(tag("li", n) for n in data.notes)), class_="banner")
    return render_page(
        f"sitsmap cross-validation \u2013 {data.output_dir.name}",
        _header(data, when),
        page,
        data,
        banner,
    )


def _header(data: CrossvalData, when: str) -> Html:
    folds = [str(f.get("left_out", "?")) for f in data.summary.get("folds", [])]
    seeds = ", ".join(str(seed) for seed in data.seeds) or "unknown"
    meta = Html(
        f"Output directory <code>{esc(data.output_dir)}</code> \u00b7 {len(folds)} folds "
        f"(left out in turn: {esc(', '.join(folds))}) \u00b7 runs (seeds): {esc(seeds)}"
        f" \u00b7 generated {esc(when)} by sitsmap {esc(__version__)}"
    )
    return page_header("sitsmap spatial cross-validation report", meta)


def _section(key: str, *parts: Any) -> Html:
    return tag("section", join([tag("h2", CROSSVAL_TITLES[key]), *parts]), id=key)


def _regression_section(key: str, *parts: Any) -> Html:
    return tag("section", join([tag("h2", REGRESSION_CROSSVAL_TITLES[key]), *parts]), id=key)


def _folds(data: CrossvalData) -> list[dict[str, Any]]:
    folds = data.summary.get("folds")
    if not isinstance(folds, list):
        raise TypeError("summary.json: 'folds' is not a list")
    return folds


# --- accuracy per fold --------------------------------------------------------------


def folds_section(data: CrossvalData) -> Html:
    """OA, kappa and mean F-score of every fold, same area vs left out, and their bar chart."""
    note = tag(
        "p",
        "Each fold's model never learnt from its left-out group. Same area: scored on the "
        "validation polygons of the groups it learnt from; left out: on the group it never "
        "saw. Scores pool the confusion matrices of the fold's runs.",
        class_="note",
    )
    rows = [[f.get("left_out", "?"), *_score_cells(f)] for f in _folds(data)]
    foot = [["Mean \u00b1 std", *_summary_cells(data.summary.get("summary") or {})]]
    head = ["Left out", *(label for _ in AREAS for _, label in SCORES)]
    groups = [("", 1), *((side, len(SCORES)) for _, side in AREAS)]
    parts: list[Any] = [note, tag("div", table(head, rows, foot, groups=groups), class_="scroll")]
    if not isinstance(data.fscore_png, Missing):
        chart = png_img(data.fscore_png, "mean F-score per fold")
        parts.append(figure(chart, _link("crossval/fscore_per_fold.png")))
    return _section("folds", *parts)


def _score_cells(fold: dict[str, Any]) -> list[str]:
    return [number((fold.get(area) or {}).get(key)) for area, _ in AREAS for key, _ in SCORES]


def _summary_cells(summary: dict[str, Any]) -> list[str]:
    cells = []
    for area, _ in AREAS:
        for key, _ in SCORES:
            entry = (summary.get(area) or {}).get(key) or {}
            mean, std = entry.get("mean"), entry.get("std")
            cells.append(number(mean) if std is None else f"{number(mean)} \u00b1 {number(std)}")
    return cells


# --- per-class F-scores -------------------------------------------------------------


def classes_section(data: CrossvalData) -> Html:
    """F-score of every class in every fold, same area and left out, with means over folds."""
    folds = _folds(data)
    codes = _scored_classes(folds)
    if not codes:
        return _section("classes", missing("no class has validation pixels"))
    rows = [_class_row(code, folds, data.nomenclature) for code in codes]
    head = ["Class", *(side for _ in [*folds, None] for _, side in AREAS)]
    groups = [("", 1), *((f.get("left_out", "?"), 2) for f in folds), ("mean of folds", 2)]
    note = tag(
        "p",
        "F-score per class; \u2013 where the fold has no validation pixel of "
        "the class in that area. Cells are shaded by the score.",
        class_="note",
    )
    return _section("classes", note, tag("div", table(head, rows, groups=groups), class_="scroll"))


def _scored_classes(folds: Sequence[dict[str, Any]]) -> list[int]:
    """Classes with validation pixels in some fold and area."""
    return sorted(
        {
            int(code)
            for fold in folds
            for area, _ in AREAS
            for code, scores in ((fold.get(area) or {}).get("per_class") or {}).items()
            if scores.get("support")
        }
    )


def _fscore(fold: dict[str, Any], area: str, code: int) -> float | None:
    scores = ((fold.get(area) or {}).get("per_class") or {}).get(str(code)) or {}
    return scores.get("fscore") if scores.get("support") else None


def _class_row(code: int, folds: Sequence[dict[str, Any]], nomenclature: Nomenclature) -> list:
    values = [[_fscore(fold, area, code) for area, _ in AREAS] for fold in folds]
    means = [_mean([v[side] for v in values if v[side] is not None]) for side in range(len(AREAS))]
    cells = [_shaded(value) for pair in [*values, means] for value in pair]
    return [class_label(nomenclature, code), *cells]


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _shaded(value: float | None) -> str | tuple[str, dict[str, str]]:
    if value is None:
        return number(None)
    return (number(value), {"style": f"background:rgba(46,160,67,{0.05 + 0.6 * value:.2f})"})


# --- confusion matrices -------------------------------------------------------------


def confusion_section(data: CrossvalData) -> Html:
    """Each fold's confusion matrices, same area and left out, as heat maps."""
    folds = _folds(data)
    note = tag(
        "p",
        "Rows are the reference (validation polygons), columns the map; each fold's runs pooled.",
        class_="note",
    )
    blocks = [
        details(f"{fold.get('left_out', '?')} left out", _fold_matrices(fold, data), i == 0)
        for i, fold in enumerate(folds)
    ]
    return _section("confusion", note, *blocks)


def _fold_matrices(fold: dict[str, Any], data: CrossvalData) -> Html:
    images = []
    for area, side in AREAS:
        scores = fold.get(area) or {}
        if "confusion" not in scores:
            images.append(missing(f"summary.json holds no {side} confusion matrix"))
            continue
        metrics = compute_metrics(np.asarray(scores["confusion"]), scores["labels"])
        alt = f"confusion matrix, {fold.get('left_out', '?')} left out, {side}"
        images.append(figure(png_img(confusion_png(metrics, data.nomenclature), alt), side))
    return tag("div", join(images), class_="pair")


# --- agreement ----------------------------------------------------------------------


def agreement_section(data: CrossvalData) -> Html:
    """How often the folds' maps agree: all together, pair by pair, and where."""
    agreement = data.summary.get("agreement")
    if not isinstance(agreement, dict):
        return _section("agreement", missing("summary.json holds no comparison of the folds' maps"))
    folds = [str(f) for f in agreement["folds"]]
    card = tag(
        "div",
        join(
            [
                tag("div", "all folds agree", class_="label"),
                tag("div", _percent(agreement.get("all_agree_fraction"))),
            ]
        ),
        class_="card",
    )
    note = tag(
        "p",
        f"Maps of seed {agreement.get('seed', 0)}; share of the "
        f"{count(agreement.get('pixels_valid_in_all_folds'))} pixels that every fold "
        "classifies. The pairwise table gives, for two folds, the share of identical pixels "
        "among those both classify.",
        class_="note",
    )
    return _section(
        "agreement",
        tag("div", card, class_="cards"),
        note,
        tag("div", _pairwise_table(folds, agreement["pairwise"]), class_="scroll"),
        _agreement_figure(data, agreement),
    )


def _percent(value: float | None) -> str:
    return number(None) if value is None else f"{100 * value:.1f} %"


def _pairwise_table(folds: list[str], matrix: Sequence[Sequence[float | None]]) -> Html:
    rows = [
        [f"{fold} left out", *(_shaded(value) for value in row)]
        for fold, row in zip(folds, matrix, strict=True)
    ]
    return table(["Fold \\ fold", *folds], rows, css_class="data matrix")


def _agreement_figure(data: CrossvalData, agreement: dict[str, Any]) -> Html:
    """The agreement raster's quick-look, with the pixels per number of agreeing folds."""
    shown = data.agreement_map
    if isinstance(shown, Missing):
        return missing(shown.reason)
    folds = len(agreement["folds"])
    rgba = agreement_rgba(shown.counts, folds)
    rows, cols = shown.counts.shape
    width = min(700, max(cols, 500 * cols // max(rows, cols)))
    image = png_img(rgba_png(rgba), "folds agreeing", "quicklook", style=f"width:{width}px")
    size = f"{shown.full_shape[1]} \u00d7 {shown.full_shape[0]} pixels"
    if (rows, cols) != shown.full_shape:
        size += f", shown decimated to {cols} \u00d7 {rows}"
    raster = _link(f"crossval/{agreement.get('raster', 'agreement.tif')}")
    caption = Html(f"{raster}: folds agreeing with each pixel's majority class ({esc(size)})")
    legend = _histogram_table(agreement.get("pixels_by_agreeing_folds") or [], rgba, shown.counts)
    return tag("div", join([figure(image, caption), legend]), class_="map")


def _histogram_table(histogram: Sequence[int], rgba: np.ndarray, counts: np.ndarray) -> Html:
    total = max(1, sum(histogram[1:]))
    rows = []
    for folds, pixels in list(enumerate(histogram))[:0:-1]:
        swatch = _swatch(rgba, counts, folds)
        rows.append([Html(f"{swatch}{folds}"), count(pixels), f"{100 * pixels / total:.1f} %"])
    return tag(
        "div",
        table(["Folds agreeing", "Pixels", "Share"], rows, css_class="data legend"),
        class_="legend",
    )


def _swatch(rgba: np.ndarray, counts: np.ndarray, value: int) -> Html:
    where = np.argwhere(counts == value)
    if not where.size:
        return Html("")
    r, g, b, _ = rgba[tuple(where[0])].tolist()
    return tag("span", "", class_="swatch", style=f"background:rgb({r},{g},{b})")


# --- places -------------------------------------------------------------------------


def places_section(data: CrossvalData) -> Html:
    """The panels of the folds' maps at the chosen places, then the animation."""
    places = data.summary.get("places")
    if not isinstance(places, list) or not places:
        return _section("places", missing("summary.json lists no place to compare the maps at"))
    note = tag(
        "p",
        "Each panel shows every fold's map over the same window (tile borders dashed), and "
        "how many folds agree with the majority class there.",
        class_="note",
    )
    parts: list[Any] = [note, *(_place(data, place) for place in places)]
    animation = data.summary.get("animation")
    if isinstance(animation, dict):
        parts.append(_animation(data, animation))
    return _section("places", *parts)


def _place(data: CrossvalData, place: dict[str, Any]) -> Html:
    x, y = place["center"]
    heading = tag("h3", f"{str(place['name']).capitalize()}: {place['description']}")
    caption = Html(
        f"{_link('crossval/' + place['panel'])}: {place['size']} \u00d7 "
        f"{place['size']} pixels around x {x:.0f}, y {y:.0f}"
    )
    return join([heading, _image(data, place["panel"], f"{place['name']} panel", caption)])


def _animation(data: CrossvalData, animation: dict[str, Any]) -> Html:
    heading = tag("h3", "The folds in turn, where they disagree most")
    caption = Html(
        f"{_link('crossval/' + animation['path'])}: one frame per fold "
        f"(place: {esc(animation.get('place', '?'))})"
    )
    return join([heading, _image(data, animation["path"], "folds in turn", caption)])


def _image(data: CrossvalData, path: str, alt: str, caption: Html) -> Html:
    content = data.images.get(path)
    if content is None or isinstance(content, Missing):
        return missing(content.reason if content else f"crossval/{path} was not read")
    mime = _IMAGES.get(Path(path).suffix.lower(), "image/png")
    return figure(data_img(content, mime, alt), caption)


def _link(relative: str) -> Html:
    """A link to an output file, relative to the report (in the output directory)."""
    return tag("a", tag("code", relative), href=relative)


# --- time and configuration ---------------------------------------------------------


def time_section(data: CrossvalData) -> Html:
    """Summed task time of each step over all folds, from the completion records."""
    times = data.step_times
    if isinstance(times, Missing):
        return _section("time", missing(times.reason))
    return _section("time", *time_parts(times))


_SECTIONS: dict[str, Callable[[CrossvalData], Html]] = {
    "folds": folds_section,
    "classes": classes_section,
    "confusion": confusion_section,
    "agreement": agreement_section,
    "places": places_section,
    "time": time_section,
    "config": config_section,
}


# --- regression ---------------------------------------------------------------------


def regression_folds_section(data: CrossvalData) -> Html:
    """RMSE, MAE, bias and R² of every fold, same area vs left out, pixels then polygons."""
    note = tag(
        "p",
        "Each fold's model never learnt from its left-out group. Same area: scored on the "
        "validation polygons of the groups it learnt from; left out: on the group it never "
        "saw. Scores pool the validation pixels of the fold's runs; the polygon table "
        "compares each polygon's mean prediction with its value.",
        class_="note",
    )
    folds = _folds(data)
    summary = data.summary.get("summary") or {}
    parts: list[Any] = [note]
    for level, title in (("pixel", "Pixels"), ("polygon", "Polygons")):
        rows = [[f.get("left_out", "?"), *_regression_cells(f, level)] for f in folds]
        foot = [["Mean \u00b1 std", *_regression_summary_cells(summary, level)]]
        head = ["Left out", *(label for _ in AREAS for _, label in REGRESSION_SCORES), "Pixels"]
        groups = [("", 1), *((side, len(REGRESSION_SCORES)) for _, side in AREAS), ("", 1)]
        if level == "polygon":
            head[-1], foot[0][-1] = "Polygons", ""
        parts += [
            tag("h3", title),
            tag("div", table(head, rows, foot, groups=groups), class_="scroll"),
        ]
    if not isinstance(data.fscore_png, Missing):
        chart = png_img(data.fscore_png, "RMSE and R\u00b2 per fold")
        parts.append(figure(chart, _link(f"crossval/{REGRESSION_CHART}")))
    return _regression_section("folds", *parts)


def _scores_at(entry: dict[str, Any] | None, level: str) -> dict[str, Any]:
    return (entry or {}).get(level) or {}


def _regression_cells(fold: dict[str, Any], level: str) -> list[str]:
    cells = [
        number(_scores_at(fold.get(area), level).get(key))
        for area, _ in AREAS
        for key, _ in REGRESSION_SCORES
    ]
    pixels = sum(_scores_at(fold.get(area), level).get("n") or 0 for area, _ in AREAS)
    return [*cells, count(pixels)]


def _regression_summary_cells(summary: dict[str, Any], level: str) -> list[str]:
    cells = []
    for area, _ in AREAS:
        for key, _ in REGRESSION_SCORES:
            entry = _scores_at(summary.get(area), level).get(key) or {}
            mean, std = entry.get("mean"), entry.get("std")
            cells.append(number(mean) if std is None else f"{number(mean)} \u00b1 {number(std)}")
    return [*cells, ""]


def spread_section(data: CrossvalData) -> Html:
    """How much the folds' predictions differ: on average, at most, and where."""
    spread = data.summary.get("spread")
    if not isinstance(spread, dict):
        return _regression_section(
            "spread", missing("summary.json holds no comparison of the folds' maps")
        )
    cards = tag(
        "div",
        join(
            tag(
                "div",
                join([tag("div", label, class_="label"), tag("div", number(spread.get(key)))]),
                class_="card",
            )
            for key, label in (("mean_std", "mean spread"), ("max_std", "largest spread"))
        ),
        class_="cards",
    )
    note = tag(
        "p",
        f"Maps of seed {spread.get('seed', 0)}: per pixel, the standard deviation of the "
        f"{len(spread.get('folds') or [])} folds' predictions, over the "
        f"{count(spread.get('pixels_valid_in_all_folds'))} pixels that every fold maps "
        "(in the target's units).",
        class_="note",
    )
    return _regression_section("spread", cards, note, _spread_figure(data, spread))


def _spread_figure(data: CrossvalData, spread: dict[str, Any]) -> Html:
    shown = data.spread_map
    if shown is None or isinstance(shown, Missing):
        return missing(shown.reason if shown else "no spread raster")
    low, high = value_range(shown.values)
    low = min(low, 0.0)
    rows, cols = shown.values.shape
    width = min(700, max(cols, 500 * cols // max(rows, cols)))
    rgba = value_rgba(shown.values, low, high, cmap="magma")
    image = png_img(rgba_png(rgba), "spread of the folds", "quicklook", style=f"width:{width}px")
    size = f"{shown.full_shape[1]} \u00d7 {shown.full_shape[0]} pixels"
    if (rows, cols) != shown.full_shape:
        size += f", shown decimated to {cols} \u00d7 {rows}"
    raster = _link(f"crossval/{spread.get('raster', 'spread.tif')}")
    caption = Html(f"{raster}: standard deviation of the folds' predictions ({esc(size)})")
    legend = png_img(value_colorbar_png(low, high, "spread", cmap="magma"), "colour scale")
    return tag("div", join([figure(image, caption), figure(legend)]), class_="map")


_REGRESSION_SECTIONS: dict[str, Callable[[CrossvalData], Html]] = {
    "folds": regression_folds_section,
    "spread": spread_section,
    "time": time_section,
    "config": config_section,
}
