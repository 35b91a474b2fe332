"""Inputs checked before anything runs: one clear error naming the configuration key and file."""

import time

import geopandas as gpd
import pytest
from click.testing import CliRunner

from sitsmap.cli import cli
from sitsmap.config import load_config
from sitsmap.errors import ConfigError, InputDataError
from sitsmap.nomenclature import load_nomenclature
from sitsmap.pipeline.preflight import check_inputs
from sitsmap.vectors.ground_truth import prepare_ground_truth


def config_of(world, *overrides):
    return load_config(world / "config.yaml", overrides)


def check_error(world, *overrides) -> InputDataError:
    with pytest.raises(InputDataError) as caught:
        check_inputs(config_of(world, *overrides))
    return caught.value


def test_a_good_world_passes_quickly(small_world):
    config = config_of(small_world)
    began = time.perf_counter()
    check_inputs(config)
    assert time.perf_counter() - began < 5.0  # a listing and headers, no raster read


def test_missing_ground_truth_names_the_key(world_copy):
    (world_copy / "ground_truth.shp").unlink()
    error = check_error(world_copy)
    assert error.path == str(world_copy / "ground_truth.shp")
    assert error.problem == "chain.ground_truth: file not found"


def test_zero_byte_ground_truth(world_copy):
    (world_copy / "ground_truth.shp").write_bytes(b"")
    assert check_error(world_copy).problem == "chain.ground_truth: empty file (0 bytes)"


def test_ground_truth_without_features(world_copy):
    truth = gpd.read_file(world_copy / "ground_truth.shp")
    truth.iloc[:0].to_file(world_copy / "empty.gpkg")
    error = check_error(world_copy, f"chain.ground_truth={world_copy / 'empty.gpkg'}")
    assert error.problem == "chain.ground_truth: has no features (0 polygons)"


def test_ground_truth_not_a_vector_file(world_copy):
    (world_copy / "truth.gpkg").write_text("not a vector\n")
    error = check_error(world_copy, f"chain.ground_truth={world_copy / 'truth.gpkg'}")
    assert error.problem.startswith("chain.ground_truth: not a vector file OGR can read")


def test_missing_data_field(world_copy):
    error = check_error(world_copy, "chain.data_field=klass")
    assert "'klass'" in error.problem
    assert "chain.data_field" in error.problem
    assert "code" in error.problem  # the fields it has


def test_data_field_not_integer(world_copy):
    truth = gpd.read_file(world_copy / "ground_truth.shp")
    truth["code"] = truth["code"].astype(float) + 0.5
    truth.to_file(world_copy / "float.gpkg")
    error = check_error(world_copy, f"chain.ground_truth={world_copy / 'float.gpkg'}")
    assert "not integer" in error.problem


def test_missing_s2_path(world_copy):
    error = check_error(world_copy, f"chain.s2_path={world_copy / 'nowhere'}")
    assert error.path == str(world_copy / "nowhere")
    assert error.problem == "chain.s2_path: folder not found"


def test_missing_tile_folder(world_copy):
    error = check_error(world_copy, "chain.list_tile=T31TCJ T30TXT")
    assert error.path == str(world_copy / "S2" / "T30TXT")
    assert "chain.list_tile" in error.problem and "T30TXT" in error.problem


def test_product_missing_a_band(world_copy):
    product = sorted((world_copy / "S2" / "T31TDK").iterdir())[0]
    band = next(product.glob("*_FRE_B8.tif"))
    band.unlink()
    assert check_error(world_copy).path == str(band)


@pytest.mark.parametrize(
    "key, name, text, fragment",
    [
        ("chain.nomenclature_path", "names.txt", "forest 12\n", "expected 'name:code'"),
        ("chain.color_table", "colors.txt", "12 0 300 0\n", "0-255"),
        (
            "arg_train.sample_selection.strategy.byclass.in",
            "counts.csv",
            "code,count\n12,many\n",
            "expected 'code,count'",
        ),
    ],
)
def test_tables_that_do_not_parse(world_copy, key, name, text, fragment):
    (world_copy / name).write_text(text)
    overrides = [f"{key}={world_copy / name}"]
    if "byclass" in key:
        overrides.append("arg_train.sample_selection.strategy=byclass")
    error = check_error(world_copy, *overrides)
    assert error.path == str(world_copy / name)
    assert error.problem.startswith(f"{key}: ")
    assert fragment in error.problem


@pytest.mark.parametrize(
    "key",
    [
        "chain.nomenclature_path",
        "chain.color_table",
        "arg_train.sample_selection.strategy.byclass.in",
    ],
)
def test_missing_tables(world_copy, key):
    overrides = [f"{key}={world_copy / 'missing.txt'}"]
    if "byclass" in key:
        overrides.append("arg_train.sample_selection.strategy=byclass")
    error = check_error(world_copy, *overrides)
    assert (error.path, error.problem) == (
        str(world_copy / "missing.txt"),
        f"{key}: file not found",
    )


def test_binary_nomenclature(world_copy):
    (world_copy / "names.txt").write_bytes("forêt:12\n".encode("latin-1"))
    error = check_error(world_copy, f"chain.nomenclature_path={world_copy / 'names.txt'}")
    assert error.problem.endswith(": not a UTF-8 text file (byte 0xea at position 3)")


def test_init_says_the_ground_truth_is_empty(small_world):
    truth = gpd.read_file(small_world / "ground_truth.shp").iloc[:0]
    with pytest.raises(InputDataError, match=r"has no features \(0 polygons\)"):
        prepare_ground_truth(truth, "gt.shp", "code", load_nomenclature(), truth.crs, None)


@pytest.mark.parametrize(
    "content, problem",
    [
        (
            "chain:\n  output_path: caf\xe9\n".encode("latin-1"),
            "not a UTF-8 text file (byte 0xe9 at position 25)",
        ),
        (b"II*\x00\x08\x00\x00\x00", "not a text file (byte 0x00 at position 3)"),
    ],
)
def test_config_that_is_not_text(tmp_path, content, problem):
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problem == problem
    result = CliRunner().invoke(cli, ["config", "show", str(path)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"sitsmap: error: {path}: {problem}"]


def test_a_filegdb_folder_is_a_ground_truth(small_world, tmp_path):
    truth = gpd.read_file(small_world / "ground_truth.shp").dropna(subset=["geometry"])
    truth = truth.astype({"code": "int32", "id": "int32"})
    gdb = tmp_path / "truth.gdb"
    truth.to_file(gdb, driver="OpenFileGDB", engine="pyogrio", geometry_type="MultiPolygon")
    check_inputs(config_of(small_world, f"chain.ground_truth={gdb}"))
    with pytest.raises(InputDataError, match="not a vector file"):
        check_inputs(config_of(small_world, f"chain.ground_truth={tmp_path}"))
