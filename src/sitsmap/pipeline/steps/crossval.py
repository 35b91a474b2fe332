"""Cross-validation summary: every fold's accuracy side by side, and how their maps differ.

A regression's folds are scored by RMSE, MAE, bias and R² from their runs'
validation pairs, and their maps compared by the per-pixel spread of the
predictions (no class agreement, places or animation).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd

from sitsmap.io.animation import save_gif
from sitsmap.io.arrays import load_arrays
from sitsmap.io.atomic import write_text
from sitsmap.io.figures import save_figure
from sitsmap.io.finishing import finish_raster
from sitsmap.io.jsonfile import read_json, write_json
from sitsmap.io.raster import read_raster
from sitsmap.io.vector import read_vector
from sitsmap.nomenclature import Nomenclature
from sitsmap.pipeline.context import RunContext
from sitsmap.pipeline.steps.regression_validation import REGRESSION_MAP, pairs_path
from sitsmap.report.figures import fold_frames, place_panel_figure
from sitsmap.report.fold_maps import (
    FoldComparison,
    Place,
    border_lines,
    class_groups,
    compare_fold_maps,
    place_windows,
    regression_spread,
)
from sitsmap.sampling.bins import REGRESSION_NODATA
from sitsmap.validation.crossval import (
    fold_entry,
    fscore_figure,
    pooled_metrics,
    pooled_regression,
    regression_figure,
    regression_fold_entry,
    regression_summary_document,
    regression_summary_text,
    summary_document,
    summary_text,
)

AGREEMENT = "agreement.tif"
"""The folds' agreement raster, in ``crossval/``."""

SPREAD = "spread.tif"
"""A regression's per-pixel spread of the folds' predictions, in ``crossval/``."""

REGRESSION_FIGURE = "rmse_per_fold.png"
"""A regression's chart of RMSE and R² per fold, in ``crossval/``."""


def summarise_folds(context: RunContext, folds: list[str]) -> None:
    """Write ``crossval/summary.json``, ``summary.txt``, the figures and the agreement raster.

    Each fold's scores pool the confusion matrices of its runs. The folds' maps
    (of the first seed) are compared: their agreement, and panels of them at a
    tile border, a city and a crop area, and an animation where they disagree most.
    A regression's go through :func:`summarise_regression_folds`.
    """
    if context.config.arg_train.task == "regression":
        summarise_regression_folds(context, folds)
        return
    entries = []
    for fold in folds:
        final = context.layout.for_fold(fold).final
        same = [read_json(final / f"validation_seed_{s}.json") for s in context.config.seeds]
        out = [
            read_json(final / f"validation_left_out_seed_{s}.json") for s in context.config.seeds
        ]
        entries.append(fold_entry(fold, pooled_metrics(same), pooled_metrics(out)))
    document = summary_document(entries)
    document.update(compare_maps(context, folds))
    crossval = context.layout.crossval
    write_json(crossval / "summary.json", document)
    write_text(crossval / "summary.txt", summary_text(document))
    save_figure(fscore_figure(document), crossval / "fscore_per_fold.png")


def summarise_regression_folds(context: RunContext, folds: list[str]) -> None:
    """A regression's ``summary.json``, ``summary.txt``, RMSE figure and spread raster.

    Each fold's scores pool the validation pairs of its runs, on its same-area
    validation polygons and on the left-out group's. The folds' maps (of the
    first seed) are compared by the per-pixel standard deviation of their values.
    """
    seeds = context.config.seeds
    entries = []
    for fold in folds:
        final = context.layout.for_fold(fold).final
        same = [load_arrays(pairs_path(final, f"seed_{s}")) for s in seeds]
        out = [load_arrays(pairs_path(final, f"left_out_seed_{s}")) for s in seeds]
        entries.append(regression_fold_entry(fold, pooled_regression(same), pooled_regression(out)))
    document = regression_summary_document(entries)
    crossval = context.layout.crossval
    maps = {
        fold: context.layout.for_fold(fold).final_map(seeds[0], REGRESSION_MAP) for fold in folds
    }
    spread = regression_spread(maps, crossval / SPREAD, REGRESSION_NODATA)
    finish_raster(crossval / SPREAD, "continuous", threads=context.threads)
    document["spread"] = {**spread, "seed": seeds[0], "raster": SPREAD}
    write_json(crossval / "summary.json", document)
    write_text(crossval / "summary.txt", regression_summary_text(document))
    save_figure(regression_figure(document), crossval / REGRESSION_FIGURE)


def compare_maps(context: RunContext, folds: list[str]) -> dict:
    """Compare the folds' maps; the ``agreement``, ``places`` and ``animation`` of the summary.

    Paths in the returned document are relative to ``crossval/``.
    """
    seed = context.config.seeds[0]
    crossval = context.layout.crossval
    maps = {fold: context.layout.for_fold(fold).final_map(seed) for fold in folds}
    nomenclature = context.nomenclature
    envelopes = _envelopes(context)
    comparison = compare_fold_maps(
        maps, crossval / AGREEMENT, class_groups(nomenclature), envelopes
    )
    finish_raster(crossval / AGREEMENT, "classes", threads=context.threads)  # counts: majority
    places = [
        {
            **place.document(comparison.grid),
            "panel": _panel(maps, comparison, place, envelopes, context),
        }
        for place in _shown(comparison)
    ]
    return {
        "agreement": {**comparison.document(), "seed": seed, "raster": AGREEMENT},
        "places": places,
        "animation": {
            "place": comparison.animated.name,
            "path": _animation(maps, comparison, nomenclature, crossval),
        },
    }


def _shown(comparison: FoldComparison) -> list[Place]:
    """The places to draw: the chosen ones, and the animated one if it is not among them."""
    if comparison.animated in comparison.places:
        return list(comparison.places)
    return [*comparison.places, comparison.animated]


def _panel(
    maps: dict[str, Path],
    comparison: FoldComparison,
    place: Place,
    envelopes: gpd.GeoSeries | None,
    context: RunContext,
) -> str:
    """Draw the folds' maps over ``place``; the panel's path relative to ``crossval/``."""
    crossval = context.layout.crossval
    agreement = read_raster(crossval / AGREEMENT, window=place.window, bands=1)
    lines = [] if envelopes is None else border_lines(envelopes, comparison.grid, place)
    figure = place_panel_figure(
        place_windows(maps, place),
        agreement,
        context.nomenclature,
        comparison.nodata,
        _title(place, comparison),
        lines,
    )
    # files beside the folds' folders: a sub-folder could bear a fold's name
    relative = f"place_{place.name}.png"
    save_figure(figure, crossval / relative, dpi=100)
    return relative


def _animation(
    maps: dict[str, Path], comparison: FoldComparison, nomenclature: Nomenclature, crossval: Path
) -> str:
    """Animate the folds' maps where they disagree most; the GIF's path under ``crossval/``."""
    place = comparison.animated
    frames = fold_frames(
        place_windows(maps, place), nomenclature, comparison.nodata, _title(place, comparison)
    )
    relative = f"folds_{place.name}.gif"
    save_gif(frames, crossval / relative)
    return relative


def _title(place: Place, comparison: FoldComparison) -> str:
    x, y = place.document(comparison.grid)["center"]
    return (
        f"{place.name}: {place.description} "
        f"({place.size} \u00d7 {place.size} pixels around x {x:.0f}, y {y:.0f})"
    )


def _envelopes(context: RunContext) -> gpd.GeoSeries | None:
    """The tiles' envelopes, or None when init left none."""
    path = context.layout.envelopes
    return read_vector(path).geometry if path.exists() else None
