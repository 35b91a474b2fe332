"""Post-processing in the chain: smoothed, regularised, uncertainty and vector maps."""

import json
import shutil

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
from click.testing import CliRunner
from scipy import ndimage

from sitsmap.cli import cli
from sitsmap.config import load_config
from sitsmap.pipeline.context import RunContext
from sitsmap.pipeline.run import plan_chain, run_chain
from sitsmap.pipeline.steps import postprocessing
from sitsmap.pipeline.steps.postprocessing import mmu_pixels
from tests.test_chain import FAST

PRODUCTS = (
    "Smoothed",
    "SmoothedProbabilityMap",
    "Regularised",
    "Uncertainty_entropy",
    "Uncertainty_margin",
    "Uncertainty_least",
)


@pytest.fixture(scope="module")
def post_run(tmp_path_factory, small_world):
    output = tmp_path_factory.mktemp("post")
    config = load_config(
        small_world / "config.yaml",
        (
            *FAST,
            f"chain.output_path={output}",
            "post_processing.vectorisation.enabled=true",
            "post_processing.regularisation.mmu=6",
        ),
    )
    return run_chain(config)


def _read(path, band=None):
    with rasterio.open(path) as src:
        return src.read(band) if band else src.read()


def test_every_product_is_a_finished_cog(post_run):
    layout = post_run.layout
    for kind in PRODUCTS:
        path = layout.final_map(0, kind)
        with rasterio.open(path) as src:
            assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG", path
            assert src.crs.to_epsg() == 2154
    for kind in ("Smoothed", "Regularised"):
        assert layout.final_map(0, kind).with_suffix(".qml").is_file()
    assert layout.vector_map(0).is_file() and layout.vector_map(0, ".parquet").is_file()


def test_post_processed_maps_are_validated_beside_the_raw_map(post_run):
    results = json.loads(post_run.layout.results_json.read_text())
    raw = results["seeds"][0]["oa"]
    smoothed = results["post_processing"]["smoothed"]["seeds"][0]["oa"]
    regularised = results["post_processing"]["regularised"]["seeds"][0]["oa"]
    assert 0.5 < raw <= 1 and 0.5 < smoothed <= 1 and 0.5 < regularised <= 1
    assert smoothed >= raw  # the bar: smoothing must not lose accuracy (0.97 -> 1.0)
    text = post_run.layout.results_txt.read_text()
    assert "#### Smoothed map ####" in text and "#### Regularised map ####" in text


def test_regularised_map_has_no_patch_below_the_mapping_unit(post_run):
    layout = post_run.layout
    regular = _read(layout.final_map(0, "Regularised"), 1)
    assert mmu_pixels(post_run) == 6
    small = 0
    for code in np.unique(regular[regular > 0]):
        labels, count = ndimage.label(regular == code)
        sizes = np.bincount(labels.ravel())[1:]
        for label in np.flatnonzero(sizes < 6) + 1:
            ring = ndimage.binary_dilation(labels == label) & (labels != label)
            small += bool(np.any(regular[ring] > 0))  # only patches walled by no data may stay
    assert small == 0
    smoothed = _read(layout.final_map(0, "Smoothed"), 1)
    assert np.array_equal(regular > 0, smoothed > 0)  # same support


def test_uncertainty_maps_follow_their_formulas(post_run):
    layout = post_run.layout
    probabilities = _read(layout.final_map(0, "SmoothedProbabilityMap")).astype(float) / 100
    valid = np.all(probabilities <= 1, axis=0)
    least = _read(layout.final_map(0, "Uncertainty_least"), 1)
    assert np.all(least[~valid] == -1)
    ordered = np.sort(probabilities[:, valid], axis=0)
    # the maps come from unrounded probabilities; the stored ones are rounded to 1 %
    np.testing.assert_allclose(least[valid], 1 - ordered[-1], atol=0.02)
    margin = _read(layout.final_map(0, "Uncertainty_margin"), 1)
    np.testing.assert_allclose(margin[valid], 1 - ordered[-1] + ordered[-2], atol=0.03)
    entropy = _read(layout.final_map(0, "Uncertainty_entropy"), 1)
    assert np.all((entropy[valid] >= 0) & (entropy[valid] <= 1))


def test_vector_map_covers_the_regularised_map(post_run):
    layout = post_run.layout
    info = pyogrio.read_info(layout.vector_map(0))
    assert info["crs"].endswith("2154") and info["features"] > 0
    frame = gpd.read_file(layout.vector_map(0), engine="pyogrio")
    regular = _read(layout.final_map(0, "Regularised"), 1)
    counts = {
        int(c): int(n) for c, n in zip(*np.unique(regular, return_counts=True), strict=True) if c
    }
    by_class = frame.groupby("class")["area_ha"].sum()
    assert {int(c): round(a / 0.01) for c, a in by_class.items()} == counts
    components = sum(ndimage.label(regular == code)[1] for code in counts)
    assert len(frame) == components
    parquet = gpd.read_parquet(layout.vector_map(0, ".parquet"))
    assert len(parquet) == len(frame) and parquet.crs.to_epsg() == 2154


def test_products_do_not_depend_on_the_block_size(post_run, tmp_path):
    layout = post_run.layout
    config = post_run.config.model_copy(
        update={
            "chain": post_run.config.chain.model_copy(update={"output_path": tmp_path}),
            "post_processing": post_run.config.post_processing.model_copy(
                update={"block_size": 64}
            ),
        }
    )
    other = RunContext(config)
    other.layout.final.mkdir(parents=True)
    for kind in ("Classif", "ProbabilityMap"):
        shutil.copy(layout.final_map(0, kind), other.layout.final_map(0, kind))
    with rasterio.open(layout.final_map(0)) as src:
        assert max(src.shape) > 64  # several blocks, with borders inside the map
    postprocessing.post_process(other, 0)
    for kind in PRODUCTS:
        assert np.array_equal(
            _read(layout.final_map(0, kind)), _read(other.layout.final_map(0, kind))
        ), kind


def test_suggest_samples_command(post_run, tmp_path):
    out = tmp_path / "points.gpkg"
    root = str(post_run.layout.root)
    result = CliRunner().invoke(
        cli, ["suggest-samples", root, "--n", "5", "--min-distance", "100", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    points = gpd.read_file(out, engine="pyogrio")
    assert len(points) == 5
    xy = np.column_stack([points.geometry.x, points.geometry.y])
    distances = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    assert distances[np.triu_indices(5, 1)].min() >= 100
    probabilities = _read(post_run.layout.final_map(0, "SmoothedProbabilityMap")).astype(float)
    valid = np.all(probabilities <= 100, axis=0)
    ordered = np.sort(probabilities[:, valid] / 100, axis=0)
    assert points["margin"].iloc[0] == pytest.approx((1 - ordered[-1] + ordered[-2]).max())
    assert points["margin"].is_monotonic_decreasing
    assert set(points.columns) >= {"class_1", "name_1", "class_2", "name_2", "probability_1"}


def test_suggest_samples_in_a_folder_without_a_run_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(cli, ["suggest-samples", str(tmp_path)])
    assert result.exit_code == 2
    assert "config.yaml" in result.output


def test_switching_one_product_off_keeps_the_classification(post_run):
    """The probability maps stay needed: only post-processing and what follows rerun."""
    config = post_run.config.model_copy(
        update={
            "post_processing": post_run.config.post_processing.model_copy(
                update={
                    "uncertainty": post_run.config.post_processing.uncertainty.model_copy(
                        update={"enabled": False}
                    )
                }
            )
        }
    )
    plan = plan_chain(config)
    assert {task.step for task in plan.to_run} == {"postprocessing", "validation"}, plan.describe()


def test_entropy_map_is_the_normalised_entropy(post_run):
    layout = post_run.layout
    probabilities = _read(layout.final_map(0, "SmoothedProbabilityMap")).astype(float) / 100
    valid = np.all(probabilities <= 1, axis=0)
    p = probabilities[:, valid]
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = -np.nansum(np.where(p > 0, p * np.log(p), 0), axis=0) / np.log(len(p))
    entropy = _read(layout.final_map(0, "Uncertainty_entropy"), 1)[valid]
    # the map comes from unrounded probabilities, the stored ones are rounded to 1 %, and
    # -p log p is steep near 0: a loose bound per pixel, a tight one on the ranking
    np.testing.assert_allclose(entropy, expected, atol=0.06)
    assert np.corrcoef(entropy, expected)[0, 1] > 0.99
