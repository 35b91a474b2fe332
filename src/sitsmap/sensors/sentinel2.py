"""Sentinel-2 Level-2A: its bands, indices and three ways of finding its products.

The same ten bands, in iota2's order, whatever the layout, so that Theia,
Sen2Cor and STAC products of one place give the same features:

- **Theia/MAJA** (:data:`SENTINEL2_THEIA`): a folder (or the zip Theia delivers) ::

      SENTINEL2A_20180115-105523-457_L2A_T31TCJ_C_V2-2/
          <product>_FRE_B2.tif ... <product>_FRE_B12.tif   int16, reflectance x 10000, nodata -10000
          MASKS/<product>_CLM_R1.tif  MASKS/<product>_CLM_R2.tif   cloud bit field, 0 = clear
          MASKS/<product>_EDG_R1.tif  MASKS/<product>_EDG_R2.tif   1 = outside the swath (no data)
          MASKS/<product>_SAT_R1.tif  MASKS/<product>_SAT_R2.tif   saturation bit field, 0 = not

  R1 masks go with the 10 m bands, R2 masks with the 20 m bands.

- **Sen2Cor SAFE** (:data:`SENTINEL2_SEN2COR`), from the Copernicus Data Space, a
  ``.SAFE`` folder or its zip: uint16 JPEG 2000 bands under
  ``GRANULE/*/IMG_DATA/R10m|R20m``, reflectance = (DN + BOA_ADD_OFFSET) /
  BOA_QUANTIFICATION_VALUE (``MTD_MSIL2A.xml``), DN 0 = no data, validity from
  the 20 m scene classification ``SCL_20m.jp2``.

- **STAC** (:data:`SENTINEL2_STAC`): items of Cloud-Optimized GeoTIFFs, Earth
  Search's asset keys by default, scale and offset from ``raster:bands``,
  validity from the ``scl`` asset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from sitsmap.sensors.base import Band, MaskRule, SensorDescription

__all__ = [
    "SAFE_BAND_FILE",
    "SAFE_PRODUCT_REGEX",
    "SCL_INVALID_CLASSES",
    "SENTINEL2_BANDS",
    "SENTINEL2_SEN2COR",
    "SENTINEL2_STAC",
    "SENTINEL2_THEIA",
    "STAC_ASSETS",
    "TheiaDescription",
    "safe_band_key",
]

SENTINEL2_BANDS = (
    Band("B2", 10),
    Band("B3", 10),
    Band("B4", 10),
    Band("B5", 20),
    Band("B6", 20),
    Band("B7", 20),
    Band("B8", 10),
    Band("B8A", 20),
    Band("B11", 20),
    Band("B12", 20),
)
"""iota2's band order for Sentinel-2: features are named and stacked in this order."""

SENTINEL2_INDICES = (("ndvi", "B8", "B4"), ("ndwi", "B11", "B8"))
"""NDVI = (NIR - red) / (NIR + red); NDWI = (SWIR - NIR) / (SWIR + NIR), iota2's definition."""

SCL_INVALID_CLASSES = (0, 1, 3, 8, 9, 10)
"""Sen2Cor scene classes read as invalid by default: no data, saturated or defective,
cloud shadow, cloud medium and high probability, thin cirrus."""


@dataclass(frozen=True)
class TheiaDescription(SensorDescription):
    """Sentinel-2 in the Theia/MAJA layout: the description plus its file naming."""

    product_regex: re.Pattern[str] = re.compile("")
    band_file: str = ""
    mask_file: str = ""
    mask_names: tuple[str, ...] = ()
    date_format: str = "%Y%m%d"

    def parse_product_name(self, name: str) -> dict[str, str] | None:
        """Return the fields of a product name (folder, or zip without ``.zip``), or None."""
        match = self.product_regex.match(name)
        return match.groupdict() if match else None

    def band_path(self, product_dir: Path, band: str) -> Path:
        """Path of a band file of a product folder."""
        return product_dir / self.band_file.format(product=product_dir.name, band=band)

    def mask_path(self, product_dir: Path, mask: str, resolution_index: int) -> Path:
        """Path of a mask file (``resolution_index`` 1 for 10 m, 2 for 20 m)."""
        return product_dir / self.mask_file.format(
            product=product_dir.name, mask=mask, r=resolution_index
        )

    def required_files(self, product_dir: Path) -> list[Path]:
        """Every file a complete product must contain."""
        files = [self.band_path(product_dir, band.name) for band in self.bands]
        files += [self.mask_path(product_dir, mask, r) for mask in self.mask_names for r in (1, 2)]
        return files


SENTINEL2_THEIA = TheiaDescription(
    name="sentinel2",
    bands=SENTINEL2_BANDS,
    mask=MaskRule("flags", ("CLM", "EDG", "SAT")),
    nodata=-10000,
    indices=SENTINEL2_INDICES,
    product_regex=re.compile(
        r"^SENTINEL2(?P<satellite>[ABCD])_(?P<date>\d{8})-(?P<time>\d{6})-(?P<ms>\d{3})"
        r"_L2A_(?P<tile>T\d{2}[A-Z]{3})_(?P<level>[A-Z])_V(?P<version>\d+-\d+)$"
    ),
    band_file="{product}_FRE_{band}.tif",
    mask_file="MASKS/{product}_{mask}_R{r}.tif",
    mask_names=("CLM", "EDG", "SAT"),
)

SENTINEL2_SEN2COR = SensorDescription(
    name="sentinel2",
    bands=SENTINEL2_BANDS,
    mask=MaskRule("classes", ("SCL",), SCL_INVALID_CLASSES, outside=0),
    nodata=0,
    indices=SENTINEL2_INDICES,
)

SENTINEL2_STAC = replace(SENTINEL2_SEN2COR)

SAFE_PRODUCT_REGEX = re.compile(
    r"^S2(?P<satellite>[ABCD])_MSIL2A_(?P<date>\d{8})T(?P<time>\d{6})_N(?P<baseline>\d{4})"
    r"_R(?P<orbit>\d{3})_(?P<tile>T\d{2}[A-Z]{3})_(?P<discriminator>\d{8}T\d{6})"
    r"(?:\.SAFE|\.zip|\.SAFE\.zip)$"
)
"""A Sen2Cor L2A product name (``S2B_MSIL2A_20180115T105421_N0500_R051_T31TCJ_…``)."""

SAFE_BAND_FILE = re.compile(
    r"^(?:L2A_)?T\d{2}[A-Z]{3}_\d{8}T\d{6}_(?P<key>B\d[\dA]|SCL)_(?P<res>10|20|60)m\.jp2$"
)
"""A SAFE image file name under ``IMG_DATA/R10m|R20m``."""

STAC_ASSETS = {
    "blue": "B2",
    "green": "B3",
    "red": "B4",
    "rededge1": "B5",
    "rededge2": "B6",
    "rededge3": "B7",
    "nir": "B8",
    "nir08": "B8A",
    "swir16": "B11",
    "swir22": "B12",
    "scl": "SCL",
}
"""Earth Search's asset keys and the bands (or the SCL layer) they hold."""


def safe_band_key(file_key: str) -> str:
    """The canonical band of a SAFE file key: ``B02`` → ``B2``, ``B8A`` stays, ``SCL`` stays."""
    if file_key.startswith("B") and file_key[1:].isdigit():
        return f"B{int(file_key[1:])}"
    return file_key
