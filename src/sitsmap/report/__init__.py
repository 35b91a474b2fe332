"""``report.html``: one self-contained page to read instead of the log files.

:func:`write_report` reads whatever a run left in its output tree
(:mod:`sitsmap.report.gather`), builds the page from that data
(:mod:`sitsmap.report.html`, figures from :mod:`sitsmap.report.figures`) and
writes it atomically. Sections whose outputs are missing say so.

The output tree of a spatial cross-validation (``sitsmap crossval``), which holds
no plain run, gets the cross-validation report instead
(:mod:`sitsmap.report.crossval`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sitsmap.errors import InputDataError
from sitsmap.io.atomic import write_text
from sitsmap.report.crossval import collect_crossval, is_crossval, render_crossval_report
from sitsmap.report.gather import collect
from sitsmap.report.html import render_report

__all__ = ["REPORT_NAME", "write_report"]

LOGGER = logging.getLogger(__name__)

REPORT_NAME = "report.html"
"""File name of the report in the output directory."""


def write_report(output_dir: str | os.PathLike[str]) -> Path:
    """Write ``OUTPUT_DIR/report.html`` from the outputs of a (possibly partial) run.

    A cross-validation's tree (``crossval/summary.json`` and no ``final/results.json``)
    gets the cross-validation report.

    Parameters
    ----------
    output_dir : str or PathLike
        The run's output directory (``chain.output_path``).

    Returns
    -------
    Path
        The report's path.

    Raises
    ------
    InputDataError
        If ``output_dir`` is not a directory.
    """
    root = Path(output_dir)
    if not root.is_dir():
        raise InputDataError("not a directory (expected a run's output_path)", root)
    path = root / REPORT_NAME
    if is_crossval(root):
        write_text(path, render_crossval_report(collect_crossval(root)))
    else:
        write_text(path, render_report(collect(root)))
    LOGGER.info("report written to %s", path)
    return path
