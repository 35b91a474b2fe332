"""Spatial cross-validation: folds, shared preprocessing, a world that punishes extrapolation."""

import json

import geopandas as gpd
import pytest
from shapely.geometry import box

from sitsmap.config import load_config
from sitsmap.pipeline.run import run_crossval
from sitsmap.vectors.folds import polygon_groups
from tests.test_crossval_report import check_crossval_report

FAST = (
    "arg_train.sample_selection={sampler: periodic, strategy: constant, strategy.constant.nb: 300}",
    "arg_train.otb_classifier_options={classifier.rf.nbtrees: 30, classifier.rf.max: 20, "
    "classifier.rf.min: 2}",
    "scheduling.scheduler=synchronous",
)


def test_polygon_groups_by_tile_and_by_field():
    polygons = gpd.GeoDataFrame(
        {"region": ["north", "south", "south"]},
        geometry=[box(0, 0, 4, 1), box(6, 0, 7, 1), box(3, 2, 9, 3)],
        crs="EPSG:32631",
    )
    envelopes = {"A": box(0, 0, 5, 5), "B": box(5, 0, 10, 5)}
    # the straddling third polygon belongs to one tile only: where its representative point is
    assert polygon_groups(polygons, envelopes).tolist() == ["A", "B", "B"]
    assert polygon_groups(polygons, group_field="region").tolist() == ["north", "south", "south"]


def test_leave_one_tile_out_is_worse_than_same_area(small_world, tmp_path):
    config = load_config(
        small_world / "config.yaml", (*FAST, f"chain.output_path={tmp_path / 'out'}")
    )
    context = run_crossval(config)
    summary = json.loads((context.layout.crossval / "summary.json").read_text())
    assert [f["left_out"] for f in summary["folds"]] == list(config.chain.list_tile)
    same = summary["summary"]["same_area"]["mean_fscore"]["mean"]
    left_out = summary["summary"]["left_out_area"]["mean_fscore"]["mean"]
    assert left_out < same  # the world's geographic gradient makes unseen ground harder
    assert (context.layout.crossval / "fscore_per_fold.png").stat().st_size > 0
    assert "left_out_area" in (context.layout.crossval / "summary.txt").read_text()
    # folds share preprocessing: one validity raster per tile, no copy per fold
    assert len(list(context.layout.root.rglob("PixelsValidity.tif"))) == 4 + 1  # + mosaic
    done = {p.stem for p in context.layout.done.glob("*.json")}
    assert "preprocessing-T31TCJ" in done and "learning-seed0@T31TDK" in done
    # a fold never learns from the polygons it leaves out
    fold = context.layout.for_fold("T31TCJ")
    left = set(gpd.read_file(fold.left_out)["sitsmap_pid"])
    learnt = set(gpd.read_file(fold.split(0))["sitsmap_pid"])
    assert left and not left & learnt
    # the report is the cross-validation's own: per-fold matrices, F-scores, maps side by side
    check_crossval_report(context.layout.root, list(config.chain.list_tile))


def test_unknown_group_field_is_a_clear_error(small_world, tmp_path):
    from sitsmap.errors import InputDataError

    config = load_config(
        small_world / "config.yaml", (*FAST, f"chain.output_path={tmp_path / 'out'}")
    )
    with pytest.raises(InputDataError, match="no field 'region'"):
        run_crossval(config, group_field="region")


def test_crossval_by_group_field_through_the_cli(world_copy):
    from click.testing import CliRunner

    from sitsmap.cli import cli

    truth = gpd.read_file(world_copy / "ground_truth.shp")
    middle = truth.total_bounds[[0, 2]].mean()
    truth["block"] = [
        "west" if g is not None and not g.is_empty and g.centroid.x < middle else "east"
        for g in truth.geometry
    ]
    truth.to_file(world_copy / "blocks.gpkg")
    args = ["crossval", str(world_copy / "config.yaml"), "--group-field", "block"]
    for assignment in (*FAST, f"chain.ground_truth={world_copy / 'blocks.gpkg'}"):
        args += ["--set", assignment]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((world_copy / "output" / "crossval" / "summary.json").read_text())
    assert [f["left_out"] for f in summary["folds"]] == ["east", "west"]
    assert "left_out_area" in result.output
    assert (world_copy / "output" / "report.html").exists()
