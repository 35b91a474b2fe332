"""Animated GIFs of image frames (the cross-validation report's fold animation)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from sitsmap.io.atomic import atomic_path

__all__ = ["save_gif"]


def save_gif(
    frames: Sequence[np.ndarray], path: str | os.PathLike[str], seconds: float = 1.0
) -> None:
    """Write ``frames`` as an endlessly looping animated GIF, atomically.

    Parameters
    ----------
    frames : sequence of numpy.ndarray
        ``(rows, cols, 3)`` or ``(rows, cols, 4)`` uint8 images, all of one shape;
        an alpha channel is dropped.
    path : str or PathLike
        Destination (``.gif``); its directory is created if needed.
    seconds : float
        How long each frame is shown.
    """
    images = [Image.fromarray(np.ascontiguousarray(frame[..., :3])) for frame in frames]
    with atomic_path(path) as tmp:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=round(1000 * seconds),
            loop=0,
        )
