"""memory_2n_vs_n: peak memory of the chain's classification step on tiles of side N and 2N.

Also the classification throughput (pixels per second) of the random forest, LightGBM
and the reference MLP on one tile.

Each measure runs ``sitsmap.pipeline.steps.classification.classify_tile`` (features
computed strip by strip, prediction, class/confidence/probability GeoTIFFs) in a fresh
child process, which reports its wall time and its peak resident memory
(``getrusage(RUSAGE_SELF).ru_maxrss``). The random forest is the chain's own (trained
by ``sitsmap run`` on the N world); LightGBM and the MLP are trained here on the same
samples. Each (world, classifier) gets its own output directory holding the world's
``init/acquisitions.json`` and the model. Throughputs are measured on the 2N tile.

``python_data_managing.max_chunk_megabytes`` is set to ``BUDGET_MB`` so that both tiles
are cut into several strips: the measure asks whether memory stays bounded once the
strips are bounded by the budget (with a budget larger than the N tile's working set,
the N tile is one strip and the ratio only shows the strip growing with the tile).

ratio = peak RSS at 2N / peak RSS at N, the worst over the three classifiers. Goal <= 1.2.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

import common
from sitsmap.config.schema import ArgTrain
from sitsmap.io.arrays import read_table
from sitsmap.learning.classical import make_classifier
from sitsmap.learning.deep.trainer import DeepClassifier
from sitsmap.learning.persistence import ModelMetadata, load_model, save_model
from sitsmap.pipeline.layout import OutputLayout
from sitsmap.vectors.ground_truth import POLYGON_ID

NAME, GOAL = "memory_2n_vs_n", 1.2
N = 512
BUDGET_MB = 256  # strips of both tiles are bounded by the budget, not by the tile
CLASSIFIERS = ("rf", "lightgbm", "mlp")
PREDICT_ROWS = 65536


def train_models(chain_output: Path) -> dict[str, Path]:
    """The chain's RF, plus LightGBM and an MLP fitted on the same samples; their files."""
    layout = OutputLayout(chain_output)
    models = {"rf": layout.model(0)}
    _, metadata = load_model(layout.model(0))
    names = metadata.feature_names
    table = read_table(layout.samples(0), columns=[*names, "code", POLYGON_ID])
    X, y = table[names].to_numpy(np.float32), table["code"].to_numpy(np.int32)
    fitted = {
        "lightgbm": make_classifier(ArgTrain(classifier="lightgbm"), 0, n_jobs=2),
        "mlp": DeepClassifier(epochs=10, learning_rates=(1e-3,), batch_sizes=(512,), seed=0),
    }
    for name, model in fitted.items():
        path = common.WORK / "models" / name / "model.bin"
        if not path.exists():
            common.log(f"training {name} on {len(y)} samples")
            model.fit(X, y, table[POLYGON_ID].to_numpy())
            save_model(path, model, _with_classifier(metadata, name))
        models[name] = path
    return models


def _with_classifier(metadata: ModelMetadata, name: str) -> ModelMetadata:
    fields = metadata.to_dict()
    fields["classifier"] = "MLPClassifier" if name == "mlp" else name
    return ModelMetadata.from_dict(fields)


def predict_rates(models: dict[str, Path], chain_output: Path) -> dict[str, float]:
    """Pixels per second of each model's ``predict_proba`` alone, on sample rows."""
    layout = OutputLayout(chain_output)
    rates = {}
    for name, path in models.items():
        model, metadata = load_model(path)
        rows = read_table(layout.samples(0), columns=metadata.feature_names).to_numpy(np.float32)
        block = np.resize(rows, (PREDICT_ROWS, rows.shape[1]))
        model.predict_proba(block[:1024])
        seconds, _ = common.timed(model.predict_proba, block)
        rates[name] = PREDICT_ROWS / seconds
    return rates


def prepare_run(world_dir: Path, chain_output: Path, model: Path, name: str) -> Path:
    """An output directory with the world's acquisitions and ``model``, ready to classify."""
    out = common.WORK / "classify" / f"{world_dir.name}-{name}"
    shutil.rmtree(out, ignore_errors=True)
    layout, source = OutputLayout(out), OutputLayout(chain_output)
    layout.acquisitions.parent.mkdir(parents=True)
    shutil.copy(source.acquisitions, layout.acquisitions)
    layout.model_dir(0).mkdir(parents=True)
    shutil.copy(model, layout.model(0))
    shutil.copy(model.with_name(model.name + ".json"), layout.model(0).with_name("model.bin.json"))
    return out


def classify_in_child(world_dir: Path, out: Path) -> dict:
    """Run :func:`child` in a fresh process; return what it measured."""
    command = [sys.executable, __file__, "--child", str(world_dir / "config.yaml"), str(out)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"classification child failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child(config_path: str, out: str) -> None:
    """Classify the world's tile into ``out``; print seconds and memory as JSON."""
    from sitsmap.config import load_config
    from sitsmap.pipeline.context import RunContext
    from sitsmap.pipeline.steps.classification import classify_tile

    overrides = [
        f"chain.output_path={out}",
        f"python_data_managing.max_chunk_megabytes={BUDGET_MB}",
    ]
    context = RunContext(load_config(config_path, overrides))
    start_rss = common.current_rss_mb()
    seconds, _ = common.timed(classify_tile, context, common.TILE, 0)
    print(
        json.dumps(
            {"seconds": seconds, "start_rss_mb": start_rss, "peak_rss_mb": common.peak_rss_mb()}
        )
    )


def main() -> None:
    """Measure and report."""
    worlds = {N: common.world(N), 2 * N: common.world(2 * N)}
    outputs = {
        N: common.trained_chain(worlds[N], last_step="learning"),
        2 * N: common.trained_chain(worlds[2 * N], last_step="init"),
    }
    models = train_models(outputs[N])
    runs: dict[str, dict[int, dict]] = {name: {} for name in CLASSIFIERS}
    for name in CLASSIFIERS:
        for side in (N, 2 * N):
            out = prepare_run(worlds[side], outputs[side], models[name], name)
            runs[name][side] = classify_in_child(worlds[side], out)
            common.log(f"{name} {side}²: {runs[name][side]}")
    peak = {
        name: runs[name][2 * N]["peak_rss_mb"] / runs[name][N]["peak_rss_mb"]
        for name in CLASSIFIERS
    }
    worst = max(peak, key=peak.get)
    throughput = {name: (2 * N) ** 2 / runs[name][2 * N]["seconds"] for name in CLASSIFIERS}
    predict = predict_rates(models, outputs[N])
    details = {
        "headline": (
            f"peak RSS {N}² vs {2 * N}²: "
            + ", ".join(
                f"{k} {runs[k][N]['peak_rss_mb']:.0f}->{runs[k][2 * N]['peak_rss_mb']:.0f} MiB"
                for k in CLASSIFIERS
            )
            + "; classify px/s "
            + ", ".join(f"{k} {v:,.0f}" for k, v in throughput.items())
        ),
        "worst_classifier": worst,
        "peak_ratio_by_classifier": {k: round(v, 3) for k, v in peak.items()},
        "runs": runs,
        "classification_pixels_per_second": {k: round(v) for k, v in throughput.items()},
        "predict_only_pixels_per_second": {k: round(v) for k, v in predict.items()},
        "tile_sides": [N, 2 * N],
        "max_chunk_megabytes": BUDGET_MB,
    }
    common.report(NAME, peak[worst], GOAL, False, details)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main()
