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
without the GIL; each read opens its own datasets, as rasterio datasets must
not be shared between threads).
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window

from sitsmap.errors import InputDataError
from sitsmap.preprocessing.masks import invalid_mask
from sitsmap.sensors import SENTINEL2_THEIA, Product, SensorDescription

__all__ = [
    "block_rows",
    "block_shape",
    "iter_products_window",
    "read_product_window",
    "read_product_window_into",
    "read_products_window",
]

_MASK_RESOLUTION_INDEX = 1  # the R1 (10 m) masks

# A product's files have no side-car files (.aux.xml, .ovr) worth listing the directory for.
_GDAL_OPTIONS = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}


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
        ``(len(bands), h, w)``, reflectance x 10000.
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
) -> None:
    """Like :func:`read_product_window`, writing into preallocated ``(B, h, w)`` and ``(h, w)``."""
    with rasterio.Env(**_GDAL_OPTIONS):  # one GDAL environment for the 13 files, not one each
        _read_product(product, window, bands, reflectance, invalid, sensor)


def _read_product(
    product: Product,
    window: Window,
    bands: Sequence[str],
    reflectance: np.ndarray,
    invalid: np.ndarray,
    sensor: SensorDescription,
) -> None:
    base = min(band.resolution for band in sensor.bands)
    for index, name in enumerate(bands):
        band = sensor.band(name)
        path = sensor.band_path(product.path, band.name)
        _read_on_grid(path, window, band.resolution, base, reflectance[index], sensor.nodata)
    masks = []
    for mask_name in sensor.mask_names:
        path = sensor.mask_path(product.path, mask_name, _MASK_RESOLUTION_INDEX)
        mask = np.empty(invalid.shape, dtype=np.uint8)
        _read_on_grid(path, window, base, base, mask, fill=1)
        masks.append(mask)
    invalid_mask(masks, reflectance, sensor.nodata, out=invalid)


def read_products_window(
    products: Sequence[Product],
    window: Window,
    bands: Sequence[str],
    sensor: SensorDescription = SENTINEL2_THEIA,
    max_workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read the same window of several products, dates in parallel.

    Parameters
    ----------
    products : sequence of Product
        The dates of the stack, in order.
    window, bands, sensor
        As for :func:`read_product_window`.
    max_workers : int, optional
        Reading threads; ``min(4, cores)`` when omitted, 1 reads sequentially.

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

    def read(index: int) -> None:
        read_product_window_into(
            products[index], window, bands, reflectance[index], invalid[index], sensor
        )

    workers = _workers(max_workers)
    if workers <= 1 or len(products) <= 1:
        for index in range(len(products)):
            read(index)
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s2read") as pool:
            list(pool.map(read, range(len(products))))
    return reflectance, invalid


def iter_products_window(
    products: Sequence[Product],
    window: Window,
    bands: Sequence[str],
    sensor: SensorDescription = SENTINEL2_THEIA,
    max_workers: int | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield each product's window in order, reading the next ones meanwhile.

    Parameters
    ----------
    products : sequence of Product
        The dates of the stack, in order.
    window, bands, sensor
        As for :func:`read_product_window`.
    max_workers : int, optional
        Reading threads; ``min(4, cores)`` when omitted, 1 reads in the caller's thread.

    Yields
    ------
    reflectance : numpy.ndarray of int16
        ``(B, h, w)``.
    invalid : numpy.ndarray of bool
        ``(h, w)``.

    Notes
    -----
    The yielded arrays are recycled for a later date once the consumer asks for the
    next one: use them (or copy them) before moving on. At most ``max_workers + 1``
    dates are in memory at once.
    """
    workers = _workers(max_workers)
    height, width = _window_shape(window)
    n_buffers = min(workers + 1, len(products))
    free = [
        (np.empty((len(bands), height, width), dtype=np.int16), np.empty((height, width), bool))
        for _ in range(n_buffers)
    ]
    if workers <= 1:
        for product in products:
            read_product_window_into(product, window, bands, *free[0], sensor)
            yield free[0]
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s2read") as pool:
        pending: deque[tuple[Future[None], tuple[np.ndarray, np.ndarray]]] = deque()
        queued = iter(products)

        def refill() -> None:
            while free:
                product = next(queued, None)
                if product is None:
                    return
                buffers = free.pop()
                future = pool.submit(
                    read_product_window_into, product, window, bands, *buffers, sensor
                )
                pending.append((future, buffers))

        try:
            refill()
            while pending:
                future, buffers = pending.popleft()
                future.result()
                yield buffers
                free.append(buffers)
                refill()
        finally:
            for future, _ in pending:
                future.cancel()


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
        try:
            with rasterio.open(path) as src:
                factor = _factor(src.res[0], sensor.band(name).resolution, base, path)
                block_height, block_width = src.block_shapes[0]
                rows = math.lcm(rows, block_height * factor)
                cols = math.lcm(cols, min(block_width, src.width) * factor)
        except RasterioError as exc:
            raise InputDataError(f"cannot open raster ({_first_line(exc)})", path) from exc
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
    rows = (np.arange(out.shape[0]) + row_shift) // factor
    cols = (np.arange(out.shape[1]) + col_shift) // factor
    np.take(np.take(coarse, rows, axis=0), cols, axis=1, out=out)
    return out


def _read_on_grid(
    path: Path, window: Window, resolution: int, base: int, out: np.ndarray, fill: int
) -> None:
    """Read ``window`` (base-resolution pixels) of a single-band file into ``out``."""
    try:
        with rasterio.open(path) as src:
            factor = _factor(src.res[0], resolution, base, path)
            if factor == 1:
                _read_window(src, window, fill, out)
                return
            coarse, row_shift, col_shift = coarse_window(window, factor)
            data = np.empty((int(coarse.height), int(coarse.width)), dtype=out.dtype)
            _read_window(src, coarse, fill, data)
            upsample_nearest(data, factor, row_shift, col_shift, out)
    except RasterioError as exc:
        raise InputDataError(f"cannot read Sentinel-2 file ({_first_line(exc)})", path) from exc


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
    return max_workers or min(4, os.cpu_count() or 1)


def _window_shape(window: Window) -> tuple[int, int]:
    return int(window.height), int(window.width)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
