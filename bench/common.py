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


def strip_world(rows: int, width: int = 10980, name: str | None = None) -> Path:
    """Return a world of one tile cut to its top ``rows`` rows at full ``width``.

    ``generate_world`` makes square tiles only; this simulates the same landscape as a
    ``width``-pixel tile of :data:`TILE` (hills, towns and parcels at their real scales)
    but writes only its first ``rows`` rows, so that a full-width strip costs its own
    pixels. Products, ground truth, nomenclature and ``config.yaml`` as in
    ``generate_world``; no truth raster. Kept under ``bench/work`` and reused (``.complete``
    marker).
    """
    out = WORK / (name or f"strip{width}x{rows}")
    marker = out / ".complete"
    if not marker.exists():
        log(f"generating {out.name}: a {width} x {rows} px strip of {TILE} (first use)")
        seconds, _ = timed(_generate_strip, out, rows, width)
        marker.write_text(f"{seconds:.1f} s\n")
    return out


def _generate_strip(out: Path, rows: int, width: int, seed: int = 0) -> None:
    """Write the strip world of :func:`strip_world` into ``out``.

    Hand-written from ``sitsmap.synth``'s pieces because ``generate_world`` and
    ``TileScene`` tie the number of rows to the width; everything below a row window
    (the ground, the atmosphere, the file layout) is the library's own.
    """
    import datetime as dt
    from concurrent.futures import ThreadPoolExecutor

    import shapely
    import yaml

    from sitsmap.io.atomic import write_text
    from sitsmap.io.synth_io import copy_file
    from sitsmap.io.vector import write_vector
    from sitsmap.nomenclature import default_files
    from sitsmap.synth.layout import acquisitions
    from sitsmap.synth.truth import add_defects, survey_parcels, to_truth_crs, with_target
    from sitsmap.synth.world import chain_config, world_landscape

    start, end = dt.date(2018, 1, 1), dt.date(2018, 12, 31)
    scene = _strip_scene(world_landscape((TILE,), width, seed), rows)
    plan = acquisitions(TILE, start, end, seed)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="strip-write") as pool:
        _write_strip_products(scene, plan, out / "S2" / TILE, pool)
    footprint = shapely.box(*scene.grid.bounds)
    clean = with_target(survey_parcels([scene], footprint, seed), seed)
    write_vector(to_truth_crs(add_defects(clean, seed)), out / "ground_truth.shp")
    names, colors = default_files()
    copy_file(names, out / "nomenclature.txt")
    copy_file(colors, out / "colorFile.txt")
    raw = chain_config((TILE,), start, end)
    write_text(out / "config.yaml", yaml.safe_dump(raw, sort_keys=False))


def _strip_scene(landscape: Any, rows: int) -> Any:
    """A ``TileScene`` of :data:`TILE` whose grid keeps only its first ``rows`` rows.

    The same attributes as ``TileScene.__init__`` sets, computed on the strip's grid
    (parcels and roads near the strip only). Its ``size`` stays the tile's width.
    """
    import numpy as np
    import shapely
    from scipy.spatial import cKDTree

    from sitsmap.io.raster import RasterGrid
    from sitsmap.synth.layout import tile_grid
    from sitsmap.synth.noise import text_key
    from sitsmap.synth.scene import TileScene, _with_road_parcel

    full = tile_grid(TILE, landscape.size)
    scene = TileScene.__new__(TileScene)
    scene.landscape, scene.tile, scene.tile_key = landscape, TILE, text_key(TILE)
    scene.grid = RasterGrid(full.width, rows, full.transform, full.crs)
    scene.parcels = _with_road_parcel(landscape.parcels(scene.grid.bounds), landscape, scene.grid)
    box = shapely.box(*scene.grid.bounds)
    scene.roads = [road for road in landscape.roads(scene.grid.bounds) if road.intersects(box)]
    scene._tree = cKDTree(np.column_stack([scene.parcels.x[:-1], scene.parcels.y[:-1]]))
    return scene


def _write_strip_products(scene: Any, plan: Sequence[Any], tile_dir: Path, pool: Any) -> None:
    """Simulate every product of ``plan`` window by window; write them on ``pool``.

    Products are done in groups whose files stay open together (as ``generate_world``
    does for large tiles), so that each window's static layers are computed once per group.
    """
    from sitsmap.io.synth_io import RasterSetWriter
    from sitsmap.synth.world import _product_specs, _write_window, strips

    group = 16  # 16 products x 17 files open at once
    windows = strips(scene.grid.height)
    for first in range(0, len(plan), group):
        products = plan[first : first + group]
        writers = {
            a.name: RasterSetWriter(tile_dir / a.name, _product_specs(scene, a.name))
            for a in products
        }
        try:
            for rows in windows:
                layers = scene.static(rows)
                pending = []
                for acquisition in products:
                    arrays = scene.observe(layers, acquisition.date)
                    writer = writers[acquisition.name]
                    pending.append(
                        pool.submit(_write_window, writer, arrays, acquisition.name, rows.start)
                    )
                    if len(pending) > 2:  # bound the arrays waiting to be written
                        pending.pop(0).result()
                for future in pending:
                    future.result()
            for writer in writers.values():
                writer.commit()
        except BaseException:
            for writer in writers.values():
                writer.abort()
            raise
        log(f"  {min(first + group, len(plan))}/{len(plan)} products written")


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
