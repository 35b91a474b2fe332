"""What every task receives: the frozen configuration and the output layout."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

from sitsmap.config.schema import Config
from sitsmap.nomenclature import Nomenclature, load_nomenclature
from sitsmap.pipeline.layout import OutputLayout


@dataclass(frozen=True)
class RunContext:
    """The configuration of a run and where its outputs go. Holds no mutable state.

    Attributes
    ----------
    config : Config
        The run's configuration.
    fold : str, optional
        The cross-validation fold the task belongs to.
    threads : int, optional
        Cores one task may use: its worker's share (see
        :mod:`sitsmap.scheduling.resources`); None lets a task use every core.
    """

    config: Config
    fold: str | None = None
    threads: int | None = None

    @cached_property
    def layout(self) -> OutputLayout:
        """The output tree of the run (of the fold, in cross-validation)."""
        layout = OutputLayout(self.config.chain.output_path)
        return layout.for_fold(self.fold) if self.fold else layout

    def for_fold(self, fold: str | None) -> RunContext:
        """The context of one cross-validation fold (``None``: the plain run)."""
        return replace(self, fold=fold) if fold != self.fold else self

    @cached_property
    def nomenclature(self) -> Nomenclature:
        """Class names and colours (the OSO defaults where the config gives none)."""
        chain = self.config.chain
        return load_nomenclature(chain.nomenclature_path, chain.color_table)

    @property
    def strata_field(self) -> str:
        """The ground truth's column that the split and the sample selection stratify on.

        The class field; in a regression, the target's quantile bin
        (:data:`~sitsmap.vectors.ground_truth.BIN_COLUMN`).
        """
        from sitsmap.vectors.ground_truth import BIN_COLUMN

        return BIN_COLUMN if self.config.regression else self.config.chain.data_field
