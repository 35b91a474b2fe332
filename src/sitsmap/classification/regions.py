"""Which region's model classifies each pixel, and how much, near region borders.

iota2 classifies each pixel with its own region's model only, so the map
shows steps along region borders. With a border band of width ``W`` metres,
sitsmap blends the models across it instead: each region ``r`` gets, at a pixel
whose signed distance to ``r``'s border is ``s`` (positive inside ``r``), the
weight ``clip(0.5 + s / W, 0, 1)``, and the weights of a pixel are normalised to
sum to 1. Half a band inside a region its own model alone speaks; on the
border both speak equally; the blend is linear in between, so the
probabilities, and the map, change continuously across the border. With
``W = 0`` every pixel takes its own region's model, as in iota2.

Distances are measured between pixel centres (scipy's exact Euclidean
distance transform) on the window plus a halo of half a band, so a window's
weights do not depend on where the window starts.
"""

from __future__ import annotations

import math

import numpy as np
from rasterio.windows import Window
from scipy.ndimage import distance_transform_edt

__all__ = ["blend_probabilities", "border_halo", "region_weights"]


def border_halo(border_width: float, resolution: float) -> int:
    """Pixels around a window that its border weights depend on (half a band, and one)."""
    return 0 if border_width <= 0 else math.ceil(border_width / 2 / resolution) + 1


def halo_window(window: Window, halo: int) -> Window:
    """``window`` grown by ``halo`` pixels on every side."""
    return Window(
        window.col_off - halo,
        window.row_off - halo,
        window.width + 2 * halo,
        window.height + 2 * halo,
    )


def region_weights(
    regions: np.ndarray, halo: int, border_width: float, resolution: float
) -> dict[int, np.ndarray]:
    """Each region's weight at every pixel of a window.

    Parameters
    ----------
    regions : numpy.ndarray of int
        Region numbers of the window grown by ``halo`` pixels on every side (0: no
        region, also beyond the tile).
    halo : int
        See :func:`border_halo`.
    border_width : float
        Width ``W`` (m) of the band where models are blended; 0 for hard borders.
    resolution : float
        Pixel size (m).

    Returns
    -------
    dict of int to numpy.ndarray of float32
        For each region with a non-zero weight in the window, its ``(h, w)`` weights;
        they sum to 1 on pixels of a region, and are 0 on pixels of none.
    """
    core = regions[halo : regions.shape[0] - halo, halo : regions.shape[1] - halo]
    inside_any = core > 0
    if border_width <= 0:
        return {int(r): (core == r).astype(np.float32) for r in np.unique(core[inside_any])}
    raw = {}
    for region in np.unique(regions[regions > 0]):
        mine = regions == region
        signed = np.where(
            mine,
            distance_transform_edt(mine) - 0.5,
            0.5 - distance_transform_edt(~mine),
        )
        weight = np.clip(0.5 + signed * resolution / border_width, 0.0, 1.0)
        weight = weight[halo : regions.shape[0] - halo, halo : regions.shape[1] - halo]
        if weight.any():
            raw[int(region)] = weight.astype(np.float32)
    total = sum(raw.values()) if raw else np.zeros(core.shape, np.float32)
    scale = np.where(inside_any & (total > 0), 1.0 / np.maximum(total, 1e-12), 0.0)
    return {region: (weight * scale).astype(np.float32) for region, weight in raw.items()}


def blend_probabilities(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n_pixels: int, n_classes: int
) -> np.ndarray:
    """Sum weighted probabilities of several models into one ``(n_pixels, n_classes)`` array.

    Parameters
    ----------
    parts : list of (pixels, weights, probabilities)
        For each model: the indices of the pixels it predicted, their weights, and its
        probabilities over the common classes ``(len(pixels), n_classes)``.
    n_pixels, n_classes : int
        Shape of the result.
    """
    blended = np.zeros((n_pixels, n_classes), dtype=np.float32)
    for pixels, weights, probabilities in parts:
        blended[pixels] += weights[:, np.newaxis] * probabilities
    return blended
