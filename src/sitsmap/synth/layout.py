"""Where the synthetic tiles lie and when they are seen.

Tiles follow the Sentinel-2 (MGRS) grid of UTM zone 31N: ``T31TCJ``'s
upper-left corner is at (300000, 4900020) as on the real grid, column
letters go east and row letters go north (MGRS letters skip I and O), and
neighbours overlap as real tiles do: real tiles are 109 800 m wide on a
99 960 m spacing, so a tile of ``size`` pixels is spaced
``round(size * 99960 / 109800)`` pixels from its neighbours. Every tile
lies on the same 10 m pixel lattice.

Each tile has its own acquisitions (its own orbit): a 5-day revisit with a
per-tile phase, Sentinel-2A and 2B alternating, a few dates missing, a
product time around 10:5x UTC.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from affine import Affine
from rasterio.crs import CRS

from sitsmap.errors import ConfigError
from sitsmap.io.raster import RasterGrid
from sitsmap.synth.noise import rng_for, text_key

PIXEL_SIZE = 10.0
"""Pixel size of the 10 m bands (metres)."""

CRS_UTM31N = CRS.from_epsg(32631)
REFERENCE_TILE = "T31TCJ"
REFERENCE_UPPER_LEFT = (300000.0, 4900020.0)
REAL_TILE_WIDTH_M = 109800
REAL_TILE_SPACING_M = 99960
MGRS_COLUMNS = "ABCDEFGH"
"""MGRS 100 km column letters of UTM zone 31 (zone number mod 3 = 1), west to east."""
MGRS_ROWS = "ABCDEFGHJKLMNPQRSTUV"
"""MGRS 100 km row letters (no I, no O), south to north."""
TILE_PATTERN = re.compile(r"^T31T(?P<column>[A-H])(?P<row>[A-HJ-NP-V])$")

REVISIT_DAYS = 5
MISSING_DATE_PROBABILITY = 0.1
_STREAM_DATES = 11


@dataclass(frozen=True)
class TilePosition:
    """A tile's place on the grid, counted in tile spacings from ``T31TCJ``."""

    name: str
    column: int
    row: int


@dataclass(frozen=True)
class Acquisition:
    """One product to generate: a tile seen by one satellite at one date and time."""

    tile: str
    date: dt.date
    satellite: str
    time: dt.time

    @property
    def name(self) -> str:
        """Theia product name, e.g. ``SENTINEL2A_20180115-105523-457_L2A_T31TCJ_C_V2-2``."""
        clock = f"{self.time:%H%M%S}-{self.time.microsecond // 1000:03d}"
        return f"SENTINEL2{self.satellite}_{self.date:%Y%m%d}-{clock}_L2A_{self.tile}_C_V2-2"


def parse_tile(name: str) -> TilePosition:
    """Return the grid position of a tile name such as ``T31TCJ``.

    Raises
    ------
    ConfigError
        If the name is not a zone-31 ``T31T<column><row>`` MGRS tile.
    """
    match = TILE_PATTERN.match(name)
    if match is None:
        raise ConfigError(
            f"unknown tile {name!r}: expected T31T + an MGRS column letter A-H and row letter "
            "(e.g. T31TCJ)"
        )
    column = MGRS_COLUMNS.index(match["column"]) - MGRS_COLUMNS.index(REFERENCE_TILE[4])
    row = MGRS_ROWS.index(match["row"]) - MGRS_ROWS.index(REFERENCE_TILE[5])
    return TilePosition(name, column, row)


def tile_spacing_pixels(size: int) -> int:
    """Distance between neighbouring tiles' corners, in 10 m pixels."""
    return round(size * REAL_TILE_SPACING_M / REAL_TILE_WIDTH_M)


def tile_grid(tile: str, size: int) -> RasterGrid:
    """Return the 10 m grid of ``tile`` in a world of ``size``-pixel tiles (EPSG:32631).

    Parameters
    ----------
    tile : str
        Tile name, e.g. ``"T31TCJ"``.
    size : int
        Tile width and height in 10 m pixels.

    Returns
    -------
    RasterGrid
        ``size`` x ``size`` pixels of 10 m in UTM zone 31N.
    """
    position = parse_tile(tile)
    spacing = tile_spacing_pixels(size) * PIXEL_SIZE
    left = REFERENCE_UPPER_LEFT[0] + position.column * spacing
    top = REFERENCE_UPPER_LEFT[1] + position.row * spacing
    transform = Affine(PIXEL_SIZE, 0.0, left, 0.0, -PIXEL_SIZE, top)
    return RasterGrid(size, size, transform, CRS_UTM31N)


def coarse_grid(grid: RasterGrid, factor: int = 2) -> RasterGrid:
    """Return ``grid`` with pixels ``factor`` times larger (the 20 m grid of a tile)."""
    transform = grid.transform @ Affine.scale(factor)
    return RasterGrid(grid.width // factor, grid.height // factor, transform, grid.crs)


def acquisitions(tile: str, start: dt.date, end: dt.date, seed: int) -> list[Acquisition]:
    """Return the acquisitions of ``tile`` between ``start`` and ``end`` (inclusive).

    Dates come every :data:`REVISIT_DAYS` days with a per-tile phase (a
    tile's orbit); the satellite alternates between A and B; about
    :data:`MISSING_DATE_PROBABILITY` of the dates are missing (never all).
    """
    position = parse_tile(tile)
    phase = (2 * position.column + position.row + seed) % REVISIT_DAYS
    rng = rng_for(seed, _STREAM_DATES, text_key(tile))
    first = start.toordinal() + (phase - start.toordinal()) % REVISIT_DAYS
    ordinals = list(range(first, end.toordinal() + 1, REVISIT_DAYS))
    kept = [o for o in ordinals if rng.random() >= MISSING_DATE_PROBABILITY] or ordinals[:1]
    pass_seconds = 10 * 3600 + 50 * 60 + 90 - 25 * position.row + 10 * position.column
    products = []
    for ordinal in kept:
        satellite = "AB"[((ordinal - phase) // REVISIT_DAYS) % 2]
        seconds = pass_seconds + int(rng.integers(0, 300))
        clock = dt.time(
            seconds // 3600, seconds // 60 % 60, seconds % 60, int(rng.integers(0, 1000)) * 1000
        )
        products.append(Acquisition(tile, dt.date.fromordinal(ordinal), satellite, clock))
    return products


def gradient_frame(size: int) -> tuple[float, float, float]:
    """Return ``(west, south, extent)`` of the default 2 x 2 block of tiles (metres).

    The regional gradient goes from 0 at the south-west corner of ``T31TCJ``
    to 1 at the north-east corner of ``T31TDK``, whatever tiles are generated.
    """
    extent = (tile_spacing_pixels(size) + size) * PIXEL_SIZE
    west = REFERENCE_UPPER_LEFT[0]
    south = REFERENCE_UPPER_LEFT[1] - size * PIXEL_SIZE
    return west, south, extent
