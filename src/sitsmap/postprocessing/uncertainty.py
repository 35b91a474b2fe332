"""Per-pixel uncertainty of class probabilities, as ``sits_uncertainty`` of sits.

Every measure maps ``(n_classes, ...)`` probabilities (axis 0: classes) to a
``(...)`` float32 image in [0, 1], higher meaning more uncertain. A pixel with a
NaN in any band gets NaN (and code 0 in :func:`top_two`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["UNCERTAINTY_MEASURES", "entropy", "least_confidence", "margin", "top_two"]


def entropy(probabilities: np.ndarray) -> np.ndarray:
    """Normalised Shannon entropy: ``-sum(p log p) / log(n_classes)``.

    Parameters
    ----------
    probabilities : numpy.ndarray
        ``(n_classes, ...)`` probabilities; terms with ``p == 0`` count 0.

    Returns
    -------
    numpy.ndarray of float32
        ``(...)`` entropy in [0, 1]: 0 for a certain pixel, 1 for uniform probabilities
        (0 everywhere when there is a single class).
    """
    p = np.asarray(probabilities, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    n_classes = p.shape[0]
    value = -terms.sum(axis=0) / np.log(n_classes) if n_classes > 1 else np.zeros(p.shape[1:])
    value = np.clip(value, 0.0, 1.0)  # rounding may step just outside
    return _with_nan(value, p)


def margin(probabilities: np.ndarray) -> np.ndarray:
    """Margin of confidence: ``1 - (p_first - p_second)``.

    Parameters
    ----------
    probabilities : numpy.ndarray
        ``(n_classes, ...)`` probabilities.

    Returns
    -------
    numpy.ndarray of float32
        ``(...)`` in [0, 1]: 0 when the first class has all the probability, 1 when
        the two highest are equal.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    first, second = _two_highest(p)
    return _with_nan(np.clip(1.0 - (first - second), 0.0, 1.0), p)


def least_confidence(probabilities: np.ndarray) -> np.ndarray:
    """Least confidence: ``1 - p_first``.

    Parameters
    ----------
    probabilities : numpy.ndarray
        ``(n_classes, ...)`` probabilities.

    Returns
    -------
    numpy.ndarray of float32
        ``(...)`` in [0, 1 - 1/n_classes] for probabilities summing to 1.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    first, _ = _two_highest(p)
    return _with_nan(np.clip(1.0 - first, 0.0, 1.0), p)


UNCERTAINTY_MEASURES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "entropy": entropy,
    "margin": margin,
    "least": least_confidence,
}


def top_two(
    probabilities: np.ndarray, codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The two most probable classes of each pixel and their probabilities.

    Parameters
    ----------
    probabilities : numpy.ndarray
        ``(n_classes, ...)`` probabilities.
    codes : numpy.ndarray of int
        ``(n_classes,)`` class code of each band.

    Returns
    -------
    first_code : numpy.ndarray
        ``(...)`` code of the most probable class (the first band on a tie), with the
        dtype of ``codes``; 0 on NaN pixels.
    first_probability : numpy.ndarray of float32
        ``(...)`` its probability; NaN on NaN pixels.
    second_code : numpy.ndarray
        ``(...)`` code of the second most probable class; 0 on NaN pixels and when
        there is a single class.
    second_probability : numpy.ndarray of float32
        ``(...)`` its probability (0 with a single class); NaN on NaN pixels.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    codes = np.asarray(codes)
    if codes.shape != p.shape[:1]:
        raise ValueError(f"codes must have one value per class band, got {codes.shape}")
    missing = np.isnan(p).any(axis=0)
    filled = np.where(missing, 0.0, p)
    first = filled.argmax(axis=0)
    rest = filled.copy()
    np.put_along_axis(rest, first[None], -np.inf, axis=0)
    second = rest.argmax(axis=0)
    first_p = np.take_along_axis(filled, first[None], axis=0)[0]
    second_p = np.take_along_axis(rest, second[None], axis=0)[0]
    single = p.shape[0] < 2
    first_code = np.where(missing, 0, codes[first]).astype(codes.dtype)
    second_code = np.where(missing | single, 0, codes[second]).astype(codes.dtype)
    second_p = np.where(single, 0.0, second_p)
    return (
        first_code,
        _with_nan(first_p, p),
        second_code,
        _with_nan(second_p, p),
    )


def _two_highest(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Highest and second highest value along axis 0 (second is 0 with one class)."""
    if p.shape[0] < 2:
        return p[0], np.zeros(p.shape[1:])
    ordered = np.partition(p, p.shape[0] - 2, axis=0)
    return ordered[-1], ordered[-2]


def _with_nan(value: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``value`` as float32, NaN where any band of ``p`` is NaN."""
    return np.where(np.isnan(p).any(axis=0), np.nan, value).astype(np.float32)
