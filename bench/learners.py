"""learners: every learner with its defaults vs the random forest, on real and synthetic samples.

The learners: the chain's random forest (``rf``), ``lightgbm``, ``svm`` (each as
``make_classifier(ArgTrain(classifier=...))`` builds it) and the four networks
``MLPClassifier``, ``TempCNN``, ``LTAE`` and ``Transformer`` with every setting left
unset (``DeepClassifier.from_settings(DeepLearningParameters(dl_name=...))`` with the
run's ``n_dates``, ``day_of_year`` and feature names, as the chain's learning step
builds them: learning rate, batch size and epochs chosen from the sample count, AdamW,
one-cycle schedule, early stopping).

The datasets, each the samples table of the chain run up to ``sampling`` with
``chain.split_ground_truth: false`` (every polygon sampled), classes with at least two
polygons kept:

* ``real``: the real 31UDS patch (``../shared/data/real/worldcereal-t31uds``, Theia
  layout, ``examples/worldcereal_t31uds.yaml``: 2018, 37 dates × 13 features, every
  pixel of the parcels sampled);
* ``real_raw``: the same patch without gap-filling
  (``sensors_data_interpolation.use_gapfilling: false``, as
  ``examples/worldcereal_t31uds_raw_dates.yaml``: each pixel's own clear observations,
  91 slots × (13 features, day of year, validity));
* ``small``: a synthetic 256² tile (``common.world(256)``), ``constant`` strategy, 400
  samples per class (a few thousand samples);
* ``small_raw``: the same tile and samples without gap-filling;
* ``large``: a synthetic 1024² tile (``common.world(1024)``), ``all`` strategy (over
  200 000 samples; a 512² tile gives 66 000), one grouped 80/20 split (the first of
  the ``k`` folds); only with ``--large``. TempCNN, L-TAE and the Transformer are not
  trained to the end there (unless ``--large-networks``): one epoch of their default
  plan is measured on the first fold and the fit time projected from it
  (``epoch seconds × auto_settings epochs``).

Each dataset is cut into ``k`` grouped folds by polygon (``StratifiedGroupKFold``,
shuffled, seed 0; ``k = min(5, fewest polygons of a class)``, at most ``MAX_FOLDS`` of
them evaluated): a learner is fitted on the other folds' samples (with their polygon ids,
from which the networks take their monitoring split) and predicts the held-out fold's,
so learning and evaluation never share a polygon. A raw-dates dataset takes its
gap-filled twin's folds polygon by polygon; only the networks that read raw dates
(L-TAE, Transformer) run on it (the others refuse raw features), and its ``rf`` row is
the forest on the twin's gap-filled features, same polygons, same folds, same seeds.
The folds' confusion matrices are pooled; OA, kappa and mean F-score come from
sitsmap's own validation metrics. Fit time is the sum over folds, every learner on one
thread: on this shared 2-core machine, two OpenMP threads made LightGBM 35× and TempCNN
10× slower whenever another process ran, where one thread costs 1.2× (TempCNN) to 2×
(LightGBM) on an idle machine.

Seeds: ``--seeds N`` fits every learner with seeds ``0 … N-1`` (the folds stay those of
seed 0; a network's seed draws its initial weights, its monitoring polygons and its
batches, the forest's its bootstrap) and reports mean ± standard deviation over the
seeds; ``--seeds real=3,small=1,real_raw:Transformer=1`` sets it per dataset or per
learner. Each (dataset, learner, seed)
result is saved under ``bench/work/learners/cells`` with a fingerprint of its samples
and folds; ``--reuse`` takes the saved ones whose fingerprint matches instead of fitting
again (to assemble the report from runs made one dataset at a time).

ratio = min over the gap-filled datasets run of (best network's mean OA − random
forest's mean OA), in points (higher is better), the raw-dates twin's networks counting
for their gap-filled dataset (same polygons, same folds, same forest). Goal >= 0: the
best network at least matches the forest everywhere. ``met`` also needs every network
with its defaults (gap-filled features, the chain's default) within 1 point of the forest
on ``real`` and ``small`` and above it on ``large`` (so never without ``--large``).

Usage: ``python bench/learners.py [--large] [--datasets real,real_raw,small,small_raw]
[--learners rf,TempCNN] [--seeds 3] [--reuse]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable
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
from sitsmap.learning.deep.models import RAW_NETWORKS
from sitsmap.learning.deep.trainer import DeepClassifier, auto_settings
from sitsmap.pipeline.acquisitions import load_acquisitions
from sitsmap.pipeline.run import run_chain
from sitsmap.validation.metrics import compute_metrics, confusion_matrix
from sitsmap.vectors.ground_truth import POLYGON_ID

NAME, GOAL = "learners", 0.0
THREADS = 1
"""Threads of every learner (see the module docstring)."""
SEED = 0
"""Seed of the folds (and the first seed of the learners)."""
MAX_FOLDS = 5
CLASSICAL = ("rf", "lightgbm", "svm")
NETWORKS = ("MLPClassifier", "TempCNN", "LTAE", "Transformer")
LEARNERS = (*CLASSICAL, *NETWORKS)
PROJECTED_ON_LARGE = ("TempCNN", "LTAE", "Transformer")
"""Networks whose fit on ``large`` is projected from one measured epoch (see docstring)."""
WITHIN_POINTS = 1.0
"""Every network within this many OA points of the forest on ``real`` and ``small``."""
REAL_EXAMPLE = common.ROOT / "examples" / "worldcereal_t31uds.yaml"
REAL_DATA = common.ROOT.parent / "shared" / "data" / "real" / "worldcereal-t31uds"
REAL_RAW_EXAMPLE = common.ROOT / "examples" / "worldcereal_t31uds_raw_dates.yaml"
RAW_OVERRIDES = [
    "sensors_data_interpolation.use_gapfilling=false",
    "arg_train.deep_learning_parameters.dl_name=LTAE",  # the chain refuses rf on raw dates
]
OUT = common.WORK / "learners"
CELLS = OUT / "cells"
NOT_RUN_REASON = (
    "needs --large: the forest and LightGBM take about 10 min each on one thread, and "
    "TempCNN's, L-TAE's and the Transformer's default plans (batch 4096, about 10 000 "
    "steps) hours (see BENCHMARKS.md)"
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
    day_of_year: list[int] | None
    raw: bool = False
    twin: Dataset | None = None
    """The gap-filled dataset of a raw-dates one (same polygons, same folds)."""
    folds: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    n_folds: int = 0
    dropped_classes: list[int] = field(default_factory=list)

    @property
    def classes(self) -> list[int]:
        return [int(c) for c in np.unique(self.y)]

    @property
    def base(self) -> str:
        """The gap-filled dataset this one is a variant of (itself when gap-filled)."""
        return self.twin.name if self.twin is not None else self.name

    def fingerprint(self) -> str:
        """A digest of the samples' labels, polygons and folds (what a saved cell needs)."""
        digest = hashlib.sha256()
        for array in (self.y, self.groups.astype(np.int64), np.array(self.X.shape)):
            digest.update(np.ascontiguousarray(array).tobytes())
        for _, held in self.folds:
            digest.update(np.asarray(held, dtype=np.int64).tobytes())
        return digest.hexdigest()[:16]

    def summary(self) -> dict:
        """What the report says of the dataset."""
        return {
            "description": self.description,
            "samples": len(self.y),
            "features": int(self.X.shape[1]),
            "n_dates": self.n_dates,
            "raw_dates": self.raw,
            "folds_from": None if self.twin is None else self.twin.name,
            "classes": self.classes,
            "dropped_single_polygon_classes": self.dropped_classes,
            "polygons": len(np.unique(self.groups)),
            "folds": self.n_folds,
            "folds_evaluated": len(self.folds),
        }


# ----------------------------------------------------------------------------- datasets


def chain_samples(config: Path, out: Path, overrides: list[str]) -> tuple:
    """Run the chain of ``config`` up to sampling into ``out``; return samples and layout."""
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
    return table, field_name, acquisitions


def make_dataset(
    name: str,
    description: str,
    config: Path,
    overrides: list[str],
    n_splits: int | None = None,
    max_folds: int = MAX_FOLDS,
    twin: Dataset | None = None,
) -> Dataset:
    """The samples of a chain run, classes with a single polygon dropped, folds drawn.

    ``n_splits`` grouped folds (default: ``min(5, fewest polygons of a class)``), of
    which the first ``max_folds`` are evaluated; with a ``twin``, its classes and its
    folds, polygon by polygon.
    """
    table, field_name, acquisitions = chain_samples(config, OUT / name, overrides)
    names = acquisitions.feature_names
    y = table[field_name].to_numpy(np.int64)
    groups = table[POLYGON_ID].to_numpy()
    polygons = table.groupby(field_name)[POLYGON_ID].nunique()
    kept = polygons[polygons >= 2].index.to_numpy() if twin is None else twin.classes
    keep = np.isin(y, kept)
    data = Dataset(
        name=name,
        description=description,
        X=table[names].to_numpy(np.float32)[keep],
        y=y[keep],
        groups=groups[keep],
        feature_names=list(names),
        n_dates=acquisitions.n_dates,
        day_of_year=acquisitions.day_of_year,
        raw=bool(acquisitions.raw_slots),
        twin=twin,
        dropped_classes=[int(c) for c in polygons.index if c not in kept],
    )
    if twin is None:
        k = n_splits or int(min(MAX_FOLDS, polygons[polygons >= 2].min()))
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=SEED)
        data.n_folds = k
        data.folds = list(splitter.split(data.X, data.y, data.groups))[:max_folds]
    else:
        data.n_folds = twin.n_folds
        data.folds = twin_folds(twin, data.groups)
    common.log(
        f"{name}: {len(data.y)} samples × {data.X.shape[1]} features, {len(data.classes)} "
        f"classes, {len(np.unique(data.groups))} polygons, {data.n_folds} grouped folds "
        f"(classes dropped, single polygon: {data.dropped_classes})"
    )
    return data


def twin_folds(twin: Dataset, groups: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The folds of ``twin`` applied to samples of polygons ``groups``, polygon by polygon."""
    if set(np.unique(groups)) != set(np.unique(twin.groups)):
        raise ValueError(f"the polygons differ from those of {twin.name}")
    folds = []
    for _, held in twin.folds:
        out = np.isin(groups, np.unique(twin.groups[held]))
        folds.append((np.flatnonzero(~out), np.flatnonzero(out)))
    return folds


def real_patch() -> Dataset:
    """The real 31UDS patch, Theia layout, every parcel pixel."""
    if not REAL_DATA.is_dir():
        raise FileNotFoundError(f"real data not found at {REAL_DATA}")
    return make_dataset("real", "real 31UDS patch (64² px, 2018, all pixels)", REAL_EXAMPLE, [])


def real_patch_raw(twin: Dataset) -> Dataset:
    """The real 31UDS patch without gap-filling: each pixel's own clear observations."""
    description = "real 31UDS patch, raw dates (no gap-filling)"
    return make_dataset("real_raw", description, REAL_RAW_EXAMPLE, [], twin=twin)


SMALL_OVERRIDES = [
    "arg_train.sample_selection.strategy=constant",
    "arg_train.sample_selection.strategy.constant.nb=400",
]


def small_world() -> Dataset:
    """A synthetic 256² tile, 400 samples per class."""
    config = common.world(256) / "config.yaml"
    description = "synthetic 256² tile, 400 samples/class"
    return make_dataset("small", description, config, SMALL_OVERRIDES)


def small_world_raw(twin: Dataset) -> Dataset:
    """The synthetic 256² tile of ``small`` without gap-filling."""
    config = common.world(256) / "config.yaml"
    description = "synthetic 256² tile, 400 samples/class, raw dates"
    return make_dataset(
        "small_raw", description, config, [*SMALL_OVERRIDES, *RAW_OVERRIDES], twin=twin
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


DATASETS: dict[str, Callable[..., Dataset]] = {
    "real": real_patch,
    "real_raw": real_patch_raw,
    "small": small_world,
    "small_raw": small_world_raw,
    "large": large_world,
}
TWINS = {"real_raw": "real", "small_raw": "small"}
"""Raw-dates dataset → its gap-filled twin."""
GOAL_DATASETS = ("real", "small", "large")
"""The datasets of the goal (the raw ones count for their twin)."""


def load_dataset(name: str, loaded: dict[str, Dataset]) -> Dataset:
    """Dataset ``name``, built once (with its twin first, for a raw-dates one)."""
    if name not in loaded:
        twin = TWINS.get(name)
        builder = DATASETS[name]
        loaded[name] = builder(load_dataset(twin, loaded)) if twin else builder()
    return loaded[name]


# ----------------------------------------------------------------------------- learners


def make_learner(name: str, data: Dataset, seed: int, network_settings: dict | None = None):
    """The learner ``name`` with its defaults, as the chain's learning step builds it.

    ``network_settings`` (``deep_learning_parameters`` keys) change the networks'
    defaults: for the experiments of ``BENCHMARKS.md``, never in the reported run.
    """
    if name in NETWORKS:
        return DeepClassifier.from_settings(
            DeepLearningParameters(dl_name=name, **(network_settings or {})),
            seed,
            n_dates=data.n_dates,
            day_of_year=data.day_of_year,
            feature_names=data.feature_names,
        )
    return make_classifier(ArgTrain(classifier=name), seed, n_jobs=THREADS)


def network_settings_of(model) -> dict | None:
    """What a fitted network chose and did (None for the other learners)."""
    chosen = getattr(model, "settings_", None)
    if chosen is None:
        return None
    return {
        "batch_size": chosen["batch_size"],
        "learning_rate": round(chosen["learning_rate"], 6),
        "epochs_planned": chosen["epochs"],
        "epochs_run": int(model.history_["epoch"].max()),
        "best_epoch": int(model.best_params_["epoch"]),
        "epoch_seconds": round(float(model.history_["seconds"].mean()), 2),
        "diagnosis": model.diagnosis_,
    }


def evaluate(name: str, data: Dataset, seed: int, network_settings: dict | None = None) -> dict:
    """Fit ``name`` (seed ``seed``) on each fold's learning part, predict its held-out part."""
    labels = data.classes
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    fit_seconds, n_train, settings = [], [], []
    for fold, (learn, held) in enumerate(data.folds):
        model = make_learner(name, data, seed, network_settings)
        seconds, _ = common.timed(model.fit, data.X[learn], data.y[learn], data.groups[learn])
        predicted = model.predict(data.X[held])
        confusion += confusion_matrix(data.y[held], predicted, labels)
        fit_seconds.append(seconds)
        n_train.append(len(learn))
        chosen = network_settings_of(model)
        if chosen is not None:
            settings.append(chosen)
        common.log(
            f"{data.name} {name} seed {seed} fold {fold + 1}/{len(data.folds)}: fit "
            f"{seconds:.1f} s on {len(learn)} samples"
            + (
                f" (batch {chosen['batch_size']}, epochs {chosen['epochs_run']}"
                f"/{chosen['epochs_planned']}, best {chosen['best_epoch']})"
                if chosen is not None
                else ""
            )
        )
    metrics = compute_metrics(confusion, labels)
    cell = {
        "seed": seed,
        "oa": round(metrics.oa, 4),
        "kappa": round(metrics.kappa, 4),
        "mean_fscore": round(metrics.mean_fscore, 4),
        "fit_seconds": round(sum(fit_seconds), 1),
        "fit_seconds_by_fold": [round(s, 1) for s in fit_seconds],
        "n_train_mean": int(np.mean(n_train)),
        "n_evaluated": int(confusion.sum()),
        "confusion": confusion.tolist(),
        "load_average_1min": round(common.machine()["load_average_1min"], 2),
        "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if settings:
        cell["network_settings_by_fold"] = settings
    common.log(
        f"{data.name} {name} seed {seed}: OA {metrics.oa:.4f}, kappa {metrics.kappa:.4f}, "
        f"mean F {metrics.mean_fscore:.4f}, fit {sum(fit_seconds):.1f} s"
    )
    return cell


def project(name: str, data: Dataset) -> dict:
    """One epoch of ``name``'s default plan on the first fold; the full fit projected.

    The network is trained with ``epochs: 1`` (every other setting its default): the
    epoch costs what an epoch of the default plan costs (same batch, same samples);
    the projection is that epoch × the automatic epochs for its learning samples
    (early stopping may end sooner: the projection is an upper bound).
    """
    learn, _ = data.folds[0]
    model = make_learner(name, data, SEED, {"epochs": 1})
    seconds, _ = common.timed(model.fit, data.X[learn], data.y[learn], data.groups[learn])
    chosen = network_settings_of(model)
    n_learning = int(len(learn) * (1 - DeepLearningParameters(dl_name=name).monitoring_ratio))
    plan = auto_settings(n_learning)
    epoch = chosen["epoch_seconds"]
    cell = {
        "projected": True,
        "fit_seconds_one_epoch": round(seconds, 1),
        "epoch_seconds": epoch,
        "batch_size": plan["batch_size"],
        "epochs_planned": plan["epochs"],
        "projected_fit_seconds": round(epoch * plan["epochs"], 0),
        "n_train_mean": len(learn),
        "load_average_1min": round(common.machine()["load_average_1min"], 2),
        "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    common.log(
        f"{data.name} {name}: one epoch {epoch:.1f} s (batch {plan['batch_size']}) × "
        f"{plan['epochs']} planned epochs ≈ {cell['projected_fit_seconds'] / 3600:.1f} h"
    )
    return cell


# ----------------------------------------------------------------------------- seeds


class Cells:
    """Per-seed results: computed once per process, saved, and reused when asked."""

    def __init__(self, reuse: bool, save: bool) -> None:
        self.reuse, self.save = reuse, save
        self.memory: dict[tuple[str, str, int], dict] = {}

    def get(self, name: str, data: Dataset, seed: int, network_settings: dict) -> dict:
        """The cell of learner ``name`` on ``data`` with ``seed``."""
        key = (data.name, name, seed)
        if key in self.memory:
            return self.memory[key]
        path = CELLS / data.name / f"{name}-seed{seed}.json"
        fingerprint = data.fingerprint()
        if self.reuse and path.is_file():
            saved = json.loads(path.read_text())
            if saved.get("fingerprint") == fingerprint:
                common.log(f"{data.name} {name} seed {seed}: reused {path.name}")
                self.memory[key] = saved["cell"]
                return saved["cell"]
        cell = evaluate(name, data, seed, network_settings)
        self._keep(key, path, fingerprint, cell)
        return cell

    def projection(self, name: str, data: Dataset) -> dict:
        """The projected fit of network ``name`` on ``data`` (:func:`project`)."""
        key = (data.name, name, -1)
        if key in self.memory:
            return self.memory[key]
        path = CELLS / data.name / f"{name}-projected.json"
        fingerprint = data.fingerprint()
        if self.reuse and path.is_file():
            saved = json.loads(path.read_text())
            if saved.get("fingerprint") == fingerprint:
                common.log(f"{data.name} {name}: reused {path.name}")
                self.memory[key] = saved["cell"]
                return saved["cell"]
        cell = project(name, data)
        self._keep(key, path, fingerprint, cell)
        return cell

    def _keep(self, key: tuple, path: Path, fingerprint: str, cell: dict) -> None:
        """Remember ``cell``, and save it unless this is an experiment."""
        if self.save:
            path.parent.mkdir(parents=True, exist_ok=True)
            document = {"fingerprint": fingerprint, "cell": cell}
            path.write_text(json.dumps(document, indent=1) + "\n")
        self.memory[key] = cell


def aggregate(cells: list[dict]) -> dict:
    """Mean ± standard deviation over the seeds' cells (population std; 0 for one seed)."""
    summary: dict = {"seeds": [c["seed"] for c in cells]}
    for key in ("oa", "kappa", "mean_fscore"):
        values = np.array([c[key] for c in cells])
        summary[key] = round(float(values.mean()), 4)
        summary[f"{key}_std"] = round(float(values.std()), 4)
    summary["fit_seconds"] = round(float(np.mean([c["fit_seconds"] for c in cells])), 1)
    summary["n_train_mean"] = cells[0]["n_train_mean"]
    summary["by_seed"] = cells
    return summary


def learners_of(data: Dataset, asked: list[str]) -> list[str]:
    """The learners run on ``data``: only the raw-reading networks on raw dates."""
    if data.raw:
        return ["rf", *(n for n in asked if n in RAW_NETWORKS)]
    return asked


def measure(
    data: Dataset,
    learners: list[str],
    seeds: dict[str, int],
    cells: Cells,
    settings: dict,
    large_nets: bool,
) -> dict[str, dict]:
    """Every learner of ``data`` over its seeds (the forest of a raw one on its twin).

    ``seeds``: the count of the dataset (key ``data.name``) or of one of its learners
    (key ``dataset:learner``); 0 seeds: not run.
    """
    results = {}
    for learner in learners_of(data, learners):
        n_seeds = seeds.get(f"{data.name}:{learner}", seeds[data.name])
        if n_seeds == 0:
            results[learner] = {"not_run": "0 seeds asked (see BENCHMARKS.md)"}
            continue
        if data.name == "large" and learner in PROJECTED_ON_LARGE and not large_nets:
            results[learner] = cells.projection(learner, data)
            continue
        on = data.twin if data.raw and learner == "rf" else data
        summary = aggregate([cells.get(learner, on, s, settings) for s in range(n_seeds)])
        if on is not data:
            summary["on"] = on.name
        results[learner] = summary
    return results


# ----------------------------------------------------------------------------- verdict


def verdict(
    results: dict[str, dict[str, dict]], datasets: dict[str, Dataset]
) -> tuple[float, bool, dict]:
    """The ratio (worst best-network margin over the forest, points) and the other goals.

    A raw-dates dataset's networks count for its gap-filled twin's best network; the
    every-network goal is on the gap-filled features (the chain's default).
    """
    margins, every_network, best = {}, {}, {}
    for name, cells in results.items():
        rf = cells["rf"]["oa"]
        nets = {n: 100 * (c["oa"] - rf) for n, c in cells.items() if n in NETWORKS and "oa" in c}
        ran_all = all(n in nets for n in cells if n in NETWORKS)
        if not nets:
            continue
        top = max(nets, key=nets.get)
        margins[name] = {"best_network": top, "points": round(nets[top], 2)}
        base = datasets[name].base
        if base not in best or nets[top] > best[base]["points"]:
            best[base] = {"best_network": f"{top} ({name})", "points": round(nets[top], 2)}
        if datasets[name].raw:
            continue
        if name == "large":
            every_network[name] = ran_all and all(v > 0 for v in nets.values())
        else:
            every_network[name] = ran_all and all(v >= -WITHIN_POINTS for v in nets.values())
    ratio = min(m["points"] for m in best.values()) if best else float("nan")
    complete = set(every_network) >= set(GOAL_DATASETS)
    also = complete and all(every_network.values())
    checks = {"margins": margins, "best_by_dataset": best, "every_network_goal": every_network}
    return ratio, also, checks


def _pm(cell: dict, key: str) -> str:
    """``mean ± std`` of ``key`` (the mean alone for one seed)."""
    if len(cell.get("seeds", [])) > 1:
        return f"{cell[key]:.3f} ± {cell[f'{key}_std']:.3f}"
    return f"{cell[key]:.3f}"


def table(results: dict[str, dict[str, dict]]) -> str:
    """The results as a Markdown table (one row per dataset and learner, the forest first)."""
    lines = [
        "| dataset | learner | seeds | OA | kappa | mean F | fit s | train samples "
        "| OA − RF (pts) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, cells in results.items():
        rf = cells.get("rf", {}).get("oa")
        for learner, cell in cells.items():
            label = learner + (f" (on {cell['on']})" if "on" in cell else "")
            if "not_run" in cell:
                lines.append(f"| {name} | {label} | 0 | not run | | | | | |")
                continue
            if cell.get("projected"):
                lines.append(
                    f"| {name} | {label} | – | not run | | | ≈ {cell['projected_fit_seconds']:,.0f}"
                    f" (1 epoch {cell['epoch_seconds']:.0f} s × {cell['epochs_planned']}) | "
                    f"{cell['n_train_mean']:,} | |"
                )
                continue
            delta = "" if rf is None or learner == "rf" else f"{100 * (cell['oa'] - rf):+.1f}"
            lines.append(
                f"| {name} | {label} | {len(cell['seeds'])} | {_pm(cell, 'oa')} | "
                f"{_pm(cell, 'kappa')} | {_pm(cell, 'mean_fscore')} | {cell['fit_seconds']:.1f} | "
                f"{cell['n_train_mean']:,} | {delta} |"
            )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def parse_seeds(text: str, datasets: list[str]) -> dict[str, int]:
    """``--seeds``: ``N`` for every dataset, or ``name=N,…`` (1 for the datasets not named).

    A name is a dataset or ``dataset:learner``; ``dataset:learner=0`` leaves it out.
    """
    if "=" not in text:
        return dict.fromkeys(datasets, int(text))
    given = {k: int(v) for k, _, v in (item.partition("=") for item in text.split(","))}
    return {name: given.get(name, 1) for name in datasets} | {
        k: v for k, v in given.items() if ":" in k
    }


def parse_arguments() -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="also the ≥ 200 000-sample world")
    parser.add_argument(
        "--large-networks",
        action="store_true",
        help="train TempCNN, L-TAE and the Transformer on the large world (hours)",
    )
    parser.add_argument("--datasets", help=f"comma-separated subset of {','.join(DATASETS)}")
    parser.add_argument("--learners", help=f"comma-separated subset of {','.join(LEARNERS)}")
    parser.add_argument(
        "--seeds", default="1", help="N, or name=N,… (name: dataset or dataset:learner; default 1)"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="reuse the saved results whose samples match"
    )
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
    args.seeds = parse_seeds(args.seeds, args.datasets)
    return args


def main() -> None:
    """Measure; report the run with every learner's defaults, or save an experiment's table."""
    args = parse_arguments()
    torch.set_num_threads(THREADS)
    began = time.perf_counter()
    experiment = bool(args.network_setting)
    cells = Cells(reuse=args.reuse and not experiment, save=not experiment)
    loaded: dict[str, Dataset] = {}
    results = {}
    for name in args.datasets:
        data = load_dataset(name, loaded)
        results[name] = measure(
            data, args.learners, args.seeds, cells, args.network_setting, args.large_networks
        )
        common.log(f"elapsed {time.perf_counter() - began:.0f} s")
    datasets = {n: loaded[n] for n in args.datasets}
    ratio, also, checks = verdict(results, datasets)
    markdown = table(results)
    print(markdown, flush=True)
    not_run = [n for n in GOAL_DATASETS if n not in datasets]
    details = {
        "headline": "; ".join(
            f"{n}: best net {m['best_network']} {m['points']:+.1f} pts vs RF"
            for n, m in checks["best_by_dataset"].items()
        )
        + (f"; not run: {', '.join(not_run)}" if not_run else ""),
        **checks,
        "datasets": {n: d.summary() for n, d in datasets.items()},
        "seeds": args.seeds,
        "results": results,
        "not_run": {n: NOT_RUN_REASON for n in not_run},
        "network_settings": args.network_setting,
        "bench_seconds": round(time.perf_counter() - began, 1),
        "threads": THREADS,
    }
    partial = set(args.learners) != set(LEARNERS)
    tag = "-".join(
        [*args.datasets, *(f"{k}={v}" for k, v in args.network_setting.items())]
        + (["partial"] if partial else [])
    )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"run-{tag}.md").write_text(markdown + "\n")
    (OUT / f"run-{tag}.json").write_text(json.dumps(details, indent=1) + "\n")
    if experiment or partial:
        common.log(f"an experiment or a part, not the benchmark's result: {OUT}/run-{tag}.*")
    else:
        common.report(NAME, ratio, GOAL, True, details, also_required=also)


if __name__ == "__main__":
    main()
