import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from affine import Affine
from scipy import ndimage

from sitsmap.errors import InputDataError
from sitsmap.io.vector import vector_info, write_vector_map
from sitsmap.postprocessing.vectorise import VectorMapBuilder

# 10 m x 20 m pixels: non-square, so that pixel and CRS units cannot be confused
TRANSFORM = Affine(10, 0, 600_000, 0, -20, 6_600_000)
PIXEL_AREA = 200.0
CODES = [1, 2, 3, 4, 5]

# U of class 1 (arms only joined on rows 8-9), a ring of 2 around 3 around nodata,
# 4s touching only diagonally, and nodata (0).
MAP = np.array(
    [
        [1, 1, 0, 1, 1, 2, 2, 2, 2, 2, 4],
        [1, 1, 0, 1, 1, 2, 3, 3, 3, 2, 0],
        [1, 1, 0, 1, 1, 2, 3, 0, 3, 2, 4],
        [1, 1, 0, 1, 1, 2, 3, 3, 3, 2, 5],
        [1, 1, 5, 1, 1, 2, 2, 2, 2, 2, 5],
        [1, 1, 5, 1, 1, 5, 5, 5, 4, 5, 5],
        [1, 1, 5, 1, 1, 5, 4, 5, 5, 4, 5],
        [1, 1, 5, 1, 1, 5, 5, 4, 5, 5, 5],
        [1, 1, 1, 1, 1, 3, 3, 3, 3, 0, 0],
        [1, 1, 1, 1, 1, 3, 0, 0, 3, 0, 0],
        [3, 3, 3, 3, 3, 3, 0, 0, 3, 0, 0],
    ],
    dtype=np.uint8,
)


def _layers(classes: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    raw = np.where(rng.random(classes.shape) < 0.3, rng.integers(0, 6, classes.shape), classes)
    confidence = rng.integers(0, 101, classes.shape).astype(np.uint8)
    confidence[rng.random(classes.shape) < 0.2] = 255
    probability = rng.integers(0, 101, classes.shape).astype(np.uint8)
    return {"raw": raw.astype(np.uint8), "confidence": confidence, "class_probability": probability}


def _build(classes, height, width, transform=TRANSFORM, codes=CODES, **layers):
    builder = VectorMapBuilder(transform, "EPSG:2154", codes)
    for row in range(0, classes.shape[0], height):
        for col in range(0, classes.shape[1], width):
            window = np.s_[row : row + height, col : col + width]
            builder.add_window(
                row, col, classes[window], **{k: v[window] for k, v in layers.items()}
            )
    return builder


def _pixel_boxes(mask: np.ndarray, transform=TRANSFORM) -> shapely.Geometry:
    rows, cols = np.nonzero(mask)
    x0, y0 = transform * (cols, rows)
    x1, y1 = transform * (cols + 1, rows + 1)
    return shapely.union_all(shapely.box(x0, y1, x1, y0))


def _components(classes: np.ndarray) -> int:
    return sum(ndimage.label(classes == code)[1] for code in np.unique(classes) if code != 0)


def test_polygons_cover_the_map_exactly():
    frame = _build(MAP, 3, 3).polygons()
    assert frame.crs == "EPSG:2154"
    assert len(frame) == _components(MAP) == 12
    assert set(frame.geom_type) == {"Polygon"}
    assert shapely.is_valid(frame.geometry.values).all()
    counts = np.bincount(MAP.ravel())
    for code in CODES:
        polygons = frame[frame["class"] == code]
        count = int(counts[code])
        assert polygons.area.sum() == pytest.approx(count * PIXEL_AREA, rel=1e-12)
        assert polygons["pixels"].sum() == count
    union = shapely.union_all(frame.geometry.values)
    assert union.symmetric_difference(_pixel_boxes(MAP > 0)).area == 0
    np.testing.assert_allclose(frame.area, frame["pixels"] * PIXEL_AREA)
    np.testing.assert_allclose(frame["area_ha"], frame["pixels"] * PIXEL_AREA / 10_000)


def test_known_shapes_u_ring_and_diagonal_contact():
    frame = _build(MAP, 3, 3).polygons()
    u_shape = frame[frame["class"] == 1]
    assert len(u_shape) == 1  # the two arms are joined, three windows down
    assert u_shape["pixels"].item() == 2 * 2 * 8 + 5 * 2
    ring = frame[(frame["class"] == 2)].geometry.item()
    assert len(ring.interiors) == 1
    assert shapely.Polygon(ring.interiors[0]).area == 9 * PIXEL_AREA
    assert (frame["class"] == 4).sum() == 6  # (6, 6) and (7, 7) only touch at a corner
    assert (frame["pixels"][frame["class"] == 4] == 1).all()
    assert (frame["class"] == 5).sum() == 2
    # rows follow each polygon's first pixel in row-major order: (0, 0), (0, 5), (0, 10), (1, 6)
    assert frame["class"].tolist()[:4] == [1, 2, 4, 3]
    assert u_shape.geometry.item().bounds == (600_000, 6_600_000 - 10 * 20, 600_050, 6_600_000)


@pytest.mark.parametrize("window", [(3, 3), (7, 5), (1, 1), (2, 11), (4, 2)])
def test_window_sizes_give_the_same_polygons(window):
    layers = _layers(MAP)
    whole = _build(MAP, *MAP.shape, **layers).polygons()
    split = _build(MAP, *window, **layers).polygons()
    assert len(split) == len(whole)
    same = shapely.equals_exact(
        shapely.normalize(split.geometry.values), shapely.normalize(whole.geometry.values), 0
    )
    assert same.all()
    pd.testing.assert_frame_equal(
        pd.DataFrame(split.drop(columns="geometry")), pd.DataFrame(whole.drop(columns="geometry"))
    )


def test_random_map_in_windows_matches_its_components():
    rng = np.random.default_rng(3)
    classes = ndimage.median_filter(rng.integers(0, 5, (45, 38)).astype(np.uint8), 3)
    frame = _build(classes, 8, 6).polygons()
    assert len(frame) == _components(classes)
    whole = _build(classes, 45, 38).polygons()
    assert shapely.equals_exact(
        shapely.normalize(frame.geometry.values), shapely.normalize(whole.geometry.values), 0
    ).all()
    assert not frame.geometry.duplicated().any()


def test_statistics_by_hand():
    classes = np.array([[1, 1, 2, 3], [1, 2, 2, 3]], dtype=np.uint8)
    layers = {
        "raw": np.array([[1, 2, 2, 0], [1, 2, 0, 0]], dtype=np.uint8),
        "confidence": np.array([[10, 20, 30, 255], [255, 40, 50, 255]], dtype=np.uint8),
        "class_probability": np.array([[100, 0, 255, 7], [50, 60, 70, 9]], dtype=np.uint8),
    }
    for height, width in [(2, 4), (1, 1), (2, 3)]:
        builder = _build(classes, height, width, codes=[1, 2, 3], **layers)
        frame = builder.polygons(names={1: "urban"})
        assert frame["class"].tolist() == [1, 2, 3]
        assert frame["class_name"].tolist() == ["urban", "class 2", "class 3"]
        assert frame["pixels"].tolist() == [3, 3, 2]
        np.testing.assert_allclose(frame["area_ha"], [0.06, 0.06, 0.04])
        assert frame["raw_majority"].tolist() == [1, 2, 0]
        np.testing.assert_allclose(frame["prop_1"], [2 / 3, 0, 0])
        np.testing.assert_allclose(frame["prop_2"], [1 / 3, 2 / 3, 0])
        np.testing.assert_allclose(frame["prop_3"], [0, 0, 0])
        np.testing.assert_allclose(frame["confidence_mean"], [15, 40, np.nan])
        np.testing.assert_allclose(frame["probability_mean"], [50, 65, 8])


def test_optional_columns_follow_the_given_layers():
    frame = _build(MAP, 5, 5).polygons()
    assert list(frame.columns) == ["class", "class_name", "pixels", "area_ha", "geometry"]
    frame = _build(MAP, 5, 5, raw=MAP).polygons()
    assert [c for c in frame.columns if c.startswith("prop_")] == [f"prop_{c}" for c in CODES]
    assert (frame["raw_majority"] == frame["class"]).all()
    np.testing.assert_allclose(
        frame[[f"prop_{c}" for c in CODES]].to_numpy(),
        np.eye(6)[frame["class"]][:, 1:],
    )


def _staircase(size: int = 20) -> np.ndarray:
    rows, cols = np.indices((size, size))
    return np.where(cols > rows, 1, 2).astype(np.uint8)


def test_simplification_keeps_a_valid_coverage_with_shared_edges():
    classes = MAP.copy()
    builder = _build(classes, 4, 4, **_layers(classes))
    exact = builder.polygons()
    simple = builder.polygons(simplify_tolerance=25.0)
    geometries = simple.geometry.values
    assert len(simple) == len(exact)
    assert shapely.is_valid(geometries).all() and not shapely.is_empty(geometries).any()
    assert set(simple.geom_type) == {"Polygon"}
    assert shapely.coverage_is_valid(geometries)
    union = shapely.union_all(geometries)
    assert union.area == pytest.approx(geometries.area.sum(), rel=1e-9)  # no overlap
    pd.testing.assert_series_equal(simple["area_ha"], exact["area_ha"])
    # every pair of neighbours still shares a line, the same for both
    tree = shapely.STRtree(exact.geometry.values)
    pairs = tree.query(exact.geometry.values, predicate="touches")
    for a, b in pairs.T[pairs[0] < pairs[1]]:
        before = exact.geometry.iloc[a].boundary.intersection(exact.geometry.iloc[b].boundary)
        if before.length == 0:
            continue  # corner contact only
        shared = geometries[a].boundary.intersection(geometries[b].boundary)
        assert shared.length > 0
        assert geometries[a].intersection(geometries[b]).area == pytest.approx(0, abs=1e-6)


def test_simplification_reduces_a_staircase_without_gaps():
    classes = _staircase()
    exact = _build(classes, 6, 7).polygons()
    simple = _build(classes, 6, 7).polygons(simplify_tolerance=30.0)
    vertices_before = shapely.get_num_coordinates(exact.geometry.values)
    vertices_after = shapely.get_num_coordinates(simple.geometry.values)
    assert (vertices_after < vertices_before / 4).all()
    assert shapely.coverage_is_valid(simple.geometry.values)
    full = shapely.box(600_000, 6_600_000 - 20 * 20, 600_000 + 20 * 10, 6_600_000)
    union = shapely.union_all(simple.geometry.values)
    assert union.area == pytest.approx(full.area, rel=1e-6)
    assert simple.area.sum() == pytest.approx(full.area, rel=1e-6)
    assert union.symmetric_difference(full).area == pytest.approx(0, abs=1e-6)
    shared = simple.geometry.iloc[0].boundary.intersection(simple.geometry.iloc[1].boundary)
    assert shared.length == pytest.approx(np.hypot(20 * 10, 20 * 20), rel=0.05)


def test_per_polygon_douglas_peucker_would_break_the_staircase():
    # why the coverage simplifier: simplifying each polygon alone opens gaps or overlaps
    exact = _build(_staircase(), 20, 20).polygons()
    alone = shapely.simplify(exact.geometry.values, 30.0)
    overlap = alone[0].intersection(alone[1]).area
    gap = exact.union_all().area - shapely.union_all(alone).area
    assert overlap > 1 or gap > 1


def test_windows_out_of_order_or_overlapping_are_refused():
    builder = VectorMapBuilder(TRANSFORM, "EPSG:2154", CODES)
    builder.add_window(0, 3, MAP[:3, 3:6])
    with pytest.raises(ValueError, match="row-major"):
        builder.add_window(0, 0, MAP[:3, :3])  # its right neighbour came first
    builder = VectorMapBuilder(TRANSFORM, "EPSG:2154", CODES)
    builder.add_window(0, 0, MAP[:3, :3])
    with pytest.raises(ValueError, match="row-major"):
        builder.add_window(2, 0, MAP[2:5, :3])  # overlaps row 2
    with pytest.raises(ValueError, match="optional layers"):
        builder.add_window(0, 3, MAP[:3, 3:6], raw=MAP[:3, 3:6])
    with pytest.raises(ValueError, match="shape"):
        builder.add_window(0, 3, MAP[:3, 3:6], confidence=MAP[:2, 3:6])


def test_an_empty_map_gives_no_polygon():
    frame = _build(np.zeros((4, 5), np.uint8), 2, 2, raw=np.zeros((4, 5), np.uint8)).polygons()
    assert len(frame) == 0 and frame.crs == "EPSG:2154"
    assert "prop_1" in frame.columns


def test_write_vector_map_gpkg_and_parquet(tmp_path):
    frame = _build(MAP, 4, 4, **_layers(MAP)).polygons(names={1: "urban"})
    gpkg, parquet = tmp_path / "out" / "map.gpkg", tmp_path / "out" / "map.parquet"
    write_vector_map(frame, gpkg, parquet)
    assert sorted(p.name for p in gpkg.parent.iterdir()) == ["map.gpkg", "map.parquet"]
    info = pyogrio.read_info(gpkg, layer="vector_map")
    assert info["crs"] == "EPSG:2154" and info["features"] == len(frame)
    assert list(info["fields"]) == [c for c in frame.columns if c != "geometry"]
    back = pyogrio.read_dataframe(gpkg, layer="vector_map")
    assert back.crs == "EPSG:2154"
    assert shapely.equals(back.geometry.values, frame.geometry.values).all()
    np.testing.assert_allclose(back["confidence_mean"], frame["confidence_mean"])
    assert back["class_name"].tolist() == frame["class_name"].tolist()
    # pyogrio's GDAL has no Parquet driver: GeoParquet is read back with geopandas
    assert vector_info(parquet)["features"] == len(frame)
    back = gpd.read_parquet(parquet)
    assert back.crs == "EPSG:2154"
    pd.testing.assert_frame_equal(
        pd.DataFrame(back.drop(columns="geometry")), pd.DataFrame(frame.drop(columns="geometry"))
    )
    assert shapely.equals_exact(back.geometry.values, frame.geometry.values, 0).all()


def test_write_vector_map_refuses_wrong_extensions(tmp_path):
    frame = _build(MAP, 11, 11).polygons()
    with pytest.raises(InputDataError, match=".gpkg"):
        write_vector_map(frame, tmp_path / "map.shp")
    with pytest.raises(InputDataError, match=".parquet"):
        write_vector_map(frame, tmp_path / "map.gpkg", tmp_path / "map.gpkg")
    assert list(tmp_path.iterdir()) == []
