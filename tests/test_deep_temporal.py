"""The Transformer, and L-TAE and the Transformer on raw dates (each pixel its own days)."""

import math

import numpy as np
import pytest
import torch

from sitsmap.errors import ConfigError, InputDataError
from sitsmap.learning.deep.layout import TemporalLayout, raw_slot_name
from sitsmap.learning.deep.models import (
    LTAE,
    NETWORKS,
    Transformer,
    batched_sinusoid_encoding,
    build_network,
    sinusoid_encoding,
)
from sitsmap.learning.deep.trainer import (
    DeepClassifier,
    check_feature_order,
    raw_mean_std,
)

CODES = (3, 7, 9)
N_CHANNELS, N_SLOTS = 2, 16
PEAKS = (90.0, 180.0, 270.0)
"""Day of each class's peak in channel 0 (the class is the peak's timing)."""
SMALL = {
    "LTAE": {"d_model": 32, "n_head": 4, "d_k": 8, "mlp": (32,), "decoder": (32,), "dropout": 0.1},
    "Transformer": {"d_model": 32, "n_head": 4, "n_layers": 1, "dim_feedforward": 64},
}
N_DATES = 12
GRID_DAYS = [float(d) for d in range(15, 15 + 30 * N_DATES, 30)]


def raw_names(n_channels=N_CHANNELS, n_slots=N_SLOTS, prefix="sentinel2"):
    """Raw-layout names: values band-major by slot, then the days, then the flags."""
    variables = [f"b{c}" for c in range(n_channels)] + ["doy", "valid"]
    return [raw_slot_name(prefix, v, k) for v in variables for k in range(n_slots)]


def peak_rows(seed=0, per_class=150, polygons=5, noise=0.1):
    """Raw-layout rows whose class is when channel 0 peaks, each pixel on its own days.

    A pixel sees between 5 and ``N_SLOTS`` clear days drawn at random in the year,
    packed in date order, the other slots 0 (values, day, flag). Channel 0 is a
    bump of width 25 days around its class's peak (shifted up to 10 days per
    polygon), channel 1 noise around a level common to all classes: no slot, and
    no single value, tells the classes apart without the days.
    """
    rng = np.random.default_rng(seed)
    layout = TemporalLayout(N_CHANNELS, N_SLOTS, raw=True)
    series = np.zeros((len(CODES) * per_class, N_SLOTS, N_CHANNELS), np.float32)
    days = np.zeros((len(series), N_SLOTS), np.float32)
    valid = np.zeros((len(series), N_SLOTS), bool)
    y = np.repeat(CODES, per_class)
    groups = np.zeros(len(series), np.int64)
    for i, k in enumerate(np.repeat(np.arange(len(CODES)), per_class)):
        polygon = rng.integers(polygons)
        groups[i] = k * 100 + polygon
        n_valid = rng.integers(5, N_SLOTS + 1)
        seen = np.sort(rng.choice(np.arange(1, 366), n_valid, replace=False)).astype(np.float32)
        peak = PEAKS[k] + 4.0 * (polygon - polygons // 2)
        series[i, :n_valid, 0] = np.exp(-0.5 * ((seen - peak) / 25.0) ** 2)
        series[i, :n_valid, 1] = 0.3
        series[i, :n_valid] += rng.normal(0.0, noise, (n_valid, N_CHANNELS))
        days[i, :n_valid] = seen
        valid[i, :n_valid] = True
    X = layout.join(torch.from_numpy(series), torch.from_numpy(days), torch.from_numpy(valid))
    return X.numpy(), y, groups


def grid_rows(seed=0, per_class=120, polygons=6, noise=0.4):
    """Gap-filled rows (``N_CHANNELS`` × ``N_DATES``, band-major): class-specific curves."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, N_DATES)
    X, y, groups = [], [], []
    for k, code in enumerate(CODES):
        curve = np.stack([np.sin(2 * np.pi * (t + k / 3)), np.cos(np.pi * t * (k + 1))])
        for p in range(polygons):
            pixels = per_class // polygons
            shift = rng.normal(0.0, 0.2, curve.shape)
            pixel = curve + shift + rng.normal(0.0, noise, (pixels, *curve.shape))
            X.append(pixel.reshape(pixels, -1))
            y += [code] * pixels
            groups += [k * 100 + p] * pixels
    return np.concatenate(X).astype(np.float32), np.array(y), np.array(groups)


def raw_model(dl_name, **kwargs):
    """A small network on the raw peak rows, its slots taken from the feature names."""
    params = {
        "epochs": 12,
        "learning_rates": (3e-3,),
        "batch_sizes": (32,),
        "dl_parameters": SMALL[dl_name],
        "feature_names": raw_names(),
        "device": "cpu",
    }
    return DeepClassifier(dl_name, **{**params, **kwargs})


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small networks: one thread is faster and immune to other processes' load."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def peaks():
    return peak_rows(seed=0), peak_rows(seed=1)


@pytest.fixture(scope="module")
def raw_transformer(peaks):
    (X, y, groups), _ = peaks
    return raw_model("Transformer", epochs=2).fit(X, y, groups)


def accuracy(model, data):
    X, y, _ = data
    return float((model.predict(X) == y).mean())


def shuffle_invalid(x, layout, seed=0):
    """Return rows ``x`` with random values and days in their invalid slots."""
    generator = torch.Generator().manual_seed(seed)
    series, days, valid = layout.split(x)
    noise = torch.randn(series.shape, generator=generator) * 5
    random_days = torch.rand(days.shape, generator=generator) * 700
    series = torch.where(valid[..., None], series, noise)
    days = torch.where(valid, days, random_days)
    return layout.join(series, days, valid)


# ---------------------------------------------------------------------------- networks


def test_transformer_is_a_known_network():
    assert NETWORKS["Transformer"] is Transformer
    network = build_network("Transformer", N_CHANNELS * N_DATES, 4, day_of_year=GRID_DAYS)
    assert network.eval()(torch.randn(5, N_CHANNELS * N_DATES)).shape == (5, 4)
    with pytest.raises(ConfigError, match="multiple of n_head"):
        build_network("Transformer", 24, 3, n_dates=12, dl_parameters={"d_model": 10})
    with pytest.raises(ConfigError, match="unknown pooling"):
        build_network("Transformer", 24, 3, n_dates=12, dl_parameters={"pooling": "sum"})
    with pytest.raises(ConfigError, match="unknown dl_parameters"):
        build_network("LTAE", 24, 3, n_dates=12, dl_parameters={"raw": True})


def test_batched_encoding_is_the_encoding_of_each_row():
    days = torch.tensor([[1.0, 40.0, 200.0], [3.0, 365.0, 700.0]])
    table = batched_sinusoid_encoding(days, 8)
    assert table.shape == (2, 3, 8)
    for row in range(2):
        torch.testing.assert_close(table[row], sinusoid_encoding(days[row], 8), rtol=0, atol=0)


def ltae_as_before(network, x):
    """L-TAE's forward pass as it was written before raw dates (gap-filled rows)."""
    series = x.reshape(x.shape[0], network.n_bands, network.n_dates).transpose(1, 2)
    h = network.input_norm(network.input_projection(series)) + network.positional_encoding
    h = network.mlp(network.attention(h))
    return network.decoder(network.output_norm(network.dropout(h)))


def test_gap_filled_ltae_computes_what_it_did():
    torch.manual_seed(0)
    network = LTAE(N_CHANNELS, N_DATES, 3, day_of_year=GRID_DAYS, d_model=16, n_head=4).eval()
    x = torch.randn(9, N_CHANNELS * N_DATES)
    torch.testing.assert_close(network(x), ltae_as_before(network, x), rtol=0, atol=0)
    names = set(network.state_dict())
    assert "positional_encoding" not in names  # not saved: rebuilt from the days
    assert {"input_projection.weight", "attention.query", "decoder.0.weight"} <= names


@pytest.mark.parametrize("input_norm", [False, True])
def test_ltae_sees_each_dates_brightness_without_the_input_norm(input_norm):
    torch.manual_seed(0)
    network = LTAE(N_CHANNELS, N_DATES, 3, GRID_DAYS, d_model=16, n_head=4, input_norm=input_norm)
    network.eval()
    with torch.no_grad():
        network.input_projection.bias.zero_()
    x = torch.randn(9, N_CHANNELS * N_DATES)
    brighter = network(2.0 * x)
    if input_norm:  # LayerNorm(W x) is blind to the scale of x: the former default
        torch.testing.assert_close(brighter, network(x), rtol=1e-4, atol=1e-4)
    else:
        assert not torch.allclose(brighter, network(x), rtol=1e-2, atol=1e-2)


def test_ltae_saved_with_the_input_norm_loads_as_saved():
    torch.manual_seed(0)
    saved = LTAE(N_CHANNELS, N_DATES, 3, GRID_DAYS, d_model=16, n_head=4, input_norm=True)
    with torch.no_grad():
        saved.input_norm.weight.uniform_(0.5, 1.5)
        saved.input_norm.bias.uniform_(-0.5, 0.5)
    saved.eval()
    state = saved.state_dict()
    assert "input_norm.weight" in state
    network = LTAE(N_CHANNELS, N_DATES, 3, GRID_DAYS, d_model=16, n_head=4)  # today's default
    assert "input_norm.weight" not in network.state_dict()
    network.load_state_dict(state)  # strict: every key used
    network.eval()
    x = torch.randn(9, N_CHANNELS * N_DATES)
    torch.testing.assert_close(network(x), saved(x), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("dl_name", "params"),
    [("LTAE", {}), ("Transformer", {}), ("Transformer", {"pooling": "mean"})],
)
def test_invalid_slots_do_not_change_the_output(dl_name, params):
    layout = TemporalLayout(N_CHANNELS, N_SLOTS, raw=True)
    X, _, _ = peak_rows(seed=2, per_class=4)
    torch.manual_seed(0)
    network = build_network(
        dl_name, layout.n_features, 3, n_dates=N_SLOTS, dl_parameters=params, raw=True
    ).eval()
    x = torch.from_numpy(X)
    moved = shuffle_invalid(x, layout)
    assert not torch.equal(x, moved)
    torch.testing.assert_close(network(moved), network(x), rtol=1e-6, atol=1e-6)
    with torch.inference_mode():  # as predict_proba runs it (torch's fast paths)
        torch.testing.assert_close(network(moved), network(x), rtol=1e-6, atol=1e-6)
    series, days, valid = layout.split(x)
    valid[1:3] = False  # rows without any observation stay finite
    assert torch.isfinite(network(layout.join(series, days, valid))).all()


@pytest.mark.parametrize("dl_name", ["LTAE", "Transformer"])
def test_raw_networks_read_each_samples_days(dl_name):
    layout = TemporalLayout(N_CHANNELS, N_SLOTS, raw=True)
    X, _, _ = peak_rows(seed=3, per_class=4)
    torch.manual_seed(0)
    network = build_network(dl_name, layout.n_features, 3, n_dates=N_SLOTS, raw=True).eval()
    x = torch.from_numpy(X)
    series, days, valid = layout.split(x)
    later = layout.join(series, torch.where(valid, days + 60, days), valid)
    assert not torch.allclose(network(later), network(x))


@pytest.mark.parametrize("dl_name", ["MLPClassifier", "TempCNN"])
def test_networks_needing_aligned_dates_refuse_raw_rows(peaks, dl_name):
    with pytest.raises(ConfigError) as info:
        build_network(dl_name, (N_CHANNELS + 2) * N_SLOTS, 3, n_dates=N_SLOTS, raw=True)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{dl_name} needs every pixel on the same dates")
    (X, y, groups), _ = peaks
    model = DeepClassifier(dl_name, epochs=1, feature_names=raw_names(), device="cpu")
    with pytest.raises(ConfigError, match="use LTAE or Transformer"):
        model.fit(X, y, groups)


def test_raw_rows_must_split_into_slots():
    with pytest.raises(ConfigError, match="observation slots"):
        build_network("LTAE", 4 * N_SLOTS + 1, 3, n_dates=N_SLOTS, raw=True)
    with pytest.raises(ConfigError, match="observation slots"):
        build_network("Transformer", 2 * N_SLOTS, 3, n_dates=N_SLOTS, raw=True)  # no channel


# ----------------------------------------------------------------------------- learning


def test_transformer_learns_gap_filled_series():
    X, y, groups = grid_rows(seed=0)
    X_test, y_test, _ = grid_rows(seed=1)
    model = DeepClassifier(
        "Transformer",
        epochs=10,
        learning_rates=(3e-3,),
        batch_sizes=(32,),
        dl_parameters=SMALL["Transformer"],
        n_dates=N_DATES,
        day_of_year=GRID_DAYS,
        device="cpu",
    ).fit(X, y, groups)
    assert (model.predict(X_test) == y_test).mean() > 0.9
    assert not model.diagnosis_


@pytest.mark.parametrize("dl_name", ["LTAE", "Transformer"])
def test_raw_networks_learn_when_the_class_is_a_date(peaks, dl_name):
    train, test = peaks
    model = raw_model(dl_name).fit(*train)
    assert model.module_.layout.raw
    assert model.module_.layout.n_dates == N_SLOTS  # from the names: n_dates not given
    assert accuracy(model, test) > 0.75  # chance: 1/3


# ------------------------------------------------------------------------ standardisation


def test_raw_standardisation_is_per_channel_over_valid_observations(peaks):
    (X, _, _), _ = peaks
    layout = TemporalLayout(N_CHANNELS, N_SLOTS, raw=True)
    mean, scale = raw_mean_std(X, layout, chunk=100)  # several chunks
    assert mean.dtype == np.float32 and mean.shape == (layout.n_features,)
    valid = X[:, -N_SLOTS:] > 0.5
    for channel in range(N_CHANNELS):
        columns = slice(channel * N_SLOTS, (channel + 1) * N_SLOTS)
        observed = X[:, columns][valid].astype(np.float64)
        np.testing.assert_allclose(mean[columns], observed.mean(), rtol=1e-5)
        np.testing.assert_allclose(scale[columns], observed.std(), rtol=1e-5)
    assert (mean[layout.n_values :] == 0).all() and (scale[layout.n_values :] == 1).all()


def test_raw_standardisation_of_a_constant_or_unseen_channel():
    layout = TemporalLayout(1, 3, raw=True)
    X = np.array([[5, 5, 0, 10, 20, 0, 1, 1, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0]], np.float32)
    mean, scale = raw_mean_std(X, layout)
    np.testing.assert_array_equal(mean, [5, 5, 5, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(scale, np.ones(9))
    mean, scale = raw_mean_std(X[1:], layout)
    assert np.isfinite(mean).all() and (scale == 1).all()


def test_fitted_raw_model_leaves_days_and_flags_as_they_are(raw_transformer):
    layout = TemporalLayout(N_CHANNELS, N_SLOTS, raw=True)
    mean, scale = raw_transformer.mean_, raw_transformer.scale_
    assert mean.shape == scale.shape == (layout.n_features,)
    values = mean[: layout.n_values].reshape(N_CHANNELS, N_SLOTS)
    assert (values == values[:, :1]).all()  # one mean per channel
    assert (mean[layout.n_values :] == 0).all() and (scale[layout.n_values :] == 1).all()


def test_gap_filled_standardisation_stays_per_column():
    X, y, groups = grid_rows(seed=0)
    model = DeepClassifier(
        "Transformer", epochs=1, dl_parameters=SMALL["Transformer"], n_dates=N_DATES
    ).fit(X, y, groups)
    assert not model.module_.layout.raw
    assert len(np.unique(model.mean_)) > N_CHANNELS


# --------------------------------------------------------------------------- feature names


def test_raw_feature_order_is_checked():
    names = raw_names()
    check_feature_order(names, N_SLOTS, "LTAE")
    slot_major = [names[c * N_SLOTS + k] for k in range(N_SLOTS) for c in range(N_CHANNELS + 2)]
    days_first = names[2 * N_SLOTS : 3 * N_SLOTS] + names[: 2 * N_SLOTS] + names[3 * N_SLOTS :]
    last_a_value = names[:-1] + ["sentinel2_b0_obs015"]
    for wrong in (slot_major, days_first, last_a_value):
        with pytest.raises(InputDataError) as info:
            check_feature_order(wrong, N_SLOTS, "Transformer")
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith("Transformer reads raw-dates features as channels x 16")


def test_misordered_raw_table_is_refused_before_training(peaks):
    (X, y, groups), _ = peaks
    names = raw_names()
    swapped = names[N_SLOTS : 2 * N_SLOTS] + names[:N_SLOTS] + names[2 * N_SLOTS :]
    check_feature_order(swapped, N_SLOTS, "LTAE")  # channels swapped: still a raw layout
    days_last = names[: 2 * N_SLOTS] + names[3 * N_SLOTS :] + names[2 * N_SLOTS : 3 * N_SLOTS]
    with pytest.raises(InputDataError, match="in another order"):
        raw_model("LTAE", feature_names=days_last).fit(X, y, groups)


# ----------------------------------------------------------------------------- persistence


def test_raw_transformer_round_trips(tmp_path, peaks, raw_transformer):
    _, (X_test, _, _) = peaks
    path = tmp_path / "model.pt"
    torch.save(raw_transformer.get_state(), path)
    loaded = DeepClassifier.from_state(torch.load(path, weights_only=True))
    assert loaded.module_.layout.raw
    np.testing.assert_array_equal(
        loaded.predict_proba(X_test), raw_transformer.predict_proba(X_test)
    )
    assert math.isclose(float(loaded.scale_[-1]), 1.0)
