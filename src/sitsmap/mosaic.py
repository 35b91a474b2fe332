"""Merge per-tile rasters into one map in the chain's projection.

Each tile gets an *envelope*: the part of its footprint where it is the tile
of nearest centre (a Voronoi partition of tile centres clipped to the
footprints). Envelopes do not overlap and together cover all footprints, so
every output pixel comes from exactly one tile, the one where it lies
farthest inside.

The mosaic is built output window by output window: for each window, each
tile whose envelope reaches it is warped onto the window, and only the
pixels whose centre falls in that tile's envelope are kept. Memory depends on
the window size, never on the size of the map.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.windows import Window
from rasterio.windows import transform as window_transform
from shapely.geometry import MultiPoint, MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

from sitsmap.errors import InputDataError
from sitsmap.io.atomic import atomic_path
from sitsmap.io.raster import (
    RasterGrid,
    RasterInfo,
    open_raster_writer,
    read_raster_info,
    read_warped,
)

__all__ = ["destination_grid", "mosaic_tiles", "tile_envelopes"]

logger = logging.getLogger(__name__)

Envelope = Polygon | MultiPolygon


# --- envelopes (pure) --------------------------------------------------------------


def tile_envelopes(grids: Mapping[str, RasterGrid]) -> dict[str, Envelope]:
    """Split the tiles' footprints so that each point belongs to exactly one tile.

    A point covered by several tiles goes to the tile of nearest centre
    (Voronoi cell of the tile centres); ties and any part a Voronoi cell
    misses (tiles of unequal sizes) go to the first tile in name order that
    covers it.

    Parameters
    ----------
    grids : mapping of str to RasterGrid
        Tile name → grid. All grids must share one CRS.

    Returns
    -------
    dict of str to Polygon or MultiPolygon
        Tile name → envelope, in the tiles' CRS. Envelopes meet only along
        edges and their union is the union of the footprints.

    Raises
    ------
    InputDataError
        If the tiles are not all in the same CRS.
    """
    if not grids:
        raise ValueError("no tile to mosaic")
    _common_crs({name: grid.crs for name, grid in grids.items()})
    names = sorted(grids)
    footprints = {name: box(*grids[name].bounds) for name in names}
    coverage = shapely.union_all(list(footprints.values()))
    cells = _voronoi_cells([footprints[name].centroid for name in names], coverage)
    envelopes: dict[str, Envelope] = {}
    claimed: BaseGeometry = Polygon()
    for name, cell in zip(names, cells, strict=True):
        envelopes[name] = _polygonal(footprints[name].intersection(cell).difference(claimed))
        claimed = claimed.union(envelopes[name])
    leftover = coverage.difference(claimed)
    for name in names:
        if leftover.is_empty:
            break
        extra = leftover.intersection(footprints[name])
        if not extra.is_empty:
            envelopes[name] = _polygonal(envelopes[name].union(extra))
            leftover = leftover.difference(extra)
    return envelopes


def _voronoi_cells(centres: list[shapely.Point], extent: BaseGeometry) -> list[BaseGeometry]:
    """Return the Voronoi cell of each centre, in order (whole extent for one centre)."""
    if len(centres) == 1:
        return [extent.envelope]
    diagram = shapely.voronoi_polygons(MultiPoint(centres), extend_to=extent.envelope.buffer(1.0))
    cells = list(diagram.geoms)
    return [next((cell for cell in cells if cell.covers(c)), Polygon()) for c in centres]


def _polygonal(geometry: BaseGeometry) -> Envelope:
    """Keep the polygons of a geometry (drop the lines and points of a collection)."""
    if isinstance(geometry, Polygon | MultiPolygon):
        return geometry
    parts = [part for part in getattr(geometry, "geoms", []) if isinstance(part, Polygon)]
    parts += [
        p
        for part in getattr(geometry, "geoms", [])
        if isinstance(part, MultiPolygon)
        for p in part.geoms
    ]
    return MultiPolygon(parts) if len(parts) != 1 else parts[0]


def _common_crs(crs_by_tile: Mapping[str, CRS], paths: Mapping[str, Path] | None = None) -> CRS:
    """Return the CRS shared by all tiles.

    Raises
    ------
    InputDataError
        Naming the first tile whose CRS differs from the first tile's.
    """
    names = sorted(crs_by_tile)
    first = crs_by_tile[names[0]]
    for name in names[1:]:
        if crs_by_tile[name] != first:
            where = (paths or {}).get(name, name)
            raise InputDataError(
                f"tile {name} is in {crs_by_tile[name]}, tile {names[0]} in {first}; "
                "mosaicking tiles of different CRSs is not supported",
                where,
            )
    return first


def destination_grid(
    envelopes: Sequence[BaseGeometry], tiles_crs: CRS, dst_crs: CRS, resolution: float
) -> RasterGrid:
    """Return the grid covering the envelopes in ``dst_crs``, on multiples of ``resolution``.

    The envelopes' boundary is densified before projection so that curved
    edges in ``dst_crs`` are covered (target-aligned pixels, like ``gdalwarp -tap``).
    """
    union = shapely.union_all(list(envelopes))
    minx, miny, maxx, maxy = union.bounds
    dense = shapely.segmentize(union, max(maxx - minx, maxy - miny) / 256)
    to_dst = Transformer.from_crs(tiles_crs, dst_crs, always_xy=True)
    projected = shapely.transform(dense, lambda xy: np.column_stack(to_dst.transform(*xy.T)))
    left, bottom, right, top = projected.bounds
    epsilon = 1e-9
    left = math.floor(left / resolution + epsilon) * resolution
    bottom = math.floor(bottom / resolution + epsilon) * resolution
    right = math.ceil(right / resolution - epsilon) * resolution
    top = math.ceil(top / resolution - epsilon) * resolution
    width = round((right - left) / resolution)
    height = round((top - bottom) / resolution)
    transform = Affine(resolution, 0.0, left, 0.0, -resolution, top)
    return RasterGrid(width, height, transform, dst_crs)


# --- mosaic (glue) --------------------------------------------------------------------


def mosaic_tiles(
    sources: Mapping[str, Path],
    envelopes: Mapping[str, Envelope],
    out_path: Path,
    dst_crs: str,
    resolution: float,
    resampling: Resampling,
    nodata: float,
    colormap: Mapping[int, Sequence[int]] | None = None,
    descriptions: Sequence[str] | None = None,
    block_size: int = 1024,
) -> None:
    """Merge the tiles' rasters into one tiled, compressed GeoTIFF in ``dst_crs``, atomically.

    Parameters
    ----------
    sources : mapping of str to Path
        Tile name → raster (1 or more bands; same count and dtype for all).
    envelopes : mapping of str to Polygon
        Tile name → envelope in the tiles' CRS (:func:`tile_envelopes`).
    out_path : Path
        Output GeoTIFF (BigTIFF when needed).
    dst_crs : str
        CRS of the mosaic, e.g. ``"EPSG:2154"``.
    resolution : float
        Pixel size in ``dst_crs`` units; the grid is aligned on its multiples.
    resampling : Resampling
        ``nearest`` for class maps; ``bilinear`` allowed for continuous values.
    nodata : float
        Value of pixels outside every envelope (and of source nodata).
    colormap : mapping, optional
        ``{value: (r, g, b[, a])}`` colour table; the first tile's if omitted.
    descriptions : sequence of str, optional
        Band descriptions; the first tile's if omitted.
    block_size : int
        Side, in pixels, of the output windows processed at once.

    Raises
    ------
    InputDataError
        If a source cannot be read, or the sources differ in CRS, bands or dtype.
    """
    names = sorted(sources)
    missing = [name for name in names if name not in envelopes]
    if missing:
        raise ValueError(f"no envelope for tiles {missing}")
    infos = {name: read_raster_info(sources[name]) for name in names}
    tiles_crs = _check_sources(infos, sources)
    first = infos[names[0]]
    grid = destination_grid(
        [envelopes[n] for n in names], tiles_crs, CRS.from_user_input(dst_crs), resolution
    )
    logger.info(
        "mosaic of %d tiles: %d x %d pixels, %d bands -> %s",
        len(names),
        grid.width,
        grid.height,
        first.count,
        out_path,
    )
    plan = _MosaicPlan(sources, envelopes, names, tiles_crs, grid, resampling, nodata, first)
    with (
        atomic_path(out_path) as tmp,
        open_raster_writer(tmp, first.count, first.dtype, grid, nodata, blocksize=512) as dst,
    ):
        _write_metadata(dst, first, colormap, descriptions)
        for window in _windows(grid, block_size):
            dst.write(plan.window_data(window), window=window)


def _check_sources(infos: Mapping[str, RasterInfo], sources: Mapping[str, Path]) -> CRS:
    tiles_crs = _common_crs({name: info.grid.crs for name, info in infos.items()}, sources)
    names = sorted(infos)
    first = infos[names[0]]
    for name in names[1:]:
        info = infos[name]
        if (info.count, info.dtype) != (first.count, first.dtype):
            raise InputDataError(
                f"{info.count} band(s) of {info.dtype}, but tile {names[0]} has "
                f"{first.count} of {first.dtype}",
                sources[name],
            )
    return tiles_crs


def _write_metadata(dst, first: RasterInfo, colormap, descriptions) -> None:
    colours = colormap if colormap is not None else first.colormap
    if colours and first.count == 1 and first.dtype in ("uint8", "uint16"):
        dst.write_colormap(1, {int(k): _rgba(v) for k, v in colours.items()})
    names = descriptions if descriptions is not None else first.descriptions
    for index, text in enumerate(names or (), start=1):
        if text:
            dst.set_band_description(index, text)


def _rgba(colour: Sequence[int]) -> tuple[int, int, int, int]:
    values = [int(v) for v in colour]
    return (*values[:3], values[3] if len(values) > 3 else 255)


def _windows(grid: RasterGrid, size: int) -> Iterator[Window]:
    for row in range(0, grid.height, size):
        for col in range(0, grid.width, size):
            yield Window(col, row, min(size, grid.width - col), min(size, grid.height - row))


class _MosaicPlan:
    """Everything needed to compute any output window of the mosaic."""

    def __init__(self, sources, envelopes, names, tiles_crs, grid, resampling, nodata, first):
        self.sources = sources
        self.names = names
        self.envelopes = {name: envelopes[name] for name in names}
        for envelope in self.envelopes.values():
            shapely.prepare(envelope)
        self.to_tiles = Transformer.from_crs(grid.crs, tiles_crs, always_xy=True)
        self.grid = grid
        self.resampling = resampling
        self.nodata = nodata
        self.count = first.count
        self.dtype = np.dtype(first.dtype)

    def window_data(self, window: Window) -> np.ndarray:
        """Return the ``(bands, rows, cols)`` mosaic of one output window."""
        height, width = int(window.height), int(window.width)
        out = np.full((self.count, height, width), self.nodata, dtype=self.dtype)
        affine = window_transform(window, self.grid.transform)
        x, y = self._tile_coordinates(affine, height, width)
        filled = np.zeros((height, width), dtype=bool)
        for name in self.names:
            envelope = self.envelopes[name]
            if not _bounds_meet(envelope.bounds, x, y):
                continue
            take = shapely.intersects_xy(envelope, x, y) & ~filled
            if not take.any():
                continue
            rows, cols = np.flatnonzero(take.any(axis=1)), np.flatnonzero(take.any(axis=0))
            r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
            part = RasterGrid(c1 - c0, r1 - r0, affine @ Affine.translation(c0, r0), self.grid.crs)
            warped = read_warped(self.sources[name], part, self.resampling, self.nodata)
            sub_take = take[r0:r1, c0:c1]
            out[:, r0:r1, c0:c1][:, sub_take] = warped[:, sub_take]
            filled |= take
        return out

    def _tile_coordinates(
        self, affine: Affine, height: int, width: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the output pixel centres of a window, in the tiles' CRS.

        Like GDAL's warper, PROJ runs on a lattice of every ``_LATTICE``-th
        pixel only and the rest is interpolated bilinearly: over 16 pixels the
        projection change is linear to well under a millimetre, and a full
        per-pixel transform would dominate the mosaic's run time.
        """
        rows = _lattice(height)
        cols = _lattice(width)
        grid_cols, grid_rows = np.meshgrid(cols, rows)
        x = affine.c + affine.a * grid_cols + affine.b * grid_rows
        y = affine.f + affine.d * grid_cols + affine.e * grid_rows
        x, y = self.to_tiles.transform(x, y)
        fine_rows, fine_cols = np.arange(height) + 0.5, np.arange(width) + 0.5
        return (
            _bilinear(x, rows, cols, fine_rows, fine_cols),
            _bilinear(y, rows, cols, fine_rows, fine_cols),
        )


_LATTICE = 16
"""Spacing, in output pixels, of the exactly projected pixel centres."""


def _lattice(size: int) -> np.ndarray:
    """Return pixel-centre positions every ``_LATTICE`` pixels, the last pixel included."""
    return np.unique(np.append(np.arange(0, size, _LATTICE), size - 1)) + 0.5


def _bilinear(
    values: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    at_rows: np.ndarray,
    at_cols: np.ndarray,
) -> np.ndarray:
    """Interpolate ``values`` on a lattice (``rows`` x ``cols``) onto ``at_rows`` x ``at_cols``."""
    along_cols = _linear_weights(cols, at_cols)
    along_rows = _linear_weights(rows, at_rows)
    per_row = _apply_weights(values, along_cols, axis=1)
    return _apply_weights(per_row, along_rows, axis=0)


def _linear_weights(nodes: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if nodes.size == 1:
        return np.zeros(at.size, dtype=np.intp), np.zeros(at.size)
    index = np.clip(np.searchsorted(nodes, at, side="right") - 1, 0, nodes.size - 2)
    weight = (at - nodes[index]) / (nodes[index + 1] - nodes[index])
    return index, weight


def _apply_weights(
    values: np.ndarray, weights: tuple[np.ndarray, np.ndarray], axis: int
) -> np.ndarray:
    index, weight = weights
    if values.shape[axis] == 1:
        return np.repeat(values, index.size, axis=axis)
    low = np.take(values, index, axis=axis)
    high = np.take(values, index + 1, axis=axis)
    shape = [1, 1]
    shape[axis] = index.size
    weight = weight.reshape(shape)
    return low * (1 - weight) + high * weight


def _bounds_meet(bounds: tuple[float, float, float, float], x: np.ndarray, y: np.ndarray) -> bool:
    minx, miny, maxx, maxy = bounds
    return not (x.max() < minx or x.min() > maxx or y.max() < miny or y.min() > maxy)
