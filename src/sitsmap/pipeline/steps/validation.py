"""Step validation: the map of each run against its own validation polygons."""

from __future__ import annotations

import numpy as np

from sitsmap.errors import InputDataError, StepError
from sitsmap.io.atomic import write_text
from sitsmap.io.figures import save_figure
from sitsmap.io.jsonfile import read_json, write_json
from sitsmap.io.raster import read_row_blocks
from sitsmap.io.vector import read_vector
from sitsmap.nomenclature import NODATA_CLASS
from sitsmap.pipeline.context import RunContext
from sitsmap.validation.area import AreaAdjusted, area_adjusted_accuracy
from sitsmap.validation.figures import confusion_figure
from sitsmap.validation.metrics import ClassificationMetrics, compute_metrics, confusion_matrix
from sitsmap.validation.reference import reference_and_production
from sitsmap.validation.report import results_json, results_txt
from sitsmap.vectors.ground_truth import FUSION_COLUMN
from sitsmap.vectors.split import SPLIT_COLUMN, VALIDATION


def validate_seed(context: RunContext, seed: int) -> None:
    """Confusion matrix of run ``seed``'s mosaic over its validation polygons."""
    polygons = read_vector(context.layout.split(seed))
    validation = polygons[polygons[SPLIT_COLUMN] == VALIDATION]
    if validation.empty:
        raise InputDataError(
            f"no validation polygon in the split of run {seed}: every class has a single "
            "polygon; give classes 2 polygons or more, or set chain.split_ground_truth: false",
            context.config.chain.ground_truth,
        )
    _validate_map(
        context, context.layout.final_map(seed), validation, f"seed_{seed}", required=True
    )
    if context.fold is not None:  # also on the ground the fold never learnt from
        left_out = read_vector(context.layout.left_out)
        _validate_map(context, context.layout.final_map(seed), left_out, f"left_out_seed_{seed}")


def validate_fusion(context: RunContext) -> None:
    """Confusion matrix of the fused map over the polygons held back from every run."""
    truth = read_vector(context.layout.ground_truth)
    _validate_map(context, context.layout.fusion_map, truth[truth[FUSION_COLUMN]], "fusion")


def _validate_map(
    context: RunContext, map_path, polygons, name: str, required: bool = False
) -> None:
    """Write the confusion matrix, mapped class areas and figure of one map.

    Raises
    ------
    StepError
        If ``required`` and no map pixel falls inside the polygons.
    """
    layout, chain = context.layout, context.config.chain
    reference, production = reference_and_production(
        map_path, polygons.to_crs(chain.proj), chain.data_field, nodata=NODATA_CLASS
    )
    if required and reference.size == 0:
        raise StepError(
            f"no pixel of the map falls inside the {len(polygons)} validation polygon(s) "
            "(polygons narrower than a pixel, or over no-data): nothing to validate on",
            map_path,
        )
    labels = sorted(set(np.unique(reference).tolist()) | set(np.unique(production).tolist()))
    metrics = compute_metrics(confusion_matrix(reference, production, labels), labels)
    mapped = _class_pixel_counts(map_path)
    write_json(
        layout.final / f"validation_{name}.json",
        {
            "labels": metrics.labels,
            "confusion": metrics.confusion.tolist(),
            "mapped_pixels": [int(mapped.get(code, 0)) for code in metrics.labels],
            "pixel_area_ha": chain.spatial_resolution**2 / 10_000,
        },
    )
    save_figure(
        confusion_figure(metrics, context.nomenclature),
        layout.final / f"confusion_matrix_{name}.png",
    )


def _class_pixel_counts(map_path) -> dict[int, int]:
    """Pixels of each class in a class map, counted strip by strip."""
    counts = np.zeros(0, dtype=np.int64)
    for _, block in read_row_blocks(map_path):
        block_counts = np.bincount(block.ravel())
        counts = np.pad(counts, (0, max(0, block_counts.size - counts.size)))
        counts[: block_counts.size] += block_counts
    return {code: int(n) for code, n in enumerate(counts) if n and code != NODATA_CLASS}


def summarise(context: RunContext) -> None:
    """Write ``RESULTS.txt`` and ``results.json`` over every run (and the fusion)."""
    layout, nomenclature = context.layout, context.nomenclature
    records = {
        seed: read_json(layout.final / f"validation_seed_{seed}.json")
        for seed in context.config.seeds
    }
    per_seed = [(seed, _metrics(record)) for seed, record in records.items()]
    report = results_json(per_seed)
    text = results_txt(per_seed, nomenclature)
    for entry, record in zip(report["seeds"], records.values(), strict=True):
        entry["area_adjusted"] = _area_adjusted(record).to_dict()
    if context.config.chain.merge_final_classifications:
        fusion = read_json(layout.final / "validation_fusion.json")
        report["fusion"] = results_json([(-1, _metrics(fusion))])["seeds"][0]
        del report["fusion"]["seed"]
        text += "\n\n#### Fusion of the runs (majority voting) ####\n\n"
        text += results_txt([(-1, _metrics(fusion))], nomenclature)
    write_json(layout.results_json, report)
    write_text(layout.results_txt, text)


def _metrics(record: dict) -> ClassificationMetrics:
    return compute_metrics(np.asarray(record["confusion"], dtype=np.int64), record["labels"])


def _area_adjusted(record: dict) -> AreaAdjusted:
    """Olofsson et al. (2014) estimators, strata = the map's classes.

    Validation pixels come from whole polygons, not a stratified random sample
    of pixels, so the intervals are narrower than the design-based ones.
    """
    return area_adjusted_accuracy(
        np.asarray(record["confusion"], dtype=np.int64),
        np.asarray(record["mapped_pixels"], dtype=np.float64),
        record["labels"],
        pixel_area_ha=record["pixel_area_ha"],
    )
