"""The cross-validation report: places to compare the folds' maps, their agreement, the page."""

import json

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from PIL import Image
from rasterio.crs import CRS
from shapely.geometry import Point, box

from sitsmap.io.raster import RasterGrid, read_raster, read_raster_info, write_raster
from sitsmap.nomenclature import Nomenclature
from sitsmap.report import fold_maps, write_report
from sitsmap.report.fold_maps import (
    ClassGroups,
    agreement_counts,
    border_point,
    class_groups,
    compare_fold_maps,
)

URBAN, CROP, FOREST = 1, 6, 17
GROUPS = ClassGroups(urban=(URBAN,), crop=(CROP,))


def _grid(height: int, width: int, crs: str = "EPSG:2154", x0=500_000.0, y0=6_350_000.0):
    return RasterGrid(width, height, Affine(10.0, 0.0, x0, 0.0, -10.0, y0), CRS.from_string(crs))


def _write_folds(tmp_path, arrays: dict[str, np.ndarray]) -> dict:
    grid = _grid(*next(iter(arrays.values())).shape)
    maps = {}
    for fold, array in arrays.items():
        maps[fold] = tmp_path / f"{fold}.tif"
        write_raster(maps[fold], array.astype(np.uint8), grid, nodata=0)
    return maps


def _planted_world() -> dict[str, np.ndarray]:
    """Three folds over 64 x 64 pixels (4 x 4 windows of 16): forest where they all agree,
    a city at window (0, 2), crops at windows (1, 1) and (2, 3), the folds disputing 40
    crop pixels in (2, 3) and 100 forest pixels in (3, 0)."""
    base = np.full((64, 64), FOREST, dtype=np.uint8)
    base[0:10, 32:42] = URBAN
    base[16:32, 16:32] = CROP
    base[32:48, 48:64] = CROP
    folds = {name: base.copy() for name in ("A", "B", "C")}
    folds["B"][32:36, 48:58] = FOREST  # crops still dominate the window
    folds["C"][48:58, 0:10] = CROP  # a forest window, more disputed than any crop one
    return folds


def test_class_groups_by_name():
    names = {1: "Continuous urban fabric", 4: "Road surfaces", 6: "Straw cereals", 13: "Grass"}
    groups = class_groups(Nomenclature(names=names, colors={}))
    assert groups == ClassGroups(urban=(1, 4), crop=(6,))


def test_places_are_where_they_were_planted(tmp_path):
    maps = _write_folds(tmp_path, _planted_world())
    comparison = compare_fold_maps(maps, tmp_path / "agreement.tif", GROUPS, size=16)
    places = {place.name: (place.row, place.col) for place in comparison.places}
    assert places == {"city": (0, 32), "crop": (32, 48)}
    animated = comparison.animated
    assert (animated.name, animated.row, animated.col) == ("disagreement", 48, 0)
    # without crop classes, the crop place is simply where the folds disagree most
    plain = compare_fold_maps(maps, tmp_path / "again.tif", ClassGroups((URBAN,), ()), size=16)
    crop = next(place for place in plain.places if place.name == "crop")
    assert (crop.row, crop.col) == (48, 0) and "no crop class" in crop.description
    assert plain.animated is crop


def test_pairwise_agreement_and_raster_match_a_hand_count(tmp_path):
    a = np.array([[1, 1, 2, 0], [3, 3, 3, 3]])
    b = np.array([[1, 2, 2, 5], [3, 0, 4, 3]])
    c = np.array([[1, 2, 4, 5], [0, 0, 3, 3]])
    maps = _write_folds(tmp_path, {"a": a, "b": b, "c": c})
    comparison = compare_fold_maps(maps, tmp_path / "agreement.tif", GROUPS, size=2)
    # a-b: both valid at 6 pixels, same at (0,0) (0,2) (1,0) (1,3); a-c: 5 valid, same at
    # (0,0) (1,2) (1,3); b-c: 6 valid, same at (0,0) (0,1) (0,3) (1,3)
    assert comparison.both.tolist() == [[7, 6, 5], [6, 7, 6], [5, 6, 6]]
    assert comparison.same.tolist() == [[7, 4, 3], [4, 7, 4], [3, 4, 6]]
    assert comparison.pairwise[0, 1] == pytest.approx(4 / 6)
    assert comparison.pairwise[1, 2] == pytest.approx(4 / 6)
    expected = [[3, 2, 2, 2], [2, 1, 2, 3]]
    assert read_raster(tmp_path / "agreement.tif", bands=1).tolist() == expected
    info = read_raster_info(tmp_path / "agreement.tif")
    assert info.dtype == "uint8" and info.nodata == 0
    # all three classify 5 pixels, (0,0) (0,1) (0,2) (1,2) (1,3); all agree at (0,0), (1,3)
    assert comparison.all_valid == 5 and comparison.all_agree_fraction == pytest.approx(0.4)
    assert comparison.histogram.tolist() == [0, 1, 5, 2]
    document = comparison.document()
    assert document["pairwise"][0][2] == pytest.approx(3 / 5)


def test_streamed_pass_equals_the_whole_map(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    arrays = {f: rng.choice([0, URBAN, CROP, FOREST], size=(37, 45)) for f in "abcd"}
    stack = np.stack(list(arrays.values()))
    maps = _write_folds(tmp_path, arrays)
    whole = compare_fold_maps(maps, tmp_path / "whole.tif", GROUPS, size=8)
    monkeypatch.setattr(fold_maps, "CHUNK_WINDOWS", 2)  # strips cut into chunks of 2 windows
    chunked = compare_fold_maps(maps, tmp_path / "chunked.tif", GROUPS, size=8)
    counts = agreement_counts(stack, 0)
    for comparison, name in ((whole, "whole.tif"), (chunked, "chunked.tif")):
        assert np.array_equal(read_raster(tmp_path / name, bands=1), counts)
        assert comparison.histogram.tolist() == np.bincount(counts.ravel(), minlength=5).tolist()
    assert np.array_equal(whole.same, chunked.same) and whole.places == chunked.places
    assert whole.animated == chunked.animated


def test_border_place_is_where_four_tiles_meet():
    tiles = gpd.GeoSeries(
        [
            box(0, 0, 5000, 5000),
            box(5000, 0, 10000, 5000),
            box(0, 5000, 5000, 10000),
            box(5000, 5000, 10000, 10000),
        ],
        crs="EPSG:32631",
    )
    corner = gpd.GeoSeries([Point(300_000 + 5000, 4_900_000 + 5000)], crs="EPSG:32631")
    tiles = tiles.translate(300_000, 4_900_000)
    x, y = corner.to_crs("EPSG:2154").iloc[0].coords[0]
    grid = _grid(200, 200, x0=round(x) - 1000, y0=round(y) + 1200)  # the map in Lambert-93
    row, col = border_point(tiles, grid)
    assert abs(row - 120) <= 1 and abs(col - 100) <= 1
    assert border_point(tiles.iloc[:1], grid) is None  # one tile: no border


def test_old_crossval_tree_gets_the_crossval_page(tmp_path):
    scores = {"oa": 0.8, "kappa": 0.7, "mean_fscore": 0.75, "per_class": {}}
    folds = [{"left_out": "north", "same_area": scores, "left_out_area": scores}]
    (tmp_path / "crossval").mkdir()
    (tmp_path / "crossval" / "summary.json").write_text(json.dumps({"folds": folds}))
    text = write_report(tmp_path).read_text(encoding="utf-8")
    assert "spatial cross-validation report" in text and "This report is partial" not in text
    assert "summary.json holds no comparison of the folds" in text
    assert 'id="accuracy"' not in text  # nothing of a plain run


def check_crossval_report(root, folds: list[str]) -> None:
    """What a finished cross-validation leaves: called by an end-to-end test of crossval."""
    text = (root / "report.html").read_text(encoding="utf-8")
    assert "spatial cross-validation report" in text
    assert "This report is partial" not in text and "Not available" not in text
    confusion = text[text.index('id="confusion"') : text.index('id="agreement"')]
    for fold in folds:
        assert f"confusion matrix, {fold} left out, left out" in confusion
    classes = text[text.index('id="classes"') : text.index('id="confusion"')]
    assert all(f">{fold}<" in classes for fold in folds) and "left out" in classes
    summary = json.loads((root / "crossval" / "summary.json").read_text())
    assert "folds" in summary and "summary" in summary  # the keys that were there before
    agreement = summary["agreement"]
    assert 0 <= agreement["all_agree_fraction"] <= 1
    assert [row[i] for i, row in enumerate(agreement["pairwise"])] == [1.0] * len(folds)
    counts = read_raster(root / "crossval" / agreement["raster"], bands=1)
    assert counts.dtype == np.uint8 and counts.max() <= len(folds)
    assert {place["name"] for place in summary["places"]} >= {"border", "crop"}
    for place in summary["places"]:
        assert (root / "crossval" / place["panel"]).stat().st_size > 0
        assert f'href="crossval/{place["panel"]}"' in text
    gif = root / "crossval" / summary["animation"]["path"]
    with Image.open(gif) as animation:
        assert animation.format == "GIF" and animation.n_frames == len(folds)
    assert f'href="crossval/{summary["animation"]["path"]}"' in text
    assert "data:image/gif;base64," in text
