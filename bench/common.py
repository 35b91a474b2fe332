"""What every benchmark script shares: paths, worlds, chain runs, timing and the result row.

Each benchmark is one script that measures sitsmap and its reference (a peer tool or a
hardware limit) side by side in the same run, then calls :func:`report` (or
:func:`skip`), which writes ``bench/work/results/<name>.json`` and prints one table row.
``run_all.py`` merges those files into ``bench/results.json``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / "work"
RESULTS = WORK / "results"
VENVS = BENCH / ".venvs"
SITSMAP = Path(sys.executable).with_name("sitsmap")
TILE = "T31TCJ"
DEMO_TILES = ("T31TCJ", "T31TCK", "T31TDJ", "T31TDK")


# ----------------------------------------------------------------------------- inputs


def world(size: int, tiles: Sequence[str] = (TILE,), name: str | None = None) -> Path:
    """Return the directory of a synthetic world, generating it on first use.

    Worlds are kept under ``bench/work`` and reused by later runs: a ``.complete``
    marker is written once generation has finished.
    """
    from sitsmap.synth import generate_world

    out = WORK / (name or f"world{size}")
    marker = out / ".complete"
    if not marker.exists():
        log(f"generating {out.name}: {len(tiles)} tile(s) of {size}² px (first use)")
        summary = generate_world(out, tiles, size=size)
        marker.write_text(f"{summary.seconds:.1f} s\n")
    return out


def run_sitsmap(args: Sequence[str], cwd: Path | None = None, cores: int | None = None) -> float:
    """Run the ``sitsmap`` command, fail loudly on error, return its wall time in seconds.

    ``cores`` pins it (and every process it starts) to the first ``cores`` CPUs, as
    ``taskset`` would.
    """
    command = [str(SITSMAP), *args]
    allowed = sorted(os.sched_getaffinity(0))[: cores or None]
    pin = None if cores is None else (lambda: os.sched_setaffinity(0, allowed))
    began = time.perf_counter()
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, check=False, preexec_fn=pin
    )
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-2000:]
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{tail}")
    return seconds


def trained_chain(world_dir: Path, last_step: str = "learning") -> Path:
    """Run the world's own configuration (RF) up to ``last_step``; return its output dir.

    The chain resumes where an earlier run stopped, so a second call costs a few seconds.
    """
    run_sitsmap(
        ["run", "config.yaml", "--last-step", last_step, "--scheduler", "synchronous"],
        cwd=world_dir,
    )
    return world_dir / "output"


# ----------------------------------------------------------------------------- timing


def timed(function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """Call ``function`` and return ``(wall seconds, its result)``."""
    began = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - began, result


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Resident memory of this process now, in MiB (from ``/proc/self/status``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def machine() -> dict[str, Any]:
    """The machine the numbers were measured on."""
    model = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(memory, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def log(message: str) -> None:
    """Progress line on stderr (stdout carries only the result row)."""
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- results


def report(
    name: str,
    ratio: float,
    goal: float,
    higher_is_better: bool,
    details: dict[str, Any],
    also_required: bool = True,
) -> dict[str, Any]:
    """Write the result of benchmark ``name`` and print its table row.

    ``met`` is ``ratio >= goal`` (or ``<=``) and ``also_required`` (e.g. an accuracy
    condition that comes with the speed goal).
    """
    reached = ratio >= goal if higher_is_better else ratio <= goal
    record = {
        "ratio": round(float(ratio), 3),
        "goal": float(goal),
        "met": bool(reached and also_required),
        "details": {
            "goal_is": ">=" if higher_is_better else "<=",
            **details,
            "machine": machine(),
            "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
    }
    _save(name, record)
    return record


def skip(name: str, goal: float, higher_is_better: bool, reason: str) -> dict[str, Any]:
    """Record benchmark ``name`` as skipped (never as met), with the reason."""
    record = {
        "ratio": None,
        "goal": float(goal),
        "met": False,
        "details": {
            "goal_is": ">=" if higher_is_better else "<=",
            "skipped": reason,
            "machine": machine(),
            "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
    }
    _save(name, record)
    return record


def table_row(name: str, record: dict[str, Any]) -> str:
    """One line of the results table: name, ratio, goal, verdict, headline."""
    details = record.get("details", {})
    goal = f"{details.get('goal_is', '')} {record['goal']:g}"
    if record["ratio"] is None:
        error = details.get("error", "")
        verdict, ratio = ("FAILED" if error else "SKIPPED"), "-"
        headline = details.get("skipped") or (error.splitlines() or [""])[-1]
    else:
        verdict, ratio = ("met" if record["met"] else "MISSED"), f"{record['ratio']:.2f}"
        headline = details.get("headline", "")
    return f"{name:<20} {ratio:>7}  {goal:<7} {verdict:<8} {headline}"


def _save(name: str, record: dict[str, Any]) -> None:
    from sitsmap.io.atomic import write_text

    write_text(RESULTS / f"{name}.json", json.dumps(record, indent=1) + "\n")
    print(table_row(name, record), flush=True)


# ----------------------------------------------------------------------------- peers


def ensure_apt_package(executable: str, package: str) -> str | None:
    """Install a Debian package providing ``executable`` if missing; return why not, or None."""
    if shutil.which(executable):
        return None
    apt = shutil.which("apt-get")
    if apt is None:
        return f"{executable} not found and apt-get is not available"
    if os.geteuid() != 0:
        return f"{executable} not found and installing {package} needs root"
    log(f"installing {package} from Debian (first use)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in ([apt, "update", "-qq"], [apt, "install", "-y", "-q", package]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return f"{' '.join(command)} failed: {(done.stderr or done.stdout).strip()[-300:]}"
    return None if shutil.which(executable) else f"{package} installed but {executable} not found"


def ensure_venv(name: str, requirements: Sequence[str], probe: str) -> tuple[Path | None, str]:
    """Create ``bench/.venvs/<name>`` with ``requirements`` unless ``probe`` imports there.

    Returns the venv's python (None on failure) and a reason when it failed.
    """
    python = VENVS / name / "bin" / "python"
    if python.exists() and _imports(python, probe):
        return python, ""
    log(f"creating bench/.venvs/{name} with {' '.join(requirements)} (first use)")
    steps = [
        [sys.executable, "-m", "venv", str(VENVS / name)],
        [str(python), "-m", "pip", "install", "--quiet", *requirements],
    ]
    for command in steps:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return None, f"{' '.join(command[:4])} failed: {done.stderr.strip()[-300:]}"
    if not _imports(python, probe):
        return None, f"{probe} does not import in bench/.venvs/{name}"
    return python, ""


def _imports(python: Path, module: str) -> bool:
    done = subprocess.run([str(python), "-c", f"import {module}"], capture_output=True, check=False)
    return done.returncode == 0
