"""Finding the rasters of a user sensor: one multi-band file per date.

The files are directly in the sensor's folder or in one folder per tile; the
date is read from the file name with the configured regular expression (its
``date`` group, else its first group, ``YYYYMMDD`` or ``YYYY-MM-DD``). Files
whose name holds no date are ignored.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path

from sitsmap.errors import InputDataError
from sitsmap.io.products import raster_overlaps, select_products, tile_key
from sitsmap.io.raster import read_raster_info
from sitsmap.sensors import Product, ProductFile
from sitsmap.sensors.user import MASK_KEY

__all__ = ["find_user_products"]

_RASTER_SUFFIXES = {".tif", ".tiff", ".vrt", ".img", ".jp2", ".nc"}


def find_user_products(
    root: Path,
    tile: str,
    start: dt.date | None,
    end: dt.date | None,
    date_pattern: str,
    bands: Sequence[str],
    mask_band: int | None,
    scale: float,
    footprint: tuple[object, tuple[float, float, float, float]] | None = None,
) -> list[Product]:
    """Return the user sensor's rasters of ``tile`` in ``[start, end]``, one per date.

    Parameters
    ----------
    root : Path
        The sensor's folder (files in it, or in ``root/<tile>/``).
    tile : str
        The tile.
    start, end : datetime.date, optional
        Inclusive period.
    date_pattern : str
        Regular expression finding the date in a file name.
    bands : sequence of str
        Band names, in file order without the mask band.
    mask_band : int, optional
        1-based band holding the mask (non-zero = invalid).
    scale : float
        Values are held as ``value x scale``.
    footprint : (CRS, bounds), optional
        The tile grid's CRS and bounds: only rasters overlapping it are kept.

    Raises
    ------
    InputDataError
        If the folder is missing or holds no dated raster over the tile, or a raster
        has another number of bands than configured.
    """
    folder = _tile_folder(Path(root), tile)
    pattern = re.compile(date_pattern)
    products = []
    for path in sorted(folder.iterdir()):
        date = _date_of(path, pattern)
        if date is None or path.suffix.lower() not in _RASTER_SUFFIXES:
            continue
        product = _product(path, tile, date, bands, mask_band, scale)
        if footprint is None or raster_overlaps(str(path), *footprint):
            products.append(product)
    if not products:
        raise InputDataError(f"user_sensor: no dated raster of tile {tile}", folder)
    return select_products(products, tile, start, end, folder)


def _tile_folder(root: Path, tile: str) -> Path:
    if not root.is_dir():
        raise InputDataError("user_sensor.path: folder not found", root)
    for entry in root.iterdir():
        if entry.is_dir() and tile_key(entry.name) == tile_key(tile):
            return entry
    return root


def _date_of(path: Path, pattern: re.Pattern[str]) -> dt.date | None:
    match = pattern.search(path.name)
    if match is None:
        return None
    text = match.groupdict().get("date") or (match.group(1) if match.groups() else match[0])
    try:
        return dt.datetime.strptime(text.replace("-", ""), "%Y%m%d").date()
    except ValueError:
        return None


def _product(
    path: Path,
    tile: str,
    date: dt.date,
    bands: Sequence[str],
    mask_band: int | None,
    scale: float,
) -> Product:
    info = read_raster_info(path)
    if info.grid.crs is None:
        raise InputDataError("user_sensor: raster has no CRS, it cannot be warped", path)
    count = info.count
    expected = len(bands) + (mask_band is not None)
    if count != expected:
        raise InputDataError(
            f"{count} band(s), user_sensor expects {expected} "
            f"({len(bands)} in user_sensor.bands{' and a mask band' if mask_band else ''})",
            path,
        )
    numbers = [n for n in range(1, count + 1) if n != mask_band]
    files = [
        ProductFile(name.upper(), str(path), gain=scale, band=number)
        for name, number in zip(bands, numbers, strict=True)
    ]
    if mask_band is not None:
        files.append(ProductFile(MASK_KEY, str(path), band=mask_band))
    return Product(path, tile, date, "user", tuple(files))
