"""SVM, SMOTE, LightGBM on small data and non-finite features (classical learners)."""

import copy
import logging
import zipfile

import lightgbm
import numpy as np
import pytest

from sitsmap.config import config_from_mapping
from sitsmap.config.keys import describe_keys
from sitsmap.config.schema import ArgTrain
from sitsmap.errors import ConfigError, InputDataError
from sitsmap.learning.classical import SVC_OPTIONS, SVM, LightGBM, make_classifier, oversample
from sitsmap.learning.persistence import ModelMetadata, load_model, save_model

CODES = (11, 3, 42, 7, 25, 18)  # not sorted: predict_proba's columns must be
CHAIN = {"output_path": "out", "list_tile": "T31TCJ", "s2_path": "S2", "ground_truth": "gt.shp"}
LOGGER = "sitsmap.learning.classical"


def table(sizes=(200,) * 6, seed=0, noise=1.0, n_features=20):
    """Samples of ``len(sizes)`` classes: a distinct sine profile each, plus noise."""
    t = np.linspace(0.0, 1.0, n_features)
    profiles = [np.sin(2 * np.pi * (t + k / 6)) * (1 + k / 5) for k in range(len(sizes))]
    rng = np.random.default_rng(seed)
    X = np.concatenate(
        [p + rng.normal(0.0, noise, (n, n_features)) for p, n in zip(profiles, sizes, strict=True)]
    )
    return X.astype(np.float32), np.repeat(CODES[: len(sizes)], sizes)


def svm(**section):
    return make_classifier(ArgTrain(classifier="svm", **section), seed=0)


@pytest.fixture(scope="module")
def fitted_svm():
    return svm().fit(*table())


def test_svm_learns_and_gives_probabilities_in_sorted_code_order(fitted_svm):
    X_test, y_test = table(seed=1)
    proba = fitted_svm.predict_proba(X_test)
    assert proba.dtype == np.float32
    np.testing.assert_array_equal(fitted_svm.classes_, sorted(CODES))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    for column, code in enumerate(sorted(CODES)):  # each class's samples favour its column
        assert proba[y_test == code].mean(axis=0).argmax() == column
    predicted = fitted_svm.predict(X_test)
    np.testing.assert_array_equal(predicted, fitted_svm.classes_[proba.argmax(axis=1)])
    assert (predicted == y_test).mean() >= 0.92  # measured 0.962


def test_svm_parameters_reach_the_svc():
    model = svm(svm_parameters={"C": 10, "kernel": "linear"}, svm_max_samples=500)
    assert isinstance(model, SVM)
    assert (model.C, model.kernel, model.gamma, model.max_samples, model.random_state) == (
        10,
        "linear",
        "scale",
        500,
        0,
    )
    model.fit(*table(sizes=(20,) * 3))
    svc = model.calibrated_.calibrated_classifiers_[0].estimator[-1]
    assert (svc.C, svc.kernel) == (10, "linear")


def test_every_svc_option_is_accepted_and_an_unknown_one_refused_in_one_line():
    accepted = ArgTrain(svm_parameters=dict.fromkeys(SVC_OPTIONS, None))
    assert set(accepted.svm_parameters) == set(SVC_OPTIONS)
    with pytest.raises(ConfigError) as caught:
        config_from_mapping({"chain": CHAIN, "arg_train": {"svm_parameters": {"probability": 1}}})
    message = str(caught.value)
    assert "\n" not in message
    assert "arg_train.svm_parameters" in message and "'probability'" in message


def test_svm_learns_a_stratified_subset_above_its_cap(caplog):
    X, y = table()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        model = svm(svm_max_samples=300).fit(X, y)
    np.testing.assert_array_equal(model.class_counts_, [50] * 6)
    assert "1200 learning samples above svm_max_samples 300" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        svm(svm_max_samples=1200).fit(X, y)
    assert "svm_max_samples" not in caplog.text


def test_svm_round_trip_predicts_identically(tmp_path, fitted_svm):
    X_test, _ = table(seed=2)
    meta = ModelMetadata("svm", [int(c) for c in fitted_svm.classes_], ["f"] * 20, [], [], 0)
    digest = save_model(tmp_path / "model.bin", fitted_svm, meta)
    with zipfile.ZipFile(tmp_path / "model.bin") as archive:
        assert "svm.skops" in archive.namelist()
    loaded, loaded_meta = load_model(tmp_path / "model.bin", digest)
    assert isinstance(loaded, SVM) and loaded_meta == meta
    assert loaded.get_params() == fitted_svm.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(X_test), fitted_svm.predict_proba(X_test))


def test_svm_whose_arrays_disagree_is_refused(tmp_path, fitted_svm):
    broken = copy.deepcopy(fitted_svm)
    svc = broken.calibrated_.calibrated_classifiers_[0].estimator[-1]
    svc._n_support = svc._n_support + 1  # libsvm would read past the support vectors
    meta = ModelMetadata("svm", [int(c) for c in broken.classes_], ["f"] * 20, [], [], 0)
    save_model(tmp_path / "model.bin", broken, meta)
    with pytest.raises(InputDataError, match="support vectors and coefficients are inconsistent"):
        load_model(tmp_path / "model.bin")


def test_svm_with_a_single_sample_class_is_refused():
    X, y = table(sizes=(20, 20, 1))
    with pytest.raises(InputDataError, match="class 42 has a single learning sample"):
        svm().fit(X, y)


def test_smote_balances_the_classes_the_model_sees(caplog):
    X, y = table(sizes=(300, 300, 10, 300))
    settings = ArgTrain(
        sample_augmentation="smote", otb_classifier_options={"classifier.rf.nbtrees": 10}
    )
    with caplog.at_level(logging.INFO, logger=LOGGER):
        model = make_classifier(settings, seed=0).fit(X, y)
    np.testing.assert_array_equal(model.classes_, [3, 7, 11, 42])
    np.testing.assert_array_equal(model.class_counts_, [300] * 4)
    assert "k_neighbors=5" in caplog.text and "42: 290" in caplog.text
    plain = make_classifier(ArgTrain(), seed=0).fit(X, y)
    np.testing.assert_array_equal(plain.class_counts_, [300, 300, 300, 10])


def test_smote_leaves_a_single_sample_class_and_lowers_k(caplog):
    X, y = table(sizes=(40, 1, 4))
    with caplog.at_level(logging.INFO, logger=LOGGER):
        X_new, y_new = oversample(X, y, seed=0)
    codes, counts = np.unique(y_new, return_counts=True)
    assert dict(zip(codes.tolist(), counts.tolist(), strict=True)) == {3: 1, 11: 40, 42: 40}
    np.testing.assert_array_equal(X_new[: len(X)], X)  # the originals come first, unchanged
    assert "class 3 has a single learning sample: left as is" in caplog.text
    assert "k_neighbors=3" in caplog.text and "42: 36" in caplog.text


def test_smote_is_deterministic_with_the_seed():
    X, y = table(sizes=(100, 8, 30))
    first, again, other = (oversample(X, y, seed=s)[0] for s in (1, 1, 2))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    settings = ArgTrain(classifier="svm", sample_augmentation="smote")
    fits = [make_classifier(settings, seed=4).fit(X, y).predict_proba(X) for _ in range(2)]
    np.testing.assert_array_equal(*fits)


def few_samples(per_class=5):
    """4 classes with distinct means, ``per_class`` samples each."""
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(2.0 * k, 1.0, (per_class, 6)) for k in range(4)])
    return X.astype(np.float32), np.repeat([1, 2, 3, 4], per_class)


def test_lightgbm_learns_a_few_samples_per_class_with_data_sized_leaves(caplog):
    X, y = few_samples()
    X_test, y_test = few_samples(per_class=50)
    sized = make_classifier(ArgTrain(classifier="lightgbm"), seed=0).fit(X, y)
    assert isinstance(sized, LightGBM)
    assert sized.get_params()["min_child_samples"] == 2
    assert len(np.unique(sized.predict(X_test))) > 1
    assert (sized.predict(X_test) == y_test).mean() > 0.5
    # LightGBM's own default, given by the user, is honoured: one class everywhere
    settings = ArgTrain(classifier="lightgbm", lightgbm_parameters={"min_data_in_leaf": 20})
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        library = make_classifier(settings, seed=0).fit(X, y)
    assert len(np.unique(library.predict(X_test))) == 1
    warnings = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert any("LightGBM: Stopped training" in r.getMessage() for r in warnings)
    assert all(r.getMessage().count("LightGBM") == 1 for r in warnings)  # one line each


def test_lightgbm_keeps_its_default_leaf_size_on_large_classes():
    X, y = table(sizes=(150, 100, 120))
    params = {"n_estimators": 5}
    model = make_classifier(ArgTrain(classifier="lightgbm", lightgbm_parameters=params), seed=0)
    assert model.fit(X, y).get_params()["min_child_samples"] == 20


def test_lightgbm_penalises_leaf_values_unless_the_user_sets_the_penalty():
    # LightGBM's own default (0) let 100 trees on 245 694 samples of 20 classes diverge
    # to OA 0.62 after 0.99 at 20 trees (BENCHMARKS.md, learners)
    X, y = table(sizes=(60, 50, 40))
    model = make_classifier(ArgTrain(classifier="lightgbm"), seed=0)
    assert model.get_params()["reg_lambda"] == 1.0
    booster = model.fit(X, y).booster_
    assert float(booster.params["reg_lambda"]) == 1.0  # reaches the trees
    for name in ("reg_lambda", "lambda_l2", "lambda"):
        settings = ArgTrain(classifier="lightgbm", lightgbm_parameters={name: 0.0})
        params = make_classifier(settings, seed=0).get_params()
        assert params[name] == 0.0
        assert params["reg_lambda"] == 0.0  # LightGBM's own, not the chain's 1.0


def test_lightgbm_leaf_penalty_bounds_a_leaf_of_confidently_wrong_samples():
    # one boosting round from scores that call every sample confidently wrong (its
    # class at -6, another at +6): a leaf's value is -sum(g) / (sum(h) + L2), with
    # g near -1 and h near 0; LightGBM's fit is called with the chain's parameters,
    # as the chain's own fit takes no initial scores
    X, y = table(sizes=(40, 40, 40), noise=0.1)
    index = np.unique(y, return_inverse=True)[1]
    rows = np.arange(len(y))
    init = np.zeros((len(y), 3))
    init[rows, index], init[rows, (index + 1) % 3] = -6.0, 6.0
    largest = {}
    for l2 in (None, 0.0):
        params = make_classifier(ArgTrain(classifier="lightgbm"), seed=0).get_params()
        params |= {"n_estimators": 1, "learning_rate": 1.0, "min_child_samples": 5}
        params |= {"verbose": -1} | ({} if l2 is None else {"reg_lambda": l2})
        model = lightgbm.LGBMClassifier(**params).fit(X, y, init_score=init)
        trees = model.booster_.trees_to_dataframe()
        largest[l2] = trees[trees["left_child"].isna()]["value"].abs().max()
    assert largest[None] < 40 * 1.01  # at most the 40 samples' gradients
    assert largest[0.0] > 1000  # LightGBM's own default


@pytest.mark.parametrize("classifier", ["rf", "lightgbm", "svm"])
def test_infinite_features_are_refused_naming_count_and_columns(classifier):
    X, y = table(sizes=(30, 30))
    X[3, 5], X[7, 5], X[9, 12] = np.inf, -np.inf, np.inf
    X[0, 1] = np.nan
    model = make_classifier(ArgTrain(classifier=classifier), seed=0)
    with pytest.raises(InputDataError) as caught:
        model.fit(X, y)
    message = str(caught.value)
    assert "\n" not in message
    expected = "3 infinite" if classifier != "svm" else "3 infinite and 1 NaN"
    assert f"{expected} value(s) in" in message
    columns = "(5, 12)" if classifier != "svm" else "(1, 5, 12)"
    assert message.endswith(columns)


def test_nan_reaches_the_trees_but_not_the_svm_nor_smote():
    X, y = table(sizes=(30, 30))
    X[::7, 4] = np.nan
    for classifier in ("rf", "lightgbm"):
        model = make_classifier(ArgTrain(classifier=classifier), seed=0).fit(X, y)
        assert set(model.predict(X)) <= {3, 11}
    with pytest.raises(InputDataError, match="SVM cannot learn .* 0 infinite and 9 NaN"):
        make_classifier(ArgTrain(classifier="svm"), seed=0).fit(X, y)
    smote = ArgTrain(sample_augmentation="smote")
    with pytest.raises(InputDataError, match="SMOTE cannot learn"):
        make_classifier(smote, seed=0).fit(X, y)


def test_config_keys_list_the_new_settings():
    text = describe_keys("arg_train")
    for key in ("svm_parameters", "svm_max_samples", "sample_augmentation"):
        assert f"arg_train.{key} = " in text
    assert ArgTrain(classifier="svm", sample_augmentation="smote").classifier == "svm"


def test_classifier_svm_loads_from_a_configuration():
    config = config_from_mapping({"chain": CHAIN, "arg_train": {"classifier": "svm"}})
    assert config.arg_train.classifier == "svm"
