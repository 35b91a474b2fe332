"""``sitsmap validate``: any class map against any reference polygons."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.transform import from_origin
from shapely import box

from sitsmap.cli import cli
from sitsmap.errors import InputDataError
from sitsmap.validation.any_map import validate_map
from sitsmap.validation.reference import class_pixel_counts

LEFT, TOP, PIXEL = 400_000.0, 4_800_000.0, 10.0
MAP_CRS, REFERENCE_CRS = "EPSG:32631", "EPSG:2154"
SIZE = 30

# Map: columns 0-9 class 1, 10-19 class 2, 20-29 class 3; rows 25-29 x columns
# 25-29 no-data. Reference: three polygons on whole pixels, so that pixel
# centres stay 5 m from every edge after the round trip through EPSG:2154.
#   class 1 over rows 0-9, columns 0-14: 100 pixels mapped 1, 50 mapped 2
#   class 2 over rows 10-19, columns 15-29: 50 pixels mapped 2, 100 mapped 3
#   class 3 over rows 20-29, columns 20-29: 75 pixels mapped 3 (25 no-data)
EXPECTED = [[100, 50, 0], [0, 50, 100], [0, 0, 75]]
POLYGONS = [(1, 0, 10, 0, 15), (2, 10, 20, 15, 30), (3, 20, 30, 20, 30)]


def _class_map() -> np.ndarray:
    data = np.repeat(np.repeat(np.array([1, 2, 3], dtype=np.uint8), 10)[None, :], SIZE, axis=0)
    data[25:, 25:] = 0
    return data


def _write_map(path, data: np.ndarray, crs: str | None = MAP_CRS, nodata=None) -> None:
    bands = data if data.ndim == 3 else data[None]
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=bands.shape[2],
        height=bands.shape[1],
        count=bands.shape[0],
        dtype=bands.dtype,
        crs=crs,
        transform=from_origin(LEFT, TOP, PIXEL, PIXEL),
        nodata=nodata,
    ) as dst:
        dst.write(bands)


def _pixel_box(row0: int, row1: int, col0: int, col1: int, shift: float = 0.0):
    return box(
        LEFT + col0 * PIXEL + shift,
        TOP - row1 * PIXEL,
        LEFT + col1 * PIXEL + shift,
        TOP - row0 * PIXEL,
    )


def _write_reference(path, shift: float = 0.0, driver: str = "GPKG", **extra_fields) -> None:
    frame = gpd.GeoDataFrame(
        {"code": [code for code, *_ in POLYGONS], **extra_fields},
        geometry=[_pixel_box(*window, shift=shift) for _, *window in POLYGONS],
        crs=MAP_CRS,
    )
    frame.to_crs(REFERENCE_CRS).to_file(path, driver=driver)


@pytest.fixture
def inputs(tmp_path):
    map_path, reference = tmp_path / "map.tif", tmp_path / "reference.gpkg"
    _write_map(map_path, _class_map())
    _write_reference(reference, name=["a", "b", "c"])
    return map_path, reference


def _expected_kappa(matrix: np.ndarray) -> float:
    total = matrix.sum()
    oa = np.trace(matrix) / total
    chance = (matrix.sum(axis=1) * matrix.sum(axis=0)).sum() / total**2
    return (oa - chance) / (1 - chance)


def test_confusion_oa_kappa_and_areas(inputs):
    map_path, reference = inputs
    out = validate_map(map_path, reference, "code")
    assert out == map_path.parent / "map_validation"
    results = json.loads((out / "results.json").read_text())
    assert results["labels"] == [1, 2, 3]
    assert results["confusion"] == EXPECTED
    assert results["overall_accuracy"] == pytest.approx(225 / 375)
    assert results["kappa"] == pytest.approx(_expected_kappa(np.array(EXPECTED)))
    assert results["per_class"]["1"] == pytest.approx(
        {"precision": 1.0, "recall": 100 / 150, "fscore": 0.8, "support": 150}
    )
    assert results["per_class"]["3"]["precision"] == pytest.approx(75 / 175)
    assert results["mapped_pixels"] == [300, 300, 275]
    assert results["pixel_area_ha"] == pytest.approx(0.01)
    adjusted = results["area_adjusted"]
    assert [adjusted["per_class"][c]["mapped_area"] for c in "123"] == pytest.approx(
        [3.0, 3.0, 2.75]
    )
    assert adjusted["area_unit"] == "ha"
    assert (results["map"], results["reference"], results["field"]) == (
        str(map_path),
        str(reference),
        "code",
    )
    text = (out / "RESULTS.txt").read_text()
    assert "OA : 0.600" in text
    assert "Area-adjusted" in text


def test_declared_nodata_is_left_out(tmp_path, inputs):
    _, reference = inputs
    data = _class_map()
    data[data == 0] = 255
    map_path = tmp_path / "nodata255.tif"
    _write_map(map_path, data, nodata=255)
    results = json.loads((validate_map(map_path, reference, "code") / "results.json").read_text())
    assert results["confusion"] == EXPECTED
    assert results["nodata"] == 255


def test_cli_writes_both_files(tmp_path, inputs):
    map_path, reference = inputs
    nomenclature = tmp_path / "nomenclature.txt"
    nomenclature.write_text("crops:1\nforest:2\nwater:3\n")
    out = tmp_path / "out"
    args = ["validate", str(map_path), str(reference), "--field", "code"]
    args += ["--nomenclature", str(nomenclature), "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert json.loads((out / "results.json").read_text())["confusion"] == EXPECTED
    assert "forest" in (out / "RESULTS.txt").read_text()
    assert str(out / "RESULTS.txt") in result.output


def _multiband(tmp_path):
    path = tmp_path / "two_bands.tif"
    _write_map(path, np.stack([_class_map(), _class_map()]))
    return path


def _no_crs(tmp_path):
    path = tmp_path / "no_crs.tif"
    _write_map(path, _class_map(), crs=None)
    return path


def _far_reference(tmp_path):
    path = tmp_path / "far.gpkg"
    _write_reference(path, shift=50_000.0)
    return path


@pytest.mark.parametrize(
    ("case", "field", "message"),
    [
        ("missing_map", "code", "no such file"),
        ("multiband", "code", "a class map has one band"),
        ("no_crs", "code", "has no CRS"),
        ("missing_reference", "code", "no such file"),
        ("missing_field", "klass", "no field 'klass'"),
        ("text_field", "name", "not integer class codes"),
        ("far_reference", "code", "no map pixel falls inside the reference polygons"),
    ],
)
def test_errors_are_one_line(tmp_path, inputs, case, field, message):
    map_path, reference = inputs
    if case == "missing_map":
        map_path = tmp_path / "absent.tif"
    elif case == "multiband":
        map_path = _multiband(tmp_path)
    elif case == "no_crs":
        map_path = _no_crs(tmp_path)
    elif case == "missing_reference":
        reference = tmp_path / "absent.gpkg"
    elif case == "far_reference":
        reference = _far_reference(tmp_path)
    result = CliRunner().invoke(cli, ["validate", str(map_path), str(reference), "--field", field])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sitsmap: error: ")
    assert message in lines[0]
    with pytest.raises(InputDataError):
        validate_map(map_path, reference, field)


def test_outputs_never_replace_an_input(tmp_path, inputs):
    map_path, _ = inputs
    reference = tmp_path / "results.json"
    _write_reference(reference, driver="GeoJSON")
    with pytest.raises(InputDataError, match="would replace an input"):
        validate_map(map_path, reference, "code", out_dir=tmp_path)


def test_class_pixel_counts_any_integer_codes(tmp_path):
    rng = np.random.default_rng(0)
    for data, nodata in (
        (rng.integers(0, 6, (40, 30), dtype=np.uint8), 0),
        (rng.integers(-3, 4, (40, 30), dtype=np.int16), -3),
    ):
        path = tmp_path / f"{data.dtype}.tif"
        _write_map(path, data)
        codes, counts = np.unique(data[data != nodata], return_counts=True)
        expected = dict(zip(codes.tolist(), counts.tolist(), strict=True))
        assert class_pixel_counts(path, nodata=nodata) == expected
