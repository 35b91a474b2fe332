"""Model files: a torch archive (deep networks) or a joblib pickle (forests).

The JSON sidecar (``<model>.json``) is written with :mod:`sitsmap.io.jsonfile`.
This module only moves bytes; :mod:`sitsmap.learning.persistence` decides
what goes in them. Deep models are read with ``torch.load(weights_only=True)``,
so a model file cannot run code; joblib files are pickles, to be trusted like
any program.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, Literal

import joblib
import torch

from sitsmap.errors import InputDataError
from sitsmap.io.atomic import atomic_path

__all__ = ["read_model_file", "sidecar_path", "write_model_file"]

PathLike = str | os.PathLike[str]
ModelFormat = Literal["torch", "joblib"]

_READ_ERRORS = (
    OSError,
    EOFError,
    RuntimeError,
    ValueError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,
    AttributeError,
    ImportError,
    IndexError,
    KeyError,
    TypeError,
)
"""What torch.load and joblib.load raise on a truncated, damaged or foreign file."""


def sidecar_path(path: PathLike) -> Path:
    """Return the JSON sidecar of a model file: ``<path>.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def write_model_file(path: PathLike, payload: dict[str, Any], file_format: ModelFormat) -> None:
    """Write ``payload`` to ``path`` atomically with ``torch.save`` or ``joblib.dump``."""
    with atomic_path(path) as tmp:
        if file_format == "torch":
            torch.save(payload, tmp)
        else:
            joblib.dump(payload, tmp)


def read_model_file(path: PathLike) -> dict[str, Any]:
    """Read a file written by :func:`write_model_file` (the format is recognised).

    Raises
    ------
    InputDataError
        If the file is missing, unreadable, truncated or not a model payload.
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError("model file not found", path)
    try:
        if zipfile.is_zipfile(path):
            payload = torch.load(path, map_location="cpu", weights_only=True)
        else:
            payload = joblib.load(path)
    except _READ_ERRORS as exc:
        raise InputDataError(
            f"cannot read model ({type(exc).__name__}: {_first_line(exc)})", path
        ) from exc
    if not isinstance(payload, dict):
        raise InputDataError("not a sitsmap model file", path)
    return payload


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no detail"
