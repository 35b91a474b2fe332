"""Pair every map pixel inside a validation polygon with the polygon's class or value.

The map is read block by block, and only the part of each block covered by
polygon bounds: memory depends on the block size, not on the map size. Class
maps burn each polygon's class code; regression maps burn each polygon's row
and look its (float) value up, through the same block and burn internals.
"""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from affine import Affine
from rasterio.features import rasterize
from rasterio.windows import Window
from rasterio.windows import bounds as window_bounds
from shapely import box

from sitsmap.errors import InputDataError
from sitsmap.io.raster import RasterGrid, read_grid, read_raster, read_row_blocks
from sitsmap.nomenclature import NODATA_CLASS
from sitsmap.sampling.bins import REGRESSION_NODATA

__all__ = ["class_pixel_counts", "reference_and_production", "regression_pixels"]


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
    shapes = _shapes(polygons)
    codes = shapes[data_field].astype(np.int32).to_numpy()
    references, productions = [], []
    for burnt, window in _burnt_blocks(shapes, codes, grid, block_size):
        reference = burnt.astype(np.int64)
        inside = reference != _OUTSIDE
        production = read_raster(map_path, window=window, bands=1).astype(np.int64)
        keep = inside & (production != nodata)
        references.append(reference[keep])
        productions.append(production[keep])
    if not references:  # the caller decides whether that is an error
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(references), np.concatenate(productions)


def regression_pixels(
    map_path: Path,
    points_or_polygons: gpd.GeoDataFrame,
    value_field: str,
    nodata: float = REGRESSION_NODATA,
    block_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the reference and mapped values of every map pixel in a validation polygon.

    A pixel belongs to a polygon when its centre falls inside it (as in
    :func:`reference_and_production`), and to a point when it contains the
    point; where shapes overlap, the later one wins. Pixels equal to ``nodata``
    or not finite in the map, and shapes whose value is not finite, are dropped.
    No pixel at all gives three empty arrays.

    Parameters
    ----------
    map_path : Path
        Single-band float regression map.
    points_or_polygons : geopandas.GeoDataFrame
        Validation polygons or points, already in the map's CRS.
    value_field : str
        Numeric field of ``points_or_polygons``: the reference value.
    nodata : float
        Map value of pixels without a prediction.
    block_size : int
        Side, in pixels, of the map blocks read at once.

    Returns
    -------
    reference, predicted : numpy.ndarray
        1-D float64 arrays of equal length.
    polygon_row : numpy.ndarray
        1-D int64: the position, in ``points_or_polygons``, of each pixel's shape.

    Raises
    ------
    InputDataError
        If the map cannot be read, the field is missing or not numeric, or the
        CRSs differ.
    """
    grid = read_grid(map_path)
    _check_polygons(points_or_polygons, value_field, grid, map_path)
    if not pd.api.types.is_numeric_dtype(points_or_polygons[value_field]):
        raise InputDataError(
            f"field {value_field!r} of the validation shapes is not numeric "
            f"({points_or_polygons[value_field].dtype}): a regression needs a value per shape",
            map_path,
        )
    positions = np.flatnonzero(~_empty(points_or_polygons))
    shapes = points_or_polygons.iloc[positions]
    values = shapes[value_field].to_numpy(dtype=np.float64)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    # burn row numbers (int32), then look the values up: float values cannot be burnt exactly
    rows = np.arange(len(shapes), dtype=np.int32)
    for burnt, window in _burnt_blocks(shapes, rows, grid, block_size, points=True):
        predicted = read_raster(map_path, window=window, bands=1).astype(np.float64)
        inside = burnt != _OUTSIDE
        row = burnt[inside]
        reference, mapped = values[row], predicted[inside]
        keep = np.isfinite(reference) & np.isfinite(mapped) & (mapped != nodata)
        parts.append((reference[keep], mapped[keep], positions[row[keep]].astype(np.int64)))
    if not parts:  # the caller decides whether that is an error
        empty = np.empty(0, dtype=np.float64)
        return empty, empty.copy(), np.empty(0, dtype=np.int64)
    reference, predicted, polygon_row = (
        np.concatenate(column) for column in zip(*parts, strict=True)
    )
    return reference, predicted, polygon_row


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


def _empty(shapes: gpd.GeoDataFrame) -> np.ndarray:
    """True for the rows without a geometry (nothing to burn)."""
    return (shapes.geometry.is_empty | shapes.geometry.isna()).to_numpy()


def _shapes(polygons: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return polygons[~_empty(polygons)]


def _burnt_blocks(
    shapes: gpd.GeoDataFrame,
    values: np.ndarray,
    grid: RasterGrid,
    block_size: int,
    points: bool = False,
):
    """Yield ``(burnt, window)`` for each block part that some shape covers.

    ``burnt`` holds ``values`` (int32, one per row of ``shapes``) rasterised on
    ``window`` (pixel centres inside a polygon, or the pixel holding a point),
    ``_OUTSIDE`` elsewhere; parts where nothing was burnt are skipped.
    ``points`` widens each window to the pixel holding a point on its right or
    bottom edge, and burns the shapes in row order (the later row wins where
    they overlap). Without it, windows and burn order are those class maps have
    always had (the spatial index's order), so their results do not change.
    """
    for block in _blocks(grid, block_size):
        part = _polygons_in(shapes, grid, block, points)
        if part is None:
            continue
        positions, tight = part
        if points:
            positions = np.sort(positions)
        burnt = _burn(shapes.geometry.iloc[positions], values[positions], grid.transform, tight)
        if (burnt != _OUTSIDE).any():
            yield burnt, tight


def _blocks(grid: RasterGrid, block_size: int):
    """Yield the windows of a regular block partition of the grid."""
    for row in range(0, grid.height, block_size):
        for col in range(0, grid.width, block_size):
            yield Window(
                col, row, min(block_size, grid.width - col), min(block_size, grid.height - row)
            )


def _polygons_in(
    shapes: gpd.GeoDataFrame, grid: RasterGrid, block: Window, points: bool = False
) -> tuple[np.ndarray, Window] | None:
    """Return the positions of the shapes meeting ``block`` and the block part they cover.

    With ``points``, the part reaches one pixel past the bounds' floor, so a
    point on a pixel edge (zero-width bounds) keeps the pixel GDAL burns it in.
    """
    block_box = box(*window_bounds(block, grid.transform))
    positions = shapes.sindex.query(block_box, predicate="intersects")
    if positions.size == 0:
        return None
    minx, miny, maxx, maxy = shapes.geometry.iloc[positions].total_bounds
    inverse = ~grid.transform
    cols, rows = zip(
        *(inverse @ corner for corner in ((minx, miny), (minx, maxy), (maxx, miny), (maxx, maxy))),
        strict=True,
    )
    end = (lambda value: math.floor(value) + 1) if points else math.ceil
    col0 = max(int(block.col_off), math.floor(min(cols)))
    row0 = max(int(block.row_off), math.floor(min(rows)))
    col1 = min(int(block.col_off + block.width), end(max(cols)))
    row1 = min(int(block.row_off + block.height), end(max(rows)))
    if col1 <= col0 or row1 <= row0:
        return None
    return positions, Window(col0, row0, col1 - col0, row1 - row0)


def _burn(
    geometries: gpd.GeoSeries, values: np.ndarray, transform: Affine, window: Window
) -> np.ndarray:
    """Rasterise the shapes' int32 values on the window (pixel centres inside, later wins)."""
    window_transform = transform @ Affine.translation(window.col_off, window.row_off)
    pairs = zip(geometries, values, strict=True)
    return rasterize(
        ((geometry, int(value)) for geometry, value in pairs),
        out_shape=(int(window.height), int(window.width)),
        transform=window_transform,
        fill=_OUTSIDE,
        all_touched=False,
        dtype="int32",
    )
