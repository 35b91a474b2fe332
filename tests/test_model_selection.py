"""arg_train.model_selection: candidates and grids, grouped k-fold scores, the best kept."""

import json
import logging
import shutil

import numpy as np
import pytest
import rasterio

from sitsmap.config import config_from_mapping, load_config
from sitsmap.config.checks import ineffective_settings
from sitsmap.errors import ConfigError, StepError
from sitsmap.learning.classical import make_classifier
from sitsmap.learning.selection import (
    expand_candidates,
    grouped_folds,
    select_model,
    selection_text,
)
from sitsmap.pipeline.graph import build_tasks
from sitsmap.scheduling.fingerprints import task_fingerprints
from tests.test_chain import FAST
from tests.test_classical import toy_samples

CHAIN = {"output_path": "out", "list_tile": "T31TCJ", "s2_path": "S2", "ground_truth": "gt.shp"}
STUMP = {
    "name": "stump",
    "otb_classifier_options": {"classifier.rf.nbtrees": 1, "classifier.rf.max": 1},
}
FOREST = {"name": "forest", "otb_classifier_options": {"classifier.rf.nbtrees": 20}}


def config(**arg_train):
    return config_from_mapping({"chain": CHAIN, "arg_train": arg_train})


def selection_config(*candidates, **options):
    return config(model_selection={"candidates": list(candidates), **options})


def build(settings):
    return make_classifier(settings, seed=0)


# --- candidates and grids --------------------------------------------------------------


def test_grid_expands_to_one_candidate_per_combination_in_order():
    arg_train = selection_config(
        {"classifier": "lightgbm", "grid": {"lightgbm_parameters.num_leaves": [15, 31, 63]}},
        {
            "name": "forest",
            "otb_classifier_options": {"classifier.rf.min": 3},
            "grid": {
                "otb_classifier_options.classifier.rf.nbtrees": [10, 50],
                "sample_augmentation": ["none", "smote"],
            },
        },
    ).arg_train
    candidates = expand_candidates(arg_train)
    assert [c.name for c in candidates] == [
        "lightgbm (num_leaves=15)",
        "lightgbm (num_leaves=31)",
        "lightgbm (num_leaves=63)",
        "forest (nbtrees=10, sample_augmentation=none)",
        "forest (nbtrees=10, sample_augmentation=smote)",
        "forest (nbtrees=50, sample_augmentation=none)",
        "forest (nbtrees=50, sample_augmentation=smote)",
    ]
    assert [c.settings.lightgbm_parameters["num_leaves"] for c in candidates[:3]] == [15, 31, 63]
    assert {c.learner for c in candidates} == {"lightgbm", "rf"}
    # the candidate's options are merged with arg_train's (defaults here): max stays 25
    assert candidates[5].settings.otb_classifier_options == {
        "classifier.rf.nbtrees": 50,
        "classifier.rf.max": 25,
        "classifier.rf.min": 3,
    }
    assert candidates[5].settings.sample_augmentation == "none"
    assert candidates[5].given == {
        "otb_classifier_options": {"classifier.rf.min": 3, "classifier.rf.nbtrees": 50},
        "sample_augmentation": "none",
    }
    # no candidate selects again
    assert all(not c.settings.model_selection.candidates for c in candidates)


def test_candidates_update_arg_train_and_unnamed_twins_are_numbered():
    arg_train = config(
        deep_learning_parameters={"dl_name": "MLPClassifier", "epochs": 3},
        otb_classifier_options={"classifier.rf.nbtrees": 7},
        model_selection={
            "candidates": [
                {"classifier": "rf"},
                {"classifier": "rf"},
                {"deep_learning_parameters": {"dl_parameters": {"hidden": 8}}},
            ]
        },
    ).arg_train
    first, second, network = expand_candidates(arg_train)
    assert (first.name, second.name) == ("rf #1", "rf #2")
    # naming a classifier trains it even though arg_train trains a network
    assert first.settings.deep_learning_parameters is None and first.learner == "rf"
    assert first.settings.otb_classifier_options == {"classifier.rf.nbtrees": 7}
    assert network.learner == "MLPClassifier"
    assert network.settings.deep_learning_parameters.epochs == 3  # merged with arg_train's
    assert network.settings.deep_learning_parameters.dl_parameters == {"hidden": 8}
    assert network.name == "MLPClassifier (dl_parameters.hidden=8)"


@pytest.mark.parametrize(
    ("candidates", "fragment"),
    [
        (
            [{"clasifier": "rf"}],
            "candidates[0]: unknown key 'clasifier' (did you mean 'classifier'?)",
        ),
        (
            [{"classifier": "rf"}, {"classifier": "rff"}],
            "candidates[1] (classifier=rff): classifier:",
        ),
        (
            [{"grid": {"lightgbm_parameter.num_leaves": [7]}}],
            "grid key 'lightgbm_parameter.num_leaves' must start with a learner key "
            "(did you mean 'lightgbm_parameters'?)",
        ),
        (
            [{"name": "big", "grid": {"otb_classifier_options.classifier.rf.nbtres": [1, 2]}}],
            "candidates[0] (big (nbtres=1)): otb_classifier_options: unknown option(s) "
            "['classifier.rf.nbtres']",
        ),
        ([{"grid": {"classifier": []}}], "grid.classifier must be a non-empty list"),
        ([{"grid": {"svm_max_samples.x": [1]}}], "svm_max_samples holds no options"),
        ([{"svm_max_samples": 1}], "candidates[0] (svm_max_samples=1): svm_max_samples:"),
        (
            [{"deep_learning_parameters": {"dl_name": "Foo"}}],
            "deep_learning_parameters.dl_name: Input should be",
        ),
        (["rf"], "model_selection.candidates.0: Input should be a valid dictionary"),
    ],
)
def test_a_bad_candidate_is_a_one_line_config_error_naming_it(candidates, fragment):
    with pytest.raises(ConfigError) as error:
        selection_config(*candidates)
    message = str(error.value)
    assert fragment in message
    assert "\n" not in message and message.startswith("arg_train.model_selection")


def test_model_selection_options_are_checked():
    with pytest.raises(ConfigError, match="folds"):
        selection_config(STUMP, folds=1)
    with pytest.raises(ConfigError, match="criterion"):
        selection_config(STUMP, criterion="loss")
    assert config().arg_train.model_selection.candidates == ()


def test_ineffective_settings_know_the_candidates():
    assert ineffective_settings(config(model_selection={"folds": 3})) == [
        "arg_train.model_selection.folds has no effect: arg_train.model_selection lists no "
        "candidate"
    ]
    # arg_train's LightGBM options are the base of a LightGBM candidate
    used = config(lightgbm_parameters={"num_leaves": 7}, model_selection={"candidates": [
        {"classifier": "rf"}, {"classifier": "lightgbm"}]})  # fmt: skip
    assert ineffective_settings(used) == []
    unused = config(
        lightgbm_parameters={"num_leaves": 7},
        classifier="svm",
        model_selection={"candidates": [{"classifier": "rf"}]},
    )
    assert ineffective_settings(unused) == [
        "arg_train.classifier has no effect: no candidate of arg_train.model_selection reads it",
        "arg_train.lightgbm_parameters has no effect: no candidate of arg_train.model_selection "
        "reads it",
    ]


def test_changed_candidates_rerun_learning_not_sampling():
    plain = config()
    chosen = selection_config(STUMP, FOREST)
    tasks = {task.key: task for task in build_tasks(chosen)}
    assert "arg_train.model_selection" in tasks["learning-seed0"].reads
    before = task_fingerprints(build_tasks(plain), plain)
    after = task_fingerprints(build_tasks(chosen), chosen)
    assert before["sampling-table-seed0"].digest == after["sampling-table-seed0"].digest
    assert before["learning-seed0"].digest != after["learning-seed0"].digest
    assert (
        before["classification-T31TCJ-seed0"].digest != after["classification-T31TCJ-seed0"].digest
    )


# --- folds and selection ---------------------------------------------------------------


def test_folds_never_share_a_polygon_and_cover_every_sample():
    _, y, groups = toy_samples()
    splits, note = grouped_folds(y, groups, folds=4, seed=3)
    assert len(splits) == 4 and note is None
    tested = np.concatenate([test for _, test in splits])
    assert np.array_equal(np.sort(tested), np.arange(len(y)))  # each sample held out once
    for train, test in splits:
        assert not set(groups[train]) & set(groups[test])
        assert set(y[test]) == set(y)  # stratified: every class in every fold
    again, _ = grouped_folds(y, groups, folds=4, seed=3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, again, strict=True))
    other, _ = grouped_folds(y, groups, folds=4, seed=4)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(splits, other, strict=True))


def test_fewer_polygons_than_folds_lower_k_and_say_so():
    y = np.repeat([1, 1, 2, 2, 2, 2], 5)
    groups = np.repeat([10, 11, 20, 21, 22, 23], 5)
    splits, note = grouped_folds(y, groups, folds=5, seed=0)
    assert len(splits) == 2 and "2 folds instead of 5" in note
    single = np.repeat([10, 20, 21, 22], 5)
    splits, note = grouped_folds(np.repeat([1, 2, 2, 2], 5), single, folds=5, seed=0)
    assert len(splits) == 2 and "class(es) [1] have fewer polygons than folds" in note
    splits, note = grouped_folds(np.ones(5), np.zeros(5), folds=5, seed=0)
    assert splits == [] and "no cross-validation" in note


def test_the_clearly_better_candidate_is_kept_deterministically():
    X, y, groups = toy_samples(noise=1.0)
    candidates = expand_candidates(selection_config(STUMP, FOREST).arg_train)
    selection = select_model(X, y, groups, candidates, build, folds=4, seed=0)
    assert selection.kept.name == "forest" and selection.best == 1
    stump, forest = selection.scores
    assert forest["mean_fscore"]["mean"] > stump["mean_fscore"]["mean"] + 0.2
    assert len(forest["oa"]["folds"]) == 4 == selection.folds
    assert forest["oa"]["mean"] == pytest.approx(np.mean(forest["oa"]["folds"]))
    assert forest["oa"]["std"] == pytest.approx(np.std(forest["oa"]["folds"]))
    again = select_model(X, y, groups, candidates, build, folds=4, seed=0)
    assert again.to_dict() == selection.to_dict()
    document = selection.to_dict()
    assert document["kept"] == "forest" and document["criterion"] == "fscore"
    assert [c["name"] for c in document["candidates"]] == ["stump", "forest"]
    assert sum(size["samples"] for size in document["fold_sizes"]) == len(y)
    json.dumps(document, allow_nan=False)  # plain JSON
    text = selection_text([{"seed": 0, "region": "A", **document}])
    assert "run 0, region A: 4 folds, criterion fscore; kept forest" in text
    assert "* forest" in text


def test_ties_go_to_the_first_listed_and_each_criterion_is_read():
    X, y, groups = toy_samples()
    twins = expand_candidates(selection_config(FOREST, {**FOREST, "name": "twin"}).arg_train)
    for criterion in ("fscore", "oa", "kappa"):
        selection = select_model(X, y, groups, twins, build, folds=3, criterion=criterion)
        assert selection.scores[0] == selection.scores[1]
        assert selection.kept.name == "forest"
        assert "every candidate scored the same: the first listed is kept" in selection.note


def test_a_failing_candidate_is_reported_never_kept(caplog):
    X, y, groups = toy_samples()
    candidates = expand_candidates(selection_config(STUMP, FOREST).arg_train)

    def fragile(settings):
        if settings.otb_classifier_options["classifier.rf.nbtrees"] == 1:
            raise ValueError("out of luck")
        return build(settings)

    with caplog.at_level(logging.WARNING, logger="sitsmap.learning.selection"):
        selection = select_model(X, y, groups, candidates, fragile, folds=3)
    assert selection.kept.name == "forest"
    assert selection.errors[0] == "fold 1: ValueError: out of luck"
    assert "stump failed" in caplog.text

    def broken(settings):
        raise ValueError("nothing works")

    with pytest.raises(StepError, match="every candidate failed"):
        select_model(X, y, groups, candidates, broken, folds=3)


def test_a_network_candidate_is_scored_with_the_deep_builder():
    from sitsmap.learning.deep.trainer import DeepClassifier
    from tests.test_classical import N_DATES

    X, y, groups = toy_samples()
    network = {"deep_learning_parameters": {"dl_name": "MLPClassifier", "epochs": 3}}
    candidates = expand_candidates(selection_config(STUMP, network).arg_train)

    def builder(settings):
        if settings.deep_learning_parameters is None:
            return build(settings)
        return DeepClassifier.from_settings(settings.deep_learning_parameters, 0, n_dates=N_DATES)

    selection = select_model(X, y, groups, candidates, builder, folds=3)
    assert selection.errors == [None, None]
    assert (
        selection.kept.name == "MLPClassifier (epochs=3)"
        and selection.kept.learner == "MLPClassifier"
    )


def test_without_folds_the_first_candidate_is_kept():
    X, y, _ = toy_samples(polygons=1)
    candidates = expand_candidates(selection_config(STUMP, FOREST).arg_train)
    selection = select_model(X, y, np.zeros(len(y)), candidates, build)
    assert selection.best == 0 and selection.folds == 0 and "no cross-validation" in selection.note


# --- the chain -------------------------------------------------------------------------

CANDIDATES = (
    "arg_train.model_selection={folds: 3, candidates: ["
    "{name: stump, otb_classifier_options: {classifier.rf.nbtrees: 1, classifier.rf.max: 1}}, "
    "{name: forest, classifier: rf}]}"
)


def read_map(path):
    with rasterio.open(path) as src:
        return src.read()


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory, small_world):
    from sitsmap.pipeline.run import run_chain

    output = tmp_path_factory.mktemp("plain")
    return run_chain(
        load_config(small_world / "config.yaml", (*FAST, f"chain.output_path={output}"))
    )


@pytest.fixture(scope="module")
def chosen_run(tmp_path_factory, small_world, plain_run):
    """The plain run's outputs, run again with two candidates: learning onwards reruns."""
    from sitsmap.pipeline.run import plan_chain, run_chain

    output = tmp_path_factory.mktemp("chosen") / "out"
    shutil.copytree(plain_run.layout.root, output)
    config = load_config(
        small_world / "config.yaml", (*FAST, f"chain.output_path={output}", CANDIDATES)
    )
    plan = plan_chain(config)
    steps = {task.step for task in plan.to_run}
    assert "learning" in steps and not {"preprocessing", "sampling"} & steps, plan.describe()
    return run_chain(config)


def test_no_candidates_leave_no_trace(plain_run):
    layout = plain_run.layout
    assert not (layout.model_dir(0) / "model_selection.json").exists()
    assert "model_selection" not in json.loads(layout.results_json.read_text())
    assert "Model selection" not in (layout.root / "report.html").read_text()


def test_chain_keeps_the_best_candidate_and_reports_every_score(chosen_run, plain_run):
    from sitsmap.learning.persistence import load_model

    layout = chosen_run.layout
    results = json.loads(layout.results_json.read_text())
    (entry,) = results["model_selection"]
    assert (entry["seed"], entry["region"], entry["criterion"]) == (0, None, "fscore")
    assert entry["kept"] == "forest" and entry["kept_index"] == 1
    # the tiny world's classes have one or two learning polygons: fewer folds, and a note
    assert entry["requested_folds"] == 3 and entry["folds"] == 2 and "instead of 3" in entry["note"]
    stump, forest = entry["candidates"]
    assert forest["mean_fscore"]["mean"] > stump["mean_fscore"]["mean"]
    for candidate in (stump, forest):
        assert set(candidate) >= {"oa", "kappa", "mean_fscore", "settings", "learner"}
        assert len(candidate["oa"]["folds"]) == entry["folds"]
    assert json.loads((layout.model_dir(0) / "model_selection.json").read_text()) == entry

    model, metadata = load_model(layout.model(0))
    assert (model.n_estimators, model.max_depth) == (30, 20)  # FAST's forest, not the stump
    assert metadata.extra["model_selection"]["kept"] == "forest"
    assert set(metadata.extra["model_selection"]["scores"]) == {"stump", "forest"}

    # the kept candidate is arg_train's own learner: the same map as without selection
    np.testing.assert_array_equal(
        read_map(layout.final_map(0)), read_map(plain_run.layout.final_map(0))
    )

    text = layout.results_txt.read_text()
    assert "#### Model selection" in text and "* forest" in text
    report = (layout.root / "report.html").read_text()
    assert 'id="model-selection"' in report and "Model selection" in report
    assert "stump" in report and "forest" in report and "✓" in report
    assert "2 folds of" in report and "(3 asked for)" in report
