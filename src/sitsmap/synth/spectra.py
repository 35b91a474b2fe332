"""Ground reflectance of the ten Sentinel-2 bands by linear mixing of endmembers.

A parcel's spectrum is ``shade * (green * G + dry * D + flower * F +
rest * B)``: green vegetation, dry matter (straw, litter), yellow flowers
and a class-specific background (soil, urban materials, asphalt, rock or
water), with per-parcel soil brightness and seasonal soil moisture.
Conifers have their own darker green (low NIR), forests are shaded. The
green of each eco-region differs (:data:`REGION_GREEN`: sparse, dry-climate
leaves have less NIR and more red and SWIR).

Band order is :data:`sitsmap.sensors.SENTINEL2_THEIA.band_names`
(B2 B3 B4 B5 B6 B7 B8 B8A B11 B12).
"""

from __future__ import annotations

import numpy as np

from sitsmap.sensors import SENTINEL2_THEIA
from sitsmap.synth.phenology import CoverFractions

BANDS = SENTINEL2_THEIA.band_names

_ENDMEMBERS = {
    #             B2     B3     B4     B5     B6     B7     B8     B8A    B11    B12
    "green":    (0.028, 0.062, 0.025, 0.100, 0.310, 0.410, 0.460, 0.475, 0.220, 0.100),
    "conifer":  (0.020, 0.042, 0.018, 0.065, 0.190, 0.245, 0.275, 0.290, 0.125, 0.055),
    "dry":      (0.090, 0.125, 0.160, 0.200, 0.240, 0.265, 0.285, 0.300, 0.380, 0.290),
    "flower":   (0.040, 0.150, 0.130, 0.210, 0.310, 0.380, 0.410, 0.420, 0.230, 0.120),
    "soil":     (0.070, 0.100, 0.135, 0.160, 0.178, 0.190, 0.200, 0.212, 0.300, 0.255),
    "urban":    (0.100, 0.110, 0.120, 0.130, 0.140, 0.148, 0.155, 0.160, 0.190, 0.175),
    "roof":     (0.200, 0.215, 0.230, 0.240, 0.250, 0.258, 0.265, 0.270, 0.300, 0.270),
    "asphalt":  (0.060, 0.068, 0.075, 0.080, 0.085, 0.088, 0.092, 0.095, 0.110, 0.100),
    "rock":     (0.160, 0.190, 0.220, 0.245, 0.265, 0.275, 0.285, 0.295, 0.360, 0.310),
    "water":    (0.055, 0.050, 0.030, 0.020, 0.012, 0.010, 0.008, 0.008, 0.004, 0.003),
}  # fmt: skip
ENDMEMBERS = {name: np.asarray(values, dtype=np.float32) for name, values in _ENDMEMBERS.items()}
"""Endmember reflectances (0-1) in :data:`BANDS` order."""

REGION_GREEN = np.array(
    [
        #  B2    B3    B4    B5    B6    B7    B8    B8A   B11   B12
        [1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00],
        [1.00, 0.98, 1.05, 1.02, 0.98, 0.96, 0.95, 0.95, 1.04, 1.06],
        [1.10, 1.00, 1.30, 1.10, 0.95, 0.88, 0.85, 0.85, 1.20, 1.30],
        [0.95, 1.05, 0.90, 1.00, 1.05, 1.08, 1.08, 1.08, 0.95, 0.90],
    ],
    dtype=np.float32,
)
"""Factor on the green-vegetation spectrum of each eco-region (r1 to r4), per band."""

_BACKGROUND = {1: "urban", 2: "urban", 3: "roof", 4: "asphalt", 20: "rock", 23: "water"}
_SHADE = {16: 0.85, 17: 0.8, 19: 0.9}
_TEXTURE = {1: 0.1, 2: 0.12, 3: 0.05, 4: 0.03, 16: 0.08, 17: 0.06, 20: 0.04, 23: 0.01}
_TURBID_BANDS = np.array([b in ("B2", "B3", "B4", "B5") for b in BANDS])


def _class_table(mapping: dict[int, float | str], default: float | str) -> list:
    return [mapping.get(code, default) for code in range(256)]


_BACKGROUND_INDEX = np.array(
    [list(ENDMEMBERS).index(name) for name in _class_table(_BACKGROUND, "soil")]
)
SHADE = np.asarray(_class_table(_SHADE, 1.0), dtype=np.float32)
"""Shading factor of each class code (forests are darker)."""
TEXTURE = np.asarray(_class_table(_TEXTURE, 0.05), dtype=np.float32)
"""Within-parcel variation of green cover of each class code."""


def soil_moisture_factor(doy: float) -> float:
    """Brightness of bare soil through the year: darker (wet) in winter."""
    return float(0.84 + 0.16 * (0.5 - 0.5 * np.cos(2.0 * np.pi * (doy - 20.0) / 365.0)))


def background_spectra(
    code: np.ndarray, soil: np.ndarray, variant: np.ndarray, doy: float
) -> np.ndarray:
    """Background (non-vegetation) spectrum of each parcel, shape ``(parcels, bands)``.

    Soil and materials are scaled by the parcel's brightness; soil also by
    its seasonal moisture; water's visible bands by its turbidity.
    """
    stack = np.stack(list(ENDMEMBERS.values()))
    is_water = code == 23
    background = stack[_BACKGROUND_INDEX[code]] * np.where(is_water, 1.0, soil)[:, None]
    is_soil = _BACKGROUND_INDEX[code] == list(ENDMEMBERS).index("soil")
    background[is_soil] *= soil_moisture_factor(doy)
    turbidity = (0.8 + 0.6 * variant[is_water])[:, None]
    background[np.ix_(is_water, _TURBID_BANDS)] *= turbidity
    return background.astype(np.float32)


def green_spectra(code: np.ndarray, region: np.ndarray | None = None) -> np.ndarray:
    """Green-vegetation spectrum of each parcel, ``(parcels, bands)``.

    Conifers are darker; ``region`` (eco-region index per parcel, ``None``:
    region 0) scales the bands by :data:`REGION_GREEN`.
    """
    green = np.where((code == 17)[:, None], ENDMEMBERS["conifer"], ENDMEMBERS["green"])
    if region is None:
        return green
    return green * REGION_GREEN[region]


def mix_spectra(
    code: np.ndarray,
    cover: CoverFractions,
    background: np.ndarray,
    region: np.ndarray | None = None,
) -> np.ndarray:
    """Reflectance of each parcel, ``(parcels, bands)``, float32 in 0-1.

    Parameters
    ----------
    code : numpy.ndarray
        Class of each parcel.
    cover : CoverFractions
        Green, dry and flower fractions of each parcel.
    background : numpy.ndarray
        Background spectrum of each parcel (see :func:`background_spectra`).
    region : numpy.ndarray, optional
        Eco-region index of each parcel (see :func:`green_spectra`).
    """
    rest = np.clip(1.0 - cover.green - cover.dry - cover.flower, 0.0, 1.0)
    spectra = (
        cover.green[:, None] * green_spectra(code, region)
        + cover.dry[:, None] * ENDMEMBERS["dry"]
        + cover.flower[:, None] * ENDMEMBERS["flower"]
        + rest[:, None] * background
    )
    return (spectra * SHADE[code][:, None]).astype(np.float32)


def texture_direction(
    code: np.ndarray, background: np.ndarray, region: np.ndarray | None = None
) -> np.ndarray:
    """Change of each parcel's spectrum per unit of extra green cover, ``(parcels, bands)``.

    Scaled by the class's texture strength: a pixel's spectrum is its
    parcel's plus ``texture * direction`` (``texture`` a smooth field);
    ``region`` as in :func:`green_spectra`.
    """
    direction = (green_spectra(code, region) - background) * SHADE[code][:, None]
    return (direction * TEXTURE[code][:, None]).astype(np.float32)
