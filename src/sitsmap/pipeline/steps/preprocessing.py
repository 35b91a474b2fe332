"""Step preprocessing (per tile): check every product decodes, count valid dates per pixel.

The count sums every sensor's valid dates.

The count reads the same masks and bands, through the same reader, as the
features, so ``PixelsValidity == 0`` is exactly where features have no data.

Features themselves are computed on the fly, window by window, by the same
function in sampling and classification (:func:`sitsmap.preprocessing.tile.tile_features`),
so that 10980² tiles never need a 481-band cube on disk.
"""

from __future__ import annotations

import numpy as np

from sitsmap.console import progress
from sitsmap.io.atomic import atomic_path
from sitsmap.io.raster import DatasetPool, open_raster_writer
from sitsmap.pipeline.acquisitions import (
    feature_windows,
    load_acquisitions,
    tile_stack,
)
from sitsmap.pipeline.context import RunContext
from sitsmap.preprocessing.tile import series_valid_count


def preprocess_tile(context: RunContext, tile: str) -> None:
    """Write ``PixelsValidity.tif``: the number of valid (clear) dates of every pixel."""
    acquisitions = load_acquisitions(context)
    series = tile_stack(context, tile, acquisitions)
    windows = feature_windows(context, series)
    with (
        atomic_path(context.layout.pixels_validity(tile)) as tmp,
        open_raster_writer(tmp, 1, np.uint16, series.grid) as dst,
        DatasetPool() as datasets,
    ):
        for window in progress(windows, f"preprocessing {tile}"):
            count = series_valid_count(series, window, datasets, context.threads)
            dst.write(count[np.newaxis], window=window)
