"""Save a fitted classifier with what the classification step must know to use it.

A model file holds the classifier and its :class:`ModelMetadata` (classes,
feature names, dates, bands, seed); a ``<path>.json`` sidecar repeats the
metadata for people. Deep models are stored as a ``state_dict`` with the
arguments that rebuild the network (``torch.save``, read back with
``weights_only=True``); forests and LightGBM models with joblib.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sitsmap.errors import InputDataError
from sitsmap.io.jsonfile import write_json
from sitsmap.io.models import read_model_file, sidecar_path, write_model_file
from sitsmap.learning.classical import ClassifierProtocol
from sitsmap.learning.deep.trainer import DeepClassifier

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelMetadata", "load_model", "save_model"]

log = logging.getLogger(__name__)

FORMAT = "sitsmap-model"
"""Marker stored in every model file."""

FORMAT_VERSION = 1
"""Version of the model file layout; a file from a newer version is refused."""


@dataclass(frozen=True)
class ModelMetadata:
    """What a model was trained on, saved beside it.

    Attributes
    ----------
    classifier : str
        ``rf``, ``lightgbm`` or the network name (``MLPClassifier``, …).
    classes : list of int
        Class codes, in the order of ``predict_proba``'s columns.
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


def save_model(path: Path, model: ClassifierProtocol, metadata: ModelMetadata) -> None:
    """Write a fitted classifier and its metadata, atomically, plus a ``<path>.json`` sidecar.

    Parameters
    ----------
    path : Path
        Model file to write (conventionally ``.pt`` for deep models, ``.joblib`` otherwise).
    model : ClassifierProtocol
        A fitted classifier from :func:`~sitsmap.learning.classical.make_classifier`.
    metadata : ModelMetadata
        What the model was trained on.

    Raises
    ------
    ValueError
        If ``metadata.classes`` differ from the model's ``classes_``.
    """
    model_classes = [int(c) for c in np.asarray(model.classes_)]
    if model_classes != [int(c) for c in metadata.classes]:
        raise ValueError(
            f"metadata classes {list(metadata.classes)} differ from the model's "
            f"classes_ {model_classes}"
        )
    described = json.dumps(metadata.to_dict(), default=_plain)
    payload: dict[str, Any] = {"format": FORMAT, "version": FORMAT_VERSION, "metadata": described}
    sidecar: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model_class": type(model).__name__,
        **json.loads(described),
    }
    if isinstance(model, DeepClassifier):
        payload["kind"] = "deep"
        state = model.get_state()
        payload["deep"] = state
        sidecar["best_params"] = model.best_params_
        sidecar["training"] = state["params"]
        write_model_file(path, payload, "torch")
    else:
        payload["kind"] = "estimator"
        payload["estimator"] = model
        sidecar["training"] = _plain_params(model)
        write_model_file(path, payload, "joblib")
    write_json(sidecar_path(path), sidecar)
    log.info("saved %s model to %s", metadata.classifier, path)


def load_model(path: Path) -> tuple[ClassifierProtocol, ModelMetadata]:
    """Read a model written by :func:`save_model`.

    Returns
    -------
    model : ClassifierProtocol
        The fitted classifier; a deep model predicts exactly as when saved.
    metadata : ModelMetadata
        What it was trained on.

    Raises
    ------
    InputDataError
        If the file is missing, corrupt, not a sitsmap model or from a newer sitsmap.
    """
    payload = read_model_file(path)
    if payload.get("format") != FORMAT:
        raise InputDataError("not a sitsmap model file", path)
    if payload.get("version", 0) > FORMAT_VERSION:
        raise InputDataError(
            f"model file version {payload['version']} is newer than this sitsmap's "
            f"({FORMAT_VERSION}); upgrade sitsmap",
            path,
        )
    try:
        metadata = ModelMetadata.from_dict(json.loads(payload["metadata"]))
        if payload["kind"] == "deep":
            model = DeepClassifier.from_state(payload["deep"])
        else:
            model = payload["estimator"]
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise InputDataError(
            f"incomplete or damaged model file ({type(exc).__name__}: {exc})", path
        ) from exc
    return model, metadata


def use_threads(model: ClassifierProtocol, threads: int) -> None:
    """Make ``model`` predict on ``threads`` threads (a worker's share of the cores).

    A model keeps the ``n_jobs`` it was trained with; torch's setting is the process's.
    """
    if isinstance(model, DeepClassifier):
        torch.set_num_threads(threads)
    elif "n_jobs" in model.get_params():
        model.set_params(n_jobs=threads)


def _plain(value: Any) -> Any:
    """Convert numpy values for ``json.dumps``."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    return str(value)


def _plain_params(model: Any) -> dict[str, Any]:
    """Return an estimator's parameters that are plain JSON values."""
    params = model.get_params() if hasattr(model, "get_params") else {}
    return {k: v for k, v in params.items() if isinstance(v, bool | int | float | str | type(None))}
