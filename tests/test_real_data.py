"""The chain, unchanged, on one real Sentinel-2 tile (read from ../shared, never copied)."""

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from sitsmap.config import load_config
from sitsmap.pipeline.acquisitions import load_acquisitions
from sitsmap.pipeline.run import run_chain

from .conftest import REAL_DATA

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "worldcereal_t31uds.yaml"
TILE = REAL_DATA / "worldcereal-t31uds"


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    if not TILE.is_dir():
        pytest.skip(f"real data not found at {TILE} (it lives in ../shared beside the repo)")
    output = tmp_path_factory.mktemp("real")
    config = load_config(
        EXAMPLE, [f"chain.output_path={output}", "scheduling.scheduler=synchronous"]
    )
    return run_chain(config)


def test_real_tile_is_gap_filled_onto_the_2018_grid(real_run):
    acquisitions = load_acquisitions(real_run)
    assert len(acquisitions.out_dates) == 37
    assert len(acquisitions.feature_names) == 37 * 13
    assert acquisitions.feature_names[0] == "sentinel2_b2_20180101"
    # the example keeps 2018: fewer than the 118 acquisitions of the folder
    assert 50 < len(acquisitions.input_dates["T31UDS"]["sentinel2"]) < 118
    with rasterio.open(real_run.layout.final_validity) as src:
        validity = src.read(1, masked=True)
    # real clouds: every pixel lost some dates, none lost them all
    assert validity.max() < len(acquisitions.input_dates["T31UDS"]["sentinel2"])
    assert validity.min() > 0


def test_real_tile_map_beats_the_majority_class(real_run):
    results = json.loads(real_run.layout.results_json.read_text())
    confusion = np.array(results["seeds"][0]["confusion"])
    majority = confusion.sum(axis=1).max() / confusion.sum()
    assert results["seeds"][0]["oa"] > majority
    with rasterio.open(real_run.layout.final_map(0)) as src:
        assert src.dtypes[0] == "uint16"  # LPIS codes such as 9120 do not fit a byte
        assert src.crs.to_epsg() == 2154


# The same patch in the other layouts of ../shared: the chain runs on each, unchanged.
LAYOUTS = {
    "safe": REAL_DATA / "worldcereal-t31uds-safe",
    "stac": REAL_DATA / "worldcereal-t31uds-stac",
    "landsat": REAL_DATA / "worldcereal-t31uds-landsat",
    "s2_landsat": REAL_DATA / "worldcereal-t31uds-landsat",
}


def _run_example(name: str, output: Path):
    folder = LAYOUTS[name]
    if not folder.is_dir():
        pytest.skip(f"real data not found at {folder} (it lives in ../shared beside the repo)")
    example = EXAMPLE.with_name(f"worldcereal_t31uds_{name}.yaml")
    overrides = [f"chain.output_path={output}", "scheduling.scheduler=synchronous"]
    return run_chain(load_config(example, overrides))


@pytest.fixture(scope="module")
def layout_runs(real_run, tmp_path_factory):
    return {
        name: _run_example(name, tmp_path_factory.mktemp(name))
        for name in ("safe", "stac", "landsat", "s2_landsat")
    }


def _map(context) -> np.ndarray:
    with rasterio.open(context.layout.final_map(0)) as src:
        return src.read(1)


def _samples(context):
    import pandas as pd

    return pd.read_parquet(context.layout.samples(0)).sort_values(["row", "col"])


@pytest.mark.parametrize("name", ["safe", "stac"])
def test_safe_and_stac_layouts_give_the_theia_features_and_map(real_run, layout_runs, name):
    # Their masks come from the same scene classification as the Theia masks, so
    # they agree everywhere: the features are equal, and so is the map.
    other = layout_runs[name]
    theia_samples, other_samples = _samples(real_run), _samples(other)
    names = load_acquisitions(real_run).feature_names
    assert load_acquisitions(other).feature_names == names
    assert len(other_samples) == len(theia_samples) > 1000
    np.testing.assert_allclose(
        other_samples[names].to_numpy(), theia_samples[names].to_numpy(), atol=1e-6
    )
    np.testing.assert_array_equal(_map(other), _map(real_run))


def test_landsat_alone_makes_a_map_on_its_own_temporal_grid(layout_runs):
    run = layout_runs["landsat"]
    acquisitions = load_acquisitions(run)
    assert [grid.sensor for grid in acquisitions.sensors] == ["landsat8"]
    assert len(acquisitions.out_dates) == 23  # 2018 every 16 days
    assert acquisitions.feature_names[0] == "landsat8_b2_20180101"
    assert len(acquisitions.feature_names) == 23 * 9  # 6 bands, NDVI, NDWI, brightness
    results = json.loads(run.layout.results_json.read_text())["seeds"][0]
    confusion = np.array(results["confusion"])
    assert results["oa"] > confusion.sum(axis=1).max() / confusion.sum()


def test_sentinel2_and_landsat_features_are_concatenated(real_run, layout_runs):
    run = layout_runs["s2_landsat"]
    acquisitions = load_acquisitions(run)
    s2_names = load_acquisitions(real_run).feature_names
    names = acquisitions.feature_names
    assert names[: len(s2_names)] == s2_names
    assert names[len(s2_names)] == "landsat8_b2_20180101"
    assert len(names) == len(s2_names) + 23 * 9
    samples = _samples(run)
    # the Sentinel-2 part is what Sentinel-2 alone gives; the Landsat part is real reflectance
    np.testing.assert_allclose(
        samples[s2_names].to_numpy(), _samples(real_run)[s2_names].to_numpy(), atol=1e-6
    )
    red = samples[[n for n in names if n.startswith("landsat8_b4_")]].to_numpy()
    assert 0.0 < np.median(red) < 0.3
    assert _map(run).shape == _map(real_run).shape
