"""Bayesian smoothing of class probabilities, as ``sits_smooth`` of the R package sits.

Câmara et al. (sits) treat each class's logit at a pixel as a noisy observation
of a Gaussian whose prior is estimated from the pixel's neighbourhood. For a class
band and a valid pixel with logit ``x``:

1. the neighbourhood is the ``window_size`` x ``window_size`` square centred on the
   pixel, restricted to the valid pixels inside the array (the pixel included);
2. its logits are sorted in decreasing order and the ``n = ceil(fraction * count)``
   highest (at least one) are kept: ``m0`` is their mean, ``s0`` their sample
   variance (``ddof=1``, 0 when ``n == 1``);
3. the posterior logit is ``w * x + (1 - w) * m0`` with ``w = s0 / (s0 + smoothness)``:
   ``smoothness`` is the prior variance of the pixel's own value, so a large one pulls
   the pixel to its neighbourhood and a tiny one keeps it.

The posteriors go back to probabilities with the logistic function and are
normalised so that each pixel's classes sum to 1. Invalid pixels are NaN.

The array border is outside the map (no neighbour there), so that smoothing by
windows with a halo of :func:`smoothing_halo` equals smoothing the whole array
(see :mod:`sitsmap.postprocessing.windows`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numba import njit

__all__ = ["bayes_smooth", "smoothing_halo"]

# Probabilities are clipped to [EPSILON, 1 - EPSILON] before the logit, as sits does,
# so that 0 and 1 give finite logits (|logit| < 9.22).
EPSILON = 1e-4
# Sentinels of the selection, beyond any logit (finite, so that no infinity enters it).
_HIGH = 1e300
_LOW = -1e300


def smoothing_halo(window_size: int) -> int:
    """Reach of :func:`bayes_smooth`: the halo its windows need.

    Parameters
    ----------
    window_size : int
        Side of the smoothing window (odd).

    Returns
    -------
    int
        ``window_size // 2``.
    """
    return window_size // 2


def bayes_smooth(
    probabilities: np.ndarray,
    valid: np.ndarray,
    window_size: int = 9,
    neighborhood_fraction: float = 0.5,
    smoothness: float | Sequence[float] = 20.0,
) -> np.ndarray:
    """Smooth class probabilities with sits' Bayesian neighbourhood estimator.

    Parameters
    ----------
    probabilities : numpy.ndarray
        ``(n_classes, rows, cols)`` probabilities in [0, 1] (float32 is read in place,
        other dtypes are converted).
    valid : numpy.ndarray of bool
        ``(rows, cols)``: the pixels that have probabilities; the others (and pixels
        with a non-finite probability) are neither smoothed nor used as neighbours.
    window_size : int
        Side of the square neighbourhood, odd and at least 1.
    neighborhood_fraction : float
        Fraction, in (0, 1], of the neighbourhood's highest logits that make the prior.
    smoothness : float or sequence of float
        Prior variance of a pixel's logit, one value for all classes or one per class;
        positive. Larger values smooth more.

    Returns
    -------
    numpy.ndarray of float32
        ``(n_classes, rows, cols)`` smoothed probabilities summing to 1 on each valid
        pixel; NaN in every band on invalid pixels.

    Raises
    ------
    ValueError
        If an argument is out of range or the shapes do not match.
    """
    if window_size < 1 or window_size % 2 == 0:
        raise ValueError(f"window_size must be an odd integer >= 1, got {window_size}")
    if not 0.0 < neighborhood_fraction <= 1.0:
        raise ValueError(f"neighborhood_fraction must be in (0, 1], got {neighborhood_fraction}")
    probabilities = np.asarray(probabilities, dtype=np.float32)
    valid = np.asarray(valid, dtype=np.bool_)
    if probabilities.ndim != 3 or valid.shape != probabilities.shape[1:]:
        raise ValueError(
            f"probabilities must be (n_classes, rows, cols) and valid (rows, cols), "
            f"got {probabilities.shape} and {valid.shape}"
        )
    valid = valid & np.isfinite(probabilities).all(axis=0)
    n_classes = probabilities.shape[0]
    variances = np.asarray(smoothness, dtype=np.float64)
    if variances.ndim == 0:
        variances = np.full(n_classes, variances)
    if variances.shape != (n_classes,) or not np.all(variances > 0):
        raise ValueError(f"smoothness must be > 0, one value or one per class, got {smoothness}")
    out = np.empty(probabilities.shape, dtype=np.float32)
    _smooth(
        probabilities,
        valid,
        window_size // 2,
        float(neighborhood_fraction),
        np.ascontiguousarray(variances),
        out,
    )
    return out


# Selection only compares and takes minima (exact in any order), so it may let LLVM
# vectorise them; the sums below keep strict IEEE order so that results are bit-exact.
@njit(cache=True, nogil=True, fastmath={"nnan", "nsz"})
def _nth_highest(values: np.ndarray, count: int, n: int, guess: float) -> float:  # pragma: no cover
    """The ``n``-th highest of ``values[:count]`` (counting repeats), found from ``guess``.

    A full sort (or quickselect) per pixel and class costs its branch mispredictions
    on every one of the ~80 values, and dominated the kernel. Neighbouring pixels share
    most of their window, so the previous pixel's answer is a few ranks away: count
    the values above ``guess``, then step from distinct value to distinct value
    towards the answer, each step two branch-free passes. Any ``guess`` gives the same
    (unique) answer; a good one only makes it faster.
    """
    above = 0
    equal = 0
    for k in range(count):
        above += values[k] > guess
        equal += values[k] == guess
    if above < n <= above + equal:
        return guess
    bound = guess
    if above >= n:  # the answer is higher: climb to the next distinct value
        while True:
            candidate = _HIGH
            for k in range(count):
                value = values[k]
                candidate = min(candidate, value if value > bound else _HIGH)
            above = 0
            for k in range(count):
                above += values[k] > candidate
            if above < n:
                return candidate
            bound = candidate
    while True:  # the answer is lower: descend to the next distinct value
        candidate = _LOW
        for k in range(count):
            value = values[k]
            candidate = max(candidate, value if value < bound else _LOW)
        at_least = 0
        for k in range(count):
            at_least += values[k] >= candidate
        if at_least >= n:
            return candidate
        bound = candidate


@njit(cache=True, nogil=True)
def _highest_moments(
    values: np.ndarray, count: int, n: int, threshold: float
) -> tuple[float, float]:  # pragma: no cover
    """Mean and sample variance of the ``n`` highest of ``values[:count]``.

    ``threshold`` is the ``n``-th highest value: the values above it are moved, in
    their order, to the front of ``values`` (branch-free) and summed there; the
    missing ones equal ``threshold``. ``values`` is overwritten.
    """
    above = 0
    for k in range(count):
        value = values[k]
        values[above] = value
        above += value > threshold
    mean = (_sum(values, above, 0.0, 1) + (n - above) * threshold) / n
    if n == 1:
        return mean, 0.0
    spread = _sum(values, above, mean, 2) + (n - above) * (threshold - mean) ** 2
    return mean, spread / (n - 1)


@njit(cache=True, nogil=True)
def _sum(values: np.ndarray, count: int, centre: float, power: int) -> float:  # pragma: no cover
    """Sum of ``(values[:count] - centre) ** power`` (power 1 or 2), in a fixed order.

    Four interleaved partial sums break the chain of dependent additions that made a
    plain loop slow; the order depends only on ``count``, so results stay bit-exact
    from one window to another.
    """
    sum0 = sum1 = sum2 = sum3 = 0.0
    quads = count - count % 4
    for k in range(0, quads, 4):
        d0 = values[k] - centre
        d1 = values[k + 1] - centre
        d2 = values[k + 2] - centre
        d3 = values[k + 3] - centre
        if power == 2:
            d0, d1, d2, d3 = d0 * d0, d1 * d1, d2 * d2, d3 * d3
        sum0 += d0
        sum1 += d1
        sum2 += d2
        sum3 += d3
    for k in range(quads, count):
        d0 = values[k] - centre
        sum0 += d0 * d0 if power == 2 else d0
    return (sum0 + sum1) + (sum2 + sum3)


@njit(cache=True, nogil=True)
def _smooth(
    probabilities: np.ndarray,
    valid: np.ndarray,
    half: int,
    fraction: float,
    variances: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover
    """Write the smoothed, normalised probabilities into ``out`` (NaN off ``valid``).

    Serial on purpose: the post-processing step runs windows in parallel, and a
    ``nogil`` serial kernel lets its threads do so without numba's threading layer.
    The neighbourhood is gathered in row-major order, the same in any window, so the
    result does not depend on the window the pixel is computed in.
    """
    n_classes, rows, cols = probabilities.shape
    logits = np.zeros((rows, cols))
    totals = np.zeros((rows, cols))
    neighbours = np.empty((2 * half + 1) ** 2)
    for band in range(n_classes):
        variance = variances[band]
        for i in range(rows):
            for j in range(cols):
                if valid[i, j]:
                    p = min(max(np.float64(probabilities[band, i, j]), EPSILON), 1.0 - EPSILON)
                    logits[i, j] = math.log(p / (1.0 - p))
        guess = 0.0
        for i in range(rows):
            top = max(0, i - half)
            bottom = min(rows, i + half + 1)
            for j in range(cols):
                if not valid[i, j]:
                    out[band, i, j] = np.nan
                    continue
                left = max(0, j - half)
                right = min(cols, j + half + 1)
                count = 0
                for r in range(top, bottom):
                    for c in range(left, right):
                        if valid[r, c]:
                            neighbours[count] = logits[r, c]
                            count += 1
                n = max(1, math.ceil(fraction * count))
                guess = _nth_highest(neighbours, count, n, guess)
                mean, spread = _highest_moments(neighbours, count, n, guess)
                weight = spread / (spread + variance)
                posterior = weight * logits[i, j] + (1.0 - weight) * mean
                probability = np.float32(1.0 / (1.0 + math.exp(-posterior)))
                totals[i, j] += probability
                out[band, i, j] = probability
    for band in range(n_classes):
        for i in range(rows):
            for j in range(cols):
                if valid[i, j]:
                    out[band, i, j] = out[band, i, j] / totals[i, j]
