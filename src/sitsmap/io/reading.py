"""Reading windows of any sensor's products onto the tile's 10 m grid.

Every product, whatever its sensor and layout, is read into the same thing:
int16 reflectance x 10000 (no data -10000) and an invalid mask, per window of
the tile's grid. A product's files say where each raster is (a file, a zip or
tar member, a URL) and how its DN scale to reflectance; the sensor
description says how validity is read and whether the product shares the
tile's pixel lattice or must be warped onto it (see :mod:`sitsmap.sensors`).

Windows are given in 10 m pixel coordinates. On a shared lattice A 20 m band is read over the
20 m pixels that cover the window and resampled to 10 m by nearest neighbour:
each 10 m pixel takes the value of the one 20 m pixel that contains it. This
is chosen over bilinear because it is exact and identical whatever the window
(no halo needed, so strips never show seams), it never mixes a 20 m pixel with
its neighbours across a parcel edge or with the no-data value (-10000 stays
-10000, so no-data detection still works after resampling), and it is a plain
copy, the cheapest resampling there is.

Reading a window of many dates is where the chain spends its time;
:func:`iter_products_window` reads the dates on a small thread pool, a few
dates ahead of the consumer, into a few recycled buffers (GDAL decompresses
without the GIL). A :class:`~sitsmap.io.raster.DatasetPool` keeps the files
open from one window to the next and lends each to one thread at a time, as
rasterio datasets must not be used by two threads at once.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from sitsmap.errors import InputDataError
from sitsmap.io.raster import DatasetPool, RasterGrid, open_raster, warped_onto
from sitsmap.preprocessing.masks import flag_nodata
from sitsmap.scheduling.resources import available_cores
from sitsmap.sensors import NODATA, SENTINEL2_THEIA, Product, ProductFile, SensorDescription

__all__ = [
    "block_rows",
    "block_shape",
    "iter_products_window",
    "iter_products_windows",
    "read_ahead_dates",
    "read_product_window",
    "read_product_window_into",
    "read_products_window",
    "read_static_window",
    "to_reflectance",
]

# A product's files have no side-car files (.aux.xml, .ovr) worth listing the directory for.
# GDAL's block cache (in bytes here) is capped: every block is read once, and the files a
# DatasetPool keeps open would otherwise keep their blocks up to 5 % of RAM.
_GDAL_OPTIONS = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_CACHEMAX": 64 * 2**20}

MAX_READERS = 4
"""Most reading threads per window stream: their buffers count in a window's memory
budget (:func:`sitsmap.preprocessing.tile.working_bytes_per_pixel`)."""


def read_product_window(
    product: Product,
    window: Window,
    bands: Sequence[str],
    sensor: SensorDescription = SENTINEL2_THEIA,
    grid: RasterGrid | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read a window of a product's bands and validity on the tile's 10 m grid.

    Parameters
    ----------
    product : Product
        The acquisition.
    window : Window
        Integer window in 10 m pixel coordinates.
    bands : sequence of str
        Bands to read, in this order; coarser bands are resampled to the grid.
    sensor : SensorDescription
        Band resolutions, no-data value, mask rule.
    grid : RasterGrid, optional
        The tile's grid; needed for sensors whose products are warped onto it.

    Returns
    -------
    reflectance : numpy.ndarray of int16
        ``(len(bands), h, w)``, reflectance x 10000, -10000 where a band has no data;
        all -10000 when the masks flag the whole window (the bands are then not decoded).
    invalid : numpy.ndarray of bool
        ``(h, w)``: the sensor's mask rule, or a band without data.

    Raises
    ------
    InputDataError
        If a file is missing, truncated, corrupt or not on the tile's lattice.
    """
    height, width = _window_shape(window)
    reflectance = np.empty((len(bands), height, width), dtype=np.int16)
    invalid = np.empty((height, width), dtype=bool)
    read_product_window_into(product, window, bands, reflectance, invalid, sensor, None, grid)
    return reflectance, invalid


def read_product_window_into(
    product: Product,
    window: Window,
    bands: Sequence[str],
    reflectance: np.ndarray,
    invalid: np.ndarray,
    sensor: SensorDescription = SENTINEL2_THEIA,
    datasets: DatasetPool | None = None,
    grid: RasterGrid | None = None,
) -> None:
    """Like :func:`read_product_window`, writing into preallocated ``(B, h, w)`` and ``(h, w)``.

    ``datasets`` keeps the files open for the next window (see :class:`DatasetPool`);
    without it they are opened and closed here.
    """
    if sensor.warped and grid is None:
        raise ValueError(f"{sensor.name} products are warped: give the tile's grid")
    with (
        rasterio.Env(**_GDAL_OPTIONS),  # one GDAL environment for the files, not one each
        contextlib.nullcontext(datasets) if datasets else DatasetPool(max_open=0) as pool,
    ):
        reader = _Reader(pool, sensor, grid)
        reader.read(product, window, bands, reflectance, invalid)
        for other in product.same_day:
            if not invalid.any():
                break
            reader.fill_from(other, window, bands, reflectance, invalid)


class _Reader:
    """Reads products of one sensor onto one grid, borrowing files from a pool."""

    def __init__(
        self, datasets: DatasetPool, sensor: SensorDescription, grid: RasterGrid | None
    ) -> None:
        self.datasets = datasets
        self.sensor = sensor
        self.grid = grid
        self.base = sensor.base_resolution

    def read(
        self,
        product: Product,
        window: Window,
        bands: Sequence[str],
        reflectance: np.ndarray,
        invalid: np.ndarray,
    ) -> None:
        """Fill ``reflectance`` and ``invalid`` from one product."""
        self._validity(product, window, invalid)
        # Cloudy or out of swath over the whole window: its bands would not be used, so they
        # are opened and checked but not decoded (a sixth of the dates of a synthetic year).
        wholly_masked = bool(invalid.all())
        for index, name in enumerate(bands):
            item = product.file(self.sensor.band(name).name)
            self._band(item, window, None if wholly_masked else reflectance[index])
        if wholly_masked:
            reflectance[...] = NODATA
        else:
            flag_nodata(reflectance, NODATA, invalid)

    def fill_from(
        self,
        product: Product,
        window: Window,
        bands: Sequence[str],
        reflectance: np.ndarray,
        invalid: np.ndarray,
    ) -> None:
        """Take another scene of the same day where the first ones are invalid."""
        other = np.empty_like(reflectance)
        other_invalid = np.empty_like(invalid)
        self.read(product, window, bands, other, other_invalid)
        take = invalid & ~other_invalid
        reflectance[:, take] = other[:, take]
        invalid &= ~take

    def _validity(self, product: Product, window: Window, invalid: np.ndarray) -> None:
        rule = self.sensor.mask
        invalid[...] = False
        for key in rule.layers:
            layer = self._layer(product.file(key), window, rule.outside, nearest=True)
            if rule.kind == "flags":
                invalid |= layer != 0
            elif rule.kind == "classes" and layer.dtype == np.uint8:
                invalid |= _class_table(rule.values)[layer]  # 5x faster than np.isin
            elif rule.kind == "classes":
                invalid |= np.isin(layer, rule.values)
            elif rule.kind == "bits":
                bits = sum(1 << bit for bit in rule.values)
                invalid |= (layer & layer.dtype.type(bits)) != 0

    def _band(self, item: ProductFile, window: Window, out: np.ndarray | None) -> None:
        """Read a band's window as int16 reflectance x 10000 into ``out``.

        With ``out`` None the file is only opened and its pixel size checked.
        """
        nodata = self.sensor.nodata
        if out is None:
            self._layer(item, window, nodata, nearest=False, check_only=True)
            return
        identity = item.gain == 1 and item.offset == 0 and nodata == NODATA
        dn = self._layer(item, window, nodata, nearest=False, out=out if identity else None)
        if dn is not out:
            to_reflectance(dn, item.gain, item.offset, nodata, out)

    def _layer(
        self,
        item: ProductFile,
        window: Window,
        fill: int,
        nearest: bool,
        out: np.ndarray | None = None,
        check_only: bool = False,
    ) -> np.ndarray | None:
        """Read a raster's band over ``window`` of the tile grid, in the file's dtype.

        ``out`` is filled when the file's dtype is its dtype, else a new array is returned.
        """
        path, band = item.path, item.band
        with self.datasets.borrow(path) as src:
            if self.sensor.warped:
                if check_only:
                    return None
                return _read_warped(src, band, self.grid, window, fill, nearest)
            factor = _factor(src.res[0], self.base, path)
            if check_only:
                return None
            dtype = np.dtype(src.dtypes[0])
            if out is None or out.dtype != dtype:
                out = np.empty(_window_shape(window), dtype=dtype)
            if factor == 1:
                _read_window(src, window, fill, out, band)
                return out
            coarse, row_shift, col_shift = coarse_window(window, factor)
            data = np.empty((int(coarse.height), int(coarse.width)), dtype=dtype)
            _read_window(src, coarse, fill, data, band)
            return upsample_nearest(data, factor, row_shift, col_shift, out)


def read_static_window(
    path: str, grid: RasterGrid, window: Window, datasets: DatasetPool | None = None
) -> np.ndarray:
    """Read every band of a static raster over ``window`` of the tile grid, as float32.

    A raster on the tile's grid is read as it is; one on another grid or in another
    CRS is warped onto it by nearest neighbour (a soil class or an altitude is never
    blended with its neighbours). No data becomes 0.

    Raises
    ------
    InputDataError
        If the raster cannot be read, has no CRS, or does not overlap the tile.
    """
    with contextlib.ExitStack() as stack:
        pool = datasets or stack.enter_context(DatasetPool(max_open=0))
        src = stack.enter_context(pool.borrow(path))
        if src.crs is None:
            raise InputDataError("raster has no CRS: it cannot be warped onto the tile", path)
        if src.crs == grid.crs and src.transform == grid.transform:
            data = src.read(window=window, boundless=True, fill_value=src.nodata or 0)
            nodata = src.nodata
        else:
            nodata = src.nodata if src.nodata is not None else 0
            with warped_onto(src, grid, Resampling.nearest, src.nodata, nodata) as vrt:
                data = vrt.read(window=window)
        values = data.astype(np.float32)
        if nodata is not None:
            values[data == nodata] = 0
        values[~np.isfinite(values)] = 0  # NaN marks no data in many float rasters
        return values


@functools.cache
def _class_table(values: tuple[int, ...]) -> np.ndarray:
    """A 256-entry lookup table: True for the byte values listed."""
    table = np.zeros(256, dtype=bool)
    table[[v for v in values if 0 <= v < 256]] = True
    return table


def to_reflectance(
    dn: np.ndarray, gain: float, offset: float, nodata: int, out: np.ndarray
) -> np.ndarray:
    """Scale DN to int16 reflectance x 10000 (``DN * gain + offset``), -10000 where no data.

    Reflectances are rounded and kept above -10000, so that only no data reads -10000.
    """
    scaled = dn.astype(np.float32)
    if gain != 1:
        scaled *= np.float32(gain)
    if offset != 0:
        scaled += np.float32(offset)
    np.rint(scaled, out=scaled)
    np.clip(scaled, NODATA + 1, np.iinfo(np.int16).max, out=scaled)
    out[...] = scaled
    out[dn == nodata] = NODATA
    if dn.dtype.kind == "f":  # a float raster may mark no data with NaN
        out[~np.isfinite(dn)] = NODATA
    return out


def _read_warped(
    src: rasterio.io.DatasetReader,
    band: int,
    grid: RasterGrid,
    window: Window,
    fill: float,
    nearest: bool,
) -> np.ndarray:
    """Warp ``window`` of the tile grid out of ``src`` (bilinear, or nearest for masks)."""
    resampling = Resampling.nearest if nearest else Resampling.bilinear
    source_nodata = src.nodata if src.nodata is not None else (None if nearest else fill)
    with warped_onto(src, grid, resampling, source_nodata, fill) as vrt:
        return vrt.read(band, window=window)


def read_products_window(
    products: Sequence[Product],
    window: Window,
    bands: Sequence[str],
    sensor: SensorDescription = SENTINEL2_THEIA,
    max_workers: int | None = None,
    datasets: DatasetPool | None = None,
    grid: RasterGrid | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read the same window of several products, dates in parallel.

    Parameters
    ----------
    products : sequence of Product
        The dates of the stack, in order.
    window, bands, sensor
        As for :func:`read_product_window`.
    max_workers : int, optional
        Reading threads, at most :data:`MAX_READERS`; every usable core when omitted, 1
        reads sequentially.
    datasets : DatasetPool, optional
        Open files to reuse and keep for the next window of the same products.
    grid : RasterGrid, optional
        The tile's grid, for warped products.

    Returns
    -------
    reflectance : numpy.ndarray of int16
        ``(T, B, h, w)``.
    invalid : numpy.ndarray of bool
        ``(T, h, w)``.
    """
    height, width = _window_shape(window)
    reflectance = np.empty((len(products), len(bands), height, width), dtype=np.int16)
    invalid = np.empty((len(products), height, width), dtype=bool)
    reads = iter_products_window(products, window, bands, sensor, max_workers, datasets, grid)
    for index, (date_reflectance, date_invalid) in enumerate(reads):
        reflectance[index] = date_reflectance
        invalid[index] = date_invalid
    return reflectance, invalid


def iter_products_window(
    products: Sequence[Product],
    window: Window,
    bands: Sequence[str],
    sensor: SensorDescription = SENTINEL2_THEIA,
    max_workers: int | None = None,
    datasets: DatasetPool | None = None,
    grid: RasterGrid | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield each product's window in order, reading the next ones meanwhile.

    One window of :func:`iter_products_windows`, which see.
    """
    return iter_products_windows(products, [window], bands, sensor, max_workers, datasets, grid)


def iter_products_windows(
    products: Sequence[Product],
    windows: Sequence[Window],
    bands: Sequence[str],
    sensor: SensorDescription = SENTINEL2_THEIA,
    max_workers: int | None = None,
    datasets: DatasetPool | None = None,
    grid: RasterGrid | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield every product's window in order, window after window, reading ahead meanwhile.

    The reading threads do not wait at the end of a window: they go on with the
    first dates of the next one while the consumer finishes the last.

    Parameters
    ----------
    products : sequence of Product
        The dates of the stack, in order.
    windows : sequence of Window
        Windows in 10 m pixel coordinates; each product is read for the first window,
        then for the second, and so on.
    bands, sensor
        As for :func:`read_product_window`.
    max_workers : int, optional
        Reading threads, at most :data:`MAX_READERS`; every usable core when omitted, 1
        reads in the caller's thread.
    datasets : DatasetPool, optional
        Open files to reuse and keep for the next window of the same products.
    grid : RasterGrid, optional
        The tile's grid, for warped products.

    Yields
    ------
    reflectance : numpy.ndarray of int16
        ``(B, h, w)`` of the current window.
    invalid : numpy.ndarray of bool
        ``(h, w)``.

    Notes
    -----
    The yielded arrays are recycled for a later date once the consumer asks for the
    next one: use them (or copy them) before moving on. At most
    ``read_ahead_dates(max_workers)`` dates are in memory at once.
    """
    workers = _workers(max_workers)
    reads = [(product, window) for window in windows for product in products]
    largest = max((int(w.height) * int(w.width) for w in windows), default=0)
    n_buffers = 1 if workers <= 1 else min(read_ahead_dates(workers), len(reads))
    free = [
        (np.empty(len(bands) * largest, dtype=np.int16), np.empty(largest, dtype=bool))
        for _ in range(n_buffers)
    ]

    def read(product: Product, window: Window, flat: tuple[np.ndarray, np.ndarray]):
        height, width = _window_shape(window)
        reflectance = flat[0][: len(bands) * height * width].reshape(len(bands), height, width)
        invalid = flat[1][: height * width].reshape(height, width)
        read_product_window_into(
            product, window, bands, reflectance, invalid, sensor, datasets, grid
        )
        return reflectance, invalid

    if workers <= 1:
        for product, window in reads:
            yield read(product, window, free[0])
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s2read") as pool:
        pending: deque[tuple[Future, tuple[np.ndarray, np.ndarray]]] = deque()
        queued = iter(reads)

        def refill() -> None:
            while free:
                item = next(queued, None)
                if item is None:
                    return
                buffers = free.pop()
                pending.append((pool.submit(read, *item, buffers), buffers))

        try:
            refill()
            while pending:
                future, buffers = pending.popleft()
                yield future.result()
                free.append(buffers)
                refill()
        finally:
            for future, _ in pending:
                future.cancel()


def read_ahead_dates(max_workers: int | None = None) -> int:
    """How many dates :func:`iter_products_windows` holds at most: its reading buffers.

    Twice the reading threads, plus the one the consumer holds, so that a thread
    finding the consumer busy still has a buffer to read into; one without threads.
    """
    workers = _workers(max_workers)
    return 1 if workers <= 1 else 2 * workers + 1


def block_shape(
    product: Product, bands: Sequence[str], sensor: SensorDescription = SENTINEL2_THEIA
) -> tuple[int, int]:
    """Return ``(rows, cols)``, in 10 m pixels, of a window made of whole blocks of every band.

    Windows aligned on multiples of it never decode a compressed block twice
    (a 256 x 256 block at 20 m spans 512 x 512 pixels at 10 m). Warped products
    have no such alignment: ``(1, 1)``.
    """
    if sensor.warped:
        return 1, 1
    rows = cols = 1
    for name in bands:
        path = product.file(sensor.band(name).name).path
        with open_raster(path) as src:
            factor = _factor(src.res[0], sensor.base_resolution, path)
            block_height, block_width = src.block_shapes[0]
            rows = math.lcm(rows, block_height * factor)
            cols = math.lcm(cols, min(block_width, src.width) * factor)
    return rows, cols


def block_rows(
    product: Product, bands: Sequence[str], sensor: SensorDescription = SENTINEL2_THEIA
) -> int:
    """Return the height, in 10 m rows, of a strip made of whole internal blocks of every band.

    Strips whose heights are multiples of it never decode a compressed block twice
    (a 256-row block at 20 m spans 512 rows at 10 m).
    """
    return block_shape(product, bands, sensor)[0]


def coarse_window(window: Window, factor: int) -> tuple[Window, int, int]:
    """Return the window of a ``factor`` times coarser raster covering ``window``.

    Also returns the row and column offsets of ``window`` inside the coarse window
    once upsampled (0 or 1 for 20 m under 10 m: 1 when the 10 m offset is odd).
    """
    row, col = int(window.row_off), int(window.col_off)
    height, width = _window_shape(window)
    first_row, first_col = row // factor, col // factor
    last_row, last_col = (row + height - 1) // factor, (col + width - 1) // factor
    coarse = Window(first_col, first_row, last_col - first_col + 1, last_row - first_row + 1)
    return coarse, row - first_row * factor, col - first_col * factor


def upsample_nearest(
    coarse: np.ndarray, factor: int, row_shift: int, col_shift: int, out: np.ndarray
) -> np.ndarray:
    """Repeat each coarse pixel ``factor`` x ``factor`` times and crop onto ``out``.

    ``out[i, j] = coarse[(i + row_shift) // factor, (j + col_shift) // factor]``.
    """
    # Columns by np.repeat, then whole rows by strided copies: twice as fast as fancy
    # indexing on both axes. Rows i = phase + factor * m take coarse row m + first.
    height, width = out.shape
    wide = np.repeat(coarse, factor, axis=1)[:, col_shift : col_shift + width]
    for phase in range(factor):
        rows = out[phase::factor]
        first = (phase + row_shift) // factor
        rows[...] = wide[first : first + rows.shape[0]]
    return out


def _factor(pixel_size: float, base: int, path: str) -> int:
    """How many base pixels a file's pixel spans."""
    factor = round(abs(pixel_size) / base)
    if factor < 1 or abs(abs(pixel_size) - factor * base) > 1e-6 * base:
        raise InputDataError(f"pixel size {pixel_size:g} is not a multiple of {base} m", path)
    return factor


def _read_window(
    src: rasterio.io.DatasetReader, window: Window, fill: float, out: np.ndarray, band: int = 1
) -> None:
    """Read ``band`` into ``out``, filling with ``fill`` where the window leaves the raster."""
    if _outside(window, src):
        out[...] = src.read(band, window=window, boundless=True, fill_value=fill)
    else:
        src.read(band, window=window, out=out)  # (no fill_value here: rasterio reshapes ``out``)


def _outside(window: Window, src: rasterio.io.DatasetReader) -> bool:
    return (
        window.col_off < 0
        or window.row_off < 0
        or window.col_off + window.width > src.width
        or window.row_off + window.height > src.height
    )


def _workers(max_workers: int | None) -> int:
    return min(MAX_READERS, max_workers or available_cores())


def _window_shape(window: Window) -> tuple[int, int]:
    return int(window.height), int(window.width)
