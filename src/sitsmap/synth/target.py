"""A continuous target for regression: the biomass each surveyed polygon produced in a year.

The field :data:`TARGET_FIELD` of ``ground_truth.shp`` holds, in t/ha of dry
matter, what the simulated vegetation of the polygon's parcel produced over
the calendar year by Monteith's light-use-efficiency model,

    biomass = ε · Σ_days green(day) · PAR(day),

with ``green`` the parcel's green cover fraction (the very curve that drives
its reflectances, :func:`sitsmap.synth.phenology.cover_fractions`, standing
for the fraction of absorbed light), ``PAR`` a clear-sky seasonal curve
(:func:`par`) and ε :data:`LIGHT_USE_EFFICIENCY`. Crops reach 10 to 30 t/ha,
grasslands and forests 40 to 60, towns, roads and rock a few, water about 0:
every class has a value, tied to its own vegetation. A maize field sown late
or a sparse cereal canopy produces less, as its time series shows.

Then a measurement error, as field weighings have: the value is multiplied
by ``exp(σ z − σ² / 2)`` (log-normal of mean 1, so it stays positive and
the noise is uncorrelated with the signal), ``z`` a standard normal hashed
from the parcel's key (its own stream: the classification world is not
touched). ``σ`` is set per world from its surveyed polygons' signals ``s``
so that

    explained share = var(s) / (var(s) + var(noise)) = :data:`EXPLAINED_SHARE`,

with ``var(noise) = E[s²] (exp(σ²) − 1)``: the R² over polygons of an ideal
model, one that recovers the vegetation exactly from the images, is
:data:`EXPLAINED_SHARE` up to the sampling of ``z``
(:func:`explained_share` gives the realised one).
"""

from __future__ import annotations

import numpy as np

from sitsmap.synth.landscape import Parcels
from sitsmap.synth.noise import hash_key, hash_normal
from sitsmap.synth.phenology import canopy_amplitude, cover_fractions, phenology_shift

TARGET_FIELD = "biomass"
"""The ground truth's field of the regression target (t/ha; a Shapefile name, 10 characters)."""
EXPLAINED_SHARE = 0.8
"""Share of the target's variance over the surveyed polygons that the vegetation explains:
the expected polygon R² of an ideal model."""
LIGHT_USE_EFFICIENCY = 2.5
"""ε, grams of dry matter per MJ of photosynthetically active radiation absorbed."""
STEP_DAYS = 5
"""Days between the evaluations of the green cover over the year."""
TARGET_DECIMALS = 2
"""Decimals kept in the ground truth (10 kg/ha)."""
_TARGET_NOISE = 501
_CHUNK = 4096


def par(doy: np.ndarray) -> np.ndarray:
    """Clear-sky photosynthetically active radiation (MJ/m²/day) on days of the year.

    About 3 MJ/m²/day at the winter solstice and 13 at the summer one (mid-latitude).
    """
    return 8.0 + 5.0 * np.cos(2.0 * np.pi * (np.asarray(doy, np.float64) - 172.0) / 365.0)


def annual_production(
    code: np.ndarray,
    shift: np.ndarray,
    amplitude: np.ndarray,
    variant: np.ndarray,
    variant2: np.ndarray,
    region: np.ndarray | None = None,
) -> np.ndarray:
    """Dry matter produced over the calendar year (t/ha), light-use-efficiency model.

    Parameters
    ----------
    code, shift, amplitude, variant, variant2, region : numpy.ndarray
        Per parcel, as :func:`sitsmap.synth.phenology.cover_fractions` takes them
        (``shift`` and ``amplitude`` already through :func:`phenology_shift` and
        :func:`canopy_amplitude`).

    Returns
    -------
    numpy.ndarray
        float64 t/ha per parcel: ``ε Σ green · PAR`` every :data:`STEP_DAYS` days.
    """
    days = np.arange(STEP_DAYS / 2.0, 365.0, STEP_DAYS)
    weight = par(days) * STEP_DAYS * LIGHT_USE_EFFICIENCY / 100.0  # g/m² -> t/ha
    out = np.empty(np.shape(code), dtype=np.float64)
    for start in range(0, out.size, _CHUNK):  # bounded memory: parcels x days at a time
        part = slice(start, start + _CHUNK)
        count = out[part].size
        # one call for all (parcel, day) pairs: on day 0, a parcel late by shift - day
        late = np.repeat(np.asarray(shift[part], np.float64), days.size) - np.tile(days, count)
        cover = cover_fractions(
            np.repeat(code[part], days.size),
            0.0,
            late,
            np.repeat(amplitude[part], days.size),
            np.repeat(variant[part], days.size),
            np.repeat(variant2[part], days.size),
            None if region is None else np.repeat(region[part], days.size),
        )
        out[part] = cover.green.reshape(count, days.size).astype(np.float64) @ weight
    return out


def parcel_production(parcels: Parcels) -> np.ndarray:
    """:func:`annual_production` of parcels, from their traits as the scene renders them."""
    shift = phenology_shift(parcels.code, parcels.gradient, parcels.timing, parcels.region)
    amplitude = canopy_amplitude(parcels.gradient, parcels.amplitude, parcels.region)
    return annual_production(
        parcels.code, shift, amplitude, parcels.variant, parcels.variant2, parcels.region
    )


def noise_spread(signal: np.ndarray, share: float = EXPLAINED_SHARE) -> float:
    """σ of the log-normal error that leaves ``share`` of the variance to ``signal``.

    Solves ``var(s) / (var(s) + E[s²] (exp(σ²) − 1)) = share``; 0 for fewer than
    two values or a constant signal.
    """
    signal = np.asarray(signal, dtype=np.float64)
    if signal.size < 2 or not np.any(signal):
        return 0.0
    ratio = signal.var() * (1.0 - share) / (share * np.mean(signal**2))
    return float(np.sqrt(np.log1p(ratio)))


def measured(
    signal: np.ndarray, keys: np.ndarray, seed: int, share: float = EXPLAINED_SHARE
) -> np.ndarray:
    """The signal with its measurement error (see the module), rounded to :data:`TARGET_DECIMALS`.

    Parameters
    ----------
    signal : numpy.ndarray
        Noise-free values (t/ha) of the surveyed polygons: they also set σ.
    keys : numpy.ndarray
        int64 key of each polygon's parcel (or road piece): the same key, the same error.
    seed : int
        World seed.
    share : float
        The explained share to aim at.

    Returns
    -------
    numpy.ndarray
        float64 values, never negative.
    """
    sigma = noise_spread(signal, share)
    z = hash_normal(hash_key(seed, _TARGET_NOISE), np.asarray(keys, dtype=np.int64))
    value = np.asarray(signal, np.float64) * np.exp(sigma * z - 0.5 * sigma**2)
    return np.round(value, TARGET_DECIMALS)


def explained_share(signal: np.ndarray, value: np.ndarray) -> float:
    """Realised share of the variance of ``value`` that ``signal`` explains (R² of ``signal``).

    ``1 − Σ (value − signal)² / Σ (value − mean)²``; NaN for a constant ``value``.
    """
    value = np.asarray(value, dtype=np.float64)
    total = float(np.sum((value - value.mean()) ** 2)) if value.size else 0.0
    if total == 0.0:
        return float("nan")
    return 1.0 - float(np.sum((value - np.asarray(signal, np.float64)) ** 2)) / total
