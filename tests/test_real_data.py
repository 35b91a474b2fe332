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
    assert 50 < len(acquisitions.input_dates["T31UDS"]) < 118
    with rasterio.open(real_run.layout.final_validity) as src:
        validity = src.read(1, masked=True)
    # real clouds: every pixel lost some dates, none lost them all
    assert validity.max() < len(acquisitions.input_dates["T31UDS"])
    assert validity.min() > 0


def test_real_tile_map_beats_the_majority_class(real_run):
    results = json.loads(real_run.layout.results_json.read_text())
    confusion = np.array(results["seeds"][0]["confusion"])
    majority = confusion.sum(axis=1).max() / confusion.sum()
    assert results["seeds"][0]["oa"] > majority
    with rasterio.open(real_run.layout.final_map(0)) as src:
        assert src.dtypes[0] == "uint16"  # LPIS codes such as 9120 do not fit a byte
        assert src.crs.to_epsg() == 2154
