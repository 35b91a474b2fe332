"""File writing for the synthetic world: directories of GeoTIFFs written window by window.

A Theia product is a directory of 16 GeoTIFFs. :class:`RasterSetWriter`
writes such a set under a temporary directory name, window by window (so a
10 980-pixel tile never has to be in memory), and renames the directory
into place only once every file is complete.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from sitsmap.errors import InputDataError
from sitsmap.io.atomic import atomic_path, temporary_sibling
from sitsmap.io.raster import RasterGrid, open_raster_writer

PathLike = str | os.PathLike[str]


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
