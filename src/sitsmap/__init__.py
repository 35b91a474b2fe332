"""sitsmap: land-cover maps from Sentinel-2 satellite image time series.

Give it a configuration file, Sentinel-2 L2A time series for several tiles and
ground-truth polygons; it cleans the ground truth, gap-fills every pixel onto
one temporal grid, learns a classifier and maps every tile, then validates.

>>> import sitsmap
>>> config = sitsmap.load_config("config.yaml", ["arg_train.runs=3"])  # doctest: +SKIP
>>> sitsmap.run_chain(config)  # doctest: +SKIP
"""

from importlib import import_module
from typing import Any

from sitsmap.config import Config, load_config
from sitsmap.errors import (
    ConfigError,
    InputDataError,
    SchedulingError,
    SitsmapError,
    StepError,
)

__version__ = "0.1.0"

# Heavier entry points (they import the chain, torch and Dask) load on first use,
# so that `import sitsmap` and the command line stay quick.
_LAZY = {
    "run_chain": "sitsmap.pipeline.run",
    "run_crossval": "sitsmap.pipeline.run",
    "step_states": "sitsmap.pipeline.run",
    "run_demo": "sitsmap.demo",
    "generate_world": "sitsmap.synth",
    "check_database": "sitsmap.vectors.check",
    "write_report": "sitsmap.report",
}

__all__ = [
    "Config",
    "ConfigError",
    "InputDataError",
    "SchedulingError",
    "SitsmapError",
    "StepError",
    "__version__",
    "load_config",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    """Import the heavier public functions on first access."""
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sitsmap' has no attribute {name!r}")
