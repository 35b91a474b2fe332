"""Model files run no code when read: no pickle, trusted skops types, checked digests."""

import io
import json
import os
import pathlib
import pickle
import zipfile

import joblib
import numpy as np
import pytest
import skops.io
import torch
from sklearn.preprocessing import FunctionTransformer
from sklearn.tree import ExtraTreeClassifier

from sitsmap.errors import InputDataError
from sitsmap.io.models import MANIFEST
from sitsmap.learning.persistence import load_model, save_model, use_threads
from tests.test_persistence import fitted, metadata, samples  # noqa: F401 (fixture)


class Planted:
    """Unpickling it touches ``marker``: what a planted model file could do."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


@pytest.fixture(autouse=True)
def restore_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def model_path(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "output" / "model" / "seed_0" / "model.bin"


def rewrite(path: pathlib.Path, **members: bytes) -> None:
    """Replace members of the model archive ``path`` (``sitsmap_json`` for the manifest)."""
    with zipfile.ZipFile(path) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    if "sitsmap_json" in members:
        members[MANIFEST] = members.pop("sitsmap_json")
    contents.update(members)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)


def test_planted_object_runs_code_when_unpickled(tmp_path):
    # the control: the payload of the tests below does run code when a pickle is read
    marker = tmp_path / "MARKER"
    pickle.loads(pickle.dumps(Planted(marker)))
    assert marker.exists()


@pytest.mark.parametrize("writer", ["pickle", "joblib", "torch"])
def test_planted_pickle_is_refused_and_runs_nothing(tmp_path, writer):
    marker = tmp_path / "MARKER"
    path = model_path(tmp_path)
    path.parent.mkdir(parents=True)
    payload = {"format": "sitsmap-model", "version": 2, "estimator": Planted(marker)}
    if writer == "pickle":
        path.write_bytes(pickle.dumps(payload))
    elif writer == "joblib":
        joblib.dump(payload, path)  # what sitsmap wrote before: a pickle
    else:
        torch.save(payload, path)  # a zip archive holding a pickle
    with pytest.raises(InputDataError, match="not a sitsmap model file") as caught:
        load_model(path)
    assert caught.value.path == str(path)
    assert "\n" not in str(caught.value)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize(
    ("kind", "member"),
    [("MLPClassifier", "network.pt"), ("rf", "forest.skops"), ("lightgbm", "booster.txt")],
)
def test_pickle_inside_a_model_archive_is_refused(tmp_path, samples, kind, member):  # noqa: F811
    marker = tmp_path / "MARKER"
    path = model_path(tmp_path)
    save_model(path, fitted(kind, samples), metadata(kind))
    planted = io.BytesIO()
    torch.save({"state_dict": Planted(marker)}, planted)
    rewrite(path, **{member: planted.getvalue()})
    with pytest.raises(InputDataError, match="damaged") as caught:
        load_model(path)
    assert caught.value.path == str(path)
    assert not marker.exists()
    rewrite(path, **{member: pickle.dumps(Planted(marker))})
    with pytest.raises(InputDataError, match="damaged"):
        load_model(path)
    assert not marker.exists()


@pytest.mark.parametrize("untrusted", ["sitsmap_subclass", "function"])
def test_skops_file_with_an_untrusted_type_is_refused(tmp_path, samples, untrusted):  # noqa: F811
    path = model_path(tmp_path)
    model = fitted("rf", samples)
    save_model(path, model, metadata("rf"))
    # our own subclass, or an estimator holding a function: neither is on the trusted list
    obj = model if untrusted == "sitsmap_subclass" else FunctionTransformer(func=os.system)
    data = skops.io.dumps(obj)
    assert skops.io.get_untrusted_types(data=data)
    rewrite(path, **{"forest.skops": data})
    with pytest.raises(InputDataError, match="does not trust") as caught:
        load_model(path)
    assert caught.value.path == str(path)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "damage", ["child_out_of_bounds", "child_before_parent", "feature_out_of_bounds", "other_tree"]
)
def test_forest_with_crafted_trees_is_refused_before_predicting(tmp_path, samples, damage):  # noqa: F811
    # scikit-learn follows node indices unchecked: such a tree would crash predict (segfault)
    path = model_path(tmp_path)
    model = fitted("rf", samples)
    save_model(path, model, metadata("rf"))
    forest = model.to_sklearn()
    if damage == "other_tree":
        forest.estimators_[0] = ExtraTreeClassifier().fit(*samples[:2])
    else:
        tree = forest.estimators_[0].tree_
        state = tree.__getstate__()
        nodes = state["nodes"].copy()
        field, value = {
            "child_out_of_bounds": ("left_child", 10**9),
            "child_before_parent": ("right_child", 0),
            "feature_out_of_bounds": ("feature", 10**6),
        }[damage]
        nodes[field][0] = value
        state["nodes"] = nodes
        tree.__setstate__(state)
    rewrite(path, **{"forest.skops": skops.io.dumps(forest)})
    with pytest.raises(InputDataError) as caught:
        load_model(path)
    assert caught.value.path == str(path) and "\n" not in str(caught.value)


def test_changed_model_file_is_refused_when_the_digest_is_given(tmp_path, samples):  # noqa: F811
    path = model_path(tmp_path)
    digest = save_model(path, fitted("rf", samples), metadata("rf"))
    load_model(path, digest)
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read(MANIFEST))
    manifest["metadata"]["classes"] = [1, 2, 3]
    rewrite(path, sitsmap_json=json.dumps(manifest).encode())
    _, changed = load_model(path)  # still a valid model file, but not the one learnt
    assert changed.classes == [1, 2, 3]
    with pytest.raises(InputDataError, match="checksum differs") as caught:
        load_model(path, digest)
    assert caught.value.path == str(path)


def test_checksum_is_checked_before_the_file_is_parsed(tmp_path):
    marker = tmp_path / "MARKER"
    path = model_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps(Planted(marker)))
    with pytest.raises(InputDataError, match="checksum differs"):
        load_model(path, "0" * 64)
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["rf", "lightgbm", "MLPClassifier"])
def test_round_trip_on_threads_predicts_identically(tmp_path, samples, kind):  # noqa: F811
    X = samples[0]
    model = fitted(kind, samples)
    path = model_path(tmp_path)
    digest = save_model(path, model, metadata(kind))
    loaded, loaded_meta = load_model(path, digest)
    use_threads(loaded, 2)
    if kind != "MLPClassifier":
        assert loaded.get_params()["n_jobs"] == 2
    assert type(loaded) is type(model)
    assert loaded_meta.classes == list(metadata(kind).classes)
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=0, atol=1e-7)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
