"""The ground of the synthetic world: fields, parcels, towns, roads and land cover.

Everything is a function of world coordinates (EPSG:32631 metres) and of
the seed, so that overlapping tiles see the same ground and a tile can be
generated window by window:

- smooth fields (value-noise octaves): *height* (forests, moorland and rock
  on hills, water in low spots), *soil* brightness, *parcel size*;
- *parcels*: nearest-seed (Voronoi) cells of points drawn per 500 m cell
  with a hashed generator, 1-10 ha, smaller in towns and larger on hills;
- *towns*: at most one per macro cell, with urban cores, suburbs and
  industrial zones; *roads* join neighbouring towns;
- a *gradient* from 0 (south-west) to 1 (north-east) of the default 2 x 2
  block of tiles, along which phenology is later and greener-up weaker;
- optional *eco-regions* (:mod:`sitsmap.synth.regions`): each parcel takes
  the region of its seed, which sets its soil brightness
  (:data:`REGION_SOIL`) and tilts the class mix (:data:`REGION_CLASS_BIAS`);
  region 0 (the only one of a one-region world) changes nothing.

The large scales (hills, towns) follow the tile size, so that a small demo
world still holds every kind of landscape; parcels keep their real size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import shapely
from scipy.special import ndtr
from scipy.stats import poisson

from sitsmap.synth.layout import PIXEL_SIZE, gradient_frame
from sitsmap.synth.noise import fbm_points, hash_key, hash_normal, hash_uniform

if TYPE_CHECKING:
    from sitsmap.synth.regions import RegionLayout

PARCEL_CELL_M = 500.0
"""Side of the cells in which parcel seeds are drawn (metres)."""
MAX_SEEDS_PER_CELL = 63
ROAD_HALF_WIDTH_M = 10.0
TOWN_PROBABILITY = 0.55

# Stream identifiers: each random quantity has its own hashed stream.
_HEIGHT, _SOIL, _PARCEL_SIZE, _TOWN, _COUNT, _POSITION = 101, 102, 103, 104, 105, 106
_CLASS, _TIMING, _AMPLITUDE, _SOIL_NOISE, _VARIANT, _VARIANT2 = 107, 108, 109, 110, 111, 112

_CHUNK = 65536

Bounds = tuple[float, float, float, float]
"""``(left, bottom, right, top)`` in metres."""

REGION_SOIL = (1.0, 1.08, 1.3, 0.85)
"""Soil (and rock, urban material) brightness factor of each eco-region (r1 to r4)."""
REGION_CLASS_BIAS: tuple[Mapping[int, float], ...] = (
    {},
    {7: 3.0, 9: 1.5, 13: 1.3, 16: 1.5, 17: 2.0, 8: 0.5, 12: 0.5},
    {15: 3.0, 14: 2.0, 9: 2.0, 10: 0.5, 13: 0.5, 16: 0.6},
    {10: 1.5, 12: 2.0, 5: 1.5, 13: 0.7},
)
"""Factor on the weight of classes in each eco-region (r1 to r4; 1 when not listed).

r2 has more peas, sunflower, grassland and forest and less soy and beet
than r1; r3 more vineyards, orchards and sunflower; r4 more maize, beet
and rapeseed.
"""


@dataclass(frozen=True)
class Towns:
    """Town centres, radii and macro-cell indexes (one town per macro cell at most)."""

    x: np.ndarray
    y: np.ndarray
    radius: np.ndarray
    cell_i: np.ndarray
    cell_j: np.ndarray

    def relative_distance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Distance to the nearest town centre divided by that town's radius (inf if none)."""
        x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
        if self.x.size == 0:
            return np.full(x.shape, np.inf)
        flat_x, flat_y = x.ravel(), y.ravel()
        out = np.empty(flat_x.size)
        for start in range(0, flat_x.size, _CHUNK):  # bounded memory for many points
            part = slice(start, start + _CHUNK)
            distance = np.hypot(flat_x[part, None] - self.x, flat_y[part, None] - self.y)
            out[part] = (distance / self.radius).min(axis=1)
        return out.reshape(x.shape)


@dataclass(frozen=True)
class Parcels:
    """Parcel seed points with their class and per-parcel traits (arrays of equal length).

    Attributes
    ----------
    x, y : numpy.ndarray
        Seed position (metres, EPSG:32631); a parcel is the set of pixels
        nearer to its seed than to any other.
    key : numpy.ndarray
        int64 identifier, the same whatever window the parcel is seen from.
    code : numpy.ndarray
        uint8 land-cover class (OSO nomenclature).
    gradient : numpy.ndarray
        Position along the regional gradient (0 south-west, 1 north-east).
    timing : numpy.ndarray
        Standard normal draw: the parcel's phenology is early or late.
    amplitude : numpy.ndarray
        Uniform draw: the parcel's vegetation is sparse or dense.
    soil : numpy.ndarray
        Soil (or material) brightness factor, around 1.
    variant, variant2 : numpy.ndarray
        Uniform draws for class-specific choices (mowing dates, cover crops, turbidity).
    region : numpy.ndarray
        uint8 eco-region index (0 for every parcel of a one-region world).
    """

    x: np.ndarray
    y: np.ndarray
    key: np.ndarray
    code: np.ndarray
    gradient: np.ndarray
    timing: np.ndarray
    amplitude: np.ndarray
    soil: np.ndarray
    variant: np.ndarray
    variant2: np.ndarray
    region: np.ndarray

    def __len__(self) -> int:
        return int(self.x.size)

    def take(self, index: np.ndarray) -> Parcels:
        """Return the parcels at ``index`` (an integer or boolean array)."""
        return Parcels(**{name: getattr(self, name)[index] for name in self.__dataclass_fields__})


@dataclass(frozen=True)
class Landscape:
    """The synthetic world's ground for one seed and tile size.

    Parameters
    ----------
    seed : int
        World seed.
    size : int
        Tile size in pixels; sets the large scales (hills, towns).
    regions : RegionLayout, optional
        Where the eco-regions lie; ``None``: one region (index 0) everywhere.
    """

    seed: int
    size: int
    regions: RegionLayout | None = None

    @cached_property
    def hill_scale(self) -> float:
        """Size of hills and valleys (metres)."""
        return float(np.clip(self.size * PIXEL_SIZE / 2.5, 400.0, 12000.0))

    @cached_property
    def town_cell(self) -> float:
        """Side of the macro cells that hold at most one town (metres)."""
        return float(np.clip(self.size * PIXEL_SIZE * 0.8, 1200.0, 20000.0))

    def height(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Height quantile in [0, 1] (uniformly distributed) at points."""
        scales = (self.hill_scale, self.hill_scale / 2.2, self.hill_scale / 5.0)
        return ndtr(fbm_points(x, y, scales, hash_key(self.seed, _HEIGHT)))

    def soil_factor(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Regional soil brightness factor (geology), around 1."""
        scales = (2.0 * self.hill_scale, self.hill_scale)
        return np.exp(0.15 * fbm_points(x, y, scales, hash_key(self.seed, _SOIL)))

    def gradient(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Position along the south-west to north-east gradient (0 to 1 over 2 x 2 tiles)."""
        west, south, extent = gradient_frame(self.size)
        return ((np.asarray(x) - west) + (np.asarray(y) - south)) / (2.0 * extent)

    def towns(self, bounds: Bounds, margin_cells: int = 1) -> Towns:
        """Return the towns whose macro cell lies within ``bounds`` widened by a margin."""
        cell = self.town_cell
        ci, cj = _cell_range(bounds, cell, margin_cells)
        key = hash_key(self.seed, _TOWN)
        exists = hash_uniform(key, ci, cj, 0) < TOWN_PROBABILITY
        ci, cj = ci[exists], cj[exists]
        x = (ci + 0.2 + 0.6 * hash_uniform(key, ci, cj, 1)) * cell
        y = (cj + 0.2 + 0.6 * hash_uniform(key, ci, cj, 2)) * cell
        radius = (0.09 + 0.12 * hash_uniform(key, ci, cj, 3)) * cell
        return Towns(x, y, radius, ci, cj)

    def roads(self, bounds: Bounds) -> list[shapely.LineString]:
        """Return the roads (straight segments between neighbouring towns) near ``bounds``."""
        towns = self.towns(bounds, margin_cells=2)
        where = {
            (int(i), int(j)): n
            for n, (i, j) in enumerate(zip(towns.cell_i, towns.cell_j, strict=True))
        }
        roads = []
        for (i, j), n in sorted(where.items()):
            for neighbour in _road_neighbours(where, i, j):
                roads.append(
                    shapely.LineString(
                        [(towns.x[n], towns.y[n]), (towns.x[neighbour], towns.y[neighbour])]
                    )
                )
        return roads

    def parcels(self, bounds: Bounds) -> Parcels:
        """Return every parcel whose seed cell lies within ``bounds`` widened by two cells.

        Two cells of margin make the nearest-seed cells of every point inside
        ``bounds`` exact: each cell holds at least one seed.
        """
        return self._parcel_traits(*self.seeds(bounds), bounds)

    def seeds(self, bounds: Bounds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions and keys ``(x, y, key)`` of the parcels of :meth:`parcels`, without traits."""
        cell = PARCEL_CELL_M
        ci, cj = _cell_range(bounds, cell, 2)
        centre_x, centre_y = (ci + 0.5) * cell, (cj + 0.5) * cell
        mean_area = self._mean_parcel_area(centre_x, centre_y, bounds)
        count_u = hash_uniform(hash_key(self.seed, _COUNT), ci, cj)
        counts = poisson.ppf(count_u, cell * cell / mean_area).astype(np.int64)
        counts = np.clip(counts, 1, MAX_SEEDS_PER_CELL)
        ci, cj = np.repeat(ci, counts), np.repeat(cj, counts)
        k = np.arange(ci.size) - np.repeat(np.cumsum(counts) - counts, counts)
        position = hash_key(self.seed, _POSITION)
        x = (ci + hash_uniform(position, ci, cj, k, 0)) * cell
        y = (cj + hash_uniform(position, ci, cj, k, 1)) * cell
        key = (ci * 65536 + cj) * 64 + k
        return x, y, key

    def region(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """uint8 eco-region index at points (0 everywhere without regions)."""
        if self.regions is None:
            return np.zeros(np.shape(x), dtype=np.uint8)
        return self.regions.index(x, y)

    def _mean_parcel_area(self, x: np.ndarray, y: np.ndarray, bounds: Bounds) -> np.ndarray:
        """Mean parcel area (m2) around points: 1-10 ha, smaller in towns, larger on hills."""
        size_field = fbm_points(x, y, (self.hill_scale,), hash_key(self.seed, _PARCEL_SIZE))
        area = 10.0 ** (4.0 + ndtr(1.5 * size_field))
        in_town = self.towns(bounds, margin_cells=2).relative_distance(x, y) < 1.2
        on_hill = self.height(x, y) > 0.8
        return area * np.where(in_town, 0.3, 1.0) * np.where(on_hill, 1.6, 1.0)

    def _parcel_traits(
        self, x: np.ndarray, y: np.ndarray, key: np.ndarray, bounds: Bounds
    ) -> Parcels:
        seed = self.seed
        gradient = self.gradient(x, y)
        region = self.region(x, y)
        town_distance = self.towns(bounds, margin_cells=2).relative_distance(x, y)
        draw = hash_uniform(hash_key(seed, _CLASS), key)
        code = assign_classes(self.height(x, y), town_distance, gradient, draw, region)
        soil = (
            self.soil_factor(x, y)
            * (1.0 + 0.15 * gradient)
            * np.exp(0.08 * hash_normal(hash_key(seed, _SOIL_NOISE), key))
            * np.asarray(REGION_SOIL)[region]
        )
        return Parcels(
            x=x,
            y=y,
            key=key,
            code=code,
            gradient=gradient.astype(np.float32),
            timing=hash_normal(hash_key(seed, _TIMING), key).astype(np.float32),
            amplitude=hash_uniform(hash_key(seed, _AMPLITUDE), key).astype(np.float32),
            soil=soil.astype(np.float32),
            variant=hash_uniform(hash_key(seed, _VARIANT), key).astype(np.float32),
            variant2=hash_uniform(hash_key(seed, _VARIANT2), key).astype(np.float32),
            region=region,
        )


def _cell_range(bounds: Bounds, cell: float, margin: int) -> tuple[np.ndarray, np.ndarray]:
    """Indexes (flattened) of the cells of side ``cell`` covering ``bounds`` plus a margin."""
    left, bottom, right, top = bounds
    i = np.arange(int(np.floor(left / cell)) - margin, int(np.floor(right / cell)) + margin + 1)
    j = np.arange(int(np.floor(bottom / cell)) - margin, int(np.floor(top / cell)) + margin + 1)
    ii, jj = np.meshgrid(i, j, indexing="ij")
    return ii.ravel().astype(np.int64), jj.ravel().astype(np.int64)


def _road_neighbours(where: dict[tuple[int, int], int], i: int, j: int) -> list[int]:
    """Towns a town is joined to: the next town east (or north-east) and north."""
    east = where.get((i + 1, j), where.get((i + 1, j + 1)))
    north = where.get((i, j + 1))
    return [n for n in (east, north) if n is not None]


# Land cover by landscape unit: (classes, weights at gradient 0, weights at gradient 1).
_URBAN_CORE = ((1, 3), (0.78, 0.22), (0.78, 0.22))
_SUBURB = ((2, 3, 13), (0.72, 0.16, 0.12), (0.72, 0.16, 0.12))
_SUMMIT = ((20, 19, 17), (0.4, 0.35, 0.25), (0.4, 0.35, 0.25))
_HILL = ((16, 17, 19, 18), (0.45, 0.25, 0.15, 0.15), (0.4, 0.3, 0.15, 0.15))
_SLOPE = (
    (16, 13, 15, 14, 18, 6),
    (0.18, 0.25, 0.22, 0.12, 0.13, 0.10),
    (0.22, 0.27, 0.14, 0.14, 0.13, 0.10),
)
_LOWLAND = (
    (13, 10, 8, 12, 16, 23),
    (0.45, 0.2, 0.1, 0.1, 0.1, 0.05),
    (0.45, 0.18, 0.06, 0.16, 0.1, 0.05),
)
_PLAIN = (
    (6, 10, 5, 9, 13, 8, 7, 12, 14, 15, 16),
    (0.27, 0.13, 0.07, 0.12, 0.13, 0.07, 0.06, 0.03, 0.03, 0.05, 0.04),
    (0.27, 0.13, 0.12, 0.04, 0.14, 0.04, 0.06, 0.08, 0.03, 0.03, 0.04),
)

WATER_BELOW = 0.045
LOWLAND_BELOW = 0.14
SLOPE_ABOVE = 0.68
HILL_ABOVE = 0.8
SUMMIT_ABOVE = 0.95


def assign_classes(
    height: np.ndarray,
    town_distance: np.ndarray,
    gradient: np.ndarray,
    draw: np.ndarray,
    region: np.ndarray | None = None,
) -> np.ndarray:
    """Land-cover class of parcels from where they lie and a uniform draw.

    Parameters
    ----------
    height : numpy.ndarray
        Height quantile in [0, 1].
    town_distance : numpy.ndarray
        Distance to the nearest town centre over its radius.
    gradient : numpy.ndarray
        Position along the regional gradient.
    draw : numpy.ndarray
        Uniform draw in [0, 1) per parcel.
    region : numpy.ndarray, optional
        Eco-region index per parcel: tilts the weights (:data:`REGION_CLASS_BIAS`);
        ``None`` or 0: today's mix.

    Returns
    -------
    numpy.ndarray
        uint8 class codes: urban in towns, water in low spots, forest,
        moorland and rock on hills, crops and grasslands on the plains.
    """
    units = [
        (town_distance < 0.5, _URBAN_CORE),
        (town_distance < 1.0, _SUBURB),
        (height < WATER_BELOW, ((23,), (1.0,), (1.0,))),
        (height > SUMMIT_ABOVE, _SUMMIT),
        (height > HILL_ABOVE, _HILL),
        (height > SLOPE_ABOVE, _SLOPE),
        (height < LOWLAND_BELOW, _LOWLAND),
        (np.ones_like(height, dtype=bool), _PLAIN),
    ]
    code = np.zeros(np.shape(height), dtype=np.uint8)
    done = np.zeros(np.shape(height), dtype=bool)
    for where, (classes, west, east) in units:
        chosen = where & ~done
        if chosen.any():
            bias = None if region is None else class_bias(classes, region[chosen])
            code[chosen] = _draw_class(
                classes, west, east, np.clip(gradient[chosen], 0, 1), draw[chosen], bias
            )
        done |= chosen
    return code


def class_bias(classes: Sequence[int], region: np.ndarray) -> np.ndarray:
    """Factor on the weight of each of ``classes`` for each parcel, ``(parcels, classes)``.

    Parameters
    ----------
    classes : sequence of int
        Classes of a landscape unit.
    region : numpy.ndarray
        Eco-region index of each parcel (see :data:`REGION_CLASS_BIAS`).

    Returns
    -------
    numpy.ndarray
        float64 factors, 1 for region 0 and for classes a region does not tilt.
    """
    table = np.array([[bias.get(c, 1.0) for c in classes] for bias in REGION_CLASS_BIAS])
    return table[np.asarray(region, dtype=np.intp)]


def _draw_class(
    classes: Sequence[int],
    west: Sequence[float],
    east: Sequence[float],
    gradient: np.ndarray,
    draw: np.ndarray,
    bias: np.ndarray | None = None,
) -> np.ndarray:
    weights = (1.0 - gradient[:, None]) * np.asarray(west) + gradient[:, None] * np.asarray(east)
    if bias is not None:
        weights = weights * bias
    cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    index = (draw[:, None] >= cumulative).sum(axis=1)
    return np.asarray(classes, dtype=np.uint8)[np.minimum(index, len(classes) - 1)]
