"""Whole files as bytes (figures embedded in the HTML report)."""

from __future__ import annotations

import os

from sitsmap.errors import InputDataError

__all__ = ["read_bytes"]


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """Return the content of ``path``.

    Raises
    ------
    InputDataError
        If the file is missing or cannot be read.
    """
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError as exc:
        raise InputDataError("missing (has the step that writes it run?)", path) from exc
    except OSError as exc:
        raise InputDataError(f"cannot read ({exc.strerror})", path) from exc
