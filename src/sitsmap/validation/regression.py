"""Errors of a regression map against reference values (pure numpy).

Scores of one run: RMSE, MAE, bias (mean of predicted − reference) and R²
(1 − SS_res / SS_tot), over the validation pixels, over the validation polygons
(each polygon's mean prediction against its value) and per quantile bin of the
reference (:mod:`sitsmap.sampling.bins`). Runs are summarised as mean ±
half-width of the 95 % Student-t interval, as classification's are
(:func:`~sitsmap.validation.metrics.summarise_runs`). ``results.json`` and
``RESULTS.txt`` take one :class:`RegressionMetrics` per run.

The four scores are a few numpy reductions; sklearn.metrics gives the same
values (the tests check it) but returns 1 or 0 for R² of a constant reference,
where there is no variance to explain: here R² is then None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sitsmap.sampling.bins import bin_of
from sitsmap.validation.metrics import summarise_runs

__all__ = [
    "BinScores",
    "ErrorScores",
    "RegressionMetrics",
    "error_scores",
    "regression_metrics",
    "regression_results_json",
    "regression_results_txt",
    "summarise_regression",
]

SCORES = ("rmse", "mae", "bias", "r2")
"""The scores of a set of (reference, predicted) pairs, in report order."""

SCORE_LABELS = {"rmse": "RMSE", "mae": "MAE", "bias": "Bias", "r2": "R\u00b2"}
"""How people read the scores' names."""

LEVELS = ("pixel", "polygon")
"""Pixels of the validation polygons, or one value per polygon."""


@dataclass(frozen=True)
class ErrorScores:
    """Errors of ``n`` predictions; every score None when ``n`` is 0.

    ``r2`` is also None when the reference has no variance (one value, or all equal).
    """

    n: int
    rmse: float | None
    mae: float | None
    bias: float | None
    r2: float | None


@dataclass(frozen=True)
class BinScores(ErrorScores):
    """Pixel errors where the reference lies in ``[low, high)`` (the last bin: ``[low, high]``)."""

    low: float = math.nan
    high: float = math.nan


@dataclass(frozen=True)
class RegressionMetrics:
    """Errors of one regression map over its validation pixels.

    The pixel scores are the top-level fields; ``polygon`` compares each
    polygon's mean prediction with its value; ``bins`` splits the pixels by
    quantile bin of the reference value.
    """

    n: int
    rmse: float | None
    mae: float | None
    bias: float | None
    r2: float | None
    polygon: ErrorScores
    bins: tuple[BinScores, ...] = field(default_factory=tuple)

    @property
    def pixel(self) -> ErrorScores:
        """The pixel scores as an :class:`ErrorScores`."""
        return ErrorScores(self.n, self.rmse, self.mae, self.bias, self.r2)

    def level(self, name: str) -> ErrorScores:
        """The scores of one of :data:`LEVELS`."""
        if name not in LEVELS:
            raise ValueError(f"unknown level {name!r}; expected one of {LEVELS}")
        return self.pixel if name == "pixel" else self.polygon

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: the ``pixel`` and ``polygon`` scores, and the ``bins``.

        ``{"pixel": {"n", "rmse", "mae", "bias", "r2"}, "polygon": {...}, "bins":
        [{"n", "rmse", "mae", "bias", "r2", "low", "high"}]}``.
        """
        return {
            "pixel": asdict(self.pixel),
            "polygon": asdict(self.polygon),
            "bins": [asdict(scores) for scores in self.bins],
        }

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> RegressionMetrics:
        """The inverse of :meth:`to_dict` (extra keys, such as ``task``, ignored)."""
        return cls(
            **_scores_of(document["pixel"]),
            polygon=ErrorScores(**_scores_of(document["polygon"])),
            bins=tuple(
                BinScores(**_scores_of(entry), low=float(entry["low"]), high=float(entry["high"]))
                for entry in document.get("bins", [])
            ),
        )


def _scores_of(document: dict[str, Any]) -> dict[str, Any]:
    return {"n": int(document["n"]), **{name: _optional(document.get(name)) for name in SCORES}}


def _optional(value: Any) -> float | None:
    return None if value is None or not math.isfinite(float(value)) else float(value)


def error_scores(reference: np.ndarray, predicted: np.ndarray) -> ErrorScores:
    """RMSE, MAE, bias and R² of predictions against their reference values.

    Parameters
    ----------
    reference, predicted : numpy.ndarray
        Same-size arrays of values (flattened).

    Returns
    -------
    ErrorScores

    Raises
    ------
    ValueError
        If the two arrays differ in size.
    """
    reference = np.asarray(reference, dtype=np.float64).ravel()
    predicted = np.asarray(predicted, dtype=np.float64).ravel()
    if reference.size != predicted.size:
        raise ValueError(
            f"reference ({reference.size} values) and predicted ({predicted.size}) differ"
        )
    if reference.size == 0:
        return ErrorScores(0, None, None, None, None)
    residual = predicted - reference
    # a constant reference (one polygon) has no variance to explain; testing the values,
    # not SS_tot, keeps the rounding of their mean from making a huge negative R²
    constant = reference.min() == reference.max()
    total = float(np.sum((reference - reference.mean()) ** 2))
    r2 = None if constant or total == 0 else 1.0 - float(np.sum(residual**2)) / total
    return ErrorScores(
        n=int(reference.size),
        rmse=float(np.sqrt(np.mean(residual**2))),
        mae=float(np.mean(np.abs(residual))),
        bias=float(residual.mean()),
        r2=r2,
    )


def polygon_means(
    reference: np.ndarray, predicted: np.ndarray, polygon: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each polygon's mean reference value and mean prediction (polygons in sorted id order).

    Parameters
    ----------
    reference, predicted : numpy.ndarray
        Values of the pixels.
    polygon : numpy.ndarray
        The polygon (any integer id) of each pixel.
    """
    ids, inverse, counts = np.unique(np.asarray(polygon), return_inverse=True, return_counts=True)
    means = [
        np.bincount(inverse.ravel(), weights=np.asarray(values, dtype=np.float64).ravel()) / counts
        for values in (reference, predicted)
    ]
    return means[0], means[1]


def regression_metrics(
    reference: np.ndarray, predicted: np.ndarray, polygon_row: np.ndarray, edges: np.ndarray
) -> RegressionMetrics:
    """Errors of one run: per pixel, per polygon and per bin of the reference.

    Parameters
    ----------
    reference, predicted : numpy.ndarray
        Reference and mapped values of the validation pixels.
    polygon_row : numpy.ndarray
        The polygon of each pixel (any integer id): polygon scores compare each
        polygon's mean prediction with its mean reference value (its value).
    edges : numpy.ndarray
        Bin edges of the reference (:func:`sitsmap.sampling.bins.bin_edges`);
        a value beyond them falls in the first or last bin.

    Returns
    -------
    RegressionMetrics
    """
    reference = np.asarray(reference, dtype=np.float64).ravel()
    predicted = np.asarray(predicted, dtype=np.float64).ravel()
    pixel = error_scores(reference, predicted)
    edges = np.asarray(edges, dtype=np.float64)
    bins = bin_of(reference, edges)
    per_bin = tuple(
        BinScores(
            **asdict(error_scores(reference[bins == k], predicted[bins == k])),
            low=float(edges[k]),
            high=float(edges[k + 1]),
        )
        for k in range(edges.size - 1)
    )
    return RegressionMetrics(
        **asdict(pixel),
        polygon=error_scores(*polygon_means(reference, predicted, polygon_row)),
        bins=per_bin,
    )


# --- over runs ------------------------------------------------------------------------

PerSeed = Sequence[tuple[int, RegressionMetrics]]


def summarise_regression(per_seed: PerSeed) -> dict[str, Any]:
    """Mean ± 95 % half-width over the runs, per level and per bin.

    The interval follows classification's convention
    (:func:`sitsmap.validation.report.results_json`): the Student-t half-width
    over the runs where the score exists, 0.0 for a single run, and both None
    where no run has the score (e.g. R² of a constant reference).

    Returns
    -------
    dict
        ``{"pixel": {"n", "rmse": {"mean", "ci95"}, "mae", "bias", "r2"},
        "polygon": {...}, "bins": [{"low", "high", "n", "rmse": {...}, …}]}``;
        ``n`` is summed over the runs. A bin's scores are over the runs with
        pixels in it.
    """
    if not per_seed:
        raise ValueError("no seed to report")
    runs = [metrics for _, metrics in per_seed]
    summary: dict[str, Any] = {
        level: _summary_of([m.level(level) for m in runs]) for level in LEVELS
    }
    summary["bins"] = [
        {"low": first.low, "high": first.high, **_summary_of([m.bins[k] for m in runs])}
        for k, first in enumerate(runs[0].bins)
    ]
    return summary


def _summary_of(scores: Sequence[ErrorScores]) -> dict[str, Any]:
    present = [s for s in scores if s.n > 0]
    return {
        "n": int(sum(s.n for s in scores)),
        **{name: mean_ci([getattr(s, name) for s in present]) for name in SCORES},
    }


def mean_ci(values: Sequence[float | None]) -> dict[str, float | None]:
    """``{"mean", "ci95"}`` of the values that exist (both None when none does)."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return {"mean": None, "ci95": None}
    mean, half_width = summarise_runs(finite)
    return {"mean": mean, "ci95": half_width}


def regression_results_json(per_seed: PerSeed, extra: dict | None = None) -> dict[str, Any]:
    """Return ``results.json`` of a regression: every run and their summary.

    Parameters
    ----------
    per_seed : sequence of (seed, RegressionMetrics)
        One entry per run.
    extra : dict, optional
        More top-level entries; they may not replace the report's own.

    Returns
    -------
    dict
        ``{"task": "regression", "seeds": [{"seed", "pixel": {"n", "rmse", "mae",
        "bias", "r2"}, "polygon": {...}, "bins": [...]}], "summary":
        :func:`summarise_regression`}``; a score that does not exist is None.
    """
    report = {
        "task": "regression",
        "seeds": [{"seed": int(seed), **metrics.to_dict()} for seed, metrics in per_seed],
        "summary": summarise_regression(per_seed),
    }
    for key, value in (extra or {}).items():
        if key in report:
            raise ValueError(f"extra entry {key!r} would replace the report's own")
        report[key] = value
    return report


# --- RESULTS.txt ----------------------------------------------------------------------


def regression_results_txt(per_seed: PerSeed) -> str:
    """Return ``RESULTS.txt`` of a regression, in the spirit of classification's.

    Per run a block of pixel and polygon scores; then the scores over the runs
    (a value alone for one run, mean +- half-width of the 95 % Student-t
    interval for several) and the per-bin table.
    """
    if not per_seed:
        raise ValueError("no seed to report")
    summary = summarise_regression(per_seed)
    several = len(per_seed) > 1
    lines = ["#reference = validation polygons' values", "#prediction = regression map", ""]
    if several:
        for seed, metrics in per_seed:
            lines += [f"*********** Run (seed {seed}) ***********", ""]
            lines += _run_lines(metrics)
            lines.append("")
        lines += [f"*********** Over the {len(per_seed)} runs ***********", ""]
    for level in LEVELS:
        entry = summary[level]
        lines.append(f"{level.capitalize()} level ({_count_text(entry['n'], level)}):")
        lines += [f"  {SCORE_LABELS[name]} : {_format(entry[name], several)}" for name in SCORES]
    lines.append("")
    lines += _bin_table(summary["bins"], several)
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _run_lines(metrics: RegressionMetrics) -> list[str]:
    lines = []
    for level in LEVELS:
        scores = metrics.level(level)
        cells = ", ".join(f"{SCORE_LABELS[n]} {_number(getattr(scores, n))}" for n in SCORES)
        lines.append(f"{level.capitalize()} level ({_count_text(scores.n, level)}): {cells}")
    return lines


def _count_text(n: int, level: str) -> str:
    return f"{n} {level}{'' if n == 1 else 's'}"


def _bin_table(bins: Sequence[dict[str, Any]], several: bool) -> list[str]:
    pixels = "Pixels (all runs)" if several else "Pixels"
    head = ["Reference bin", pixels, *(f"{SCORE_LABELS[n]} mean" for n in SCORES)]
    rows = [
        [
            f"[{entry['low']:.4g}, {entry['high']:.4g}{']' if k == len(bins) - 1 else ')'}",
            str(entry["n"]),
            *(_format(entry[name], several) for name in SCORES),
        ]
        for k, entry in enumerate(bins)
    ]
    width = max(len(text) for text in [*head, *(cell for row in rows for cell in row)])
    header = " | ".join(text.center(width) for text in head)
    return [header, "-" * len(header), *(" | ".join(c.center(width) for c in row) for row in rows)]


def _format(entry: dict[str, float | None], several: bool) -> str:
    if entry["mean"] is None:
        return "-"
    if several and entry["ci95"] is not None:
        return f"{entry['mean']:.4f} +- {entry['ci95']:.4f}"
    return f"{entry['mean']:.4f}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
