"""The synthetic Sentinel-2 world used by the demo, the tests and the benchmarks.

:func:`generate_world` writes Theia L2A products of several overlapping
tiles over one continuous landscape, the land cover of every pixel, dirty
ground-truth polygons and a ready chain configuration; :func:`tile_grid`
gives the 10 m grid of a tile. The products can be written in other layouts
too (:data:`LAYOUTS`: Theia zips, Sen2Cor SAFE, STAC, Landsat 8), all
converted from the same simulated Theia products. A world may be cut into
eco-regions (``regions=2`` to 4, :mod:`sitsmap.synth.regions`) whose crops
grow weeks apart and look alike across classes, with a region layer
``regions.gpkg`` for one model per region.
"""

from sitsmap.synth.layout import tile_grid
from sitsmap.synth.layouts import LAYOUTS
from sitsmap.synth.world import WorldSummary, generate_world

__all__ = ["LAYOUTS", "WorldSummary", "generate_world", "tile_grid"]
