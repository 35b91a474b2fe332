"""Finding the Landsat 8 and 9 Collection 2 Level-2 scenes over a tile.

A scene is a folder or the ``.tar`` USGS delivers (bulk downloads: its files at
the root of the archive), named like ``LC08_L2SP_199025_20180311_20180320_02_T1``
(see :mod:`sitsmap.sensors.landsat`); a tar is read in place through GDAL's
``/vsitar/``, never extracted. Scenes lie directly in the root directory or in
its ``<tile>/`` subdirectory.

Scenes are on the WRS-2 grid, not on the tile's: with the tile's footprint,
only the scenes whose bounds meet it are kept. Several scenes of one date over
the tile (adjacent rows of one path, or two paths) make one product: the first
by name, carrying the others in :attr:`~sitsmap.sensors.Product.same_day`, so
that the reader takes them where the first has no valid pixel.
"""

from __future__ import annotations

import datetime as dt
import logging
import tarfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from rasterio.crs import CRS
from rasterio.warp import transform_bounds

from sitsmap.errors import InputDataError
from sitsmap.io.products import select_products, tile_key, vsi_path
from sitsmap.io.raster import open_raster
from sitsmap.sensors import LANDSAT8, Product, ProductFile
from sitsmap.sensors.landsat import (
    LANDSAT_PRODUCT_REGEX,
    SR_GAIN,
    SR_OFFSET,
    landsat_band_file,
)

__all__ = ["find_landsat_products", "scene_bounds"]

logger = logging.getLogger(__name__)

Footprint = tuple[CRS, tuple[float, float, float, float]]
"""A tile grid's CRS and its ``(left, bottom, right, top)`` bounds."""

_QA = "QA_PIXEL"
_DENSIFY = 21  # points per edge when bounds change CRS: UTM zones bend each other's lines


def find_landsat_products(
    root: Path,
    tile: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
    footprint: Footprint | None = None,
) -> list[Product]:
    """Return the Landsat products over ``tile`` in ``[start, end]``, one per date, by date.

    Parameters
    ----------
    root : Path
        Directory holding the scenes (folders or ``.tar``), directly or in ``<tile>/``
        (used when it exists).
    tile : str
        Tile name, with or without its leading ``T``.
    start, end : datetime.date, optional
        Inclusive date range; open-ended when omitted.
    footprint : (CRS, (left, bottom, right, top)), optional
        The tile grid's CRS and bounds: only the scenes whose bounds intersect them
        are kept. Without it, every scene of the directory is.

    Returns
    -------
    list of Product
        One product per date; other scenes of that date in its ``same_day``.

    Raises
    ------
    InputDataError
        If ``root`` is missing or holds no scene (over the tile, in the range), if a
        scene lacks a band or its ``QA_PIXEL``, or a tar or raster cannot be read.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputDataError("Landsat directory not found", root)
    directory = _scene_directory(root, tile)
    products = [_scene(entry, fields, tile) for entry, fields in _scene_entries(directory)]
    if footprint is not None:
        products = [p for p in products if _intersects(scene_bounds(p, footprint[0]), footprint[1])]
    if not products:
        raise InputDataError(
            f"no Landsat Collection 2 Level-2 scene over tile {tile} in this directory",
            directory,
        )
    return select_products(_merge_same_day(products), tile, start, end, directory)


def scene_bounds(product: Product, crs: CRS) -> tuple[float, float, float, float]:
    """A scene's ``(left, bottom, right, top)`` in ``crs``, from its ``QA_PIXEL`` raster.

    Raises
    ------
    InputDataError
        If the raster cannot be read.
    """
    with open_raster(product.file(_QA).path) as src:
        return transform_bounds(src.crs, crs, *src.bounds, densify_pts=_DENSIFY)


def _scene_directory(root: Path, tile: str) -> Path:
    """``root/<tile>/`` (``T31UDS`` or ``31UDS``, any case) when it exists, else ``root``."""
    wanted = tile_key(tile)
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and tile_key(entry.name) == wanted:
            return entry
    return root


def _scene_entries(directory: Path) -> list[tuple[Path, dict[str, str]]]:
    """The scene folders and tars of ``directory`` with their name's fields, by name.

    Anything else is ignored.
    """
    entries = []
    for entry in sorted(directory.iterdir()):
        match = LANDSAT_PRODUCT_REGEX.match(entry.name)
        is_tar = entry.name.endswith(".tar")
        if match and (entry.is_file() if is_tar else entry.is_dir()):
            entries.append((entry, match.groupdict()))
    return entries


def _scene(entry: Path, fields: dict[str, str], tile: str) -> Product:
    """A scene folder or tar as a product: its SR bands (scaled) and QA_PIXEL."""
    name = entry.name.removesuffix(".tar")
    if entry.is_file():
        exists, locate = _tar_members(entry, name)
    else:
        exists, locate = (lambda file: (entry / file).is_file()), (lambda file: str(entry / file))
    return Product(
        path=entry,
        tile=f"T{tile_key(tile)}",  # as Theia names it
        date=dt.datetime.strptime(fields["date"], "%Y%m%d").date(),
        satellite=fields["satellite"],
        files=_files(entry, name, exists, locate),
        version=(int(fields["processed"]),),
    )


def _files(
    entry: Path, name: str, exists: Callable[[str], bool], locate: Callable[[str], str]
) -> tuple[ProductFile, ...]:
    files = []
    for key in (*LANDSAT8.band_names, _QA):
        file = landsat_band_file(name, key)
        if not exists(file):
            raise InputDataError(f"incomplete Landsat scene: no {file}", entry)
        gain, offset = (1.0, 0.0) if key == _QA else (SR_GAIN, SR_OFFSET)
        files.append(ProductFile(key, locate(file), gain, offset))
    return tuple(files)


def _tar_members(archive: Path, name: str) -> tuple[Callable[[str], bool], Callable[[str], str]]:
    """Tests and GDAL paths of a tar's files, at its root or under ``<name>/``."""
    try:
        with tarfile.open(archive) as opened:
            members = {member.name.removeprefix("./") for member in opened if member.isfile()}
    except tarfile.ReadError:
        raise InputDataError("corrupt or unreadable tar (not a tar archive)", archive) from None
    except (tarfile.TarError, OSError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputDataError(f"corrupt or unreadable tar ({detail})", archive) from None
    prefix = f"{name}/" if any(m.startswith(f"{name}/") for m in members) else ""
    return (lambda file: prefix + file in members), (lambda file: vsi_path(archive, prefix + file))


def _intersects(
    bounds: tuple[float, float, float, float], other: tuple[float, float, float, float]
) -> bool:
    """Whether two ``(left, bottom, right, top)`` boxes share more than an edge."""
    return (
        bounds[0] < other[2]
        and other[0] < bounds[2]
        and bounds[1] < other[3]
        and other[1] < bounds[3]
    )


def _merge_same_day(products: list[Product]) -> list[Product]:
    """One product per date: the first scene by name, the others in its ``same_day``.

    Of two versions of one scene (same path and row), only the latest processing is kept.
    """
    by_date: dict[dt.date, dict[str, Product]] = {}
    for product in sorted(products, key=lambda p: (p.version, p.name)):
        by_date.setdefault(product.date, {})[_path_row(product)] = product  # latest wins
    merged = []
    for date, scenes in sorted(by_date.items()):
        first, *others = sorted(scenes.values(), key=lambda p: p.name)
        if others:
            logger.debug("%s: %s with %s", date, first.name, ", ".join(p.name for p in others))
        merged.append(replace(first, same_day=tuple(others)))
    return merged


def _path_row(product: Product) -> str:
    """``LC08_199025``: the satellite, WRS path and row a scene's name starts with."""
    return "_".join(product.name.split("_")[i] for i in (0, 2))
