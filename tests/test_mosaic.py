import itertools

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS
from rasterio.enums import Resampling
from shapely.geometry import box

from sitsmap.errors import InputDataError
from sitsmap.io.raster import RasterGrid, write_raster
from sitsmap.mosaic import mosaic_tiles, tile_envelopes

UTM31 = CRS.from_epsg(32631)
SIZE, STEP, RES = 256, 233, 10.0  # like Sentinel-2 tiles: 23 pixels of overlap
ORIGIN = (499_980.0, 4_900_020.0)  # near 44.2 N, 3 E: inside Lambert-93's domain
TILE_IDS = {"T31AAA": 1, "T31AAB": 2, "T31ABA": 3, "T31ABB": 4}
COLOURS = {1: (230, 0, 77), 2: (255, 85, 0), 3: (0, 150, 0), 4: (0, 0, 255)}


def _grid(row: int, col: int, size: int = SIZE, crs: CRS = UTM31) -> RasterGrid:
    left, top = ORIGIN[0] + col * STEP * RES, ORIGIN[1] - row * STEP * RES
    return RasterGrid(size, size, Affine(RES, 0, left, 0, -RES, top), crs)


@pytest.fixture
def grids():
    names = sorted(TILE_IDS)
    return {name: _grid(*divmod(index, 2)) for index, name in enumerate(names)}


def test_envelopes_partition_the_footprints(grids):
    envelopes = tile_envelopes(grids)
    assert set(envelopes) == set(grids)
    for first, second in itertools.combinations(envelopes.values(), 2):
        assert first.intersection(second).area == pytest.approx(0.0, abs=1e-6)
    footprints = shapely.union_all([box(*grid.bounds) for grid in grids.values()])
    union = shapely.union_all(list(envelopes.values()))
    assert union.symmetric_difference(footprints).area == pytest.approx(0.0, abs=1e-6)
    for name, envelope in envelopes.items():
        assert box(*grids[name].bounds).buffer(1e-6).contains(envelope)


def test_envelopes_follow_the_nearest_centre(grids):
    envelopes = tile_envelopes(grids)
    footprints = {name: box(*grid.bounds) for name, grid in grids.items()}
    centres = {name: footprint.centroid for name, footprint in footprints.items()}
    rng = np.random.default_rng(3)
    left, top = ORIGIN
    span = (STEP + SIZE) * RES
    for x, y in zip(
        rng.uniform(left, left + span, 500), rng.uniform(top - span, top, 500), strict=True
    ):
        point = shapely.Point(x, y)
        owners = [name for name, envelope in envelopes.items() if envelope.contains(point)]
        assert len(owners) == 1
        covering = [name for name, footprint in footprints.items() if footprint.contains(point)]
        nearest = min(covering, key=lambda name: centres[name].distance(point))
        assert owners == [nearest]


def test_envelopes_cover_tiles_of_unequal_size():
    grids = {"big": _grid(0, 0, size=500), "small": _grid(1, 1, size=60)}
    envelopes = tile_envelopes(grids)
    footprints = shapely.union_all([box(*grid.bounds) for grid in grids.values()])
    union = shapely.union_all(list(envelopes.values()))
    assert union.symmetric_difference(footprints).area == pytest.approx(0.0, abs=1e-6)
    assert envelopes["big"].intersection(envelopes["small"]).area == pytest.approx(0, abs=1e-6)


def test_envelopes_refuse_mixed_crs(grids):
    grids["T31ABB"] = _grid(1, 1, crs=CRS.from_epsg(32632))
    with pytest.raises(InputDataError, match="different CRSs"):
        tile_envelopes(grids)


def _write_tiles(tmp_path, grids, bands=1, dtype="uint8", descriptions=None):
    sources = {}
    for name, grid in grids.items():
        values = [
            np.full((SIZE, SIZE), TILE_IDS[name] * 10 + band, dtype=dtype) for band in range(bands)
        ]
        data = values[0] // 10 if bands == 1 else np.stack(values)
        sources[name] = tmp_path / f"{name}.tif"
        write_raster(
            sources[name],
            data,
            grid,
            nodata=0,
            colormap=COLOURS if bands == 1 else None,
            descriptions=descriptions,
        )
    return sources


def _expected_ids(dataset, grids):
    """Nearest-centre tile id of each output pixel; -1 where the test cannot decide."""
    cols, rows = np.meshgrid(np.arange(dataset.width) + 0.5, np.arange(dataset.height) + 0.5)
    affine = dataset.transform
    x, y = affine.c + affine.a * cols, affine.f + affine.e * rows
    x, y = Transformer.from_crs(dataset.crs, UTM31, always_xy=True).transform(x, y)
    distances, ambiguous = [], np.zeros(x.shape, dtype=bool)
    for name in sorted(TILE_IDS):
        left, bottom, right, top = grids[name].bounds
        inside = (x > left) & (x < right) & (y > bottom) & (y < top)
        edge = np.minimum.reduce(
            [np.abs(x - left), np.abs(x - right), np.abs(y - bottom), np.abs(y - top)]
        )
        ambiguous |= edge < 2 * RES  # pixels straddling a footprint edge
        centre = ((left + right) / 2, (bottom + top) / 2)
        distances.append(np.where(inside, np.hypot(x - centre[0], y - centre[1]), np.inf))
    distances = np.stack(distances)
    order = np.sort(distances, axis=0)
    with np.errstate(invalid="ignore"):
        ambiguous |= np.isfinite(order[1]) & (order[1] - order[0] < 1e-3)  # ties
    ids = np.array([TILE_IDS[name] for name in sorted(TILE_IDS)])[distances.argmin(axis=0)]
    expected = np.where(np.isfinite(order[0]), ids, 0)
    overlap = np.isfinite(order[1])
    return np.where(ambiguous, -1, expected), overlap


def test_mosaic_of_class_maps(tmp_path, grids):
    sources = _write_tiles(tmp_path, grids)
    out = tmp_path / "final" / "Classif_Seed_0.tif"
    mosaic_tiles(
        sources,
        tile_envelopes(grids),
        out,
        "EPSG:2154",
        RES,
        Resampling.nearest,
        nodata=0,
        block_size=128,
    )
    assert not list(out.parent.glob(".tmp-*"))
    with rasterio.open(out) as dataset:
        assert dataset.crs == CRS.from_epsg(2154)
        assert dataset.res == (RES, RES)
        assert dataset.transform.c % RES == 0 and dataset.transform.f % RES == 0
        assert dataset.nodata == 0
        assert dataset.count == 1 and dataset.dtypes[0] == "uint8"
        assert dataset.colormap(1)[3] == (0, 150, 0, 255)
        values = dataset.read(1)
        expected, overlap = _expected_ids(dataset, grids)
    decided = expected >= 0
    assert decided.mean() > 0.9
    np.testing.assert_array_equal(values[decided], expected[decided])
    # the overlaps are real and shared between several tiles, each pixel from one tile
    assert np.unique(values[decided & overlap]).tolist() == [1, 2, 3, 4]
    assert set(np.unique(values).tolist()) == {0, 1, 2, 3, 4}


def test_mosaic_keeps_bands_and_descriptions(tmp_path, grids):
    names = ["ndvi", "ndwi", "brightness"]
    sources = _write_tiles(tmp_path, grids, bands=3, dtype="float32", descriptions=names)
    out = tmp_path / "features.tif"
    mosaic_tiles(
        sources,
        tile_envelopes(grids),
        out,
        "EPSG:2154",
        20.0,
        Resampling.bilinear,
        nodata=0,
        block_size=64,
    )
    with rasterio.open(out) as dataset:
        assert dataset.count == 3
        assert list(dataset.descriptions) == names
        assert dataset.res == (20.0, 20.0)
        data = dataset.read()
    valid = data[0] != 0
    assert valid.mean() > 0.5
    np.testing.assert_allclose(data[1][valid] - data[0][valid], 1.0, atol=1e-4)
    np.testing.assert_allclose(data[2][valid] - data[0][valid], 2.0, atol=1e-4)
    assert set(np.round(np.unique(data[0][valid])).tolist()) == {10.0, 20.0, 30.0, 40.0}


def test_mosaic_descriptions_can_be_replaced(tmp_path, grids):
    few = {name: grids[name] for name in ["T31AAA", "T31AAB"]}
    sources = _write_tiles(tmp_path, few, bands=2, dtype="uint16", descriptions=["a", "b"])
    out = tmp_path / "proba.tif"
    mosaic_tiles(
        sources,
        tile_envelopes(few),
        out,
        "EPSG:32631",
        RES,
        Resampling.nearest,
        nodata=0,
        descriptions=["urban", "crops"],
    )
    with rasterio.open(out) as dataset:
        assert list(dataset.descriptions) == ["urban", "crops"]
        data = dataset.read()
        # same CRS and resolution as the tiles: pixels line up, the seam is sharp
        assert set(np.unique(data[0]).tolist()) == {10, 20}
        assert dataset.width == SIZE + STEP


def test_mosaic_refuses_mismatched_bands(tmp_path, grids):
    sources = _write_tiles(tmp_path, grids)
    write_raster(sources["T31ABB"], np.ones((2, SIZE, SIZE), dtype="uint8"), grids["T31ABB"])
    with pytest.raises(InputDataError, match="band"):
        mosaic_tiles(
            sources,
            tile_envelopes(grids),
            tmp_path / "m.tif",
            "EPSG:2154",
            RES,
            Resampling.nearest,
            nodata=0,
        )
