"""Summaries of spatial cross-validation: per fold, same-area vs left-out accuracy (pure).

A classification's folds pool their runs' confusion matrices; a regression's
pool their runs' (reference, predicted) pairs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict

import numpy as np
from matplotlib.figure import Figure

from sitsmap.validation.metrics import ClassificationMetrics, compute_metrics
from sitsmap.validation.regression import LEVELS, error_scores, polygon_means
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


# --- regression ------------------------------------------------------------------------

REGRESSION_SCORES = ("rmse", "mae", "bias", "r2")
"""A regression fold's scores, in table order."""

_REGRESSION_LABELS = {"rmse": "RMSE", "mae": "MAE", "bias": "Bias", "r2": "R\u00b2"}


def pooled_regression(runs: Sequence[Mapping[str, np.ndarray]]) -> dict:
    """Errors of the (reference, predicted) pairs of several runs put together.

    Parameters
    ----------
    runs : sequence of mapping
        Each run's pairs: ``reference``, ``predicted`` and ``polygon`` arrays (a
        validation's ``validation_pairs_*.npz``).

    Returns
    -------
    dict
        ``{"pixel": {"n", "rmse", "mae", "bias", "r2"}, "polygon": {...}}``: pixel
        scores over every pair, and polygon scores over every run's polygon
        means (a polygon validated by two runs counts twice, once per run's map).
    """
    references = [np.asarray(run["reference"], dtype=np.float64) for run in runs]
    predictions = [np.asarray(run["predicted"], dtype=np.float64) for run in runs]
    means = [
        polygon_means(reference, predicted, run["polygon"])
        for reference, predicted, run in zip(references, predictions, runs, strict=True)
    ]
    pixel = error_scores(_joined(references), _joined(predictions))
    polygon = error_scores(_joined([m[0] for m in means]), _joined([m[1] for m in means]))
    return {"pixel": asdict(pixel), "polygon": asdict(polygon)}


def _joined(arrays: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.empty(0, dtype=np.float64)


def regression_fold_entry(left_out: str, same_area: dict, left_out_area: dict) -> dict:
    """One fold of a regression's ``summary.json``: :func:`pooled_regression` of each area."""
    return {"left_out": left_out, "same_area": same_area, "left_out_area": left_out_area}


def regression_summary_document(folds: Sequence[dict]) -> dict:
    """A regression's ``summary.json``: every fold, and mean and std over folds.

    ``summary[area][level][score]`` (level ``pixel`` or ``polygon``) is
    ``{"mean", "std"}`` over the folds where the score exists (std 0.0 with one
    fold, both None with none).
    """
    summary = {
        area: {level: _mean_std([fold[area][level] for fold in folds]) for level in LEVELS}
        for area in AREAS
    }
    return {"task": "regression", "folds": list(folds), "summary": summary}


def _mean_std(entries: Sequence[Mapping]) -> dict:
    summary = {}
    for score in REGRESSION_SCORES:
        values = np.array([e[score] for e in entries if e.get(score) is not None], dtype=float)
        summary[score] = {
            "mean": float(values.mean()) if values.size else None,
            "std": float(values.std(ddof=1)) if values.size > 1 else (0.0 if values.size else None),
        }
    return summary


def regression_summary_text(document: dict) -> str:
    """A table people read: RMSE, MAE, bias and R² per fold, same area vs left out."""
    labels = [_REGRESSION_LABELS[s] for s in REGRESSION_SCORES]
    lines = [
        "Spatial cross-validation of a regression: the model of each fold never learnt from "
        "the left-out group. Scores pool the pixels of the fold's runs.",
        "",
        f"{'left out':<14} {'area':<14} " + " ".join(f"{x:>9}" for x in labels) + f" {'pixels':>9}",
    ]
    for fold in document["folds"]:
        for area in AREAS:
            scores = fold[area]["pixel"]
            cells = " ".join(f"{_fmt(scores[s]):>9}" for s in REGRESSION_SCORES)
            lines.append(f"{fold['left_out']:<14} {area:<14} {cells} {scores['n']:>9}")
    lines.append("")
    for area in AREAS:
        parts = [
            f"{_REGRESSION_LABELS[s]} {_fmt(v['mean'])} ± {_fmt(v['std'])}"
            for s, v in document["summary"][area]["pixel"].items()
        ]
        lines.append(f"{area:<14} mean ± std over folds: " + ", ".join(parts))
    spread = document.get("spread") or {}
    if spread.get("mean_std") is not None:
        lines += [
            "",
            f"Spread of the folds' maps: per-pixel standard deviation {_fmt(spread['mean_std'])} "
            f"on average over the {spread['pixels_valid_in_all_folds']} pixels every fold maps, "
            f"{_fmt(spread['max_std'])} at most (per pixel: {spread.get('raster', 'spread.tif')}).",
        ]
    return "\n".join(lines) + "\n"


def regression_figure(document: dict) -> Figure:
    """Bar charts of RMSE and R² per fold, same area vs left out."""
    folds = document["folds"]
    figure = Figure(figsize=(max(7.0, 2.2 * len(folds) + 3), 4), layout="constrained")
    x = np.arange(len(folds))
    for index, score in enumerate(("rmse", "r2")):
        axes = figure.add_subplot(1, 2, index + 1)
        for offset, area, color in (
            (-0.2, "same_area", "#4c72b0"),
            (0.2, "left_out_area", "#dd8452"),
        ):
            values = [f[area]["pixel"][score] or 0.0 for f in folds]
            axes.bar(x + offset, values, width=0.4, color=color, label=area.replace("_", " "))
        axes.set_xticks(x, [f["left_out"] for f in folds])
        axes.set_xlabel("left-out group")
        axes.set_ylabel(_REGRESSION_LABELS[score])
        axes.set_title(f"{_REGRESSION_LABELS[score]} per fold")
        if score == "r2":
            axes.axhline(0.0, color="black", linewidth=0.6)
        axes.legend(fontsize="small")
    return figure
