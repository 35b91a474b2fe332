"""Step validation: the map of each run against its own validation polygons."""

from __future__ import annotations

import numpy as np

from sitsmap.io.atomic import write_text
from sitsmap.io.figures import save_figure
from sitsmap.io.jsonfile import read_json, write_json
from sitsmap.io.vector import read_vector
from sitsmap.nomenclature import NODATA_CLASS
from sitsmap.pipeline.context import RunContext
from sitsmap.validation.figures import confusion_figure
from sitsmap.validation.metrics import ClassificationMetrics, compute_metrics, confusion_matrix
from sitsmap.validation.reference import reference_and_production
from sitsmap.validation.report import results_json, results_txt
from sitsmap.vectors.split import SPLIT_COLUMN, VALIDATION


def validate_seed(context: RunContext, seed: int) -> None:
    """Confusion matrix of run ``seed``'s mosaic over its validation polygons."""
    layout, chain = context.layout, context.config.chain
    polygons = read_vector(layout.split(seed))
    validation = polygons[polygons[SPLIT_COLUMN] == VALIDATION].to_crs(chain.proj)
    reference, production = reference_and_production(
        layout.final_map(seed), validation, chain.data_field, nodata=NODATA_CLASS
    )
    labels = sorted(set(np.unique(reference).tolist()) | set(np.unique(production).tolist()))
    metrics = compute_metrics(confusion_matrix(reference, production, labels), labels)
    write_json(
        _seed_record(layout, seed),
        {"seed": seed, "labels": metrics.labels, "confusion": metrics.confusion.tolist()},
    )
    save_figure(confusion_figure(metrics, context.nomenclature), layout.confusion_figure(seed))


def summarise(context: RunContext) -> None:
    """Write ``RESULTS.txt`` and ``results.json`` over every run."""
    layout = context.layout
    per_seed = [(seed, _load_metrics(_seed_record(layout, seed))) for seed in context.config.seeds]
    write_json(layout.results_json, results_json(per_seed))
    write_text(layout.results_txt, results_txt(per_seed, context.nomenclature))


def _seed_record(layout, seed: int):
    return layout.final / f"validation_seed_{seed}.json"


def _load_metrics(path) -> ClassificationMetrics:
    record = read_json(path)
    return compute_metrics(np.asarray(record["confusion"], dtype=np.int64), record["labels"])
