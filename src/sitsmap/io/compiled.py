"""Compiled-trees artefacts: ``<model>.compiled.npz`` beside a model file, never a pickle.

The artefact (see :mod:`sitsmap.learning.compiled`) is an uncompressed ``.npz``
archive: the flattened trees' arrays and a ``header`` member holding JSON (format,
version, kind, the model file's SHA-256). It is read with ``allow_pickle=False``:
a planted file cannot run code, and :class:`~sitsmap.learning.compiled.CompiledTrees`
checks every index before a kernel follows it. This module only moves bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from sitsmap.io.atomic import atomic_path

__all__ = ["compiled_path", "file_sha256", "read_compiled", "remove_compiled", "write_compiled"]

PathLike = str | os.PathLike[str]

HEADER = "header"
"""Member of the archive holding the JSON header."""


def compiled_path(model_path: PathLike) -> Path:
    """The artefact of a model file: ``<model>.compiled.npz`` beside it."""
    path = Path(model_path)
    return path.with_name(path.name + ".compiled.npz")


def write_compiled(
    model_path: PathLike, header: dict[str, Any], arrays: dict[str, np.ndarray]
) -> Path:
    """Write the artefact of ``model_path`` atomically; return its path."""
    if HEADER in arrays:
        raise ValueError(f"{HEADER} is the header's name, not an array's")
    path = compiled_path(model_path)
    with atomic_path(path) as tmp, tmp.open("wb") as stream:
        np.savez(stream, **{HEADER: np.asarray(json.dumps(header))}, **arrays)
    return path


def read_compiled(
    model_path: PathLike,
) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """The artefact of ``model_path``: its header and arrays, or None when there is none.

    Raises
    ------
    ValueError
        If the file is not a readable artefact (truncated, not an archive, no header,
        an object array).
    """
    path = compiled_path(model_path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            members = {name: archive[name] for name in archive.files}
        header = json.loads(str(members.pop(HEADER)))
    except (OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ValueError(f"unreadable compiled trees ({type(exc).__name__}: {exc})") from exc
    if not isinstance(header, dict):
        raise ValueError("compiled trees without a header")
    return header, members


def remove_compiled(model_path: PathLike) -> None:
    """Remove the artefact of ``model_path`` if there is one."""
    compiled_path(model_path).unlink(missing_ok=True)


def file_sha256(path: PathLike) -> str:
    """SHA-256 hex digest of a file (a model file, to check its artefact is its own)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
