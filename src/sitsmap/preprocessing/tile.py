"""A tile's time series as the chain uses it: products, grid, windows and window features.

This is glue: it finds and reads products through :mod:`sitsmap.io` and turns
the arrays into features through the pure kernels of this package.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from sitsmap.errors import InputDataError
from sitsmap.io.products import find_products, tile_grid_of
from sitsmap.io.raster import DatasetPool, RasterGrid
from sitsmap.io.reading import (
    block_shape,
    iter_products_windows,
    read_ahead_dates,
    read_static_window,
)
from sitsmap.preprocessing.features import FeatureBlock, FeatureBuilder, feature_names
from sitsmap.preprocessing.raw_dates import (
    RawFeatureBuilder,
    period_dates,
    raw_working_bytes,
    sensor_raw_feature_names,
)
from sitsmap.sensors import SENTINEL2_THEIA, Product, SensorDescription

__all__ = [
    "SensorSeries",
    "StaticLayer",
    "TileSeries",
    "TileStack",
    "check_one_grid",
    "iter_series_features",
    "series_valid_count",
    "series_windows",
    "valid_date_count",
    "block_windows",
    "iter_tile_features",
    "open_tile_stack",
    "row_windows",
    "tile_features",
    "tile_windows",
    "working_bytes_per_pixel",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TileStack:
    """The products of one tile, sorted by date, and their common 10 m grid."""

    tile: str
    products: tuple[Product, ...]
    grid: RasterGrid
    sensor: SensorDescription = SENTINEL2_THEIA

    @property
    def dates(self) -> tuple[dt.date, ...]:
        """Acquisition dates, ascending, one per product."""
        return tuple(product.date for product in self.products)


@dataclass(frozen=True)
class SensorSeries:
    """What one sensor gives a tile's features: its products, temporal grid and kept bands.

    With ``raw_slots`` > 0 the features are each pixel's raw clear observations
    within the grid's period, packed into that many slots (see
    :mod:`sitsmap.preprocessing.raw_dates`), instead of the gap-filled grid.
    """

    stack: TileStack
    out_dates: tuple[dt.date, ...]
    bands: tuple[str, ...]
    raw_slots: int = 0

    @property
    def feature_names(self) -> list[str]:
        """Its features' names (``sentinel2_b2_20180101``, or ``sentinel2_b2_obs000``, …)."""
        if self.raw_slots:
            return sensor_raw_feature_names(self.bands, self.raw_slots, self.stack.sensor)
        return feature_names(self.bands, self.out_dates, self.stack.sensor)

    def builder(
        self, shape: tuple[int, int], out: np.ndarray
    ) -> FeatureBuilder | RawFeatureBuilder:
        """The builder that turns this sensor's dates of a window into its rows of ``out``."""
        sensor = self.stack.sensor
        if self.raw_slots:
            first, last = self.out_dates[0], self.out_dates[-1]
            return RawFeatureBuilder(first, last, self.bands, shape, self.raw_slots, sensor, out)
        return FeatureBuilder(self.out_dates, self.bands, shape, sensor, out=out)

    @property
    def extra_bytes_per_pixel(self) -> int:
        """What the raw builder holds per pixel beyond the features (0 when gap-filled)."""
        if not self.raw_slots:
            return 0
        n_variables = len(self.feature_names) // self.raw_slots - 2
        return raw_working_bytes(n_variables, len(period_dates(self.stack.dates, self.out_dates)))


@dataclass(frozen=True)
class StaticLayer:
    """A raster of fixed values (a DEM, a soil map) added to every pixel's features.

    Attributes
    ----------
    names : tuple of str
        One feature name per band (``userfeat_alt``).
    path : str
        The raster; warped onto the tile's grid by nearest neighbour when it is not on it.
    """

    names: tuple[str, ...]
    path: str


@dataclass(frozen=True)
class TileSeries:
    """Everything a tile's features are made of: each sensor's series and static layers.

    The features are the sensors' features in this order, then the static layers',
    all on ``grid`` (the Sentinel-2 tile's 10 m grid when there is one).
    """

    tile: str
    grid: RasterGrid
    sensors: tuple[SensorSeries, ...]
    static: tuple[StaticLayer, ...] = ()

    @classmethod
    def of(cls, stack: TileStack, out_dates: Sequence[dt.date], bands: Sequence[str]) -> TileSeries:
        """The series of a single sensor's stack."""
        return cls(stack.tile, stack.grid, (SensorSeries(stack, tuple(out_dates), tuple(bands)),))

    @property
    def feature_names(self) -> list[str]:
        """Every feature's name, in stacking order."""
        names = [name for series in self.sensors for name in series.feature_names]
        return names + [name for layer in self.static for name in layer.names]


def check_one_grid(products: Sequence[Product], sensor: SensorDescription) -> RasterGrid:
    """Return the products' common grid.

    Raises
    ------
    InputDataError
        Naming the first product whose grid differs from the first product's.
    """
    grid = tile_grid_of(products[0], sensor)
    for product in products[1:]:
        other = tile_grid_of(product, sensor)
        if other != grid:
            raise InputDataError(
                f"grid {_describe(other)} differs from {_describe(grid)} of {products[0].name}",
                product.path,
            )
    return grid


def open_tile_stack(
    tile_dir: Path,
    tile: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
    sensor: SensorDescription = SENTINEL2_THEIA,
) -> TileStack:
    """Find a tile's products in ``[start, end]`` and check that they share one grid.

    Raises
    ------
    InputDataError
        As :func:`sitsmap.io.products.find_products`, or naming the first product whose
        grid differs from the first product's.
    """
    products = find_products(Path(tile_dir), tile, start, end, sensor)
    grid = check_one_grid(products, sensor)
    logger.info(
        "tile %s: %d products from %s to %s, %d x %d pixels",
        tile,
        len(products),
        products[0].date,
        products[-1].date,
        grid.width,
        grid.height,
    )
    return TileStack(tile, tuple(products), grid, sensor)


def tile_features(
    stack: TileStack,
    window: Window,
    out_dates: Sequence[dt.date],
    bands: Sequence[str],
    max_workers: int | None = None,
    out: np.ndarray | None = None,
    datasets: DatasetPool | None = None,
) -> FeatureBlock:
    """Read a window of every date of a tile and compute its features.

    The dates are read a few at a time on reader threads and folded into the
    gap-filling as they arrive, so the window's whole int16 series is never held.

    Parameters
    ----------
    stack : TileStack
        The tile.
    window : Window
        Integer window in the tile's 10 m pixel coordinates.
    out_dates : sequence of datetime.date
        The gap-filling grid (the same for every tile).
    bands : sequence of str
        Kept bands, in iota2 order.
    max_workers : int, optional
        Threads reading dates concurrently (at most 4); every usable core when omitted.
    out : numpy.ndarray of float32, optional
        ``(n_features, h, w)`` array to fill and return as the block's features, e.g. the
        previous window's, once used (see :class:`FeatureBuilder`).
    datasets : DatasetPool, optional
        Keeps the tile's files open from one window to the next (see
        :class:`sitsmap.io.raster.DatasetPool`): give the same pool to every window.

    Returns
    -------
    FeatureBlock
        ``(n_features, h, w)`` features named by
        :func:`sitsmap.preprocessing.features.feature_names`.
    """
    series = TileSeries.of(stack, out_dates, bands)
    return series_features(series, window, max_workers, out, datasets)


def series_features(
    series: TileSeries,
    window: Window,
    max_workers: int | None = None,
    out: np.ndarray | None = None,
    datasets: DatasetPool | None = None,
) -> FeatureBlock:
    """The features of one window of a tile's series (see :func:`tile_features`)."""
    shape = _window_shape(window)
    if out is None:
        out = np.empty((len(series.feature_names), *shape), dtype=np.float32)
    with contextlib.ExitStack() as stack:
        pool = datasets or stack.enter_context(DatasetPool())
        reads = [
            stack.enter_context(contextlib.closing(_reads(sensor, [window], max_workers, pool)))
            for sensor in series.sensors
        ]
        return _window_features(series, window, reads, out, pool)


def iter_tile_features(
    stack: TileStack,
    windows: Sequence[Window],
    out_dates: Sequence[dt.date],
    bands: Sequence[str],
    max_workers: int | None = None,
) -> Iterator[tuple[Window, FeatureBlock]]:
    """Yield each window of a tile with its features, as :func:`tile_features` computes them.

    One sensor's :func:`iter_series_features`, which see.
    """
    return iter_series_features(TileSeries.of(stack, out_dates, bands), windows, max_workers)


def iter_series_features(
    series: TileSeries,
    windows: Sequence[Window],
    max_workers: int | None = None,
) -> Iterator[tuple[Window, FeatureBlock]]:
    """Yield each window of a tile with its features, every sensor's then the static layers'.

    One feature buffer serves every window: it spares the allocation (and first
    touch) of a fresh, often hundreds of megabytes large, array per window. The
    tile's files stay open from one window to the next.

    Parameters
    ----------
    series : TileSeries
        The tile.
    windows : sequence of Window
        Windows in the tile's 10 m pixel coordinates, e.g. from :func:`series_windows`.
    max_workers : int, optional
        Threads reading each sensor's dates concurrently (at most 4).

    Yields
    ------
    window : Window
        The window.
    block : FeatureBlock
        Its features, valid only until the next window is yielded.
    """
    n_features = len(series.feature_names)
    buffer = np.empty(0, dtype=np.float32)
    with DatasetPool() as datasets, contextlib.ExitStack() as stack:
        reads = [
            stack.enter_context(contextlib.closing(_reads(sensor, windows, max_workers, datasets)))
            for sensor in series.sensors
        ]
        for window in windows:
            shape = _window_shape(window)
            size = n_features * shape[0] * shape[1]
            if buffer.size < size:
                buffer = np.empty(size, dtype=np.float32)
            out = buffer[:size].reshape(n_features, *shape)
            yield window, _window_features(series, window, reads, out, datasets)


def _reads(
    series: SensorSeries,
    windows: Sequence[Window],
    max_workers: int | None,
    datasets: DatasetPool,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    stack = series.stack
    return iter_products_windows(
        stack.products, windows, series.bands, stack.sensor, max_workers, datasets, stack.grid
    )


def _window_features(
    series: TileSeries,
    window: Window,
    reads: Sequence[Iterator[tuple[np.ndarray, np.ndarray]]],
    out: np.ndarray,
    datasets: DatasetPool,
) -> FeatureBlock:
    """Fold each sensor's next reads (its dates of ``window``) into its rows of ``out``.

    A pixel has data when one sensor at least saw it clear once; its valid count
    sums the sensors' clear dates.
    """
    shape = _window_shape(window)
    counts = np.zeros(shape, dtype=np.uint32)
    row = 0
    for sensor, sensor_reads in zip(series.sensors, reads, strict=True):
        n_rows = len(sensor.feature_names)
        builder = sensor.builder(shape, out[row : row + n_rows])
        # zip takes a date first, so it stops without taking a read of the next window.
        for date, (reflectance, invalid) in zip(sensor.stack.dates, sensor_reads):  # noqa: B905
            builder.add(date, reflectance, invalid)
        counts += builder.finish().valid_count
        row += n_rows
    for layer in series.static:
        out[row : row + len(layer.names)] = read_static_window(
            layer.path, series.grid, window, datasets
        )
        row += len(layer.names)
    valid_count = np.minimum(counts, np.iinfo(np.uint16).max).astype(np.uint16)
    return FeatureBlock(out, valid_count, valid_count > 0)


def valid_date_count(
    stack: TileStack,
    window: Window,
    bands: Sequence[str],
    datasets: DatasetPool | None = None,
    max_workers: int | None = None,
) -> np.ndarray:
    """Count the valid (clear, in-swath, unsaturated) dates of every pixel of a window.

    iota2's ``PixelsValidity``: the same masks and no-data test as
    :func:`tile_features`, without the gap-filling it does not need. ``datasets`` and
    ``max_workers`` as for :func:`tile_features`.
    """
    series = TileSeries.of(stack, (), bands)
    return series_valid_count(series, window, datasets, max_workers)


def series_valid_count(
    series: TileSeries,
    window: Window,
    datasets: DatasetPool | None = None,
    max_workers: int | None = None,
) -> np.ndarray:
    """Count every sensor's valid dates of each pixel of a window (see :func:`valid_date_count`)."""
    count = np.zeros(_window_shape(window), dtype=np.uint16)
    with contextlib.ExitStack() as stack:
        pool = datasets or stack.enter_context(DatasetPool())
        for sensor in series.sensors:
            for _, invalid in _reads(sensor, [window], max_workers, pool):
                count += ~invalid
    return count


def working_bytes_per_pixel(n_bands: int, n_features: int, max_workers: int = 4) -> int:
    """Approximate memory one pixel of a window needs in :func:`tile_features`, in bytes.

    The float32 features, the dates being read (the int16 reflectances and masks
    of :func:`sitsmap.io.reading.read_ahead_dates` dates, and each read's
    scratch) and the gap-filling state. The whole int16 series is never held.
    """
    features = 4 * n_features
    reading = read_ahead_dates(max_workers) * (2 * n_bands + 1) + max_workers * 7
    gapfilling = 2 * n_bands + 17
    return features + reading + gapfilling


def row_windows(
    grid: RasterGrid,
    n_chunks: int | None,
    bytes_per_pixel: int,
    max_megabytes: int,
    block_rows: int = 1,
) -> list[Window]:
    """Split a grid into full-width row strips that together cover it exactly once.

    Parameters
    ----------
    grid : RasterGrid
        The tile's grid.
    n_chunks : int, optional
        Number of strips (at most one per row), of heights differing by at most one row.
        When omitted, strips as tall as keep one strip's working set under
        ``max_megabytes``, the last one shorter.
    bytes_per_pixel : int
        Working set of one pixel (see :func:`working_bytes_per_pixel`).
    max_megabytes : int
        Memory bound of one strip when ``n_chunks`` is omitted.
    block_rows : int
        Internal block height of the inputs in 10 m rows (see
        :func:`sitsmap.io.reading.block_rows`): automatic strips are made a multiple
        of it when memory allows, so that no compressed block is decoded twice.

    Returns
    -------
    list of Window
        Strips from top to bottom.
    """
    if n_chunks is not None:
        if n_chunks < 1:
            raise ValueError(f"the number of chunks must be positive, not {n_chunks}")
        n_chunks = min(n_chunks, grid.height)
        base, extra = divmod(grid.height, n_chunks)
        heights = [base + (1 if index < extra else 0) for index in range(n_chunks)]
    else:
        rows = max(1, (max_megabytes * 2**20) // max(1, bytes_per_pixel * grid.width))
        if rows >= block_rows:
            rows -= rows % block_rows
        elif rows < grid.height:
            logger.warning(
                "strips of %d rows fit in %d MB, fewer than the inputs' %d-row blocks: "
                "blocks will be decoded several times",
                rows,
                max_megabytes,
                block_rows,
            )
        full, rest = divmod(grid.height, rows)
        heights = [rows] * full + ([rest] if rest else [])
    windows, row = [], 0
    for height in heights:
        windows.append(Window(0, row, grid.width, height))
        row += height
    return windows


def block_windows(
    grid: RasterGrid, block: tuple[int, int], bytes_per_pixel: int, max_megabytes: int
) -> list[Window] | None:
    """Split a grid into windows of whole input blocks, as wide as memory allows.

    For wide tiles (10980 px) a full-width strip of whole blocks does not fit
    in memory, and thinner strips decode every compressed block many times
    (25x slower than decoding once, measured in ``bench/features_vs_read.py``).
    Windows one block row tall and a multiple of the block width wide decode
    each block once.

    Parameters
    ----------
    grid : RasterGrid
        The tile's grid.
    block : (rows, cols)
        Whole-block window shape in 10 m pixels (see
        :func:`sitsmap.io.reading.block_shape`).
    bytes_per_pixel : int
        Working set of one pixel (see :func:`working_bytes_per_pixel`).
    max_megabytes : int
        Memory bound of one window.

    Returns
    -------
    list of Window or None
        Windows from top-left, row by row, covering the grid exactly once; None
        when not even one block fits in ``max_megabytes``.
    """
    rows, cols = block
    budget = max_megabytes * 2**20 // max(1, bytes_per_pixel)
    blocks_across = budget // max(1, rows * cols)
    if blocks_across < 1:
        return None
    width = min(grid.width, blocks_across * cols)
    return [
        Window(left, top, min(width, grid.width - left), min(rows, grid.height - top))
        for top in range(0, grid.height, rows)
        for left in range(0, grid.width, width)
    ]


def tile_windows(
    stack: TileStack,
    out_dates: Sequence[dt.date],
    bands: Sequence[str],
    n_chunks: int | None,
    max_megabytes: int,
) -> list[Window]:
    """Return the windows in which to compute a tile's features (see :func:`series_windows`)."""
    return series_windows(TileSeries.of(stack, out_dates, bands), n_chunks, max_megabytes)


def series_windows(series: TileSeries, n_chunks: int | None, max_megabytes: int) -> list[Window]:
    """Return the windows in which to compute a tile's features.

    ``n_chunks`` row strips when given (iota2's ``number_of_chunks``).
    Otherwise full-width strips of whole input blocks (of the first sensor that
    shares the tile's lattice) when they fit in ``max_megabytes``, else windows of
    whole blocks (:func:`block_windows`).
    """
    n_features = len(series.feature_names)
    n_bands = sum(len(sensor.bands) for sensor in series.sensors)
    per_pixel = working_bytes_per_pixel(n_bands, n_features)
    per_pixel += sum(sensor.extra_bytes_per_pixel for sensor in series.sensors)
    first = series.sensors[0]
    block = block_shape(first.stack.products[0], first.bands, first.stack.sensor)
    strip_fits = block[0] * series.grid.width * per_pixel <= max_megabytes * 2**20
    if n_chunks is None and not strip_fits:
        windows = block_windows(series.grid, block, per_pixel, max_megabytes)
        if windows is not None:
            return windows
    return row_windows(series.grid, n_chunks, per_pixel, max_megabytes, block_rows=block[0])


def _window_shape(window: Window) -> tuple[int, int]:
    return int(window.height), int(window.width)


def _describe(grid: RasterGrid) -> str:
    return (
        f"({grid.width} x {grid.height} px, origin {grid.transform.c:g}, "
        f"{grid.transform.f:g}, {grid.resolution:g} m, {grid.crs})"
    )
