"""Attribute tables of vector files, without their geometries (cheap to read)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyogrio
from pyogrio.errors import DataLayerError, DataSourceError, FieldError

from sitsmap.errors import InputDataError

__all__ = ["read_attributes"]


def read_attributes(
    path: str | os.PathLike[str], columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Read the attribute table of a vector file, skipping the geometries.

    Parameters
    ----------
    path : str or PathLike
        Any OGR vector file.
    columns : sequence of str, optional
        Fields to read; all when omitted.

    Returns
    -------
    pandas.DataFrame
        One row per feature.

    Raises
    ------
    InputDataError
        If the file is missing, unreadable or lacks one of ``columns``.
    """
    if not Path(path).exists():
        raise InputDataError("missing (has the step that writes it run?)", path)
    try:
        frame = pyogrio.read_dataframe(
            path, columns=None if columns is None else list(columns), read_geometry=False
        )
    except (DataSourceError, DataLayerError, FieldError, ValueError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputDataError(f"cannot read vector file ({message})", path) from exc
    absent = sorted(set(columns or ()) - set(frame.columns))
    if absent:
        raise InputDataError(f"lacks field(s) {absent}", path)
    return pd.DataFrame(frame)
