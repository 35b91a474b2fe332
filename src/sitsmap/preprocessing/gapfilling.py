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

:class:`GapfillStream` computes the same values (bit for bit) from dates given one
at a time, in order, so that a reader never has to hold the whole series: it
keeps, per pixel, only the last valid observation and the next output date to
fill. The feature pipeline uses it.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit, prange

__all__ = ["GapfillStream", "gapfill", "gapfill_into"]

# numba's "workqueue" threading layer aborts when two threads launch parallel kernels at
# once (e.g. under dask's threaded scheduler). The parallel kernels are short next to the
# serial fold, so running them one at a time costs little.
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
    arrays = [values, _as_bytes(valid), out, counts]
    if values.ndim == 3:  # pixels (..., N) are seen as one-row images (..., 1, N)
        arrays = [array[..., np.newaxis, :] for array in arrays]
    with _KERNEL_LOCK:
        _gapfill_kernel(arrays[0], arrays[1], dates64, out_dates64, scale, arrays[2], arrays[3])
    return counts


class GapfillStream:
    """Gap-fill a series date by date, in date order, without holding the whole series.

    Gives exactly what :func:`gapfill` gives on the stacked series (as long as no two
    valid dates are equal).

    Parameters
    ----------
    out_dates : numpy.ndarray
        ``(T_out,)`` day numbers of the output grid, sorted ascending.
    out : numpy.ndarray of float32
        ``(T_out, B, H, W)``, any strides, filled by :meth:`add` and :meth:`finish`.
    scale : float
        Factor applied to every output value.

    Notes
    -----
    Typical use::

        stream = GapfillStream(out_days, out)
        for day, values, valid in series:  # values (B, H, W), valid (H, W)
            stream.add(day, values, valid)
        counts = stream.finish()
    """

    def __init__(self, out_dates: np.ndarray, out: np.ndarray, scale: float = 1.0) -> None:
        self._out_dates = _sorted_days(out_dates, "out_dates")
        if out.ndim != 4 or out.shape[0] != len(self._out_dates) or out.dtype != np.float32:
            raise ValueError(f"out must be float32 (T_out, B, H, W), not {out.dtype} {out.shape}")
        self._out = out
        self._scale = float(scale)
        shape = out.shape[2:]
        self._last_values: np.ndarray | None = None  # allocated with the first date's dtype
        self._last_day = np.zeros(shape, dtype=np.float64)
        self._next_out = np.zeros(shape, dtype=np.int32)
        self._count = np.zeros(shape, dtype=np.int32)
        self._day = -np.inf

    def add(self, day: float, values: np.ndarray, valid: np.ndarray) -> None:
        """Take in one date: ``values`` ``(B, H, W)``, ``valid`` ``(H, W)`` bool.

        Raises
        ------
        ValueError
            If ``day`` comes before the previous date or the shapes do not fit ``out``.
        """
        if day < self._day:
            raise ValueError(f"dates must come in order: {day} after {self._day}")
        if values.shape != self._out.shape[1:] or valid.shape != self._out.shape[2:]:
            raise ValueError(
                f"values {values.shape} and valid {valid.shape} do not fit out {self._out.shape}"
            )
        self._ensure_state(values.dtype)
        self._day = float(day)
        _fold_date(
            self._day,
            values,
            _as_bytes(valid),
            self._out_dates,
            self._scale,
            self._out,
            self._last_values,
            self._last_day,
            self._next_out,
            self._count,
        )

    def add_series(self, days: np.ndarray, values: np.ndarray, valid: np.ndarray) -> None:
        """Take in several dates at once (in parallel over rows), like repeated :meth:`add`.

        ``days`` ``(T,)`` ascending, ``values`` ``(T, B, H, W)``, ``valid`` ``(T, H, W)``.
        """
        days64 = _sorted_days(days, "days")
        if len(days64) == 0:
            return
        if days64[0] < self._day:
            raise ValueError(f"dates must come in order: {days64[0]} after {self._day}")
        expected = (len(days64), *self._out.shape[1:])
        if values.shape != expected or valid.shape != (len(days64), *self._out.shape[2:]):
            raise ValueError(
                f"values {values.shape} and valid {valid.shape} do not fit "
                f"{len(days64)} dates of out {self._out.shape}"
            )
        self._ensure_state(values.dtype)
        self._day = float(days64[-1])
        with _KERNEL_LOCK:
            _fold_series(
                days64,
                values,
                _as_bytes(valid),
                self._out_dates,
                self._scale,
                self._out,
                self._last_values,
                self._last_day,
                self._next_out,
                self._count,
            )

    def _ensure_state(self, dtype: np.dtype) -> None:
        if self._last_values is None:  # the last valid values keep the input's dtype
            self._last_values = np.zeros(self._out.shape[1:], dtype=dtype)

    def finish(self) -> np.ndarray:
        """Fill the output dates after each pixel's last valid date; return the valid counts.

        Returns
        -------
        numpy.ndarray of uint16
            ``(H, W)`` number of valid dates of each pixel; its outputs are 0 where 0.
        """
        last = self._last_values
        if last is None:
            last = np.zeros(self._out.shape[1:], dtype=np.int16)
        with _KERNEL_LOCK:
            _fill_after_last(self._scale, self._out, last, self._next_out, self._count)
        return np.minimum(self._count, 65535).astype(np.uint16)


def _as_bytes(valid: np.ndarray) -> np.ndarray:
    """Booleans as uint8, without a copy when they are booleans already."""
    return np.asarray(valid, dtype=bool).view(np.uint8)


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


@njit(cache=True, fastmath=False, nogil=True)
def _fold_date(
    day, values, valid, out_dates, scale, out, last_values, last_day, next_out, count
):  # pragma: no cover
    # Serial on purpose: it runs in the consumer thread while reader threads decode the
    # next dates; a parallel kernel per date would make its idle threads spin meanwhile.
    k_end = np.searchsorted(out_dates, day, side="right")
    start, before, weight = _row_scratch(values.shape[2])
    for row in range(values.shape[1]):
        _fold_row(
            row, day, k_end, values, valid, out_dates, scale, out,
            last_values, last_day, next_out, count, start, before, weight,
        )  # fmt: skip


@njit(parallel=True, cache=True, fastmath=False, nogil=True)
def _fold_series(
    days, values, valid, out_dates, scale, out, last_values, last_day, next_out, count
):  # pragma: no cover
    for row in prange(values.shape[2]):
        start, before, weight = _row_scratch(values.shape[3])
        for t in range(days.shape[0]):
            k_end = np.searchsorted(out_dates, days[t], side="right")
            _fold_row(
                row, days[t], k_end, values[t], valid[t], out_dates, scale, out,
                last_values, last_day, next_out, count, start, before, weight,
            )  # fmt: skip


@njit(cache=True, nogil=True)
def _row_scratch(width):  # pragma: no cover
    return np.empty(width, np.int64), np.empty(width, np.float64), np.empty(width, np.float64)


@njit(cache=True, fastmath=False, nogil=True)
def _fold_row(
    row, day, k_end, values, valid, out_dates, scale, out,
    last_values, last_day, next_out, count, start, before, weight,
):  # fmt: skip  # pragma: no cover
    # Each valid observation fills the output dates from the pixel's next unfilled one up
    # to its own date (``k_end``, the same for every pixel), interpolating from the previous
    # valid observation, or repeating itself when it is the first. The loops run output
    # date, then band, then pixel, so that every write runs along one row of one output
    # plane: 2.5x faster than pixel-outer loops, whose writes jump between planes. Weight 1
    # (on the date itself, or before the first valid date) takes z itself; otherwise the
    # arithmetic is that of _interpolate, so the floats are the same.
    n_bands, _, width = values.shape
    k_first = k_end
    for col in range(width):
        if valid[row, col]:
            start[col] = next_out[row, col]
            k_first = min(k_first, start[col])
            before[col] = day if count[row, col] == 0 else last_day[row, col]
            next_out[row, col] = k_end
            last_day[row, col] = day
            count[row, col] += 1
        else:
            start[col] = k_end  # nothing to fill
    for k in range(k_first, k_end):
        for col in range(width):
            on_date = before[col] == day or out_dates[k] == day
            weight[col] = 1.0 if on_date else (out_dates[k] - before[col]) / (day - before[col])
        for b in range(n_bands):
            for col in range(width):
                if start[col] <= k:
                    a = np.float64(last_values[b, row, col])
                    z = np.float64(values[b, row, col])
                    w = weight[col]
                    out[k, b, row, col] = (z if w == 1.0 else a + w * (z - a)) * scale
    for b in range(n_bands):
        for col in range(width):
            if valid[row, col]:
                last_values[b, row, col] = values[b, row, col]


@njit(parallel=True, cache=True, fastmath=False, nogil=True)
def _fill_after_last(scale, out, last_values, next_out, count):  # pragma: no cover
    n_out, n_bands, height, width = out.shape
    for row in prange(height):
        for col in range(width):
            factor = scale if count[row, col] > 0 else 0.0
            for k in range(next_out[row, col], n_out):
                for b in range(n_bands):
                    out[k, b, row, col] = np.float64(last_values[b, row, col]) * factor
