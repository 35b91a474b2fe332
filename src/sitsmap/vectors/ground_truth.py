"""Prepare the configured ground truth for the chain: check, clean, reproject, number.

The chain runs check-db's corrections silently (logging what it fixed), but
refuses what it cannot fix without guessing: a missing or non-integer class
field, classes outside the nomenclature, polygons outside every tile.
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry.base import BaseGeometry

from sitsmap.errors import InputDataError
from sitsmap.nomenclature import Nomenclature
from sitsmap.sampling.bins import bin_edges, bin_of
from sitsmap.vectors.check import clean_ground_truth, clean_regression_truth

LOGGER = logging.getLogger(__name__)

POLYGON_ID = "sitsmap_pid"
"""Column numbering the polygons of the cleaned ground truth (the unit of the split)."""

BIN_COLUMN = "sitsmap_bin"
"""Regression: the quantile bin of each polygon's target, the stratum that the split
and the sample selection treat as classification treats a class."""

FUSION_COLUMN = "fusion_validation"
"""True for polygons held back from every run to validate the fusion of the runs."""


def prepare_ground_truth(
    frame: gpd.GeoDataFrame,
    path: Path,
    data_field: str,
    nomenclature: Nomenclature,
    crs: object,
    coverage: BaseGeometry,
) -> gpd.GeoDataFrame:
    """Check and clean the ground truth; keep polygons over the tiles, in the tiles' CRS.

    Parameters
    ----------
    frame : GeoDataFrame
        The ground truth as read from ``path``.
    path : Path
        Its file, named in errors.
    data_field : str
        Integer class field.
    nomenclature : Nomenclature
        Known classes.
    crs : object
        CRS of the tiles (anything pyproj understands).
    coverage : shapely geometry
        Union of the tiles' envelopes, in ``crs``.

    Returns
    -------
    GeoDataFrame
        Valid single polygons with ``data_field`` (int), :data:`POLYGON_ID` and
        the other attributes of the input.

    Raises
    ------
    InputDataError
        No features, missing or non-integer field, no usable polygon, unknown
        classes, no polygon over a tile.
    """
    if frame.empty:
        raise InputDataError("the ground truth has no features (0 polygons)", path)
    _check_field(frame, path, data_field)
    cleaned, report = clean_ground_truth(frame, data_field, True, source=path)
    if report.has_defects:
        LOGGER.info("ground truth %s corrected:\n%s", path, report.describe())
    if cleaned.empty:
        raise InputDataError(
            f"the ground truth has no usable polygon: its {len(frame)} feature(s) are "
            "empty, invalid or too small (sitsmap check-db shows why)",
            path,
        )
    unknown = sorted(set(cleaned[data_field].astype(int)) - set(nomenclature.names))
    if unknown:
        raise InputDataError(
            f"class(es) {unknown} of field {data_field!r} are not in the nomenclature", path
        )
    if cleaned.crs is None:
        raise InputDataError("the ground truth has no CRS", path)
    # other attributes are kept: cross-validation may group polygons by one of them
    result = _over_tiles(cleaned, crs, coverage, path)
    result[data_field] = result[data_field].astype(np.int32)
    result[POLYGON_ID] = np.arange(len(result), dtype=np.int64)
    return result


def _over_tiles(
    cleaned: gpd.GeoDataFrame, crs: object, coverage: BaseGeometry, path: Path
) -> gpd.GeoDataFrame:
    """The cleaned features in the tiles' CRS that meet a tile, with a fresh index."""
    projected = cleaned.to_crs(crs)
    inside = projected[projected.intersects(coverage)]
    if inside.empty:
        raise InputDataError("the ground truth does not overlap any tile", path)
    LOGGER.info(
        "ground truth: %d features over the tiles (%d outside dropped)",
        len(inside),
        len(projected) - len(inside),
    )
    return inside.reset_index(drop=True)


def _check_field(frame: gpd.GeoDataFrame, path: Path, data_field: str) -> None:
    if data_field not in frame.columns:
        fields = [c for c in frame.columns if c != frame.geometry.name]
        raise InputDataError(f"no field {data_field!r} (fields: {', '.join(fields)})", path)
    if not pd.api.types.is_integer_dtype(frame[data_field].dtype):
        raise InputDataError(
            f"field {data_field!r} is {frame[data_field].dtype}, not integer "
            "(sitsmap check-db --do-corrections converts whole numbers)",
            path,
        )


def prepare_regression_truth(
    frame: gpd.GeoDataFrame,
    path: Path,
    data_field: str,
    bins: int,
    crs: object,
    coverage: BaseGeometry,
) -> gpd.GeoDataFrame:
    """Check and clean a regression's ground truth (polygons or points with a number).

    Parameters
    ----------
    frame : GeoDataFrame
        The ground truth as read from ``path``.
    path : Path
        Its file, named in errors.
    data_field : str
        The numeric target field.
    bins : int
        Quantile bins of the target (``arg_train.regression_bins``), over the
        polygons kept, written as :data:`BIN_COLUMN`.
    crs : object
        CRS of the tiles.
    coverage : shapely geometry
        Union of the tiles' envelopes, in ``crs``.

    Returns
    -------
    GeoDataFrame
        Polygons and points over the tiles with ``data_field`` (float64),
        :data:`BIN_COLUMN`, :data:`POLYGON_ID` and the other attributes.

    Raises
    ------
    InputDataError
        No features, a missing or non-numeric field, missing values, nothing over
        a tile, or a target with a single value (nothing to learn).
    """
    if frame.empty:
        raise InputDataError("the ground truth has no features (0 polygons)", path)
    cleaned = clean_regression_truth(frame, data_field, source=path)
    inside = _over_tiles(cleaned, crs, coverage, path)
    values = inside[data_field].to_numpy(np.float64)
    if np.ptp(values) == 0:
        raise InputDataError(
            f"field {data_field!r} has the same value ({values[0]:g}) on every feature over "
            "the tiles: a constant target leaves nothing to learn",
            path,
        )
    LOGGER.info("ground truth: %s from %g to %g", data_field, values.min(), values.max())
    inside[BIN_COLUMN] = bin_of(values, bin_edges(values, bins))
    inside[POLYGON_ID] = np.arange(len(inside), dtype=np.int64)
    return inside
