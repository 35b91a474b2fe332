"""Step split: one polygon-level learning/validation split per run (and per fold)."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from sitsmap.errors import InputDataError
from sitsmap.io.vector import read_vector, write_vector
from sitsmap.pipeline.context import RunContext
from sitsmap.vectors.folds import polygon_groups
from sitsmap.vectors.ground_truth import FUSION_COLUMN, POLYGON_ID
from sitsmap.vectors.regions import REGION_COLUMN
from sitsmap.vectors.split import split_polygons


def split_ground_truth(context: RunContext, seed: int, group_field: str | None = None) -> None:
    """Split the cleaned ground truth for run ``seed`` and write it with its sides.

    In a cross-validation fold (``context.fold``), the polygons of the left-out
    group (a tile, or a value of ``group_field``) are set aside first: never
    learnt from, they measure how the model does on unseen ground.

    Raises
    ------
    InputDataError
        If no polygon is left for validation (every class has a single polygon).
    """
    chain, layout = context.config.chain, context.layout
    truth = read_vector(layout.ground_truth)
    truth = truth[~truth[FUSION_COLUMN]]  # held back for the fusion: never learnt from
    if context.fold is not None:
        envelopes = read_vector(layout.envelopes)
        groups = polygon_groups(
            truth, dict(zip(envelopes["tile"], envelopes.geometry, strict=True)), group_field
        )
        write_vector(truth[groups == context.fold], layout.left_out)
        truth = truth[groups != context.fold]
    polygons_per_class = truth.groupby(context.strata_field)[POLYGON_ID].nunique()
    if chain.split_ground_truth and len(truth) and (polygons_per_class < 2).all():
        raise _no_validation_polygon(context, polygons_per_class.index, seed)
    write_vector(_split(truth, chain, seed, context.strata_field), layout.split(seed))


def _split(truth: gpd.GeoDataFrame, chain, seed: int, strata: str) -> gpd.GeoDataFrame:
    """Split class by class (bin by bin in a regression), region by region if any."""
    if REGION_COLUMN not in truth.columns or truth.empty:
        groups = [truth]
    else:  # each region learns from and is validated on its own share of every class
        groups = [group for _, group in truth.groupby(REGION_COLUMN, sort=True)]
    parts = [
        split_polygons(
            group,
            strata,
            chain.ratio,
            seed,
            POLYGON_ID,
            enabled=chain.split_ground_truth,
            stratum="class" if strata == chain.data_field else "target bin",
        )
        for group in groups
    ]
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=truth.crs)


def _no_validation_polygon(context: RunContext, codes, seed: int) -> InputDataError:
    """Why run ``seed`` would have nothing to validate on, and what to change."""
    chain = context.config.chain
    classes = sorted(int(code) for code in codes)
    fold = f" (fold {context.fold})" if context.fold is not None else ""
    return InputDataError(
        f"no validation polygon left for run {seed}{fold}: every class has a single polygon "
        f"(classes {classes}), which goes to learning; give classes 2 polygons or more, "
        "or set chain.split_ground_truth: false to validate on the learning polygons",
        chain.ground_truth,
    )
