"""Finding a tile's Theia Sentinel-2 L2A products, and what every finder shares.

A tile directory holds one directory per acquisition, named like
``SENTINEL2A_20180115-105523-457_L2A_T31TCJ_C_V2-2`` (Theia/MAJA layout, see
:mod:`sitsmap.sensors.sentinel2`), or the zip Theia delivers it as
(``<product>.zip`` holding ``<product>/``), read in place through GDAL's
``/vsizip/``: never unzipped. Anything else in it is ignored.

:func:`select_products` (date range, one product per date) and
:func:`tile_grid_of` serve the finders of the other layouts too.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

from rasterio.warp import transform_bounds

from sitsmap.errors import InputDataError
from sitsmap.io.raster import RasterGrid, open_raster, read_grid
from sitsmap.sensors import SENTINEL2_THEIA, Product, ProductFile, SensorDescription
from sitsmap.sensors.sentinel2 import TheiaDescription

__all__ = [
    "find_products",
    "raster_overlaps",
    "select_products",
    "tile_grid_of",
    "tile_key",
    "vsi_path",
]

logger = logging.getLogger(__name__)

_MAX_DATES_SHOWN = 8


def find_products(
    tile_dir: Path,
    tile: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
    sensor: SensorDescription = SENTINEL2_THEIA,
) -> list[Product]:
    """Return the complete products of ``tile`` acquired in ``[start, end]``, sorted by date.

    Parameters
    ----------
    tile_dir : Path
        Directory holding the tile's product directories.
    tile : str
        Tile name, with or without its leading ``T`` (``T31TCJ`` or ``31TCJ``).
    start, end : datetime.date, optional
        Inclusive date range; open-ended when omitted.
    sensor : SensorDescription
        Product naming and the files a product must hold.

    Returns
    -------
    list of Product
        One product per date: of two products on the same date (S2A and S2B, or a
        reprocessed version), the latest processing version is kept.

    Raises
    ------
    InputDataError
        If ``tile_dir`` is missing or holds no product of ``tile``, if no product falls
        in the date range, or if a product lacks one of its band or mask files.
    """
    tile_dir = Path(tile_dir)
    if not tile_dir.is_dir():
        raise InputDataError("Sentinel-2 tile directory not found", tile_dir)
    products = _products_of_tile(tile_dir, tile, sensor)
    if not products:
        raise InputDataError(
            f"no Sentinel-2 L2A product of tile {tile} in this directory", tile_dir
        )
    return select_products(products, tile, start, end, tile_dir)


def select_products(
    products: list[Product],
    tile: str,
    start: dt.date | None,
    end: dt.date | None,
    where: Path | str,
) -> list[Product]:
    """Keep the products in ``[start, end]``, one per date (the highest version), by date.

    Raises
    ------
    InputDataError
        Naming ``where`` when no product falls in the range.
    """
    in_range = [p for p in products if _within(p.date, start, end)]
    if not in_range:
        raise InputDataError(
            f"no product of tile {tile} between {start or 'the start'} and "
            f"{end or 'the end'}; dates found: {_describe_dates(products)}",
            where,
        )
    return _one_per_date(in_range)


def tile_grid_of(product: Product, sensor: SensorDescription = SENTINEL2_THEIA) -> RasterGrid:
    """Return the grid of a product's first band at the sensor's finest resolution."""
    finest = next(b for b in sensor.bands if b.resolution == sensor.base_resolution)
    return read_grid(product.file(finest.name).path)


def raster_overlaps(path: str, crs: object, bounds: tuple[float, float, float, float]) -> bool:
    """Whether a raster's extent shares more than an edge with ``bounds`` (in ``crs``)."""
    with open_raster(path) as src:
        left, bottom, right, top = transform_bounds(src.crs, crs, *src.bounds, densify_pts=21)
    return left < bounds[2] and bounds[0] < right and bottom < bounds[3] and bounds[1] < top


def vsi_path(archive: Path, member: str) -> str:
    """GDAL's path of a member of a zip or tar archive, read in place."""
    kind = "vsizip" if archive.suffix.lower() == ".zip" else "vsitar"
    return f"/{kind}/{os.path.abspath(archive)}/{member}"


def _products_of_tile(tile_dir: Path, tile: str, sensor: TheiaDescription) -> list[Product]:
    wanted = tile_key(tile)
    products = []
    for entry in sorted(tile_dir.iterdir()):
        is_zip = entry.suffix.lower() == ".zip" and entry.is_file()
        name = entry.name[: -len(".zip")] if is_zip else entry.name
        fields = sensor.parse_product_name(name)
        if fields is None or not (is_zip or entry.is_dir()):
            continue
        if tile_key(fields["tile"]) != wanted:
            logger.debug("ignoring %s: not tile %s", entry, tile)
            continue
        date = dt.datetime.strptime(fields["date"], sensor.date_format).date()
        files = _zip_files(entry, name, sensor) if is_zip else _folder_files(entry, sensor)
        products.append(
            Product(entry, fields["tile"], date, fields["satellite"], files, _version(fields))
        )
    return products


def _theia_files(name: str, sensor: TheiaDescription) -> dict[str, str]:
    """Each raster's path inside a product called ``name``: bands, then the R1 masks."""
    folder = Path(name)
    files = {b.name: sensor.band_path(folder, b.name) for b in sensor.bands}
    files.update({m: sensor.mask_path(folder, m, 1) for m in sensor.mask_names})
    return {key: path.relative_to(folder).as_posix() for key, path in files.items()}


def _folder_files(folder: Path, sensor: TheiaDescription) -> tuple[ProductFile, ...]:
    """A product folder's rasters, every one of them checked to exist."""
    files = _theia_files(folder.name, sensor)
    return _complete(files, lambda rel: (folder / rel).is_file(), lambda rel: str(folder / rel))


def _zip_files(archive: Path, name: str, sensor: TheiaDescription) -> tuple[ProductFile, ...]:
    """A zipped product's rasters (``<product>/...`` members), read through ``/vsizip/``."""
    try:
        with zipfile.ZipFile(archive) as opened:
            members = set(opened.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputDataError(f"corrupt or unreadable zip ({exc})", archive) from None
    prefix = f"{name}/" if any(m.startswith(f"{name}/") for m in members) else ""
    files = _theia_files(name, sensor)
    return _complete(
        files, lambda rel: prefix + rel in members, lambda rel: vsi_path(archive, prefix + rel)
    )


def _complete(
    files: dict[str, str], exists: Callable[[str], bool], locate: Callable[[str], str]
) -> tuple[ProductFile, ...]:
    for relative in files.values():
        if not exists(relative):
            raise InputDataError(
                f"missing file of an incomplete Sentinel-2 product: {relative}",
                locate(relative),
            )
    return tuple(ProductFile(key, locate(relative)) for key, relative in files.items())


def tile_key(tile: str) -> str:
    """A tile name without case or leading ``T`` (``T31TCJ``, ``31tcj`` → ``31TCJ``)."""
    tile = tile.strip().upper()
    return tile[1:] if tile.startswith("T") else tile


def _within(date: dt.date, start: dt.date | None, end: dt.date | None) -> bool:
    return (start is None or date >= start) and (end is None or date <= end)


def _one_per_date(products: list[Product]) -> list[Product]:
    """Keep one product per date: the latest version, then the latest name (deterministic)."""
    by_date: dict[dt.date, list[Product]] = {}
    for product in products:
        by_date.setdefault(product.date, []).append(product)
    kept = []
    for date in sorted(by_date):
        candidates = sorted(by_date[date], key=lambda p: (p.version, p.name))
        kept.append(candidates[-1])
        if len(candidates) > 1:
            dropped = ", ".join(p.name for p in candidates[:-1])
            logger.info(
                "%d products on %s: keeping %s, ignoring %s",
                len(candidates),
                date,
                candidates[-1].name,
                dropped,
            )
    return kept


def _version(fields: dict[str, str]) -> tuple[int, ...]:
    version = fields.get("version", "")
    return tuple(int(part) for part in version.replace("-", ".").split(".") if part.isdigit())


def _describe_dates(products: list[Product]) -> str:
    dates = sorted({p.date for p in products})
    if len(dates) <= _MAX_DATES_SHOWN:
        return ", ".join(str(d) for d in dates)
    return f"{len(dates)} dates from {dates[0]} to {dates[-1]}"
