"""Save matplotlib figures atomically, without a display.

Build figures with :class:`matplotlib.figure.Figure` (not ``pyplot``): they
belong to no global figure manager, need no closing, and are drawn here with
the Agg renderer (or the vector backend the extension asks for).
"""

from __future__ import annotations

import os

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sitsmap.io.atomic import atomic_path

__all__ = ["save_figure"]


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 150) -> None:
    """Write ``fig`` to ``path`` atomically; the format follows the extension (PNG, PDF, SVG…).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure; one not shown by ``pyplot`` is given an Agg canvas.
    path : str or PathLike
        Destination; its directory is created if needed.
    dpi : int
        Resolution of raster formats.
    """
    if fig.canvas.manager is None:
        FigureCanvasAgg(fig)
    file_format = os.path.splitext(os.fspath(path))[1].lstrip(".").lower() or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=file_format, dpi=dpi, bbox_inches="tight")
