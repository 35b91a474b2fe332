"""Declarative sensor descriptions: bands, resolutions, file patterns, mask rules.

Adding a sensor means adding a description here, not editing the pipeline.
"""

from sitsmap.sensors.base import (
    NODATA,
    REFLECTANCE_SCALE,
    Band,
    MaskRule,
    Product,
    ProductFile,
    SensorDescription,
)
from sitsmap.sensors.landsat import LANDSAT8
from sitsmap.sensors.sentinel2 import (
    SENTINEL2_SEN2COR,
    SENTINEL2_STAC,
    SENTINEL2_THEIA,
    TheiaDescription,
)

__all__ = [
    "LANDSAT8",
    "NODATA",
    "REFLECTANCE_SCALE",
    "SENTINEL2_SEN2COR",
    "SENTINEL2_STAC",
    "SENTINEL2_THEIA",
    "Band",
    "MaskRule",
    "Product",
    "ProductFile",
    "SensorDescription",
    "TheiaDescription",
]
