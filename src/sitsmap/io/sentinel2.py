"""Reading windows of Sentinel-2 L2A products onto their 10 m grid.

Windows are given in 10 m pixel coordinates. A 20 m band is read over the
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
import math
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from sitsmap.errors import InputDataError
from sitsmap.io.raster import DatasetPool, open_raster
from sitsmap.preprocessing.masks import flag_nodata, masked
from sitsmap.scheduling.resources import available_cores
from sitsmap.sensors import SENTINEL2_THEIA, Product, SensorDescription

__all__ = [
    "block_rows",
    "block_shape",
    "iter_products_window",
    "iter_products_windows",
    "read_ahead_dates",
    "read_product_window",
    "read_product_window_into",
    "read_products_window",
]

_MASK_RESOLUTION_INDEX = 1  # the R1 (10 m) masks

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
) -> tuple[np.ndarray, np.ndarray]:
    """Read a window of a product's bands and masks on the 10 m grid.

    Parameters
    ----------
    product : Product
        The acquisition.
    window : Window
        Integer window in 10 m pixel coordinates.
    bands : sequence of str
        Bands to read, in this order; 20 m bands are resampled to 10 m (nearest).
    sensor : SensorDescription
        File layout, band resolutions, no-data value.

    Returns
    -------
    reflectance : numpy.ndarray of int16
        ``(len(bands), h, w)``, reflectance x 10000; all no-data when the masks flag
        the whole window (the bands are then not decoded).
    invalid : numpy.ndarray of bool
        ``(h, w)``: ``CLM_R1 != 0 | EDG_R1 != 0 | SAT_R1 != 0 | any band == nodata``.

    Raises
    ------
    InputDataError
        If a file is missing, truncated, corrupt or not at its band's resolution.
    """
    height, width = _window_shape(window)
    reflectance = np.empty((len(bands), height, width), dtype=np.int16)
    invalid = np.empty((height, width), dtype=bool)
    read_product_window_into(product, window, bands, reflectance, invalid, sensor)
    return reflectance, invalid


def read_product_window_into(
    product: Product,
    window: Window,
    bands: Sequence[str],
    reflectance: np.ndarray,
    invalid: np.ndarray,
    sensor: SensorDescription = SENTINEL2_THEIA,
    datasets: DatasetPool | None = None,
) -> None:
    """Like :func:`read_product_window`, writing into preallocated ``(B, h, w)`` and ``(h, w)``.

    ``datasets`` keeps the files open for the next window (see :class:`DatasetPool`);
    without it they are opened and closed here.
    """
    with (
        rasterio.Env(**_GDAL_OPTIONS),  # one GDAL environment for the 13 files, not one each
        contextlib.nullcontext(datasets) if datasets else DatasetPool(max_open=0) as pool,
    ):
        _read_product(product, window, bands, reflectance, invalid, sensor, pool)


def _read_product(
    product: Product,
    window: Window,
    bands: Sequence[str],
    reflectance: np.ndarray,
    invalid: np.ndarray,
    sensor: SensorDescription,
    datasets: DatasetPool,
) -> None:
    base = min(band.resolution for band in sensor.bands)
    masks = []
    for mask_name in sensor.mask_names:
        path = sensor.mask_path(product.path, mask_name, _MASK_RESOLUTION_INDEX)
        mask = np.empty(invalid.shape, dtype=np.uint8)
        _read_on_grid(datasets, path, window, base, base, mask, fill=1)
        masks.append(mask)
    # Cloudy or out of swath over the whole window: its bands would not be used, so they
    # are opened and checked but not decoded (a sixth of the dates of a synthetic year).
    wholly_masked = masked(masks, invalid.shape, out=invalid).all()
    for index, name in enumerate(bands):
        band = sensor.band(name)
        path = sensor.band_path(product.path, band.name)
        out = None if wholly_masked else reflectance[index]
        _read_on_grid(datasets, path, window, band.resolution, base, out, sensor.nodata)
    if wholly_masked:
        reflectance[...] = sensor.nodata
    else:
        flag_nodata(reflectance, sensor.nodata, invalid)


def read_products_window(
    products: Sequence[Product],
    window: Window,
    bands: Sequence[str],
    sensor: SensorDescription = SENTINEL2_THEIA,
    max_workers: int | None = None,
    datasets: DatasetPool | None = None,
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
    reads = iter_products_window(products, window, bands, sensor, max_workers, datasets)
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
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield each product's window in order, reading the next ones meanwhile.

    One window of :func:`iter_products_windows`, which see.
    """
    return iter_products_windows(products, [window], bands, sensor, max_workers, datasets)


def iter_products_windows(
    products: Sequence[Product],
    windows: Sequence[Window],
    bands: Sequence[str],
    sensor: SensorDescription = SENTINEL2_THEIA,
    max_workers: int | None = None,
    datasets: DatasetPool | None = None,
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
        read_product_window_into(product, window, bands, reflectance, invalid, sensor, datasets)
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
    (a 256 x 256 block at 20 m spans 512 x 512 pixels at 10 m).
    """
    base = min(band.resolution for band in sensor.bands)
    rows = cols = 1
    for name in bands:
        path = sensor.band_path(product.path, sensor.band(name).name)
        with open_raster(path) as src:
            factor = _factor(src.res[0], sensor.band(name).resolution, base, path)
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


def _read_on_grid(
    datasets: DatasetPool,
    path: Path,
    window: Window,
    resolution: int,
    base: int,
    out: np.ndarray | None,
    fill: int,
) -> None:
    """Read ``window`` (base-resolution pixels) of a single-band file into ``out``.

    With ``out`` None the file is only opened and its pixel size checked.
    """
    with datasets.borrow(path) as src:
        factor = _factor(src.res[0], resolution, base, path)
        if out is None:
            return
        if factor == 1:
            _read_window(src, window, fill, out)
            return
        coarse, row_shift, col_shift = coarse_window(window, factor)
        data = np.empty((int(coarse.height), int(coarse.width)), dtype=out.dtype)
        _read_window(src, coarse, fill, data)
        upsample_nearest(data, factor, row_shift, col_shift, out)


def _factor(pixel_size: float, resolution: int, base: int, path: Path) -> int:
    """How many base pixels a file's pixel spans, checked against the band's resolution."""
    factor = round(abs(pixel_size) / base)
    if factor < 1 or abs(abs(pixel_size) - factor * base) > 1e-6 * base:
        raise InputDataError(
            f"pixel size {pixel_size:g} is not a multiple of {base} m (expected {resolution} m)",
            path,
        )
    return factor


def _read_window(
    src: rasterio.io.DatasetReader, window: Window, fill: int, out: np.ndarray
) -> None:
    """Read band 1 into ``out``, filling with ``fill`` where the window leaves the raster."""
    if _outside(window, src):
        out[...] = src.read(1, window=window, boundless=True, fill_value=fill)
    else:
        src.read(1, window=window, out=out)  # (no fill_value here: rasterio reshapes ``out``)


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
