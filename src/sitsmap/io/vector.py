"""Vector reading and writing through pyogrio (GDAL/OGR), as GeoDataFrames."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import geopandas as gpd
import pyogrio
from pyogrio.errors import DataLayerError, DataSourceError

from sitsmap.errors import InputDataError
from sitsmap.io.atomic import atomic_path

PathLike = str | os.PathLike[str]

_DRIVERS = {
    ".shp": "ESRI Shapefile",
    ".gpkg": "GPKG",
    ".sqlite": "SQLite",
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".parquet": "Parquet",
}


def read_vector(path: PathLike, layer: str | int | None = None) -> gpd.GeoDataFrame:
    """Read any OGR vector file into a GeoDataFrame.

    Raises
    ------
    InputDataError
        If the file is missing or OGR cannot read it.
    """
    path = Path(path)
    if not path.exists():
        raise InputDataError("no such file", path)
    if path.suffix.lower() == ".parquet":
        try:
            return gpd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many unrelated types
            raise InputDataError(f"cannot read GeoParquet ({exc})", path) from exc
    try:
        return gpd.read_file(path, layer=layer, engine="pyogrio")
    except (DataSourceError, DataLayerError, ValueError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputDataError(f"cannot read vector file ({message})", path) from exc


def vector_info(path: PathLike) -> dict:
    """Return a vector file's first layer's header: fields, dtypes, CRS, geometry type, count.

    Only the header is read (pyogrio's layer information; a GeoParquet file's
    schema and row count), never the geometries.

    Raises
    ------
    InputDataError
        If neither OGR nor pyarrow can read the file.
    """
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        return _parquet_info(path)
    try:
        return pyogrio.read_info(path)
    except (DataSourceError, DataLayerError) as exc:
        message = str(exc).split("; It might help", 1)[0].strip()
        raise InputDataError(f"not a vector file OGR can read ({message})", path) from None


def _parquet_info(path: Path) -> dict:
    """The header of a GeoParquet file, in :func:`vector_info`'s form (CRS left to the reader)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as parquet:
            columns = [field for field in parquet.schema_arrow if field.name != "geometry"]
            rows = parquet.metadata.num_rows
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many unrelated types
        raise InputDataError(f"not a GeoParquet file ({exc})", path) from None
    return {
        "features": rows,
        "fields": [field.name for field in columns],
        "dtypes": ["int64" if pa.types.is_integer(f.type) else str(f.type) for f in columns],
        "crs": "",  # GeoParquet keeps its CRS in the geo metadata: read with the polygons
        "geometry_type": None,
    }


def write_vector(frame: gpd.GeoDataFrame, path: PathLike, layer: str | None = None) -> None:
    """Write a GeoDataFrame atomically; the driver follows the file extension.

    Shapefiles are several files: they are written into a temporary directory
    and each part is moved into place once all are complete.
    """
    path = Path(path)
    driver = _DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise InputDataError(f"unsupported vector extension {path.suffix!r}", path)
    if driver == "Parquet":
        with atomic_path(path) as tmp:
            frame.to_parquet(tmp)
        return
    if driver == "ESRI Shapefile":
        _write_shapefile(frame, path)
        return
    with atomic_path(path) as tmp:
        # name the layer after the final file, not the temporary one
        frame.to_file(tmp, driver=driver, layer=layer or path.stem, engine="pyogrio")


def _write_shapefile(frame: gpd.GeoDataFrame, path: Path) -> None:
    """Write a Shapefile's parts in a temporary directory, then move them into place.

    The ``.shp`` is moved last, so a reader never finds it without its ``.dbf``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".tmp-") as tmpdir:
        frame.to_file(
            Path(tmpdir) / path.name,
            driver="ESRI Shapefile",
            engine="pyogrio",
            **_declared_geometry_type(frame),
        )
        parts = sorted(Path(tmpdir).iterdir(), key=lambda part: part.suffix.lower() == ".shp")
        for part in parts:
            os.replace(part, path.with_name(part.name))


def _declared_geometry_type(frame: gpd.GeoDataFrame) -> dict[str, str]:
    """The layer type to declare for polygons, so that an empty first row cannot decide it.

    Without it, a Shapefile whose first row has no geometry was written as a
    LineString layer, its polygons turned into their outlines.
    """
    types = set(frame.geom_type.dropna())
    if types and types <= {"Polygon", "MultiPolygon"}:
        return {"geometry_type": "MultiPolygon" if "MultiPolygon" in types else "Polygon"}
    return {}


def write_vector_map(
    frame: gpd.GeoDataFrame,
    gpkg_path: PathLike,
    parquet_path: PathLike | None = None,
    layer: str = "vector_map",
) -> None:
    """Write the vector map as a GeoPackage and, optionally, a GeoParquet file.

    Each file is written under a temporary name beside its final one and renamed
    once complete (:func:`write_vector`), so a reader never sees half a map.

    Parameters
    ----------
    frame : geopandas.GeoDataFrame
        The polygons and their statistics (see
        :meth:`sitsmap.postprocessing.vectorise.VectorMapBuilder.polygons`).
    gpkg_path : str or PathLike
        The GeoPackage, written through pyogrio; must end with ``.gpkg``.
    parquet_path : str or PathLike, optional
        The GeoParquet file (``GeoDataFrame.to_parquet``); must end with ``.parquet``.
    layer : str, default "vector_map"
        The GeoPackage layer's name.

    Raises
    ------
    InputDataError
        If a path does not have its format's extension.
    """
    paths = [(Path(gpkg_path), ".gpkg")]
    if parquet_path is not None:
        paths.append((Path(parquet_path), ".parquet"))
    for path, suffix in paths:
        if path.suffix.lower() != suffix:
            raise InputDataError(f"the vector map's file must end with {suffix}", path)
    write_vector(frame, gpkg_path, layer=layer)
    if parquet_path is not None:
        write_vector(frame, parquet_path)
