"""``sitsmap suggest-samples``: the most uncertain places of a run's map, spread apart.

For a field campaign or photo-interpretation: each point is a pixel centre with
its uncertainty and the two classes the model hesitated between.
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np

from sitsmap.classification.streaming import CONFIDENCE_NODATA
from sitsmap.config.loader import load_config
from sitsmap.errors import InputDataError
from sitsmap.io.raster import read_raster, read_raster_info
from sitsmap.io.vector import write_vector
from sitsmap.pipeline.context import RunContext
from sitsmap.pipeline.layout import OutputLayout
from sitsmap.pipeline.steps.postprocessing import probability_codes
from sitsmap.postprocessing.suggestions import TopCandidates, pool_size, spread_selection
from sitsmap.postprocessing.uncertainty import UNCERTAINTY_MEASURES, top_two
from sitsmap.postprocessing.windows import halo_windows

logger = logging.getLogger(__name__)

MAX_POOL = 10_000_000
"""Most candidates kept in memory (about 0.5 GB with their columns, twice that while
merging); beyond, the choice is logged as approximate."""


def suggest_samples(
    output_dir: Path,
    n: int,
    min_distance: float,
    seed: int | None = None,
    measure: str = "margin",
    out: Path | None = None,
    block_size: int = 1024,
) -> Path:
    """Write the ``n`` most uncertain pixels of a run, ``min_distance`` apart, as points.

    Parameters
    ----------
    output_dir : Path
        The run's output folder (``chain.output_path``).
    n : int
        Points wanted.
    min_distance : float
        Smallest distance between two points (metres of the map's CRS).
    seed : int, optional
        The run whose map is read; the first run when omitted.
    measure : str
        ``entropy``, ``margin`` or ``least`` (see :mod:`sitsmap.postprocessing.uncertainty`).
    out : Path, optional
        GeoPackage to write; ``final/suggested_samples_seed_<seed>.gpkg`` when omitted.
    block_size : int
        Side of the blocks the map is read in.

    Returns
    -------
    Path
        The GeoPackage written.

    Raises
    ------
    InputDataError
        If the folder holds no finished run or no probability map.
    """
    layout = OutputLayout(Path(output_dir))
    path = out or layout.suggested_samples(seed if seed is not None else 0)
    if Path(path).suffix.lower() != ".gpkg":
        raise InputDataError("suggested samples are written as a GeoPackage: name it .gpkg", path)
    config = load_config(_run_config(layout))
    context = RunContext(config)
    if seed is not None and seed not in config.seeds:
        raise InputDataError(f"no run of seed {seed} here (runs: {config.seeds})", layout.root)
    seed = config.seeds[0] if seed is None else seed
    path = out or layout.suggested_samples(seed)
    smoothed = config.post_processing.smoothing.enabled
    source = _probability_map(layout, seed, smoothed)
    codes = probability_codes(source, context.nomenclature)
    info = read_raster_info(source)
    size = pool_size(n, min_distance, abs(info.grid.resolution))
    if size > MAX_POOL:
        logger.warning(
            "keeping the %d most uncertain pixels, not the %d an exact choice needs: "
            "points may be slightly less uncertain than possible",
            MAX_POOL,
            size,
        )
    pool = _candidates(source, codes, info, min(size, MAX_POOL), measure, block_size)
    kept = spread_selection(pool.columns["x"], pool.columns["y"], pool.ranked(), n, min_distance)
    if kept.size < n:
        logger.warning(
            "only %d points are %g apart on this map (%d asked)", kept.size, min_distance, n
        )
    frame = _points(pool, kept, measure, context, info.grid.crs)
    write_vector(frame, path)
    return path


def _run_config(layout: OutputLayout) -> Path:
    if not layout.config.is_file():
        raise InputDataError("no config.yaml: not the output folder of a sitsmap run", layout.root)
    return layout.config


def _probability_map(layout: OutputLayout, seed: int, smoothed: bool) -> Path:
    """The smoothed probabilities when the run smooths, else the raw ones."""
    for kind in ("SmoothedProbabilityMap",) * smoothed + ("ProbabilityMap",):
        path = layout.final_map(seed, kind)
        if path.is_file():
            return path
    raise InputDataError(
        f"no probability map of run {seed}: run with post_processing.uncertainty or "
        "arg_classification.enable_probability_map on",
        layout.final,
    )


def _candidates(source, codes, info, size, measure, block_size) -> TopCandidates:
    """The ``size`` most uncertain pixels of the map, with their two best classes."""
    pool = TopCandidates(size)
    transform = info.grid.transform
    for block in halo_windows(info.grid.height, info.grid.width, block_size, 0):
        percent = read_raster(source, block.core)
        valid = np.all(percent != CONFIDENCE_NODATA, axis=0)
        if not valid.any():
            continue
        rows, cols = np.nonzero(valid)
        probabilities = percent[:, rows, cols].astype(np.float32) / 100
        first, p_first, second, p_second = top_two(probabilities, codes)
        x, y = transform * (cols + block.core.col_off + 0.5, rows + block.core.row_off + 0.5)
        pool.add(
            UNCERTAINTY_MEASURES[measure](probabilities).astype(np.float64),
            x=np.asarray(x),
            y=np.asarray(y),
            first=first,
            p_first=p_first,
            second=second,
            p_second=p_second,
        )
    return pool


def _points(pool: TopCandidates, kept: np.ndarray, measure: str, context, crs) -> gpd.GeoDataFrame:
    """The kept candidates as points with their uncertainty and two best classes."""
    names = context.nomenclature
    columns = pool.columns
    first, second = columns["first"][kept], columns["second"][kept]
    return gpd.GeoDataFrame(
        {
            "rank": np.arange(1, kept.size + 1),
            measure: pool.scores[kept],
            "class_1": first,
            "name_1": [names.name(c) for c in first],
            "probability_1": columns["p_first"][kept],
            "class_2": second,
            "name_2": [names.name(c) for c in second],
            "probability_2": columns["p_second"][kept],
        },
        geometry=gpd.points_from_xy(columns["x"][kept], columns["y"][kept]),
        crs=crs,
    )
