"""What stands between the ground and the sensor: clouds, shadows, cirrus, swath edges.

- The *weather* of a date (cloud and cirrus cover) depends only on the seed
  and the date, with cloudier winters, some clear and some fully cloudy
  dates; the *cloud field* is smooth noise of world coordinates thresholded
  to that cover, so tiles seen on the same date share their clouds.
- Shadows are the cloud field displaced along the sun direction (south-south-
  east, longer in winter); cloud edges leave a thin unflagged haze; cirrus is
  a faint, larger-scale veil, flagged only where it is thick enough.
- Per product: a diagonal no-data swath edge on some dates, a few saturated
  pixels now and then, a small radiometric gain and pixel noise.

MAJA's cloud bit field (CLM) is reproduced: clouds set bits 0, 1, 2
(value 7), shadows bits 0 and 5 (33), cirrus bits 4 and 7 (144).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from sitsmap.sensors import SENTINEL2_THEIA
from sitsmap.synth.noise import fbm_grid, hash_key, rng_for

CLOUD_BITS = 0b0000_0111
SHADOW_BITS = 0b0010_0001
CIRRUS_BITS = 0b1001_0000
SATURATION_BITS_R1 = 0b0000_1111
"""Saturation of a 10 m pixel: one bit per 10 m band (B2, B3, B4, B8)."""

_WEATHER, _CLOUD, _CIRRUS, _PRODUCT, _NOISE = 201, 202, 203, 204, 205

_BAND_NAMES = SENTINEL2_THEIA.band_names
CLOUD_SPECTRUM = np.array(
    [0.46, 0.45, 0.44, 0.44, 0.44, 0.44, 0.43, 0.43, 0.30, 0.20], dtype=np.float32
)
"""Reflectance of a thick cloud: bright, flat, lower in the SWIR."""
CIRRUS_SPECTRUM = np.array(
    [0.55, 0.54, 0.53, 0.52, 0.52, 0.52, 0.52, 0.51, 0.40, 0.30], dtype=np.float32
)
SHADOW_DEPTH = np.array([0.55, 0.6, 0.65, 0.68, 0.7, 0.7, 0.72, 0.72, 0.75, 0.75], dtype=np.float32)
"""Fraction of light a full shadow removes per band (diffuse blue light remains)."""

SUN_AZIMUTH_DEG = 160.0
NOISE_BLOCK_ROWS = 16
"""Pixel noise is drawn in blocks of this many rows, so windows see the same noise."""


@dataclass(frozen=True)
class Weather:
    """Cloudiness of one date over the whole world.

    Attributes
    ----------
    cloud_cover, cirrus_cover : float
        Expected fraction of the ground under clouds and under cirrus.
    cloud_brightness : float
        Factor applied to :data:`CLOUD_SPECTRUM`.
    """

    cloud_cover: float
    cirrus_cover: float
    cloud_brightness: float


@dataclass(frozen=True)
class Sky:
    """Per-pixel atmosphere of a window on one date (arrays of the window's shape).

    Attributes
    ----------
    cloud : numpy.ndarray
        Opacity of flagged clouds (0 where clear).
    haze : numpy.ndarray
        Opacity of the unflagged thin cloud around clouds.
    shadow : numpy.ndarray
        Depth of cloud shadows, 0-1.
    cirrus : numpy.ndarray
        Opacity of cirrus.
    texture : numpy.ndarray
        Brightness variation inside clouds, around 1.
    """

    cloud: np.ndarray
    haze: np.ndarray
    shadow: np.ndarray
    cirrus: np.ndarray
    texture: np.ndarray


@dataclass(frozen=True)
class SwathEdge:
    """A straight, slightly diagonal limit of the swath: no data on one side.

    Pixel ``(row, col)`` has no data where ``side * (col - first - slope * row) < 0``.
    """

    first: float
    slope: float
    side: int

    def no_data(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Boolean mask of the pixels outside the swath (rows and cols are 1-D)."""
        edge = self.first + self.slope * rows[:, None]
        return self.side * (cols[None, :] - edge) < 0


def mean_cloudiness(doy: float) -> float:
    """Average cloud cover on day ``doy``: about 0.55 in January, 0.1 in July."""
    return float(0.32 + 0.22 * np.cos(2.0 * np.pi * (doy - 10.0) / 365.0))


def weather(date: dt.date, seed: int) -> Weather:
    """Return the weather of ``date``: clear, partly cloudy or overcast, cloudier in winter."""
    rng = rng_for(seed, _WEATHER, date.toordinal())
    mean = mean_cloudiness(float(date.timetuple().tm_yday))
    draw = rng.random()
    if draw < 0.35 * mean:
        cover = 1.0
    elif draw < 0.35 * mean + 0.55 * (1.0 - mean):
        cover = max(0.0, rng.uniform(-0.03, 0.03))
    else:
        cover = float(rng.beta(1.2, 1.2 * (1.0 - mean) / mean))
    cirrus = float(rng.uniform(0.1, 0.6)) if rng.random() < 0.25 else 0.0
    return Weather(cover, cirrus, float(rng.uniform(0.85, 1.15)))


def _threshold(cover: float) -> float:
    """Field value above which a unit-variance field covers ``cover`` of the ground."""
    if cover >= 0.999:
        return -np.inf
    if cover <= 0.001:
        return np.inf
    return float(ndtri(1.0 - cover))


def _opacity(field: np.ndarray, threshold: float) -> np.ndarray:
    return np.where(field > threshold, np.clip(0.45 + (field - threshold) / 0.8, 0.0, 1.0), 0.0)


def shadow_offset(doy: float, cloud_scale: float) -> tuple[float, float]:
    """Vector (metres) from a shadow to the cloud that casts it (towards the sun)."""
    elevation = np.radians(43.0 + 22.0 * np.cos(2.0 * np.pi * (doy - 172.0) / 365.0))
    length = 0.35 * cloud_scale / np.tan(elevation)
    azimuth = np.radians(SUN_AZIMUTH_DEG)
    return float(length * np.sin(azimuth)), float(length * np.cos(azimuth))


def sky(
    x: np.ndarray, y: np.ndarray, date: dt.date, conditions: Weather, seed: int, cloud_scale: float
) -> Sky:
    """Clouds, haze, shadows and cirrus over the grid of pixel centres ``x`` by ``y``.

    Parameters
    ----------
    x, y : numpy.ndarray
        1-D world coordinates of the window's columns and rows (metres).
    date : datetime.date
        Acquisition date (fixes the cloud field).
    conditions : Weather
        The date's weather.
    seed : int
        World seed.
    cloud_scale : float
        Size of the largest cloud structures (metres).
    """
    shape = (len(y), len(x))
    threshold = _threshold(conditions.cloud_cover)
    if np.isinf(threshold):  # clear or overcast: no cloud field to evaluate
        cloud = np.full(shape, 1.0 if threshold < 0 else 0.0)
        haze, shadow, texture = np.zeros(shape), np.zeros(shape), np.ones(shape)
    else:
        cloud, haze, shadow, texture = _cloud_layers(x, y, date, seed, cloud_scale, threshold)
    cirrus_threshold = _threshold(conditions.cirrus_cover)
    cirrus = np.zeros(shape)
    if np.isfinite(cirrus_threshold):
        cirrus_key = hash_key(seed, _CIRRUS, date.toordinal())
        cirrus_field = fbm_grid(x, y, (2.0 * cloud_scale, cloud_scale), cirrus_key)
        thickness = np.clip((cirrus_field - cirrus_threshold) / 1.2, 0.0, 1.0)
        cirrus = np.where(cirrus_field > cirrus_threshold, 0.12 * thickness, 0.0)
    return Sky(*(a.astype(np.float32) for a in (cloud, haze, shadow, cirrus, texture)))


def _cloud_layers(
    x: np.ndarray, y: np.ndarray, date: dt.date, seed: int, cloud_scale: float, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cloud opacity, edge haze, shadow depth and cloud texture for a finite threshold."""
    scales = tuple(cloud_scale / 2.0**k for k in range(4))
    key = hash_key(seed, _CLOUD, date.toordinal())
    field = fbm_grid(x, y, scales, key)
    cloud = _opacity(field, threshold)
    edge = (field <= threshold) & (field > threshold - 0.3)
    haze = np.where(edge, 0.1 * (field - threshold + 0.3) / 0.3, 0.0)
    dx, dy = shadow_offset(float(date.timetuple().tm_yday), cloud_scale)
    shadow = _opacity(fbm_grid(x + dx, y + dy, scales, key), threshold) * (cloud == 0)
    texture = 0.92 + 0.08 * np.tanh(field - threshold)
    return cloud, haze, shadow, texture


def cloud_mask(conditions: Sky) -> np.ndarray:
    """MAJA CLM bit field (uint8) of a window: clouds 7, shadows 33, cirrus 144, OR-ed."""
    bits = np.where(conditions.cloud > 0, CLOUD_BITS, 0)
    bits |= np.where(conditions.shadow > 0.25, SHADOW_BITS, 0)
    bits |= np.where(conditions.cirrus > 0.03, CIRRUS_BITS, 0)
    return bits.astype(np.uint8)


def through_sky(ground: np.ndarray, conditions: Sky, brightness: float) -> np.ndarray:
    """Reflectance seen through the sky, ``(bands, rows, cols)`` float32 (``ground`` is reused).

    Shadows darken (less in the blue), cirrus brightens slightly, clouds
    (and the haze at their edges) replace the ground by their own flat
    spectrum. Works band by band, in place, to keep memory low.
    """
    opacity = np.minimum(conditions.cloud + conditions.haze, 1.0)
    cloudy = bool(opacity.any())
    for band, plane in enumerate(ground):
        if conditions.shadow.any():
            plane *= 1.0 - SHADOW_DEPTH[band] * conditions.shadow
        if conditions.cirrus.any():
            plane += conditions.cirrus * (CIRRUS_SPECTRUM[band] - plane)
        if cloudy:
            cloud = (brightness * CLOUD_SPECTRUM[band]) * conditions.texture
            plane += opacity * (cloud - plane)
    return ground


@dataclass(frozen=True)
class ProductDefects:
    """Per-product accidents: swath edge, saturated pixels, radiometric gain."""

    edge: SwathEdge | None
    saturated_rows: np.ndarray
    saturated_cols: np.ndarray
    gain: float


def product_defects(seed: int, tile_key: int, date: dt.date, size: int) -> ProductDefects:
    """Draw the accidents of one product (a tile on a date)."""
    rng = rng_for(seed, _PRODUCT, tile_key, date.toordinal())
    edge = None
    if rng.random() < 0.12:
        side = 1 if rng.random() < 0.5 else -1
        slope = float(np.tan(np.radians(rng.uniform(9.0, 14.0))))
        covered = rng.uniform(0.15, 0.7) * size
        first = covered if side == 1 else size - covered
        edge = SwathEdge(first - slope * size / 2.0, slope, side)
    count = int(rng.integers(1, 12)) if rng.random() < 0.25 else 0
    rows, cols = rng.integers(0, size, count), rng.integers(0, size, count)
    return ProductDefects(edge, rows, cols, float(1.0 + 0.012 * rng.standard_normal()))


def pixel_noise(
    seed: int, tile_key: int, date: dt.date, rows: range, width: int, bands: int
) -> np.ndarray:
    """Standard normal noise ``(bands + 1, len(rows), width)`` for rows of a tile.

    Drawn by blocks of :data:`NOISE_BLOCK_ROWS` rows, so any window of the
    tile gets the same values. Plane 0 is a common (multiplicative) term.
    """
    first_block = rows.start // NOISE_BLOCK_ROWS
    last_block = (rows.stop - 1) // NOISE_BLOCK_ROWS
    blocks = [
        rng_for(seed, _NOISE, tile_key, date.toordinal(), block).standard_normal(
            (bands + 1, NOISE_BLOCK_ROWS, width), dtype=np.float32
        )
        for block in range(first_block, last_block + 1)
    ]
    noise = np.concatenate(blocks, axis=1)
    offset = rows.start - first_block * NOISE_BLOCK_ROWS
    return noise[:, offset : offset + len(rows)]
