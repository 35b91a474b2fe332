import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

from sitsmap.errors import ConfigError, InputDataError
from sitsmap.learning.deep import history as history_module
from sitsmap.learning.deep.history import METRIC_TITLES, plot_history
from sitsmap.learning.deep.models import LTAE, MLPClassifier, TempCNN, build_network
from sitsmap.learning.deep.trainer import (
    HISTORY_COLUMNS,
    DeepClassifier,
    column_mean_std,
    confusion_metrics,
    monitoring_split,
    select_device,
)

CODES = (5, 13, 23)
N_BANDS, N_DATES = 2, 13
DAYS = list(range(5, 5 + 10 * N_DATES, 10))
SMALL = {
    "MLPClassifier": {"hidden": (32, 16)},
    "TempCNN": {"n_filters": 8, "hidden": 16, "dropout": 0.1},
    "LTAE": {"d_model": 16, "n_head": 4, "d_k": 4, "mlp": (16,), "decoder": (16,), "dropout": 0.1},
}


def toy_samples(seed=0, polygons=10, pixels=30, noise=0.5):
    """Noisy class-specific curves, band-major: 3 classes x 300 samples x 26 features."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, N_DATES)
    X, y, groups = [], [], []
    for k, code in enumerate(CODES):
        curve = np.stack([np.sin(2 * np.pi * (t + k / 3)), np.cos(np.pi * t * (k + 1))])
        for p in range(polygons):
            shift = rng.normal(0.0, 0.2, curve.shape)
            pixel = curve + shift + rng.normal(0.0, noise, (pixels, *curve.shape))
            X.append(pixel.reshape(pixels, -1))
            y += [code] * pixels
            groups += [k * 1000 + p] * pixels
    return np.concatenate(X).astype(np.float32), np.array(y), np.array(groups)


def deep(dl_name="MLPClassifier", **kwargs):
    params = {
        "epochs": 8,
        "learning_rates": (1e-2,),
        "batch_sizes": (64,),
        "dl_parameters": SMALL[dl_name],
        "n_dates": N_DATES,
        "day_of_year": DAYS,
        "device": "cpu",
    }
    return DeepClassifier(dl_name, **{**params, **kwargs})


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks: one thread is faster and immune to other processes' load."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def toy():
    return toy_samples(seed=0), toy_samples(seed=1)


@pytest.fixture(scope="module")
def grid_model(toy):
    (X, y, groups), _ = toy
    clf = deep(epochs=5, learning_rates=(1e-3, 1e-2), batch_sizes=(32, 128), seed=3)
    return clf.fit(X, y, groups)


# ------------------------------------------------------------------ split and metrics


def test_monitoring_split_keeps_polygons_whole():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), rng.integers(1, 30, 40))
    polygon_class = np.array([0] * 20 + [1] * 10 + [2] * 9 + [3])  # class 3: one polygon
    y = polygon_class[groups]
    learn, monitor = monitoring_split(y, groups, 0.2, seed=0)
    assert np.array_equal(np.sort(np.concatenate([learn, monitor])), np.arange(len(y)))
    assert not set(groups[learn]) & set(groups[monitor])
    monitored = {c: len(set(groups[monitor][y[monitor] == c])) for c in range(4)}
    assert monitored == {0: 4, 1: 2, 2: 2, 3: 0}
    assert set(y[learn]) == {0, 1, 2, 3}
    again, _ = monitoring_split(y, groups, 0.2, seed=0)
    other, _ = monitoring_split(y, groups, 0.2, seed=1)
    assert np.array_equal(learn, again)
    assert not np.array_equal(learn, other)


def test_monitoring_split_without_groups_splits_samples():
    y = np.repeat([0, 1], 50)
    learn, monitor = monitoring_split(y, None, 0.2, seed=0)
    assert len(monitor) == 20
    assert np.bincount(y[monitor]).tolist() == [10, 10]
    with pytest.raises(InputDataError, match="polygon ids"):
        monitoring_split(y, np.arange(3), 0.2, seed=0)


def test_confusion_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 300)  # class 4 never true, class 5 absent everywhere
    predicted = np.where(rng.random(300) < 0.7, truth, rng.integers(0, 5, 300))
    confusion = torch.bincount(torch.from_numpy(truth * 6 + predicted), minlength=36).reshape(6, 6)
    oa, kappa, fscore = confusion_metrics(confusion).tolist()
    assert oa == pytest.approx(accuracy_score(truth, predicted))
    assert kappa == pytest.approx(cohen_kappa_score(truth, predicted))
    assert fscore == pytest.approx(f1_score(truth, predicted, average="macro"))


def test_column_mean_std_matches_numpy():
    X = np.random.default_rng(0).normal(3.0, 2.0, (1000, 5)).astype(np.float32)
    X[:, 4] = 7.0
    mean, std = column_mean_std(X, chunk=128)
    np.testing.assert_allclose(mean, X.mean(axis=0, dtype=np.float64), rtol=1e-6)
    np.testing.assert_allclose(std[:4], X[:, :4].std(axis=0, dtype=np.float64), rtol=1e-5)
    assert std[4] == 1.0  # constant column: not scaled


# --------------------------------------------------------------------------- networks


def test_network_shapes():
    x = torch.randn(7, N_BANDS * N_DATES)
    networks = [
        MLPClassifier(N_BANDS * N_DATES, 4),
        TempCNN(N_BANDS, N_DATES, 4, n_filters=8, hidden=16),
        LTAE(N_BANDS, N_DATES, 4, day_of_year=DAYS, d_model=16, n_head=4, d_k=4),
        build_network("LTAE", N_BANDS * N_DATES, 4, day_of_year=DAYS),
    ]
    for network in networks:
        assert network.eval()(x).shape == (7, 4)
    reference = MLPClassifier(481, 23)
    widths = [
        layer.out_features for layer in reference.layers if isinstance(layer, torch.nn.Linear)
    ]
    assert widths == [240, 69, 69, 23]


def test_tempcnn_reads_band_major_series():
    network = TempCNN(N_BANDS, N_DATES, 3, n_filters=4, hidden=8).eval()
    x = torch.randn(2, N_BANDS * N_DATES)
    series = x.reshape(2, N_BANDS, N_DATES)
    expected = network.classifier(network.convolutions(series))
    torch.testing.assert_close(network(x), expected)


def test_build_network_rejects_bad_settings():
    with pytest.raises(ConfigError, match="unknown dl_parameters"):
        build_network("MLPClassifier", 26, 3, dl_parameters={"hiden": (8,)})
    with pytest.raises(ConfigError, match="dividing"):
        build_network("TempCNN", 25, 3, n_dates=N_DATES)
    with pytest.raises(ConfigError, match="multiple of n_head"):
        build_network("LTAE", 26, 3, n_dates=N_DATES, dl_parameters={"d_model": 10, "n_head": 4})
    with pytest.raises(ConfigError, match="unknown network"):
        build_network("ResNet", 26, 3)


# ---------------------------------------------------------------------------- trainer


@pytest.mark.parametrize("dl_name", ["MLPClassifier", "TempCNN", "LTAE"])
def test_networks_learn_toy_problem(toy, dl_name):
    (X, y, groups), (X_test, y_test, _) = toy
    clf = deep(dl_name).fit(X, y, groups)
    np.testing.assert_array_equal(clf.classes_, CODES)
    proba = clf.predict_proba(X_test)
    assert proba.dtype == np.float32
    assert proba.shape == (len(X_test), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    predicted = clf.predict(X_test)
    assert set(np.unique(predicted)) <= set(CODES)
    assert (predicted == y_test).mean() > 0.9
    assert not clf.module_.training
    assert next(clf.module_.parameters()).device.type == "cpu"


def test_history_has_one_row_per_epoch_and_combination(grid_model):
    history = grid_model.history_
    assert list(history.columns) == list(HISTORY_COLUMNS)
    assert len(history) == 5 * 2 * 2
    combos = history.groupby(["learning_rate", "batch_size"])
    assert combos.ngroups == 4
    for _, rows in combos:
        assert rows["epoch"].tolist() == [1, 2, 3, 4, 5]
        assert rows["train_loss"].iloc[-1] < rows["train_loss"].iloc[0]
    assert (
        history[["val_oa", "val_kappa", "val_fscore"]]
        .apply(lambda c: c.between(-1, 1))
        .all(axis=None)
    )
    assert (history["seconds"] > 0).all()


def test_kept_epoch_is_best_by_criterion(toy, grid_model):
    history = grid_model.history_
    best = history.loc[history["val_fscore"].idxmax()]
    assert grid_model.best_params_ == {
        "learning_rate": best["learning_rate"],
        "batch_size": best["batch_size"],
        "epoch": best["epoch"],
    }
    # the kept weights are that epoch's: they reproduce its monitoring accuracy
    (X, y, groups), _ = toy
    _, monitor = monitoring_split(np.searchsorted(CODES, y), groups, 0.2, seed=3)
    accuracy = (grid_model.predict(X[monitor]) == y[monitor]).mean()
    assert accuracy == pytest.approx(best["val_oa"])


def test_loss_criterion_keeps_minimum(toy):
    (X, y, groups), _ = toy
    clf = deep(epochs=4, learning_rates=(1e-3,), selection_criterion="loss").fit(X, y, groups)
    assert clf.best_params_["epoch"] == clf.history_["val_loss"].idxmin() + 1


def test_same_seed_same_model_other_seed_other_model(toy):
    (X, y, groups), (X_test, _, _) = toy
    runs = [deep("TempCNN", epochs=2, seed=s).fit(X, y, groups) for s in (0, 0, 1)]
    probas = [run.predict_proba(X_test) for run in runs]
    losses = [run.history_.drop(columns="seconds") for run in runs]
    np.testing.assert_array_equal(probas[0], probas[1])
    pd.testing.assert_frame_equal(losses[0], losses[1])
    assert not np.array_equal(probas[0], probas[2])
    assert not losses[0]["train_loss"].equals(losses[2]["train_loss"])


def test_fit_leaves_global_rng_alone(toy):
    (X, y, groups), _ = toy
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    deep(epochs=1).fit(X[:60], y[:60], groups[:60])
    torch.testing.assert_close(torch.rand(3), expected)


def test_early_stop_after_patience(toy):
    (X, y, groups), _ = toy
    clf = deep(epochs=60, enable_early_stop=True, early_stop_patience=2, selection_criterion="oa")
    clf.fit(X, y, groups)
    assert len(clf.history_) == clf.best_params_["epoch"] + 2 < 60


def test_weighted_labels_use_inverse_frequency(toy):
    (X, y, groups), _ = toy
    keep = (y != 13) | (groups % 1000 < 3)  # class 13: 3 polygons of 30 pixels
    clf = deep(epochs=6, weighted_labels=True).fit(X[keep], y[keep], groups[keep])
    counts = torch.tensor([240.0, 30.0, 240.0])  # learning part after the 80/20 split
    weights = clf._class_weights(torch.repeat_interleave(torch.arange(3), counts.long()), "cpu")
    torch.testing.assert_close(weights, counts.sum() / (3 * counts))
    assert (clf.predict(X[keep]) == y[keep]).mean() > 0.9


def test_dataloader_workers_path(toy):
    (X, y, groups), _ = toy
    clf = deep(epochs=2, num_workers=1).fit(X, y, groups)
    assert len(clf.history_) == 2
    assert clf.history_["train_loss"].notna().all()


def test_predict_checks_feature_count(toy):
    (X, y, groups), _ = toy
    clf = deep(epochs=1).fit(X, y, groups)
    with pytest.raises(InputDataError, match="expects 26 features"):
        clf.predict_proba(X[:, :10])


def test_device_selection(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device() == torch.device("cuda")
    assert select_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device() == torch.device("cpu")


def test_fit_trains_on_selected_device(toy, monkeypatch):
    (X, y, groups), _ = toy
    seen = []
    real = DeepClassifier._samples

    def spy(self, features, labels, device):
        seen.append(device)
        return real(self, features, labels, torch.device("cpu"))

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(DeepClassifier, "_samples", spy)
    monkeypatch.setattr(DeepClassifier, "_train_combination", _skip_training)
    deep(epochs=1, device=None).fit(X, y, groups)
    assert seen == [torch.device("cuda")] * 2


def _skip_training(self, learning, monitoring, learning_rate, batch_size, weights, device):
    from sitsmap.learning.deep.trainer import _Run

    state = self._network().state_dict()
    return _Run([], 0.0, 1, state)


# ---------------------------------------------------------------------------- figures


def test_plot_history_draws_every_combination(grid_model):
    loss_figure, metrics_figure = plot_history(grid_model.history_)
    (loss_axes,) = loss_figure.axes
    curves = [line for line in loss_axes.lines if not line.get_label().startswith("_")]
    assert len(curves) == 2 * 4  # learning and monitoring per combination
    assert len(metrics_figure.axes) == len(METRIC_TITLES)
    assert [a.get_title() for a in metrics_figure.axes] == list(METRIC_TITLES.values())
    best = grid_model.best_params_
    for axes in metrics_figure.axes:
        labels = [line.get_label() for line in axes.lines]
        assert sum(not label.startswith("_") for label in labels) == 4
        kept = next(line for line in axes.lines if line.get_label() == "_kept")
        assert kept.get_xdata()[0] == best["epoch"]
    with pytest.raises(ValueError, match="lacks columns"):
        plot_history(grid_model.history_.drop(columns="val_kappa"))
    assert history_module.CRITERIA["loss"] == "val_loss"
