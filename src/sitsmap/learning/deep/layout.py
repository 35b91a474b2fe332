"""How a flat feature row holds a pixel's time series, for the temporal networks.

Two layouts, told apart by the feature names:

* **gap-filled grid** (the default): ``C`` channels (bands, then indices) over
  the ``T`` dates of the regular grid, band-major (``c * T + t``), names ending
  in ``_YYYYMMDD``; every date is valid and the days are the grid's.
* **raw dates** (``sensors_data_interpolation.use_gapfilling: false``): each
  pixel's own clear observations, packed in date order into ``T`` slots. The row
  holds the ``C × T`` values band-major (names ``<sensor>_<variable>_obsKKK``),
  then the ``T`` days of year (``<sensor>_doy_obsKKK``), then the ``T``
  validity flags (``<sensor>_valid_obsKKK``, 1 or 0). Unused slots have values,
  day and flag 0. A day of year counts from 1 January of the year the temporal
  grid starts in, so it keeps growing across a new year.

:meth:`TemporalLayout.split` gives every network the same three tensors
whatever the layout: the series ``(batch, T, C)``, the days ``(batch, T)`` and
the validity mask ``(batch, T)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from sitsmap.errors import InputDataError
from sitsmap.preprocessing.raw_dates import (
    DAY_VARIABLE,
    RAW_SLOT,
    VALID_VARIABLE,
    raw_slot_name,
)

__all__ = [
    "DAY_VARIABLE",
    "RAW_SLOT",
    "VALID_VARIABLE",
    "TemporalLayout",
    "is_raw",
    "raw_slot_count",
    "raw_slot_name",
]


def is_raw(feature_names: Sequence[str] | None) -> bool:
    """Whether ``feature_names`` are in the raw-dates layout."""
    return bool(feature_names) and RAW_SLOT.match(str(feature_names[0])) is not None


def raw_slot_count(feature_names: Sequence[str]) -> int:
    """Return the observation slots of raw-layout ``feature_names``: their validity columns."""
    matches = (RAW_SLOT.match(str(name)) for name in feature_names)
    return sum(bool(m) and m["variable"].endswith(f"_{VALID_VARIABLE}") for m in matches)


@dataclass(frozen=True)
class TemporalLayout:
    """The time-series shape of a feature row.

    Attributes
    ----------
    n_channels : int
        Channels per date ``C`` (bands and indices).
    n_dates : int
        Dates ``T`` (grid dates, or raw observation slots).
    raw : bool
        Raw-dates layout (days and validity in the row) or gap-filled grid.
    day_of_year : tuple of float, optional
        The grid's day of each date (gap-filled layout only); ``0, 1, …`` when None.
    """

    n_channels: int
    n_dates: int
    raw: bool = False
    day_of_year: tuple[float, ...] | None = None

    @classmethod
    def of(
        cls,
        n_features: int,
        n_dates: int,
        raw: bool = False,
        day_of_year: Sequence[float] | None = None,
    ) -> TemporalLayout:
        """The layout of rows of ``n_features`` features over ``n_dates`` dates or slots.

        Raises
        ------
        InputDataError
            If the features do not split into whole time series.
        """
        per_date, rest = divmod(n_features, n_dates) if n_dates > 0 else (0, 1)
        n_channels = per_date - 2 if raw else per_date
        if rest or n_channels < 1:
            kind = "raw observation slots" if raw else "dates"
            raise InputDataError(
                f"{n_features} features do not split into {n_dates} {kind} of whole time series"
            )
        days = None if raw or day_of_year is None else tuple(float(d) for d in day_of_year)
        if days is not None and len(days) != n_dates:
            raise InputDataError(f"{len(days)} days of year given for {n_dates} dates")
        return cls(n_channels, n_dates, raw, days)

    @property
    def n_features(self) -> int:
        """Length of a feature row."""
        return (self.n_channels + (2 if self.raw else 0)) * self.n_dates

    @property
    def n_values(self) -> int:
        """Columns holding channel values (the first ones of a row)."""
        return self.n_channels * self.n_dates

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return the series ``(b, T, C)``, days ``(b, T)`` and validity ``(b, T)`` of rows ``x``.

        The days and the validity of the raw layout are read from the row, so they
        must not have been standardised.
        """
        batch, values = x.shape[0], self.n_values
        series = x[:, :values].reshape(batch, self.n_channels, self.n_dates).transpose(1, 2)
        if self.raw:
            days = x[:, values : values + self.n_dates]
            valid = x[:, values + self.n_dates :] > 0.5
            return series, days, valid
        grid = (
            torch.arange(self.n_dates, dtype=x.dtype, device=x.device)
            if self.day_of_year is None
            else torch.tensor(self.day_of_year, dtype=x.dtype, device=x.device)
        )
        valid = torch.ones(batch, self.n_dates, dtype=torch.bool, device=x.device)
        return series, grid.expand(batch, -1), valid

    def join(self, series: torch.Tensor, days: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`split`: flat rows from a series, its days and validity.

        In the gap-filled layout the days and validity are the grid's and are dropped.
        """
        values = series.transpose(1, 2).reshape(series.shape[0], self.n_values)
        if not self.raw:
            return values
        return torch.cat([values, days.to(values.dtype), valid.to(values.dtype)], dim=1)
