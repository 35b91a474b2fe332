"""rf_vs_otb: random-forest extraction, training, classification and validation, sitsmap vs OTB.

Both start from the same inputs, written once by sitsmap for one synthetic tile:

* ``features.tif``: the tile's 481 features (``tile_features``), float32, uncompressed;
* ``samples.gpkg``: the chain's training pixels (points, field ``code``);
* ``validation.gpkg``: the chain's validation polygons (field ``code``).

OTB 8.1 (Debian's ``otb-bin``, installed on first use): SampleExtraction,
TrainVectorClassifier ``-classifier rf``, ImageClassifier, ComputeConfusionMatrix.
sitsmap: windowed reads of the feature GeoTIFF at the sample points,
``make_classifier`` (RandomForest), prediction strip by strip with
``maps_from_probabilities``, ``reference_and_production`` + metrics. Same number of trees,
depth and minimum node size (OTB's ``classifier.rf.*`` options, mapped as the chain maps
them), two threads each; OTB's early stop on out-of-bag error is disabled (``rf.acc 0``)
so that it grows every tree.

ratio = OTB time / sitsmap time (fastest of ``ROUNDS`` interleaved runs of each chain).
Goal >= 2 with sitsmap's overall accuracy at least OTB's minus ``OA_TOLERANCE``.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
from rasterio.windows import Window

import common
from sitsmap.classification.streaming import class_dtype, maps_from_probabilities
from sitsmap.config.schema import ArgTrain
from sitsmap.io.arrays import read_table
from sitsmap.io.atomic import atomic_path
from sitsmap.io.raster import (
    RasterGrid,
    open_raster_writer,
    read_grid,
    read_raster,
    read_raster_info,
)
from sitsmap.io.vector import read_vector, write_vector
from sitsmap.learning.classical import make_classifier
from sitsmap.pipeline.layout import OutputLayout
from sitsmap.preprocessing.features import feature_names
from sitsmap.preprocessing.temporal import regular_dates
from sitsmap.preprocessing.tile import TileStack, open_tile_stack, row_windows, tile_features
from sitsmap.sensors import SENTINEL2_THEIA
from sitsmap.validation.metrics import compute_metrics, confusion_matrix
from sitsmap.validation.reference import reference_and_production
from sitsmap.vectors.split import SPLIT_COLUMN, VALIDATION

NAME, GOAL = "rf_vs_otb", 2.0
SIZE = 512
THREADS = 2
RF_OPTIONS = {"classifier.rf.nbtrees": 100, "classifier.rf.max": 25, "classifier.rf.min": 5}
OA_TOLERANCE = 0.005
ROUNDS = 2
STRIP_ROWS = 128
FIELD = "code"
PREFIX = "value_"
OUT_DATES = regular_dates(dt.date(2018, 1, 1), dt.date(2018, 12, 31), 10)


# ----------------------------------------------------------------------------- inputs


def write_inputs(folder: Path) -> dict[str, Path]:
    """Write the feature GeoTIFF, the sample points and the validation polygons (once)."""
    paths = {
        name: folder / f"{name}.{ext}"
        for name, ext in (("features", "tif"), ("samples", "gpkg"), ("validation", "gpkg"))
    }
    if all(path.exists() for path in paths.values()):
        return paths
    world_dir = common.world(SIZE)
    stack = open_tile_stack(world_dir / "S2" / common.TILE, common.TILE)
    layout = OutputLayout(common.trained_chain(world_dir, last_step="sampling"))
    table = read_table(layout.samples(0), columns=["x", "y", FIELD])
    points = gpd.GeoDataFrame(
        {FIELD: table[FIELD].astype(np.int32)},
        geometry=gpd.points_from_xy(table["x"], table["y"]),
        crs=stack.grid.crs,
    )
    write_vector(points, paths["samples"])
    split = read_vector(layout.split(0))
    validation = split.loc[split[SPLIT_COLUMN] == VALIDATION, [FIELD, "geometry"]]
    write_vector(validation.to_crs(stack.grid.crs).reset_index(drop=True), paths["validation"])
    write_features(stack, paths["features"])
    return paths


def write_features(stack: TileStack, path: Path) -> None:
    """Write the tile's feature cube as one multi-band float32 GeoTIFF, strip by strip."""
    bands = SENTINEL2_THEIA.band_names
    count = len(feature_names(bands, OUT_DATES))
    strips = row_windows(stack.grid, math.ceil(stack.grid.height / 256), 1, 1)
    common.log(f"writing {path.name}: {count} float32 bands")
    with (
        atomic_path(path) as tmp,
        open_raster_writer(tmp, count, "float32", stack.grid, compress="none") as dst,
    ):
        for window in strips:
            dst.write(tile_features(stack, window, OUT_DATES, bands).features, window=window)


# ----------------------------------------------------------------------------- OTB


def otb(app: str, *args: str) -> float:
    """Run one OTB application on ``THREADS`` threads; return its wall time."""
    env = {**os.environ, "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": str(THREADS)}
    command = [f"otbcli_{app}", *args]
    seconds, done = common.timed(
        subprocess.run, command, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"otbcli_{app} failed:\n{(done.stdout + done.stderr)[-2000:]}")
    return seconds


def run_otb(paths: dict[str, Path], folder: Path) -> tuple[dict[str, float], float]:
    """The OTB chain; return each application's time and the overall accuracy."""
    folder.mkdir(parents=True, exist_ok=True)
    samples, model = folder / "samples_otb.gpkg", folder / "model.rf"
    classif, matrix = folder / "classif_otb.tif", folder / "confusion_otb.csv"
    for stale in (samples, model, classif, matrix):
        stale.unlink(missing_ok=True)
    times = {
        "extraction": otb(
            "SampleExtraction",
            "-in",
            str(paths["features"]),
            "-vec",
            str(paths["samples"]),
            "-field",
            FIELD,
            "-outfield",
            "prefix",
            "-outfield.prefix.name",
            PREFIX,
            "-out",
            str(samples),
        )
    }
    features = _prefixed_fields(samples)
    times["training"] = otb(
        "TrainVectorClassifier",
        "-io.vd",
        str(samples),
        "-cfield",
        FIELD,
        "-feat",
        *features,
        "-classifier",
        "rf",
        *rf_arguments(),
        "-classifier.rf.acc",
        "0",
        "-rand",
        "0",
        "-io.out",
        str(model),
    )
    times["classification"] = otb(
        "ImageClassifier",
        "-in",
        str(paths["features"]),
        "-model",
        str(model),
        "-out",
        str(classif),
        "uint8",
    )
    times["validation"] = otb(
        "ComputeConfusionMatrix",
        "-in",
        str(classif),
        "-ref",
        "vector",
        "-ref.vector.in",
        str(paths["validation"]),
        "-ref.vector.field",
        FIELD,
        "-out",
        str(matrix),
    )
    return times, otb_overall_accuracy(matrix)


def rf_arguments() -> list[str]:
    """The random-forest options as OTB command-line arguments."""
    arguments = []
    for key, value in RF_OPTIONS.items():
        arguments += [f"-{key}", str(value)]
    return arguments


def _prefixed_fields(path: Path) -> list[str]:
    fields = [f for f in pyogrio.read_info(path)["fields"] if f.startswith(PREFIX)]
    return sorted(fields, key=lambda name: int(name[len(PREFIX) :]))


def otb_overall_accuracy(path: Path) -> float:
    """Overall accuracy from ComputeConfusionMatrix's CSV (labels in its two header lines)."""
    lines = path.read_text().splitlines()
    rows = [int(v) for v in lines[0].split(":", 1)[1].split(",")]
    cols = [int(v) for v in lines[1].split(":", 1)[1].split(",")]
    matrix = np.array([[float(v) for v in line.split(",")] for line in lines[2:] if line])
    correct = sum(matrix[i, cols.index(code)] for i, code in enumerate(rows) if code in cols)
    return float(correct / matrix.sum())


# ----------------------------------------------------------------------------- sitsmap


def run_sitsmap(paths: dict[str, Path], folder: Path) -> tuple[dict[str, float], float]:
    """The same four stages with sitsmap; return each stage's time and the overall accuracy."""
    classif = folder / "classif_sitsmap.tif"
    times = {}
    times["extraction"], (features, labels) = common.timed(extract, paths)
    classifier = make_classifier(ArgTrain(otb_classifier_options=RF_OPTIONS), 0, n_jobs=THREADS)
    times["training"], model = common.timed(classifier.fit, features, labels)
    times["classification"], _ = common.timed(classify, model, paths["features"], classif)
    times["validation"], oa = common.timed(overall_accuracy, classif, paths["validation"])
    return times, oa


def extract(paths: dict[str, Path]) -> tuple[np.ndarray, np.ndarray]:
    """Feature rows of the sample points, read strip by strip from the feature GeoTIFF."""
    grid = read_grid(paths["features"])
    points = read_vector(paths["samples"])
    cols, rows = ~grid.transform * (points.geometry.x.to_numpy(), points.geometry.y.to_numpy())
    rows, cols = np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)
    values = None
    for window in strips(grid):
        top = int(window.row_off)
        inside = np.flatnonzero((rows >= top) & (rows < top + int(window.height)))
        if inside.size == 0:
            continue
        block = read_raster(paths["features"], window=window)
        if values is None:
            values = np.empty((rows.size, block.shape[0]), dtype=np.float32)
        values[inside] = block[:, rows[inside] - top, cols[inside]].T
    return values, points[FIELD].to_numpy()


def classify(model, features: Path, out: Path) -> None:
    """Write the class map of the feature GeoTIFF, strip by strip."""
    grid = read_grid(features)
    codes = np.asarray(model.classes_)
    with (
        atomic_path(out) as tmp,
        open_raster_writer(tmp, 1, class_dtype(codes), grid, nodata=0) as dst,
    ):
        for window in strips(grid):
            block = read_raster(features, window=window)
            pixels = block.reshape(block.shape[0], -1).T
            has_data = np.ones(block.shape[1:], dtype=bool)
            maps = maps_from_probabilities(model.predict_proba(pixels), has_data, codes, False)
            dst.write(maps.classes[np.newaxis], window=window)


def overall_accuracy(classif: Path, validation: Path) -> float:
    """Overall accuracy of the map over the validation polygons."""
    polygons = read_vector(validation)
    reference, production = reference_and_production(classif, polygons, FIELD)
    labels = np.union1d(reference, production)
    return compute_metrics(confusion_matrix(reference, production, labels), labels).oa


def strips(grid: RasterGrid) -> list[Window]:
    """Full-width strips of ``STRIP_ROWS`` rows."""
    return row_windows(grid, math.ceil(grid.height / STRIP_ROWS), 1, 1)


# ----------------------------------------------------------------------------- report


def main() -> None:
    """Measure and report."""
    reason = common.ensure_apt_package("otbcli_TrainVectorClassifier", "otb-bin")
    if reason:
        common.skip(NAME, GOAL, True, f"OTB unavailable: {reason}")
        return
    folder = common.WORK / "rf_vs_otb"
    paths = write_inputs(folder)
    runs: dict[str, list[tuple[dict[str, float], float]]] = {"otb": [], "sitsmap": []}
    for round_ in range(ROUNDS):
        runs["sitsmap"].append(run_sitsmap(paths, folder))
        runs["otb"].append(run_otb(paths, folder / "otb"))
        common.log(
            f"round {round_ + 1}: "
            + ", ".join(f"{k} {sum(v[-1][0].values()):.1f} s" for k, v in runs.items())
        )
    (otb_times, otb_oa), (sitsmap_times, sitsmap_oa) = (
        min(runs[side], key=lambda run: sum(run[0].values())) for side in ("otb", "sitsmap")
    )
    otb_total, sitsmap_total = sum(otb_times.values()), sum(sitsmap_times.values())
    ratio = otb_total / sitsmap_total
    grid = read_grid(paths["features"])
    details = {
        "headline": (
            f"{SIZE}² px x {read_raster_info(paths['features']).count} features: OTB "
            f"{otb_total:.1f} s (OA {otb_oa:.3f}), sitsmap {sitsmap_total:.1f} s "
            f"(OA {sitsmap_oa:.3f})"
        ),
        "pixels": grid.width * grid.height,
        "samples": len(read_vector(paths["samples"])),
        "rf_options": RF_OPTIONS,
        "threads": THREADS,
        "totals_seconds": {k: [round(sum(r[0].values()), 2) for r in v] for k, v in runs.items()},
        "otb_seconds": {k: round(v, 2) for k, v in otb_times.items()},
        "sitsmap_seconds": {k: round(v, 2) for k, v in sitsmap_times.items()},
        "otb_oa": round(otb_oa, 4),
        "sitsmap_oa": round(sitsmap_oa, 4),
        "oa_tolerance": OA_TOLERANCE,
    }
    accurate = sitsmap_oa >= otb_oa - OA_TOLERANCE
    common.report(NAME, ratio, GOAL, True, details, also_required=accurate)


if __name__ == "__main__":
    main()
