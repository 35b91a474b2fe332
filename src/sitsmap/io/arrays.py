"""Arrays (``.npz``) and tables (Parquet, CSV) of intermediate outputs."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from sitsmap.errors import InputDataError
from sitsmap.io.atomic import atomic_path

PathLike = str | os.PathLike[str]


def save_arrays(path: PathLike, **arrays: np.ndarray) -> None:
    """Save named arrays to a ``.npz`` file, atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def load_arrays(path: PathLike) -> dict[str, np.ndarray]:
    """Load every array of a ``.npz`` file."""
    try:
        with np.load(path) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError) as exc:
        raise InputDataError(f"cannot read arrays ({exc})", path) from exc


def write_table(frame: pd.DataFrame, path: PathLike) -> None:
    """Write a table as Parquet or CSV (by extension), atomically."""
    with atomic_path(path) as tmp:
        if str(path).endswith(".csv"):
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)


def read_table(path: PathLike, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a Parquet or CSV table."""
    try:
        if str(path).endswith(".csv"):
            return pd.read_csv(path, usecols=columns)
        return pd.read_parquet(path, columns=columns)
    except (OSError, ValueError) as exc:
        raise InputDataError(f"cannot read table ({exc})", path) from exc
