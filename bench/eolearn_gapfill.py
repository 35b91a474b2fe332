"""Child of gapfill_vs_eolearn.py, run by the python of ``bench/.venvs/eolearn``.

Reads ``values.npy`` (T, H, W, B) float32, ``valid.npy`` (T, H, W) bool, ``days.npy`` and
``out_days.npy`` (day numbers since 1970-01-01) from the directory given as first
argument, gap-fills with eo-learn's ``LinearInterpolationTask`` (numba, parallel) onto the
output days, writes ``eolearn.npy`` (T_out, H, W, B) and prints its timings as JSON.
It imports nothing from sitsmap: it runs in eo-learn's own environment.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np
from eolearn.core import EOPatch, FeatureType
from eolearn.features.extra.interpolation import LinearInterpolationTask

EPOCH = dt.datetime(1970, 1, 1)


def as_datetimes(days: np.ndarray) -> list[dt.datetime]:
    """Day numbers to midnight datetimes."""
    return [EPOCH + dt.timedelta(days=int(day)) for day in days]


def interpolate(values: np.ndarray, valid: np.ndarray, days: np.ndarray, out_days: np.ndarray):
    """Run the task on one EOPatch; return (seconds, output array)."""
    patch = EOPatch(
        data={"BANDS": values},
        mask={"VALID": valid[..., np.newaxis]},
        timestamps=as_datetimes(days),
    )
    task = LinearInterpolationTask(
        (FeatureType.DATA, "BANDS"),
        mask_feature=(FeatureType.MASK, "VALID"),
        resample_range=as_datetimes(out_days),
        parallel=True,
    )
    began = time.perf_counter()
    result = task.execute(patch)
    return time.perf_counter() - began, result[FeatureType.DATA, "BANDS"]


def main() -> None:
    """Warm the JIT on a small patch, then time the whole array ``repeats`` times."""
    folder, repeats = Path(sys.argv[1]), int(sys.argv[2])
    values = np.load(folder / "values.npy")
    valid = np.load(folder / "valid.npy")
    days, out_days = np.load(folder / "days.npy"), np.load(folder / "out_days.npy")
    interpolate(values[:, :8, :8], valid[:, :8, :8], days, out_days)
    seconds = []
    for _ in range(repeats):
        elapsed, out = interpolate(values, valid, days, out_days)
        seconds.append(elapsed)
    np.save(folder / "eolearn.npy", out.astype(np.float32))
    print(json.dumps({"seconds": seconds}))


if __name__ == "__main__":
    main()
