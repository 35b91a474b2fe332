"""Blocks with halos: how the post-processing kernels stream a raster window by window.

A neighbourhood kernel (smoothing, majority filter, sieve) needs, to compute a block
of pixels (the *core*), the pixels around it up to the kernel's reach (the *halo*).
:func:`halo_windows` cuts a raster into cores and gives, for each, the window to read:
the core grown by ``halo`` on every side and clipped to the raster (not boundless).
Every kernel of this package therefore treats the array border as "outside the map"
(no neighbour there), so that on the map border the clipped read changes nothing, and
inside it the halo hides the cut: ``kernel(a) == apply_by_windows(a, kernel, size, halo)``
for any ``size`` as soon as ``halo`` is at least the kernel's reach.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

__all__ = ["HaloWindow", "apply_by_windows", "halo_windows"]


@dataclass(frozen=True)
class HaloWindow:
    """One core block and the window to read for it.

    Attributes
    ----------
    read : rasterio.windows.Window
        The core grown by the halo on every side, clipped to the raster: what to read.
    core : rasterio.windows.Window
        The block of pixels this window computes: what to write.
    inner : tuple of slice
        ``(rows, cols)`` of the core inside the array read with ``read``.
    """

    read: Window
    core: Window
    inner: tuple[slice, slice]


def halo_windows(height: int, width: int, size: int, halo: int) -> Iterator[HaloWindow]:
    """Cut a raster into core blocks with their halo windows.

    Parameters
    ----------
    height, width : int
        Raster shape in pixels.
    size : int
        Side of the core blocks (those of the last row and column are smaller when
        ``size`` does not divide the raster).
    halo : int
        Pixels added on every side of the core to make the read window (clipped to the
        raster).

    Yields
    ------
    HaloWindow
        Blocks in row-major order; their cores cover the raster exactly once.

    Raises
    ------
    ValueError
        If ``size`` < 1, ``halo`` < 0 or the shape is negative.
    """
    if size < 1 or halo < 0 or height < 0 or width < 0:
        raise ValueError(
            f"halo_windows needs size >= 1, halo >= 0 and a non-negative shape, "
            f"got size={size}, halo={halo}, shape=({height}, {width})"
        )
    for row in range(0, height, size):
        rows = min(size, height - row)
        top = max(0, row - halo)
        bottom = min(height, row + rows + halo)
        for col in range(0, width, size):
            cols = min(size, width - col)
            left = max(0, col - halo)
            right = min(width, col + cols + halo)
            yield HaloWindow(
                read=Window(left, top, right - left, bottom - top),
                core=Window(col, row, cols, rows),
                inner=(slice(row - top, row - top + rows), slice(col - left, col - left + cols)),
            )


def apply_by_windows(
    array: np.ndarray,
    kernel: Callable[[np.ndarray], np.ndarray],
    size: int,
    halo: int,
) -> np.ndarray:
    """Apply a neighbourhood kernel window by window and stitch the cores.

    Parameters
    ----------
    array : numpy.ndarray
        ``(..., height, width)``; the windows cut the last two axes.
    kernel : callable
        Maps a ``(..., h, w)`` array to a ``(..., h, w)`` array (same leading axes in
        the output as it returns for the whole array).
    size : int
        Side of the core blocks.
    halo : int
        Pixels read around each core; at least the kernel's reach for the result to
        equal ``kernel(array)``.

    Returns
    -------
    numpy.ndarray
        The stitched cores, with the dtype and leading axes of the kernel's output.
    """
    height, width = array.shape[-2:]
    out = None
    for window in halo_windows(height, width, size, halo):
        result = np.asarray(kernel(array[(..., *window.read.toslices())]))
        if out is None:
            out = np.empty((*result.shape[:-2], height, width), dtype=result.dtype)
        out[(..., *window.core.toslices())] = result[(..., *window.inner)]
    if out is None:  # an empty raster: no window, the kernel decides the output's shape
        return np.asarray(kernel(array))
    return out
