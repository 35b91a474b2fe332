"""Deterministic noise as pure functions of world coordinates.

Every random quantity of the synthetic world is a function of the seed and
of *where* (and when) it is, never of the order in which things are
generated: hashing integer keys (splitmix64) gives reproducible uniforms,
and value noise on hashed lattices gives smooth fields. So a tile generated
alone, with its neighbours, or window by window sees the same ground.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy.special import ndtri

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _mix_int(value: int) -> int:
    """Splitmix64 finaliser on a Python int (mod 2**64)."""
    value &= _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def _mix(values: np.ndarray) -> np.ndarray:
    """Splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    values = values ^ (values >> np.uint64(30))
    values = values * _MIX1
    values = values ^ (values >> np.uint64(27))
    values = values * _MIX2
    return values ^ (values >> np.uint64(31))


def text_key(text: str) -> int:
    """Return a stable integer for a string (unlike ``hash``, the same in every process)."""
    return zlib.crc32(text.encode("utf-8"))


def hash_key(*parts: int) -> int:
    """Combine integers (any sign) into one 64-bit key."""
    key = 0x243F6A8885A308D3
    for part in parts:
        key = _mix_int(key ^ ((int(part) + _GOLDEN) & _MASK64))
    return key


def _as_u64(values: np.ndarray | int) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).view(np.uint64)


def hash_uniform(key: int, *indexes: np.ndarray | int) -> np.ndarray:
    """Uniform numbers in [0, 1) determined by ``key`` and integer index arrays.

    Parameters
    ----------
    key : int
        Stream key from :func:`hash_key`.
    *indexes : array_like of int
        Broadcastable integer arrays (any sign), e.g. lattice rows and columns.

    Returns
    -------
    numpy.ndarray
        float64 array of the broadcast shape.
    """
    with np.errstate(over="ignore"):
        state = np.full((), key, dtype=np.uint64)
        for index in indexes:
            state = _mix(state ^ (_as_u64(index) + np.uint64(_GOLDEN)))
    return (state >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def hash_normal(key: int, *indexes: np.ndarray | int) -> np.ndarray:
    """Standard normal numbers determined by ``key`` and index arrays (inverse CDF)."""
    uniform = hash_uniform(key, *indexes)
    return ndtri(np.clip(uniform, 1e-12, 1 - 1e-12))


def rng_for(*parts: int) -> np.random.Generator:
    """A numpy generator seeded by integers of any sign (for bulk draws)."""
    return np.random.default_rng(hash_key(*parts))


def _smoothstep(t: np.ndarray) -> np.ndarray:
    return t * t * (3.0 - 2.0 * t)


def value_noise_grid(x: np.ndarray, y: np.ndarray, scale: float, key: int) -> np.ndarray:
    """Value noise on the grid spanned by 1-D coordinate vectors, in [-1, 1].

    Parameters
    ----------
    x, y : numpy.ndarray
        1-D world coordinates of columns and rows (metres).
    scale : float
        Lattice spacing (metres): the size of the features.
    key : int
        Stream key.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(len(y), len(x))``.
    """
    fx, fy = np.asarray(x, float) / scale, np.asarray(y, float) / scale
    ix, iy = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
    tx, ty = _smoothstep(fx - ix), _smoothstep(fy - iy)
    cols = np.arange(ix.min(), ix.max() + 2, dtype=np.int64)
    rows = np.arange(iy.min(), iy.max() + 2, dtype=np.int64)
    lattice = 2.0 * hash_uniform(key, rows[:, None], cols[None, :]) - 1.0
    cx, cy = ix - cols[0], iy - rows[0]
    along_x = lattice[:, cx] * (1.0 - tx) + lattice[:, cx + 1] * tx
    return along_x[cy] * (1.0 - ty)[:, None] + along_x[cy + 1] * ty[:, None]


def value_noise_points(x: np.ndarray, y: np.ndarray, scale: float, key: int) -> np.ndarray:
    """Value noise at scattered points (same field as :func:`value_noise_grid`)."""
    fx, fy = np.asarray(x, float) / scale, np.asarray(y, float) / scale
    ix, iy = np.floor(fx).astype(np.int64), np.floor(fy).astype(np.int64)
    tx, ty = _smoothstep(fx - ix), _smoothstep(fy - iy)

    def corner(dy: int, dx: int) -> np.ndarray:
        return 2.0 * hash_uniform(key, iy + dy, ix + dx) - 1.0

    lower = corner(0, 0) * (1.0 - tx) + corner(0, 1) * tx
    upper = corner(1, 0) * (1.0 - tx) + corner(1, 1) * tx
    return lower * (1.0 - ty) + upper * ty


def fbm_grid(x: np.ndarray, y: np.ndarray, scales: Sequence[float], key: int) -> np.ndarray:
    """Sum of value-noise octaves on a grid, normalised to unit standard deviation.

    Octave ``k`` has weight ``0.5**k``; ``scales`` go from coarse to fine.
    """
    total = np.zeros((len(y), len(x)))
    for octave, scale in enumerate(scales):
        total += 0.5**octave * value_noise_grid(x, y, scale, hash_key(key, octave))
    return total / _fbm_std(len(scales))


def fbm_points(x: np.ndarray, y: np.ndarray, scales: Sequence[float], key: int) -> np.ndarray:
    """Sum of value-noise octaves at points, normalised like :func:`fbm_grid`."""
    total = np.zeros(np.broadcast(x, y).shape)
    for octave, scale in enumerate(scales):
        total += 0.5**octave * value_noise_points(x, y, scale, hash_key(key, octave))
    return total / _fbm_std(len(scales))


@lru_cache(maxsize=8)
def _fbm_std(octaves: int) -> float:
    """Standard deviation of an ``octaves``-octave sum, measured once on a fixed sample."""
    coords = np.arange(0.5, 1000.0, 1.0)
    scales = [20.0 / 2**k for k in range(octaves)]
    total = np.zeros((coords.size, coords.size))
    for octave, scale in enumerate(scales):
        total += 0.5**octave * value_noise_grid(coords, coords, scale, hash_key(7, octave))
    return float(total.std())
