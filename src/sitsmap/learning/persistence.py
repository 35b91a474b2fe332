"""Save a fitted classifier or regressor with what the classification step must know to use it.

A model file (see :mod:`sitsmap.io.models`) is a zip archive: a JSON manifest
with the :class:`ModelMetadata` (classes, feature names, dates, bands, seed)
and the plain parameters, and one member in a format that cannot run code
when read:

- deep networks: ``network.pt``, a ``state_dict`` with the arguments that
  rebuild the network (``torch.save``, read back with ``weights_only=True``);
- random forests: ``forest.skops``, the plain scikit-learn estimator
  (:mod:`skops.io`, read back trusting only :data:`TRUSTED_SKOPS_TYPES`);
- support vector machines: ``svm.skops``, the calibrated scikit-learn pipeline
  (read back trusting only :data:`TRUSTED_SVM_TYPES`);
- LightGBM: ``booster.txt``, LightGBM's own text model, the wrapper being
  rebuilt from the manifest's parameters and classes.

Regressors (``arg_train.task: regression``, :mod:`sitsmap.learning.regressors`) are
stored alike, under their own kinds: ``rf_regression`` (``forest.skops``, trusting
only :data:`TRUSTED_REGRESSOR_SKOPS_TYPES`, every tree checked), ``lightgbm_regression``
(``booster.txt``, plus ``quantile_low.txt`` and ``quantile_high.txt`` with a quantile
interval) and ``deep_regression`` (``network.pt``). Their metadata has no classes.

Random forests and LightGBM models are also compiled for classification
(:mod:`sitsmap.learning.compiled`): ``<path>.compiled.npz`` beside the model file,
bound to its SHA-256 (a model without one is compiled when loaded).

No pickle is written or read: an output folder may hold a planted file, and
reading a model must not run its code. :func:`save_model` returns the file's
SHA-256, kept in the learning task's completion record, and
:func:`load_model` refuses a file that no longer matches it. A ``<path>.json``
sidecar repeats the metadata for people.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import pickle
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import skops.io
import torch
from lightgbm.basic import LightGBMError
from sklearn.calibration import CalibratedClassifierCV, _CalibratedClassifier, _SigmoidCalibration
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from skops.io.exceptions import UntrustedTypesFoundException

from sitsmap.errors import InputDataError
from sitsmap.io.jsonfile import write_json
from sitsmap.io.models import read_model_file, sidecar_path, write_model_file
from sitsmap.learning.classical import SVM, ClassifierProtocol, LightGBM, RandomForest
from sitsmap.learning.compiled import save_compiled
from sitsmap.learning.deep.trainer import DeepClassifier
from sitsmap.learning.regressors import (
    LightGBMRegression,
    RandomForestRegression,
    RegressorProtocol,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "TRUSTED_REGRESSOR_SKOPS_TYPES",
    "TRUSTED_SKOPS_TYPES",
    "TRUSTED_SVM_TYPES",
    "ModelMetadata",
    "load_model",
    "save_model",
]

log = logging.getLogger(__name__)

FORMAT = "sitsmap-model"
"""Marker stored in every model file."""

FORMAT_VERSION = 2
"""Version of the model file layout; a file from a newer version is refused.

Version 1 files (a torch archive or a joblib pickle) are not read."""

TRUSTED_SKOPS_TYPES = [
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
]
"""The only types, besides skops' built-in safe ones, a forest member may hold.

skops does not trust ``Tree`` by default: its node indices are followed without
bounds checks. It is trusted here only because :func:`check_forest` validates
every tree before the forest is used. (LightGBM's text models are parsed by
LightGBM's own C++ code, which validates them as it reads.)"""

TRUSTED_REGRESSOR_SKOPS_TYPES = [
    "sklearn.ensemble._forest.RandomForestRegressor",
    "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._tree.Tree",
]
"""The only types, besides skops' built-in safe ones, a regression forest member may hold
(``Tree`` trusted for the same reason as in :data:`TRUSTED_SKOPS_TYPES`)."""

TRUSTED_SVM_TYPES = [
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.svm._classes.SVC",
]
"""The only types, besides skops' built-in safe ones, an SVM member may hold.

skops does not trust the two private calibration classes by default; they hold
the fitted SVC pipeline, the class list and two floats per class, checked by
:func:`check_svm` with the SVC's arrays, which libsvm reads without bounds checks."""

MEMBERS = {
    "deep": "network.pt",
    "rf": "forest.skops",
    "lightgbm": "booster.txt",
    "svm": "svm.skops",
    "deep_regression": "network.pt",
    "rf_regression": "forest.skops",
    "lightgbm_regression": "booster.txt",
}
"""The archive member holding each kind of model."""

QUANTILE_MEMBERS = ("quantile_low.txt", "quantile_high.txt")
"""The members holding a LightGBM regressor's low and high quantile models, when it has them."""

DEEP_REGRESSOR = "sitsmap.learning.deep.regressor"
"""The module of the network regressor, imported when one is saved or read."""

Model = ClassifierProtocol | RegressorProtocol

_READ_ERRORS = (
    AttributeError,
    EOFError,
    ImportError,
    IndexError,
    KeyError,
    OSError,
    RuntimeError,
    TypeError,
    ValueError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,
)
"""What decoding a damaged member raises (torch, skops, LightGBM, the rebuilds)."""


@dataclass(frozen=True)
class ModelMetadata:
    """What a model was trained on, saved beside it.

    Attributes
    ----------
    classifier : str
        ``rf``, ``lightgbm``, ``svm`` or the network name (``MLPClassifier``, …).
    classes : list of int
        Class codes, in the order of ``predict_proba``'s columns; empty for a regressor.
    feature_names : list of str
        Feature columns, in the order the model expects them.
    dates : list of str
        Dates of the temporal grid (``YYYYMMDD``).
    bands : list of str
        Spectral bands used.
    seed : int
        Seed of the run.
    extra : dict
        Anything else worth keeping (JSON-serialisable), e.g. the region.
    """

    classifier: str
    classes: list[int]
    feature_names: list[str]
    dates: list[str]
    bands: list[str]
    seed: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the metadata as plain JSON-ready values."""
        data = asdict(self)
        data["classes"] = [int(c) for c in self.classes]
        data["seed"] = int(self.seed)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMetadata:
        """Build metadata from :meth:`to_dict`'s output (unknown keys are ignored)."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def save_model(path: Path, model: Model, metadata: ModelMetadata) -> str:
    """Write a fitted model and its metadata, atomically, plus a ``<path>.json`` sidecar.

    A random forest or LightGBM model is also compiled, beside it
    (:func:`~sitsmap.learning.compiled.save_compiled`; never fails the save).

    Parameters
    ----------
    path : Path
        Model file to write (the chain's is ``model/seed_N/model.bin``).
    model : ClassifierProtocol or RegressorProtocol
        A fitted classifier from :func:`~sitsmap.learning.classical.make_classifier`,
        or regressor from :func:`~sitsmap.learning.regressors.make_regressor`.
    metadata : ModelMetadata
        What the model was trained on (no classes for a regressor).

    Returns
    -------
    str
        SHA-256 hex digest of the model file, for :func:`load_model`'s check.

    Raises
    ------
    ValueError
        If ``metadata.classes`` differ from the model's ``classes_`` (a regressor has
        none), or the model is of a kind that cannot be saved without a pickle.
    """
    regressor = _is_regressor(model)
    model_classes = [] if regressor else [int(c) for c in np.asarray(model.classes_)]
    if model_classes != [int(c) for c in metadata.classes]:
        raise ValueError(
            f"metadata classes {list(metadata.classes)} differ from the model's "
            f"classes_ {model_classes}"
        )
    described = json.loads(json.dumps(metadata.to_dict(), default=_plain))
    kind, state, members = _encode(model)
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "kind": kind,
        "metadata": described,
        "state": state,
    }
    digest = write_model_file(path, manifest, members)
    compiled = save_compiled(path, model, digest)
    sidecar: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model_class": type(model).__name__,
        "sha256": digest,
        "compiled_trees": None if compiled is None else compiled.name,
        **described,
    }
    if isinstance(model, DeepClassifier) or kind == "deep_regression":
        sidecar["best_params"] = getattr(model, "best_params_", None)
        sidecar["training"] = model.get_state()["params"]
    else:
        sidecar["training"] = _plain_params(model)
    write_json(sidecar_path(path), sidecar)
    log.info("saved %s model to %s", metadata.classifier, path)
    return digest


def load_model(path: Path, expected_sha256: str | None = None) -> tuple[Model, ModelMetadata]:
    """Read a model written by :func:`save_model`; no code stored in the file runs.

    Parameters
    ----------
    path : Path
        The model file.
    expected_sha256 : str, optional
        The digest :func:`save_model` returned (from the learning task's
        completion record), checked before anything is parsed. ``None``: no check.

    Returns
    -------
    model : ClassifierProtocol or RegressorProtocol
        The fitted model; it predicts exactly as when saved (a regressor's
        uncertainty too).
    metadata : ModelMetadata
        What it was trained on.

    Raises
    ------
    InputDataError
        If the file is missing, differs from ``expected_sha256``, is corrupt,
        is not a sitsmap model (a pickle, say), holds a type sitsmap does not
        trust, or is from a newer sitsmap.
    """
    manifest, members = read_model_file(path, expected_sha256)
    if manifest.get("format") != FORMAT:
        raise InputDataError("not a sitsmap model file", path)
    version = manifest.get("version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InputDataError(
            f"model file version {version} is newer than this sitsmap's "
            f"({FORMAT_VERSION}); upgrade sitsmap",
            path,
        )
    if version < FORMAT_VERSION:
        raise InputDataError(
            f"model file version {version} is no longer read: rerun from --first-step learning",
            path,
        )
    try:
        metadata = ModelMetadata.from_dict(manifest["metadata"])
        kind = manifest["kind"]
        model = _decode(kind, manifest["state"], members)
    except UntrustedTypesFoundException as exc:
        raise InputDataError(
            f"model file holds types sitsmap does not trust ({_first_line(exc)})", path
        ) from exc
    except (*_READ_ERRORS, LightGBMError) as exc:
        raise InputDataError(
            f"incomplete or damaged model file ({type(exc).__name__}: {_first_line(exc)})", path
        ) from exc
    return model, metadata


def _encode(model: Model) -> tuple[str, dict[str, Any], dict[str, bytes]]:
    """Return a fitted model's kind, plain JSON state and archive members."""
    if _is_regressor(model):  # first: a network regressor may derive from DeepClassifier
        return _encode_regressor(model)
    if isinstance(model, DeepClassifier):
        buffer = io.BytesIO()
        torch.save(model.get_state(), buffer)
        return "deep", {}, {MEMBERS["deep"]: buffer.getvalue()}
    if isinstance(model, LightGBM):
        text, state = model.get_state()
        json.dumps(state)  # parameters must be plain JSON values, rebuilt without a pickle
        return "lightgbm", state, {MEMBERS["lightgbm"]: text.encode("utf-8")}
    if isinstance(model, RandomForest):
        return "rf", {}, {MEMBERS["rf"]: skops.io.dumps(model.to_sklearn())}
    if isinstance(model, SVM):
        state = {"max_samples": int(model.max_samples)}
        return "svm", state, {MEMBERS["svm"]: skops.io.dumps(model.to_sklearn())}
    raise ValueError(f"cannot save a {type(model).__name__} without a pickle")


def _encode_regressor(model: Any) -> tuple[str, dict[str, Any], dict[str, bytes]]:
    """:func:`_encode` for a regressor."""
    if isinstance(model, LightGBMRegression):
        texts, state = model.get_state()
        json.dumps(state)  # parameters must be plain JSON values, rebuilt without a pickle
        names = [MEMBERS["lightgbm_regression"], *QUANTILE_MEMBERS[: len(texts) - 1]]
        members = {name: text.encode("utf-8") for name, text in zip(names, texts, strict=True)}
        return "lightgbm_regression", state, members
    if isinstance(model, RandomForestRegression):
        return "rf_regression", {}, {MEMBERS["rf_regression"]: skops.io.dumps(model.to_sklearn())}
    deep = _deep_regressor_type()
    if deep is not None and isinstance(model, deep):
        buffer = io.BytesIO()
        torch.save(model.get_state(), buffer)
        return "deep_regression", {}, {MEMBERS["deep_regression"]: buffer.getvalue()}
    raise ValueError(f"cannot save a {type(model).__name__} without a pickle")


def _decode(kind: str, state: dict[str, Any], members: dict[str, bytes]) -> Model:
    """Rebuild a fitted model from :func:`_encode`'s output, running no stored code."""
    if kind not in MEMBERS:
        raise ValueError(f"unknown model kind {kind!r}")
    member = members[MEMBERS[kind]]
    if kind == "deep":
        payload = torch.load(io.BytesIO(member), map_location="cpu", weights_only=True)
        return DeepClassifier.from_state(payload)
    if kind == "lightgbm":
        return LightGBM.from_state(member.decode("utf-8"), state)
    if kind == "rf":
        forest = skops.io.loads(member, trusted=TRUSTED_SKOPS_TYPES)
        if type(forest) is not RandomForestClassifier:
            raise TypeError(f"expected a RandomForestClassifier, found {type(forest).__name__}")
        check_forest(forest)
        return RandomForest.from_sklearn(forest)
    if kind == "svm":
        calibrated = skops.io.loads(member, trusted=TRUSTED_SVM_TYPES)
        check_svm(calibrated)
        return SVM.from_sklearn(calibrated, max_samples=int(state["max_samples"]))
    return _decode_regressor(kind, state, members)


def _decode_regressor(kind: str, state: dict[str, Any], members: dict[str, bytes]) -> Model:
    """:func:`_decode` for a regressor's kind."""
    member = members[MEMBERS[kind]]
    if kind == "lightgbm_regression":
        quantiles = [members[name] for name in QUANTILE_MEMBERS if name in members]
        texts = [data.decode("utf-8") for data in (member, *quantiles)]
        return LightGBMRegression.from_state(texts, state)
    if kind == "rf_regression":
        forest = skops.io.loads(member, trusted=TRUSTED_REGRESSOR_SKOPS_TYPES)
        if type(forest) is not RandomForestRegressor:
            raise TypeError(f"expected a RandomForestRegressor, found {type(forest).__name__}")
        check_forest(forest)
        return RandomForestRegression.from_sklearn(forest)
    deep = _deep_regressor_type()
    if deep is None:
        raise ValueError("this sitsmap has no network regressor to read it with")
    payload = torch.load(io.BytesIO(member), map_location="cpu", weights_only=True)
    return deep.from_state(payload)


def _is_regressor(model: Any) -> bool:
    """Whether ``model`` is a regressor (its class says ``task = "regression"``)."""
    return getattr(type(model), "task", None) == "regression"


def _deep_regressor_type() -> type | None:
    """The network regressor's class, or None where this sitsmap has none."""
    try:
        module = importlib.import_module(DEEP_REGRESSOR)
    except ModuleNotFoundError as exc:
        if exc.name != DEEP_REGRESSOR:
            raise
        return None
    return module.DeepRegressor


def check_forest(forest: RandomForestClassifier | RandomForestRegressor) -> None:
    """Refuse a forest whose trees scikit-learn could not walk safely.

    skops trusts no ``Tree`` by default for a reason: prediction follows the
    stored node indices without bounds checks, so a crafted file can read
    memory out of bounds or crash the process. Every tree must be a plain
    ``DecisionTreeClassifier`` (``DecisionTreeRegressor`` in a regression forest,
    which has a single output) whose children come after their parent (no
    cycle), inside the tree, whose split features exist, and whose value
    table matches the forest's classes (one value per node in regression).

    Raises
    ------
    ValueError
        On the first tree that breaks one of these rules.
    """
    n_features = int(forest.n_features_in_)
    regression = isinstance(forest, RandomForestRegressor)
    if regression and int(forest.n_outputs_) != 1:
        raise ValueError(f"a regression forest of {forest.n_outputs_} outputs, not 1")
    n_classes = 1 if regression else len(forest.classes_)
    tree_type = DecisionTreeRegressor if regression else DecisionTreeClassifier
    for number, estimator in enumerate(forest.estimators_):
        if type(estimator) is not tree_type:
            raise ValueError(f"tree {number} is a {type(estimator).__name__}")
        tree = estimator.tree_
        nodes = int(tree.node_count)
        left, right = np.asarray(tree.children_left), np.asarray(tree.children_right)
        feature, value = np.asarray(tree.feature), np.asarray(tree.value)
        index = np.arange(nodes)
        leaf = left == -1
        split = ~leaf
        broken = (
            left.shape != (nodes,)
            or right.shape != (nodes,)
            or feature.shape != (nodes,)
            or value.shape[0] != nodes
            or value.shape[-1] != n_classes
            or (regression and (value.shape[1:] != (1, 1) or int(tree.n_outputs) != 1))
            or int(tree.n_features) != n_features
            or not np.array_equal(leaf, right == -1)
            or np.any((left[split] <= index[split]) | (left[split] >= nodes))
            or np.any((right[split] <= index[split]) | (right[split] >= nodes))
            or np.any((feature[split] < 0) | (feature[split] >= n_features))
        )
        if broken:
            raise ValueError(f"tree {number} has node indices out of bounds or inconsistent")


def check_svm(calibrated: CalibratedClassifierCV) -> None:
    """Refuse an SVM that is not the chain's layout, or whose arrays libsvm could overrun.

    The layout is one sigmoid-calibrated ``StandardScaler`` → ``SVC`` pipeline.
    libsvm follows the per-class support counts into the support-vector and
    coefficient arrays without bounds checks: their shapes must agree.

    Raises
    ------
    TypeError
        If an object is not of the expected type.
    ValueError
        If the arrays' shapes disagree.
    """
    if type(calibrated) is not CalibratedClassifierCV:
        raise TypeError(f"expected a CalibratedClassifierCV, found {type(calibrated).__name__}")
    (inner,) = calibrated.calibrated_classifiers_
    pipeline = inner.estimator
    if type(inner) is not _CalibratedClassifier or type(pipeline) is not Pipeline:
        raise TypeError("expected one calibrated pipeline")
    steps = [type(step) for _, step in pipeline.steps]
    if steps != [StandardScaler, SVC] or inner.method != "sigmoid":
        raise TypeError(f"expected a sigmoid-calibrated StandardScaler → SVC, found {steps}")
    if any(type(c) is not _SigmoidCalibration for c in inner.calibrators):
        raise TypeError("expected sigmoid calibrators")
    _check_svc(pipeline[-1], int(calibrated.n_features_in_), len(calibrated.classes_))
    scaler = pipeline[0]
    if np.shape(scaler.mean_) != (calibrated.n_features_in_,):
        raise ValueError("the scaler's means do not match the features")


def _check_svc(svc: SVC, n_features: int, n_classes: int) -> None:
    """Refuse an SVC whose libsvm arrays disagree with each other."""
    n_support = np.asarray(svc._n_support)
    n_vectors = int(n_support.sum()) if n_support.size else -1
    broken = (
        svc.kernel == "precomputed"
        or n_support.shape != (n_classes,)
        or np.any(n_support < 0)
        or np.shape(svc.support_vectors_) != (n_vectors, n_features)
        or np.shape(svc.support_) != (n_vectors,)
        or np.shape(svc._dual_coef_) != (n_classes - 1, n_vectors)
        or np.shape(svc._intercept_) != (n_classes * (n_classes - 1) // 2,)
    )
    if broken:
        raise ValueError("the SVC's support vectors and coefficients are inconsistent")


def use_threads(model: Model, threads: int) -> None:
    """Make ``model`` predict on ``threads`` threads (a worker's share of the cores).

    A model keeps the ``n_jobs`` it was trained with; torch's setting is the process's.
    A LightGBM regressor's quantile models get the same threads.
    """
    deep = _deep_regressor_type()
    if isinstance(model, DeepClassifier) or (deep is not None and isinstance(model, deep)):
        torch.set_num_threads(threads)
    elif "n_jobs" in model.get_params():
        model.set_params(n_jobs=threads)
        for quantile in getattr(model, "quantile_models_", ()):
            quantile.set_params(n_jobs=threads)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no detail"


def _plain(value: Any) -> Any:
    """Convert numpy values for ``json.dumps``."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    return str(value)


def _plain_params(model: Any) -> dict[str, Any]:
    """Return an estimator's parameters that are plain JSON values."""
    params = model.get_params() if hasattr(model, "get_params") else {}
    return {k: v for k, v in params.items() if isinstance(v, bool | int | float | str | type(None))}
