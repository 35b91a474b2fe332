"""Pair every map pixel inside a validation polygon with the polygon's class.

The map is read block by block, and only the part of each block covered by
polygon bounds: memory depends on the block size, not on the map size.
"""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
from affine import Affine
from rasterio.features import rasterize
from rasterio.windows import Window
from rasterio.windows import bounds as window_bounds
from shapely import box

from sitsmap.errors import InputDataError
from sitsmap.io.raster import RasterGrid, read_grid, read_raster, read_row_blocks
from sitsmap.nomenclature import NODATA_CLASS

__all__ = ["class_pixel_counts", "reference_and_production"]


_OUTSIDE = np.iinfo(np.int32).min
"""Burn value of pixels outside every polygon (no class code takes it)."""


def reference_and_production(
    map_path: Path,
    polygons: gpd.GeoDataFrame,
    data_field: str,
    nodata: int = 0,
    block_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the reference and map classes of every pixel inside a validation polygon.

    A pixel belongs to a polygon when its centre falls inside it (GDAL's
    rasterisation rule, ``all_touched=False``); where polygons overlap, the
    later one in ``polygons`` wins. Pixels equal to ``nodata`` in the map are
    dropped. No pixel at all gives two empty arrays.

    Parameters
    ----------
    map_path : Path
        Single-band class map.
    polygons : geopandas.GeoDataFrame
        Validation polygons, already in the map's CRS.
    data_field : str
        Integer class field of ``polygons``.
    nodata : int
        Map value of pixels without a class.
    block_size : int
        Side, in pixels, of the map blocks read at once.

    Returns
    -------
    reference, production : numpy.ndarray
        Two 1-D int64 arrays of equal length.

    Raises
    ------
    InputDataError
        If the map cannot be read, the field is missing or the CRSs differ.
    """
    grid = read_grid(map_path)
    _check_polygons(polygons, data_field, grid, map_path)
    shapes = polygons[~(polygons.geometry.is_empty | polygons.geometry.isna())]
    references, productions = [], []
    for window in _blocks(grid, block_size):
        part = _polygons_in(shapes, grid, window)
        if part is None:
            continue
        subset, tight = part
        reference = _burn(subset, data_field, grid.transform, tight).astype(np.int64)
        inside = reference != _OUTSIDE
        if not inside.any():
            continue
        production = read_raster(map_path, window=tight, bands=1).astype(np.int64)
        keep = inside & (production != nodata)
        references.append(reference[keep])
        productions.append(production[keep])
    if not references:  # the caller decides whether that is an error
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(references), np.concatenate(productions)


def class_pixel_counts(map_path: Path, nodata: int = NODATA_CLASS) -> dict[int, int]:
    """Count the pixels of each class of a class map, strip by strip.

    Parameters
    ----------
    map_path : Path
        Single-band integer class map.
    nodata : int
        Map value of pixels without a class; not counted.

    Returns
    -------
    dict of int to int
        Class code -> pixel count, for the codes present, in increasing order.

    Raises
    ------
    InputDataError
        If the map cannot be read.
    """
    counts: dict[int, int] = {}
    for _, block in read_row_blocks(map_path):
        for code, count in zip(*_block_counts(block), strict=True):
            counts[code] = counts.get(code, 0) + count
    return {code: counts[code] for code in sorted(counts) if code != nodata}


def _block_counts(block: np.ndarray) -> tuple[list[int], list[int]]:
    """Codes present in ``block`` and their pixel counts (a bincount for small codes)."""
    values = block.ravel()
    if values.size == 0:
        return [], []
    if values.dtype.kind in "iu" and values.min() >= 0 and values.max() < _BINCOUNT_LIMIT:
        totals = np.bincount(values)
        present = np.flatnonzero(totals)
        return present.tolist(), totals[present].tolist()
    codes, totals = np.unique(values.astype(np.int64, copy=False), return_counts=True)
    return codes.tolist(), totals.tolist()


_BINCOUNT_LIMIT = 1 << 20
"""Largest code counted through a bincount rather than a sort."""


def _check_polygons(
    polygons: gpd.GeoDataFrame, data_field: str, grid: RasterGrid, map_path: Path
) -> None:
    if data_field not in polygons.columns:
        raise InputDataError(f"validation polygons have no field {data_field!r}", map_path)
    if polygons.crs is not None and grid.crs is not None and polygons.crs != grid.crs:
        raise InputDataError(
            f"validation polygons are in {polygons.crs.to_string()}, the map in "
            f"{grid.crs.to_string()}; reproject them first",
            map_path,
        )


def _blocks(grid: RasterGrid, block_size: int):
    """Yield the windows of a regular block partition of the grid."""
    for row in range(0, grid.height, block_size):
        for col in range(0, grid.width, block_size):
            yield Window(
                col, row, min(block_size, grid.width - col), min(block_size, grid.height - row)
            )


def _polygons_in(
    shapes: gpd.GeoDataFrame, grid: RasterGrid, block: Window
) -> tuple[gpd.GeoDataFrame, Window] | None:
    """Return the polygons meeting ``block`` and the block part their bounds cover."""
    block_box = box(*window_bounds(block, grid.transform))
    subset = shapes.iloc[shapes.sindex.query(block_box, predicate="intersects")]
    if subset.empty:
        return None
    minx, miny, maxx, maxy = subset.total_bounds
    inverse = ~grid.transform
    cols, rows = zip(
        *(inverse @ corner for corner in ((minx, miny), (minx, maxy), (maxx, miny), (maxx, maxy))),
        strict=True,
    )
    col0 = max(int(block.col_off), math.floor(min(cols)))
    row0 = max(int(block.row_off), math.floor(min(rows)))
    col1 = min(int(block.col_off + block.width), math.ceil(max(cols)))
    row1 = min(int(block.row_off + block.height), math.ceil(max(rows)))
    if col1 <= col0 or row1 <= row0:
        return None
    return subset, Window(col0, row0, col1 - col0, row1 - row0)


def _burn(
    subset: gpd.GeoDataFrame, data_field: str, transform: Affine, window: Window
) -> np.ndarray:
    """Rasterise the polygons' classes on the window (pixel centres inside)."""
    window_transform = transform @ Affine.translation(window.col_off, window.row_off)
    pairs = zip(subset.geometry, subset[data_field].astype(np.int32), strict=True)
    return rasterize(
        ((geometry, int(code)) for geometry, code in pairs),
        out_shape=(int(window.height), int(window.width)),
        transform=window_transform,
        fill=_OUTSIDE,
        all_touched=False,
        dtype="int32",
    )
