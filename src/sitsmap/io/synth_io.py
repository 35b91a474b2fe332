"""File writing for the synthetic world: product folders that appear only when complete.

A Theia product is a directory of 16 GeoTIFFs. :class:`RasterSetWriter`
writes such a set under a temporary directory name, window by window (so a
10 980-pixel tile never has to be in memory), and renames the directory
into place only once every file is complete.

The other layouts are converted from the Theia products one whole file at a
time: :class:`ProductFolderWriter` writes a product's rasters (lossless JPEG
2000 or Cloud-Optimized GeoTIFF) and metadata into a hidden temporary folder
and, on commit, renames it into place or packs it into a zip;
:func:`zip_folder` packs an existing product folder the way its provider
delivers it. Zips are byte-identical from run to run (fixed member dates,
sorted members); rasters are stored in them, text deflated.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import rasterio
from rasterio.windows import Window

from sitsmap.errors import InputDataError
from sitsmap.io.atomic import atomic_path, remove_path, temporary_sibling
from sitsmap.io.raster import RasterGrid, open_raster_writer

PathLike = str | os.PathLike[str]
RasterFormat = Literal["jp2", "cog"]


@dataclass(frozen=True)
class RasterSpec:
    """What one file of a set holds: its grid, data type, nodata value and colours."""

    grid: RasterGrid
    dtype: str
    nodata: float | None = None
    colormap: Mapping[int, tuple[int, int, int]] | None = None


@contextlib.contextmanager
def raster_writer(path: PathLike, spec: RasterSpec) -> Iterator[rasterio.io.DatasetWriter]:
    """Open a single-band GeoTIFF for window-by-window writing; it appears only when complete.

    Yields
    ------
    rasterio.io.DatasetWriter
        The dataset, written under a temporary name and renamed to ``path``
        when the block ends without an exception.
    """
    with atomic_path(path) as tmp:
        dataset = open_raster_writer(tmp, 1, spec.dtype, spec.grid, spec.nodata)
        try:
            _write_colormap(dataset, spec)
            yield dataset
        finally:
            dataset.close()


def _write_colormap(dataset: rasterio.io.DatasetWriter, spec: RasterSpec) -> None:
    if spec.colormap is not None:
        dataset.write_colormap(1, {int(k): (*v, 255) for k, v in spec.colormap.items()})


class RasterSetWriter:
    """Write single-band GeoTIFFs into a directory that appears only when complete.

    Parameters
    ----------
    directory : str or PathLike
        Final directory; replaced if it exists.
    specs : mapping of str to RasterSpec
        File paths relative to ``directory`` and what each holds.

    Notes
    -----
    Use as a context manager: leaving the block normally commits (closes the
    files and renames the directory into place); an exception discards
    everything. A file must be written window by window from one thread at
    a time; different files may be written from different threads.
    """

    def __init__(self, directory: PathLike, specs: Mapping[str, RasterSpec]) -> None:
        self.directory = Path(directory)
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = temporary_sibling(self.directory)
        self._datasets: dict[str, rasterio.io.DatasetWriter] = {}
        try:
            for relative, spec in specs.items():
                path = self._tmp / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                dataset = open_raster_writer(path, 1, spec.dtype, spec.grid, spec.nodata)
                self._datasets[relative] = dataset
                _write_colormap(dataset, spec)
        except Exception:
            self.abort()
            raise

    def write(self, relative: str, array: np.ndarray, row_offset: int = 0) -> None:
        """Write a 2-D ``array`` into file ``relative`` starting at row ``row_offset``."""
        rows, cols = array.shape
        self._datasets[relative].write(array, 1, window=Window(0, row_offset, cols, rows))

    def close(self, relative: str) -> None:
        """Close one file (flushes and compresses its last blocks); idempotent."""
        dataset = self._datasets.get(relative)
        if dataset is not None and not dataset.closed:
            dataset.close()

    def commit(self) -> None:
        """Close every file and move the directory into place."""
        for relative in self._datasets:
            self.close(relative)
        if self.directory.is_dir():
            shutil.rmtree(self.directory)
        os.replace(self._tmp, self.directory)

    def abort(self) -> None:
        """Close every file and delete the temporary directory."""
        for dataset in self._datasets.values():
            if not dataset.closed:
                dataset.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> RasterSetWriter:
        return self

    def __exit__(self, exc_type: type | None, *_: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def remove_stale_products(tile_dir: PathLike, keep: set[str], pattern: re.Pattern[str]) -> int:
    """Delete product directories of ``tile_dir`` that match ``pattern`` and are not in ``keep``.

    Only directories named like products are touched, so re-generating a
    world into the same directory never leaves products of an older one.

    Returns
    -------
    int
        The number of directories removed.
    """
    tile_dir = Path(tile_dir)
    if not tile_dir.is_dir():
        return 0
    removed = 0
    for entry in tile_dir.iterdir():
        if entry.is_dir() and pattern.match(entry.name) and entry.name not in keep:
            shutil.rmtree(entry)
            removed += 1
    return removed


def copy_file(source: PathLike, destination: PathLike) -> None:
    """Copy ``source`` to ``destination`` atomically.

    Raises
    ------
    InputDataError
        If ``source`` cannot be read.
    """
    try:
        with atomic_path(destination) as tmp:
            shutil.copyfile(source, tmp)
    except FileNotFoundError as exc:
        raise InputDataError("no such file", source) from exc


RASTER_FORMATS: Mapping[str, Mapping[str, Any]] = {
    "jp2": {
        "driver": "JP2OpenJPEG",
        "QUALITY": 100,
        "REVERSIBLE": "YES",
        "GMLJP2": "YES",
        "GeoJP2": "NO",
    },
    "cog": {"driver": "COG", "compress": "deflate", "predictor": 2, "BLOCKSIZE": 512},
}
"""Creation options: lossless JPEG 2000 georeferenced by a GMLJP2 box (as Sen2Cor's), and
deflated COGs with a horizontal predictor (as Earth Search's and USGS's)."""

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
"""Date of every zip member, so that the same world gives the same zips."""
_STORED_SUFFIXES = {".jp2", ".tif"}


def write_raster_file(
    path: PathLike,
    array: np.ndarray,
    grid: RasterGrid,
    raster_format: RasterFormat = "cog",
    nodata: float | None = None,
) -> None:
    """Write a single-band raster atomically as lossless JPEG 2000 or as a COG.

    Parameters
    ----------
    path : str or PathLike
        Destination (``.jp2`` or ``.tif``).
    array : numpy.ndarray
        ``(rows, cols)``; its dtype is kept.
    grid : RasterGrid
        Georeferencing; its size must match ``array``.
    raster_format : {"cog", "jp2"}
        See :data:`RASTER_FORMATS`.
    nodata : float, optional
        No-data value recorded in the file (COG only: Sen2Cor's JPEG 2000
        files record none).
    """
    profile = dict(RASTER_FORMATS[raster_format])
    profile.update(
        width=grid.width,
        height=grid.height,
        count=1,
        dtype=array.dtype.name,
        crs=grid.crs,
        transform=grid.transform,
    )
    if raster_format == "cog":
        profile["nodata"] = nodata
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(array, 1)


class ProductFolderWriter:
    """Write the files of one product into a folder that appears only when complete.

    Parameters
    ----------
    destination : str or PathLike
        The product folder, or the zip when ``archive_root`` is given; replaced
        if it exists.
    archive_root : str, optional
        Pack the product into the zip ``destination`` under this folder name
        (``<name>.SAFE``) instead of writing a folder.

    Notes
    -----
    Use as a context manager: leaving the block normally commits, an
    exception discards everything.
    """

    def __init__(self, destination: PathLike, archive_root: str | None = None) -> None:
        self.destination = Path(destination)
        self.destination.parent.mkdir(parents=True, exist_ok=True)
        self._archive_root = archive_root
        self._tmp = temporary_sibling(self.destination)
        self._folder = self._tmp / archive_root if archive_root else self._tmp
        self._folder.mkdir(parents=True)

    def raster(
        self,
        relative: str,
        array: np.ndarray,
        grid: RasterGrid,
        raster_format: RasterFormat = "cog",
        nodata: float | None = None,
    ) -> None:
        """Write the raster ``relative`` (a path in the product; see :func:`write_raster_file`)."""
        write_raster_file(self._folder / relative, array, grid, raster_format, nodata)

    def text(self, relative: str, text: str) -> None:
        """Write the UTF-8 text file ``relative``."""
        path = self._folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def commit(self) -> None:
        """Move the folder into place, or pack it into the zip."""
        if self._archive_root is not None:
            zip_folder(self._folder, self.destination, self._archive_root)
            shutil.rmtree(self._tmp)
            return
        if self.destination.exists():
            remove_path(self.destination)
        os.replace(self._tmp, self.destination)

    def abort(self) -> None:
        """Delete everything written so far."""
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> ProductFolderWriter:
        return self

    def __exit__(self, exc_type: type | None, *_: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def zip_folder(folder: PathLike, archive: PathLike, root: str) -> None:
    """Pack ``folder`` into the zip ``archive`` (atomically) as ``root/...``.

    Directory entries are included, as in Theia's and the Copernicus Data
    Space's zips; rasters are stored (they are compressed already), other
    files deflated.
    """
    folder = Path(folder)
    with atomic_path(archive) as tmp, zipfile.ZipFile(tmp, "w") as bundle:
        bundle.writestr(_member(f"{root}/", zipfile.ZIP_STORED), b"")
        for path in sorted(folder.rglob("*")):
            name = f"{root}/{path.relative_to(folder).as_posix()}"
            if path.is_dir():
                bundle.writestr(_member(f"{name}/", zipfile.ZIP_STORED), b"")
                continue
            stored = path.suffix.lower() in _STORED_SUFFIXES
            member = _member(name, zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
            with path.open("rb") as source, bundle.open(member, "w") as target:
                shutil.copyfileobj(source, target, 1 << 20)


def _member(name: str, compression: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = compression
    info.external_attr = (0o40755 << 16) | 0x10 if name.endswith("/") else 0o100644 << 16
    return info


def remove_stale_entries(
    folder: PathLike, keep: set[str], is_product: Callable[[str], bool]
) -> int:
    """Delete the files and folders of ``folder`` named like products but not in ``keep``.

    Parameters
    ----------
    folder : str or PathLike
        Where the products lie; nothing happens if it does not exist.
    keep : set of str
        Entry names to keep (``<name>.zip`` for a zip).
    is_product : callable
        Whether an entry name is a product's; other entries are never touched.

    Returns
    -------
    int
        The number of entries removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    stale = [p for p in folder.iterdir() if is_product(p.name) and p.name not in keep]
    for path in stale:
        remove_path(path)
    return len(stale)
