"""Which pixels of a tile lie in learning polygons: pure rasterisation on a tile grid."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
from rasterio.features import rasterize

from sitsmap.io.raster import RasterGrid


@dataclass(frozen=True)
class Candidates:
    """Candidate pixels of one tile, in raster-scan order."""

    rows: np.ndarray
    cols: np.ndarray
    labels: np.ndarray
    polygons: np.ndarray

    def __len__(self) -> int:
        return int(self.rows.size)


def find_pixels(
    polygons: gpd.GeoDataFrame, grid: RasterGrid, data_field: str, id_field: str, usable: np.ndarray
) -> Candidates:
    """Pixels whose centre lies in a polygon and that have data.

    Parameters
    ----------
    polygons : GeoDataFrame
        Learning polygons in the grid's CRS, already clipped to the tile's envelope.
    grid : RasterGrid
        The tile's 10 m grid.
    data_field, id_field : str
        Class and polygon-id columns.
    usable : numpy.ndarray
        Boolean (rows, cols): pixels with at least one valid date.

    Returns
    -------
    Candidates
        Pixels in raster-scan order with their class and polygon id.
    """
    if polygons.empty:
        empty = np.empty(0, dtype=np.int64)
        return Candidates(empty, empty, empty.astype(np.int32), empty)
    shape = (grid.height, grid.width)
    # rasterise the row index, not the class, so a pixel knows its polygon too
    index = rasterize(
        zip(polygons.geometry, range(1, len(polygons) + 1), strict=True),
        out_shape=shape,
        transform=grid.transform,
        fill=0,
        dtype=np.int32,
    )
    rows, cols = np.nonzero((index > 0) & usable)
    row_of = index[rows, cols] - 1
    return Candidates(
        rows=rows.astype(np.int64),
        cols=cols.astype(np.int64),
        labels=polygons[data_field].to_numpy(np.int32)[row_of],
        polygons=polygons[id_field].to_numpy(np.int64)[row_of],
    )
