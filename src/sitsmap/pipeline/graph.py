"""The chain's task list: every step × tile × seed (× fold), with deterministic keys.

Keys read like ``classification-T31TCJ-seed0``; a cross-validation fold's
tasks carry the fold after an ``@`` (``learning-seed0@T31TDK``) and share the
fold-independent tasks (init, preprocessing) with every other fold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from sitsmap.config.schema import Config, PostProcessing
from sitsmap.pipeline.preflight import configured_regions
from sitsmap.pipeline.steps import (
    classification,
    crossval,
    init,
    learning,
    mosaic,
    postprocessing,
    preprocessing,
    sampling,
    split,
    validation,
)
from sitsmap.pipeline.steps import regions as regions_step
from sitsmap.pipeline.tasks import Task, fold_suffix
from sitsmap.vectors.regions import REGION_COLUMN


def build_tasks(config: Config) -> list[Task]:
    """Return every task of the chain for ``config``, in a valid execution order."""
    tiles, seeds = list(config.chain.list_tile), config.seeds
    regions = configured_regions(config)
    tasks = _shared_tasks(tiles, regions is not None)
    for seed in seeds:
        tasks += _seed_tasks(
            tiles,
            seed,
            regions=regions,
            fallback=config.chain.region_fallback,
            post=_post_processing(config),
            with_probabilities=config.probability_maps,
        )
    summary_needs = _validation_keys(tasks)
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
    return [declare_reads(task, config) for task in tasks]


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
    regions = configured_regions(config)
    tasks = _shared_tasks(tiles, regions is not None)
    if group_field == REGION_COLUMN:  # leave one region out: the others' global model
        regions = None
    summaries = []
    for fold in folds:
        fold_tasks: list[Task] = []
        for seed in seeds:
            fold_tasks += _seed_tasks(
                tiles,
                seed,
                fold,
                group_field,
                regions,
                config.chain.region_fallback,
                _post_processing(config),
                config.probability_maps,
            )
        tasks += fold_tasks
        summaries.append(f"validation-summary{fold_suffix(fold)}")
        tasks.append(
            Task(
                summaries[-1],
                "validation",
                validation.summarise,
                {},
                _validation_keys(fold_tasks),
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
    return [declare_reads(task, config) for task in tasks]


def _validation_keys(tasks: Sequence[Task]) -> tuple[str, ...]:
    """The keys of the runs' validation tasks among ``tasks`` (what a summary needs)."""
    return tuple(task.key for task in tasks if task.step == "validation")


def _post_processing(config: Config) -> PostProcessing:
    """The post-processing the run does: none in a regression (its products read classes)."""
    if not config.regression:
        return config.post_processing
    off = {"enabled": False}
    return PostProcessing(smoothing=off, regularisation=off, vectorisation=off, uncertainty=off)


def _shared_tasks(tiles: list[str], with_regions: bool = False) -> list[Task]:
    truth_needs = ("init", "init-regions") if with_regions else ("init",)
    tasks = [Task("init", "init", init.run_init)]
    if with_regions:
        tasks.append(
            Task("init-regions", "init", regions_step.prepare_region_rasters, {}, ("init",))
        )
    tasks.append(Task("init-ground-truth", "init", init.prepare_truth, {}, truth_needs))
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
    tiles: list[str],
    seed: int,
    fold: str | None = None,
    group_field: str | None = None,
    regions: list[str] | None = None,
    fallback: str = "global",
    post: PostProcessing | None = None,
    with_probabilities: bool = False,
) -> list[Task]:
    s = f"seed{seed}"
    at = fold_suffix(fold)

    def task(key: str, step: str, function, arguments: dict, needs: Sequence[str]) -> Task:
        return Task(key + at, step, function, arguments, tuple(needs), fold)

    split_args = {"seed": seed, **({"group_field": group_field} if group_field else {})}
    tasks = [
        task(f"split-{s}", "split", split.split_ground_truth, split_args, ["init-ground-truth"])
    ]
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
    regional = {"regional": True} if regions else {}
    post = post or PostProcessing()
    # whether probability maps are written is derived from several keys: it is an
    # argument, so that switching one product off while another still reads them
    # does not redo the classification
    probabilities = {"probabilities": True} if with_probabilities else {}
    tasks.append(
        task(
            f"sampling-selection-{s}",
            "sampling",
            sampling.select,
            {"seed": seed, **regional},
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
    models = [None] if regions is None else list(regions)
    if regions is not None and fallback == "global":
        models.append(None)  # the global model, for regions with nothing to learn
    learnt = []
    for region in models:
        key = classification.learning_key(seed, region)
        arguments = {"seed": seed, **({"region": region} if region is not None else {})}
        tasks.append(task(key, "learning", learning.train, arguments, [f"sampling-table-{s}{at}"]))
        learnt.append(key + at)
    for tile in tiles:
        tasks.append(
            task(
                f"classification-{tile}-{s}",
                "classification",
                classification.classify_tile,
                {"tile": tile, "seed": seed, **regional, **probabilities},
                [*learnt, f"preprocessing-{tile}"],
            )
        )
    tasks.append(
        task(
            f"mosaic-{s}",
            "mosaic",
            mosaic.mosaic_seed,
            {"seed": seed, **probabilities},
            [f"classification-{tile}-{s}{at}" for tile in tiles],
        )
    )
    if post.smoothing.enabled or post.regularisation.enabled or post.uncertainty.enabled:
        tasks.append(
            task(
                f"postprocessing-{s}",
                "postprocessing",
                postprocessing.post_process,
                {"seed": seed},
                [f"mosaic-{s}{at}"],
            )
        )
    if post.vectorisation.enabled:
        tasks.append(
            task(
                f"vectorisation-{s}",
                "postprocessing",
                postprocessing.vectorise,
                {"seed": seed},
                [f"postprocessing-{s}{at}"],
            )
        )
    # the raw map is validated as soon as it is mosaicked, beside post-processing
    tasks.append(
        task(
            f"validation-{s}",
            "validation",
            validation.validate_seed,
            {"seed": seed},
            [f"mosaic-{s}{at}", f"split-{s}{at}"],
        )
    )
    for kind in validation.post_processed_kinds(post):  # each map its own task, side by side
        tasks.append(
            task(
                f"validation-{kind.lower()}-{s}",
                "validation",
                validation.validate_post_processed,
                {"seed": seed, "kind": kind},
                [f"postprocessing-{s}{at}", f"split-{s}{at}"],
            )
        )
    return tasks


# What each task's outputs depend on (its fingerprint, see scheduling.fingerprints).
# Settings that only change how work is scheduled or chunked are read by none.
_NOMENCLATURE = ("chain.nomenclature_path", "chain.color_table")
_FEATURES = (
    "chain.s2_path",
    "chain.s2_s2c_path",
    "chain.l8_path",
    "chain.user_feat_path",
    "chain.spatial_resolution",
    "sentinel_2",
    "landsat8",
    "stac",
    "userFeat",
    "user_sensor",
    "sensors_data_interpolation",
)
_MAP_GRID = ("chain.proj", "chain.spatial_resolution", "chain.list_tile")
_CLASSIFIER = (
    "arg_train.classifier",
    "arg_train.otb_classifier_options",
    "arg_train.lightgbm_parameters",
    "arg_train.svm_parameters",
    "arg_train.svm_max_samples",
    "arg_train.sample_augmentation",
    "arg_train.deep_learning_parameters",
    "arg_train.model_selection",
    "arg_train.task",
    "arg_train.quantile_interval",
    "arg_train.regression_bins",
)
_TASK = ("arg_train.task",)
"""Classification or regression: read by every step that treats the field's values."""
_READS: tuple[tuple[object, str, tuple[str, ...]], ...] = (
    (init, "run_init", ("chain.list_tile", *_FEATURES)),
    (
        regions_step,
        "prepare_region_rasters",
        ("chain.region_path", "chain.region_field", "chain.list_tile", *_MAP_GRID),
    ),
    (
        init,
        "prepare_truth",
        (
            "chain.ground_truth",
            "chain.data_field",
            "chain.merge_final_classifications",
            "chain.region_path",
            "chain.region_field",
            "arg_train.regression_bins",
            *_TASK,
            *_NOMENCLATURE,
        ),
    ),
    (preprocessing, "preprocess_tile", _FEATURES),
    (mosaic, "mosaic_validity", _MAP_GRID),
    (
        split,
        "split_ground_truth",
        ("chain.data_field", "chain.ratio", "chain.split_ground_truth", *_TASK),
    ),
    (sampling, "find_candidates", ("chain.data_field", *_TASK)),
    (
        sampling,
        "select",
        ("arg_train.sample_selection", "chain.list_tile", *_TASK, *_NOMENCLATURE),
    ),
    (sampling, "extract", ("chain.data_field", "chain.list_tile", *_TASK, *_FEATURES)),
    (sampling, "merge", ("chain.list_tile",)),
    (learning, "train", ("chain.data_field", "chain.region_fallback", *_CLASSIFIER)),
    (
        classification,
        "classify_tile",
        (
            "chain.region_border_width",
            "arg_classification.compiled_inference",
            *_TASK,
            *_FEATURES,
            *_NOMENCLATURE,
        ),
    ),
    (mosaic, "mosaic_seed", (*_MAP_GRID, *_TASK, *_NOMENCLATURE)),
    (
        postprocessing,
        "post_process",
        (
            "post_processing.smoothing",
            "post_processing.regularisation",
            "post_processing.uncertainty",
            "post_processing.vectorisation.enabled",
            "chain.spatial_resolution",
            *_NOMENCLATURE,
        ),
    ),
    (
        postprocessing,
        "vectorise",
        ("post_processing.vectorisation", "post_processing.regularisation", *_NOMENCLATURE),
    ),
    (
        mosaic,
        "fuse_runs",
        (
            "arg_train.runs",
            "arg_train.random_seed",
            "chain.merge_final_classifications_undecidedlabel",
            *_MAP_GRID,
            *_NOMENCLATURE,
        ),
    ),
    (
        validation,
        "validate_seed",
        (
            "chain.data_field",
            "arg_train.regression_bins",
            *_TASK,
            *_MAP_GRID,
            *_NOMENCLATURE,
        ),
    ),
    (
        validation,
        "validate_post_processed",
        (
            "chain.data_field",
            *_MAP_GRID,
            *_NOMENCLATURE,
        ),
    ),
    (validation, "validate_fusion", ("chain.data_field", *_MAP_GRID, *_NOMENCLATURE)),
    (
        validation,
        "summarise",
        (
            "arg_train.runs",
            "arg_train.random_seed",
            "chain.merge_final_classifications",
            "post_processing.smoothing.enabled",
            "post_processing.regularisation.enabled",
            "arg_train.model_selection",
            *_TASK,
            *_NOMENCLATURE,
        ),
    ),
    (
        crossval,
        "summarise_folds",
        (
            "arg_train.runs",
            "arg_train.random_seed",
            "arg_train.regression_bins",
            *_TASK,
            *_NOMENCLATURE,
        ),
    ),
)
"""(module, function name, configuration keys read): looked up by name, so that a
function replaced at run time (a test's stand-in) keeps its task's declaration."""


def _reads_of(function: Callable) -> tuple[str, ...]:
    for module, name, reads in _READS:
        if getattr(module, name) is function:
            return reads
    raise KeyError(f"no declaration of what {function.__qualname__} reads")


def _image_files(config: Config, tile: str | None) -> list[Path]:
    """The folders (or catalog) a task's images come from: one tile's, or every tile's.

    Sources whose products may lie flat or in tile folders (SAFE, Landsat, the user
    sensor) are fingerprinted whole: a product added at the root counts too.
    """
    chain = config.chain
    tiles = [tile] if tile else list(chain.list_tile)
    files: list[Path] = []
    for root in (chain.s2_path, chain.user_feat_path):
        if root is not None:
            files += [root / t for t in tiles]
    for root in (chain.s2_s2c_path, chain.l8_path, config.user_sensor.path):
        if root is not None:
            files.append(root)
    catalog = config.stac.catalog
    if catalog is not None and "://" not in catalog:
        files.append(Path(catalog).parent)
    return files


def declare_reads(task: Task, config: Config) -> Task:
    """Return ``task`` with the configuration keys and input files its outputs depend on."""
    reads = _reads_of(task.function)
    chain = config.chain
    if task.key == "init-ground-truth" and chain.merge_final_classifications:
        # init holds back the fusion's validation polygons, drawn with the first seed
        reads += ("chain.merge_final_classifications_ratio", "arg_train.random_seed")
    files: list[Path] = []
    if "chain.s2_path" in reads:
        files += _image_files(config, task.arguments.get("tile"))
    if "chain.ground_truth" in reads:
        files.append(chain.ground_truth)
    if "chain.region_path" in reads and chain.region_path is not None:
        files.append(chain.region_path)
    if "chain.nomenclature_path" in reads:
        files += [p for p in (chain.nomenclature_path, chain.color_table) if p is not None]
    byclass = config.arg_train.sample_selection.byclass_in
    if "arg_train.sample_selection" in reads and byclass is not None:
        files.append(byclass)
    return replace(task, reads=reads, files=tuple(files))
