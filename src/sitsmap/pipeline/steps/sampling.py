"""Step sampling: candidates per tile, one selection over all tiles, extraction per tile.

The per-class counts and the sample selection are made over all tiles
together, so a ``constant`` strategy caps each class over the whole region.
Features of the selected pixels come from the same function that
classification uses.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
from rasterio.windows import Window

from sitsmap.io.arrays import load_arrays, read_table, save_arrays, write_table
from sitsmap.io.raster import read_raster
from sitsmap.io.tables import read_class_counts
from sitsmap.io.vector import read_vector, write_vector
from sitsmap.pipeline.acquisitions import (
    feature_windows,
    load_acquisitions,
    tile_stack,
    window_features,
)
from sitsmap.pipeline.context import RunContext
from sitsmap.sampling.candidates import find_pixels
from sitsmap.sampling.selection import samples_per_class, select_samples
from sitsmap.vectors.ground_truth import BIN_COLUMN, POLYGON_ID
from sitsmap.vectors.regions import REGION_COLUMN, region_index
from sitsmap.vectors.split import LEARNING, SPLIT_COLUMN

LOGGER = logging.getLogger(__name__)

TILE, ROW, COL = "tile", "row", "col"


def find_candidates(context: RunContext, tile: str, seed: int) -> None:
    """Save the learning pixels of ``tile`` that have at least one valid date."""
    layout, field = context.layout, context.config.chain.data_field
    acquisitions = load_acquisitions(context)
    grid = acquisitions.grids[tile]
    polygons = read_vector(layout.split(seed))
    learning = polygons[polygons[SPLIT_COLUMN] == LEARNING]
    envelopes = read_vector(layout.envelopes)
    envelope = envelopes.loc[envelopes["tile"] == tile].geometry.iloc[0]
    # each pixel of an overlap belongs to exactly one tile: clip to this tile's envelope
    clipped = learning.clip(envelope)
    clipped = clipped[~clipped.geometry.is_empty]
    usable = read_raster(layout.pixels_validity(tile), bands=1) > 0
    regions = None
    if context.config.chain.region_path is not None:  # a pixel learns for its own region
        regions = read_raster(layout.regions_raster(tile), bands=1)
        usable &= regions > 0
    found = find_pixels(clipped, grid, context.strata_field, POLYGON_ID, usable)
    LOGGER.info(
        "%s: %d candidate pixels in %d learning polygons",
        tile,
        len(found),
        clipped[POLYGON_ID].nunique(),
    )
    targets = {}
    if context.config.regression:  # the value of each pixel's polygon (labels are its bin)
        value = pd.Series(clipped[field].to_numpy(np.float64), index=clipped[POLYGON_ID])
        targets["targets"] = value.groupby(level=0).first().reindex(found.polygons).to_numpy()
    save_arrays(
        layout.candidates(tile, seed),
        rows=found.rows,
        cols=found.cols,
        labels=found.labels,
        polygons=found.polygons,
        regions=(
            np.zeros(found.rows.size, np.uint16)
            if regions is None
            else regions[found.rows, found.cols]
        ),
        **targets,
    )


def select(context: RunContext, seed: int, regional: bool = False) -> None:
    """Choose the samples of run ``seed`` among the candidates of all tiles.

    With ``regional``, the strategy applies to each region apart (100 000 pixels per
    class and per region); otherwise to all tiles together.
    """
    layout, settings = context.layout, context.config.arg_train.sample_selection
    tiles = list(context.config.chain.list_tile)
    parts = [load_arrays(layout.candidates(tile, seed)) for tile in tiles]
    labels = np.concatenate([p["labels"] for p in parts])
    regions = np.concatenate([p["regions"] for p in parts])
    if not regional:
        regions = np.zeros_like(regions)
    tile_index = np.concatenate([np.full(p["labels"].size, i) for i, p in enumerate(parts)])
    byclass = read_class_counts(settings.byclass_in) if settings.strategy == "byclass" else None
    chosen, rows = [], []
    for region in np.unique(regions):
        members = np.flatnonzero(regions == region)
        codes, counts = np.unique(labels[members], return_counts=True)
        candidates = dict(zip(codes.tolist(), counts.tolist(), strict=True))
        wanted = samples_per_class(candidates, settings, byclass)
        picked = members[select_samples(labels[members], wanted, settings.sampler, seed)]
        chosen.append(picked)
        counted = np.bincount(labels[picked], minlength=int(codes.max(initial=0)) + 1)
        rows.append(_statistics(context, codes, counts, counted[codes], int(region)))
    chosen = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
    save_arrays(
        layout.selection(seed),
        tile_index=tile_index[chosen],
        rows=np.concatenate([p["rows"] for p in parts])[chosen],
        cols=np.concatenate([p["cols"] for p in parts])[chosen],
        labels=labels[chosen],
        polygons=np.concatenate([p["polygons"] for p in parts])[chosen],
        regions=regions[chosen],
        **(
            {"targets": np.concatenate([p["targets"] for p in parts])[chosen]}
            if context.config.regression
            else {}
        ),
    )
    statistics = pd.concat(rows, ignore_index=True) if rows else _statistics(context, [], [], [], 0)
    if not regional:
        statistics = statistics.drop(columns="region_number")
    write_table(statistics, layout.class_statistics(seed))
    LOGGER.info("selected %d samples in %d classes", chosen.size, np.unique(labels).size)


def _statistics(context: RunContext, codes, candidates, counts, region: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "region_number": region,
            "label": np.asarray(codes, dtype=np.int64),
            "name": [_stratum_name(context, c) for c in codes],
            "candidates": np.asarray(candidates, dtype=np.int64),
            "count": np.asarray(counts, dtype=np.int64),
        }
    )


def _stratum_name(context: RunContext, code: int) -> str:
    """A class's name, or a regression bin's (``bin 3``)."""
    return f"bin {int(code)}" if context.config.regression else context.nomenclature.name(code)


def extract(context: RunContext, tile: str, seed: int) -> None:
    """Compute the features of the selected pixels of ``tile``."""
    layout, field = context.layout, context.config.chain.data_field
    acquisitions = load_acquisitions(context)
    selection = load_arrays(layout.selection(seed))
    mine = selection["tile_index"] == list(context.config.chain.list_tile).index(tile)
    rows, cols = selection["rows"][mine], selection["cols"][mine]
    names = acquisitions.feature_names
    values = np.empty((rows.size, len(names)), dtype=np.float32)
    if rows.size:
        series = tile_stack(context, tile, acquisitions)
        windows = _around_samples(feature_windows(context, series), rows, cols)
        for window, block in window_features(context, series, windows):
            inside = np.flatnonzero(_inside(window, rows, cols))
            values[inside] = block.features[
                :, rows[inside] - window.row_off, cols[inside] - window.col_off
            ].T
    grid = acquisitions.grids[tile]
    x, y = grid.transform @ (cols + 0.5, rows + 0.5)
    table = pd.DataFrame(
        {
            TILE: tile,
            ROW: rows,
            COL: cols,
            "x": x,
            "y": y,
            field: selection["labels"][mine],
            POLYGON_ID: selection["polygons"][mine],
        }
    )
    if context.config.regression:  # the target, and its bin beside it
        table[field] = selection["targets"][mine]
        table[BIN_COLUMN] = selection["labels"][mine]
    if context.config.chain.region_path is not None:
        ids = region_ids(context)
        table[REGION_COLUMN] = [ids.get(int(n), "") for n in selection["regions"][mine]]
    table = pd.concat([table, pd.DataFrame(values, columns=names)], axis=1)
    write_table(table, layout.tile_samples(tile, seed))


def merge(context: RunContext, seed: int) -> None:
    """Write the samples table of run ``seed`` (GeoParquet, one row per pixel)."""
    layout = context.layout
    acquisitions = load_acquisitions(context)
    tables = [
        read_table(layout.tile_samples(tile, seed)) for tile in context.config.chain.list_tile
    ]
    table = pd.concat(tables, ignore_index=True)
    crs = next(iter(acquisitions.grids.values())).crs
    samples = gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(table["x"], table["y"]), crs=crs)
    write_vector(samples, layout.samples(seed))
    LOGGER.info(
        "samples table: %d pixels × %d features", len(samples), len(acquisitions.feature_names)
    )


def region_ids(context: RunContext) -> dict[int, str]:
    """Region id of each region number of the rasters (init-regions' numbering)."""
    regions = read_vector(context.layout.regions)
    return {number: region for region, number in region_index(regions[REGION_COLUMN]).items()}


def _inside(window: Window, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Which pixels ``(rows, cols)`` fall in ``window``."""
    return (
        (rows >= window.row_off)
        & (rows < window.row_off + window.height)
        & (cols >= window.col_off)
        & (cols < window.col_off + window.width)
    )


def _around_samples(windows: list[Window], rows: np.ndarray, cols: np.ndarray) -> list[Window]:
    """Shrink each window to the box around its samples; drop windows without any."""
    shrunk = []
    for window in windows:
        mask = _inside(window, rows, cols)
        if mask.any():
            top, left = int(rows[mask].min()), int(cols[mask].min())
            bottom, right = int(rows[mask].max()) + 1, int(cols[mask].max()) + 1
            shrunk.append(Window(left, top, right - left, bottom - top))
    return shrunk
