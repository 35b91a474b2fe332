"""Tests of the synthetic Sentinel-2 world (``sitsmap synth``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
import yaml
from click.testing import CliRunner
from rasterio.features import rasterize

from sitsmap.cli import cli
from sitsmap.config import load_config
from sitsmap.errors import ConfigError
from sitsmap.io.vector import read_vector
from sitsmap.nomenclature import default_files, load_nomenclature
from sitsmap.sensors import SENTINEL2_THEIA
from sitsmap.synth import WorldSummary, generate_world, tile_grid
from sitsmap.synth import world as world_module
from sitsmap.synth.atmosphere import CIRRUS_BITS, CLOUD_BITS, SHADOW_BITS, mean_cloudiness, weather
from sitsmap.synth.landscape import Landscape
from sitsmap.synth.layout import acquisitions, tile_spacing_pixels
from sitsmap.synth.phenology import cover_fractions
from sitsmap.synth.scene import TileScene, block_any

TILES = ("T31TCJ", "T31TCK", "T31TDJ", "T31TDK")
SIZE = 128
START, END = dt.date(2018, 4, 15), dt.date(2018, 7, 31)
ALL_CLM_VALUES = {a | b | c for a in (0, CLOUD_BITS) for b in (0, SHADOW_BITS)
                  for c in (0, CIRRUS_BITS)}  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[WorldSummary, Path]:
    out = tmp_path_factory.mktemp("world")
    summary = generate_world(out, TILES, size=SIZE, start=START, end=END, seed=0)
    return summary, out


def _products(out: Path, tile: str) -> list[Path]:
    return sorted(p for p in (out / "S2" / tile).iterdir() if p.is_dir())


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def _truth(out: Path, tile: str) -> np.ndarray:
    return _read(out / "truth" / f"{tile}_landcover.tif")


def _product_date(product: Path) -> dt.date:
    return dt.datetime.strptime(product.name.split("_")[1][:8], "%Y%m%d").date()


def _band(product: Path, band: str) -> np.ndarray:
    return _read(SENTINEL2_THEIA.band_path(product, band)).astype(np.float64)


def _mask(product: Path, mask: str, resolution_index: int = 1) -> np.ndarray:
    return _read(SENTINEL2_THEIA.mask_path(product, mask, resolution_index))


def _clear(product: Path) -> np.ndarray:
    return (
        (_mask(product, "CLM") == 0) & (_mask(product, "EDG") == 0) & (_mask(product, "SAT") == 0)
    )


# -- layout ---------------------------------------------------------------------------------


def test_tile_grid_follows_the_real_sentinel2_grid() -> None:
    reference = tile_grid("T31TCJ", 10980)
    assert (reference.transform.c, reference.transform.f) == (300000.0, 4900020.0)
    assert reference.resolution == 10.0 and reference.crs.to_epsg() == 32631
    assert tile_grid("T31TDJ", 10980).transform.c == 399960.0  # as the real T31TDJ
    assert tile_grid("T31TCK", 10980).transform.f == 4900020.0 + 99960.0  # rows go north
    spacing = tile_spacing_pixels(256)
    assert spacing == 233
    assert tile_grid("T31TDK", 256).transform.c == 300000.0 + spacing * 10.0


@pytest.mark.parametrize("name", ["T32TCJ", "T31TCI", "T31TIJ", "T31UCJ", "31TCJ", "tile"])
def test_unknown_tile_names_are_config_errors(name: str) -> None:
    with pytest.raises(ConfigError, match="unknown tile"):
        tile_grid(name, 64)


def test_each_tile_has_its_own_five_day_orbit() -> None:
    plans = {
        tile: acquisitions(tile, dt.date(2018, 1, 1), dt.date(2018, 12, 31), 0) for tile in TILES
    }
    for tile, plan in plans.items():
        assert 58 <= len(plan) <= 75
        ordinals = np.array([a.date.toordinal() for a in plan])
        assert set(np.diff(ordinals) % 5) == {0} and len(set(ordinals % 5)) == 1
        assert {a.satellite for a in plan} == {"A", "B"}
        assert all(dt.time(10, 50) <= a.time < dt.time(11, 0) for a in plan)
        for a in plan:
            fields = SENTINEL2_THEIA.parse_product_name(a.name)
            assert fields is not None and fields["tile"] == tile
    phases = {plan[0].date.toordinal() % 5 for plan in plans.values()}
    assert len(phases) > 1


# -- products -------------------------------------------------------------------------------


def test_products_follow_the_theia_layout(world: tuple[WorldSummary, Path]) -> None:
    summary, out = world
    for tile in TILES:
        products = _products(out, tile)
        assert len(products) == summary.dates_per_tile[tile] >= 15
        for product in products:
            fields = SENTINEL2_THEIA.parse_product_name(product.name)
            assert fields is not None and fields["tile"] == tile
            assert all(path.is_file() for path in SENTINEL2_THEIA.required_files(product))
    product = _products(out, "T31TCJ")[3]
    grid = tile_grid("T31TCJ", SIZE)
    for band in SENTINEL2_THEIA.bands:
        with rasterio.open(SENTINEL2_THEIA.band_path(product, band.name)) as src:
            side = SIZE if band.resolution == 10 else SIZE // 2
            assert (src.dtypes[0], src.nodata, src.shape) == ("int16", -10000.0, (side, side))
            assert src.crs.to_epsg() == 32631 and src.res == (band.resolution,) * 2
            assert (src.transform.c, src.transform.f) == (grid.transform.c, grid.transform.f)
            assert src.block_shapes[0] == (side, side)  # square blocks (one at this size)
            assert src.compression.name.lower() == "deflate"
    for mask in SENTINEL2_THEIA.mask_names:
        for index, side in ((1, SIZE), (2, SIZE // 2)):
            with rasterio.open(SENTINEL2_THEIA.mask_path(product, mask, index)) as src:
                assert (src.dtypes[0], src.shape) == ("uint8", (side, side))


def test_masks_follow_maja_conventions(world: tuple[WorldSummary, Path]) -> None:
    _, out = world
    saturated = edges = 0
    for product in _products(out, "T31TCJ") + _products(out, "T31TDK"):
        clm, edg, sat = (_mask(product, m) for m in ("CLM", "EDG", "SAT"))
        assert set(np.unique(clm)) <= ALL_CLM_VALUES
        assert set(np.unique(edg)) <= {0, 1}
        assert np.array_equal(_band(product, "B4") == -10000, edg == 1)
        assert np.array_equal(_band(product, "B11") == -10000, _mask(product, "EDG", 2) == 1)
        for name, mask in (("CLM", clm), ("EDG", edg), ("SAT", sat)):
            assert np.array_equal(_mask(product, name, 2), block_any(mask))
        saturated += int((sat > 0).any())
        edges += int(edg.any())
    assert saturated > 0 and edges > 0


def test_cloud_cover_varies_from_clear_to_overcast(world: tuple[WorldSummary, Path]) -> None:
    _, out = world
    fractions = np.array(
        [(_mask(p, "CLM") > 0).mean() for tile in TILES for p in _products(out, tile)]
    )
    assert (fractions < 0.02).sum() >= 5
    assert (fractions > 0.98).sum() >= 1
    assert ((fractions > 0.1) & (fractions < 0.9)).sum() >= 5


def test_clouds_are_bright_and_shadows_dark(world: tuple[WorldSummary, Path]) -> None:
    _, out = world
    clear_b2, cloud_b2, clear_b8, shadow_b8 = [], [], [], []
    for product in _products(out, "T31TCJ"):
        clm, b2, b8 = _mask(product, "CLM"), _band(product, "B2"), _band(product, "B8")
        clear = _clear(product)
        clear_b2.append(b2[clear])
        clear_b8.append(b8[clear])
        cloud_b2.append(b2[(clm & CLOUD_BITS) == CLOUD_BITS])
        shadow_b8.append(b8[clm == SHADOW_BITS])
    assert np.mean(np.concatenate(cloud_b2)) > 3 * np.mean(np.concatenate(clear_b2))
    assert np.mean(np.concatenate(shadow_b8)) < 0.8 * np.mean(np.concatenate(clear_b8))


def _clear_ndvi(
    out: Path, period: tuple[dt.date, dt.date], codes: tuple[int, ...]
) -> dict[int, float]:
    """Mean NDVI of the clear pixels of each class over the products of a period."""
    values: dict[int, list[np.ndarray]] = {code: [] for code in codes}
    for tile in TILES:
        truth = _truth(out, tile)
        for product in _products(out, tile):
            if not period[0] <= _product_date(product) <= period[1]:
                continue
            b4, b8, clear = _band(product, "B4"), _band(product, "B8"), _clear(product)
            ndvi = (b8 - b4) / (b8 + b4)
            for code in codes:
                values[code].append(ndvi[clear & (truth == code)])
    pooled = {code: np.concatenate(v) for code, v in values.items()}
    assert all(v.size > 100 for v in pooled.values()), "the test world lacks a class"
    return {code: float(v.mean()) for code, v in pooled.items()}


def test_classes_have_their_own_ndvi_profiles(world: tuple[WorldSummary, Path]) -> None:
    _, out = world
    maize, cereals, water, forest = codes = (10, 6, 23, 16)
    early = _clear_ndvi(out, (START, dt.date(2018, 5, 31)), codes)
    late = _clear_ndvi(out, (dt.date(2018, 7, 15), END), codes)
    assert early[cereals] > early[maize] + 0.25  # winter cereals green in spring, maize not sown
    assert late[maize] > late[cereals] + 0.25  # maize green in July, cereals harvested
    assert max(early[water], late[water]) < 0.0
    assert late[forest] > 0.6


def test_overlapping_tiles_see_the_same_ground(world: tuple[WorldSummary, Path]) -> None:
    _, out = world
    spacing = tile_spacing_pixels(SIZE)
    overlap = SIZE - spacing
    west, east = _truth(out, "T31TCJ")[:, spacing:], _truth(out, "T31TDJ")[:, :overlap]
    south, north = _truth(out, "T31TCJ")[:overlap, :], _truth(out, "T31TCK")[spacing:, :]
    assert np.array_equal(west, east) and np.array_equal(south, north)
    assert len(np.unique(west)) > 1
    differences, shuffled = [], []
    rng = np.random.default_rng(0)
    for west_product in _products(out, "T31TCJ"):
        for east_product in _products(out, "T31TDJ"):
            if abs((_product_date(west_product) - _product_date(east_product)).days) > 2:
                continue
            both = _clear(west_product)[:, spacing:] & _clear(east_product)[:, :overlap]
            a = _band(west_product, "B8")[:, spacing:][both]
            b = _band(east_product, "B8")[:, :overlap][both]
            differences.append(np.abs(a - b))
            shuffled.append(np.abs(a - rng.permutation(b)))
    assert len(differences) >= 3
    assert np.median(np.concatenate(differences)) < 0.3 * np.median(np.concatenate(shuffled))


def test_overlapping_scenes_have_identical_clear_sky_ground() -> None:
    landscape = Landscape(3, 64)
    west, east = TileScene(landscape, "T31TCJ"), TileScene(landscape, "T31TDJ")
    spacing = tile_spacing_pixels(64)
    rows = range(0, 64)
    west_layers, east_layers = west.static(rows), east.static(rows)
    date = dt.date(2018, 6, 1)
    a = west.ground(west_layers, date)[:, :, spacing:]
    b = east.ground(east_layers, date)[:, :, : 64 - spacing]
    not_road = west_layers.code[:, spacing:] != 4
    assert np.array_equal(west_layers.code[:, spacing:], east_layers.code[:, : 64 - spacing])
    np.testing.assert_allclose(a[:, not_road], b[:, not_road], atol=1e-6)


# -- ground truth, nomenclature, configuration ----------------------------------------------


def test_ground_truth_is_dirty_like_real_surveys(world: tuple[WorldSummary, Path]) -> None:
    summary, out = world
    truth = read_vector(out / "ground_truth.shp")
    assert truth.crs.to_epsg() == 2154 and len(truth) == summary.truth_polygons
    assert truth["code"].dtype.kind == "i" and truth["id"].dtype.kind == "i"
    assert truth["id"].is_unique
    codes = set(truth["code"])
    assert not codes & {11, 21, 22} and len(codes) >= 12
    missing = truth.geometry.isna() | truth.geometry.is_empty
    assert missing.sum() >= 2
    present = truth[~missing]
    assert (present.geom_type == "MultiPolygon").sum() >= 2
    assert (~present.is_valid).sum() >= 2
    assert present.geometry.to_wkb().duplicated().sum() >= 2
    assert not set(summary.class_pixels) & {11, 21, 22}


def test_ground_truth_polygons_lie_on_their_class(world: tuple[WorldSummary, Path]) -> None:
    _, out = world
    truth = read_vector(out / "ground_truth.shp").to_crs(32631)
    clean = truth[truth.geometry.notna() & truth.is_valid]
    grid = tile_grid("T31TCJ", SIZE)
    inside = clean[clean.intersects(shapely.box(*grid.bounds))]
    burnt = rasterize(
        zip(inside.geometry, inside["code"], strict=True),
        (SIZE, SIZE),
        transform=grid.transform,
        fill=0,
        dtype="uint8",
    )
    labelled = burnt > 0
    assert labelled.sum() > 500
    assert (burnt[labelled] == _truth(out, "T31TCJ")[labelled]).mean() > 0.99


def test_truth_rasters_carry_the_nomenclature_colours(world: tuple[WorldSummary, Path]) -> None:
    summary, out = world
    colors = load_nomenclature().colors
    with rasterio.open(out / "truth" / "T31TCJ_landcover.tif") as src:
        assert (src.dtypes[0], src.nodata, src.crs.to_epsg()) == ("uint8", 0.0, 32631)
        assert src.colormap(1)[10][:3] == colors[10]
        classes = np.unique(src.read(1))
    assert classes.min() > 0 and set(classes) <= set(summary.class_pixels)


def test_world_ships_nomenclature_and_a_ready_config(world: tuple[WorldSummary, Path]) -> None:
    _, out = world
    names, colors = default_files()
    assert (out / "nomenclature.txt").read_text() == names.read_text()
    assert (out / "colorFile.txt").read_text() == colors.read_text()
    raw = yaml.safe_load((out / "config.yaml").read_text())
    assert raw["chain"]["s2_path"] == "S2" and raw["chain"]["ground_truth"] == "ground_truth.shp"
    config = load_config(out / "config.yaml")
    assert config.chain.list_tile == TILES
    assert config.chain.s2_path == out / "S2" and config.chain.ground_truth.is_file()
    assert config.chain.output_path == out / "output"
    assert (config.sentinel_2.start_date, config.sentinel_2.end_date) == (START, END)
    assert config.arg_train.sample_selection.constant_nb == 1000
    assert config.arg_classification.enable_probability_map


def test_summary_describes_the_world(world: tuple[WorldSummary, Path]) -> None:
    summary, out = world
    text = summary.describe()
    assert str(out) in text and f"{summary.products} Sentinel-2" in text
    assert summary.products == sum(len(_products(out, tile)) for tile in TILES)


# -- determinism, scaling, arguments --------------------------------------------------------


def _rasters(out: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(out)): _read(p) for p in sorted(out.rglob("*.tif"))}


def _tiny(out: Path, seed: int) -> dict[str, np.ndarray]:
    generate_world(
        out, ["T31TCJ"], size=64, start=dt.date(2018, 2, 1), end=dt.date(2018, 2, 20), seed=seed
    )
    return _rasters(out)


def test_same_seed_gives_identical_rasters_window_by_window_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _tiny(tmp_path / "a", 0)
    again = _tiny(tmp_path / "b", 0)
    monkeypatch.setattr(world_module, "STRIP_ROWS", 16)
    windowed = _tiny(tmp_path / "c", 0)
    assert len(first) == 1 + 16 * 4
    for other in (again, windowed):
        assert first.keys() == other.keys()
        assert all(np.array_equal(first[name], other[name]) for name in first)
    other_seed = _tiny(tmp_path / "d", 1)
    truth = "truth/T31TCJ_landcover.tif"
    assert not np.array_equal(first[truth], other_seed[truth])


def test_regenerating_replaces_the_products_of_an_older_world(tmp_path: Path) -> None:
    generate_world(
        tmp_path, ["T31TCJ"], size=32, start=dt.date(2018, 3, 1), end=dt.date(2018, 3, 20), seed=0
    )
    summary = generate_world(
        tmp_path, ["T31TCJ"], size=32, start=dt.date(2018, 3, 1), end=dt.date(2018, 3, 20), seed=1
    )
    assert len(_products(tmp_path, "T31TCJ")) == summary.dates_per_tile["T31TCJ"]


def test_a_full_size_tile_is_simulated_window_by_window() -> None:
    scene = TileScene(Landscape(0, 10980), "T31TCJ")
    layers = scene.static(range(10960, 10980))
    product = scene.observe(layers, dt.date(2018, 1, 10))
    assert product.fre10.shape == (4, 20, 10980) and product.fre20.shape == (6, 10, 5490)
    assert product.clm[1].shape == (10, 5490)
    assert len(np.unique(layers.code)) > 5


@pytest.mark.parametrize(
    ("tiles", "size", "start", "end", "message"),
    [
        (["T31TCJ"], 33, START, END, "even"),
        (["T31TCJ"], 16, START, END, "even"),
        (["T31TCJ"], 20000, START, END, "even"),
        (["T31TXJ"], 64, START, END, "unknown tile"),
        (["T31TCJ", "T31TCJ"], 64, START, END, "twice"),
        ([], 64, START, END, "at least one tile"),
        (["T31TCJ"], 64, END, START, "before"),
    ],
)
def test_bad_arguments_are_config_errors(
    tmp_path: Path, tiles: list[str], size: int, start: dt.date, end: dt.date, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        generate_world(tmp_path / "w", tiles, size=size, start=start, end=end)
    assert not (tmp_path / "w").exists()


# -- pure functions -------------------------------------------------------------------------


def test_winters_are_cloudier_than_summers() -> None:
    def cover(month: int) -> float:
        return float(
            np.mean(
                [
                    weather(dt.date(year, month, day), 0).cloud_cover
                    for year in range(2015, 2021)
                    for day in range(1, 29)
                ]
            )
        )

    assert mean_cloudiness(15) > 0.5 > 0.15 > mean_cloudiness(196)
    assert cover(1) > cover(7) + 0.2


def test_phenology_separates_winter_and_summer_crops() -> None:
    codes = np.array([6, 10, 23, 16], dtype=np.uint8)
    zeros, half = np.zeros(4, np.float32), np.full(4, 0.5, np.float32)

    def green(doy: float) -> np.ndarray:
        cover = cover_fractions(codes, doy, zeros, np.ones(4, np.float32), half, half)
        assert np.all(cover.green + cover.dry + cover.flower <= 1.0 + 1e-6)
        return cover.green

    april, august, january = green(120), green(225), green(10)
    assert april[0] > 0.7 > 0.1 > april[1]  # cereals green, maize not yet
    assert august[1] > 0.8 > 0.1 > august[0]  # maize green, cereals harvested
    assert august[3] > 0.8 > 0.35 > january[3]  # deciduous forest loses its leaves
    assert max(april[2], august[2]) < 0.05


# -- command line ---------------------------------------------------------------------------


def test_cli_generates_a_world(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "synth",
            str(tmp_path / "w"),
            "--tiles",
            "T31TCJ,T31TDJ",
            "--size",
            "32",
            "--start",
            "2018-06-01",
            "--end",
            "2018-06-12",
            "--seed",
            "4",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Sentinel-2 L2A products" in result.output
    assert (tmp_path / "w" / "config.yaml").is_file()
    assert len(_products(tmp_path / "w", "T31TDJ")) >= 1


def test_cli_reports_bad_arguments_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["synth", str(tmp_path / "w"), "--tiles", "T99XYZ"])
    assert result.exit_code == 2
    assert "sitsmap: error:" in result.output and "unknown tile" in result.output
