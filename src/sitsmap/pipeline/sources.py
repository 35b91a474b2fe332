"""Where a run's images come from: the configured sources, found per tile.

Glue between the configuration and the finders of :mod:`sitsmap.io`: each
source (Theia, Sen2Cor or STAC Sentinel-2; Landsat 8/9) is a sensor
description, a finder and its own temporal settings. The tile's reference
grid is the Sentinel-2 tile's 10 m grid; without Sentinel-2, the first
Landsat scene's extent at ``chain.spatial_resolution``. Products of warped
sensors (Landsat) are kept when they overlap that grid.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from affine import Affine

from sitsmap.config.schema import Config, Landsat8, Sentinel2, UserSensor
from sitsmap.errors import InputDataError
from sitsmap.io.landsat import find_landsat_products
from sitsmap.io.products import find_products
from sitsmap.io.raster import RasterGrid, read_grid, read_raster_info
from sitsmap.io.safe import find_safe_products
from sitsmap.io.stac import find_stac_products
from sitsmap.io.user_rasters import find_user_products
from sitsmap.preprocessing.tile import StaticLayer, TileStack, check_one_grid
from sitsmap.sensors import (
    LANDSAT8,
    SENTINEL2_SEN2COR,
    SENTINEL2_STAC,
    SENTINEL2_THEIA,
    Product,
    SensorDescription,
)
from sitsmap.sensors.user import user_sensor

__all__ = ["ImageSource", "find_tile_stacks", "image_sources", "static_layers"]

Footprint = tuple[object, tuple[float, float, float, float]]
"""A grid's CRS and bounds, for finders that keep only the products over it."""


@dataclass(frozen=True)
class ImageSource:
    """One configured source of images.

    Attributes
    ----------
    key : str
        The configuration key that names it (``chain.s2_s2c_path``), for messages.
    location : Path or str
        Its folder, catalog file or API URL.
    sensor : SensorDescription
        Its bands, mask rule (with the configured classes or bits) and grid rule.
    settings : Sentinel2 or Landsat8
        Its temporal grid and kept bands.
    """

    key: str
    location: Path | str
    sensor: SensorDescription
    settings: Sentinel2 | Landsat8 | UserSensor
    options: tuple[tuple[str, object], ...] = ()

    def find(self, tile: str, footprint: Footprint | None = None) -> list[Product]:
        """The products of ``tile`` in the source's period, one per date, sorted by date.

        ``footprint`` keeps the warped sensors' scenes that overlap the tile's grid.
        """
        return _FINDERS[self.key](self, tile, footprint)


def image_sources(config: Config) -> list[ImageSource]:
    """The run's sources: Sentinel-2 first (if any), then Landsat, then the user's sensor."""
    chain, s2, stac = config.chain, config.sentinel_2, config.stac
    scl = dataclasses.replace(SENTINEL2_SEN2COR.mask, values=s2.scl_invalid_classes)
    sources = []
    if chain.s2_path is not None:
        sources.append(ImageSource("chain.s2_path", chain.s2_path, SENTINEL2_THEIA, s2))
    if chain.s2_s2c_path is not None:
        sensor = dataclasses.replace(SENTINEL2_SEN2COR, mask=scl)
        sources.append(ImageSource("chain.s2_s2c_path", chain.s2_s2c_path, sensor, s2))
    if stac.catalog is not None:
        sensor = dataclasses.replace(SENTINEL2_STAC, mask=scl)
        options = (("collection", stac.collection), ("assets", tuple(stac.assets.items())))
        sources.append(ImageSource("stac.catalog", stac.catalog, sensor, s2, options))
    if chain.l8_path is not None:
        qa = dataclasses.replace(LANDSAT8.mask, values=config.landsat8.qa_invalid_bits)
        sensor = dataclasses.replace(LANDSAT8, mask=qa)
        sources.append(ImageSource("chain.l8_path", chain.l8_path, sensor, config.landsat8))
    user = config.user_sensor
    if user.path is not None:
        sensor = user_sensor(
            user.name, user.bands, user.mask_band is not None, user.scale, user.nodata
        )
        sources.append(ImageSource("user_sensor.path", user.path, sensor, user))
    return sources


def find_tile_stacks(config: Config, tile: str) -> list[TileStack]:
    """Find every source's products of ``tile`` in its date range, all on one grid.

    Raises
    ------
    InputDataError
        As the finders do (no product, incomplete or corrupt product, none in the
        period), or when aligned products do not share one grid.
    """
    grid: RasterGrid | None = None
    stacks = []
    for source in image_sources(config):
        footprint = None if grid is None else _footprint(grid)
        products = source.find(tile, footprint)
        if source.sensor.warped:
            if grid is None:
                _check_tile_folders(source, config.chain.list_tile)
                grid = _grid_of_scene(products[0], config.chain.spatial_resolution)
        else:
            grid = check_one_grid(products, source.sensor)
        stacks.append(TileStack(tile, tuple(products), grid, source.sensor))
    return stacks


def static_layers(config: Config, tile: str) -> list[StaticLayer]:
    """The user's static rasters of ``tile`` (``chain.user_feat_path``, ``userFeat``).

    Every pattern names the first raster under ``<user_feat_path>/<tile><arbo>``
    whose file name contains it; a multi-band raster gives one feature per band.

    Raises
    ------
    InputDataError
        If the tile's folder is missing or a pattern matches no raster.
    """
    root = config.chain.user_feat_path
    if root is None:
        return []
    folder = root / tile
    if not folder.is_dir():
        raise InputDataError(f"chain.user_feat_path: no folder for tile {tile}", folder)
    arbo = config.userFeat.arbo.strip("/") or "*"
    candidates = sorted(p for p in folder.glob(arbo) if p.is_file())
    layers = []
    for pattern in config.userFeat.patterns:
        matches = [p for p in candidates if pattern in p.name]
        if not matches:
            raise InputDataError(f"userFeat: no raster whose name contains {pattern!r}", folder)
        info = read_raster_info(matches[0])
        if info.grid.crs is None:
            raise InputDataError(
                "userFeat: raster has no CRS, it cannot be warped onto the tile", matches[0]
            )
        count = info.count
        stem = f"userfeat_{pattern.lower()}"
        names = (stem,) if count == 1 else tuple(f"{stem}_b{b}" for b in range(1, count + 1))
        layers.append(StaticLayer(names, str(matches[0])))
    return layers


def _theia(source: ImageSource, tile: str, footprint: Footprint | None) -> list[Product]:
    settings = source.settings
    folder = Path(source.location) / tile
    return find_products(folder, tile, settings.start_date, settings.end_date, source.sensor)


def _safe(source: ImageSource, tile: str, footprint: Footprint | None) -> list[Product]:
    settings = source.settings
    return find_safe_products(Path(source.location), tile, settings.start_date, settings.end_date)


def _stac(source: ImageSource, tile: str, footprint: Footprint | None) -> list[Product]:
    settings, options = source.settings, dict(source.options)
    return find_stac_products(
        str(source.location),
        tile,
        settings.start_date,
        settings.end_date,
        collection=options["collection"],
        assets=dict(options["assets"]),
    )


def _landsat(source: ImageSource, tile: str, footprint: Footprint | None) -> list[Product]:
    settings = source.settings
    return find_landsat_products(
        Path(source.location), tile, settings.start_date, settings.end_date, footprint
    )


def _user(source: ImageSource, tile: str, footprint: Footprint | None) -> list[Product]:
    user = source.settings
    return find_user_products(
        Path(source.location),
        tile,
        user.start_date,
        user.end_date,
        user.date_pattern,
        user.bands,
        user.mask_band,
        user.scale,
        footprint,
    )


_FINDERS = {
    "chain.s2_path": _theia,
    "chain.s2_s2c_path": _safe,
    "stac.catalog": _stac,
    "chain.l8_path": _landsat,
    "user_sensor.path": _user,
}


def _check_tile_folders(source: ImageSource, tiles: tuple[str, ...]) -> None:
    """Without Sentinel-2 nothing places a flat folder's scenes on tiles: ask for tile folders.

    Raises
    ------
    InputDataError
        If several tiles are listed and the source has no folder for one of them.
    """
    root = Path(source.location)
    missing = [tile for tile in tiles if not (root / tile).is_dir()]
    if len(tiles) > 1 and missing:
        raise InputDataError(
            f"{source.key}: without Sentinel-2 each tile's scenes must be in a folder named "
            f"after it (none for {', '.join(missing)}): the tile grids come from them",
            root,
        )


def _footprint(grid: RasterGrid) -> Footprint:
    left, top = grid.transform.c, grid.transform.f
    right = left + grid.width * grid.transform.a
    bottom = top + grid.height * grid.transform.e
    return grid.crs, (left, bottom, right, top)


def _grid_of_scene(product: Product, resolution: float) -> RasterGrid:
    """A tile's grid without Sentinel-2: the first scene's extent at ``resolution``, its CRS."""
    scene = read_grid(product.files[0].path)
    left, bottom, right, top = _footprint(scene)[1]
    left, top = math.floor(left / resolution) * resolution, math.ceil(top / resolution) * resolution
    width = math.ceil((right - left) / resolution)
    height = math.ceil((top - bottom) / resolution)
    return RasterGrid(width, height, Affine(resolution, 0, left, 0, -resolution, top), scene.crs)
