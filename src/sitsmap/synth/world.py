"""Generate a synthetic Sentinel-2 world on disk: ``sitsmap synth OUT_DIR``.

Layout of ``OUT_DIR``::

    S2/<tile>/SENTINEL2X_YYYYMMDD-HHMMSS-mmm_L2A_<tile>_C_V2-2/   Theia L2A products
    truth/<tile>_landcover.tif     class of every pixel (uint8, colour table, nodata 0)
    ground_truth.shp               surveyed polygons (EPSG:2154, fields id, code and
                                   biomass), dirty
    regions.gpkg                   eco-regions (EPSG:32631, field region), worlds of 2+ only
    nomenclature.txt, colorFile.txt  the OSO nomenclature and colours
    config.yaml                    a chain configuration with paths relative to OUT_DIR
    config_regression.yaml         the same chain mapping biomass (arg_train.task regression)

A world of several eco-regions (:mod:`sitsmap.synth.regions`) names its
region layer in ``config.yaml`` (``chain.region_path``) when this sitsmap's
configuration accepts the key.

``biomass`` (:mod:`sitsmap.synth.target`) is a continuous target for
regression: the dry matter (t/ha) the vegetation of each surveyed polygon's
parcel produced over the year, with a measurement error that leaves
:data:`~sitsmap.synth.target.EXPLAINED_SHARE` (0.8) of its variance to the
vegetation, the polygon R² of an ideal model. ``config_regression.yaml``
maps it (``chain.data_field: biomass``, output in ``output_regression``,
class-map products off).

Tiles are simulated by windows of :data:`STRIP_ROWS` rows, products written
by a small thread pool while the next one is computed. Other product layouts
(Theia zips, Sen2Cor SAFE, STAC, Landsat 8; see :mod:`sitsmap.synth.layouts`)
are converted from the Theia products, simulated into a hidden temporary
folder of ``OUT_DIR`` when the Theia layout itself is not wanted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import resource
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
import yaml
from rasterio.windows import Window

from sitsmap.config import config_from_mapping
from sitsmap.console import progress
from sitsmap.errors import ConfigError
from sitsmap.io.atomic import remove_path, temporary_sibling, write_text
from sitsmap.io.synth_io import (
    RasterSetWriter,
    RasterSpec,
    copy_file,
    raster_writer,
    remove_stale_products,
)
from sitsmap.io.vector import write_vector
from sitsmap.nomenclature import NODATA_CLASS, default_files, load_nomenclature
from sitsmap.sensors import SENTINEL2_THEIA
from sitsmap.synth.landscape import Landscape
from sitsmap.synth.layout import (
    CRS_UTM31N,
    Acquisition,
    acquisitions,
    coarse_grid,
    parse_tile,
    tile_grid,
)
from sitsmap.synth.layouts import (
    SENTINEL2_LAYOUTS,
    landsat_products,
    parse_layouts,
    write_layouts,
)
from sitsmap.synth.regions import RegionLayout, region_layout, region_polygons
from sitsmap.synth.scene import ProductArrays, StaticLayers, TileScene
from sitsmap.synth.target import EXPLAINED_SHARE, TARGET_FIELD, explained_share
from sitsmap.synth.truth import PRODUCTION, add_defects, survey_parcels, to_truth_crs, with_target

logger = logging.getLogger(__name__)

STRIP_ROWS = 256
"""Rows simulated at once: bounds memory for large tiles (must be even)."""
MIN_SIZE, MAX_SIZE = 32, 10980
MAX_PRODUCTS_OPEN = 32
"""Products whose files stay open together when a tile spans several strips."""
WRITE_THREADS = 2
REGION_FILE = "regions.gpkg"
"""The region layer of a world of several eco-regions (EPSG:32631, the tiles' CRS)."""
REGION_FIELD = "region"
"""Its field of region ids (``r1``, ``r2``... west to east)."""
CONFIG_FILE = "config.yaml"
REGRESSION_CONFIG_FILE = "config_regression.yaml"
"""The configuration that maps :data:`~sitsmap.synth.target.TARGET_FIELD` by regression."""
REGRESSION_OUTPUT = "output_regression"
"""Output folder of the regression configuration (``output`` is the classification's)."""


@dataclass(frozen=True)
class WorldSummary:
    """What :func:`generate_world` wrote.

    Attributes
    ----------
    out_dir : Path
        The world's directory.
    tiles : tuple of str
        Generated tiles.
    size : int
        Tile side in 10 m pixels.
    start, end : datetime.date
        Period of the acquisitions.
    seed : int
        World seed.
    dates_per_tile : dict of str to int
        Number of products of each tile.
    truth_polygons : int
        Rows of ``ground_truth.shp`` (defects included).
    class_pixels : dict of int to int
        Pixels of each class over all truth rasters.
    seconds : float
        Wall-clock time of the generation.
    layouts : tuple of str
        Product layouts written (see :func:`sitsmap.synth.layouts.parse_layouts`).
    layout_products : dict of str to int
        Products written in each layout.
    regions : tuple of str
        Eco-region ids of ``regions.gpkg`` (empty for a one-region world: no layer).
    region_parcels : dict of str to int
        Parcels seeded inside the tiles, per region.
    region_truth : dict of str to int
        Clean surveyed polygons (before the defects), per region.
    region_config : bool
        Whether ``config.yaml`` names the region layer (``chain.region_path``).
    target_share : float
        Realised explained share of ``biomass`` over the clean surveyed polygons
        (:func:`sitsmap.synth.target.explained_share`; aimed at
        :data:`~sitsmap.synth.target.EXPLAINED_SHARE`; NaN without polygons).
    regression_config : bool
        Whether ``config_regression.yaml`` was written (this sitsmap's
        configuration accepts it).
    """

    out_dir: Path
    tiles: tuple[str, ...]
    size: int
    start: dt.date
    end: dt.date
    seed: int
    dates_per_tile: dict[str, int] = field(default_factory=dict)
    truth_polygons: int = 0
    class_pixels: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    layouts: tuple[str, ...] = ("theia",)
    layout_products: dict[str, int] = field(default_factory=dict)
    regions: tuple[str, ...] = ()
    region_parcels: dict[str, int] = field(default_factory=dict)
    region_truth: dict[str, int] = field(default_factory=dict)
    region_config: bool = False
    target_share: float = float("nan")
    regression_config: bool = False

    @property
    def products(self) -> int:
        """Total number of Sentinel-2 acquisitions (products of a Sentinel-2 layout)."""
        return sum(self.dates_per_tile.values())

    @property
    def config_path(self) -> Path:
        """The ready-to-run chain configuration."""
        return self.out_dir / CONFIG_FILE

    @property
    def regression_config_path(self) -> Path:
        """The ready-to-run regression configuration (``biomass``)."""
        return self.out_dir / REGRESSION_CONFIG_FILE

    def describe(self) -> str:
        """A few lines for the terminal."""
        return "\n".join(
            [
                f"Synthetic world in {self.out_dir} (seed {self.seed}): {len(self.tiles)} "
                f"tile(s) of {self.size} x {self.size} pixels at 10 m, {self.start} to {self.end}",
                *self._product_lines(),
                f"  {self.truth_polygons} ground-truth polygons in ground_truth.shp (EPSG:2154), "
                f"{len(self.class_pixels)} classes on the ground",
                *self._region_lines(),
                f"  chain configuration: {self.config_path}",
                *self._target_lines(),
                f"  generated in {self.seconds:.1f} s",
            ]
        )

    def _region_lines(self) -> list[str]:
        if not self.regions:
            return []
        counts = ", ".join(
            f"{name} {self.region_parcels.get(name, 0)} parcels "
            f"({self.region_truth.get(name, 0)} surveyed)"
            for name in self.regions
        )
        named = (
            "named in config.yaml (chain.region_path)"
            if self.region_config
            else "not named in config.yaml: this sitsmap does not accept chain.region_path"
        )
        return [
            f"  {len(self.regions)} eco-regions in {REGION_FILE} (EPSG:32631, field "
            f"{REGION_FIELD}): {counts}",
            f"  region layer {named}",
        ]

    def _target_lines(self) -> list[str]:
        share = "-" if np.isnan(self.target_share) else f"{self.target_share:.2f}"
        where = (
            f"regression configuration: {self.regression_config_path}"
            if self.regression_config
            else f"no {REGRESSION_CONFIG_FILE}: this sitsmap does not accept it"
        )
        return [
            f"  field {TARGET_FIELD}: annual dry matter (t/ha) of each polygon's vegetation, "
            f"explained share {share} (aim {EXPLAINED_SHARE:.2f}, the polygon R² of an ideal "
            "model)",
            f"  {where}",
        ]

    def _product_lines(self) -> list[str]:
        dates = ", ".join(f"{tile} {count}" for tile, count in self.dates_per_tile.items())
        lines = []
        for layout in self.layouts:
            if layout == "theia":
                lines.append(f"  {self.products} Sentinel-2 L2A products (dates per tile: {dates})")
            elif layout in SENTINEL2_LAYOUTS:
                lines.append(
                    f"  {self.products} Sentinel-2 L2A products in the {layout} layout "
                    f"(dates per tile: {dates})"
                )
            else:
                lines.append(
                    f"  {self.layout_products.get(layout, 0)} Landsat 8 L2SP scenes in L8 "
                    "(EPSG:32630, 30 m; one per 3 Sentinel-2 dates of a tile)"
                )
        return lines


def generate_world(
    out_dir: Path,
    tiles: Sequence[str],
    size: int = 256,
    start: dt.date = dt.date(2018, 1, 1),
    end: dt.date = dt.date(2018, 12, 31),
    seed: int = 0,
    layouts: Sequence[str] = ("theia",),
    regions: int = 1,
) -> WorldSummary:
    """Generate a synthetic Sentinel-2 world (Theia L2A layout by default) in ``out_dir``.

    Parameters
    ----------
    out_dir : Path
        Destination directory (created; products of an earlier world are replaced).
    tiles : sequence of str
        Tile names such as ``"T31TCJ"`` (zone 31, row letters going north).
    size : int
        Tile side in 10 m pixels: even, 32 to 10980.
    start, end : datetime.date
        Period of the acquisitions (inclusive).
    seed : int
        World seed: the same seed gives byte-identical rasters.
    layouts : sequence of str
        Product layouts to write, names or comma-separated lists: at most one
        Sentinel-2 layout (``theia``, ``theia-zip``, ``safe``, ``safe-zip``,
        ``stac``), with or without ``landsat`` (see :mod:`sitsmap.synth.layouts`).
        ``config.yaml`` reads exactly these.
    regions : int
        Eco-regions, 1 to 4 (see :mod:`sitsmap.synth.regions`): with 2 or
        more, wavy south-north bands over the tiles whose crop calendars,
        canopies, soils, green spectra and class mixes differ, written to
        ``regions.gpkg``. 1: no region layer, today's world.

    Returns
    -------
    WorldSummary
        What was written.

    Raises
    ------
    ConfigError
        On an unknown tile name, a repeated tile, an odd or out-of-range
        size, an empty period, a period with no acquisition for a tile, an
        unknown layout or two Sentinel-2 layouts, a number of regions out
        of 1 to 4 or a world too small for its regions (a region without a
        parcel).
    """
    began = time.perf_counter()
    out_dir = Path(out_dir)
    tiles = tuple(tiles)
    _check_arguments(tiles, size, start, end)
    layouts = parse_layouts(layouts)
    plans = {tile: acquisitions(tile, start, end, seed) for tile in tiles}
    for tile, products in plans.items():
        if not products:
            raise ConfigError(
                f"no acquisition of {tile} between {start} and {end}: "
                "give a period of at least 5 days"
            )
    landscape = world_landscape(tiles, size, seed, regions)
    polygons = region_polygons(landscape) if landscape.regions else None
    scenes = [TileScene(landscape, tile) for tile in tiles]
    region_parcels = _check_regions(landscape.regions, scenes)
    logger.info(
        "generating %d tile(s) of %d px, %s to %s, seed %d, %d region(s), into %s",
        len(tiles),
        size,
        start,
        end,
        seed,
        regions,
        out_dir,
    )
    ids = _write_regions(landscape.regions, polygons, out_dir)
    class_pixels: Counter[int] = Counter()
    nomenclature = load_nomenclature()
    for scene in scenes:
        class_pixels.update(_write_truth_raster(scene, out_dir, nomenclature.colors))
    written = _write_products(scenes, plans, out_dir, layouts)
    truth_rows, truth_regions, share = _write_ground_truth(scenes, out_dir, seed, polygons)
    _write_nomenclature(out_dir)
    region_config = _write_config(out_dir, tiles, start, end, layouts, bool(ids))
    regression = _write_regression_config(out_dir, tiles, start, end, layouts, region_config)
    summary = WorldSummary(
        out_dir,
        tiles,
        size,
        start,
        end,
        seed,
        {tile: len(p) for tile, p in plans.items()},
        truth_rows,
        dict(sorted(class_pixels.items())),
        time.perf_counter() - began,
        layouts,
        written,
        ids,
        region_parcels,
        _per_region(ids, truth_regions),
        region_config,
        target_share=share,
        regression_config=regression,
    )
    logger.info("synthetic world written in %.1f s", summary.seconds)
    return summary


def _write_products(
    scenes: Sequence[TileScene],
    plans: dict[str, list[Acquisition]],
    out_dir: Path,
    layouts: tuple[str, ...],
) -> dict[str, int]:
    """Simulate the Theia products the layouts need, convert them; return products per layout.

    Without the Theia layout the products are simulated into a hidden temporary
    folder of ``out_dir``, removed at the end; with Landsat alone only the
    products Landsat scenes are made from are simulated.
    """
    simulated = plans
    if not any(layout in SENTINEL2_LAYOUTS for layout in layouts):
        simulated = {tile: landsat_products(plan) for tile, plan in plans.items()}
    theia_root = out_dir if "theia" in layouts else temporary_sibling(out_dir / "theia")
    total = sum(len(p) for p in simulated.values())
    try:
        writes = _write_all_products(scenes, simulated, theia_root)
        for _ in progress(writes, "S2 products", total=total):
            pass
        return write_layouts(theia_root, out_dir, plans, layouts)
    finally:
        if theia_root != out_dir:
            remove_path(theia_root)


def _check_arguments(tiles: tuple[str, ...], size: int, start: dt.date, end: dt.date) -> None:
    if not tiles:
        raise ConfigError("give at least one tile")
    if len(set(tiles)) != len(tiles):
        raise ConfigError(f"a tile is listed twice in {list(tiles)}")
    for tile in tiles:
        parse_tile(tile)
    if not MIN_SIZE <= size <= MAX_SIZE or size % 2:
        raise ConfigError(
            f"size must be an even number of pixels from {MIN_SIZE} to {MAX_SIZE} (got {size})"
        )
    if end < start:
        raise ConfigError(f"end date {end} is before start date {start}")


def strips(size: int, rows: int | None = None) -> list[range]:
    """Row windows covering a tile of ``size`` rows, :data:`STRIP_ROWS` at a time by default.

    ``rows`` must be even (20 m pixels are 2 x 2 blocks of 10 m ones).
    """
    rows = rows or STRIP_ROWS
    return [range(r, min(r + rows, size)) for r in range(0, size, rows)]


def _write_truth_raster(
    scene: TileScene, out_dir: Path, colors: dict[int, tuple[int, int, int]]
) -> Counter[int]:
    """Write ``truth/<tile>_landcover.tif`` strip by strip; return its class counts."""
    counts: Counter[int] = Counter()
    path = out_dir / "truth" / f"{scene.tile}_landcover.tif"
    with raster_writer(path, RasterSpec(scene.grid, "uint8", NODATA_CLASS, colors)) as dataset:
        for rows in strips(scene.size):
            code = scene.static(rows).code
            dataset.write(code, 1, window=Window(0, rows.start, scene.size, len(rows)))
            values, number = np.unique(code, return_counts=True)
            counts.update(dict(zip(values.tolist(), number.tolist(), strict=True)))
    return counts


def _product_specs(scene: TileScene, name: str) -> dict[str, RasterSpec]:
    """Relative path and spec of every file of a product."""
    grids = {10: scene.grid, 20: coarse_grid(scene.grid)}
    product = Path(name)
    specs = {}
    for band in SENTINEL2_THEIA.bands:
        path = SENTINEL2_THEIA.band_path(product, band.name).name
        specs[path] = RasterSpec(grids[band.resolution], "int16", SENTINEL2_THEIA.nodata)
    for mask in SENTINEL2_THEIA.mask_names:
        for index, resolution in ((1, 10), (2, 20)):
            path = SENTINEL2_THEIA.mask_path(product, mask, index).relative_to(product)
            specs[path.as_posix()] = RasterSpec(grids[resolution], "uint8")
    return specs


def _write_window(
    writer: RasterSetWriter, arrays: ProductArrays, name: str, row_offset: int
) -> None:
    """Write one window of every file of a product (``row_offset`` in 10 m rows)."""
    product = Path(name)
    for band in SENTINEL2_THEIA.bands:
        path = SENTINEL2_THEIA.band_path(product, band.name).name
        offset = row_offset if band.resolution == 10 else row_offset // 2
        writer.write(path, arrays.band(band.name), offset)
    for mask in SENTINEL2_THEIA.mask_names:
        for index in (1, 2):
            path = SENTINEL2_THEIA.mask_path(product, mask, index).relative_to(product)
            offset = row_offset if index == 1 else row_offset // 2
            writer.write(path.as_posix(), arrays.mask(mask, index), offset)


class _OrderedWrites:
    """A thread pool that keeps the writes of one product in order and bounds the backlog."""

    def __init__(self, workers: int, backlog: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="synth-write")
        self._last: dict[str, Future] = {}
        self._pending: list[Future] = []
        self._backlog = backlog

    def submit(self, key: str, job: Callable[[], None]) -> None:
        previous = self._last.get(key)
        if previous is not None:
            previous.result()
        while len(self._pending) >= self._backlog:
            self._pending.pop(0).result()
        future = self._pool.submit(job)
        self._last[key] = future
        self._pending.append(future)

    def wait(self) -> None:
        for future in self._pending:
            future.result()
        self._pending.clear()
        self._last.clear()

    def __enter__(self) -> _OrderedWrites:
        return self

    def __exit__(self, *_: object) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)


def _write_all_products(
    scenes: Sequence[TileScene], plans: dict[str, list[Acquisition]], out_dir: Path
) -> Iterator[Acquisition]:
    """Simulate and write every product; yield each as it is queued for its last write."""
    with _OrderedWrites(WRITE_THREADS, backlog=2 * WRITE_THREADS) as writes:
        for scene in scenes:
            tile_dir = out_dir / "S2" / scene.tile
            plan = plans[scene.tile]
            removed = remove_stale_products(
                tile_dir, {a.name for a in plan}, SENTINEL2_THEIA.product_regex
            )
            if removed:
                logger.info("%s: removed %d product(s) of an earlier world", scene.tile, removed)
            logger.info("%s: %d products", scene.tile, len(plan))
            yield from _write_tile_products(scene, plan, tile_dir, writes)
            writes.wait()


def _write_tile_products(
    scene: TileScene, plan: list[Acquisition], tile_dir: Path, writes: _OrderedWrites
) -> Iterator[Acquisition]:
    windows = strips(scene.size)
    cached: dict[int, StaticLayers] = {}
    for group in _groups(plan, 1 if len(windows) == 1 else _products_open_at_once()):
        writers: dict[str, RasterSetWriter] = {}
        try:
            for number, rows in enumerate(windows):
                layers = cached[rows.start] if rows.start in cached else scene.static(rows)
                if len(windows) == 1:
                    cached[rows.start] = layers
                last = number == len(windows) - 1
                for acquisition in group:
                    name = acquisition.name
                    if name not in writers:
                        writers[name] = RasterSetWriter(
                            tile_dir / name, _product_specs(scene, name)
                        )
                    arrays = scene.observe(layers, acquisition.date)
                    writes.submit(name, _window_job(writers[name], arrays, name, rows.start, last))
                    if last:
                        yield acquisition
        except BaseException:
            with contextlib.suppress(Exception):
                writes.wait()
            for writer in writers.values():
                writer.abort()
            raise


def _window_job(
    writer: RasterSetWriter, arrays: ProductArrays, name: str, row_offset: int, last: bool
) -> Callable[[], None]:
    def job() -> None:
        try:
            _write_window(writer, arrays, name, row_offset)
            if last:
                writer.commit()
        except BaseException:
            writer.abort()
            raise

    return job


def _groups(plan: list[Acquisition], size: int) -> Iterator[list[Acquisition]]:
    for first in range(0, len(plan), size):
        yield plan[first : first + size]


def _products_open_at_once() -> int:
    """How many products (17 files each) may stay open under the open-files limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_PRODUCTS_OPEN
    return max(1, min(MAX_PRODUCTS_OPEN, (soft - 128) // 17))


def _write_ground_truth(
    scenes: Sequence[TileScene],
    out_dir: Path,
    seed: int,
    regions: Sequence[shapely.Geometry] | None,
) -> tuple[int, np.ndarray, float]:
    """Write ``ground_truth.shp``.

    Returns
    -------
    tuple
        Its rows, the region index of each clean row and the realised
        explained share of the target over the clean rows.
    """
    footprint = shapely.union_all([shapely.box(*scene.grid.bounds) for scene in scenes])
    clean = with_target(survey_parcels(scenes, footprint, seed, regions), seed)
    if clean.empty:
        logger.warning(
            "tiles too small to hold a whole parcel: the ground truth holds only defective rows"
        )
    dirty = to_truth_crs(add_defects(clean, seed))
    write_vector(dirty, out_dir / "ground_truth.shp")
    logger.info(
        "ground truth: %d polygons (%d surveyed parcels and road pieces)", len(dirty), len(clean)
    )
    share = explained_share(clean[PRODUCTION].to_numpy(), clean[TARGET_FIELD].to_numpy())
    return len(dirty), clean["region"].to_numpy(dtype=np.int64), share


def world_landscape(tiles: Sequence[str], size: int, seed: int, regions: int = 1) -> Landscape:
    """The ground of a world: what :func:`generate_world` simulates its tiles from.

    Parameters
    ----------
    tiles : sequence of str
        The world's tiles: with several ``regions``, their union is cut into regions.
    size : int
        Tile side in 10 m pixels.
    seed : int
        World seed.
    regions : int
        Eco-regions, 1 to 4 (see :func:`generate_world`).

    Returns
    -------
    Landscape
        Without a region layout for one region.

    Raises
    ------
    ConfigError
        If ``regions`` is not 1 to 4.
    """
    if regions == 1:
        return Landscape(seed, size)
    bounds = np.array([tile_grid(tile, size).bounds for tile in tiles])
    extent = (*bounds[:, :2].min(axis=0), *bounds[:, 2:].max(axis=0))
    return Landscape(seed, size, region_layout(regions, extent))


def _write_regions(
    layout: RegionLayout | None, polygons: Sequence[shapely.Geometry] | None, out_dir: Path
) -> tuple[str, ...]:
    """Write ``regions.gpkg`` (or remove an earlier world's); return the region ids."""
    path = out_dir / REGION_FILE
    if layout is None or polygons is None:
        remove_path(path)
        return ()
    frame = gpd.GeoDataFrame(
        {REGION_FIELD: list(layout.ids)}, geometry=list(polygons), crs=CRS_UTM31N
    )
    write_vector(frame, path)
    logger.info("eco-regions: %d polygons in %s", len(frame), path)
    return layout.ids


def _check_regions(layout: RegionLayout | None, scenes: Sequence[TileScene]) -> dict[str, int]:
    """Parcels seeded inside the tiles per region (empty without regions).

    Raises
    ------
    ConfigError
        If a region holds no parcel of the tiles (a world too small for its regions).
    """
    if layout is None:
        return {}
    counts = _per_region(layout.ids, _region_parcels(scenes))
    empty = [name for name, count in counts.items() if count == 0]
    if empty:
        raise ConfigError(
            f"region(s) {empty} hold no parcel of the tiles: give fewer regions, "
            "a larger size or more tiles"
        )
    return counts


def _region_parcels(scenes: Sequence[TileScene]) -> np.ndarray:
    """Region index of every parcel seeded inside the tiles (each parcel once)."""
    keys, regions = [], []
    for scene in scenes:
        parcels = scene.parcels.take(np.arange(len(scene.parcels) - 1))  # not the roads
        left, bottom, right, top = scene.grid.bounds
        inside = (
            (parcels.x >= left) & (parcels.x < right) & (parcels.y >= bottom) & (parcels.y < top)
        )
        keys.append(parcels.key[inside])
        regions.append(parcels.region[inside])
    _, first = np.unique(np.concatenate(keys), return_index=True)
    return np.concatenate(regions)[first].astype(np.int64)


def _per_region(ids: Sequence[str], index: np.ndarray) -> dict[str, int]:
    """How many of ``index`` (region indexes) fall in each region."""
    counts = np.bincount(index, minlength=len(ids)) if index.size else np.zeros(len(ids), int)
    return {name: int(counts[n]) for n, name in enumerate(ids)}


def _write_nomenclature(out_dir: Path) -> None:
    names, colors = default_files()
    copy_file(names, out_dir / "nomenclature.txt")
    copy_file(colors, out_dir / "colorFile.txt")


def chain_config(
    tiles: Sequence[str],
    start: dt.date,
    end: dt.date,
    layouts: Sequence[str] = ("theia",),
    regions: bool = False,
) -> dict:
    """The raw chain configuration of a world (paths relative to the world's directory).

    It reads exactly ``layouts``: ``chain.s2_path`` for ``theia`` and
    ``theia-zip``, ``chain.s2_s2c_path`` for ``safe`` and ``safe-zip``, the
    ``stac`` section's ``catalog`` for ``stac`` and ``chain.l8_path`` for
    ``landsat``. With ``regions``, ``chain.region_path`` and
    ``chain.region_field`` name the world's ``regions.gpkg``.
    """
    raw = {
        "chain": {
            "output_path": "output",
            "list_tile": list(tiles),
            **_image_paths(layouts),
            "ground_truth": "ground_truth.shp",
            "data_field": "code",
            **({"region_path": REGION_FILE, "region_field": REGION_FIELD} if regions else {}),
            "nomenclature_path": "nomenclature.txt",
            "color_table": "colorFile.txt",
            "proj": "EPSG:2154",
            "spatial_resolution": 10,
        },
        "sentinel_2": {
            "temporal_resolution": 10,
            "start_date": f"{start:%Y%m%d}",
            "end_date": f"{end:%Y%m%d}",
        },
        "arg_train": {
            "runs": 1,
            "random_seed": 0,
            "sample_selection": {
                "sampler": "periodic",
                "strategy": "constant",
                "strategy.constant.nb": 1000,
            },
            "classifier": "rf",
        },
        "arg_classification": {"enable_probability_map": True},
        "scheduling": {"scheduler": "processes", "workers": 2},
    }
    if "stac" in layouts:
        raw = {"chain": raw.pop("chain"), "stac": {"catalog": "stac/catalog.json"}, **raw}
    return raw


_IMAGE_PATHS = {
    "theia": ("s2_path", "S2"),
    "theia-zip": ("s2_path", "S2"),
    "safe": ("s2_s2c_path", "S2"),
    "safe-zip": ("s2_s2c_path", "S2"),
    "landsat": ("l8_path", "L8"),
}
"""The ``chain`` key and folder each layout is read from (``stac`` has its own section)."""


def _image_paths(layouts: Sequence[str]) -> dict[str, str]:
    """The ``chain`` keys of the image folders a world's layouts are read from."""
    return dict(_IMAGE_PATHS[layout] for layout in layouts if layout in _IMAGE_PATHS)


def _write_config(
    out_dir: Path,
    tiles: Sequence[str],
    start: dt.date,
    end: dt.date,
    layouts: Sequence[str],
    regions: bool,
) -> bool:
    """Write ``config.yaml``; return whether it names the region layer.

    The layer is named only if this sitsmap's configuration accepts
    ``chain.region_path``; otherwise a warning says why it is left out.
    """
    raw = chain_config(tiles, start, end, layouts)
    config_from_mapping(raw, base_dir=out_dir)
    named = False
    if regions:
        with_regions = chain_config(tiles, start, end, layouts, regions=True)
        try:
            config_from_mapping(with_regions, base_dir=out_dir)
        except ConfigError as exc:
            logger.warning("config.yaml does not name %s: %s", REGION_FILE, exc)
        else:
            raw, named = with_regions, True
    write_text(out_dir / CONFIG_FILE, yaml.safe_dump(raw, sort_keys=False))
    return named


def regression_chain_config(
    tiles: Sequence[str],
    start: dt.date,
    end: dt.date,
    layouts: Sequence[str] = ("theia",),
    regions: bool = False,
) -> dict:
    """The raw regression configuration of a world: :func:`chain_config` mapping ``biomass``.

    The same chain, with ``chain.data_field`` the target
    (:data:`~sitsmap.synth.target.TARGET_FIELD`), ``arg_train.task: regression``,
    its own output folder (:data:`REGRESSION_OUTPUT`), and what only makes
    sense for a class map left out or off: the nomenclature and colours,
    probability maps, the fusion of runs and the post-processing products
    (smoothing, regularisation, vectorisation and the uncertainty of class
    probabilities).
    """
    raw = chain_config(tiles, start, end, layouts, regions)
    chain = raw["chain"]
    chain.update(
        output_path=REGRESSION_OUTPUT, data_field=TARGET_FIELD, merge_final_classifications=False
    )
    for key in ("nomenclature_path", "color_table"):  # a regression map has no classes
        chain.pop(key)
    raw["arg_train"] = {"task": "regression", **raw["arg_train"]}
    raw.pop("arg_classification", None)
    scheduling = raw.pop("scheduling")
    raw["post_processing"] = {
        part: {"enabled": False}
        for part in ("smoothing", "regularisation", "vectorisation", "uncertainty")
    }
    raw["scheduling"] = scheduling
    return raw


def _write_regression_config(
    out_dir: Path,
    tiles: Sequence[str],
    start: dt.date,
    end: dt.date,
    layouts: Sequence[str],
    regions: bool,
) -> bool:
    """Write ``config_regression.yaml``; return whether it was written.

    With ``regions`` it names the region layer as ``config.yaml`` does. If
    this sitsmap's configuration refuses it, a warning says why and an
    earlier world's file is removed.
    """
    raw = regression_chain_config(tiles, start, end, layouts, regions)
    path = out_dir / REGRESSION_CONFIG_FILE
    try:
        config_from_mapping(raw, base_dir=out_dir)
    except ConfigError as exc:
        logger.warning("%s not written: %s", REGRESSION_CONFIG_FILE, exc)
        remove_path(path)
        return False
    write_text(path, yaml.safe_dump(raw, sort_keys=False))
    return True


__all__ = [
    "WorldSummary",
    "chain_config",
    "generate_world",
    "regression_chain_config",
    "strips",
    "world_landscape",
]
