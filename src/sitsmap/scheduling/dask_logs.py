"""Send Dask's own logging to files under ``OUTPUT/logs``, never to the console.

A local cluster's scheduler, nannies and workers log their life (start, heartbeat,
"Compute Failed" with the task's traceback, shutdown) to stderr by default; the
console of a sitsmap run must show only the one-line error of a failed task. The
main process (scheduler, nannies, client) writes to ``dask-scheduler.log``, each
worker process to ``dask-worker-<name>.log``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin

DASK_LOGGERS = ("distributed", "tornado", "bokeh")
"""The loggers Dask configures with a stderr handler of their own."""
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def dask_logs_to_file(path: Path) -> Iterator[None]:
    """Route this process's Dask loggers to ``path`` while the block runs."""
    saved = []
    try:
        for name in DASK_LOGGERS:
            saved.append(_route_to_file(logging.getLogger(name), path))
        yield
    finally:
        for logger, state in zip(DASK_LOGGERS, saved, strict=False):  # those routed so far
            _restore(logging.getLogger(logger), state)


class WorkerLogsToFile(WorkerPlugin):
    """Route a worker process's Dask loggers and Python warnings to a file.

    Parameters
    ----------
    log_dir : Path
        Folder of the run's logs; the worker writes ``dask-worker-<name>.log`` there.
    """

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)

    def setup(self, worker: object) -> None:
        """Replace the stderr handlers of the Dask loggers by the worker's log file."""
        path = self.log_dir / f"dask-worker-{getattr(worker, 'name', 'unknown')}.log"
        for name in DASK_LOGGERS:
            _route_to_file(logging.getLogger(name), path)
        # warnings outside a task (imports, shutdown) would otherwise reach stderr
        logging.captureWarnings(True)
        _route_to_file(logging.getLogger("py.warnings"), path)


def _route_to_file(logger: logging.Logger, path: Path) -> tuple:
    """Give ``logger`` a single file handler; return what it had, for :func:`_restore`."""
    state = (logger.handlers[:], logger.propagate, logger.level)
    logger.handlers[:] = [_LogFile(path)]
    logger.propagate = False
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    return state


class _LogFile(logging.Handler):
    """Append records to a file; not a StreamHandler, so Dask's ``silence_logs`` skips it."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = logging.FileHandler(path, mode="a", encoding="utf-8", delay=True)
        self._file.setFormatter(logging.Formatter(_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        """Write ``record`` to the file."""
        self._file.emit(record)

    def close(self) -> None:
        """Close the file."""
        self._file.close()
        super().close()


def _restore(logger: logging.Logger, state: tuple) -> None:
    handlers, propagate, level = state
    for handler in logger.handlers:
        if handler not in handlers:
            handler.close()
    logger.handlers[:] = handlers
    logger.propagate = propagate
    logger.setLevel(level)
