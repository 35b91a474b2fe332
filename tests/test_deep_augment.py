"""Data augmentation of the networks' training batches: jitter, date dropout, time shift."""

import logging

import numpy as np
import pytest
import torch

import sitsmap.learning.deep.trainer as trainer_module
from sitsmap.config.schema import DeepLearningParameters
from sitsmap.errors import ConfigError
from sitsmap.learning.deep.augment import (
    AUTOMATIC,
    Augmentation,
    augment,
    date_dropout,
    grid_shift_steps,
    ineffective_time_shift,
    jitter,
    layout_of,
    time_shift,
)
from sitsmap.learning.deep.layout import TemporalLayout
from sitsmap.learning.deep.trainer import DeepClassifier, monitoring_split
from sitsmap.learning.persistence import load_model, save_model
from tests.test_deep_defaults import (
    BAND_MAJOR,
    DATE_MAJOR,
    DAYS,
    N_DATES,
    metadata,
    synthetic_series,
)

GRID_DAYS = (300, 310, 320, 330, 340, 350, 360, 5, 15, 25)
"""A 10-day grid over a new year: the days of year wrap from 360 to 5."""
UNWRAPPED = np.array([300, 310, 320, 330, 340, 350, 360, 370, 380, 390], float)
N_CHANNELS = 3
ON = {"jitter": 0.05, "date_dropout": 0.3, "time_shift": 40}


def generator(seed=0):
    return torch.Generator().manual_seed(seed)


def grid_layout(days=GRID_DAYS):
    n_dates = len(days) if days is not None else len(GRID_DAYS)
    return TemporalLayout.of(N_CHANNELS * n_dates, n_dates, day_of_year=days)


def grid_rows(batch=64, seed=0):
    """Random band-major rows of the grid layout (every value distinct)."""
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.normal(size=(batch, N_CHANNELS * len(GRID_DAYS))).astype("f8"))


def raw_rows(batch=64, slots=8, seed=0):
    """Raw-layout rows: each sample has 0 to ``slots`` observations, packed, days increasing."""
    rng = np.random.default_rng(seed)
    layout = TemporalLayout.of((N_CHANNELS + 2) * slots, slots, raw=True)
    counts = rng.integers(0, slots + 1, batch)
    counts[:4] = (0, 1, slots, slots)
    valid = np.arange(slots)[None, :] < counts[:, None]
    days = np.array([np.sort(rng.choice(np.arange(1, 366), slots, replace=False)) for _ in counts])
    days = days * valid  # distinct days: an observation is known by its day
    values = rng.normal(size=(batch, N_CHANNELS, slots)) * valid[:, None, :]
    rows = np.concatenate([values.reshape(batch, -1), days, valid], axis=1)
    return layout, torch.from_numpy(rows)


# ------------------------------------------------------------------------- settings


def test_settings_resolve_and_refuse_bad_values():
    assert not Augmentation().enabled
    assert Augmentation(jitter=0.01).enabled and Augmentation(time_shift=1).enabled
    assert Augmentation.resolve(None, automatic=False) == Augmentation()
    assert Augmentation.resolve(None, automatic=True) == AUTOMATIC
    given = {"jitter": 0.03, "date_dropout": None, "time_shift": 10}
    resolved = Augmentation.resolve(given, automatic=True)
    assert resolved == Augmentation(0.03, AUTOMATIC.date_dropout, 10.0)
    assert Augmentation.resolve(given, automatic=False) == Augmentation(0.03, 0.0, 10.0)
    with pytest.raises(ConfigError, match="unknown augmentation settings \\['noise'\\]"):
        Augmentation.resolve({"noise": 1}, automatic=False)
    with pytest.raises(ConfigError, match="date_dropout < 1"):
        Augmentation(date_dropout=1.0)
    with pytest.raises(ConfigError):
        Augmentation(jitter=-0.1)


def test_config_passes_augmentation_to_the_classifier():
    dl = DeepLearningParameters()
    assert dl.augmentation.model_dump() == {
        "jitter": None,
        "date_dropout": None,
        "time_shift": None,
    }
    dl = DeepLearningParameters(augmentation={"jitter": 0.03, "time_shift": 10})
    model = DeepClassifier.from_settings(dl, seed=0)
    assert model.augmentation == {"jitter": 0.03, "date_dropout": None, "time_shift": 10.0}
    with pytest.raises(ValueError, match="date_dropout"):
        DeepLearningParameters(augmentation={"date_dropout": 1.5})


def test_layout_of_the_rows():
    n_features = len(BAND_MAJOR)
    layout = layout_of(n_features, N_DATES, DAYS, BAND_MAJOR)
    assert layout == TemporalLayout.of(n_features, N_DATES, day_of_year=DAYS)
    assert layout_of(n_features, None, DAYS) == layout  # the dates counted from the days
    assert layout_of(n_features, None) is None  # unknown: jitter only
    assert layout_of(n_features, N_DATES, DAYS, DATE_MAJOR) is None  # not band by band
    mixed = [*BAND_MAJOR[: N_DATES * 3], *(f"landsat8_b1_2018{m:02d}20" for m in range(1, 13))]
    assert layout_of(len(mixed), N_DATES, DAYS, mixed) is None  # two sensors' grids
    assert layout_of(n_features + 1, N_DATES, DAYS) is None  # a static feature too
    raw_names = [
        f"sentinel2_{variable}_obs{slot:03d}"
        for variable in ("b2", "b3", "doy", "valid")
        for slot in range(5)
    ]
    assert layout_of(20, None, None, raw_names) == TemporalLayout(2, 5, raw=True)


# ------------------------------------------------------------------------- transforms


def test_off_is_the_identity():
    x = grid_rows()
    assert augment(x, grid_layout(), Augmentation(), generator()) is x
    assert jitter(x, grid_layout(), 0.0, generator()) is x
    assert date_dropout(x, grid_layout(), 0.0, generator()) is x
    assert time_shift(x, grid_layout(), 0.0, generator()) is x


def test_jitter_adds_noise_to_valid_values_only():
    layout, x = raw_rows(batch=2000)
    out = jitter(x, layout, 0.1, generator())
    _, days, valid = layout.split(x)
    series, out_days, out_valid = layout.split(out)
    assert torch.equal(out_days, days) and torch.equal(out_valid, valid)
    noise = series - layout.split(x)[0]
    assert (noise[~valid] == 0).all()
    assert noise[valid].std().item() == pytest.approx(0.1, rel=0.05)
    assert (noise[valid] != 0).all()
    # without a layout every feature is jittered
    whole = jitter(x, None, 0.1, generator()) - x
    assert (whole != 0).all()


def test_date_dropout_interpolates_the_grid_as_gap_filling_would():
    x = grid_rows(batch=200)
    layout = grid_layout()
    out = date_dropout(x, layout, 0.5, generator())
    series, original = layout.split(out)[0].numpy(), layout.split(x)[0].numpy()
    dropped = 0
    for row, before in zip(series, original, strict=True):
        kept = (row == before).all(axis=1)  # interpolated random values never equal the truth
        assert kept.any()  # at least one date kept
        dropped += (~kept).sum()
        for channel in range(N_CHANNELS):
            expected = np.interp(UNWRAPPED, UNWRAPPED[kept], before[kept, channel])
            np.testing.assert_allclose(row[:, channel], expected, rtol=1e-12, atol=1e-12)
    assert dropped / original[..., 0].size == pytest.approx(0.5, abs=0.05)


def test_date_dropout_of_a_linear_series_is_exact_between_kept_dates():
    layout = grid_layout()
    line = torch.from_numpy(np.concatenate([2 * UNWRAPPED + 1, -UNWRAPPED, 0 * UNWRAPPED + 3]))
    x = line.repeat(300, 1)
    out = layout.split(date_dropout(x, layout, 0.7, generator()))[0]
    truth = layout.split(x)[0]
    moved = ~torch.isclose(out, truth, rtol=0, atol=1e-9).all(dim=2)
    # only the dates beyond the first or last kept one move: they take its values
    for row, change in zip(out, moved, strict=True):
        kept = torch.nonzero(~change).ravel()
        first, last = int(kept.min()), int(kept.max())
        assert torch.equal(change[first : last + 1], torch.zeros(last - first + 1, dtype=bool))
        assert torch.equal(row[:first], row[first].expand(first, -1))
        assert torch.equal(row[last + 1 :], row[last].expand(len(row) - last - 1, -1))


def test_date_dropout_interpolates_values_not_standardised_ones():
    layout = grid_layout()
    rng = np.random.default_rng(3)
    values = grid_rows(batch=100, seed=4)
    mean = torch.from_numpy(rng.normal(size=values.shape[1]))
    scale = torch.from_numpy(rng.uniform(0.5, 2.0, values.shape[1]))
    standardised = (values - mean) / scale
    settings = Augmentation(date_dropout=0.5)
    out = augment(standardised, layout, settings, generator(), mean, scale) * scale + mean
    expected = date_dropout(values, layout, 0.5, generator())
    torch.testing.assert_close(out, expected, rtol=1e-9, atol=1e-9)


def test_date_dropout_removes_raw_observations_and_packs_the_rest():
    layout, x = raw_rows(batch=500)
    out = date_dropout(x, layout, 0.6, generator())
    before, after = layout.split(x), layout.split(out)
    count_before, count_after = before[2].sum(1), after[2].sum(1)
    assert (count_after[count_before > 0] >= 1).all()
    assert (count_after[count_before == 0] == 0).all()
    assert (count_after <= count_before).all() and (count_after < count_before).any()
    for b in range(len(x)):
        n = int(count_after[b])
        assert after[2][b, :n].all() and not after[2][b, n:].any()  # packed first
        assert (after[1][b, n:] == 0).all() and (after[0][b, n:] == 0).all()  # freed slots zero
        # the kept observations are some of the sample's own, in the same order
        old_days = before[1][b, before[2][b]].tolist()
        kept = after[1][b, :n].tolist()
        assert kept == sorted(kept) and set(kept) <= set(old_days)
        for slot, day in enumerate(kept):
            source = old_days.index(day)
            assert torch.equal(after[0][b, slot], before[0][b, source])


def test_time_shift_moves_raw_days_within_k():
    layout, x = raw_rows(batch=400)
    out = time_shift(x, layout, 10, generator())
    (series, days, valid), (out_series, out_days, out_valid) = layout.split(x), layout.split(out)
    assert torch.equal(out_series, series) and torch.equal(out_valid, valid)
    assert torch.equal(out_days[~valid], days[~valid])  # padding keeps day 0
    shift = out_days - days
    for row, mask in zip(shift, valid, strict=True):
        if mask.any():
            assert (row[mask] == row[mask][0]).all()  # one shift per sample
    assert shift.abs().max() <= 10 and (shift == shift.round()).all()
    assert len(torch.unique(shift[valid])) == 21  # every whole day of [-10, 10] drawn


def test_time_shift_moves_the_grid_by_whole_dates_edges_repeated():
    layout = grid_layout()
    x = grid_rows(batch=300)
    out = layout.split(time_shift(x, layout, 25, generator()))[0]
    series = layout.split(x)[0]
    index = torch.arange(len(GRID_DAYS))
    seen = set()
    for row, before in zip(out, series, strict=True):
        matches = [
            d
            for d in range(-2, 3)
            if torch.equal(row, before[(index - d).clamp(0, len(index) - 1)])
        ]
        assert len(matches) == 1  # shifted by at most floor(25 / 10) = 2 dates
        seen.add(matches[0])
    assert seen == {-2, -1, 0, 1, 2}
    # less than one grid step, or days unknown: nothing moves
    assert time_shift(x, layout, 9, generator()) is x
    assert time_shift(x, grid_layout(days=None), 25, generator()) is x


def test_a_time_shift_below_the_grid_step_is_found_ineffective():
    layout = grid_layout()  # a 10-day grid over a new year
    assert [grid_shift_steps(k, layout) for k in (9.9, 10, 25, 40)] == [0, 1, 2, 4]
    message = ineffective_time_shift(Augmentation(time_shift=9), layout)
    assert "time_shift is 9 days, below the temporal grid's step of 10 days" in message
    assert "rounds to 0" in message and "\n" not in message
    assert ineffective_time_shift(Augmentation(time_shift=10), layout) == ""
    assert ineffective_time_shift(Augmentation(jitter=0.1), layout) == ""  # no shift asked
    assert ineffective_time_shift(Augmentation(time_shift=9), None) == ""  # jitter only
    raw, _ = raw_rows()
    assert grid_shift_steps(9, raw) == 0
    assert ineffective_time_shift(Augmentation(time_shift=9), raw) == ""  # raw shifts days
    unknown = grid_layout(days=None)
    assert "days are unknown" in ineffective_time_shift(Augmentation(time_shift=30), unknown)


def test_augmentation_is_seeded():
    layout, x = raw_rows()
    settings = Augmentation(0.05, 0.3, 15)
    first = augment(x, layout, settings, generator(1))
    assert torch.equal(first, augment(x, layout, settings, generator(1)))
    assert not torch.equal(first, augment(x, layout, settings, generator(2)))
    assert not torch.equal(first, x)


# --------------------------------------------------------------------------- training


def deep(dl_name="MLPClassifier", **kwargs):
    params = {"n_dates": N_DATES, "day_of_year": DAYS, "device": "cpu", "seed": 3, "epochs": 3}
    if dl_name == "TempCNN":
        params["dl_parameters"] = {"n_filters": 8, "hidden": 16}
    return DeepClassifier(dl_name, **{**params, **kwargs})


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def train():
    return synthetic_series(seed=0, polygons=5, pixels=20)


@pytest.mark.parametrize("dl_name", ["MLPClassifier", "TempCNN"])
def test_training_with_augmentation_runs_and_is_reproducible(train, dl_name):
    explicit = {"learning_rates": (1e-3,), "batch_sizes": (64,)}
    plain = deep(dl_name, **explicit).fit(*train)
    first = deep(dl_name, **explicit, augmentation=ON).fit(*train)
    again = deep(dl_name, **explicit, augmentation=ON).fit(*train)
    columns = ["train_loss", "val_loss", "val_oa"]
    np.testing.assert_array_equal(first.history_[columns], again.history_[columns])
    assert not np.array_equal(first.history_["train_loss"], plain.history_["train_loss"])
    assert np.isfinite(first.history_["train_loss"]).all()


def test_only_training_batches_are_augmented(train, monkeypatch):
    sizes = []

    def counting(x, **kwargs):
        sizes.append(len(x))
        return augment(x, **kwargs)

    monkeypatch.setattr(trainer_module, "augment", counting)
    X, y, groups = train
    model = deep(learning_rates=(1e-3,), batch_sizes=(64,), augmentation=ON).fit(X, y, groups)
    learning, _ = monitoring_split(np.unique(y, return_inverse=True)[1], groups, 0.2, seed=3)
    assert max(sizes) <= 64 and sum(sizes) == len(model.history_) * len(learning)
    model.predict_proba(X)
    assert sum(sizes) == len(model.history_) * len(learning)  # nor in prediction


def test_given_settings_without_augmentation_train_as_before(train):
    explicit = {"learning_rates": (1e-3,), "batch_sizes": (64,)}
    reference = deep(**explicit).fit(*train).history_
    for unset in ({}, {"jitter": None, "date_dropout": None, "time_shift": None}):
        history = deep(**explicit, augmentation=unset).fit(*train).history_
        np.testing.assert_array_equal(history["train_loss"], reference["train_loss"])
        np.testing.assert_array_equal(history["val_loss"], reference["val_loss"])


def test_automatic_settings_train_with_the_automatic_augmentation(train):
    automatic = deep(epochs=2).fit(*train).history_
    explicit = deep(epochs=2, augmentation={f: getattr(AUTOMATIC, f) for f in ON}).fit(*train)
    np.testing.assert_array_equal(explicit.history_["train_loss"], automatic["train_loss"])


def test_augmentation_round_trips_and_old_states_load(tmp_path, train):
    model = deep(augmentation=ON).fit(*train)
    path = tmp_path / "model.bin"
    save_model(path, model, metadata())
    loaded, _ = load_model(path)
    assert loaded.augmentation == ON
    X = train[0]
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    state = model.get_state()
    del state["params"]["augmentation"]  # saved before augmentation existed
    old = DeepClassifier.from_state(state)
    assert old.augmentation is None
    np.testing.assert_array_equal(old.predict_proba(X), model.predict_proba(X))


def test_raw_dates_training_with_augmentation_runs():
    from sitsmap.learning.deep.layout import raw_slot_name

    rng = np.random.default_rng(0)
    n, slots = 300, 8
    names = [
        raw_slot_name("sentinel2", variable, slot)
        for variable in ("b2", "b3", "doy", "valid")
        for slot in range(slots)
    ]
    y = rng.integers(0, 3, n)
    valid = (np.arange(slots) < rng.integers(1, slots + 1, n)[:, None]).astype(np.float32)
    days = np.sort(rng.choice(np.arange(1, 366), (n, slots)), axis=1) * valid
    values = (rng.normal(size=(n, 2, slots)) + y[:, None, None]) * valid[:, None, :]
    X = np.concatenate([values.reshape(n, -1), days, valid], axis=1).astype(np.float32)
    small = {"d_model": 16, "n_head": 4, "d_k": 4, "mlp": [16], "decoder": [16]}
    model = DeepClassifier(
        "LTAE",
        epochs=2,
        n_dates=slots,
        feature_names=names,
        device="cpu",
        dl_parameters=small,
        augmentation=ON,
    ).fit(X, y, np.arange(n) // 10)
    assert np.isfinite(model.history_["train_loss"]).all()


def test_resolved_augmentation_is_stored_in_the_settings(tmp_path, train):
    explicit = {"learning_rates": (1e-3,), "batch_sizes": (64,), "epochs": 1}
    off = deep(**explicit).fit(*train)
    assert off.settings_["augmentation"] == {"jitter": 0.0, "date_dropout": 0.0, "time_shift": 0.0}
    model = deep(**explicit, augmentation={"jitter": 0.05, "time_shift": None}).fit(*train)
    resolved = {"jitter": 0.05, "date_dropout": 0.0, "time_shift": 0.0}
    assert model.settings_["augmentation"] == resolved
    automatic = deep(epochs=1).fit(*train)
    assert automatic.settings_["augmentation"] == {
        name: getattr(AUTOMATIC, name) for name in resolved
    }
    path = tmp_path / "model.bin"
    save_model(path, model, metadata())
    loaded, _ = load_model(path)
    assert loaded.settings_["augmentation"] == resolved


@pytest.mark.parametrize(("shift", "warned"), [(10, True), (29.9, True), (30, False), (0, False)])
def test_a_time_shift_below_the_grid_step_warns_once(train, caplog, shift, warned):
    grid = {"learning_rates": (1e-3, 2e-3), "batch_sizes": (64,), "epochs": 1}  # 2 trainings
    with caplog.at_level(logging.WARNING, logger="sitsmap.learning.deep.trainer"):
        deep(**grid, augmentation={"time_shift": shift}).fit(*train)
    messages = [r.getMessage() for r in caplog.records if "time_shift" in r.getMessage()]
    expected = f"time_shift is {shift:g} days, below the temporal grid's step of 30 days"
    assert [expected in m and "rounds to 0" in m for m in messages] == ([True] if warned else [])
