"""Exceptions raised by sitsmap.

One root, :class:`SitsmapError`, so that callers can catch everything sitsmap
raises on purpose; each subclass also derives from the standard exception it
refines (as rasterio does), so ``except ValueError`` keeps working.

The command line turns any :class:`SitsmapError` into one line,
``sitsmap: error: <file>: <problem>``, and exit code 2.
"""

from __future__ import annotations

import os
import re
from os import PathLike

__all__ = [
    "ConfigError",
    "InputDataError",
    "SchedulingError",
    "SitsmapError",
    "StepError",
    "portable_error",
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


_BOILERPLATE = (
    # GDAL/OGR phrases that point elsewhere instead of saying what is wrong
    " See previous exception for details.",
    "; It might help to specify the correct driver explicitly by prefixing the file path "
    "with '<DRIVER>:', e.g. 'CSV:path'.",
)
_CORRUPT_TIFF = re.compile(
    r"TIFFFillTile|TIFFFillStrip|TIFFReadEncoded|TIFFReadDirectory|IReadBlock failed|"
    r"Read error|not a TIFF|TIFF directory",
    re.IGNORECASE,
)
_NOT_RECOGNIZED = re.compile(r"not recognized as (being in )?a supported file format")
_MAX_DETAIL = 300


def portable_error(
    exc: BaseException, task: str | None = None, log_path: str | PathLike[str] | None = None
) -> SitsmapError:
    """A copy of ``exc`` that survives pickling, with what its causes said in plain words.

    Dask sends a task's error from the worker to the client by pickling it with its
    chain of causes; a library's exception in that chain (rasterio's, pyogrio's) may
    not unpickle, and Dask then substitutes a bare ``Exception``. The copy has the
    same class and path, the causes' message folded into its own, and no chain.

    Parameters
    ----------
    exc : BaseException
        The error a task raised.
    task : str, optional
        The task's key, named when ``exc`` is not a :class:`SitsmapError` (a bug).
    log_path : str or PathLike, optional
        The task's log file, which holds the full traceback.

    Returns
    -------
    SitsmapError
        The same class as ``exc`` for a :class:`SitsmapError`; otherwise a
        :class:`StepError` naming the task, the exception type and the log file.
    """
    if isinstance(exc, SitsmapError):
        problem = _with_causes(exc.problem, exc, exc.path)
        try:
            error = type(exc)(problem, exc.path)
        except TypeError:  # a subclass with another signature
            error = SitsmapError(problem, exc.path)
    else:
        detail = _tidy(_first_line(exc)) or "(no message)"
        where = "its log file" if log_path is None else "this log file"
        problem = f"task {task} failed: {type(exc).__name__}: {detail} (traceback in {where})"
        error = StepError(problem, log_path)
    error.__cause__ = error.__context__ = None
    return error


def _with_causes(problem: str, exc: BaseException, path: str | None) -> str:
    """``problem`` with the deepest cause's message (and a plain-words summary) folded in."""
    texts = [_tidy(_first_line(cause)) for cause in _causes(exc)]
    texts = [text for text in texts if text]
    if not texts:
        return problem
    problem = _tidy(problem)
    for text in texts:  # drop an intermediate cause's words, e.g. "(Read failed.)"
        if text != texts[-1]:
            problem = problem.replace(f" ({text})", "")
    root = texts[-1]
    plain = _plain_words(texts, path)
    if root in problem:
        return problem.replace(root, f"{plain}: {root}") if plain else problem
    detail = f"{plain}: {root}" if plain else root
    return f"{problem} ({detail})"


def _causes(exc: BaseException) -> list[BaseException]:
    """The chain below ``exc`` (explicit causes, and implicit ones not suppressed)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 20:
        following = current.__cause__
        if following is None and not current.__suppress_context__:
            following = current.__context__
        if following is None or following in chain or following is exc:
            break
        chain.append(following)
        current = following
    return chain


def _plain_words(texts: list[str], path: str | None) -> str:
    """What the library messages mean, e.g. ``truncated or corrupt GeoTIFF``."""
    if path is not None and os.path.isfile(path) and os.path.getsize(path) == 0:
        return "empty file, 0 bytes"
    is_tiff = path is not None and path.lower().endswith((".tif", ".tiff"))
    if is_tiff and any(_CORRUPT_TIFF.search(text) for text in texts):
        return "truncated or corrupt GeoTIFF"
    if any(_NOT_RECOGNIZED.search(text) for text in texts):
        return "not a file format GDAL can read"
    return ""


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else ""


def _tidy(text: str) -> str:
    for phrase in _BOILERPLATE:
        text = text.replace(phrase, "")
    text = text.strip()
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
