"""Run the chain (or a range of its steps) for a configuration, and report its state."""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from dataclasses import dataclass

from sitsmap.config.schema import STEP_NAMES, Config
from sitsmap.errors import InputDataError
from sitsmap.io.vector import read_vector
from sitsmap.pipeline.context import RunContext
from sitsmap.pipeline.graph import build_crossval_tasks, build_tasks
from sitsmap.report import write_report
from sitsmap.scheduling.records import read_records
from sitsmap.scheduling.resources import available_cores
from sitsmap.scheduling.runner import plan_tasks, run_graph

LOGGER = logging.getLogger(__name__)


def run_chain(
    config: Config,
    first_step: str | None = None,
    last_step: str | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
) -> RunContext:
    """Run the chain's tasks that are not complete yet, from ``first_step`` to ``last_step``.

    Parameters
    ----------
    config : Config
        The run's configuration.
    first_step, last_step : str, optional
        Step range; the configuration's ``chain.first_step``/``last_step`` when
        omitted. Naming a first step reruns that step and the ones after it.
    scheduler : str, optional
        synchronous, threads, processes or a ``tcp://`` address; the
        configuration's ``scheduling.scheduler`` when omitted.
    workers : int, optional
        Parallel workers; ``scheduling.workers`` or ``task_retry_limits.maximum_cpu``.

    Returns
    -------
    RunContext
        The context of the run (its layout says where the outputs are).
    """
    chain = config.chain
    first_step = first_step or chain.first_step
    last_step = last_step or chain.last_step
    if (
        chain.remove_output_path
        and first_step in (None, STEP_NAMES[0])
        and chain.output_path.exists()
    ):
        LOGGER.info("remove_output_path: deleting %s", chain.output_path)
        shutil.rmtree(chain.output_path)
    context = _execute(build_tasks(config), config, first_step, last_step, scheduler, workers)
    if last_step in (None, STEP_NAMES[-1]):
        write_report(context.layout.root)
    return context


def run_crossval(
    config: Config,
    group_field: str | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
) -> RunContext:
    """Spatial cross-validation: leave each tile (or each ``group_field`` value) out in turn.

    Every fold learns from the other groups' polygons (split as usual into
    learning and same-area validation), classifies every tile, and is scored
    twice: on its same-area validation polygons and on the left-out group's.
    Folds share init and preprocessing and run as tasks of one graph.

    Returns
    -------
    RunContext
        The run; ``layout.crossval`` holds ``summary.json``.
    """
    tasks = build_crossval_tasks(config, _fold_names(config, group_field), group_field)
    context = _execute(tasks, config, None, None, scheduler, workers)
    write_report(context.layout.root)
    return context


def _execute(
    tasks: list,
    config: Config,
    first_step: str | None,
    last_step: str | None,
    scheduler: str | None,
    workers: int | None,
) -> RunContext:
    """Plan ``tasks`` against the completion records and run what is missing."""
    context = RunContext(config)
    context.layout.root.mkdir(parents=True, exist_ok=True)
    plan = plan_tasks(tasks, context, first_step, last_step)
    if plan.already_done:
        LOGGER.info(
            "resuming: %d task(s) already complete, %d to run",
            len(plan.already_done),
            len(plan.to_run),
        )
    run_graph(
        plan.to_run,
        context,
        scheduler or config.scheduling.scheduler,
        _workers(config, workers),
        config.task_retry_limits.allowed_retry,
    )
    return context


def _fold_names(config: Config, group_field: str | None) -> list[str]:
    if group_field is None:
        return list(config.chain.list_tile)
    truth = read_vector(config.chain.ground_truth)
    if group_field not in truth.columns:
        raise InputDataError(
            f"no field {group_field!r} to group the folds by", config.chain.ground_truth
        )
    return sorted(truth[group_field].dropna().astype(str).unique())


def _workers(config: Config, workers: int | None) -> int:
    chosen = workers or config.scheduling.workers or config.task_retry_limits.maximum_cpu
    return max(1, min(chosen, available_cores()))


@dataclass(frozen=True)
class StepState:
    """How far a step is: tasks complete out of all, and their total time."""

    step: str
    done: int
    total: int
    seconds: float


def step_states(config: Config) -> list[StepState]:
    """The state of every step of the chain for ``config``."""
    context = RunContext(config)
    records = read_records(context.layout.done)
    totals = Counter(task.step for task in build_tasks(config))
    done = Counter(records[key]["step"] for key in records if records[key].get("step"))
    seconds = Counter()
    for record in records.values():
        seconds[record.get("step")] += record.get("seconds", 0.0)
    return [StepState(step, done[step], totals[step], seconds[step]) for step in STEP_NAMES]
