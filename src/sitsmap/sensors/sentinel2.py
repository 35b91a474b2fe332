"""Sentinel-2 Level-2A in the Theia/MAJA product layout.

A product is a directory::

    SENTINEL2A_20180115-105523-457_L2A_T31TCJ_C_V2-2/
        <product>_FRE_B2.tif ... <product>_FRE_B12.tif   int16, reflectance x 10000, nodata -10000
        MASKS/<product>_CLM_R1.tif  MASKS/<product>_CLM_R2.tif   cloud bit field, 0 = clear
        MASKS/<product>_EDG_R1.tif  MASKS/<product>_EDG_R2.tif   1 = outside the swath (no data)
        MASKS/<product>_SAT_R1.tif  MASKS/<product>_SAT_R2.tif   saturation bit field, 0 = not

R1 masks go with the 10 m bands, R2 masks with the 20 m bands.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Band:
    """One spectral band: its name in file names and its native resolution (m)."""

    name: str
    resolution: int

    @property
    def feature_name(self) -> str:
        """Lower-case name used in feature names (``b8a``)."""
        return self.name.lower()


@dataclass(frozen=True)
class Product:
    """One acquisition found on disk."""

    path: Path
    tile: str
    date: dt.date
    satellite: str

    @property
    def name(self) -> str:
        """The product directory name, also the prefix of its files."""
        return self.path.name


@dataclass(frozen=True)
class SensorDescription:
    """What a reader needs to know about a sensor's products, and nothing else."""

    name: str
    product_regex: re.Pattern[str]
    bands: tuple[Band, ...]
    band_file: str
    mask_file: str
    mask_names: tuple[str, ...]
    reflectance_scale: float
    nodata: int
    date_format: str

    @property
    def band_names(self) -> tuple[str, ...]:
        """Band names in feature order."""
        return tuple(band.name for band in self.bands)

    def band(self, name: str) -> Band:
        """Return the band called ``name`` (case-insensitive)."""
        for band in self.bands:
            if band.name.lower() == name.lower():
                return band
        raise KeyError(name)

    def parse_product_name(self, name: str) -> dict[str, str] | None:
        """Return the fields of a product directory name, or None if it is not one."""
        match = self.product_regex.match(name)
        return match.groupdict() if match else None

    def band_path(self, product_dir: Path, band: str) -> Path:
        """Path of a band file of a product."""
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


SENTINEL2_THEIA = SensorDescription(
    name="sentinel2",
    product_regex=re.compile(
        r"^SENTINEL2(?P<satellite>[ABCD])_(?P<date>\d{8})-(?P<time>\d{6})-(?P<ms>\d{3})"
        r"_L2A_(?P<tile>T\d{2}[A-Z]{3})_(?P<level>[A-Z])_V(?P<version>\d+-\d+)$"
    ),
    # iota2's band order for Sentinel-2: features are named and stacked in this order.
    bands=(
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
    ),
    band_file="{product}_FRE_{band}.tif",
    mask_file="MASKS/{product}_{mask}_R{r}.tif",
    mask_names=("CLM", "EDG", "SAT"),
    reflectance_scale=10000.0,
    nodata=-10000,
    date_format="%Y%m%d",
)
