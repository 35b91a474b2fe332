"""The synthetic world in other product layouts: Theia zips, Sen2Cor SAFE, STAC and Landsat 8.

Every layout is converted from the simulated Theia products, so all layouts of
one seed show the same ground, clouds and defects:

``theia-zip``
    ``S2/<tile>/<product>.zip`` holding ``<product>/...``, as Theia delivers it.
``safe`` and ``safe-zip``
    Sen2Cor L2A, processing baseline 05.00 by default, as the Copernicus Data
    Space delivers it: ``S2/S2A_MSIL2A_<t>_N0500_R051_<tile>_<t>.SAFE/`` (or
    ``S2/<that name without .SAFE>.zip``) with ``MTD_MSIL2A.xml``, ``MTD_TL.xml``
    and lossless JPEG 2000 bands ``IMG_DATA/R10m|R20m/<tile>_<t>_<band>_<res>m.jp2``:
    uint16, DN = reflectance x 10000 + 1000 (baseline 04.00 and later; before,
    DN = reflectance x 10000), DN 0 = no data; the 20 m scene classification
    ``SCL_20m.jp2`` comes from the Theia 20 m masks (:func:`scene_classification`).
``stac``
    A static STAC catalog shaped like Earth Search's ``sentinel-2-l2a``:
    ``stac/catalog.json``, ``stac/sentinel-2-l2a/collection.json`` and one
    folder per item, ``S2A_31TCJ_<YYYYMMDD>_0_L2A/``, holding the item JSON and
    COGs ``B02.tif`` ... ``B12.tif`` and ``SCL.tif`` encoded as the SAFE bands.
``landsat``
    Landsat 8 Collection 2 Level-2 (L2SP) scenes made from every third
    Sentinel-2 product of each tile: ``L8/LC08_L2SP_<PPPRRR>_<date>_<date>_02_T1/``
    with ``SR_B2`` ... ``SR_B7`` (from B2, B3, B4, B8, B11, B12), ``QA_PIXEL`` and
    the ``MTL.txt`` / ``MTL.json`` metadata, at 30 m in UTM zone 30 (the tiles
    are in zone 31): DN = (reflectance + 0.2) / 0.0000275, 0 = fill
    (:func:`landsat_dn`, :func:`landsat_qa`).

The arrays are converted by the pure functions here; file names and metadata
documents come from :mod:`sitsmap.io.synth_layouts`, and the files are written
by :mod:`sitsmap.io.synth_io`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_bounds

from sitsmap.console import progress
from sitsmap.errors import ConfigError
from sitsmap.io.jsonfile import write_json
from sitsmap.io.raster import RasterGrid, read_grid, read_raster
from sitsmap.io.synth_io import ProductFolderWriter, remove_stale_entries, zip_folder
from sitsmap.io.synth_layouts import (
    COLLECTION_ID,
    DEFAULT_BASELINE,
    LANDSAT_NAME,
    QI_CLASSES,
    SAFE_IMAGES,
    SAFE_NAME,
    STAC_BANDS,
    STAC_ITEM,
    STAC_OFFSET,
    Sun,
    boa_offset,
    granule_name,
    landsat_metadata,
    mtl_text,
    safe_band,
    safe_image,
    safe_name,
    safe_product_metadata,
    safe_tile_metadata,
    stac_catalog,
    stac_collection,
    stac_item,
    stac_item_id,
    theia_band,
)
from sitsmap.io.synth_layouts import landsat_product_id as _landsat_name
from sitsmap.sensors import SENTINEL2_THEIA
from sitsmap.synth.atmosphere import CIRRUS_BITS, CLOUD_BITS, SHADOW_BITS, SUN_AZIMUTH_DEG
from sitsmap.synth.layout import Acquisition, parse_tile
from sitsmap.synth.scene import block_mean

logger = logging.getLogger(__name__)
T = TypeVar("T")

# -- layouts --------------------------------------------------------------------------------

LAYOUTS = ("theia", "theia-zip", "safe", "safe-zip", "stac", "landsat")
"""Every layout :func:`sitsmap.synth.generate_world` writes, in canonical order."""
SENTINEL2_LAYOUTS = LAYOUTS[:5]
"""The Sentinel-2 layouts: a world holds at most one."""
LANDSAT_EVERY = 3
"""One Landsat scene per this many Sentinel-2 products of a tile."""
CONVERT_THREADS = 4
"""Products converted at once (GDAL encodes and warps outside the GIL) ..."""
SERIAL_ABOVE_PIXELS = 2048 * 2048
"""... unless tiles are larger than this: a product is converted whole, in memory."""


def parse_layouts(values: str | Iterable[str]) -> tuple[str, ...]:
    """Return the layouts named by ``values`` (names or comma-separated lists), in canonical order.

    Raises
    ------
    ConfigError
        On an unknown name, no name at all, or more than one Sentinel-2 layout.
    """
    items = [values] if isinstance(values, str) else list(values)
    names = {part.strip().lower() for item in items for part in item.split(",") if part.strip()}
    if not names:
        raise ConfigError(f"give at least one layout ({', '.join(LAYOUTS)})")
    unknown = sorted(names - set(LAYOUTS))
    if unknown:
        raise ConfigError(
            f"unknown layout(s) {', '.join(unknown)}: choose from {', '.join(LAYOUTS)}"
        )
    sentinel2 = [name for name in SENTINEL2_LAYOUTS if name in names]
    if len(sentinel2) > 1:
        raise ConfigError(
            f"layouts {' and '.join(sentinel2)} cannot be written together: give at most one "
            f"Sentinel-2 layout ({', '.join(SENTINEL2_LAYOUTS)}), with or without landsat"
        )
    return tuple(name for name in LAYOUTS if name in names)


def landsat_products(plan: Sequence[Acquisition]) -> list[Acquisition]:
    """The Sentinel-2 products of a tile that a Landsat scene is made from (every third)."""
    return list(plan[::LANDSAT_EVERY])


# -- Landsat scenes -------------------------------------------------------------------------


def wrs_path_row(tile: str) -> tuple[int, int]:
    """The WRS-2 path and row of a tile's scenes: 199/030 for T31TCJ, one per tile.

    Paths grow westwards and rows southwards, as on the real grid.
    """
    position = parse_tile(tile)
    return 199 - position.column, 30 - position.row


def landsat_product_id(acquisition: Acquisition) -> str:
    """``LC08_L2SP_<PPPRRR>_<date>_<date>_02_T1`` of the scene made from ``acquisition``."""
    return _landsat_name(acquisition, *wrs_path_row(acquisition.tile))


# -- Sentinel-2 encodings -------------------------------------------------------------------

THEIA_NODATA = -10000
SCL_NODATA, SCL_SATURATED, SCL_CLOUD_SHADOW = 0, 1, 3
SCL_VEGETATION, SCL_NOT_VEGETATED, SCL_WATER = 4, 5, 6
SCL_CLOUD_HIGH, SCL_THIN_CIRRUS = 9, 10
_CLOUD_ONLY = CLOUD_BITS & ~SHADOW_BITS & ~CIRRUS_BITS
_SHADOW_ONLY = SHADOW_BITS & ~CLOUD_BITS & ~CIRRUS_BITS
_CIRRUS_ONLY = CIRRUS_BITS & ~CLOUD_BITS & ~SHADOW_BITS
VEGETATION_NDVI = 0.3
"""Clear pixels with a higher NDVI are vegetation (SCL 4); water (6) has a negative NDVI."""


def l2a_dn(fre: np.ndarray, offset: int = 1000) -> np.ndarray:
    """Sen2Cor DNs of a Theia band: reflectance x 10000 + ``offset`` as uint16, 0 = no data."""
    out = np.zeros(fre.shape, dtype=np.uint16)
    valid = fre != THEIA_NODATA
    out[valid] = np.clip(fre[valid].astype(np.int32) + offset, 1, 65535)
    return out


def scene_classification(
    clm: np.ndarray, edg: np.ndarray, sat: np.ndarray, red: np.ndarray, nir: np.ndarray
) -> np.ndarray:
    """Sen2Cor's scene classification (uint8) from Theia masks and bands of one grid.

    By priority: no data (EDG) 0, saturated (SAT) 1, cloud (CLM cloud bits) 9,
    thin cirrus (CLM cirrus bits) 10, cloud shadow (CLM shadow bits) 3; clear
    pixels are water 6 (NDVI < 0), not vegetated 5 (NDVI < 0.3) or vegetation 4.
    ``red`` and ``nir`` are reflectances on the masks' grid, in any unit.
    """
    scl = _surface_class(red.astype(np.float32), nir.astype(np.float32))
    scl[(clm & _SHADOW_ONLY) > 0] = SCL_CLOUD_SHADOW
    scl[(clm & _CIRRUS_ONLY) > 0] = SCL_THIN_CIRRUS
    scl[(clm & _CLOUD_ONLY) > 0] = SCL_CLOUD_HIGH
    scl[sat > 0] = SCL_SATURATED
    scl[edg > 0] = SCL_NODATA
    return scl


def _surface_class(red: np.ndarray, nir: np.ndarray) -> np.ndarray:
    total = red + nir
    ndvi = np.divide(nir - red, total, out=np.zeros_like(total), where=total > 0)
    scl = np.full(ndvi.shape, SCL_VEGETATION, dtype=np.uint8)
    scl[ndvi < VEGETATION_NDVI] = SCL_NOT_VEGETATED
    scl[ndvi < 0] = SCL_WATER
    return scl


def scl_percentages(scl: np.ndarray) -> dict[str, float]:
    """Sen2Cor's image-content percentages of a scene classification.

    Keys are its metadata names without ``_PERCENTAGE`` (``NODATA_PIXEL``,
    ``HIGH_PROBA_CLOUDS``…). ``NODATA_PIXEL`` is over every pixel; the classes
    and ``CLOUDY_PIXEL`` (classes 8, 9 and 10) are over the valid ones.
    """
    counts = np.bincount(scl.ravel(), minlength=len(QI_CLASSES))[: len(QI_CLASSES)]
    valid = int(counts[1:].sum())
    shares = {QI_CLASSES[0]: round(100.0 * int(counts[0]) / max(1, scl.size), 6)}
    for name, count in zip(QI_CLASSES[1:], counts[1:], strict=True):
        shares[name] = round(100.0 * int(count) / valid, 6) if valid else 0.0
    cloudy = int(counts[8:11].sum())
    shares["CLOUDY_PIXEL"] = round(100.0 * cloudy / valid, 6) if valid else 0.0
    return shares


# -- Landsat encodings ----------------------------------------------------------------------

LANDSAT_CRS = CRS.from_epsg(32630)
LANDSAT_PIXEL = 30.0
LANDSAT_MARGIN = 2
"""Landsat pixels around the tile: they lie outside it, so they are fill."""
LANDSAT_BANDS = (
    ("B2", "B2"),
    ("B3", "B3"),
    ("B4", "B4"),
    ("B5", "B8"),
    ("B6", "B11"),
    ("B7", "B12"),
)
"""Landsat band and the Sentinel-2 band it is made from."""
SR_MULT, SR_ADD = 2.75e-5, -0.2
QA_FILL = 1
QA_CLEAR = 21824
"""Clear land: bit 6 (clear) and low confidence of cloud, shadow, snow and cirrus."""
_QA_CLOUD_SET, _QA_CLOUD_UNSET = (1 << 3) | (1 << 9), 1 << 6
_QA_SHADOW = (1 << 4) | (1 << 11)
_QA_CIRRUS = (1 << 2) | (1 << 15)


def landsat_dn(reflectance: np.ndarray) -> np.ndarray:
    """Collection 2 surface reflectance DNs: round((reflectance + 0.2) / 0.0000275), NaN → 0."""
    out = np.zeros(reflectance.shape, dtype=np.uint16)
    valid = np.isfinite(reflectance)
    out[valid] = np.clip(np.rint((reflectance[valid] - SR_ADD) / SR_MULT), 1, 65535)
    return out


def landsat_qa(
    fill: np.ndarray, cloud: np.ndarray, shadow: np.ndarray, cirrus: np.ndarray
) -> np.ndarray:
    """Collection 2 QA_PIXEL (uint16) from boolean flags.

    Clear land is 21824; a cloud sets bit 3 and a high cloud confidence and
    clears bit 6 (22280), a shadow sets bit 4 and a high shadow confidence
    (23888; not under a cloud, which wins as in Fmask), cirrus bit 2 and a high
    cirrus confidence (54596; 55052 with a cloud); fill is 1 whatever the other flags.
    """
    qa = np.full(fill.shape, QA_CLEAR, dtype=np.uint16)
    qa[cloud] = (qa[cloud] | _QA_CLOUD_SET) & ~np.uint16(_QA_CLOUD_UNSET)
    qa[shadow & ~cloud] |= np.uint16(_QA_SHADOW)
    qa[cirrus] |= np.uint16(_QA_CIRRUS)
    qa[fill] = QA_FILL
    return qa


def landsat_cloud_cover(qa: np.ndarray) -> float:
    """Percentage of the non-fill pixels of a QA_PIXEL with the cloud bit (3) set."""
    valid = qa != QA_FILL
    cloudy = (qa & (1 << 3)) > 0
    return 100.0 * float(cloudy[valid].sum()) / max(1, int(valid.sum()))


def landsat_grid(tile: RasterGrid) -> RasterGrid:
    """The 30 m grid (EPSG:32630) of a tile's Landsat scenes: the tile plus a margin.

    Pixel edges lie on multiples of 30 m, as on the real scenes.
    """
    left, bottom, right, top = transform_bounds(tile.crs, LANDSAT_CRS, *tile.bounds)
    margin = LANDSAT_MARGIN * LANDSAT_PIXEL
    left = math.floor(left / LANDSAT_PIXEL) * LANDSAT_PIXEL - margin
    bottom = math.floor(bottom / LANDSAT_PIXEL) * LANDSAT_PIXEL - margin
    right = math.ceil(right / LANDSAT_PIXEL) * LANDSAT_PIXEL + margin
    top = math.ceil(top / LANDSAT_PIXEL) * LANDSAT_PIXEL + margin
    width, height = round((right - left) / LANDSAT_PIXEL), round((top - bottom) / LANDSAT_PIXEL)
    return RasterGrid(
        width, height, Affine(LANDSAT_PIXEL, 0.0, left, 0.0, -LANDSAT_PIXEL, top), LANDSAT_CRS
    )


def warp_mean(values: np.ndarray, source: RasterGrid, target: RasterGrid) -> np.ndarray:
    """Average of the valid (finite) ``values`` under each ``target`` pixel; NaN where none."""
    out = np.full((target.height, target.width), np.nan, dtype=np.float32)
    reproject(
        values.astype(np.float32),
        out,
        src_transform=source.transform,
        src_crs=source.crs,
        src_nodata=np.nan,
        dst_transform=target.transform,
        dst_crs=target.crs,
        dst_nodata=np.nan,
        resampling=Resampling.average,
    )
    return out


def warp_any(flag: np.ndarray, source: RasterGrid, target: RasterGrid) -> np.ndarray:
    """Whether any flagged ``source`` pixel lies under each ``target`` pixel."""
    out = np.zeros((target.height, target.width), dtype=np.uint8)
    reproject(
        flag.astype(np.uint8),
        out,
        src_transform=source.transform,
        src_crs=source.crs,
        dst_transform=target.transform,
        dst_crs=target.crs,
        resampling=Resampling.max,
    )
    return out > 0


def theia_reflectance(fre: np.ndarray) -> np.ndarray:
    """Reflectance (float32) of a Theia band, NaN where no data."""
    out = fre.astype(np.float32) / SENTINEL2_THEIA.reflectance_scale
    out[fre == THEIA_NODATA] = np.nan
    return out


# -- sun ------------------------------------------------------------------------------------


def synthetic_sun(date: dt.date) -> Sun:
    """The sun of the synthetic world on ``date``: the angles its cloud shadows follow.

    The elevation is the formula of :func:`sitsmap.synth.atmosphere.shadow_offset`.
    """
    doy = date.timetuple().tm_yday
    elevation = 43.0 + 22.0 * math.cos(2.0 * math.pi * (doy - 172.0) / 365.0)
    return Sun(SUN_AZIMUTH_DEG, elevation)


# -- conversions of Theia products ----------------------------------------------------------


def _band(product: Path, band: str) -> np.ndarray:
    return read_raster(SENTINEL2_THEIA.band_path(product, band), bands=1)


def _mask(product: Path, mask: str, resolution_index: int) -> np.ndarray:
    return read_raster(SENTINEL2_THEIA.mask_path(product, mask, resolution_index), bands=1)


def _grids(product: Path) -> dict[int, RasterGrid]:
    """The 10 m and 20 m grids of a Theia product."""
    return {
        resolution: read_grid(SENTINEL2_THEIA.band_path(product, band))
        for resolution, band in ((10, "B2"), (20, "B5"))
    }


def product_scl(product: Path) -> np.ndarray:
    """The 20 m scene classification of a Theia product folder (:func:`scene_classification`)."""
    clm, edg, sat = (_mask(product, name, 2) for name in ("CLM", "EDG", "SAT"))
    red = block_mean(_band(product, "B4").astype(np.float32))
    return scene_classification(clm, edg, sat, red, _band(product, "B8A"))


def write_theia_zip(product: Path, tile_dir: Path) -> Path:
    """Pack a Theia product folder as ``tile_dir/<product>.zip`` holding ``<product>/...``."""
    destination = tile_dir / f"{product.name}.zip"
    zip_folder(product, destination, product.name)
    return destination


def write_safe_product(
    product: Path,
    acquisition: Acquisition,
    s2_dir: Path,
    zipped: bool = False,
    baseline: str = DEFAULT_BASELINE,
) -> Path:
    """Write a Theia product as a Sen2Cor L2A SAFE folder (or zip) in ``s2_dir``.

    Parameters
    ----------
    product : Path
        The Theia product folder.
    acquisition : Acquisition
        What it was simulated as.
    s2_dir : Path
        Where the ``.SAFE`` folder (or the ``.zip`` holding it) goes.
    zipped : bool
        Write ``<name>.zip`` holding ``<name>.SAFE/``, as the Copernicus Data Space delivers.
    baseline : str
        Processing baseline: ``05.00`` adds the BOA offset 1000 to the DNs and
        lists it in ``MTD_MSIL2A.xml``; ``02.14`` (any before ``04.00``) has none.

    Returns
    -------
    Path
        The folder or zip written.
    """
    name = safe_name(acquisition, baseline)
    destination = s2_dir / (f"{name.removesuffix('.SAFE')}.zip" if zipped else name)
    grids, offset = _grids(product), boa_offset(baseline)
    scl = product_scl(product)
    percentages, sun = scl_percentages(scl), synthetic_sun(acquisition.date)
    with ProductFolderWriter(destination, name if zipped else None) as writer:
        for band, resolution in SAFE_IMAGES[:-1]:
            dn = l2a_dn(_band(product, theia_band(band)), offset)
            writer.raster(
                f"{safe_image(acquisition, band, resolution)}.jp2", dn, grids[resolution], "jp2"
            )
        writer.raster(f"{safe_image(acquisition, 'SCL', 20)}.jp2", scl, grids[20], "jp2")
        writer.text(
            "MTD_MSIL2A.xml", safe_product_metadata(acquisition, baseline, grids[10], percentages)
        )
        tile_metadata = safe_tile_metadata(acquisition, baseline, grids, percentages, sun)
        writer.text(f"GRANULE/{granule_name(acquisition)}/MTD_TL.xml", tile_metadata)
    return destination


def write_stac_item(product: Path, acquisition: Acquisition, collection_dir: Path) -> dict:
    """Write a Theia product as a STAC item folder of COGs in ``collection_dir``; return the item.

    The bands are encoded as baseline 05.00 SAFE bands, the SCL as in :func:`write_safe_product`.
    """
    grids = _grids(product)
    scl = product_scl(product)
    item = stac_item(acquisition, grids, scl_percentages(scl), synthetic_sun(acquisition.date))
    with ProductFolderWriter(collection_dir / item["id"]) as writer:
        for _, band, *_ in STAC_BANDS:
            dn = l2a_dn(_band(product, band), STAC_OFFSET)
            resolution = SENTINEL2_THEIA.band(band).resolution
            writer.raster(f"{safe_band(band)}.tif", dn, grids[resolution], "cog", nodata=0)
        writer.raster("SCL.tif", scl, grids[20], "cog", nodata=0)
        writer.text(f"{item['id']}.json", json.dumps(item, indent=2) + "\n")
    return item


def write_stac_catalog(stac_dir: Path, items: Sequence[dict]) -> None:
    """Write ``catalog.json`` and ``sentinel-2-l2a/collection.json`` listing ``items``."""
    write_json(stac_dir / COLLECTION_ID / "collection.json", stac_collection(items))
    write_json(stac_dir / "catalog.json", stac_catalog())


def landsat_arrays(
    bands: Mapping[str, tuple[np.ndarray, RasterGrid]],
    clm: np.ndarray,
    edg: np.ndarray,
    grid: RasterGrid,
    target: RasterGrid,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The SR bands and QA_PIXEL of a Landsat scene on ``target`` from a Theia product.

    Parameters
    ----------
    bands : mapping of str to (numpy.ndarray, RasterGrid)
        Landsat band name → the Theia int16 band it is made from, and its grid.
    clm, edg : numpy.ndarray
        The Theia 10 m cloud and edge masks, on ``grid``.
    grid : RasterGrid
        The tile's 10 m grid.
    target : RasterGrid
        The scene's grid (:func:`landsat_grid`).

    Returns
    -------
    tuple
        ``{band: uint16 DNs}`` and the uint16 QA_PIXEL. Reflectances are the
        averages of the valid 10 m or 20 m pixels under each 30 m pixel; a 30 m
        pixel is cloud, shadow or cirrus if any 10 m pixel under it is, and
        fill outside the tile or if any pixel under it has no data.
    """
    fill = ~warp_any(np.ones(edg.shape, bool), grid, target) | warp_any(edg > 0, grid, target)
    reflectance = {}
    for name, (fre, source) in bands.items():
        reflectance[name] = warp_mean(theia_reflectance(fre), source, target)
        fill |= np.isnan(reflectance[name])
    flags = (
        warp_any((clm & bits) > 0, grid, target)
        for bits in (_CLOUD_ONLY, _SHADOW_ONLY, _CIRRUS_ONLY)
    )
    qa = landsat_qa(fill, *flags)
    dns = {name: landsat_dn(np.where(fill, np.nan, values)) for name, values in reflectance.items()}
    return dns, qa


def write_landsat_scene(product: Path, acquisition: Acquisition, l8_dir: Path) -> Path:
    """Write a Theia product as a Landsat 8 L2SP scene folder in ``l8_dir`` (EPSG:32630, 30 m)."""
    grids = _grids(product)
    target = landsat_grid(grids[10])
    sources = {
        landsat: (_band(product, band), grids[SENTINEL2_THEIA.band(band).resolution])
        for landsat, band in LANDSAT_BANDS
    }
    dns, qa = landsat_arrays(
        sources, _mask(product, "CLM", 1), _mask(product, "EDG", 1), grids[10], target
    )
    name = landsat_product_id(acquisition)
    cloud_cover = landsat_cloud_cover(qa)
    metadata = landsat_metadata(acquisition, wrs_path_row(acquisition.tile), target, cloud_cover)
    with ProductFolderWriter(l8_dir / name) as writer:
        for band, dn in dns.items():
            writer.raster(f"{name}_SR_{band}.TIF", dn, target, "cog", nodata=0)
        writer.raster(f"{name}_QA_PIXEL.TIF", qa, target, "cog", nodata=QA_FILL)
        writer.text(f"{name}_MTL.txt", mtl_text(metadata))
        writer.text(f"{name}_MTL.json", json.dumps(metadata, indent=2))
    return l8_dir / name


# -- every product of a world ---------------------------------------------------------------


def products_of(layout: str, plans: Mapping[str, Sequence[Acquisition]]) -> list[Acquisition]:
    """The products a layout holds: every one, or for ``landsat`` every third of each tile."""
    if layout == "landsat":
        return [a for plan in plans.values() for a in landsat_products(plan)]
    return [a for plan in plans.values() for a in plan]


def write_layouts(
    theia_root: Path,
    out_dir: Path,
    plans: Mapping[str, Sequence[Acquisition]],
    layouts: Sequence[str],
    baseline: str = DEFAULT_BASELINE,
) -> dict[str, int]:
    """Convert the Theia products under ``theia_root/S2/<tile>/`` into ``layouts`` in ``out_dir``.

    Products of an earlier world in the same layouts are removed first (only
    files and folders named like products are touched); ``theia`` itself
    needs no conversion.

    Parameters
    ----------
    theia_root : Path
        Holds ``S2/<tile>/<product>/`` for every product the layouts need.
    out_dir : Path
        The world's folder.
    plans : mapping of str to sequence of Acquisition
        Every Sentinel-2 acquisition of each tile.
    layouts : sequence of str
        Layouts to write (see :func:`parse_layouts`).
    baseline : str
        Processing baseline of the SAFE products.

    Returns
    -------
    dict of str to int
        The number of products written in each layout.
    """
    sentinel2 = [layout for layout in layouts if layout in SENTINEL2_LAYOUTS]
    if sentinel2:
        _clear_sentinel2(out_dir, plans, sentinel2[0], baseline)
    counts = {}
    for layout in layouts:
        todo = products_of(layout, plans)
        counts[layout] = len(todo)
        if layout != "theia":
            _CONVERTERS[layout](theia_root, out_dir, todo, baseline)
    return counts


def _theia_product(theia_root: Path, acquisition: Acquisition) -> Path:
    return theia_root / "S2" / acquisition.tile / acquisition.name


def _is_theia(name: str) -> bool:
    return SENTINEL2_THEIA.parse_product_name(name.removesuffix(".zip")) is not None


def _clear_sentinel2(
    out_dir: Path, plans: Mapping[str, Sequence[Acquisition]], layout: str, baseline: str
) -> None:
    """Remove the Sentinel-2 products of ``out_dir/S2`` (any layout) that the world lacks."""
    suffix = {"theia": "", "theia-zip": ".zip"}
    for tile, plan in plans.items():
        keep = {f"{a.name}{suffix[layout]}" for a in plan} if layout in suffix else set()
        removed = remove_stale_entries(out_dir / "S2" / tile, keep, _is_theia)
        if removed:
            logger.info("%s: removed %d product(s) of an earlier world", tile, removed)
    keep = set()
    if layout in ("safe", "safe-zip"):
        names = (safe_name(a, baseline) for plan in plans.values() for a in plan)
        keep = {n if layout == "safe" else f"{n.removesuffix('.SAFE')}.zip" for n in names}
    removed = remove_stale_entries(out_dir / "S2", keep, lambda n: bool(SAFE_NAME.match(n)))
    if removed:
        logger.info("S2: removed %d SAFE product(s) of an earlier world", removed)


def _each(
    theia_root: Path,
    todo: list[Acquisition],
    label: str,
    convert: Callable[[Acquisition], T],
    parallel: bool = True,
) -> list[T]:
    """``convert`` every acquisition, several at once for small tiles; results in order.

    ``parallel=False`` for conversions that warp arrays: rasterio's warping of
    in-memory arrays on several threads at once raised spurious "not
    georeferenced" warnings, so it is not trusted there.
    """
    if not todo:
        return []
    grid = read_grid(SENTINEL2_THEIA.band_path(_theia_product(theia_root, todo[0]), "B2"))
    small = grid.width * grid.height <= SERIAL_ABOVE_PIXELS
    threads = CONVERT_THREADS if parallel and small else 1
    with ThreadPoolExecutor(threads, thread_name_prefix="synth-convert") as pool:
        return list(progress(pool.map(convert, todo), label, total=len(todo)))


def _convert_theia_zip(theia_root: Path, out_dir: Path, todo: list[Acquisition], _: str) -> None:
    def convert(acquisition: Acquisition) -> Path:
        product = _theia_product(theia_root, acquisition)
        return write_theia_zip(product, out_dir / "S2" / acquisition.tile)

    _each(theia_root, todo, "theia-zip products", convert)


def _convert_safe(
    theia_root: Path, out_dir: Path, todo: list[Acquisition], baseline: str, zipped: bool = False
) -> None:
    def convert(acquisition: Acquisition) -> Path:
        product = _theia_product(theia_root, acquisition)
        return write_safe_product(product, acquisition, out_dir / "S2", zipped, baseline)

    _each(theia_root, todo, "safe-zip products" if zipped else "safe products", convert)


def _convert_stac(theia_root: Path, out_dir: Path, todo: list[Acquisition], _: str) -> None:
    collection = out_dir / "stac" / COLLECTION_ID
    keep = {stac_item_id(a) for a in todo}
    remove_stale_entries(collection, keep, lambda name: bool(STAC_ITEM.match(name)))

    def convert(acquisition: Acquisition) -> dict:
        return write_stac_item(_theia_product(theia_root, acquisition), acquisition, collection)

    write_stac_catalog(out_dir / "stac", _each(theia_root, todo, "stac items", convert))


def _convert_landsat(theia_root: Path, out_dir: Path, todo: list[Acquisition], _: str) -> None:
    l8_dir = out_dir / "L8"
    keep = {landsat_product_id(a) for a in todo}
    remove_stale_entries(l8_dir, keep, lambda name: bool(LANDSAT_NAME.match(name)))

    def convert(acquisition: Acquisition) -> Path:
        return write_landsat_scene(_theia_product(theia_root, acquisition), acquisition, l8_dir)

    _each(theia_root, todo, "landsat scenes", convert, parallel=False)


_CONVERTERS = {
    "theia-zip": _convert_theia_zip,
    "safe": _convert_safe,
    "safe-zip": partial(_convert_safe, zipped=True),
    "stac": _convert_stac,
    "landsat": _convert_landsat,
}
