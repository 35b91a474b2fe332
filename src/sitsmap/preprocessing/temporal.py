"""The temporal grid: regular output dates, the period common to all tiles, day numbers.

Every tile is gap-filled onto the same dates, so that one classifier fits all
tiles; the kernels work on day numbers (days since 1970-01-01), not on dates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from sitsmap.errors import ConfigError

EPOCH = dt.date(1970, 1, 1)
"""Day number 0."""


def regular_dates(start: dt.date, end: dt.date, step_days: int) -> list[dt.date]:
    """Return ``start, start + step, ...`` up to and including ``end`` when it falls on the grid.

    Parameters
    ----------
    start, end : datetime.date
        First date of the grid and last possible date.
    step_days : int
        Days between two dates (iota2's ``temporal_resolution``).

    Returns
    -------
    list of datetime.date
        2018-01-01 .. 2018-12-31 every 10 days gives 37 dates.

    Raises
    ------
    ConfigError
        If ``step_days`` is not positive or ``start`` is after ``end``.
    """
    if step_days <= 0:
        raise ConfigError(f"temporal resolution must be a positive number of days, not {step_days}")
    if start > end:
        raise ConfigError(f"the temporal grid starts ({start}) after it ends ({end})")
    count = (end - start).days // step_days + 1
    return [start + dt.timedelta(days=step_days * k) for k in range(count)]


def common_period(dates_by_tile: Mapping[str, Sequence[dt.date]]) -> tuple[dt.date, dt.date]:
    """Return the period covered by every tile: latest first date, earliest last date.

    Raises
    ------
    ConfigError
        If there is no tile, a tile has no date, or the tiles' periods do not overlap.
    """
    if not dates_by_tile:
        raise ConfigError("no tile to take a common period from")
    empty = [tile for tile, dates in dates_by_tile.items() if len(dates) == 0]
    if empty:
        raise ConfigError(f"no acquisition date for tile(s) {', '.join(empty)}")
    start = max(min(dates) for dates in dates_by_tile.values())
    end = min(max(dates) for dates in dates_by_tile.values())
    if start > end:
        spans = ", ".join(f"{t}: {min(d)}..{max(d)}" for t, d in dates_by_tile.items())
        raise ConfigError(f"the tiles' acquisition periods do not overlap ({spans})")
    return start, end


def day_numbers(
    dates: Iterable[dt.date | dt.datetime | np.datetime64 | float] | np.ndarray,
) -> np.ndarray:
    """Return days since 1970-01-01 as float64, the time axis the kernels use.

    Dates, datetimes (their day), ``numpy.datetime64`` values and numbers (taken
    as day numbers already) are accepted.
    """
    if isinstance(dates, np.ndarray) and dates.dtype.kind in "iuf":
        return dates.astype(np.float64, copy=False)
    if isinstance(dates, np.ndarray) and dates.dtype.kind == "M":
        return dates.astype("datetime64[D]").astype(np.int64).astype(np.float64)
    return np.array([_day_number(value) for value in dates], dtype=np.float64)


def _day_number(value: dt.date | dt.datetime | np.datetime64 | float) -> float:
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return float((value - EPOCH).days)
    if isinstance(value, np.datetime64):
        return float(value.astype("datetime64[D]").astype(np.int64))
    return float(value)
