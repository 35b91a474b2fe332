"""Summaries of spatial cross-validation: per fold, same-area vs left-out accuracy (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from sitsmap.validation.metrics import ClassificationMetrics, compute_metrics
from sitsmap.validation.report import per_class_scores

AREAS = ("same_area", "left_out_area")


def pooled_metrics(records: Sequence[Mapping]) -> ClassificationMetrics:
    """Metrics of the confusion matrices of several runs added together.

    Parameters
    ----------
    records : sequence of mapping
        Each with ``labels`` and ``confusion`` (rows reference, columns production).
    """
    labels = sorted({int(code) for record in records for code in record["labels"]})
    total = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for record in records:
        index = [labels.index(int(code)) for code in record["labels"]]
        total[np.ix_(index, index)] += np.asarray(record["confusion"], dtype=np.int64)
    return compute_metrics(total, labels)


def fold_entry(
    left_out: str, same_area: ClassificationMetrics, left_out_area: ClassificationMetrics
) -> dict:
    """One fold of ``summary.json``: scores, per-class scores and the pooled confusion matrix."""
    return {
        "left_out": left_out,
        "same_area": _scores(same_area),
        "left_out_area": _scores(left_out_area),
    }


def summary_document(folds: Sequence[dict]) -> dict:
    """``summary.json``: every fold and the mean and standard deviation over folds."""
    summary = {}
    for area in AREAS:
        summary[area] = {}
        for metric in ("oa", "kappa", "mean_fscore"):
            values = np.array([f[area][metric] for f in folds if f[area][metric] is not None])
            summary[area][metric] = {
                "mean": float(values.mean()) if values.size else None,
                "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
            }
    return {"folds": list(folds), "summary": summary}


def summary_text(document: dict) -> str:
    """A table people read: F-score, OA and kappa per fold, same area vs left out."""
    lines = [
        "Spatial cross-validation: the model of each fold never learnt from the left-out group.",
        "",
        f"{'left out':<14} {'area':<14} {'F-score':>8} {'OA':>8} {'Kappa':>8}",
    ]
    for fold in document["folds"]:
        for area in AREAS:
            scores = fold[area]
            lines.append(
                f"{fold['left_out']:<14} {area:<14} "
                + " ".join(f"{_fmt(scores[m]):>8}" for m in ("mean_fscore", "oa", "kappa"))
            )
    lines.append("")
    for area in AREAS:
        parts = [
            f"{m} {_fmt(v['mean'])} ± {_fmt(v['std'])}"
            for m, v in document["summary"][area].items()
        ]
        lines.append(f"{area:<14} mean ± std over folds: " + ", ".join(parts))
    agreement = (document.get("agreement") or {}).get("all_agree_fraction")
    if agreement is not None:
        lines += [
            "",
            f"The folds' maps all agree on {100 * agreement:.1f} % of the pixels they all "
            "classify (per pixel: agreement.tif).",
        ]
    return "\n".join(lines) + "\n"


def fscore_figure(document: dict) -> Figure:
    """Bar chart of the mean F-score per fold, same area vs left out."""
    folds = document["folds"]
    figure = Figure(figsize=(max(5.0, 1.3 * len(folds) + 2), 4), layout="constrained")
    axes = figure.add_subplot()
    x = np.arange(len(folds))
    for offset, area, color in ((-0.2, "same_area", "#4c72b0"), (0.2, "left_out_area", "#dd8452")):
        values = [f[area]["mean_fscore"] or 0.0 for f in folds]
        axes.bar(x + offset, values, width=0.4, color=color, label=area.replace("_", " "))
    axes.set_xticks(x, [f["left_out"] for f in folds])
    axes.set_ylim(0, 1)
    axes.set_ylabel("mean F-score")
    axes.set_xlabel("left-out group")
    axes.legend()
    axes.set_title("F-score per fold: same area vs left out")
    return figure


def _scores(metrics: ClassificationMetrics) -> dict:
    return {
        "oa": _number(metrics.oa),
        "kappa": _number(metrics.kappa),
        "mean_fscore": _number(metrics.mean_fscore),
        "per_class": per_class_scores(metrics),
        "labels": [int(code) for code in metrics.labels],
        "confusion": np.asarray(metrics.confusion).astype(np.int64).tolist(),
    }


def _number(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
