"""Step mosaic: merge the tiles' maps into one raster in ``chain.proj``."""

from __future__ import annotations

import numpy as np
from rasterio.enums import Resampling

from sitsmap.classification.fusion import majority_vote
from sitsmap.classification.streaming import CONFIDENCE_NODATA
from sitsmap.io.atomic import atomic_path
from sitsmap.io.finishing import finish_raster
from sitsmap.io.raster import open_raster_writer, read_grid, read_row_blocks
from sitsmap.io.vector import read_vector
from sitsmap.mosaic import mosaic_tiles
from sitsmap.nomenclature import NODATA_CLASS, Nomenclature
from sitsmap.pipeline.context import RunContext
from sitsmap.sampling.bins import REGRESSION_NODATA


def mosaic_seed(context: RunContext, seed: int, probabilities: bool | None = None) -> None:
    """Mosaic the class, confidence and probability maps of run ``seed``, as COGs.

    ``probabilities``: whether the tiles have probability maps (see ``classify_tile``).
    """
    if context.config.regression:
        mosaic_regression(context, seed)
        return
    layout, nomenclature = context.layout, context.nomenclature
    kinds = {"Classif": NODATA_CLASS, "Confidence": CONFIDENCE_NODATA}
    if context.config.probability_maps if probabilities is None else probabilities:
        kinds["ProbabilityMap"] = CONFIDENCE_NODATA
    for kind, nodata in kinds.items():
        classes = kind == "Classif"
        mosaic_rasters(
            context,
            {t: layout.classification(t, seed, kind) for t in _tiles(context)},
            layout.final_map(seed, kind),
            nodata,
            colormap=({c: nomenclature.color(c) for c in nomenclature.codes} if classes else None),
        )
        finish_raster(
            layout.final_map(seed, kind),
            "classes" if classes else "continuous",
            nomenclature if classes else None,
            threads=context.threads,
        )


def mosaic_regression(context: RunContext, seed: int) -> None:
    """Mosaic run ``seed``'s regression map, and its uncertainty map if the tiles have one."""
    layout = context.layout
    kinds = ["Regression"]
    if all(
        layout.classification(t, seed, "RegressionUncertainty").is_file() for t in _tiles(context)
    ):
        kinds.append("RegressionUncertainty")
    else:  # an earlier run's, whose model had one
        layout.final_map(seed, "RegressionUncertainty").unlink(missing_ok=True)
    for kind in kinds:
        mosaic_rasters(
            context,
            {t: layout.classification(t, seed, kind) for t in _tiles(context)},
            layout.final_map(seed, kind),
            REGRESSION_NODATA,
        )
        finish_raster(layout.final_map(seed, kind), "continuous", threads=context.threads)


def mosaic_validity(context: RunContext) -> None:
    """Mosaic the number of valid dates per pixel (``final/PixelsValidity.tif``), as a COG."""
    layout = context.layout
    mosaic_rasters(
        context,
        {t: layout.pixels_validity(t) for t in _tiles(context)},
        layout.final_validity,
        nodata=65535,
    )
    finish_raster(layout.final_validity, "continuous", threads=context.threads)


def _tiles(context: RunContext) -> list[str]:
    return list(context.config.chain.list_tile)


def mosaic_rasters(context: RunContext, sources: dict, out_path, nodata, colormap=None) -> None:
    """Merge per-tile rasters into ``out_path`` in ``chain.proj`` (nearest neighbour)."""
    chain = context.config.chain
    envelopes = read_vector(context.layout.envelopes)
    by_tile = dict(zip(envelopes["tile"], envelopes.geometry, strict=True))
    # class maps, counts and percentages are categorical or discrete, and a regression's
    # values are kept as predicted: nearest neighbour
    mosaic_tiles(
        sources,
        by_tile,
        out_path,
        chain.proj,
        chain.spatial_resolution,
        Resampling.nearest,
        nodata,
        colormap=colormap,
        descriptions=None,
    )


def fuse_runs(context: RunContext) -> None:
    """Fuse the runs' class maps by majority voting (``final/Classifications_fusion.tif``).

    The fused map is a COG; its style and attribute table name the undecided
    label ``"undecided"`` (white).
    """
    layout, chain, nomenclature = context.layout, context.config.chain, context.nomenclature
    sources = [layout.final_map(seed) for seed in context.config.seeds]
    grid = read_grid(sources[0])
    undecided = chain.merge_final_classifications_undecidedlabel
    strips = zip(*(read_row_blocks(path) for path in sources), strict=True)
    with atomic_path(layout.fusion_map) as tmp:
        writer = None
        for blocks in strips:
            window = blocks[0][0]
            fused = majority_vote(np.stack([b for _, b in blocks]), NODATA_CLASS, undecided)
            if writer is None:
                writer = open_raster_writer(tmp, 1, fused.dtype, grid, nodata=NODATA_CLASS)
                colors = {c: (*nomenclature.color(c), 255) for c in nomenclature.codes}
                writer.write_colormap(1, {**colors, undecided: (255, 255, 255, 255)})
            writer.write(fused[np.newaxis], window=window)
        writer.close()
    finish_raster(
        layout.fusion_map,
        "classes",
        with_undecided(nomenclature, undecided),
        threads=context.threads,
    )


def with_undecided(nomenclature: Nomenclature, undecided: int) -> Nomenclature:
    """The nomenclature plus the fusion's undecided label, named ``"undecided"``, in white."""
    return Nomenclature(
        names={**nomenclature.names, undecided: "undecided"},
        colors={**nomenclature.colors, undecided: (255, 255, 255)},
    )
