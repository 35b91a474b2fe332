"""scaling_2_vs_1: the demo chain with one worker against two; and its time per step and tile.

``sitsmap run`` on the demo's synthetic 4-tile world (256² tiles, a year of dates, the
demo's sampling and chunking, probability maps on) with the random forest instead of the
demo's MLP, so that the one task that cannot run in parallel (learning) stays short.
Every run uses the processes scheduler and a fresh output directory.

A worker is one core: each task uses its worker's share of the cores (readers, numba,
n_jobs). The one-worker run is pinned to one CPU (``sched_setaffinity``, as ``taskset -c
0``), the two-worker run has both; two rounds, each a two-worker run then a one-worker
run. A third run, one worker free to use both cores, shows what the tasks' own threads
already get (in the details only).

ratio = wall time with 1 worker / wall time with 2 workers (best of each). Goal >= 1.7.

End to end (in the details and one extra line): the fastest one-worker run's time per
step and per tile from the ``.sitsmap/done/*.json`` records, and the per-tile steps
projected to a 10980² tile with 37 output dates by scaling them with the number of pixels.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np

import common
from sitsmap.demo import DEMO_OVERRIDES
from sitsmap.pipeline.layout import OutputLayout
from sitsmap.scheduling.records import read_records

NAME, GOAL = "scaling_2_vs_1", 1.7
SIZE = 256
FULL_TILE = 10980
ROUNDS = 2
PER_TILE_STEPS = ("preprocessing", "sampling-extraction", "classification")
OVERRIDES = [o for o in DEMO_OVERRIDES if not o.startswith("arg_train.deep_learning")]


def run_chain(world_dir: Path, workers: int, cores: int | None, name: str) -> tuple[float, Path]:
    """Run the whole chain into a fresh output directory; return its wall time and output.

    ``cores`` pins the run to that many CPUs (None: every core).
    """
    out = common.WORK / "scaling" / name
    shutil.rmtree(out, ignore_errors=True)
    arguments = ["run", "config.yaml", "--scheduler", "processes", "--workers", str(workers)]
    for override in [*OVERRIDES, "arg_train.classifier=rf", f"chain.output_path={out}"]:
        arguments += ["--set", override]
    return common.run_sitsmap(arguments, cwd=world_dir, cores=cores), out


def step_seconds(out: Path) -> dict[str, float]:
    """Seconds of each step (sampling's extraction apart), summed over its tasks."""
    totals: dict[str, float] = defaultdict(float)
    for key, record in read_records(OutputLayout(out).done).items():
        step = "sampling-extraction" if key.startswith("sampling-extraction") else record["step"]
        totals[step] += record["seconds"]
    return dict(totals)


def parallelism(out_one: Path, out_two: Path, one: float, two: float) -> dict:
    """Why the speed-up is what it is: serial tasks, fixed overhead, per-tile task slowdown."""
    records = {w: read_records(OutputLayout(out).done) for w, out in ((1, out_one), (2, out_two))}
    per_tile = {
        w: [r["seconds"] for k, r in recs.items() if any(t in k for t in common.DEMO_TILES)]
        for w, recs in records.items()
    }
    serial = sum(
        r["seconds"] for k, r in records[1].items() if not any(t in k for t in common.DEMO_TILES)
    )
    spans = {}
    for workers, recs in records.items():
        first = min(r["started"] for r in recs.values())
        spans[workers] = max(r["started"] + r["seconds"] for r in recs.values()) - first
    return {
        "serial_task_seconds": round(serial, 1),
        "per_tile_task_seconds": round(sum(per_tile[1]), 1),
        "per_tile_task_slowdown_with_2_workers": round(sum(per_tile[2]) / sum(per_tile[1]), 2),
        "outside_tasks_seconds": {"1": round(one - spans[1], 1), "2": round(two - spans[2], 1)},
    }


def end_to_end(out: Path, wall: float, tiles: int) -> dict:
    """Time per step and per tile, and the projection to a full tile."""
    steps = step_seconds(out)
    per_tile = {step: steps.get(step, 0.0) / tiles for step in PER_TILE_STEPS}
    scale = (FULL_TILE / SIZE) ** 2
    projected = {step: seconds * scale for step, seconds in per_tile.items()}
    return {
        "wall_seconds_per_tile": round(wall / tiles, 1),
        "step_seconds": {k: round(v, 2) for k, v in sorted(steps.items())},
        "per_tile_step_seconds": {k: round(v, 2) for k, v in per_tile.items()},
        "projected_full_tile_hours": {k: round(v / 3600, 2) for k, v in projected.items()},
        "projected_full_tile_hours_total": round(sum(projected.values()) / 3600, 2),
        "projection": f"per-tile steps x ({FULL_TILE}/{SIZE})² pixels, 37 output dates",
    }


def main() -> None:
    """Measure and report."""
    world_dir = common.world(SIZE, common.DEMO_TILES, name="world_demo")
    seconds: dict[int, list[float]] = {1: [], 2: []}
    outputs: dict[int, list[Path]] = {1: [], 2: []}
    for round_ in range(ROUNDS):
        for workers in (2, 1):
            name = f"workers{workers}-round{round_}"
            elapsed, out = run_chain(world_dir, workers, workers, name)
            seconds[workers].append(elapsed)
            outputs[workers].append(out)
            common.log(
                f"round {round_ + 1}: {workers} worker(s) on {workers} core(s) {elapsed:.1f} s"
            )
    threaded, _ = run_chain(world_dir, 1, None, "workers1-all-cores")
    common.log(f"1 worker on every core {threaded:.1f} s")
    fastest = {w: int(np.argmin(seconds[w])) for w in (1, 2)}
    one, two = seconds[1][fastest[1]], seconds[2][fastest[2]]
    out_one, out_two = outputs[1][fastest[1]], outputs[2][fastest[2]]
    tiles = len(common.DEMO_TILES)
    e2e = end_to_end(out_one, one, tiles)
    details = {
        "headline": (
            f"4 tiles of {SIZE}², RF: 1 worker (1 core) {one:.1f} s, 2 workers (2 cores) "
            f"{two:.1f} s, 1 worker on every core {threaded:.1f} s; "
            f"one worker {e2e['wall_seconds_per_tile']:.1f} s per tile, a {FULL_TILE}² tile "
            f"~{e2e['projected_full_tile_hours_total']:.1f} h"
        ),
        "seconds_1_worker": [round(v, 2) for v in seconds[1]],
        "seconds_2_workers": [round(v, 2) for v in seconds[2]],
        "cores": {"1_worker": 1, "2_workers": 2},
        "seconds_1_worker_on_every_core": round(threaded, 2),
        "speedup_2_workers_vs_1_worker_on_every_core": round(threaded / two, 3),
        "overrides": OVERRIDES + ["arg_train.classifier=rf"],
        "parallelism": parallelism(out_one, out_two, one, two),
        "end_to_end": e2e,
    }
    common.report(NAME, one / two, GOAL, True, details)
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in e2e["per_tile_step_seconds"].items())
    print(f"{'end_to_end':<20} {'-':>7}  {'-':<7} {'info':<8} per tile: {steps}", flush=True)


if __name__ == "__main__":
    main()
