"""Every configuration key with its default and its description, from the schema itself.

``sitsmap config keys`` prints them, so the documentation of a key can never
drift from what the loader accepts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from sitsmap.config.schema import Config

__all__ = ["KeyDoc", "describe_keys", "iter_keys"]


@dataclass(frozen=True)
class KeyDoc:
    """One key: ``section.key`` as written in a file, its default (None: required), its help."""

    key: str
    default: str | None
    description: str


def iter_keys(model: type[BaseModel] = Config, prefix: str = "") -> Iterator[KeyDoc]:
    """Yield every leaf key of ``model``, sections depth first, in schema order."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        section = _section_model(field.annotation)
        if section is not None:
            yield from iter_keys(section, f"{key}.")
            continue
        yield KeyDoc(key, _default(field), field.description or "")


def describe_keys(section: str | None = None) -> str:
    """The keys (of one section when given) as text: ``key = default`` then the description.

    Raises
    ------
    KeyError
        If ``section`` is not a section of the configuration.
    """
    keys = [k for k in iter_keys() if section is None or k.key.startswith(f"{section}.")]
    if not keys:
        raise KeyError(section)
    lines = []
    for doc in keys:
        default = "(required)" if doc.default is None else doc.default
        lines.append(f"{doc.key} = {default}")
        if doc.description:
            lines.append(f"    {doc.description}")
    return "\n".join(lines) + "\n"


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The section model of a field (also behind ``X | None``), or None for a plain value."""
    candidates = getattr(annotation, "__args__", None) or (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _default(field: Any) -> str | None:
    if field.default is PydanticUndefined and field.default_factory is None:
        return None
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True)
    return json.dumps(value, default=str)
