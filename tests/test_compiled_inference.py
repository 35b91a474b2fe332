"""Compiled inference of tree models: same probabilities as the libraries, safe fallbacks."""

import json
import logging
import sys

import numpy as np
import pytest
import rasterio

from sitsmap.config import load_config
from sitsmap.config.schema import ArgTrain
from sitsmap.io.compiled import compiled_path, read_compiled, write_compiled
from sitsmap.learning import compiled
from sitsmap.learning.classical import make_classifier
from sitsmap.learning.compiled import CompiledClassifier, compile_trees, with_compiled
from sitsmap.learning.persistence import ModelMetadata, load_model, save_model
from sitsmap.pipeline.run import run_chain

N_FEATURES = 24


def _samples(n, classes, seed, holes=True):
    """Separable-ish random samples with NaN and exact zeros (the cases trees treat apart)."""
    rng = np.random.default_rng(seed)
    y = rng.choice(classes, n)
    X = rng.normal(0, 1, (n, N_FEATURES)).astype(np.float32)
    X[:, :6] += (y[:, None] % 7).astype(np.float32) * 0.6
    X = np.round(X, 2)  # ties with the training values, as quantised reflectances give
    if holes:
        X[rng.random(X.shape) < 0.04] = np.nan
        X[rng.random(X.shape) < 0.04] = 0.0
        X[rng.random(X.shape) < 0.01] = 1e-37  # LightGBM reads it as 0
    return X, y


def _fit(kind, classes=(11, 12, 13, 14, 15), **lightgbm_parameters):
    X, y = _samples(800, np.asarray(classes), seed=0, holes=kind != "svm")
    settings = ArgTrain(
        classifier=kind,
        otb_classifier_options={
            "classifier.rf.nbtrees": 15,
            "classifier.rf.max": 12,
            "classifier.rf.min": 2,
        },
        lightgbm_parameters={"n_estimators": 15, **lightgbm_parameters},
    )
    return make_classifier(settings, seed=0, n_jobs=1).fit(X, y)


def _metadata(model):
    names = [f"f{i}" for i in range(N_FEATURES)]
    return ModelMetadata("m", [int(c) for c in model.classes_], names, [], [], 0)


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    monkeypatch.setattr(compiled, "_warned", set())
    monkeypatch.delenv(compiled.ENV_SWITCH, raising=False)


@pytest.mark.parametrize(
    ("kind", "classes", "parameters"),
    [
        ("rf", (11, 12, 13, 14, 15), {}),
        ("rf", (3, 9), {}),
        ("lightgbm", (11, 12, 13, 14, 15), {}),
        ("lightgbm", (11, 12, 13, 14, 15), {"zero_as_missing": True}),
        ("lightgbm", (3, 9), {}),
    ],
    ids=["rf", "rf-binary", "lightgbm", "lightgbm-zero-missing", "lightgbm-binary"],
)
def test_compiled_probabilities_are_the_librarys(kind, classes, parameters):
    model = _fit(kind, classes, **parameters)
    trees = compile_trees(model)
    X, _ = _samples(3000, np.asarray(classes), seed=1)
    expected = model.predict_proba(X)
    for threads in (1, 2):
        probabilities = trees.predict_proba(X, threads)
        assert probabilities.dtype == np.float32
        np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-6)
        # the same sums in the same order: identical, so ties break the same way
        assert np.array_equal(probabilities, expected)
        assert np.array_equal(probabilities.argmax(1), expected.argmax(1))
    assert [int(c) for c in trees.classes] == [int(c) for c in model.classes_]


@pytest.mark.parametrize("kind", ["rf", "lightgbm"])
def test_every_row_count_gives_the_librarys_probabilities(kind):
    # the forest's kernel walks sixteen rows at a time, then the rest one by one;
    # LightGBM's copies each block: blocks cut short and single rows must be right too
    model = _fit(kind)
    trees = compile_trees(model)
    X, _ = _samples(200, np.asarray(model.classes_), seed=3)
    for rows in (1, 15, 16, 17, 63, 64, 65, 200):
        assert np.array_equal(trees.predict_proba(X[:rows]), model.predict_proba(X[:rows]))
    # a row's probabilities do not depend on its neighbours in the block
    assert np.array_equal(trees.predict_proba(X[::-1])[::-1], trees.predict_proba(X))


def test_saved_model_predicts_with_its_compiled_trees(tmp_path, caplog):
    model = _fit("rf")
    path = tmp_path / "model.bin"
    digest = save_model(path, model, _metadata(model))
    assert compiled_path(path).is_file()
    loaded, _ = load_model(path, digest)
    with caplog.at_level(logging.INFO, logger="sitsmap.learning.compiled"):
        fast = with_compiled(loaded, path, digest, threads=2)
    assert isinstance(fast, CompiledClassifier)
    assert "predicting with the compiled rf trees" in caplog.text
    X, _ = _samples(500, np.asarray(model.classes_), seed=2)
    assert np.array_equal(fast.predict_proba(X), loaded.predict_proba(X))
    assert np.array_equal(fast.predict(X), loaded.predict(X))
    assert list(fast.classes_) == list(loaded.classes_)
    fast.set_params(n_jobs=1)  # use_threads' way: the compiled threads follow
    assert fast.threads == 1


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_stale_compiled_trees_fall_back_with_one_warning(tmp_path, caplog):
    model = _fit("lightgbm")
    path = tmp_path / "model.bin"
    digest = save_model(path, model, _metadata(model))
    header, arrays = read_compiled(path)
    header["model_sha256"] = "0" * 64  # made for another model file
    write_compiled(path, header, arrays)
    loaded, _ = load_model(path, digest)
    with caplog.at_level(logging.WARNING):
        assert with_compiled(loaded, path, digest) is loaded
        assert with_compiled(loaded, path, digest) is loaded
    (warning,) = _warnings(caplog)
    assert "stale" in warning and "the library predicts" in warning


def test_damaged_compiled_trees_are_refused(tmp_path, caplog):
    model = _fit("rf")
    path = tmp_path / "model.bin"
    digest = save_model(path, model, _metadata(model))
    header, arrays = read_compiled(path)
    arrays["nodes"][0, 1] = 10**8  # a child beyond the arrays: a kernel would overrun
    write_compiled(path, header, arrays)
    loaded, _ = load_model(path, digest)
    with caplog.at_level(logging.WARNING):
        assert with_compiled(loaded, path, digest) is loaded
    assert "out of bounds" in _warnings(caplog)[0]
    compiled_path(path).write_bytes(b"not an archive")
    with caplog.at_level(logging.WARNING):
        assert with_compiled(loaded, path, digest) is loaded


def test_missing_numba_falls_back_with_a_warning(tmp_path, caplog, monkeypatch):
    model = _fit("rf")
    path = tmp_path / "model.bin"
    digest = save_model(path, model, _metadata(model))
    monkeypatch.setitem(sys.modules, "sitsmap.learning.compiled_kernels", None)
    with caplog.at_level(logging.WARNING):
        assert with_compiled(model, path, digest) is model
    assert "compiled inference unavailable" in _warnings(caplog)[0]


def test_model_without_compiled_trees_is_compiled_when_loaded(tmp_path):
    model = _fit("lightgbm")
    path = tmp_path / "model.bin"
    digest = save_model(path, model, _metadata(model))
    header, arrays = read_compiled(path)
    header["version"] = compiled.COMPILED_VERSION + 1  # another sitsmap's layout
    write_compiled(path, header, arrays)
    assert isinstance(with_compiled(model, path, digest), CompiledClassifier)
    compiled_path(path).unlink()  # a model saved before compiled inference
    fast = with_compiled(model, path, digest)
    assert isinstance(fast, CompiledClassifier)


def test_switches_and_other_learners_keep_the_library(tmp_path, monkeypatch, caplog):
    model = _fit("rf")
    path = tmp_path / "model.bin"
    digest = save_model(path, model, _metadata(model))
    assert with_compiled(model, path, digest, enabled=False) is model
    monkeypatch.setenv(compiled.ENV_SWITCH, "0")
    assert with_compiled(model, path, digest) is model
    monkeypatch.delenv(compiled.ENV_SWITCH)
    svm = _fit("svm")
    svm_path = tmp_path / "svm.bin"
    with caplog.at_level(logging.WARNING):
        svm_digest = save_model(svm_path, svm, _metadata(svm))
        assert with_compiled(svm, svm_path, svm_digest) is svm
    assert not compiled_path(svm_path).exists()
    assert not _warnings(caplog)  # nothing to compile is not a problem
    sidecar = json.loads(path.with_name("model.bin.json").read_text())
    assert sidecar["compiled_trees"] == "model.bin.compiled.npz"


@pytest.mark.slow
def test_chain_classifies_with_compiled_trees_and_same_map(small_world, tmp_path):
    settings = (
        "arg_train.sample_selection={sampler: periodic, strategy: constant, "
        "strategy.constant.nb: 100}",
        "arg_train.classifier=lightgbm",
        "arg_train.lightgbm_parameters={n_estimators: 20}",
        "python_data_managing.number_of_chunks=2",
        "chain.list_tile=T31TCJ",  # one tile keeps it short
        "scheduling.scheduler=synchronous",
        f"chain.output_path={tmp_path / 'out'}",
        "chain.last_step=classification",
    )
    context = run_chain(load_config(small_world / "config.yaml", settings))
    layout = context.layout
    assert compiled_path(layout.model(0)).is_file()
    logs = "".join(p.read_text() for p in layout.logs.glob("classification*.log"))
    assert "predicting with the compiled lightgbm trees" in logs
    tile = "T31TCJ"
    with rasterio.open(layout.classification(tile, 0, "Classif")) as src:
        fast = src.read()
    with rasterio.open(layout.classification(tile, 0, "Confidence")) as src:
        fast_confidence = src.read()
    off = load_config(
        small_world / "config.yaml", (*settings, "arg_classification.compiled_inference=false")
    )
    run_chain(off, first_step="classification", last_step="classification")
    logs = "".join(p.read_text() for p in layout.logs.glob("classification*.log"))
    assert "compiled inference disabled" in logs
    with rasterio.open(layout.classification(tile, 0, "Classif")) as src:
        assert np.array_equal(src.read(), fast)
    with rasterio.open(layout.classification(tile, 0, "Confidence")) as src:
        assert np.array_equal(src.read(), fast_confidence)


def test_compiled_inference_key_is_reported_unused_for_a_network(small_world, tmp_path):
    from sitsmap.config.checks import ineffective_settings

    base = ("arg_classification.compiled_inference=false", f"chain.output_path={tmp_path}")
    network = load_config(
        small_world / "config.yaml", (*base, "arg_train.deep_learning_parameters={dl_name: LTAE}")
    )
    forest = load_config(small_world / "config.yaml", base)
    assert any("compiled_inference has no effect" in m for m in ineffective_settings(network))
    assert not any("compiled_inference" in m for m in ineffective_settings(forest))
