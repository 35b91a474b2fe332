"""Write a file under a temporary name and rename it when complete.

A reader never sees a half-written output: an interrupted write leaves only
a ``.tmp-<8 hex>-<name>`` file beside the final name, never the final name;
:func:`remove_stale_temporaries` removes those that a killed run left behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

LOGGER = logging.getLogger(__name__)

TEMPORARY_NAME = re.compile(r"^\.tmp-[0-9a-f]{8}-.+", re.DOTALL)
"""What :func:`temporary_sibling` names look like, and only they."""


def temporary_sibling(path: Path) -> Path:
    """Return a unique temporary name in the same directory as ``path``.

    Keeping it in the same directory makes the final rename atomic (same
    file system) and keeps the extension, which GDAL uses to pick a driver.
    """
    return path.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{path.name}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path; move it onto ``path`` only if the block succeeds.

    Parameters
    ----------
    path : str or PathLike
        Final destination. Its parent directory is created if needed.

    Yields
    ------
    Path
        Where the block must write. Files or directories are both supported.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(final)
    try:
        yield tmp
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def remove_stale_temporaries(root: Path) -> int:
    """Remove every temporary that an interrupted write left under ``root``.

    Only files, links and directories whose name is exactly a temporary's
    (:data:`TEMPORARY_NAME`: ``.tmp-`` then 8 hexadecimal digits, ``-`` and
    the final name) are removed, a directory with all it holds; a user's
    ``.tmp-notes.txt`` stays. Symbolic links are removed as links, never
    followed, so nothing outside ``root`` is touched. Call it only while no
    other process writes under ``root`` (while holding its lock).

    Parameters
    ----------
    root : Path
        The folder to clean (an output folder); nothing happens if it does not exist.

    Returns
    -------
    int
        How many temporaries were removed.
    """
    removed = 0
    for directory, dirnames, filenames in os.walk(root):  # never descends into links
        stale = [name for name in (*dirnames, *filenames) if TEMPORARY_NAME.match(name)]
        dirnames[:] = [name for name in dirnames if not TEMPORARY_NAME.match(name)]
        removed += sum(_remove(Path(directory) / name) for name in stale)
    return removed


def remove_path(path: Path) -> None:
    """Remove a file, a link (never its target) or a whole directory."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _remove(path: Path) -> bool:
    """Remove a stale temporary (see :func:`remove_path`); whether it went."""
    try:
        remove_path(path)
    except OSError as exc:
        LOGGER.warning("cannot remove the stale temporary %s (%s)", path, exc.strerror or exc)
        return False
    return True
