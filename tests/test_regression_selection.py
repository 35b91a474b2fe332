"""arg_train.model_selection in regression: candidates, target-stratified folds, RMSE/R²."""

import json
import math

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from sitsmap.config import config_from_mapping
from sitsmap.config.schema import ArgTrain
from sitsmap.errors import ConfigError
from sitsmap.learning.regressors import make_regressor
from sitsmap.learning.selection import (
    expand_candidates,
    regression_folds,
    regression_scores,
    select_model,
    selection_text,
)

CHAIN = {"output_path": "out", "list_tile": "T31TCJ", "s2_path": "S2", "ground_truth": "gt.shp"}
STUMP = {
    "name": "stump",
    "otb_classifier_options": {"classifier.rf.nbtrees": 1, "classifier.rf.max": 1},
}
FOREST = {"name": "forest", "otb_classifier_options": {"classifier.rf.nbtrees": 15}}


def regression_arg_train(*candidates, **values):
    section = {"task": "regression", "model_selection": {"candidates": list(candidates)}}
    return ArgTrain.model_validate({**section, **values})


def polygon_samples(polygons=30, pixels=8, seed=0):
    """One target value per polygon, its pixels' features a noisy function of it."""
    rng = np.random.default_rng(seed)
    value = rng.uniform(0.0, 100.0, polygons)
    target = np.repeat(value, pixels)
    groups = np.repeat(np.arange(polygons) * 7 + 3, pixels)
    signal = np.stack([target / 50.0, np.sin(target / 20.0)], axis=1)
    X = signal + rng.normal(0.0, 0.1, signal.shape)
    X = np.hstack([X, rng.normal(size=(len(target), 2))]).astype(np.float32)
    return X, target, groups


def build(settings):
    return make_regressor(settings, seed=0)


# --- candidates --------------------------------------------------------------------------


def test_regression_candidates_inherit_the_task():
    candidates = expand_candidates(regression_arg_train(STUMP, {"classifier": "lightgbm"}))
    assert [c.name for c in candidates] == ["stump", "lightgbm"]
    assert all(c.settings.task == "regression" for c in candidates)


@pytest.mark.parametrize(
    ("candidate", "fragment"),
    [
        ({"classifier": "svm"}, "candidates[1] (classifier=svm): classifier svm does not do "),
        (
            {"name": "over", "sample_augmentation": "smote"},
            "candidates[1] (over): sample_augmentation smote oversamples classes",
        ),
    ],
)
def test_a_candidate_that_cannot_regress_is_refused_in_one_line(candidate, fragment):
    with pytest.raises(ValueError) as caught:
        expand_candidates(regression_arg_train(STUMP), [STUMP, candidate])
    assert fragment in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        config_from_mapping(
            {
                "chain": CHAIN,
                "arg_train": {
                    "task": "regression",
                    "model_selection": {"candidates": [STUMP, candidate]},
                },
            }
        )
    message = str(caught.value)
    assert fragment in message and "\n" not in message
    assert message.startswith("arg_train.model_selection")
    # the same candidate is fine in classification
    assert len(expand_candidates(ArgTrain(), [STUMP, candidate])) == 2


# --- folds and scores --------------------------------------------------------------------


def test_regression_folds_keep_polygons_whole_and_spread_the_target():
    _, target, groups = polygon_samples(polygons=50)
    splits, note = regression_folds(target, groups, folds=5, seed=3, bins=5)
    assert len(splits) == 5 and note is None
    tested = np.concatenate([test for _, test in splits])
    assert np.array_equal(np.sort(tested), np.arange(len(target)))
    values = np.unique(target)
    quintile = np.searchsorted(np.quantile(values, [0.2, 0.4, 0.6, 0.8]), target, side="right")
    for train, test in splits:
        assert not set(groups[train]) & set(groups[test])
        assert set(quintile[test]) == {0, 1, 2, 3, 4}  # low and high values in every fold
    again, _ = regression_folds(target, groups, folds=5, seed=3, bins=5)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, again, strict=True))
    other, _ = regression_folds(target, groups, folds=5, seed=4, bins=5)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(splits, other, strict=True))


def test_few_polygons_lower_k_and_say_so():
    _, target, groups = polygon_samples(polygons=3)
    splits, note = regression_folds(target, groups, folds=5, seed=0)
    assert len(splits) == 3 and "3 folds instead of 5: 3 learning polygons" in note
    splits, note = regression_folds(target[:8], groups[:8], folds=5, seed=0)
    assert splits == [] and "no cross-validation" in note


def test_regression_scores_match_scikit_learn():
    rng = np.random.default_rng(1)
    observed = rng.normal(10.0, 3.0, 50)
    predicted = observed + rng.normal(0.5, 1.0, 50)
    scores = regression_scores(observed, predicted)
    assert scores["rmse"] == pytest.approx(math.sqrt(mean_squared_error(observed, predicted)))
    assert scores["mae"] == pytest.approx(mean_absolute_error(observed, predicted))
    assert scores["r2"] == pytest.approx(r2_score(observed, predicted))
    assert math.isnan(regression_scores(np.ones(4), np.arange(4.0))["r2"])


# --- selection ---------------------------------------------------------------------------


@pytest.mark.parametrize("criterion", ["fscore", "rmse", "r2"])
def test_the_better_regressor_is_kept_whichever_way_its_score_runs(criterion):
    X, target, groups = polygon_samples()
    # the stump is listed first: keeping the highest RMSE would keep it
    candidates = expand_candidates(regression_arg_train(STUMP, FOREST))
    selection = select_model(X, target, groups, candidates, build, folds=4, criterion=criterion)
    assert selection.kept.name == "forest" and selection.best == 1
    assert selection.criterion == ("rmse" if criterion == "fscore" else criterion)
    stump, forest = selection.scores
    assert set(forest) == {"rmse", "mae", "r2"}
    assert forest["rmse"]["mean"] < stump["rmse"]["mean"] - 5
    assert forest["r2"]["mean"] > stump["r2"]["mean"] + 0.2
    assert len(forest["rmse"]["folds"]) == 4 == selection.folds
    assert forest["mae"]["mean"] == pytest.approx(np.mean(forest["mae"]["folds"]))
    assert forest["r2"]["std"] == pytest.approx(np.std(forest["r2"]["folds"]))
    document = selection.to_dict()
    assert document["task"] == "regression" and document["scores"] == ["rmse", "mae", "r2"]
    assert document["lower_is_better"] is (selection.criterion == "rmse")
    assert document["score"] == selection.criterion
    json.dumps(document, allow_nan=False)
    text = selection_text([{"seed": 0, **document}])
    assert f"4 folds, criterion {selection.criterion}; kept forest" in text
    assert "RMSE" in text and "R2" in text and "F-score" not in text and "* forest" in text


def test_a_lightgbm_candidate_with_an_interval_is_scored():
    X, target, groups = polygon_samples()
    candidates = expand_candidates(
        regression_arg_train(FOREST, {"classifier": "lightgbm"}, quantile_interval=(0.1, 0.9))
    )
    selection = select_model(X, target, groups, candidates, build, folds=3)
    assert selection.errors == [None, None]
    assert all(np.isfinite(s["rmse"]["mean"]) for s in selection.scores)


@pytest.mark.parametrize(("task", "criterion"), [("regression", "oa"), ("classification", "r2")])
def test_a_criterion_of_the_other_task_is_refused(task, criterion):
    X, target, groups = polygon_samples()
    arg_train = ArgTrain.model_validate({"task": task, "model_selection": {"candidates": [FOREST]}})
    candidates = expand_candidates(arg_train)
    with pytest.raises(ValueError, match=f"criterion {criterion} does not apply to {task}"):
        select_model(X, target, groups, candidates, build, criterion=criterion)
