"""The synthetic world's regression target (biomass), its configuration, demo --regression."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
import yaml
from click.testing import CliRunner

import sitsmap.demo as demo_module
from sitsmap.cli import cli
from sitsmap.config import config_from_mapping, load_config
from sitsmap.errors import ConfigError
from sitsmap.io.jsonfile import write_json
from sitsmap.io.vector import read_vector
from sitsmap.pipeline.context import RunContext
from sitsmap.sensors import SENTINEL2_THEIA
from sitsmap.synth import WorldSummary, generate_world
from sitsmap.synth.scene import TileScene
from sitsmap.synth.target import (
    EXPLAINED_SHARE,
    TARGET_FIELD,
    annual_production,
    explained_share,
    noise_spread,
    par,
)
from sitsmap.synth.truth import PRODUCTION, survey_parcels, with_target
from sitsmap.synth.world import chain_config, regression_chain_config, world_landscape

TILES = ("T31TCJ", "T31TCK", "T31TDJ", "T31TDK")
START, END = dt.date(2018, 6, 1), dt.date(2018, 6, 10)

CLASSIFICATION_DIGEST = "8a748f1ae4dc00c9a6545f95e4830a5996fed87425db864282e472ed19045661"
"""Digest (:func:`_classification_digest`) of :func:`_reference_world`, taken with the code
before the target existed: every raster, ``config.yaml`` and ``id``, ``code`` and the
geometries of the ground truth must stay as they were."""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[WorldSummary, Path]:
    out = tmp_path_factory.mktemp("world")
    return generate_world(out, TILES, size=64, start=START, end=END, seed=0), out


@pytest.fixture(scope="module")
def surveyed() -> tuple[list[TileScene], object]:
    """The clean surveyed polygons of a 4 x 256² world (no products: cheap), with scenes."""
    landscape = world_landscape(TILES, 256, 0)
    scenes = [TileScene(landscape, tile) for tile in TILES]
    footprint = shapely.union_all([shapely.box(*scene.grid.bounds) for scene in scenes])
    return scenes, survey_parcels(scenes, footprint, 0)


# -- the field ----------------------------------------------------------------------------------


def test_every_polygon_has_a_finite_varying_float_target(world) -> None:
    summary, out = world
    truth = read_vector(out / "ground_truth.shp")
    assert list(truth.columns) == ["id", "code", TARGET_FIELD, "geometry"]
    value = truth[TARGET_FIELD]
    assert value.dtype.kind == "f" and np.isfinite(value).all() and (value >= 0).all()
    assert value.nunique() > len(truth) // 2 and value.std() > 1.0
    by_class = truth.groupby("code")[TARGET_FIELD].mean()
    assert by_class[20] < 5.0 < 30.0 < by_class[17]  # bare rock produces little, conifers much
    # defects keep their value: duplicated geometries carry the same one
    present = truth[truth.geometry.notna() & ~truth.geometry.is_empty]
    duplicated = present[present.geometry.to_wkb().duplicated(keep=False)]
    assert len(duplicated) >= 4
    assert (duplicated.groupby(duplicated.geometry.to_wkb())[TARGET_FIELD].nunique() == 1).all()
    assert summary.truth_polygons == len(truth)


def test_target_follows_the_vegetation_with_the_documented_share(surveyed) -> None:
    _, clean = surveyed
    signal = clean[PRODUCTION].to_numpy()
    assert len(clean) > 300 and signal.std() > 5.0
    # the error draws differ with the world seed: the realised share scatters around the
    # constant (sd about 0.017 over 378 polygons, measured on 200 seeds)
    shares = [explained_share(signal, with_target(clean, seed)[TARGET_FIELD]) for seed in range(20)]
    assert abs(np.mean(shares) - EXPLAINED_SHARE) < 0.015  # 4 standard errors of the mean
    assert all(abs(share - EXPLAINED_SHARE) < 0.07 for share in shares)
    value = with_target(clean, 0)[TARGET_FIELD].to_numpy()
    assert np.corrcoef(signal, value)[0, 1] ** 2 == pytest.approx(EXPLAINED_SHARE, abs=0.07)
    assert np.array_equal(value, with_target(clean, 0)[TARGET_FIELD].to_numpy())  # a function


def test_target_is_learnable_from_the_simulated_reflectances(surveyed) -> None:
    """Polygons' seasonal NDVI (from the ground reflectance the products are made of).

    NDVI tracks the signal, and the error is independent of what the images show:
    corr²(NDVI, target) = corr²(NDVI, signal) x EXPLAINED_SHARE.
    """
    scenes, clean = surveyed
    parcels = clean[clean["key"] >= 0]  # not the road pieces
    ndvi = _seasonal_ndvi(scenes, parcels["key"].to_numpy())
    value = with_target(clean, 0).loc[parcels.index, TARGET_FIELD].to_numpy()
    to_signal = np.corrcoef(ndvi, parcels[PRODUCTION])[0, 1] ** 2
    to_value = np.corrcoef(ndvi, value)[0, 1] ** 2
    assert to_signal > 0.6
    assert to_value == pytest.approx(to_signal * EXPLAINED_SHARE, abs=0.06)


def _seasonal_ndvi(scenes: list[TileScene], keys: np.ndarray) -> np.ndarray:
    """PAR-weighted sum of each parcel's mean clear-sky NDVI on the 15th of every month."""
    b4, b8 = (SENTINEL2_THEIA.band_names.index(band) for band in ("B4", "B8"))
    dates = [dt.date(2018, month, 15) for month in range(1, 13)]
    found: dict[int, float] = {}
    for scene in scenes:
        layers = scene.static(range(scene.size))
        pixel_keys = scene.parcels.key[layers.present][layers.local].ravel()
        unique, index = np.unique(pixel_keys, return_inverse=True)
        total = np.zeros(unique.size)
        for date in dates:
            ground = scene.ground(layers, date)
            ndvi = ((ground[b8] - ground[b4]) / (ground[b8] + ground[b4])).ravel()
            mean = np.bincount(index, ndvi.astype(np.float64)) / np.bincount(index)
            total += par(date.timetuple().tm_yday - 1) * mean
        found.update({int(k): v for k, v in zip(unique, total, strict=True) if k not in found})
    return np.array([found[int(key)] for key in keys])


def test_production_integrates_the_green_cover_over_the_year() -> None:
    codes = np.array([10, 10, 23, 17], dtype=np.uint8)  # maize dense and sparse, water, conifer
    half = np.full(4, 0.5, np.float32)
    amplitude = np.array([1.0, 0.5, 1.0, 1.0], np.float32)
    produced = annual_production(codes, np.zeros(4, np.float32), amplitude, half, half)
    assert produced[3] > produced[0] > produced[1] > 5.0 > 1.0 > produced[2] >= 0.0
    assert produced[1] == pytest.approx(produced[0] / 2, rel=0.15)  # half the canopy
    assert 10.0 < produced[0] < 35.0  # a maize field: tens of t/ha of dry matter


def test_noise_spread_solves_the_explained_share() -> None:
    signal = np.random.default_rng(0).gamma(4.0, 5.0, size=200_000)
    sigma = noise_spread(signal, 0.6)
    z = np.random.default_rng(1).standard_normal(signal.size)
    value = signal * np.exp(sigma * z - sigma**2 / 2)
    assert explained_share(signal, value) == pytest.approx(0.6, abs=0.01)
    assert noise_spread(np.full(10, 3.0)) == 0.0 and noise_spread(np.array([1.0])) == 0.0


# -- the classification world is unchanged ----------------------------------------------------


def _reference_world(out: Path) -> WorldSummary:
    return generate_world(
        out, ["T31TCJ"], size=64, start=dt.date(2018, 6, 1), end=dt.date(2018, 6, 20), seed=0
    )


def _classification_digest(out: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(out.rglob("*.tif")):
        with rasterio.open(path) as src:
            digest.update(str(path.relative_to(out)).encode())
            digest.update(src.read().tobytes())
    digest.update((out / "config.yaml").read_bytes())
    truth = read_vector(out / "ground_truth.shp")
    digest.update(truth["id"].to_numpy().astype("int64").tobytes())
    digest.update(truth["code"].to_numpy().astype("int64").tobytes())
    digest.update(
        b"".join(b"-" if g is None else shapely.to_wkb(g) for g in truth.geometry.to_numpy())
    )
    return digest.hexdigest()


def test_classification_world_is_byte_identical_to_the_world_before_the_target(
    tmp_path: Path,
) -> None:
    summary = _reference_world(tmp_path)
    assert _classification_digest(tmp_path) == CLASSIFICATION_DIGEST
    assert summary.regression_config and (tmp_path / "config_regression.yaml").is_file()


# -- the regression configuration ------------------------------------------------------------


def test_regression_config_maps_the_target_with_the_same_chain(world) -> None:
    summary, out = world
    assert summary.regression_config_path == out / "config_regression.yaml"
    config = load_config(summary.regression_config_path)
    classification = load_config(summary.config_path)
    assert config.arg_train.task == "regression" and config.regression
    assert config.chain.data_field == TARGET_FIELD
    assert config.chain.output_path == out / "output_regression" != classification.chain.output_path
    post = config.post_processing
    assert not any(
        part.enabled
        for part in (post.smoothing, post.regularisation, post.vectorisation, post.uncertainty)
    )
    assert not config.chain.merge_final_classifications and not config.probability_maps
    raw = yaml.safe_load(summary.regression_config_path.read_text())
    same = yaml.safe_load(summary.config_path.read_text())
    for key in ("output_path", "data_field", "nomenclature_path", "color_table"):
        raw["chain"].pop(key, None)
        same["chain"].pop(key)
    raw["chain"].pop("merge_final_classifications")
    assert raw["chain"] == same["chain"] and raw["sentinel_2"] == same["sentinel_2"]
    assert raw["arg_train"] == {"task": "regression", **same["arg_train"]}


def test_regression_config_names_the_region_layer_as_the_chain_does(tmp_path: Path) -> None:
    raw = regression_chain_config(TILES, START, END, ("safe",), regions=True)
    chain = chain_config(TILES, START, END, ("safe",), regions=True)["chain"]
    for key in ("region_path", "region_field", "s2_s2c_path"):
        assert raw["chain"][key] == chain[key]
    assert config_from_mapping(raw, base_dir=tmp_path).arg_train.task == "regression"


def test_summary_describes_the_target(world) -> None:
    summary, _ = world
    text = summary.describe()
    assert f"field {TARGET_FIELD}" in text and str(summary.regression_config_path) in text
    assert 0.0 < summary.target_share <= 1.0


# -- sitsmap demo --regression ----------------------------------------------------------------


def test_regression_demo_runs_the_regression_config_with_its_overrides(
    world, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, out = world
    ran = {}
    monkeypatch.setattr(demo_module, "run_chain", lambda config, **kw: ran.update(config=config))
    demo_module.run_demo(out, regression=True, overrides=("arg_train.regression_bins=5",))
    config = ran["config"]
    assert config.arg_train.task == "regression" and config.arg_train.regression_bins == 5
    assert config.arg_train.sample_selection.constant_nb == 1500
    assert config.chain.output_path == out / "output_regression"
    demo_module.run_demo(out)  # the classification demo is as it was
    assert ran["config"].arg_train.task == "classification"
    assert ran["config"].post_processing.vectorisation.enabled


def test_regression_demo_says_so_when_the_world_has_no_regression_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo_module, "generate_world", lambda *args, **kwargs: None)
    with pytest.raises(ConfigError, match="no regression configuration"):
        demo_module.run_demo(tmp_path, regression=True)


def test_cli_demo_regression_prints_the_map_the_scores_and_the_ideal_r2(
    world, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, out = world
    context = RunContext(load_config(out / "config_regression.yaml"))
    layout = context.layout
    layout.final.mkdir(parents=True)
    layout.final_map(0, "Regression").write_bytes(b"")
    layout.results_txt.write_text("Pixel level\n")
    scores = {"rmse": {"mean": 6.25, "ci95": 0.0}, "r2": {"mean": 0.71, "ci95": 0.0}}
    write_json(
        layout.results_json,
        {"task": "regression", "seeds": [], "summary": {"pixel": scores, "polygon": scores}},
    )
    calls = []

    def fake_run_demo(out_dir, **kwargs):
        calls.append(kwargs)
        return context

    monkeypatch.setattr(demo_module, "run_demo", fake_run_demo)
    result = CliRunner().invoke(cli, ["demo", str(out), "--regression", "--set", "a.b=1"])
    assert result.exit_code == 0, result.output
    assert calls == [
        {"size": 256, "scheduler": "processes", "workers": 2, "overrides": ("a.b=1",),
         "regression": True}
    ]  # fmt: skip
    assert str(out / "output_regression" / "final" / "Regression_Seed_0.tif") in result.output
    assert "RMSE polygon:" in result.output and "R² 0.710" in result.output
    assert result.output.rstrip().endswith(demo_module.IDEAL_MODEL_NOTE)


def test_cli_demo_without_the_flag_maps_the_land_cover(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(demo_module, "run_demo", lambda out_dir, **kw: calls.append(kw))
    monkeypatch.setattr("sitsmap.cli._echo_outputs", lambda context: None)
    result = CliRunner().invoke(cli, ["demo", "w"])
    assert result.exit_code == 0, result.output
    assert not calls[0]["regression"] and "ideal model" not in result.output
