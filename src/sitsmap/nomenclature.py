"""Class nomenclatures (``name:code`` files) and colour tables (``code R G B`` files).

The default is the 23-class OSO nomenclature of France's national land-cover
map, shipped with sitsmap, with OSO's colours.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sitsmap.io.tables import read_color_table, read_name_code_table

NODATA_CLASS = 0
"""Value of class maps outside valid pixels."""


@dataclass(frozen=True)
class Nomenclature:
    """Class codes with their names and colours.

    Attributes
    ----------
    names : dict of int to str
        Class code → name.
    colors : dict of int to (r, g, b)
        Class code → colour; codes without a colour get a grey.
    """

    names: dict[int, str]
    colors: dict[int, tuple[int, int, int]]

    @property
    def codes(self) -> list[int]:
        """Class codes in increasing order."""
        return sorted(self.names)

    def name(self, code: int) -> str:
        """Return the name of ``code``, or ``"class <code>"`` if unknown."""
        return self.names.get(int(code), f"class {int(code)}")

    def color(self, code: int) -> tuple[int, int, int]:
        """Return the colour of ``code`` (grey if the table has none)."""
        return self.colors.get(int(code), (128, 128, 128))


def load_nomenclature(
    nomenclature_path: str | Path | None = None, color_path: str | Path | None = None
) -> Nomenclature:
    """Read a nomenclature and colour table; the OSO defaults where a path is omitted."""
    data = resources.files("sitsmap") / "data"
    with (
        resources.as_file(data / "nomenclature.txt") as default_names,
        resources.as_file(data / "colorFile.txt") as default_colors,
    ):
        names = read_name_code_table(nomenclature_path or default_names)
        colors = read_color_table(color_path or default_colors)
    return Nomenclature(names=names, colors=colors)


def default_files() -> tuple[Path, Path]:
    """Return the paths of the shipped OSO ``nomenclature.txt`` and ``colorFile.txt``."""
    data = resources.files("sitsmap") / "data"
    return Path(str(data / "nomenclature.txt")), Path(str(data / "colorFile.txt"))
