import hashlib
import io
import json
import zipfile

import matplotlib.figure
import numpy as np
import pytest
import torch

from sitsmap.config.schema import ArgTrain
from sitsmap.errors import InputDataError
from sitsmap.io.figures import save_figure
from sitsmap.io.models import MANIFEST, sidecar_path, write_model_file
from sitsmap.learning.classical import make_classifier
from sitsmap.learning.deep.trainer import DeepClassifier
from sitsmap.learning.persistence import ModelMetadata, load_model, save_model

CODES = [5, 13, 23]
N_DATES = 4


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def samples():
    rng = np.random.default_rng(0)
    y = np.repeat(CODES, 40)
    centres = rng.normal(0.0, 3.0, (3, 2 * N_DATES))
    X = centres[np.searchsorted(CODES, y)] + rng.normal(0.0, 1.0, (len(y), 2 * N_DATES))
    return X.astype(np.float32), y, np.arange(len(y)) // 8


def metadata(classifier="rf", **extra):
    return ModelMetadata(
        classifier=classifier,
        classes=CODES,
        feature_names=[f"sentinel2_b{b}_2018010{d}" for b in (2, 3) for d in range(N_DATES)],
        dates=[f"2018010{d}" for d in range(N_DATES)],
        bands=["B2", "B3"],
        seed=0,
        extra=extra,
    )


def fitted(kind, samples):
    X, y, groups = samples
    if kind == "rf":
        settings = ArgTrain(otb_classifier_options={"classifier.rf.nbtrees": 10})
        return make_classifier(settings, seed=0).fit(X, y, groups)
    if kind == "lightgbm":
        settings = ArgTrain(classifier="lightgbm", lightgbm_parameters={"n_estimators": 10})
        return make_classifier(settings, seed=0).fit(X, y, groups)
    clf = DeepClassifier(
        kind,
        epochs=3,
        learning_rates=(1e-2,),
        batch_sizes=(32,),
        n_dates=N_DATES,
        day_of_year=[10, 20, 30, 40],
        device="cpu",
        dl_parameters={"d_model": 8, "n_head": 2, "d_k": 4} if kind == "LTAE" else None,
    )
    return clf.fit(X, y, groups)


@pytest.mark.parametrize("kind", ["rf", "lightgbm", "MLPClassifier", "LTAE"])
def test_round_trip_predicts_identically(tmp_path, samples, kind):
    X = samples[0]
    model = fitted(kind, samples)
    path = tmp_path / "model" / "seed_0" / "model.bin"
    meta = metadata(kind, region="1", samples=np.int64(len(X)))
    digest = save_model(path, model, meta)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    loaded, loaded_meta = load_model(path, digest)
    assert loaded_meta == metadata(kind, region="1", samples=len(X))
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(loaded.classes_, CODES)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.predict_proba(X).dtype == np.float32
    assert not list(path.parent.glob(".tmp-*"))
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar["model_class"] == type(model).__name__
    assert sidecar["sha256"] == digest
    assert sidecar["classes"] == CODES
    assert sidecar["dates"] == meta.dates
    assert sidecar["extra"] == {"region": "1", "samples": len(X)}


def test_deep_model_file_is_weights_not_pickled_code(tmp_path, samples):
    model = fitted("MLPClassifier", samples)
    path = tmp_path / "model.bin"
    save_model(path, model, metadata("MLPClassifier"))
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == sorted([MANIFEST, "network.pt"])
        manifest = json.loads(archive.read(MANIFEST))
        network = archive.read("network.pt")
    assert manifest["kind"] == "deep"
    payload = torch.load(io.BytesIO(network), weights_only=True)  # refuses pickled classes
    assert set(payload["state_dict"]) == set(model.module_.state_dict())
    loaded, _ = load_model(path)
    assert loaded.best_params_ == model.best_params_
    np.testing.assert_array_equal(loaded.mean_, model.mean_)
    assert loaded.history_.equals(model.history_)
    assert not loaded.module_.training
    assert json.loads(sidecar_path(path).read_text())["best_params"] == model.best_params_


@pytest.mark.parametrize(
    ("kind", "members"),
    [("rf", ["forest.skops"]), ("lightgbm", ["booster.txt"])],
)
def test_classical_model_files_hold_no_pickle(tmp_path, samples, kind, members):
    path = tmp_path / "model.bin"
    save_model(path, fitted(kind, samples), metadata(kind))
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == sorted([MANIFEST, *members])
        manifest = json.loads(archive.read(MANIFEST))
    assert manifest["format"] == "sitsmap-model"
    assert manifest["kind"] == kind


def test_missing_model_file(tmp_path):
    with pytest.raises(InputDataError, match="not found") as caught:
        load_model(tmp_path / "absent.pt")
    assert "absent.pt" in str(caught.value)


@pytest.mark.parametrize("kind", ["rf", "lightgbm", "MLPClassifier"])
def test_corrupt_model_file(tmp_path, samples, kind):
    path = tmp_path / "model.bin"
    save_model(path, fitted(kind, samples), metadata(kind))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputDataError, match="cannot read model") as caught:
        load_model(path)
    assert caught.value.path == str(path)


def test_garbage_and_foreign_files(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a model")
    with pytest.raises(InputDataError, match="cannot read model"):
        load_model(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)  # a zip archive, but no manifest
    with pytest.raises(InputDataError, match="not a sitsmap model"):
        load_model(foreign)
    other = tmp_path / "other.bin"
    write_model_file(other, {"format": "something-else"}, {})
    with pytest.raises(InputDataError, match="not a sitsmap model"):
        load_model(other)
    damaged = tmp_path / "damaged.bin"
    write_model_file(damaged, {"format": "sitsmap-model", "version": 2, "kind": "deep"}, {})
    with pytest.raises(InputDataError, match="damaged"):
        load_model(damaged)
    unknown = tmp_path / "unknown.bin"
    manifest = {"format": "sitsmap-model", "version": 2, "kind": "svm", "metadata": {}}
    write_model_file(unknown, {**manifest, "state": {}}, {})
    with pytest.raises(InputDataError, match="damaged"):
        load_model(unknown)
    newer = tmp_path / "newer.bin"
    write_model_file(newer, {"format": "sitsmap-model", "version": 99}, {})
    with pytest.raises(InputDataError, match="newer"):
        load_model(newer)
    older = tmp_path / "older.bin"
    write_model_file(older, {"format": "sitsmap-model", "version": 1}, {})
    with pytest.raises(InputDataError, match="no longer read"):
        load_model(older)


def test_metadata_must_match_model_classes(tmp_path, samples):
    model = fitted("rf", samples)
    wrong = ModelMetadata("rf", [1, 2, 3], [], [], [], 0)
    with pytest.raises(ValueError, match="differ"):
        save_model(tmp_path / "model.bin", model, wrong)
    assert not (tmp_path / "model.bin").exists()


def test_save_figure_writes_png_atomically(tmp_path):
    fig = matplotlib.figure.Figure()
    fig.subplots().plot([0, 1], [1, 0])
    path = tmp_path / "plots" / "curve.png"
    save_figure(fig, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["curve.png"]
