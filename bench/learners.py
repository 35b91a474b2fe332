"""learners: every learner with its defaults vs the random forest, on real and synthetic samples.

The learners: the chain's random forest (``rf``), ``lightgbm``, ``svm`` (each as
``make_classifier(ArgTrain(classifier=...))`` builds it) and the three networks
``MLPClassifier``, ``TempCNN`` and ``LTAE`` with every setting left unset
(``DeepClassifier.from_settings(DeepLearningParameters(dl_name=...))``, as the chain's
learning step builds them: learning rate, batch size and epochs chosen from the sample
count, AdamW, one-cycle schedule, early stopping).

The datasets, each the samples table of the chain run up to ``sampling`` with
``chain.split_ground_truth: false`` (every polygon sampled), classes with at least two
polygons kept:

* ``real``: the real 31UDS patch (``../shared/data/real/worldcereal-t31uds``, Theia
  layout, ``examples/worldcereal_t31uds.yaml``: 2018, 37 dates × 13 features, every
  pixel of the parcels sampled);
* ``small``: a synthetic 256² tile (``common.world(256)``), ``constant`` strategy, 400
  samples per class (a few thousand samples);
* ``large``: a synthetic 1024² tile (``common.world(1024)``), ``all`` strategy (over
  200 000 samples; a 512² tile gives 66 000), one grouped 80/20 split (the first of
  the ``k`` folds); only with ``--large`` (see ``BENCHMARKS.md`` for why).

Each dataset is cut into ``k`` grouped folds by polygon (``StratifiedGroupKFold``,
shuffled, seed 0; ``k = min(5, fewest polygons of a class)``, at most ``MAX_FOLDS`` of
them evaluated): a learner is fitted on the other folds' samples (with their polygon ids,
from which the networks take their monitoring split) and predicts the held-out fold's,
so learning and evaluation never share a polygon. The folds' confusion matrices are
pooled; OA, kappa and mean F-score come from sitsmap's own validation metrics. Fit time
is the sum over folds, every learner on one thread: on this shared 2-core machine, two
OpenMP threads made LightGBM 35× and TempCNN 10× slower whenever another process ran,
where one thread costs 1.2× (TempCNN) to 2× (LightGBM) on an idle machine.

ratio = min over the datasets run of (best network's OA − random forest's OA), in
points (higher is better). Goal >= 0: the best network at least matches the forest
everywhere. ``met`` also needs every network within 1 point of the forest on ``real``
and ``small`` and above it on ``large`` (so never without ``--large``).

Usage: ``python bench/learners.py [--large] [--datasets real,small] [--learners rf,TempCNN]``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from sklearn.model_selection import StratifiedGroupKFold

import common
from sitsmap.config import load_config
from sitsmap.config.schema import ArgTrain, DeepLearningParameters
from sitsmap.io.arrays import read_table
from sitsmap.learning.classical import make_classifier
from sitsmap.learning.deep.trainer import DeepClassifier
from sitsmap.pipeline.acquisitions import load_acquisitions
from sitsmap.pipeline.run import run_chain
from sitsmap.validation.metrics import compute_metrics, confusion_matrix
from sitsmap.vectors.ground_truth import POLYGON_ID

NAME, GOAL = "learners", 0.0
THREADS = 1
"""Threads of every learner (see the module docstring)."""
SEED = 0
MAX_FOLDS = 5
CLASSICAL = ("rf", "lightgbm", "svm")
NETWORKS = ("MLPClassifier", "TempCNN", "LTAE")
LEARNERS = (*CLASSICAL, *NETWORKS)
WITHIN_POINTS = 1.0
"""Every network within this many OA points of the forest on ``real`` and ``small``."""
REAL_EXAMPLE = common.ROOT / "examples" / "worldcereal_t31uds.yaml"
REAL_DATA = common.ROOT.parent / "shared" / "data" / "real" / "worldcereal-t31uds"
OUT = common.WORK / "learners"
NOT_RUN_REASON = (
    "needs --large: TempCNN's and L-TAE's default plans (batch 4096, about 10 000 steps) "
    "take hours on 2 CPU cores (see BENCHMARKS.md)"
)


@dataclass
class Dataset:
    """Samples of one chain run, with the grouped folds they are evaluated on."""

    name: str
    description: str
    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    feature_names: list[str]
    n_dates: int
    day_of_year: list[int]
    folds: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    n_folds: int = 0
    dropped_classes: list[int] = field(default_factory=list)

    @property
    def classes(self) -> list[int]:
        return [int(c) for c in np.unique(self.y)]

    def summary(self) -> dict:
        """What the report says of the dataset."""
        return {
            "description": self.description,
            "samples": len(self.y),
            "classes": self.classes,
            "dropped_single_polygon_classes": self.dropped_classes,
            "polygons": len(np.unique(self.groups)),
            "folds": self.n_folds,
            "folds_evaluated": len(self.folds),
        }


# ----------------------------------------------------------------------------- datasets


def chain_samples(config: Path, out: Path, overrides: list[str]) -> tuple:
    """Run the chain of ``config`` up to sampling into ``out``; return samples and dates."""
    settings = load_config(
        config,
        [
            f"chain.output_path={out}",
            "chain.split_ground_truth=false",
            "chain.last_step=sampling",
            "scheduling.scheduler=synchronous",
            *overrides,
        ],
    )
    seconds, context = common.timed(run_chain, settings)
    acquisitions = load_acquisitions(context)
    names = acquisitions.feature_names
    field_name = settings.chain.data_field
    table = read_table(context.layout.samples(0), columns=[*names, field_name, POLYGON_ID])
    common.log(f"{out.name}: chain up to sampling in {seconds:.1f} s, {len(table)} samples")
    days = [d.timetuple().tm_yday for d in acquisitions.out_dates]
    return table, names, field_name, days


def make_dataset(
    name: str,
    description: str,
    config: Path,
    overrides: list[str],
    n_splits: int | None = None,
    max_folds: int = MAX_FOLDS,
) -> Dataset:
    """The samples of a chain run, classes with a single polygon dropped, folds drawn.

    ``n_splits`` grouped folds (default: ``min(5, fewest polygons of a class)``), of
    which the first ``max_folds`` are evaluated.
    """
    table, names, field_name, days = chain_samples(config, OUT / name, overrides)
    y = table[field_name].to_numpy(np.int64)
    groups = table[POLYGON_ID].to_numpy()
    polygons = table.groupby(field_name)[POLYGON_ID].nunique()
    kept = polygons[polygons >= 2]
    keep = np.isin(y, kept.index.to_numpy())
    data = Dataset(
        name=name,
        description=description,
        X=table[names].to_numpy(np.float32)[keep],
        y=y[keep],
        groups=groups[keep],
        feature_names=list(names),
        n_dates=len(days),
        day_of_year=days,
        dropped_classes=[int(c) for c in polygons.index[polygons < 2]],
    )
    k = n_splits or int(min(MAX_FOLDS, kept.min()))
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=SEED)
    data.n_folds = k
    data.folds = list(splitter.split(data.X, data.y, data.groups))[:max_folds]
    common.log(
        f"{name}: {len(data.y)} samples, {len(data.classes)} classes, "
        f"{len(np.unique(data.groups))} polygons, {k} grouped folds "
        f"(classes dropped, single polygon: {data.dropped_classes})"
    )
    return data


def real_patch() -> Dataset:
    """The real 31UDS patch, Theia layout, every parcel pixel."""
    if not REAL_DATA.is_dir():
        raise FileNotFoundError(f"real data not found at {REAL_DATA}")
    return make_dataset("real", "real 31UDS patch (64² px, 2018, all pixels)", REAL_EXAMPLE, [])


def small_world() -> Dataset:
    """A synthetic 256² tile, 400 samples per class."""
    world = common.world(256)
    overrides = [
        "arg_train.sample_selection.strategy=constant",
        "arg_train.sample_selection.strategy.constant.nb=400",
    ]
    return make_dataset(
        "small", "synthetic 256² tile, 400 samples/class", world / "config.yaml", overrides
    )


def large_world() -> Dataset:
    """A synthetic 1024² tile, every labelled pixel; one grouped fold of ``k`` evaluated."""
    world = common.world(1024)
    overrides = ["arg_train.sample_selection.strategy=all"]
    return make_dataset(
        "large",
        "synthetic 1024² tile, all pixels",
        world / "config.yaml",
        overrides,
        n_splits=5,
        max_folds=1,
    )


DATASETS = {"real": real_patch, "small": small_world, "large": large_world}


# ----------------------------------------------------------------------------- learners


def make_learner(name: str, data: Dataset, network_settings: dict | None = None):
    """The learner ``name`` with its defaults, as the chain's learning step builds it.

    ``network_settings`` (``deep_learning_parameters`` keys) change the networks'
    defaults: for the experiments of ``BENCHMARKS.md``, never in the reported run.
    """
    if name in NETWORKS:
        return DeepClassifier.from_settings(
            DeepLearningParameters(dl_name=name, **(network_settings or {})),
            SEED,
            n_dates=data.n_dates,
            day_of_year=data.day_of_year,
            feature_names=data.feature_names,
        )
    return make_classifier(ArgTrain(classifier=name), SEED, n_jobs=THREADS)


def evaluate(name: str, data: Dataset, network_settings: dict | None = None) -> dict:
    """Fit ``name`` on each fold's learning part, predict its held-out part; pooled metrics."""
    labels = data.classes
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    fit_seconds, n_train, settings = [], [], []
    for fold, (learn, held) in enumerate(data.folds):
        model = make_learner(name, data, network_settings)
        seconds, _ = common.timed(model.fit, data.X[learn], data.y[learn], data.groups[learn])
        predicted = model.predict(data.X[held])
        confusion += confusion_matrix(data.y[held], predicted, labels)
        fit_seconds.append(seconds)
        n_train.append(len(learn))
        chosen = getattr(model, "settings_", None)
        if chosen is not None:
            settings.append(
                {
                    "batch_size": chosen["batch_size"],
                    "learning_rate": round(chosen["learning_rate"], 6),
                    "epochs_planned": chosen["epochs"],
                    "epochs_run": int(model.history_["epoch"].max()),
                    "best_epoch": int(model.best_params_["epoch"]),
                    "epoch_seconds": round(float(model.history_["seconds"].mean()), 2),
                    "diagnosis": model.diagnosis_,
                }
            )
        common.log(
            f"{data.name} {name} fold {fold + 1}/{len(data.folds)}: fit {seconds:.1f} s on "
            f"{len(learn)} samples"
            + (
                f" (batch {settings[-1]['batch_size']}, epochs {settings[-1]['epochs_run']}"
                f"/{settings[-1]['epochs_planned']}, best {settings[-1]['best_epoch']})"
                if chosen is not None
                else ""
            )
        )
    metrics = compute_metrics(confusion, labels)
    cell = {
        "oa": round(metrics.oa, 4),
        "kappa": round(metrics.kappa, 4),
        "mean_fscore": round(metrics.mean_fscore, 4),
        "fit_seconds": round(sum(fit_seconds), 1),
        "fit_seconds_by_fold": [round(s, 1) for s in fit_seconds],
        "n_train_mean": int(np.mean(n_train)),
        "n_evaluated": int(confusion.sum()),
        "confusion": confusion.tolist(),
    }
    if settings:
        cell["network_settings_by_fold"] = settings
    common.log(
        f"{data.name} {name}: OA {metrics.oa:.4f}, kappa {metrics.kappa:.4f}, "
        f"mean F {metrics.mean_fscore:.4f}, fit {sum(fit_seconds):.1f} s"
    )
    return cell


# ----------------------------------------------------------------------------- verdict


def verdict(results: dict[str, dict[str, dict]]) -> tuple[float, bool, dict]:
    """The ratio (worst best-network margin over the forest, points) and the other goals."""
    margins, every_network = {}, {}
    for name, cells in results.items():
        rf = cells["rf"]["oa"]
        nets = {n: 100 * (cells[n]["oa"] - rf) for n in NETWORKS if n in cells}
        if not nets:
            continue
        best = max(nets, key=nets.get)
        margins[name] = {"best_network": best, "points": round(nets[best], 2)}
        if name == "large":
            every_network[name] = all(v > 0 for v in nets.values())
        else:
            every_network[name] = all(v >= -WITHIN_POINTS for v in nets.values())
    ratio = min(m["points"] for m in margins.values()) if margins else float("nan")
    complete = set(every_network) == set(DATASETS)
    also = complete and all(every_network.values())
    return ratio, also, {"margins": margins, "every_network_goal": every_network}


def table(results: dict[str, dict[str, dict]]) -> str:
    """The results as a Markdown table (one row per dataset and learner)."""
    lines = [
        "| dataset | learner | OA | kappa | mean F | fit s | train samples | OA − RF (pts) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, cells in results.items():
        rf = cells.get("rf", {}).get("oa")
        for learner, cell in cells.items():
            delta = "" if rf is None or learner == "rf" else f"{100 * (cell['oa'] - rf):+.1f}"
            lines.append(
                f"| {name} | {learner} | {cell['oa']:.3f} | {cell['kappa']:.3f} | "
                f"{cell['mean_fscore']:.3f} | {cell['fit_seconds']:.1f} | "
                f"{cell['n_train_mean']:,} | {delta} |"
            )
    return "\n".join(lines)


def parse_arguments() -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="also the ≥ 200 000-sample world")
    parser.add_argument("--datasets", help="comma-separated subset of real,small,large")
    parser.add_argument("--learners", help=f"comma-separated subset of {','.join(LEARNERS)}")
    parser.add_argument(
        "--network-setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an experiment: change a deep_learning_parameters default of the networks "
        "(e.g. enable_early_stop=false, epochs=2); the run is then not reported as the "
        "benchmark's result",
    )
    args = parser.parse_args()
    args.datasets = args.datasets.split(",") if args.datasets else ["real", "small"]
    if args.large and "large" not in args.datasets:
        args.datasets.append("large")
    args.learners = args.learners.split(",") if args.learners else list(LEARNERS)
    if "rf" not in args.learners:
        args.learners.insert(0, "rf")
    args.network_setting = {
        key: yaml.safe_load(value)
        for key, _, value in (item.partition("=") for item in args.network_setting)
    }
    unknown = set(args.datasets) - set(DATASETS) | set(args.learners) - set(LEARNERS)
    if unknown:
        parser.error(f"unknown dataset(s) or learner(s): {sorted(unknown)}")
    return args


def main() -> None:
    """Measure; report the run with every learner's defaults, or save an experiment's table."""
    args = parse_arguments()
    torch.set_num_threads(THREADS)
    began = time.perf_counter()
    datasets, results = {}, {}
    for name in args.datasets:
        datasets[name] = DATASETS[name]()
        results[name] = {}
        for learner in args.learners:
            results[name][learner] = evaluate(learner, datasets[name], args.network_setting)
            common.log(f"elapsed {time.perf_counter() - began:.0f} s")
    ratio, also, checks = verdict(results)
    markdown = table(results)
    print(markdown, flush=True)
    not_run = [n for n in DATASETS if n not in datasets]
    details = {
        "headline": "; ".join(
            f"{n}: best net {m['best_network']} {m['points']:+.1f} pts vs RF"
            for n, m in checks["margins"].items()
        )
        + (f"; not run: {', '.join(not_run)} (needs --large)" if not_run else ""),
        **checks,
        "datasets": {n: d.summary() for n, d in datasets.items()},
        "results": results,
        "not_run": {n: NOT_RUN_REASON for n in not_run},
        "network_settings": args.network_setting,
        "bench_seconds": round(time.perf_counter() - began, 1),
        "threads": THREADS,
    }
    experiment = args.network_setting or set(args.learners) != set(LEARNERS)
    tag = "-".join(
        [*args.datasets, *(f"{k}={v}" for k, v in args.network_setting.items())]
        + (["partial"] if set(args.learners) != set(LEARNERS) else [])
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"run-{tag}.md").write_text(markdown + "\n")
    (OUT / f"run-{tag}.json").write_text(json.dumps(details, indent=1) + "\n")
    if experiment:
        common.log(f"an experiment, not the benchmark's result: saved as {OUT}/run-{tag}.*")
    else:
        common.report(NAME, ratio, GOAL, True, details, also_required=also)


if __name__ == "__main__":
    main()
