"""Input checks run in the main process before any cluster starts.

A typo in a path must cost the time of ``sitsmap config show``, not of a
cluster start: :func:`check_inputs` looks at every input the configuration
names (existence, readability, format, fields) and raises one clear
:class:`~sitsmap.errors.SitsmapError` naming the config key and the file.

The checks are cheap: a listing of each tile's folder (no raster is opened),
the ground truth's header (its layer information, not its polygons) and the
small text tables. What needs the data itself (polygons over the tiles, classes
in the nomenclature, grids) is checked by the init step.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sitsmap.config.schema import Config
from sitsmap.errors import InputDataError
from sitsmap.io.output_folder import check_output_path
from sitsmap.io.tables import read_class_counts, read_color_table, read_name_code_table
from sitsmap.io.vector import read_vector, vector_info
from sitsmap.pipeline.sources import image_sources, static_layers
from sitsmap.vectors.check import layer_type_problem
from sitsmap.vectors.regions import check_region_ids

__all__ = ["check_inputs", "check_run_inputs", "input_paths"]


def check_run_inputs(config: Config, config_path: Path | None = None) -> None:
    """Everything a run checks before it writes anything: the output folder, then the inputs.

    Light enough for the command line to call before it imports the chain.

    Parameters
    ----------
    config : Config
        The run's configuration.
    config_path : Path, optional
        The configuration file, which output_path must not be, hold or lie in.

    Raises
    ------
    InputDataError
        On the first refused output folder or unusable input, naming the key.
    """
    check_output_path(config.chain.output_path, input_paths(config, config_path))
    check_inputs(config)


def input_paths(config: Config, config_path: Path | None = None) -> dict[str, Path | None]:
    """Every input a run reads, by the configuration key that names it.

    Parameters
    ----------
    config : Config
        The run's configuration.
    config_path : Path, optional
        The configuration file itself, an input too.

    Returns
    -------
    dict of str to Path or None
        Each tile's folder is listed apart (``chain.s2_path (T31TCJ)``): it may be a
        link to another disk. None where a key is not set.
    """
    chain = config.chain
    tiles = {}
    for key in ("s2_path", "s2_s2c_path", "l8_path", "user_feat_path"):
        root = getattr(chain, key)
        tiles[f"chain.{key}"] = root
        # a tile's folder may be a link to another disk: each is checked by its real path
        for tile in chain.list_tile if root is not None else ():
            tiles[f"chain.{key} ({tile})"] = root / tile
    tiles["user_sensor.path"] = config.user_sensor.path
    catalog = config.stac.catalog
    local_catalog = Path(catalog).parent if catalog and "://" not in catalog else None
    return {
        **tiles,
        "stac.catalog": local_catalog,
        "chain.ground_truth": chain.ground_truth,
        "chain.nomenclature_path": chain.nomenclature_path,
        "chain.color_table": chain.color_table,
        "chain.region_path": chain.region_path,
        "arg_train.sample_selection.strategy.byclass.in": (
            config.arg_train.sample_selection.byclass_in
        ),
        "the configuration file": config_path,
    }


def check_inputs(config: Config) -> None:
    """Raise on the first input of ``config`` that the chain could not use.

    Parameters
    ----------
    config : Config
        The run's configuration (paths already absolute).

    Raises
    ------
    InputDataError
        Naming the file and the configuration key, e.g.
        ``/data/gt.shp: chain.ground_truth: file not found``.
    """
    chain = config.chain
    check_images(config)
    check_ground_truth(chain.ground_truth, chain.data_field, regression=config.regression)
    if chain.region_path is not None:
        if not chain.region_path.is_dir():
            _check_file("chain.region_path", chain.region_path)
        configured_regions(config)
    tables: list[tuple[str, Path | None, Callable[[Path], Any]]] = [
        ("chain.nomenclature_path", chain.nomenclature_path, read_name_code_table),
        ("chain.color_table", chain.color_table, read_color_table),
        (
            "arg_train.sample_selection.strategy.byclass.in",
            config.arg_train.sample_selection.byclass_in,
            read_class_counts,
        ),
    ]
    for key, path, reader in tables:
        if path is not None:
            check_table(key, path, reader)


def check_images(config: Config) -> None:
    """Every image source holds, for every tile, complete products in its date range.

    Lists the folders (or reads the catalog) and looks for each product's files
    and metadata; no raster is opened. Landsat scenes are matched to the tiles
    by the init step, which knows the tiles' grids. The user's static rasters
    are found and their headers read.
    """
    chain = config.chain
    for source in image_sources(config):
        location = source.location
        if isinstance(location, Path) and not location.is_dir():
            what = "not a folder" if location.exists() else "folder not found"
            raise InputDataError(f"{source.key}: {what}", location)
        for tile in chain.list_tile:
            if source.key == "chain.s2_path" and not (location / tile).is_dir():
                raise InputDataError(
                    f"chain.list_tile: no folder for tile {tile} in chain.s2_path",
                    location / tile,
                )
            try:
                source.find(tile)
            except InputDataError as exc:
                raise InputDataError(f"{source.key}: {exc.problem}", exc.path) from None
    for tile in chain.list_tile:
        static_layers(config, tile)


def configured_regions(config: Config) -> list[str] | None:
    """The eco-region ids of ``chain.region_path``, sorted (None without regions).

    Raises
    ------
    InputDataError
        If the layer cannot be read, lacks ``chain.region_field`` or holds an id that
        is not a valid name.
    """
    chain = config.chain
    if chain.region_path is None:
        return None
    try:
        frame = read_vector(chain.region_path)
    except InputDataError as exc:
        raise InputDataError(f"chain.region_path: {exc.problem}", exc.path) from None
    if chain.region_field not in frame.columns:
        fields = ", ".join(c for c in frame.columns if c != "geometry") or "none"
        raise InputDataError(
            f"chain.region_path: no field {chain.region_field!r} (chain.region_field); "
            f"its fields: {fields}",
            chain.region_path,
        )
    ids = frame[chain.region_field].tolist()
    return check_region_ids(ids, chain.region_path, chain.region_field)


def check_ground_truth(path: Path, data_field: str, regression: bool = False) -> None:
    """``chain.ground_truth`` is a readable polygon layer with features and ``data_field``.

    In a regression the field is numeric (integer or float) and a point layer is
    accepted. Only the layer's header is read (fields, geometry type, CRS, feature count).
    """
    if not path.is_dir():  # a FileGDB (``.gdb``) is a folder that OGR reads as one dataset
        _check_file("chain.ground_truth", path)
    info = _layer_info(path)
    if info["features"] == 0:
        raise InputDataError("chain.ground_truth: has no features (0 polygons)", path)
    fields = dict(zip(info["fields"], info["dtypes"], strict=True))
    if data_field not in fields:
        available = ", ".join(map(str, fields)) or "none"
        raise InputDataError(
            f"chain.ground_truth: no field {data_field!r} (chain.data_field); "
            f"its fields: {available}",
            path,
        )
    if regression:
        if not _is_number(fields[data_field]):
            raise InputDataError(
                f"chain.ground_truth: field {data_field!r} is {fields[data_field]}, not "
                "numeric (arg_train.task: regression maps a number)",
                path,
            )
    elif not _is_integer(fields[data_field]):
        raise InputDataError(
            f"chain.ground_truth: field {data_field!r} is {fields[data_field]}, not integer "
            "(sitsmap check-db --do-corrections converts whole numbers)",
            path,
        )
    if info["crs"] is None and info["geometry_type"] is not None:
        raise InputDataError(
            "chain.ground_truth: the layer has no CRS (a Shapefile needs its .prj)", path
        )
    problem = layer_type_problem(info["geometry_type"], points=regression)
    if problem:
        raise InputDataError(f"chain.ground_truth: {problem}", path)


def check_table(key: str, path: Path, reader: Callable[[Path], Any]) -> None:
    """The text table at ``path`` (nomenclature, colours, class counts) exists and parses."""
    _check_file(key, path)
    try:
        reader(path)
    except InputDataError as exc:
        raise InputDataError(f"{key}: {exc.problem}", exc.path) from None
    except UnicodeDecodeError as exc:
        raise InputDataError(
            f"{key}: not a UTF-8 text file (byte 0x{exc.object[exc.start]:02x} "
            f"at position {exc.start})",
            path,
        ) from None


def _check_file(key: str, path: Path) -> None:
    if not path.exists():
        raise InputDataError(f"{key}: file not found", path)
    if not path.is_file():
        raise InputDataError(f"{key}: not a file", path)
    if path.stat().st_size == 0:
        raise InputDataError(f"{key}: empty file (0 bytes)", path)


def _layer_info(path: Path) -> dict[str, Any]:
    """The ground truth's header, its problem worded with the config key."""
    try:
        return vector_info(path)
    except InputDataError as exc:
        raise InputDataError(f"chain.ground_truth: {exc.problem}", path) from None


def _is_number(dtype: str) -> bool:
    try:
        kind = np.dtype(dtype)
    except TypeError:
        return False
    return np.issubdtype(kind, np.integer) or np.issubdtype(kind, np.floating)


def _is_integer(dtype: str) -> bool:
    try:
        return np.issubdtype(np.dtype(dtype), np.integer)
    except TypeError:
        return False
