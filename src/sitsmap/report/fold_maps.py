"""Compare the maps of a spatial cross-validation's folds, in one streamed pass.

The folds' mosaics share one grid (``chain.proj``). They are read together,
one strip of candidate windows at a time (never a whole mosaic), to count:

- the pixels where the folds agree, pairwise and all together;
- for every square candidate window: its pixels of artificial and of crop
  classes, and those where the folds disagree;

and to write ``agreement.tif``, the number of folds agreeing with each pixel's
majority class. :func:`choose_places` then picks where to show the folds' maps
side by side: a tile border, a city, a crop area, the most disputed window.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from rasterio.windows import Window
from shapely.geometry import Point, box

from sitsmap.errors import StepError
from sitsmap.io.atomic import atomic_path
from sitsmap.io.raster import (
    DatasetPool,
    RasterGrid,
    open_raster_writer,
    read_raster,
    read_raster_info,
)
from sitsmap.nomenclature import NODATA_CLASS, Nomenclature

__all__ = [
    "ClassGroups",
    "FoldComparison",
    "Place",
    "WindowCounts",
    "agreement_counts",
    "border_lines",
    "border_point",
    "choose_places",
    "class_groups",
    "compare_fold_maps",
    "fold_spread",
    "pairwise_counts",
    "place_windows",
    "regression_spread",
    "window_size",
]

URBAN = re.compile(r"urban|built|artificial|road|industrial", re.IGNORECASE)
"""Class names of artificial surfaces (the "city" place)."""

CROPS = re.compile(
    r"crop|cereal|wheat|maize|soy|rapeseed|sunflower|potato|beet|annual|summer|winter",
    re.IGNORECASE,
)
"""Class names of crops (the "crop" place)."""

LARGEST_WINDOW = 128
"""Side, in pixels, of the places' windows on a map large enough."""

CHUNK_WINDOWS = 32
"""Candidate windows read at once along a strip: bounds memory on a very wide map."""


@dataclass(frozen=True)
class ClassGroups:
    """Class codes of artificial surfaces and of crops."""

    urban: tuple[int, ...]
    crop: tuple[int, ...]


def class_groups(nomenclature: Nomenclature) -> ClassGroups:
    """Artificial and crop classes of a nomenclature, by name (:data:`URBAN`, :data:`CROPS`)."""
    names = nomenclature.names
    return ClassGroups(
        urban=tuple(code for code in sorted(names) if URBAN.search(names[code])),
        crop=tuple(code for code in sorted(names) if CROPS.search(names[code])),
    )


@dataclass(frozen=True)
class WindowCounts:
    """Counts per candidate window, ``(window rows, window columns)`` arrays.

    Attributes
    ----------
    valid : numpy.ndarray
        Pixels with a class, summed over folds.
    urban, crop : numpy.ndarray
        Pixels of artificial (crop) classes, summed over folds.
    disagree : numpy.ndarray
        Pixels where the folds that have a class do not all agree.
    """

    valid: np.ndarray
    urban: np.ndarray
    crop: np.ndarray
    disagree: np.ndarray

    @classmethod
    def zeros(cls, shape: tuple[int, int]) -> WindowCounts:
        """Counts of ``shape`` windows, all zero."""
        return cls(*(np.zeros(shape, dtype=np.int64) for _ in range(4)))


@dataclass(frozen=True)
class Place:
    """A square window of the maps, and why it was chosen.

    Attributes
    ----------
    name : str
        ``border``, ``city``, ``crop`` or ``disagreement``.
    description : str
        Why this window, for people.
    row, col : int
        Top-left pixel of the window in the maps' grid.
    size : int
        Side of the window, in pixels.
    """

    name: str
    description: str
    row: int
    col: int
    size: int

    @property
    def window(self) -> Window:
        """The place's window in the maps' grid."""
        return Window(self.col, self.row, self.size, self.size)

    def document(self, grid: RasterGrid) -> dict:
        """The place in ``summary.json``: window, and its centre in the maps' CRS."""
        x, y = grid.transform * (self.col + self.size / 2, self.row + self.size / 2)
        return {
            "name": self.name,
            "description": self.description,
            "row": self.row,
            "col": self.col,
            "size": self.size,
            "center": [float(x), float(y)],
        }


@dataclass(frozen=True)
class FoldComparison:
    """What the folds' maps say together (see :func:`compare_fold_maps`).

    Attributes
    ----------
    folds : list of str
        The folds, in the order of the matrices.
    grid : RasterGrid
        The maps' grid.
    nodata : int
        Code of the maps' pixels without a class.
    same, both : numpy.ndarray
        ``(folds, folds)``: pixels where two folds give the same class; pixels
        where both give one.
    histogram : numpy.ndarray
        Pixels by the number of folds agreeing with their majority class
        (index 0: no fold has a class).
    all_valid, all_agree : int
        Pixels where every fold has a class; of those, where all agree.
    places : list of Place
        The border, city and crop places found (see :func:`choose_places`).
    animated : Place
        Where the folds disagree most: the place to animate.
    """

    folds: list[str]
    grid: RasterGrid
    nodata: int
    same: np.ndarray
    both: np.ndarray
    histogram: np.ndarray
    all_valid: int
    all_agree: int
    places: list[Place]
    animated: Place

    @property
    def pairwise(self) -> np.ndarray:
        """Fraction of identical pixels among those valid in both folds (NaN: none)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.both > 0, self.same / np.maximum(self.both, 1), np.nan)

    @property
    def all_agree_fraction(self) -> float | None:
        """Fraction of the pixels valid in every fold where all folds agree."""
        return self.all_agree / self.all_valid if self.all_valid else None

    def document(self) -> dict:
        """The comparison in ``summary.json`` (places listed apart)."""
        pairwise = [[None if np.isnan(v) else float(v) for v in row] for row in self.pairwise]
        return {
            "folds": list(self.folds),
            "all_agree_fraction": self.all_agree_fraction,
            "pixels_valid_in_all_folds": int(self.all_valid),
            "pairwise": pairwise,
            "pixels_by_agreeing_folds": [int(n) for n in self.histogram],
        }


def window_size(height: int, width: int, largest: int = LARGEST_WINDOW) -> int:
    """Side of the places' windows: ``largest``, or half the map's short side if smaller."""
    short = min(height, width)
    return max(1, min(largest, max(short // 2, min(short, 16))))


# --- per-pixel agreement (pure) -----------------------------------------------------


def agreement_counts(stack: np.ndarray, nodata: int = NODATA_CLASS) -> np.ndarray:
    """Number of folds agreeing with each pixel's majority class.

    Parameters
    ----------
    stack : numpy.ndarray
        ``(folds, rows, cols)`` class codes.
    nodata : int
        Code of pixels without a class (they agree with nothing).

    Returns
    -------
    numpy.ndarray
        ``(rows, cols)`` uint8; 0 where no fold has a class.
    """
    valid = stack != nodata
    best = np.zeros(stack.shape[1:], dtype=np.uint8)
    for fold in range(stack.shape[0]):
        agreeing = ((stack == stack[fold]) & valid).sum(axis=0, dtype=np.uint8)
        np.maximum(best, np.where(valid[fold], agreeing, 0).astype(np.uint8), out=best)
    return best


def pairwise_counts(stack: np.ndarray, nodata: int = NODATA_CLASS) -> tuple[np.ndarray, np.ndarray]:
    """Pixels where two folds give the same class, and where both give one.

    Parameters
    ----------
    stack : numpy.ndarray
        ``(folds, rows, cols)`` class codes.
    nodata : int
        Code of pixels without a class.

    Returns
    -------
    tuple of numpy.ndarray
        ``same`` and ``both``, ``(folds, folds)`` int64, symmetric.
    """
    folds = stack.shape[0]
    valid = stack != nodata
    same = np.zeros((folds, folds), dtype=np.int64)
    both = np.zeros((folds, folds), dtype=np.int64)
    for i, j in combinations(range(folds), 2):
        shared = valid[i] & valid[j]
        both[i, j] = both[j, i] = np.count_nonzero(shared)
        same[i, j] = same[j, i] = np.count_nonzero(shared & (stack[i] == stack[j]))
    for i in range(folds):
        same[i, i] = both[i, i] = np.count_nonzero(valid[i])
    return same, both


def _of_classes(stack: np.ndarray, codes: Sequence[int]) -> np.ndarray:
    """Whether each pixel's class is one of ``codes`` (a lookup table for 8 and 16-bit maps)."""
    if stack.dtype.kind != "u" or stack.dtype.itemsize > 2:
        return np.isin(stack, codes)
    table = np.zeros(np.iinfo(stack.dtype).max + 1, dtype=bool)
    table[[code for code in codes if 0 <= code < table.size]] = True
    return table[stack]


def _block_sums(pixels: np.ndarray, size: int) -> np.ndarray:
    """Sum of a strip's ``(rows, cols)`` values over consecutive ``size``-wide blocks."""
    columns = pixels.sum(axis=0, dtype=np.int64)
    return np.add.reduceat(columns, np.arange(0, columns.size, size))


# --- choosing the places (pure) -----------------------------------------------------


def border_point(envelopes: gpd.GeoSeries, grid: RasterGrid) -> tuple[int, int] | None:
    """The pixel of a point on an edge that two tile envelopes share, inside the map.

    The shared edges are found in the envelopes' own CRS, then their vertices
    and midpoints are reprojected to the map's; the point on the boundaries of
    the most envelopes wins (where four tiles meet), the first one on a tie.

    Parameters
    ----------
    envelopes : geopandas.GeoSeries
        The tiles' envelopes (``init/envelopes.gpkg``), with their CRS.
    grid : RasterGrid
        The maps' grid.

    Returns
    -------
    (row, col) or None
        None when no two envelopes share an edge inside the map.
    """
    shapes = [shape for shape in envelopes if shape is not None and not shape.is_empty]
    candidates = _shared_edge_points(shapes)
    if not candidates:
        return None
    left, bottom, right, top = envelopes.total_bounds
    tolerance = 1e-9 * max(right - left, top - bottom, 1.0)
    touched = [sum(s.boundary.distance(p) <= tolerance for s in shapes) for p in candidates]
    projected = gpd.GeoSeries(candidates, crs=envelopes.crs).to_crs(grid.crs)
    inside = box(*grid.bounds)
    ranked = sorted(
        (-count, index)
        for index, (count, point) in enumerate(zip(touched, projected, strict=True))
        if inside.contains(point)
    )
    if not ranked:
        return None
    point = projected.iloc[ranked[0][1]]
    col, row = ~grid.transform * (point.x, point.y)
    return int(row), int(col)


def _shared_edge_points(shapes: Sequence[shapely.Geometry]) -> list[Point]:
    """Vertices and midpoints of the edges (not mere corners) that two shapes share."""
    points: list[Point] = []
    for first, second in combinations(shapes, 2):
        shared = first.boundary.intersection(second.boundary)
        lines = [p for p in shapely.get_parts(shared) if p.geom_type == "LineString"]
        for line in lines:
            points += [Point(xy) for xy in shapely.get_coordinates(line)]
            points.append(line.interpolate(0.5, normalized=True))
    return points


def choose_places(
    counts: WindowCounts,
    size: int,
    shape: tuple[int, int],
    border: tuple[int, int] | None = None,
    has_crops: bool = True,
) -> tuple[list[Place], Place]:
    """Where to show the folds' maps side by side, and which place to animate.

    Parameters
    ----------
    counts : WindowCounts
        Counts of the candidate windows, the window at ``(i, j)`` starting at
        pixel ``(i * size, j * size)``.
    size : int
        Side of the windows, in pixels.
    shape : (rows, cols)
        The maps' size; a window is moved back inside it when it overhangs.
    border : (row, col), optional
        A pixel on a tile border (see :func:`border_point`); the border place
        is centred on it.
    has_crops : bool
        Whether the nomenclature has crop classes.

    Returns
    -------
    places : list of Place
        ``border`` (if given), ``city`` (if a window holds artificial classes),
        ``crop``: the most disputed window among those where crops are more than
        half the pixels (else among all windows).
    animated : Place
        The window where the folds disagree most: one of ``places``, or a
        ``disagreement`` place of its own.
    """
    rows, cols = shape
    places = []
    if border is not None:
        row = _clamp(border[0] - size // 2, rows - size)
        col = _clamp(border[1] - size // 2, cols - size)
        places.append(Place("border", "where tiles meet", row, col, size))
    if counts.urban.max(initial=0) > 0:
        city = _best(counts.urban, counts.valid > 0)
        places.append(_place("city", "most pixels of artificial classes", city, size, shape))
    places.append(_crop_place(counts, size, shape, has_crops))
    return places, _animated(places, counts, size, shape)


def _crop_place(counts: WindowCounts, size: int, shape: tuple[int, int], has_crops: bool) -> Place:
    """The most disputed window where crops are most pixels; the most disputed of all if none."""
    crops = (2 * counts.crop > counts.valid) & (counts.valid > 0)
    if has_crops and crops.any():
        index, why = _best(counts.disagree, crops), "most disagreement among crop windows"
    else:
        index = _best(counts.disagree, counts.valid > 0)
        why = f"{'crops dominate no window' if has_crops else 'no crop class'}: most disagreement"
    return _place("crop", why, index, size, shape)


def _animated(
    places: list[Place], counts: WindowCounts, size: int, shape: tuple[int, int]
) -> Place:
    """The most disputed window: a place already chosen at that window, or a new one."""
    worst = _place(
        "disagreement", "most disagreement", _best(counts.disagree, counts.valid > 0), size, shape
    )
    same = [p for p in places if (p.row, p.col) == (worst.row, worst.col)]
    return same[0] if same else worst


def _best(scores: np.ndarray, allowed: np.ndarray) -> tuple[int, int]:
    """Index of the highest score among allowed windows (the first on a tie)."""
    masked = np.where(allowed, scores, -1)
    i, j = np.unravel_index(int(np.argmax(masked)), masked.shape)
    return int(i), int(j)


def _place(
    name: str, description: str, index: tuple[int, int], size: int, shape: tuple[int, int]
) -> Place:
    row = _clamp(index[0] * size, shape[0] - size)
    col = _clamp(index[1] * size, shape[1] - size)
    return Place(name, description, row, col, size)


def _clamp(value: int, highest: int) -> int:
    return int(max(0, min(value, highest)))


# --- the streamed pass --------------------------------------------------------------


def compare_fold_maps(
    maps: Mapping[str, Path],
    agreement_path: Path,
    groups: ClassGroups,
    envelopes: gpd.GeoSeries | None = None,
    size: int | None = None,
) -> FoldComparison:
    """Compare the folds' class maps and write their agreement raster, strip by strip.

    Parameters
    ----------
    maps : mapping of str to Path
        Each fold's class map; all on one grid.
    agreement_path : Path
        Where to write the number of folds agreeing with each pixel's majority
        (uint8, 0 where no fold has a class).
    groups : ClassGroups
        Artificial and crop classes.
    envelopes : geopandas.GeoSeries, optional
        The tiles' envelopes, to find a tile border.
    size : int, optional
        Side of the places' windows; see :func:`window_size` when omitted.

    Returns
    -------
    FoldComparison

    Raises
    ------
    StepError
        If the maps do not share one grid.
    """
    paths = list(maps.values())
    grid, nodata = _shared_grid(paths)
    size = size or window_size(grid.height, grid.width)
    tally = _Tally(len(paths), _windows_shape(grid, size))
    with (
        DatasetPool() as pool,
        atomic_path(agreement_path) as tmp,
        open_raster_writer(tmp, 1, np.uint8, grid, nodata=0) as out,
    ):
        out.set_band_description(1, "folds agreeing with the majority class")
        for index, window in _strips(grid, size):
            stack = np.stack([_read(pool, path, window) for path in paths])
            agreement = agreement_counts(stack, nodata)
            out.write(agreement[np.newaxis], window=window)
            tally.add(stack, agreement, nodata, groups, index, size)
    border = None if envelopes is None else border_point(envelopes, grid)
    shape = (grid.height, grid.width)
    places, animated = choose_places(tally.windows, size, shape, border, bool(groups.crop))
    return tally.result(list(maps), grid, nodata, places, animated)


def fold_spread(stack: np.ndarray, nodata: float) -> np.ndarray:
    """Per pixel, the standard deviation of the folds' values (``nodata`` where one lacks one).

    Parameters
    ----------
    stack : numpy.ndarray
        ``(folds, rows, cols)`` values of the folds' regression maps.
    nodata : float
        Value of pixels without a prediction (also written where any fold has none).

    Returns
    -------
    numpy.ndarray
        ``(rows, cols)`` float32 population standard deviations (ddof 0).
    """
    values = stack.astype(np.float64)
    valid = np.all((values != nodata) & np.isfinite(values), axis=0)
    spread = np.full(valid.shape, nodata, dtype=np.float32)
    spread[valid] = values[:, valid].std(axis=0)
    return spread


def regression_spread(
    maps: Mapping[str, Path], spread_path: Path, nodata: float, size: int = LARGEST_WINDOW
) -> dict:
    """Write the per-pixel spread of the folds' regression maps, strip by strip.

    Parameters
    ----------
    maps : mapping of str to Path
        Each fold's regression map; all on one grid.
    spread_path : Path
        Where to write :func:`fold_spread` (float32, ``nodata`` where a fold has no value).
    nodata : float
        No-data value of the maps and of the spread.
    size : int
        Rows (and columns) of the windows read at once.

    Returns
    -------
    dict
        ``{"folds", "pixels_valid_in_all_folds", "mean_std", "max_std"}`` (None
        without any pixel that every fold maps).

    Raises
    ------
    StepError
        If the maps do not share one grid.
    """
    paths = list(maps.values())
    grid, _ = _shared_grid(paths)
    pixels, total, largest = 0, 0.0, None
    with (
        DatasetPool() as pool,
        atomic_path(spread_path) as tmp,
        open_raster_writer(tmp, 1, np.float32, grid, nodata=nodata) as out,
    ):
        out.set_band_description(1, "standard deviation of the folds' predictions")
        for _, window in _strips(grid, size):
            spread = fold_spread(np.stack([_read(pool, path, window) for path in paths]), nodata)
            out.write(spread[np.newaxis], window=window)
            valid = spread[spread != nodata].astype(np.float64)
            if valid.size:
                pixels, total = pixels + valid.size, total + float(valid.sum())
                largest = max(largest or 0.0, float(valid.max()))
    return {
        "folds": list(maps),
        "pixels_valid_in_all_folds": pixels,
        "mean_std": total / pixels if pixels else None,
        "max_std": largest,
    }


def border_lines(envelopes: gpd.GeoSeries, grid: RasterGrid, place: Place) -> list[np.ndarray]:
    """The tile envelopes' edges across ``place``, as ``(points, 2)`` pixel ``(x, y)`` lines.

    Coordinates are in the place's own pixels (0 at its top-left corner's edge),
    ready to draw over an image of the window.
    """
    left, top = grid.transform * (place.col, place.row)
    right, bottom = grid.transform * (place.col + place.size, place.row + place.size)
    frame = box(min(left, right), min(top, bottom), max(left, right), max(top, bottom))
    edges = envelopes.to_crs(grid.crs).boundary.intersection(frame)
    lines = []
    for part in shapely.get_parts(edges.to_numpy()):
        if part.geom_type != "LineString" or part.is_empty:
            continue
        xy = shapely.get_coordinates(part)
        cols, rows = ~grid.transform * (xy[:, 0], xy[:, 1])
        lines.append(np.column_stack([cols - place.col - 0.5, rows - place.row - 0.5]))
    return lines


def place_windows(maps: Mapping[str, Path], place: Place) -> dict[str, np.ndarray]:
    """Each fold's map over ``place`` (a small windowed read of each)."""
    return {fold: read_raster(path, window=place.window, bands=1) for fold, path in maps.items()}


class _Tally:
    """Running sums of the streamed pass."""

    def __init__(self, folds: int, windows: tuple[int, int]) -> None:
        self.same = np.zeros((folds, folds), dtype=np.int64)
        self.both = np.zeros((folds, folds), dtype=np.int64)
        self.histogram = np.zeros(folds + 1, dtype=np.int64)
        self.all_valid = 0
        self.all_agree = 0
        self.windows = WindowCounts.zeros(windows)

    def add(
        self,
        stack: np.ndarray,
        agreement: np.ndarray,
        nodata: int,
        groups: ClassGroups,
        index: tuple[int, int],
        size: int,
    ) -> None:
        """Count one strip of ``(folds, rows, cols)`` maps starting at window ``index``."""
        folds = stack.shape[0]
        same, both = pairwise_counts(stack, nodata)
        self.same += same
        self.both += both
        self.histogram += np.bincount(agreement.ravel(), minlength=folds + 1)[: folds + 1]
        valid = (stack != nodata).sum(axis=0)
        self.all_valid += int(np.count_nonzero(valid == folds))
        self.all_agree += int(np.count_nonzero((valid == folds) & (agreement == folds)))
        per_pixel = {
            "valid": valid,
            "urban": _of_classes(stack, groups.urban).sum(axis=0),
            "crop": _of_classes(stack, groups.crop).sum(axis=0),
            "disagree": (valid > 0) & (agreement < valid),
        }
        i, j = index
        for name, pixels in per_pixel.items():
            sums = _block_sums(pixels, size)
            getattr(self.windows, name)[i, j : j + sums.size] += sums

    def result(
        self,
        folds: list[str],
        grid: RasterGrid,
        nodata: int,
        places: list[Place],
        animated: Place,
    ) -> FoldComparison:
        """The comparison counted so far."""
        return FoldComparison(
            folds=folds,
            grid=grid,
            nodata=nodata,
            same=self.same,
            both=self.both,
            histogram=self.histogram,
            all_valid=self.all_valid,
            all_agree=self.all_agree,
            places=places,
            animated=animated,
        )


def _shared_grid(paths: Sequence[Path]) -> tuple[RasterGrid, int]:
    """The grid all maps share, and the first map's nodata code."""
    infos = [read_raster_info(path) for path in paths]
    first = infos[0]
    for path, info in zip(paths, infos, strict=True):
        if info.grid != first.grid:
            raise StepError(f"this fold's map is not on the grid of {paths[0]}", path)
    return first.grid, NODATA_CLASS if first.nodata is None else int(first.nodata)


def _windows_shape(grid: RasterGrid, size: int) -> tuple[int, int]:
    return -(-grid.height // size), -(-grid.width // size)


def _strips(grid: RasterGrid, size: int) -> Iterator[tuple[tuple[int, int], Window]]:
    """``((window row, first window column), pixel window)`` of every chunk of windows."""
    rows, cols = _windows_shape(grid, size)
    for i in range(rows):
        top = i * size
        for j in range(0, cols, CHUNK_WINDOWS):
            left = j * size
            width = min(CHUNK_WINDOWS * size, grid.width - left)
            yield (i, j), Window(left, top, width, min(size, grid.height - top))


def _read(pool: DatasetPool, path: Path, window: Window) -> np.ndarray:
    with pool.borrow(path) as src:
        return src.read(1, window=window)
