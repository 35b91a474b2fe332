"""Tasks: one unit of work (step × tile × seed) with a deterministic key and its dependencies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sitsmap.pipeline.layout import safe_name


@dataclass(frozen=True)
class Task:
    """One node of the task graph.

    Attributes
    ----------
    key : str
        Deterministic name, e.g. ``"classification-T31TCJ-seed0"``; also the
        name of its log file and completion record.
    step : str
        The chain step it belongs to (one of ``STEP_NAMES``).
    function : callable
        Module-level function ``function(context, **arguments)``; it writes its
        outputs atomically and returns nothing.
    arguments : dict
        Keyword arguments (``tile``, ``seed``…), picklable.
    depends_on : tuple of str
        Keys of the tasks that must be complete first.
    fold : str, optional
        The cross-validation fold whose outputs the task reads and writes.
    reads : tuple of str
        Dotted configuration keys whose values its outputs depend on
        (``"arg_train.classifier"``, or a whole section: ``"sentinel_2"``).
    files : tuple of Path
        Input files and folders whose content its outputs depend on.
    """

    key: str
    step: str
    function: Callable[..., Any]
    arguments: dict[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    fold: str | None = None
    reads: tuple[str, ...] = ()
    files: tuple[Path, ...] = ()


def fold_suffix(fold: str | None) -> str:
    """What a cross-validation fold adds to its tasks' keys (``@T31TDK``); keys name files."""
    return f"@{safe_name(fold)}" if fold else ""
