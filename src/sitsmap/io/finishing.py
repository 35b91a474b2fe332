"""Finished maps: Cloud-Optimized GeoTIFFs with overviews, QGIS styles and attribute tables.

:func:`finish_raster` rewrites a final GeoTIFF in place as a COG whose
overviews go down until one block holds the whole image: the most frequent
class (GDAL's ``MODE``) for class maps, so that a zoomed-out map only shows
codes that exist, and the mean (``AVERAGE``) for continuous values. Beside a
class map it writes a QGIS layer style (``.qml``, a paletted renderer with
the nomenclature's names and colours) and a GDAL raster attribute table
(``.tif.aux.xml``) naming every class.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Literal

import numpy as np
import rasterio
import rasterio.shutil

from sitsmap.io.atomic import atomic_path, remove_path, write_text
from sitsmap.io.raster import PathLike, open_raster
from sitsmap.nomenclature import Nomenclature

__all__ = [
    "BLOCKSIZE",
    "attribute_table_path",
    "cog_options",
    "finish_raster",
    "qml_path",
    "write_attribute_table",
    "write_qml",
]

Kind = Literal["classes", "continuous"]

BLOCKSIZE = 512
"""Side of the COG's tiles, in pixels (GDAL's default)."""

OVERVIEW_RESAMPLING: dict[str, str] = {"classes": "MODE", "continuous": "AVERAGE"}
"""GDAL resampling of the overviews, by kind of map."""

# GDAL's raster attribute table codes: field types (GDALRATFieldType) and usages
_INTEGER, _STRING = 0, 2
_MIN_MAX, _NAME, _RED, _GREEN, _BLUE, _ALPHA = 5, 2, 6, 7, 8, 9
_FIELDS = (
    ("Value", _INTEGER, _MIN_MAX),
    ("Class_Name", _STRING, _NAME),
    ("Red", _INTEGER, _RED),
    ("Green", _INTEGER, _GREEN),
    ("Blue", _INTEGER, _BLUE),
    ("Alpha", _INTEGER, _ALPHA),
)


def finish_raster(
    path: PathLike,
    kind: Kind,
    nomenclature: Nomenclature | None = None,
    threads: int | None = None,
) -> None:
    """Rewrite a final GeoTIFF as a Cloud-Optimized GeoTIFF, with a style beside a class map.

    The pixels, nodata, colour table and band descriptions are kept; the file
    is replaced atomically. Any style or attribute table left beside ``path``
    by an earlier run is replaced, or removed when none is written.

    Parameters
    ----------
    path : str or PathLike
        The GeoTIFF to rewrite.
    kind : {"classes", "continuous"}
        ``"classes"``: overviews keep the most frequent class; ``"continuous"``
        (probabilities, confidence, counts): overviews average.
    nomenclature : Nomenclature, optional
        With ``"classes"``: the names and colours written to ``<stem>.qml``
        and ``<path>.aux.xml``; neither is written without one.
    threads : int, optional
        Threads GDAL may use to compress; every core when omitted.

    Raises
    ------
    ValueError
        If ``kind`` is not one of the two kinds.
    InputDataError
        If ``path`` cannot be read as a raster.
    """
    if kind not in OVERVIEW_RESAMPLING:
        raise ValueError(f"kind must be 'classes' or 'continuous', not {kind!r}")
    final = Path(path)
    write_cog(final, kind, threads)
    if kind == "classes" and nomenclature is not None:
        write_attribute_table(final, nomenclature)
        write_qml(final, nomenclature)
    else:
        remove_path(attribute_table_path(final))
        remove_path(qml_path(final))


def write_cog(path: Path, kind: Kind, threads: int | None = None) -> None:
    """Rewrite the GeoTIFF at ``path`` as a COG in place, atomically (see :func:`cog_options`).

    GDAL's ``.aux.xml`` sidecars are neither read nor written meanwhile, so
    the COG holds only what the GeoTIFF itself holds.
    """
    with (  # the source closes before the COG replaces it
        rasterio.Env(GDAL_PAM_ENABLED="NO"),
        atomic_path(path) as tmp,
        open_raster(path) as src,
    ):
        options = cog_options(src.width, src.height, src.dtypes[0], kind, threads)
        rasterio.shutil.copy(src, tmp, driver="COG", **options)


def cog_options(
    width: int, height: int, dtype: str, kind: Kind, threads: int | None = None
) -> dict[str, str | int]:
    """Return GDAL's COG creation options for a raster of this size and type.

    Parameters
    ----------
    width, height : int
        Size of the raster, in pixels.
    dtype : str
        Its data type; integers get the horizontal differencing predictor.
    kind : {"classes", "continuous"}
        Picks the overviews' resampling (:data:`OVERVIEW_RESAMPLING`).
    threads : int, optional
        Compression threads; every core when omitted.

    Returns
    -------
    dict
        Creation options for ``rasterio.shutil.copy(..., driver="COG")``.
    """
    options: dict[str, str | int] = {
        "COMPRESS": "DEFLATE",
        "BIGTIFF": "IF_SAFER",
        "BLOCKSIZE": BLOCKSIZE,
        "RESAMPLING": OVERVIEW_RESAMPLING[kind],
        "OVERVIEW_COUNT": overview_count(width, height),
        "NUM_THREADS": "ALL_CPUS" if threads is None else max(1, threads),
    }
    if np.dtype(dtype).kind in "iu":
        options["PREDICTOR"] = "YES"
    return options


def overview_count(width: int, height: int, blocksize: int = BLOCKSIZE) -> int:
    """Return the number of halvings until one block holds the image; at least one.

    A raster of a single pixel gets none.
    """
    side = max(width, height)
    if side < 2:
        return 0
    return max(1, math.ceil(math.log2(side / blocksize)))


def qml_path(path: PathLike) -> Path:
    """Return where the QGIS style of the raster at ``path`` goes (``<stem>.qml``)."""
    return Path(path).with_suffix(".qml")


def attribute_table_path(path: PathLike) -> Path:
    """Return GDAL's sidecar of the raster at ``path`` (``<path>.aux.xml``)."""
    final = Path(path)
    return final.with_name(f"{final.name}.aux.xml")


def write_qml(path: PathLike, nomenclature: Nomenclature) -> Path:
    """Write a QGIS layer style showing each class in its colour, under its name.

    Parameters
    ----------
    path : str or PathLike
        The class map; the style goes to ``<path without .tif>.qml``.
    nomenclature : Nomenclature
        One palette entry per class code, in increasing order.

    Returns
    -------
    Path
        The style written.
    """
    root = ET.Element("qgis", version="3.28.0", styleCategories="AllStyleCategories")
    pipe = ET.SubElement(root, "pipe")
    renderer = ET.SubElement(
        pipe, "rasterrenderer", type="paletted", band="1", opacity="1", alphaBand="-1"
    )
    ET.SubElement(renderer, "rasterTransparency")
    palette = ET.SubElement(renderer, "colorPalette")
    for code in nomenclature.codes:
        ET.SubElement(
            palette,
            "paletteEntry",
            value=str(code),
            color="#{:02x}{:02x}{:02x}".format(*nomenclature.color(code)),
            alpha="255",
            label=nomenclature.name(code),
        )
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    ET.SubElement(root, "blendMode").text = "0"
    doctype = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
    target = qml_path(path)
    write_text(target, doctype + _xml_text(root))
    return target


def write_attribute_table(path: PathLike, nomenclature: Nomenclature) -> Path:
    """Write a GDAL raster attribute table naming each class (``<path>.aux.xml``).

    GDAL, and QGIS through it, read the table from this sidecar: one row per
    class code with fields Value, Class_Name, Red, Green, Blue and Alpha.

    Parameters
    ----------
    path : str or PathLike
        The class map (single band).
    nomenclature : Nomenclature
        One row per class code, in increasing order.

    Returns
    -------
    Path
        The sidecar written.
    """
    root = ET.Element("PAMDataset")
    band = ET.SubElement(root, "PAMRasterBand", band="1")
    table = ET.SubElement(band, "GDALRasterAttributeTable", tableType="thematic")
    for index, (name, kind, usage) in enumerate(_FIELDS):
        field = ET.SubElement(table, "FieldDefn", index=str(index))
        ET.SubElement(field, "Name").text = name
        ET.SubElement(field, "Type").text = str(kind)
        ET.SubElement(field, "Usage").text = str(usage)
    for index, code in enumerate(nomenclature.codes):
        row = ET.SubElement(table, "Row", index=str(index))
        for value in (code, nomenclature.name(code), *nomenclature.color(code), 255):
            ET.SubElement(row, "F").text = str(value)
    target = attribute_table_path(path)
    write_text(target, _xml_text(root))
    return target


def _xml_text(root: ET.Element) -> str:
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"
