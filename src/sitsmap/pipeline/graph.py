"""The chain's task list: every step × tile × seed (× fold), with deterministic keys.

Keys read like ``classification-T31TCJ-seed0``; a cross-validation fold's
tasks carry the fold after an ``@`` (``learning-seed0@T31TDK``) and share the
fold-independent tasks (init, preprocessing) with every other fold.
"""

from __future__ import annotations

from collections.abc import Sequence

from sitsmap.config.schema import Config
from sitsmap.pipeline.steps import (
    classification,
    crossval,
    init,
    learning,
    mosaic,
    preprocessing,
    sampling,
    split,
    validation,
)
from sitsmap.pipeline.tasks import Task


def build_tasks(config: Config) -> list[Task]:
    """Return every task of the chain for ``config``, in a valid execution order."""
    tiles, seeds = list(config.chain.list_tile), config.seeds
    tasks = _shared_tasks(tiles)
    for seed in seeds:
        tasks += _seed_tasks(tiles, seed)
    summary_needs = tuple(f"validation-seed{seed}" for seed in seeds)
    if config.chain.merge_final_classifications:
        fused_from = tuple(f"mosaic-seed{seed}" for seed in seeds)
        tasks.append(Task("mosaic-fusion", "mosaic", mosaic.fuse_runs, {}, fused_from))
        tasks.append(
            Task(
                "validation-fusion",
                "validation",
                validation.validate_fusion,
                {},
                ("mosaic-fusion",),
            )
        )
        summary_needs += ("validation-fusion",)
    tasks.append(Task("validation-summary", "validation", validation.summarise, {}, summary_needs))
    return tasks


def build_crossval_tasks(
    config: Config, folds: Sequence[str], group_field: str | None = None
) -> list[Task]:
    """Return the tasks of a spatial cross-validation: one chain per fold, shared preprocessing.

    Parameters
    ----------
    config : Config
        The run's configuration.
    folds : sequence of str
        The groups left out in turn (tile names, or values of ``group_field``).
    group_field : str, optional
        Ground-truth column defining the groups; tiles when omitted.
    """
    tiles, seeds = list(config.chain.list_tile), config.seeds
    tasks = _shared_tasks(tiles)
    summaries = []
    for fold in folds:
        for seed in seeds:
            tasks += _seed_tasks(tiles, seed, fold, group_field)
        summaries.append(f"validation-summary@{fold}")
        tasks.append(
            Task(
                summaries[-1],
                "validation",
                validation.summarise,
                {},
                tuple(f"validation-seed{seed}@{fold}" for seed in seeds),
                fold,
            )
        )
    tasks.append(
        Task(
            "crossval-summary",
            "validation",
            crossval.summarise_folds,
            {"folds": list(folds)},
            tuple(summaries),
        )
    )
    return tasks


def _shared_tasks(tiles: list[str]) -> list[Task]:
    tasks = [Task("init", "init", init.run_init)]
    tasks += [
        Task(
            f"preprocessing-{tile}",
            "preprocessing",
            preprocessing.preprocess_tile,
            {"tile": tile},
            ("init",),
        )
        for tile in tiles
    ]
    tasks.append(
        Task(
            "mosaic-validity",
            "mosaic",
            mosaic.mosaic_validity,
            {},
            tuple(f"preprocessing-{tile}" for tile in tiles),
        )
    )
    return tasks


def _seed_tasks(
    tiles: list[str], seed: int, fold: str | None = None, group_field: str | None = None
) -> list[Task]:
    s = f"seed{seed}"
    at = f"@{fold}" if fold else ""

    def task(key: str, step: str, function, arguments: dict, needs: Sequence[str]) -> Task:
        return Task(key + at, step, function, arguments, tuple(needs), fold)

    split_args = {"seed": seed, **({"group_field": group_field} if group_field else {})}
    tasks = [task(f"split-{s}", "split", split.split_ground_truth, split_args, ["init"])]
    for tile in tiles:
        tasks.append(
            task(
                f"sampling-candidates-{tile}-{s}",
                "sampling",
                sampling.find_candidates,
                {"tile": tile, "seed": seed},
                [f"split-{s}{at}", f"preprocessing-{tile}"],
            )
        )
    tasks.append(
        task(
            f"sampling-selection-{s}",
            "sampling",
            sampling.select,
            {"seed": seed},
            [f"sampling-candidates-{tile}-{s}{at}" for tile in tiles],
        )
    )
    for tile in tiles:
        tasks.append(
            task(
                f"sampling-extraction-{tile}-{s}",
                "sampling",
                sampling.extract,
                {"tile": tile, "seed": seed},
                [f"sampling-selection-{s}{at}"],
            )
        )
    tasks.append(
        task(
            f"sampling-table-{s}",
            "sampling",
            sampling.merge,
            {"seed": seed},
            [f"sampling-extraction-{tile}-{s}{at}" for tile in tiles],
        )
    )
    tasks.append(
        task(
            f"learning-{s}", "learning", learning.train, {"seed": seed}, [f"sampling-table-{s}{at}"]
        )
    )
    for tile in tiles:
        tasks.append(
            task(
                f"classification-{tile}-{s}",
                "classification",
                classification.classify_tile,
                {"tile": tile, "seed": seed},
                [f"learning-{s}{at}", f"preprocessing-{tile}"],
            )
        )
    tasks.append(
        task(
            f"mosaic-{s}",
            "mosaic",
            mosaic.mosaic_seed,
            {"seed": seed},
            [f"classification-{tile}-{s}{at}" for tile in tiles],
        )
    )
    tasks.append(
        task(
            f"validation-{s}",
            "validation",
            validation.validate_seed,
            {"seed": seed},
            [f"mosaic-{s}{at}", f"split-{s}{at}"],
        )
    )
    return tasks
