"""Eco-regions through the chain: one model per region, seamless borders, reruns, bad input.

A synthetic world of two eco-regions (``sitsmap synth --regions 2``: crop
calendars weeks apart, other soils and class mixes) over two tiles.
"""

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from click.testing import CliRunner

from sitsmap.cli import cli
from sitsmap.config import load_config
from sitsmap.pipeline.run import plan_chain, run_chain, run_crossval

TILES = ("T31TCJ", "T31TDJ")
FAST = (
    "arg_train.sample_selection={sampler: periodic, strategy: constant, strategy.constant.nb: 300}",
    "arg_train.otb_classifier_options={classifier.rf.nbtrees: 40, classifier.rf.max: 14}",
    "scheduling.scheduler=synchronous",
)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    from sitsmap.synth import generate_world

    out = tmp_path_factory.mktemp("regions_world")
    generate_world(
        out, TILES, size=128, start=dt.date(2018, 3, 1), end=dt.date(2018, 10, 31), regions=2
    )
    _write_straight_regions(out)
    return out


def _write_straight_regions(world: Path) -> None:
    """West and east of a north-south line that cuts through parcels, unlike the world's own."""
    layer = gpd.read_file(world / "regions.gpkg")
    left, bottom, right, top = layer.total_bounds
    middle = (left + right) / 2 + 37
    boxes = [shapely.box(left, bottom, middle, top), shapely.box(middle, bottom, right, top)]
    gpd.GeoDataFrame({"zone": ["west", "east"]}, geometry=boxes, crs=layer.crs).to_file(
        world / "straight.gpkg"
    )


def _config(world: Path, output: Path, *extra: str):
    return load_config(world / "config.yaml", (*FAST, f"chain.output_path={output}", *extra))


def _straight(width: float) -> tuple[str, ...]:
    return (
        "chain.region_path=straight.gpkg",
        "chain.region_field=zone",
        f"chain.region_border_width={width}",
    )


def _results(context) -> dict:
    return json.loads(context.layout.results_json.read_text())


@pytest.fixture(scope="module")
def runs(world, tmp_path_factory):
    def run(name: str, *extra: str):
        return run_chain(_config(world, tmp_path_factory.mktemp(name), *extra))

    return {
        "regions": run("regions"),
        "global": run("global", "chain.region_path=null"),
        "hard": run("hard", *_straight(0)),
        "blend": run("blend", *_straight(600)),
    }


def test_one_model_per_region_beats_one_global_model(runs):
    regional, single = _results(runs["regions"]), _results(runs["global"])
    oa_regions, oa_global = regional["seeds"][0]["oa"], single["seeds"][0]["oa"]
    assert oa_regions > oa_global + 0.05, (oa_regions, oa_global)
    assert sorted(regional["regions"]) == ["r1", "r2"]
    for entry in regional["regions"].values():
        assert 0 < entry["seeds"][0]["oa"] <= 1 and entry["seeds"][0]["per_class"]
    text = runs["regions"].layout.results_txt.read_text()
    assert "#### Region r1 ####" in text and "#### Region r2 ####" in text
    model_dir = runs["regions"].layout.model_dir(0)
    assert (model_dir / "region_r1" / "model.bin").is_file()
    assert (model_dir / "region_r2" / "model.bin").is_file()
    with rasterio.open(runs["regions"].layout.final_regions) as src:
        assert set(np.unique(src.read(1))) <= {0, 1, 2} and src.crs.to_epsg() == 2154


def _change_rates(context) -> tuple[float, float]:
    """Class changes between neighbours across the region border, and far inside the regions."""
    from scipy.ndimage import distance_transform_edt

    across, inside = [], []
    for tile in TILES:
        with rasterio.open(context.layout.classification(tile, 0)) as src:
            classes = src.read(1)
        with rasterio.open(context.layout.regions_raster(tile)) as src:
            regions = src.read(1)
        border = np.zeros(regions.shape, dtype=bool)
        border[:, 1:] |= regions[:, 1:] != regions[:, :-1]
        border[:, :-1] |= regions[:, 1:] != regions[:, :-1]
        far = distance_transform_edt(~border) > 20
        pairs = (classes[:, 1:] > 0) & (classes[:, :-1] > 0)
        changed = classes[:, 1:] != classes[:, :-1]
        crossing = pairs & (regions[:, 1:] != regions[:, :-1])
        within = pairs & far[:, 1:] & far[:, :-1]
        across.append(changed[crossing])
        inside.append(changed[within])
    return float(np.concatenate(across).mean()), float(np.concatenate(inside).mean())


def test_the_blended_border_band_removes_the_seam(runs):
    hard_across, hard_inside = _change_rates(runs["hard"])
    blend_across, blend_inside = _change_rates(runs["blend"])
    assert hard_across > 2 * hard_inside  # iota2's hard borders: a visible step
    # blended: far fewer changes across the border; this border cuts parcels whose two
    # regional models disagree by design, so a few changes remain (see the issue note)
    assert blend_across < 0.6 * hard_across
    assert blend_across <= 1.5 * blend_inside


def test_blended_maps_are_the_same_with_processes(world, runs, tmp_path):
    config = _config(
        world, tmp_path / "processes", *_straight(600), "scheduling.scheduler=processes"
    )
    context = run_chain(config, workers=2)
    with (
        rasterio.open(context.layout.final_map(0)) as a,
        rasterio.open(runs["blend"].layout.final_map(0)) as b,
    ):
        np.testing.assert_array_equal(a.read(), b.read())


def test_a_changed_border_width_reruns_only_classification_and_after(world, runs, tmp_path):
    output = tmp_path / "copy"
    shutil.copytree(runs["blend"].layout.root, output)
    same = plan_chain(_config(world, output, *_straight(600)))
    assert same.to_run == ()
    wider = plan_chain(_config(world, output, *_straight(1000)))
    steps = {task.step for task in wider.to_run}
    assert steps == {"classification", "mosaic", "postprocessing", "validation"}, wider.describe()


def _empty_corner(world: Path) -> shapely.Polygon:
    """A 200 m square over the first tile that no ground-truth polygon touches."""
    truth = gpd.read_file(world / "ground_truth.shp").to_crs(32631)
    with rasterio.open(next((world / "S2" / TILES[0]).glob("*/*_FRE_B2.tif"))) as src:
        left, bottom, right, top = src.bounds
    for x in np.arange(left + 100, right - 300, 100):
        for y in np.arange(bottom + 100, top - 300, 100):
            square = shapely.box(x, y, x + 200, y + 200)
            if not truth.intersects(square).any():
                return square
    raise AssertionError("no empty corner in the world")


def _with_empty_region(world: Path) -> None:
    corner = _empty_corner(world)
    layer = gpd.read_file(world / "straight.gpkg")
    layer["geometry"] = layer.geometry.difference(corner)
    extra = gpd.GeoDataFrame({"zone": ["empty"]}, geometry=[corner], crs=layer.crs)
    gpd.pd.concat([layer, extra]).to_file(world / "three.gpkg")


def test_a_region_without_ground_truth_falls_back_and_says_so(world, tmp_path):
    _with_empty_region(world)
    overrides = ("chain.region_path=three.gpkg", "chain.region_field=zone")
    context = run_chain(_config(world, tmp_path / "three", *overrides))
    models = _results(context)["regions"]
    record = json.loads((context.layout.model_dir(0, "empty") / "region.json").read_text())
    assert record["fallback"] == "global" and record["samples"] == 0
    assert "empty" not in models or models["empty"]["models"]["0"]["fallback"] == "global"
    with rasterio.open(context.layout.regions_raster(TILES[0])) as src:
        empty = src.read(1) == 3  # regions are numbered in id order: east, empty, west
    with rasterio.open(context.layout.classification(TILES[0], 0)) as src:
        assert (src.read(1)[empty] > 0).all()  # classified by the global model
    assert empty.any()
    result = _cli(world, tmp_path / "error", *overrides, "chain.region_fallback=error")
    assert result.exit_code == 2
    assert _error_line(result).endswith(
        "region empty has no learning sample in run 0 (chain.region_fallback: error): give it "
        "ground truth, or set region_fallback to global or nearest"
    )


def _cli(world: Path, output: Path, *overrides: str):
    args = ["run", str(world / "config.yaml")]
    for assignment in (*FAST, f"chain.output_path={output}", *overrides):
        args += ["--set", assignment]
    return CliRunner().invoke(cli, args)


def _error_line(result) -> str:
    errors = [line for line in result.output.splitlines() if line.startswith("sitsmap: error")]
    assert len(errors) == 1, result.output
    return errors[0]


def _layer(world: Path, name: str, frame: gpd.GeoDataFrame) -> str:
    frame.to_file(world / name)
    return f"chain.region_path={world / name}"


def test_bad_region_layers_are_one_line_and_write_nothing(world, tmp_path):
    straight = gpd.read_file(world / "straight.gpkg")
    far = straight.set_geometry(straight.geometry.translate(50_000, 0))
    overlapping = straight.set_geometry(straight.geometry.buffer(100))
    bad_id = straight.assign(zone=["west", "east zone"])
    cases = [
        (_layer(world, "nofield.gpkg", straight), r"no field 'region' \(chain.region_field\)"),
        (_layer(world, "far.gpkg", far), "no region overlaps any tile"),
        (_layer(world, "overlap.gpkg", overlapping), "regions east and west overlap"),
        (_layer(world, "badid.gpkg", bad_id), "region id 'east zone' is not a valid name"),
    ]
    for index, (setting, message) in enumerate(cases):
        field = () if "nofield" in setting else ("chain.region_field=zone",)
        output = tmp_path / f"out{index}"
        result = _cli(world, output, setting, *field)
        assert result.exit_code == 2, result.output
        assert re.search(message, _error_line(result)), result.output
        assert not list(output.rglob("Classif_Seed_0.tif"))


def test_crossval_leaves_one_region_out(world, tmp_path):
    context = run_crossval(
        _config(world, tmp_path / "folds", "chain.region_border_width=0"), folds="regions"
    )
    summary = json.loads((context.layout.crossval / "summary.json").read_text())
    assert [fold["left_out"] for fold in summary["folds"]] == ["r1", "r2"]
    # each fold's model is one global model of the other region
    fold = context.layout.for_fold("r1")
    assert fold.model(0).is_file() and not fold.model_dir(0, "r2").exists()
