"""Logging set-up and progress bars for long work.

The library logs with :mod:`logging` and reports progress through
:func:`progress`; bars are drawn with rich only when stderr is a terminal,
so logs and CI output stay clean.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

T = TypeVar("T")


def setup_logging(verbose: int = 0) -> None:
    """Configure logging: warnings on the console, INFO with ``-v``, DEBUG with ``-vv``.

    The root logger stays at INFO (or DEBUG) so that each task's own log file
    under ``OUTPUT/logs/`` gets the full story; the console shows only what was
    asked for, so that an error is the one line the user reads.
    """
    console_level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    if sys.stderr.isatty():
        handler: logging.Handler = RichHandler(show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(console_level)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(min(console_level, logging.INFO))
    for noisy in ("rasterio", "fiona", "pyogrio", "matplotlib", "distributed", "numba", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # a local cluster's shutdown chatter ("worker still alive, killing") is not news
    logging.getLogger("distributed").setLevel(logging.ERROR)


def progress(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate over ``items``, drawing a progress bar when attached to a terminal."""
    if not sys.stderr.isatty():
        yield from items
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task(description, total=total if total is not None else _len(items))
        for item in items:
            yield item
            bar.advance(task)


def _len(items: Iterable[object]) -> int | None:
    try:
        return len(items)  # type: ignore[arg-type]
    except TypeError:
        return None


class StepProgress:
    """One progress bar per chain step (in a terminal), or a log line per finished step."""

    def __init__(self, totals: dict[str, int]) -> None:
        self._totals = dict(totals)
        self._done = dict.fromkeys(totals, 0)
        self._bar: Progress | None = None
        self._tasks: dict[str, object] = {}

    def __enter__(self) -> StepProgress:
        if sys.stderr.isatty():
            self._bar = Progress(
                TextColumn("{task.description:<15}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            self._bar.__enter__()
            self._tasks = {
                step: self._bar.add_task(step, total=total) for step, total in self._totals.items()
            }
        return self

    def advance(self, step: str) -> None:
        """Count one finished task of ``step``."""
        self._done[step] += 1
        if self._bar is not None:
            self._bar.advance(self._tasks[step])
        elif self._done[step] == self._totals[step]:
            logging.getLogger("sitsmap").info("step %s: %d task(s) done", step, self._totals[step])

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc_info)
