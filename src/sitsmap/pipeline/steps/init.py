"""Step init: the tiles' products and temporal grid, then the clean ground truth.

Two tasks: ``init`` reads the tiles, ``init-ground-truth`` the polygons, so that
editing the ground truth never rereads the Sentinel-2 products.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import pandas as pd
import shapely

from sitsmap.config import dump_config
from sitsmap.errors import InputDataError
from sitsmap.io.atomic import write_text
from sitsmap.io.vector import read_vector, write_vector
from sitsmap.mosaic import tile_envelopes
from sitsmap.pipeline.acquisitions import (
    Acquisitions,
    load_acquisitions,
    save_acquisitions,
    tile_stack,
)
from sitsmap.pipeline.context import RunContext
from sitsmap.preprocessing.temporal import common_period, regular_dates
from sitsmap.vectors.ground_truth import FUSION_COLUMN, POLYGON_ID, prepare_ground_truth
from sitsmap.vectors.split import SPLIT_COLUMN, VALIDATION, split_polygons

LOGGER = logging.getLogger(__name__)


def run_init(context: RunContext) -> None:
    """Find every tile's products, fix the temporal grid, write the tile envelopes."""
    config, layout = context.config, context.layout
    chain, s2 = config.chain, config.sentinel_2
    stacks = {tile: tile_stack(context, tile) for tile in chain.list_tile}
    grids = {tile: stack.grid for tile, stack in stacks.items()}
    crs = _shared_crs(grids, chain.s2_path)
    input_dates = {tile: tuple(stack.dates) for tile, stack in stacks.items()}
    start, end = common_period(input_dates)
    out_dates = regular_dates(s2.start_date or start, s2.end_date or end, s2.temporal_resolution)
    LOGGER.info(
        "temporal grid: %d dates from %s to %s every %d days",
        len(out_dates),
        out_dates[0],
        out_dates[-1],
        s2.temporal_resolution,
    )
    envelopes = tile_envelopes(grids)
    write_vector(
        gpd.GeoDataFrame({"tile": list(envelopes)}, geometry=list(envelopes.values()), crs=crs),
        layout.envelopes,
    )
    save_acquisitions(context, Acquisitions(tuple(out_dates), s2.keep_bands, grids, input_dates))
    write_text(layout.config, dump_config(config))


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
    truth = prepare_ground_truth(
        read_vector(chain.ground_truth),
        chain.ground_truth,
        chain.data_field,
        context.nomenclature,
        crs,
        shapely.union_all(list(envelopes.geometry)),
    )
    write_vector(
        _hold_back_for_fusion(truth, chain, config.arg_train.random_seed), layout.ground_truth
    )


def _shared_crs(grids: dict, s2_path) -> object:
    crs_set = {grid.crs.to_string() for grid in grids.values()}
    if len(crs_set) > 1:
        raise InputDataError(
            f"tiles are in different CRSs ({sorted(crs_set)}); "
            "process each UTM zone in its own run",
            s2_path,
        )
    return next(iter(grids.values())).crs


def _hold_back_for_fusion(truth: gpd.GeoDataFrame, chain, seed: int) -> gpd.GeoDataFrame:
    """Mark the polygons that no run learns from, kept to validate the fusion of the runs."""
    held = pd.Series(False, index=truth.index)
    if chain.merge_final_classifications:
        sides = split_polygons(
            truth, chain.data_field, 1 - chain.merge_final_classifications_ratio, seed, POLYGON_ID
        )
        held = sides[SPLIT_COLUMN] == VALIDATION
    return truth.assign(**{FUSION_COLUMN: held.to_numpy()})
