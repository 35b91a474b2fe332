"""Step init: the tiles' products and temporal grid, then the clean ground truth.

Two tasks: ``init`` reads the tiles, ``init-ground-truth`` the polygons, so that
editing the ground truth never rereads the Sentinel-2 products.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

import geopandas as gpd
import pandas as pd
import shapely

from sitsmap.config import Config, dump_config
from sitsmap.errors import ConfigError, InputDataError
from sitsmap.io.atomic import write_text
from sitsmap.io.vector import read_vector, write_vector
from sitsmap.mosaic import tile_envelopes
from sitsmap.pipeline.acquisitions import (
    Acquisitions,
    SensorGrid,
    load_acquisitions,
    save_acquisitions,
    tile_stacks,
)
from sitsmap.pipeline.context import RunContext
from sitsmap.pipeline.sources import image_sources, static_layers
from sitsmap.preprocessing.raw_dates import period_dates
from sitsmap.preprocessing.temporal import common_period, regular_dates
from sitsmap.vectors.ground_truth import (
    FUSION_COLUMN,
    POLYGON_ID,
    prepare_ground_truth,
    prepare_regression_truth,
)
from sitsmap.vectors.regions import REGION_COLUMN, assign_regions
from sitsmap.vectors.split import SPLIT_COLUMN, VALIDATION, split_polygons

LOGGER = logging.getLogger(__name__)


def run_init(context: RunContext) -> None:
    """Find every tile's products, fix each sensor's temporal grid, write the tile envelopes."""
    config, layout = context.config, context.layout
    chain = config.chain
    stacks = {tile: tile_stacks(context, tile) for tile in chain.list_tile}
    grids = {tile: found[0].grid for tile, found in stacks.items()}
    crs = _shared_crs(grids, chain.list_tile)
    sensors = []
    for index, source in enumerate(image_sources(config)):
        settings = source.settings
        dates = {tile: found[index].dates for tile, found in stacks.items()}
        start, end = common_period(dates)
        out_dates = regular_dates(
            settings.start_date or start, settings.end_date or end, settings.temporal_resolution
        )
        LOGGER.info(
            "%s temporal grid: %d dates from %s to %s every %d days",
            source.sensor.name,
            len(out_dates),
            out_dates[0],
            out_dates[-1],
            settings.temporal_resolution,
        )
        slots = _raw_slots(config, source.sensor.name, dates, out_dates)
        sensors.append(SensorGrid.of(source.sensor, out_dates, settings.keep_bands, slots))
    _check_distinct_sensors(sensors)
    static = tuple(
        name for layer in static_layers(config, chain.list_tile[0]) for name in layer.names
    )
    envelopes = tile_envelopes(grids)
    write_vector(
        gpd.GeoDataFrame({"tile": list(envelopes)}, geometry=list(envelopes.values()), crs=crs),
        layout.envelopes,
    )
    input_dates = {
        tile: {stack.sensor.name: stack.dates for stack in found} for tile, found in stacks.items()
    }
    save_acquisitions(context, Acquisitions(tuple(sensors), grids, input_dates, static))
    write_text(layout.config, dump_config(config))


def _raw_slots(
    config: Config, sensor: str, dates: dict[str, Sequence[dt.date]], out_dates: Sequence[dt.date]
) -> int:
    """Observation slots of the raw-dates features; 0 when the features are gap-filled.

    The most acquisitions a tile has within the grid's period, or
    ``sensors_data_interpolation.max_observations`` when that is fewer.
    """
    interpolation = config.sensors_data_interpolation
    if interpolation.use_gapfilling:
        return 0
    counts = {tile: len(period_dates(found, out_dates)) for tile, found in dates.items()}
    slots = max(counts.values(), default=0)
    if interpolation.max_observations is not None:
        slots = min(slots, interpolation.max_observations)
    if slots == 0:
        raise ConfigError(
            f"no {sensor} acquisition within {out_dates[0]} .. {out_dates[-1]}: the raw-dates "
            "features (sensors_data_interpolation.use_gapfilling false) have no date to use"
        )
    LOGGER.info(
        "%s raw dates: %d observation slots per pixel (acquisitions per tile: %s)",
        sensor,
        slots,
        ", ".join(f"{tile} {count}" for tile, count in counts.items()),
    )
    return slots


def prepare_truth(context: RunContext) -> None:
    """Check and clean the ground truth, in the tiles' CRS, over the tiles' envelopes.

    A task of its own, apart from :func:`run_init`: editing the ground truth
    reruns the steps that use polygons, never the reading of the tiles.
    """
    config, layout = context.config, context.layout
    chain = config.chain
    acquisitions = load_acquisitions(context)
    crs = next(iter(acquisitions.grids.values())).crs
    envelopes = read_vector(layout.envelopes)
    coverage = shapely.union_all(list(envelopes.geometry))
    frame = read_vector(chain.ground_truth)
    if config.regression:
        bins = config.arg_train.regression_bins
        truth = prepare_regression_truth(
            frame, chain.ground_truth, chain.data_field, bins, crs, coverage
        )
    else:
        truth = prepare_ground_truth(
            frame, chain.ground_truth, chain.data_field, context.nomenclature, crs, coverage
        )
    if chain.region_path is not None:
        truth = _with_regions(truth, read_vector(layout.regions), chain.ground_truth)
    write_vector(
        _hold_back_for_fusion(truth, chain, config.arg_train.random_seed), layout.ground_truth
    )


def _with_regions(truth: gpd.GeoDataFrame, regions: gpd.GeoDataFrame, path) -> gpd.GeoDataFrame:
    """Give each polygon the region of its representative point; drop those in none."""
    region = assign_regions(truth, regions)
    outside = region.isna()
    if outside.all():
        raise InputDataError("no ground-truth polygon lies in a region of chain.region_path", path)
    if outside.any():
        LOGGER.warning(
            "%d ground-truth polygon(s) lie outside every region: dropped", int(outside.sum())
        )
    return truth.assign(**{REGION_COLUMN: region}).loc[~outside].reset_index(drop=True)


def _shared_crs(grids: dict, tiles) -> object:
    crs_set = {grid.crs.to_string() for grid in grids.values()}
    if len(crs_set) > 1:
        raise ConfigError(
            f"chain.list_tile: tiles {' '.join(tiles)} are in different CRSs "
            f"({sorted(crs_set)}); process each UTM zone in its own run"
        )
    return next(iter(grids.values())).crs


def _check_distinct_sensors(sensors: list[SensorGrid]) -> None:
    names = [grid.sensor for grid in sensors]
    if len(set(names)) != len(names):
        raise ConfigError(f"two sources of the same sensor ({', '.join(names)}): give one")


def _hold_back_for_fusion(truth: gpd.GeoDataFrame, chain, seed: int) -> gpd.GeoDataFrame:
    """Mark the polygons that no run learns from, kept to validate the fusion of the runs."""
    held = pd.Series(False, index=truth.index)
    if chain.merge_final_classifications:
        sides = split_polygons(
            truth, chain.data_field, 1 - chain.merge_final_classifications_ratio, seed, POLYGON_ID
        )
        held = sides[SPLIT_COLUMN] == VALIDATION
    return truth.assign(**{FUSION_COLUMN: held.to_numpy()})
