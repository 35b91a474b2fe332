"""full_width_tile: every per-tile step on a full-width strip of a tile; a tile-year projected.

A synthetic strip of ``T31TCJ`` 10 980 pixels wide (a whole Sentinel-2 tile's width) and
:data:`ROWS` rows tall, one year of the synthetic acquisitions (61 dates, 37 output dates
on the 10-day grid, 481 features), built by :func:`common.strip_world` (``generate_world``
only makes square tiles). ``sitsmap run`` on it with the world's own configuration (the
one every benchmark and the demo use: random forest, periodic sampler, at most 1000
samples per class, and the default post-processing: smoothing, regularisation,
uncertainty), under the ``synchronous`` scheduler so that one task runs at a time, pinned
to one CPU (as ``taskset -c 0``; the tasks then get one core's share).

Each task's wall time comes from its ``.sitsmap/done`` record; its CPU time and peak
resident memory from sampling the ``sitsmap`` process (and any child) every
:data:`POLL_SECONDS` with psutil, attributed to the task running then. Throughputs are
pixels of the strip per CPU second of the task (= per core: the run has one), which the
other processes of a shared machine do not inflate as they inflate the wall time.

Projections (1 core, 2 cores, 16 cores; metropolitan France = :data:`FRANCE_TILES` tiles
on :data:`NODES` nodes of 16 cores): every task but learning and the sample table is
scaled by the pixel count (10 980² / strip pixels); on ``c`` > 1 cores the scaled time is
divided by ``c`` and multiplied by :data:`MEMORY_BUS_SLOWDOWN`, the slowdown of per-tile
tasks measured by scaling_2_vs_1 when two share the memory bus. 16 cores is an
extrapolation of a 2-core measure. For France the per-tile tasks of the 100 tiles spread
over every core of the cluster, while each once-per-run task that grows with the area
(mosaic, post-processing, validation, sample selection) is one task on one node: its time
is given between its 16 threads scaling as workers do and one core.

ratio = projected minutes of one 10 980² tile-year on 16 cores (informational goal: under
an hour, one tile-year per 16-core node per hour).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil

import common
from sitsmap.pipeline.layout import OutputLayout
from sitsmap.scheduling.records import read_records

NAME, GOAL = "full_width_tile", 60.0
WIDTH, ROWS = 10980, 512
FULL_TILE = 10980
FRANCE_TILES, NODES, NODE_CORES = 100, 8, 16
CORES = (1, 2, 16)
MEMORY_BUS_SLOWDOWN = 1.13
"""Per-tile tasks' slowdown with 2 workers on 2 cores (scaling_2_vs_1, BENCHMARKS.md)."""
POLL_SECONDS = 0.2
PER_TILE_STEPS = (
    "preprocessing",
    "sampling-candidates",
    "sampling-extraction",
    "classification",
)
FIXED_STEPS = ("learning", "sampling-table")
"""Once-per-run tasks whose cost follows the sample count (1000 per class), not the area."""


@dataclass(frozen=True)
class Sample:
    """One poll of the chain's processes: when, resident memory and CPU seconds so far."""

    time: float
    rss_mb: float
    cpu_seconds: float


# ----------------------------------------------------------------------------- measure


def run_chain(world_dir: Path, out: Path) -> tuple[float, list[Sample]]:
    """Run the whole chain into a fresh ``out`` on one core; return wall time and polls."""
    shutil.rmtree(out, ignore_errors=True)
    command = [
        str(common.SITSMAP),
        "run",
        "config.yaml",
        "--scheduler",
        "synchronous",
        "--set",
        f"chain.output_path={out}",
    ]
    core = sorted(os.sched_getaffinity(0))[:1]

    def pin() -> None:
        os.sched_setaffinity(0, core)

    log_path = out.parent / f"{out.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    with (
        log_path.open("w") as log,
        subprocess.Popen(
            command, cwd=world_dir, stdout=log, stderr=subprocess.STDOUT, preexec_fn=pin
        ) as child,
    ):
        samples = _poll(child)
    seconds = time.perf_counter() - began
    if child.returncode != 0:
        tail = log_path.read_text()[-2000:]
        raise RuntimeError(f"{' '.join(command)} failed ({child.returncode}):\n{tail}")
    return seconds, samples


def _poll(child: subprocess.Popen) -> list[Sample]:
    """Sample memory and CPU of ``child`` and its descendants until it exits."""
    root = psutil.Process(child.pid)
    samples = []
    while child.poll() is None:
        with contextlib.suppress(psutil.Error):  # it exited between poll() and the sample
            samples.append(_sample(root))
        time.sleep(POLL_SECONDS)
    return samples


def _sample(root: psutil.Process) -> Sample:
    """Resident memory and CPU seconds of ``root`` and its live descendants."""
    with root.oneshot():
        times = root.cpu_times()
        cpu = times.user + times.system + times.children_user + times.children_system
        rss = root.memory_info().rss
    for process in root.children(recursive=True):
        try:
            times = process.cpu_times()
            cpu += times.user + times.system
            rss += process.memory_info().rss
        except psutil.Error:
            continue
    return Sample(time.time(), rss / 2**20, cpu)


def task_measures(out: Path, samples: list[Sample]) -> dict[str, dict]:
    """Wall seconds, CPU seconds and peak RSS of every task of the run, by task key."""
    when = np.array([s.time for s in samples])
    cpu = np.array([s.cpu_seconds for s in samples])
    rss = np.array([s.rss_mb for s in samples])
    measures = {}
    for key, record in read_records(OutputLayout(out).done).items():
        start, stop = record["started"], record["started"] + record["seconds"]
        inside = (when >= start) & (when <= stop)
        nearest = int(np.argmin(np.abs(when - stop)))
        measures[key] = {
            "step": step_of(key, record["step"]),
            "seconds": record["seconds"],
            "cpu_seconds": float(np.interp(stop, when, cpu) - np.interp(start, when, cpu)),
            "peak_rss_mb": float(rss[inside].max() if inside.any() else rss[nearest]),
        }
    return measures


def step_of(key: str, step: str) -> str:
    """The step a task is reported under (sampling's tasks apart)."""
    if key.startswith("sampling-"):
        return "-".join(key.split("-")[:2])
    return step


def step_totals(measures: dict[str, dict]) -> dict[str, dict]:
    """Seconds, CPU seconds and peak RSS of each step, summed (peak: max) over its tasks."""
    totals: dict[str, dict] = defaultdict(
        lambda: {"seconds": 0.0, "cpu_seconds": 0.0, "peak_rss_mb": 0.0, "tasks": 0}
    )
    for measure in measures.values():
        total = totals[measure["step"]]
        total["seconds"] += measure["seconds"]
        total["cpu_seconds"] += measure["cpu_seconds"]
        total["peak_rss_mb"] = max(total["peak_rss_mb"], measure["peak_rss_mb"])
        total["tasks"] += 1
    return dict(totals)


# ----------------------------------------------------------------------------- project


def per_step_rates(totals: dict[str, dict], pixels: int) -> dict[str, dict]:
    """Pixels per second per core (from CPU seconds) and on the pinned core (from wall time)."""
    return {
        step: {
            "pixels_per_cpu_second": round(pixels / max(t["cpu_seconds"], 1e-9)),
            "pixels_per_wall_second_1_core": round(pixels / max(t["seconds"], 1e-9)),
            "cpu_seconds": round(t["cpu_seconds"], 1),
            "wall_seconds": round(t["seconds"], 1),
            "cpu_share_of_wall": round(t["cpu_seconds"] / max(t["seconds"], 1e-9), 2),
            "peak_rss_mb": round(t["peak_rss_mb"]),
            "projected_full_tile_core_hours": round(
                t["cpu_seconds"] * FULL_TILE**2 / pixels / 3600, 3
            ),
        }
        for step, t in totals.items()
    }


def on_cores(core_seconds: float, cores: int) -> float:
    """Wall seconds of ``core_seconds`` of per-tile work spread over ``cores``."""
    return core_seconds if cores == 1 else core_seconds * MEMORY_BUS_SLOWDOWN / cores


def projections(totals: dict[str, dict], pixels: int) -> dict:
    """A 10 980² tile-year on 1, 2 and 16 cores; France on the cluster (hours)."""
    scale = FULL_TILE**2 / pixels
    cpu = {step: t["cpu_seconds"] for step, t in totals.items()}
    per_tile = sum(cpu.get(step, 0.0) for step in PER_TILE_STEPS) * scale
    fixed = sum(cpu.get(step, 0.0) for step in FIXED_STEPS)
    per_run = sum(v for s, v in cpu.items() if s not in PER_TILE_STEPS + FIXED_STEPS) * scale
    tile = {
        str(cores): round((on_cores(per_tile + per_run, cores) + fixed) / 3600, 2)
        for cores in CORES
    }
    cluster = NODES * NODE_CORES
    france_tiles = on_cores(FRANCE_TILES * per_tile, cluster)
    france_run = FRANCE_TILES * per_run
    return {
        "tile_year_hours_by_cores": tile,
        "tile_core_hours": {
            "per_tile_steps": round(per_tile / 3600, 2),
            "once_per_run_area_steps": round(per_run / 3600, 2),
            "fixed_steps": round(fixed / 3600, 3),
        },
        "france_hours": {
            "per_tile_steps_on_cluster": round(france_tiles / 3600, 2),
            "once_per_run_area_steps_16_cores": round(on_cores(france_run, NODE_CORES) / 3600, 2),
            "once_per_run_area_steps_1_core": round(france_run / 3600, 2),
            "total_low": round((france_tiles + on_cores(france_run, NODE_CORES) + fixed) / 3600, 2),
            "total_high": round((france_tiles + france_run + fixed) / 3600, 2),
        },
        "assumptions": (
            f"CPU seconds x ({FULL_TILE}² / {pixels} px) for every task but "
            f"{', '.join(FIXED_STEPS)} (kept as measured); on c > 1 cores / c x "
            f"{MEMORY_BUS_SLOWDOWN} (scaling_2_vs_1's per-tile slowdown at 2 workers; 16 cores "
            f"extrapolated); France: {FRANCE_TILES} tiles' per-tile tasks over {NODES} x "
            f"{NODE_CORES} cores, each once-per-run area task on one node, 16 threads (low) "
            "to one core (high)"
        ),
    }


# ----------------------------------------------------------------------------- report


def main() -> None:
    """Measure and report."""
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else ROWS
    width = int(sys.argv[2]) if len(sys.argv) > 2 else WIDTH
    world_dir = common.strip_world(rows, width)
    load_before = round(os.getloadavg()[0], 2)
    out = common.WORK / "full_width" / world_dir.name
    common.log(f"running the chain on {world_dir.name}, one core, synchronous")
    wall, samples = run_chain(world_dir, out)
    measures = task_measures(out, samples)
    totals = step_totals(measures)
    pixels = rows * width
    rates = per_step_rates(totals, pixels)
    projected = projections(totals, pixels)
    for step, rate in rates.items():
        common.log(f"{step}: {rate}")
    tile_hours = projected["tile_year_hours_by_cores"]
    france = projected["france_hours"]
    per_tile = ", ".join(
        f"{step} {rates[step]['pixels_per_cpu_second'] / 1000:.0f}k px/s "
        f"{rates[step]['peak_rss_mb'] / 1024:.1f} GiB"
        for step in PER_TILE_STEPS
        if step in rates
    )
    details = {
        "headline": (
            f"{width}x{rows} strip, per core: {per_tile}; 10980² tile-year "
            f"{tile_hours['1']:.1f} h on 1 core, {tile_hours['2']:.1f} h on 2, "
            f"{tile_hours['16'] * 60:.0f} min on 16 (extrapolated); France (100 tiles) on "
            f"8x16 cores {france['total_low']:.1f}-{france['total_high']:.1f} h"
        ),
        "strip": {"width": width, "rows": rows, "pixels": pixels, "world": world_dir.name},
        "wall_seconds": round(wall, 1),
        "run_peak_rss_mb": round(max(s.rss_mb for s in samples)),
        "run_cpu_seconds": round(samples[-1].cpu_seconds, 1),
        "load_average_before": load_before,
        "steps": rates,
        "tasks": {
            key: {k: (round(v, 2) if isinstance(v, float) else v) for k, v in m.items()}
            for key, m in measures.items()
        },
        "projections": projected,
    }
    common.report(NAME, tile_hours["16"] * 60, GOAL, False, details)


if __name__ == "__main__":
    main()
