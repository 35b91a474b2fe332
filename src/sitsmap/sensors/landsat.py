"""Landsat 8 and 9 Collection 2 Level-2 surface reflectance (USGS ``L2SP`` products).

A product is a folder (or the tar USGS delivers) ::

    LC08_L2SP_199025_20180311_20180320_02_T1/
        <product>_SR_B2.TIF ... <product>_SR_B7.TIF   uint16, reflectance = DN x 0.0000275 - 0.2,
                                                      0 = fill
        <product>_QA_PIXEL.TIF                        uint16 pixel quality bits, bit 0 = fill

Scenes lie on the WRS-2 grid at 30 m, often in another UTM zone than the
tile: they are warped onto the tile's grid (bilinear for reflectance, nearest
for the quality bits).
"""

from __future__ import annotations

import re

from sitsmap.sensors.base import REFLECTANCE_SCALE, Band, MaskRule, SensorDescription

__all__ = [
    "LANDSAT8",
    "LANDSAT_PRODUCT_REGEX",
    "QA_INVALID_BITS",
    "SR_GAIN",
    "SR_OFFSET",
    "landsat_band_file",
]

QA_INVALID_BITS = (0, 1, 2, 3, 4, 5)
"""QA_PIXEL bits read as invalid by default: fill, dilated cloud, cirrus, cloud,
cloud shadow, snow."""

SR_GAIN = 0.0000275 * REFLECTANCE_SCALE
"""Collection 2 surface reflectance = DN x 0.0000275 - 0.2, here x 10000."""
SR_OFFSET = -0.2 * REFLECTANCE_SCALE

LANDSAT_PRODUCT_REGEX = re.compile(
    r"^(?P<satellite>L[CO]0[89])_L2SP_(?P<path>\d{3})(?P<row>\d{3})_(?P<date>\d{8})"
    r"_(?P<processed>\d{8})_(?P<collection>\d{2})_(?P<tier>T1|T2|RT)(?:\.tar)?$"
)
"""A Collection 2 Level-2 product name (``LC08_L2SP_199025_20180311_20180320_02_T1``)."""

LANDSAT8 = SensorDescription(
    name="landsat8",
    bands=tuple(Band(f"B{number}", 30) for number in range(2, 8)),
    mask=MaskRule("bits", ("QA_PIXEL",), QA_INVALID_BITS, outside=1),
    nodata=0,
    # B5 is NIR, B4 red, B6 SWIR 1.6 um: the same indices as Sentinel-2's B8, B4, B11.
    indices=(("ndvi", "B5", "B4"), ("ndwi", "B6", "B5")),
    warped=True,
)
"""Landsat 8 and 9 OLI bands 2 (blue) to 7 (SWIR 2.2 um); one description for both."""


def landsat_band_file(product: str, key: str) -> str:
    """File name of a band (``B4`` → ``<product>_SR_B4.TIF``) or of ``QA_PIXEL``."""
    return f"{product}_{key}.TIF" if key == "QA_PIXEL" else f"{product}_SR_{key}.TIF"
