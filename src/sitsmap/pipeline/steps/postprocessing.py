"""Step postprocessing: smoothed, regularised, uncertainty and vector maps of each run.

Every product is computed from the run's final mosaics, block by block: a block
is read with a halo as wide as its kernel reaches, so the product is identical
whatever the block size, and seamless across blocks and tiles (the mosaic has
no tile border left). Memory depends on ``post_processing.block_size``, never
on the map's size.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np

from sitsmap.classification.streaming import CONFIDENCE_NODATA, class_dtype
from sitsmap.console import progress
from sitsmap.errors import StepError
from sitsmap.io.atomic import atomic_path, remove_path
from sitsmap.io.finishing import attribute_table_path, finish_raster, qml_path
from sitsmap.io.raster import open_raster_writer, read_raster, read_raster_info
from sitsmap.io.vector import write_vector_map
from sitsmap.nomenclature import NODATA_CLASS, Nomenclature
from sitsmap.pipeline.context import RunContext
from sitsmap.postprocessing.regularisation import regularisation_halo, regularise
from sitsmap.postprocessing.smoothing import bayes_smooth, smoothing_halo
from sitsmap.postprocessing.uncertainty import UNCERTAINTY_MEASURES
from sitsmap.postprocessing.vectorise import VectorMapBuilder
from sitsmap.postprocessing.windows import HaloWindow, halo_windows

logger = logging.getLogger(__name__)

T = TypeVar("T")

UNCERTAINTY_NODATA = -1.0
"""No-data value of the uncertainty maps (their values are 0–1)."""


def post_process(context: RunContext, seed: int) -> None:
    """Write run ``seed``'s smoothed, uncertainty and regularised maps (those switched on).

    The maps of products switched off are removed, so that ``final/`` never holds a
    product of an earlier configuration.
    """
    post = context.config.post_processing
    for path in _switched_off(context, seed):
        remove_path(path)
    if post.smoothing.enabled or post.uncertainty.enabled:
        _probability_products(context, seed)
    if post.regularisation.enabled:
        _regularised_map(context, seed)


def _switched_off(context: RunContext, seed: int) -> list[Path]:
    """The files of this run's products that the configuration no longer asks for."""
    post, layout = context.config.post_processing, context.layout
    kinds = []
    if not post.smoothing.enabled:
        kinds += ["Smoothed", "SmoothedProbabilityMap"]
    if not post.regularisation.enabled:
        kinds.append("Regularised")
    measures = post.uncertainty.types if post.uncertainty.enabled else ()
    kinds += [f"Uncertainty_{m}" for m in ("entropy", "margin", "least") if m not in measures]
    paths = []
    for kind in kinds:
        raster = layout.final_map(seed, kind)
        paths += [raster, qml_path(raster), attribute_table_path(raster)]
    if not post.vectorisation.enabled:
        paths += [layout.vector_map(seed), layout.vector_map(seed, ".parquet")]
    return [path for path in paths if path.exists()]


def vectorise(context: RunContext, seed: int) -> None:
    """Write run ``seed``'s vector map: the regularised map's polygons with their statistics."""
    layout, nomenclature = context.layout, context.nomenclature
    regularised = layout.final_map(seed, "Regularised")
    info = read_raster_info(regularised)
    grid = info.grid
    probabilities = layout.final_map(seed, "ProbabilityMap")
    codes = probability_codes(probabilities, nomenclature)
    builder = VectorMapBuilder(grid.transform, grid.crs, codes, nodata=NODATA_CLASS)
    blocks = list(
        halo_windows(grid.height, grid.width, context.config.post_processing.block_size, 0)
    )
    for block in progress(blocks, f"vectorising run {seed}", len(blocks)):
        classes = read_raster(regularised, block.core, bands=1)
        raw = read_raster(layout.final_map(seed), block.core, bands=1)
        confidence = read_raster(layout.final_map(seed, "Confidence"), block.core, bands=1)
        bands = read_raster(probabilities, block.core)
        builder.add_window(
            int(block.core.row_off),
            int(block.core.col_off),
            classes,
            raw=raw,
            confidence=confidence,
            class_probability=_probability_of(classes, bands, codes),
        )
    tolerance = context.config.post_processing.vectorisation.douglas
    frame = builder.polygons(tolerance, names=nomenclature.names)
    write_vector_map(frame, layout.vector_map(seed), layout.vector_map(seed, ".parquet"))


def probability_codes(path: Path, nomenclature: Nomenclature) -> np.ndarray:
    """Class code of each band of a probability map, from its band names.

    Raises
    ------
    StepError
        If a band's name is not a class of the nomenclature.
    """
    by_name = {name: code for code, name in nomenclature.names.items()}
    if len(by_name) < len(nomenclature.names):
        named = [name for name in nomenclature.names.values()]
        twice = sorted({name for name in named if named.count(name) > 1})
        raise StepError(
            f"the nomenclature names several classes {twice}: a probability band's class "
            "cannot be told from its name; give each class its own name",
            path,
        )
    codes = []
    for band, name in enumerate(read_raster_info(path).descriptions, start=1):
        code = by_name.get(name or "")
        if code is None and name and name.startswith("class ") and name[6:].isdigit():
            code = int(name[6:])  # a learnt code the nomenclature does not name
        if code is None:
            raise StepError(f"band {band} ({name!r}) names no class of the nomenclature", path)
        codes.append(code)
    return np.asarray(codes)


# --- smoothing and uncertainty ------------------------------------------------------


def _probability_products(context: RunContext, seed: int) -> None:
    """Smoothed probabilities and classes, and the uncertainty maps, in one pass."""
    layout, post = context.layout, context.config.post_processing
    source = layout.final_map(seed, "ProbabilityMap")
    info = read_raster_info(source)
    codes = probability_codes(source, context.nomenclature)
    outputs: dict[str, tuple[int, np.dtype, float]] = {}
    if post.smoothing.enabled:
        outputs["Smoothed"] = (1, class_dtype(codes), NODATA_CLASS)
        outputs["SmoothedProbabilityMap"] = (len(codes), np.dtype(np.uint8), CONFIDENCE_NODATA)
    if post.uncertainty.enabled:
        for measure in post.uncertainty.types:
            outputs[f"Uncertainty_{measure}"] = (1, np.dtype(np.float32), UNCERTAINTY_NODATA)
    halo = smoothing_halo(post.smoothing.window_size) if post.smoothing.enabled else 0
    with _writers(context, seed, outputs, info) as writers:
        if "SmoothedProbabilityMap" in writers:
            for band, name in enumerate(info.descriptions, start=1):
                writers["SmoothedProbabilityMap"].set_band_description(band, name or "")
        blocks = list(halo_windows(info.grid.height, info.grid.width, post.block_size, halo))
        computed = _computed(context, blocks, partial(_probability_block, context, source, codes))
        for block, products in progress(computed, f"smoothing run {seed}", len(blocks)):
            for kind, array in products.items():
                writers[kind].write(
                    array if array.ndim == 3 else array[np.newaxis], window=block.core
                )
    _finish(context, seed, outputs)


def _probability_block(
    context: RunContext, source: Path, codes: np.ndarray, block: HaloWindow
) -> dict[str, np.ndarray]:
    """The smoothing and uncertainty products of one block (its core only)."""
    post = context.config.post_processing
    percent = read_raster(source, block.read)
    valid = np.all(percent != CONFIDENCE_NODATA, axis=0)
    probabilities = np.where(valid, percent / np.float32(100.0), np.nan).astype(np.float32)
    products: dict[str, np.ndarray] = {}
    if post.smoothing.enabled:
        smoothing = post.smoothing
        smoothed = bayes_smooth(
            probabilities,
            valid,
            smoothing.window_size,
            smoothing.neighborhood_fraction,
            _per_class(smoothing.smoothness, len(codes)),
        )
        probabilities = smoothed
        core_valid = valid[block.inner]
        core = smoothed[(slice(None), *block.inner)]
        classes = np.full(core_valid.shape, NODATA_CLASS, dtype=class_dtype(codes))
        classes[core_valid] = codes[np.argmax(core[:, core_valid], axis=0)]
        products["Smoothed"] = classes
        percent_core = np.full(core.shape, CONFIDENCE_NODATA, dtype=np.uint8)
        percent_core[:, core_valid] = np.clip(np.rint(core[:, core_valid] * 100), 0, 100)
        products["SmoothedProbabilityMap"] = percent_core
    if post.uncertainty.enabled:
        core = probabilities[(slice(None), *block.inner)]
        for measure in post.uncertainty.types:
            values = UNCERTAINTY_MEASURES[measure](core)
            products[f"Uncertainty_{measure}"] = np.where(
                np.isnan(values), UNCERTAINTY_NODATA, values
            ).astype(np.float32)
    return products


def _per_class(smoothness: float | tuple[float, ...], n_classes: int) -> float | tuple:
    """The smoothness of each class; a list must give one value per class."""
    if isinstance(smoothness, tuple) and len(smoothness) not in (1, n_classes):
        raise StepError(
            f"post_processing.smoothing.smoothness gives {len(smoothness)} values for "
            f"{n_classes} classes: give one value, or one per class"
        )
    if isinstance(smoothness, tuple) and len(smoothness) == 1:
        return smoothness[0]
    return smoothness


# --- regularisation -----------------------------------------------------------------


def _regularised_map(context: RunContext, seed: int) -> None:
    """Majority filter then sieve of the raw or smoothed class map."""
    layout, post = context.layout, context.config.post_processing
    kind = "Smoothed" if post.regularisation_source == "smoothed" else "Classif"
    source = layout.final_map(seed, kind)
    info = read_raster_info(source)
    window, min_pixels = post.regularisation.majority_window, mmu_pixels(context)
    halo = regularisation_halo(window, min_pixels)
    outputs = {"Regularised": (1, np.dtype(info.dtype), NODATA_CLASS)}
    with _writers(context, seed, outputs, info) as writers:
        blocks = list(halo_windows(info.grid.height, info.grid.width, post.block_size, halo))
        regular = partial(_regularised_block, source, window, min_pixels)
        computed = _computed(context, blocks, regular)
        for block, classes in progress(computed, f"regularising run {seed}", len(blocks)):
            writers["Regularised"].write(classes[np.newaxis], window=block.core)
    _finish(context, seed, outputs)


def _regularised_block(source: Path, window: int, min_pixels: int, block: HaloWindow) -> np.ndarray:
    """The regularised classes of one block's core."""
    classes = read_raster(source, block.read, bands=1)
    return regularise(classes, window, min_pixels, nodata=NODATA_CLASS)[block.inner]


def _computed(
    context: RunContext, blocks: list[HaloWindow], compute: Callable[[HaloWindow], T]
) -> Iterator[tuple[HaloWindow, T]]:
    """``(block, compute(block))`` in block order, computing the task's cores' worth at once.

    The kernels release the GIL (numba ``nogil``, GDAL reads), so threads share one
    task's cores; results are written in order by the caller, one group at a time,
    so memory holds at most one block per core.
    """
    workers = max(1, context.threads or os.cpu_count() or 1)
    if workers == 1:
        yield from ((block, compute(block)) for block in blocks)
        return
    with ThreadPoolExecutor(workers) as pool:
        for start in range(0, len(blocks), workers):
            group = blocks[start : start + workers]
            yield from zip(group, pool.map(compute, group), strict=True)


def mmu_pixels(context: RunContext) -> int:
    """The minimum mapping unit in pixels (rounded up from hectares)."""
    regularisation = context.config.post_processing.regularisation
    if regularisation.mmu_unit == "pixels":
        return math.ceil(regularisation.mmu)
    pixel_ha = context.config.chain.spatial_resolution**2 / 10_000
    return math.ceil(regularisation.mmu / pixel_ha - 1e-9)


# --- writing ------------------------------------------------------------------------


@contextlib.contextmanager
def _writers(
    context: RunContext, seed: int, outputs: dict[str, tuple[int, np.dtype, float]], info
) -> Iterator[dict]:
    """Open one block-by-block writer per output, renamed into place when all are complete."""
    nomenclature = context.nomenclature
    with contextlib.ExitStack() as stack:
        writers = {}
        for kind, (count, dtype, nodata) in outputs.items():
            tmp = stack.enter_context(atomic_path(context.layout.final_map(seed, kind)))
            writers[kind] = stack.enter_context(
                open_raster_writer(tmp, count, dtype, info.grid, nodata=nodata, blocksize=512)
            )
            if kind in _CLASS_MAPS:
                most = np.iinfo(dtype).max
                writers[kind].write_colormap(
                    1, {c: (*nomenclature.color(c), 255) for c in nomenclature.codes if c <= most}
                )
        yield writers


_CLASS_MAPS = ("Smoothed", "Regularised")


def _finish(context: RunContext, seed: int, outputs: dict) -> None:
    """Make each written map a Cloud-Optimized GeoTIFF (with a QGIS style for class maps)."""
    for kind in outputs:
        path = context.layout.final_map(seed, kind)
        if kind in _CLASS_MAPS:
            finish_raster(path, "classes", context.nomenclature, threads=context.threads)
        else:
            finish_raster(path, "continuous", threads=context.threads)


def _probability_of(classes: np.ndarray, bands: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Per pixel, the probability band of its class (255 where the class has no band)."""
    index = np.full(int(max(codes.max(), classes.max())) + 1, -1, dtype=np.int64)
    index[codes] = np.arange(codes.size)
    band = index[classes]
    out = np.full(classes.shape, CONFIDENCE_NODATA, dtype=np.uint8)
    has = band >= 0
    rows, cols = np.nonzero(has)
    out[has] = bands[band[has], rows, cols]
    return out
