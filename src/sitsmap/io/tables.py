"""Small text tables that iota2 users already have: nomenclature and colour files."""

from __future__ import annotations

import os

from sitsmap.errors import InputDataError

PathLike = str | os.PathLike[str]


def _lines(path: PathLike) -> list[tuple[int, str]]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise InputDataError(f"cannot read ({exc.strerror})", path) from exc
    return [
        (n, line.strip())
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


def read_name_code_table(path: PathLike) -> dict[int, str]:
    """Read a nomenclature: one ``name:code`` line per class.

    Raises
    ------
    InputDataError
        On a line without ``:``, a non-integer code or a repeated code.
    """
    names: dict[int, str] = {}
    for number, line in _lines(path):
        name, sep, code = line.rpartition(":")
        if not sep or not code.strip().lstrip("-").isdigit():
            raise InputDataError(f"line {number}: expected 'name:code', got {line!r}", path)
        if int(code) in names:
            raise InputDataError(f"line {number}: code {int(code)} is listed twice", path)
        names[int(code)] = name.strip()
    if not names:
        raise InputDataError("the nomenclature lists no class", path)
    return names


def read_color_table(path: PathLike) -> dict[int, tuple[int, int, int]]:
    """Read a colour table: one ``code R G B`` line per class (0–255 components).

    Raises
    ------
    InputDataError
        On a line that is not four integers or a component outside 0–255.
    """
    colors: dict[int, tuple[int, int, int]] = {}
    for number, line in _lines(path):
        parts = line.split()
        if len(parts) != 4 or not all(p.lstrip("-").isdigit() for p in parts):
            raise InputDataError(f"line {number}: expected 'code R G B', got {line!r}", path)
        code, *rgb = (int(p) for p in parts)
        if not all(0 <= c <= 255 for c in rgb):
            raise InputDataError(f"line {number}: colour components must be 0-255", path)
        colors[code] = (rgb[0], rgb[1], rgb[2])
    return colors


def read_class_counts(path: PathLike) -> dict[int, int]:
    """Read OTB's ``strategy.byclass.in`` CSV: ``code,count`` per line (a header is skipped).

    Raises
    ------
    InputDataError
        On a line that is not two integers.
    """
    counts: dict[int, int] = {}
    for number, line in _lines(path):
        parts = [p.strip() for p in line.replace(";", ",").replace(":", ",").split(",")]
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            if number == 1 and not counts:
                continue  # a header line
            raise InputDataError(f"line {number}: expected 'code,count', got {line!r}", path)
        counts[int(parts[0])] = int(parts[1])
    return counts
