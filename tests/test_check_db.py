import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from click.testing import CliRunner
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from sitsmap.cli import cli
from sitsmap.errors import ConfigError, InputDataError
from sitsmap.vectors.check import (
    COLLAPSED_PARTS,
    DUPLICATE_GEOMETRY,
    EMPTY_GEOMETRY,
    INVALID_GEOMETRY,
    MULTIPOLYGON,
    NON_INTEGER_CLASS,
    NON_POLYGON,
    NULL_CLASS,
    SLIVERS,
    WHOLE_CLASS,
    check_database,
    clean_ground_truth,
)

X0, Y0 = 500_000.0, 4_800_000.0  # UTM 31N, inside the Lambert-93 area
SIDE = 100.0


def square(i: int) -> Polygon:
    """A 100 m square, the i-th along a row, 300 m apart."""
    return box(X0 + 300 * i, Y0, X0 + 300 * i + SIDE, Y0 + SIDE)


def rotated_reversed(polygon: Polygon) -> Polygon:
    """The same ring starting at another vertex and turning the other way."""
    ring = list(polygon.exterior.coords)[:-1][::-1]
    return Polygon(ring[2:] + ring[:2])


def bow_tie(i: int) -> Polygon:
    """A self-intersecting square: two triangles of 2500 m² each."""
    x, y = X0 + 300 * i, Y0
    return Polygon([(x, y), (x + SIDE, y + SIDE), (x + SIDE, y), (x, y + SIDE)])


# name, geometry, class (text: a typed file cannot mix 5.0 and "7" otherwise)
DIRTY_ROWS = [
    ("clean", square(0), "1"),
    ("duplicate", rotated_reversed(square(0)), "1"),
    ("empty", Polygon(), "2"),
    ("none", None, "2"),
    ("multi", MultiPolygon([square(1), square(2)]), "3"),
    ("bowtie", bow_tie(3), "4"),
    ("null_class", square(4), None),
    ("float_whole", square(5), "5.0"),
    ("text_int", square(6), "7"),
    ("fraction", square(7), "5.5"),
    ("word", square(8), "maize"),
    ("clean2", square(9), "6"),
]
# After the 2 empty geometries and the 3 bad classes, 7 text classes are converted.
EXPECTED_FOUND = {
    EMPTY_GEOMETRY: 2,
    NULL_CLASS: 1,
    WHOLE_CLASS: 7,
    NON_INTEGER_CLASS: 2,
    NON_POLYGON: 0,
    INVALID_GEOMETRY: 1,
    COLLAPSED_PARTS: 0,
    SLIVERS: 0,
    MULTIPOLYGON: 1,
    DUPLICATE_GEOMETRY: 1,
}
# clean, multi (2 parts), bowtie (2 triangles), 5.0, "7", clean2
EXPECTED_POLYGONS = 8
EXPECTED_AREA = 6 * SIDE**2 + 2 * (SIDE**2 / 4)
EXPECTED_CLASSES = [1, 3, 3, 4, 4, 5, 7, 6]


def dirty_frame() -> gpd.GeoDataFrame:
    names, geoms, codes = zip(*DIRTY_ROWS, strict=True)
    return gpd.GeoDataFrame(
        {"name": list(names), "code": list(codes)}, geometry=list(geoms), crs="EPSG:32631"
    )


def write(frame: gpd.GeoDataFrame, path):
    frame.to_file(path, engine="pyogrio")
    return path


@pytest.fixture
def restore_logging():
    """The CLI replaces the root handlers with ones bound to CliRunner's streams."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("ext", ["gpkg", "shp"])
def test_corrections_fix_every_defect(tmp_path, ext):
    source = write(dirty_frame(), tmp_path / f"dirty.{ext}")
    out = tmp_path / f"clean.{ext}"

    report = check_database(source, out, data_field="code", epsg=2154, do_corrections=True)

    assert {key: d.found for key, d in report.defects.items()} == EXPECTED_FOUND
    assert report.defects[EMPTY_GEOMETRY].removed == 2
    assert report.defects[NULL_CLASS].removed == 1
    assert report.defects[WHOLE_CLASS].fixed == 7
    assert report.defects[NON_INTEGER_CLASS].removed == 2
    assert report.defects[INVALID_GEOMETRY].fixed == 1
    assert report.defects[MULTIPOLYGON].fixed == 1
    assert report.defects[DUPLICATE_GEOMETRY].removed == 1
    assert report.features_read == len(DIRTY_ROWS)
    assert report.polygons_kept == EXPECTED_POLYGONS
    assert report.output == str(out) and report.epsg == 2154

    written = gpd.read_file(out)
    assert len(written) == EXPECTED_POLYGONS
    assert set(written.geom_type) == {"Polygon"}
    assert written.is_valid.all()
    assert pd.api.types.is_integer_dtype(written["code"])
    assert written["code"].tolist() == EXPECTED_CLASSES
    assert written.crs.to_epsg() == 2154
    assert written["name"].tolist().count("multi") == 2  # attributes copied to each part
    assert written.area.sum() == pytest.approx(EXPECTED_AREA, rel=5e-3)


def test_summary_table_names_each_correction(tmp_path):
    source = write(dirty_frame(), tmp_path / "dirty.gpkg")
    report = check_database(source, tmp_path / "out.gpkg", do_corrections=True)

    text = report.describe()

    assert "dirty.gpkg" in text
    assert "removed" in text and "fixed" in text
    duplicate_row = next(line for line in text.splitlines() if line.startswith("duplicate"))
    assert duplicate_row.split()[-3:] == ["1", "0", "1"]
    assert "into 2 polygons" in text
    assert f"{EXPECTED_POLYGONS} polygons written" in text


def test_report_only_with_defects_writes_nothing(tmp_path):
    source = write(dirty_frame(), tmp_path / "dirty.gpkg")
    out = tmp_path / "out.gpkg"

    report = check_database(source, out, do_corrections=False)

    assert not out.exists()
    assert report.has_defects and not report.corrected
    assert {key: d.found for key, d in report.defects.items()} == EXPECTED_FOUND
    assert all(d.fixed == 0 and d.removed == 0 for d in report.defects.values())
    assert report.output is None
    assert "--do-corrections" in report.describe()
    assert list(tmp_path.iterdir()) == [source]  # no temporary file left either


def test_report_only_clean_file_is_reprojected_and_written(tmp_path):
    frame = gpd.GeoDataFrame(
        {"code": np.array([11, 12, 13], dtype=np.int32)},
        geometry=[square(0), square(1), square(2)],
        crs="EPSG:32631",
    )
    source = write(frame, tmp_path / "ok.shp")
    out = tmp_path / "out.gpkg"

    report = check_database(source, out, epsg=2154)

    assert not report.has_defects
    assert "No defect found" in report.describe()
    written = gpd.read_file(out)
    assert written.crs.to_epsg() == 2154
    assert written["code"].tolist() == [11, 12, 13]
    assert written.area.sum() == pytest.approx(3 * SIDE**2, rel=5e-3)


def test_float_class_column():
    frame = gpd.GeoDataFrame(
        {"code": [5.0, 5.5, np.nan, 3.0, np.inf]},
        geometry=[square(i) for i in range(5)],
        crs="EPSG:32631",
    )

    cleaned, report = clean_ground_truth(frame, "code")

    assert report.defects[WHOLE_CLASS].found == 2
    assert report.defects[NON_INTEGER_CLASS].found == 2  # 5.5 and inf
    assert report.defects[NULL_CLASS].found == 1
    assert cleaned["code"].dtype == np.int64
    assert cleaned["code"].tolist() == [5, 3]


def test_mixed_object_class_column():
    values = pd.Series([3, np.int64(4), 5.0, "7", " 8 ", 5.5, "maize", None, "  "], dtype=object)
    frame = gpd.GeoDataFrame(
        {"code": values}, geometry=[square(i) for i in range(len(values))], crs="EPSG:32631"
    )

    cleaned, report = clean_ground_truth(frame, "code")

    assert report.defects[WHOLE_CLASS].found == 3  # 5.0, "7", " 8 "; 3 and 4 are integers
    assert report.defects[NON_INTEGER_CLASS].found == 2
    assert report.defects[NULL_CLASS].found == 2  # None and a blank string
    assert cleaned["code"].tolist() == [3, 4, 5, 7, 8]


def test_integer_frame_without_defects_is_returned_unchanged():
    frame = gpd.GeoDataFrame(
        {"code": [1, 2], "extra": ["a", "b"]},
        geometry=[square(0), square(1)],
        crs="EPSG:32631",
        index=[10, 20],
    )

    cleaned, report = clean_ground_truth(frame, "code", do_corrections=False)

    assert not report.has_defects
    assert cleaned["extra"].tolist() == ["a", "b"]
    assert cleaned.geometry.geom_equals(frame.geometry.reset_index(drop=True)).all()


def test_report_only_returns_the_input_untouched():
    frame = dirty_frame()
    before = frame.copy()

    returned, report = clean_ground_truth(frame, "code", do_corrections=False)

    assert report.has_defects
    assert len(returned) == len(frame)
    pd.testing.assert_frame_equal(frame, before)


def test_repair_drops_collapsed_parts_and_slivers():
    x, y = X0, Y0
    spike = Polygon(
        [
            (x, y),
            (x + 100, y),
            (x + 100, y + 100),
            (x + 50, y + 100),
            (x + 50, y + 200),
            (x + 50, y + 100),
            (x, y + 100),
        ]
    )  # a square with a line sticking out
    # A bow-tie with one big lobe and one of 0.25 m².
    tiny = Polygon([(x + 1000, y), (x + 1100, y + 100), (x + 1100, y + 99), (x + 1000, y + 101)])
    only_line = Polygon([(x + 2000, y), (x + 2100, y), (x + 2000, y)])  # collapses to a line
    frame = gpd.GeoDataFrame(
        {"code": [1, 2, 3]}, geometry=[spike, tiny, only_line], crs="EPSG:32631"
    )

    cleaned, report = clean_ground_truth(frame, "code", min_area=1.0)

    assert report.defects[INVALID_GEOMETRY].found == 3
    assert report.defects[INVALID_GEOMETRY].fixed == 2
    assert report.defects[INVALID_GEOMETRY].removed == 1
    assert report.defects[COLLAPSED_PARTS].found == 2  # the spike and the collapsed ring
    assert report.defects[SLIVERS].found == 1
    assert cleaned["code"].tolist() == [1, 2]
    assert set(cleaned.geom_type) == {"Polygon"} and cleaned.is_valid.all()
    assert cleaned.area.min() > 1.0
    assert "slivers < 1 m²" in report.describe()


def test_sliver_threshold_in_metres_for_geographic_crs():
    x, y = 3.0, 43.0  # degrees: 1e-3° is about 80 m east-west and 110 m north-south
    tiny = Polygon([(x, y), (x + 1e-3, y + 1e-3), (x + 1e-3, y + 0.99e-3), (x, y + 1.01e-3)])
    frame = gpd.GeoDataFrame({"code": [1]}, geometry=[tiny], crs="EPSG:4326")

    cleaned, report = clean_ground_truth(frame, "code", min_area=1000.0)

    # lobes of about 2200 m² and 22 m², not 5e-7 and 5e-9 square degrees
    assert report.defects[SLIVERS].found == 1
    assert report.defects[INVALID_GEOMETRY].fixed == 1
    assert len(cleaned) == 1


def test_duplicates_with_another_class_are_noted():
    frame = gpd.GeoDataFrame(
        {"code": [1, 2, 1]},
        geometry=[square(0), rotated_reversed(square(0)), square(0)],
        crs="EPSG:32631",
    )

    cleaned, report = clean_ground_truth(frame, "code")

    assert report.defects[DUPLICATE_GEOMETRY].found == 2
    assert "1 with another class" in report.describe()
    assert cleaned["code"].tolist() == [1]


def test_non_polygon_features_in_a_mixed_layer_are_dropped():
    collection = shapely.GeometryCollection([square(1), LineString([(X0, Y0), (X0 + 5, Y0)])])
    frame = gpd.GeoDataFrame(
        {"code": [1, 2, 3]},
        geometry=[square(0), collection, Point(X0, Y0)],
        crs="EPSG:32631",
    )

    cleaned, report = clean_ground_truth(frame, "code")

    assert report.defects[NON_POLYGON].found == 2
    assert report.defects[NON_POLYGON].fixed == 1
    assert report.defects[NON_POLYGON].removed == 1
    assert cleaned["code"].tolist() == [1, 2]


def test_many_polygons_are_cleaned_with_vectorised_calls():
    n = 20_000
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1e5, n) + X0, rng.uniform(0, 1e5, n) + Y0
    geoms = shapely.box(x, y, x + 20, y + 20)
    frame = gpd.GeoDataFrame(
        {"code": rng.integers(1, 10, n + 100)},
        geometry=np.r_[geoms, geoms[:100]],
        crs="EPSG:32631",
    )

    cleaned, report = clean_ground_truth(frame, "code")

    assert report.defects[DUPLICATE_GEOMETRY].found == 100
    assert len(cleaned) == n


# --- errors: one line naming the file; OUT is never written ---------------------------


def _points(tmp_path):
    frame = gpd.GeoDataFrame(
        {"code": [1, 2]}, geometry=[Point(X0, Y0), Point(X0 + 1, Y0)], crs="EPSG:32631"
    )
    return write(frame, tmp_path / "points.gpkg")


def _lines(tmp_path):
    frame = gpd.GeoDataFrame(
        {"code": [1]}, geometry=[LineString([(X0, Y0), (X0 + 9, Y0)])], crs="EPSG:32631"
    )
    return write(frame, tmp_path / "lines.shp")


def _no_crs(tmp_path):
    frame = gpd.GeoDataFrame({"code": [1]}, geometry=[square(0)])
    with pytest.warns(UserWarning, match="crs"):
        return write(frame, tmp_path / "nocrs.shp")


def _garbage(name):
    def make(tmp_path):
        path = tmp_path / name
        path.write_bytes(b"\x00\x01 this is not a vector file \xff" * 20)
        return path

    return make


def _missing(tmp_path):
    return tmp_path / "missing.gpkg"


@pytest.mark.parametrize(
    ("make_input", "words"),
    [
        (_points, "not a polygon layer"),
        (_lines, "not a polygon layer"),
        (_no_crs, "no CRS"),
        (_garbage("garbage.shp"), "cannot read"),
        (_garbage("garbage.gpkg"), "cannot read"),
        (_missing, "no such file"),
    ],
)
def test_input_errors_name_the_file_and_write_nothing(tmp_path, make_input, words):
    source = make_input(tmp_path)
    out = tmp_path / "out" / "clean.gpkg"

    with pytest.raises(InputDataError) as info:
        check_database(source, out, do_corrections=True)

    message = str(info.value)
    assert message.startswith(f"{source}: ")
    assert words in message
    assert "\n" not in message
    assert not out.exists()


def test_missing_field_lists_the_available_fields(tmp_path):
    source = write(dirty_frame(), tmp_path / "dirty.shp")
    out = tmp_path / "out.gpkg"

    with pytest.raises(InputDataError) as info:
        check_database(source, out, data_field="class", do_corrections=True)

    message = str(info.value)
    assert message.startswith(f"{source}: ")
    assert "'class'" in message and "name, code" in message
    assert not out.exists()


def test_unknown_epsg_is_a_config_error(tmp_path):
    source = write(dirty_frame(), tmp_path / "dirty.gpkg")
    out = tmp_path / "out.gpkg"

    with pytest.raises(ConfigError, match="EPSG:999999"):
        check_database(source, out, epsg=999999, do_corrections=True)
    assert not out.exists()


def test_nothing_left_is_an_error(tmp_path):
    frame = gpd.GeoDataFrame(
        {"code": ["maize", None]}, geometry=[square(0), square(1)], crs="EPSG:32631"
    )
    source = write(frame, tmp_path / "bad.gpkg")
    out = tmp_path / "out.gpkg"

    with pytest.raises(InputDataError, match="no polygon left"):
        check_database(source, out, do_corrections=True)
    assert not out.exists()


# --- command line ---------------------------------------------------------------------


def test_cli_error_is_one_line_and_exit_code_2(tmp_path, restore_logging):
    source = write(dirty_frame(), tmp_path / "dirty.gpkg")
    out = tmp_path / "out.gpkg"

    result = CliRunner().invoke(cli, ["check-db", str(source), str(out), "--data-field", "cls"])

    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"sitsmap: error: {source}: no field 'cls'; available fields: name, code"
    ]
    assert not out.exists()


def test_cli_corrects_a_dirty_file(tmp_path, restore_logging):
    source = write(dirty_frame(), tmp_path / "dirty.shp")
    out = tmp_path / "out.gpkg"
    args = ["check-db", str(source), str(out), "--epsg", "2154", "--do-corrections"]

    result = CliRunner().invoke(cli, args)

    assert result.exit_code == 0, result.output
    assert "duplicate geometry" in result.stdout
    assert f"{EXPECTED_POLYGONS} polygons written to {out}" in result.stdout
    assert len(gpd.read_file(out)) == EXPECTED_POLYGONS


def test_cli_report_only_exits_1_on_defects(tmp_path, restore_logging):
    source = write(dirty_frame(), tmp_path / "dirty.gpkg")
    out = tmp_path / "out.gpkg"

    result = CliRunner().invoke(cli, ["check-db", str(source), str(out)])

    assert result.exit_code == 1
    assert "--do-corrections" in result.stdout
    assert not out.exists()
