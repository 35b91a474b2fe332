"""Finding a tile's Sentinel-2 L2A products on disk.

A tile directory holds one directory per acquisition, named like
``SENTINEL2A_20180115-105523-457_L2A_T31TCJ_C_V2-2`` (Theia/MAJA layout, see
:mod:`sitsmap.sensors.sentinel2`). Anything else in it is ignored.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from sitsmap.errors import InputDataError
from sitsmap.io.raster import RasterGrid, read_grid
from sitsmap.sensors import SENTINEL2_THEIA, Product, SensorDescription

__all__ = ["find_products", "tile_grid_of"]

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
    in_range = [p for p in products if _within(p.date, start, end)]
    if not in_range:
        raise InputDataError(
            f"no product of tile {tile} between {start or 'the start'} and "
            f"{end or 'the end'}; dates found: {_describe_dates(products)}",
            tile_dir,
        )
    kept = _one_per_date(in_range, sensor)
    for product in kept:
        _check_complete(product, sensor)
    return kept


def tile_grid_of(product: Product, sensor: SensorDescription = SENTINEL2_THEIA) -> RasterGrid:
    """Return the 10 m grid of a product, read from its B2 file."""
    return read_grid(sensor.band_path(product.path, "B2"))


def _products_of_tile(tile_dir: Path, tile: str, sensor: SensorDescription) -> list[Product]:
    wanted = _tile_key(tile)
    products = []
    for entry in sorted(tile_dir.iterdir()):
        fields = sensor.parse_product_name(entry.name)
        if fields is None or not entry.is_dir():
            continue
        if _tile_key(fields["tile"]) != wanted:
            logger.debug("ignoring %s: not tile %s", entry, tile)
            continue
        date = dt.datetime.strptime(fields["date"], sensor.date_format).date()
        products.append(Product(entry, fields["tile"], date, fields["satellite"]))
    return products


def _tile_key(tile: str) -> str:
    tile = tile.strip().upper()
    return tile[1:] if tile.startswith("T") else tile


def _within(date: dt.date, start: dt.date | None, end: dt.date | None) -> bool:
    return (start is None or date >= start) and (end is None or date <= end)


def _one_per_date(products: list[Product], sensor: SensorDescription) -> list[Product]:
    """Keep one product per date: the latest version, then the latest name (deterministic)."""
    by_date: dict[dt.date, list[Product]] = {}
    for product in products:
        by_date.setdefault(product.date, []).append(product)
    kept = []
    for date in sorted(by_date):
        candidates = sorted(by_date[date], key=lambda p: (_version(p, sensor), p.name))
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


def _version(product: Product, sensor: SensorDescription) -> tuple[int, ...]:
    fields = sensor.parse_product_name(product.name) or {}
    version = fields.get("version", "")
    return tuple(int(part) for part in version.replace("-", ".").split(".") if part.isdigit())


def _check_complete(product: Product, sensor: SensorDescription) -> None:
    for path in sensor.required_files(product.path):
        if not path.is_file():
            raise InputDataError("missing file of an incomplete Sentinel-2 product", path)


def _describe_dates(products: list[Product]) -> str:
    dates = sorted({p.date for p in products})
    if len(dates) <= _MAX_DATES_SHOWN:
        return ", ".join(str(d) for d in dates)
    return f"{len(dates)} dates from {dates[0]} to {dates[-1]}"
