"""Model files: a zip archive of a JSON manifest and data members, never a pickle.

A model file (``model/seed_N/model.bin``) is a zip archive written here with
:mod:`zipfile`: ``sitsmap.json`` (the manifest: format, version, kind,
metadata, plain parameters) and the members that hold the fitted model, in
formats that cannot run code when read — a ``torch.save`` state dict read
with ``weights_only=True``, a :mod:`skops` file read with an explicit list
of trusted types, or LightGBM's text model. Output folders are shared and
outlive runs, so a file planted there must not run code when a later run
reads it, as a pickle (``joblib``) would.

:func:`write_model_file` returns the file's SHA-256, which the learning task
keeps in its completion record; :func:`read_model_file` checks it before it
parses anything. The JSON sidecar (``<model>.json``) is written with
:mod:`sitsmap.io.jsonfile`. This module only moves bytes;
:mod:`sitsmap.learning.persistence` decides what goes in them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

from sitsmap.errors import InputDataError
from sitsmap.io.atomic import atomic_path

__all__ = ["MANIFEST", "read_model_file", "sidecar_path", "write_model_file"]

PathLike = str | os.PathLike[str]

MANIFEST = "sitsmap.json"
"""Name of the JSON manifest inside a model archive."""

_NOT_A_MODEL = (
    "not a sitsmap model file (pickles and older model files are not read): "
    "rerun from --first-step learning"
)


def sidecar_path(path: PathLike) -> Path:
    """Return the JSON sidecar of a model file: ``<path>.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def write_model_file(path: PathLike, manifest: dict[str, Any], members: dict[str, bytes]) -> str:
    """Write a model archive atomically and return its SHA-256 hex digest.

    Parameters
    ----------
    path : str or PathLike
        The model file.
    manifest : dict
        JSON values, stored as ``sitsmap.json``.
    members : dict of str to bytes
        The other members of the archive, by name.

    Returns
    -------
    str
        SHA-256 of the file written, as lowercase hex.
    """
    if MANIFEST in members:
        raise ValueError(f"{MANIFEST} is the manifest's name, not a member's")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr(MANIFEST, json.dumps(manifest, indent=1))
        for name, data in members.items():
            archive.writestr(name, data)
    data = buffer.getvalue()
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def read_model_file(
    path: PathLike, expected_sha256: str | None = None
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Read a file written by :func:`write_model_file`; run none of its content.

    Parameters
    ----------
    path : str or PathLike
        The model file.
    expected_sha256 : str, optional
        The digest :func:`write_model_file` returned; checked before anything
        is parsed. ``None``: no check.

    Returns
    -------
    manifest : dict
        The JSON manifest.
    members : dict of str to bytes
        The other members, by name.

    Raises
    ------
    InputDataError
        If the file is missing, unreadable, differs from ``expected_sha256``,
        or is not a model archive (a pickle, a truncated or foreign file).
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError("model file not found", path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputDataError(f"cannot read model ({_first_line(exc)})", path) from exc
    if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256.lower():
        raise InputDataError(
            "model file does not match the learning task's completion record "
            "(checksum differs): rerun from --first-step learning",
            path,
        )
    members = _unzip(data, path)
    try:
        manifest = json.loads(members.pop(MANIFEST))
    except (KeyError, ValueError) as exc:
        raise InputDataError(_NOT_A_MODEL, path) from exc
    if not isinstance(manifest, dict):
        raise InputDataError(_NOT_A_MODEL, path)
    return manifest, members


def _unzip(data: bytes, path: Path) -> dict[str, bytes]:
    """Return the members of the zip archive ``data`` (the bytes of ``path``) by name."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise InputDataError(f"cannot read model (not a zip archive); {_NOT_A_MODEL}", path)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise InputDataError(
            f"cannot read model ({type(exc).__name__}: {_first_line(exc)})", path
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no detail"
