"""readers_vs_read: each product reader's feature cube of one tile against decoding its files.

One synthetic 512² tile, one year, written once in every layout sitsmap reads (the same
seed, so the same ground, clouds and dates in each): Theia folders and zips, Sen2Cor SAFE
folders and zips (JPEG 2000), a STAC catalog of COGs, and Landsat 8 C2 L2 scenes (30 m,
UTM zone 30) warped onto the Theia tile's 10 m grid.

sitsmap, per reader: the finder (``find_products``, ``find_safe_products``,
``find_stac_products``, ``find_landsat_products``), then ``iter_series_features`` over
``series_windows`` (default ``max_chunk_megabytes``) on the sensor's own grid (10 days for
Sentinel-2, 16 for Landsat) with every band, as the chain does.
Limit: decoding exactly the files the products name (their GDAL paths: ``/vsizip/`` members
for zips), whole, with rasterio, on as many threads as there are cores. Both run with a
warm page cache and warm JIT caches, interleaved (each round in another order), best of
``REPEATS``.

ratio = feature time / decode time, per reader (best of ``REPEATS`` each). The headline
ratio, the one ``run_all`` records, is the worst over the Sentinel-2 readers (theia,
theia-zip, safe, safe-zip, stac); goal <= 1.5, as in features_vs_read. Landsat's ratio is
reported but not held to it: its features warp 30 m scenes onto the 10 m grid (nine times
the pixels, bilinear), which decoding does not do.
The details compare the decodes: JPEG 2000 vs GeoTIFF (safe / theia, also on the ten bands
alone, the same pixels), zip vs unzipped (theia-zip / theia, safe-zip / safe), STAC COGs vs
Theia GeoTIFFs; the features' and decodes' CPU seconds (every thread), less sensitive than
wall time to other processes; and, for Theia and Landsat, the reading alone (masks,
resampling or warping onto the grid, no features), per date for Landsat's warp cost.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rasterio
from rasterio.windows import Window

import common
from sitsmap.config.schema import PythonDataManaging
from sitsmap.io.landsat import find_landsat_products
from sitsmap.io.products import find_products
from sitsmap.io.raster import DatasetPool, RasterGrid
from sitsmap.io.reading import iter_products_windows
from sitsmap.io.safe import find_safe_products
from sitsmap.io.stac import find_stac_products
from sitsmap.preprocessing.temporal import regular_dates
from sitsmap.preprocessing.tile import (
    TileSeries,
    TileStack,
    check_one_grid,
    iter_series_features,
    series_windows,
)
from sitsmap.sensors import (
    LANDSAT8,
    SENTINEL2_SEN2COR,
    SENTINEL2_STAC,
    SENTINEL2_THEIA,
    Product,
    SensorDescription,
)

NAME, GOAL = "readers_vs_read", 1.5
SIZE = 512
REPEATS = 6
START, END = dt.date(2018, 1, 1), dt.date(2018, 12, 31)
SENTINEL2_READERS = ("theia", "theia-zip", "safe", "safe-zip", "stac")
READERS = (*SENTINEL2_READERS, "landsat")
READ_ONLY = ("theia", "landsat")  # also timed reading alone, without the features
WORLDS = {  # world folder under bench/work/readers<SIZE>/ -> layouts written in it
    "theia": ("theia", "landsat"),  # Landsat is warped onto this world's Theia grid
    "theia-zip": ("theia-zip",),
    "safe": ("safe",),
    "safe-zip": ("safe-zip",),
    "stac": ("stac",),
}
# The decode limit opens files as the readers do: no directory listing for side-car files.
DECODE_ENV = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}


@dataclass(frozen=True)
class Reader:
    """One way of reading the tile: its finder, sensor and temporal grid step."""

    name: str
    find: Callable[[RasterGrid | None], list[Product]]
    sensor: SensorDescription
    days: int

    def series(self, grid: RasterGrid | None) -> TileSeries:
        """Find the products and make the tile's series, as the chain's steps do."""
        products = self.find(grid)
        if self.sensor.warped:
            assert grid is not None, "a warped sensor needs the tile's grid"
        else:
            grid = check_one_grid(products, self.sensor)
        stack = TileStack(common.TILE, tuple(products), grid, self.sensor)
        out_dates = regular_dates(START, END, self.days)
        return TileSeries.of(stack, out_dates, self.sensor.band_names)


def world(name: str) -> Path:
    """The folder of one layout's world, generated on first use (same seed for all)."""
    from sitsmap.synth import generate_world

    out = common.WORK / f"readers{SIZE}" / name
    marker = out / ".complete"
    if not marker.exists():
        common.log(f"generating {out.parent.name}/{name}: {SIZE}² px, {WORLDS[name]} (first use)")
        summary = generate_world(out, [common.TILE], size=SIZE, layouts=WORLDS[name])
        marker.write_text(f"{summary.seconds:.1f} s\n")
    return out


def readers() -> dict[str, Reader]:
    """Every reader, on its own world."""
    tile = common.TILE

    def theia(name: str) -> Callable[[RasterGrid | None], list[Product]]:
        folder = world(name) / "S2" / tile
        return lambda _: find_products(folder, tile, START, END, SENTINEL2_THEIA)

    def safe(name: str) -> Callable[[RasterGrid | None], list[Product]]:
        folder = world(name) / "S2"
        return lambda _: find_safe_products(folder, tile, START, END)

    catalog = world("stac") / "stac" / "catalog.json"
    landsat_root = world("theia") / "L8"

    def landsat(grid: RasterGrid | None) -> list[Product]:
        assert grid is not None
        return find_landsat_products(landsat_root, tile, START, END, footprint(grid))

    return {
        "theia": Reader("theia", theia("theia"), SENTINEL2_THEIA, 10),
        "theia-zip": Reader("theia-zip", theia("theia-zip"), SENTINEL2_THEIA, 10),
        "safe": Reader("safe", safe("safe"), SENTINEL2_SEN2COR, 10),
        "safe-zip": Reader("safe-zip", safe("safe-zip"), SENTINEL2_SEN2COR, 10),
        "stac": Reader(
            "stac", lambda _: find_stac_products(catalog, tile, START, END), SENTINEL2_STAC, 10
        ),
        "landsat": Reader("landsat", landsat, LANDSAT8, 16),
    }


def footprint(grid: RasterGrid) -> tuple[object, tuple[float, float, float, float]]:
    """The grid's CRS and bounds, as the chain gives the Landsat finder."""
    left, top = grid.transform.c, grid.transform.f
    right = left + grid.width * grid.transform.a
    bottom = top + grid.height * grid.transform.e
    return grid.crs, (left, bottom, right, top)


def input_files(
    series: TileSeries, bands: bool = True, masks: bool = True
) -> list[tuple[str, int]]:
    """The (GDAL path, band) of every raster the reader reads: kept bands and mask layers.

    Same-day scenes (Landsat rows) included: the reader reads them where the first is invalid.
    """
    (sensor_series,) = series.sensors
    sensor = sensor_series.stack.sensor
    keys = (list(sensor_series.bands) if bands else []) + (
        list(sensor.mask.layers) if masks else []
    )
    files = []
    for first in sensor_series.stack.products:
        for product in (first, *first.same_day):
            for key in keys:
                item = product.file(key)
                files.append((item.path, item.band))
    return files


def decode_all(files: list[tuple[str, int]]) -> int:
    """Decode every file whole on one thread per core; return the decoded bytes."""

    def decode(file: tuple[str, int]) -> int:
        with rasterio.open(file[0]) as src:
            return src.read(file[1]).nbytes

    with rasterio.Env(**DECODE_ENV), ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        return sum(pool.map(decode, files))


def feature_cube(reader: Reader, grid: RasterGrid | None, max_megabytes: int) -> int:
    """Find the products and compute the features of every window as the chain does."""
    series = reader.series(grid)
    windows = series_windows(series, None, max_megabytes)
    for _ in iter_series_features(series, windows):
        pass
    return len(windows)


def read_only(series: TileSeries, windows: list[Window]) -> None:
    """Read every date of every window onto the grid (masks, resampling, warping), no features."""
    (sensor_series,) = series.sensors
    stack = sensor_series.stack
    with DatasetPool() as datasets:
        reads = iter_products_windows(
            stack.products, windows, sensor_series.bands, stack.sensor, None, datasets, stack.grid
        )
        for _ in reads:
            pass


def measured(function: Callable[..., Any], *args: Any) -> tuple[float, float]:
    """Call ``function``; return its (wall, process CPU) seconds, every thread's CPU counted."""
    wall, cpu = time.perf_counter(), time.process_time()
    function(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    """Measure and report."""
    load = round(os.getloadavg()[0], 2)
    all_readers = readers()
    max_mb = PythonDataManaging().max_chunk_megabytes
    theia_grid = all_readers["theia"].series(None).grid
    grids = {name: theia_grid if r.sensor.warped else None for name, r in all_readers.items()}
    series = {name: r.series(grids[name]) for name, r in all_readers.items()}
    files = {name: input_files(s) for name, s in series.items()}
    band_files = {name: input_files(series[name], masks=False) for name in ("theia", "safe")}
    windows = {name: series_windows(s, None, max_mb) for name, s in series.items()}
    common.log(f"warming the page cache and the JIT ({sum(map(len, files.values()))} files)")
    decoded = {name: decode_all(f) for name, f in files.items()}
    for name, reader in all_readers.items():
        for _ in iter_series_features(reader.series(grids[name]), [Window(0, 0, 64, 64)]):
            pass
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}

    def record(key: str, function: Callable[..., Any], *args: Any) -> float:
        seconds, cpu_seconds = measured(function, *args)
        wall.setdefault(key, []).append(seconds)
        cpu.setdefault(key, []).append(cpu_seconds)
        return seconds

    # Under load from other processes the first runs of a round were seen slower: each
    # round starts with the next reader, and decode and features swap places every round.
    for repeat in range(REPEATS):
        line = []
        for name in READERS[repeat % len(READERS) :] + READERS[: repeat % len(READERS)]:
            runs = {
                "decode": (decode_all, files[name]),
                "features": (feature_cube, all_readers[name], grids[name], max_mb),
            }
            for kind in sorted(runs, reverse=bool(repeat % 2)):
                record(f"{name}/{kind}", *runs[kind])
            line.append(
                f"{name} {wall[f'{name}/features'][-1]:.2f}/{wall[f'{name}/decode'][-1]:.2f}"
            )
        for name in READ_ONLY:
            record(f"{name}/read_only", read_only, series[name], windows[name])
        for name, paths in band_files.items():
            if repeat % 2 == 0:  # every other round: JPEG 2000 decodes are the slow part
                record(f"{name}/decode_bands", decode_all, paths)
        common.log(f"repeat {repeat + 1} (features/decode s): " + ", ".join(line))
    finder = {
        name: min(common.timed(r.find, grids[name])[0] for _ in range(3))
        for name, r in all_readers.items()
    }
    best = {key: min(values) for key, values in wall.items()}
    best_cpu = {key: min(values) for key, values in cpu.items()}
    ratios = {name: best[f"{name}/features"] / best[f"{name}/decode"] for name in READERS}
    worst = max(SENTINEL2_READERS, key=ratios.__getitem__)
    landsat = series["landsat"].sensors[0].stack
    n_landsat = len(landsat.products)
    n_theia = len(series["theia"].sensors[0].stack.products)

    def vs(a: str, b: str, times: dict[str, float] = best) -> float:
        return round(times[a] / times[b], 2)

    details = {
        "headline": (
            f"{SIZE}² tile, worst Sentinel-2 reader {worst} {ratios[worst]:.2f}; "
            + ", ".join(f"{name} {ratios[name]:.2f}" for name in READERS)
            + f"; decode JP2/GeoTIFF {vs('safe/decode', 'theia/decode'):.2f}x, "
            f"zip/folder {vs('theia-zip/decode', 'theia/decode'):.2f}x"
        ),
        "worst_sentinel2_reader": worst,
        "per_reader": {
            name: {
                "features_s": round(best[f"{name}/features"], 3),
                "decode_s": round(best[f"{name}/decode"], 3),
                "ratio": round(ratios[name], 3),
                "features_cpu_s": round(best_cpu[f"{name}/features"], 3),
                "decode_cpu_s": round(best_cpu[f"{name}/decode"], 3),
                "ratio_cpu": vs(f"{name}/features", f"{name}/decode", best_cpu),
                "finder_s": round(finder[name], 3),
                "input_dates": len(series[name].sensors[0].stack.products),
                "out_dates": len(series[name].sensors[0].out_dates),
                "features": len(series[name].feature_names),
                "decoded_files": len(files[name]),
                "decoded_megabytes": round(decoded[name] / 2**20, 1),
                "windows": sorted({f"{int(w.height)}x{int(w.width)}" for w in windows[name]}),
            }
            for name in READERS
        },
        "decode_jp2_vs_geotiff": vs("safe/decode", "theia/decode"),
        "decode_jp2_vs_geotiff_bands_only": vs("safe/decode_bands", "theia/decode_bands"),
        "decode_theia_zip_vs_folder": vs("theia-zip/decode", "theia/decode"),
        "decode_safe_zip_vs_folder": vs("safe-zip/decode", "safe/decode"),
        "decode_stac_cog_vs_theia": vs("stac/decode", "theia/decode"),
        "features_vs_theia": {name: vs(f"{name}/features", "theia/features") for name in READERS},
        "read_only_vs_decode": {
            name: vs(f"{name}/read_only", f"{name}/decode") for name in READ_ONLY
        },
        "landsat": {
            "scenes": n_landsat,
            "same_day_scenes": sum(len(p.same_day) for p in landsat.products),
            "features_s_per_date": round(best["landsat/features"] / n_landsat, 4),
            "read_s_per_date": round(best["landsat/read_only"] / n_landsat, 4),
            "decode_s_per_date": round(best["landsat/decode"] / n_landsat, 4),
            "theia_features_s_per_date": round(best["theia/features"] / n_theia, 4),
            "theia_read_s_per_date": round(best["theia/read_only"] / n_theia, 4),
        },
        "load_average_at_start": load,
        "seconds": {key: [round(v, 3) for v in values] for key, values in wall.items()},
        "cpu_seconds": {key: [round(v, 3) for v in values] for key, values in cpu.items()},
        "decode_threads": os.cpu_count(),
        "max_chunk_megabytes": max_mb,
    }
    common.report(NAME, ratios[worst], GOAL, higher_is_better=False, details=details)


if __name__ == "__main__":
    main()
