"""Step validation of a regression: each run's map against its validation polygons' values.

The counterpart of :mod:`sitsmap.pipeline.steps.validation` when
``arg_train.task`` is ``regression``: per run, RMSE, MAE, bias and R² per pixel,
per polygon and per quantile bin of the target, the (reference, predicted)
pairs, a scatter plot and a residual histogram; then ``results.json`` and
``RESULTS.txt`` over the runs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np

from sitsmap.io.arrays import save_arrays
from sitsmap.io.atomic import write_text
from sitsmap.io.figures import save_figure
from sitsmap.io.jsonfile import read_json, write_json
from sitsmap.io.vector import read_vector
from sitsmap.learning.selection import selection_text
from sitsmap.pipeline.context import RunContext
from sitsmap.pipeline.preflight import configured_regions
from sitsmap.pipeline.steps.learning import model_selections
from sitsmap.pipeline.steps.validation import check_pixels_found, validation_polygons
from sitsmap.sampling.bins import REGRESSION_NODATA, bin_edges
from sitsmap.validation.reference import regression_pixels
from sitsmap.validation.regression import (
    RegressionMetrics,
    regression_metrics,
    regression_results_json,
    regression_results_txt,
)
from sitsmap.validation.regression_figures import residual_figure, scatter_figure
from sitsmap.vectors.ground_truth import POLYGON_ID

__all__ = [
    "REGRESSION_MAP",
    "pairs_path",
    "regression_edges",
    "summarise_regression_runs",
    "validate_regression_seed",
]

logger = logging.getLogger(__name__)

REGRESSION_MAP = "Regression"
"""Kind of a run's final regression map (``final/Regression_Seed_N.tif``)."""


def pairs_path(final: Path, name: str) -> Path:
    """The ``.npz`` of a validation's (reference, predicted, polygon) pairs, in ``final``."""
    return final / f"validation_pairs_{name}.npz"


def validate_regression_seed(context: RunContext, seed: int) -> None:
    """Errors of run ``seed``'s regression map over its validation polygons (or points).

    Writes, in ``final/``, ``validation_seed_{seed}.json``, the pairs
    ``validation_pairs_seed_{seed}.npz`` (``reference``, ``predicted``,
    ``polygon``), ``scatter_seed_{seed}.png`` and ``residuals_seed_{seed}.png``;
    in a cross-validation fold, the same named ``left_out_seed_{seed}`` for the
    left-out ground truth.

    Raises
    ------
    InputDataError
        If the run's split has no validation polygon.
    StepError
        If no pixel of the map falls inside the validation polygons.
    """
    validation = validation_polygons(context, seed)
    edges = regression_edges(context)
    map_path = context.layout.final_map(seed, REGRESSION_MAP)
    _validate_map(context, map_path, validation, edges, f"seed_{seed}", required=True)
    if context.fold is not None:  # also on the ground the fold never learnt from
        left_out = read_vector(context.layout.left_out)
        _validate_map(context, map_path, left_out, edges, f"left_out_seed_{seed}")


def regression_edges(context: RunContext) -> np.ndarray:
    """Quantile bin edges of the target over the whole clean ground truth (one value a polygon)."""
    # the values binned when the ground truth was prepared (finite, one per feature)
    truth = read_vector(context.layout.ground_truth)
    values = truth[context.config.chain.data_field].to_numpy(dtype=np.float64)
    return bin_edges(values, context.config.arg_train.regression_bins)


def _validate_map(
    context: RunContext,
    map_path: Path,
    polygons: gpd.GeoDataFrame,
    edges: np.ndarray,
    name: str,
    required: bool = False,
) -> RegressionMetrics:
    """Write the scores, pairs and figures of one map over some polygons.

    Raises
    ------
    StepError
        If ``required`` and no map pixel falls inside the polygons.
    """
    final, chain = context.layout.final, context.config.chain
    polygons = polygons.to_crs(chain.proj)
    reference, predicted, rows = regression_pixels(
        map_path, polygons, chain.data_field, nodata=REGRESSION_NODATA
    )
    check_pixels_found(reference.size, polygons, map_path, required)
    polygon = _polygon_ids(polygons, rows)
    metrics = regression_metrics(reference, predicted, polygon, edges)
    write_json(final / f"validation_{name}.json", {"task": "regression", **metrics.to_dict()})
    save_arrays(pairs_path(final, name), reference=reference, predicted=predicted, polygon=polygon)
    title = name.replace("_", " ")
    save_figure(scatter_figure(reference, predicted, title), final / f"scatter_{name}.png")
    save_figure(residual_figure(reference, predicted, title), final / f"residuals_{name}.png")
    return metrics


def _polygon_ids(polygons: gpd.GeoDataFrame, rows: np.ndarray) -> np.ndarray:
    """The polygon id of each pixel: the ground truth's id where it has one, else the row."""
    if POLYGON_ID not in polygons.columns:
        return rows.astype(np.int64)
    return polygons[POLYGON_ID].to_numpy()[rows].astype(np.int64)


def summarise_regression_runs(context: RunContext) -> None:
    """Write ``RESULTS.txt`` and ``results.json`` over every run of a regression."""
    layout = context.layout
    per_seed = [
        (
            seed,
            RegressionMetrics.from_dict(read_json(layout.final / f"validation_seed_{seed}.json")),
        )
        for seed in context.config.seeds
    ]
    report = regression_results_json(per_seed)
    text = regression_results_txt(per_seed)
    if context.config.arg_train.model_selection.candidates:
        report["model_selection"] = model_selections(
            layout, context.config.seeds, configured_regions(context.config)
        )
        text += selection_text(report["model_selection"])
    write_json(layout.results_json, report)
    write_text(layout.results_txt, text)
