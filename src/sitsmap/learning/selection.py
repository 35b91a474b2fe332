"""Choose among several learners honestly: grouped k-fold cross-validation over polygons.

``arg_train.model_selection.candidates`` lists learners (iota2's
``cross_validation_grouped``): each candidate is arg_train's learner settings
updated with its own, and a ``grid`` expands one candidate into one per
combination of values (:func:`expand_candidates`, which also validates each as
a full ``arg_train``). The learning step scores every candidate by grouped
k-fold cross-validation over the learning polygons: the samples of a polygon
are never on both sides of a fold (neighbouring pixels would flatter the
scores). Each candidate learns on k − 1 folds and predicts the held-out one;
OA, kappa and the mean F-score are averaged over the folds, and the candidate
with the best mean ``criterion`` is kept (ties: the first listed), then trained
on every sample as without selection (:func:`select_model`).

In regression (``arg_train.task: regression``, which every candidate inherits)
the folds are stratified on quantile bins of the polygons' target values
(:func:`regression_folds`), each fold is scored by RMSE, MAE and R², and the
criterion is ``rmse`` (the lowest kept; the default ``fscore`` means it) or ``r2``
(the highest kept). A candidate that cannot do regression (svm, smote) is refused.

Nothing heavy is imported at module level: the configuration's validation
imports :func:`expand_candidates`.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import logging
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sitsmap.config.schema import ArgTrain

__all__ = [
    "CRITERIA",
    "LEARNER_KEYS",
    "REGRESSION_SCORES",
    "SCORES",
    "Candidate",
    "Selection",
    "expand_candidates",
    "grouped_folds",
    "regression_folds",
    "regression_scores",
    "select_model",
    "selection_text",
]

LOGGER = logging.getLogger(__name__)

LEARNER_KEYS = (
    "classifier",
    "otb_classifier_options",
    "lightgbm_parameters",
    "svm_parameters",
    "svm_max_samples",
    "sample_augmentation",
    "deep_learning_parameters",
)
"""The arg_train keys a candidate may set (what the learner is)."""

OPTION_MAPPINGS = frozenset({"otb_classifier_options", "lightgbm_parameters", "svm_parameters"})
"""Learner keys holding flat option mappings: in a grid key, all after the first dot is the
option (OTB's option names have dots of their own)."""

CANDIDATE_KEYS = ("name", "grid", *LEARNER_KEYS)
"""Every key a candidate may hold."""

SCORES = ("oa", "kappa", "mean_fscore")
"""The scores of each fold, as ``results.json`` names them."""

REGRESSION_SCORES = ("rmse", "mae", "r2")
"""The scores of each fold in regression (:func:`regression_scores`)."""

CRITERIA = {"fscore": "mean_fscore", "oa": "oa", "kappa": "kappa", "rmse": "rmse", "r2": "r2"}
"""``model_selection.criterion`` → the score it reads."""

TASK_CRITERIA = {"classification": ("fscore", "oa", "kappa"), "regression": ("rmse", "r2")}
"""The criteria of each ``arg_train.task``."""

LOWER_IS_BETTER = frozenset({"rmse", "mae"})
"""Scores of which the lowest mean is the best."""


@dataclass(frozen=True)
class Candidate:
    """One learner to score.

    Attributes
    ----------
    name : str
        Its name: the one given (with the grid's values), else the learner and its
        own settings (``lightgbm (num_leaves=15)``); unique in the list.
    settings : ArgTrain
        The full ``arg_train`` it trains with (no model selection of its own).
    given : dict
        Its own learner settings, grid values included (what it changes).
    """

    name: str
    settings: ArgTrain
    given: dict[str, Any]

    @property
    def learner(self) -> str:
        """``rf``, ``lightgbm``, ``svm`` or the network's name."""
        deep = self.settings.deep_learning_parameters
        return self.settings.classifier if deep is None else deep.dl_name


# --- candidates (configuration) -----------------------------------------------------


def expand_candidates(
    base: ArgTrain | Mapping[str, Any], candidates: Sequence[Any] | None = None
) -> list[Candidate]:
    """Expand grids and validate every candidate as a full ``arg_train``.

    Parameters
    ----------
    base : ArgTrain or mapping
        The ``arg_train`` each candidate updates (a validated section, or the
        validated values of its keys while the section is being validated).
    candidates : sequence of mapping, optional
        The candidates; ``base.model_selection.candidates`` when omitted.

    Returns
    -------
    list of Candidate
        In the order listed, a grid's combinations in the order of its keys (the
        last key varying fastest).

    Raises
    ------
    ValueError
        One line naming the candidate (``candidates[1] (lightgbm): …``) on an
        unknown key, a malformed grid or a value its learner refuses.
    """
    from pydantic import BaseModel, ValidationError

    from sitsmap.config.schema import ArgTrain

    if isinstance(base, BaseModel):
        if candidates is None:
            candidates = base.model_selection.candidates
        plain = base.model_dump(exclude={"model_selection"})
    else:
        plain = {
            key: value.model_dump() if isinstance(value, BaseModel) else value
            for key, value in base.items()
            if key != "model_selection"
        }
    expanded: list[tuple[str, dict[str, Any], ArgTrain]] = []
    for index, raw in enumerate(candidates or ()):
        where = f"candidates[{index}]"
        for given, name in _combinations(raw, where):
            update = copy.deepcopy(given)
            if "classifier" in update and "deep_learning_parameters" not in update:
                update["deep_learning_parameters"] = None  # a classical learner, even after a net
            shown = name or ", ".join(f"{_short(k)}={_label(v)}" for k, v in _flat(given))
            try:
                settings = ArgTrain.model_validate(_merged(plain, update))
            except ValidationError as exc:
                raise ValueError(
                    f"{where} ({shown or 'no setting'}): {_first_error(exc)}"
                ) from None
            refusal = _not_for_task(settings)
            if refusal:
                raise ValueError(f"{where} ({shown or 'no setting'}): {refusal}")
            expanded.append((name or _auto_name(settings, given), given, settings))
    names = [name for name, _, _ in expanded]
    seen: dict[str, int] = {}
    result = []
    for name, given, settings in expanded:
        if names.count(name) > 1:  # two unnamed rf: "rf #1", "rf #2"
            seen[name] = seen.get(name, 0) + 1
            name = f"{name} #{seen[name]}"
        result.append(Candidate(name=name, settings=settings, given=given))
    return result


def _not_for_task(settings: ArgTrain) -> str | None:
    """Why a candidate's learner cannot do its ``task``, or None."""
    if settings.task != "regression":
        return None
    if settings.sample_augmentation == "smote":
        return "sample_augmentation smote oversamples classes and does not do regression"
    if settings.deep_learning_parameters is None and settings.classifier == "svm":
        return "classifier svm does not do regression: use rf, lightgbm or a network"
    return None


def _combinations(raw: Any, where: str) -> list[tuple[dict[str, Any], str | None]]:
    """A candidate's learner settings, one per combination of its grid, and their names."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a mapping of learner settings, got {raw!r}")
    for key in raw:
        if key not in CANDIDATE_KEYS:
            near = difflib.get_close_matches(str(key), CANDIDATE_KEYS, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ValueError(
                f"{where}: unknown key {key!r}{hint}; a candidate holds {list(CANDIDATE_KEYS)}"
            )
    fixed = {key: value for key, value in raw.items() if key in LEARNER_KEYS}
    name = None if raw.get("name") is None else str(raw["name"])
    grid = raw.get("grid") or {}
    if not isinstance(grid, Mapping):
        raise ValueError(f"{where}: grid must map dotted learner keys to lists of values")
    for key, values in grid.items():
        if not isinstance(values, list | tuple) or not values:
            raise ValueError(
                f"{where}: grid.{key} must be a non-empty list of values, got {values!r}"
            )
    if not grid:
        return [(fixed, name)]
    combinations = []
    for values in itertools.product(*grid.values()):
        given = copy.deepcopy(fixed)
        for key, value in zip(grid, values, strict=True):
            _assign(given, str(key), copy.deepcopy(value), where)
        shown = ", ".join(f"{_short(key)}={_label(v)}" for key, v in zip(grid, values, strict=True))
        combinations.append((given, None if name is None else f"{name} ({shown})"))
    return combinations


def _assign(given: dict[str, Any], dotted: str, value: Any, where: str) -> None:
    """Set a grid value: ``key``, ``options_key.option`` or ``deep_learning_parameters.a.b``."""
    head, _, rest = dotted.partition(".")
    if head not in LEARNER_KEYS:
        near = difflib.get_close_matches(head, LEARNER_KEYS, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ValueError(
            f"{where}: grid key {dotted!r} must start with a learner key{hint}: "
            f"{list(LEARNER_KEYS)}"
        )
    if not rest:
        given[head] = value
        return
    if head in OPTION_MAPPINGS:
        path = [head, rest]
    elif head == "deep_learning_parameters":
        path = [head, *rest.split(".")]
    else:
        raise ValueError(f"{where}: grid key {dotted!r}: {head} holds no options")
    node = given
    for part in path[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, Mapping):
            raise ValueError(f"{where}: grid key {dotted!r}: {part} is not a mapping")
        else:
            child = node[part] = dict(child)
        node = child
    node[path[-1]] = value


def _merged(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``update``, mappings merged key by key."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _first_error(exc: Any) -> str:
    """Pydantic's first error as ``key: problem (got value)``."""
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    shown = "" if isinstance(got, Mapping | list | tuple) else f" (got {got!r})"
    if error["type"] == "missing":
        message, shown = "required key is missing", ""
    return f"{location}: {message}{shown}" if location else f"{message}{shown}"


def _auto_name(settings: ArgTrain, given: Mapping[str, Any]) -> str:
    """The learner, then what the candidate sets: ``rf (nbtrees=1, max=1)``."""
    deep = settings.deep_learning_parameters
    learner = settings.classifier if deep is None else deep.dl_name
    parts = [
        f"{_short(key)}={_label(value)}"
        for key, value in _flat(given)
        if key not in ("classifier", "deep_learning_parameters.dl_name")
    ]
    return f"{learner} ({', '.join(parts)})" if parts else learner


def _flat(given: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Dotted keys and values of a candidate's settings (option mappings one level deep)."""
    items = []
    for key, value in given.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            items += _flat(value, f"{dotted}.")
        else:
            items.append((dotted, value))
    return items


def _short(dotted: str) -> str:
    """A setting's name without its learner key: ``num_leaves``, ``nbtrees``, ``epochs``."""
    head, _, rest = str(dotted).partition(".")
    if not rest or head not in LEARNER_KEYS:
        return str(dotted)
    return rest.removeprefix("classifier.rf.")


def _label(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_label(v) for v in value) + "]"
    return str(value)


# --- folds ----------------------------------------------------------------------------


def grouped_folds(
    labels: np.ndarray, groups: np.ndarray, folds: int, seed: int
) -> tuple[list[tuple[np.ndarray, np.ndarray]], str | None]:
    """Stratified folds that never split a polygon (scikit-learn's StratifiedGroupKFold).

    Parameters
    ----------
    labels, groups : numpy.ndarray
        Class code and polygon id of each sample.
    folds : int
        Folds asked for; fewer when a class has fewer polygons (at least 2).
    seed : int
        Seed of the shuffle of the polygons.

    Returns
    -------
    list of (train indices, test indices), str or None
        The folds (empty when there are fewer than 2 polygons), and a note on
        what was adapted, if anything.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    labels, groups = np.asarray(labels), np.asarray(groups)
    polygons = {
        int(code): int(np.unique(groups[labels == code]).size) for code in np.unique(labels)
    }
    total = int(np.unique(groups).size)
    if total < 2:
        return [], f"{total} learning polygon: no cross-validation possible"
    fewest = min(polygons.values())
    k = min(max(2, min(folds, fewest)), total)
    notes = []
    if k < folds:
        notes.append(f"{k} folds instead of {folds}: {fewest} polygon(s) in the smallest class")
    scarce = sorted(code for code, count in polygons.items() if count < k)
    if scarce:
        notes.append(
            f"class(es) {scarce} have fewer polygons than folds: some folds never learn them"
        )
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=int(seed) % 2**32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "the least populated class has …"
        splits = [
            (train, test)
            for train, test in splitter.split(np.zeros((len(labels), 1)), labels, groups)
            if train.size and test.size
        ]
    return splits, "; ".join(notes) or None


def regression_folds(
    target: np.ndarray, groups: np.ndarray, folds: int, seed: int, bins: int = 10
) -> tuple[list[tuple[np.ndarray, np.ndarray]], str | None]:
    """Folds that never split a polygon, stratified on quantile bins of the target.

    Each polygon's mean target value puts it in one of ``bins`` quantile bins
    (:func:`~sitsmap.sampling.bins.bin_edges`), fewer when there are fewer than
    ``folds`` polygons per bin, so that each fold gets low and high values alike;
    scikit-learn's ``StratifiedGroupKFold`` then deals the polygons out.

    Parameters
    ----------
    target : numpy.ndarray
        Target value of each sample (finite).
    groups : numpy.ndarray
        Polygon id of each sample.
    folds : int
        Folds asked for; fewer when there are fewer polygons (at least 2).
    seed : int
        Seed of the shuffle of the polygons.
    bins : int
        Quantile bins wanted (``arg_train.regression_bins``).

    Returns
    -------
    list of (train indices, test indices), str or None
        The folds (empty when there are fewer than 2 polygons), and a note on
        what was adapted, if anything.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    from sitsmap.sampling.bins import bin_edges, bin_of

    target = np.asarray(target, dtype=np.float64)
    polygons, inverse = np.unique(np.asarray(groups), return_inverse=True)
    total = int(polygons.size)
    if total < 2:
        return [], f"{total} learning polygon: no cross-validation possible"
    k = min(max(2, folds), total)
    note = f"{k} folds instead of {folds}: {total} learning polygons" if k < folds else None
    per_polygon = np.bincount(inverse, weights=target) / np.bincount(inverse)
    used = max(1, min(bins, total // k))
    if used < bins:
        LOGGER.info("model selection: folds stratified on %d target bins, not %d", used, bins)
    strata = bin_of(per_polygon, bin_edges(per_polygon, used))[inverse]
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=int(seed) % 2**32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "the least populated class has …"
        splits = [
            (train, test)
            for train, test in splitter.split(np.zeros((len(target), 1)), strata, groups)
            if train.size and test.size
        ]
    return splits, note


def regression_scores(observed: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² of predictions (NaN R² when the observed values are constant).

    Parameters
    ----------
    observed, predicted : numpy.ndarray
        Target values and their predictions, one per sample.

    Returns
    -------
    dict
        ``rmse``, ``mae`` and ``r2`` (:data:`REGRESSION_SCORES`), float64.
    """
    # three lines of numpy rather than scikit-learn's metrics: r2_score gives 0 or 1 (or
    # -inf) on a fold of constant values, where NaN lets the mean over folds leave it out
    observed = np.asarray(observed, dtype=np.float64)
    error = np.asarray(predicted, dtype=np.float64) - observed
    spread = float(np.sum((observed - observed.mean()) ** 2))
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": 1.0 - float(np.sum(error**2)) / spread if spread > 0 else math.nan,
    }


# --- selection --------------------------------------------------------------------------


@dataclass
class Selection:
    """The scores of every candidate and the one kept.

    Attributes
    ----------
    candidates : list of Candidate
        As listed.
    scores : list of dict
        Per candidate, by score name (:data:`SCORES`, :data:`REGRESSION_SCORES` in
        regression): ``mean``, ``std`` (over the
        folds, scikit-learn's ``ddof=0``) and the ``folds``' values; empty when no
        fold could be made or the candidate failed.
    errors : list of str or None
        Per candidate, why it could not be trained (never kept), else None.
    best : int
        Index of the kept candidate.
    criterion : str
        ``fscore``, ``oa`` or ``kappa``; ``rmse`` or ``r2`` in regression.
    folds : int
        Folds used.
    requested_folds : int
        Folds asked for.
    fold_sizes : list of dict
        Held-out ``polygons`` and ``samples`` of each fold.
    seed : int
        Seed of the folds and of every model.
    note : str or None
        What was adapted (fewer folds, classes some folds never learn, no fold at all).
    task : str
        ``classification`` or ``regression``.
    """

    candidates: list[Candidate]
    scores: list[dict[str, dict[str, Any]]]
    errors: list[str | None]
    best: int
    criterion: str
    folds: int
    requested_folds: int
    fold_sizes: list[dict[str, int]] = field(default_factory=list)
    seed: int = 0
    note: str | None = None
    task: str = "classification"

    @property
    def kept(self) -> Candidate:
        """The candidate kept."""
        return self.candidates[self.best]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``model_selection.json`` beside the model, and ``results.json``.

        A regression's document also says ``task``, its ``scores`` and whether the
        criterion's ``lower_is_better``.
        """
        task = {}
        if self.task == "regression":
            task = {
                "task": self.task,
                "scores": list(REGRESSION_SCORES),
                "lower_is_better": CRITERIA[self.criterion] in LOWER_IS_BETTER,
            }
        return {
            **task,
            "criterion": self.criterion,
            "score": CRITERIA[self.criterion],
            "folds": self.folds,
            "requested_folds": self.requested_folds,
            "fold_sizes": self.fold_sizes,
            "seed": self.seed,
            "kept": self.kept.name,
            "kept_index": self.best,
            "note": self.note,
            "candidates": [
                {
                    "name": candidate.name,
                    "learner": candidate.learner,
                    "settings": _plain(candidate.given),
                    "error": error,
                    **{key: _plain(value) for key, value in scores.items()},
                }
                for candidate, scores, error in zip(
                    self.candidates, self.scores, self.errors, strict=True
                )
            ],
        }


def select_model(
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    candidates: Sequence[Candidate],
    build: Callable[[ArgTrain], Any],
    *,
    folds: int = 5,
    criterion: str = "fscore",
    seed: int = 0,
) -> Selection:
    """Score every candidate by grouped k-fold cross-validation; keep the best.

    Parameters
    ----------
    features : numpy.ndarray
        Samples × features.
    labels : numpy.ndarray
        Class code of each sample; its target value in regression (the candidates'
        ``task``).
    groups : numpy.ndarray
        Polygon id of each sample: a polygon is never on both sides of a fold.
    candidates : sequence of Candidate
        From :func:`expand_candidates`.
    build : callable
        Returns the unfitted model of an ``arg_train``, seeded: the learning step's own
        (:func:`~sitsmap.learning.classical.make_classifier`, or
        :meth:`~sitsmap.learning.deep.trainer.DeepClassifier.from_settings` with the
        run's dates and feature names; :func:`~sitsmap.learning.regressors.make_regressor`
        in regression), so that the kept candidate is trained on every sample exactly
        as it was scored.
    folds : int
        Folds asked for (:func:`grouped_folds`).
    criterion : str
        ``fscore`` (mean F-score over the classes), ``oa`` or ``kappa``: the mean
        over the folds that picks the candidate; ties go to the first listed. In
        regression ``rmse`` (the lowest is kept; ``fscore`` means it) or ``r2``.
    seed : int
        Seed of the folds (the models' seeds are ``build``'s).

    Returns
    -------
    Selection
        A candidate that fails to train on a fold is reported with its error and
        never kept; without any fold (a single polygon), the first is kept.

    Raises
    ------
    StepError
        If every candidate fails.
    ValueError
        On an unknown criterion, one of the other task, or no candidate.
    """
    from sitsmap.errors import StepError

    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; known: {list(CRITERIA)}")
    if not candidates:
        raise ValueError("no candidate to choose from")
    task = candidates[0].settings.task
    criterion = _task_criterion(criterion, task)
    features, labels, groups = np.asarray(features), np.asarray(labels), np.asarray(groups)
    if task == "regression":
        bins = candidates[0].settings.regression_bins
        splits, note = regression_folds(labels, groups, folds, seed, bins)
    else:
        splits, note = grouped_folds(labels, groups, folds, seed)
    if note:
        LOGGER.warning("model selection: %s", note)
    scorer = _regression_fold if task == "regression" else _classification_fold
    scores: list[dict[str, dict[str, Any]]] = []
    errors: list[str | None] = []
    for candidate in candidates:
        per_fold: dict[str, list[float]] = {}
        error = None
        for number, (train, test) in enumerate(splits, start=1):
            try:
                model = build(candidate.settings)
                model.fit(features[train], labels[train], groups=groups[train])
                predicted = np.asarray(model.predict(features[test]))
            except Exception as exc:  # noqa: BLE001 - reported with the candidate, never kept
                error = f"fold {number}: {type(exc).__name__}: {_one_line(exc)}"
                LOGGER.warning("model selection: %s failed on %s", candidate.name, error)
                break
            for key, value in scorer(labels[test], predicted).items():
                per_fold.setdefault(key, []).append(value)
        errors.append(error)
        scores.append({} if error or not splits else _summary(per_fold))
    best = _best(scores, errors, CRITERIA[criterion])
    if best is None:
        raise StepError(
            f"model selection: every candidate failed ({candidates[0].name}: {errors[0]})"
        )
    means = [
        summary[CRITERIA[criterion]]["mean"]
        for summary, error in zip(scores, errors, strict=True)
        if summary and error is None
    ]
    if len(means) > 1 and len(set(means)) == 1:
        tie = "every candidate scored the same: the first listed is kept"
        LOGGER.warning("model selection: %s", tie)
        note = f"{note}; {tie}" if note else tie
    fold_sizes = [
        {"polygons": int(np.unique(groups[test]).size), "samples": int(test.size)}
        for _, test in splits
    ]
    selection = Selection(
        candidates=list(candidates),
        scores=scores,
        errors=errors,
        best=best,
        criterion=criterion,
        folds=len(splits),
        requested_folds=folds,
        fold_sizes=fold_sizes,
        seed=seed,
        note=note,
        task=task,
    )
    _log(selection)
    return selection


def _task_criterion(criterion: str, task: str) -> str:
    """The criterion that applies to ``task``: ``fscore`` means ``rmse`` in regression.

    Raises
    ------
    ValueError
        If ``criterion`` is one of the other task's.
    """
    if task == "regression" and criterion == "fscore":
        return "rmse"
    known = TASK_CRITERIA.get(task, ())
    if criterion not in known:
        raise ValueError(
            f"model_selection.criterion {criterion} does not apply to {task}: "
            f"use {' or '.join(known)}"
        )
    return criterion


def _classification_fold(observed: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """OA, kappa and mean F-score of a fold (:data:`SCORES`)."""
    from sitsmap.validation.metrics import metrics_of_pairs

    metrics = metrics_of_pairs(observed, predicted)
    return {key: float(getattr(metrics, key)) for key in SCORES}


def _regression_fold(observed: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² of a fold (:data:`REGRESSION_SCORES`)."""
    return regression_scores(observed, predicted)


def _summary(per_fold: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
    """Mean and standard deviation over the folds (NaN folds left out), and the folds."""
    summary = {}
    for key, values in per_fold.items():
        finite = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
        summary[key] = {
            "mean": float(finite.mean()) if finite.size else math.nan,
            "std": float(finite.std()) if finite.size else math.nan,
            "folds": values,
        }
    return summary


def _best(
    scores: list[dict[str, dict[str, Any]]], errors: list[str | None], key: str
) -> int | None:
    """The best mean ``key`` (the first on ties); the first that trained when none has one.

    The best is the highest, or the lowest for :data:`LOWER_IS_BETTER` scores.
    """
    sign = -1.0 if key in LOWER_IS_BETTER else 1.0
    best, best_value = None, -math.inf
    for index, (summary, error) in enumerate(zip(scores, errors, strict=True)):
        value = summary.get(key, {}).get("mean", math.nan) if summary else math.nan
        value = sign * value
        if error is None and math.isfinite(value) and value > best_value:
            best, best_value = index, value
    if best is None:
        best = next((i for i, error in enumerate(errors) if error is None), None)
    return best


def _log(selection: Selection) -> None:
    key = CRITERIA[selection.criterion]
    for index, (candidate, summary, error) in enumerate(
        zip(selection.candidates, selection.scores, selection.errors, strict=True)
    ):
        kept = " (kept)" if index == selection.best else ""
        if error:
            LOGGER.info("model selection: %s failed (%s)", candidate.name, error)
        elif summary:
            LOGGER.info(
                "model selection: %s %s %.4f ± %.4f over %d folds%s",
                candidate.name,
                selection.criterion,
                summary[key]["mean"],
                summary[key]["std"],
                selection.folds,
                kept,
            )
    LOGGER.info("model selection: kept %s", selection.kept.name)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _plain(value: Any) -> Any:
    """JSON-ready: NaN → None, tuples → lists, numpy scalars → Python ones."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


_SCORE_LABELS = {
    "mean_fscore": "mean F-score",
    "oa": "OA",
    "kappa": "kappa",
    "rmse": "RMSE",
    "mae": "MAE",
    "r2": "R2",
}


def selection_text(documents: Sequence[Mapping[str, Any]]) -> str:
    """``RESULTS.txt``'s model selection block: each model's candidates and scores.

    Parameters
    ----------
    documents : sequence of mapping
        :meth:`Selection.to_dict` documents with their ``seed`` (and ``region``).
    """
    text = "\n\n#### Model selection (grouped cross-validation over the learning polygons) ####\n"
    for document in documents:
        region = f", region {document['region']}" if document.get("region") else ""
        key = document["score"]
        text += (
            f"\n# run {document['seed']}{region}: {document['folds']} folds, criterion "
            f"{document['criterion']}; kept {document['kept']}\n"
        )
        if document.get("note"):
            text += f"# {document['note']}\n"
        names = REGRESSION_SCORES if document.get("task") == "regression" else SCORES
        order = [key, *(k for k in names if k != key)]
        width = max(len(c["name"]) for c in document["candidates"]) + 2
        header = " " * (width + 2) + "".join(f"{_SCORE_LABELS[k]:<20}" for k in order)
        text += header.rstrip() + "\n"
        for index, candidate in enumerate(document["candidates"]):
            mark = "*" if index == document["kept_index"] else " "
            if candidate.get("error"):
                cells = f"failed: {candidate['error']}"
            else:
                cells = "".join(f"{_mean_std(candidate.get(k)):<20}" for k in order)
            text += f"{mark} {candidate['name']:<{width}}{cells}".rstrip() + "\n"
    return text


def _mean_std(entry: Mapping[str, Any] | None) -> str:
    if not entry or entry.get("mean") is None:
        return "-"
    std = entry.get("std")
    return f"{entry['mean']:.4f} +- {std:.4f}" if std is not None else f"{entry['mean']:.4f}"
