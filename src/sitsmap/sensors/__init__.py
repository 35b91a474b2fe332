"""Declarative sensor descriptions: bands, resolutions, file patterns, mask rules.

Adding a sensor means adding a description here, not editing the pipeline.
"""

from sitsmap.sensors.sentinel2 import SENTINEL2_THEIA, Band, Product, SensorDescription

__all__ = ["SENTINEL2_THEIA", "Band", "Product", "SensorDescription"]
