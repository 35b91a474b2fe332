"""sitsmap: land-cover maps from Sentinel-2 satellite image time series.

Give it a configuration file, Sentinel-2 L2A time series for several tiles and
ground-truth polygons; it cleans the ground truth, gap-fills every pixel onto
one temporal grid, learns a classifier and maps every tile, then validates.
"""

from sitsmap.config import Config, load_config
from sitsmap.errors import (
    ConfigError,
    InputDataError,
    SchedulingError,
    SitsmapError,
    StepError,
)

__version__ = "0.1.0"

__all__ = [
    "Config",
    "ConfigError",
    "InputDataError",
    "SchedulingError",
    "SitsmapError",
    "StepError",
    "__version__",
    "load_config",
]
