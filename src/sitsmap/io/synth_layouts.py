"""Names and metadata of the product layouts the synthetic world is written in.

What the files of each layout are called and what their metadata say, copied
from genuine products (element names, namespaces, field order and formats):

- Sen2Cor L2A SAFE (:func:`safe_name`, :func:`safe_image`,
  :func:`safe_product_metadata` for ``MTD_MSIL2A.xml``,
  :func:`safe_tile_metadata` for ``GRANULE/*/MTD_TL.xml``);
- STAC items, collection and catalog shaped like Earth Search's
  ``sentinel-2-l2a`` (:func:`stac_item`, :func:`stac_collection`,
  :func:`stac_catalog`);
- Landsat Collection 2 Level-2 ``MTL.json`` and ``MTL.txt``
  (:func:`landsat_metadata`, :func:`mtl_text`).

Every function is pure: the documents are returned as text or dictionaries,
and written by :mod:`sitsmap.io.synth_io`. Acquisitions are anything with a
``tile``, ``satellite``, ``date`` and ``time`` (:class:`Acquired`).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from rasterio.warp import transform, transform_bounds

from sitsmap.errors import ConfigError
from sitsmap.io.raster import RasterGrid
from sitsmap.sensors import SENTINEL2_THEIA

DEFAULT_BASELINE = "05.00"
"""Processing baseline of the SAFE products unless told otherwise."""
LANDSAT_SR_BANDS = ("B2", "B3", "B4", "B5", "B6", "B7")
"""The surface reflectance bands of a Landsat 8 L2SP scene."""


class Acquired(Protocol):
    """What names and metadata need of an acquisition: tile, satellite, date and UTC time.

    :class:`sitsmap.synth.layout.Acquisition` is one.
    """

    @property
    def tile(self) -> str: ...  # noqa: D102

    @property
    def satellite(self) -> str: ...  # noqa: D102

    @property
    def date(self) -> dt.date: ...  # noqa: D102

    @property
    def time(self) -> dt.time: ...  # noqa: D102


@dataclass(frozen=True)
class Sun:
    """Mean sun angles of a product (degrees)."""

    azimuth: float
    elevation: float


# -- names ----------------------------------------------------------------------------------

SAFE_IMAGES = (
    ("B02", 10),
    ("B03", 10),
    ("B04", 10),
    ("B08", 10),
    ("B05", 20),
    ("B06", 20),
    ("B07", 20),
    ("B8A", 20),
    ("B11", 20),
    ("B12", 20),
    ("SCL", 20),
)
"""The images of a SAFE product in ``MTD_MSIL2A.xml`` order: file band and resolution."""
RELATIVE_ORBIT = 51
ABSOLUTE_ORBIT = "A000000"
SAFE_NAME = re.compile(
    r"^S2[ABCD]_MSIL2A_\d{8}T\d{6}_N\d{4}_R\d{3}_T\d{2}[A-Z]{3}_\d{8}T\d{6}(\.SAFE|\.zip)$"
)
STAC_ITEM = re.compile(r"^S2[ABCD]_\d{2}[A-Z]{3}_\d{8}_\d+_L2A$")
LANDSAT_NAME = re.compile(r"^L[CO]0[89]_L2SP_\d{6}_\d{8}_\d{8}_\d{2}_T[12]$")


def safe_band(band: str) -> str:
    """Two-digit band name of SAFE and STAC files: ``B2`` → ``B02``; ``B8A``, ``SCL`` stay."""
    digits = band[1:]
    return f"B{int(digits):02d}" if band.startswith("B") and digits.isdigit() else band


def theia_band(band: str) -> str:
    """Theia band name of a SAFE file band: ``B02`` → ``B2``."""
    digits = band[1:]
    return f"B{int(digits)}" if digits.isdigit() else band


def _sensing(acquisition: Acquired) -> str:
    return f"{acquisition.date:%Y%m%d}T{acquisition.time:%H%M%S}"


def _check_baseline(baseline: str) -> str:
    if not re.fullmatch(r"\d{2}\.\d{2}", baseline):
        raise ConfigError(f"processing baseline must look like 05.00 (got {baseline!r})")
    return baseline


def safe_name(acquisition: Acquired, baseline: str = DEFAULT_BASELINE) -> str:
    """``S2A_MSIL2A_<t>_N0500_R051_<tile>_<t>.SAFE`` (the discriminator is the sensing time)."""
    code = _check_baseline(baseline).replace(".", "")
    sensing = _sensing(acquisition)
    return (
        f"S2{acquisition.satellite}_MSIL2A_{sensing}_N{code}_R{RELATIVE_ORBIT:03d}"
        f"_{acquisition.tile}_{sensing}.SAFE"
    )


def granule_name(acquisition: Acquired) -> str:
    """The granule folder: ``L2A_<tile>_A000000_<t>``."""
    return f"L2A_{acquisition.tile}_{ABSOLUTE_ORBIT}_{_sensing(acquisition)}"


def safe_image(acquisition: Acquired, band: str, resolution: int) -> str:
    """Path of a SAFE image in the product, without extension, e.g. ``GRANULE/…/R10m/…_B02_10m``."""
    return (
        f"GRANULE/{granule_name(acquisition)}/IMG_DATA/R{resolution}m/"
        f"{acquisition.tile}_{_sensing(acquisition)}_{band}_{resolution}m"
    )


def stac_item_id(acquisition: Acquired) -> str:
    """Earth Search's item id: ``S2A_31TCJ_20180415_0_L2A``."""
    return f"S2{acquisition.satellite}_{acquisition.tile[1:]}_{acquisition.date:%Y%m%d}_0_L2A"


def landsat_product_id(acquisition: Acquired, path: int, row: int) -> str:
    """``LC08_L2SP_<PPPRRR>_<date>_<date>_02_T1`` (processed on the acquisition date)."""
    day = f"{acquisition.date:%Y%m%d}"
    return f"LC08_L2SP_{path:03d}{row:03d}_{day}_{day}_02_T1"


SCL_CLASSES = (
    "NODATA",
    "SATURATED_DEFECTIVE",
    "DARK_FEATURE_SHADOW",
    "CLOUD_SHADOW",
    "VEGETATION",
    "NOT_VEGETATED",
    "WATER",
    "UNCLASSIFIED",
    "CLOUD_MEDIUM_PROBA",
    "CLOUD_HIGH_PROBA",
    "THIN_CIRRUS",
    "SNOW_ICE",
)
"""Sen2Cor's scene classes 0 to 11."""
QI_CLASSES = (
    "NODATA_PIXEL",
    "SATURATED_DEFECTIVE_PIXEL",
    "DARK_FEATURES",
    "CLOUD_SHADOW",
    "VEGETATION",
    "NOT_VEGETATED",
    "WATER",
    "UNCLASSIFIED",
    "MEDIUM_PROBA_CLOUDS",
    "HIGH_PROBA_CLOUDS",
    "THIN_CIRRUS",
    "SNOW_ICE",
)
"""Sen2Cor's image-content names of the scene classes 0 to 11."""


def boa_offset(baseline: str) -> int:
    """What SAFE bands add to reflectance x 10000: 1000 from baseline 04.00 on, else 0."""
    return 1000 if _check_baseline(baseline) >= "04.00" else 0


# -- geometry and sun -----------------------------------------------------------------------


def _lon_lat(grid: RasterGrid, points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    xs, ys = transform(grid.crs, "EPSG:4326", [p[0] for p in points], [p[1] for p in points])
    return list(zip(xs, ys, strict=True))


def footprint(grid: RasterGrid) -> list[tuple[float, float]]:
    """Longitude and latitude of a grid's corners, clockwise from the upper left, closed."""
    left, bottom, right, top = grid.bounds
    corners = [(left, top), (right, top), (right, bottom), (left, bottom)]
    ring = _lon_lat(grid, corners)
    return [*ring, ring[0]]


def earth_sun_factor(date: dt.date) -> float:
    """Sen2Cor's ``U``: the Earth-Sun distance correction of a date."""
    doy = date.timetuple().tm_yday
    return 1.0 / (1.0 - 0.01673 * math.cos(0.0172 * (doy - 4))) ** 2


# -- SAFE metadata --------------------------------------------------------------------------

PRODUCT_NS = "https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd"
TILE_NS = "https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-2A_Tile_Metadata.xsd"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
SPECTRAL_BANDS = (
    ("B1", 60, 411, 456, 442.7, 1884.69),
    ("B2", 10, 456, 533, 492.7, 1959.66),
    ("B3", 10, 538, 583, 559.8, 1823.24),
    ("B4", 10, 646, 684, 664.6, 1512.06),
    ("B5", 20, 695, 714, 704.1, 1424.64),
    ("B6", 20, 731, 749, 740.5, 1287.61),
    ("B7", 20, 769, 797, 782.8, 1162.08),
    ("B8", 10, 760, 907, 832.8, 1041.63),
    ("B8A", 20, 837, 881, 864.7, 955.32),
    ("B9", 60, 932, 958, 945.1, 812.92),
    ("B10", 60, 1337, 1412, 1373.5, 367.15),
    ("B11", 20, 1539, 1682, 1613.7, 245.59),
    ("B12", 20, 2078, 2320, 2202.4, 85.25),
)
"""MSI bands by ``bandId``: name, resolution (m), wavelengths (nm) and solar irradiance."""
VIEW_ZENITH, VIEW_AZIMUTH = 5.0, 105.0
"""Mean viewing angles of every product (degrees)."""


def _el(parent: ET.Element, tag: str, text: object = None, **attributes: object) -> ET.Element:
    element = ET.SubElement(parent, tag, {key: str(value) for key, value in attributes.items()})
    if text is not None:
        element.text = str(text)
    return element


def _root(tag: str, namespace: str) -> ET.Element:
    return ET.Element(
        tag, {"xmlns:n1": namespace, "xmlns:xsi": XSI_NS, "xsi:schemaLocation": namespace}
    )


def xml_text(root: ET.Element) -> str:
    """An XML document as Sen2Cor writes it: declaration, four-space indentation."""
    ET.indent(root, space="    ")
    return XML_DECLARATION + ET.tostring(root, encoding="unicode") + "\n"


def _iso(acquisition: Acquired, digits: int = 3) -> str:
    """``2018-04-15T10:55:23.457Z`` (``digits`` decimals of the second)."""
    fraction = f"{acquisition.time.microsecond:06d}"[:digits].ljust(digits, "0")
    return f"{acquisition.date:%Y-%m-%d}T{acquisition.time:%H:%M:%S}.{fraction}Z"


def _identifiers(acquisition: Acquired, baseline: str) -> dict[str, str]:
    """Datastrip, granule and tile identifiers (processing centre 2APS)."""
    sat, sensing, tile = acquisition.satellite, _sensing(acquisition), acquisition.tile
    return {
        "datatake": f"GS2{sat}_{sensing}_000000_N{baseline}",
        "datastrip": f"S2{sat}_OPER_MSI_L2A_DS_2APS_{sensing}_S{sensing}_N{baseline}",
        "granule": f"S2{sat}_OPER_MSI_L2A_TL_2APS_{sensing}_{ABSOLUTE_ORBIT}_{tile}_N{baseline}",
        "l1c_tile": f"S2{sat}_OPER_MSI_L1C_TL_2APS_{sensing}_{ABSOLUTE_ORBIT}_{tile}_N{baseline}",
    }


def safe_product_metadata(
    acquisition: Acquired, baseline: str, grid: RasterGrid, percentages: Mapping[str, float]
) -> str:
    """``MTD_MSIL2A.xml`` of a product (``grid``: its 10 m grid; see :func:`scl_percentages`)."""
    root = _root("n1:Level-2A_User_Product", PRODUCT_NS)
    general = _el(root, "n1:General_Info")
    _product_info(general, acquisition, baseline)
    _image_characteristics(general, acquisition, baseline)
    geometry = _el(root, "n1:Geometric_Info")
    _footprint(geometry, grid)
    quality = _el(root, "n1:Quality_Indicators_Info")
    _el(quality, "Cloud_Coverage_Assessment", f"{percentages['CLOUDY_PIXEL']:.6f}")
    technical = _el(quality, "Technical_Quality_Assessment")
    _el(technical, "DEGRADED_ANC_DATA_PERCENTAGE", "0.0")
    _el(technical, "DEGRADED_MSI_DATA_PERCENTAGE", 0)
    content = _el(quality, "Image_Content_QI")
    _el(content, "CLOUDY_PIXEL_OVER_LAND_PERCENTAGE", f"{percentages['CLOUDY_PIXEL']:.6f}")
    _percentages(content, percentages, QI_CLASSES)
    return xml_text(root)


def _product_info(general: ET.Element, acquisition: Acquired, baseline: str) -> None:
    info = _el(general, "Product_Info")
    start, ids = _iso(acquisition), _identifiers(acquisition, baseline)
    _el(info, "PRODUCT_START_TIME", start)
    _el(info, "PRODUCT_STOP_TIME", start)
    _el(info, "PRODUCT_URI", safe_name(acquisition, baseline))
    _el(info, "PROCESSING_LEVEL", "Level-2A")
    _el(info, "PRODUCT_TYPE", "S2MSI2A")
    _el(info, "PROCESSING_BASELINE", baseline)
    _el(info, "PRODUCT_DOI", "https://doi.org/10.5270/S2_-znk9xsj")
    _el(info, "GENERATION_TIME", _iso(acquisition, 6))
    _el(info, "PREVIEW_IMAGE_URL", "Not applicable")
    _el(info, "PREVIEW_GEO_INFO", "Not applicable")
    datatake = _el(info, "Datatake", datatakeIdentifier=ids["datatake"])
    _el(datatake, "SPACECRAFT_NAME", f"Sentinel-2{acquisition.satellite}")
    _el(datatake, "DATATAKE_TYPE", "INS-NOBS")
    _el(datatake, "DATATAKE_SENSING_START", start)
    _el(datatake, "SENSING_ORBIT_NUMBER", RELATIVE_ORBIT)
    _el(datatake, "SENSING_ORBIT_DIRECTION", "DESCENDING")
    _el(_el(info, "Query_Options", completeSingleTile="true"), "PRODUCT_FORMAT", "SAFE_COMPACT")
    granules = _el(_el(info, "Product_Organisation"), "Granule_List")
    granule = _el(
        granules,
        "Granule",
        datastripIdentifier=ids["datastrip"],
        granuleIdentifier=ids["granule"],
        imageFormat="JPEG2000",
    )
    for band, resolution in SAFE_IMAGES:
        _el(granule, "IMAGE_FILE", safe_image(acquisition, band, resolution))


def _image_characteristics(general: ET.Element, acquisition: Acquired, baseline: str) -> None:
    characteristics = _el(general, "Product_Image_Characteristics")
    for text, index in (("NODATA", 0), ("SATURATED", 65535)):
        special = _el(characteristics, "Special_Values")
        _el(special, "SPECIAL_VALUE_TEXT", text)
        _el(special, "SPECIAL_VALUE_INDEX", index)
    order = _el(characteristics, "Image_Display_Order")
    for channel, number in (("RED", 3), ("GREEN", 2), ("BLUE", 1)):
        _el(order, f"{channel}_CHANNEL", number)
    quantification = _el(characteristics, "QUANTIFICATION_VALUES_LIST")
    _el(quantification, "BOA_QUANTIFICATION_VALUE", 10000, unit="none")
    _el(quantification, "AOT_QUANTIFICATION_VALUE", "1000.0", unit="none")
    _el(quantification, "WVP_QUANTIFICATION_VALUE", "1000.0", unit="cm")
    offset = boa_offset(baseline)
    if offset:
        offsets = _el(characteristics, "BOA_ADD_OFFSET_VALUES_LIST")
        for band_id in range(len(SPECTRAL_BANDS)):
            _el(offsets, "BOA_ADD_OFFSET", -offset, band_id=band_id)
    _reflectance_conversion(characteristics, acquisition.date)
    _spectral_information(characteristics)
    classes = _el(characteristics, "Scene_Classification_List")
    for index, name in enumerate(SCL_CLASSES):
        entry = _el(classes, "Scene_Classification_ID")
        _el(entry, "SCENE_CLASSIFICATION_TEXT", f"SC_{name}")
        _el(entry, "SCENE_CLASSIFICATION_INDEX", index)


def _reflectance_conversion(parent: ET.Element, date: dt.date) -> None:
    conversion = _el(parent, "Reflectance_Conversion")
    _el(conversion, "U", repr(earth_sun_factor(date)))
    irradiances = _el(conversion, "Solar_Irradiance_List")
    for band_id, band in enumerate(SPECTRAL_BANDS):
        _el(irradiances, "SOLAR_IRRADIANCE", band[5], bandId=band_id, unit="W/m²/µm")


def _spectral_information(parent: ET.Element) -> None:
    spectral = _el(parent, "Spectral_Information_List")
    for band_id, (name, resolution, low, high, central, _) in enumerate(SPECTRAL_BANDS):
        entry = _el(spectral, "Spectral_Information", bandId=band_id, physicalBand=name)
        _el(entry, "RESOLUTION", resolution)
        wavelength = _el(entry, "Wavelength")
        _el(wavelength, "MIN", low, unit="nm")
        _el(wavelength, "MAX", high, unit="nm")
        _el(wavelength, "CENTRAL", central, unit="nm")


def _footprint(geometry: ET.Element, grid: RasterGrid) -> None:
    outer = _el(geometry, "Product_Footprint")
    inner = _el(_el(outer, "Product_Footprint"), "Global_Footprint")
    points = "".join(f"{lat:.9f} {lon:.9f} " for lon, lat in footprint(grid))
    _el(inner, "EXT_POS_LIST", points)
    _el(outer, "RASTER_CS_TYPE", "POINT")
    _el(outer, "PIXEL_ORIGIN", 1)
    crs = _el(geometry, "Coordinate_Reference_System")
    _el(crs, "GEO_TABLES", "EPSG", version="1")
    _el(crs, "HORIZONTAL_CS_TYPE", "GEOGRAPHIC")


def _percentages(
    parent: ET.Element, percentages: Mapping[str, float], names: Iterable[str]
) -> None:
    for name in names:
        _el(parent, f"{name}_PERCENTAGE", f"{percentages[name]:.6f}")


def safe_tile_metadata(
    acquisition: Acquired,
    baseline: str,
    grids: Mapping[int, RasterGrid],
    percentages: Mapping[str, float],
    sun: Sun,
) -> str:
    """``MTD_TL.xml`` of a product: identifiers, 10 m and 20 m grids, mean angles, percentages."""
    root = _root("n1:Level-2A_Tile_ID", TILE_NS)
    ids = _identifiers(acquisition, baseline)
    general = _el(root, "n1:General_Info")
    _el(general, "L1C_TILE_ID", ids["l1c_tile"], metadataLevel="Brief")
    _el(general, "TILE_ID", ids["granule"], metadataLevel="Brief")
    _el(general, "DATASTRIP_ID", ids["datastrip"], metadataLevel="Standard")
    _el(general, "DOWNLINK_PRIORITY", "NOMINAL", metadataLevel="Standard")
    _el(general, "SENSING_TIME", _iso(acquisition, 6), metadataLevel="Standard")
    geometry = _el(root, "n1:Geometric_Info")
    _tile_geocoding(geometry, grids)
    _tile_angles(geometry, sun)
    quality = _el(root, "n1:Quality_Indicators_Info", metadataLevel="Standard")
    content = _el(quality, "Image_Content_QI")
    _percentages(content, percentages, QI_CLASSES)
    _el(content, "CLOUDY_PIXEL_PERCENTAGE", f"{percentages['CLOUDY_PIXEL']:.6f}")
    _el(content, "CLOUDY_PIXEL_OVER_LAND_PERCENTAGE", f"{percentages['CLOUDY_PIXEL']:.6f}")
    return xml_text(root)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _tile_geocoding(geometry: ET.Element, grids: Mapping[int, RasterGrid]) -> None:
    geocoding = _el(geometry, "Tile_Geocoding", metadataLevel="Brief")
    epsg = grids[10].crs.to_epsg()
    _el(geocoding, "HORIZONTAL_CS_NAME", f"WGS84 / UTM zone {epsg % 100}N")
    _el(geocoding, "HORIZONTAL_CS_CODE", f"EPSG:{epsg}")
    for resolution, grid in sorted(grids.items()):
        size = _el(geocoding, "Size", resolution=resolution)
        _el(size, "NROWS", grid.height)
        _el(size, "NCOLS", grid.width)
    for resolution, grid in sorted(grids.items()):
        position = _el(geocoding, "Geoposition", resolution=resolution)
        _el(position, "ULX", _number(grid.transform.c))
        _el(position, "ULY", _number(grid.transform.f))
        _el(position, "XDIM", _number(grid.transform.a))
        _el(position, "YDIM", _number(grid.transform.e))


def _tile_angles(geometry: ET.Element, sun: Sun) -> None:
    angles = _el(geometry, "Tile_Angles", metadataLevel="Standard")
    mean = _el(angles, "Mean_Sun_Angle")
    _el(mean, "ZENITH_ANGLE", f"{90.0 - sun.elevation:.6f}", unit="deg")
    _el(mean, "AZIMUTH_ANGLE", f"{sun.azimuth:.6f}", unit="deg")
    views = _el(angles, "Mean_Viewing_Incidence_Angle_List")
    for band_id in range(len(SPECTRAL_BANDS)):
        view = _el(views, "Mean_Viewing_Incidence_Angle", bandId=band_id)
        _el(view, "ZENITH_ANGLE", f"{VIEW_ZENITH:.6f}", unit="deg")
        _el(view, "AZIMUTH_ANGLE", f"{VIEW_AZIMUTH:.6f}", unit="deg")


# -- STAC -----------------------------------------------------------------------------------

COLLECTION_ID = "sentinel-2-l2a"
CATALOG_TITLE = "Synthetic Sentinel-2 L2A (sitsmap)"
COLLECTION_TITLE = "Sentinel-2 Level-2A"
STAC_EXTENSIONS = tuple(
    f"https://stac-extensions.github.io/{name}/schema.json"
    for name in (
        "eo/v1.1.0",
        "projection/v1.1.0",
        "raster/v1.1.0",
        "view/v1.0.0",
        "mgrs/v1.0.0",
        "grid/v1.0.0",
    )
)
STAC_BANDS = (
    ("blue", "B2", "Blue", "blue", 0.49, 0.098),
    ("green", "B3", "Green", "green", 0.56, 0.045),
    ("red", "B4", "Red", "red", 0.665, 0.038),
    ("rededge1", "B5", "Red edge 1", "rededge", 0.704, 0.019),
    ("rededge2", "B6", "Red edge 2", "rededge", 0.74, 0.018),
    ("rededge3", "B7", "Red edge 3", "rededge", 0.783, 0.028),
    ("nir", "B8", "NIR 1", "nir", 0.842, 0.145),
    ("nir08", "B8A", "NIR 2", "nir08", 0.865, 0.033),
    ("swir16", "B11", "SWIR 1", "swir16", 1.61, 0.143),
    ("swir22", "B12", "SWIR 2", "swir22", 2.19, 0.242),
)
"""Earth Search's reflectance assets: key, band, title, common name, centre and width (µm)."""
STAC_OFFSET = 1000
"""STAC assets are encoded as baseline 05.00 SAFE bands: DN = reflectance x 10000 + 1000."""
_COG = "image/tiff; application=geotiff; profile=cloud-optimized"


def _link(rel: str, href: str, title: str | None = None, kind: str = "application/json") -> dict:
    link = {"rel": rel, "href": href, "type": kind}
    if title:
        link["title"] = title
    return link


def stac_item(
    acquisition: Acquired,
    grids: Mapping[int, RasterGrid],
    percentages: Mapping[str, float],
    sun: Sun,
) -> dict:
    """The STAC item of a product (Earth Search's fields; hrefs relative to the item's folder)."""
    grid = grids[10]
    west, south, east, north = transform_bounds(grid.crs, "EPSG:4326", *grid.bounds)
    assets = {key: _reflectance_asset(key, band, title, common, centre, width, grids)
              for key, band, title, common, centre, width in STAC_BANDS}  # fmt: skip
    assets["scl"] = {
        "href": "./SCL.tif",
        "type": _COG,
        "title": "Scene classification map (SCL)",
        **_projection(grids[20]),
        "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 20}],
        "roles": ["data", "reflectance"],
    }
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": list(STAC_EXTENSIONS),
        "id": stac_item_id(acquisition),
        "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in footprint(grid)]]},
        "bbox": [west, south, east, north],
        "properties": _stac_properties(acquisition, grid, percentages, sun),
        "links": [
            _link("root", "../../catalog.json", CATALOG_TITLE),
            _link("collection", "../collection.json", COLLECTION_TITLE),
            _link("parent", "../collection.json", COLLECTION_TITLE),
        ],
        "assets": assets,
        "collection": COLLECTION_ID,
    }


def _projection(grid: RasterGrid) -> dict:
    return {"proj:shape": [grid.height, grid.width], "proj:transform": list(grid.transform)[:6]}


def _reflectance_asset(
    key: str,
    band: str,
    title: str,
    common: str,
    centre: float,
    width: float,
    grids: Mapping[int, RasterGrid],
) -> dict:
    resolution = SENTINEL2_THEIA.band(band).resolution
    number = band[1:]
    return {
        "href": f"./{safe_band(band)}.tif",
        "type": _COG,
        "title": f"{title} (band {number}) - {resolution}m",
        "eo:bands": [
            {
                "name": key,
                "common_name": common,
                "description": f"{title} (band {number})",
                "center_wavelength": centre,
                "full_width_half_max": width,
            }
        ],
        "gsd": resolution,
        **_projection(grids[resolution]),
        "raster:bands": [
            {
                "nodata": 0,
                "data_type": "uint16",
                "bits_per_sample": 15,
                "spatial_resolution": resolution,
                "scale": 0.0001,
                "offset": -STAC_OFFSET / 10000,
            }
        ],
        "roles": ["data", "reflectance"],
    }


def _stac_properties(
    acquisition: Acquired, grid: RasterGrid, percentages: Mapping[str, float], sun: Sun
) -> dict:
    tile = acquisition.tile
    properties = {
        "platform": f"sentinel-2{acquisition.satellite.lower()}",
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": percentages["CLOUDY_PIXEL"],
        "proj:epsg": grid.crs.to_epsg(),
        "mgrs:utm_zone": int(tile[1:3]),
        "mgrs:latitude_band": tile[3],
        "mgrs:grid_square": tile[4:6],
        "grid:code": f"MGRS-{tile[1:]}",
        "view:sun_azimuth": round(sun.azimuth, 6),
        "view:sun_elevation": round(sun.elevation, 6),
        "view:incidence_angle": VIEW_ZENITH,
    }
    for name in QI_CLASSES:
        properties[f"s2:{name.lower()}_percentage"] = percentages[name]
    properties.update(
        {
            "s2:product_type": "S2MSI2A",
            "s2:processing_baseline": DEFAULT_BASELINE,
            "s2:product_uri": safe_name(acquisition),
            "s2:datatake_type": "INS-NOBS",
            "earthsearch:boa_offset_applied": False,
            "datetime": _iso(acquisition, 6),
        }
    )
    return properties


def stac_collection(items: Sequence[dict]) -> dict:
    """``collection.json`` listing ``items`` (their ids name their folders)."""
    links = [_link("root", "../catalog.json", CATALOG_TITLE)]
    links.append(
        {
            "rel": "license",
            "href": "https://sentinel.esa.int/documents/247904/690755/Sentinel_Data_Legal_Notice",
            "title": "Legal notice on the use of Copernicus Sentinel Data and Service Information",
        }
    )
    for item in sorted(items, key=lambda i: (i["properties"]["datetime"], i["id"])):
        links.append(
            _link("item", f"./{item['id']}/{item['id']}.json", kind="application/geo+json")
        )
    links.append(_link("parent", "../catalog.json", CATALOG_TITLE))
    boxes = np.array([item["bbox"] for item in items]) if items else np.zeros((1, 4))
    times = sorted(item["properties"]["datetime"] for item in items) or [None]
    return {
        "type": "Collection",
        "id": COLLECTION_ID,
        "stac_version": "1.0.0",
        "description": "Synthetic Sentinel-2 Level-2A surface reflectance, as Cloud-Optimized "
        "GeoTIFFs.",
        "links": links,
        "title": COLLECTION_TITLE,
        "extent": {
            "spatial": {
                "bbox": [[*boxes[:, :2].min(axis=0).tolist(), *boxes[:, 2:].max(axis=0).tolist()]]
            },
            "temporal": {"interval": [[times[0], times[-1]]]},
        },
        "license": "proprietary",
        "keywords": ["sentinel", "earth observation", "esa", "synthetic"],
        "providers": [{"name": "sitsmap", "roles": ["producer"]}],
    }


def stac_catalog() -> dict:
    """``catalog.json``: the root, with the collection as its only child."""
    return {
        "type": "Catalog",
        "id": "sitsmap-synthetic",
        "stac_version": "1.0.0",
        "description": "Static catalog of the Sentinel-2 Level-2A products of a synthetic world.",
        "links": [
            _link("root", "./catalog.json", CATALOG_TITLE),
            _link("child", f"./{COLLECTION_ID}/collection.json", COLLECTION_TITLE),
        ],
        "title": CATALOG_TITLE,
    }


# -- Landsat metadata -----------------------------------------------------------------------

_MTL_BARE = re.compile(r"^-?\d+(\.\d+)?(E[-+]?\d+)?$|^\d{4}-\d{2}-\d{2}$")
"""MTL values written without quotes: numbers and dates."""


def landsat_metadata(
    acquisition: Acquired, path_row: tuple[int, int], grid: RasterGrid, cloud_cover: float
) -> dict:
    """The ``MTL.json`` document of a scene (every value a string, as USGS writes it).

    Parameters
    ----------
    acquisition : Acquired
        Date and time of the scene.
    path_row : (int, int)
        Its WRS-2 path and row.
    grid : RasterGrid
        Its 30 m grid.
    cloud_cover : float
        Percentage of its non-fill pixels flagged cloud.
    """
    product = landsat_product_id(acquisition, *path_row)
    return {
        "LANDSAT_METADATA_FILE": {
            "PRODUCT_CONTENTS": _mtl_contents(product),
            "IMAGE_ATTRIBUTES": _mtl_image(acquisition, path_row, cloud_cover),
            "PROJECTION_ATTRIBUTES": _mtl_projection(grid),
            "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS": _mtl_reflectance(),
        }
    }


def _mtl_contents(product: str) -> dict[str, str]:
    bands = LANDSAT_SR_BANDS
    contents = {
        "ORIGIN": "Image courtesy of the U.S. Geological Survey",
        "DIGITAL_OBJECT_IDENTIFIER": "https://doi.org/10.5066/P9OGBGM6",
        "LANDSAT_PRODUCT_ID": product,
        "PROCESSING_LEVEL": "L2SP",
        "COLLECTION_NUMBER": "02",
        "COLLECTION_CATEGORY": "T1",
        "OUTPUT_FORMAT": "GEOTIFF",
    }
    contents.update({f"FILE_NAME_BAND_{b[1:]}": f"{product}_SR_{b}.TIF" for b in bands})
    contents["FILE_NAME_QUALITY_L1_PIXEL"] = f"{product}_QA_PIXEL.TIF"
    contents["FILE_NAME_METADATA_ODL"] = f"{product}_MTL.txt"
    contents.update({f"DATA_TYPE_BAND_{b[1:]}": "UINT16" for b in bands})
    contents["DATA_TYPE_QUALITY_L1_PIXEL"] = "UINT16"
    return contents


def _mtl_image(acquisition: Acquired, path_row: tuple[int, int], cloudy: float) -> dict[str, str]:
    path, row = path_row
    clock = acquisition.time
    return {
        "SPACECRAFT_ID": "LANDSAT_8",
        "SENSOR_ID": "OLI_TIRS",
        "WRS_TYPE": "2",
        "WRS_PATH": str(path),
        "WRS_ROW": str(row),
        "NADIR_OFFNADIR": "NADIR",
        "TARGET_WRS_PATH": str(path),
        "TARGET_WRS_ROW": str(row),
        "DATE_ACQUIRED": f"{acquisition.date:%Y-%m-%d}",
        "SCENE_CENTER_TIME": f"{clock:%H:%M:%S}.{clock.microsecond * 10:07d}Z",
        "CLOUD_COVER": f"{cloudy:.2f}",
        "CLOUD_COVER_LAND": f"{cloudy:.2f}",
    }


def _mtl_projection(grid: RasterGrid) -> dict[str, str]:
    half = grid.resolution / 2
    left, bottom, right, top = grid.bounds
    centres = {
        "UL": (left + half, top - half),
        "UR": (right - half, top - half),
        "LL": (left + half, bottom + half),
        "LR": (right - half, bottom + half),
    }
    projection = {
        "MAP_PROJECTION": "UTM",
        "DATUM": "WGS84",
        "ELLIPSOID": "WGS84",
        "UTM_ZONE": str(grid.crs.to_epsg() % 100),
        "GRID_CELL_SIZE_REFLECTIVE": f"{grid.resolution:.2f}",
        "REFLECTIVE_LINES": str(grid.height),
        "REFLECTIVE_SAMPLES": str(grid.width),
        "ORIENTATION": "NORTH_UP",
    }
    for corner, (lon, lat) in zip(centres, _lon_lat(grid, list(centres.values())), strict=True):
        projection[f"CORNER_{corner}_LAT_PRODUCT"] = f"{lat:.5f}"
        projection[f"CORNER_{corner}_LON_PRODUCT"] = f"{lon:.5f}"
    for corner, (x, y) in centres.items():
        projection[f"CORNER_{corner}_PROJECTION_X_PRODUCT"] = f"{x:.3f}"
        projection[f"CORNER_{corner}_PROJECTION_Y_PRODUCT"] = f"{y:.3f}"
    return projection


def _mtl_reflectance() -> dict[str, str]:
    numbers = [band[1:] for band in LANDSAT_SR_BANDS]
    values: dict[str, str] = {}
    for n in numbers:
        values[f"REFLECTANCE_MAXIMUM_BAND_{n}"] = "1.602213"  # DN 65535
        values[f"REFLECTANCE_MINIMUM_BAND_{n}"] = "-0.199972"  # DN 1
    for n in numbers:
        values[f"QUANTIZE_CAL_MAX_BAND_{n}"] = "65535"
        values[f"QUANTIZE_CAL_MIN_BAND_{n}"] = "1"
    values.update({f"REFLECTANCE_MULT_BAND_{n}": "2.75E-05" for n in numbers})
    values.update({f"REFLECTANCE_ADD_BAND_{n}": "-0.200000" for n in numbers})
    return values


def mtl_text(document: Mapping[str, object]) -> str:
    """The ODL text (``MTL.txt``) of an ``MTL.json`` document."""
    lines: list[str] = []
    for name, group in document.items():
        _mtl_group(lines, name, group, 0)
    lines.append("END")
    return "\n".join(lines) + "\n"


def _mtl_group(lines: list[str], name: str, group: object, depth: int) -> None:
    pad = "  " * depth
    lines.append(f"{pad}GROUP = {name}")
    for key, value in group.items():  # type: ignore[attr-defined]
        if isinstance(value, Mapping):
            _mtl_group(lines, key, value, depth + 1)
        else:
            text = value if _MTL_BARE.match(value) else f'"{value}"'
            lines.append(f"{pad}  {key} = {text}")
    lines.append(f"{pad}END_GROUP = {name}")
