"""Step learning (per run): fit the configured classifier on the run's samples."""

from __future__ import annotations

import logging

import numpy as np

from sitsmap.errors import StepError
from sitsmap.io.arrays import read_table, write_table
from sitsmap.io.figures import save_figure
from sitsmap.learning.deep.history import plot_history
from sitsmap.pipeline.acquisitions import load_acquisitions
from sitsmap.pipeline.context import RunContext
from sitsmap.scheduling.resources import available_cores
from sitsmap.vectors.ground_truth import POLYGON_ID

LOGGER = logging.getLogger(__name__)


def train(context: RunContext, seed: int) -> dict[str, str]:
    """Train the model of run ``seed`` and save it with its metadata and learning curves.

    Returns
    -------
    dict
        ``model_sha256``: the model file's digest, kept in the task's completion
        record so that classification refuses a model file changed since.
    """
    # Imported here, in the worker that trains: torch, scikit-learn and LightGBM take
    # 2.5 s to import, which the process that only builds the task graph is spared.
    import torch

    from sitsmap.learning.classical import make_classifier
    from sitsmap.learning.deep.trainer import DeepClassifier
    from sitsmap.learning.persistence import ModelMetadata, save_model

    config, layout = context.config, context.layout
    acquisitions = load_acquisitions(context)
    names = acquisitions.feature_names
    field = config.chain.data_field
    table = read_table(layout.samples(seed), columns=[*names, field, POLYGON_ID])
    if table.empty:
        raise StepError(
            "no training sample: do the learning polygons cover valid pixels?", layout.samples(seed)
        )
    features = table[names].to_numpy(np.float32)
    labels = table[field].to_numpy(np.int32)
    settings = config.arg_train
    if settings.deep_learning_parameters is not None:
        torch.set_num_threads(_cores(context))  # one worker's share, not every core
        model = DeepClassifier.from_settings(
            settings.deep_learning_parameters,
            seed,
            n_dates=len(acquisitions.out_dates),
            day_of_year=[d.timetuple().tm_yday for d in acquisitions.out_dates],
        )
        name = settings.deep_learning_parameters.dl_name
    else:
        model = make_classifier(settings, seed, n_jobs=_cores(context))
        name = settings.classifier
    LOGGER.info(
        "training %s on %d samples × %d features, %d classes",
        name,
        len(labels),
        len(names),
        np.unique(labels).size,
    )
    model.fit(features, labels, groups=table[POLYGON_ID].to_numpy())
    metadata = ModelMetadata(
        classifier=name,
        classes=[int(c) for c in model.classes_],
        feature_names=names,
        dates=[d.isoformat() for d in acquisitions.out_dates],
        bands=list(acquisitions.bands),
        seed=seed,
        extra={"samples": int(len(labels))},
    )
    digest = save_model(layout.model(seed), model, metadata)
    history = getattr(model, "history_", None)
    if history is not None:
        write_table(history, layout.model_dir(seed) / "history.csv")
        criterion = settings.deep_learning_parameters.model_selection_criterion
        loss_figure, metric_figure = plot_history(history, criterion=criterion)
        save_figure(loss_figure, layout.model_dir(seed) / "loss_curves.png")
        save_figure(metric_figure, layout.model_dir(seed) / "metric_curves.png")
    return {"model_sha256": digest}


def _cores(context: RunContext) -> int:
    """Threads for the fit: the task's share of the cores (all of them when unset)."""
    maximum = context.config.task_retry_limits.maximum_cpu
    return context.threads or max(1, min(maximum, available_cores()))
