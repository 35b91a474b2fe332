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
keeps, per pixel, only the last valid observation, which date it was and how many
valid dates there were. It can also compute spectral indices of each output date
as it writes its bands (``derived``). The feature pipeline uses it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
from numba import njit, prange

from sitsmap.preprocessing.indices import normalized_difference_value

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
        Fastest when its transpose ``(B, T_out, H, W)`` is C-contiguous (band-major rows
        of a feature array).
    scale : float
        Factor applied to every output value.
    derived : numpy.ndarray of float32, optional
        ``(T_out, D, H, W)``, any strides: spectral indices of the gap-filled values,
        computed for each output date as soon as its bands are written, while they are
        still in the processor's cache (a separate pass over ``out`` reads it all again
        from memory).
    derived_from : sequence of (int, int)
        One pair per derived variable: ``(a, b)``, band positions in ``out``, for the
        normalized difference ``(out_a - out_b) / (out_a + out_b)`` (0 where the sum is
        0), or ``(-1, -1)`` for the brightness (Euclidean norm over all the bands); the
        same float32 operations as :mod:`sitsmap.preprocessing.indices`.

    Notes
    -----
    Typical use::

        stream = GapfillStream(out_days, out)
        for day, values, valid in series:  # values (B, H, W), valid (H, W)
            stream.add(day, values, valid)
        counts = stream.finish()
    """

    def __init__(
        self,
        out_dates: np.ndarray,
        out: np.ndarray,
        scale: float = 1.0,
        derived: np.ndarray | None = None,
        derived_from: Sequence[tuple[int, int]] = (),
    ) -> None:
        self._out_dates = _sorted_days(out_dates, "out_dates")
        if out.ndim != 4 or out.shape[0] != len(self._out_dates) or out.dtype != np.float32:
            raise ValueError(f"out must be float32 (T_out, B, H, W), not {out.dtype} {out.shape}")
        self._out = out
        self._planes = out.transpose(1, 0, 2, 3)  # the kernels index (B, T_out, H, W)
        self._derived, self._pairs = _derived_planes(out, derived, derived_from)
        self._scale = float(scale)
        shape = out.shape[2:]
        # Per pixel: its last valid values, the position of its last valid date in the table
        # of dates taken in (-1 before any; int16 while there are few enough dates), and its
        # number of valid dates (saturating at 65535, as returned). The narrow types are for
        # speed: the fold reads and writes the state of every pixel at every date.
        self._last_values: np.ndarray | None = None  # allocated with the first date's dtype
        self._last = np.full(shape, -1, dtype=np.int16)
        self._count = np.zeros(shape, dtype=np.uint16)
        self._days = np.empty(0, dtype=np.float64)  # the dates taken in (day numbers)
        self._ends = np.empty(0, dtype=np.int64)  # the output dates up to each of them
        self._n_days = 0
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
        first = self._take_days(np.array([self._day]))
        _fold_date(
            first,
            values,
            _as_bytes(valid),
            self._out_dates,
            self._scale,
            self._planes,
            self._derived,
            self._pairs,
            self._days,
            self._ends,
            self._last_values,
            self._last,
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
        first = self._take_days(days64)
        with _KERNEL_LOCK:
            _fold_series(
                first,
                len(days64),
                values,
                _as_bytes(valid),
                self._out_dates,
                self._scale,
                self._planes,
                self._derived,
                self._pairs,
                self._days,
                self._ends,
                self._last_values,
                self._last,
                self._count,
            )

    def _ensure_state(self, dtype: np.dtype) -> None:
        if self._last_values is None:  # the last valid values keep the input's dtype
            self._last_values = np.zeros(self._out.shape[1:], dtype=dtype)

    def _take_days(self, days: np.ndarray) -> int:
        """Append ``days`` to the table of dates taken in; return the position of the first."""
        first, self._n_days = self._n_days, self._n_days + len(days)
        if self._n_days > len(self._days):
            size = max(2 * len(self._days), self._n_days, 64)
            self._days = np.resize(self._days, size)
            self._ends = np.resize(self._ends, size)
        self._days[first : self._n_days] = days
        self._ends[first : self._n_days] = np.searchsorted(self._out_dates, days, side="right")
        if self._n_days - 1 > np.iinfo(self._last.dtype).max:
            self._last = self._last.astype(np.int32)
        return first

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
            _fill_after_last(
                self._scale,
                self._planes,
                self._derived,
                self._pairs,
                last,
                self._last,
                self._ends,
            )
        return self._count.copy()


def _derived_planes(
    out: np.ndarray, derived: np.ndarray | None, derived_from: Sequence[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """The derived array as the kernels index it, ``(D, T_out, H, W)``, and its band pairs."""
    n_out, n_bands, height, width = out.shape
    pairs = np.array(list(derived_from), dtype=np.int64).reshape(-1, 2)
    if derived is None:
        if len(pairs):
            raise ValueError("derived_from is given without a derived array")
        return np.zeros((0, n_out, height, width), dtype=np.float32), pairs
    if derived.shape != (n_out, len(pairs), height, width) or derived.dtype != np.float32:
        raise ValueError(
            f"derived must be float32 {(n_out, len(pairs), height, width)}, "
            f"not {derived.dtype} {derived.shape}"
        )
    brightness = (pairs == -1).all(axis=1)
    if not ((brightness | (pairs >= 0).all(axis=1)) & (pairs < n_bands).all(axis=1)).all():
        raise ValueError(f"derived_from must hold band positions below {n_bands} or (-1, -1)")
    return derived.transpose(1, 0, 2, 3), pairs


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
    t, values, valid, out_dates, scale, planes, derived, pairs, days, ends,
    last_values, last, count,
):  # fmt: skip  # pragma: no cover
    # Serial on purpose: it runs in the consumer thread while reader threads decode the
    # next dates; a parallel kernel per date would make its idle threads spin meanwhile.
    scratch = _row_scratch(values.shape[2])
    for row in range(values.shape[1]):
        _fold_row(
            row, t, values, valid, out_dates, scale, planes, derived, pairs, days, ends,
            last_values, last, count, scratch,
        )  # fmt: skip


@njit(parallel=True, cache=True, fastmath=False, nogil=True)
def _fold_series(
    first, n_days, values, valid, out_dates, scale, planes, derived, pairs, days, ends,
    last_values, last, count,
):  # fmt: skip  # pragma: no cover
    for row in prange(values.shape[2]):
        scratch = _row_scratch(values.shape[3])
        for t in range(n_days):
            _fold_row(
                row, first + t, values[t], valid[t], out_dates, scale, planes, derived, pairs,
                days, ends, last_values, last, count, scratch,
            )  # fmt: skip


@njit(cache=True, nogil=True)
def _row_scratch(width):  # pragma: no cover
    # start (first output date to fill), before (day of the previous valid observation),
    # weight, a float32 sum of squares.
    return (
        np.empty(width, np.int64),
        np.empty(width, np.float64),
        np.empty(width, np.float64),
        np.empty(width, np.float32),
    )


@njit(cache=True, fastmath=False, nogil=True, error_model="numpy")
def _fold_row(
    row, t, values, valid, out_dates, scale, planes, derived, pairs, days, ends,
    last_values, last, count, scratch,
):  # fmt: skip  # pragma: no cover
    # Date t's valid observations fill the output dates from each pixel's next unfilled one
    # (after its previous valid date) up to date t (``k_end``, the same for every pixel),
    # interpolating from the previous valid observation, or repeating themselves when they
    # are the first. The loops run output date, then band, then pixel, so that every write
    # runs along one row of one output plane (2.5x faster than pixel-outer loops, whose
    # writes jump between planes); the indices of an output date are computed right after
    # its bands, from the rows still in cache. Weight 1 (on the date itself, or before the
    # first valid date) takes z itself; otherwise the arithmetic is that of _interpolate,
    # so the floats are the same.
    start, before, weight, squares = scratch
    day, k_end = days[t], ends[t]
    width = values.shape[2]
    # Branch-free, so that it vectorizes (1.3x faster fold): `before` only counts where valid.
    n_valid = 0
    for col in range(width):
        is_valid = valid[row, col] != 0
        previous = last[row, col]
        seen = previous >= 0
        at = previous if seen else 0
        start[col] = (ends[at] if seen else 0) if is_valid else k_end
        before[col] = days[at] if seen else day
        last[row, col] = t if is_valid else previous
        count[row, col] += is_valid and count[row, col] < 65535
        n_valid += is_valid
    if n_valid == 0:
        return
    k_first = k_end
    for col in range(width):
        k_first = min(k_first, start[col])
    for k in range(k_first, k_end):
        on_date = out_dates[k] == day
        for col in range(width):  # no branch on the division: NaN where before == day
            w = (out_dates[k] - before[col]) / (day - before[col])
            weight[col] = 1.0 if on_date or before[col] == day else w
        for b in range(values.shape[0]):
            for col in range(width):
                if start[col] <= k:
                    planes[b, k, row, col] = _interpolated(
                        last_values[b, row, col], values[b, row, col], weight[col], scale
                    )
        _derive_row(planes, derived, pairs, k, row, start, squares)
    for b in range(values.shape[0]):
        for col in range(width):
            if valid[row, col]:
                last_values[b, row, col] = values[b, row, col]


@njit(cache=True, fastmath=False, nogil=True, inline="always")
def _interpolated(last, value, weight, scale):  # pragma: no cover
    a = np.float64(last)
    z = np.float64(value)
    return (z if weight == 1.0 else a + weight * (z - a)) * scale


@njit(cache=True, fastmath=False, nogil=True)
def _derive_row(planes, derived, pairs, k, row, start, squares):  # pragma: no cover
    """Compute the derived planes of output date ``k`` where ``start[col] <= k`` on ``row``.

    ``pairs[j]`` is ``(a, b)`` for the normalized difference of bands a and b, ``(-1, -1)``
    for the brightness (Euclidean norm over the bands, summed in band order in float32).
    """
    width = start.shape[0]
    for j in range(pairs.shape[0]):
        a, b = pairs[j, 0], pairs[j, 1]
        if a >= 0:
            for col in range(width):
                if start[col] <= k:
                    derived[j, k, row, col] = normalized_difference_value(
                        planes[a, k, row, col], planes[b, k, row, col]
                    )
            continue
        squares[:] = 0.0
        for band in range(planes.shape[0]):
            for col in range(width):
                if start[col] <= k:
                    value = planes[band, k, row, col]
                    squares[col] += value * value
        for col in range(width):
            if start[col] <= k:
                derived[j, k, row, col] = np.sqrt(squares[col])


@njit(parallel=True, cache=True, fastmath=False, nogil=True)
def _fill_after_last(scale, planes, derived, pairs, last_values, last, ends):  # pragma: no cover
    # Output date after output date along each row, like _fold_row's common date.
    n_bands, n_out, height, width = planes.shape
    for row in prange(height):
        start = np.empty(width, np.int64)
        factor = np.empty(width, np.float64)
        squares = np.empty(width, np.float32)
        for col in range(width):
            start[col] = 0 if last[row, col] < 0 else ends[last[row, col]]
            factor[col] = 0.0 if last[row, col] < 0 else scale
        for k in range(start.min() if width else n_out, n_out):
            for b in range(n_bands):
                for col in range(width):
                    if start[col] <= k:
                        planes[b, k, row, col] = np.float64(last_values[b, row, col]) * factor[col]
            _derive_row(planes, derived, pairs, k, row, start, squares)
