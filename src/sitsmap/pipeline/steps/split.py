"""Step split: one polygon-level learning/validation split per run."""

from __future__ import annotations

from sitsmap.io.vector import read_vector, write_vector
from sitsmap.pipeline.context import RunContext
from sitsmap.vectors.ground_truth import FUSION_COLUMN, POLYGON_ID
from sitsmap.vectors.split import split_polygons


def split_ground_truth(context: RunContext, seed: int) -> None:
    """Split the cleaned ground truth for run ``seed`` and write it with its sides."""
    chain = context.config.chain
    truth = read_vector(context.layout.ground_truth)
    truth = truth[~truth[FUSION_COLUMN]]  # held back for the fusion: never learnt from
    sides = split_polygons(
        truth, chain.data_field, chain.ratio, seed, POLYGON_ID, enabled=chain.split_ground_truth
    )
    write_vector(sides, context.layout.split(seed))
