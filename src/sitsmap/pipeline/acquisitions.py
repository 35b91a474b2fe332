"""What init learns about the inputs, shared by every later step.

One JSON document (``init/acquisitions.json``) holds each sensor's temporal
grid shared by all tiles and its kept bands, the static features, the feature
names and each tile's grid, so every task builds exactly the same features.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from sitsmap.errors import InputDataError
from sitsmap.io.jsonfile import read_json, write_json
from sitsmap.io.raster import RasterGrid
from sitsmap.pipeline.context import RunContext
from sitsmap.pipeline.sources import find_tile_stacks, static_layers
from sitsmap.preprocessing.features import FeatureBlock, feature_variables
from sitsmap.preprocessing.raw_dates import raw_feature_names
from sitsmap.preprocessing.tile import (
    SensorSeries,
    TileSeries,
    TileStack,
    iter_series_features,
    series_windows,
)
from sitsmap.sensors import SensorDescription


@dataclass(frozen=True)
class SensorGrid:
    """One sensor's temporal grid (shared by all tiles), kept bands and feature variables."""

    sensor: str
    out_dates: tuple[dt.date, ...]
    bands: tuple[str, ...]
    variables: tuple[str, ...]
    raw_slots: int = 0
    """Observation slots of the raw-dates features; 0: gap-filled onto ``out_dates``."""

    @classmethod
    def of(
        cls,
        sensor: SensorDescription,
        out_dates: Sequence[dt.date],
        bands: Sequence[str],
        raw_slots: int = 0,
    ) -> SensorGrid:
        """The grid of ``sensor``: its bands' and indices' names as its features use them."""
        variables = tuple(feature_variables(bands, sensor))
        return cls(sensor.name, tuple(out_dates), tuple(bands), variables, raw_slots)

    @property
    def feature_names(self) -> list[str]:
        """Its features' names (``sentinel2_b2_20180101`` band-major, or raw-dates slots)."""
        if self.raw_slots:
            return raw_feature_names(self.sensor, self.variables, self.raw_slots)
        stamps = [d.strftime("%Y%m%d") for d in self.out_dates]
        return [f"{self.sensor}_{v}_{stamp}" for v in self.variables for stamp in stamps]


@dataclass(frozen=True)
class Acquisitions:
    """The sensors' temporal grids, the static features and the tiles' grids."""

    sensors: tuple[SensorGrid, ...]
    grids: dict[str, RasterGrid]
    input_dates: dict[str, dict[str, tuple[dt.date, ...]]]
    static: tuple[str, ...] = ()

    @property
    def out_dates(self) -> tuple[dt.date, ...]:
        """The first sensor's temporal grid (the deep temporal models' time axis)."""
        return self.sensors[0].out_dates

    @property
    def n_dates(self) -> int:
        """Length of the temporal networks' time axis: grid dates, or raw observation slots."""
        return self.raw_slots or len(self.out_dates)

    @property
    def day_of_year(self) -> list[int] | None:
        """The grid dates' days of year (positional encodings); None: raw dates carry theirs."""
        if self.raw_slots:
            return None
        return [d.timetuple().tm_yday for d in self.out_dates]

    @property
    def raw_slots(self) -> int:
        """The first sensor's raw observation slots (0: gap-filled features)."""
        return self.sensors[0].raw_slots

    @property
    def bands(self) -> tuple[str, ...]:
        """The first sensor's kept bands."""
        return self.sensors[0].bands

    @property
    def single_series(self) -> bool:
        """Whether the features are one sensor's bands and indices over one time axis."""
        return len(self.sensors) == 1 and not self.static

    @property
    def feature_names(self) -> list[str]:
        """Names of the features, in the order the feature function stacks them."""
        return [n for grid in self.sensors for n in grid.feature_names] + list(self.static)

    def to_document(self) -> dict:
        """A JSON-friendly form."""
        return {
            "sensors": [
                {
                    "sensor": grid.sensor,
                    "out_dates": [d.isoformat() for d in grid.out_dates],
                    "bands": list(grid.bands),
                    "variables": list(grid.variables),
                    "raw_slots": grid.raw_slots,
                }
                for grid in self.sensors
            ],
            "static": list(self.static),
            "feature_names": self.feature_names,
            "tiles": {
                tile: {
                    "crs": grid.crs.to_wkt(),
                    "transform": list(grid.transform)[:6],
                    "width": grid.width,
                    "height": grid.height,
                    "input_dates": {
                        sensor: [d.isoformat() for d in dates]
                        for sensor, dates in self.input_dates[tile].items()
                    },
                }
                for tile, grid in self.grids.items()
            },
        }

    @classmethod
    def from_document(cls, document: dict) -> Acquisitions:
        """Inverse of :meth:`to_document`."""
        tiles = document["tiles"]
        return cls(
            sensors=tuple(
                SensorGrid(
                    grid["sensor"],
                    tuple(dt.date.fromisoformat(d) for d in grid["out_dates"]),
                    tuple(grid["bands"]),
                    tuple(grid["variables"]),
                    int(grid.get("raw_slots", 0)),
                )
                for grid in document["sensors"]
            ),
            grids={
                t: RasterGrid(
                    v["width"], v["height"], Affine(*v["transform"]), CRS.from_wkt(v["crs"])
                )
                for t, v in tiles.items()
            },
            input_dates={
                t: {
                    sensor: tuple(dt.date.fromisoformat(d) for d in dates)
                    for sensor, dates in v["input_dates"].items()
                }
                for t, v in tiles.items()
            },
            static=tuple(document.get("static", ())),
        )


def save_acquisitions(context: RunContext, acquisitions: Acquisitions) -> None:
    """Write the acquisitions document of the run."""
    write_json(context.layout.acquisitions, acquisitions.to_document())


def load_acquisitions(context: RunContext) -> Acquisitions:
    """Read the acquisitions document written by init."""
    return Acquisitions.from_document(read_json(context.layout.acquisitions))


def tile_stacks(context: RunContext, tile: str) -> list[TileStack]:
    """Every source's products of ``tile`` within its configured date range."""
    return find_tile_stacks(context.config, tile)


def tile_stack(context: RunContext, tile: str, acquisitions: Acquisitions) -> TileSeries:
    """The tile's series: each sensor's products on init's temporal grid, and static layers."""
    stacks = tile_stacks(context, tile)
    sensors = tuple(
        SensorSeries(stack, grid.out_dates, grid.bands, grid.raw_slots)
        for stack, grid in zip(stacks, acquisitions.sensors, strict=True)
    )
    static = tuple(static_layers(context.config, tile))
    series = TileSeries(tile, stacks[0].grid, sensors, static)
    names = tuple(name for layer in static for name in layer.names)
    if names != acquisitions.static:
        raise InputDataError(
            f"tile {tile}'s static features {list(names)} differ from the first tile's "
            f"{list(acquisitions.static)}: give every tile the same rasters and band counts",
            context.config.chain.user_feat_path,
        )
    return series


def feature_windows(context: RunContext, series: TileSeries) -> list:
    """Row windows of a tile for feature computation, bounded in memory.

    ``python_data_managing.number_of_chunks`` fixes their number; otherwise a
    window's working set stays under ``max_chunk_megabytes``.
    """
    managing = context.config.python_data_managing
    return series_windows(series, managing.number_of_chunks, managing.max_chunk_megabytes)


def window_features(
    context: RunContext, series: TileSeries, windows: Sequence[Window]
) -> Iterator[tuple[Window, FeatureBlock]]:
    """Yield each window with its features (see :func:`iter_series_features`).

    A block's arrays are only valid until the next one is yielded. The task's
    share of the cores reads the dates.
    """
    return iter_series_features(series, windows, max_workers=context.threads)
