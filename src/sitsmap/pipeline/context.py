"""What every task receives: the frozen configuration and the output layout."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from sitsmap.config.schema import Config
from sitsmap.nomenclature import Nomenclature, load_nomenclature
from sitsmap.pipeline.layout import OutputLayout


@dataclass(frozen=True)
class RunContext:
    """The configuration of a run and where its outputs go. Holds no mutable state."""

    config: Config

    @cached_property
    def layout(self) -> OutputLayout:
        """The output tree of the run."""
        return OutputLayout(self.config.chain.output_path)

    @cached_property
    def nomenclature(self) -> Nomenclature:
        """Class names and colours (the OSO defaults where the config gives none)."""
        chain = self.config.chain
        return load_nomenclature(chain.nomenclature_path, chain.color_table)
