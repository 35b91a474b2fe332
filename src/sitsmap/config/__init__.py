"""Configuration: a YAML file with iota2's section and key names, parsed once."""

from sitsmap.config.loader import config_from_mapping, config_to_mapping, dump_config, load_config
from sitsmap.config.schema import STEP_NAMES, Config

__all__ = [
    "STEP_NAMES",
    "Config",
    "config_from_mapping",
    "config_to_mapping",
    "dump_config",
    "load_config",
]
