"""One tile of the synthetic world, simulated window by window (rows ``start:stop``).

:class:`TileScene` turns the landscape into arrays on the tile's 10 m grid:
the *static layers* of a window (which parcel each pixel belongs to, its
class, roads, within-field texture), the *ground* reflectance of a window on
a date, and the *observed product* (what the Theia L2A files hold: FRE bands
at 10 m and 20 m, CLM/EDG/SAT masks at both resolutions).

No array larger than a window is ever built, so tiles of 10 980 pixels are
generated in bounded memory; any window gives the same pixels as the whole.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import shapely
from affine import Affine
from rasterio.features import rasterize
from scipy.spatial import cKDTree

from sitsmap.io.raster import RasterGrid
from sitsmap.sensors import SENTINEL2_THEIA
from sitsmap.synth import atmosphere
from sitsmap.synth.landscape import ROAD_HALF_WIDTH_M, Landscape, Parcels
from sitsmap.synth.layout import PIXEL_SIZE, tile_grid
from sitsmap.synth.noise import fbm_grid, hash_key, text_key
from sitsmap.synth.phenology import (
    canopy_amplitude,
    cover_fractions,
    day_of_year,
    phenology_shift,
)
from sitsmap.synth.spectra import background_spectra, mix_spectra, texture_direction

ROAD_CODE = 4
_TEXTURE = 301
BANDS_10M = tuple(i for i, band in enumerate(SENTINEL2_THEIA.bands) if band.resolution == 10)
BANDS_20M = tuple(i for i, band in enumerate(SENTINEL2_THEIA.bands) if band.resolution == 20)
NOISE_MULTIPLICATIVE = 0.012
NOISE_ADDITIVE = 0.003
SATURATED_REFLECTANCE = 1.1


@dataclass(frozen=True)
class StaticLayers:
    """What does not change with the date in rows ``rows`` of a tile.

    Attributes
    ----------
    rows : range
        Tile rows of the window.
    present : numpy.ndarray
        Indexes (into the scene's parcels) of the parcels seen in the window;
        the last scene parcel stands for the roads.
    local : numpy.ndarray
        int32 ``(rows, cols)``: index into ``present`` of each pixel's parcel.
    code : numpy.ndarray
        uint8 ``(rows, cols)`` land-cover class of each pixel.
    texture : numpy.ndarray
        float32 ``(rows, cols)`` within-parcel variation (unit variance).
    """

    rows: range
    present: np.ndarray
    local: np.ndarray
    code: np.ndarray
    texture: np.ndarray


@dataclass(frozen=True)
class ProductArrays:
    """The content of one Theia L2A product for a window (10 m and 20 m arrays).

    ``fre10`` is int16 ``(4, rows, cols)`` (B2 B3 B4 B8), ``fre20`` int16
    ``(6, rows/2, cols/2)`` (B5 B6 B7 B8A B11 B12); masks are uint8.
    """

    fre10: np.ndarray
    fre20: np.ndarray
    clm: tuple[np.ndarray, np.ndarray]
    edg: tuple[np.ndarray, np.ndarray]
    sat: tuple[np.ndarray, np.ndarray]

    def band(self, name: str) -> np.ndarray:
        """The array of band ``name`` (``"B8A"``…)."""
        index = SENTINEL2_THEIA.band_names.index(name)
        if index in BANDS_10M:
            return self.fre10[BANDS_10M.index(index)]
        return self.fre20[BANDS_20M.index(index)]

    def mask(self, name: str, resolution_index: int) -> np.ndarray:
        """The mask ``name`` (CLM, EDG, SAT) at resolution index 1 (10 m) or 2 (20 m)."""
        return {"CLM": self.clm, "EDG": self.edg, "SAT": self.sat}[name][resolution_index - 1]


class TileScene:
    """A tile of the landscape: its grid, its parcels and roads, and how it is seen.

    Parameters
    ----------
    landscape : Landscape
        The world's ground.
    tile : str
        Tile name.
    """

    def __init__(self, landscape: Landscape, tile: str) -> None:
        self.landscape = landscape
        self.tile = tile
        self.tile_key = text_key(tile)
        self.grid: RasterGrid = tile_grid(tile, landscape.size)
        self.parcels: Parcels = _with_road_parcel(
            landscape.parcels(self.grid.bounds), landscape, self.grid
        )
        self.roads = [
            road
            for road in landscape.roads(self.grid.bounds)
            if road.intersects(shapely.box(*self.grid.bounds))
        ]
        self._tree = cKDTree(np.column_stack([self.parcels.x[:-1], self.parcels.y[:-1]]))

    @property
    def size(self) -> int:
        """Tile width and height in pixels."""
        return self.grid.width

    @cached_property
    def cloud_scale(self) -> float:
        """Size of the largest cloud structures (metres), following the tile size."""
        return float(np.clip(self.size * PIXEL_SIZE / 3.0, 300.0, 6000.0))

    @cached_property
    def _parcel_phenology(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.parcels
        return (
            phenology_shift(p.code, p.gradient, p.timing, p.region),
            canopy_amplitude(p.gradient, p.amplitude, p.region),
        )

    def coordinates(self, rows: range) -> tuple[np.ndarray, np.ndarray]:
        """World x of every column and y of ``rows`` (pixel centres)."""
        left, top = self.grid.transform.c, self.grid.transform.f
        x = left + (np.arange(self.size) + 0.5) * PIXEL_SIZE
        y = top - (np.arange(rows.start, rows.stop) + 0.5) * PIXEL_SIZE
        return x, y

    def static(self, rows: range) -> StaticLayers:
        """Parcels, classes and texture of ``rows`` (see :class:`StaticLayers`)."""
        x, y = self.coordinates(rows)
        xx, yy = np.meshgrid(x, y)
        _, nearest = self._tree.query(np.column_stack([xx.ravel(), yy.ravel()]))
        nearest = nearest.reshape(xx.shape)
        road = self._road_mask(rows)
        nearest[road] = len(self.parcels) - 1
        present, local = np.unique(nearest, return_inverse=True)
        texture = fbm_grid(x, y, (80.0, 35.0, 15.0), hash_key(self.landscape.seed, _TEXTURE))
        return StaticLayers(
            rows,
            present,
            local.reshape(xx.shape).astype(np.int32),
            self.parcels.code[nearest],
            texture.astype(np.float32),
        )

    def _road_mask(self, rows: range) -> np.ndarray:
        shape = (len(rows), self.size)
        if not self.roads:
            return np.zeros(shape, dtype=bool)
        transform = self.grid.transform @ Affine.translation(0, rows.start)
        shapes = [(road.buffer(ROAD_HALF_WIDTH_M, cap_style="flat"), 1) for road in self.roads]
        return rasterize(
            shapes, out_shape=shape, transform=transform, fill=0, dtype="uint8"
        ).astype(bool)

    def ground(self, layers: StaticLayers, date: dt.date) -> np.ndarray:
        """Clear-sky surface reflectance of a window, float32 ``(10, rows, cols)`` in 0-1."""
        p = self.parcels.take(layers.present)
        shift, amplitude = (a[layers.present] for a in self._parcel_phenology)
        doy = day_of_year(date)
        cover = cover_fractions(p.code, doy, shift, amplitude, p.variant, p.variant2, p.region)
        background = background_spectra(p.code, p.soil, p.variant, doy)
        spectra = mix_spectra(p.code, cover, background, p.region)
        direction = texture_direction(p.code, background, p.region)
        out = np.empty((spectra.shape[1], *layers.local.shape), dtype=np.float32)
        for band in range(spectra.shape[1]):
            out[band] = (
                spectra[:, band][layers.local] + layers.texture * direction[:, band][layers.local]
            )
        return np.clip(out, 0.0, 1.0, out=out)

    def observe(self, layers: StaticLayers, date: dt.date) -> ProductArrays:
        """The Theia L2A product of a window on ``date``: FRE bands and masks."""
        seed = self.landscape.seed
        x, y = self.coordinates(layers.rows)
        conditions = atmosphere.weather(date, seed)
        window_sky = atmosphere.sky(x, y, date, conditions, seed, self.cloud_scale)
        defects = atmosphere.product_defects(seed, self.tile_key, date, self.size)
        seen = atmosphere.through_sky(
            self.ground(layers, date), window_sky, conditions.cloud_brightness
        )
        noise = atmosphere.pixel_noise(
            seed, self.tile_key, date, layers.rows, self.size, seen.shape[0]
        )
        common = defects.gain * (1.0 + NOISE_MULTIPLICATIVE * noise[0])
        for band, plane in enumerate(seen):
            plane *= common
            plane += NOISE_ADDITIVE * noise[band + 1]
        saturated = self._saturated(layers.rows, defects)
        seen[:, saturated] = SATURATED_REFLECTANCE
        no_data = self._no_data(layers.rows, defects)
        clm = np.where(no_data, 0, atmosphere.cloud_mask(window_sky)).astype(np.uint8)
        sat = np.where(saturated & ~no_data, atmosphere.SATURATION_BITS_R1, 0).astype(np.uint8)
        edg = no_data.astype(np.uint8)
        return ProductArrays(
            fre10=_to_int16(seen[list(BANDS_10M)], no_data),
            fre20=_to_int16(block_mean(seen[list(BANDS_20M)]), block_any(edg) > 0),
            clm=(clm, block_any(clm)),
            edg=(edg, block_any(edg)),
            sat=(sat, block_any(sat)),
        )

    def _saturated(self, rows: range, defects: atmosphere.ProductDefects) -> np.ndarray:
        mask = np.zeros((len(rows), self.size), dtype=bool)
        inside = (defects.saturated_rows >= rows.start) & (defects.saturated_rows < rows.stop)
        mask[defects.saturated_rows[inside] - rows.start, defects.saturated_cols[inside]] = True
        return mask

    def _no_data(self, rows: range, defects: atmosphere.ProductDefects) -> np.ndarray:
        if defects.edge is None:
            return np.zeros((len(rows), self.size), dtype=bool)
        return defects.edge.no_data(np.arange(rows.start, rows.stop), np.arange(self.size))


def _with_road_parcel(parcels: Parcels, landscape: Landscape, grid: RasterGrid) -> Parcels:
    """Append one pseudo-parcel that gives every road pixel of the tile its spectrum.

    Roads look the same in every eco-region (the pseudo-parcel is in region 0).
    """
    left, bottom, right, top = grid.bounds
    x, y = np.array([(left + right) / 2]), np.array([(bottom + top) / 2])
    road = Parcels(
        x=x,
        y=y,
        key=np.array([-1], dtype=np.int64),
        code=np.array([ROAD_CODE], np.uint8),
        gradient=landscape.gradient(x, y).astype(np.float32),
        timing=np.zeros(1, np.float32),
        amplitude=np.full(1, 0.5, np.float32),
        soil=np.ones(1, np.float32),
        variant=np.full(1, 0.5, np.float32),
        variant2=np.full(1, 0.5, np.float32),
        region=np.zeros(1, np.uint8),
    )
    return Parcels(
        **{
            name: np.concatenate([getattr(parcels, name), getattr(road, name)])
            for name in Parcels.__dataclass_fields__
        }
    )


def block_mean(array: np.ndarray) -> np.ndarray:
    """Mean of 2 x 2 blocks over the last two axes (10 m to 20 m)."""
    *lead, rows, cols = array.shape
    return array.reshape(*lead, rows // 2, 2, cols // 2, 2).mean(axis=(-3, -1))


def block_any(mask: np.ndarray) -> np.ndarray:
    """Bitwise OR of 2 x 2 blocks of a uint8 mask (any flagged 10 m pixel flags the 20 m one)."""
    rows, cols = mask.shape
    blocks = mask.reshape(rows // 2, 2, cols // 2, 2)
    return np.bitwise_or.reduce(np.bitwise_or.reduce(blocks, axis=3), axis=1)


def _to_int16(reflectance: np.ndarray, no_data: np.ndarray) -> np.ndarray:
    """Reflectance x 10000 as int16, nodata where ``no_data``."""
    scaled = np.clip(np.rint(reflectance * SENTINEL2_THEIA.reflectance_scale), 1, 32000)
    out = scaled.astype(np.int16)
    out[:, no_data] = SENTINEL2_THEIA.nodata
    return out
