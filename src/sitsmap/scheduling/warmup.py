"""Warm Dask workers up: import the tasks' modules in the background as a worker starts."""

from __future__ import annotations

import importlib
import logging
import threading

from distributed.diagnostics.plugin import WorkerPlugin

LOGGER = logging.getLogger(__name__)


class ImportInBackground(WorkerPlugin):
    """Import the tasks' modules on a thread as soon as a worker starts.

    The step modules and the learning libraries they use (torch, scikit-learn,
    LightGBM: about 2.5 s) are otherwise imported when a worker first unpickles or
    runs a task that needs them, on the chain's critical path (a worker idle while
    another learns would start importing only once handed a classification);
    imported in the background, they mostly fill idle time.

    Parameters
    ----------
    modules : list of str
        Modules to import, e.g. ``["sitsmap.learning.persistence"]``.
    """

    def __init__(self, modules: list[str]) -> None:
        self.modules = list(modules)

    def setup(self, worker: object) -> None:
        """Start importing; a task that needs a module meanwhile waits for that import."""
        threading.Thread(target=self._import_all, name="sitsmap-imports", daemon=True).start()

    def _import_all(self) -> None:
        for module in self.modules:
            try:
                importlib.import_module(module)
            except Exception:  # the task that needs the module raises the error itself
                LOGGER.debug("background import of %s failed", module, exc_info=True)
