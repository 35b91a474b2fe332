"""Raw-dates features: packing, the builder, the config, and the chain on raw dates."""

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from sitsmap.config import load_config
from sitsmap.config.checks import ineffective_settings
from sitsmap.errors import ConfigError
from sitsmap.preprocessing.features import compute_features, feature_names
from sitsmap.preprocessing.raw_dates import (
    RawFeatureBuilder,
    day_of_year_numbers,
    pack_observations,
    raw_feature_names,
)

BANDS = ("B2", "B3", "B4", "B8", "B11")
VARIABLES = ("b2", "b3", "b4", "b8", "b11", "ndvi", "ndwi", "brightness")


def packed(values, valid, days, slots):
    n_channels, _, n_pixels = values.shape
    out = np.full(((n_channels + 2) * slots, n_pixels), np.nan, dtype=np.float32)
    counts = pack_observations(values, valid, np.asarray(days, np.float32), slots, out)
    rows = out.reshape(n_channels + 2, slots, n_pixels)
    return rows[:n_channels], rows[n_channels], rows[n_channels + 1], counts


def test_packing_keeps_valid_observations_in_date_order_and_pads_with_zeros():
    values = np.arange(2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3) + 1
    valid = np.array([[0, 1, 0], [1, 1, 0], [0, 0, 0], [1, 1, 0], [0, 0, 0]], bool)
    channels, days, flags, counts = packed(values, valid, [10, 20, 30, 40, 50], slots=4)
    assert counts.tolist() == [2, 3, 0]
    np.testing.assert_array_equal(days[:, 0], [20, 40, 0, 0])
    np.testing.assert_array_equal(days[:, 1], [10, 20, 40, 0])
    np.testing.assert_array_equal(flags.T, [[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0]])
    expected = np.zeros((2, 4), np.float32)
    expected[:, :2] = values[:, [1, 3], 0]
    np.testing.assert_array_equal(channels[:, :, 0], expected)
    assert not channels[:, :, 2].any()


def test_more_observations_than_slots_keep_first_last_and_evenly_spread():
    n_dates = 9
    values = np.arange(n_dates, dtype=np.float32).reshape(1, n_dates, 1)
    valid = np.ones((n_dates, 1), bool)
    channels, days, flags, counts = packed(values, valid, np.arange(n_dates) * 5.0, slots=3)
    assert counts.tolist() == [9]
    np.testing.assert_array_equal(channels[0, :, 0], [0, 4, 8])
    np.testing.assert_array_equal(days[:, 0], [0, 20, 40])
    assert flags.all()


def test_days_count_from_the_first_january_of_the_grid_year_across_new_year():
    days = day_of_year_numbers(
        [dt.date(2018, 1, 1), dt.date(2018, 12, 31), dt.date(2019, 1, 2)], dt.date(2018, 10, 1)
    )
    np.testing.assert_array_equal(days, [1, 365, 367])


def test_builder_values_are_the_observations_reflectances_and_indices():
    rng = np.random.default_rng(0)
    dates = [dt.date(2018, 4, 1) + dt.timedelta(days=10 * k) for k in range(6)]
    reflectance = rng.integers(100, 5000, size=(6, len(BANDS), 3, 4)).astype(np.int16)
    invalid = rng.random((6, 3, 4)) < 0.4
    invalid[:, 0, 0] = True  # a pixel never seen
    builder = RawFeatureBuilder(dates[1], dates[-1], BANDS, (3, 4), slots=5)
    for date, image, mask in zip(dates, reflectance, invalid, strict=True):
        builder.add(date, image, mask)
    block = builder.finish()
    names = raw_feature_names("sentinel2", VARIABLES, 5)
    assert block.features.shape == (len(names), 3, 4)
    table = pd.DataFrame(block.features.reshape(len(names), -1).T, columns=names)
    # the first date is before the period: never used
    in_period = ~invalid[1:].reshape(5, -1)
    np.testing.assert_array_equal(block.valid_count.ravel(), in_period.sum(axis=0))
    assert not block.has_data[0, 0] and not table.iloc[0].any()
    # each pixel's slots are its clear dates, in order, with the gap-filled chain's index formulas
    days = day_of_year_numbers(dates[1:], dates[1])
    for pixel in range(12):
        clear = np.flatnonzero(in_period[:, pixel])
        row = table.iloc[pixel]
        for slot, date_index in enumerate(clear):
            one = compute_features(
                reflectance[1 + date_index, :, pixel // 4, pixel % 4][None, :, None, None],
                np.zeros((1, 1, 1), bool),
                [dates[1 + date_index]],
                [dates[1 + date_index]],
                BANDS,
            ).features.ravel()
            got = [row[f"sentinel2_{v}_obs{slot:03d}"] for v in VARIABLES]
            np.testing.assert_allclose(got, one, rtol=1e-5, atol=1e-6)
            assert row[f"sentinel2_doy_obs{slot:03d}"] == days[date_index]
            assert row[f"sentinel2_valid_obs{slot:03d}"] == 1
        for slot in range(len(clear), 5):
            assert row[f"sentinel2_valid_obs{slot:03d}"] == 0


def test_gap_filled_feature_names_are_unchanged():
    names = feature_names(BANDS, [dt.date(2018, 1, 1), dt.date(2018, 1, 11)])
    assert names[:3] == ["sentinel2_b2_20180101", "sentinel2_b2_20180111", "sentinel2_b3_20180101"]


RAW = (
    "sensors_data_interpolation.use_gapfilling=false",
    "arg_train.deep_learning_parameters={dl_name: LTAE, epochs: 30, "
    "dl_parameters: {d_model: 32, n_head: 4, d_k: 8, mlp: [32], decoder: [32]}}",
    "arg_train.sample_selection={sampler: periodic, strategy: constant, strategy.constant.nb: 300}",
    "python_data_managing.number_of_chunks=2",
    "scheduling.scheduler=synchronous",
)


def test_raw_dates_need_an_attention_network(small_world, tmp_path):
    with pytest.raises(
        ConfigError, match="only deep_learning_parameters.dl_name LTAE or Transformer"
    ):
        load_config(
            small_world / "config.yaml",
            ("sensors_data_interpolation.use_gapfilling=false", f"chain.output_path={tmp_path}"),
        )
    with pytest.raises(ConfigError, match="candidate 'rf' trains rf"):
        load_config(
            small_world / "config.yaml",
            (
                *RAW[:2],
                "arg_train.model_selection.candidates=[{deep_learning_parameters: "
                "{dl_name: Transformer}}, {classifier: rf}]",
                f"chain.output_path={tmp_path}",
            ),
        )
    gapfilled = load_config(
        small_world / "config.yaml",
        ("sensors_data_interpolation.max_observations=10", f"chain.output_path={tmp_path}"),
    )
    assert any("max_observations has no effect" in m for m in ineffective_settings(gapfilled))


@pytest.fixture(scope="module")
def raw_run(tmp_path_factory, small_world):
    from sitsmap.pipeline.run import run_chain

    output = tmp_path_factory.mktemp("raw")
    config = load_config(small_world / "config.yaml", (*RAW, f"chain.output_path={output}"))
    return run_chain(config)


def test_chain_on_raw_dates_samples_learns_and_classifies(raw_run):
    layout = raw_run.layout
    acquisitions = json.loads(layout.acquisitions.read_text())
    slots = acquisitions["sensors"][0]["raw_slots"]
    assert slots > 0
    names = acquisitions["feature_names"]
    assert names[0] == "sentinel2_b2_obs000" and names[-1] == f"sentinel2_valid_obs{slots - 1:03d}"
    from sitsmap.io.arrays import read_table

    table = read_table(layout.samples(0))
    flags = table[[f"sentinel2_valid_obs{k:03d}" for k in range(slots)]].to_numpy()
    days = table[[f"sentinel2_doy_obs{k:03d}" for k in range(slots)]].to_numpy()
    assert set(np.unique(flags)) <= {0.0, 1.0} and flags.any(axis=1).all()
    # each sample's used slots come first, their days increase
    assert (np.diff(flags, axis=1) <= 0).all()
    assert (np.diff(days, axis=1)[flags[:, 1:] > 0] > 0).all()
    results = json.loads(layout.results_json.read_text())
    confusion = np.array(results["seeds"][0]["confusion"])
    # a tiny world (a few hundred samples) and a short training: well above the majority
    # class, not yet at the gap-filled forest's level (see BENCHMARKS.md, learners)
    majority = confusion.sum(axis=1).max() / confusion.sum()
    assert results["seeds"][0]["oa"] > majority + 0.15
