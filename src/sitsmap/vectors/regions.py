"""Eco-regions: checking the region layer and giving each polygon its region.

Pure functions on GeoDataFrames: :mod:`sitsmap.pipeline.steps.init` reads the
layer and writes what these return.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from sitsmap.errors import InputDataError

__all__ = [
    "REGION_COLUMN",
    "assign_regions",
    "check_region_ids",
    "prepare_regions",
    "region_index",
]

LOGGER = logging.getLogger(__name__)

REGION_COLUMN = "region"
"""Column of the region id (a string) in the ground truth, the splits and the samples."""

_REGION_NAME = re.compile(r"[A-Za-z0-9_-]+")
"""A region id names tasks and folders (``learning-seed0-region3``)."""

_OVERLAP_TOLERANCE = 1.0
"""Square metres two regions may share (digitising slivers) before they overlap."""


def check_region_ids(values: Sequence[object], path: Path, field: str) -> list[str]:
    """Return the sorted distinct region ids, as strings, of a region field.

    Whole-number floats (a Shapefile's ``3.0``) read as ``3``.

    Raises
    ------
    InputDataError
        If an id is empty or holds other characters than letters, digits, ``_``, ``-``.
    """
    ids = set()
    for value in values:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
        if not _REGION_NAME.fullmatch(text):
            raise InputDataError(
                f"chain.region_field {field!r}: region id {text!r} is not a valid name "
                "(letters, digits, '_' and '-' only)",
                path,
            )
        ids.add(text)
    if not ids:
        raise InputDataError("chain.region_path: the region layer has no features", path)
    return sorted(ids)


def prepare_regions(
    frame: gpd.GeoDataFrame,
    path: Path,
    field: str,
    crs: object,
    coverage: BaseGeometry,
) -> gpd.GeoDataFrame:
    """Check the region layer and return one (multi)polygon per region, in ``crs``.

    Parameters
    ----------
    frame : GeoDataFrame
        The layer as read from ``path``.
    path : Path
        Its file, named in errors.
    field : str
        The region id field.
    crs : object
        The tiles' CRS.
    coverage : shapely geometry
        Union of the tiles' envelopes, in ``crs``.

    Returns
    -------
    GeoDataFrame
        Columns :data:`REGION_COLUMN` (sorted string ids) and geometry.

    Raises
    ------
    InputDataError
        No such field, an invalid id, no CRS, regions that overlap, or no region over
        a tile.
    """
    if field not in frame.columns:
        fields = ", ".join(c for c in frame.columns if c != "geometry") or "none"
        raise InputDataError(
            f"chain.region_path: no field {field!r} (chain.region_field); its fields: {fields}",
            path,
        )
    if frame.crs is None:
        raise InputDataError("chain.region_path: the region layer has no CRS", path)
    ids = check_region_ids(frame[field].tolist(), path, field)
    frame = frame.assign(**{REGION_COLUMN: [_as_id(v) for v in frame[field]]})
    frame = frame[~frame.geometry.is_empty & frame.geometry.notna()].to_crs(crs)
    frame = frame.set_geometry(shapely.make_valid(frame.geometry.values))
    dissolved = frame.dissolve(by=REGION_COLUMN, as_index=False)[[REGION_COLUMN, "geometry"]]
    _check_no_overlap(dissolved, path)
    touching = dissolved[dissolved.intersects(coverage)]
    if touching.empty:
        raise InputDataError("chain.region_path: no region overlaps any tile", path)
    dropped = sorted(set(ids) - set(touching[REGION_COLUMN]))
    if dropped:
        LOGGER.warning("regions %s overlap no tile: no model is made for them", dropped)
    return touching.sort_values(REGION_COLUMN).reset_index(drop=True)


def assign_regions(polygons: gpd.GeoDataFrame, regions: gpd.GeoDataFrame) -> pd.Series:
    """The region of each polygon: the one holding its representative point (None if none)."""
    points = gpd.GeoDataFrame(
        geometry=polygons.geometry.representative_point(), crs=polygons.crs, index=polygons.index
    )
    joined = gpd.sjoin(points, regions, how="left", predicate="within")
    joined = joined[~joined.index.duplicated(keep="first")]
    return joined[REGION_COLUMN].reindex(polygons.index)


def region_index(ids: Sequence[str]) -> dict[str, int]:
    """Raster value of each region: 1, 2, … in id order (0 is outside every region)."""
    return {region: number for number, region in enumerate(sorted(ids), start=1)}


def _as_id(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _check_no_overlap(regions: gpd.GeoDataFrame, path: Path) -> None:
    geometries = list(regions.geometry)
    tree = shapely.STRtree(geometries)
    left, right = tree.query(geometries, predicate="intersects")
    for i, j in zip(left, right, strict=True):
        if i < j:
            shared = shapely.intersection(geometries[i], geometries[j]).area
            if shared > _OVERLAP_TOLERANCE:
                a, b = regions[REGION_COLUMN].iloc[i], regions[REGION_COLUMN].iloc[j]
                raise InputDataError(
                    f"chain.region_path: regions {a} and {b} overlap ({shared:.0f} m²): "
                    "a pixel must belong to one region",
                    path,
                )
