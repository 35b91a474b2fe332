"""Step classification (per tile × run): stream a tile through the model, window by window."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sitsmap.classification.regions import (
    blend_probabilities,
    border_halo,
    halo_window,
    region_weights,
)
from sitsmap.classification.streaming import CONFIDENCE_NODATA, class_dtype, maps_from_probabilities
from sitsmap.console import progress
from sitsmap.errors import StepError
from sitsmap.io.atomic import atomic_path
from sitsmap.io.raster import open_raster_writer, read_raster_window
from sitsmap.io.vector import read_vector
from sitsmap.nomenclature import NODATA_CLASS
from sitsmap.pipeline.acquisitions import (
    feature_windows,
    load_acquisitions,
    tile_stack,
    window_features,
)
from sitsmap.pipeline.context import RunContext
from sitsmap.pipeline.tasks import fold_suffix
from sitsmap.preprocessing.features import FeatureBlock
from sitsmap.sampling.bins import REGRESSION_NODATA
from sitsmap.vectors.regions import REGION_COLUMN, region_index

if TYPE_CHECKING:
    from rasterio.windows import Window

    from sitsmap.learning.classical import ClassifierProtocol

LOGGER = logging.getLogger(__name__)

PREDICT_PIXELS = 16384
"""Pixels per ``predict_proba`` call. It bounds the pixel-major copy of the features
that predicting needs (32 MB for 481 features), where a whole window's copy would
double the window's memory."""


def classify_tile(
    context: RunContext,
    tile: str,
    seed: int,
    regional: bool = False,
    probabilities: bool | None = None,
) -> None:
    """Write the class, confidence and (optionally) probability maps of ``tile``.

    ``probabilities`` says whether to write the probability maps; when omitted,
    whether the configuration asks for them or a post-processing product reads them.

    With ``regional``, each pixel is classified by its eco-region's model, blended
    with the neighbouring regions' models within ``chain.region_border_width`` of a
    border (see :mod:`sitsmap.classification.regions`); pixels outside every region
    are no data.
    """
    if context.config.regression:
        regress_tile(context, tile, seed, regional)
        return
    layout, nomenclature = context.layout, context.nomenclature
    acquisitions = load_acquisitions(context)
    models = _load_models(context, tile, seed, acquisitions.feature_names, regional)
    codes = models.codes
    series = tile_stack(context, tile, acquisitions)
    grid = series.grid
    with_probabilities = context.config.probability_maps if probabilities is None else probabilities
    outputs = {
        "Classif": (1, class_dtype(codes), NODATA_CLASS),
        "Confidence": (1, np.uint8, CONFIDENCE_NODATA),
    }
    if with_probabilities:
        outputs["ProbabilityMap"] = (len(codes), np.uint8, CONFIDENCE_NODATA)
    # exits in reverse order: each writer closes before its file is renamed into place
    with contextlib.ExitStack() as stack_of_files:
        writers = {}
        for kind, (count, dtype, nodata) in outputs.items():
            tmp = stack_of_files.enter_context(atomic_path(layout.classification(tile, seed, kind)))
            writers[kind] = stack_of_files.enter_context(
                open_raster_writer(tmp, count, dtype, grid, nodata=nodata)
            )
        writers["Classif"].write_colormap(
            1, {c: (*nomenclature.color(c), 255) for c in nomenclature.codes if c < 256}
        )
        if with_probabilities:
            for band, code in enumerate(codes, start=1):
                writers["ProbabilityMap"].set_band_description(band, nomenclature.name(code))
        windows = feature_windows(context, series)
        if regional:  # windows of no region are not read
            windows = [w for w in windows if models.regions_in(w).any()]
        blocks = window_features(context, series, windows)
        for window, block in progress(blocks, f"classifying {tile}", len(windows)):
            probabilities, has_data = models.predict(window, block)
            maps = maps_from_probabilities(probabilities, has_data, codes, with_probabilities)
            writers["Classif"].write(maps.classes[np.newaxis], window=window)
            writers["Confidence"].write(maps.confidence[np.newaxis], window=window)
            if with_probabilities:
                writers["ProbabilityMap"].write(maps.probabilities, window=window)


def regress_tile(context: RunContext, tile: str, seed: int, regional: bool = False) -> None:
    """Write the regression map of ``tile`` (float32), and its uncertainty if any.

    The uncertainty is the trees' spread of a random forest, or the width of
    LightGBM's quantile interval. Pixels without data are
    :data:`~sitsmap.sampling.bins.REGRESSION_NODATA`; with ``regional``, the regions'
    predictions are blended near borders as the classification blends probabilities.
    """
    layout = context.layout
    acquisitions = load_acquisitions(context)
    models = _load_models(context, tile, seed, acquisitions.feature_names, regional)
    series = tile_stack(context, tile, acquisitions)
    kinds = ["Regression"]
    if any(model.uncertainty_ is not None for model in models.by_region.values()):
        kinds.append("RegressionUncertainty")
    else:  # an earlier run's, whose model had one, would be mosaicked with this map
        layout.classification(tile, seed, "RegressionUncertainty").unlink(missing_ok=True)
    with contextlib.ExitStack() as stack_of_files:
        writers = []
        for kind in kinds:
            tmp = stack_of_files.enter_context(atomic_path(layout.classification(tile, seed, kind)))
            writers.append(
                stack_of_files.enter_context(
                    open_raster_writer(tmp, 1, np.float32, series.grid, nodata=REGRESSION_NODATA)
                )
            )
        windows = feature_windows(context, series)
        if regional:
            windows = [w for w in windows if models.regions_in(w).any()]
        blocks = window_features(context, series, windows)
        for window, block in progress(blocks, f"mapping {tile}", len(windows)):
            values, has_data = models.predict(window, block)
            for column, writer in enumerate(writers):
                band = np.full(has_data.shape, REGRESSION_NODATA, dtype=np.float32)
                band[has_data] = np.nan_to_num(values[:, column], nan=REGRESSION_NODATA)
                writer.write(band[np.newaxis], window=window)


@dataclass
class _Models:
    """The models a tile is classified with: one, or one per region number."""

    by_region: dict[int, ClassifierProtocol]
    codes: np.ndarray
    regions_raster: Path | None = None
    halo: int = 0
    border_width: float = 0.0
    resolution: float = 10.0

    def regions_in(self, window: Window) -> np.ndarray:
        """Region numbers of ``window`` grown by the halo (0 beyond the tile)."""
        grown = halo_window(window, self.halo)
        return read_raster_window(self.regions_raster, grown)

    def predict(self, window: Window, block: FeatureBlock) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities over :attr:`codes` of the window's pixels with data, and which."""
        if self.regions_raster is None:
            model = self.by_region[0]
            return _predict_by_slices(model, block, block.has_data, self.codes), block.has_data
        # (a regression's two columns, value and uncertainty, blend as probabilities do)
        weights = region_weights(
            self.regions_in(window), self.halo, self.border_width, self.resolution
        )
        has_data = block.has_data & (sum(weights.values()) > 0 if weights else False)
        order = np.full(has_data.shape, -1, dtype=np.int64)
        order[has_data] = np.arange(int(has_data.sum()))
        parts = []
        for region, weight in weights.items():
            use = has_data & (weight > 0)
            if use.any():
                probabilities = _predict_by_slices(self.by_region[region], block, use, self.codes)
                parts.append((order[use], weight[use], probabilities))
        return blend_probabilities(parts, int(has_data.sum()), self.codes.size), has_data


def _load_models(
    context: RunContext, tile: str, seed: int, names: list[str], regional: bool
) -> _Models:
    """The run's model, or each region's (its fallback's when it had nothing to learn)."""
    layout, chain = context.layout, context.config.chain
    if not regional:
        model = _load_one(context, seed, None, names)
        return _Models({0: model}, _codes([model]))
    numbers = region_index(read_vector(layout.regions)[REGION_COLUMN])
    resolved = resolve_fallbacks(context, seed, list(numbers))
    loaded = {source: _load_one(context, seed, source, names) for source in set(resolved.values())}
    by_region = {numbers[region]: loaded[source] for region, source in resolved.items()}
    return _Models(
        by_region,
        _codes(list(loaded.values())),
        layout.regions_raster(tile),
        border_halo(chain.region_border_width, chain.spatial_resolution),
        chain.region_border_width,
        chain.spatial_resolution,
    )


def _codes(models: list) -> np.ndarray:
    """The classes the models predict; a regression's two columns (value, uncertainty)."""
    if getattr(models[0], "task", "classification") == "regression":
        return np.arange(2)
    return np.unique(np.concatenate([np.asarray(m.classes_) for m in models]))


def _load_one(context: RunContext, seed: int, region: str | None, names: list[str]):
    """One model, checked against its learning task's record and this run's features."""
    # Imported here, in the worker that classifies (see steps.learning.train).
    from sitsmap.learning.compiled import with_compiled
    from sitsmap.learning.persistence import load_model, use_threads
    from sitsmap.scheduling.records import recorded_outputs

    layout = context.layout
    key = learning_key(seed, region) + fold_suffix(context.fold)
    expected = recorded_outputs(layout.done, key).get("model_sha256")
    model, metadata = load_model(layout.model(seed, region), expected)
    if metadata.feature_names != names:
        raise StepError(
            "the model was trained on other features than this run computes; "
            "rerun from --first-step sampling",
            layout.model(seed, region),
        )
    if context.threads:
        use_threads(model, context.threads)
    # the compiled trees beside the model (same probabilities), unless switched off
    return with_compiled(
        model,
        layout.model(seed, region),
        expected,
        threads=context.threads,
        enabled=context.config.arg_classification.compiled_inference,
    )


def learning_key(seed: int, region: str | None = None) -> str:
    """The learning task's key: ``learning-seed0``, ``learning-seed0-region3``."""
    return f"learning-seed{seed}" + ("" if region is None else f"-region{region}")


def resolve_fallbacks(context: RunContext, seed: int, regions: list[str]) -> dict[str, str | None]:
    """The model each region uses: its own, the global one (None), or its nearest region's.

    The nearest region is the closest one (by distance between the regions' polygons,
    then by id) that has a model of its own.
    """
    from sitsmap.scheduling.records import recorded_outputs

    layout, suffix = context.layout, fold_suffix(context.fold)
    fallback = {
        region: recorded_outputs(layout.done, learning_key(seed, region) + suffix).get("fallback")
        for region in regions
    }
    own = [region for region in regions if fallback[region] is None]
    resolved: dict[str, str | None] = {}
    polygons = read_vector(layout.regions).set_index(REGION_COLUMN).geometry
    for region in regions:
        if fallback[region] is None:
            resolved[region] = region
        elif fallback[region] == "global" or not own:
            resolved[region] = None
        else:
            resolved[region] = min(
                own, key=lambda other: (polygons[region].distance(polygons[other]), other)
            )
    return resolved


def _predict_by_slices(
    model: ClassifierProtocol, block: FeatureBlock, use: np.ndarray, codes: np.ndarray
) -> np.ndarray:
    """Probabilities ``(n, len(codes))`` of the window's pixels where ``use``, in order.

    A model that does not know a class of ``codes`` (a region's model) gives it 0.
    """
    pixels = np.flatnonzero(use)
    features = block.features.reshape(len(block.features), -1)
    if getattr(model, "task", "classification") == "regression":
        return _regress_by_slices(model, features, pixels)
    columns = np.searchsorted(codes, np.asarray(model.classes_))
    probabilities = np.zeros((pixels.size, codes.size), dtype=np.float32)
    for first in range(0, pixels.size, PREDICT_PIXELS):
        chosen = pixels[first : first + PREDICT_PIXELS]
        # gathered band by band (contiguous reads), then made pixel-major as models want it
        rows = np.ascontiguousarray(features[:, chosen].T)
        probabilities[first : first + chosen.size, columns] = model.predict_proba(rows)
    return probabilities


def _regress_by_slices(model, features: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """A regressor's value and uncertainty (NaN without one), ``(n, 2)``, of ``pixels``."""
    values = np.full((pixels.size, 2), np.nan, dtype=np.float32)
    for first in range(0, pixels.size, PREDICT_PIXELS):
        chosen = pixels[first : first + PREDICT_PIXELS]
        rows = np.ascontiguousarray(features[:, chosen].T)
        predicted, spread = model.predict_with_uncertainty(rows)
        values[first : first + chosen.size, 0] = predicted
        if spread is not None:
            values[first : first + chosen.size, 1] = spread
    return values
