"""Cross-validation summary: every fold's same-area and left-out accuracy, side by side."""

from __future__ import annotations

from sitsmap.io.atomic import write_text
from sitsmap.io.figures import save_figure
from sitsmap.io.jsonfile import read_json, write_json
from sitsmap.pipeline.context import RunContext
from sitsmap.validation.crossval import (
    fold_entry,
    fscore_figure,
    pooled_metrics,
    summary_document,
    summary_text,
)


def summarise_folds(context: RunContext, folds: list[str]) -> None:
    """Write ``crossval/summary.json``, ``summary.txt`` and the F-score figure.

    Each fold's scores pool the confusion matrices of its runs.
    """
    entries = []
    for fold in folds:
        final = context.layout.for_fold(fold).final
        same = [read_json(final / f"validation_seed_{s}.json") for s in context.config.seeds]
        out = [
            read_json(final / f"validation_left_out_seed_{s}.json") for s in context.config.seeds
        ]
        entries.append(fold_entry(fold, pooled_metrics(same), pooled_metrics(out)))
    document = summary_document(entries)
    crossval = context.layout.crossval
    write_json(crossval / "summary.json", document)
    write_text(crossval / "summary.txt", summary_text(document))
    save_figure(fscore_figure(document), crossval / "fscore_per_fold.png")
