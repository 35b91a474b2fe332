"""Eco-regions of the synthetic world: where they lie and the polygons of the region layer.

A world of ``count`` regions (1 to :data:`MAX_REGIONS`) is cut into
``count`` bands running south to north over the union of its tiles, ``r1``
in the west to ``r4`` in the east. Their borders are wavy (one sine period
over the world's height, :data:`WAVE_AMPLITUDE` of a band's width) so that
a border crosses the tiles rather than running along their overlaps.

A parcel belongs to the region of its seed point: the border of the region
layer follows the parcels' edges, so every pixel and every ground-truth
polygon lies in the region its parcel was given. What a region changes (the
crop calendars, the canopy, the soil, the green spectrum, the class mix) is
in :mod:`sitsmap.synth.phenology`, :mod:`sitsmap.synth.spectra` and
:mod:`sitsmap.synth.landscape`, as functions of the region index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely

from sitsmap.errors import ConfigError
from sitsmap.synth.landscape import PARCEL_CELL_M, Bounds, Landscape

MAX_REGIONS = 4
WAVE_AMPLITUDE = 0.35
"""Amplitude of a border's wave, as a share of a band's width."""
WAVE_NODES = 65
"""Vertices of a border: the border *is* this polyline (no curve sampled by it)."""
LAYER_MARGIN_M = 1000.0
"""How far the region layer reaches beyond the world's extent."""
SEED_REACH_M = PARCEL_CELL_M * float(np.sqrt(2.0)) + 1.0
"""Every point lies within this distance of its parcel's seed (a seed in every cell)."""
NEIGHBOUR_REACH_M = 2.0 * SEED_REACH_M + PARCEL_CELL_M
"""Seeds this much further from a border than :data:`SEED_REACH_M` make its cells exact."""


@dataclass(frozen=True)
class RegionLayout:
    """The eco-regions of a world: ``count`` wavy bands over ``extent``.

    Parameters
    ----------
    count : int
        Number of regions, 1 to :data:`MAX_REGIONS`.
    extent : tuple of float
        ``(left, bottom, right, top)`` of the world (the union of its tiles), metres.
    """

    count: int
    extent: Bounds

    @property
    def ids(self) -> tuple[str, ...]:
        """Region ids, west to east: ``r1``, ``r2`` and so on."""
        return tuple(f"r{number + 1}" for number in range(self.count))

    def _nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """``y`` of the border vertices and their ``x`` offset (metres), margin included."""
        _, bottom, _, top = self.extent
        reach = LAYER_MARGIN_M + NEIGHBOUR_REACH_M
        y = np.linspace(bottom - reach, top + reach, WAVE_NODES)
        amplitude = WAVE_AMPLITUDE * (self.extent[2] - self.extent[0]) / self.count
        return y, amplitude * np.sin(2.0 * np.pi * (y - bottom) / (top - bottom))

    def border_x(self, border: int, y: np.ndarray) -> np.ndarray:
        """``x`` of a border at heights ``y``.

        Border ``b`` (1 to ``count - 1``) lies between regions ``b - 1`` and ``b``.
        """
        left, _, right, _ = self.extent
        nodes_y, offset = self._nodes()
        return left + (right - left) * border / self.count + np.interp(y, nodes_y, offset)

    def index(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """uint8 region index of points (0 west of the first border)."""
        x, y = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
        index = np.zeros(x.shape, dtype=np.uint8)
        for border in range(1, self.count):
            index += (x >= self.border_x(border, y)).astype(np.uint8)
        return index

    def borders(self) -> list[shapely.LineString]:
        """The borders as polylines running beyond the region layer's margin."""
        y, _ = self._nodes()
        return [
            shapely.LineString(np.column_stack([self.border_x(border, y), y]))
            for border in range(1, self.count)
        ]

    def layer_box(self) -> shapely.Polygon:
        """The world's extent widened by :data:`LAYER_MARGIN_M`: what the layer covers."""
        left, bottom, right, top = self.extent
        return shapely.box(
            left - LAYER_MARGIN_M,
            bottom - LAYER_MARGIN_M,
            right + LAYER_MARGIN_M,
            top + LAYER_MARGIN_M,
        )


def region_layout(count: int, extent: Bounds) -> RegionLayout:
    """Return the layout of ``count`` regions over a world's ``extent``.

    Raises
    ------
    ConfigError
        If ``count`` is not 1 to :data:`MAX_REGIONS`.
    """
    if not 1 <= count <= MAX_REGIONS:
        raise ConfigError(f"regions must be 1 to {MAX_REGIONS} (got {count})")
    return RegionLayout(count, tuple(float(v) for v in extent))


def region_polygons(landscape: Landscape) -> list[shapely.Geometry]:
    """Polygons of the landscape's regions, in :attr:`RegionLayout.ids` order (world CRS).

    They cover :meth:`RegionLayout.layer_box` without gap or overlap; a
    region is the union of the parcels (Voronoi cells of their seeds) it
    holds, so its border follows parcel edges.

    Raises
    ------
    ConfigError
        If the landscape has no regions, or if a region holds no parcel (a
        world too small for its regions).
    """
    layout = landscape.regions
    if layout is None:
        raise ConfigError("the landscape has no eco-regions")
    box = layout.layer_box()
    if layout.count == 1:
        return [box]
    cells, cell_region = _border_cells(landscape, layout, box)
    faces = _faces(box, cells)
    region = _face_regions(layout, faces, cells, cell_region)
    polygons = [shapely.coverage_union_all(faces[region == n]) for n in range(layout.count)]
    empty = [name for name, polygon in zip(layout.ids, polygons, strict=True) if polygon.is_empty]
    if empty:
        raise ConfigError(
            f"region(s) {empty} hold no parcel: give fewer regions, a larger size or more tiles"
        )
    return polygons


def _border_cells(
    landscape: Landscape, layout: RegionLayout, box: shapely.Polygon
) -> tuple[np.ndarray, np.ndarray]:
    """Exact Voronoi cells (and regions) of the parcels whose cell may cross a border."""
    x, y, near = _seeds_near(landscape, layout.borders(), box, SEED_REACH_M + NEIGHBOUR_REACH_M)
    points = shapely.points(x, y)
    left, bottom, right, top = shapely.bounds(shapely.multipoints(points)).tolist()
    envelope = shapely.box(left, bottom, right, top).buffer(10.0 * PARCEL_CELL_M)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(points), extend_to=envelope, ordered=True)
    )
    chosen = (near <= SEED_REACH_M) & shapely.dwithin(points, box, SEED_REACH_M)
    return cells[chosen], layout.index(x[chosen], y[chosen])


def _seeds_near(
    landscape: Landscape, borders: Sequence[shapely.LineString], box: shapely.Polygon, reach: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parcel seeds within ``reach`` of a border, around ``box``, each once.

    Returns their ``x``, ``y`` and distance to the nearest border.
    """
    _, bottom, _, top = box.bounds
    parts = []
    for border in borders:
        left, _, right, _ = border.bounds
        parts.append(landscape.seeds((left - reach, bottom - reach, right + reach, top + reach)))
    x, y, key = (np.concatenate(values) for values in zip(*parts, strict=True))
    _, first = np.unique(key, return_index=True)
    x, y = x[first], y[first]
    close = shapely.distance(shapely.points(x, y)[:, None], np.asarray(borders)[None, :])
    distance = close.min(axis=1)
    keep = distance <= reach
    return x[keep], y[keep], distance[keep]


def _faces(box: shapely.Polygon, cells: np.ndarray) -> np.ndarray:
    """The pieces the box's outline and the cells' outlines cut the box into."""
    lines = shapely.union_all([box.boundary, *shapely.boundary(cells)])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
    return faces[shapely.contains(box, shapely.point_on_surface(faces))]


def _face_regions(
    layout: RegionLayout, faces: np.ndarray, cells: np.ndarray, cell_region: np.ndarray
) -> np.ndarray:
    """Region of each face: its border cell's, or else the band it lies in.

    A face outside every border cell belongs to parcels whose seeds lie
    farther from any border than their cells reach: on their band's side.
    """
    inside = shapely.point_on_surface(faces)
    region = layout.index(shapely.get_x(inside), shapely.get_y(inside))
    if cells.size:
        face, cell = shapely.STRtree(cells).query(inside, predicate="within")
        region[face] = cell_region[cell]
    return region
