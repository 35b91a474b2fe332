"""Run every benchmark (``make bench``), one child process each, and merge their results.

Usage: ``python bench/run_all.py [NAME ...]`` (all benchmarks when no name is given).

Each script prints its own table row and writes ``bench/work/results/<name>.json``; this
script writes them all to ``bench/results.json`` as
``{"<name>": {"ratio": float, "goal": float, "met": bool, "details": {...}}}``. A
benchmark whose script fails is recorded with ``"ratio": null, "met": false`` and the end
of its error output; one whose peer tool cannot be installed is recorded as skipped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from typing import IO

import common

BENCHMARKS = {
    # name: (script, goal, higher is better)
    "features_vs_read": ("features_vs_read.py", 1.5, False),
    "readers_vs_read": ("readers_vs_read.py", 1.5, False),
    "gapfill_vs_eolearn": ("gapfill_vs_eolearn.py", 10.0, True),
    "rf_vs_otb": ("rf_vs_otb.py", 2.0, True),
    "mlp_vs_bare_loop": ("mlp_vs_bare_loop.py", 1.15, False),
    "memory_2n_vs_n": ("memory_2n_vs_n.py", 1.2, False),
    "scaling_2_vs_1": ("scaling_2_vs_1.py", 1.7, True),
    "fixed_cost": ("fixed_cost.py", 2.0, False),
    "postprocessing_2n_vs_n": ("postprocessing_2n_vs_n.py", 1.2, False),
    "learners": ("learners.py", 0.0, True),
    "classify_vs_library": ("classify_vs_library.py", 3.0, True),
    "network_inference": ("network_inference.py", 1.2, True),
    # informational goal: a 10980² tile-year in under an hour on 16 cores (extrapolated)
    "full_width_tile": ("full_width_tile.py", 60.0, False),
}
TIMEOUT_SECONDS = 15 * 60
LONG_TIMEOUT_SECONDS = {"full_width_tile": 45 * 60, "learners": 120 * 60}
"""Benchmarks that need longer: a 2.4 GB world on first use, then a whole chain on one core;
every learner's fits on two datasets (about an hour, the Transformer's most of it)."""
HEADER = f"{'benchmark':<20} {'ratio':>7}  {'goal':<7} {'verdict':<8} measured"


def run_one(name: str) -> dict:
    """Run one benchmark script; return its result record."""
    script, goal, higher = BENCHMARKS[name]
    timeout = LONG_TIMEOUT_SECONDS.get(name, TIMEOUT_SECONDS)
    result_file = common.RESULTS / f"{name}.json"
    result_file.unlink(missing_ok=True)
    began = time.perf_counter()
    error = ""
    tail: deque[str] = deque(maxlen=30)
    with subprocess.Popen(
        [sys.executable, str(common.BENCH / script)],
        cwd=common.ROOT,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so a timeout ends its children too
    ) as child:
        relay = threading.Thread(target=_relay, args=(child.stderr, tail), daemon=True)
        relay.start()
        try:
            code = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            code, error = child.wait(), f"timed out after {timeout} s"
        relay.join()
    if code != 0 and not error:
        error = "".join(tail).strip()[-1500:]
    if error or not result_file.exists():
        record = {
            "ratio": None,
            "goal": goal,
            "met": False,
            "details": {"goal_is": ">=" if higher else "<=", "error": error or "no result"},
        }
        print(common.table_row(name, record), flush=True)
    else:
        record = json.loads(result_file.read_text())
    record["details"]["script_seconds"] = round(time.perf_counter() - began, 1)
    return record


def _relay(stream: IO[str], tail: deque[str]) -> None:
    """Show a child's progress lines as they come; keep the last ones for the record."""
    for line in stream:
        sys.stderr.write(line)
        tail.append(line)


def main() -> None:
    """Run the benchmarks named on the command line (all by default)."""
    names = sys.argv[1:] or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        sys.exit(f"unknown benchmark(s) {unknown}; known: {list(BENCHMARKS)}")
    common.WORK.mkdir(parents=True, exist_ok=True)
    print(f"machine: {common.machine()}", flush=True)
    print(HEADER, flush=True)
    began = time.perf_counter()
    results = {name: run_one(name) for name in names}
    merged_path = common.BENCH / "results.json"
    merged = json.loads(merged_path.read_text()) if merged_path.exists() and sys.argv[1:] else {}
    merged.update(results)
    from sitsmap.io.atomic import write_text

    write_text(merged_path, json.dumps(merged, indent=1) + "\n")
    print(f"\n{HEADER}")
    for name, record in merged.items():
        print(common.table_row(name, record))
    minutes = (time.perf_counter() - began) / 60
    print(
        f"\n{sum(r['met'] for r in merged.values())}/{len(merged)} goals met in {minutes:.1f} min;"
        f" results in {merged_path.relative_to(common.ROOT)}"
    )


if __name__ == "__main__":
    main()
