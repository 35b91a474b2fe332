"""Decide which tasks run, like a build system: missing, stale or forced ones and what follows.

A task is *done* when its completion record holds the fingerprint it has now
(see :mod:`sitsmap.scheduling.fingerprints`) and the tasks it needs still
have the records it found when it ran (Make's rule, with record ids rather than
clocks, which differ between the hosts of a cluster). It is *stale* when its record is there
but no longer matches, *missing* when there is no record. A rerun redoes the
stale and missing tasks of the step range; a changed task changes the
fingerprints of everything downstream, which reruns too. ``--first-step``
forces the tasks of that step and everything downstream of them; records of
forced tasks' dependants beyond ``--last-step`` are forgotten, so that no
record claims an output made from what has just been replaced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from sitsmap.config.schema import STEP_NAMES
from sitsmap.errors import StepError
from sitsmap.pipeline.context import RunContext
from sitsmap.pipeline.tasks import Task
from sitsmap.scheduling.fingerprints import Fingerprint, stale_reasons, task_fingerprints
from sitsmap.scheduling.records import forget, read_records


@dataclass(frozen=True)
class TaskState:
    """Where one task stands: ``done``, ``stale`` or ``missing``, and why."""

    task: Task
    state: str
    reasons: tuple[str, ...] = ()
    seconds: float = 0.0


@dataclass(frozen=True)
class Plan:
    """Which tasks run now (with why), and which were complete already."""

    to_run: tuple[Task, ...]
    already_done: tuple[Task, ...]
    reasons: dict[str, tuple[str, ...]]
    fingerprints: dict[str, Fingerprint]
    forget: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line per task that would run, with the reason, for ``--dry-run``."""
        if not self.to_run:
            return "nothing to do: every task is up to date\n"
        lines = [f"{len(self.to_run)} task(s) to run, {len(self.already_done)} up to date:"]
        lines += [f"  {t.key:<40} {'; '.join(self.reasons[t.key])}" for t in self.to_run]
        if self.forget:
            lines.append(
                f"records forgotten (downstream, beyond the last step): {len(self.forget)}"
            )
        return "\n".join(lines) + "\n"


def task_states(tasks: Sequence[Task], context: RunContext) -> list[TaskState]:
    """The state of every task of ``tasks`` against the run's completion records."""
    fingerprints = task_fingerprints(tasks, context.config)
    return _states(tasks, fingerprints, read_records(context.layout.done))


def plan_tasks(
    tasks: Sequence[Task],
    context: RunContext,
    first_step: str | None,
    last_step: str | None,
    fresh: str | None = None,
) -> Plan:
    """Select the tasks of the step range that are not up to date (or forced by ``first_step``).

    Nothing is changed on disk: :func:`apply_plan` forgets the records the plan invalidates.
    ``fresh`` (a reason) plans as if no task had run, for a folder about to be emptied.

    Raises
    ------
    StepError
        If the range is inverted, or if a task before the range, needed by the
        range, is missing or stale.
    """
    first = STEP_NAMES.index(first_step) if first_step else 0
    last = STEP_NAMES.index(last_step) if last_step else len(STEP_NAMES) - 1
    if first > last:
        raise StepError(
            f"--first-step {first_step} comes after --last-step {last_step}", context.layout.root
        )
    fingerprints = task_fingerprints(tasks, context.config)
    records = {} if fresh else read_records(context.layout.done)
    states = {s.task.key: s for s in _states(tasks, fingerprints, records)}
    if fresh:
        states = {key: replace(state, reasons=(fresh,)) for key, state in states.items()}
    forced = _downstream(tasks, {t.key for t in tasks if t.step == first_step})
    reasons = {
        key: (f"forced by --first-step {first_step}",) if key in forced else states[key].reasons
        for key in states
    }
    redo = {key for key in states if key in forced or states[key].state != "done"}
    in_range = [t for t in tasks if first <= STEP_NAMES.index(t.step) <= last]
    _check_needed(in_range, states, redo, first, context)
    to_run = tuple(t for t in in_range if t.key in redo)
    beyond = _downstream(tasks, {t.key for t in to_run}) - {t.key for t in in_range}
    return Plan(
        to_run=to_run,
        already_done=tuple(t for t in in_range if t.key not in redo),
        reasons=reasons,
        fingerprints=fingerprints,
        forget=tuple(sorted(k for k in beyond if states[k].state != "missing")),
    )


def apply_plan(plan: Plan, context: RunContext) -> None:
    """Forget the records of the tasks that will run and of their dependants beyond the range."""
    for key in [*(t.key for t in plan.to_run), *plan.forget]:
        forget(context.layout.done, key)


def _states(
    tasks: Sequence[Task], fingerprints: dict[str, Fingerprint], records: dict[str, dict]
) -> list[TaskState]:
    states: dict[str, TaskState] = {}
    for task in tasks:
        record = records.get(task.key)
        if record is None:
            states[task.key] = TaskState(task, "missing", ("not run yet",))
            continue
        needed = _redone_after(task, record, records, states)
        reasons = stale_reasons(record, fingerprints[task.key])
        if needed and all(reason.startswith("needs ") for reason in reasons):
            reasons = needed  # Make's rule says better why the tasks it needs changed
        else:
            reasons += needed
        state = "stale" if reasons else "done"
        states[task.key] = TaskState(task, state, tuple(reasons), record.get("seconds", 0.0))
    return list(states.values())


def _redone_after(
    task: Task, record: dict, records: dict[str, dict], states: dict[str, TaskState]
) -> list[str]:
    """Make's rule with record ids: out of date if a needed task is, or was redone since."""
    reasons = []
    seen = record.get("needed_records") or {}
    for key in task.depends_on:
        if states[key].state != "done":
            reasons.append(f"needs {key}, which is {states[key].state}")
        elif seen.get(key) != records[key].get("id"):
            reasons.append(f"needs {key}, which was redone after it")
    return reasons


def _downstream(tasks: Sequence[Task], keys: set[str]) -> set[str]:
    """``keys`` and every task that needs one of them, directly or not."""
    found = set(keys)
    for task in tasks:  # listed in execution order: one pass suffices
        if any(k in found for k in task.depends_on):
            found.add(task.key)
    return found


def _check_needed(
    in_range: Sequence[Task],
    states: dict[str, TaskState],
    redo: set[str],
    first: int,
    context: RunContext,
) -> None:
    for task in in_range:
        for key in task.depends_on:
            needed = states[key].task
            if STEP_NAMES.index(needed.step) < first and key in redo:
                if states[key].state == "missing":
                    problem = f"has not been run ({key} is missing)"
                else:
                    problem = f"is out of date ({key}: {'; '.join(states[key].reasons)})"
                raise StepError(
                    f"step {needed.step!r} {problem}; run from --first-step {needed.step}",
                    context.layout.root,
                )
