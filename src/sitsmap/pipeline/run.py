"""Run the chain (or a range of its steps) for a configuration, and report its state."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from sitsmap.config import dump_config
from sitsmap.config.schema import STEP_NAMES, Config, Scheduling
from sitsmap.errors import ConfigError, InputDataError
from sitsmap.io.atomic import remove_stale_temporaries, write_text
from sitsmap.io.output_folder import (
    check_claimable,
    check_output_path,
    claim_output_folder,
    empty_owned_folder,
    output_lock,
)
from sitsmap.io.vector import read_vector
from sitsmap.pipeline.context import RunContext
from sitsmap.pipeline.graph import build_crossval_tasks, build_tasks
from sitsmap.pipeline.preflight import check_run_inputs, configured_regions, input_paths
from sitsmap.report import write_report
from sitsmap.scheduling.planning import Plan, apply_plan, plan_tasks, task_states
from sitsmap.scheduling.resources import available_cores
from sitsmap.scheduling.runner import run_graph
from sitsmap.vectors.regions import REGION_COLUMN

LOGGER = logging.getLogger(__name__)


def run_chain(
    config: Config,
    first_step: str | None = None,
    last_step: str | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    config_path: Path | None = None,
) -> RunContext:
    """Run the chain's tasks that are not up to date, from ``first_step`` to ``last_step``.

    Parameters
    ----------
    config : Config
        The run's configuration.
    first_step, last_step : str, optional
        Step range; the configuration's ``chain.first_step``/``last_step`` when
        omitted. Naming a first step reruns that step and everything downstream.
    scheduler : str, optional
        synchronous, threads, processes or a ``tcp://`` address; the
        configuration's ``scheduling.scheduler`` when omitted.
    workers : int, optional
        Parallel workers; ``scheduling.workers`` or ``task_retry_limits.maximum_cpu``.
    config_path : Path, optional
        The configuration file, which output_path must not hold or be.

    Returns
    -------
    RunContext
        The context of the run (its layout says where the outputs are).
    """
    chain = config.chain
    first_step = first_step or chain.first_step
    last_step = last_step or chain.last_step
    tasks = build_tasks(config)
    with _owned_output(config, config_path) as context:
        if _empties_output(config, first_step):
            removed = empty_owned_folder(context.layout.root)
            LOGGER.info("remove_output_path: deleted %d entries of %s", removed, chain.output_path)
        _execute(tasks, context, first_step, last_step, scheduler, workers)
        if last_step in (None, STEP_NAMES[-1]):
            # every result is now up to date with this configuration: the report shows it
            write_text(context.layout.config, dump_config(config))
            write_report(context.layout.root)
    return context


def run_crossval(
    config: Config,
    group_field: str | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    config_path: Path | None = None,
    folds: str = "tiles",
) -> RunContext:
    """Spatial cross-validation: leave each tile, region or ``group_field`` value out in turn.

    Every fold learns from the other groups' polygons (split as usual into
    learning and same-area validation), classifies every tile, and is scored
    twice: on its same-area validation polygons and on the left-out group's.
    Folds share init and preprocessing and run as tasks of one graph. With
    ``folds="regions"`` (eco-regions configured), each fold's model is one global
    model of the other regions, scored on the region it never saw.

    Returns
    -------
    RunContext
        The run; ``layout.crossval`` holds ``summary.json``.
    """
    if folds == "regions":
        if config.chain.region_path is None:
            raise ConfigError("--folds regions needs chain.region_path (the eco-regions)")
        group_field = REGION_COLUMN
        names = configured_regions(config) or []
    else:
        names = _fold_names(config, group_field)
    tasks = build_crossval_tasks(config, names, group_field)
    with _owned_output(config, config_path) as context:
        _execute(tasks, context, None, None, scheduler, workers)
        write_text(context.layout.config, dump_config(config))
        write_report(context.layout.root)
    return context


def plan_chain(
    config: Config,
    first_step: str | None = None,
    last_step: str | None = None,
    config_path: Path | None = None,
) -> Plan:
    """What ``sitsmap run`` would do now (``--dry-run``): the tasks to run and why.

    The output folder is checked as a run would check it; nothing is written.
    """
    first_step = first_step or config.chain.first_step
    check_output_path(config.chain.output_path, input_paths(config, config_path))
    check_claimable(config.chain.output_path)
    removing = _empties_output(config, first_step)
    return plan_tasks(
        build_tasks(config),
        RunContext(config),
        first_step,
        last_step or config.chain.last_step,
        fresh="chain.remove_output_path: the folder is emptied first" if removing else None,
    )


def _empties_output(config: Config, first_step: str | None) -> bool:
    """Whether the run starts by emptying output_path (``remove_output_path``, from init)."""
    return config.chain.remove_output_path and first_step in (None, STEP_NAMES[0])


@contextmanager
def _owned_output(config: Config, config_path: Path | None) -> Iterator[RunContext]:
    """Check the inputs and the output folder, then hold the folder's lock.

    Everything that can be checked in this process is, before a cluster starts.
    Temporary files left by killed runs are removed once the lock is held.
    """
    output = config.chain.output_path
    check_run_inputs(config, config_path)
    claim_output_folder(output)
    with output_lock(output):
        removed = remove_stale_temporaries(output)
        if removed:
            LOGGER.info("removed %d temporary file(s) left by an interrupted run", removed)
        yield RunContext(config)


def _execute(
    tasks: list,
    context: RunContext,
    first_step: str | None,
    last_step: str | None,
    scheduler: str | None,
    workers: int | None,
) -> None:
    """Plan ``tasks`` against the completion records and run what is not up to date."""
    config = context.config
    plan = plan_tasks(tasks, context, first_step, last_step)
    if plan.already_done:
        LOGGER.info(
            "resuming: %d task(s) up to date, %d to run",
            len(plan.already_done),
            len(plan.to_run),
        )
    for task in plan.to_run:
        LOGGER.info("to run: %s (%s)", task.key, "; ".join(plan.reasons[task.key]))
    apply_plan(plan, context)
    run_graph(
        plan.to_run,
        context,
        _scheduler(config, scheduler),
        _workers(config, workers),
        config.task_retry_limits.allowed_retry,
        plan.fingerprints,
    )


def _fold_names(config: Config, group_field: str | None) -> list[str]:
    if group_field is None:
        return list(config.chain.list_tile)
    truth = read_vector(config.chain.ground_truth)
    if group_field not in truth.columns:
        raise InputDataError(
            f"no field {group_field!r} to group the folds by", config.chain.ground_truth
        )
    folds = sorted(truth[group_field].dropna().astype(str).unique())
    # "Forest" and "forest" would share one fold folder on a case-insensitive disk
    if len({fold.casefold() for fold in folds}) != len(folds):
        raise InputDataError(
            f"values of {group_field!r} differ only by case; make them distinct",
            config.chain.ground_truth,
        )
    return folds


def _scheduler(config: Config, scheduler: str | None) -> str:
    """The scheduler asked for (``--scheduler``), checked like the configuration's own key."""
    if scheduler is None:
        return config.scheduling.scheduler
    try:
        return Scheduling(scheduler=scheduler).scheduler
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise ConfigError(f"--scheduler {scheduler!r}: {message}") from None


def _workers(config: Config, workers: int | None) -> int:
    chosen = workers or config.scheduling.workers or config.task_retry_limits.maximum_cpu
    return max(1, min(chosen, available_cores()))


@dataclass(frozen=True)
class StepState:
    """How far a step is: its tasks done, stale and missing, the reasons, and their time."""

    step: str
    done: int
    stale: int
    missing: int
    reasons: tuple[str, ...]
    seconds: float

    @property
    def total(self) -> int:
        """Tasks of the step in this configuration."""
        return self.done + self.stale + self.missing

    @property
    def state(self) -> str:
        """``done``, ``stale``, ``missing`` or ``partial``."""
        if self.done == self.total:
            return "done"
        return "stale" if self.stale else ("missing" if not self.done else "partial")


def step_states(config: Config) -> list[StepState]:
    """The state of every step of the chain for ``config`` (its own tasks only)."""
    states = task_states(build_tasks(config), RunContext(config))
    summary = []
    for step in STEP_NAMES:
        mine = [s for s in states if s.task.step == step]
        count = Counter(s.state for s in mine)
        reasons = _main_reasons(r for s in mine if s.state == "stale" for r in s.reasons)
        summary.append(
            StepState(
                step,
                count["done"],
                count["stale"],
                count["missing"],
                tuple(reasons),
                sum(s.seconds for s in mine if s.state == "done"),
            )
        )
    return summary


def _main_reasons(reasons: Iterable[str]) -> tuple[str, ...]:
    """A step's own reasons (keys, files) if it has any, else the tasks it needs; no repeats."""
    unique = list(dict.fromkeys(reasons))
    own = [r for r in unique if not r.startswith("needs ")]
    return tuple(own or unique)
