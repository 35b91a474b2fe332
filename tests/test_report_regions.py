"""The report's eco-regions section, on real runs of a two-region synthetic world.

A run with ``chain.region_path`` gets an "Eco-regions" section (per-region table,
per-class F-score and support, the region map); a run without regions gets the
report it always had; missing or damaged region files cost a note, not the page.
"""

import base64
import datetime as dt
import io
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import rasterio
from matplotlib.image import imread

from sitsmap.config import load_config
from sitsmap.pipeline.run import run_chain
from sitsmap.report import write_report
from sitsmap.report.sections import SECTION_TITLES

pytestmark = pytest.mark.slow

TILES = ["T31TCJ", "T31TDJ"]
FAST = (
    "scheduling.scheduler=synchronous",
    "arg_train.sample_selection={sampler: periodic, strategy: constant, strategy.constant.nb: 100}",
)
SECTION = '<section id="regions"><h2>Eco-regions</h2>'
MAP_ALT = "map of the eco-regions"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    from sitsmap.synth import generate_world

    out = tmp_path_factory.mktemp("regions_report_world")
    generate_world(
        out, TILES, size=64, start=dt.date(2018, 4, 1), end=dt.date(2018, 9, 30), regions=2
    )
    return out


def _run(world: Path, output: Path, *extra: str) -> Path:
    config = load_config(world / "config.yaml", [f"chain.output_path={output}", *FAST, *extra])
    run_chain(config)
    return output


@pytest.fixture(scope="module")
def regional(world, tmp_path_factory) -> Path:
    """A two-seed run with one model per region."""
    return _run(world, tmp_path_factory.mktemp("regional"), "arg_train.runs=2")


@pytest.fixture(scope="module")
def plain(world, tmp_path_factory) -> Path:
    """The same world without regions."""
    return _run(world, tmp_path_factory.mktemp("plain"), "chain.region_path=null")


def _report(output: Path) -> str:
    return write_report(output).read_text(encoding="utf-8")


def _section(text: str) -> str:
    start = text.index(SECTION)
    return text[start : text.index("</section>", start)]


def _results(output: Path) -> dict:
    return json.loads((output / "final" / "results.json").read_text())


class _Balance(HTMLParser):
    """Unbalanced end tags of a page (void elements excepted)."""

    VOID = {"meta", "img", "br"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def test_a_run_with_regions_has_the_section(regional):
    text = _report(regional)
    assert text.count(SECTION) == 1
    assert '<a href="#regions">Eco-regions</a>' in text
    # after the area-adjusted accuracy, before the cross-validation
    assert text.index('id="area"') < text.index(SECTION) < text.index('id="crossval"')
    checker = _Balance()
    checker.feed(text)
    assert checker.errors == [] and checker.stack == []
    assert "This report is partial" not in text


def test_each_region_shows_its_accuracy_and_model(regional):
    section = _section(_report(regional))
    regions = _results(regional)["regions"]
    assert sorted(regions) == ["r1", "r2"]
    rows = re.findall(r"<tr><th>(.*?)</tr>", section)
    for region, entry in regions.items():
        row = next(row for row in rows if re.search(rf"</span>{region}</th>", row))
        oa = entry["summary"]["oa"]
        assert f"{oa['mean']:.3f} \u00b1 {oa['ci95']:.3f}" in row  # two runs: mean ± ci
        fscore = entry["summary"]["mean_fscore"]
        assert f"{fscore['mean']:.3f} \u00b1 {fscore['ci95']:.3f}" in row
        pixels = sum(np.asarray(seed["confusion"]).sum() for seed in entry["seeds"])
        assert f"<td>{pixels:,}</td>".replace(",", "\u202f") in row
        models = entry["models"]
        samples = {model["samples"] for model in models.values()}
        if len(samples) == 1:
            assert f"<td>{samples.pop():,}</td>".replace(",", "\u202f") in row
        for model in models.values():
            for code in model["missing_classes"]:
                assert re.search(rf"\b{code} ", row)
        assert "<td>none</td>" in row  # every region had samples: no fallback
    assert "Whole map (all regions)" in section


def test_per_class_fscore_and_support_per_region(regional):
    section = _section(_report(regional))
    regions = _results(regional)["regions"]
    for region in regions:
        assert f"{region}<br>F-score" in section
        assert f"{region}<br>Validation pixels" in section
    rows = re.findall(r'<tr><th><span class="swatch"[^>]*></span><span class="code">(\d+)</span>'
                      r"(.*?)</tr>", section)  # fmt: skip
    cells = {int(code): re.findall(r"<td>([^<]*)</td>", row) for code, row in rows}
    for column, entry in enumerate(regions.values()):
        for code, scores in entry["summary"]["per_class"].items():
            support = sum(
                seed["per_class"].get(code, {}).get("support", 0) for seed in entry["seeds"]
            )
            if support:
                fscore, pixels = cells[int(code)][2 * column : 2 * column + 2]
                mean = scores["fscore"]["mean"]
                assert fscore.startswith(f"{mean:.3f}")
                assert pixels == f"{support:,}".replace(",", "\u202f")


def test_the_region_map_is_embedded_with_its_colours(regional):
    section = _section(_report(regional))
    found = re.search(rf'<img src="data:image/png;base64,([^"]+)" alt="{MAP_ALT}"', section)
    assert found
    image = imread(io.BytesIO(base64.b64decode(found.group(1))), format="png")
    rgb = {tuple(int(v) for v in px) for px in (image[..., :3] * 255).round().reshape(-1, 3)}
    with rasterio.open(regional / "final" / "Regions.tif") as src:
        table = src.colormap(1)
        assert src.width > 0
    for number in (1, 2):
        assert tuple(table[number][:3]) in rgb
    assert "Regions.tif:" in section


def test_a_run_without_regions_has_no_such_section(plain):
    text = _report(plain)
    assert 'id="regions"' not in text and "Eco-regions" not in text
    nav = re.search(r"<nav>(.*?)</nav>", text).group(1)
    assert re.findall(r'href="#(\w+)"', nav) == list(SECTION_TITLES)
    assert "regions" not in _results(plain)


def test_missing_region_files_cost_a_note(regional, tmp_path):
    damaged = tmp_path / "damaged"
    shutil.copytree(regional, damaged)
    (damaged / "final" / "Regions.tif").unlink()
    (damaged / "init" / "regions.gpkg").write_bytes(b"not a geopackage")
    text = _report(damaged)
    section = _section(text)
    assert "Not available:</strong> final/Regions.tif: missing" in section
    assert "This report is partial" in text and "Eco-regions: final/Regions.tif" in text
    oa = _results(regional)["regions"]["r2"]["summary"]["oa"]
    assert f"{oa['mean']:.3f} \u00b1 {oa['ci95']:.3f}" in section  # the table is still there
    assert MAP_ALT not in section


def test_a_region_without_validation_still_shows_its_model(regional, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(regional, partial)
    results = _results(partial)
    dropped = results["regions"].pop("r1")
    (partial / "final" / "results.json").write_text(json.dumps(results))
    section = _section(_report(partial))
    row = next(row for row in re.findall(r"<tr><th>(.*?)</tr>", section) if "</span>r1<" in row)
    assert "no validation pixel" in row
    samples = dropped["models"]["0"]["samples"]
    assert f"{samples:,}".replace(",", "\u202f") in row  # read back from region.json
    assert MAP_ALT in section


def test_results_without_regions_entry_say_so(regional, tmp_path):
    older = tmp_path / "older"
    shutil.copytree(regional, older)
    results = _results(older)
    del results["regions"]
    (older / "final" / "results.json").write_text(json.dumps(results))
    (older / "init" / "regions.gpkg").unlink()
    section = _section(_report(older))
    assert "holds no per-region accuracy" in section
    assert MAP_ALT in section  # the map still has its legend, by region number
    assert "Region ids not available: init/regions.gpkg: missing" in section
