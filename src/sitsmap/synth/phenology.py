"""Class-specific phenology: how much of a parcel is green, dry or in flower on a day.

Curves are double logistics of the day of the year (rise at green-up, fall
at senescence), shifted per parcel (sowing dates vary by a week or so) and
along the regional gradient (up to :data:`GRADIENT_DAYS` later in the
north-east), and scaled per parcel (sparse or dense canopies). Winter crops
are sown in autumn, green in winter and spring and harvested in June-July;
summer crops grow from May to October; grasslands are mown; deciduous
forests lose their leaves; water is never green.

Eco-regions (:mod:`sitsmap.synth.regions`) shift every curve by weeks
(:data:`REGION_DELAY_DAYS`), thin or thicken canopies
(:data:`REGION_CANOPY`) and grow other varieties of some crops
(:data:`REGION_VARIETIES`); region 0 changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

GRADIENT_DAYS = 35.0
"""Phenology delay (days) from the south-west to the north-east of the region."""
GRADIENT_AMPLITUDE = 0.2
"""Relative loss of green cover from the south-west to the north-east."""
REGION_DELAY_DAYS = (0.0, 35.0, -28.0, 7.0)
"""Phenology delay of each eco-region (r1 to r4, days), on top of the gradient:
neighbouring regions differ by 5 weeks or more (r2 greens up 5 weeks after r1,
r3 9 weeks before r2, r4 5 weeks after r3)."""
REGION_CANOPY = (1.0, 0.85, 0.9, 1.1)
"""Canopy density factor of each eco-region (r1 to r4): sparser in r2 and r3, denser in r4."""

Array = np.ndarray
Cover = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Green, dry and flower fractions."""
Curve = Callable[[Array, Array, Array, Array], Cover]
"""A class's cover curve: (days, amplitude, variant, variant2) -> cover."""


@dataclass(frozen=True)
class CoverFractions:
    """Per-parcel fractions of green vegetation, dry matter and flowers (the rest is ground)."""

    green: np.ndarray
    dry: np.ndarray
    flower: np.ndarray


@dataclass(frozen=True)
class CropCalendar:
    """Days of the year of a crop's season (negative: sown the previous autumn).

    Attributes
    ----------
    emergence : float
        Winter crops: day the autumn cover appears (relative to the harvest year).
    winter_cover : float
        Green cover through the winter (0 for spring and summer crops).
    green_up, senescence, harvest : float
        Mid-points of the spring rise, of the fall and day of harvest.
    peak : float
        Maximum green cover.
    dry_share : float
        Share of the peak that turns into dry matter before harvest.
    """

    emergence: float
    winter_cover: float
    green_up: float
    senescence: float
    harvest: float
    peak: float
    dry_share: float = 0.7


CALENDARS: dict[int, CropCalendar] = {
    5: CropCalendar(-115, 0.55, 55, 150, 185, 0.9, 0.75),  # rapeseed
    6: CropCalendar(-50, 0.3, 80, 165, 195, 0.88, 0.85),  # straw cereals
    7: CropCalendar(0, 0.0, 100, 160, 182, 0.75, 0.7),  # protein crops (spring peas)
    8: CropCalendar(0, 0.0, 185, 257, 282, 0.85, 0.6),  # soy
    9: CropCalendar(0, 0.0, 150, 215, 252, 0.72, 0.9),  # sunflower
    10: CropCalendar(0, 0.0, 172, 255, 288, 0.95, 0.75),  # maize
    12: CropCalendar(0, 0.0, 145, 278, 298, 0.9, 0.4),  # tubers / roots (sugar beet)
}

_LATE_VARIETIES: Mapping[int, CropCalendar] = {
    6: CropCalendar(0, 0.0, 65, 125, 147, 0.88, 0.7),  # spring cereals
    7: CropCalendar(-85, 0.35, 45, 130, 160, 1.0, 0.85),  # winter peas
    9: CropCalendar(0, 0.0, 137, 220, 253, 1.1, 0.75),  # early, dense sunflower
    10: CropCalendar(0, 0.0, 115, 180, 217, 0.85, 0.9),  # short-cycle maize
}
REGION_VARIETIES: tuple[Mapping[int, CropCalendar], ...] = (
    {},
    _LATE_VARIETIES,
    {},
    _LATE_VARIETIES,
)
"""Crop calendars of each eco-region (r1 to r4) that differ from :data:`CALENDARS`.

r2 and r4 grow spring cereals, winter peas, an early dense sunflower and a
short-cycle maize. Once 5 weeks late and 15 % sparser (r2's
:data:`REGION_DELAY_DAYS` and :data:`REGION_CANOPY`), they look like r1's
spring peas, winter cereals, maize and sunflower: each class of the pairs
cereals-peas and maize-sunflower in one region looks like the other in the
other region, which one model for both regions cannot tell apart.
"""

TIMING_SPREAD_DAYS = {
    5: 5.0,
    6: 6.0,
    7: 6.0,
    8: 6.0,
    9: 6.0,
    10: 6.0,
    12: 6.0,
    13: 6.0,
    14: 5.0,
    15: 5.0,
    16: 4.0,
    17: 4.0,
    18: 8.0,
    19: 6.0,
}
"""Standard deviation of a parcel's phenology shift, per class (days); 5 if not listed."""


def day_of_year(date: dt.date) -> float:
    """Days since the 1st of January of ``date``'s year."""
    return float((date - dt.date(date.year, 1, 1)).days)


def _rise(t: np.ndarray, middle: float, days: float) -> np.ndarray:
    return expit((t - middle) / days)


def _season(
    t: np.ndarray, start: float, end: float, rise: float = 7.0, fall: float = 8.0
) -> np.ndarray:
    return _rise(t, start, rise) - _rise(t, end, fall)


def _bump(t: np.ndarray, middle: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((t - middle) / width) ** 2)


def _leaves(t: np.ndarray) -> np.ndarray:
    """Deciduous leaf cover: out in late April, fallen by early November."""
    return _season(t, 112.0, 298.0, 6.0, 9.0)


def crop_cover(calendar: CropCalendar, t: Array, amplitude: Array, catch_crop: Array) -> Cover:
    """Green and dry cover of an annual crop (with next autumn's emergence for winter crops)."""
    peak = calendar.peak * amplitude
    winter = calendar.winter_cover * amplitude
    green = (
        winter * _rise(t, calendar.emergence, 12.0)
        + (peak - winter) * _rise(t, calendar.green_up, 9.0)
        - peak * _rise(t, calendar.senescence, 8.0)
        + winter * _rise(t - 365.0, calendar.emergence, 12.0)
    )
    standing = _rise(t, calendar.senescence, 8.0) - _rise(t, calendar.harvest, 3.0)
    stubble = _rise(t, calendar.harvest, 3.0) * _rise(-t, -(calendar.harvest + 45.0), 6.0)
    dry = calendar.dry_share * peak * standing + 0.3 * stubble
    if calendar.winter_cover == 0.0:  # a catch crop left from last autumn on some parcels
        green = green + 0.2 * catch_crop * _rise(-t, -50.0, 6.0)
    return np.clip(green, 0.0, 1.0), dry, np.zeros_like(green)


def _rapeseed(t: Array, amplitude: Array, variant: Array, variant2: Array) -> Cover:
    green, dry, _ = crop_cover(CALENDARS[5], t, amplitude, variant2 < 0.0)
    flower = 0.45 * _bump(t, 108.0, 10.0)
    return green * (1.0 - flower), dry, flower


def _crop(code: int) -> Curve:
    def curve(t: Array, amplitude: Array, variant: Array, variant2: Array) -> Cover:
        return crop_cover(CALENDARS[code], t, amplitude, variant2 < 0.3)

    return curve


def _grassland(t: Array, amplitude: Array, variant: Array, variant2: Array) -> Cover:
    base = amplitude * (0.55 + 0.3 * _bump(t, 130.0, 55.0) - 0.15 * _bump(t, 220.0, 25.0))
    first_cut = 138.0 + 24.0 * (variant - 0.5)
    cuts = ((first_cut, 1.0), (first_cut + 50.0, 1.0), (first_cut + 105.0, variant2 > 0.4))
    mown = sum(
        weight * 0.55 * _rise(t, cut, 1.5) * np.exp(-np.maximum(t - cut, 0.0) / 22.0)
        for cut, weight in cuts
    )
    mown = np.minimum(mown, 0.8)
    return base * (1.0 - mown), 0.3 * mown + 0.1 * _bump(t, 220.0, 30.0), np.zeros_like(t)


def _orchard(t: Array, amplitude: Array, variant: Array, variant2: Array) -> Cover:
    green = amplitude * (0.3 + 0.1 * _bump(t, 130.0, 50.0) + 0.42 * _season(t, 105.0, 300.0))
    return green, np.full_like(t, 0.1), 0.15 * _bump(t, 100.0, 6.0)


def _vineyard(t: Array, amplitude: Array, variant: Array, variant2: Array) -> Cover:
    green = amplitude * (0.06 + 0.4 * _season(t, 140.0, 290.0, 8.0, 10.0))
    dry = 0.08 + 0.12 * _season(t, 265.0, 320.0)
    return green, dry, np.zeros_like(t)


def _broadleaf(t: Array, amplitude: Array, variant: Array, variant2: Array) -> Cover:
    leaves = _leaves(t)
    green = amplitude * (0.2 + 0.72 * leaves)
    return green, 0.05 + 0.55 * (1.0 - leaves) + 0.15 * _bump(t, 295.0, 10.0), np.zeros_like(t)


def _conifer(t: Array, amplitude: Array, variant: Array, variant2: Array) -> Cover:
    return amplitude * (0.72 + 0.1 * _bump(t, 180.0, 60.0)), np.full_like(t, 0.2), np.zeros_like(t)


def _natural_grassland(t: Array, amplitude: Array, variant: Array, variant2: Array) -> Cover:
    green = amplitude * (0.3 + 0.4 * _bump(t, 125.0, 45.0) + 0.12 * _bump(t, 290.0, 30.0))
    return green, 0.15 + 0.35 * _bump(t, 215.0, 35.0), np.zeros_like(t)


def _moorland(t: Array, amplitude: Array, variant: Array, variant2: Array) -> Cover:
    return amplitude * (0.42 + 0.15 * _bump(t, 175.0, 60.0)), np.full_like(t, 0.3), np.zeros_like(t)


def _mineral(t: Array, amplitude: Array, variant: Array, variant2: Array) -> Cover:
    return 0.03 + 0.03 * _bump(t, 140.0, 40.0), np.full_like(t, 0.05), np.zeros_like(t)


def _water(t: Array, amplitude: Array, variant: Array, variant2: Array) -> Cover:
    return 0.005 + 0.03 * variant * _bump(t, 210.0, 40.0), np.zeros_like(t), np.zeros_like(t)


def _urban_core(t: Array, amplitude: Array, variant: Array, variant2: Array) -> Cover:
    return 0.06 + 0.04 * _leaves(t), np.full_like(t, 0.02), np.zeros_like(t)


def _suburb(t: Array, amplitude: Array, variant: Array, variant2: Array) -> Cover:
    leaves = _leaves(t)
    return 0.22 + 0.15 * leaves, 0.05 + 0.1 * (1.0 - leaves), np.zeros_like(t)


def _industrial(t: Array, amplitude: Array, variant: Array, variant2: Array) -> Cover:
    return np.full_like(t, 0.04), np.zeros_like(t), np.zeros_like(t)


def _road(t: Array, amplitude: Array, variant: Array, variant2: Array) -> Cover:
    return 0.12 + 0.06 * _leaves(t), np.full_like(t, 0.05), np.zeros_like(t)


CURVES: dict[int, Curve] = {
    1: _urban_core,
    2: _suburb,
    3: _industrial,
    4: _road,
    5: _rapeseed,
    **{code: _crop(code) for code in (6, 7, 8, 9, 10, 12)},
    13: _grassland,
    14: _orchard,
    15: _vineyard,
    16: _broadleaf,
    17: _conifer,
    18: _natural_grassland,
    19: _moorland,
    20: _mineral,
    23: _water,
}
"""Cover curve of every class the world holds (11, 21 and 22 are absent)."""


def phenology_shift(
    code: np.ndarray,
    gradient: np.ndarray,
    timing: np.ndarray,
    region: np.ndarray | None = None,
) -> np.ndarray:
    """Days by which each parcel's phenology is late.

    Parameters
    ----------
    code : numpy.ndarray
        Class of each parcel (sets the spread of its own timing).
    gradient : numpy.ndarray
        Position along the regional gradient (up to :data:`GRADIENT_DAYS` late).
    timing : numpy.ndarray
        Standard normal draw per parcel.
    region : numpy.ndarray, optional
        Eco-region index per parcel (:data:`REGION_DELAY_DAYS`); ``None``: region 0.

    Returns
    -------
    numpy.ndarray
        The delay of each parcel (days, negative: early).
    """
    spread = np.array([TIMING_SPREAD_DAYS.get(c, 5.0) for c in range(256)], dtype=np.float32)
    shift = GRADIENT_DAYS * gradient + spread[code] * timing
    if region is None:
        return shift
    return shift + np.asarray(REGION_DELAY_DAYS, dtype=shift.dtype)[region]


def canopy_amplitude(
    gradient: np.ndarray, draw: np.ndarray, region: np.ndarray | None = None
) -> np.ndarray:
    """Relative density of each parcel's vegetation (regional trend, eco-region, own draw).

    ``region`` (eco-region index per parcel, see :data:`REGION_CANOPY`) is
    optional: ``None`` is region 0.
    """
    amplitude = (1.0 - GRADIENT_AMPLITUDE * gradient) * (0.9 + 0.12 * draw)
    if region is None:
        return amplitude
    return amplitude * np.asarray(REGION_CANOPY, dtype=amplitude.dtype)[region]


def _curve(code: int, region: int) -> Curve:
    """The cover curve of a class in an eco-region (its variety's calendar, if any)."""
    calendar = REGION_VARIETIES[region].get(code)
    if calendar is None:
        return CURVES[code]

    def curve(t: Array, amplitude: Array, variant: Array, variant2: Array) -> Cover:
        return crop_cover(calendar, t, amplitude, variant2 < 0.3)

    return curve


def cover_fractions(
    code: np.ndarray,
    doy: float,
    shift: np.ndarray,
    amplitude: np.ndarray,
    variant: np.ndarray,
    variant2: np.ndarray,
    region: np.ndarray | None = None,
) -> CoverFractions:
    """Green, dry and flower fractions of parcels on day ``doy`` of the year.

    Parameters
    ----------
    code : numpy.ndarray
        Class of each parcel.
    doy : float
        Day of the year of the acquisition.
    shift : numpy.ndarray
        Phenology delay of each parcel (days), see :func:`phenology_shift`.
    amplitude : numpy.ndarray
        Vegetation density of each parcel, see :func:`canopy_amplitude`.
    variant, variant2 : numpy.ndarray
        Uniform draws for class-specific options (mowing dates, catch crops).
    region : numpy.ndarray, optional
        Eco-region index of each parcel: its crops follow the region's
        varieties (:data:`REGION_VARIETIES`). ``None``: region 0.

    Returns
    -------
    CoverFractions
        float32 arrays; green + dry + flower never exceeds 1.
    """
    t = (doy - shift).astype(np.float64)
    region = np.zeros(code.shape, np.intp) if region is None else region.astype(np.intp)
    kind = code.astype(np.intp) * len(REGION_VARIETIES) + region
    green, dry, flower = (np.zeros(code.shape, np.float64) for _ in range(3))
    for value in np.unique(kind):
        rows = kind == value
        curve = _curve(*divmod(int(value), len(REGION_VARIETIES)))
        g, d, f = curve(t[rows], amplitude[rows].astype(np.float64), variant[rows], variant2[rows])
        green[rows], dry[rows], flower[rows] = g, d, f
    green = np.clip(green, 0.0, 1.0)
    dry = np.clip(dry, 0.0, 1.0 - green)
    flower = np.clip(flower, 0.0, 1.0 - green - dry)
    return CoverFractions(
        green.astype(np.float32), dry.astype(np.float32), flower.astype(np.float32)
    )
