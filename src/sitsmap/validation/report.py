"""Accuracy reports: ``results.json`` for programs, iota2's ``RESULTS.txt`` for people.

Both take one :class:`~sitsmap.validation.metrics.ClassificationMetrics` per
seed (run) and summarise the runs as mean +- half-width of the 95 % Student-t
interval (:func:`~sitsmap.validation.metrics.summarise_runs`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from sitsmap.nomenclature import Nomenclature
from sitsmap.validation.metrics import ClassificationMetrics, summarise_runs

__all__ = ["per_class_scores", "results_json", "results_txt"]

PerSeed = Sequence[tuple[int, ClassificationMetrics]]
_PER_CLASS_SCORES = ("precision", "recall", "fscore")


def results_json(per_seed: PerSeed, extra: dict | None = None) -> dict:
    """Return the JSON-serialisable accuracy report of all seeds.

    Parameters
    ----------
    per_seed : sequence of (seed, ClassificationMetrics)
        One entry per run.
    extra : dict, optional
        More top-level entries (e.g. ``{"area_adjusted": {...}}``); they may not
        replace ``"seeds"`` or ``"summary"``.

    Returns
    -------
    dict
        ``{"seeds": [{"seed", "oa", "kappa", "mean_fscore", "per_class":
        {"<code>": {"precision", "recall", "fscore", "support"}}, "confusion",
        "labels"}], "summary": {"oa": {"mean", "ci95"}, "kappa": {...},
        "mean_fscore": {...}, "per_class": {"<code>": {"precision": {"mean",
        "ci95"}, "recall": {...}, "fscore": {...}}}}}``. NaN becomes ``None``.
        A class's per-class summary is over the seeds where it has reference
        pixels.
    """
    if not per_seed:
        raise ValueError("no seed to report")
    report = {
        "seeds": [_seed_entry(seed, metrics) for seed, metrics in per_seed],
        "summary": _summary(per_seed),
    }
    for key, value in (extra or {}).items():
        if key in report:
            raise ValueError(f"extra entry {key!r} would replace the report's own")
        report[key] = value
    return report


def per_class_scores(metrics: ClassificationMetrics) -> dict:
    """``{"<code>": {"precision", "recall", "fscore", "support"}}``, NaN as None."""
    return {
        str(code): {
            "precision": _number(metrics.precision[code]),
            "recall": _number(metrics.recall[code]),
            "fscore": _number(metrics.fscore[code]),
            "support": int(metrics.support[code]),
        }
        for code in metrics.labels
    }


def _seed_entry(seed: int, metrics: ClassificationMetrics) -> dict:
    per_class = per_class_scores(metrics)
    return {
        "seed": int(seed),
        "oa": _number(metrics.oa),
        "kappa": _number(metrics.kappa),
        "mean_fscore": _number(metrics.mean_fscore),
        "per_class": per_class,
        "confusion": np.asarray(metrics.confusion).astype(np.int64).tolist(),
        "labels": [int(code) for code in metrics.labels],
    }


def _summary(per_seed: PerSeed) -> dict:
    runs = [metrics for _, metrics in per_seed]
    summary = {
        name: _mean_ci([getattr(metrics, name) for metrics in runs])
        for name in ("oa", "kappa", "mean_fscore")
    }
    per_class = {}
    for code in _all_labels(runs):
        present = _runs_with_class(runs, code)
        if present:
            per_class[str(code)] = {
                score: _mean_ci([getattr(m, score)[code] for m in present])
                for score in _PER_CLASS_SCORES
            }
    summary["per_class"] = per_class
    return summary


def _runs_with_class(
    runs: Sequence[ClassificationMetrics], code: int
) -> list[ClassificationMetrics]:
    """Return the runs where ``code`` has reference pixels."""
    return [metrics for metrics in runs if metrics.support.get(code, 0) > 0]


def _all_labels(runs: Sequence[ClassificationMetrics]) -> list[int]:
    return sorted({code for metrics in runs for code in metrics.labels})


def _mean_ci(values: Sequence[float]) -> dict[str, float | None]:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return {"mean": None, "ci95": None}
    mean, half_width = summarise_runs(finite)
    return {"mean": mean, "ci95": half_width}


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


# --- RESULTS.txt -----------------------------------------------------------------
#
# Layout of iota2's RESULTS.txt (iota2 ``ResultsUtils.stats_report``): the
# "#row = reference" / "#col = production" header, the confusion matrix, then
# "KAPPA : k +- ci", "OA : oa +- ci" and the table "Classes | Precision mean |
# Rappel mean | F-score mean | Confusion max" (the three production classes
# with the largest counts in the class's reference row, the class itself
# included, from the matrix summed over seeds). Differences from iota2:
# - one confusion matrix per seed, headed by class codes, instead of a single
#   matrix of per-seed means headed by class names;
# - the +- interval uses n_seeds - 1 degrees of freedom (iota2: n_classes - 1);
# - a class never produced has precision 0 (iota2 writes -1000).


def results_txt(per_seed: PerSeed, nomenclature: Nomenclature) -> str:
    """Return the text of iota2's ``RESULTS.txt`` for the given seeds.

    With one seed, values are written alone (``OA : 0.912``); with several, as
    mean +- half-width of the 95 % Student-t interval over seeds. Per-class
    scores are over the seeds where the class has reference pixels (``-`` if
    none), as in ``results.json``.
    """
    if not per_seed:
        raise ValueError("no seed to report")
    runs = [metrics for _, metrics in per_seed]
    several = len(runs) > 1
    lines = ["#row = reference", "#col = production", ""]
    for seed, metrics in per_seed:
        title = "Matrice de confusion" + (f" (seed {seed})" if several else "")
        lines += [f"*********** {title} ***********", ""]
        lines += _matrix_lines(metrics)
        lines.append("")
    lines.append(f"KAPPA : {_format_runs([m.kappa for m in runs])}")
    lines.append(f"OA : {_format_runs([m.oa for m in runs])}")
    lines.append("")
    lines += _class_table(runs, nomenclature)
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _matrix_lines(metrics: ClassificationMetrics) -> list[str]:
    codes = [str(code) for code in metrics.labels]
    matrix = np.asarray(metrics.confusion).astype(np.int64)
    width = max(len(text) for text in [*codes, *map(str, matrix.ravel().tolist())]) + 2
    lines = [" " * width + "|" + "|".join(code.center(width) for code in codes)]
    for code, row in zip(codes, matrix.tolist(), strict=True):
        cells = "|".join(str(value).center(width) for value in row)
        lines.append(f"{code.center(width)}|{cells}|{code.center(width)}")
    return lines


def _format_runs(values: Sequence[float]) -> str:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return "nan"
    mean, half_width = summarise_runs(finite)
    return f"{mean:.3f} +- {half_width:.3f}" if len(finite) > 1 else f"{mean:.3f}"


def _class_table(runs: Sequence[ClassificationMetrics], nomenclature: Nomenclature) -> list[str]:
    codes = _all_labels(runs)
    rows = [
        [
            nomenclature.name(code),
            *(_class_score(runs, code, score) for score in _PER_CLASS_SCORES),
            ", ".join(_top_confusions(runs, code, nomenclature.name)),
        ]
        for code in codes
    ]
    head = ["Classes", "Precision mean", "Rappel mean", "F-score mean", "Confusion max"]
    width = max(len(text) for text in [*head, *(cell for row in rows for cell in row[:4])])
    header = " | ".join(text.center(width) for text in head)
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(" | ".join([*(cell.center(width) for cell in row[:4]), row[4]]))
    return lines


def _class_score(runs: Sequence[ClassificationMetrics], code: int, score: str) -> str:
    values = [getattr(m, score)[code] for m in _runs_with_class(runs, code)]
    return _format_runs(values) if values else "-"


def _top_confusions(
    runs: Sequence[ClassificationMetrics], code: int, name: Callable[[int], str], count: int = 3
) -> list[str]:
    """Names of the production classes most often given to reference ``code``."""
    totals: dict[int, float] = {}
    for metrics in runs:
        if code not in metrics.labels:
            continue
        row = np.asarray(metrics.confusion)[metrics.labels.index(code)]
        for produced, value in zip(metrics.labels, row.tolist(), strict=True):
            totals[produced] = totals.get(produced, 0) + value
    ranked = sorted(totals.items(), key=lambda item: (-item[1], name(item[0])))
    return [name(produced) for produced, value in ranked[:count] if value > 0]
