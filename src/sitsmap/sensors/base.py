"""What every sensor description and every found product is made of.

A sensor is described by data, not code (torchgeo's ``filename_regex`` /
``all_bands`` class attributes are the model): its bands and their native
resolutions, the no-data value of its band files, how its validity is read
(:class:`MaskRule`), which bands make its spectral indices, and whether its
products lie on the tile's grid or must be warped onto it. The readers in
:mod:`sitsmap.io` turn any product of any sensor into the same thing: per
window, int16 reflectance x 10000 on the tile's 10 m grid and an invalid mask.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = ["Band", "MaskRule", "Product", "ProductFile", "SensorDescription"]

REFLECTANCE_SCALE = 10000.0
"""Every reader hands reflectances over as int16 x this (Theia's own encoding)."""

NODATA = -10000
"""The int16 value readers write where a band has no data."""


@dataclass(frozen=True)
class Band:
    """One band: its canonical name (``B8A``) and its native resolution (m)."""

    name: str
    resolution: int

    @property
    def feature_name(self) -> str:
        """Lower-case name used in feature names (``b8a``)."""
        return self.name.lower()


@dataclass(frozen=True)
class MaskRule:
    """How a product's validity is read from its mask layers.

    Attributes
    ----------
    kind : {"flags", "classes", "bits", "none"}
        ``flags``: invalid where any layer is non-zero (Theia's CLM, EDG, SAT);
        ``classes``: invalid where the layer holds one of ``values`` (Sen2Cor's SCL);
        ``bits``: invalid where the layer has one of the bits ``values`` set
        (Landsat's QA_PIXEL); ``none``: only the bands' no-data.
    layers : tuple of str
        Keys of the mask files in :attr:`Product.files`.
    values : tuple of int
        Invalid classes or bit positions.
    outside : int
        Value a mask layer takes outside its raster (read as invalid).
    """

    kind: Literal["flags", "classes", "bits", "none"]
    layers: tuple[str, ...] = ()
    values: tuple[int, ...] = ()
    outside: int = 1


@dataclass(frozen=True)
class ProductFile:
    """One raster of a product: its key (band or mask name), GDAL path and DN scaling.

    ``path`` is what GDAL opens: a file, a ``/vsizip/`` or ``/vsitar/`` member, or a
    URL; ``band`` its band (1 unless several layers share a file). A band's stored
    value (reflectance x 10000) is ``DN * gain + offset``.
    """

    key: str
    path: str
    gain: float = 1.0
    offset: float = 0.0
    band: int = 1


@dataclass(frozen=True)
class Product:
    """One acquisition found on disk or in a catalog.

    Attributes
    ----------
    path : Path
        What names the product to people: its folder, zip or tar, or its STAC item.
    tile : str
        The tile it covers.
    date : datetime.date
        Acquisition date.
    satellite : str
        Platform letter or name (``A``, ``B``, ``LC08``).
    files : tuple of ProductFile
        Its band and mask rasters.
    version : tuple of int
        Processing version; of two products of one date the highest is kept.
    same_day : tuple of Product
        Other scenes of the same date over the tile (Landsat rows): read where
        this one is invalid.
    """

    path: Path
    tile: str
    date: dt.date
    satellite: str
    files: tuple[ProductFile, ...] = ()
    version: tuple[int, ...] = ()
    same_day: tuple[Product, ...] = field(default=(), compare=False)

    @property
    def name(self) -> str:
        """The product's folder or file name, also the prefix of its files."""
        return self.path.name

    def file(self, key: str) -> ProductFile:
        """The raster called ``key`` (case-insensitive)."""
        for item in self.files:
            if item.key.upper() == key.upper():
                return item
        raise KeyError(f"{self.name} has no {key} raster")


@dataclass(frozen=True)
class SensorDescription:
    """What a reader needs to know about a sensor's products, and nothing else.

    Attributes
    ----------
    name : str
        Prefix of its feature names (``sentinel2``, ``landsat8``).
    bands : tuple of Band
        Its bands, in feature order.
    mask : MaskRule
        How validity is read.
    nodata : int
        DN of no data in its band files.
    indices : tuple of (str, str, str)
        ``(index, a, b)``: normalized differences ``(a - b) / (a + b)`` it offers.
    warped : bool
        Its products lie on their own grids (another CRS, another pixel size) and
        are warped onto the tile's grid; otherwise they share the tile's lattice and
        coarser bands are upsampled by nearest neighbour.
    scale : float
        Features are the stored int16 values divided by this.
    brightness : bool
        Whether a brightness feature (the bands' Euclidean norm) is made.
    """

    name: str
    bands: tuple[Band, ...]
    mask: MaskRule
    nodata: float
    indices: tuple[tuple[str, str, str], ...] = ()
    warped: bool = False
    scale: float = REFLECTANCE_SCALE
    brightness: bool = True

    @property
    def band_names(self) -> tuple[str, ...]:
        """Band names in feature order."""
        return tuple(band.name for band in self.bands)

    @property
    def base_resolution(self) -> int:
        """The finest band resolution (m): the grid the bands are read on."""
        return min(band.resolution for band in self.bands)

    @property
    def reflectance_scale(self) -> float:
        """Alias of :attr:`scale` for reflectance sensors."""
        return self.scale

    def band(self, name: str) -> Band:
        """Return the band called ``name`` (case-insensitive)."""
        for band in self.bands:
            if band.name.lower() == name.lower():
                return band
        raise KeyError(name)
