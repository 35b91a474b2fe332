"""Tasks: one unit of work (step × tile × seed) with a deterministic key and its dependencies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


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
    """

    key: str
    step: str
    function: Callable[..., Any]
    arguments: dict[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    fold: str | None = None
