"""Temporal gap-filling: per-pixel linear interpolation over clear dates onto a regular grid.

iota2 gap-fills every pixel's series onto a regular temporal grid before
computing features, so that every tile and every pixel has the same feature
dates. For one pixel, the value at an output date is interpolated linearly
between the valid (clear, in-swath, unsaturated) acquisitions just before and
just after it; before the first valid acquisition and after the last one, the
nearest valid value is repeated; a pixel with no valid acquisition gets 0 (the
caller flags it with ``valid.any(axis=0)``).

:func:`gapfill` runs a compiled numba kernel, parallel over pixels: each pixel
is one merge-like pass over its input dates and the output dates (O(T + T_out)),
interpolating all bands with the same weights.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit, prange

__all__ = ["gapfill", "gapfill_into"]

# numba's "workqueue" threading layer aborts when two threads launch parallel kernels at
# once (e.g. under dask's threaded scheduler); each launch already uses every core.
_KERNEL_LOCK = threading.Lock()


def gapfill(
    values: np.ndarray,
    valid: np.ndarray,
    dates: np.ndarray,
    out_dates: np.ndarray,
    scale: float = 1.0,
) -> np.ndarray:
    """Interpolate each pixel's valid observations linearly onto ``out_dates``.

    Parameters
    ----------
    values : numpy.ndarray
        ``(T, B, H, W)`` or ``(T, B, N)``: T dates, B bands; any real or integer dtype
        and any strides (int16 reflectances and transposed views are read in place).
    valid : numpy.ndarray of bool
        ``(T, H, W)`` or ``(T, N)``: True where the date is usable, for all bands.
    dates : numpy.ndarray
        ``(T,)`` day numbers of the input dates, sorted ascending.
    out_dates : numpy.ndarray
        ``(T_out,)`` day numbers of the output grid, sorted ascending.
    scale : float
        Factor applied to every output value (e.g. ``1e-4`` for reflectance x 10000).

    Returns
    -------
    numpy.ndarray of float32
        ``(T_out, B, H, W)`` or ``(T_out, B, N)``. Constant extrapolation before the
        first and after the last valid date; 0 where a pixel has no valid date.
    """
    out = np.empty((len(out_dates), *values.shape[1:]), dtype=np.float32)
    gapfill_into(values, valid, dates, out_dates, out, scale)
    return out


def gapfill_into(
    values: np.ndarray,
    valid: np.ndarray,
    dates: np.ndarray,
    out_dates: np.ndarray,
    out: np.ndarray,
    scale: float = 1.0,
) -> np.ndarray:
    """Gap-fill like :func:`gapfill`, writing into ``out`` and returning valid-date counts.

    Parameters
    ----------
    values : numpy.ndarray
        ``(T, B, H, W)`` or ``(T, B, N)``, any strides.
    valid : numpy.ndarray of bool
        ``(T, H, W)`` or ``(T, N)``.
    dates, out_dates : numpy.ndarray
        Day numbers, sorted ascending.
    out : numpy.ndarray of float32
        ``(T_out, B, H, W)`` or ``(T_out, B, N)``, any strides: a transposed view lets a
        caller fill a band-major feature array directly.
    scale : float
        Factor applied to every output value.

    Returns
    -------
    numpy.ndarray of uint16
        ``(H, W)`` or ``(N,)``: number of valid input dates of each pixel.
    """
    dates64 = _sorted_days(dates, "dates")
    out_dates64 = _sorted_days(out_dates, "out_dates")
    if values.ndim not in (3, 4) or valid.shape != (values.shape[0], *values.shape[2:]):
        raise ValueError(
            f"expected values (T, B, H, W) or (T, B, N) and valid (T, H, W) or (T, N), "
            f"got {values.shape} and {valid.shape}"
        )
    if dates64.shape != values.shape[:1]:
        raise ValueError(f"{len(dates64)} dates for {values.shape[0]} dates of values")
    expected = (len(out_dates64), *values.shape[1:])
    if out.shape != expected or out.dtype != np.float32:
        raise ValueError(f"out must be float32 {expected}, not {out.dtype} {out.shape}")
    counts = np.empty(values.shape[2:], dtype=np.uint16)
    if counts.size == 0:
        return counts
    arrays = [values, valid.view(np.uint8), out, counts]
    if values.ndim == 3:  # pixels (..., N) are seen as one-row images (..., 1, N)
        arrays = [array[..., np.newaxis, :] for array in arrays]
    with _KERNEL_LOCK:
        _gapfill_kernel(arrays[0], arrays[1], dates64, out_dates64, scale, arrays[2], arrays[3])
    return counts


def _sorted_days(days: np.ndarray, name: str) -> np.ndarray:
    days64 = np.ascontiguousarray(days, dtype=np.float64)
    if days64.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, not {days64.shape}")
    if np.any(np.diff(days64) < 0):
        raise ValueError(f"{name} must be sorted ascending")
    return days64


_BLOCK = 256


@njit(parallel=True, cache=True, fastmath=False, nogil=True)
def _gapfill_kernel(values, valid, dates, out_dates, scale, out, counts):  # pragma: no cover
    # Pixels are processed in blocks of up to _BLOCK pixels of one image row: first each
    # pixel's bracketing valid dates and weight for every output date (one merge pass over
    # its dates), then the interpolation with the pixel innermost, so that reads and writes
    # run along the row.
    height, width = counts.shape
    per_row = (width + _BLOCK - 1) // _BLOCK
    for block in prange(height * per_row):
        row = block // per_row
        first = (block % per_row) * _BLOCK
        size = min(_BLOCK, width - first)
        count = _count_valid(valid, row, first, size)
        low, high, weight = _brackets(valid, dates, out_dates, row, first, count)
        factor = np.where(count > 0, scale, 0.0)
        _interpolate(values, row, first, low, high, weight, factor, out)
        for i in range(size):
            counts[row, first + i] = min(count[i], 65535)
            if count[i] == 0:  # values may be NaN there: write 0 explicitly
                out[:, :, row, first + i] = 0.0


@njit(cache=True, nogil=True)
def _count_valid(valid, row, first, size):  # pragma: no cover
    count = np.zeros(size, np.int64)
    for t in range(valid.shape[0]):
        for i in range(size):
            count[i] += valid[t, row, first + i]
    return count


@njit(cache=True, nogil=True)
def _brackets(valid, dates, out_dates, row, first, count):  # pragma: no cover
    """Per pixel and output date: the valid dates around it and the weight of the later."""
    n_dates = dates.shape[0]
    n_out = out_dates.shape[0]
    size = count.shape[0]
    low = np.zeros((n_out, size), np.int32)
    high = np.zeros((n_out, size), np.int32)
    weight = np.zeros((n_out, size), np.float64)
    for i in range(size):
        if count[i] == 0:
            continue
        col = first + i
        before = -1  # last valid date <= the output date
        after = 0  # first valid date > the output date (n_dates when none)
        scan = 0  # first input date not yet compared with the output date
        for k in range(n_out):
            day = out_dates[k]
            while scan < n_dates and dates[scan] <= day:
                if valid[scan, row, col]:
                    before = scan
                scan += 1
            after = max(after, scan)
            while after < n_dates and not valid[after, row, col]:
                after += 1
            if before < 0:  # before the first valid date: repeat it
                low[k, i] = high[k, i] = after
            elif after == n_dates or dates[before] == day:  # after the last, or on one
                low[k, i] = high[k, i] = before
            else:
                low[k, i] = before
                high[k, i] = after
                weight[k, i] = (day - dates[before]) / (dates[after] - dates[before])
    return low, high, weight


@njit(cache=True, nogil=True)
def _interpolate(values, row, first, low, high, weight, factor, out):  # pragma: no cover
    n_out, size = weight.shape
    for k in range(n_out):
        for b in range(values.shape[1]):
            for i in range(size):
                a = np.float64(values[low[k, i], b, row, first + i])
                z = np.float64(values[high[k, i], b, row, first + i])
                out[k, b, row, first + i] = (a + weight[k, i] * (z - a)) * factor[i]
