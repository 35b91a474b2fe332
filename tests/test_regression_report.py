"""The report of a regression run, and the cross-validation summary and page of a regression."""

import json
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import yaml
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import box

from sitsmap.config import load_config
from sitsmap.io.arrays import save_arrays, write_table
from sitsmap.io.figures import save_figure
from sitsmap.io.raster import RasterGrid, read_raster, write_raster
from sitsmap.io.vector import write_vector
from sitsmap.pipeline.context import RunContext
from sitsmap.pipeline.layout import OutputLayout
from sitsmap.pipeline.steps.crossval import summarise_folds
from sitsmap.report import write_report
from sitsmap.report.fold_maps import fold_spread
from sitsmap.sampling.bins import REGRESSION_NODATA
from sitsmap.validation.regression import error_scores, regression_metrics, regression_results_json
from sitsmap.validation.regression_figures import residual_figure, scatter_figure
from sitsmap.vectors.ground_truth import BIN_COLUMN, POLYGON_ID
from tests.test_report import _parse, _write_done

EDGES = np.array([0.0, 10.0, 20.0, 40.0])
GRID = RasterGrid(16, 12, Affine(10, 0, 500_000, 0, -10, 6_000_000), CRS.from_epsg(2154))


def _config(root, runs: int = 2) -> None:
    config = {
        "chain": {
            "output_path": ".",
            "list_tile": "T31TCJ",
            "s2_path": "S2",
            "ground_truth": "gt.gpkg",
            "data_field": "cover",
            "proj": "EPSG:2154",
        },
        "arg_train": {"task": "regression", "runs": runs, "regression_bins": 3},
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(yaml.safe_dump(config))


def _pairs(seed: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    polygon = np.repeat(np.arange(12), 25)
    reference = np.repeat(rng.uniform(0, 40, 12), 25)
    predicted = reference + rng.normal(shift + 0.5 * seed, 2.0 + seed, reference.size)
    return {"reference": reference, "predicted": predicted, "polygon": polygon}


def _write_split(layout: OutputLayout, seed: int) -> None:
    values = [5.0, 8.0, 15.0, 18.0, 25.0, 35.0]
    frame = gpd.GeoDataFrame(
        {
            "cover": values,
            BIN_COLUMN: [0, 0, 1, 1, 2, 2],
            POLYGON_ID: range(6),
            "split": ["learning", "validation"] * 3,
        },
        geometry=[box(500_000 + 20 * i, 5_999_900, 500_010 + 20 * i, 5_999_910) for i in range(6)],
        crs="EPSG:2154",
    )
    write_vector(frame, layout.split(seed))
    stats = pd.DataFrame(
        {"label": [0, 1, 2], "name": ["bin 0", "bin 1", "bin 2"], "count": [70, 60, 50]}
    )
    write_table(stats, layout.class_statistics(seed))


def _write_map(path, seed: int = 0) -> None:
    values = (np.arange(GRID.height * GRID.width, dtype=np.float32) / 5 + seed).reshape(
        GRID.height, GRID.width
    )
    values[:2, :] = REGRESSION_NODATA
    write_raster(path, values, GRID, nodata=REGRESSION_NODATA)


def _write_run(root, with_config: bool = True, selection: bool = False) -> dict:
    """A finished two-seed regression: seed 0 left its figures, seed 1 only its pairs."""
    if with_config:
        _config(root)
    layout = OutputLayout(root)
    per_seed = []
    for seed in (0, 1):
        pairs = _pairs(seed)
        per_seed.append((seed, regression_metrics(*pairs.values(), EDGES)))
        save_arrays(layout.final / f"validation_pairs_seed_{seed}.npz", **pairs)
        _write_split(layout, seed)
    for kind, draw in (("scatter", scatter_figure), ("residuals", residual_figure)):
        pairs = _pairs(0)
        save_figure(
            draw(pairs["reference"], pairs["predicted"]), layout.final / f"{kind}_seed_0.png"
        )
    _write_map(layout.final_map(0, "Regression"))
    history = pd.DataFrame(
        {
            "learning_rate": 0.001,
            "batch_size": 64,
            "epoch": [1, 2, 3],
            "train_loss": [1.0, 0.5, 0.4],
            "val_loss": [1.1, 0.6, 0.7],
            "val_rmse": [9.0, 4.25, 5.0],
            "val_r2": [0.1, 0.8, 0.7],
            "seconds": 0.1,
        }
    )
    for seed in (0, 1):
        write_table(history, layout.model_dir(seed) / "history.csv")
    extra = {}
    if selection:
        extra["model_selection"] = [_selection_document()]
    document = regression_results_json(per_seed, extra=extra)
    layout.results_json.write_text(json.dumps(document))
    _write_done(layout, {"init": [0.2], "learning": [3.0], "validation": [1.0, 1.5]})
    return document


def _selection_document() -> dict:
    scores = {"rmse": {"mean": 3.5, "std": 0.2}, "mae": {"mean": 2.5, "std": 0.1}}
    return {
        "task": "regression",
        "criterion": "rmse",
        "score": "rmse",
        "lower_is_better": True,
        "folds": 3,
        "seed": 0,
        "kept": "forest",
        "kept_index": 0,
        "candidates": [
            {"name": "forest", "learner": "rf", **scores, "r2": {"mean": 0.71, "std": 0.05}},
            {"name": "boost", "learner": "lightgbm", "error": "boom"},
        ],
    }


def _section(text: str, key: str) -> str:
    start = text.index(f'<section id="{key}">')
    return text[start : text.index("</section>", start)]


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("regression")
    document = _write_run(root)
    return document, write_report(root).read_text(encoding="utf-8")


def test_regression_report_has_its_sections_and_no_classification_ones(regression_run):
    _, text = regression_run
    checker = _parse(text)
    assert not checker.errors and not checker.stack
    assert "sitsmap regression report" in text
    assert "This report is partial" not in text
    assert text.count("Not available") == 1  # the cross-validation: none in this tree
    assert "Not available" in _section(text, "crossval")
    ids = ["accuracy", "map", "samples", "curves", "bins", "scatter", "time", "config"]
    positions = [text.index(f'<section id="{key}">') for key in ids]
    assert positions == sorted(positions)
    for key in ("confusion", "scores", "area", "regions"):
        assert f'id="{key}"' not in text


def test_regression_report_shows_mean_and_interval_over_runs(regression_run):
    document, text = regression_run
    accuracy = _section(text, "accuracy")
    rmse = document["summary"]["pixel"]["rmse"]
    assert f"{rmse['mean']:.3f} \u00b1 {rmse['ci95']:.3f}" in accuracy
    polygon_r2 = document["summary"]["polygon"]["r2"]
    assert f"{polygon_r2['mean']:.3f} \u00b1 {polygon_r2['ci95']:.3f}" in accuracy
    assert f"{document['seeds'][1]['polygon']['mae']:.3f}" in accuracy
    assert "polygons (mean prediction)" in accuracy and "mean of 2 runs" in accuracy


def test_regression_report_per_bin_table_and_samples(regression_run):
    document, text = regression_run
    bins = _section(text, "bins")
    assert "[0, 10)" in bins and "[20, 40]" in bins
    last = document["summary"]["bins"][2]
    assert f"{last['bias']['mean']:.3f} \u00b1 {last['bias']['ci95']:.3f}" in bins
    assert bins.count("<img") == 1
    samples = _section(text, "samples")
    assert "0: [0, 10)" in samples and ">70<" in samples  # learning pixels of bin 0
    assert f">{document['seeds'][0]['bins'][1]['n']}<" in samples  # validation pixels


def test_regression_report_figures_drawn_or_read(regression_run):
    _, text = regression_run
    scatter = _section(text, "scatter")
    assert scatter.count("<img") == 4  # seed 0's files; seed 1 drawn from its pairs
    assert "predicted vs reference, seed 1" in scatter
    map_section = _section(text, "map")
    assert "Regression_Seed_0.tif: 16 \u00d7 12 pixels" in map_section
    assert map_section.count("<img") == 2  # the map and its colour bar
    curves = _section(text, "curves")
    assert "Kept epoch 2 of 3" in curves and "RMSE 4.250" in curves


def test_regression_report_without_config_and_with_selection(tmp_path):
    _write_run(tmp_path, with_config=False, selection=True)
    fold = {"pixel": {"n": 9, "rmse": 4.321, "r2": 0.55}, "polygon": {"n": 3}}
    summary = {"task": "regression", "folds": [{"left_out": "east", "same_area": fold}]}
    (tmp_path / "crossval").mkdir()
    (tmp_path / "crossval" / "summary.json").write_text(json.dumps(summary))
    text = write_report(tmp_path).read_text(encoding="utf-8")
    crossval = _section(text, "crossval")
    assert "RMSE (same area)" in crossval and "4.321" in crossval and "0.550" in crossval
    assert "sitsmap regression report" in text and 'id="confusion"' not in text
    selection = _section(text, "model-selection")
    assert "RMSE (criterion)" in selection and "R\u00b2" in selection
    assert "lowest RMSE" in selection and "failed: boom" in selection
    assert "3.500 \u00b1 0.200" in selection


def test_partial_regression_run_says_what_is_missing(tmp_path):
    _config(tmp_path)
    text = write_report(tmp_path).read_text(encoding="utf-8")
    assert "sitsmap regression report" in text and "This report is partial" in text
    assert "Accuracy summary: " in text and 'id="bins"' in text
    assert not _parse(text).errors


# --- cross-validation -------------------------------------------------------------------

FOLDS = ["north", "south"]


def _crossval_tree(root) -> RunContext:
    _config(root)
    context = RunContext(load_config(root / "config.yaml"))
    for index, fold in enumerate(FOLDS):
        final = context.layout.for_fold(fold).final
        for seed in context.config.seeds:
            save_arrays(final / f"validation_pairs_seed_{seed}.npz", **_pairs(seed + 10 * index))
            pairs = _pairs(seed + 10 * index + 5, shift=3.0)
            save_arrays(final / f"validation_pairs_left_out_seed_{seed}.npz", **pairs)
        _write_map(context.layout.for_fold(fold).final_map(0, "Regression"), seed=2 * index)
    _write_done(context.layout, {"learning": [2.0, 2.5], "validation": [1.0]})
    return context


def test_fold_spread_by_hand():
    stack = np.array([[[1.0, 2.0], [REGRESSION_NODATA, 4.0]], [[3.0, 2.0], [1.0, 8.0]]])
    spread = fold_spread(stack, REGRESSION_NODATA)
    assert spread.dtype == np.float32
    np.testing.assert_allclose(spread, [[1.0, 0.0], [REGRESSION_NODATA, 2.0]])


def test_regression_crossval_summary_and_page(tmp_path):
    context = _crossval_tree(tmp_path)
    summarise_folds(context, FOLDS)
    crossval = context.layout.crossval
    summary = json.loads((crossval / "summary.json").read_text())
    assert summary["task"] == "regression" and [f["left_out"] for f in summary["folds"]] == FOLDS
    north = [_pairs(seed) for seed in (0, 1)]
    pooled = error_scores(
        np.concatenate([p["reference"] for p in north]),
        np.concatenate([p["predicted"] for p in north]),
    )
    same = summary["folds"][0]["same_area"]
    assert same["pixel"]["rmse"] == pytest.approx(pooled.rmse) and same["pixel"]["n"] == 600
    assert same["polygon"]["n"] == 24  # 12 polygons in each of two runs
    left = [f["left_out_area"]["pixel"]["rmse"] for f in summary["folds"]]
    assert summary["summary"]["left_out_area"]["pixel"]["rmse"]["mean"] == pytest.approx(
        np.mean(left)
    )
    assert summary["summary"]["left_out_area"]["pixel"]["rmse"]["std"] == pytest.approx(
        np.std(left, ddof=1)
    )
    assert (
        summary["folds"][0]["left_out_area"]["pixel"]["bias"] > same["pixel"]["bias"]
    )  # shifted by 3
    spread = read_raster(crossval / "spread.tif", bands=1)
    assert spread[5, 5] == pytest.approx(1.0) and spread[0, 0] == REGRESSION_NODATA
    assert summary["spread"]["mean_std"] == pytest.approx(1.0)
    assert summary["spread"]["pixels_valid_in_all_folds"] == 10 * 16
    text = (crossval / "summary.txt").read_text()
    assert "left_out_area" in text and f"{left[1]:.3f}" in text and "spread" in text
    assert (crossval / "rmse_per_fold.png").stat().st_size > 0
    assert not (crossval / "agreement.tif").exists()
    page = write_report(tmp_path).read_text(encoding="utf-8")
    assert "spatial cross-validation report" in page and "Not available" not in page
    assert not _parse(page).errors
    folds = _section(page, "folds")
    assert f"{left[0]:.3f}" in folds and "Polygons" in folds and "rmse_per_fold.png" in folds
    assert 'href="crossval/spread.tif"' in _section(page, "spread")
    for key in ("classes", "confusion", "agreement", "places"):
        assert f'id="{key}"' not in page
    assert math.isfinite(summary["summary"]["same_area"]["polygon"]["r2"]["mean"])
