"""Spectral indices computed by iota2 for Sentinel-2: NDVI, NDWI and brightness.

Inputs are reflectances (float, in reflectance units: 0.25, not 2500); outputs
are float32. A normalized difference whose denominator is 0 is 0, so pixels
without any data (all bands 0 after gap-filling) get 0 rather than NaN.
"""

from __future__ import annotations

import numpy as np

__all__ = ["brightness", "ndvi", "ndwi", "normalized_difference"]


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
