"""Turn the task list into one Dask graph and compute it once.

The only module that calls a Dask scheduler. ``synchronous`` runs tasks one
by one in this process (for debugging), ``threads`` in a thread pool,
``processes`` on a local cluster of worker processes (real runs), and a
``tcp://host:port`` address on an existing Dask cluster.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import dask
from dask.callbacks import Callback

from sitsmap.config.schema import STEP_NAMES
from sitsmap.console import StepProgress
from sitsmap.errors import SchedulingError, StepError
from sitsmap.pipeline.context import RunContext
from sitsmap.pipeline.tasks import Task
from sitsmap.scheduling.execute import execute_task
from sitsmap.scheduling.records import forget, is_done
from sitsmap.scheduling.resources import cores_per_task

LOGGER = logging.getLogger(__name__)

LEARNING_MODULE = "sitsmap.learning.persistence"
"""Imports every classifier library; the steps import it inside their tasks."""


@dataclass(frozen=True)
class Plan:
    """Which tasks run now, and which were complete already."""

    to_run: tuple[Task, ...]
    already_done: tuple[Task, ...]


def plan_tasks(
    tasks: Sequence[Task], context: RunContext, first_step: str | None, last_step: str | None
) -> Plan:
    """Select the tasks of the step range; redo the range when a first step is named.

    Raises
    ------
    StepError
        If a task of an earlier step, needed by the range, has not been run.
    """
    first = STEP_NAMES.index(first_step) if first_step else 0
    last = STEP_NAMES.index(last_step) if last_step else len(STEP_NAMES) - 1
    done_dir = context.layout.done
    by_key = {task.key: task for task in tasks}
    selected = [t for t in tasks if first <= STEP_NAMES.index(t.step) <= last]
    if first_step:
        for task in selected:
            forget(done_dir, task.key)
    for task in selected:
        for key in task.depends_on:
            needed = by_key[key]
            if STEP_NAMES.index(needed.step) < first and not is_done(done_dir, key):
                raise StepError(
                    f"step {needed.step!r} has not been run ({key} is missing); "
                    f"run from --first-step {needed.step}",
                    context.layout.root,
                )
    done = tuple(t for t in selected if is_done(done_dir, t.key))
    return Plan(tuple(t for t in selected if not is_done(done_dir, t.key)), done)


def run_graph(
    tasks: Sequence[Task], context: RunContext, scheduler: str, workers: int, allowed_retry: int
) -> None:
    """Execute ``tasks`` (already planned) as one Dask graph.

    Dependencies on tasks outside the list (complete already) are dropped.
    """
    if not tasks:
        LOGGER.info("nothing to do: every task is complete")
        return
    keys = {task.key for task in tasks}
    contexts = _task_contexts(tasks, context, scheduler, workers)
    graph = {
        task.key: (
            execute_task,
            task,
            contexts[task.key],
            [k for k in task.depends_on if k in keys],
            allowed_retry,
        )
        for task in tasks
    }
    totals = Counter(task.step for task in tasks)
    step_of = {task.key: task.step for task in tasks}
    # what the tasks import when they run: their step modules, and the learning libraries
    # (torch, scikit-learn, LightGBM) that the learning and classification steps import
    modules = sorted({task.function.__module__ for task in tasks} | {LEARNING_MODULE})
    with StepProgress(totals) as progress:
        if "://" in scheduler:
            _run_distributed(graph, sorted(keys), step_of, progress, scheduler, modules=modules)
        elif scheduler == "processes":
            _run_distributed(
                graph,
                sorted(keys),
                step_of,
                progress,
                workers=workers,
                memory_gb=context.config.task_retry_limits.maximum_ram,
                modules=modules,
            )
        else:
            get = dask.get if scheduler == "synchronous" else dask.threaded.get
            with _ProgressCallback(step_of, progress):
                get(graph, sorted(keys), num_workers=workers)


def _task_contexts(
    tasks: Sequence[Task], context: RunContext, scheduler: str, workers: int
) -> dict[str, RunContext]:
    """Each task's context, with its share of the cores.

    Tasks of the same function (the classifications of every tile, say) run side by
    side, one per worker, so each gets a worker's share; a task with fewer siblings
    than workers (learning one model) gets the cores the idle workers leave. On a
    remote cluster the shares are left to its workers' own machines.
    """
    if "://" in scheduler:
        return {task.key: context for task in tasks}
    siblings = Counter(task.function for task in tasks)
    maximum_cpu = context.config.task_retry_limits.maximum_cpu
    contexts = {}
    for task in tasks:
        side_by_side = 1 if scheduler == "synchronous" else min(workers, siblings[task.function])
        threads = cores_per_task(maximum_cpu, side_by_side)
        contexts[task.key] = replace(context, threads=threads)
    return contexts


class _ProgressCallback(Callback):
    """Advance the step bars as local schedulers finish tasks."""

    def __init__(self, step_of: dict[str, str], progress: StepProgress) -> None:
        super().__init__()
        self._step_of = step_of
        self._progress = progress

    def _posttask(self, key, result, dsk, state, worker_id):  # noqa: D401 - dask hook
        self._progress.advance(self._step_of[key])


def _run_distributed(
    graph: dict,
    keys: list[str],
    step_of: dict[str, str],
    progress: StepProgress,
    address: str | None = None,
    workers: int = 1,
    memory_gb: float = 16.0,
    modules: Sequence[str] = (),
) -> None:
    from distributed import Client, LocalCluster, as_completed

    from sitsmap.scheduling.warmup import ImportInBackground

    try:
        if address:
            client = Client(address, timeout="5s")
            cluster = None
        else:
            # Tasks become ready on the worker that ran their dependency; stealing
            # them every 10 ms, not 100, starts the idle worker a second sooner.
            with dask.config.set({"distributed.scheduler.work-stealing-interval": "10ms"}):
                cluster = LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    memory_limit=f"{memory_gb / workers:.2f}GB",
                    dashboard_address=None,
                )
            client = Client(cluster)
    except OSError as exc:
        raise SchedulingError(f"cannot reach the Dask scheduler ({exc})", address) from exc
    try:
        client.register_plugin(ImportInBackground(modules), name="sitsmap-imports")
        futures = client.get(graph, keys, sync=False)
        for future in as_completed(futures):
            future.result()  # re-raises the task's error here, with its type
            progress.advance(step_of[future.key])
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
