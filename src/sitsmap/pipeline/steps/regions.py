"""Step init-regions: the eco-regions on every tile's grid, and their mosaic.

A pixel belongs to the region whose polygon holds its centre; regions are
checked not to overlap, so it belongs to one at most. Pixels outside every
region get 0: they are not classified, and a warning says how many there are.
"""

from __future__ import annotations

import colorsys
import logging

import numpy as np
import shapely
from rasterio.features import rasterize

from sitsmap.io.finishing import finish_raster
from sitsmap.io.raster import write_raster
from sitsmap.io.vector import read_vector, write_vector
from sitsmap.pipeline.acquisitions import load_acquisitions
from sitsmap.pipeline.context import RunContext
from sitsmap.pipeline.steps.mosaic import mosaic_rasters
from sitsmap.vectors.regions import REGION_COLUMN, prepare_regions, region_index

LOGGER = logging.getLogger(__name__)


def prepare_region_rasters(context: RunContext) -> None:
    """Write the regions in the tiles' CRS, one raster of region numbers per tile, the mosaic.

    The mosaic (``final/Regions.tif``) is a COG whose overviews keep the most frequent region.
    """
    chain, layout = context.config.chain, context.layout
    acquisitions = load_acquisitions(context)
    crs = next(iter(acquisitions.grids.values())).crs
    envelopes = read_vector(layout.envelopes)
    regions = prepare_regions(
        read_vector(chain.region_path),
        chain.region_path,
        chain.region_field,
        crs,
        shapely.union_all(list(envelopes.geometry)),
    )
    write_vector(regions, layout.regions)
    numbers = region_index(regions[REGION_COLUMN])
    shapes = [
        (geometry, numbers[region])
        for region, geometry in zip(regions[REGION_COLUMN], regions.geometry, strict=True)
    ]
    outside = 0
    for tile, grid in acquisitions.grids.items():
        raster = rasterize(
            shapes, out_shape=(grid.height, grid.width), transform=grid.transform, dtype="uint16"
        )
        envelope = envelopes.loc[envelopes["tile"] == tile].geometry.iloc[0]
        in_envelope = rasterize(
            [(envelope, 1)], out_shape=raster.shape, transform=grid.transform, dtype="uint8"
        )
        outside += int(np.count_nonzero((raster == 0) & (in_envelope == 1)))
        write_raster(layout.regions_raster(tile), raster[np.newaxis], grid, nodata=0)
    if outside:
        LOGGER.warning(
            "%d pixels of the tiles lie outside every region of %s: they are not classified",
            outside,
            chain.region_path,
        )
    mosaic_rasters(
        context,
        {tile: layout.regions_raster(tile) for tile in acquisitions.grids},
        layout.final_regions,
        nodata=0,
        colormap=region_colors(len(numbers)),
    )
    finish_raster(layout.final_regions, "classes", threads=context.threads)


def region_colors(count: int) -> dict[int, tuple[int, int, int]]:
    """Distinct colours for region numbers 1 … ``count`` (hues around the circle)."""
    colors = {}
    for number in range(1, count + 1):
        red, green, blue = colorsys.hsv_to_rgb((number - 1) / max(count, 1), 0.6, 0.9)
        colors[number] = (round(red * 255), round(green * 255), round(blue * 255))
    return colors
