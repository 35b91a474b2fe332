"""Regression through the chain: config checks, ground truth, split, sampling, maps, scores.

The small world's ground truth carries ``biomass`` (:mod:`sitsmap.synth.target`):
what each parcel's simulated vegetation produced, times a measurement error
chosen so that the vegetation explains ``EXPLAINED_SHARE`` (0.8) of the
target's variance over the polygons: an ideal model's R² is about 0.8 and
nothing honest exceeds it much. Measured on this world with a 30-tree forest: R²
0.61 over validation pixels, 0.71 over validation polygons (9 polygons: noisy);
the tests ask for R² above 0.3 (far from the 0 of predicting the mean) and below
the ceiling.
"""

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from pydantic import ValidationError
from shapely.geometry import MultiPoint

from sitsmap.cli import cli
from sitsmap.config import load_config
from sitsmap.config.checks import ineffective_settings
from sitsmap.errors import InputDataError
from sitsmap.io.jsonfile import read_json
from sitsmap.io.vector import read_vector
from sitsmap.pipeline.run import run_chain
from sitsmap.sampling.bins import REGRESSION_NODATA, bin_edges, bin_of
from sitsmap.synth.target import EXPLAINED_SHARE, TARGET_FIELD
from sitsmap.vectors.check import clean_regression_truth
from sitsmap.vectors.ground_truth import BIN_COLUMN, POLYGON_ID
from sitsmap.vectors.split import LEARNING, SPLIT_COLUMN, VALIDATION

FAST = (
    "arg_train.sample_selection={sampler: periodic, strategy: constant, strategy.constant.nb: 200}",
    "arg_train.otb_classifier_options={classifier.rf.nbtrees: 30, classifier.rf.max: 20, "
    "classifier.rf.min: 2}",
    "python_data_managing.number_of_chunks=3",
    "scheduling.scheduler=synchronous",
)


def config(world, output, *extra):
    return load_config(
        world / "config_regression.yaml", (*FAST, f"chain.output_path={output}", *extra)
    )


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory, small_world):
    return run_chain(config(small_world, tmp_path_factory.mktemp("regression_run")))


# ------------------------------------------------------------------ configuration


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("arg_train.classifier=svm", "svm"),
        ("arg_train.sample_augmentation=smote", "smote"),
        ("arg_train.model_selection={criterion: oa}", "criterion: oa"),
        ("arg_train.deep_learning_parameters={model_selection_criterion: kappa}", "kappa"),
        ("arg_train.quantile_interval=[0.05, 0.95]", "needs arg_train.classifier lightgbm"),
    ],
)
def test_classification_settings_are_refused_in_a_regression(
    small_world, tmp_path, setting, message
):
    with pytest.raises((ValidationError, ValueError), match=message):
        config(small_world, tmp_path, setting)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("arg_train.quantile_interval=[0.05, 0.95]", "quantile_interval"),
        ("arg_train.model_selection={criterion: r2}", "regression score"),
    ],
)
def test_regression_settings_are_refused_in_a_classification(
    small_world, tmp_path, setting, message
):
    with pytest.raises((ValidationError, ValueError), match=message):
        load_config(small_world / "config.yaml", (setting, f"chain.output_path={tmp_path}"))


def test_class_products_are_reported_ineffective_in_a_regression(small_world, tmp_path):
    loaded = config(
        small_world,
        tmp_path,
        "arg_classification.enable_probability_map=true",
        "post_processing.vectorisation.douglas=5",
    )
    messages = "\n".join(ineffective_settings(loaded))
    assert "arg_classification.enable_probability_map has no effect" in messages
    assert "post_processing.vectorisation.douglas has no effect" in messages
    # switching the class products off is what a regression config does: no message
    assert "smoothing.enabled" not in messages
    assert not loaded.probability_maps


# ------------------------------------------------------------------ ground truth and bins


def test_bins_hold_equal_shares_and_cover_every_value():
    values = np.random.default_rng(1).gamma(2.0, 10.0, 1000)
    edges = bin_edges(values, 10)
    bins = bin_of(values, edges)
    assert edges.size == 11 and bins.min() == 0 and bins.max() == 9
    assert np.all(np.abs(np.bincount(bins) - 100) <= 1)
    assert bin_edges(np.array([3.0, 3.0, 4.0]), 10).size == 2  # ties merge the edges


def test_points_and_polygons_are_both_ground_truth(small_world):
    truth = read_vector(small_world / "ground_truth.shp").iloc[:6].copy()
    truth["value"] = np.arange(6, dtype=float)  # (the world's own target replaced)
    centre = truth.geometry.iloc[0].representative_point()
    truth.loc[truth.index[1], "geometry"] = MultiPoint([centre, (centre.x + 30, centre.y)])
    cleaned = clean_regression_truth(truth, "value")
    assert set(cleaned.geom_type) >= {"Point", "Polygon"}
    assert (cleaned.geom_type == "Point").sum() == 2  # the multipoint exploded
    assert cleaned["value"].dtype == np.float64


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["a", "b", "c"], "not numeric"),
        ([1.0, np.nan, 2.0], "no finite value"),
    ],
)
def test_bad_targets_are_refused_in_one_line(small_world, values, message):
    truth = read_vector(small_world / "ground_truth.shp").iloc[:3].copy()
    truth["value"] = values
    with pytest.raises(InputDataError, match=message):
        clean_regression_truth(truth, "value", source="truth.gpkg")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ("text", "not numeric"),
        ("nan", "no finite value"),
        ("constant", "same value"),
    ],
)
def test_bad_targets_stop_the_run_with_exit_code_2(small_world, tmp_path, values, message):
    truth = read_vector(small_world / "ground_truth.shp")
    truth[TARGET_FIELD] = {
        "text": [f"v{i}" for i in range(len(truth))],
        "nan": np.where(np.arange(len(truth)) == 3, np.nan, 1.0 + np.arange(len(truth))),
        "constant": np.full(len(truth), 7.0),
    }[values]
    path = tmp_path / "truth.gpkg"
    truth.to_file(path, engine="pyogrio")
    args = ["run", str(small_world / "config.yaml"), "--last-step", "init"]
    args[1] = str(small_world / "config_regression.yaml")
    for assignment in (*FAST, f"chain.ground_truth={path}", f"chain.output_path={tmp_path / 'o'}"):
        args += ["--set", assignment]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and str(path) in lines[0], result.stderr


# ------------------------------------------------------------------ the chain


def test_split_is_by_polygon_and_stratified_on_bins(regression_run):
    layout = regression_run.layout
    split = read_vector(layout.split(0))
    sides = split.groupby(POLYGON_ID)[SPLIT_COLUMN].nunique()
    assert (sides == 1).all()  # no polygon on both sides
    per_bin = split.groupby(BIN_COLUMN)[SPLIT_COLUMN].agg(set)
    several = split.groupby(BIN_COLUMN)[POLYGON_ID].nunique() > 1
    # each bin of two polygons or more has both learning and validation polygons
    assert all(per_bin[b] == {LEARNING, VALIDATION} for b in per_bin.index[several])


def test_samples_carry_the_target_of_their_polygon(regression_run):
    layout = regression_run.layout
    samples = read_vector(layout.samples(0))
    truth = read_vector(layout.ground_truth).set_index(POLYGON_ID)
    expected = truth.loc[samples[POLYGON_ID], TARGET_FIELD].to_numpy()
    assert samples[TARGET_FIELD].dtype == np.float64
    np.testing.assert_array_equal(samples[TARGET_FIELD].to_numpy(), expected)
    validation = read_vector(layout.split(0))
    validation = set(validation.loc[validation[SPLIT_COLUMN] == VALIDATION, POLYGON_ID])
    assert not validation & set(samples[POLYGON_ID])


def test_regression_maps_are_float_with_nodata_and_uncertainty(regression_run):
    layout = regression_run.layout
    with rasterio.open(layout.final_map(0, "Regression")) as src:
        assert src.dtypes[0] == "float32" and src.nodata == REGRESSION_NODATA
        assert src.crs.to_epsg() == 2154
        values = src.read(1)
    with rasterio.open(layout.final_map(0, "RegressionUncertainty")) as src:
        spread = src.read(1)
    mapped = values != REGRESSION_NODATA
    assert mapped.mean() > 0.5
    truth = read_vector(layout.ground_truth)[TARGET_FIELD]
    # a forest predicts means of learning values: within the learnt range
    assert truth.min() - 1e-3 <= values[mapped].min() and values[mapped].max() <= truth.max() + 1e-3
    assert (spread[mapped] >= 0).all() and spread[mapped].max() > 0
    assert not layout.final_map(0).exists()  # no class map in a regression


def test_regression_is_scored_on_left_out_polygons(regression_run):
    results = read_json(regression_run.layout.results_json)
    assert results["task"] == "regression"
    seed = results["seeds"][0]
    # well above predicting the mean (0), not above the world's ceiling
    assert 0.3 < seed["pixel"]["r2"] <= EXPLAINED_SHARE + 0.1, seed
    assert 0.3 < seed["polygon"]["r2"] <= EXPLAINED_SHARE + 0.15, seed
    assert seed["pixel"]["rmse"] > 0
    for name in ("scatter_seed_0.png", "residuals_seed_0.png"):
        assert (regression_run.layout.final / name).stat().st_size > 1000


def test_lightgbm_learns_and_its_quantile_interval_is_the_uncertainty(small_world, tmp_path):
    context = run_chain(
        config(
            small_world,
            tmp_path,
            "arg_train.classifier=lightgbm",
            "arg_train.quantile_interval=[0.05, 0.95]",
        )
    )
    with rasterio.open(context.layout.final_map(0, "RegressionUncertainty")) as src:
        width = src.read(1)
    assert (width[width != REGRESSION_NODATA] >= 0).all()
    assert width[width != REGRESSION_NODATA].max() > 0
    seed = read_json(context.layout.results_json)["seeds"][0]
    # measured 0.37 over pixels and 0.67 over polygons: boosting is noisier than the
    # forest on 13 learning polygons, still far above the mean's 0
    assert seed["pixel"]["r2"] > 0.2 and seed["polygon"]["r2"] > 0.3, seed


def test_crossval_in_regression_reports_same_area_and_left_out(small_world, tmp_path):
    from sitsmap.pipeline.run import run_crossval

    context = run_crossval(config(small_world, tmp_path / "out"))
    crossval = context.layout.crossval
    summary = read_json(crossval / "summary.json")
    assert summary["task"] == "regression"
    assert [f["left_out"] for f in summary["folds"]] == ["T31TCJ", "T31TCK", "T31TDJ", "T31TDK"]
    text = (crossval / "summary.txt").read_text()
    assert "same_area" in text and "left_out_area" in text and "R²" in text
    assert (crossval / "spread.tif").is_file()
    assert (context.layout.root / "report.html").stat().st_size > 1000
    # a fold's model never learnt from the polygons it leaves out
    fold = context.layout.for_fold("T31TDK")
    left = set(read_vector(fold.left_out)[POLYGON_ID])
    assert left and not left & set(read_vector(fold.samples(0))[POLYGON_ID])


@pytest.mark.parametrize(
    ("setting", "first_stale", "still_fresh"),
    [
        ("arg_train.regression_bins=5", "init-ground-truth", "preprocessing-T31TCJ"),
        ("arg_train.quantile_interval=[0.1, 0.9]", "learning-seed0", "sampling-table-seed0"),
        (
            "arg_train.deep_learning_parameters={regression_loss: huber, huber_delta: 2}",
            "learning-seed0",
            "sampling-table-seed0",
        ),
    ],
)
def test_regression_keys_rerun_the_tasks_that_read_them(
    small_world, tmp_path, setting, first_stale, still_fresh
):
    from sitsmap.pipeline.graph import build_tasks
    from sitsmap.scheduling.fingerprints import task_fingerprints

    base = ("arg_train.classifier=lightgbm",) if "quantile" in setting else ()
    plain = config(small_world, tmp_path, *base)
    changed = config(small_world, tmp_path, *base, setting)
    before = task_fingerprints(build_tasks(plain), plain)
    after = task_fingerprints(build_tasks(changed), changed)
    assert before[still_fresh].digest == after[still_fresh].digest
    for key in (first_stale, "classification-T31TCJ-seed0", "validation-seed0"):
        assert before[key].digest != after[key].digest, key


def test_switching_task_reruns_from_the_ground_truth(small_world, tmp_path):
    from sitsmap.pipeline.graph import build_tasks
    from sitsmap.scheduling.fingerprints import task_fingerprints

    regression = config(small_world, tmp_path)
    classification = config(small_world, tmp_path, "arg_train.task=classification")
    before = task_fingerprints(build_tasks(regression), regression)
    after = task_fingerprints(build_tasks(classification), classification)
    assert before["preprocessing-T31TCJ"].digest == after["preprocessing-T31TCJ"].digest
    assert before["init-ground-truth"].digest != after["init-ground-truth"].digest
