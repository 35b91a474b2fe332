"""Settings that a configuration gives but that change nothing in it.

A key set by the user but ignored by the configuration they chose (random-
forest options while a network is trained, a fusion setting while fusion is
off, …) is most often a mistake; :func:`ineffective_settings` names each one
so that the loader can warn about it. Only keys the user set explicitly
count (pydantic's ``model_fields_set``), and only when their value is not
the default one.
"""

from __future__ import annotations

from pydantic import BaseModel

from sitsmap.config.schema import (
    ArgTrain,
    Chain,
    Config,
    PythonDataManaging,
    SampleSelection,
    SensorsDataInterpolation,
)
from sitsmap.learning.selection import LEARNER_KEYS, OPTION_MAPPINGS, expand_candidates

__all__ = ["ineffective_settings"]

_STRATEGY_KEYS = {
    "constant_nb": "constant",
    "percent_p": "percent",
    "total_v": "total",
    "byclass_in": "byclass",
}
"""Each strategy option of sample_selection and the strategy that reads it."""

_MERGE_OPTION = "merge_final_classifications_"
"""Prefix of the fusion's options (the switch itself has no underscore after it)."""


def ineffective_settings(config: Config) -> list[str]:
    """Name every explicitly set key that has no effect in ``config``.

    Parameters
    ----------
    config : Config
        A validated configuration.

    Returns
    -------
    list of str
        One message per ineffective key, ``section.key has no effect: why``;
        empty when every key given is used.
    """
    return [
        *_chain(config.chain),
        *_classifier(config.arg_train),
        *_model_selection(config.arg_train),
        *_sample_selection(config.arg_train.sample_selection),
        *_chunks(config.python_data_managing),
        *_interpolation(config.sensors_data_interpolation),
        *_inference(config),
        *_sources(config),
        *_task(config),
    ]


def _task(config: Config) -> list[str]:
    """Classification settings in a regression, and regression settings in a classification."""
    train, deep = config.arg_train, config.arg_train.deep_learning_parameters
    if not config.regression:
        why = "arg_train.task is classification"
        messages = _ignored(train, ["regression_bins"], "arg_train", why)
        if deep is not None:
            where = "arg_train.deep_learning_parameters"
            messages += _ignored(deep, ["regression_loss", "huber_delta"], where, why)
        return messages
    why = "a regression map has no classes"
    messages = _ignored(
        config.arg_classification, ["enable_probability_map"], "arg_classification", why
    )
    messages += _ignored(config.chain, ["nomenclature_path", "color_table"], "chain", why)
    for name in ("smoothing", "regularisation", "vectorisation", "uncertainty"):
        product = getattr(config.post_processing, name)
        if product.enabled and "enabled" in product.model_fields_set:  # equal to its default
            messages.append(f"post_processing.{name}.enabled has no effect: {why}")
        keys = [key for key in type(product).model_fields if key != "enabled"]
        messages += _ignored(product, keys, f"post_processing.{name}", why)
    if deep is not None and deep.regression_loss != "huber":
        where = "arg_train.deep_learning_parameters"
        messages += _ignored(deep, ["huber_delta"], where, "regression_loss is mse")
    return messages


def _sources(config: Config) -> list[str]:
    """Settings of an image source the run does not read."""
    messages = []
    if config.chain.l8_path is None:
        landsat = config.landsat8
        messages += _ignored(
            landsat, list(type(landsat).model_fields), "landsat8", "no chain.l8_path"
        )
    if config.stac.catalog is None:
        stac = config.stac
        messages += _ignored(stac, ["collection", "assets"], "stac", "no stac.catalog")
    if config.chain.user_feat_path is None:
        user = config.userFeat
        messages += _ignored(
            user, list(type(user).model_fields), "userFeat", "no chain.user_feat_path"
        )
    user = config.user_sensor
    if user.path is None:
        messages += _ignored(
            user, list(type(user).model_fields), "user_sensor", "no user_sensor.path"
        )
    if not any(value is not None for value in config.sentinel2_sources.values()):
        s2 = config.sentinel_2
        messages += _ignored(s2, list(type(s2).model_fields), "sentinel_2", "no Sentinel-2 source")
    elif config.chain.s2_s2c_path is None and config.stac.catalog is None:
        messages += _ignored(
            config.sentinel_2,
            ["scl_invalid_classes"],
            "sentinel_2",
            "only Sen2Cor (chain.s2_s2c_path) and STAC products have a scene classification",
        )
    return messages


def _given(model: BaseModel, name: str) -> bool:
    """Whether the user set ``name`` in ``model`` (name or alias) to a value not its default.

    A value equal to the default is left alone: the resolved ``config.yaml``
    of a run lists every key with its value, defaults included, and is read
    again (by the report, or to run again).
    """
    if name not in model.model_fields_set:
        return False
    default = type(model).model_fields[name].get_default(call_default_factory=True)
    return getattr(model, name) != default


def _key(model: BaseModel, name: str, where: str) -> str:
    """The key as the user writes it: ``where.alias`` (or the field name)."""
    field = type(model).model_fields[name]
    return f"{where}.{field.alias or name}"


def _ignored(model: BaseModel, names: list[str], where: str, reason: str) -> list[str]:
    """One message per name of ``names`` the user set in ``model``."""
    return [
        f"{_key(model, name, where)} has no effect: {reason}"
        for name in names
        if _given(model, name)
    ]


def _chain(chain: Chain) -> list[str]:
    messages = []
    if chain.region_path is None:
        messages += _ignored(
            chain,
            ["region_field", "region_border_width", "region_fallback"],
            "chain",
            "chain.region_path is not set",
        )
    if not chain.merge_final_classifications:
        merge_keys = [name for name in Chain.model_fields if name.startswith(_MERGE_OPTION)]
        messages += _ignored(
            chain, merge_keys, "chain", "chain.merge_final_classifications is false"
        )
    if not chain.split_ground_truth:
        messages += _ignored(
            chain,
            ["ratio"],
            "chain",
            "chain.split_ground_truth is false (every polygon serves both sides)",
        )
    return messages


def _classifier(arg_train: ArgTrain) -> list[str]:
    if arg_train.model_selection.candidates:
        return _candidates(arg_train)
    deep = arg_train.deep_learning_parameters
    if deep is not None:
        because = f"arg_train.deep_learning_parameters trains a {deep.dl_name} network"
        messages = _ignored(
            arg_train,
            [
                "classifier",
                "otb_classifier_options",
                "lightgbm_parameters",
                "svm_parameters",
                "svm_max_samples",
                "sample_augmentation",
            ],
            "arg_train",
            because,
        )
        automatic = deep.hyperparameters_solver.learning_rate is None
        stops = deep.enable_early_stop if deep.enable_early_stop is not None else automatic
        if not stops:  # unset: early stopping is on exactly when the learning rate is automatic
            messages += _ignored(
                deep,
                ["early_stop_patience"],
                "arg_train.deep_learning_parameters",
                "early stopping is off (enable_early_stop false, or unset with a given "
                "learning rate)",
            )
        return messages
    svm = ["svm_parameters", "svm_max_samples"]
    unused = {
        "rf": ["lightgbm_parameters", *svm],
        "lightgbm": ["otb_classifier_options", *svm],
        "svm": ["otb_classifier_options", "lightgbm_parameters"],
    }
    return _ignored(
        arg_train,
        unused[arg_train.classifier],
        "arg_train",
        f"arg_train.classifier is {arg_train.classifier}",
    )


_CLASSICAL_READS = {
    "rf": ("classifier", "otb_classifier_options", "sample_augmentation"),
    "lightgbm": ("classifier", "lightgbm_parameters", "sample_augmentation"),
    "svm": ("classifier", "svm_parameters", "svm_max_samples", "sample_augmentation"),
}
"""The arg_train keys each classical learner reads."""


def _candidates(arg_train: ArgTrain) -> list[str]:
    """arg_train's learner keys that no candidate of model_selection reads.

    A candidate updates arg_train's learner settings: it reads a mapping of
    arg_train (options, the network's settings) merged with its own, and any
    other key of its learner that it does not set itself.
    """
    read: set[str] = set()
    for candidate in expand_candidates(arg_train):
        deep = candidate.settings.deep_learning_parameters
        keys = ("deep_learning_parameters",) if deep else _CLASSICAL_READS[candidate.learner]
        own = candidate.given
        read |= {
            key
            for key in keys
            if key not in own or key in OPTION_MAPPINGS or key == "deep_learning_parameters"
        }
    unread = [key for key in LEARNER_KEYS if key not in read]
    return _ignored(
        arg_train, unread, "arg_train", "no candidate of arg_train.model_selection reads it"
    )


def _model_selection(arg_train: ArgTrain) -> list[str]:
    selection = arg_train.model_selection
    if selection.candidates:
        return []
    return _ignored(
        selection,
        ["folds", "criterion"],
        "arg_train.model_selection",
        "arg_train.model_selection lists no candidate",
    )


def _sample_selection(selection: SampleSelection) -> list[str]:
    others = [name for name, strategy in _STRATEGY_KEYS.items() if strategy != selection.strategy]
    return _ignored(
        selection,
        others,
        "arg_train.sample_selection",
        f"arg_train.sample_selection.strategy is {selection.strategy}",
    )


def _inference(config: Config) -> list[str]:
    arg_train = config.arg_train
    deep = arg_train.deep_learning_parameters
    if arg_train.model_selection.candidates or (deep is None and arg_train.classifier != "svm"):
        return []
    learner = arg_train.classifier if deep is None else deep.dl_name
    return _ignored(
        config.arg_classification,
        ["compiled_inference"],
        "arg_classification",
        f"only tree models are compiled and the learner is {learner}",
    )


def _interpolation(interpolation: SensorsDataInterpolation) -> list[str]:
    if not interpolation.use_gapfilling:
        return []
    return _ignored(
        interpolation,
        ["max_observations"],
        "sensors_data_interpolation",
        "sensors_data_interpolation.use_gapfilling is true (the gap-filled grid has no slots)",
    )


def _chunks(managing: PythonDataManaging) -> list[str]:
    if managing.number_of_chunks is None:
        return []
    return _ignored(
        managing,
        ["max_chunk_megabytes"],
        "python_data_managing",
        "python_data_managing.number_of_chunks fixes the chunks",
    )
