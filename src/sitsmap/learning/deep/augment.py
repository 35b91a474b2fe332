"""Data augmentation of the networks' mini-batches: jitter, date dropout, time shift.

Every transform is a pure function of a mini-batch of flat feature rows, the
:class:`~sitsmap.learning.deep.layout.TemporalLayout` that says how a row holds a
time series, and a :class:`torch.Generator` that alone supplies the randomness (so
the shuffling, the initial weights and the networks' dropout draw what they drew
without augmentation). The trainer applies :func:`augment` to the training batches
only, never to the monitoring evaluation or to ``predict``.

* **jitter**: Gaussian noise of standard deviation ``σ`` (in units of each
  feature's standard deviation) on the channel values of the valid dates, never on
  the raw layout's days or validity flags;
* **date dropout**: each valid date dropped with probability ``p``, at least one
  kept per sample. Raw dates: the observation is removed and the others packed
  again in date order, as the row would read had the sensor missed it (validity 0
  and value and day 0 in the freed last slot). Gap-filled grid: the date's values
  become the linear interpolation, over the days, between the nearest kept dates
  (the nearest kept date at the edges): what gap-filling gives without it;
* **time shift**: a per-sample shift drawn uniformly among the whole days of
  ``[-k, k]``. Raw dates: added to the days of the valid observations. Gap-filled
  grid: the series moves by ``round(shift / step)`` grid dates, the edge dates
  repeated; only when ``k`` is at least one grid step ``step`` (and the grid's days
  are known): :func:`ineffective_time_shift` says when it is not.

Date dropout and time shift act on the values before standardisation (a gap-filled
date's value, not its standardised anomaly, is interpolated or moved); the rows stay
standardised for the caller.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from sitsmap.errors import ConfigError, InputDataError
from sitsmap.learning.deep.layout import RAW_SLOT, VALID_VARIABLE, TemporalLayout, is_raw

__all__ = [
    "AUGMENTATION_SEED",
    "AUTOMATIC",
    "Augmentation",
    "augment",
    "date_dropout",
    "grid_shift_steps",
    "ineffective_time_shift",
    "jitter",
    "layout_of",
    "time_shift",
]

AUGMENTATION_SEED = 0x5EED
"""Added to the trainer's seed for the augmentation's generator: its draws differ from
the shuffling's, whose generator has the seed itself."""

_DATED_NAME = re.compile(r"^(?P<variable>.+)_(?P<date>\d{8})$")
"""A gap-filled feature name ``<sensor>_<variable>_<YYYYMMDD>``."""


@dataclass(frozen=True)
class Augmentation:
    """How the training mini-batches are augmented; all zero: not at all.

    Attributes
    ----------
    jitter : float
        Standard deviation of the Gaussian noise, in units of each feature's
        standard deviation (the standardised features').
    date_dropout : float
        Probability that a date is dropped, in ``[0, 1)``.
    time_shift : float
        Largest time shift ``k`` in days; shifts are whole days of ``[-k, k]``.
    """

    jitter: float = 0.0
    date_dropout: float = 0.0
    time_shift: float = 0.0

    def __post_init__(self) -> None:
        if self.jitter < 0 or self.time_shift < 0 or not 0 <= self.date_dropout < 1:
            raise ConfigError(
                f"augmentation needs jitter >= 0, 0 <= date_dropout < 1 and time_shift >= 0; "
                f"got {self}"
            )

    @property
    def enabled(self) -> bool:
        """Whether any transform is on."""
        return self.jitter > 0 or self.date_dropout > 0 or self.time_shift > 0

    @classmethod
    def resolve(cls, given: Mapping[str, float | None] | None, automatic: bool) -> Augmentation:
        """Return the settings of ``given``, those unset (None) filled in.

        Parameters
        ----------
        given : mapping, optional
            ``jitter``, ``date_dropout``, ``time_shift``; a missing or None value is unset.
        automatic : bool
            Whether the learning rate is automatic: unset values then take
            :data:`AUTOMATIC`'s, else 0 (settings given train as before augmentation).

        Raises
        ------
        ConfigError
            On an unknown key or a value out of range.
        """
        given = dict(given or {})
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ConfigError(f"unknown augmentation settings {unknown}; known: {names}")
        defaults = AUTOMATIC if automatic else cls()
        return cls(
            **{
                name: float(getattr(defaults, name) if given.get(name) is None else given[name])
                for name in names
            }
        )


AUTOMATIC = Augmentation()
"""The augmentation when the learning rate is automatic and the settings are unset: none.

Measured with ``bench/learners.py`` (real 31UDS patch, small synthetic world, grouped
folds): jitter 0.03, date dropout 0.2 and a 10-day shift together cost MLPClassifier
2.1 and 7.9 OA points and TempCNN 2.5 and 1.3; alone, none helped both networks on both
datasets, and the one gain (TempCNN with the shift) did not hold with another seed."""


# ----------------------------------------------------------------------------- layout


def layout_of(
    n_features: int,
    n_dates: int | None,
    day_of_year: Sequence[float] | None = None,
    feature_names: Sequence[str] | None = None,
) -> TemporalLayout | None:
    """Return the time-series layout of rows of ``n_features`` features, or None if unknown.

    Without a layout only jitter applies (to every feature). The layout is unknown
    when the number of dates is, when the features do not split into whole series
    (several sensors, static features), or when dated names are not one grid, band
    by band.
    """
    raw = is_raw(feature_names)
    if raw and not n_dates and feature_names is not None:
        matches = (RAW_SLOT.match(str(name)) for name in feature_names)
        n_dates = sum(bool(m) and m["variable"].endswith(f"_{VALID_VARIABLE}") for m in matches)
    n_dates = n_dates or (len(day_of_year) if day_of_year is not None else None)
    if not n_dates:
        return None
    if not raw and feature_names is not None and not _one_band_major_grid(feature_names, n_dates):
        return None
    try:
        return TemporalLayout.of(n_features, n_dates, raw, None if raw else day_of_year)
    except InputDataError:
        return None


def _one_band_major_grid(names: Sequence[str], n_dates: int) -> bool:
    """Whether ``names`` may be one band-major grid of ``n_dates`` dates.

    Names without date stamps cannot be checked and pass; dated names pass when every
    variable holds the same ``n_dates`` dates in a row.
    """
    matches = [_DATED_NAME.match(str(name)) for name in names]
    if not all(matches):
        return True
    if len(matches) % n_dates:
        return False
    variables = np.array([m["variable"] for m in matches]).reshape(-1, n_dates)
    dates = np.array([m["date"] for m in matches]).reshape(-1, n_dates)
    return bool((variables == variables[:, :1]).all() and (dates == dates[:1]).all())


# ------------------------------------------------------------------------- transforms


def augment(
    x: torch.Tensor,
    layout: TemporalLayout | None,
    settings: Augmentation,
    generator: torch.Generator,
    mean: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Return the mini-batch ``x`` augmented: date dropout, time shift, then jitter.

    Parameters
    ----------
    x : Tensor
        Standardised rows ``(batch, n_features)``: ``(row - mean) / scale``.
    layout : TemporalLayout, optional
        How a row holds a time series; None: only jitter, on every feature.
    settings : Augmentation
        The transforms; ``x`` itself is returned when none is on.
    generator : torch.Generator
        Source of every random draw, on ``x``'s device.
    mean, scale : Tensor, optional
        The standardisation of ``x`` per feature; None: ``x`` holds the values themselves.

    Returns
    -------
    Tensor
        A new tensor (``x`` is not modified), or ``x`` when nothing changed it.
    """
    if not settings.enabled:
        return x
    if layout is None:
        return jitter(x, None, settings.jitter, generator)
    values = x if mean is None or scale is None else x * scale + mean
    moved = time_shift(
        date_dropout(values, layout, settings.date_dropout, generator),
        layout,
        settings.time_shift,
        generator,
    )
    if moved is not values:  # only the change is standardised: unchanged features stay exact
        x = x + (moved - values) if scale is None else x + (moved - values) / scale
    return x + _noise(moved, layout, settings.jitter, generator) if settings.jitter > 0 else x


def jitter(
    x: torch.Tensor, layout: TemporalLayout | None, sigma: float, generator: torch.Generator
) -> torch.Tensor:
    """Add Gaussian noise of standard deviation ``sigma`` to the channel values of valid dates.

    The raw layout's days and validity flags, and the values of its invalid slots,
    are left alone; without a layout every feature gets noise.
    """
    if sigma <= 0:
        return x
    return x + _noise(x, layout, sigma, generator)


def _noise(
    x: torch.Tensor, layout: TemporalLayout | None, sigma: float, generator: torch.Generator
) -> torch.Tensor:
    """The noise :func:`jitter` adds to ``x`` (zero where it adds none)."""
    if sigma <= 0:
        return torch.zeros_like(x)
    if layout is None:
        return sigma * _randn(x.shape, x, generator)
    noise = sigma * _randn((x.shape[0], layout.n_channels, layout.n_dates), x, generator)
    if layout.raw:
        noise = noise * layout.split(x)[2][:, None, :]
    rest = torch.zeros(x.shape[0], x.shape[1] - layout.n_values, dtype=x.dtype, device=x.device)
    return torch.cat([noise.reshape(x.shape[0], layout.n_values), rest], dim=1)


def date_dropout(
    x: torch.Tensor, layout: TemporalLayout | None, p: float, generator: torch.Generator
) -> torch.Tensor:
    """Drop each valid date with probability ``p``, keeping at least one per sample.

    Raw layout: the kept observations are packed again in date order, the freed
    slots zeroed (value, day and validity 0). Gap-filled grid: a dropped date's values
    are linearly interpolated, over the grid's days, between the nearest kept dates
    (at the edges, the nearest kept date's values). ``x`` holds values, not
    standardised ones, for the interpolation to be gap-filling's.
    """
    if p <= 0 or layout is None:
        return x
    series, days, valid = layout.split(x)
    drop = (_rand(valid.shape, x, generator) < p) & valid
    rescue = torch.where(valid, _rand(valid.shape, x, generator), -1.0).argmax(dim=1)
    kept = valid & ~drop
    lost = valid.any(dim=1) & ~kept.any(dim=1)
    # a sample that lost every date keeps one (a mask, not indexing: no device sync)
    kept = kept | (torch.nn.functional.one_hot(rescue, layout.n_dates).bool() & lost[:, None])
    if layout.raw:
        return layout.join(*_pack(series, days, kept))
    return layout.join(_interpolate(series, _grid_days(layout, x), kept), days, valid)


def time_shift(
    x: torch.Tensor, layout: TemporalLayout | None, days: float, generator: torch.Generator
) -> torch.Tensor:
    """Shift each sample by a whole number of days drawn uniformly in ``[-days, days]``.

    Raw layout: the shift is added to the day of every valid observation. Gap-filled
    grid: the series moves by ``round(shift / step)`` grid dates (later when the shift
    is positive), the edge dates repeated; nothing happens when ``days`` is less than
    the grid's step or the grid's days are unknown.
    """
    limit = int(days)
    if limit < 1 or layout is None:
        return x
    series, day, valid = layout.split(x)
    shift = torch.randint(
        -limit, limit + 1, (x.shape[0],), generator=generator, device=x.device
    ).to(x.dtype)
    if layout.raw:
        return layout.join(series, torch.where(valid, day + shift[:, None], day), valid)
    most = grid_shift_steps(days, layout)
    if most < 1:
        return x
    step = _grid_step(layout)
    dates = torch.round(shift / step).clamp(-most, most).long()
    source = (torch.arange(layout.n_dates, device=x.device) - dates[:, None]).clamp(
        0, layout.n_dates - 1
    )
    return layout.join(_take(series, source), day, valid)


def grid_shift_steps(days: float, layout: TemporalLayout) -> int:
    """Return the most whole grid steps a time shift of up to ``days`` moves a gap-filled series.

    0 when ``days`` is below the grid's step (the median gap between its dates),
    or when the grid's days are unknown or it has a single date.
    """
    if layout.raw or layout.day_of_year is None or layout.n_dates < 2:
        return 0
    return int(int(days) // _grid_step(layout))


def ineffective_time_shift(settings: Augmentation, layout: TemporalLayout | None) -> str:
    """Return why ``settings.time_shift`` cannot move a gap-filled series, or ``""``.

    A gap-filled grid's series move by whole grid steps: a shift below the step
    rounds to 0 steps and the augmentation does nothing. Raw dates shift by days
    and are never reported; nor are rows without a known layout (only jitter
    applies to them, see :func:`layout_of`).
    """
    if settings.time_shift <= 0 or layout is None or layout.raw:
        return ""
    if grid_shift_steps(settings.time_shift, layout) >= 1:
        return ""
    shift = f"augmentation.time_shift is {settings.time_shift:g} days"
    if layout.day_of_year is None or layout.n_dates < 2:
        return f"{shift} but the temporal grid's days are unknown: no time shift is applied"
    step = _grid_step(layout)
    return (
        f"{shift}, below the temporal grid's step of {step:g} days: a gap-filled series shifts "
        f"by whole grid steps only, so every shift rounds to 0 and none is applied; set "
        f"time_shift to at least {step:g} days, or to 0"
    )


# ------------------------------------------------------------------------------ helpers


def _grid_step(layout: TemporalLayout) -> float:
    """The gap-filled grid's step in days: the median gap between its (unwrapped) dates."""
    return float(np.median(np.diff(_unwrapped_days(layout))))


def _rand(shape: Sequence[int], like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Uniform draws in [0, 1) of ``like``'s dtype and device."""
    return torch.rand(tuple(shape), generator=generator, dtype=like.dtype, device=like.device)


def _randn(shape: Sequence[int], like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Standard normal draws of ``like``'s dtype and device."""
    return torch.randn(tuple(shape), generator=generator, dtype=like.dtype, device=like.device)


@functools.lru_cache(maxsize=8)
def _unwrapped_days(layout: TemporalLayout) -> np.ndarray:
    """The gap-filled grid's days, increasing: a grid over a new year counts on past 365."""
    days = np.asarray(
        layout.day_of_year if layout.day_of_year is not None else range(layout.n_dates), float
    )
    wrapped = np.concatenate([[0.0], np.cumsum(np.diff(days) <= 0)]) * 365.0
    days = days + wrapped
    days.flags.writeable = False  # shared by every call through the cache
    return days


def _grid_days(layout: TemporalLayout, like: torch.Tensor) -> torch.Tensor:
    """:func:`_unwrapped_days` as a tensor of ``like``'s dtype and device."""
    return torch.tensor(_unwrapped_days(layout), dtype=like.dtype, device=like.device)


def _take(series: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``series[b, index[b, t], :]`` for a series ``(b, T, C)`` and an index ``(b, T)``."""
    return series.gather(1, index[:, :, None].expand(-1, -1, series.shape[2]))


def _interpolate(series: torch.Tensor, days: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
    """Replace the dates not ``kept`` by linear interpolation between the nearest kept ones.

    Parameters
    ----------
    series : Tensor
        ``(b, T, C)`` values.
    days : Tensor
        ``(T,)`` increasing days of the dates.
    kept : Tensor
        ``(b, T)`` boolean, at least one True per row.
    """
    n_dates = series.shape[1]
    index = torch.arange(n_dates, device=series.device).expand_as(kept)
    before = torch.where(kept, index, -1).cummax(dim=1).values
    after_flipped = torch.where(kept.flip(1), index, -1).cummax(dim=1).values.flip(1)
    after = torch.where(after_flipped >= 0, n_dates - 1 - after_flipped, -1)
    before = torch.where(before >= 0, before, after)  # edges: the nearest kept date
    after = torch.where(after >= 0, after, before)
    span = days[after] - days[before]
    weight = torch.where(span > 0, (days - days[before]) / span.clamp(min=1e-12), 0.0)
    start, end = _take(series, before), _take(series, after)
    return start + weight[:, :, None] * (end - start)


def _pack(
    series: torch.Tensor, days: torch.Tensor, kept: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pack the ``kept`` raw observations first, in their order; zero the freed slots."""
    order = torch.sort((~kept).to(torch.int8), dim=1, stable=True).indices
    valid = kept.gather(1, order)
    packed = _take(series, order) * valid[:, :, None]
    return packed, days.gather(1, order) * valid, valid
