"""Features on raw dates: each pixel's own clear observations, no gap-filling.

With ``sensors_data_interpolation.use_gapfilling: false`` a pixel's features are
its clear observations within the temporal grid's period, packed in date order
into ``slots`` observation slots, with each observation's day of year and a
validity flag (for L-TAE and the Transformer, which attend over real dates and
mask the missing ones). The row, for variables ``v`` (bands, then indices)::

    v1_obs000 .. v1_obs{S-1}, ..., vC_obs{S-1}   values (reflectance x 1e-4, indices)
    doy_obs000 .. doy_obs{S-1}                   day of each observation
    valid_obs000 .. valid_obs{S-1}               1 for an observation, 0 for padding

Unused slots hold 0 everywhere. A pixel with more clear observations than slots
keeps ``slots`` of them evenly spread over its own observations (first and last
kept). Days count from 1 January of the year the grid starts in (1 = that
1 January), so they keep growing across a new year.

The indices are computed per observation from its own reflectances, with the
same kernels as the gap-filled features.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

import numpy as np

from sitsmap.preprocessing.features import (
    FeatureBlock,
    _add_indices,
    _canonical_bands,
    feature_variables,
    index_names,
)
from sitsmap.sensors import SENTINEL2_THEIA, SensorDescription

__all__ = [
    "DAY_VARIABLE",
    "RAW_SLOT",
    "VALID_VARIABLE",
    "RawFeatureBuilder",
    "day_of_year_numbers",
    "pack_observations",
    "raw_feature_names",
    "raw_slot_name",
    "raw_working_bytes",
    "period_dates",
    "sensor_raw_feature_names",
]

DAY_VARIABLE = "doy"
"""Variable name of the day-of-year columns."""

VALID_VARIABLE = "valid"
"""Variable name of the validity columns."""

RAW_SLOT = re.compile(r"^(?P<variable>.+)_obs(?P<slot>\d{3})$")
"""A raw-dates feature name: ``<sensor>_<variable>_obsKKK``."""


def raw_slot_name(prefix: str, variable: str, slot: int) -> str:
    """Return the name of ``variable`` in observation ``slot`` (``sentinel2_b2_obs004``)."""
    return f"{prefix}_{variable}_obs{slot:03d}"


def raw_feature_names(prefix: str, variables: Sequence[str], slots: int) -> list[str]:
    """Return the raw-dates feature names: values band-major by slot, then days, then flags."""
    names = [raw_slot_name(prefix, v, k) for v in variables for k in range(slots)]
    return names + [
        raw_slot_name(prefix, v, k) for v in (DAY_VARIABLE, VALID_VARIABLE) for k in range(slots)
    ]


def sensor_raw_feature_names(
    bands: Sequence[str], slots: int, sensor: SensorDescription = SENTINEL2_THEIA
) -> list[str]:
    """Return a sensor's raw-dates feature names for its kept ``bands`` and ``slots`` slots."""
    return raw_feature_names(sensor.name, feature_variables(bands, sensor), slots)


def day_of_year_numbers(dates: Sequence[dt.date], first: dt.date) -> np.ndarray:
    """Days of ``dates`` counted from 1 January of ``first``'s year (that day is 1)."""
    origin = dt.date(first.year, 1, 1)
    return np.array([(day - origin).days + 1 for day in dates], dtype=np.float32)


def pack_observations(
    values: np.ndarray, valid: np.ndarray, days: np.ndarray, slots: int, out: np.ndarray
) -> np.ndarray:
    """Pack each pixel's valid observations, in date order, into ``slots`` slots.

    Parameters
    ----------
    values : numpy.ndarray of float32
        ``(C, T, N)`` channel values of ``T`` dates (sorted) for ``N`` pixels.
    valid : numpy.ndarray of bool
        ``(T, N)``: the observation is clear.
    days : numpy.ndarray
        ``(T,)`` day of each date.
    slots : int
        Observation slots ``S`` of the output.
    out : numpy.ndarray of float32
        ``((C + 2) * S, N)`` to fill: values band-major by slot, then days, then flags.

    Returns
    -------
    numpy.ndarray of uint16
        ``(N,)`` clear observations of each pixel (before any thinning to ``slots``).
    """
    n_channels, n_dates, n_pixels = values.shape
    count = valid.sum(axis=0)
    out[:] = 0
    if n_dates == 0 or slots == 0:
        return count.astype(np.uint16)
    # valid dates first, each group in date order (a stable sort of the flags)
    order = np.argsort(~valid, axis=0, kind="stable")
    slot = np.arange(slots)[:, None]
    kept = np.minimum(count, slots)[None, :]
    # more observations than slots: evenly spread ranks, first and last kept
    spread = np.rint(slot * (count[None, :] - 1) / max(slots - 1, 1)).astype(np.int64)
    rank = np.where(count[None, :] > slots, spread, slot)
    used = slot < kept
    date_index = np.take_along_axis(order, np.minimum(rank, n_dates - 1), axis=0)  # (S, N)
    picked = np.take_along_axis(values, date_index[None], axis=1)  # (C, S, N)
    picked[:, ~used] = 0.0
    out[: n_channels * slots] = picked.reshape(n_channels * slots, n_pixels)
    out[n_channels * slots : (n_channels + 1) * slots] = np.where(used, days[date_index], 0.0)
    out[(n_channels + 1) * slots :] = used
    return count.astype(np.uint16)


class RawFeatureBuilder:
    """Build a window's raw-dates features from its dates, given one at a time in date order.

    The counterpart of :class:`sitsmap.preprocessing.features.FeatureBuilder`:
    the window's clear observations within ``[first, last]`` are kept (as float32
    reflectances) until :meth:`finish` computes the indices and packs them.

    Parameters
    ----------
    first, last : datetime.date
        The period kept (the temporal grid's first and last dates).
    bands : sequence of str
        Names of the bands of each date's reflectance, in its order.
    shape : (int, int)
        ``(H, W)`` of the window.
    slots : int
        Observation slots of a pixel.
    sensor : SensorDescription
        Gives the reflectance scale and the indices.
    out : numpy.ndarray of float32, optional
        C-contiguous ``(n_features, H, W)`` array to fill.
    """

    def __init__(
        self,
        first: dt.date,
        last: dt.date,
        bands: Sequence[str],
        shape: tuple[int, int],
        slots: int,
        sensor: SensorDescription = SENTINEL2_THEIA,
        out: np.ndarray | None = None,
    ) -> None:
        self._bands = _canonical_bands(bands, sensor)
        self._indices = index_names(bands, sensor)
        self._sensor, self._shape, self._slots = sensor, shape, slots
        self._period = (first, last)
        n_rows = (len(self._bands) + len(self._indices) + 2) * slots
        if out is None:
            out = np.empty((n_rows, *shape), dtype=np.float32)
        elif out.shape != (n_rows, *shape) or out.dtype != np.float32 or not out.flags.c_contiguous:
            raise ValueError(
                f"out must be C-contiguous float32 {(n_rows, *shape)}, not {out.dtype} {out.shape}"
            )
        self._out = out
        self._dates: list[dt.date] = []
        self._reflectances: list[np.ndarray] = []
        self._valid: list[np.ndarray] = []

    def add(self, date: dt.date, reflectance: np.ndarray, invalid: np.ndarray) -> None:
        """Take in one date: ``reflectance`` ``(B, H, W)`` int16 x 10000, ``invalid`` ``(H, W)``.

        Dates outside the period are skipped; the arrays are copied, so a reader may
        reuse them.
        """
        first, last = self._period
        if not first <= date <= last:
            return
        scale = np.float32(1.0 / self._sensor.reflectance_scale)
        self._dates.append(date)
        self._reflectances.append(reflectance.astype(np.float32) * scale)
        self._valid.append(~np.asarray(invalid, dtype=bool))

    def finish(self) -> FeatureBlock:
        """Compute the indices of every observation, pack them and return the features."""
        height, width = self._shape
        n_pixels, n_dates = height * width, len(self._dates)
        n_channels = len(self._bands) + len(self._indices)
        values = np.zeros((n_channels, n_dates, n_pixels), dtype=np.float32)
        for index, reflectance in enumerate(self._reflectances):
            values[: len(self._bands), index] = reflectance.reshape(len(self._bands), n_pixels)
        if n_dates:
            _add_indices(
                values.reshape(n_channels * n_dates, height, width),
                n_dates,
                self._bands,
                self._indices,
                self._sensor,
            )
        valid = (
            np.stack(self._valid).reshape(n_dates, n_pixels)
            if n_dates
            else np.zeros((0, n_pixels), dtype=bool)
        )
        days = day_of_year_numbers(self._dates, self._period[0])
        count = pack_observations(
            values, valid, days, self._slots, self._out.reshape(len(self._out), n_pixels)
        )
        valid_count = count.reshape(height, width)
        self._reflectances.clear()
        return FeatureBlock(self._out, valid_count, valid_count > 0)


def raw_working_bytes(n_variables: int, n_dates: int) -> int:
    """Bytes per pixel :class:`RawFeatureBuilder` holds for ``n_dates`` dates (float32 values)."""
    return 4 * n_variables * n_dates * 2 + n_dates


def period_dates(dates: Sequence[dt.date], out_dates: Sequence[dt.date]) -> list[dt.date]:
    """The acquisition ``dates`` within the grid's period ``[out_dates[0], out_dates[-1]]``."""
    if not out_dates:
        return []
    first, last = out_dates[0], out_dates[-1]
    return [day for day in dates if first <= day <= last]
