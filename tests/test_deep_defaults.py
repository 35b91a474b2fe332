"""Automatic training settings, the not-learning diagnosis, non-finite features, feature order."""

import logging

import numpy as np
import pandas as pd
import pytest
import torch

from sitsmap.config.schema import DeepLearningParameters, HyperparametersSolver
from sitsmap.errors import InputDataError
from sitsmap.learning.deep.history import HISTORY_COLUMNS, not_learning, plot_history
from sitsmap.learning.deep.trainer import (
    DeepClassifier,
    _likely_cause,
    _Plan,
    auto_settings,
    check_feature_order,
    finite_column_stats,
)
from sitsmap.learning.persistence import ModelMetadata, load_model, save_model

CODES = (11, 12, 21, 31, 41, 51)
N_BANDS, N_DATES = 4, 12
DAYS = list(range(10, 10 + 30 * N_DATES, 30))
STAMPS = [f"2018{month:02d}15" for month in range(1, N_DATES + 1)]
BAND_MAJOR = [f"sentinel2_b{band}_{stamp}" for band in range(N_BANDS) for stamp in STAMPS]
DATE_MAJOR = [f"sentinel2_b{band}_{stamp}" for stamp in STAMPS for band in range(N_BANDS)]
SMALL_TEMPCNN = {"n_filters": 16, "hidden": 32}
REFERENCE = {"learning_rates": (1e-5,), "batch_sizes": (4096,), "epochs": 30}
"""The reference scenario's settings (meant for 1.78 M samples), 30 epochs to stay quick."""


def synthetic_series(seed=0, polygons=10, pixels=25, noise=1.2, shift_sd=0.4):
    """6 classes × ``polygons`` × ``pixels`` samples: distinct seasonal profiles, band-major.

    Each class has one sinusoid per band; each polygon shifts it, each pixel adds
    noise. A random forest of 100 trees reaches an OA of about 0.78 on it.
    """
    t = np.linspace(0.0, 1.0, N_DATES)
    base = np.random.default_rng(1234)  # the classes' profiles: the same for every seed
    amplitude = base.uniform(0.3, 1.0, (len(CODES), N_BANDS))
    phase = base.uniform(0.0, 1.0, (len(CODES), N_BANDS))
    offset = base.uniform(-0.5, 0.5, (len(CODES), N_BANDS))
    rng = np.random.default_rng(seed)
    X, y, groups = [], [], []
    for k, code in enumerate(CODES):
        curve = amplitude[k, :, None] * np.sin(2 * np.pi * (t[None] + phase[k, :, None]))
        curve = curve + offset[k, :, None]
        for p in range(polygons):
            shift = rng.normal(0.0, shift_sd, (N_BANDS, 1))
            pixel = curve + shift + rng.normal(0.0, noise, (pixels, N_BANDS, N_DATES))
            X.append(pixel.reshape(pixels, -1))
            y += [code] * pixels
            groups += [k * 1000 + p] * pixels
    X = np.concatenate(X) * 0.1 + 0.2  # reflectance-like scale
    return X.astype(np.float32), np.array(y), np.array(groups)


def deep(dl_name="MLPClassifier", **kwargs):
    """An unfitted classifier for the synthetic series (automatic settings unless given)."""
    params = {"n_dates": N_DATES, "day_of_year": DAYS, "device": "cpu"}
    if dl_name == "TempCNN":
        params["dl_parameters"] = SMALL_TEMPCNN
    return DeepClassifier(dl_name, **{**params, **kwargs})


def quick(**kwargs):
    """A few epochs at a high constant rate: for tests that need a fitted model, not a good one."""
    return deep(**{"epochs": 3, "learning_rates": (1e-2,), "batch_sizes": (64,), **kwargs})


def accuracy(model, data):
    X, y, _ = data
    return float((model.predict(X) == y).mean())


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small networks: one thread is faster and immune to other processes' load."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def train():
    return synthetic_series(seed=0)


@pytest.fixture(scope="module")
def test():
    return synthetic_series(seed=1)


@pytest.fixture(scope="module")
def auto_mlp(train):
    return deep().fit(*train)


# ------------------------------------------------------------------ automatic settings


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (1_000, {"batch_size": 32, "learning_rate": 1e-3, "epochs": 300}),
        (100_000, {"batch_size": 2048, "learning_rate": 1e-3 * 8**0.5, "epochs": 205}),
        (2_000_000, {"batch_size": 4096, "learning_rate": 3e-3, "epochs": 30}),
    ],
)
def test_auto_settings_follow_the_rule(n, expected):
    assert auto_settings(n) == pytest.approx(expected)


def test_auto_settings_scale_smoothly():
    sizes = [auto_settings(n) for n in np.geomspace(500, 5_000_000, 40).astype(int)]
    batches = [s["batch_size"] for s in sizes]
    assert batches == sorted(batches)
    assert all(b & (b - 1) == 0 and 32 <= b <= 4096 for b in batches)  # powers of two
    assert all(1e-3 <= s["learning_rate"] <= 3e-3 and 30 <= s["epochs"] <= 300 for s in sizes)


def test_config_leaves_settings_automatic_by_default():
    solver = HyperparametersSolver()
    assert solver.learning_rate is None and solver.batch_size is None
    dl = DeepLearningParameters()
    assert dl.epochs is None and dl.enable_early_stop is None
    assert dl.weight_decay is None and dl.lr_schedule is None and dl.impute == "refuse"
    model = DeepClassifier.from_settings(dl, seed=0, feature_names=BAND_MAJOR)
    assert model.learning_rates is None and model.batch_sizes is None and model.epochs is None
    assert model.feature_names == BAND_MAJOR
    given = DeepLearningParameters(
        epochs=60, hyperparameters_solver={"learning_rate": 0.001, "batch_size": [512]}
    )
    model = DeepClassifier.from_settings(given, seed=0)
    assert (model.learning_rates, model.batch_sizes, model.epochs) == ((0.001,), (512,), 60)


def test_auto_settings_are_resolved_and_recorded(auto_mlp):
    settings = auto_mlp.settings_
    assert settings["batch_size"] == 32 and settings["learning_rate"] == 1e-3  # n = 1 200
    assert settings["weight_decay"] == 1e-4 and settings["lr_schedule"] == "onecycle"
    assert settings["early_stop"] and settings["epochs"] == 264
    assert len(auto_mlp.history_) < 264  # stopped early
    assert set(settings["automatic"]) >= {"learning_rate", "batch_size", "epochs"}


@pytest.mark.parametrize(("dl_name", "auto_oa"), [("MLPClassifier", 0.8), ("TempCNN", 0.8)])
def test_auto_settings_learn_where_the_reference_settings_do_not(
    train, test, auto_mlp, dl_name, auto_oa, caplog
):
    with caplog.at_level(logging.WARNING, logger="sitsmap.learning.deep.trainer"):
        auto = auto_mlp if dl_name == "MLPClassifier" else deep(dl_name).fit(*train)
    assert accuracy(auto, test) >= auto_oa
    assert auto.diagnosis_ == "" and caplog.records == []
    with caplog.at_level(logging.WARNING, logger="sitsmap.learning.deep.trainer"):
        reference = deep(dl_name, **REFERENCE).fit(*train)
    assert accuracy(reference, test) < 0.5
    # the not-learning warning names the settings and the way out
    (record,) = caplog.records
    assert record.getMessage() == reference.diagnosis_
    assert f"{dl_name} is not learning" in reference.diagnosis_
    assert "learning rate 1e-05 with 1 200 learning samples and batch 4096" in (
        reference.diagnosis_
    )
    assert "too low — try 1e-3, or leave learning_rate unset" in reference.diagnosis_
    assert (reference.history_["diagnosis"] == reference.diagnosis_).all()
    assert (auto.history_["diagnosis"] == "").all()


# ------------------------------------------------------------ explicit settings, as before

BEFORE = {
    # Recorded with the trainer as it was before automatic settings (Adam, constant rate):
    # train_loss, val_loss, val_oa, val_fscore per epoch, and the column sums of
    # predict_proba on the test series. Given settings must train exactly as then.
    "reference": (
        {
            "dl_name": "MLPClassifier",
            "epochs": 4,
            "learning_rates": (1e-5,),
            "batch_sizes": (4096,),
        },
        [
            [1.79731285572052, 1.7982086181640624, 0.16666666666666666, 0.10489322789402757],
            [1.797186255455017, 1.7981024169921875, 0.16666666666666666, 0.10489322789402757],
            [1.7970597743988037, 1.7979964192708333, 0.16666666666666666, 0.10489322789402757],
            [1.7969331741333008, 1.7978902180989584, 0.16666666666666666, 0.10489322789402757],
        ],
        [261.21218137443066, 238.37687808275223, 262.00876285135746]
        + [263.64587177336216, 247.77301567792892, 226.98329108953476],
    ),
    "demo": (
        {"dl_name": "MLPClassifier", "epochs": 4, "learning_rates": (1e-3,), "batch_sizes": (512,)},
        [
            [1.7880147298177083, 1.7686126708984375, 0.36, 0.2705733808674985],
            [1.7483514149983723, 1.7313690185546875, 0.58, 0.5301033728446366],
            [1.7004542350769043, 1.6773658243815104, 0.56, 0.48037594786373433],
            [1.6264063517252605, 1.6008810424804687, 0.5266666666666666, 0.4259280647333701],
        ],
        [250.08215275406837, 240.92678900063038, 258.0115831941366]
        + [261.51791974902153, 252.01749455928802, 237.44405998289585],
    ),
    "tempcnn": (
        {
            "dl_name": "TempCNN",
            "epochs": 2,
            "learning_rates": (1e-3, 1e-2),
            "batch_sizes": (256,),
            "weighted_labels": True,
            "dl_parameters": {"n_filters": 8, "hidden": 16},
        },
        [
            [1.8909116744995118, 1.8070766194661458, 0.16666666666666666, 0.047619047619047616],
            [1.8324668884277344, 1.801180419921875, 0.16666666666666666, 0.047619047619047616],
            [1.7345497131347656, 1.7510209147135416, 0.24333333333333335, 0.12629569012547737],
            [1.456838607788086, 1.4758394368489582, 0.48333333333333334, 0.402169460346362],
        ],
        [262.8505561463535, 216.19647800177336, 219.4442640542984]
        + [207.83884212374687, 280.1010472625494, 313.5688153989613],
    ),
    "ltae": (
        {
            "dl_name": "LTAE",
            "epochs": 2,
            "learning_rates": (1e-3,),
            "batch_sizes": (256,),
            "enable_early_stop": True,
            "early_stop_patience": 1,
            # the input norm was L-TAE's default when this was recorded (see models.LTAE)
            "dl_parameters": {
                "d_model": 16,
                "n_head": 4,
                "d_k": 4,
                "mlp": (16,),
                "decoder": (16,),
                "input_norm": True,
            },
        },
        [
            [1.8418581008911132, 1.7834619140625, 0.23, 0.17717161705962758],
            [1.8117122650146484, 1.77994384765625, 0.20333333333333334, 0.17664446493462782],
        ],
        [310.08891436457634, 256.01351571828127, 258.03217156231403]
        + [195.31796687841415, 249.72118835151196, 230.8262423351407],
    ),
}


@pytest.mark.parametrize("case", sorted(BEFORE))
def test_given_settings_train_exactly_as_before(train, test, case):
    params, history, proba_sums = BEFORE[case]
    model = DeepClassifier(**params, seed=3, n_dates=N_DATES, day_of_year=DAYS, device="cpu")
    model.fit(*train)
    columns = ["train_loss", "val_loss", "val_oa", "val_fscore"]
    # Bit-identical on the machine that recorded them; the tolerance only absorbs another
    # CPU's BLAS kernels (an optimiser or schedule change moves these by far more).
    np.testing.assert_allclose(model.history_[columns].to_numpy(), history, rtol=1e-6)
    sums = model.predict_proba(test[0]).astype(np.float64).sum(axis=0)
    np.testing.assert_allclose(sums, proba_sums, rtol=1e-5)
    assert model.settings_["weight_decay"] == 0.0 and model.settings_["lr_schedule"] == "constant"
    assert model.settings_["early_stop"] == (case == "ltae")
    assert model.settings_["automatic"] == []


def test_schedules_and_weight_decay_can_be_given(train):
    X, y, groups = train
    constant = quick().fit(X, y, groups)
    for changed in ({"lr_schedule": "cosine"}, {"lr_schedule": "onecycle"}, {"weight_decay": 0.01}):
        model = quick(**changed).fit(X, y, groups)
        assert model.settings_[next(iter(changed))] == next(iter(changed.values()))
        assert not np.allclose(model.history_["train_loss"], constant.history_["train_loss"])
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'linear'"):
        quick(lr_schedule="linear").fit(X, y, groups)


# ------------------------------------------------------------------ not learning


def test_not_learning_reads_the_history():
    rows = pd.DataFrame(
        {
            "train_loss": np.linspace(1.8, 0.4, 12),
            "val_loss": np.linspace(1.8, 0.5, 12),
            "val_oa": np.linspace(0.3, 0.8, 12),
        }
    )
    assert not_learning(rows, chance=1 / 6, constant_loss=1.79) == ""
    assert not_learning(rows.iloc[:0], chance=1 / 6, constant_loss=1.79) == ""
    stalled = rows.assign(val_loss=np.r_[1.5, np.full(11, 1.6)])
    assert "never went below its first epoch's (1.500)" in not_learning(stalled, 1 / 6, 1.79)
    assert "first epoch" not in not_learning(stalled.iloc[:9], 1 / 6, 1.79)  # too early
    flat = rows.assign(val_loss=np.linspace(1.8, 1.75, 12))
    assert "no better than the 1.790 of predicting" in not_learning(flat, 1 / 6, 1.79)
    worse = rows.assign(val_loss=np.linspace(2.6, 2.5, 12))  # far above a constant's loss
    assert "stays at 2.500, no better than the 1.790 of predicting" in not_learning(
        worse, 1 / 6, 1.79
    )
    chance = rows.assign(val_oa=0.19)
    assert "at chance (0.19, chance 0.17)" in not_learning(chance, 1 / 6, 1.79)
    dominated = rows.assign(val_oa=np.linspace(0.85, 0.87, 12))  # one class: 85 %
    assert "at chance (0.87, chance 0.85)" in not_learning(dominated, 0.85, 0.6)
    assert not_learning(dominated.assign(val_oa=0.9), 0.85, 0.6) == ""
    # below one class's share, but agreeing beyond chance: a small, lopsided monitoring split
    lopsided = dominated.assign(val_oa=0.7)
    assert "at chance (0.70, chance 0.85)" in not_learning(lopsided, 0.85, 0.6)
    assert not_learning(lopsided.assign(val_kappa=np.linspace(0.1, 0.45, 12)), 0.85, 0.6) == ""
    assert "at chance" in not_learning(lopsided.assign(val_kappa=0.05), 0.85, 0.6)
    diverged = rows.assign(train_loss=np.r_[1.8, np.full(11, np.nan)])
    assert not_learning(diverged, 1 / 6, 1.79) == "the learning loss diverged (NaN or infinite)"
    assert "diverged" in not_learning(diverged.assign(train_loss=np.inf), 1 / 6, 1.79)


def test_too_high_a_learning_rate_is_named(train):
    model = quick(learning_rates=(1e8,)).fit(*train)
    assert model.diagnosis_.startswith("MLPClassifier is not learning: the learning loss diverged")
    assert model.diagnosis_.endswith(
        "likely cause: learning rate 1e+08 with 1 200 learning samples and batch 64 "
        "(57 optimiser steps in all): too high — try 1e-3, or leave learning_rate unset"
    )


def test_history_figures_accept_histories_without_diagnosis(auto_mlp):
    assert HISTORY_COLUMNS[-1] == "diagnosis"
    plot_history(auto_mlp.history_.drop(columns=["diagnosis", "seconds"]))


# ------------------------------------------------------------------ non-finite features


def with_holes(X):
    X = X.copy()
    X[[3, 40, 41], 5] = np.nan
    X[7, 17] = np.inf
    return X


def test_non_finite_features_are_refused_with_counts_and_columns(train):
    X, y, groups = train
    with pytest.raises(InputDataError) as info:
        quick().fit(with_holes(X), y, groups)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("4 non-finite feature values (NaN or ±inf) in 2 column(s): ")
    assert "column 5 (3), column 17 (1)" in message
    assert "impute to mean or zero" in message
    with pytest.raises(InputDataError, match=r"sentinel2_b0_20180615 \(3\)"):
        quick(feature_names=BAND_MAJOR).fit(with_holes(X), y, groups)


def test_finite_column_stats():
    X = np.array([[1.0, np.nan], [3.0, np.inf], [np.nan, -np.inf]], dtype=np.float32)
    counts, means = finite_column_stats(X, chunk=2)
    assert counts.tolist() == [1, 3]
    assert means.tolist() == [2.0, 0.0]


@pytest.mark.parametrize("impute", ["mean", "zero"])
def test_non_finite_features_imputed_in_fit_and_predict(train, test, impute):
    X, y, groups = train
    holes = with_holes(X)
    model = quick(impute=impute).fit(holes, y, groups)
    expected = np.nanmean(np.where(np.isfinite(holes), holes, np.nan), axis=0)
    if impute == "zero":
        expected = np.zeros_like(expected)
    np.testing.assert_allclose(model.impute_values_, expected, rtol=1e-5, atol=1e-7)
    assert np.isfinite(model.history_["train_loss"]).all()
    assert np.isfinite(model.mean_).all() and np.isfinite(model.scale_).all()
    X_test = with_holes(test[0])
    proba = model.predict_proba(X_test)
    assert np.isfinite(proba).all()
    filled = np.where(np.isfinite(X_test), X_test, model.impute_values_)
    np.testing.assert_array_equal(proba, model.predict_proba(filled))


# ------------------------------------------------------------------ feature order


@pytest.mark.parametrize("dl_name", ["TempCNN", "LTAE"])
def test_date_by_date_feature_names_are_refused(train, dl_name):
    X, y, groups = train
    with pytest.raises(InputDataError) as info:
        quick(dl_name=dl_name, feature_names=DATE_MAJOR).fit(X, y, groups)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{dl_name} reshapes the features into (bands, 12 dates)")
    assert "come date by date (sentinel2_b0_20180115, sentinel2_b1_20180115" in message


def test_feature_order_check():
    check_feature_order(BAND_MAJOR, N_DATES, "TempCNN")
    check_feature_order([f"feature{i}" for i in range(48)], N_DATES, "TempCNN")  # undated
    shuffled = BAND_MAJOR[12:24] + BAND_MAJOR[:12] + BAND_MAJOR[24:]  # bands swapped: fine
    check_feature_order(shuffled, N_DATES, "LTAE")
    dates_swapped = BAND_MAJOR[1:2] + BAND_MAJOR[:1] + BAND_MAJOR[2:]
    with pytest.raises(InputDataError, match="come in another order"):
        check_feature_order(dates_swapped, N_DATES, "LTAE")


def test_feature_names_checked_against_the_features(train):
    X, y, groups = train
    quick(dl_name="MLPClassifier", feature_names=DATE_MAJOR, epochs=1).fit(X, y, groups)
    quick(dl_name="TempCNN", feature_names=BAND_MAJOR, epochs=1).fit(X, y, groups)
    with pytest.raises(InputDataError, match="47 feature names given for 48 features"):
        quick(feature_names=BAND_MAJOR[:-1]).fit(X, y, groups)


# ------------------------------------------------------------------ persistence


def metadata():
    return ModelMetadata(
        classifier="MLPClassifier",
        classes=list(CODES),
        feature_names=BAND_MAJOR,
        dates=STAMPS,
        bands=[f"B{band}" for band in range(N_BANDS)],
        seed=0,
    )


def test_auto_model_round_trips(tmp_path, train, test, auto_mlp):
    path = tmp_path / "model.bin"
    save_model(path, auto_mlp, metadata())
    loaded, _ = load_model(path)
    np.testing.assert_array_equal(loaded.predict_proba(test[0]), auto_mlp.predict_proba(test[0]))
    assert loaded.settings_ == auto_mlp.settings_
    assert loaded.diagnosis_ == auto_mlp.diagnosis_ == ""
    assert loaded.impute_values_ is None
    assert loaded.learning_rates is None and loaded.epochs is None
    pd.testing.assert_frame_equal(loaded.history_, auto_mlp.history_)


def test_imputing_model_round_trips(tmp_path, train, test):
    model = quick(impute="mean", feature_names=BAND_MAJOR).fit(*train)
    path = tmp_path / "model.bin"
    save_model(path, model, metadata())
    loaded, _ = load_model(path)
    X_test = with_holes(test[0])
    np.testing.assert_array_equal(loaded.impute_values_, model.impute_values_)
    np.testing.assert_array_equal(loaded.predict_proba(X_test), model.predict_proba(X_test))
    assert loaded.feature_names == BAND_MAJOR


def test_state_saved_before_automatic_settings_still_loads(train, test):
    model = quick().fit(*train)
    state = model.get_state()
    for key in ("impute_values", "settings", "diagnosis"):
        del state[key]
    for key in ("weight_decay", "lr_schedule", "impute", "feature_names"):
        del state["params"][key]
    state["params"]["enable_early_stop"] = False
    del state["history"]["diagnosis"]
    loaded = DeepClassifier.from_state(state)
    np.testing.assert_array_equal(loaded.predict_proba(test[0]), model.predict_proba(test[0]))
    assert loaded.impute_values_ is None and loaded.settings_ == {} and loaded.diagnosis_ == ""
    assert (loaded.history_["diagnosis"] == "").all()


@pytest.mark.parametrize(
    ("rate", "advice"),
    [
        (1e-5, "too low — try 1e-3, or leave learning_rate unset"),
        # a usual rate with too few steps: the way out is more steps, not the same rate
        (1e-3, "too few steps — lower batch_size or raise epochs, or leave them unset"),
    ],
)
def test_not_learning_advice_fits_the_given_rate(rate, advice):
    plan = _Plan(rate, 4096, 4, 0.0, "constant", False, 10, automatic=())
    cause = _likely_cause(plan, 79_900, 80, "monitoring accuracy stays at chance")
    assert cause.endswith(advice)
    assert f"learning rate {rate:g} with 79 900 learning samples and batch 4096" in cause
