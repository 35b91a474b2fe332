"""Check and correct ground-truth polygons: the ``sitsmap check-db`` command.

The equivalent of iota2's ``check_database.py``. The defects it finds, in the
order it treats them:

1. empty or null geometries (removed);
2. features without a class (removed);
3. class values that are whole numbers stored as floats or text, ``5.0`` or
   ``"7"`` (converted), and class values that are not integers, ``5.5`` or
   ``"maize"`` (removed);
4. geometries that are neither polygons nor multipolygons (their polygonal
   parts kept, if any);
5. invalid geometries (made valid with :func:`shapely.make_valid`; only the
   polygonal parts are kept, lines and points are dropped, and so are slivers
   smaller than a minimum area);
6. multipolygons with several parts (exploded into single polygons, the
   attributes copied to each);
7. duplicate geometries, compared after normalisation so that the same ring
   with another start or orientation counts (the first one is kept).

:func:`clean_ground_truth` does all of this on a GeoDataFrame, without any file
access, so the chain can clean its configured ground truth with the same code;
:func:`check_database` reads a file, cleans it, reprojects it and writes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from pyproj.exceptions import CRSError

from sitsmap.errors import ConfigError, InputDataError
from sitsmap.io.vector import PathLike, read_vector, vector_info, write_vector

__all__ = [
    "DEFAULT_MIN_AREA",
    "CheckReport",
    "Defect",
    "check_database",
    "clean_ground_truth",
    "validate_ground_truth",
]

logger = logging.getLogger(__name__)

DEFAULT_MIN_AREA = 1.0
"""Polygons left by a repair that are smaller than this (m²) are dropped as slivers."""

EMPTY_GEOMETRY = "empty_geometry"
NULL_CLASS = "null_class"
WHOLE_CLASS = "whole_class"
NON_INTEGER_CLASS = "non_integer_class"
NON_POLYGON = "non_polygon"
INVALID_GEOMETRY = "invalid_geometry"
COLLAPSED_PARTS = "collapsed_parts"
SLIVERS = "slivers"
MULTIPOLYGON = "multipolygon"
DUPLICATE_GEOMETRY = "duplicate_geometry"

_POLYGON = int(shapely.GeometryType.POLYGON)
_MULTIPOLYGON = int(shapely.GeometryType.MULTIPOLYGON)
_COLLECTIONS = [
    int(shapely.GeometryType.MULTIPOINT),
    int(shapely.GeometryType.MULTILINESTRING),
    _MULTIPOLYGON,
    int(shapely.GeometryType.GEOMETRYCOLLECTION),
]
_POLYGONAL_TYPES = {"Polygon", "MultiPolygon", "GeometryCollection"}
_EQUAL_AREA_CRS = "EPSG:6933"
_MAX_CODE = 2.0**62


@dataclass(frozen=True)
class Defect:
    """One kind of defect: how many were found and what the corrections did.

    Attributes
    ----------
    label : str
        What the defect is, for people.
    found : int
        How many features (or parts, for the indented rows) have it.
    fixed : int
        How many were corrected and kept (0 when corrections are off).
    removed : int
        How many were dropped (0 when corrections are off).
    note : str
        A detail shown after the row, e.g. how many polygons an explode made.
    part : bool
        True for rows that count parts of repaired geometries, not features.
    """

    label: str
    found: int
    fixed: int = 0
    removed: int = 0
    note: str = ""
    part: bool = False


@dataclass(frozen=True)
class CheckReport:
    """What a ground-truth check found and, with corrections, what it did.

    Attributes
    ----------
    source : str
        The file (or description) that was checked.
    data_field : str
        The class field.
    features_read : int
        Features in the input.
    polygons_kept : int
        Single polygons left once corrected (written when corrections are on
        or when there is no defect).
    corrected : bool
        Whether the corrections were applied.
    defects : dict of str to Defect
        Each kind of defect by key (``"empty_geometry"``, ``"null_class"``,
        ``"whole_class"``, ``"non_integer_class"``, ``"non_polygon"``,
        ``"invalid_geometry"``, ``"collapsed_parts"``, ``"slivers"``,
        ``"multipolygon"``, ``"duplicate_geometry"``).
    min_area : float
        Sliver threshold in m².
    output : str or None
        The file written, if any.
    epsg : int or None
        The CRS of the file written.
    """

    source: str
    data_field: str
    features_read: int
    polygons_kept: int
    corrected: bool
    defects: dict[str, Defect] = field(default_factory=dict)
    min_area: float = DEFAULT_MIN_AREA
    output: str | None = None
    epsg: int | None = None

    @property
    def has_defects(self) -> bool:
        """True if any defect was found."""
        return any(defect.found for defect in self.defects.values())

    @property
    def defects_found(self) -> int:
        """Number of defects found, summed over the feature rows (not the part rows)."""
        return sum(d.found for d in self.defects.values() if not d.part)

    def describe(self) -> str:
        """Return the report as a few lines of text with a table of defects."""
        lines = [
            f"Ground truth {self.source}, class field {self.data_field!r}: "
            f"{self.features_read} features read.",
            *self._table(),
            self._conclusion(),
        ]
        return "\n".join(lines)

    def _table(self) -> list[str]:
        labels = [("  " if d.part else "") + d.label for d in self.defects.values()]
        width = max([len("defect"), *map(len, labels)])
        header = f"{'defect':<{width}}  {'found':>7}"
        if self.corrected:
            header += f"  {'fixed':>7}  {'removed':>7}"
        rows = [header]
        for label, defect in zip(labels, self.defects.values(), strict=True):
            row = f"{label:<{width}}  {defect.found:>7}"
            if self.corrected:
                fixed = "-" if defect.part else str(defect.fixed)
                row += f"  {fixed:>7}  {defect.removed:>7}"
            if defect.note and defect.found:
                row += f"  ({defect.note})"
            rows.append(row)
        return rows

    def _conclusion(self) -> str:
        where = f" to {self.output} (EPSG:{self.epsg})" if self.output else ""
        written = "written" if self.output else "kept"
        if not self.has_defects:
            return f"No defect found; {self.polygons_kept} polygons {written}{where}."
        if self.corrected:
            return f"Corrected: {self.polygons_kept} polygons {written}{where}."
        return (
            f"{self.defects_found} defects found; nothing written. "
            "Run again with --do-corrections to fix them."
        )


def validate_ground_truth(
    frame: gpd.GeoDataFrame, data_field: str, source: str | Path | None = None
) -> None:
    """Raise if ``frame`` cannot be ground truth at all, whatever the corrections.

    Parameters
    ----------
    frame : GeoDataFrame
        The ground truth as read.
    data_field : str
        The class field.
    source : str or Path, optional
        The file it came from, named in the error.

    Raises
    ------
    InputDataError
        If the class field is missing, the layer has no CRS, or it holds
        geometries but none of them polygonal.
    """
    fields = [name for name in frame.columns if name != frame.geometry.name]
    if data_field not in fields:
        available = ", ".join(map(str, fields)) or "none"
        raise InputDataError(f"no field {data_field!r}; available fields: {available}", source)
    if frame.crs is None:
        raise InputDataError("the layer has no CRS (a Shapefile needs its .prj)", source)
    types = set(frame.geom_type[~(frame.geometry.isna() | frame.geometry.is_empty)])
    if types and not types & _POLYGONAL_TYPES:
        found = ", ".join(sorted(types))
        raise InputDataError(f"not a polygon layer (its geometries are {found})", source)


def clean_ground_truth(
    frame: gpd.GeoDataFrame,
    data_field: str,
    do_corrections: bool = True,
    *,
    min_area: float = DEFAULT_MIN_AREA,
    source: str | Path | None = None,
) -> tuple[gpd.GeoDataFrame, CheckReport]:
    """Find, and optionally correct, the defects of a ground-truth GeoDataFrame.

    Parameters
    ----------
    frame : GeoDataFrame
        Ground-truth polygons with a class field; it is not modified.
    data_field : str
        The class field; once corrected it is an ``int64`` column.
    do_corrections : bool
        Return the corrected frame; otherwise return ``frame`` unchanged
        (unless it has no defect, in which case the corrected frame is
        returned: it only differs by single-part multipolygons made polygons
        and an integer class column).
    min_area : float
        Polygons left by repairing an invalid geometry that are smaller than
        this, in m², are dropped as slivers.
    source : str or Path, optional
        What the frame was read from, for the report and errors.

    Returns
    -------
    GeoDataFrame
        Valid single polygons with integer classes and no duplicates (when
        corrected), with a fresh 0-based index and the input's other columns.
    CheckReport
        The defects found and what was done about them.

    Raises
    ------
    InputDataError
        If the frame cannot be ground truth at all (see
        :func:`validate_ground_truth`).
    """
    validate_ground_truth(frame, data_field, source)
    work = frame.reset_index(drop=True)
    work, empty = _drop_empty_geometries(work)
    work, class_defects = _fix_class_values(work, data_field)
    work, geometry_defects = _explode_to_valid_polygons(work, min_area)
    work, duplicates = _drop_duplicate_geometries(work, data_field)
    defects = {EMPTY_GEOMETRY: empty, **class_defects, **geometry_defects}
    defects[DUPLICATE_GEOMETRY] = duplicates
    if not do_corrections:
        defects = {key: replace(d, fixed=0, removed=0) for key, d in defects.items()}
    report = CheckReport(
        source=str(source) if source is not None else "<GeoDataFrame>",
        data_field=data_field,
        features_read=len(frame),
        polygons_kept=len(work),
        corrected=do_corrections,
        defects=defects,
        min_area=min_area,
    )
    if do_corrections or not report.has_defects:
        return work, report
    return frame.copy(), report


def check_database(
    in_path: PathLike,
    out_path: PathLike,
    *,
    data_field: str = "code",
    epsg: int = 2154,
    do_corrections: bool = False,
    min_area: float = DEFAULT_MIN_AREA,
) -> CheckReport:
    """Check a ground-truth vector file, correct it if asked, reproject it and write it.

    ``out_path`` is written (atomically; the driver follows its extension) when
    the corrections are on, or when the input has no defect; otherwise nothing
    is written and the report says why.

    Parameters
    ----------
    in_path : str or PathLike
        Any vector file OGR reads, with polygons.
    out_path : str or PathLike
        Where to write the checked polygons (``.gpkg``, ``.shp``, ...).
    data_field : str
        The integer class field.
    epsg : int
        EPSG code of the output CRS.
    do_corrections : bool
        Correct the defects instead of only reporting them.
    min_area : float
        Sliver threshold in m² for polygons left by repairs.

    Returns
    -------
    CheckReport
        The defects found, what was done, and what was written.

    Raises
    ------
    ConfigError
        If PROJ does not know ``epsg``.
    InputDataError
        If the input is missing or unreadable, is not a polygon layer, has no
        CRS or no ``data_field``, or if no polygon is left to write.
    """
    crs = _crs_from_epsg(epsg)
    frame = read_vector(in_path)
    _check_layer_type(in_path)
    cleaned, report = clean_ground_truth(
        frame, data_field, do_corrections, min_area=min_area, source=in_path
    )
    logger.debug("checked %s: %s", in_path, report.defects)
    if report.has_defects and not do_corrections:
        return report
    if cleaned.empty:
        logger.warning("%s", report.describe())
        problem = (
            f"no polygon left to write (all {report.features_read} features removed)"
            if report.features_read
            else "the layer has no feature"
        )
        raise InputDataError(problem, in_path)
    # Name the layer after the file: left unnamed, GDAL would name it after the
    # temporary file of the atomic write, which GeoPackage rejects.
    write_vector(_reproject(cleaned, crs, in_path), out_path, layer=Path(out_path).stem)
    return replace(report, output=str(out_path), epsg=epsg)


def _crs_from_epsg(epsg: int) -> pyproj.CRS:
    """Return the CRS of ``epsg``, or raise ConfigError if PROJ does not know it."""
    try:
        return pyproj.CRS.from_epsg(epsg)
    except CRSError as exc:
        raise ConfigError(f"EPSG:{epsg} is not a CRS known to PROJ") from exc


def _check_layer_type(path: PathLike) -> None:
    """Raise if the layer declares point or line geometries (even with no feature)."""
    if Path(path).suffix.lower() == ".parquet":
        return
    problem = layer_type_problem(vector_info(path).get("geometry_type"))
    if problem:
        raise InputDataError(problem, path)


def layer_type_problem(declared: str | None, points: bool = False) -> str | None:
    """Why a layer declaring geometry type ``declared`` cannot hold polygons, or None.

    Point and line layers are refused (point layers accepted with ``points``, as a
    regression's ground truth may be); polygon, unknown and mixed ones are read.
    """
    declared = str(declared or "")
    if points and "point" in declared.lower():
        return None
    if "point" in declared.lower() or "line" in declared.lower():
        return f"not a polygon layer (its geometry type is {declared})"
    return None


def _drop_empty_geometries(frame: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, Defect]:
    """Drop features whose geometry is null or empty."""
    empty = (frame.geometry.isna() | frame.geometry.is_empty).to_numpy()
    count = int(empty.sum())
    defect = Defect("empty or null geometry", found=count, removed=count)
    return frame[~empty].reset_index(drop=True), defect


def _fix_class_values(
    frame: gpd.GeoDataFrame, data_field: str
) -> tuple[gpd.GeoDataFrame, dict[str, Defect]]:
    """Drop features without an integer class; make the class field ``int64``."""
    codes, missing, converted, non_integer = _class_codes(frame[data_field])
    keep = ~(missing | non_integer)
    out = frame[keep].reset_index(drop=True)
    out[data_field] = codes[keep]
    n_missing, n_converted, n_bad = (int(m.sum()) for m in (missing, converted, non_integer))
    defects = {
        NULL_CLASS: Defect("class missing (null)", found=n_missing, removed=n_missing),
        WHOLE_CLASS: Defect(
            "class whole but not integer (5.0, '7')", found=n_converted, fixed=n_converted
        ),
        NON_INTEGER_CLASS: Defect(
            "class not an integer (5.5, 'maize')", found=n_bad, removed=n_bad
        ),
    }
    return out, defects


def _class_codes(
    values: pd.Series,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read class values as integers.

    Returns
    -------
    codes : ndarray of int64
        The integer class (0 where there is none).
    missing, converted, non_integer : ndarray of bool
        Null or blank values; whole numbers not stored as integers (``5.0``,
        ``"7"``); values that are not whole numbers.
    """
    if pd.api.types.is_integer_dtype(values):
        missing = values.isna().to_numpy()
        codes = values.fillna(0).to_numpy(dtype=np.int64)
        no = np.zeros(len(values), dtype=bool)
        return codes, missing, no, no.copy()
    missing = values.isna().to_numpy() | _blank_text(values)
    numbers = pd.to_numeric(values.where(~missing), errors="coerce")
    numbers = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(numbers) & (numbers == np.round(numbers))
        whole &= np.abs(numbers) < _MAX_CODE
    stored_as_int = _stored_as_int(values)
    converted = whole & ~missing & ~stored_as_int
    non_integer = ~whole & ~missing
    codes = np.where(whole, numbers, 0).astype(np.int64)
    return codes, missing, converted, non_integer


def _blank_text(values: pd.Series) -> np.ndarray:
    """Return where a text column holds empty or blank strings."""
    if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
        return np.zeros(len(values), dtype=bool)
    text = values.astype("string").str.strip()
    return text.eq("").fillna(False).to_numpy(dtype=bool)


def _stored_as_int(values: pd.Series) -> np.ndarray:
    """Return where an object column holds Python or NumPy integers (not bools)."""
    if not pd.api.types.is_object_dtype(values):
        return np.zeros(len(values), dtype=bool)
    is_int = values.map(
        lambda v: isinstance(v, int | np.integer) and not isinstance(v, bool), na_action="ignore"
    )
    return is_int.fillna(False).to_numpy(dtype=bool)


def _explode_to_valid_polygons(
    frame: gpd.GeoDataFrame, min_area: float
) -> tuple[gpd.GeoDataFrame, dict[str, Defect]]:
    """Repair invalid geometries and explode everything into single valid polygons.

    Attributes are copied to every polygon of a feature. Non-polygonal parts
    (of repaired geometries and of collections) are dropped, and so are
    polygons smaller than ``min_area`` m² left by a repair.
    """
    geoms = frame.geometry.to_numpy()
    type_ids = shapely.get_type_id(geoms)
    non_polygon = ~np.isin(type_ids, [_POLYGON, _MULTIPOLYGON])
    multi = (type_ids == _MULTIPOLYGON) & (shapely.get_num_geometries(geoms) > 1)
    invalid = ~shapely.is_valid(geoms)
    geoms = geoms.copy()
    geoms[invalid] = shapely.make_valid(geoms[invalid])
    parts, source = _flatten(geoms)
    polygon = (shapely.get_type_id(parts) == _POLYGON) & ~shapely.is_empty(parts)
    repaired_part = invalid[source]
    sliver = np.zeros(len(parts), dtype=bool)
    candidates = polygon & repaired_part
    sliver[candidates] = _areas_m2(parts[candidates], frame.crs) < min_area
    keep = polygon & ~sliver
    kept_per_feature = np.bincount(source[keep], minlength=len(frame))
    out = frame.iloc[source[keep]].reset_index(drop=True)
    out[out.geometry.name] = gpd.array.from_shapely(parts[keep], crs=frame.crs)
    n_collapsed = int((repaired_part & ~polygon).sum())
    n_slivers = int(sliver.sum())
    multi_parts = int(kept_per_feature[multi].sum())
    defects = {
        NON_POLYGON: _feature_defect("not a polygon", non_polygon, kept_per_feature),
        INVALID_GEOMETRY: _feature_defect(
            "invalid geometry (made valid)", invalid, kept_per_feature
        ),
        COLLAPSED_PARTS: Defect(
            "line/point parts left by repairs", n_collapsed, removed=n_collapsed, part=True
        ),
        SLIVERS: Defect(
            f"slivers < {min_area:g} m² left by repairs", n_slivers, removed=n_slivers, part=True
        ),
        MULTIPOLYGON: _feature_defect(
            "multipolygon (exploded)", multi, kept_per_feature, note=f"into {multi_parts} polygons"
        ),
    }
    return out, defects


def _feature_defect(
    label: str, found: np.ndarray, kept_per_feature: np.ndarray, note: str = ""
) -> Defect:
    """Count features with a defect: fixed if they kept a polygon, removed otherwise."""
    fixed = int((found & (kept_per_feature > 0)).sum())
    return Defect(label, int(found.sum()), fixed=fixed, removed=int(found.sum()) - fixed, note=note)


def _flatten(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split multi-part geometries and collections, recursively, into single parts.

    Returns
    -------
    parts : ndarray of shapely geometries
    source : ndarray of int
        Index in ``geoms`` of the geometry each part comes from.
    """
    parts, source = geoms, np.arange(len(geoms))
    while np.isin(shapely.get_type_id(parts), _COLLECTIONS).any():
        parts, index = shapely.get_parts(parts, return_index=True)
        source = source[index]
    return parts, source


def _areas_m2(geoms: np.ndarray, crs: pyproj.CRS | None) -> np.ndarray:
    """Return the areas of ``geoms`` in m² (in CRS units squared without a CRS)."""
    if crs is None or len(geoms) == 0:
        return shapely.area(geoms)
    if crs.is_geographic:
        projected = gpd.GeoSeries(geoms, crs=crs).to_crs(_EQUAL_AREA_CRS)
        return projected.area.to_numpy()
    axis = crs.axis_info
    factor = axis[0].unit_conversion_factor if axis else 1.0
    return shapely.area(geoms) * factor**2


def _drop_duplicate_geometries(
    frame: gpd.GeoDataFrame, data_field: str
) -> tuple[gpd.GeoDataFrame, Defect]:
    """Drop polygons equal to an earlier one (same ring whatever its start or orientation)."""
    keys = pd.Series(shapely.to_wkb(shapely.normalize(frame.geometry.to_numpy())))
    duplicate = keys.duplicated(keep="first").to_numpy()
    first_class = frame[data_field].groupby(keys.to_numpy()).transform("first").to_numpy()
    conflicts = int((duplicate & (frame[data_field].to_numpy() != first_class)).sum())
    count = int(duplicate.sum())
    note = f"{conflicts} with another class than the kept one" if conflicts else ""
    defect = Defect("duplicate geometry (first kept)", count, removed=count, note=note)
    return frame[~duplicate].reset_index(drop=True), defect


def _reproject(frame: gpd.GeoDataFrame, crs: pyproj.CRS, source: PathLike) -> gpd.GeoDataFrame:
    """Reproject to ``crs``, repairing the rare polygons the reprojection makes invalid."""
    out = frame.to_crs(crs)
    geoms = out.geometry.to_numpy()
    if not np.isfinite(shapely.bounds(geoms)).all():
        raise InputDataError(f"some polygons lie outside the area of EPSG:{crs.to_epsg()}", source)
    invalid = ~shapely.is_valid(geoms)
    if not invalid.any():
        return out
    logger.warning(
        "%s: %d polygons became invalid when reprojected; repaired", source, int(invalid.sum())
    )
    out, _ = _explode_to_valid_polygons(out, min_area=0.0)
    return out


_POINT = int(shapely.GeometryType.POINT)
_MULTIPOINT = int(shapely.GeometryType.MULTIPOINT)


def clean_regression_truth(
    frame: gpd.GeoDataFrame,
    data_field: str,
    *,
    min_area: float = DEFAULT_MIN_AREA,
    source: str | Path | None = None,
) -> gpd.GeoDataFrame:
    """Clean the ground truth of a regression: polygons or points with a numeric value.

    Empty geometries are dropped, polygons are repaired and exploded as
    :func:`clean_ground_truth` does, multipoints are exploded into points,
    duplicates dropped (the first kept). A value that is not a number, or that
    is missing, is refused rather than dropped: a regression target cannot be guessed.

    Parameters
    ----------
    frame : GeoDataFrame
        The ground truth as read.
    data_field : str
        The numeric target field; a float64 column once cleaned.
    min_area : float
        Polygons left by a repair smaller than this (m²) are dropped.
    source : str or Path, optional
        The file it came from, named in errors.

    Returns
    -------
    GeoDataFrame
        Single valid polygons and points with a finite float64 target.

    Raises
    ------
    InputDataError
        A missing field, no CRS, a non-numeric field, missing or infinite values,
        or no polygon or point.
    """
    fields = [name for name in frame.columns if name != frame.geometry.name]
    if data_field not in fields:
        available = ", ".join(map(str, fields)) or "none"
        raise InputDataError(f"no field {data_field!r}; available fields: {available}", source)
    if frame.crs is None:
        raise InputDataError("the layer has no CRS (a Shapefile needs its .prj)", source)
    values = frame[data_field]
    if not (pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)):
        raise InputDataError(
            f"field {data_field!r} is {values.dtype}, not numeric: a regression "
            "(arg_train.task: regression) needs a number per feature",
            source,
        )
    numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(numbers)
    if bad.any():
        raise InputDataError(
            f"{int(bad.sum())} of {len(frame)} feature(s) have no finite value in field "
            f"{data_field!r} (null, NaN or infinite, first at feature {int(np.argmax(bad))}): "
            "give every feature a value or remove those features",
            source,
        )
    work, _ = _drop_empty_geometries(frame.reset_index(drop=True).assign(**{data_field: numbers}))
    type_ids = shapely.get_type_id(work.geometry.to_numpy())
    pointy = np.isin(type_ids, [_POINT, _MULTIPOINT])
    points = work[pointy].explode(index_parts=False).reset_index(drop=True)
    polygons, _ = _explode_to_valid_polygons(work[~pointy].reset_index(drop=True), min_area)
    parts = [part for part in (polygons, points) if not part.empty]
    if not parts:
        raise InputDataError("no polygon or point with a value: nothing to learn from", source)
    joined = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=frame.crs)
    cleaned, _ = _drop_duplicate_geometries(joined, data_field)
    return cleaned
