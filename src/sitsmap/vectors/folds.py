"""Spatial cross-validation folds: which group (tile, region, block) each polygon belongs to."""

from __future__ import annotations

from collections.abc import Mapping

import geopandas as gpd
import pandas as pd
from shapely.geometry.base import BaseGeometry

from sitsmap.errors import ConfigError


def polygon_groups(
    polygons: gpd.GeoDataFrame,
    envelopes: Mapping[str, BaseGeometry] | None = None,
    group_field: str | None = None,
) -> pd.Series:
    """Name the group of every polygon: its tile, or the value of ``group_field``.

    A polygon straddling two tiles belongs to the tile whose envelope holds its
    representative point, so it falls in one fold only.

    Parameters
    ----------
    polygons : GeoDataFrame
        Ground truth, in the envelopes' CRS.
    envelopes : mapping of str to geometry, optional
        Non-overlapping tile envelopes, for leave-one-tile-out folds.
    group_field : str, optional
        Column whose values are the groups (regions, blocks).

    Returns
    -------
    pandas.Series
        Group name (str) of each polygon, aligned with ``polygons``.
    """
    if group_field is not None:
        if group_field not in polygons.columns:
            raise ConfigError(f"the ground truth has no field {group_field!r} to group by")
        return polygons[group_field].astype(str)
    points = gpd.GeoDataFrame(geometry=polygons.representative_point(), crs=polygons.crs)
    tiles = gpd.GeoDataFrame(
        {"tile": list(envelopes)}, geometry=list(envelopes.values()), crs=polygons.crs
    )
    joined = gpd.sjoin(points, tiles, how="left", predicate="within")
    joined = joined[~joined.index.duplicated(keep="first")]
    return joined["tile"].reindex(polygons.index).astype(str)
