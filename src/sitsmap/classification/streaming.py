"""Turn class probabilities of a window into the class, confidence and probability rasters.

Pure functions: the classification step feeds them one window at a time, so
peak memory depends on the window, never on the tile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONFIDENCE_NODATA = 255
"""No-data value of confidence and probability rasters (their values are 0–100)."""


@dataclass(frozen=True)
class WindowMaps:
    """The maps of one window: class codes, confidence and per-class probabilities."""

    classes: np.ndarray
    confidence: np.ndarray
    probabilities: np.ndarray | None


def class_dtype(codes: np.ndarray) -> np.dtype:
    """Smallest unsigned type holding every class code and the no-data value 0."""
    return np.dtype(np.uint8) if int(np.max(codes)) <= 255 else np.dtype(np.uint16)


def maps_from_probabilities(
    probabilities: np.ndarray,
    has_data: np.ndarray,
    codes: np.ndarray,
    with_probabilities: bool,
    nodata_class: int = 0,
) -> WindowMaps:
    """Build the window's maps from the probabilities of its pixels that have data.

    Parameters
    ----------
    probabilities : numpy.ndarray
        ``(n_pixels_with_data, n_classes)``, rows in raster order of ``has_data``.
    has_data : numpy.ndarray
        Boolean ``(rows, cols)``: pixels with at least one valid date.
    codes : numpy.ndarray
        Class code of each probability column.
    with_probabilities : bool
        Also return the per-class probability bands.
    nodata_class : int
        Class value outside valid pixels.

    Returns
    -------
    WindowMaps
        Class codes (``nodata_class`` outside data), confidence = 100 × the
        winning probability, and probabilities × 100 (uint8), 255 outside data.
    """
    shape = has_data.shape
    classes = np.full(shape, nodata_class, dtype=class_dtype(codes))
    confidence = np.full(shape, CONFIDENCE_NODATA, dtype=np.uint8)
    winner = probabilities.argmax(axis=1)
    classes[has_data] = codes[winner]
    confidence[has_data] = _percent(probabilities[np.arange(winner.size), winner])
    bands = None
    if with_probabilities:
        bands = np.full((len(codes), *shape), CONFIDENCE_NODATA, dtype=np.uint8)
        bands[:, has_data] = _percent(probabilities.T)
    return WindowMaps(classes, confidence, bands)


def _percent(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values * 100.0), 0, 100).astype(np.uint8)
