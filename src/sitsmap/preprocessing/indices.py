"""Spectral indices computed by iota2 for Sentinel-2: NDVI, NDWI and brightness.

Inputs are reflectances (float, in reflectance units: 0.25, not 2500); outputs
are float32. A normalized difference whose denominator is 0 is 0, so pixels
without any data (all bands 0 after gap-filling) get 0 rather than NaN.

The ``*_into`` variants are compiled single passes that write into rows of a
feature array without any temporary array; they give the same floats as the
numpy functions.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = [
    "brightness",
    "brightness_into",
    "ndvi",
    "ndwi",
    "normalized_difference",
    "normalized_difference_into",
    "normalized_difference_value",
]


def normalized_difference(
    first: np.ndarray, second: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """Return ``(first - second) / (first + second)`` as float32, 0 where the sum is 0.

    Parameters
    ----------
    first, second : numpy.ndarray
        Arrays of the same (or broadcastable) shape.
    out : numpy.ndarray of float32, optional
        Where to write the result; it must not overlap the inputs.
    """
    first = np.asarray(first, dtype=np.float32)
    second = np.asarray(second, dtype=np.float32)
    shape = np.broadcast_shapes(first.shape, second.shape)
    result = np.empty(shape, dtype=np.float32) if out is None else out
    np.subtract(first, second, out=result)
    total = np.add(first, second)
    zero = total == 0
    total[zero] = 1.0
    np.divide(result, total, out=result)
    result[zero] = 0.0
    return result


def ndvi(red: np.ndarray, nir: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Normalized difference vegetation index, ``(NIR - red) / (NIR + red)``.

    For Sentinel-2, red is B4 and NIR is B8.
    """
    return normalized_difference(nir, red, out=out)


def ndwi(swir: np.ndarray, nir: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Normalized difference water index as iota2 computes it, ``(SWIR - NIR) / (SWIR + NIR)``.

    For Sentinel-2, SWIR is B11 and NIR is B8 (Gao's NDWI, sensitive to leaf water).
    """
    return normalized_difference(swir, nir, out=out)


def brightness(bands_stack: np.ndarray, axis: int = 0, out: np.ndarray | None = None) -> np.ndarray:
    """Brightness as iota2 computes it: the Euclidean norm of the reflectances over the bands.

    Parameters
    ----------
    bands_stack : numpy.ndarray
        Reflectances with the bands along ``axis``.
    axis : int
        The band axis.
    out : numpy.ndarray of float32, optional
        Where to write the result (the shape of ``bands_stack`` without ``axis``).

    Returns
    -------
    numpy.ndarray of float32
        ``sqrt(sum over bands of reflectance**2)``.
    """
    bands = np.moveaxis(np.asarray(bands_stack), axis, 0)
    result = np.zeros(bands.shape[1:], dtype=np.float32) if out is None else out
    result[...] = 0.0
    square = np.empty(bands.shape[1:], dtype=np.float32)
    for band in bands:
        np.multiply(band, band, out=square, dtype=np.float32)
        result += square
    return np.sqrt(result, out=result)


def normalized_difference_into(first: np.ndarray, second: np.ndarray, out: np.ndarray) -> None:
    """Write ``(first - second) / (first + second)`` (0 where the sum is 0) into ``out``.

    All three are float32 C-contiguous arrays of the same shape; ``out`` may not overlap
    the inputs.
    """
    _check_same_float32(first, second, out)
    _normalized_difference_kernel(first.reshape(-1), second.reshape(-1), out.reshape(-1))


def brightness_into(bands_stack: np.ndarray, out: np.ndarray) -> None:
    """Write the brightness of ``bands_stack`` ``(B, ...)`` (bands first) into ``out`` ``(...)``.

    Both are float32 C-contiguous arrays.
    """
    _check_same_float32(bands_stack[0], out)
    _brightness_kernel(bands_stack.reshape(len(bands_stack), -1), out.reshape(-1))


def _check_same_float32(*arrays: np.ndarray) -> None:
    for array in arrays:
        if array.dtype != np.float32 or not array.flags.c_contiguous:
            raise ValueError("expected C-contiguous float32 arrays")
        if array.shape != arrays[0].shape:
            raise ValueError(f"shapes differ: {[a.shape for a in arrays]}")


@njit(cache=True, fastmath=False, nogil=True, error_model="numpy")
def normalized_difference_value(first, second):  # pragma: no cover
    """``(first - second) / (first + second)`` of two float32 numbers, 0 where the sum is 0.

    Compiled; the one formula of every compiled normalized difference (the gap-filling
    computes the indices of an output date as it writes its bands).
    """
    total = first + second
    return (first - second) / total if total != 0 else np.float32(0.0)


@njit(parallel=True, cache=True, fastmath=False, nogil=True)
def _normalized_difference_kernel(first, second, out):  # pragma: no cover
    for i in prange(out.shape[0]):
        out[i] = normalized_difference_value(first[i], second[i])


@njit(parallel=True, cache=True, fastmath=False, nogil=True)
def _brightness_kernel(bands, out):  # pragma: no cover
    # The sum runs over the bands in order from 0.0, in float32, like the gap-filling's.
    for i in prange(out.shape[0]):
        total = np.float32(0.0)
        for b in range(bands.shape[0]):
            total += bands[b, i] * bands[b, i]
        out[i] = np.sqrt(total)
