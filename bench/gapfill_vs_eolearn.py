"""gapfill_vs_eolearn: sitsmap's gap-filling against eo-learn's LinearInterpolationTask.

Both get the same float32 (dates, height, width, bands) array and validity mask (a
window of the synthetic tile's reflectances and CLM/SAT/EDG masks) and the same output
grid (every 10 days over 2018). sitsmap runs ``sitsmap.preprocessing.gapfilling.gapfill``
on a (dates, bands, height, width) view of that array; eo-learn runs
``LinearInterpolationTask(parallel=True)`` on an EOPatch in its own venv
(``bench/.venvs/eolearn``, created on first use), in a separate process, arrays exchanged
as .npy files. Both JIT caches are warmed first; times exclude the file exchange.

ratio = eo-learn time / sitsmap time (best of ``REPEATS``). Goal >= 10. The outputs must
agree wherever eo-learn defines a value (it leaves NaN before a pixel's first and after
its last clear date, where sitsmap repeats the nearest clear value).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import numpy as np
from rasterio.windows import Window

import common
from sitsmap.io.reading import read_products_window
from sitsmap.preprocessing.gapfilling import gapfill
from sitsmap.preprocessing.temporal import day_numbers, regular_dates
from sitsmap.preprocessing.tile import open_tile_stack
from sitsmap.sensors import SENTINEL2_THEIA

NAME, GOAL = "gapfill_vs_eolearn", 10.0
SIZE, SIDE = 1024, 512
REPEATS = 3
REQUIREMENTS = ("eo-learn[extra]", "geopandas<1")
ATOL = 1e-3  # float32 reflectances x 10000: a thousandth of a reflectance unit x 10000


def inputs(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read a SIDE² window of every date of the tile; save it for eo-learn; return it."""
    stack = open_tile_stack(common.world(SIZE) / "S2" / common.TILE, common.TILE)
    reflectance, invalid = read_products_window(
        stack.products, Window(0, 0, SIDE, SIDE), SENTINEL2_THEIA.band_names
    )
    values = np.ascontiguousarray(reflectance.transpose(0, 2, 3, 1), dtype=np.float32)
    valid = ~invalid
    days = day_numbers(stack.dates).astype(np.int64)
    out_days = day_numbers(regular_dates(dt.date(2018, 1, 1), dt.date(2018, 12, 31), 10))
    out_days = out_days.astype(np.int64)
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in {
        "values": values,
        "valid": valid,
        "days": days,
        "out_days": out_days,
    }.items():
        np.save(folder / f"{name}.npy", array)
    return values, valid, days, out_days


def run_eolearn(python: Path, folder: Path) -> list[float]:
    """Run the eo-learn child; return its timings."""
    command = [str(python), str(common.BENCH / "eolearn_gapfill.py"), str(folder), str(REPEATS)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"eo-learn child failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def run_sitsmap(values, valid, days, out_days) -> tuple[list[float], np.ndarray]:
    """Gap-fill the same array (as a (T, B, H, W) view) ``REPEATS`` times."""
    view = values.transpose(0, 3, 1, 2)
    gapfill(view[:, :, :8, :8], valid[:, :8, :8], days, out_days)  # warm the JIT
    seconds, out = [], None
    for _ in range(REPEATS):
        elapsed, out = common.timed(gapfill, view, valid, days, out_days)
        seconds.append(elapsed)
    return seconds, out


def compare(sitsmap_out: np.ndarray, eolearn_out: np.ndarray) -> dict:
    """Agreement where eo-learn defines a value (sitsmap's output is (T, B, H, W))."""
    ours = sitsmap_out.transpose(0, 2, 3, 1)
    defined = np.isfinite(eolearn_out)
    difference = np.abs(ours[defined] - eolearn_out[defined])
    return {
        "values_compared": int(defined.sum()),
        "fraction_defined_by_eolearn": round(float(defined.mean()), 4),
        "max_abs_difference": float(difference.max()) if difference.size else 0.0,
        "agree": bool(difference.size and difference.max() <= ATOL),
    }


def main() -> None:
    """Measure and report."""
    python, reason = common.ensure_venv("eolearn", REQUIREMENTS, "eolearn.features.extra")
    if python is None:
        common.skip(NAME, GOAL, True, f"eo-learn unavailable: {reason}")
        return
    folder = common.WORK / "gapfill"
    values, valid, days, out_days = inputs(folder)
    common.log(f"gap-filling {values.shape} (T, H, W, B), {len(out_days)} output dates")
    sitsmap_seconds, sitsmap_out = run_sitsmap(values, valid, days, out_days)
    eolearn_seconds = run_eolearn(python, folder)
    agreement = compare(sitsmap_out, np.load(folder / "eolearn.npy"))
    ratio = min(eolearn_seconds) / min(sitsmap_seconds)
    details = {
        "headline": (
            f"{values.shape[0]} dates x {SIDE}² px x {values.shape[3]} bands -> "
            f"{len(out_days)} dates: eo-learn {min(eolearn_seconds):.2f} s, sitsmap "
            f"{min(sitsmap_seconds):.3f} s; outputs agree: {agreement['agree']} "
            f"(max |diff| {agreement['max_abs_difference']:.2g})"
        ),
        "shape_t_h_w_b": list(values.shape),
        "output_dates": len(out_days),
        "clear_fraction": round(float(valid.mean()), 3),
        "sitsmap_seconds": [round(s, 4) for s in sitsmap_seconds],
        "eolearn_seconds": [round(s, 3) for s in eolearn_seconds],
        "eolearn": "LinearInterpolationTask(parallel=True), eo-learn[extra] in bench/.venvs",
        **agreement,
    }
    common.report(NAME, ratio, GOAL, True, details, also_required=agreement["agree"])


if __name__ == "__main__":
    main()
