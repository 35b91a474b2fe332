"""The report page: header, table of contents, sections, inline style.

Pure: :func:`render_report` turns :class:`~sitsmap.report.gather.ReportData`
into one self-contained HTML document (figures as data URIs, no script, no
external style sheet or font).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from sitsmap import __version__
from sitsmap.report.gather import ReportData
from sitsmap.report.markup import Html, esc, join, missing, tag
from sitsmap.report.sections import missing_sections, page_sections

__all__ = ["page_header", "render_page", "render_report"]

LOGGER = logging.getLogger(__name__)

STYLE = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#d9e2ec; --soft:#f5f7fa; --accent:#2f6f9f; }
* { box-sizing:border-box; }
body { margin:0; color:var(--ink); background:#fff;
  font:15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
header { background:#243b53; color:#fff; padding:22px 32px 16px; }
header h1 { margin:0 0 4px; font-size:24px; font-weight:600; }
header .meta { color:#bcccdc; font-size:13px; }
header .meta code { color:#fff; }
nav { position:sticky; top:0; z-index:2; background:var(--soft);
  border-bottom:1px solid var(--line); padding:8px 32px; font-size:13px; }
nav a { color:var(--accent); text-decoration:none; margin-right:14px; white-space:nowrap; }
nav a:hover { text-decoration:underline; }
main { max-width:1180px; margin:0 auto; padding:8px 32px 48px; }
section { padding:10px 0 18px; border-bottom:1px solid var(--line); }
h2 { font-size:19px; font-weight:600; margin:18px 0 10px; color:#102a43; }
.note { color:var(--muted); font-size:13px; margin:4px 0 10px; }
.missing { background:#fff8e6; border-left:4px solid #f0b429; padding:8px 12px; margin:8px 0; }
.banner { background:#fff8e6; border:1px solid #f7d070; border-radius:6px;
  padding:10px 14px; margin:16px 0 4px; }
.banner ul { margin:4px 0 0 18px; padding:0; }
.cards { display:flex; gap:14px; flex-wrap:wrap; margin:6px 0; }
.card { flex:1 1 200px; border:1px solid var(--line); border-radius:8px;
  padding:12px 16px; background:var(--soft); }
.card .label { color:var(--muted); font-size:12px; text-transform:uppercase;
  letter-spacing:.04em; }
.card div + div { font-size:24px; font-weight:600; font-variant-numeric:tabular-nums; }
table.data { border-collapse:collapse; margin:8px 0; font-size:13px;
  font-variant-numeric:tabular-nums; }
table.data th, table.data td { border-bottom:1px solid var(--line); padding:4px 10px; }
table.data thead th { background:var(--soft); text-align:center; font-weight:600;
  vertical-align:bottom; }
table.data tbody th, table.data tfoot th { text-align:left; font-weight:normal;
  white-space:nowrap; }
table.data td { text-align:right; white-space:nowrap; }
table.data tfoot, table.data tfoot th { font-weight:600; }
table.matrix td { min-width:38px; text-align:center; }
.swatch { display:inline-block; width:12px; height:12px; border:1px solid rgba(0,0,0,.35);
  border-radius:2px; margin-right:6px; vertical-align:-1px; }
.code { color:var(--muted); margin-right:2px; font-variant-numeric:tabular-nums; }
figure { margin:10px 0; }
figure img { max-width:100%; height:auto; border:1px solid var(--line); border-radius:4px; }
figcaption { color:var(--muted); font-size:12px; margin-top:4px; }
img.quicklook { image-rendering:pixelated;
  background:repeating-conic-gradient(#eef1f4 0 25%, #fff 0 50%) 0 0/16px 16px; }
.map { display:flex; gap:24px; align-items:flex-start; flex-wrap:wrap; }
.legend { max-height:640px; overflow:auto; }
.pair { display:flex; gap:12px; flex-wrap:wrap; align-items:flex-start; }
.pair figure { flex:1 1 420px; }
.scroll { overflow-x:auto; }
details { border:1px solid var(--line); border-radius:6px; padding:4px 12px; margin:8px 0; }
details > summary { cursor:pointer; font-weight:600; padding:4px 0; }
.track { display:inline-block; width:220px; height:10px; background:var(--soft);
  border-radius:5px; }
.bar { display:block; height:10px; background:var(--accent); border-radius:5px; }
pre.yaml { background:var(--soft); border:1px solid var(--line); border-radius:6px;
  padding:12px; font:12px/1.4 ui-monospace, Menlo, Consolas, monospace;
  max-height:560px; overflow:auto; }
@media print { nav { display:none; } pre.yaml { max-height:none; } details { border:none; } }
"""


def render_report(data: ReportData, generated: dt.datetime | None = None) -> str:
    """Return the HTML document of the report.

    Parameters
    ----------
    data : ReportData
        What the run left, as read by :func:`~sitsmap.report.gather.collect`.
    generated : datetime, optional
        Time shown in the header; now when omitted.

    Returns
    -------
    str
        One self-contained HTML5 document.
    """
    when = (generated or dt.datetime.now()).strftime("%Y-%m-%d %H:%M")
    return render_page(
        f"sitsmap report \u2013 {data.output_dir.name}",
        _header(data, when),
        page_sections(data),
        data,
        _banner(data),
    )


def render_page(
    title: str,
    header: Html,
    page: dict[str, tuple[str, Callable[[Any], Html]]],
    data: Any,
    banner: str = "",
) -> str:
    """Return a self-contained HTML document: header, table of contents, banner, sections.

    Parameters
    ----------
    title : str
        The document's title.
    header : Html
        The page's ``<header>`` (see :func:`page_header`).
    page : dict
        Title and builder of each section, by anchor, in page order; a builder
        takes ``data`` and returns the section.
    data : object
        What the sections show.
    banner : str
        HTML shown above the sections (what is missing), if any.
    """
    sections = [_build(key, heading, build, data) for key, (heading, build) in page.items()]
    body = join([header, _nav(page), tag("main", join([Html(banner), *sections]))])
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"{tag('title', title)}\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def page_header(heading: str, meta: Html) -> Html:
    """The page's ``<header>``: a heading and a line about the run."""
    return tag("header", join([tag("h1", heading), tag("div", meta, class_="meta")]))


def _build(key: str, title: str, build: Callable[[Any], Html], data: Any) -> Html:
    """Build one section; an output whose content cannot be shown only costs its section."""
    try:
        return build(data)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        LOGGER.warning("report: section %r could not be built: %r", key, exc, exc_info=True)
        reason = f"its outputs could not be shown ({type(exc).__name__}: {exc})"
        return tag("section", join([tag("h2", title), missing(reason)]), id=key)


def _header(data: ReportData, when: str) -> Html:
    runs = ", ".join(str(seed) for seed in data.seeds) or "none found"
    meta = Html(
        f"Output directory <code>{esc(data.output_dir)}</code> \u00b7 runs (seeds): {esc(runs)}"
        f" \u00b7 generated {esc(when)} by sitsmap {esc(__version__)}"
    )
    kind = "regression" if data.task == "regression" else "land-cover"
    return page_header(f"sitsmap {kind} report", meta)


def _nav(page: dict[str, tuple[str, Callable[[Any], Html]]]) -> Html:
    links = (tag("a", title, href=f"#{key}") for key, (title, _) in page.items())
    return tag("nav", join(links, ""))


def _banner(data: ReportData) -> Html:
    """What is missing from a partial run, in one box at the top."""
    items = [f"{title}: {reason}" for title, reason in missing_sections(data)] + data.notes
    if not items:
        return Html("")
    listing = tag("ul", join(tag("li", item) for item in items))
    text = tag("strong", "This report is partial: some outputs are not available.")
    return tag("div", join([text, listing]), class_="banner")
