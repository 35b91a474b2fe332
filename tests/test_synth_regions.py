"""Tests of the synthetic world's eco-regions (``sitsmap synth --regions N``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
import yaml
from click.testing import CliRunner
from rasterio.features import rasterize
from scipy import ndimage
from sklearn.ensemble import RandomForestClassifier

from sitsmap.cli import cli
from sitsmap.config import config_from_mapping
from sitsmap.errors import ConfigError
from sitsmap.io.vector import read_vector
from sitsmap.sensors import SENTINEL2_THEIA
from sitsmap.synth import WorldSummary, generate_world
from sitsmap.synth import world as world_module
from sitsmap.synth.landscape import assign_classes
from sitsmap.synth.phenology import canopy_amplitude, cover_fractions, phenology_shift
from sitsmap.synth.regions import LAYER_MARGIN_M, region_layout, region_polygons
from sitsmap.synth.scene import TileScene
from sitsmap.synth.spectra import green_spectra
from sitsmap.synth.truth import survey_parcels
from sitsmap.synth.world import chain_config, world_landscape

TILES = ("T31TCJ", "T31TCK")  # one above the other: the south-north borders cross both
SIZE, SEED = 64, 0
START, END = dt.date(2018, 5, 1), dt.date(2018, 6, 15)

ONE_REGION_DIGEST = "af12cacff234024d300a2911d3dddabbabb367726391f0745193975c8d48b814"
"""Digest (:func:`_world_digest`) of the world of :func:`_one_region_world`, taken before
eco-regions existed: a one-region world must stay the world it was."""


def _one_region_world(out: Path, **regions: int) -> WorldSummary:
    return generate_world(
        out, TILES, size=64, start=dt.date(2018, 5, 1), end=dt.date(2018, 5, 20), seed=3, **regions
    )


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def _world_digest(out: Path) -> str:
    """Pixels of the truth rasters and of some bands and masks, the config and the truth."""
    digest = hashlib.sha256()
    products = sorted(out.glob("S2/*/*"))
    rasters = [
        *sorted(out.glob("truth/*.tif")),
        *sorted(
            SENTINEL2_THEIA.band_path(product, band)
            for product in products
            for band in ("B4", "B8", "B11")
        ),
        *sorted(out.glob("S2/*/*/MASKS/*CLM_R1.tif")),
    ]
    for path in rasters:
        digest.update(_read(path).tobytes())
    digest.update((out / "config.yaml").read_bytes())
    truth = read_vector(out / "ground_truth.shp")
    digest.update(truth["code"].to_numpy().astype("int64").tobytes())
    digest.update(np.round(np.nan_to_num(truth.area.to_numpy())).astype("int64").tobytes())
    return digest.hexdigest()


def _chain_accepts_regions(out: Path) -> bool:
    raw = chain_config(TILES, START, END, regions=True)
    try:
        config_from_mapping(raw, base_dir=out)
    except ConfigError:
        return False
    return True


@pytest.fixture(scope="module")
def two_regions(tmp_path_factory: pytest.TempPathFactory) -> tuple[WorldSummary, Path]:
    out = tmp_path_factory.mktemp("regions")
    summary = generate_world(out, TILES, size=SIZE, start=START, end=END, seed=SEED, regions=2)
    return summary, out


# -- one region: today's world ----------------------------------------------------------------


def test_one_region_world_is_byte_identical_to_the_world_before_regions(
    tmp_path: Path,
) -> None:
    default = _one_region_world(tmp_path / "default")
    explicit = _one_region_world(tmp_path / "explicit", regions=1)
    assert _world_digest(tmp_path / "default") == ONE_REGION_DIGEST
    assert _world_digest(tmp_path / "explicit") == ONE_REGION_DIGEST
    for summary in (default, explicit):
        assert summary.regions == () and not summary.region_config
        assert not (summary.out_dir / "regions.gpkg").exists()
        chain = yaml.safe_load(summary.config_path.read_text())["chain"]
        assert "region_path" not in chain and "region_field" not in chain
    assert "eco-region" not in default.describe()


def test_region_zero_changes_none_of_the_pure_functions() -> None:
    rng = np.random.default_rng(0)
    code = rng.choice([5, 6, 7, 9, 10, 13, 16, 17, 23], size=200).astype(np.uint8)
    gradient, timing, draw = (rng.random(200).astype(np.float32) for _ in range(3))
    zero = np.zeros(200, np.uint8)
    assert np.array_equal(phenology_shift(code, gradient, timing, zero),
                          phenology_shift(code, gradient, timing))  # fmt: skip
    assert np.array_equal(canopy_amplitude(gradient, draw, zero), canopy_amplitude(gradient, draw))
    assert np.array_equal(green_spectra(code, zero), green_spectra(code))
    cover = cover_fractions(code, 150.0, timing, draw, draw, draw, zero)
    assert np.array_equal(cover.green, cover_fractions(code, 150.0, timing, draw, draw, draw).green)
    height, town = rng.random(200), 2.0 + rng.random(200)
    assert np.array_equal(assign_classes(height, town, gradient, draw, zero),
                          assign_classes(height, town, gradient, draw))  # fmt: skip


def test_other_regions_change_what_they_say() -> None:
    code = np.full(1000, 6, np.uint8)
    half = np.full(1000, 0.5, np.float32)
    one = np.ones(1000, np.uint8)
    late = phenology_shift(code, half, half, one) - phenology_shift(code, half, half)
    assert np.allclose(late, 35.0)
    assert not np.array_equal(green_spectra(code, one), green_spectra(code))
    draw = np.linspace(0, 1, 1000, endpoint=False)
    height, town, gradient = np.full(1000, 0.5), np.full(1000, 5.0), np.zeros(1000)
    r1, r2 = (assign_classes(height, town, gradient, draw, np.full(1000, r)) for r in (0, 1))
    assert (r2 == 7).sum() > 2 * (r1 == 7).sum()  # more (winter) peas in r2


# -- the region layer ---------------------------------------------------------------------------


def test_region_layer_covers_the_world_without_gap_or_overlap(
    two_regions: tuple[WorldSummary, Path],
) -> None:
    summary, out = two_regions
    layer = read_vector(out / "regions.gpkg")
    assert layer.crs.to_epsg() == 32631
    assert list(layer.columns) == ["region", "geometry"]
    assert layer["region"].tolist() == ["r1", "r2"] == list(summary.regions)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", name) for name in layer["region"])
    polygons = layer.geometry.to_numpy()
    assert shapely.is_valid(polygons).all()
    assert set(layer.geom_type) <= {"Polygon", "MultiPolygon"}
    assert shapely.intersection(polygons[0], polygons[1]).area == pytest.approx(0.0, abs=1e-6)
    tiles = [_tile_box(out, tile) for tile in TILES]
    world = shapely.union_all(tiles)
    cover = shapely.union_all(polygons)
    assert cover.contains(world.buffer(LAYER_MARGIN_M - 1.0, join_style="mitre"))
    assert cover.area == pytest.approx(shapely.box(*cover.bounds).area, rel=1e-9)
    for tile in tiles:  # a border crosses every tile
        assert all(shapely.intersection(tile, polygon).area > 0.1 * tile.area
                   for polygon in polygons)  # fmt: skip


def _tile_box(out: Path, tile: str) -> shapely.Polygon:
    with rasterio.open(out / "truth" / f"{tile}_landcover.tif") as src:
        return shapely.box(*src.bounds)


def test_ground_truth_lies_in_the_region_it_was_generated_in(
    two_regions: tuple[WorldSummary, Path],
) -> None:
    summary, out = two_regions
    layer = read_vector(out / "regions.gpkg")
    regions = layer.geometry.to_numpy()
    landscape = world_landscape(TILES, SIZE, SEED, regions=2)
    scenes = [TileScene(landscape, tile) for tile in TILES]
    footprint = shapely.union_all([shapely.box(*scene.grid.bounds) for scene in scenes])
    clean = survey_parcels(scenes, footprint, SEED, regions)
    assert set(clean["region"]) == {0, 1}
    inside = shapely.within(
        shapely.point_on_surface(clean.geometry.to_numpy()), regions[clean["region"].to_numpy()]
    )
    assert inside.all()
    counts = clean["region"].value_counts()
    assert summary.region_truth == {"r1": counts[0], "r2": counts[1]}
    truth = read_vector(out / "ground_truth.shp").to_crs(layer.crs)
    polygons = truth.geometry[~truth.geometry.is_empty & truth.geometry.is_valid].to_numpy()
    # the whole polygon, not only its representative point: borders follow the parcels
    within = shapely.within(shapely.buffer(polygons[:, None], -0.5), regions[None, :])
    assert (within.sum(axis=1) == 1).all()


def test_region_layer_follows_the_parcels_pixel_by_pixel(
    two_regions: tuple[WorldSummary, Path],
) -> None:
    _, out = two_regions
    layer = read_vector(out / "regions.gpkg")
    landscape = world_landscape(TILES, SIZE, SEED, regions=2)
    for tile in TILES:
        scene = TileScene(landscape, tile)
        layers = scene.static(range(scene.size))
        parcel_region = scene.parcels.region[layers.present[layers.local]]
        on_roads = layers.present[layers.local] == len(scene.parcels) - 1  # region 0 everywhere
        raster = rasterize(
            [(polygon, n) for n, polygon in enumerate(layer.geometry)],
            out_shape=parcel_region.shape,
            transform=scene.grid.transform,
            fill=255,
        )
        assert np.array_equal(raster[~on_roads], parcel_region[~on_roads])


def test_summary_and_config_name_the_regions(two_regions: tuple[WorldSummary, Path]) -> None:
    summary, out = two_regions
    assert set(summary.region_parcels) == {"r1", "r2"}
    assert all(count > 0 for count in summary.region_parcels.values())
    assert "2 eco-regions in regions.gpkg (EPSG:32631, field region)" in summary.describe()
    chain = yaml.safe_load(summary.config_path.read_text())["chain"]
    assert summary.region_config == _chain_accepts_regions(out)
    if summary.region_config:
        assert chain["region_path"] == "regions.gpkg" and chain["region_field"] == "region"
    else:
        assert "region_path" not in chain and "not named in config.yaml" in summary.describe()


def test_config_leaves_the_layer_out_where_the_chain_refuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refusing(raw: dict, **kwargs: object) -> object:
        if "region_path" in raw["chain"]:
            raise ConfigError("chain.region_path: not supported yet")
        return config_from_mapping(raw, **kwargs)

    monkeypatch.setattr(world_module, "config_from_mapping", refusing)
    summary = generate_world(tmp_path, TILES[:1], size=64, start=START, end=END, regions=2)
    assert not summary.region_config and (tmp_path / "regions.gpkg").exists()
    assert "region_path" not in yaml.safe_load(summary.config_path.read_text())["chain"]
    assert "not named in config.yaml" in summary.describe()


def test_regenerating_with_one_region_removes_the_region_layer(tmp_path: Path) -> None:
    generate_world(tmp_path, TILES[:1], size=64, start=START, end=END, seed=1, regions=3)
    assert (tmp_path / "regions.gpkg").exists()
    generate_world(tmp_path, TILES[:1], size=64, start=START, end=END, seed=1)
    assert not (tmp_path / "regions.gpkg").exists()


def test_layouts_of_three_and_four_regions_are_bands_west_to_east() -> None:
    for count in (3, 4):
        landscape = world_landscape(("T31TCJ", "T31TDJ"), 128, 0, regions=count)
        polygons = region_polygons(landscape)
        assert len(polygons) == count
        assert sum(shapely.area(polygons)) == pytest.approx(
            landscape.regions.layer_box().area, rel=1e-9
        )
        west = [shapely.centroid(p).x for p in polygons]
        assert west == sorted(west)


@pytest.mark.parametrize("count", [0, 5])
def test_bad_region_counts_are_config_errors(tmp_path: Path, count: int) -> None:
    with pytest.raises(ConfigError, match="regions must be 1 to 4"):
        generate_world(tmp_path, TILES, size=64, start=START, end=END, regions=count)
    with pytest.raises(ConfigError, match="regions must be 1 to 4"):
        region_layout(count, (0.0, 0.0, 1.0, 1.0))


def test_a_world_too_small_for_its_regions_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"region\(s\) \['r1'\] hold no parcel of the tiles"):
        generate_world(tmp_path, ["T31TCJ"], size=32, start=START, end=END, regions=2)
    assert not any(tmp_path.iterdir())


def test_cli_generates_regions_and_refuses_too_many(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["synth", str(tmp_path / "w"), "--tiles", "T31TCJ", "--size", "64"]
    dates = ["--start", "2018-05-01", "--end", "2018-05-10"]
    result = runner.invoke(cli, [*args, *dates, "--regions", "2"])
    assert result.exit_code == 0, result.output
    assert "2 eco-regions in regions.gpkg" in result.output
    assert (tmp_path / "w" / "regions.gpkg").exists()
    refused = runner.invoke(cli, [*args, *dates, "--regions", "5"])
    assert refused.exit_code == 2 and "--regions" in refused.output


# -- the regions differ -------------------------------------------------------------------------

EFFECT_SIZE = 256
"""Tiles of 256 pixels: enough parcels of one crop in each region for stable statistics."""


@pytest.fixture(scope="module")
def spring(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two regions seen from February to July."""
    out = tmp_path_factory.mktemp("spring")
    generate_world(
        out,
        TILES,
        size=EFFECT_SIZE,
        start=dt.date(2018, 2, 1),
        end=dt.date(2018, 7, 31),
        seed=SEED,
        regions=2,
    )
    return out


def _tile_layers(out: Path, tile: str) -> tuple[np.ndarray, np.ndarray, list[Path]]:
    """Truth classes, region number (1, 2) of each pixel, and the tile's products."""
    with rasterio.open(out / "truth" / f"{tile}_landcover.tif") as src:
        truth, transform = src.read(1), src.transform
    layer = read_vector(out / "regions.gpkg")
    region = rasterize(
        [(polygon, n + 1) for n, polygon in enumerate(layer.geometry)],
        out_shape=truth.shape,
        transform=transform,
    )
    return truth, region, sorted(p for p in (out / "S2" / tile).iterdir() if p.is_dir())


def _clear(product: Path) -> np.ndarray:
    masks = (_read(SENTINEL2_THEIA.mask_path(product, name, 1))[0] for name in ("CLM", "EDG"))
    return np.logical_and.reduce([mask == 0 for mask in masks])


def _band(product: Path, band: str) -> np.ndarray:
    return _read(SENTINEL2_THEIA.band_path(product, band))[0].astype(np.float32)


def _ndvi_profiles(out: Path, code: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Mean NDVI of the clear pixels of class ``code`` in each region, by day of the year."""
    points: dict[int, list[tuple[int, float]]] = {1: [], 2: []}
    for tile in TILES:
        truth, region, products = _tile_layers(out, tile)
        for product in products:
            day = dt.datetime.strptime(product.name.split("_")[1][:8], "%Y%m%d").timetuple()
            red, nir = _band(product, "B4"), _band(product, "B8")
            ndvi = (nir - red) / (nir + red)
            clear = _clear(product) & (truth == code)
            for number, values in points.items():
                chosen = clear & (region == number)
                if chosen.sum() >= 200:
                    values.append((day.tm_yday, float(ndvi[chosen].mean())))
    return {n: tuple(np.array(v).T) for n, v in ((n, sorted(p)) for n, p in points.items())}


def _best_lag(early: tuple[np.ndarray, np.ndarray], late: tuple[np.ndarray, np.ndarray]) -> int:
    """Days by which ``late`` must be moved back to best match ``early`` (shapes normalised)."""

    def shape(profile: tuple[np.ndarray, np.ndarray], days: np.ndarray) -> np.ndarray:
        values = np.interp(days, *profile)
        return (values - values.min()) / (values.max() - values.min())

    days = np.arange(45, 140)
    errors = {lag: np.abs(shape(early, days) - shape(late, days + lag)).mean() for lag in range(71)}
    return min(errors, key=errors.get)


def test_crops_of_region_two_grow_weeks_later(spring: Path) -> None:
    profiles = _ndvi_profiles(spring, code=5)  # rapeseed: the same variety in both regions
    assert all(len(days) >= 20 for days, _ in profiles.values())
    lag = _best_lag(profiles[1], profiles[2])
    assert 28 <= lag <= 50  # 5 weeks, plus the gradient between the regions
    peak = {n: days[np.argmax(values)] for n, (days, values) in profiles.items()}
    assert peak[2] - peak[1] >= 21


def test_a_model_of_region_one_fails_in_region_two(spring: Path) -> None:
    """Cereals and peas: r2's spring cereals and winter peas look like r1's peas and cereals."""
    truth, region, products = _tile_layers(spring, "T31TCJ")
    clear = [_clear(product) for product in products]
    dates = sorted(np.argsort([-c.mean() for c in clear])[:8])
    usable = np.logical_and.reduce([clear[i] for i in dates]) & np.isin(truth, (6, 7))
    features = np.stack(
        [_band(products[i], band) for i in dates for band in ("B2", "B3", "B4", "B8")], axis=-1
    )
    fields, _ = ndimage.label(np.isin(truth, (6, 7)))  # held out field by field
    held = fields % 2 == 0
    train = usable & (region == 1) & ~held
    model = RandomForestClassifier(n_estimators=30, random_state=0, n_jobs=1)
    model.fit(features[train][::2], truth[train][::2])

    def accuracy(where: np.ndarray) -> float:
        assert {6, 7} <= set(np.unique(truth[where]))
        return float(np.mean(model.predict(features[where]) == truth[where]))

    same = accuracy(usable & (region == 1) & held)
    other = accuracy(usable & (region == 2))
    assert same > 0.8  # 0.89 with seed 0
    assert other < same - 0.3  # 0.20: r2's cereals taken for peas and its peas for cereals
