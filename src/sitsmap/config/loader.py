"""Read a YAML configuration once into a frozen :class:`~sitsmap.config.schema.Config`.

- Unknown keys are errors that suggest the nearest known key.
- ``--set section.key=value`` overrides (the value is read as YAML) replace
  the ``sed -i`` loops that iota2 users write around their runs.
- Relative paths are taken relative to the configuration file's directory.
"""

from __future__ import annotations

import copy
import difflib
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from sitsmap.config.checks import ineffective_settings
from sitsmap.config.schema import Config
from sitsmap.errors import ConfigError, InputDataError

CONFIG_LOGGER = logging.getLogger("sitsmap.config")
"""Where warnings about the configuration go (the console shows them)."""

_PATH_KEYS = {
    ("chain", "output_path"),
    ("chain", "s2_path"),
    ("chain", "s2_s2c_path"),
    ("chain", "l8_path"),
    ("chain", "user_feat_path"),
    ("chain", "ground_truth"),
    ("chain", "color_table"),
    ("chain", "nomenclature_path"),
    ("chain", "region_path"),
    ("arg_train", "sample_selection", "strategy.byclass.in"),
    ("stac", "catalog"),
    ("user_sensor", "path"),
}


def load_config(path: str | os.PathLike[str], overrides: Iterable[str] = ()) -> Config:
    """Read, override and validate a configuration file.

    Parameters
    ----------
    path : str or PathLike
        YAML configuration.
    overrides : iterable of str
        ``section.key=value`` assignments applied before validation.

    Returns
    -------
    Config
        The frozen configuration.

    Raises
    ------
    ConfigError
        On a YAML syntax error, an unknown key, a bad override or a bad value;
        the message names the file and the key.
    InputDataError
        If the file cannot be read.
    """
    path = Path(path)
    text = _read_text(path)
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise ConfigError(f"{where}invalid YAML ({getattr(exc, 'problem', exc)})", path) from exc
    if not isinstance(raw, dict):
        raise ConfigError("the configuration must be a mapping of sections", path)
    return config_from_mapping(raw, overrides, base_dir=path.parent, source=path)


def _read_text(path: Path) -> str:
    """The configuration file's text; one clear error if it is not UTF-8 text.

    Raises
    ------
    InputDataError
        If the file cannot be read.
    ConfigError
        If it is binary or not UTF-8 (e.g. a Latin-1 file, or a GeoTIFF given by mistake).
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputDataError(f"cannot read configuration ({exc.strerror})", path) from exc
    if b"\x00" in data:  # no text file holds a NUL byte
        raise ConfigError(f"not a text file (byte 0x00 at position {data.index(0)})", path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = data[exc.start]
        raise ConfigError(
            f"not a UTF-8 text file (byte 0x{byte:02x} at position {exc.start})", path
        ) from None


def config_from_mapping(
    raw: Mapping[str, Any],
    overrides: Iterable[str] = (),
    base_dir: Path | None = None,
    source: str | os.PathLike[str] | None = None,
) -> Config:
    """Validate a configuration given as a mapping (see :func:`load_config`)."""
    data = copy.deepcopy(dict(raw))
    for assignment in overrides:
        apply_override(data, assignment, source)
    check_keys(Config, data, (), source)
    if base_dir is not None:
        _resolve_paths(data, base_dir)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc), source) from exc
    if config_to_mapping(config) != data:
        _warn_ineffective(config, source)
    return config


def _warn_ineffective(config: Config, source: str | os.PathLike[str] | None) -> None:
    """Log a warning for each key that has no effect (see :func:`ineffective_settings`).

    Not called on a resolved configuration (every key, as :func:`dump_config`
    writes it, like a run's ``config.yaml`` read again by the report): its
    keys were checked when the run's own configuration was loaded.
    """
    prefix = f"{source}: " if source is not None else ""
    for message in ineffective_settings(config):
        CONFIG_LOGGER.warning("%s%s", prefix, message)


def apply_override(data: dict[str, Any], assignment: str, source: Any = None) -> None:
    """Apply one ``section.key=value`` assignment to the raw mapping, in place.

    Keys with dots of their own (``strategy.constant.nb``) are matched whole.
    """
    dotted, sep, value_text = assignment.partition("=")
    if not sep or not dotted.strip():
        raise ConfigError(f"--set {assignment!r}: expected section.key=value", source)
    try:
        value = yaml.safe_load(value_text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {assignment!r}: value is not valid YAML", source) from exc
    path = _split_key_path(Config, dotted.strip().split("."), source)
    target = data
    for key in path[:-1]:
        child = target.get(key)
        if not isinstance(child, dict):
            child = {}
            target[key] = child
        target = child
    target[path[-1]] = value


def _split_key_path(model: type[BaseModel], parts: list[str], source: Any) -> list[str]:
    """Group dotted parts into the keys of nested models, longest known key first."""
    keys: list[str] = []
    while parts:
        known = _known_keys(model) if model is not None else {}
        for size in range(len(parts), 0, -1):
            candidate = ".".join(parts[:size])
            if model is None or candidate in known:
                break
        else:
            raise ConfigError(_unknown_key_message(parts[0], keys, known), source)
        keys.append(candidate)
        parts = parts[size:]
        model = known.get(candidate) if model is not None else None
    return keys


def check_keys(model: type[BaseModel], data: Any, where: tuple[str, ...], source: Any) -> None:
    """Raise :class:`ConfigError` on the first key that ``model`` does not know."""
    if not isinstance(data, dict):
        return
    known = _known_keys(model)
    for key, value in data.items():
        if key not in known:
            raise ConfigError(_unknown_key_message(str(key), list(where), known), source)
        if known[key] is not None:
            check_keys(known[key], value, (*where, key), source)


def _known_keys(model: type[BaseModel]) -> dict[str, type[BaseModel] | None]:
    """Map each accepted key (name and alias) to its nested model, if any."""
    keys: dict[str, type[BaseModel] | None] = {}
    for name, field in model.model_fields.items():
        nested = _nested_model(field.annotation)
        keys[name] = nested
        if field.alias:
            keys[field.alias] = nested
    return keys


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    candidates = getattr(annotation, "__args__", None) or (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _unknown_key_message(key: str, where: list[str], known: Mapping[str, Any]) -> str:
    place = ".".join([*where, key])
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.5)
    hint = f"; did you mean {'.'.join([*where, close[0]])!r}?" if close else ""
    return f"unknown key {place!r}{hint}"


def _resolve_paths(data: dict[str, Any], base_dir: Path) -> None:
    for key_path in _PATH_KEYS:
        parent = data
        for key in key_path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        value = parent.get(key_path[-1]) if isinstance(parent, dict) else None
        if isinstance(value, str) and "://" not in value:  # a URL stays a URL
            value = Path(value).expanduser()
            parent[key_path[-1]] = os.path.normpath(os.path.abspath(base_dir / value))


def _describe(exc: ValidationError) -> str:
    """One line from pydantic's first error: ``section.key: problem (got value)``."""
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"]) or "configuration"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"{location}: required key is missing"
    got = error.get("input")
    shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
    return f"{location}: {message}{shown}"


def config_to_mapping(config: Config) -> dict[str, Any]:
    """Return the resolved configuration as plain YAML-friendly data (aliases as keys)."""
    return config.model_dump(mode="json", by_alias=True)


def dump_config(config: Config) -> str:
    """Return the resolved configuration as YAML text."""
    return yaml.safe_dump(config_to_mapping(config), sort_keys=False, default_flow_style=None)
