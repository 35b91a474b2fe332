"""Write a file under a temporary name and rename it when complete.

A reader never sees a half-written output: an interrupted write leaves only
a ``.tmp-*`` file that the next attempt overwrites, never the final name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


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
