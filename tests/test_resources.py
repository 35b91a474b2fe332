import os

import numba
import numpy as np
import pytest

from sitsmap.learning.classical import RandomForest
from sitsmap.learning.persistence import use_threads
from sitsmap.pipeline.steps import classification
from sitsmap.preprocessing.features import FeatureBlock
from sitsmap.scheduling import resources


@pytest.mark.parametrize(
    ("cores", "maximum_cpu", "workers", "expected"),
    [(2, 2, 1, 2), (2, 2, 2, 1), (2, 8, 3, 1), (16, 8, 2, 4), (16, 16, 4, 4)],
)
def test_each_task_gets_its_worker_s_share_of_the_usable_cores(
    monkeypatch, cores, maximum_cpu, workers, expected
):
    monkeypatch.setattr(resources, "available_cores", lambda: cores)
    assert resources.cores_per_task(maximum_cpu, workers) == expected


def test_available_cores_is_the_process_affinity():
    """Pinned to one CPU (as ``taskset -c 0`` does), the process counts one core."""
    import subprocess
    import sys

    first = min(os.sched_getaffinity(0))
    code = "from sitsmap.scheduling.resources import available_cores; print(available_cores())"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {first}),
    )
    assert done.stdout.strip() == "1"


def test_task_threads_limits_numba_and_restores_it():
    before = numba.get_num_threads()
    with resources.task_threads(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    with resources.task_threads(None):
        assert numba.get_num_threads() == before


def test_use_threads_sets_a_classical_model_s_jobs():
    model = RandomForest(n_estimators=2, n_jobs=4)
    use_threads(model, 1)
    assert model.n_jobs == 1


class _ProbeModel:
    """Returns each pixel's first two features as its 'probabilities', records call sizes."""

    classes_ = np.array([1, 2])

    def __init__(self):
        self.calls = []

    def predict_proba(self, rows):
        assert rows.flags.c_contiguous
        self.calls.append(len(rows))
        return rows[:, :2].copy()


def test_prediction_by_slices_keeps_the_pixel_order(monkeypatch):
    monkeypatch.setattr(classification, "PREDICT_PIXELS", 7)
    rng = np.random.default_rng(0)
    features = rng.random((5, 6, 9)).astype(np.float32)
    has_data = rng.random((6, 9)) < 0.7
    model = _ProbeModel()
    block = FeatureBlock(features, has_data.astype(np.uint16), has_data)
    codes = np.array([1, 2])
    probabilities = classification._predict_by_slices(model, block, has_data, codes)
    np.testing.assert_array_equal(probabilities, features[:2, has_data].T)
    assert max(model.calls) == 7 and sum(model.calls) == has_data.sum()
    # a region's model that lacks a class of the map gives it 0, columns follow the codes
    wider = classification._predict_by_slices(model, block, has_data, np.array([1, 2, 5]))
    np.testing.assert_array_equal(wider[:, :2], probabilities)
    assert (wider[:, 2] == 0).all()
    empty = np.zeros((6, 9), bool)
    assert classification._predict_by_slices(model, block, empty, codes).shape == (0, 2)


def _learn(context):  # stand-ins for step functions
    pass


def _classify(context, tile):
    pass


@pytest.mark.parametrize(
    ("scheduler", "workers", "learning", "classification"),
    [("processes", 2, 2, 1), ("threads", 1, 2, 2), ("synchronous", 2, 2, 2)],
)
def test_a_task_with_fewer_siblings_than_workers_gets_the_idle_workers_cores(
    small_world, monkeypatch, scheduler, workers, learning, classification
):
    from sitsmap.config.loader import load_config
    from sitsmap.pipeline.context import RunContext
    from sitsmap.pipeline.tasks import Task
    from sitsmap.scheduling.runner import _task_contexts

    monkeypatch.setattr(resources, "available_cores", lambda: 2)
    context = RunContext(load_config(small_world / "config.yaml"))
    tasks = [Task("learning-seed0", "learning", _learn)] + [
        Task(f"classification-{t}", "classification", _classify, {"tile": t}) for t in "ABCD"
    ]
    contexts = _task_contexts(tasks, context, scheduler, workers)
    assert contexts["learning-seed0"].threads == learning
    assert {contexts[f"classification-{t}"].threads for t in "ABCD"} == {classification}
    remote = _task_contexts(tasks, context, "tcp://127.0.0.1:8786", workers)
    assert all(c.threads is None for c in remote.values())


def test_planning_and_reporting_do_not_import_the_learning_libraries():
    """The main process builds the graph and writes the report: 2.5 s of imports spared."""
    import subprocess
    import sys

    code = (
        "import sys, sitsmap.cli, sitsmap.pipeline.run, sitsmap.pipeline.graph, sitsmap.report;"
        "print(sorted(m for m in ('torch', 'sklearn', 'lightgbm') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
