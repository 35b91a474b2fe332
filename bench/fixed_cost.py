"""fixed_cost: what ``sitsmap run`` costs beyond its tasks under the processes scheduler.

On a synthetic one-tile 64² world (tasks of a second or less), ``--scheduler processes
--workers 2``, each measurement the best of ``--repeat`` runs (3):

- ``whole``: a whole run into a fresh output directory;
- ``complete``: the same run again, every task complete already: imports, planning,
  the report; the pure fixed cost of the command;
- ``last_step``: the last step (validation) run again (``--first-step validation``),
  with the processes scheduler and with the synchronous one: same tasks, same imports,
  so the difference is what the local Dask cluster costs (start, warm-up, shutdown).

While the whole run goes, ``/proc/net/tcp`` is polled for a listener on port 8787 (a
Dask dashboard).

ratio = last_step(processes) / last_step(synchronous). Goal <= 2.0: the cluster may cost
as much as the step itself, no more (before its start and stop were made cheaper, 1416e60,
it cost twice the step: 7.5 s against 2.5 s on a 2-core machine).

``--baseline-src DIR`` also measures an older sitsmap, the ``src`` folder of a copy of
the repository in DIR (e.g. ``git archive <commit> | tar -x -C DIR``: nothing in this
working tree changes), run with ``PYTHONPATH=DIR/src``; the details then hold its
numbers and the before/after ratios, and one more line is printed.

Usage: ``python bench/fixed_cost.py [--repeat N] [--baseline-src DIR]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import common

NAME, GOAL = "fixed_cost", 2.0
SIZE = 64
DASHBOARD_PORT = 8787
FAST = (
    "arg_train.otb_classifier_options="
    "{classifier.rf.nbtrees: 10, classifier.rf.max: 10, classifier.rf.min: 5}",
)


def main() -> None:
    """Measure this working tree (and a baseline source tree, if given); report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best kept)")
    parser.add_argument("--baseline-src", type=Path, help="copy of an older repository")
    options = parser.parse_args()
    world_dir = common.world(SIZE, (common.TILE,), name=f"world{SIZE}_fixed_cost")
    now = measure(world_dir, "current", None, options.repeat)
    details = {**_rounded(now), "tile": f"1 tile of {SIZE}² px", "repeat": options.repeat}
    if options.baseline_src:
        before = measure(world_dir, "baseline", options.baseline_src.resolve(), options.repeat)
        details["baseline"] = {**_rounded(before), "source": str(options.baseline_src)}
        details["after_over_before"] = {
            key: round(now[key] / before[key], 3)
            for key in ("whole", "complete", "last_step_processes", "cluster_overhead")
            if before[key] > 0
        }
        print(
            f"{'':<20} before: whole {before['whole']:.1f} s, complete "
            f"{before['complete']:.1f} s, cluster overhead {before['cluster_overhead']:.1f} s",
            flush=True,
        )
    ratio = now["last_step_processes"] / now["last_step_synchronous"]
    details["headline"] = (
        f"whole {now['whole']:.1f} s, complete {now['complete']:.1f} s, cluster overhead "
        f"{now['cluster_overhead']:.1f} s, port {DASHBOARD_PORT} "
        f"{'LISTENING' if now['dashboard_listening'] else 'free'}"
    )
    common.report(NAME, ratio, GOAL, False, details, also_required=not now["dashboard_listening"])


def measure(world_dir: Path, name: str, src: Path | None, repeat: int) -> dict:
    """Best-of-``repeat`` seconds of each kind of run, with sitsmap from ``src`` (or this tree)."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src / "src"), env.get("PYTHONPATH")]))
    out = common.WORK / "fixed_cost" / name
    whole, listening = [], False
    for _ in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        seconds, heard = run(world_dir, out, env, "processes", watch_port=True)
        whole.append(seconds)
        listening |= heard
    complete = [run(world_dir, out, env, "processes")[0] for _ in range(repeat)]
    rerun = ("--first-step", "validation")
    processes = [run(world_dir, out, env, "processes", rerun)[0] for _ in range(repeat)]
    synchronous = [run(world_dir, out, env, "synchronous", rerun)[0] for _ in range(repeat)]
    result = {
        "whole": min(whole),
        "complete": min(complete),
        "last_step_processes": min(processes),
        "last_step_synchronous": min(synchronous),
        "dashboard_listening": listening,
    }
    result["cluster_overhead"] = result["last_step_processes"] - result["last_step_synchronous"]
    common.log(f"{name}: {_rounded(result)}")
    return result


def run(
    world_dir: Path,
    out: Path,
    env: dict[str, str],
    scheduler: str,
    extra: Sequence[str] = (),
    watch_port: bool = False,
) -> tuple[float, bool]:
    """One ``sitsmap run``; its wall time, and whether port 8787 was seen listening."""
    command = [str(common.SITSMAP), "run", "config.yaml", "--scheduler", scheduler]
    command += ["--workers", "2", *extra]
    for assignment in (*FAST, f"chain.output_path={out}"):
        command += ["--set", assignment]
    heard = False
    began = time.perf_counter()
    with subprocess.Popen(
        command, cwd=world_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as child:
        while watch_port and child.poll() is None:
            heard |= _listening(DASHBOARD_PORT)
            time.sleep(0.2)
        stdout, stderr = child.communicate()
    seconds = time.perf_counter() - began
    if child.returncode != 0:
        tail = (stdout + stderr)[-2000:]
        raise RuntimeError(f"{' '.join(command)} failed ({child.returncode}):\n{tail}")
    return seconds, heard


def _listening(port: int) -> bool:
    """Whether some socket of this machine listens on TCP ``port`` (state 0A in /proc)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def _rounded(values: dict) -> dict:
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in values.items()}


if __name__ == "__main__":
    main()
