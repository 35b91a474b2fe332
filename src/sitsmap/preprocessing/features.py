"""From a window of reflectances and masks to the feature array: the one place features are made.

Sampling and classification both call :func:`compute_features` (through
:func:`sitsmap.preprocessing.tile.tile_features`), so training and prediction
cannot disagree on feature order, scaling or dates.

The features of one pixel, in iota2's band-major order, for output dates
``d1 .. dn`` (names like ``sentinel2_b2_20180101``)::

    b2_d1 .. b2_dn, b3_d1 .., ..., b12_dn     gap-filled reflectances (x 1e-4), kept bands
    ndvi_d1 .. ndvi_dn                         if B4 and B8 are kept
    ndwi_d1 .. ndwi_dn                         if B8 and B11 are kept
    brightness_d1 .. brightness_dn             over the kept bands

An index whose bands are not all kept is left out (names and values alike).
Indices are computed from the gap-filled reflectances, as iota2 does.

:class:`FeatureBuilder` takes the dates one at a time, so that a reader can
stream a window's products without ever holding the whole int16 series;
:func:`compute_features` feeds it from a series already in memory. Both give
the same floats.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sitsmap.preprocessing.gapfilling import GapfillStream
from sitsmap.preprocessing.indices import brightness_into, normalized_difference_into
from sitsmap.preprocessing.temporal import EPOCH, day_numbers
from sitsmap.sensors import SENTINEL2_THEIA, SensorDescription

__all__ = [
    "INDEX_BANDS",
    "FeatureBlock",
    "FeatureBuilder",
    "compute_features",
    "feature_names",
    "feature_variables",
    "index_names",
]

INDEX_BANDS: dict[str, tuple[str, ...]] = {name: (a, b) for name, a, b in SENTINEL2_THEIA.indices}
"""Bands each Sentinel-2 normalized-difference index needs; brightness uses every kept
band. Other sensors name theirs in :attr:`SensorDescription.indices`."""


@dataclass(frozen=True)
class FeatureBlock:
    """The features of a window of pixels.

    Attributes
    ----------
    features : numpy.ndarray of float32
        ``(n_features, H, W)`` in the order of :func:`feature_names`.
    valid_count : numpy.ndarray of uint16
        ``(H, W)`` number of valid input dates of each pixel (iota2's PixelsValidity).
    has_data : numpy.ndarray of bool
        ``(H, W)``: ``valid_count > 0``; features are 0 where it is False.
    """

    features: np.ndarray
    valid_count: np.ndarray
    has_data: np.ndarray


def index_names(bands: Sequence[str], sensor: SensorDescription = SENTINEL2_THEIA) -> list[str]:
    """Return the indices computable from ``bands``, in feature order."""
    kept = {name.upper() for name in _canonical_bands(bands, sensor)}
    names = [name for name, a, b in sensor.indices if kept.issuperset({a.upper(), b.upper()})]
    return [*names, "brightness"] if kept and sensor.brightness else names


def feature_names(
    bands: Sequence[str],
    out_dates: Sequence[dt.date],
    sensor: SensorDescription = SENTINEL2_THEIA,
) -> list[str]:
    """Return the feature names, band-major like iota2: ``sentinel2_b2_20180101``, ....

    Parameters
    ----------
    bands : sequence of str
        Kept bands, in the order of the reflectance stack (the config keeps iota2's order).
    out_dates : sequence of datetime.date
        The gap-filled dates (or day numbers).
    sensor : SensorDescription
        Gives the prefix and the bands' names.

    Returns
    -------
    list of str
        ``len(bands) + len(indices)`` blocks of ``len(out_dates)`` names; 481 for the
        10 bands over 2018 every 10 days.
    """
    stamps = [_date_stamp(day) for day in day_numbers(out_dates)]
    variables = feature_variables(bands, sensor)
    return [f"{sensor.name}_{variable}_{stamp}" for variable in variables for stamp in stamps]


def feature_variables(
    bands: Sequence[str], sensor: SensorDescription = SENTINEL2_THEIA
) -> list[str]:
    """Return the variables of a date's features: the bands' feature names, then the indices."""
    variables = [sensor.band(name).feature_name for name in _canonical_bands(bands, sensor)]
    return variables + index_names(bands, sensor)


class FeatureBuilder:
    """Build the features of a window from its dates, given one at a time in date order.

    Parameters
    ----------
    out_dates : sequence of datetime.date or day numbers
        The regular output grid.
    bands : sequence of str
        Names of the bands of each date's reflectance, in its order.
    shape : (int, int)
        ``(H, W)`` of the window.
    sensor : SensorDescription
        Gives the reflectance scale.
    out : numpy.ndarray of float32, optional
        C-contiguous ``(n_features, H, W)`` array to fill, e.g. reused from one window to
        the next of a streamed tile (memory already touched is much faster to write).
    """

    def __init__(
        self,
        out_dates: Sequence[dt.date] | np.ndarray,
        bands: Sequence[str],
        shape: tuple[int, int],
        sensor: SensorDescription = SENTINEL2_THEIA,
        out: np.ndarray | None = None,
    ) -> None:
        self._bands = _canonical_bands(bands, sensor)
        self._indices = index_names(bands, sensor)
        self._sensor = sensor
        out_days = day_numbers(out_dates)
        self._n_out = len(out_days)
        n_rows = (len(self._bands) + len(self._indices)) * self._n_out
        if out is None:
            out = np.empty((n_rows, *shape), dtype=np.float32)
        elif out.shape != (n_rows, *shape) or out.dtype != np.float32 or not out.flags.c_contiguous:
            raise ValueError(
                f"out must be C-contiguous float32 {(n_rows, *shape)}, not {out.dtype} {out.shape}"
            )
        self._features = out
        # The gap-filling writes the band-major reflectance rows, then the index rows, through
        # (T_out, B, H, W) and (T_out, n_indices, H, W) views; it computes each output
        # date's indices as it writes its bands.
        by_date = self._features.reshape(-1, self._n_out, *shape).transpose(1, 0, 2, 3)
        n_bands = len(self._bands)
        self._stream = GapfillStream(
            out_days,
            by_date[:, :n_bands],
            scale=1.0 / sensor.reflectance_scale,
            derived=by_date[:, n_bands:],
            derived_from=_index_pairs(self._bands, self._indices, sensor),
        )
        self._valid = np.empty(shape, dtype=bool)

    def add(self, date: dt.date | float, reflectance: np.ndarray, invalid: np.ndarray) -> None:
        """Take in one date: ``reflectance`` ``(B, H, W)`` int16 x 10000, ``invalid`` ``(H, W)``.

        The arrays are not kept: a reader may reuse them for the next date.
        """
        np.logical_not(invalid, out=self._valid)
        self._stream.add(float(day_numbers([date])[0]), reflectance, self._valid)

    def add_series(
        self, dates: Sequence[dt.date] | np.ndarray, reflectance: np.ndarray, invalid: np.ndarray
    ) -> None:
        """Take in several dates at once: ``(T, B, H, W)`` and ``(T, H, W)``, like :meth:`add`."""
        self._stream.add_series(day_numbers(dates), reflectance, ~invalid)

    def finish(self) -> FeatureBlock:
        """Complete the gap-filling (and the indices with it) and return the features."""
        counts = self._stream.finish()
        return FeatureBlock(self._features, counts, counts > 0)


def compute_features(
    reflectance: np.ndarray,
    invalid: np.ndarray,
    dates: Sequence[dt.date] | np.ndarray,
    out_dates: Sequence[dt.date] | np.ndarray,
    bands: Sequence[str],
    sensor: SensorDescription = SENTINEL2_THEIA,
) -> FeatureBlock:
    """Gap-fill a window of reflectances onto ``out_dates`` and add the spectral indices.

    Parameters
    ----------
    reflectance : numpy.ndarray of int16
        ``(T, B, H, W)`` reflectance x 10000 of ``bands`` at ``dates``.
    invalid : numpy.ndarray of bool
        ``(T, H, W)``: True where an observation is cloudy, outside the swath or no-data.
    dates, out_dates : sequence of datetime.date or day numbers
        Input acquisition dates (sorted) and the regular output grid.
    bands : sequence of str
        Names of the B bands of ``reflectance``, in its order.
    sensor : SensorDescription
        Gives the reflectance scale.

    Returns
    -------
    FeatureBlock
        Features in the order of :func:`feature_names`.
    """
    n_dates, n_bands, height, width = reflectance.shape
    if invalid.shape != (n_dates, height, width) or len(bands) != n_bands or len(dates) != n_dates:
        raise ValueError(
            f"reflectance {reflectance.shape}, invalid {invalid.shape}, {len(dates)} dates "
            f"and {len(bands)} band names disagree"
        )
    builder = FeatureBuilder(out_dates, bands, (height, width), sensor)
    builder.add_series(dates, reflectance, invalid)
    return builder.finish()


def _index_pairs(
    bands: list[str], names: list[str], sensor: SensorDescription
) -> list[tuple[int, int]]:
    """Each index's band positions as :class:`GapfillStream` takes them; (-1, -1): brightness."""
    position = {name.upper(): block for block, name in enumerate(bands)}
    pairs = {name: (a.upper(), b.upper()) for name, a, b in sensor.indices}
    return [
        (position[pairs[name][0]], position[pairs[name][1]]) if name in pairs else (-1, -1)
        for name in names
    ]


def _add_indices(
    features: np.ndarray,
    n_out: int,
    bands: list[str],
    names: list[str],
    sensor: SensorDescription,
) -> None:
    """Fill the index rows that follow the band rows of ``features``, in place."""

    def rows(block: int) -> np.ndarray:
        return features[block * n_out : (block + 1) * n_out]

    position = {name.upper(): block for block, name in enumerate(bands)}
    pairs = {name: (a.upper(), b.upper()) for name, a, b in sensor.indices}
    for offset, name in enumerate(names, start=len(bands)):
        if name in pairs:  # (a - b) / (a + b)
            a, b = pairs[name]
            normalized_difference_into(rows(position[a]), rows(position[b]), rows(offset))
        else:
            band_rows = features[: len(bands) * n_out].reshape(len(bands), n_out, -1)
            brightness_into(band_rows, rows(offset).reshape(n_out, -1))


def _canonical_bands(bands: Sequence[str], sensor: SensorDescription) -> list[str]:
    try:
        canonical = [sensor.band(name).name for name in bands]
    except KeyError as exc:
        raise ValueError(f"unknown {sensor.name} band {exc}; known: {sensor.band_names}") from None
    if len(set(canonical)) != len(canonical):
        raise ValueError(f"a band is listed twice in {list(bands)}")
    return canonical


def _date_stamp(day: float) -> str:
    return (EPOCH + dt.timedelta(days=int(day))).strftime("%Y%m%d")
