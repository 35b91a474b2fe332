import datetime as dt
import logging
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from sitsmap.errors import InputDataError
from sitsmap.io import reading
from sitsmap.io.products import find_products, tile_grid_of
from sitsmap.io.raster import DatasetPool, RasterGrid, write_raster
from sitsmap.io.reading import (
    block_rows,
    iter_products_window,
    read_product_window,
    read_products_window,
)
from sitsmap.preprocessing.features import feature_names
from sitsmap.preprocessing.temporal import regular_dates
from sitsmap.preprocessing.tile import (
    iter_tile_features,
    open_tile_stack,
    tile_features,
    tile_windows,
)
from sitsmap.sensors import SENTINEL2_THEIA as S2

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
SIZE = 24  # 10 m pixels; 12 at 20 m
ORIGIN = (300000.0, 5000000.0)


def grid_at(resolution, size, origin=ORIGIN):
    transform = Affine(resolution, 0, origin[0], 0, -resolution, origin[1])
    return RasterGrid(size, size, transform, CRS.from_epsg(32631))


def position_code(rows, cols):
    """A value telling where a pixel is: row * 100 + col."""
    return (np.arange(rows)[:, None] * 100 + np.arange(cols)[None, :]).astype(np.int16)


def make_product(
    root, date, tile="T31TCJ", satellite="A", version="2-2", seed=0, clouds=None, origin=ORIGIN
):
    """Write a complete Theia product; band values are position codes + 1000 * band index + seed."""
    name = f"SENTINEL2{satellite}_{date:%Y%m%d}-105523-457_L2A_{tile}_C_V{version}"
    product = Path(root) / name
    for index, band in enumerate(S2.bands):
        size = SIZE * 10 // band.resolution
        data = position_code(size, size) + 1000 * index + seed
        write_raster(
            S2.band_path(product, band.name),
            data,
            grid_at(band.resolution, size, origin),
            nodata=S2.nodata,
        )
    for r, resolution in ((1, 10), (2, 20)):
        size = SIZE * 10 // resolution
        for mask in S2.mask_names:
            data = np.zeros((size, size), dtype=np.uint8)
            if mask == "CLM" and clouds is not None and r == 1:
                data[clouds] = 2
            write_raster(S2.mask_path(product, mask, r), data, grid_at(resolution, size, origin))
    return product


@pytest.fixture
def tile_dir(tmp_path):
    root = tmp_path / "T31TCJ"
    for day, seed in ((25, 1), (5, 2), (15, 3)):
        make_product(root, dt.date(2018, 3, day), seed=seed)
    make_product(root, dt.date(2018, 3, 10), tile="T31TDJ")  # another tile
    (root / "README.txt").write_text("not a product")
    return root


def test_find_products_sorted_by_date_and_of_the_tile_only(tile_dir):
    products = find_products(tile_dir, "T31TCJ")
    assert [p.date.day for p in products] == [5, 15, 25]
    assert {p.tile for p in products} == {"T31TCJ"}
    assert find_products(tile_dir, "31tcj") == products


def test_find_products_keeps_the_date_range(tile_dir):
    products = find_products(tile_dir, "T31TCJ", dt.date(2018, 3, 6), dt.date(2018, 3, 25))
    assert [p.date.day for p in products] == [15, 25]


def test_same_date_keeps_the_latest_version_and_logs_it(tmp_path, caplog):
    root = tmp_path / "tile"
    make_product(root, dt.date(2018, 3, 5), satellite="A", version="1-9")
    newer = make_product(root, dt.date(2018, 3, 5), satellite="B", version="2-2")
    with caplog.at_level(logging.INFO, logger="sitsmap.io.products"):
        products = find_products(root, "T31TCJ")
    assert [p.path for p in products] == [newer]
    assert "keeping" in caplog.text and "V1-9" in caplog.text


def test_missing_tile_directory(tmp_path):
    with pytest.raises(InputDataError, match="not found") as error:
        find_products(tmp_path / "nowhere", "T31TCJ")
    assert error.value.path == str(tmp_path / "nowhere")


def test_directory_without_product(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputDataError, match="no Sentinel-2 L2A product"):
        find_products(tmp_path / "empty", "T31TCJ")


def test_date_range_without_acquisition_says_range_and_dates(tile_dir):
    with pytest.raises(InputDataError, match="2019-01-01") as error:
        find_products(tile_dir, "T31TCJ", dt.date(2019, 1, 1), dt.date(2019, 12, 31))
    assert "2018-03-05" in str(error.value) and "2018-03-25" in str(error.value)


@pytest.mark.parametrize(
    "missing",
    [
        lambda p: S2.band_path(p, "B8A"),
        lambda p: S2.mask_path(p, "SAT", 1),
        lambda p: S2.mask_path(p, "CLM", 1),
    ],
)
def test_product_missing_a_band_or_mask_file(tile_dir, missing):
    product = sorted(tile_dir.glob("SENTINEL2A_20180315*"))[0]
    lost = missing(product)
    lost.unlink()
    with pytest.raises(InputDataError, match="missing file") as error:
        find_products(tile_dir, "T31TCJ")
    assert error.value.path == str(lost)


def test_truncated_geotiff_is_a_read_error_naming_the_file(tmp_path):
    product_dir = make_product(tmp_path / "tile", dt.date(2018, 3, 5))
    band = S2.band_path(product_dir, "B8")
    rng = np.random.default_rng(0)
    write_raster(
        band,
        rng.integers(0, 10000, (SIZE, SIZE)).astype(np.int16),
        grid_at(10, SIZE),
        nodata=S2.nodata,
    )
    data = band.read_bytes()
    band.write_bytes(data[: len(data) // 2])
    product = find_products(tmp_path / "tile", "T31TCJ")[0]
    with pytest.raises(InputDataError) as error:
        read_product_window(product, Window(0, 0, SIZE, SIZE), S2.band_names)
    assert error.value.path == str(band)
    stack = open_tile_stack(tmp_path / "tile", "T31TCJ")
    with pytest.raises(InputDataError) as error:  # from a reader thread
        tile_features(
            stack, Window(0, 0, SIZE, SIZE), [dt.date(2018, 3, 5)], S2.band_names, max_workers=2
        )
    assert error.value.path == str(band)


def test_tile_grid_of_is_the_10m_grid(tile_dir):
    grid = tile_grid_of(find_products(tile_dir, "T31TCJ")[0])
    assert (grid.width, grid.height, grid.resolution) == (SIZE, SIZE, 10.0)
    assert grid.transform.c == ORIGIN[0]


@pytest.mark.parametrize(
    "window",
    [Window(3, 5, 6, 7), Window(0, 0, SIZE, SIZE), Window(1, 1, 1, 1), Window(4, 9, 20, 15)],
)
def test_20m_bands_map_onto_the_right_10m_pixels(tile_dir, window):
    product = find_products(tile_dir, "T31TCJ")[0]
    reflectance, invalid = read_product_window(product, window, ["B2", "B5"])
    assert reflectance.dtype == np.int16 and reflectance.shape == (2, window.height, window.width)
    rows = np.arange(window.row_off, window.row_off + window.height)
    cols = np.arange(window.col_off, window.col_off + window.width)
    seed = 2  # the product of 2018-03-05
    b2_code = position_code(SIZE, SIZE)[np.ix_(rows, cols)]
    b5_code = position_code(SIZE // 2, SIZE // 2)[np.ix_(rows // 2, cols // 2)]
    np.testing.assert_array_equal(reflectance[0], b2_code + 0 + seed)
    np.testing.assert_array_equal(reflectance[1], b5_code + 3000 + seed)
    assert not invalid.any()


def test_invalid_from_clouds_and_nodata(tmp_path):
    clouds = np.zeros((SIZE, SIZE), dtype=bool)
    clouds[2:4, 5:9] = True
    product_dir = make_product(tmp_path / "tile", dt.date(2018, 3, 5), clouds=clouds)
    b11 = np.full((SIZE // 2, SIZE // 2), 2000, dtype=np.int16)
    b11[10, 11] = S2.nodata  # covers 10 m rows 20-21, cols 22-23
    write_raster(S2.band_path(product_dir, "B11"), b11, grid_at(20, SIZE // 2), nodata=S2.nodata)
    product = find_products(tmp_path / "tile", "T31TCJ")[0]
    _, invalid = read_product_window(product, Window(0, 0, SIZE, SIZE), S2.band_names)
    expected = clouds.copy()
    expected[20:22, 22:24] = True
    np.testing.assert_array_equal(invalid, expected)


def test_a_wholly_cloudy_window_is_invalid_and_its_bands_are_not_decoded(tmp_path, monkeypatch):
    clouds = np.zeros((SIZE, SIZE), dtype=bool)
    clouds[:, :10] = True
    product_dir = make_product(tmp_path / "tile", dt.date(2018, 3, 5), clouds=clouds)
    product = find_products(tmp_path / "tile", "T31TCJ")[0]
    decoded = []
    read_window = reading._read_window
    monkeypatch.setattr(
        reading, "_read_window", lambda src, *a: decoded.append(src.name) or read_window(src, *a)
    )
    reflectance, invalid = read_product_window(product, Window(0, 0, 10, SIZE), S2.band_names)
    assert invalid.all() and (reflectance == S2.nodata).all()
    assert len(decoded) == len(S2.mask_names)  # the masks only
    decoded.clear()
    read_product_window(product, Window(0, 0, 11, SIZE), S2.band_names)  # one clear column
    assert len(decoded) == len(S2.mask_names) + len(S2.band_names)
    # a band file that is broken is still an error, decoded or not
    S2.band_path(product_dir, "B5").write_bytes(b"II*\x00 truncated")
    with pytest.raises(InputDataError) as error:
        read_product_window(product, Window(0, 0, 10, SIZE), S2.band_names)
    assert error.value.path == str(S2.band_path(product_dir, "B5"))


def test_threads_read_the_same_as_one_thread(tile_dir):
    products = find_products(tile_dir, "T31TCJ")
    window = Window(1, 3, 17, 9)
    one = read_products_window(products, window, S2.band_names, max_workers=1)
    many = read_products_window(products, window, S2.band_names, max_workers=3)
    for a, b in zip(one, many, strict=True):
        np.testing.assert_array_equal(a, b)
    assert one[0].shape == (3, 10, 9, 17)
    for workers in (1, 2):
        streamed = [
            (reflectance.copy(), invalid.copy())
            for reflectance, invalid in iter_products_window(
                products, window, S2.band_names, max_workers=workers
            )
        ]
        np.testing.assert_array_equal(np.stack([r for r, _ in streamed]), one[0])
        np.testing.assert_array_equal(np.stack([i for _, i in streamed]), one[1])


def test_open_tile_stack_rejects_a_product_on_another_grid(tile_dir):
    odd = make_product(tile_dir, dt.date(2018, 3, 20), origin=(300010.0, 5000000.0))
    with pytest.raises(InputDataError, match="differs") as error:
        open_tile_stack(tile_dir, "T31TCJ")
    assert error.value.path == str(odd)


def test_strips_give_the_same_features_as_the_whole_tile(tile_dir):
    stack = open_tile_stack(tile_dir, "T31TCJ")
    assert stack.dates == (dt.date(2018, 3, 5), dt.date(2018, 3, 15), dt.date(2018, 3, 25))
    out_dates = regular_dates(dt.date(2018, 3, 1), dt.date(2018, 3, 31), 4)
    whole = tile_features(stack, Window(0, 0, SIZE, SIZE), out_dates, S2.band_names)
    strips = [
        tile_features(stack, w, out_dates, S2.band_names)
        for w in tile_windows(stack, out_dates, S2.band_names, 5, 64)
    ]
    assert len(strips) == 5
    np.testing.assert_array_equal(
        np.concatenate([s.features for s in strips], axis=1), whole.features
    )
    assert whole.features.shape == (13 * len(out_dates), SIZE, SIZE)
    assert whole.has_data.all() and (whole.valid_count == 3).all()
    reused = np.full_like(whole.features, np.nan)
    again = tile_features(stack, Window(0, 0, SIZE, SIZE), out_dates, S2.band_names, out=reused)
    assert again.features is reused
    np.testing.assert_array_equal(reused, whole.features)


@pytest.mark.parametrize("workers", [1, 2])
def test_windows_streamed_together_give_each_window_s_own_features(tile_dir, workers):
    stack = open_tile_stack(tile_dir, "T31TCJ")
    out_dates = regular_dates(dt.date(2018, 3, 1), dt.date(2018, 3, 31), 4)
    windows = tile_windows(stack, out_dates, S2.band_names, 5, 64)  # 5, 5, 5, 5 and 4 rows
    streamed = iter_tile_features(stack, windows, out_dates, S2.band_names, max_workers=workers)
    seen = []
    for window, block in streamed:
        alone = tile_features(stack, window, out_dates, S2.band_names)
        np.testing.assert_array_equal(block.features, alone.features)
        np.testing.assert_array_equal(block.valid_count, alone.valid_count)
        seen.append(window)
    assert seen == windows


def test_block_rows_spans_whole_blocks_of_10m_and_20m_bands(tile_dir):
    product = find_products(tile_dir, "T31TCJ")[0]
    # B2: 16-row tiles; B5 (12 x 12, too small to tile): one 12-row strip, 24 rows at 10 m
    assert block_rows(product, ["B2"]) == 16
    assert block_rows(product, ["B2", "B5"]) == 48


def test_real_worldcereal_products():
    tile_dir = REAL_DATA / "worldcereal-t31uds" / "S2" / "T31UDS"
    if not tile_dir.is_dir():
        pytest.skip(f"real data not found at {tile_dir}")
    stack = open_tile_stack(tile_dir, "T31UDS", dt.date(2018, 1, 1), dt.date(2018, 12, 31))
    assert 50 < len(stack.products) < 118
    assert (stack.grid.width, stack.grid.height) == (64, 64)
    out_dates = regular_dates(dt.date(2018, 1, 1), dt.date(2018, 12, 31), 10)
    block = tile_features(stack, Window(0, 0, 64, 64), out_dates, S2.band_names)
    names = feature_names(S2.band_names, out_dates)
    assert block.features.shape == (481, 64, 64) and len(names) == 481
    assert np.isfinite(block.features).all()
    assert block.has_data.all()
    reflectances = block.features[: 10 * 37]
    assert reflectances.min() >= 0 and reflectances.max() < 2.0
    summer_ndvi = block.features[names.index("sentinel2_ndvi_20180630")]
    assert np.median(summer_ndvi) > 0.3  # Flemish fields in June are green


def test_dataset_pool_reuses_files_between_windows_and_reads_the_same(tile_dir):
    products = find_products(tile_dir, "T31TCJ")
    windows = [Window(0, 0, 11, SIZE), Window(11, 0, SIZE - 11, SIZE)]
    with DatasetPool() as datasets:
        pooled = [
            read_products_window(products, w, S2.band_names, datasets=datasets) for w in windows
        ]
        with datasets.borrow(S2.band_path(products[0].path, "B2")) as first:
            pass
        with datasets.borrow(S2.band_path(products[0].path, "B2")) as again:
            assert again is first and not again.closed
    assert again.closed  # closing the pool closes its idle files
    for window, (reflectance, invalid) in zip(windows, pooled, strict=True):
        alone = read_products_window(products, window, S2.band_names)
        np.testing.assert_array_equal(reflectance, alone[0])
        np.testing.assert_array_equal(invalid, alone[1])


def test_dataset_pool_keeps_at_most_max_open_idle_files(tile_dir):
    paths = [S2.band_path(p.path, "B2") for p in find_products(tile_dir, "T31TCJ")]
    pool = DatasetPool(max_open=1)
    lent = []
    for path in paths:
        with pool.borrow(path) as src:
            lent.append(src)
    assert [src.closed for src in lent] == [True] * (len(paths) - 1) + [False]
    pool.close()
    assert lent[-1].closed


def test_dataset_pool_names_a_corrupt_file(tmp_path):
    path = tmp_path / "broken.tif"
    path.write_bytes(b"II*\x00 not a tiff")
    datasets = DatasetPool()
    with pytest.raises(InputDataError) as error, datasets.borrow(path):
        pass
    assert error.value.path == str(path)
