import numpy as np
import pytest

from sitsmap.config import config_from_mapping
from sitsmap.config.schema import ArgTrain
from sitsmap.learning.classical import (
    ClassifierProtocol,
    LightGBM,
    RandomForest,
    make_classifier,
    random_forest_parameters,
)
from sitsmap.learning.deep.trainer import DeepClassifier

CODES = (5, 13, 23)
N_BANDS, N_DATES = 2, 13
CHAIN = {"output_path": "out", "list_tile": "T31TCJ", "s2_path": "S2", "ground_truth": "gt.shp"}


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


def arg_train(**section):
    return config_from_mapping({"chain": CHAIN, "arg_train": section}).arg_train


def test_otb_options_map_to_sklearn():
    params = random_forest_parameters(
        {"classifier.rf.nbtrees": 30, "classifier.rf.max": 12, "classifier.rf.min": 4.0}
    )
    assert params == {"n_estimators": 30, "max_depth": 12, "min_samples_split": 4}
    unlimited = random_forest_parameters({"classifier.rf.max": 0, "classifier.rf.min": 0})
    assert unlimited == {"max_depth": None, "min_samples_split": 2}


def test_make_random_forest_from_config():
    settings = arg_train(
        classifier="rf",
        otb_classifier_options={"classifier.rf.nbtrees": 17, "classifier.rf.max": 9},
    )
    clf = make_classifier(settings, seed=7, n_jobs=2)
    assert isinstance(clf, RandomForest)
    assert (clf.n_estimators, clf.max_depth, clf.random_state, clf.n_jobs) == (17, 9, 7, 2)
    default = make_classifier(ArgTrain(), seed=0)
    assert (default.n_estimators, default.max_depth, default.min_samples_split) == (100, 25, 5)


def test_make_lightgbm_from_config():
    settings = arg_train(
        classifier="lightgbm", lightgbm_parameters={"num_leaves": 7, "random_state": 99}
    )
    clf = make_classifier(settings, seed=3, n_jobs=1)
    assert isinstance(clf, LightGBM)
    params = clf.get_params()
    assert params["num_leaves"] == 7
    assert params["random_state"] == 3  # the run's seed wins
    assert params["verbose"] == 0  # warnings on: they reach the log


def test_make_deep_classifier_from_config():
    settings = arg_train(
        deep_learning_parameters={
            "dl_name": "TempCNN",
            "epochs": 3,
            "model_selection_criterion": "kappa",
            "hyperparameters_solver": {"learning_rate": [0.01, 0.001], "batch_size": 64},
            "dl_parameters": {"n_filters": 8},
        }
    )
    clf = make_classifier(settings, seed=4, n_dates=N_DATES, day_of_year=range(N_DATES))
    assert isinstance(clf, DeepClassifier)
    assert clf.dl_name == "TempCNN"
    assert clf.learning_rates == (0.01, 0.001)
    assert clf.batch_sizes == (64,)
    assert (clf.epochs, clf.seed, clf.selection_criterion) == (3, 4, "kappa")
    assert clf.dl_parameters == {"n_filters": 8}
    assert clf.n_dates == N_DATES


@pytest.mark.parametrize("classifier", ["rf", "lightgbm"])
def test_classical_classifiers_learn_toy_problem(classifier):
    X, y, groups = toy_samples(seed=0)
    X_test, y_test, _ = toy_samples(seed=1)
    options = {"lightgbm_parameters": {"n_estimators": 40}} if classifier == "lightgbm" else {}
    clf = make_classifier(arg_train(classifier=classifier, **options), seed=0)
    assert clf.fit(X, y, groups) is clf
    assert isinstance(clf, ClassifierProtocol)
    np.testing.assert_array_equal(clf.classes_, CODES)
    proba = clf.predict_proba(X_test)
    assert proba.dtype == np.float32
    assert proba.shape == (len(X_test), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    predicted = clf.predict(X_test)
    assert set(np.unique(predicted)) <= set(CODES)
    assert (predicted == y_test).mean() > 0.95
    np.testing.assert_array_equal(predicted, clf.classes_[proba.argmax(axis=1)])


@pytest.mark.parametrize("classifier", ["rf", "lightgbm"])
def test_groups_are_not_sample_weights(classifier):
    X, y, groups = toy_samples(seed=0, polygons=4, pixels=10)
    options = {"lightgbm_parameters": {"n_estimators": 10}} if classifier == "lightgbm" else {}
    settings = arg_train(classifier=classifier, **options)
    with_groups = make_classifier(settings, seed=0).fit(X, y, np.arange(len(y)) % 3)
    without = make_classifier(settings, seed=0).fit(X, y)
    np.testing.assert_array_equal(with_groups.predict_proba(X), without.predict_proba(X))


def test_random_forest_seed_controls_result():
    X, y, _ = toy_samples(seed=0, polygons=4, pixels=10, noise=1.5)
    settings = arg_train(otb_classifier_options={"classifier.rf.nbtrees": 10})
    first = make_classifier(settings, seed=1).fit(X, y).predict_proba(X)
    again = make_classifier(settings, seed=1).fit(X, y).predict_proba(X)
    other = make_classifier(settings, seed=2).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
