"""Which observations are usable: the Theia/MAJA masks and the no-data value, combined.

An observation (one pixel at one date) is invalid when MAJA flags it as cloud or
cloud shadow (CLM), outside the swath (EDG) or saturated (SAT), or when any of
its bands holds the no-data value. Invalid observations are left out of the
gap-filling of every band of that date.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["flag_nodata", "masked"]


def masked(
    masks: Sequence[np.ndarray], shape: tuple[int, ...], out: np.ndarray | None = None
) -> np.ndarray:
    """Return True where any of the ``(H, W)`` ``masks`` is non-zero (``shape`` is ``(H, W)``)."""
    invalid = np.zeros(shape, dtype=bool) if out is None else out
    invalid[...] = False
    for mask in masks:
        if mask.shape != tuple(shape):
            raise ValueError(f"mask shape {mask.shape} differs from the bands' {tuple(shape)}")
        invalid |= mask != 0
    return invalid


def flag_nodata(reflectance: np.ndarray, nodata: int, invalid: np.ndarray) -> np.ndarray:
    """Set ``invalid`` ``(H, W)`` True, in place, where a band of ``(B, H, W)`` is ``nodata``."""
    for band in reflectance:
        invalid |= band == nodata
    return invalid
