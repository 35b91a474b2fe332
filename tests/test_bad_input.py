"""Each kind of bad input gives one clear line naming the file, exit code 2, no partial output."""

import shutil

import geopandas as gpd
import pytest
from click.testing import CliRunner

from sitsmap.cli import cli

FAST = (
    "scheduling.scheduler=synchronous",
    "arg_train.otb_classifier_options="
    "{classifier.rf.nbtrees: 5, classifier.rf.max: 5, classifier.rf.min: 5}",
)


def run_cli(world, *extra, last_step="validation"):
    args = ["run", str(world / "config.yaml"), "--last-step", last_step]
    for assignment in (*FAST, *extra):
        args += ["--set", assignment]
    return CliRunner().invoke(cli, args)


def first_product(world, tile="T31TCJ"):
    return sorted((world / "S2" / tile).iterdir())[0]


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sitsmap: error: ")
    for fragment in fragments:
        assert str(fragment) in lines[0]


def assert_nothing_half_written(world):
    output = world / "output"
    if output.exists():
        assert not list(output.rglob(".tmp-*"))
        assert not (output / "final").exists()


def test_tile_with_no_products(world_copy):
    tile_dir = world_copy / "S2" / "T31TDK"
    shutil.rmtree(tile_dir)
    tile_dir.mkdir()
    result = run_cli(world_copy, last_step="init")
    assert_one_line_error(result, tile_dir, "no Sentinel-2")
    assert_nothing_half_written(world_copy)


def test_missing_tile_folder(world_copy):
    shutil.rmtree(world_copy / "S2" / "T31TDK")
    result = run_cli(world_copy, last_step="init")
    assert_one_line_error(result, "T31TDK")


def test_product_missing_a_band(world_copy):
    band = next(first_product(world_copy).glob("*_FRE_B8.tif"))
    band.unlink()
    result = run_cli(world_copy, last_step="init")
    assert_one_line_error(result, band.name)


def test_product_missing_a_mask(world_copy):
    mask = next((first_product(world_copy) / "MASKS").glob("*_CLM_R1.tif"))
    mask.unlink()
    result = run_cli(world_copy, last_step="init")
    assert_one_line_error(result, mask.name)


def test_truncated_geotiff(world_copy):
    band = next(first_product(world_copy, "T31TCK").glob("*_FRE_B4.tif"))
    data = band.read_bytes()
    band.write_bytes(data[: len(data) // 2])
    result = run_cli(world_copy, last_step="preprocessing")
    assert_one_line_error(result, band.name)
    assert not (world_copy / "output" / "features" / "T31TCK" / "PixelsValidity.tif").exists()
    assert_nothing_half_written(world_copy)


def test_ground_truth_outside_every_tile(world_copy):
    truth = gpd.read_file(world_copy / "ground_truth.shp")
    truth.geometry = truth.geometry.translate(xoff=2_000_000)
    truth.to_file(world_copy / "far.gpkg")
    result = run_cli(world_copy, f"chain.ground_truth={world_copy / 'far.gpkg'}", last_step="init")
    assert_one_line_error(result, "far.gpkg", "does not overlap")


def test_missing_data_field(world_copy):
    result = run_cli(world_copy, "chain.data_field=klass", last_step="init")
    assert_one_line_error(result, "ground_truth.shp", "klass")


def test_data_field_not_integer(world_copy):
    truth = gpd.read_file(world_copy / "ground_truth.shp")
    truth["code"] = truth["code"].astype(float) + 0.5
    truth.to_file(world_copy / "float.gpkg")
    result = run_cli(
        world_copy, f"chain.ground_truth={world_copy / 'float.gpkg'}", last_step="init"
    )
    assert_one_line_error(result, "float.gpkg", "not integer")


def test_class_absent_from_nomenclature(world_copy):
    path = world_copy / "nomenclature.txt"
    kept = [line for line in path.read_text().splitlines() if not line.endswith(":23")]
    path.write_text("\n".join(kept) + "\n")
    result = run_cli(world_copy, last_step="init")
    assert_one_line_error(result, "ground_truth.shp", "[23]", "nomenclature")


def test_date_range_without_acquisitions(world_copy):
    result = run_cli(
        world_copy,
        "sentinel_2.start_date=20200101",
        "sentinel_2.end_date=20201231",
        last_step="init",
    )
    assert_one_line_error(result, "2020")


@pytest.mark.parametrize(
    "assignment, fragment",
    [
        ("arg_train.runs=abc", "arg_train.runs"),
        ("sentinel_2.temporal_resolution=[10]", "sentinel_2.temporal_resolution"),
        ("arg_classification.enable_probability_map=maybe", "enable_probability_map"),
    ],
)
def test_config_key_of_wrong_type(small_world, assignment, fragment):
    result = run_cli(small_world, assignment)
    assert_one_line_error(result, "config.yaml", fragment)
