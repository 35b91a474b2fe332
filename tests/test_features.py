import datetime as dt

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from sitsmap.errors import ConfigError
from sitsmap.io.raster import RasterGrid
from sitsmap.preprocessing.features import compute_features, feature_names, index_names
from sitsmap.preprocessing.gapfilling import gapfill
from sitsmap.preprocessing.indices import brightness, ndvi, ndwi
from sitsmap.preprocessing.masks import flag_nodata, masked
from sitsmap.preprocessing.temporal import common_period, day_numbers, regular_dates
from sitsmap.preprocessing.tile import row_windows, working_bytes_per_pixel
from sitsmap.sensors import SENTINEL2_THEIA

ALL_BANDS = SENTINEL2_THEIA.band_names
GRID_2018 = regular_dates(dt.date(2018, 1, 1), dt.date(2018, 12, 31), 10)


def test_regular_grid_of_2018_every_10_days_has_37_dates():
    assert len(GRID_2018) == 37
    assert GRID_2018[0] == dt.date(2018, 1, 1)
    assert GRID_2018[1] == dt.date(2018, 1, 11)
    assert GRID_2018[-1] == dt.date(2018, 12, 27)
    assert regular_dates(dt.date(2018, 1, 1), dt.date(2018, 1, 21), 10)[-1] == dt.date(2018, 1, 21)


def test_regular_dates_rejects_bad_arguments():
    with pytest.raises(ConfigError):
        regular_dates(dt.date(2018, 1, 1), dt.date(2018, 2, 1), 0)
    with pytest.raises(ConfigError):
        regular_dates(dt.date(2018, 2, 1), dt.date(2018, 1, 1), 10)


def test_common_period_is_latest_start_to_earliest_end():
    dates = {
        "T31TCJ": [dt.date(2018, 1, 3), dt.date(2018, 6, 1), dt.date(2018, 12, 20)],
        "T31TDJ": [dt.date(2018, 1, 8), dt.date(2018, 12, 28)],
    }
    assert common_period(dates) == (dt.date(2018, 1, 8), dt.date(2018, 12, 20))


@pytest.mark.parametrize(
    "dates",
    [{}, {"T31TCJ": []}, {"A": [dt.date(2018, 1, 1)], "B": [dt.date(2019, 1, 1)]}],
)
def test_common_period_errors(dates):
    with pytest.raises(ConfigError):
        common_period(dates)


def test_day_numbers_of_dates_and_numbers():
    days = day_numbers([dt.date(1970, 1, 1), dt.date(1970, 1, 11), dt.datetime(1970, 2, 1, 12)])
    assert days.tolist() == [0.0, 10.0, 31.0]
    assert day_numbers(np.array(["1970-01-03"], dtype="datetime64[D]")).tolist() == [2.0]
    assert day_numbers(np.array([4, 5])).dtype == np.float64


def test_feature_names_are_band_major_and_481_for_2018():
    names = feature_names(ALL_BANDS, GRID_2018)
    assert len(names) == 481 == 13 * 37
    assert names[:2] == ["sentinel2_b2_20180101", "sentinel2_b2_20180111"]
    assert names[37] == "sentinel2_b3_20180101"
    assert names[8 * 37 - 1] == "sentinel2_b8a_20181227"
    assert names[10 * 37] == "sentinel2_ndvi_20180101"
    assert names[11 * 37] == "sentinel2_ndwi_20180101"
    assert names[12 * 37] == "sentinel2_brightness_20180101"
    assert names[-1] == "sentinel2_brightness_20181227"
    assert len(set(names)) == len(names)


def test_indices_needing_a_band_that_is_not_kept_are_omitted():
    assert index_names(["B2", "B3", "B4", "B8"]) == ["ndvi", "brightness"]
    assert index_names(["B8", "B11"]) == ["ndwi", "brightness"]
    names = feature_names(["B4", "B8"], GRID_2018[:2])
    assert names == [
        "sentinel2_b4_20180101",
        "sentinel2_b4_20180111",
        "sentinel2_b8_20180101",
        "sentinel2_b8_20180111",
        "sentinel2_ndvi_20180101",
        "sentinel2_ndvi_20180111",
        "sentinel2_brightness_20180101",
        "sentinel2_brightness_20180111",
    ]
    with pytest.raises(ValueError, match="unknown"):
        feature_names(["B99"], GRID_2018)


def test_invalid_mask_combines_masks_and_nodata():
    reflectance = np.array([[[1, -10000], [3, 4]], [[5, 6], [7, 8]]], dtype=np.int16)
    clouds = np.array([[0, 0], [2, 0]], dtype=np.uint8)
    edge = np.zeros((2, 2), dtype=np.uint8)
    saturated = np.array([[0, 0], [0, 1]], dtype=np.uint8)
    result = flag_nodata(reflectance, -10000, masked([clouds, edge, saturated], (2, 2)))
    assert result.tolist() == [[False, True], [True, True]]


def small_stack(rng, n_dates=6, bands=ALL_BANDS, shape=(5, 7)):
    reflectance = rng.integers(1, 6000, (n_dates, len(bands), *shape)).astype(np.int16)
    invalid = rng.random((n_dates, *shape)) < 0.4
    invalid[:, 0, 0] = True  # a pixel never seen
    dates = [dt.date(2018, 1, 1) + dt.timedelta(days=int(d)) for d in range(0, 12 * n_dates, 12)]
    return reflectance, invalid, dates


def test_compute_features_matches_its_parts():
    rng = np.random.default_rng(0)
    reflectance, invalid, dates = small_stack(rng)
    out_dates = regular_dates(dt.date(2018, 1, 5), dt.date(2018, 3, 1), 10)
    block = compute_features(reflectance, invalid, dates, out_dates, ALL_BANDS)
    n_out = len(out_dates)
    assert block.features.shape == (13 * n_out, 5, 7)
    assert block.features.dtype == np.float32
    days, out_days = day_numbers(dates), day_numbers(out_dates)
    filled = gapfill(reflectance, ~invalid, days, out_days, scale=1e-4)
    for band in range(10):  # the same floats as the batch kernel
        np.testing.assert_array_equal(
            block.features[band * n_out : (band + 1) * n_out], filled[:, band]
        )
    # The indices computed within the gap-filling: the same floats as the index functions.
    np.testing.assert_array_equal(
        block.features[10 * n_out : 11 * n_out], ndvi(filled[:, 2], filled[:, 6])
    )
    np.testing.assert_array_equal(
        block.features[11 * n_out : 12 * n_out], ndwi(filled[:, 8], filled[:, 6])
    )
    np.testing.assert_array_equal(block.features[12 * n_out :], brightness(filled, axis=1))
    np.testing.assert_allclose(
        block.features[12 * n_out :], np.sqrt((filled**2).sum(axis=1)), rtol=1e-5
    )
    assert block.valid_count.dtype == np.uint16
    np.testing.assert_array_equal(block.valid_count, (~invalid).sum(axis=0))
    np.testing.assert_array_equal(block.has_data, (~invalid).any(axis=0))
    assert not block.has_data[0, 0]
    assert not block.features[:, 0, 0].any()


def test_compute_features_with_a_subset_of_bands_orders_like_feature_names():
    rng = np.random.default_rng(1)
    bands = ["B4", "B8", "B11"]
    reflectance, invalid, dates = small_stack(rng, bands=bands)
    block = compute_features(reflectance, invalid, dates, dates, bands)
    names = feature_names(bands, dates)
    assert block.features.shape[0] == len(names) == 6 * len(dates)
    nir = block.features[names.index(f"sentinel2_b8_{dates[2]:%Y%m%d}")]
    swir = block.features[names.index(f"sentinel2_b11_{dates[2]:%Y%m%d}")]
    ndwi_row = block.features[names.index(f"sentinel2_ndwi_{dates[2]:%Y%m%d}")]
    seen = block.has_data
    nir, swir = nir[seen], swir[seen]
    np.testing.assert_allclose(ndwi_row[seen], (swir - nir) / (swir + nir), rtol=1e-5)


def grid(width, height):
    return RasterGrid(width, height, Affine(10, 0, 0, 0, -10, 0), CRS.from_epsg(32631))


@pytest.mark.parametrize(
    ("n_chunks", "megabytes", "block", "expected"),
    [
        (4, 1, 1, 4),
        (1, 1, 1, 1),
        (500, 1, 1, 37),
        (None, 1, 1, 3),
        (None, 10_000, 1, 1),
        (None, 1, 8, 5),
    ],
)
def test_row_windows_cover_the_tile_exactly_once(n_chunks, megabytes, block, expected):
    tile = grid(1000, 37)
    windows = row_windows(
        tile, n_chunks, bytes_per_pixel=80, max_megabytes=megabytes, block_rows=block
    )
    assert len(windows) == expected
    covered = np.zeros((tile.height, tile.width), dtype=int)
    for window in windows:
        assert window.col_off == 0 and window.width == tile.width
        covered[window.row_off : window.row_off + window.height] += 1
    assert (covered == 1).all()
    if n_chunks is None:
        assert max(w.height for w in windows) * tile.width * 80 <= megabytes * 2**20
        assert all(w.height % block == 0 for w in windows[:-1])


def test_working_bytes_per_pixel_counts_features_and_reads_not_the_series():
    assert 481 * 4 + 5 * 10 * 2 < working_bytes_per_pixel(10, 481) < 481 * 4 + 70 * 10 * 2


def test_every_public_name_of_the_package_is_importable():
    import sitsmap.preprocessing as preprocessing

    for name in preprocessing.__all__:
        assert getattr(preprocessing, name) is not None


def test_block_windows_cover_a_wide_tile_once_with_whole_blocks():
    from affine import Affine
    from rasterio.crs import CRS

    from sitsmap.io.raster import RasterGrid
    from sitsmap.preprocessing.tile import block_windows

    grid = RasterGrid(10980, 10980, Affine(10, 0, 300000, 0, -10, 4900020), CRS.from_epsg(32631))
    windows = block_windows(grid, (512, 512), bytes_per_pixel=2100, max_megabytes=1024)
    area = 0
    for w in windows:
        assert w.row_off % 512 == 0 and w.col_off % 512 == 0  # aligned on whole blocks
        assert w.height <= 512 and w.width * w.height * 2100 <= 1024 * 2**20
        area += w.width * w.height
    assert area == grid.width * grid.height
    # windows do not overlap: their starts are distinct and tile the grid row by row
    assert len({(w.row_off, w.col_off) for w in windows}) == len(windows)
    assert block_windows(grid, (512, 512), bytes_per_pixel=2100, max_megabytes=100) is None


def test_valid_date_count_equals_the_features_count(tmp_path):
    import datetime as dt

    from rasterio.windows import Window

    from sitsmap.preprocessing.tile import open_tile_stack, tile_features, valid_date_count
    from sitsmap.synth import generate_world

    generate_world(
        tmp_path, ["T31TCJ"], size=32, start=dt.date(2018, 5, 1), end=dt.date(2018, 6, 30), seed=3
    )
    stack = open_tile_stack(tmp_path / "S2" / "T31TCJ", "T31TCJ")
    window = Window(3, 5, 20, 17)
    bands = ("B2", "B3", "B4", "B8", "B11")
    block = tile_features(stack, window, [dt.date(2018, 5, 10), dt.date(2018, 6, 10)], bands)
    count = valid_date_count(stack, window, bands)
    np.testing.assert_array_equal(count, block.valid_count)
    assert 0 < count.max() <= len(stack.products)
