"""What init learns about the inputs, shared by every later step.

One JSON document (``init/acquisitions.json``) holds the temporal grid shared
by all tiles, the kept bands, the feature names and each tile's grid, so every
task builds exactly the same features.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from sitsmap.io.jsonfile import read_json, write_json
from sitsmap.io.raster import RasterGrid
from sitsmap.pipeline.context import RunContext
from sitsmap.preprocessing.features import FeatureBlock, feature_names
from sitsmap.preprocessing.tile import (
    TileStack,
    iter_tile_features,
    open_tile_stack,
    tile_windows,
)


@dataclass(frozen=True)
class Acquisitions:
    """The shared temporal grid and the tiles' grids."""

    out_dates: tuple[dt.date, ...]
    bands: tuple[str, ...]
    grids: dict[str, RasterGrid]
    input_dates: dict[str, tuple[dt.date, ...]]

    @property
    def feature_names(self) -> list[str]:
        """Names of the features, in the order the feature function stacks them."""
        return feature_names(self.bands, self.out_dates)

    def to_document(self) -> dict:
        """A JSON-friendly form."""
        return {
            "out_dates": [d.isoformat() for d in self.out_dates],
            "bands": list(self.bands),
            "feature_names": self.feature_names,
            "tiles": {
                tile: {
                    "crs": grid.crs.to_wkt(),
                    "transform": list(grid.transform)[:6],
                    "width": grid.width,
                    "height": grid.height,
                    "input_dates": [d.isoformat() for d in self.input_dates[tile]],
                }
                for tile, grid in self.grids.items()
            },
        }

    @classmethod
    def from_document(cls, document: dict) -> Acquisitions:
        """Inverse of :meth:`to_document`."""
        tiles = document["tiles"]
        return cls(
            out_dates=tuple(dt.date.fromisoformat(d) for d in document["out_dates"]),
            bands=tuple(document["bands"]),
            grids={
                t: RasterGrid(
                    v["width"], v["height"], Affine(*v["transform"]), CRS.from_wkt(v["crs"])
                )
                for t, v in tiles.items()
            },
            input_dates={
                t: tuple(dt.date.fromisoformat(d) for d in v["input_dates"])
                for t, v in tiles.items()
            },
        )


def save_acquisitions(context: RunContext, acquisitions: Acquisitions) -> None:
    """Write the acquisitions document of the run."""
    write_json(context.layout.acquisitions, acquisitions.to_document())


def load_acquisitions(context: RunContext) -> Acquisitions:
    """Read the acquisitions document written by init."""
    return Acquisitions.from_document(read_json(context.layout.acquisitions))


def tile_stack(context: RunContext, tile: str) -> TileStack:
    """The products of ``tile`` within the configured date range."""
    s2 = context.config.sentinel_2
    return open_tile_stack(context.config.chain.s2_path / tile, tile, s2.start_date, s2.end_date)


def feature_windows(context: RunContext, stack: TileStack, acquisitions: Acquisitions) -> list:
    """Row windows of a tile for feature computation, bounded in memory.

    ``python_data_managing.number_of_chunks`` fixes their number; otherwise a
    window's working set stays under ``max_chunk_megabytes``.
    """
    managing = context.config.python_data_managing
    return tile_windows(
        stack,
        acquisitions.out_dates,
        acquisitions.bands,
        managing.number_of_chunks,
        managing.max_chunk_megabytes,
    )


def window_features(
    context: RunContext, stack: TileStack, acquisitions: Acquisitions, windows: Sequence[Window]
) -> Iterator[tuple[Window, FeatureBlock]]:
    """Yield each window with its features (see :func:`iter_tile_features`).

    A block's arrays are only valid until the next one is yielded. The task's
    share of the cores reads the dates.
    """
    dates, bands = acquisitions.out_dates, acquisitions.bands
    return iter_tile_features(stack, windows, dates, bands, max_workers=context.threads)
