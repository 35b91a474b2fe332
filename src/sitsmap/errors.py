"""Exceptions raised by sitsmap.

One root, :class:`SitsmapError`, so that callers can catch everything sitsmap
raises on purpose; each subclass also derives from the standard exception it
refines (as rasterio does), so ``except ValueError`` keeps working.

The command line turns any :class:`SitsmapError` into one line,
``sitsmap: error: <file>: <problem>``, and exit code 2.
"""

from __future__ import annotations

from os import PathLike

__all__ = [
    "ConfigError",
    "InputDataError",
    "SchedulingError",
    "SitsmapError",
    "StepError",
]


class SitsmapError(Exception):
    """Root of every error sitsmap raises on purpose.

    Parameters
    ----------
    problem : str
        What is wrong, in one line.
    path : str or PathLike, optional
        The file (or directory) the problem is about; shown first.
    """

    def __init__(self, problem: str, path: str | PathLike[str] | None = None) -> None:
        self.problem = problem
        self.path = None if path is None else str(path)
        # both in args, so the error survives pickling between Dask workers and the client
        super().__init__(problem, self.path)

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}" if self.path else self.problem


class ConfigError(SitsmapError, ValueError):
    """The configuration is invalid: unknown key, wrong type, bad value."""


class InputDataError(SitsmapError, OSError):
    """An input file is missing, unreadable or does not hold what it should."""


class StepError(SitsmapError, RuntimeError):
    """A chain step cannot run, e.g. because an earlier step has not been run."""


class SchedulingError(SitsmapError, RuntimeError):
    """The task graph could not be executed (scheduler unreachable, retries spent)."""
