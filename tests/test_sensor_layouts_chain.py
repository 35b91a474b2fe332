"""The chain, unchanged, on every product layout `sitsmap synth --layout` writes.

One synthetic tile, written once per layout from the same seed: zipped Theia
products give the very map of the folders, Sen2Cor (its validity from a 20 m
scene classification) nearly the same, and Sentinel-2 with Landsat 8 (30 m, in
the neighbouring UTM zone) adds Landsat's features to Sentinel-2's.
"""

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio

from sitsmap.config import load_config
from sitsmap.pipeline.acquisitions import load_acquisitions
from sitsmap.pipeline.run import run_chain

FAST = (
    "arg_train.sample_selection={sampler: periodic, strategy: constant, strategy.constant.nb: 150}",
    "arg_train.otb_classifier_options={classifier.rf.nbtrees: 20, classifier.rf.max: 10}",
    "scheduling.scheduler=synchronous",
)


def _world(tmp_path_factory, *layouts: str) -> Path:
    from sitsmap.synth import generate_world

    out = tmp_path_factory.mktemp("_".join(layouts).replace("-", ""))
    generate_world(
        out,
        ["T31TCJ"],
        size=64,
        start=dt.date(2018, 4, 1),
        end=dt.date(2018, 9, 30),
        seed=3,
        layouts=layouts,
    )
    return out


def _run(world: Path, output: Path):
    return run_chain(load_config(world / "config.yaml", (*FAST, f"chain.output_path={output}")))


def _map(context) -> np.ndarray:
    with rasterio.open(context.layout.final_map(0)) as src:
        return src.read(1)


def _files(folder: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def theia_run(tmp_path_factory):
    world = _world(tmp_path_factory, "theia")
    return _run(world, tmp_path_factory.mktemp("theia_out"))


@pytest.mark.parametrize("layout", ["theia-zip", "safe-zip"])
def test_zipped_products_run_in_place_without_extraction(tmp_path_factory, theia_run, layout):
    world = _world(tmp_path_factory, layout)
    zips = sorted((world / "S2").rglob("*.zip"))
    assert zips and not [p for p in (world / "S2").rglob("*") if p.suffix in {".tif", ".jp2"}]
    before = _files(world)
    output = tmp_path_factory.mktemp(f"{layout}_out")
    context = _run(world, output)
    assert _files(world) == before  # nothing extracted beside the zips, nothing touched
    extracted = [
        p
        for p in output.rglob("*")
        if (p.suffix in {".jp2", ".xml"} and not p.name.endswith(".aux.xml")) or "FRE" in p.name
    ]  # .aux.xml: the attribute tables of the class maps, sitsmap's own
    assert extracted == []
    ours, theirs = _map(context), _map(theia_run)
    agreement = np.mean(ours == theirs)
    if layout == "theia-zip":
        assert agreement == 1.0  # the same files, read through /vsizip/
    else:  # validity from the 20 m scene classification instead of the 10 m masks
        assert agreement > 0.9


def test_safe_folders_and_stac_catalog_give_the_same_features(tmp_path_factory):
    runs = {
        layout: _run(_world(tmp_path_factory, layout), tmp_path_factory.mktemp(f"{layout}_out"))
        for layout in ("safe", "stac")
    }
    import pandas as pd

    names = load_acquisitions(runs["safe"]).feature_names
    assert load_acquisitions(runs["stac"]).feature_names == names
    safe, stac = (pd.read_parquet(r.layout.samples(0)) for r in runs.values())
    np.testing.assert_allclose(stac[names].to_numpy(), safe[names].to_numpy(), atol=1e-6)
    np.testing.assert_array_equal(_map(runs["stac"]), _map(runs["safe"]))


def test_sentinel2_with_landsat_from_the_neighbouring_zone(tmp_path_factory, theia_run):
    world = _world(tmp_path_factory, "theia", "landsat")
    scene = next((world / "L8").glob("*/*_QA_PIXEL.TIF"))
    with rasterio.open(scene) as src:
        assert src.crs.to_epsg() == 32630 and src.res == (30.0, 30.0)
    context = _run(world, tmp_path_factory.mktemp("s2_l8_out"))
    acquisitions = load_acquisitions(context)
    assert [grid.sensor for grid in acquisitions.sensors] == ["sentinel2", "landsat8"]
    s2_names = load_acquisitions(theia_run).feature_names
    names = acquisitions.feature_names
    assert names[: len(s2_names)] == s2_names
    landsat = acquisitions.sensors[1]
    assert names[len(s2_names) :] == landsat.feature_names
    assert landsat.variables == ("b2", "b3", "b4", "b5", "b6", "b7", "ndvi", "ndwi", "brightness")
    # Landsat's NDVI (B5, B4) follows Sentinel-2's (B8, B4) at the same pixels
    import pandas as pd

    samples = pd.read_parquet(context.layout.samples(0))
    date = landsat.out_dates[len(landsat.out_dates) // 2]
    s2_dates = acquisitions.sensors[0].out_dates
    nearest = min(s2_dates, key=lambda d: abs((d - date).days))
    l8 = samples[f"landsat8_ndvi_{date:%Y%m%d}"].to_numpy()
    s2 = samples[f"sentinel2_ndvi_{nearest:%Y%m%d}"].to_numpy()
    assert np.corrcoef(l8, s2)[0, 1] > 0.8
    assert _map(context).shape == _map(theia_run).shape


def _cli_run(world: Path, output: Path):
    from click.testing import CliRunner

    from sitsmap.cli import cli

    args = ["run", str(world / "config.yaml"), "--set", f"chain.output_path={output}"]
    for assignment in FAST:
        args += ["--set", assignment]
    return CliRunner().invoke(cli, args)


def test_an_unreadable_stac_asset_is_one_line_naming_it(tmp_path_factory):
    world = _world(tmp_path_factory, "stac")
    asset = sorted((world / "stac").rglob("B8A.tif"))[3]
    asset.write_bytes(b"not a tiff")
    output = tmp_path_factory.mktemp("bad_stac_out") / "out"
    result = _cli_run(world, output)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("sitsmap: error")]
    assert len(errors) == 1 and str(asset) in errors[0], result.output
    assert not list(output.rglob("Classif_Seed_0.tif"))


def test_a_landsat_scene_without_qa_pixel_is_refused_before_any_output(tmp_path_factory):
    world = _world(tmp_path_factory, "theia", "landsat")
    qa = next((world / "L8").glob("*/*_QA_PIXEL.TIF"))
    qa.unlink()
    output = tmp_path_factory.mktemp("bad_l8_out") / "out"
    result = _cli_run(world, output)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("sitsmap: error")]
    assert len(errors) == 1 and "QA_PIXEL" in errors[0] and qa.parent.name in errors[0]
    assert not output.exists()
