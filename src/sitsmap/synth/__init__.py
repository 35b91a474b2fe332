"""The synthetic Sentinel-2 world used by the demo, the tests and the benchmarks.

:func:`generate_world` writes Theia L2A products of several overlapping
tiles over one continuous landscape, the land cover of every pixel, dirty
ground-truth polygons and a ready chain configuration; :func:`tile_grid`
gives the 10 m grid of a tile.
"""

from sitsmap.synth.layout import tile_grid
from sitsmap.synth.world import WorldSummary, generate_world

__all__ = ["WorldSummary", "generate_world", "tile_grid"]
