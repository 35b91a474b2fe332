"""Ground-truth polygons of the synthetic world, deliberately dirty.

A field survey's worth of parcels: 35 % of the parcels of common classes and
70 % of those of rare classes, among those lying wholly inside the imaged
area (their exact Voronoi cells less any road, shrunk by :data:`SHRINK_M`
like polygons digitised inside a field), plus pieces of road. Then the
defects real databases have, which the chain's check must find: parcels
split into two-part multipolygons, duplicated geometries, empty geometries
and self-intersecting (bow-tie) polygons.

In a world of eco-regions each surveyed polygon carries the ``region`` of
its parcel (road pieces crossing a region border are not surveyed); the
written ground truth keeps only ``id``, ``code`` and a continuous target,
as real surveys do.

The target (:mod:`sitsmap.synth.target`): each surveyed polygon's
``production`` is the biomass its parcel's simulated vegetation produced
over the year (noise-free), and :func:`with_target` adds the measured value
:data:`~sitsmap.synth.target.TARGET_FIELD` (``biomass``, t/ha) with its
error. Defective rows keep the value of the row they come from; the empty
geometries get their class's mean. None of this draws from the streams the
classification world is made of.
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import shapely
from shapely import ops

from sitsmap.synth.landscape import ROAD_HALF_WIDTH_M, Landscape
from sitsmap.synth.noise import hash_key, hash_uniform, rng_for
from sitsmap.synth.phenology import phenology_shift
from sitsmap.synth.scene import ROAD_CODE, TileScene
from sitsmap.synth.target import (
    TARGET_DECIMALS,
    TARGET_FIELD,
    annual_production,
    measured,
    parcel_production,
)

SURVEYED_SHARE = 0.35
"""Share of the parcels of a common class that are surveyed."""
RARE_SURVEYED_SHARE = 0.7
RARE_CLASSES = (1, 2, 3, 7, 14, 15, 17, 19, 20, 23)
"""Classes surveyed more often (as real surveys do), so that each has enough polygons."""
SHRINK_M = 12.0
MIN_AREA_M2 = 3000.0
ROAD_PIECE_M = 250.0
ROAD_SURVEYED_SHARE = 0.35
ROAD_POLYGON_HALF_WIDTH_M = 5.0
DEFECT_SHARE = 0.01
TRUTH_CRS = "EPSG:2154"
EMPTY_WORLD_CODE = 13
"""Class given to the empty geometries of a world too small to hold any surveyed parcel."""
_SURVEY, _ROAD_SURVEY, _DEFECTS = 401, 402, 403
PRODUCTION = "production"
"""Column of :func:`survey_parcels`: noise-free biomass of the year (t/ha), see
:mod:`sitsmap.synth.target`."""


def survey_parcels(
    scenes: Sequence[TileScene],
    footprint: shapely.Geometry,
    seed: int,
    regions: Sequence[shapely.Geometry] | None = None,
) -> gpd.GeoDataFrame:
    """Clean surveyed polygons (EPSG:32631): columns ``code``, ``key``, ``region``, ``production``.

    Parameters
    ----------
    scenes : sequence of TileScene
        The generated tiles.
    footprint : shapely geometry
        Union of the tiles' extents: surveyed parcels lie wholly inside.
    seed : int
        World seed (which parcels are surveyed).
    regions : sequence of shapely geometry, optional
        The eco-regions' polygons (EPSG:32631), in region index order: a road
        piece is surveyed only if it lies wholly in one. ``None``: one region.

    Returns
    -------
    geopandas.GeoDataFrame
        Parcels and road pieces; ``region`` is the eco-region index of each,
        :data:`PRODUCTION` the biomass its vegetation produced in the year.
    """
    roads = shapely.union_all(
        [road.buffer(ROAD_HALF_WIDTH_M + SHRINK_M) for scene in scenes for road in scene.roads]
    )
    keys, codes, cells, region, production = (
        np.concatenate(parts)
        for parts in zip(*(_scene_parcels(scene, seed) for scene in scenes), strict=True)
    )
    _, first = np.unique(keys, return_index=True)  # a parcel seen by two tiles counts once
    keys, codes, cells = keys[first], codes[first], cells[first]
    region, production = region[first], production[first]
    shapely.prepare(footprint)
    shapely.prepare(roads)
    keep = shapely.within(cells, footprint)
    crossed = shapely.intersects(cells, roads)
    cells[crossed] = [_largest_part(cell) for cell in shapely.difference(cells[crossed], roads)]
    shrunk = shapely.buffer(cells[keep], -SHRINK_M)
    shrunk = np.array([_largest_part(cell) for cell in shrunk], dtype=object)
    large = ~shapely.is_empty(shrunk) & (shapely.area(shrunk) >= MIN_AREA_M2)
    frame = gpd.GeoDataFrame(
        {
            "code": codes[keep][large],
            "key": keys[keep][large],
            "region": region[keep][large],
            PRODUCTION: production[keep][large],
        },
        geometry=shrunk[large],
        crs=scenes[0].grid.crs,
    )
    roads_frame = survey_roads(scenes, footprint, seed, regions)
    return gpd.GeoDataFrame(
        gpd.pd.concat([frame, roads_frame], ignore_index=True), crs=frame.crs
    ).sort_values("key", ignore_index=True)


def _scene_parcels(
    scene: TileScene, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Keys, codes, exact cell polygons, regions and production of the surveyed parcels.

    Only the parcels seeded in the tile.
    """
    parcels = scene.parcels.take(np.arange(len(scene.parcels) - 1))  # without the road parcel
    left, bottom, right, top = scene.grid.bounds
    inside = (parcels.x >= left) & (parcels.x < right) & (parcels.y >= bottom) & (parcels.y < top)
    share = np.where(np.isin(parcels.code, RARE_CLASSES), RARE_SURVEYED_SHARE, SURVEYED_SHARE)
    chosen = np.flatnonzero(inside & (hash_uniform(hash_key(seed, _SURVEY), parcels.key) < share))
    envelope = shapely.box(left - 5000.0, bottom - 5000.0, right + 5000.0, top + 5000.0)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(
            shapely.multipoints(np.column_stack([parcels.x, parcels.y])),
            extend_to=envelope,
            ordered=True,
        )
    )
    return (
        parcels.key[chosen],
        parcels.code[chosen].astype(np.int64),
        cells[chosen],
        parcels.region[chosen].astype(np.int64),
        parcel_production(parcels.take(chosen)),
    )


def _largest_part(geometry: shapely.Geometry) -> shapely.Geometry:
    """The largest polygon of a geometry (a parcel cut by a road keeps its larger side)."""
    parts = shapely.get_parts(geometry)
    if parts.size <= 1:
        return geometry
    return parts[np.argmax(shapely.area(parts))]


def survey_roads(
    scenes: Sequence[TileScene],
    footprint: shapely.Geometry,
    seed: int,
    regions: Sequence[shapely.Geometry] | None = None,
) -> gpd.GeoDataFrame:
    """Surveyed road pieces (narrow polygons along the road axis) outside towns.

    With ``regions`` (polygons in region index order) a piece is kept only if
    it lies wholly in one region, whose index it gets; otherwise in region 0.
    Columns ``code``, ``key``, ``region`` and :data:`PRODUCTION`.
    """
    landscape: Landscape = scenes[0].landscape
    towns = landscape.towns(shapely.bounds(footprint).tolist(), margin_cells=2)
    roads = {
        tuple(np.round(road.coords, 1).ravel()): road for scene in scenes for road in scene.roads
    }
    keys, polygons, in_region = [], [], []
    for number, (_, road) in enumerate(sorted(roads.items())):
        road_key = hash_key(seed, _ROAD_SURVEY, *np.round(road.coords).astype(np.int64).ravel())
        for piece in range(int(road.length // ROAD_PIECE_M)):
            line = ops.substring(road, piece * ROAD_PIECE_M, (piece + 1) * ROAD_PIECE_M)
            middle = line.interpolate(0.5, normalized=True)
            if (
                hash_uniform(road_key, piece) >= ROAD_SURVEYED_SHARE
                or towns.relative_distance(middle.x, middle.y) < 1.2
            ):
                continue
            polygon = line.buffer(ROAD_POLYGON_HALF_WIDTH_M, cap_style="flat")
            region = _region_of(polygon, regions)
            if polygon.within(footprint) and region is not None:
                keys.append(-(number * 10000 + piece + 1))
                polygons.append(polygon)
                in_region.append(region)
    return gpd.GeoDataFrame(
        {
            "code": [ROAD_CODE] * len(keys),
            "key": keys,
            "region": in_region,
            PRODUCTION: _road_production(landscape, polygons),
        },
        geometry=polygons,
        crs=scenes[0].grid.crs,
    )


def _road_production(landscape: Landscape, polygons: Sequence[shapely.Geometry]) -> np.ndarray:
    """Biomass of the road verges' greenery under road pieces (t/ha), as the scene renders roads.

    The road pseudo-parcel of a scene is on time (no own timing) at the
    gradient of its place, in region 0 (see :mod:`sitsmap.synth.scene`).
    """
    count = len(polygons)
    if count == 0:
        return np.zeros(0, dtype=np.float64)
    centre = shapely.centroid(np.asarray(polygons, dtype=object))
    gradient = landscape.gradient(shapely.get_x(centre), shapely.get_y(centre))
    code = np.full(count, ROAD_CODE, np.uint8)
    shift = phenology_shift(code, np.asarray(gradient, np.float32), np.zeros(count, np.float32))
    half = np.full(count, 0.5, np.float32)
    return annual_production(code, shift, half, half, half)


def with_target(frame: gpd.GeoDataFrame, seed: int) -> gpd.GeoDataFrame:
    """Add the measured target :data:`~sitsmap.synth.target.TARGET_FIELD` to surveyed polygons.

    Parameters
    ----------
    frame : geopandas.GeoDataFrame
        :func:`survey_parcels`' polygons (with ``key`` and :data:`PRODUCTION`).
    seed : int
        World seed (the measurement errors).

    Returns
    -------
    geopandas.GeoDataFrame
        ``frame`` with the target column (float64, t/ha).
    """
    signal = frame[PRODUCTION].to_numpy(dtype=np.float64)
    value = measured(signal, frame["key"].to_numpy(dtype=np.int64), seed)
    return frame.assign(**{TARGET_FIELD: value})


def _region_of(polygon: shapely.Geometry, regions: Sequence[shapely.Geometry] | None) -> int | None:
    """Index of the region holding all of ``polygon`` (0 without regions; None if none)."""
    if regions is None:
        return 0
    return next((n for n, region in enumerate(regions) if polygon.within(region)), None)


def add_defects(frame: gpd.GeoDataFrame, seed: int) -> gpd.GeoDataFrame:
    """Return ``frame`` with defects added, rows shuffled and ``id`` numbered from 1.

    About :data:`DEFECT_SHARE` of the rows (at least two) of each kind:
    two-part multipolygons (a parcel cut in two), bow-tie polygons,
    duplicated rows and rows with an empty geometry. A target column
    (:data:`~sitsmap.synth.target.TARGET_FIELD`) of ``frame`` is kept: defective
    rows keep their value, empty geometries get their class's mean. Columns:
    ``id``, ``code``, the target if any, ``geometry``.
    """
    rng = rng_for(seed, _DEFECTS)
    count = max(2, round(DEFECT_SHARE * len(frame)))
    frame = frame.copy()
    large = np.flatnonzero((frame.area > 15000.0).to_numpy() & (frame["code"] != ROAD_CODE))
    chosen = rng.choice(large, size=min(2 * count, large.size), replace=False)
    geometries = frame.geometry.to_numpy().copy()
    for index in chosen[:count]:
        geometries[index] = _split_in_two(geometries[index])
    for index in chosen[count:]:
        geometries[index] = _bow_tie(geometries[index])
    frame = frame.set_geometry(geometries)
    duplicates = frame.iloc[rng.choice(len(frame), size=min(count, len(frame)), replace=False)]
    codes = frame["code"].to_numpy() if len(frame) else np.array([EMPTY_WORLD_CODE])
    empties = gpd.GeoDataFrame(
        {"code": rng.choice(codes, size=count), "key": np.zeros(count, dtype=np.int64)},
        geometry=[None] * count,
        crs=frame.crs,
    )
    target = [TARGET_FIELD] if TARGET_FIELD in frame.columns else []
    if target:
        empties[TARGET_FIELD] = _class_means(frame, empties["code"].to_numpy())
    dirty = gpd.GeoDataFrame(
        gpd.pd.concat([frame, duplicates, empties], ignore_index=True), crs=frame.crs
    )
    dirty = dirty.iloc[rng.permutation(len(dirty))].reset_index(drop=True)
    dirty.insert(0, "id", np.arange(1, len(dirty) + 1, dtype=np.int64))
    return dirty[["id", "code", *target, "geometry"]].astype({"code": np.int64})


def _class_means(frame: gpd.GeoDataFrame, codes: np.ndarray) -> np.ndarray:
    """Mean target of the rows of each of ``codes`` in ``frame`` (0 for a class it lacks)."""
    means = frame.groupby("code")[TARGET_FIELD].mean()
    return np.round(means.reindex(codes).fillna(0.0).to_numpy(dtype=np.float64), TARGET_DECIMALS)


def _split_in_two(polygon: shapely.Polygon) -> shapely.Geometry:
    """Cut a 20 m corridor through the polygon's centre: a two-part multipolygon."""
    x, y = polygon.centroid.x, polygon.centroid.y
    left, bottom, right, top = polygon.bounds
    for corridor in (
        shapely.box(x - 10.0, bottom - 1.0, x + 10.0, top + 1.0),
        shapely.box(left - 1.0, y - 10.0, right + 1.0, y + 10.0),
    ):
        parts = polygon.difference(corridor)
        if isinstance(parts, shapely.MultiPolygon) and len(parts.geoms) >= 2:
            largest = sorted(parts.geoms, key=lambda part: part.area)[-2:]
            return shapely.MultiPolygon(largest)
    return polygon


def _bow_tie(polygon: shapely.Polygon) -> shapely.Geometry:
    """A self-intersecting figure-of-eight polygon inside ``polygon``."""
    centre = polygon.representative_point()
    half = 0.25 * np.sqrt(polygon.area)
    for _ in range(4):
        square = shapely.box(centre.x - half, centre.y - half, centre.x + half, centre.y + half)
        if square.within(polygon):
            break
        half /= 2.0
    x, y = centre.x, centre.y
    return shapely.Polygon(
        [(x - half, y - half), (x + half, y + half), (x + half, y - half), (x - half, y + half)]
    )


def to_truth_crs(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Reproject to :data:`TRUTH_CRS` (the survey's CRS differs from the images')."""
    return frame.to_crs(TRUTH_CRS)
