"""Regressors (arg_train.task: regression): fit, uncertainty, refusals, saving and loading."""

import logging
import zipfile

import numpy as np
import pytest
import skops.io
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import r2_score
from sklearn.tree import DecisionTreeClassifier

from sitsmap.config.schema import ArgTrain
from sitsmap.errors import ConfigError, InputDataError
from sitsmap.learning import regressors
from sitsmap.learning.compiled import artefact_path, with_compiled
from sitsmap.learning.persistence import ModelMetadata, load_model, save_model, use_threads
from sitsmap.learning.regressors import (
    LightGBMRegression,
    RandomForestRegression,
    RegressorProtocol,
    make_regressor,
)
from tests.test_safe_models import rewrite

NOISE = 0.3
FOREST = {"classifier.rf.nbtrees": 30}


def smooth_samples(n, seed, noise=NOISE):
    """y = 2 sin(3 x0) + x1² + x2 / 2 + N(0, noise²), six uniform features (three unused)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, (n, 6)).astype(np.float32)
    y = 2.0 * np.sin(3.0 * X[:, 0]) + X[:, 1] ** 2 + 0.5 * X[:, 2] + rng.normal(0.0, noise, n)
    return X, y


@pytest.fixture(scope="module")
def learning():
    return smooth_samples(600, seed=0)


@pytest.fixture(scope="module")
def held_out():
    return smooth_samples(400, seed=1)


def settings(**values):
    return ArgTrain(**{"task": "regression", "otb_classifier_options": FOREST, **values})


@pytest.fixture(scope="module")
def forest(learning):
    return make_regressor(settings(), seed=0).fit(*learning)


@pytest.fixture(scope="module")
def boosted(learning):
    return make_regressor(settings(classifier="lightgbm", quantile_interval=(0.1, 0.9)), 0).fit(
        *learning
    )


# --- the factory -------------------------------------------------------------------------


def test_make_regressor_reads_arg_train():
    rf = make_regressor(settings(otb_classifier_options={"classifier.rf.max": 9}), seed=7, n_jobs=2)
    assert isinstance(rf, RandomForestRegression) and rf.task == "regression"
    assert (rf.max_depth, rf.random_state, rf.n_jobs) == (9, 7, 2)
    given = {"num_leaves": 7, "random_state": 99}
    lgb = make_regressor(
        settings(classifier="lightgbm", lightgbm_parameters=given, regression_bins=4), seed=3
    )
    assert isinstance(lgb, LightGBMRegression)
    params = lgb.get_params()
    assert (params["num_leaves"], params["random_state"], params["verbose"]) == (7, 3, 0)
    assert lgb.size_from_data and lgb.regression_bins == 4 and lgb.quantile_interval is None
    fixed = make_regressor(
        settings(classifier="lightgbm", lightgbm_parameters={"min_data_in_leaf": 5}), seed=0
    )
    assert not fixed.size_from_data


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"classifier": "svm"}, "arg_train.classifier svm does not do regression"),
        ({"sample_augmentation": "smote"}, "arg_train.sample_augmentation smote"),
    ],
)
def test_svm_and_smote_are_refused_in_one_line(values, fragment):
    with pytest.raises(ConfigError) as caught:
        make_regressor(settings(**values), seed=0)
    assert isinstance(caught.value, ValueError)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


# --- fitting and predicting --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["forest", "boosted"])
def test_regressors_learn_a_smooth_function(request, held_out, kind):
    model = request.getfixturevalue(kind)
    X, y = held_out
    predicted = model.predict(X)
    assert predicted.dtype == np.float32 and predicted.shape == (len(X),)
    assert isinstance(model, RegressorProtocol)
    # the noise (variance 0.09) leaves R² ≤ 0.96 at best; a model that learnt only the
    # linear term would score 0.04: 0.85 means the sine and the square were learnt
    # (measured: boosting 0.95; the forest 0.90, each split drawing sqrt(n) features)
    assert r2_score(y, predicted) > 0.85


def test_forest_predicts_as_scikit_learn_and_its_spread_is_the_trees_std(forest, held_out):
    X, _ = held_out
    predicted, spread = forest.predict_with_uncertainty(X)
    assert predicted.dtype == spread.dtype == np.float32
    np.testing.assert_allclose(predicted, RandomForestRegressor.predict(forest, X), rtol=1e-6)
    np.testing.assert_array_equal(predicted, forest.predict(X))
    trees = np.stack([tree.predict(X) for tree in forest.estimators_])
    np.testing.assert_allclose(spread, trees.std(axis=0), rtol=1e-5, atol=1e-6)
    assert spread.min() >= 0 and spread.max() > 0
    assert forest.uncertainty_ == "standard deviation of the 30 trees' predictions"


def test_forest_spread_is_the_same_in_threaded_chunks(forest, held_out, monkeypatch):
    X, _ = held_out
    whole = forest.predict_with_uncertainty(X)
    monkeypatch.setattr(regressors, "CHUNK_ROWS", 37)
    monkeypatch.setattr(regressors, "MIN_CHUNK_ROWS", 16)
    forest.set_params(n_jobs=3)
    try:
        chunked = forest.predict_with_uncertainty(X)
    finally:
        forest.set_params(n_jobs=None)
    np.testing.assert_array_equal(chunked[0], whole[0])
    np.testing.assert_array_equal(chunked[1], whole[1])


def test_forest_spread_is_larger_where_the_trees_disagree():
    # noise 0.05 where x0 < 0, 1.0 where x0 > 0: the bootstrapped trees disagree there
    rng = np.random.default_rng(4)
    X = rng.uniform(-1.0, 1.0, (1000, 3)).astype(np.float32)
    y = X[:, 1] + np.where(X[:, 0] > 0, 1.0, 0.05) * rng.normal(size=len(X))
    model = make_regressor(settings(), seed=0).fit(X[:700], y[:700])
    _, spread = model.predict_with_uncertainty(X[700:])
    noisy = X[700:, 0] > 0
    # measured 2.4× (each split draws sqrt(3) features, so trees also split on noise)
    assert spread[noisy].mean() > 2 * spread[~noisy].mean()


def test_lightgbm_quantile_interval_covers_about_its_share(held_out):
    X, y = smooth_samples(2000, seed=2)
    Xt, yt = held_out
    coverage = {}
    for interval in ((0.25, 0.75), (0.1, 0.9)):
        model = make_regressor(settings(classifier="lightgbm", quantile_interval=interval), 0)
        predicted, width = model.fit(X, y).predict_with_uncertainty(Xt)
        low, high = (q.predict(Xt) for q in model.quantile_models_)
        assert width.dtype == np.float32 and width.min() >= 0
        np.testing.assert_allclose(width, np.maximum(high - low, 0), rtol=1e-6)
        assert [q.get_params()["alpha"] for q in model.quantile_models_] == list(interval)
        coverage[interval] = np.mean((yt >= low) & (yt <= high))
        assert f"{interval[0]:g}-{interval[1]:g} quantile interval" in model.uncertainty_
    # boosted quantile models fit their own residuals: held out, they cover somewhat less
    # than nominal (measured 0.38 for 0.5, 0.65 for 0.8, over seeds 0-2), never more
    assert 0.3 < coverage[(0.25, 0.75)] <= 0.55
    assert 0.6 < coverage[(0.1, 0.9)] <= 0.85
    assert coverage[(0.1, 0.9)] > coverage[(0.25, 0.75)] + 0.15


def test_lightgbm_without_interval_has_no_uncertainty(learning, held_out):
    model = make_regressor(settings(classifier="lightgbm"), seed=0).fit(*learning)
    predicted, uncertainty = model.predict_with_uncertainty(held_out[0])
    assert uncertainty is None and model.uncertainty_ is None and model.quantile_models_ == []
    np.testing.assert_array_equal(predicted, model.predict(held_out[0]))


@pytest.mark.parametrize(("n", "expected"), [(40, [2]), (300, [5, 6]), (2000, [20])])
def test_lightgbm_leaf_size_follows_the_smallest_target_bin(n, expected):
    X, y = smooth_samples(n, seed=0)
    model = make_regressor(settings(classifier="lightgbm"), seed=0)
    model.set_params(n_estimators=2)
    # the smallest of 10 quantile bins holds about n / 10 samples: a fifth of it, in [2, 20]
    assert model.fit(X, y).get_params()["min_child_samples"] in expected


@pytest.mark.parametrize("classifier", ["rf", "lightgbm"])
def test_nan_features_are_learnt_infinite_ones_and_bad_targets_refused(classifier, learning):
    X, y = learning[0].copy(), learning[1].copy()
    X[::9, 2] = np.nan
    model = make_regressor(settings(classifier=classifier), seed=0).fit(X, y)
    assert np.isfinite(model.predict(X)).all()
    X[3, 4] = np.inf
    with pytest.raises(InputDataError, match="infinite"):
        make_regressor(settings(classifier=classifier), seed=0).fit(X, y)
    y[5] = np.nan
    with pytest.raises(InputDataError, match="non-finite targets: 1 value"):
        make_regressor(settings(classifier=classifier), seed=0).fit(learning[0], y)


# --- saving and loading ------------------------------------------------------------------


def metadata(classifier):
    return ModelMetadata(
        classifier=classifier,
        classes=[],
        feature_names=[f"f{i}" for i in range(6)],
        dates=[],
        bands=[],
        seed=0,
        extra={"task": "regression"},
    )


def model_path(tmp_path):
    return tmp_path / "model" / "seed_0" / "model.bin"


@pytest.mark.parametrize("kind", ["forest", "boosted", "point"])
def test_round_trip_predicts_and_spreads_identically(request, tmp_path, held_out, kind):
    if kind == "point":
        model = make_regressor(settings(classifier="lightgbm"), seed=0).fit(*held_out)
    else:
        model = request.getfixturevalue(kind)
    path = model_path(tmp_path)
    digest = save_model(path, model, metadata(kind))
    assert not artefact_path(path).exists()  # regressors are not compiled
    loaded, meta = load_model(path, digest)
    assert type(loaded) is type(model) and loaded.uncertainty_ == model.uncertainty_
    assert meta.classes == [] and meta.extra["task"] == "regression"
    X = held_out[0]
    expected, loaded_pair = model.predict_with_uncertainty(X), loaded.predict_with_uncertainty(X)
    np.testing.assert_array_equal(loaded_pair[0], expected[0])
    if expected[1] is None:
        assert loaded_pair[1] is None
    else:
        np.testing.assert_array_equal(loaded_pair[1], expected[1])
    use_threads(loaded, 2)
    assert loaded.get_params()["n_jobs"] == 2
    assert all(q.get_params()["n_jobs"] == 2 for q in getattr(loaded, "quantile_models_", []))


def test_a_regressor_with_classes_in_its_metadata_is_not_saved(tmp_path, forest):
    wrong = ModelMetadata("rf", [1, 2], [], [], [], 0)
    with pytest.raises(ValueError, match="differ"):
        save_model(model_path(tmp_path), forest, wrong)


@pytest.mark.parametrize("damage", ["child_out_of_bounds", "feature_out_of_bounds", "other_tree"])
def test_regression_forest_with_crafted_trees_is_refused(tmp_path, forest, learning, damage):
    path = model_path(tmp_path)
    save_model(path, forest, metadata("rf"))
    crafted = forest.to_sklearn()
    crafted.estimators_ = list(crafted.estimators_)
    if damage == "other_tree":
        codes = (learning[1] > 0).astype(int)
        crafted.estimators_[0] = DecisionTreeClassifier(max_depth=2).fit(learning[0], codes)
    else:
        tree = crafted.estimators_[0].tree_
        state = tree.__getstate__()
        nodes = state["nodes"].copy()
        field, value = {
            "child_out_of_bounds": ("left_child", 10**9),
            "feature_out_of_bounds": ("feature", 10**6),
        }[damage]
        nodes[field][0] = value
        state["nodes"] = nodes
        tree.__setstate__(state)
    trusted = ["sklearn.tree._classes.DecisionTreeClassifier"] if damage == "other_tree" else []
    assert (
        set(skops.io.get_untrusted_types(data=skops.io.dumps(crafted)))
        - {
            "sklearn.ensemble._forest.RandomForestRegressor",
            "sklearn.tree._classes.DecisionTreeRegressor",
            "sklearn.tree._tree.Tree",
            *trusted,
        }
        == set()
    )
    rewrite(path, **{"forest.skops": skops.io.dumps(crafted)})
    with pytest.raises(InputDataError) as caught:
        load_model(path)
    assert caught.value.path == str(path) and "\n" not in str(caught.value)
    if damage == "other_tree":  # refused by skops' trust or by the tree check
        assert "DecisionTreeClassifier" in str(caught.value)


def test_tampered_regression_files_are_refused(tmp_path, boosted, forest):
    path = model_path(tmp_path)
    digest = save_model(path, boosted, metadata("lightgbm"))
    rewrite(path, **{"quantile_high.txt": b"tree\nnot a model\n"})
    with pytest.raises(InputDataError, match="checksum differs"):
        load_model(path, digest)
    with pytest.raises(InputDataError, match="damaged"):
        load_model(path)
    with zipfile.ZipFile(path) as archive:
        kept = {n: archive.read(n) for n in archive.namelist() if n != "quantile_low.txt"}
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in kept.items():
            archive.writestr(name, data)
    with pytest.raises(InputDataError, match="damaged"):
        load_model(path)
    # our own subclass in the forest member is an untrusted type
    save_model(path, forest, metadata("rf"))
    rewrite(path, **{"forest.skops": skops.io.dumps(forest)})
    with pytest.raises(InputDataError, match="does not trust"):
        load_model(path)


def test_compiled_inference_leaves_regressors_alone_quietly(tmp_path, forest, caplog):
    path = model_path(tmp_path)
    digest = save_model(path, forest, metadata("rf"))
    with caplog.at_level(logging.DEBUG, logger="sitsmap.learning.compiled"):
        assert with_compiled(forest, path, digest) is forest
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("not for regressors" in r.getMessage() for r in caplog.records)


def test_network_regressor_round_trips(tmp_path, learning):
    pytest.importorskip("sitsmap.learning.deep.regressor")
    import torch

    threads = torch.get_num_threads()
    deep = {"dl_name": "MLPClassifier", "epochs": 2, "hyperparameters_solver": {
        "learning_rate": [0.01], "batch_size": [64]}}  # fmt: skip
    model = make_regressor(settings(deep_learning_parameters=deep), seed=0)
    assert model.task == "regression"
    X, y = learning[0][:200], learning[1][:200]
    model.fit(X, y)
    path = model_path(tmp_path)
    try:
        loaded, meta = load_model(path, save_model(path, model, metadata("MLPClassifier")))
        use_threads(loaded, 1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert type(loaded) is type(model) and meta.extra["task"] == "regression"
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
