"""Run one task where Dask puts it: skip if done, log to its own file, retry, record.

This is the function every graph node calls, on whatever worker (thread or
process) the scheduler chose; it holds no state between calls.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from sitsmap.errors import SitsmapError, portable_error
from sitsmap.pipeline.context import RunContext
from sitsmap.pipeline.tasks import Task
from sitsmap.scheduling.fingerprints import Fingerprint
from sitsmap.scheduling.records import mark_done, read_record
from sitsmap.scheduling.resources import task_threads

LOGGER = logging.getLogger(__name__)


def execute_task(
    task: Task,
    context: RunContext,
    _dependencies: object,
    allowed_retry: int,
    fingerprint: Fingerprint | None = None,
) -> str:
    """Run ``task`` unless already done; return its key once complete.

    Parameters
    ----------
    task : Task
        The task to run.
    context : RunContext
        Configuration and layout.
    _dependencies : object
        Results of the dependencies; only there so that Dask orders the tasks.
    allowed_retry : int
        Extra attempts after a failure (``task_retry_limits.allowed_retry``).
    fingerprint : Fingerprint, optional
        What its outputs depend on, kept in its completion record; the task is
        skipped when its record already holds this fingerprint.
    """
    context = context.for_fold(task.fold)
    layout = context.layout
    if (
        fingerprint is not None
        and _recorded_fingerprint(layout.done, task.key) == fingerprint.digest
    ):
        return task.key
    started = time.time()
    attempt = 0
    with _task_log(layout.logs / f"{task.key}.log") as log_file:
        while True:
            attempt += 1
            try:
                LOGGER.info("start %s (attempt %d)", task.key, attempt)
                with task_threads(context.threads):
                    outputs = task.function(context, **task.arguments)
                break
            except Exception as exc:
                # the traceback goes to the task's log file only: the console gets one line
                log_file.handle(
                    LOGGER.makeRecord(
                        LOGGER.name,
                        logging.ERROR,
                        __file__,
                        0,
                        "%s failed on attempt %d",
                        (task.key, attempt),
                        sys.exc_info(),
                    )
                )
                # bad input fails the same way every time: retry only other failures
                if isinstance(exc, SitsmapError) or attempt > allowed_retry:
                    _raise_portable(exc, task.key, layout.logs / f"{task.key}.log")
        seconds = time.time() - started
        LOGGER.info("done %s in %.1f s", task.key, seconds)
    mark_done(
        layout.done,
        task.key,
        {
            "key": task.key,
            "step": task.step,
            "started": started,
            "seconds": seconds,
            "finished": time.time(),
            "attempts": attempt,
            "id": uuid.uuid4().hex,
            "needed_records": _record_ids(layout.done, task.depends_on),
            "fingerprint": fingerprint.digest if fingerprint else None,
            "basis": fingerprint.parts if fingerprint else None,
            "outputs": dict(outputs or {}),
        },
    )
    return task.key


def _record_ids(done_dir: Path, keys: tuple[str, ...]) -> dict[str, str | None]:
    """The ids of the records of the tasks ``keys``, as this task found them (Make's rule)."""
    return {key: (read_record(done_dir, key) or {}).get("id") for key in keys}


def _recorded_fingerprint(done_dir, key: str) -> str | None:
    record = read_record(done_dir, key)
    return record.get("fingerprint") if record else None


@contextmanager
def _task_log(path) -> Iterator[logging.Handler]:
    """Copy this thread's log records to the task's own log file while it runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    ident = threading.get_ident()
    handler.addFilter(lambda record: record.thread == ident)
    root = logging.getLogger()
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)  # worker processes start at WARNING
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        handler.close()


def _raise_portable(exc: Exception, key: str, log_path: Path) -> NoReturn:
    """Raise a copy of ``exc`` that Dask can send back to the client whole.

    The copy (see :func:`~sitsmap.errors.portable_error`) carries no chained
    exception: the library errors it came from may not unpickle on the client,
    where Dask would then show a bare ``Exception`` and its traceback. The full
    chain is in the task's log file already.
    """
    error = portable_error(exc, key, log_path)
    try:
        raise error
    finally:
        # ``raise`` chained the error being handled (``exc``) as the context: unchain it
        error.__context__ = None
        error.__suppress_context__ = True
