"""JSON documents of the output tree (acquisitions, per-seed results)."""

from __future__ import annotations

import json
import os
from typing import Any

from sitsmap.errors import InputDataError
from sitsmap.io.atomic import write_text


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON document; InputDataError when missing or malformed."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError as exc:
        raise InputDataError("missing (has the step that writes it run?)", path) from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise InputDataError(f"cannot read JSON ({exc})", path) from exc


def write_json(path: str | os.PathLike[str], document: Any) -> None:
    """Write a JSON document atomically, indented for people."""
    write_text(path, json.dumps(document, indent=2, sort_keys=False) + "\n")
