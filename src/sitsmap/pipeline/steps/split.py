"""Step split: one polygon-level learning/validation split per run (and per fold)."""

from __future__ import annotations

from sitsmap.io.vector import read_vector, write_vector
from sitsmap.pipeline.context import RunContext
from sitsmap.vectors.folds import polygon_groups
from sitsmap.vectors.ground_truth import FUSION_COLUMN, POLYGON_ID
from sitsmap.vectors.split import split_polygons


def split_ground_truth(context: RunContext, seed: int, group_field: str | None = None) -> None:
    """Split the cleaned ground truth for run ``seed`` and write it with its sides.

    In a cross-validation fold (``context.fold``), the polygons of the left-out
    group (a tile, or a value of ``group_field``) are set aside first: never
    learnt from, they measure how the model does on unseen ground.
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
    sides = split_polygons(
        truth, chain.data_field, chain.ratio, seed, POLYGON_ID, enabled=chain.split_ground_truth
    )
    write_vector(sides, layout.split(seed))
