"""Small HTML builders: escaping by default, tables, images, numbers.

Every function returns :class:`Html`, a ``str`` marked as already safe; any
other ``str`` given to a builder is escaped, so a class named ``<b>`` is shown
as written and never interpreted.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

from sitsmap.nomenclature import Nomenclature

__all__ = [
    "Html",
    "class_label",
    "details",
    "duration",
    "esc",
    "figure",
    "mean_ci",
    "missing",
    "number",
    "png_img",
    "table",
]

DASH = "\u2013"
"""Shown for a value that does not exist (NaN, None)."""


class Html(str):
    """Text that is already HTML: builders insert it as is."""

    __slots__ = ()


def esc(value: Any) -> Html:
    """Return ``value`` as HTML text: itself if already :class:`Html`, else escaped."""
    if isinstance(value, Html):
        return value
    return Html(html.escape(str(value), quote=True))


def join(parts: Iterable[Any], separator: str = "\n") -> Html:
    """Concatenate fragments, escaping those that are not :class:`Html`."""
    return Html(separator.join(esc(part) for part in parts))


def tag(name: str, content: Any = "", **attributes: Any) -> Html:
    """Return ``<name attr="…">content</name>``; ``class_`` gives the ``class`` attribute."""
    pairs = "".join(
        f' {key.rstrip("_").replace("_", "-")}="{html.escape(str(value), quote=True)}"'
        for key, value in attributes.items()
        if value is not None
    )
    return Html(f"<{name}{pairs}>{esc(content)}</{name}>")


def _absent(value: float | None) -> bool:
    return value is None or not math.isfinite(float(value))


def number(value: float | None, digits: int = 3) -> str:
    """Format a number, or a dash for None, NaN and infinities."""
    return DASH if _absent(value) else f"{float(value):.{digits}f}"


def count(value: float | None) -> str:
    """Format a count with thin spaces between thousands, or a dash for None and NaN."""
    return DASH if _absent(value) else f"{int(value):,}".replace(",", "\u202f")


def mean_ci(entry: dict[str, float | None] | None, digits: int = 3, runs: int = 1) -> str:
    """Format ``{"mean", "ci95"}`` (or ``{"estimate", "ci95"}``) as ``0.912 ± 0.013``.

    The interval is left out for a single run, where it is 0 by construction.
    """
    if not entry:
        return DASH
    value = entry.get("mean", entry.get("estimate"))
    half = entry.get("ci95")
    if value is None:
        return DASH
    if (runs < 2 and "mean" in entry) or half is None:
        return number(value, digits)
    return f"{number(value, digits)} \u00b1 {number(half, digits)}"


def duration(seconds: float | None) -> str:
    """Format seconds for people: ``12.3 s``, ``4 min 05 s``, ``2 h 07 min``."""
    if _absent(seconds):
        return DASH
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def hex_color(rgb: Sequence[int]) -> str:
    """``(r, g, b)`` as ``#rrggbb``."""
    return "#" + "".join(f"{int(c):02x}" for c in rgb[:3])


def class_label(nomenclature: Nomenclature, code: int) -> Html:
    """A colour swatch, the class code and its (escaped) name."""
    swatch = tag(
        "span", "", class_="swatch", style=f"background:{hex_color(nomenclature.color(code))}"
    )
    return Html(f'{swatch}<span class="code">{int(code)}</span> {esc(nomenclature.name(code))}')


def missing(reason: str) -> Html:
    """A paragraph saying that a section is not available, and why."""
    return tag("p", Html(f"<strong>Not available:</strong> {esc(reason)}"), class_="missing")


def png_img(png: bytes, alt: str, css_class: str | None = None, style: str | None = None) -> Html:
    """An ``<img>`` embedding ``png`` as a base64 data URI."""
    return data_img(png, "image/png", alt, css_class, style)


def data_img(
    content: bytes,
    mime: str,
    alt: str,
    css_class: str | None = None,
    style: str | None = None,
) -> Html:
    """An ``<img>`` embedding ``content`` (of media type ``mime``) as a base64 data URI."""
    data = base64.b64encode(content).decode("ascii")
    return Html(
        f'<img src="data:{mime};base64,{data}" alt="{html.escape(alt, quote=True)}"'
        + (f' class="{css_class}"' if css_class else "")
        + (f' style="{html.escape(style, quote=True)}"' if style else "")
        + ">"
    )


def figure(content: Any, caption: Any = None) -> Html:
    """A ``<figure>`` with an optional caption."""
    text = esc(content) + (tag("figcaption", caption) if caption else "")
    return tag("figure", Html(text))


def details(summary: Any, content: Any, is_open: bool = False) -> Html:
    """A collapsible block (no script needed)."""
    opening = "<details open>" if is_open else "<details>"
    return Html(f"{opening}{tag('summary', summary)}{esc(content)}</details>")


def table(
    head: Sequence[Any],
    rows: Iterable[Sequence[Any]],
    foot: Sequence[Sequence[Any]] = (),
    css_class: str = "data",
    groups: Sequence[tuple[Any, int]] = (),
) -> Html:
    """A table; cells that are not :class:`Html` are escaped.

    A cell may be a ``(content, attributes)`` pair to set e.g. a style.
    ``groups`` adds a heading row above ``head``: ``(label, columns spanned)`` cells.
    """
    lines = [tag("tr", join(tag("th", cell) for cell in head))]
    if groups:
        spans = (tag("th", label, colspan=span) for label, span in groups)
        lines.insert(0, tag("tr", join(spans, "")))
    header = tag("thead", join(lines))
    body = tag("tbody", join(_row(cells) for cells in rows))
    footer = tag("tfoot", join(_row(cells) for cells in foot)) if foot else Html("")
    return tag("table", Html(header + body + footer), class_=css_class)


def _row(cells: Sequence[Any]) -> Html:
    parts = []
    for index, cell in enumerate(cells):
        content, attributes = cell if isinstance(cell, tuple) else (cell, {})
        parts.append(tag("th" if index == 0 else "td", content, **attributes))
    return tag("tr", join(parts, ""))
