"""Fingerprints of tasks: what a task's outputs depend on, hashed, as a build system does.

A task's fingerprint covers

- the configuration values it reads (``Task.reads``: dotted keys),
- the identity of its input files (``Task.files``): a content hash for files
  small enough to hash cheaply (DVC's rule), size and modification time for
  larger files, and the list of (path, size, mtime) of every file under an
  input folder (a Sentinel-2 tile's products: 777 GB are never hashed),
- its arguments (tile, seed, fold…; its key names its step),
- the fingerprints of the tasks it needs, so a change propagates downstream
  (Make's out-of-date rule, with content instead of times),
- sitsmap's version.

Settings that only change how the work is scheduled (the ``scheduling`` and
``task_retry_limits`` sections, ``python_data_managing``'s chunking, which
gives bit-identical features) are read by no task, so changing them reruns
nothing. The completion record keeps the parts beside the digest, so that
``sitsmap steps`` can say which key or file made a task stale.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sitsmap.config.loader import config_to_mapping
from sitsmap.config.schema import Config
from sitsmap.pipeline.tasks import Task

HASHED_FILE_BYTES = 64 * 2**20
"""Files up to this size are identified by their content (sha256), larger ones by size and time."""

SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix")
"""A shapefile is several files; a change to any of them changes the ground truth."""


@dataclass(frozen=True)
class Fingerprint:
    """The hashed basis of a task's outputs.

    Attributes
    ----------
    digest : str
        sha256 of ``parts`` (hex).
    parts : dict
        ``version``, ``arguments``, ``config`` (key → value),
        ``files`` (path → identity) and ``needs`` (task key → digest).
    """

    digest: str
    parts: dict[str, Any]


def task_fingerprints(tasks: Sequence[Task], config: Config) -> dict[str, Fingerprint]:
    """Fingerprint every task of ``tasks`` (listed in a valid execution order)."""
    values = config_to_mapping(config)
    identities: dict[Path, Any] = {}
    fingerprints: dict[str, Fingerprint] = {}
    for task in tasks:
        parts = {
            "version": _version(),
            "arguments": _plain(task.arguments),
            "config": {key: config_value(values, key) for key in task.reads},
            "files": {str(path): _identity(Path(path), identities) for path in task.files},
            "needs": {key: fingerprints[key].digest for key in task.depends_on},
        }
        fingerprints[task.key] = Fingerprint(_digest(parts), parts)
    return fingerprints


def config_value(values: Mapping[str, Any], dotted: str) -> Any:
    """The value of a dotted key (``arg_train.classifier``) in the dumped configuration."""
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(f"no configuration key {dotted!r}")
        node = node[part]
    return node


def stale_reasons(recorded: Mapping[str, Any], current: Fingerprint) -> list[str]:
    """Why a completion record no longer matches ``current``: changed keys, files, arguments.

    Empty when the record's fingerprint is ``current``'s. The tasks it needs are
    named (``needs <key>, …``) only when nothing of the task's own changed.
    """
    if recorded.get("fingerprint") == current.digest:
        return []
    old = recorded.get("basis")
    if not isinstance(old, Mapping):
        return ["recorded without a fingerprint (an older sitsmap)"]
    new = current.parts
    reasons = []
    if old.get("version") != new["version"]:
        reasons.append(f"sitsmap version changed ({old.get('version')} → {new['version']})")
    reasons += _changed(old.get("config", {}), new["config"])
    reasons += [
        f"input changed: {path}"
        for path in new["files"]
        if old.get("files", {}).get(path) != new["files"][path]
    ]
    if old.get("arguments") != new["arguments"]:
        reasons.append("the task's arguments changed")
    if not reasons:  # only what the tasks it needs were made from changed
        old_needs = old.get("needs", {})
        changed = [k for k in new["needs"] if old_needs.get(k) != new["needs"][k]]
        reasons = [f"needs {key}, which changed" for key in changed] or ["fingerprint changed"]
    return reasons


def _changed(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """One line per changed configuration value, naming the innermost key that changed."""
    lines = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            lines += _changed(before, after, f"{prefix}{key}.")
        else:
            lines.append(f"{prefix}{key} changed ({before!r} → {after!r})")
    return lines


def _identity(path: Path, cache: dict[Path, Any]) -> Any:
    """What identifies an input's content, cheaply (cached per planning)."""
    if path not in cache:
        if path.is_dir():
            cache[path] = _folder_identity(path)
        elif path.suffix.lower() == ".shp":
            cache[path] = {p.name: _file_identity(p) for p in _shapefile_parts(path)}
        else:
            cache[path] = _file_identity(path)
    return cache[path]


def _file_identity(path: Path) -> str:
    try:
        stat = path.stat()
    except OSError:
        return "missing"
    if stat.st_size > HASHED_FILE_BYTES:
        return f"size {stat.st_size}, mtime {stat.st_mtime_ns}"
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(2**20), b""):
            digest.update(block)
    return f"sha256 {digest.hexdigest()}"


def _shapefile_parts(path: Path) -> list[Path]:
    """The files of a shapefile, whatever the case of their extensions (``GT.SHP``, ``GT.dbf``)."""
    try:
        entries = sorted(path.parent.iterdir())
    except OSError:
        return [path]
    return [p for p in entries if p.stem == path.stem and p.suffix.lower() in SHAPEFILE_PARTS] or [
        path
    ]


def _folder_identity(folder: Path) -> str:
    """sha256 of the relative path, size and mtime of every entry under ``folder``.

    Symbolic links are followed (products linked from a store are common), each
    real folder once, and the names of links count, so that adding or removing a
    linked product changes the identity.
    """
    digest = hashlib.sha256()
    seen: set[str] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs.clear()
            continue
        seen.add(real)
        dirs.sort()
        for name in dirs:  # a folder counts by its name: its files say what changed in it
            digest.update(f"{Path(root, name).relative_to(folder)}/\n".encode(errors="replace"))
        for name in sorted(files):
            path = Path(root, name)
            try:
                stat = path.stat()
                line = f"{path.relative_to(folder)}\t{stat.st_size}\t{stat.st_mtime_ns}\n"
            except OSError:
                line = f"{path.relative_to(folder)}\tbroken link\n"
            digest.update(line.encode(errors="replace"))
    return f"tree {digest.hexdigest()}"


def _digest(parts: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _plain(value: Any) -> Any:
    """Arguments as JSON values (sequences as lists), so that a record compares equal."""
    return json.loads(json.dumps(value, default=str))


def _version() -> str:
    from sitsmap import __version__

    return __version__
