"""Finding a tile's Sen2Cor Level-2A SAFE products: ``.SAFE`` folders and their zips.

A product is a ``.SAFE`` folder, or the zip the Copernicus Data Space delivers
(``<name>.zip`` holding ``<name>.SAFE/...``), read in place through GDAL's
``/vsizip/``: never unzipped. Products lie directly in the root directory or in
its ``<tile>/`` sub-directory; anything not named like a product is ignored.

Of a product, the finder keeps the JPEG 2000 images of the ten bands at their
native resolution (``GRANULE/*/IMG_DATA/R10m/*_B02_10m.jp2`` ...,
``R20m/*_B05_20m.jp2`` ...), the scene classification ``R20m/*_SCL_20m.jp2``,
and the DN scaling read from ``MTD_MSIL2A.xml``: reflectance =
(DN + BOA_ADD_OFFSET) / BOA_QUANTIFICATION_VALUE, the offset existing from
processing baseline 04.00 on (-1000 for every band) and zero before.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from sitsmap.errors import InputDataError
from sitsmap.io.products import select_products, tile_key, vsi_path
from sitsmap.sensors import REFLECTANCE_SCALE, SENTINEL2_SEN2COR, Product, ProductFile
from sitsmap.sensors.sentinel2 import SAFE_BAND_FILE, SAFE_PRODUCT_REGEX, safe_band_key

__all__ = ["SafeScaling", "find_safe_products", "read_safe_scaling"]

logger = logging.getLogger(__name__)

METADATA_FILE = "MTD_MSIL2A.xml"
"""The product metadata at the root of a SAFE."""

BAND_IDS = {
    "B1": 0, "B2": 1, "B3": 2, "B4": 3, "B5": 4, "B6": 5, "B7": 6,
    "B8": 7, "B8A": 8, "B9": 9, "B10": 10, "B11": 11, "B12": 12,
}  # fmt: skip
"""The ``band_id`` of each band in ``MTD_MSIL2A.xml``."""

OFFSET_BASELINE = 400
"""Processing baseline (04.00) from which BOA_ADD_OFFSET is applied."""

_IMAGE = re.compile(r"^GRANULE/[^/]+/IMG_DATA/R(?P<dir>\d+)m/(?P<file>[^/]+)$")
_BASELINE = re.compile(r"^(?P<major>\d{2})\.(?P<minor>\d{2})$")
_QUANTIFICATION_TAGS = ("BOA_QUANTIFICATION_VALUE", "L2A_BOA_QUANTIFICATION_VALUE")
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error)


@dataclass(frozen=True)
class SafeScaling:
    """What ``MTD_MSIL2A.xml`` says about a product's DN.

    Attributes
    ----------
    baseline : int
        Processing baseline x 100 (``05.00`` → 500).
    quantification : float
        BOA_QUANTIFICATION_VALUE.
    offsets : dict of str to float
        BOA_ADD_OFFSET per canonical band name; empty before baseline 04.00.
    """

    baseline: int
    quantification: float
    offsets: dict[str, float]

    def gain_offset(self, band: str) -> tuple[float, float]:
        """``(gain, offset)`` so that reflectance x 10000 = DN * gain + offset."""
        gain = REFLECTANCE_SCALE / self.quantification
        return gain, self.offsets.get(band, 0.0) * gain


def find_safe_products(
    root: Path, tile: str, start: dt.date | None = None, end: dt.date | None = None
) -> list[Product]:
    """Return the Sen2Cor L2A SAFE products of ``tile`` acquired in ``[start, end]``, by date.

    Parameters
    ----------
    root : Path
        Directory holding ``.SAFE`` folders or zips, directly or in ``root/<tile>/``.
    tile : str
        Tile name, with or without its leading ``T``, in any case.
    start, end : datetime.date, optional
        Inclusive range of sensing dates; open-ended when omitted.

    Returns
    -------
    list of Product
        One product per date, the latest processing baseline (then discriminator)
        kept; files keyed ``B2`` ... ``B12`` and ``SCL``, scaled to reflectance x 10000.

    Raises
    ------
    InputDataError
        If ``root`` is missing or holds no product of ``tile``, if none falls in the
        date range, or if a product is incomplete, a corrupt zip, or has missing or
        unusable metadata.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputDataError("Sentinel-2 SAFE directory not found", root)
    products = [_product(entry, fields) for entry, fields in _candidates(root, tile)]
    if not products:
        raise InputDataError(
            f"no Sentinel-2 L2A SAFE product of tile {tile} in this directory", root
        )
    return select_products(products, tile, start, end, root)


def read_safe_scaling(text: bytes, name_baseline: str, where: str) -> SafeScaling:
    """Read the baseline, quantification value and offsets of an ``MTD_MSIL2A.xml``.

    Parameters
    ----------
    text : bytes
        The XML document.
    name_baseline : str
        The ``N####`` digits of the product name, used when the XML has no
        ``PROCESSING_BASELINE``.
    where : str
        The XML's path, named in errors.

    Raises
    ------
    InputDataError
        If the XML cannot be parsed, lacks the quantification value, has an unknown
        baseline, or (from baseline 04.00 on) lacks a band's offset.
    """
    try:
        tree = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise InputDataError(f"unreadable product metadata ({exc})", where) from None
    elements = [(_local_name(element.tag), element) for element in tree.iter()]
    baseline = _baseline(elements, name_baseline, where)
    quantification = _quantification(elements, where)
    offsets = _offsets(elements, where) if baseline >= OFFSET_BASELINE else {}
    return SafeScaling(baseline, quantification, offsets)


def _candidates(root: Path, tile: str) -> Iterable[tuple[Path, dict[str, str]]]:
    """The product entries of ``tile`` in ``root`` and ``root/<tile>/``, with their name fields."""
    wanted = tile_key(tile)
    folders = [root] + [
        entry
        for entry in sorted(root.iterdir())
        if entry.is_dir() and tile_key(entry.name) == wanted
    ]
    for folder in folders:
        for entry in sorted(folder.iterdir()):
            fields = _product_fields(entry)
            if fields is None:
                continue
            if tile_key(fields["tile"]) != wanted:
                logger.debug("ignoring %s: not tile %s", entry, tile)
                continue
            yield entry, fields


def _product_fields(entry: Path) -> dict[str, str] | None:
    """The fields of a ``.SAFE`` folder's or a zip's name, or None for anything else."""
    match = SAFE_PRODUCT_REGEX.match(entry.name)
    if match is None:
        return None
    is_zip = entry.name.endswith(".zip")
    if (is_zip and not entry.is_file()) or (not is_zip and not entry.is_dir()):
        return None
    return match.groupdict()


def _product(entry: Path, fields: dict[str, str]) -> Product:
    """Build the product of a ``.SAFE`` folder or zip."""
    contents = _folder_contents(entry) if entry.is_dir() else _zip_contents(entry)
    files = _band_files(contents.images, entry)
    if contents.metadata is None:
        raise InputDataError("missing product metadata of a SAFE product", contents.where)
    scaling = read_safe_scaling(contents.metadata, fields["baseline"], contents.where)
    date = dt.datetime.strptime(fields["date"], "%Y%m%d").date()
    discriminator = int(fields["discriminator"].replace("T", ""))
    return Product(
        entry,
        fields["tile"],
        date,
        fields["satellite"],
        _scaled(files, scaling),
        (scaling.baseline, discriminator),
    )


@dataclass(frozen=True)
class _Contents:
    """What a SAFE holds: its images (path inside the SAFE → GDAL path) and metadata."""

    images: dict[str, str]
    metadata: bytes | None
    where: str


def _folder_contents(folder: Path) -> _Contents:
    """A ``.SAFE`` folder's images and ``MTD_MSIL2A.xml`` (None when missing)."""
    images = {
        path.relative_to(folder).as_posix(): str(path)
        for path in folder.glob("GRANULE/*/IMG_DATA/R*m/*.jp2")
    }
    path = folder / METADATA_FILE
    try:
        metadata = path.read_bytes() if path.is_file() else None
    except OSError as exc:
        raise InputDataError(f"unreadable product metadata ({exc})", path) from None
    return _Contents(images, metadata, str(path))


def _zip_contents(archive: Path) -> _Contents:
    """A zip's images, as ``/vsizip/`` paths, and its ``MTD_MSIL2A.xml`` (None when missing)."""
    try:
        with zipfile.ZipFile(archive) as opened:
            members = opened.namelist()
            prefix = _safe_prefix(members)
            member = prefix + METADATA_FILE
            metadata = opened.read(member) if member in members else None
    except _ZIP_ERRORS as exc:
        raise InputDataError(f"corrupt or unreadable zip ({exc})", archive) from None
    images = {
        member[len(prefix) :]: vsi_path(archive, member)
        for member in members
        if member.startswith(prefix) and member.endswith(".jp2")
    }
    return _Contents(images, metadata, vsi_path(archive, prefix + METADATA_FILE))


def _safe_prefix(members: list[str]) -> str:
    """``<name>.SAFE/`` when the zip holds the SAFE folder (the Data Space's way), else ``""``."""
    for member in members:
        top = member.split("/", 1)[0]
        if top.endswith(".SAFE") and "/" in member:
            return f"{top}/"
    return ""


def _band_files(images: dict[str, str], product: Path) -> dict[str, str]:
    """The GDAL path of each band, at its native resolution, and of SCL (20 m)."""
    found: dict[str, str] = {}
    for relative in sorted(images):
        key, resolution = _image_key(relative)
        if key is not None and resolution == _native_resolution(key):
            found.setdefault(key, images[relative])
    for key in _required_keys():
        if key not in found:
            resolution = _native_resolution(key)
            raise InputDataError(
                f"incomplete SAFE product: no {key} image at {resolution} m "
                f"(GRANULE/*/IMG_DATA/R{resolution}m/*_{_file_key(key)}_{resolution}m.jp2)",
                product,
            )
    return {key: found[key] for key in _required_keys()}


def _image_key(relative: str) -> tuple[str | None, int]:
    """The canonical key and resolution of an image path inside a SAFE (None if not one)."""
    match = _IMAGE.match(relative)
    name = SAFE_BAND_FILE.match(match["file"]) if match else None
    if match is None or name is None or name["res"] != match["dir"]:
        return None, 0
    return safe_band_key(name["key"]), int(name["res"])


def _file_key(key: str) -> str:
    """A band's key in SAFE file names: ``B2`` → ``B02``; ``B8A`` and ``SCL`` stay."""
    return f"B{int(key[1:]):02d}" if key[1:].isdigit() else key


def _required_keys() -> tuple[str, ...]:
    return (*SENTINEL2_SEN2COR.band_names, *SENTINEL2_SEN2COR.mask.layers)


def _native_resolution(key: str) -> int:
    """A band's resolution; the mask layers (SCL) are read at 20 m."""
    if key in SENTINEL2_SEN2COR.mask.layers:
        return 20
    return SENTINEL2_SEN2COR.band(key).resolution


def _scaled(files: dict[str, str], scaling: SafeScaling) -> tuple[ProductFile, ...]:
    """Product files with each band's DN scaling (masks are not scaled)."""
    result = []
    for key, path in files.items():
        if key in SENTINEL2_SEN2COR.mask.layers:
            result.append(ProductFile(key, path))
        else:
            gain, offset = scaling.gain_offset(key)
            result.append(ProductFile(key, path, gain, offset))
    return tuple(result)


def _local_name(tag: object) -> str:
    """An element's tag without its namespace (comments and processing instructions: '')."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _first_text(elements: list[tuple[str, ElementTree.Element]], names: Iterable[str]) -> str:
    names = set(names)
    for name, element in elements:
        if name in names and element.text and element.text.strip():
            return element.text.strip()
    return ""


def _baseline(
    elements: list[tuple[str, ElementTree.Element]], name_baseline: str, where: str
) -> int:
    """The processing baseline x 100, from PROCESSING_BASELINE or else the name's N####."""
    text = _first_text(elements, ["PROCESSING_BASELINE"])
    if not text:
        text = f"{name_baseline[:2]}.{name_baseline[2:]}"
    match = _BASELINE.match(text)
    if match is None:
        raise InputDataError(
            f"unknown processing baseline {text!r} (expected NN.NN, e.g. 05.00)", where
        )
    return int(match["major"]) * 100 + int(match["minor"])


def _quantification(elements: list[tuple[str, ElementTree.Element]], where: str) -> float:
    text = _first_text(elements, _QUANTIFICATION_TAGS)
    if not text:
        raise InputDataError("no BOA_QUANTIFICATION_VALUE in the product metadata", where)
    value = _number(text, "BOA_QUANTIFICATION_VALUE", where)
    if not value > 0:
        raise InputDataError(f"BOA_QUANTIFICATION_VALUE {text} is not positive", where)
    return value


def _offsets(elements: list[tuple[str, ElementTree.Element]], where: str) -> dict[str, float]:
    """BOA_ADD_OFFSET of every band read, required from baseline 04.00 on."""
    by_id = {
        element.get("band_id", ""): (element.text or "").strip()
        for name, element in elements
        if name == "BOA_ADD_OFFSET"
    }
    offsets = {}
    for band in SENTINEL2_SEN2COR.band_names:
        text = by_id.get(str(BAND_IDS[band]), "")
        if not text:
            raise InputDataError(
                f"no BOA_ADD_OFFSET for {band} (band_id {BAND_IDS[band]}), required from "
                "processing baseline 04.00 on",
                where,
            )
        offsets[band] = _number(text, f"BOA_ADD_OFFSET of {band}", where)
    return offsets


def _number(text: str, what: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InputDataError(f"{what} {text!r} is not a number", where)
    return value
