"""Confusion matrix and the accuracy figures derived from it (pure numpy).

Convention, as in iota2 and OTB: rows are the reference (ground truth),
columns the production (the map).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ClassificationMetrics",
    "compute_metrics",
    "confusion_matrix",
    "metrics_of_pairs",
    "summarise_runs",
]

_CHUNK = 1 << 22
"""Pixels handled at once, so that 10^8 pixels need a few tens of MB of scratch."""


def confusion_matrix(
    reference: np.ndarray, production: np.ndarray, labels: Sequence[int]
) -> np.ndarray:
    """Count (reference, production) pairs of class codes.

    Parameters
    ----------
    reference, production : numpy.ndarray
        Class codes of the same pixels, any shape (flattened), same size.
    labels : sequence of int
        Class codes, in the order of the matrix rows and columns. A pixel whose
        reference or production code is not in ``labels`` is ignored.

    Returns
    -------
    numpy.ndarray
        ``(len(labels), len(labels))`` int64 matrix; rows are the reference,
        columns the production.

    Raises
    ------
    ValueError
        If the two arrays differ in size or ``labels`` repeats a code.
    """
    reference = np.asarray(reference).ravel()
    production = np.asarray(production).ravel()
    if reference.size != production.size:
        raise ValueError(
            f"reference ({reference.size} values) and production ({production.size}) differ"
        )
    codes = np.asarray(labels, dtype=np.int64)
    if np.unique(codes).size != codes.size:
        raise ValueError(f"repeated class codes in labels {list(labels)}")
    size = codes.size
    counts = np.zeros(size * size, dtype=np.int64)
    for start in range(0, reference.size, _CHUNK):
        ref_index = _label_index(reference[start : start + _CHUNK], codes)
        prod_index = _label_index(production[start : start + _CHUNK], codes)
        keep = (ref_index >= 0) & (prod_index >= 0)
        pairs = ref_index[keep] * size + prod_index[keep]
        counts += np.bincount(pairs, minlength=size * size)
    return counts.reshape(size, size)


def _label_index(values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Return the position of each value in ``codes``, -1 for values not in it."""
    if values.size and values.dtype.kind in "iub":
        low, high = int(values.min()), int(values.max())
        if high - low < _TABLE_LIMIT:
            return _table_index(values, codes, low, high)
    order = np.argsort(codes)
    sorted_codes = codes[order]
    position = np.clip(np.searchsorted(sorted_codes, values), 0, codes.size - 1)
    found = sorted_codes[position] == values
    return np.where(found, order[position], -1)


_TABLE_LIMIT = 1 << 20
"""Largest value range looked up through a table rather than a binary search."""


def _table_index(values: np.ndarray, codes: np.ndarray, low: int, high: int) -> np.ndarray:
    """Lookup-table version of :func:`_label_index` for integers in ``[low, high]`` (faster)."""
    table = np.full(high - low + 1, -1, dtype=np.int64)
    inside = (codes >= low) & (codes <= high)
    table[codes[inside] - low] = np.flatnonzero(inside)
    return table[values.astype(np.int64) - low]


@dataclass(frozen=True)
class ClassificationMetrics:
    """Accuracy figures of one confusion matrix.

    Attributes
    ----------
    labels : list of int
        Class codes, in matrix order.
    confusion : numpy.ndarray
        Confusion matrix, rows = reference, columns = production.
    oa : float
        Overall accuracy: the fraction of pixels on the diagonal.
    kappa : float
        Cohen's kappa; NaN when the expected agreement is 1 (as scikit-learn).
    precision, recall, fscore : dict of int to float
        Per class. A class never produced has precision 0; a class absent from
        the reference has recall 0 (and F-score 0).
    support : dict of int to int
        Reference pixels per class.
    mean_fscore : float
        Mean F-score over the classes present in the reference (support > 0):
        a class nobody could have found does not drag the mean down.
    """

    labels: list[int]
    confusion: np.ndarray
    oa: float
    kappa: float
    precision: dict[int, float]
    recall: dict[int, float]
    fscore: dict[int, float]
    support: dict[int, int]
    mean_fscore: float


def compute_metrics(confusion: np.ndarray, labels: Sequence[int]) -> ClassificationMetrics:
    """Derive overall accuracy, kappa and per-class scores from a confusion matrix.

    Parameters
    ----------
    confusion : numpy.ndarray
        Square matrix, rows = reference, columns = production.
    labels : sequence of int
        Class code of each row and column.

    Returns
    -------
    ClassificationMetrics
        OA and kappa are NaN for an empty matrix.
    """
    matrix = np.asarray(confusion, dtype=np.float64)
    codes = [int(code) for code in labels]
    if matrix.shape != (len(codes), len(codes)):
        raise ValueError(f"confusion matrix of shape {matrix.shape} for {len(codes)} labels")
    total = matrix.sum()
    diagonal = np.diag(matrix)
    row_sums, col_sums = matrix.sum(axis=1), matrix.sum(axis=0)
    precision = _safe_ratio(diagonal, col_sums)
    recall = _safe_ratio(diagonal, row_sums)
    fscore = _safe_ratio(2 * precision * recall, precision + recall)
    present = row_sums > 0
    oa = float(diagonal.sum() / total) if total > 0 else math.nan
    return ClassificationMetrics(
        labels=codes,
        confusion=np.asarray(confusion).copy(),
        oa=oa,
        kappa=_kappa(oa, row_sums, col_sums, total),
        precision=dict(zip(codes, precision.tolist(), strict=True)),
        recall=dict(zip(codes, recall.tolist(), strict=True)),
        fscore=dict(zip(codes, fscore.tolist(), strict=True)),
        support=dict(zip(codes, row_sums.astype(np.int64).tolist(), strict=True)),
        mean_fscore=float(fscore[present].mean()) if present.any() else math.nan,
    )


def metrics_of_pairs(reference: np.ndarray, production: np.ndarray) -> ClassificationMetrics:
    """Confusion matrix and metrics of paired pixels, over every class either side holds.

    Parameters
    ----------
    reference, production : numpy.ndarray
        Class codes of the same pixels (1-D integer arrays of equal length).

    Returns
    -------
    ClassificationMetrics
        Labels are the sorted union of the codes found in both arrays.
    """
    labels = sorted(set(np.unique(reference).tolist()) | set(np.unique(production).tolist()))
    return compute_metrics(confusion_matrix(reference, production, labels), labels)


def _safe_ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise ratio, 0 where the denominator is 0."""
    out = np.zeros_like(numerator, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _kappa(oa: float, row_sums: np.ndarray, col_sums: np.ndarray, total: float) -> float:
    """Cohen's kappa from the overall accuracy and the matrix margins."""
    if total <= 0:
        return math.nan
    expected = float((row_sums * col_sums).sum() / total**2)
    if expected >= 1.0:
        return math.nan
    return (oa - expected) / (1.0 - expected)


def summarise_runs(values: Sequence[float]) -> tuple[float, float]:
    """Return the mean of runs and the half-width of its 95 % Student-t interval.

    The interval is ``t(0.975, n - 1) * s / sqrt(n)`` with ``s`` the sample
    standard deviation of the ``n`` runs (scipy.stats.t), 0 for a single run.
    iota2 computes the same interval but with ``n_classes - 1`` degrees of
    freedom; sitsmap uses the number of runs, which is what the interval is over.

    Raises
    ------
    ValueError
        If ``values`` is empty.
    """
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        raise ValueError("no run to summarise")
    mean = float(array.mean())
    if array.size == 1:
        return mean, 0.0
    sem = float(array.std(ddof=1) / math.sqrt(array.size))
    # imported here: scipy.stats costs 0.4-0.9 s to import, and every process that plans
    # a run (this module is reachable from the task graph) would otherwise pay it
    from scipy import stats

    return mean, float(stats.t.ppf(0.975, array.size - 1) * sem)
