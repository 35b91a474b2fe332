"""postprocessing_2n_vs_n: peak memory of the post-processing step on maps of side N and 2N.

The post-processing step reads the final mosaics block by block with a halo, so its
memory should depend on ``post_processing.block_size``, never on the map. This script
writes a class map and its 23-class probability map (parcels of random classes with
noisy, peaked probabilities, as a classifier gives) of side N and 2N, then runs
``sitsmap.pipeline.steps.postprocessing.post_process`` with the default settings
(smoothing window 7, majority 3, sieve 10 px, the three uncertainty maps; blocks
of 512², so that both maps are several blocks) on each in a
fresh child process, which reports its wall time and peak resident memory.

ratio = peak RSS at 2N / peak RSS at N. Goal <= 1.2. Also the throughput in pixels per
second (all products together, one process).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.crs import CRS

import common
from sitsmap.io.raster import RasterGrid, open_raster_writer

NAME, GOAL = "postprocessing_2n_vs_n", 1.2
N = 1024
BLOCK = 512  # the N map is already 4 blocks, the 2N map 16
CODES = np.array(
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]
)
PARCEL = 24  # pixels per parcel side
STRIP = 256  # rows written at once


def write_maps(side: int) -> Path:
    """Write a final class map and its probability map, of side ``side``; return their root."""
    root = common.WORK / f"postprocessing{side}"
    final = root / "final"
    marker = root / ".complete"
    if marker.exists():
        return root
    final.mkdir(parents=True, exist_ok=True)
    common.log(f"writing a {side}² class and probability map")
    grid = RasterGrid(side, side, Affine(10, 0, 600_000, 0, -10, 6_900_000), CRS.from_epsg(2154))
    names = [f"class {c}" for c in CODES]
    rng = np.random.default_rng(side)
    parcels = rng.integers(0, CODES.size, ((side + PARCEL - 1) // PARCEL,) * 2)
    with (
        open_raster_writer(final / "Classif_Seed_0.tif", 1, np.uint8, grid, nodata=0) as classes,
        open_raster_writer(
            final / "ProbabilityMap_Seed_0.tif", CODES.size, np.uint8, grid, nodata=255
        ) as probabilities,
    ):
        for band, name in enumerate(names, start=1):
            probabilities.set_band_description(band, name)
        for top in range(0, side, STRIP):
            rows = min(STRIP, side - top)
            truth = parcels[(np.arange(top, top + rows) // PARCEL)][:, np.arange(side) // PARCEL]
            logits = rng.normal(0, 1.0, (CODES.size, rows, side)).astype(np.float32)
            np.put_along_axis(logits, truth[np.newaxis], 2.5, axis=0)
            weights = np.exp(logits - logits.max(axis=0))
            weights /= weights.sum(axis=0)
            percent = np.clip(np.rint(weights * 100), 0, 100).astype(np.uint8)
            window = ((top, top + rows), (0, side))
            probabilities.write(percent, window=window)
            classes.write(
                CODES[np.argmax(weights, axis=0)][np.newaxis].astype(np.uint8), window=window
            )
    (root / "config.yaml").write_text(
        json.dumps(
            {
                "chain": {
                    "output_path": str(root),
                    "list_tile": [common.TILE],
                    "s2_path": str(root),
                    "ground_truth": str(root / "none.gpkg"),
                    "nomenclature_path": str(_nomenclature(root)),
                },
                "post_processing": {"block_size": BLOCK},
            }
        )
    )
    marker.write_text("done\n")
    return root


def _nomenclature(root: Path) -> Path:
    path = root / "nomenclature.txt"
    path.write_text("".join(f"class {c}:{c}\n" for c in CODES))
    return path


def run_in_child(root: Path) -> dict:
    """Run :func:`child` in a fresh process; return what it measured."""
    command = [sys.executable, __file__, "--child", str(root)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"post-processing child failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child(root: str) -> None:
    """Post-process the maps under ``root``; print seconds and memory as JSON."""
    from sitsmap.config import load_config
    from sitsmap.pipeline.context import RunContext
    from sitsmap.pipeline.steps.postprocessing import post_process

    context = RunContext(load_config(Path(root) / "config.yaml"))
    start_rss = common.current_rss_mb()
    seconds, _ = common.timed(post_process, context, 0)
    print(
        json.dumps(
            {"seconds": seconds, "start_rss_mb": start_rss, "peak_rss_mb": common.peak_rss_mb()}
        )
    )


def main() -> None:
    """Measure and report."""
    runs = {}
    for side in (N, 2 * N):
        runs[side] = run_in_child(write_maps(side))
        common.log(f"{side}²: {runs[side]}")
    ratio = runs[2 * N]["peak_rss_mb"] / runs[N]["peak_rss_mb"]
    throughput = {side: side**2 / run["seconds"] for side, run in runs.items()}
    details = {
        "headline": (
            f"peak RSS {N}² vs {2 * N}²: {runs[N]['peak_rss_mb']:.0f}->"
            f"{runs[2 * N]['peak_rss_mb']:.0f} MiB; smoothing+uncertainty+regularisation "
            f"{throughput[2 * N]:,.0f} px/s ({CODES.size} classes, 1 process)"
        ),
        "runs": {str(side): run for side, run in runs.items()},
        "pixels_per_second": {str(side): round(v) for side, v in throughput.items()},
        "map_sides": [N, 2 * N],
        "classes": int(CODES.size),
    }
    common.report(NAME, ratio, GOAL, False, details)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
