import math

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import Polygon, box
from sklearn.metrics import cohen_kappa_score

from sitsmap.errors import InputDataError
from sitsmap.io.raster import RasterGrid, write_raster
from sitsmap.validation import metrics as metrics_module
from sitsmap.validation.metrics import compute_metrics, confusion_matrix, summarise_runs
from sitsmap.validation.reference import reference_and_production

# Ten pixels, classes 1, 2, 3. Class 3 is never produced; the reference 9 and
# the production 0 are not in the labels, so their pixels are ignored.
REFERENCE = np.array([1, 1, 1, 2, 2, 2, 3, 3, 9, 1])
PRODUCTION = np.array([1, 1, 2, 2, 2, 1, 1, 2, 1, 0])
EXPECTED = np.array([[2, 1, 0], [1, 2, 0], [1, 1, 0]])


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.int64, np.float32])
def test_confusion_matrix_by_hand(dtype):
    matrix = confusion_matrix(REFERENCE.astype(dtype), PRODUCTION.astype(dtype), [1, 2, 3])
    assert matrix.dtype == np.int64
    np.testing.assert_array_equal(matrix, EXPECTED)


def test_confusion_matrix_follows_label_order():
    matrix = confusion_matrix(REFERENCE, PRODUCTION, [3, 1, 2])
    np.testing.assert_array_equal(matrix, EXPECTED[[2, 0, 1]][:, [2, 0, 1]])


def test_confusion_matrix_chunks_add_up(monkeypatch):
    rng = np.random.default_rng(0)
    reference = rng.integers(0, 6, 10_001).astype(np.uint16)
    production = rng.integers(0, 6, 10_001).astype(np.uint16)
    whole = confusion_matrix(reference, production, [1, 2, 3, 4, 5])
    monkeypatch.setattr(metrics_module, "_CHUNK", 999)
    np.testing.assert_array_equal(confusion_matrix(reference, production, [1, 2, 3, 4, 5]), whole)
    assert whole.sum() == np.sum((reference > 0) & (production > 0))


def test_confusion_matrix_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match="differ"):
        confusion_matrix(REFERENCE, PRODUCTION[:-1], [1, 2, 3])


def test_metrics_by_hand():
    result = compute_metrics(EXPECTED, [1, 2, 3])
    assert result.oa == pytest.approx(4 / 8)
    # expected agreement (3*4 + 3*4 + 2*0) / 8^2 = 0.375 -> (0.5 - 0.375) / 0.625
    assert result.kappa == pytest.approx(0.2)
    assert result.precision == pytest.approx({1: 0.5, 2: 0.5, 3: 0.0})
    assert result.recall == pytest.approx({1: 2 / 3, 2: 2 / 3, 3: 0.0})
    assert result.fscore == pytest.approx({1: 4 / 7, 2: 4 / 7, 3: 0.0})
    assert result.support == {1: 3, 2: 3, 3: 2}
    assert result.mean_fscore == pytest.approx(8 / 21)


def test_mean_fscore_ignores_classes_absent_from_reference():
    with_absent = np.zeros((4, 4), dtype=np.int64)
    with_absent[:3, :3] = EXPECTED
    result = compute_metrics(with_absent, [1, 2, 3, 4])
    assert result.support[4] == 0
    assert result.mean_fscore == pytest.approx(8 / 21)


def test_kappa_matches_scikit_learn():
    rng = np.random.default_rng(42)
    reference = rng.integers(1, 6, 5000)
    production = np.where(rng.random(5000) < 0.6, reference, rng.integers(1, 6, 5000))
    labels = [1, 2, 3, 4, 5]
    result = compute_metrics(confusion_matrix(reference, production, labels), labels)
    assert result.kappa == pytest.approx(cohen_kappa_score(reference, production), abs=1e-12)


def test_empty_matrix_gives_nan():
    result = compute_metrics(np.zeros((2, 2)), [1, 2])
    assert math.isnan(result.oa) and math.isnan(result.kappa) and math.isnan(result.mean_fscore)


def test_student_interval_by_hand():
    mean, half_width = summarise_runs([0.80, 0.85, 0.90])
    # s = 0.05, t(0.975, 2 dof) = 4.302653 (t table), half-width = t * s / sqrt(3)
    assert mean == pytest.approx(0.85)
    assert half_width == pytest.approx(4.302653 * 0.05 / math.sqrt(3), rel=1e-6)
    assert summarise_runs([0.7]) == (pytest.approx(0.7), 0.0)
    with pytest.raises(ValueError):
        summarise_runs([])


# --- reference_and_production ------------------------------------------------

CRS_UTM = CRS.from_epsg(32631)


@pytest.fixture
def class_map(tmp_path):
    """A 10 x 10 map of 10 m pixels: value = 10 * row + col + 1, nodata (0) at (2, 2)."""
    values = (np.arange(100).reshape(10, 10) + 1).astype(np.uint8)
    values[2, 2] = 0
    grid = RasterGrid(10, 10, Affine(10, 0, 500000, 0, -10, 4000100), CRS_UTM)
    path = tmp_path / "map.tif"
    write_raster(path, values, grid, nodata=0)
    return path


def _polygons(crs=CRS_UTM):
    # A: rows 1-3, cols 1-3 (centres well inside), class 5.
    # B: a triangle over rows 6-9 / cols 5-9; only pixels whose centre is inside count.
    square = box(500010, 4000060, 500040, 4000090)
    triangle = Polygon([(500050, 4000000), (500100, 4000000), (500100, 4000040)])
    return gpd.GeoDataFrame({"code": [5, 7]}, geometry=[square, triangle], crs=crs)


def _expected_pairs():
    pairs = []
    for row in range(1, 4):
        for col in range(1, 4):
            if (row, col) != (2, 2):
                pairs.append((5, 10 * row + col + 1))
    for row in range(10):
        for col in range(10):
            x, y = 500000 + 10 * col + 5, 4000100 - 10 * row - 5
            if y - 4000000 < (x - 500050) * 40 / 50:  # strictly under the hypotenuse
                pairs.append((7, 10 * row + col + 1))
    return sorted(pairs)


@pytest.mark.parametrize("block_size", [1024, 3])
def test_reference_and_production_pairs(class_map, block_size):
    reference, production = reference_and_production(
        class_map, _polygons(), "code", nodata=0, block_size=block_size
    )
    assert reference.shape == production.shape
    assert sorted(zip(reference.tolist(), production.tolist(), strict=True)) == _expected_pairs()
    assert len(reference) == 8 + 10  # 9 - 1 nodata pixel; triangle: 1 + 2 + 3 + 4 centres


def test_reference_and_production_rejects_other_crs(class_map):
    with pytest.raises(InputDataError, match="reproject"):
        reference_and_production(class_map, _polygons(CRS.from_epsg(2154)), "code")
    with pytest.raises(InputDataError, match="no field"):
        reference_and_production(class_map, _polygons(), "klass")
