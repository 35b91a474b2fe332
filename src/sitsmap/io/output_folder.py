"""Output folders that sitsmap owns: a marker, a lock, and refusals that protect the user's data.

- **Ownership.** A folder sitsmap creates (or finds empty) gets a marker,
  ``.sitsmap/output-folder.json``. sitsmap writes into an existing non-empty
  folder only if it carries the marker, and ``remove_output_path`` empties
  only such a folder (Git's refusal to clobber).
- **Refusals.** An output_path that is, contains or lies inside an input
  (Sentinel-2 folder, ground truth, configuration file, nomenclature…), the
  file-system root or the user's home folder is refused before anything is
  written.
- **A lock per folder.** An OS file lock (``filelock``), so a second run on
  the same folder stops at once, naming the first one's PID and start time.
  The OS releases the lock of a killed process, so a stale lock never blocks.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from sitsmap.errors import InputDataError, StepError
from sitsmap.io.atomic import remove_path, write_text

STATE_DIR = ".sitsmap"
MARKER = f"{STATE_DIR}/output-folder.json"
LOCK = f"{STATE_DIR}/lock"
LOCK_INFO = f"{STATE_DIR}/lock.json"
_KEPT = {"output-folder.json", "lock", "lock.json"}
"""What emptying an owned folder keeps: its marker and the lock of the run that empties it."""


def check_output_path(output: Path, inputs: Mapping[str, Path | None]) -> None:
    """Refuse an output folder whose use could overwrite or delete the user's data.

    Parameters
    ----------
    output : Path
        ``chain.output_path``.
    inputs : mapping of str to Path
        Every input the run reads, by the config key that names it.

    Raises
    ------
    InputDataError
        If ``output`` is the file-system root, the home folder (or one of its
        parents), or is, contains or lies inside one of ``inputs``.
    """
    real = _real(output)
    if real == Path(real.anchor):
        raise InputDataError("chain.output_path is the file-system root; choose a folder", output)
    home = _real(Path.home())
    if real == home or real in home.parents:
        raise InputDataError(
            "chain.output_path is your home folder or holds it; choose a folder of its own", output
        )
    for key, path in inputs.items():
        if path is None:
            continue
        source = _real(path)
        if real == source or real in source.parents or source in real.parents:
            relation = "is" if real == source else "holds" if real in source.parents else "is in"
            raise InputDataError(
                f"chain.output_path {relation} the input {key} ({path}); "
                "outputs must go to a folder of their own",
                output,
            )


def check_claimable(output: Path) -> None:
    """Refuse an output folder that sitsmap may not write into (nothing is written).

    Raises
    ------
    InputDataError
        If ``output`` is a file, lies inside another sitsmap output folder, holds
        one, or is a non-empty folder without sitsmap's marker.
    """
    if output.exists() and not output.is_dir():
        raise InputDataError("chain.output_path is a file, not a folder", output)
    for parent in _real(output).parents:
        if is_owned(parent):
            raise InputDataError(
                f"chain.output_path lies inside another sitsmap output folder ({parent}), "
                "whose runs could delete it; choose a folder outside it",
                output,
            )
    if not output.is_dir():
        return
    if not is_owned(output) and any(output.iterdir()):
        raise InputDataError(
            "chain.output_path is not empty and was not created by sitsmap; "
            "sitsmap writes only into a new, empty or sitsmap-made folder",
            output,
        )
    nested = _nested_output(output)
    if nested is not None:
        raise InputDataError(
            f"chain.output_path holds another sitsmap output folder ({nested}); "
            "a run here could delete it",
            output,
        )


def claim_output_folder(output: Path) -> None:
    """Create ``output`` with its marker, or check that an existing one is sitsmap's.

    Raises
    ------
    InputDataError
        As :func:`check_claimable`.
    """
    check_claimable(output)
    (output / STATE_DIR).mkdir(parents=True, exist_ok=True)
    marker = output / MARKER
    if not marker.exists():
        document = {"created_by": "sitsmap", "created": _now(), "version": _version()}
        write_text(marker, json.dumps(document, indent=1))


def is_owned(output: Path) -> bool:
    """Whether ``output`` carries sitsmap's marker (or an older sitsmap's records).

    A ``.sitsmap`` that is a symbolic link does not count: emptying the folder
    would otherwise reach through it.
    """
    state = output / STATE_DIR
    if state.is_symlink() or not state.is_dir():
        return False
    return (output / MARKER).is_file() or (state / "done").is_dir()


def _nested_output(output: Path) -> Path | None:
    """The first folder under ``output`` (links not followed) that is a sitsmap output folder."""
    for root, dirs, _files in os.walk(output):
        dirs[:] = [d for d in dirs if d != STATE_DIR]
        for name in dirs:
            if is_owned(Path(root, name)):
                return Path(root, name)
    return None


def empty_owned_folder(output: Path) -> int:
    """Delete what a sitsmap output folder holds, keeping its marker and lock.

    Returns
    -------
    int
        Entries deleted.

    Raises
    ------
    InputDataError
        If ``output`` does not carry the marker (it is then left untouched).
    """
    if not is_owned(output):
        raise InputDataError(
            "remove_output_path: not a sitsmap output folder (no marker); nothing deleted", output
        )
    removed = 0
    for entry in output.iterdir():
        if entry.name == STATE_DIR:
            for inner in entry.iterdir():
                if inner.name not in _KEPT:
                    remove_path(inner)
                    removed += 1
            continue
        remove_path(entry)
        removed += 1
    return removed


@contextmanager
def output_lock(output: Path) -> Iterator[None]:
    """Hold the output folder's lock for the time of a run.

    Raises
    ------
    StepError
        At once, if another process holds the lock; the message names its PID
        and start time.
    """
    # no soft (file-exists) lock where the file system lacks flock: a killed run would keep it
    lock = FileLock(output / LOCK, timeout=0, fallback_to_soft=False, preserve_lock_file=True)
    try:
        lock.acquire()
    except Timeout:
        raise StepError(
            f"another sitsmap run is using this output folder ({_holder(output)}); "
            "wait for it to finish or choose another chain.output_path",
            output,
        ) from None
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now()}
        info["command"] = " ".join(sys.argv)
        (output / LOCK_INFO).write_text(json.dumps(info), encoding="utf-8")
        yield
    finally:
        (output / LOCK_INFO).unlink(missing_ok=True)
        lock.release()


def _holder(output: Path) -> str:
    try:
        info = json.loads((output / LOCK_INFO).read_text(encoding="utf-8"))
        return f"PID {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "PID unknown: it is starting"


def _real(path: Path) -> Path:
    return Path(os.path.realpath(Path(path).expanduser()))


def _now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _version() -> str:
    from sitsmap import __version__

    return __version__
