"""Collect what a run left in its output tree, section by section.

Every reader here goes through :mod:`sitsmap.io`. A section whose files are
missing or unreadable becomes a :class:`Missing` that says why, so a partial
run still gets a report.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from sitsmap.config.loader import dump_config, load_config
from sitsmap.config.schema import STEP_NAMES, Config
from sitsmap.errors import InputDataError, SitsmapError
from sitsmap.io.arrays import load_arrays, read_table
from sitsmap.io.attributes import read_attributes
from sitsmap.io.binary import read_bytes
from sitsmap.io.jsonfile import read_json
from sitsmap.io.raster import RasterInfo, read_raster, read_raster_info
from sitsmap.nomenclature import NODATA_CLASS, Nomenclature, load_nomenclature
from sitsmap.pipeline.layout import OutputLayout
from sitsmap.pipeline.steps.regions import region_colors
from sitsmap.sampling.bins import REGRESSION_NODATA
from sitsmap.validation.metrics import ClassificationMetrics, compute_metrics
from sitsmap.validation.regression import RegressionMetrics
from sitsmap.vectors.ground_truth import BIN_COLUMN, POLYGON_ID
from sitsmap.vectors.regions import REGION_COLUMN, region_index
from sitsmap.vectors.split import LEARNING, SPLIT_COLUMN, VALIDATION

__all__ = [
    "Accuracy",
    "ClassMap",
    "CrossValidation",
    "LearningCurves",
    "Missing",
    "RegionMap",
    "RegionResult",
    "Regions",
    "RegressionAccuracy",
    "RegressionMap",
    "ReportData",
    "SeedAccuracy",
    "collect",
]

LOGGER = logging.getLogger(__name__)

T = TypeVar("T")

QUICKLOOK_SIZE = 1000
"""Largest side, in pixels, of the map's quick-look."""

_SECTION_ERRORS = (SitsmapError, KeyError, IndexError, TypeError, ValueError)
"""What a malformed or missing output raises while its section is read."""


@dataclass(frozen=True)
class Missing:
    """A section that cannot be shown, and why (one line)."""

    reason: str


@dataclass(frozen=True)
class SeedAccuracy:
    """Accuracy of one run: its metrics and, when computed, its area-adjusted figures."""

    seed: int
    metrics: ClassificationMetrics
    area_adjusted: dict[str, Any] | None


@dataclass(frozen=True)
class Accuracy:
    """The content of ``final/results.json``."""

    seeds: list[SeedAccuracy]
    summary: dict[str, Any]
    fusion: dict[str, Any] | None
    area_adjusted: dict[str, Any] | None
    post_processing: dict[str, Any] | None = None


@dataclass(frozen=True)
class RegressionAccuracy:
    """The content of a regression's ``final/results.json``, and its validation figures.

    ``figures`` holds, per seed, the PNGs validation left (``scatter`` and
    ``residuals``, by kind); ``pairs`` the (reference, predicted) arrays of the
    seeds whose figures are missing but whose pairs file is there.
    """

    seeds: list[tuple[int, RegressionMetrics]]
    summary: dict[str, Any]
    figures: dict[int, dict[str, bytes]] = field(default_factory=dict)
    pairs: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


@dataclass(frozen=True)
class RegressionMap:
    """A decimated copy of a final regression map (no-data as NaN)."""

    path: Path
    values: np.ndarray
    full_shape: tuple[int, int]


@dataclass(frozen=True)
class LearningCurves:
    """Training history of a deep model (a table), or its saved figures when no table is left."""

    history: pd.DataFrame | None
    pngs: list[bytes]


@dataclass(frozen=True)
class ClassMap:
    """A decimated copy of a final class map."""

    path: Path
    classes: np.ndarray
    full_shape: tuple[int, int]
    nodata: int


@dataclass(frozen=True)
class CrossValidation:
    """Cross-validation summary and figures."""

    summary: dict[str, Any] | Missing
    pngs: list[tuple[str, bytes]]


@dataclass(frozen=True)
class RegionMap:
    """A decimated copy of ``final/Regions.tif`` and the colours of its region numbers."""

    path: Path
    numbers: np.ndarray
    full_shape: tuple[int, int]
    colors: dict[int, tuple[int, int, int]]


@dataclass(frozen=True)
class RegionResult:
    """One eco-region: its accuracy over the runs, and its models by seed (``region.json``)."""

    accuracy: Accuracy | Missing
    models: dict[int, dict[str, Any]]


@dataclass(frozen=True)
class Regions:
    """The eco-regions of a run; each part is its data or a :class:`Missing`.

    ``names`` maps the region numbers of ``Regions.tif`` (1, 2, … in id order) to
    the region ids; ``results`` holds every region of ``results.json`` and of
    ``init/regions.gpkg``, by id.
    """

    names: dict[int, str] | Missing
    results: dict[str, RegionResult] | Missing
    region_map: RegionMap | Missing


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows; each section is its data or a :class:`Missing`."""

    output_dir: Path
    seeds: list[int]
    nomenclature: Nomenclature
    criterion: str
    config_text: str | Missing
    accuracy: Accuracy | RegressionAccuracy | Missing
    samples: dict[int, pd.DataFrame | Missing]
    curves: dict[int, LearningCurves | Missing]
    class_map: ClassMap | RegressionMap | Missing
    crossval: CrossValidation | Missing
    step_times: pd.DataFrame | Missing
    notes: list[str] = field(default_factory=list)
    regions: Regions | None = None
    """None for a run without eco-regions."""
    model_selection: list[dict[str, Any]] | Missing | None = None
    """Each model's candidates and scores (``model_selection.json``); None without selection."""
    task: str = "classification"
    """``arg_train.task``: classification, or regression (a float map of a value)."""


def collect(output_dir: Path) -> ReportData:
    """Read the outputs of a run, tolerating any that are missing.

    Parameters
    ----------
    output_dir : Path
        The run's ``chain.output_path``.

    Returns
    -------
    ReportData
    """
    layout = OutputLayout(Path(output_dir))
    notes: list[str] = []
    config = _attempt(lambda: load_config(layout.config), layout.root)
    if isinstance(config, Missing):
        notes.append(
            "configuration not available: classes shown by code, data field 'code' assumed"
        )
    accuracy = _attempt(lambda: _read_accuracy(layout), layout.root)
    seeds = _seeds(config, accuracy, layout)
    task = _task(config, accuracy)
    nomenclature = _nomenclature(config, notes, layout.root)
    data_field = "code" if isinstance(config, Missing) else config.chain.data_field
    if task == "regression":  # samples are counted per quantile bin of the target
        data_field = BIN_COLUMN
    final_map = _regression_map if task == "regression" else _class_map
    return ReportData(
        output_dir=layout.root,
        seeds=seeds,
        nomenclature=nomenclature,
        criterion=_criterion(config),
        config_text=_config_text(config, layout),
        accuracy=accuracy,
        samples={
            seed: _attempt(
                lambda s=seed: _class_counts(layout, s, data_field, accuracy), layout.root
            )
            for seed in seeds
        },
        curves={
            seed: _attempt(lambda s=seed: _learning_curves(layout, s, config), layout.root)
            for seed in seeds
        },
        class_map=_attempt(lambda: final_map(layout, seeds), layout.root),
        crossval=_attempt(lambda: _crossval(layout), layout.root),
        step_times=_attempt(lambda: _step_times(layout), layout.root),
        notes=notes,
        regions=None if task == "regression" else _regions(layout, config, seeds),
        model_selection=_model_selection(layout, config, seeds),
        task=task,
    )


def _attempt(read: Callable[[], T], root: Path) -> T | Missing:
    """Return ``read()``, or a :class:`Missing` saying why (paths shown relative to ``root``)."""
    try:
        return read()
    except _SECTION_ERRORS as exc:
        LOGGER.info("report: %s", exc)
        return Missing(_one_line(exc, root))


def _one_line(exc: BaseException, root: Path) -> str:
    text = str(exc).strip()
    if isinstance(exc, KeyError):
        text = f"entry {text} is missing"
    text = text.replace(f"{root}{os.sep}", "")
    return text.splitlines()[0] if text else type(exc).__name__


# --- configuration and nomenclature -------------------------------------------------


def _config_text(config: Config | Missing, layout: OutputLayout) -> str | Missing:
    """The resolved configuration as YAML; the raw file when it no longer validates."""
    if not isinstance(config, Missing):
        return dump_config(config)
    raw = _attempt(lambda: read_bytes(layout.config).decode("utf-8", errors="replace"), layout.root)
    return config if isinstance(raw, Missing) else raw


def _nomenclature(config: Config | Missing, notes: list[str], root: Path) -> Nomenclature:
    """The run's nomenclature; bare class codes when it cannot be read."""
    if isinstance(config, Missing):
        return Nomenclature(names={}, colors={})
    chain = config.chain
    loaded = _attempt(lambda: load_nomenclature(chain.nomenclature_path, chain.color_table), root)
    if isinstance(loaded, Missing):
        notes.append(f"nomenclature not available ({loaded.reason}); classes shown by code")
        return Nomenclature(names={}, colors={})
    return loaded


def _task(config: Config | Missing, accuracy: Accuracy | RegressionAccuracy | Missing) -> str:
    """The run's task: the configuration's, else what its ``results.json`` holds."""
    if not isinstance(config, Missing):
        return config.arg_train.task
    return "regression" if isinstance(accuracy, RegressionAccuracy) else "classification"


def _criterion(config: Config | Missing) -> str:
    if isinstance(config, Missing) or config.arg_train.deep_learning_parameters is None:
        return "fscore"
    return config.arg_train.deep_learning_parameters.model_selection_criterion


def _seeds(
    config: Config | Missing,
    accuracy: Accuracy | RegressionAccuracy | Missing,
    layout: OutputLayout,
) -> list:
    """Seeds of the run: from the configuration, else from results or split files."""
    if not isinstance(config, Missing):
        return list(config.seeds)
    if isinstance(accuracy, RegressionAccuracy):
        return [seed for seed, _ in accuracy.seeds]
    if not isinstance(accuracy, Missing):
        return [entry.seed for entry in accuracy.seeds]
    found = (path.stem.removeprefix("seed_") for path in layout.split(0).parent.glob("seed_*"))
    return sorted({int(text) for text in found if text.isdigit()})


# --- accuracy -----------------------------------------------------------------------


def _read_accuracy(layout: OutputLayout) -> Accuracy | RegressionAccuracy:
    document = read_json(layout.results_json)
    if document.get("task") == "regression":
        return _regression_accuracy(document, layout)
    return _accuracy_of(document, layout.results_json)


REGRESSION_FIGURES = ("scatter", "residuals")
"""The validation figures of a regression run, ``final/{kind}_seed_{seed}.png``."""


def _regression_accuracy(document: dict[str, Any], layout: OutputLayout) -> RegressionAccuracy:
    """The runs of a regression's ``results.json``, with their validation figures."""
    seeds = [
        (int(entry["seed"]), RegressionMetrics.from_dict(entry)) for entry in document["seeds"]
    ]
    if not seeds:
        raise InputDataError("lists no seed", layout.results_json)
    figures, pairs = {}, {}
    for seed, _ in seeds:
        paths = {kind: layout.final / f"{kind}_seed_{seed}.png" for kind in REGRESSION_FIGURES}
        figures[seed] = {kind: read_bytes(path) for kind, path in paths.items() if path.is_file()}
        npz = layout.final / f"validation_pairs_seed_{seed}.npz"
        if len(figures[seed]) < len(paths) and npz.is_file():
            arrays = _attempt(lambda p=npz: load_arrays(p), layout.root)
            if isinstance(arrays, dict) and {"reference", "predicted"} <= set(arrays):
                pairs[seed] = (arrays["reference"], arrays["predicted"])
    return RegressionAccuracy(
        seeds=seeds, summary=document.get("summary") or {}, figures=figures, pairs=pairs
    )


def _accuracy_of(document: dict[str, Any], path: Path) -> Accuracy:
    """The runs of a ``results.json`` document (or of one region's entry in it)."""
    seeds = [
        SeedAccuracy(
            seed=int(entry["seed"]),
            metrics=compute_metrics(
                np.asarray(entry["confusion"], dtype=np.int64), entry["labels"]
            ),
            area_adjusted=entry.get("area_adjusted"),
        )
        for entry in document["seeds"]
    ]
    if not seeds:
        raise InputDataError("lists no seed", path)
    return Accuracy(
        seeds=seeds,
        summary=document.get("summary") or {},
        fusion=document.get("fusion"),
        area_adjusted=document.get("area_adjusted"),
        post_processing=document.get("post_processing"),
    )


# --- samples ------------------------------------------------------------------------


def _class_counts(
    layout: OutputLayout,
    seed: int,
    data_field: str,
    accuracy: Accuracy | RegressionAccuracy | Missing,
) -> pd.DataFrame:
    """Polygons and pixels per class (per target bin in a regression) and side of one run.

    Columns ``learning_polygons``, ``validation_polygons``, ``learning_pixels``,
    ``validation_pixels``, indexed by class code; a count that cannot be read is NaN.
    """
    polygons = _polygon_counts(layout, seed, data_field)
    columns = [polygons]
    learning = _attempt(lambda: _learning_pixels(layout, seed, data_field), layout.root)
    if not isinstance(learning, Missing):
        columns.append(learning)
    validation = _validation_pixels(accuracy, seed)
    if validation is not None:
        columns.append(validation)
    table = pd.concat(columns, axis=1).sort_index()
    for name in ("learning_pixels", "validation_pixels"):
        if name not in table:
            table[name] = math.nan
    return table.fillna({"learning_polygons": 0, "validation_polygons": 0})


def _polygon_counts(layout: OutputLayout, seed: int, data_field: str) -> pd.DataFrame:
    frame = read_attributes(layout.split(seed))
    if data_field not in frame or SPLIT_COLUMN not in frame:
        raise InputDataError(
            f"lacks the {data_field!r} or {SPLIT_COLUMN!r} field", layout.split(seed)
        )
    unit = POLYGON_ID if POLYGON_ID in frame else None
    out = {}
    for side in (LEARNING, VALIDATION):
        rows = frame[frame[SPLIT_COLUMN] == side]
        grouped = rows.groupby(data_field)
        counts = grouped[unit].nunique() if unit else grouped.size()
        out[f"{side}_polygons"] = counts
    table = pd.DataFrame(out).fillna(0).astype(np.int64)
    table.index = table.index.astype(np.int64)
    return table


def _learning_pixels(layout: OutputLayout, seed: int, data_field: str) -> pd.Series:
    """Samples per class: ``class_statistics.csv``, else the samples table itself."""
    try:
        stats = read_table(layout.class_statistics(seed), columns=["label", "count"])
        counts = stats.groupby("label")["count"].sum()  # one row per class and region
    except InputDataError:
        labels = read_table(layout.samples(seed), columns=[data_field])[data_field]
        counts = labels.value_counts()
    counts.index = counts.index.astype(np.int64)
    return counts.astype(np.int64).rename("learning_pixels")


def _validation_pixels(
    accuracy: Accuracy | RegressionAccuracy | Missing, seed: int
) -> pd.Series | None:
    """Reference pixels per class (the row sums of the run's confusion matrix), or per bin."""
    if isinstance(accuracy, Missing):
        return None
    if isinstance(accuracy, RegressionAccuracy):
        for number, metrics in accuracy.seeds:
            if number == seed:
                counts = {k: scores.n for k, scores in enumerate(metrics.bins)}
                return pd.Series(counts, dtype=np.int64, name="validation_pixels")
        return None
    for entry in accuracy.seeds:
        if entry.seed == seed:
            support = entry.metrics.support
            return pd.Series(support, dtype=np.int64, name="validation_pixels")
    return None


# --- learning curves ----------------------------------------------------------------


def _learning_curves(layout: OutputLayout, seed: int, config: Config | Missing) -> LearningCurves:
    directory = layout.model_dir(seed)
    history_path = directory / "history.csv"
    if history_path.exists():
        return LearningCurves(history=read_table(history_path), pngs=[])
    pngs = [
        read_bytes(path)
        for path in (directory / "loss_curves.png", directory / "metric_curves.png")
        if path.exists()
    ]
    if pngs:
        return LearningCurves(history=None, pngs=pngs)
    if not isinstance(config, Missing) and config.arg_train.deep_learning_parameters is None:
        raise InputDataError(
            f"no learning curves: the classifier ({config.arg_train.classifier}) "
            "is not a deep model"
        )
    raise InputDataError("missing (has the learning step run?)", history_path)


# --- class map ----------------------------------------------------------------------


def _class_map(layout: OutputLayout, seeds: list[int]) -> ClassMap:
    """A decimated read of the first run's final map (at most QUICKLOOK_SIZE per side)."""
    candidates = [layout.final_map(seed) for seed in seeds] or [layout.final_map(0)]
    path = next((p for p in candidates if p.exists()), candidates[0])
    if not path.exists():
        raise InputDataError("missing (has the mosaic step run?)", path)
    info, classes = _quicklook(path)
    nodata = NODATA_CLASS if info.nodata is None else int(info.nodata)
    full_shape = (info.grid.height, info.grid.width)
    return ClassMap(path=path, classes=classes, full_shape=full_shape, nodata=nodata)


def _regression_map(layout: OutputLayout, seeds: list[int]) -> RegressionMap:
    """A decimated read of the first run's regression map, no-data as NaN."""
    candidates = [layout.final_map(seed, "Regression") for seed in seeds or [0]]
    path = next((p for p in candidates if p.exists()), candidates[0])
    if not path.exists():
        raise InputDataError("missing (has the mosaic step run?)", path)
    info, values = _quicklook(path)
    values = values.astype(np.float32)
    nodata = REGRESSION_NODATA if info.nodata is None else float(info.nodata)
    values[(values == nodata) | ~np.isfinite(values)] = np.nan
    full_shape = (info.grid.height, info.grid.width)
    return RegressionMap(path=path, values=values, full_shape=full_shape)


def _quicklook(path: Path) -> tuple[RasterInfo, np.ndarray]:
    """A raster's description and its first band, at most QUICKLOOK_SIZE pixels a side."""
    info = read_raster_info(path)
    height, width = info.grid.height, info.grid.width
    scale = max(1.0, max(height, width) / QUICKLOOK_SIZE)
    shape = (max(1, round(height / scale)), max(1, round(width / scale)))
    return info, read_raster(path, bands=1, out_shape=shape)


# --- eco-regions --------------------------------------------------------------------


def _regions(layout: OutputLayout, config: Config | Missing, seeds: list[int]) -> Regions | None:
    """The eco-regions of the run; None when it has none.

    A run has regions when its configuration sets ``chain.region_path`` or, without
    a readable configuration, when it left region outputs.
    """
    if not isinstance(config, Missing) and config.chain.region_path is None:
        return None
    documents = _attempt(lambda: _region_documents(layout), layout.root)
    left = layout.final_regions.exists() or layout.regions.exists()
    if isinstance(config, Missing) and isinstance(documents, Missing) and not left:
        return None
    names = _attempt(lambda: _region_names(layout), layout.root)
    ids = [] if isinstance(names, Missing) else list(names.values())
    return Regions(
        names=names,
        results=_attempt(lambda: _region_results(layout, seeds, documents, ids), layout.root),
        region_map=_attempt(lambda: _region_map(layout, len(ids)), layout.root),
    )


def _region_names(layout: OutputLayout) -> dict[int, str]:
    """Region id of each number of the region rasters (1, 2, … in sorted id order)."""
    frame = read_attributes(layout.regions, columns=[REGION_COLUMN])
    ids = {str(value) for value in frame[REGION_COLUMN]}
    return {number: region for region, number in region_index(ids).items()}


def _region_documents(layout: OutputLayout) -> dict[str, Any]:
    """The ``regions`` entry of ``results.json``: one document per region id."""
    document = read_json(layout.results_json)
    if "regions" not in document:
        raise InputDataError(
            "holds no per-region accuracy (no 'regions' entry)", layout.results_json
        )
    entries = document["regions"]
    if not isinstance(entries, dict):
        raise InputDataError("its 'regions' entry is not a mapping", layout.results_json)
    return entries


def _region_results(
    layout: OutputLayout,
    seeds: list[int],
    documents: dict[str, Any] | Missing,
    ids: list[str],
) -> dict[str, RegionResult]:
    """Every region's accuracy and models, from ``results.json`` else its ``region.json`` files.

    A region of ``init/regions.gpkg`` absent from ``results.json`` (no validation
    pixel) still gets its models; only when neither lists a region is this missing.
    """
    if isinstance(documents, Missing) and not ids:
        raise InputDataError(documents.reason)
    entries = {} if isinstance(documents, Missing) else documents
    absent = documents if isinstance(documents, Missing) else Missing("no validation pixel")
    return {
        region: _region_result(layout, seeds, region, entries.get(region), absent)
        for region in sorted({*map(str, entries), *ids})
    }


def _region_result(
    layout: OutputLayout, seeds: list[int], region: str, entry: Any, absent: Missing
) -> RegionResult:
    """One region: its ``results.json`` entry (``absent`` when none) and its models."""
    if entry is None:
        return RegionResult(accuracy=absent, models=_region_models(layout, seeds, region))
    accuracy = _attempt(lambda: _accuracy_of(entry, layout.results_json), layout.root)
    models = _attempt(lambda: _models_of(entry), layout.root)
    if isinstance(models, Missing):
        models = _region_models(layout, seeds, region)
    return RegionResult(accuracy=accuracy, models=models)


def _models_of(entry: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The ``models`` of a region's entry in ``results.json``, by seed."""
    return {int(seed): dict(model) for seed, model in dict(entry["models"]).items()}


def _region_models(layout: OutputLayout, seeds: list[int], region: str) -> dict[int, dict]:
    """What learning wrote about a region's model in each run (runs without it left out)."""
    models = {}
    for seed in seeds:
        model = _attempt(
            lambda s=seed: read_json(layout.model_dir(s, region) / "region.json"), layout.root
        )
        if isinstance(model, dict):
            models[seed] = model
    return models


def _region_map(layout: OutputLayout, count: int) -> RegionMap:
    """A decimated read of ``final/Regions.tif`` with the colours of regions 1 … ``count``."""
    path = layout.final_regions
    if not path.exists():
        raise InputDataError("missing (has the init step run?)", path)
    info, numbers = _quicklook(path)
    top = max(count, int(numbers.max(initial=0)))
    table = info.colormap or {}
    colors = {
        number: tuple(int(c) for c in table[number][:3]) if number in table else rgb
        for number, rgb in region_colors(top).items()
    }
    full_shape = (info.grid.height, info.grid.width)
    return RegionMap(path=path, numbers=numbers, full_shape=full_shape, colors=colors)


# --- model selection ----------------------------------------------------------------


def _model_selection(
    layout: OutputLayout, config: Config | Missing, seeds: list[int]
) -> list[dict[str, Any]] | Missing | None:
    """The candidates' scores of every model: ``results.json``'s, else the model folders'.

    None for a run whose configuration lists no candidate (or, without a readable
    configuration, that left no scores).
    """
    if not isinstance(config, Missing) and not config.arg_train.model_selection.candidates:
        return None
    found = _attempt(lambda: _selection_documents(layout, seeds), layout.root)
    if isinstance(config, Missing) and (isinstance(found, Missing) or not found):
        return None
    if not isinstance(found, Missing) and not found:
        return Missing("no model_selection.json in the model folders (has learning run?)")
    return found


def _selection_documents(layout: OutputLayout, seeds: list[int]) -> list[dict[str, Any]]:
    """``results.json``'s ``model_selection`` entry, else every model's ``model_selection.json``."""
    if layout.results_json.is_file():
        document = read_json(layout.results_json)
        if isinstance(document.get("model_selection"), list):
            return document["model_selection"]
    documents = []
    for seed in seeds:
        folder = layout.model_dir(seed)
        paths = [folder / "model_selection.json", *sorted(folder.glob("*/model_selection.json"))]
        documents += [read_json(path) for path in paths if path.is_file()]
    return documents


# --- cross-validation ---------------------------------------------------------------


def _crossval(layout: OutputLayout) -> CrossValidation:
    directory = layout.root / "crossval"
    summary = _attempt(lambda: read_json(directory / "summary.json"), layout.root)
    pngs = [(path.name, read_bytes(path)) for path in sorted(directory.glob("*.png"))]
    if isinstance(summary, Missing) and not pngs:
        raise InputDataError("no cross-validation in this output tree (no crossval/summary.json)")
    return CrossValidation(summary=summary, pngs=pngs)


# --- wall time ----------------------------------------------------------------------


def _step_times(layout: OutputLayout) -> pd.DataFrame:
    """Tasks done, summed task seconds, first start and last end of each step.

    Columns ``tasks``, ``seconds``, ``start`` and ``end`` (epoch seconds), one row
    per step in chain order.
    """
    paths = sorted(layout.done.glob("*.json"))
    if not paths:
        raise InputDataError("no completion record (has the run started?)", layout.done)
    records = pd.DataFrame([_record(read_json(path)) for path in paths])
    records["end"] = records["started"] + records["seconds"]
    grouped = records.groupby("step", sort=False)
    table = pd.DataFrame(
        {
            "tasks": grouped.size(),
            "seconds": grouped["seconds"].sum(),
            "start": grouped["started"].min(),
            "end": grouped["end"].max(),
        }
    )
    order = {name: rank for rank, name in enumerate(STEP_NAMES)}
    return table.sort_index(key=lambda steps: steps.map(lambda s: order.get(s, len(order))))


def _record(document: dict) -> dict[str, Any]:
    seconds = float(document["seconds"])
    started = float(document.get("started", math.nan))
    return {"step": str(document["step"]), "seconds": seconds, "started": started}
