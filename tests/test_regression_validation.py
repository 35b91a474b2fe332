"""Regression validation: pixel pairs, error scores, results files, figures and the step."""

import json
import math

import geopandas as gpd
import numpy as np
import pytest
import yaml
from affine import Affine
from matplotlib.collections import PathCollection, PolyCollection
from rasterio.crs import CRS
from shapely.geometry import Point, box
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from sitsmap.config import load_config
from sitsmap.errors import InputDataError, StepError
from sitsmap.io.arrays import load_arrays
from sitsmap.io.figures import save_figure
from sitsmap.io.raster import RasterGrid, write_raster
from sitsmap.io.vector import write_vector
from sitsmap.pipeline.context import RunContext
from sitsmap.pipeline.steps.regression_validation import (
    summarise_regression_runs,
    validate_regression_seed,
)
from sitsmap.sampling.bins import REGRESSION_NODATA, bin_edges
from sitsmap.validation.metrics import summarise_runs
from sitsmap.validation.reference import regression_pixels
from sitsmap.validation.regression import (
    RegressionMetrics,
    error_scores,
    regression_metrics,
    regression_results_json,
    regression_results_txt,
    summarise_regression,
)
from sitsmap.validation.regression_figures import HEXBIN_FROM, residual_figure, scatter_figure
from sitsmap.vectors.ground_truth import POLYGON_ID

CRS_L93 = CRS.from_epsg(2154)
X0, Y0 = 500_000.0, 6_000_100.0
GRID = RasterGrid(10, 10, Affine(10, 0, X0, 0, -10, Y0), CRS_L93)


def _values() -> np.ndarray:
    """Map value of pixel (row, col): 10 * row + col + 0.5; no-data at (2, 2)."""
    values = (np.arange(100).reshape(10, 10) + 0.5).astype(np.float32)
    values[2, 2] = REGRESSION_NODATA
    return values


@pytest.fixture
def regression_map(tmp_path):
    path = tmp_path / "Regression_Seed_0.tif"
    write_raster(path, _values(), GRID, nodata=REGRESSION_NODATA)
    return path


def _centre(row: int, col: int) -> Point:
    return Point(X0 + 10 * col + 5, Y0 - 10 * row - 5)


def _shapes() -> gpd.GeoDataFrame:
    """A square over rows 1-3 / cols 1-3, a point in pixel (7, 8), a point on a pixel corner."""
    square = box(X0 + 10, Y0 - 40, X0 + 40, Y0 - 10)
    corner = Point(X0 + 50, Y0 - 60)  # corner of pixels (5, 5), (5, 4), (6, 4), (6, 5)
    geometries = [square, _centre(7, 8), corner, Point(X0 - 500, Y0)]  # the last: off the map
    return gpd.GeoDataFrame({"value": [4.0, 80.0, 60.0, 1.0]}, geometry=geometries, crs=CRS_L93)


def _expected() -> list[tuple[float, float, int]]:
    values = _values()
    pairs = [(4.0, float(values[r, c]), 0) for r in range(1, 4) for c in range(1, 4)]
    pairs = [pair for pair in pairs if pair[1] != REGRESSION_NODATA]
    pairs.append((80.0, float(values[7, 8]), 1))
    pairs.append((60.0, float(values[6, 5]), 2))  # GDAL burns a point in floor(col), floor(row)
    return sorted(pairs)


# --- regression_pixels ------------------------------------------------------------------


@pytest.mark.parametrize("block_size", [1024, 3, 5])
def test_regression_pixels_polygons_and_points(regression_map, block_size):
    reference, predicted, rows = regression_pixels(
        regression_map, _shapes(), "value", block_size=block_size
    )
    assert reference.dtype == predicted.dtype == np.float64 and rows.dtype == np.int64
    found = sorted(zip(reference.tolist(), predicted.tolist(), rows.tolist(), strict=True))
    assert found == _expected()
    assert len(found) == 8 + 2  # 9 square pixels less the no-data one, and two points


def test_regression_pixels_rows_follow_the_frame_with_empty_geometries(regression_map):
    shapes = _shapes()
    shapes = gpd.GeoDataFrame(
        {"value": [9.0, *shapes["value"]]},
        geometry=[Point(), *shapes.geometry],  # an empty geometry first: rows shift by one
        crs=CRS_L93,
    )
    _, _, rows = regression_pixels(regression_map, shapes, "value")
    assert set(rows.tolist()) == {1, 2, 3}


def test_regression_pixels_drops_non_finite_references(regression_map):
    shapes = _shapes()
    shapes.loc[0, "value"] = np.nan
    reference, _, rows = regression_pixels(regression_map, shapes, "value")
    assert sorted(rows.tolist()) == [1, 2] and np.isfinite(reference).all()


def test_regression_pixels_refuses_bad_fields(regression_map):
    shapes = _shapes()
    with pytest.raises(InputDataError, match="no field 'target'"):
        regression_pixels(regression_map, shapes, "target")
    shapes["label"] = "wheat"
    with pytest.raises(InputDataError, match="'label'.*not numeric"):
        regression_pixels(regression_map, shapes, "label")
    with pytest.raises(InputDataError, match="reproject"):
        regression_pixels(regression_map, shapes.to_crs(32631), "value")


def test_regression_pixels_nothing_inside(regression_map):
    outside = gpd.GeoDataFrame({"value": [1.0]}, geometry=[Point(0, 0)], crs=CRS_L93)
    reference, predicted, rows = regression_pixels(regression_map, outside, "value")
    assert reference.size == predicted.size == rows.size == 0


# --- scores -----------------------------------------------------------------------------


def test_error_scores_by_hand():
    scores = error_scores(np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 2.0, 2.0, 6.0]))
    # residuals 1, 0, -1, 2: SS_res 6, SS_tot 5
    assert scores.n == 4
    assert scores.rmse == pytest.approx(math.sqrt(6 / 4))
    assert scores.mae == pytest.approx(1.0)
    assert scores.bias == pytest.approx(0.5)
    assert scores.r2 == pytest.approx(1 - 6 / 5)


def test_error_scores_match_sklearn():
    rng = np.random.default_rng(3)
    reference = rng.normal(50, 10, 500)
    predicted = reference + rng.normal(2, 5, 500)
    scores = error_scores(reference, predicted)
    assert scores.rmse == pytest.approx(math.sqrt(mean_squared_error(reference, predicted)))
    assert scores.mae == pytest.approx(mean_absolute_error(reference, predicted))
    assert scores.r2 == pytest.approx(r2_score(reference, predicted))
    assert scores.bias == pytest.approx(np.mean(predicted - reference))


def test_error_scores_undefined_cases():
    constant = error_scores(np.full(3, 2.0), np.array([1.0, 2.0, 3.0]))
    assert constant.r2 is None and constant.rmse == pytest.approx(math.sqrt(2 / 3))
    assert np.full(7, 0.1).mean() != 0.1  # the mean's rounding leaves SS_tot > 0 …
    assert error_scores(np.full(7, 0.1), np.full(7, 0.2)).r2 is None  # … still no R²
    empty = error_scores(np.empty(0), np.empty(0))
    assert (empty.n, empty.rmse, empty.mae, empty.bias, empty.r2) == (0, None, None, None, None)
    with pytest.raises(ValueError, match="differ"):
        error_scores(np.ones(3), np.ones(2))


REFERENCE = np.array([1.0, 1.0, 1.0, 3.0, 5.0, 5.0, 6.0])
PREDICTED = np.array([2.0, 0.0, 4.0, 3.5, 5.0, 7.0, 6.0])
POLYGON = np.array([7, 7, 7, 2, 9, 9, 4])
EDGES = np.array([0.0, 2.0, 4.0, 6.0])


def test_polygon_level_compares_polygon_means():
    metrics = regression_metrics(REFERENCE, PREDICTED, POLYGON, EDGES)
    # polygons 2, 4, 7, 9: references 3, 6, 1, 5; mean predictions 3.5, 6, 2, 6
    expected = error_scores(np.array([3.0, 6.0, 1.0, 5.0]), np.array([3.5, 6.0, 2.0, 6.0]))
    assert metrics.polygon == expected
    assert metrics.polygon.n == 4
    assert metrics.n == 7 and metrics.rmse == pytest.approx(error_scores(REFERENCE, PREDICTED).rmse)


def test_bins_split_pixels_by_reference_value():
    metrics = regression_metrics(REFERENCE, PREDICTED, POLYGON, EDGES)
    assert [(b.low, b.high) for b in metrics.bins] == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]
    assert [b.n for b in metrics.bins] == [3, 1, 3]  # 6.0 falls in the last bin (upper edge)
    first = error_scores(REFERENCE[:3], PREDICTED[:3])
    assert metrics.bins[0].rmse == pytest.approx(first.rmse)
    assert metrics.bins[0].bias == pytest.approx(first.bias)
    assert metrics.bins[0].r2 is None  # a bin with one reference value
    assert metrics.bins[1].mae == pytest.approx(0.5)
    sparse = regression_metrics(REFERENCE, PREDICTED, POLYGON, np.array([0.0, 2.0, 2.5, 6.0]))
    assert sparse.bins[1].n == 0 and sparse.bins[1].rmse is None


def test_metrics_round_trip_through_json():
    metrics = regression_metrics(REFERENCE, PREDICTED, POLYGON, EDGES)
    document = json.loads(json.dumps(metrics.to_dict(), allow_nan=False))
    assert set(document) == {"pixel", "polygon", "bins"}
    assert set(document["pixel"]) == {"n", "rmse", "mae", "bias", "r2"}
    assert set(document["bins"][0]) == {"low", "high", "n", "rmse", "mae", "bias", "r2"}
    assert RegressionMetrics.from_dict({"task": "regression", **document}) == metrics


def _runs() -> list[tuple[int, RegressionMetrics]]:
    rng = np.random.default_rng(0)
    runs = []
    for seed in range(3):
        reference = rng.uniform(0, 6, 200)
        predicted = reference + rng.normal(0.2 * seed, 0.5 + 0.1 * seed, 200)
        polygon = rng.integers(0, 20, 200)
        runs.append((seed, regression_metrics(reference, predicted, polygon, EDGES)))
    return runs


def test_summary_is_mean_and_student_interval_over_runs():
    runs = _runs()
    summary = summarise_regression(runs)
    mean, half = summarise_runs([m.rmse for _, m in runs])
    assert summary["pixel"]["rmse"] == {"mean": pytest.approx(mean), "ci95": pytest.approx(half)}
    mean, half = summarise_runs([m.polygon.r2 for _, m in runs])
    assert summary["polygon"]["r2"]["mean"] == pytest.approx(mean)
    assert summary["pixel"]["n"] == 600
    assert [b["low"] for b in summary["bins"]] == [0.0, 2.0, 4.0]
    mean, _ = summarise_runs([m.bins[2].bias for _, m in runs])
    assert summary["bins"][2]["bias"]["mean"] == pytest.approx(mean)
    one = summarise_regression(runs[:1])
    assert one["pixel"]["mae"] == {"mean": pytest.approx(runs[0][1].mae), "ci95": 0.0}
    constant = regression_metrics(np.ones(3), np.arange(3.0), np.zeros(3), EDGES)
    assert summarise_regression([(0, constant)])["pixel"]["r2"] == {"mean": None, "ci95": None}


def test_results_json_and_txt():
    runs = _runs()
    document = json.loads(json.dumps(regression_results_json(runs), allow_nan=False))
    assert document["task"] == "regression"
    assert [entry["seed"] for entry in document["seeds"]] == [0, 1, 2]
    assert document["seeds"][1]["pixel"]["rmse"] == pytest.approx(runs[1][1].rmse)
    assert "polygon" in document["seeds"][0] and len(document["seeds"][0]["bins"]) == 3
    assert set(document["summary"]) == {"pixel", "polygon", "bins"}
    with pytest.raises(ValueError, match="replace"):
        regression_results_json(runs, extra={"task": "x"})
    text = regression_results_txt(runs)
    summary = document["summary"]["pixel"]["rmse"]
    assert f"RMSE : {summary['mean']:.4f} +- {summary['ci95']:.4f}" in text
    assert "Run (seed 2)" in text and "Polygon level" in text
    assert "[4, 6]" in text and "[0, 2)" in text  # the per-bin table
    single = regression_results_txt(runs[:1])
    assert f"RMSE : {runs[0][1].rmse:.4f}\n" in single and "+-" not in single


# --- figures ----------------------------------------------------------------------------


def test_scatter_points_then_hexbin_and_residuals(tmp_path):
    rng = np.random.default_rng(1)
    few = rng.uniform(0, 10, 50)
    figure = scatter_figure(few, few + 1.0, "seed 0")
    axes = figure.axes[0]
    assert any(isinstance(c, PathCollection) for c in axes.collections)
    assert "RMSE 1" in axes.get_title() and "R\u00b2" in axes.get_title()
    many = rng.uniform(0, 10, HEXBIN_FROM)
    dense = scatter_figure(many, many + rng.normal(0, 1, many.size))
    assert any(isinstance(c, PolyCollection) for c in dense.axes[0].collections)
    residuals = residual_figure(few, few + 1.0, "seed 0")
    assert "bias 1" in residuals.axes[0].get_title()
    for name, fig in (("s.png", figure), ("h.png", dense), ("r.png", residuals)):
        save_figure(fig, tmp_path / name)
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    empty = scatter_figure(np.empty(0), np.empty(0))
    assert "no validation pixel" in empty.axes[0].texts[0].get_text()


# --- the step ---------------------------------------------------------------------------


def _context(tmp_path, runs: int = 1) -> RunContext:
    config = {
        "chain": {
            "output_path": "out",
            "list_tile": "T31TCJ",
            "s2_path": "S2",
            "ground_truth": "gt.gpkg",
            "data_field": "value",
            "proj": "EPSG:2154",
        },
        "arg_train": {"task": "regression", "runs": runs, "regression_bins": 2},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return RunContext(load_config(path))


def _write_run(context: RunContext, seeds, shapes: gpd.GeoDataFrame, sides: list[str]) -> None:
    layout = context.layout
    truth = shapes.assign(**{POLYGON_ID: np.arange(len(shapes)) + 100})
    write_vector(truth, layout.ground_truth)
    for seed in seeds:
        write_vector(truth.assign(split=sides), layout.split(seed))
        values = _values() + seed  # no-data stays far below
        values[2, 2] = REGRESSION_NODATA
        write_raster(layout.final_map(seed, "Regression"), values, GRID, nodata=REGRESSION_NODATA)


def test_validate_and_summarise_regression_runs(tmp_path):
    context = _context(tmp_path, runs=2)
    shapes = _shapes()
    _write_run(context, [0, 1], shapes, ["validation", "validation", "learning", "validation"])
    for seed in (0, 1):
        validate_regression_seed(context, seed)
    final = context.layout.final
    record = json.loads((final / "validation_seed_1.json").read_text())
    assert record["task"] == "regression" and record["pixel"]["n"] == 9
    pairs = load_arrays(final / "validation_pairs_seed_1.npz")
    assert sorted(np.unique(pairs["polygon"]).tolist()) == [100, 101]  # the ground truth's ids
    expected = [(r, p + 1) for r, p, row in _expected() if row in (0, 1)]
    found = sorted(zip(pairs["reference"].tolist(), pairs["predicted"].tolist(), strict=True))
    assert found == sorted(expected)
    edges = bin_edges(shapes["value"].to_numpy(), 2)
    assert [b["low"] for b in record["bins"]] == pytest.approx(edges[:-1].tolist())
    assert record["polygon"]["n"] == 2
    for name in ("scatter_seed_0.png", "residuals_seed_1.png"):
        assert (final / name).stat().st_size > 0
    summarise_regression_runs(context)
    results = json.loads(context.layout.results_json.read_text())
    assert results["task"] == "regression" and len(results["seeds"]) == 2
    assert results["summary"]["pixel"]["n"] == 18
    assert "model_selection" not in results
    assert "Over the 2 runs" in context.layout.results_txt.read_text()


def test_fold_also_validates_the_left_out_ground(tmp_path):
    context = _context(tmp_path).for_fold("north")
    shapes = _shapes()
    _write_run(context, [0], shapes, ["validation", "learning", "learning", "learning"])
    write_vector(shapes.iloc[[1, 2]].assign(**{POLYGON_ID: [5, 6]}), context.layout.left_out)
    validate_regression_seed(context, 0)
    final = context.layout.final
    left = json.loads((final / "validation_left_out_seed_0.json").read_text())
    assert left["pixel"]["n"] == 2 and left["polygon"]["n"] == 2
    pairs = load_arrays(final / "validation_pairs_left_out_seed_0.npz")
    assert sorted(pairs["polygon"].tolist()) == [5, 6]


def test_step_errors_are_one_line(tmp_path):
    context = _context(tmp_path)
    shapes = _shapes()
    _write_run(context, [0], shapes, ["learning"] * 4)
    with pytest.raises(InputDataError, match="no validation polygon in the split of run 0"):
        validate_regression_seed(context, 0)
    _write_run(context, [0], shapes, ["learning", "learning", "learning", "validation"])
    with pytest.raises(StepError, match="no pixel of the map falls inside the 1 validation"):
        validate_regression_seed(context, 0)
