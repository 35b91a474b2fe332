"""The chain's task list: every step × tile × seed, with deterministic keys."""

from __future__ import annotations

from sitsmap.config.schema import Config
from sitsmap.pipeline.steps import (
    classification,
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
    tiles = list(config.chain.list_tile)
    seeds = config.seeds
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
    for seed in seeds:
        tasks += _seed_tasks(tiles, seed)
    tasks.append(
        Task(
            "mosaic-validity",
            "mosaic",
            mosaic.mosaic_validity,
            {},
            tuple(f"preprocessing-{tile}" for tile in tiles),
        )
    )
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


def _seed_tasks(tiles: list[str], seed: int) -> list[Task]:
    s = f"seed{seed}"
    arg = {"seed": seed}
    tasks = [Task(f"split-{s}", "split", split.split_ground_truth, arg, ("init",))]
    tasks += [
        Task(
            f"sampling-candidates-{tile}-{s}",
            "sampling",
            sampling.find_candidates,
            {"tile": tile, "seed": seed},
            (f"split-{s}", f"preprocessing-{tile}"),
        )
        for tile in tiles
    ]
    tasks.append(
        Task(
            f"sampling-selection-{s}",
            "sampling",
            sampling.select,
            arg,
            tuple(f"sampling-candidates-{tile}-{s}" for tile in tiles),
        )
    )
    tasks += [
        Task(
            f"sampling-extraction-{tile}-{s}",
            "sampling",
            sampling.extract,
            {"tile": tile, "seed": seed},
            (f"sampling-selection-{s}",),
        )
        for tile in tiles
    ]
    tasks.append(
        Task(
            f"sampling-table-{s}",
            "sampling",
            sampling.merge,
            arg,
            tuple(f"sampling-extraction-{tile}-{s}" for tile in tiles),
        )
    )
    tasks.append(Task(f"learning-{s}", "learning", learning.train, arg, (f"sampling-table-{s}",)))
    tasks += [
        Task(
            f"classification-{tile}-{s}",
            "classification",
            classification.classify_tile,
            {"tile": tile, "seed": seed},
            (f"learning-{s}", f"preprocessing-{tile}"),
        )
        for tile in tiles
    ]
    tasks.append(
        Task(
            f"mosaic-{s}",
            "mosaic",
            mosaic.mosaic_seed,
            arg,
            tuple(f"classification-{tile}-{s}" for tile in tiles),
        )
    )
    tasks.append(
        Task(
            f"validation-{s}",
            "validation",
            validation.validate_seed,
            arg,
            (f"mosaic-{s}", f"split-{s}"),
        )
    )
    return tasks
