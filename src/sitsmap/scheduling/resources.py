"""How many cores the chain may use, and each task's share of them.

A worker runs one task at a time. The task's own threads (date readers, numba
kernels, the classifiers' ``n_jobs``, torch) are its worker's share of the
cores, so that two workers on two cores do not each start two busy threads:
oversubscribed cores spend their time switching between threads and evicting
each other's caches.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numba

__all__ = ["available_cores", "cores_per_task", "task_threads"]


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity (``taskset``, a pinned container).

    ``os.cpu_count`` counts the machine's cores, even those the process may not use.
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cores_per_task(maximum_cpu: int, workers: int) -> int:
    """One worker's share of ``min(maximum_cpu, available cores)``, at least one core."""
    return max(1, min(maximum_cpu, available_cores()) // max(1, workers))


@contextmanager
def task_threads(threads: int | None) -> Iterator[None]:
    """Run the numba kernels launched from this thread on at most ``threads`` threads.

    ``None`` leaves numba's default (every core). numba's setting is per launching
    thread, so tasks on the threads of one worker process do not affect each other.
    """
    if threads is None:
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(previous)
