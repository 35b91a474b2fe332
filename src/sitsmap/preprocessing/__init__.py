"""From Sentinel-2 reflectances and masks to features: masks, gap-filling, indices.

The kernels (:mod:`~sitsmap.preprocessing.masks`, :mod:`~sitsmap.preprocessing.gapfilling`,
:mod:`~sitsmap.preprocessing.indices`, :mod:`~sitsmap.preprocessing.features`) are pure
functions on arrays; :mod:`~sitsmap.preprocessing.tile` glues them to the readers.
"""

from typing import Any

from sitsmap.preprocessing.features import (
    FeatureBlock,
    FeatureBuilder,
    compute_features,
    feature_names,
    index_names,
)
from sitsmap.preprocessing.gapfilling import GapfillStream, gapfill
from sitsmap.preprocessing.indices import brightness, ndvi, ndwi
from sitsmap.preprocessing.temporal import common_period, day_numbers, regular_dates

__all__ = [
    "FeatureBlock",
    "FeatureBuilder",
    "GapfillStream",
    "TileStack",
    "brightness",
    "common_period",
    "compute_features",
    "day_numbers",
    "feature_names",
    "gapfill",
    "index_names",
    "ndvi",
    "ndwi",
    "open_tile_stack",
    "regular_dates",
    "row_windows",
    "tile_features",
    "tile_windows",
    "working_bytes_per_pixel",
]

# tile.py imports the readers of sitsmap.io, which import the mask kernel from here:
# load it on first use so that either package can be imported first.
_TILE_NAMES = {
    "TileStack",
    "open_tile_stack",
    "row_windows",
    "tile_features",
    "tile_windows",
    "working_bytes_per_pixel",
}


def __getattr__(name: str) -> Any:
    if name in _TILE_NAMES:
        from sitsmap.preprocessing import tile

        return getattr(tile, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
