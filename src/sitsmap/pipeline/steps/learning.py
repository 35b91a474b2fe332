"""Step learning (per run): fit the configured classifier on the run's samples."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sitsmap.errors import StepError
from sitsmap.io.arrays import read_table, write_table
from sitsmap.io.figures import save_figure
from sitsmap.io.jsonfile import read_json, write_json
from sitsmap.learning.deep.history import plot_history
from sitsmap.learning.selection import CRITERIA
from sitsmap.pipeline.acquisitions import load_acquisitions
from sitsmap.pipeline.context import RunContext
from sitsmap.scheduling.resources import available_cores
from sitsmap.vectors.ground_truth import POLYGON_ID
from sitsmap.vectors.regions import REGION_COLUMN

if TYPE_CHECKING:
    from sitsmap.config.schema import ArgTrain
    from sitsmap.learning.classical import ClassifierProtocol
    from sitsmap.learning.selection import Selection
    from sitsmap.pipeline.acquisitions import Acquisitions
    from sitsmap.pipeline.layout import OutputLayout

LOGGER = logging.getLogger(__name__)

MODEL_SELECTION_NAME = "model_selection.json"
"""The scores of arg_train.model_selection's candidates, beside the model they chose."""


def train(context: RunContext, seed: int, region: str | None = None) -> dict[str, str]:
    """Train the model of run ``seed`` (of one region) and save it with its learning curves.

    Parameters
    ----------
    context : RunContext
        The run.
    seed : int
        The run's seed.
    region : str, optional
        Train on this region's samples only (one model per eco-region); a region
        without any sample falls back as ``chain.region_fallback`` says.

    Returns
    -------
    dict
        ``model_sha256``: the model file's digest, kept in the task's completion
        record so that classification refuses a model file changed since; or
        ``fallback``: the model a region without samples uses instead.
    """
    # Imported here, in the worker that trains: torch, scikit-learn and LightGBM take
    # 2.5 s to import, which the process that only builds the task graph is spared.
    from sitsmap.learning.persistence import ModelMetadata, save_model

    config, layout = context.config, context.layout
    # scores of an earlier run's candidates never describe this model
    (layout.model_dir(seed, region) / MODEL_SELECTION_NAME).unlink(missing_ok=True)
    acquisitions = load_acquisitions(context)
    names = acquisitions.feature_names
    field = config.chain.data_field
    regression = config.regression
    columns = [*names, field, POLYGON_ID, *([REGION_COLUMN] if region is not None else [])]
    if regression:
        columns.append(context.strata_field)
    table = read_table(layout.samples(seed), columns=columns)
    if region is not None:
        table, fallback = _region_samples(context, table, seed, region)
        if fallback is not None:
            return {"fallback": fallback}
    if table.empty:
        raise StepError(
            "no training sample: do the learning polygons cover valid pixels?", layout.samples(seed)
        )
    features = table[names].to_numpy(np.float32)
    labels = table[field].to_numpy(np.float64 if regression else np.int32)
    groups = table[POLYGON_ID].to_numpy()
    settings = config.arg_train
    selection = _select_model(context, seed, region, features, labels, groups, acquisitions)
    if selection is not None:
        settings = selection.kept.settings
    model, name = _learner(context, settings, seed, acquisitions)
    LOGGER.info(
        "training %s on %d samples × %d features, %s",
        name,
        len(labels),
        len(names),
        f"{field} from {labels.min():g} to {labels.max():g}"
        if regression
        else f"{np.unique(labels).size} classes",
    )
    model.fit(features, labels, groups=groups)
    extra: dict = {"samples": int(len(labels)), **({"region": region} if region else {})}
    if regression:
        extra.update(task="regression", uncertainty=model.uncertainty_, target=_summary(labels))
    if selection is not None:
        extra["model_selection"] = _selection_summary(selection)
    metadata = ModelMetadata(
        classifier=name,
        classes=[] if regression else [int(c) for c in model.classes_],
        feature_names=names,
        dates=[d.isoformat() for d in acquisitions.out_dates],
        bands=list(acquisitions.bands),
        seed=seed,
        extra=extra,
    )
    digest = save_model(layout.model(seed, region), model, metadata)
    history = getattr(model, "history_", None)
    if history is not None:
        folder = layout.model_dir(seed, region)
        write_table(history, folder / "history.csv")
        criterion = settings.deep_learning_parameters.model_selection_criterion
        if regression and criterion == "fscore":  # the default means rmse in a regression
            criterion = "rmse"
        loss_figure, metric_figure = plot_history(history, criterion=criterion)
        save_figure(loss_figure, folder / "loss_curves.png")
        save_figure(metric_figure, folder / "metric_curves.png")
    return {"model_sha256": digest}


def _learner(
    context: RunContext, settings: ArgTrain, seed: int, acquisitions: Acquisitions
) -> tuple[ClassifierProtocol, str]:
    """The unfitted model that ``settings`` (arg_train, or a candidate's) asks for, and its name.

    The one builder of the learning step: model selection scores every candidate
    with the model it gives, and the kept one is trained on every sample alike.
    """
    import torch

    from sitsmap.learning.classical import make_classifier
    from sitsmap.learning.deep.trainer import DeepClassifier

    names = acquisitions.feature_names
    if settings.task == "regression":
        from sitsmap.learning.regressors import make_regressor

        if settings.deep_learning_parameters is not None:
            torch.set_num_threads(_cores(context))
        model = make_regressor(
            settings,
            seed,
            n_jobs=_cores(context),
            n_dates=acquisitions.n_dates,
            day_of_year=acquisitions.day_of_year,
            feature_names=names,
        )
        deep = settings.deep_learning_parameters
        return model, settings.classifier if deep is None else deep.dl_name
    if settings.deep_learning_parameters is not None:
        torch.set_num_threads(_cores(context))  # one worker's share, not every core
        model = DeepClassifier.from_settings(
            settings.deep_learning_parameters,
            seed,
            n_dates=acquisitions.n_dates,
            day_of_year=acquisitions.day_of_year,
            feature_names=names,
        )
        return model, settings.deep_learning_parameters.dl_name
    return make_classifier(settings, seed, n_jobs=_cores(context)), settings.classifier


def _select_model(
    context: RunContext,
    seed: int,
    region: str | None,
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    acquisitions: Acquisitions,
) -> Selection | None:
    """Score ``arg_train.model_selection``'s candidates; None without candidates.

    Writes the scores as ``model_selection.json`` beside the model.
    """
    from sitsmap.learning.selection import expand_candidates, select_model

    path = context.layout.model_dir(seed, region) / MODEL_SELECTION_NAME
    settings = context.config.arg_train.model_selection
    if not settings.candidates:
        return None
    candidates = expand_candidates(context.config.arg_train)
    LOGGER.info(
        "model selection%s: %d candidates, grouped %d-fold cross-validation over %d polygons",
        f" (region {region})" if region else "",
        len(candidates),
        settings.folds,
        np.unique(groups).size,
    )
    selection = select_model(
        features,
        labels,
        groups,
        candidates,
        lambda candidate: _learner(context, candidate, seed, acquisitions)[0],
        folds=settings.folds,
        criterion=settings.criterion,
        seed=seed,
    )
    document = selection.to_dict()
    write_json(path, {"seed": seed, "region": region, **document})
    return selection


def model_selections(
    layout: OutputLayout, seeds: Sequence[int], regions: Sequence[str] | None = None
) -> list[dict]:
    """The ``model_selection.json`` of every model of the runs that has one.

    Per seed, the global model's, then each region's of ``regions``; models
    without one (no candidates, a region that used a fallback) are left out.
    """
    documents = []
    for seed in seeds:
        for region in [None, *(regions or [])]:
            path = layout.model_dir(seed, region) / MODEL_SELECTION_NAME
            if path.is_file():
                documents.append(read_json(path))
    return documents


def _selection_summary(selection: Selection) -> dict:
    """What the model's metadata keeps of the selection: the kept one and each mean score."""
    key = CRITERIA[selection.criterion]
    return {
        "kept": selection.kept.name,
        "criterion": selection.criterion,
        "folds": selection.folds,
        "scores": {
            candidate.name: scores.get(key, {}).get("mean") if scores else None
            for candidate, scores in zip(selection.candidates, selection.scores, strict=True)
        },
    }


def _summary(values: np.ndarray) -> dict[str, float]:
    """Mean, standard deviation and range of a regression's learning target."""
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def _region_samples(
    context: RunContext, table: pd.DataFrame, seed: int, region: str
) -> tuple[pd.DataFrame, str | None]:
    """The region's samples, and its fallback when it has none (else None).

    Writes ``region.json`` beside the model: the region's sample count, its classes
    and the classes learnt elsewhere that it lacks (its model will never predict
    them), and its fallback.

    Raises
    ------
    StepError
        If the region has no sample and ``chain.region_fallback`` is ``error``.
    """
    field, chain = context.strata_field, context.config.chain  # bins in a regression
    mine = table[table[REGION_COLUMN] == region]
    present = sorted(int(c) for c in mine[field].unique())
    missing = sorted(int(c) for c in set(table[field].unique()) - set(present))
    if missing and not mine.empty:
        LOGGER.warning(
            "region %s has no sample of %s %s learnt elsewhere: its model never predicts them",
            region,
            "target bin(s)" if context.config.regression else "class(es)",
            missing,
        )
    fallback = None
    if mine.empty:
        if chain.region_fallback == "error":
            raise StepError(
                f"region {region} has no learning sample in run {seed} "
                "(chain.region_fallback: error): give it ground truth, or set "
                "region_fallback to global or nearest",
                chain.region_path,
            )
        fallback = chain.region_fallback
        LOGGER.warning(
            "region %s has no learning sample in run %d: it uses the %s model",
            region,
            seed,
            "global" if fallback == "global" else "nearest region's",
        )
    write_json(
        context.layout.model_dir(seed, region) / "region.json",
        {
            "region": region,
            "samples": int(len(mine)),
            "classes": present,
            "missing_classes": missing,
            "fallback": fallback,
        },
    )
    return mine.reset_index(drop=True), fallback


def _cores(context: RunContext) -> int:
    """Threads for the fit: the task's share of the cores (all of them when unset)."""
    maximum = context.config.task_retry_limits.maximum_cpu
    return context.threads or max(1, min(maximum, available_cores()))
