"""Validate any class map against any reference polygons, as OTB's ComputeConfusionMatrix.

The flow of the chain's validation step for one map, without a chain around
it: the reference polygons are reprojected onto the map's CRS, every map pixel
whose centre lies inside a polygon is paired with the polygon's class, and
the confusion matrix, metrics, mapped class areas and area-adjusted figures
(Olofsson et al. 2014) are written to ``RESULTS.txt`` and ``results.json``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
from pandas.api.types import is_integer_dtype
from rasterio.crs import CRS

from sitsmap.errors import InputDataError
from sitsmap.io.atomic import write_text
from sitsmap.io.jsonfile import write_json
from sitsmap.io.raster import RasterGrid, RasterInfo, read_raster_info
from sitsmap.io.vector import read_vector
from sitsmap.nomenclature import NODATA_CLASS, Nomenclature, load_nomenclature
from sitsmap.validation.area import AreaAdjusted, area_adjusted_accuracy
from sitsmap.validation.metrics import ClassificationMetrics, metrics_of_pairs
from sitsmap.validation.reference import class_pixel_counts, reference_and_production
from sitsmap.validation.report import per_class_scores, results_txt

__all__ = ["default_out_dir", "validate_map"]

logger = logging.getLogger(__name__)


def validate_map(
    map_path: str | Path,
    reference_path: str | Path,
    field: str,
    nomenclature_path: str | Path | None = None,
    out_dir: str | Path | None = None,
) -> Path:
    """Write the confusion matrix, OA, kappa, per-class scores and areas of one map.

    Parameters
    ----------
    map_path : str or Path
        Single-band integer class map with a CRS. Its nodata value (0 when the
        file declares none, as sitsmap's maps) is left out.
    reference_path : str or Path
        Reference polygons, any OGR format and any CRS.
    field : str
        Integer class field of the reference polygons.
    nomenclature_path : str or Path, optional
        ``name:code`` file naming the classes in ``RESULTS.txt``; OSO's by default.
    out_dir : str or Path, optional
        Output folder; ``<map stem>_validation/`` beside the map by default.

    Returns
    -------
    Path
        The output folder, holding ``RESULTS.txt`` and ``results.json``.

    Raises
    ------
    InputDataError
        If the map or the reference is missing or unfit, or no map pixel falls
        inside the reference polygons.
    """
    map_path, reference_path = Path(map_path), Path(reference_path)
    info = _class_map_info(map_path)
    nomenclature = load_nomenclature(nomenclature_path)
    polygons = _reference_polygons(reference_path, field, info.grid.crs)
    nodata = NODATA_CLASS if info.nodata is None else int(info.nodata)
    out = Path(out_dir) if out_dir is not None else default_out_dir(map_path)
    _check_outputs_spare_inputs(out, [map_path, reference_path, nomenclature_path])
    reference, production = _paired_pixels(map_path, polygons, field, nodata, reference_path)
    metrics = metrics_of_pairs(reference, production)
    mapped = class_pixel_counts(map_path, nodata=nodata)
    mapped_pixels = [int(mapped.get(code, 0)) for code in metrics.labels]
    pixel_area_ha = _pixel_area_ha(info.grid)
    area = area_adjusted_accuracy(
        metrics.confusion,
        np.asarray(mapped_pixels, dtype=np.float64),
        metrics.labels,
        pixel_area_ha=pixel_area_ha,
    )
    text = results_txt([(0, metrics)], nomenclature) + _area_text(area, nomenclature)
    write_text(out / "RESULTS.txt", text)
    document = {
        "map": str(map_path),
        "reference": str(reference_path),
        "field": field,
        "nodata": nodata,
        "pixel_area_ha": pixel_area_ha,
        **_metrics_document(metrics),
        "mapped_pixels": mapped_pixels,
        "area_adjusted": area.to_dict(),
    }
    write_json(out / "results.json", document)
    return out


def default_out_dir(map_path: Path) -> Path:
    """Return ``<map stem>_validation/`` beside the map."""
    return map_path.with_name(f"{map_path.stem}_validation")


def _check_outputs_spare_inputs(out: Path, inputs: list[str | Path | None]) -> None:
    """Refuse an output folder where ``RESULTS.txt`` or ``results.json`` is an input."""
    given = {Path(path).resolve() for path in inputs if path is not None}
    for name in _OUTPUTS:
        if (out / name).resolve() in given:
            raise InputDataError(f"writing {name} there would replace an input", out / name)


_OUTPUTS = ("RESULTS.txt", "results.json")


def _paired_pixels(
    map_path: Path, polygons: gpd.GeoDataFrame, field: str, nodata: int, reference_path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Reference and map classes of the pixels inside the polygons; an error if none."""
    reference, production = reference_and_production(map_path, polygons, field, nodata=nodata)
    if reference.size == 0:
        raise InputDataError(
            "no map pixel falls inside the reference polygons (they miss the map, are "
            "narrower than a pixel, or lie over no-data)",
            reference_path,
        )
    return reference, production


def _class_map_info(map_path: Path) -> RasterInfo:
    """Read the map's header and check that it can be a class map."""
    if not map_path.exists():
        raise InputDataError("no such file", map_path)
    info = read_raster_info(map_path)
    if info.count != 1:
        raise InputDataError(f"a class map has one band; this one has {info.count}", map_path)
    if np.dtype(info.dtype).kind not in "iu":
        raise InputDataError(
            f"a class map holds integer codes; this one holds {info.dtype} values", map_path
        )
    if info.grid.crs is None:
        raise InputDataError(
            "the map has no CRS: the reference polygons cannot be placed on it", map_path
        )
    return info


def _reference_polygons(path: Path, field: str, crs: CRS) -> gpd.GeoDataFrame:
    """Read the reference polygons, check their class field and reproject them onto ``crs``."""
    polygons = read_vector(path)
    if field not in polygons.columns:
        fields = ", ".join(str(c) for c in polygons.columns if c != polygons.geometry.name)
        raise InputDataError(f"no field {field!r} (fields: {fields or 'none'})", path)
    if not is_integer_dtype(polygons[field].dtype):
        raise InputDataError(
            f"field {field!r} holds {polygons[field].dtype} values, not integer class codes",
            path,
        )
    if polygons.crs is None:
        raise InputDataError("the reference polygons have no CRS (for a shapefile: a .prj)", path)
    return polygons.to_crs(crs.to_wkt())


def _pixel_area_ha(grid: RasterGrid) -> float | None:
    """Area of one pixel in hectares; None when the CRS's unit is not a length (degrees)."""
    if not grid.crs.is_projected:
        logger.warning("the map's CRS is geographic: areas are given in pixels, not hectares")
        return None
    _, metres_per_unit = grid.crs.linear_units_factor
    transform = grid.transform
    square_units = abs(transform.a * transform.e - transform.b * transform.d)
    return square_units * metres_per_unit**2 / 10_000


def _metrics_document(metrics: ClassificationMetrics) -> dict:
    """The accuracy figures of ``results.json`` (NaN as None)."""
    return {
        "labels": [int(code) for code in metrics.labels],
        "confusion": np.asarray(metrics.confusion).astype(np.int64).tolist(),
        "confusion_layout": "rows = reference, columns = map",
        "overall_accuracy": _number(metrics.oa),
        "kappa": _number(metrics.kappa),
        "mean_fscore": _number(metrics.mean_fscore),
        "per_class": per_class_scores(metrics),
    }


def _area_text(area: AreaAdjusted, nomenclature: Nomenclature) -> str:
    """The area-adjusted section appended to ``RESULTS.txt``."""
    unit = area.area_unit
    lines = [
        "",
        "",
        "#### Area-adjusted accuracy and areas (Olofsson et al. 2014, strata = map classes) ####",
        "",
        f"OA : {_pair(area.overall_accuracy, area.overall_accuracy_ci)}",
        "",
    ]
    head = [
        "Classes",
        f"Mapped area ({unit})",
        f"Adjusted area ({unit})",
        "User's accuracy",
        "Producer's accuracy",
    ]
    rows = [
        [
            nomenclature.name(code),
            f"{area.mapped_area[code]:.2f}",
            _pair(area.area[code], area.area_ci[code], "{:.2f}"),
            _pair(area.users_accuracy[code], area.users_accuracy_ci[code]),
            _pair(area.producers_accuracy[code], area.producers_accuracy_ci[code]),
        ]
        for code in area.labels
    ]
    width = max(len(text) for text in [*head, *(cell for row in rows for cell in row)])
    header = " | ".join(text.center(width) for text in head)
    lines += [header, "-" * len(header)]
    lines += [" | ".join(cell.center(width) for cell in row) for row in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _pair(estimate: float, half_width: float, fmt: str = "{:.3f}") -> str:
    if math.isnan(estimate):
        return "nan"
    if math.isnan(half_width):
        return fmt.format(estimate)
    return f"{fmt.format(estimate)} +- {fmt.format(half_width)}"


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)
