"""classify_vs_library: compiled inference vs the libraries' own ``predict_proba``.

The models: the chain's default random forest (100 trees, depth 25, 5 samples to split)
fitted on 20 000 samples, and LightGBM with its defaults (100 iterations, 31 leaves, one
tree per class and iteration) fitted on 8 000 samples on one thread (the size of its
trees does not grow with the samples; 23 classes on 20 000 took 15 min under load). The
samples: 481 features (37 dates × 13 bands of noisy seasonal profiles, quantised as
reflectances), 23 classes, overlapping enough for an overall accuracy near 0.8, so the
forest's trees are as deep and bushy as on a hard national map (about 8 000 nodes each).
Both models are saved with :func:`~sitsmap.learning.persistence.save_model` (which
compiles them: the compile time is measured on its own) under ``bench/work/classify``,
and reused by later runs.

The tile: ``SIDE``² pixels of the same profiles, predicted in slices of
``PREDICT_PIXELS`` pixels as the classification step does. Each model predicts the tile
with the library (``predict_proba``, ``n_jobs`` threads) and compiled
(:class:`~sitsmap.learning.compiled.CompiledClassifier`, the same threads), interleaved,
best of ``REPEATS``, on 1 and 2 threads. The class maps (argmax, ties included) and the
probabilities must be identical.

ratio = library time / compiled time, the worst of the two models on one thread (per
core, as the chain runs one task per core). Goal >= 3, with identical class maps.
"""

from __future__ import annotations

import time

import numpy as np

import common
from sitsmap.config.schema import ArgTrain
from sitsmap.io.compiled import file_sha256
from sitsmap.learning.classical import make_classifier
from sitsmap.learning.compiled import (
    CompiledClassifier,
    compile_trees,
    describe,
    save_compiled,
    with_compiled,
)
from sitsmap.learning.persistence import ModelMetadata, load_model, save_model
from sitsmap.pipeline.steps.classification import PREDICT_PIXELS

NAME, GOAL = "classify_vs_library", 3.0
SIDE = 256
REPEATS = 3
CLASSES = 23
DATES, BANDS = 37, 13
SAMPLES = {"rf": 20_000, "lightgbm": 8_000}
FIT_THREADS = {"rf": 2, "lightgbm": 1}
NOISE = 0.4
OUT = common.WORK / "classify"


def profiles(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pixels: class codes and 481 float32 features (seasonal profiles plus noise)."""
    shapes = np.random.default_rng(0)  # the classes' profiles: the same in every draw
    phase = shapes.uniform(0, 1, (CLASSES, BANDS))
    amplitude = shapes.uniform(0.05, 0.3, (CLASSES, BANDS))
    base = shapes.uniform(0.1, 0.5, (CLASSES, BANDS))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n)
    t = np.linspace(0, 1, DATES)[None, None, :]
    shift = rng.normal(0, 0.08, (n, 1, 1))
    wave = np.sin(2 * np.pi * (t - phase[y][:, :, None] + shift))
    X = base[y][:, :, None] + amplitude[y][:, :, None] * wave
    X = X + rng.normal(0, NOISE, X.shape)
    X = (np.round(X * 10_000) / 10_000).reshape(n, -1).astype(np.float32)
    return X, (y + 1) * 10


def trained(kind: str) -> tuple[object, dict]:
    """The saved model of ``kind`` (fitted on first use) and what compiling it cost."""
    path = OUT / kind / "model.bin"
    if not path.exists():
        X, y = profiles(SAMPLES[kind], seed=1)
        common.log(f"fitting {kind} on {len(y)} samples × {X.shape[1]} features (first use)")
        # LightGBM on one thread: two OpenMP threads crawl as soon as another process runs
        model = make_classifier(ArgTrain(classifier=kind), seed=0, n_jobs=FIT_THREADS[kind])
        seconds, _ = common.timed(model.fit, X, y)
        common.log(f"fitted {kind} in {seconds:.0f} s")
        names = [f"f{i}" for i in range(X.shape[1])]
        metadata = ModelMetadata(kind, [int(c) for c in model.classes_], names, [], [], 0)
        save_model(path, model, metadata)
    model, _ = load_model(path)
    compile_seconds, trees = common.timed(compile_trees, model)
    save_compiled(path, model, file_sha256(path))  # as the learning step does, kept current
    return model, {"compile_seconds": round(compile_seconds, 2), **describe(trees)}


def predict_tile(model: object, tile: np.ndarray) -> np.ndarray:
    """Probabilities of every pixel of ``tile``, slice by slice as the classification step."""
    out = np.empty((len(tile), len(model.classes_)), dtype=np.float32)
    for first in range(0, len(tile), PREDICT_PIXELS):
        out[first : first + PREDICT_PIXELS] = model.predict_proba(
            tile[first : first + PREDICT_PIXELS]
        )
    return out


def measure(kind: str, tile: np.ndarray) -> dict:
    """Library vs compiled on ``tile``, 1 and 2 threads, interleaved, best of REPEATS."""
    library, info = trained(kind)
    path = OUT / kind / "model.bin"
    load_seconds, fast = common.timed(with_compiled, library, path, None, 1)
    if not isinstance(fast, CompiledClassifier):
        raise RuntimeError(f"{kind}: the compiled trees were not used (see the log)")
    fast.predict_proba(tile[:64])  # numba's compile (cached on disk after the first run)
    result: dict = {**info, "load_seconds": round(load_seconds, 2), "threads": {}}
    for threads in (1, 2):
        library.set_params(n_jobs=threads)
        fast.set_params(n_jobs=threads)
        best = {"library": np.inf, "compiled": np.inf}
        for _ in range(REPEATS):
            for name, model in (("library", library), ("compiled", fast)):
                seconds, probabilities = common.timed(predict_tile, model, tile)
                best[name] = min(best[name], seconds)
                if name == "library":
                    expected = probabilities
                else:
                    got = probabilities
            same_classes = bool(np.array_equal(got.argmax(1), expected.argmax(1)))
            same_probabilities = bool(np.array_equal(got, expected))
        ratio = best["library"] / best["compiled"]
        result["threads"][threads] = {
            "library_px_per_s": round(len(tile) / best["library"]),
            "compiled_px_per_s": round(len(tile) / best["compiled"]),
            "ratio": round(ratio, 2),
            "same_class_map": same_classes,
            "same_probabilities": same_probabilities,
            "max_probability_difference": float(np.abs(got - expected).max()),
        }
        common.log(f"{kind}, {threads} thread(s): {result['threads'][threads]}")
    return result


def main() -> None:
    """Measure and report."""
    began = time.perf_counter()
    tile, _ = profiles(SIDE * SIDE, seed=2)
    results = {kind: measure(kind, tile) for kind in ("rf", "lightgbm")}
    ratios = {kind: r["threads"][1]["ratio"] for kind, r in results.items()}
    identical = all(
        t["same_class_map"] and t["same_probabilities"]
        for r in results.values()
        for t in r["threads"].values()
    )
    worst = min(ratios, key=ratios.get)
    details = {
        "headline": (
            "1 thread: "
            + ", ".join(
                f"{k} {r['threads'][1]['library_px_per_s']:,}->"
                f"{r['threads'][1]['compiled_px_per_s']:,} px/s ({ratios[k]:.2f}x)"
                for k, r in results.items()
            )
            + f"; maps {'identical' if identical else 'DIFFER'}"
        ),
        "worst_model": worst,
        "ratio_by_model_1_thread": ratios,
        "ratio_by_model_2_threads": {k: r["threads"][2]["ratio"] for k, r in results.items()},
        "identical_maps_and_probabilities": identical,
        "models": results,
        "tile_pixels": int(len(tile)),
        "samples": SAMPLES,
        "seconds": round(time.perf_counter() - began, 1),
    }
    common.report(NAME, ratios[worst], GOAL, True, details, also_required=identical)


if __name__ == "__main__":
    main()
