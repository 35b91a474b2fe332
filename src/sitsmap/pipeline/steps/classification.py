"""Step classification (per tile × run): stream a tile through the model, window by window."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

import numpy as np

from sitsmap.classification.streaming import CONFIDENCE_NODATA, class_dtype, maps_from_probabilities
from sitsmap.console import progress
from sitsmap.errors import StepError
from sitsmap.io.atomic import atomic_path
from sitsmap.io.raster import open_raster_writer
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

if TYPE_CHECKING:
    from sitsmap.learning.classical import ClassifierProtocol

LOGGER = logging.getLogger(__name__)

PREDICT_PIXELS = 16384
"""Pixels per ``predict_proba`` call. It bounds the pixel-major copy of the features
that predicting needs (32 MB for 481 features), where a whole window's copy would
double the window's memory."""


def classify_tile(context: RunContext, tile: str, seed: int) -> None:
    """Write the class, confidence and (optionally) probability maps of ``tile``."""
    # Imported here, in the worker that classifies (see steps.learning.train).
    from sitsmap.learning.persistence import load_model, use_threads
    from sitsmap.scheduling.records import recorded_outputs

    layout, nomenclature = context.layout, context.nomenclature
    acquisitions = load_acquisitions(context)
    key = f"learning-seed{seed}{fold_suffix(context.fold)}"
    expected = recorded_outputs(layout.done, key).get("model_sha256")
    model, metadata = load_model(layout.model(seed), expected)
    if metadata.feature_names != acquisitions.feature_names:
        raise StepError(
            "the model was trained on other features than this run computes; "
            "rerun from --first-step sampling",
            layout.model(seed),
        )
    codes = np.asarray(metadata.classes)
    if context.threads:
        use_threads(model, context.threads)
    series = tile_stack(context, tile, acquisitions)
    grid = series.grid
    with_probabilities = context.config.arg_classification.enable_probability_map
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
        blocks = window_features(context, series, windows)
        for window, block in progress(blocks, f"classifying {tile}", len(windows)):
            probabilities = _predict_by_slices(model, block, codes.size)
            maps = maps_from_probabilities(probabilities, block.has_data, codes, with_probabilities)
            writers["Classif"].write(maps.classes[np.newaxis], window=window)
            writers["Confidence"].write(maps.confidence[np.newaxis], window=window)
            if with_probabilities:
                writers["ProbabilityMap"].write(maps.probabilities, window=window)


def _predict_by_slices(
    model: ClassifierProtocol, block: FeatureBlock, n_classes: int
) -> np.ndarray:
    """Class probabilities ``(n, n_classes)`` of the window's pixels with data, in order."""
    pixels = np.flatnonzero(block.has_data)
    features = block.features.reshape(len(block.features), -1)
    probabilities = np.empty((pixels.size, n_classes), dtype=np.float32)
    for first in range(0, pixels.size, PREDICT_PIXELS):
        chosen = pixels[first : first + PREDICT_PIXELS]
        # gathered band by band (contiguous reads), then made pixel-major as models want it
        rows = np.ascontiguousarray(features[:, chosen].T)
        probabilities[first : first + chosen.size] = model.predict_proba(rows)
    return probabilities
