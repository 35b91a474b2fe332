"""Turn the task list into one Dask graph and compute it once.

The only module that calls a Dask scheduler. ``synchronous`` runs tasks one
by one in this process (for debugging), ``threads`` in a thread pool,
``processes`` on a local cluster of worker processes (real runs), and a
``tcp://host:port`` address on an existing Dask cluster.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import CancelledError
from dataclasses import replace
from pathlib import Path

import dask
from dask.callbacks import Callback

from sitsmap.console import StepProgress
from sitsmap.errors import SchedulingError, SitsmapError
from sitsmap.pipeline.context import RunContext
from sitsmap.pipeline.tasks import Task
from sitsmap.scheduling.execute import execute_task
from sitsmap.scheduling.fingerprints import Fingerprint
from sitsmap.scheduling.resources import cores_per_task

LOGGER = logging.getLogger(__name__)

LEARNING_MODULE = "sitsmap.learning.persistence"
"""Imports every classifier library; the steps import it inside their tasks."""


def run_graph(
    tasks: Sequence[Task],
    context: RunContext,
    scheduler: str,
    workers: int,
    allowed_retry: int,
    fingerprints: Mapping[str, Fingerprint] | None = None,
) -> None:
    """Execute ``tasks`` (already planned) as one Dask graph.

    Dependencies on tasks outside the list (complete already) are dropped.
    Each task's completion record keeps its fingerprint from ``fingerprints``.
    """
    fingerprints = fingerprints or {}
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
            fingerprints.get(task.key),
        )
        for task in tasks
    }
    totals = Counter(task.step for task in tasks)
    step_of = {task.key: task.step for task in tasks}
    # what the tasks import when they run: their step modules, and the learning libraries
    # (torch, scikit-learn, LightGBM) if learning or classification steps are to run
    modules = {task.function.__module__ for task in tasks}
    if {"learning", "classification"} & set(totals):
        modules.add(LEARNING_MODULE)
    with StepProgress(totals) as progress:
        if "://" in scheduler or scheduler == "processes":
            _run_distributed(
                graph,
                sorted(keys),
                step_of,
                progress,
                context.layout.logs,
                address=scheduler if "://" in scheduler else None,
                workers=workers,
                memory_gb=context.config.task_retry_limits.maximum_ram,
                modules=sorted(modules),
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
    log_dir: Path,
    address: str | None = None,
    workers: int = 1,
    memory_gb: float = 16.0,
    modules: Sequence[str] = (),
) -> None:
    from distributed import as_completed

    from sitsmap.scheduling.dask_logs import WorkerLogsToFile, dask_logs_to_file
    from sitsmap.scheduling.warmup import ImportInBackground

    with (
        dask_logs_to_file(log_dir / "dask-scheduler.log"),
        dask.config.set({} if address else LOCAL_CLUSTER_CONFIG),
    ):
        client, cluster = _start_cluster(address, workers, memory_gb)
        try:
            if cluster is not None:  # a remote cluster's logs stay where its owner put them
                client.register_plugin(WorkerLogsToFile(log_dir), name="sitsmap-logs")
            client.register_plugin(ImportInBackground(modules), name="sitsmap-imports")
            futures = client.get(graph, keys, sync=False)
            for future in as_completed(futures):
                _result(future, log_dir, None if address else memory_gb / workers)
                progress.advance(step_of[future.key])
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def _result(future, log_dir: Path, worker_memory_gb: float | None) -> None:
    """Wait for one task; re-raise its sitsmap error as is, anything Dask says as one line.

    A task's own error arrives already portable (see
    :func:`sitsmap.errors.portable_error`); what is left is the cluster's: a worker
    that died (killed for its memory, or crashed), a cancelled task.
    """
    from distributed.scheduler import KilledWorker

    try:
        future.result()
    except SitsmapError:
        raise
    except KilledWorker:
        memory = (
            f"each worker has {worker_memory_gb:.1f} GB of task_retry_limits.maximum_ram"
            if worker_memory_gb is not None
            else "see the cluster's worker logs"
        )
        raise SchedulingError(
            f"task {future.key}: its worker died, every time it ran (out of memory? {memory})",
            log_dir,
        ) from None
    except (Exception, CancelledError) as exc:  # noqa: BLE001 - the cluster's own failures
        text = str(exc).strip().splitlines()
        detail = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
        raise SchedulingError(
            f"task {future.key} failed on the cluster ({detail})", log_dir
        ) from None


LOCAL_CLUSTER_CONFIG = {
    # Tasks become ready on the worker that ran their dependency; stealing
    # them every 10 ms, not 100, starts the idle worker a second sooner.
    "distributed.scheduler.work-stealing-interval": "10ms",
    # no HTTP endpoints (dashboard, Prometheus): nothing to import, nothing on port 8787
    "distributed.scheduler.http.routes": [],
    "distributed.worker.http.routes": [],
    # Workers forked from one server process that imported Dask once; they end with
    # os._exit, without the interpreter teardown (torch's) that made each worker
    # outlive the nanny's 4 s wait at every shutdown.
    "distributed.worker.multiprocessing-method": "forkserver",
}
"""Dask settings of the local cluster of the ``processes`` scheduler."""


def _start_cluster(address: str | None, workers: int, memory_gb: float) -> tuple:
    """A client of the cluster at ``address``, or of a new local cluster; and that cluster."""
    from distributed import Client, LocalCluster

    try:
        if address:
            return Client(address, timeout="5s"), None
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            memory_limit=f"{memory_gb / workers:.2f}GB",
            host="127.0.0.1",
            # the scheduler's HTTP server always listens: on a free loopback port, no dashboard
            dashboard_address="127.0.0.1:0",
            scheduler_kwargs={"dashboard": False},
            # workers log to stderr until WorkerLogsToFile routes their logs to a file
            silence_logs=logging.ERROR,
        )
        return Client(cluster), cluster
    except (OSError, ValueError) as exc:  # ValueError: an address Dask cannot parse
        raise SchedulingError(f"cannot reach the Dask scheduler ({exc})", address) from None
