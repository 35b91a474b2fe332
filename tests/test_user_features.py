"""User data beside the satellites: static rasters (userFeat) and a per-date user sensor."""

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner
from rasterio.crs import CRS

from sitsmap.cli import cli
from sitsmap.config import load_config
from sitsmap.io.raster import RasterGrid, read_grid, write_raster
from sitsmap.pipeline.acquisitions import load_acquisitions
from sitsmap.pipeline.run import run_chain

TILE = "T31TCJ"
FAST = (
    "arg_train.sample_selection={sampler: periodic, strategy: constant, strategy.constant.nb: 100}",
    "arg_train.otb_classifier_options={classifier.rf.nbtrees: 10, classifier.rf.max: 8}",
    "scheduling.scheduler=synchronous",
)
USER_DATES = [dt.date(2018, 4, 1) + dt.timedelta(days=12 * k) for k in range(15)]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    from sitsmap.synth import generate_world

    out = tmp_path_factory.mktemp("user_world")
    generate_world(out, [TILE], size=64, start=dt.date(2018, 4, 1), end=dt.date(2018, 9, 30))
    grid = read_grid(next((out / "S2" / TILE).glob("*/*_FRE_B2.tif")))
    _write_user_sensor(out / "S1", grid)
    _write_dem(out / "DEM" / TILE / "dem_ALT.tif", grid)
    return out


def _write_user_sensor(folder: Path, tile: RasterGrid) -> None:
    """vv = day of year / 100 everywhere; vh = -vv; a mask band flags the left columns.

    The rasters are 20 m in the neighbouring UTM zone (EPSG:32630), wider than the tile.
    """
    crs = CRS.from_epsg(32630)
    left, bottom, right, top = rasterio.warp.transform_bounds(
        tile.crs, crs, *_bounds(tile), densify_pts=21
    )
    width, height = int((right - left) // 20) + 4, int((top - bottom) // 20) + 4
    grid = RasterGrid(width, height, Affine(20, 0, left - 40, 0, -20, top + 40), crs)
    folder.mkdir(parents=True)
    for date in USER_DATES:
        value = date.timetuple().tm_yday / 100
        vv = np.full((height, width), value, dtype=np.float32)
        mask = np.zeros_like(vv)
        mask[:, : width // 4] = 1
        data = np.stack([vv, -vv, mask])
        write_raster(folder / f"S1_VVVH_{date:%Y%m%d}.tif", data, grid, nodata=-10000)


def _write_dem(path: Path, tile: RasterGrid) -> None:
    """Altitudes at 30 m on a lattice shifted from the tile's: warped by nearest neighbour."""
    left, _, _, top = _bounds(tile)
    grid = RasterGrid(30, 30, Affine(30, 0, left - 7, 0, -30, top + 11), tile.crs)
    path.parent.mkdir(parents=True)
    dem = np.arange(900, dtype=np.float32).reshape(30, 30) + 100
    write_raster(path, dem[np.newaxis], grid)


def _bounds(grid: RasterGrid) -> tuple[float, float, float, float]:
    left, top = grid.transform.c, grid.transform.f
    return left, top + grid.height * grid.transform.e, left + grid.width * grid.transform.a, top


def _user_overrides(world: Path, output: Path) -> list[str]:
    return [
        *FAST,
        f"chain.output_path={output}",
        f"chain.user_feat_path={world / 'DEM'}",
        "userFeat.patterns=ALT",
        f"user_sensor.path={world / 'S1'}",
        "user_sensor.name=sentinel1",
        "user_sensor.bands=[vv, vh]",
        "user_sensor.mask_band=3",
        "user_sensor.temporal_resolution=20",
    ]


@pytest.fixture(scope="module")
def user_run(world, tmp_path_factory):
    output = tmp_path_factory.mktemp("user_run")
    return run_chain(load_config(world / "config.yaml", _user_overrides(world, output)))


def test_user_sensor_and_static_features_follow_the_satellite_features(user_run):
    acquisitions = load_acquisitions(user_run)
    names = acquisitions.feature_names
    assert [grid.sensor for grid in acquisitions.sensors] == ["sentinel2", "sentinel1"]
    user = acquisitions.sensors[1]
    assert user.variables == ("vv", "vh")  # no spectral index, no brightness
    assert names[-1] == "userfeat_alt"
    first_user = names.index(f"sentinel1_vv_{user.out_dates[0]:%Y%m%d}")
    assert names[first_user - 1].startswith("sentinel2_")
    assert len(names) == len(acquisitions.sensors[0].feature_names) + 2 * len(user.out_dates) + 1
    assert (user_run.layout.final_map(0)).is_file()


def test_user_sensor_values_are_gap_filled_from_their_own_dates(user_run):
    samples = pd.read_parquet(user_run.layout.samples(0))
    user = load_acquisitions(user_run).sensors[1]
    for date in user.out_dates:
        expected = date.timetuple().tm_yday / 100  # linear in time between the user's dates
        vv = samples[f"sentinel1_vv_{date:%Y%m%d}"].to_numpy()
        vh = samples[f"sentinel1_vh_{date:%Y%m%d}"].to_numpy()
        np.testing.assert_allclose(vv, expected, atol=0.006)
        np.testing.assert_allclose(vh, -expected, atol=0.006)


def test_static_features_are_the_raster_at_each_pixel_centre(world, user_run):
    samples = pd.read_parquet(user_run.layout.samples(0))
    with rasterio.open(world / "DEM" / TILE / "dem_ALT.tif") as src:
        cols, rows = ~src.transform * (samples["x"].to_numpy(), samples["y"].to_numpy())
        expected = src.read(1)[np.floor(rows).astype(int), np.floor(cols).astype(int)]
    np.testing.assert_array_equal(samples["userfeat_alt"].to_numpy(), expected)


def test_masked_user_pixels_do_not_count_as_valid_dates(user_run):
    with rasterio.open(user_run.layout.pixels_validity(TILE)) as src:
        validity = src.read(1)
    s2_only = load_acquisitions(user_run).input_dates[TILE]["sentinel2"]
    # the mask band covers the user rasters' left quarter, west of the tile: never all of it
    assert validity.max() > len(s2_only) and validity.max() <= len(s2_only) + len(USER_DATES)


def _run_cli(world: Path, output: Path, *extra: str):
    args = ["run", str(world / "config.yaml")]
    for assignment in (*_user_overrides(world, output), *extra):
        args += ["--set", assignment]
    return CliRunner().invoke(cli, args)


def test_a_user_raster_without_crs_is_one_line_and_nothing_written(world, tmp_path):
    folder = tmp_path / "DEM" / TILE
    folder.mkdir(parents=True)
    with rasterio.open(
        folder / "dem_ALT.tif", "w", driver="GTiff", width=8, height=8, count=1, dtype="float32"
    ) as dst:
        dst.write(np.ones((1, 8, 8), dtype=np.float32))
    output = tmp_path / "out"
    result = _run_cli(world, output, f"chain.user_feat_path={tmp_path / 'DEM'}")
    assert result.exit_code == 2
    assert "no CRS" in result.output and "dem_ALT.tif" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not output.exists()


def test_user_rasters_with_another_band_count_are_refused(world, tmp_path):
    result = _run_cli(world, tmp_path / "out", "user_sensor.bands=[vv]")
    assert result.exit_code == 2
    assert "3 band(s), user_sensor expects 2" in result.output


def test_a_sensor_with_no_date_in_the_period_is_refused(world, tmp_path):
    result = _run_cli(
        world, tmp_path / "out", "user_sensor.start_date=20190101", "user_sensor.end_date=20190301"
    )
    assert result.exit_code == 2
    assert "no product of tile T31TCJ between 2019-01-01 and 2019-03-01" in result.output


def test_a_user_sensor_alone_makes_a_map_on_its_own_grid(world, tmp_path):
    overrides = [
        *_user_overrides(world, tmp_path / "alone"),
        "chain.s2_path=null",
        "chain.user_feat_path=null",
        "userFeat.patterns=[]",
    ]
    context = run_chain(load_config(world / "config.yaml", overrides))
    acquisitions = load_acquisitions(context)
    assert [grid.sensor for grid in acquisitions.sensors] == ["sentinel1"]
    assert acquisitions.grids[TILE].crs.to_epsg() == 32630  # the rasters' own CRS
    assert context.layout.final_map(0).is_file()


def test_static_rasters_give_zero_where_they_hold_nan(tmp_path):
    from sitsmap.io.reading import read_static_window

    grid = RasterGrid(4, 4, Affine(10, 0, 0, 0, -10, 40), CRS.from_epsg(32631))
    data = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    data[0, 1, 2] = np.nan
    write_raster(tmp_path / "dem.tif", data, grid)
    values = read_static_window(
        str(tmp_path / "dem.tif"), grid, rasterio.windows.Window(0, 0, 4, 4)
    )
    assert np.isfinite(values).all() and values[0, 1, 2] == 0 and values[0, 3, 3] == 15
