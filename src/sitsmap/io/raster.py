"""Raster reading and writing with rasterio: windowed reads, tiled compressed writes.

Every write goes through :func:`sitsmap.io.atomic.atomic_path`, so an output
GeoTIFF exists under its final name only once it is complete.
"""

from __future__ import annotations

import contextlib
import os
import resource
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from sitsmap.errors import InputDataError
from sitsmap.io.atomic import atomic_path

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class RasterGrid:
    """The georeferencing of a raster: size, affine transform and CRS."""

    width: int
    height: int
    transform: Affine
    crs: CRS

    @property
    def resolution(self) -> float:
        """Pixel size along x, in CRS units."""
        return float(self.transform.a)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in CRS units."""
        left, top = self.transform @ (0, 0)
        right, bottom = self.transform @ (self.width, self.height)
        return (min(left, right), min(bottom, top), max(left, right), max(bottom, top))


@contextlib.contextmanager
def open_raster(path: PathLike) -> Iterator[rasterio.io.DatasetReader]:
    """Open a raster for reading; any GDAL failure, then or while reading, is an InputDataError.

    The one place where rasterio's errors become sitsmap's one-line error naming the file.
    """
    try:
        with rasterio.open(path) as src:
            yield src
    except RasterioError as exc:
        raise InputDataError(f"cannot read raster ({_first_line(exc)})", path) from exc


class DatasetPool:
    """Open rasterio datasets kept for reuse, each lent to one borrower at a time.

    Opening a GeoTIFF costs about 0.4 ms in rasterio, a third of what decoding a
    512 x 512 window of it costs, and a tile read window by window would reopen
    every file of every date once per window. The pool keeps the files open
    between windows instead. rasterio datasets must not be used by two threads at
    once, so a borrowed dataset leaves the pool until it is given back (a second
    borrower of the same file meanwhile gets a dataset of its own).

    Parameters
    ----------
    max_open : int, optional
        Most datasets kept open while idle; beyond it the least recently returned
        one is closed. When omitted, half the process's limit on open files, after
        raising that limit to its hard maximum (a year of Sentinel-2 dates is about
        1800 files, above the common default limit of 1024).

    Notes
    -----
    Typical use, reading many windows of the same files::

        with DatasetPool() as datasets:
            for window in windows:
                with datasets.borrow(path) as src:
                    src.read(1, window=window)
    """

    def __init__(self, max_open: int | None = None) -> None:
        self._max_open = _default_max_open() if max_open is None else max_open
        self._idle: OrderedDict[str, rasterio.io.DatasetReader] = OrderedDict()
        self._lock = threading.Lock()
        self._closed = False

    @contextlib.contextmanager
    def borrow(self, path: PathLike) -> Iterator[rasterio.io.DatasetReader]:
        """Lend an open dataset of ``path`` (GDAL failures become InputDataError)."""
        key = os.fspath(path)
        with self._lock:
            src = self._idle.pop(key, None)
        try:
            if src is None:
                src = rasterio.open(key)
            yield src
        except RasterioError as exc:
            if src is not None:
                src.close()  # a dataset that failed is not lent again
            raise InputDataError(f"cannot read raster ({_first_line(exc)})", path) from exc
        except BaseException:
            if src is not None:
                src.close()
            raise
        self._give_back(key, src)

    def _give_back(self, key: str, src: rasterio.io.DatasetReader) -> None:
        with self._lock:
            surplus = [src] if key in self._idle or self._closed else []
            if not surplus:
                self._idle[key] = src
            while len(self._idle) > self._max_open:
                surplus.append(self._idle.popitem(last=False)[1])
        for dataset in surplus:
            dataset.close()

    def close(self) -> None:
        """Close every idle dataset, and any borrowed one when it is given back."""
        with self._lock:
            idle, self._idle = list(self._idle.values()), OrderedDict()
            self._closed = True  # a dataset given back later is closed, not kept
        for dataset in idle:
            dataset.close()

    def __enter__(self) -> DatasetPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _default_max_open() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        target = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
        with contextlib.suppress(ValueError, OSError):  # not allowed here: keep the limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(16, min(soft if soft != resource.RLIM_INFINITY else 65536, 65536) // 2)


def read_grid(path: PathLike) -> RasterGrid:
    """Return the grid of the raster at ``path``.

    Raises
    ------
    InputDataError
        If the file cannot be opened as a raster.
    """
    with open_raster(path) as src:
        return RasterGrid(src.width, src.height, src.transform, src.crs)


def read_raster(
    path: PathLike,
    window: Window | None = None,
    out_shape: tuple[int, int] | None = None,
    resampling: Resampling = Resampling.nearest,
    bands: int | Sequence[int] | None = None,
) -> np.ndarray:
    """Read a raster, or a window of it, optionally resampled on the fly.

    Parameters
    ----------
    path : str or PathLike
        Raster file.
    window : Window, optional
        Pixel window in the file's own grid; the whole raster if omitted.
    out_shape : (rows, cols), optional
        Read the window resampled to this shape (e.g. a 20 m band onto 10 m).
    resampling : Resampling
        Resampling used with ``out_shape``.
    bands : int or sequence of int, optional
        1-based band index or indexes; all bands if omitted.

    Returns
    -------
    numpy.ndarray
        ``(rows, cols)`` for a single band index, else ``(bands, rows, cols)``.

    Raises
    ------
    InputDataError
        If the file is missing, truncated or not a readable raster.
    """
    with open_raster(path) as src:
        if out_shape is not None:
            count = 1 if isinstance(bands, int) else len(bands or range(src.count))
            shape = out_shape if isinstance(bands, int) else (count, *out_shape)
            return src.read(bands, window=window, out_shape=shape, resampling=resampling)
        return src.read(bands, window=window)


def write_raster(
    path: PathLike,
    data: np.ndarray,
    grid: RasterGrid,
    nodata: float | None = None,
    colormap: Mapping[int, tuple[int, int, int]] | None = None,
    descriptions: Sequence[str] | None = None,
    blocksize: int = 256,
    compress: str = "deflate",
) -> None:
    """Write ``data`` as a tiled, compressed GeoTIFF, atomically.

    Parameters
    ----------
    path : str or PathLike
        Destination (``.tif``).
    data : numpy.ndarray
        ``(rows, cols)`` or ``(bands, rows, cols)``; its dtype is kept.
    grid : RasterGrid
        Georeferencing; its width and height must match ``data``.
    nodata : float, optional
        No-data value recorded in the file.
    colormap : mapping, optional
        ``{value: (r, g, b)}`` embedded as a colour table (single-band uint8/uint16).
    descriptions : sequence of str, optional
        One description per band (e.g. class names of a probability map).
    blocksize : int
        Internal tile size; reduced for tiny rasters.
    compress : str
        GDAL compression method.
    """
    array = data[np.newaxis] if data.ndim == 2 else data
    with (
        atomic_path(path) as tmp,
        rasterio.open(tmp, "w", **_profile(array, grid, nodata, blocksize, compress)) as dst,
    ):
        dst.write(array)
        if colormap is not None:
            dst.write_colormap(1, {int(k): (*v, 255) for k, v in colormap.items()})
        for index, text in enumerate(descriptions or (), start=1):
            dst.set_band_description(index, text)


def open_raster_writer(
    path: PathLike,
    count: int,
    dtype: np.dtype | str,
    grid: RasterGrid,
    nodata: float | None = None,
    blocksize: int = 256,
    compress: str = "deflate",
) -> rasterio.io.DatasetWriter:
    """Open a GeoTIFF for writing window by window (for outputs larger than memory).

    The caller writes to the returned dataset and must close it; write to a
    temporary name obtained from :func:`sitsmap.io.atomic.atomic_path`.
    """
    probe = np.empty((count, 0, 0), dtype=dtype)
    return rasterio.open(path, "w", **_profile(probe, grid, nodata, blocksize, compress))


def _profile(
    array: np.ndarray, grid: RasterGrid, nodata: float | None, blocksize: int, compress: str
) -> dict:
    tiled = grid.width >= 16 and grid.height >= 16
    block = max(16, min(blocksize, _floor16(min(grid.width, grid.height))))
    profile = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": array.shape[0],
        "dtype": array.dtype.name,
        "crs": grid.crs,
        "transform": grid.transform,
        "nodata": nodata,
        "compress": compress,
        "BIGTIFF": "IF_SAFER",
    }
    if tiled:
        profile.update(tiled=True, blockxsize=block, blockysize=block)
    if compress.lower() in {"deflate", "lzw", "zstd"} and array.dtype.kind in "iu":
        profile["predictor"] = 2
    if array.shape[0] > 1:
        profile["interleave"] = "band"
    return profile


def _floor16(value: int) -> int:
    return max(16, value // 16 * 16)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


@dataclass(frozen=True)
class RasterInfo:
    """What a raster holds besides its pixels: grid, bands, nodata, colours, band names."""

    grid: RasterGrid
    count: int
    dtype: str
    nodata: float | None
    descriptions: tuple[str | None, ...]
    colormap: dict[int, tuple[int, int, int, int]] | None


def read_raster_info(path: PathLike) -> RasterInfo:
    """Return the grid, band count, dtype, nodata, band descriptions and colour table of a raster.

    Raises
    ------
    InputDataError
        If the file cannot be opened as a raster.
    """
    with open_raster(path) as src:
        colormap = None
        if src.count == 1 and src.dtypes[0] in ("uint8", "uint16"):
            try:
                colormap = src.colormap(1)
            except ValueError:  # no colour table
                colormap = None
        return RasterInfo(
            grid=RasterGrid(src.width, src.height, src.transform, src.crs),
            count=src.count,
            dtype=src.dtypes[0],
            nodata=src.nodata,
            descriptions=tuple(src.descriptions),
            colormap=colormap,
        )


def read_raster_window(
    path: PathLike, window: Window, band: int = 1, fill: float = 0
) -> np.ndarray:
    """Read ``window`` of one band, ``fill`` where the window leaves the raster.

    Raises
    ------
    InputDataError
        If the file cannot be read.
    """
    with open_raster(path) as src:
        return src.read(band, window=window, boundless=True, fill_value=fill)


def read_warped(
    path: PathLike,
    grid: RasterGrid,
    resampling: Resampling = Resampling.nearest,
    nodata: float | None = None,
) -> np.ndarray:
    """Read a raster warped onto another grid (CRS, resolution, extent), all bands.

    Only the source pixels that the destination grid needs are read (GDAL's
    warper), so reading a small destination window of a large file is cheap.

    Parameters
    ----------
    path : str or PathLike
        Source raster.
    grid : RasterGrid
        Destination grid; typically one output window of a mosaic.
    resampling : Resampling
        ``nearest`` for class maps; ``bilinear`` etc. for continuous values.
    nodata : float, optional
        Value of destination pixels that no valid source pixel covers; the
        source's own nodata if omitted.

    Returns
    -------
    numpy.ndarray
        ``(bands, grid.height, grid.width)`` in the source dtype.

    Raises
    ------
    InputDataError
        If the file cannot be read.
    """
    with open_raster(path) as src:
        fill = src.nodata if nodata is None else nodata
        with warped_onto(src, grid, resampling, src.nodata, fill) as vrt:
            return vrt.read()


def warped_onto(
    src: rasterio.io.DatasetReader,
    grid: RasterGrid,
    resampling: Resampling,
    src_nodata: float | None,
    nodata: float | None,
) -> WarpedVRT:
    """A virtual raster of ``src`` warped onto ``grid`` (GDAL warps only what is read)."""
    return WarpedVRT(
        src,
        crs=grid.crs,
        transform=grid.transform,
        width=grid.width,
        height=grid.height,
        resampling=resampling,
        src_nodata=src_nodata,
        nodata=nodata,
    )


def read_row_blocks(path: PathLike, block_rows: int = 512, band: int = 1):
    """Yield ``(window, array)`` strips of one band, top to bottom (memory-bounded reads).

    Raises
    ------
    InputDataError
        If the file cannot be read.
    """
    with open_raster(path) as src:
        for top in range(0, src.height, block_rows):
            window = Window(0, top, src.width, min(block_rows, src.height - top))
            yield window, src.read(band, window=window)
