import json
import re
from html.parser import HTMLParser
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import box

from sitsmap.errors import InputDataError
from sitsmap.io.arrays import write_table
from sitsmap.io.raster import RasterGrid, write_raster
from sitsmap.io.vector import write_vector
from sitsmap.nomenclature import Nomenclature
from sitsmap.pipeline.layout import OutputLayout
from sitsmap.report import gather as gather_module
from sitsmap.report import write_report
from sitsmap.report.figures import class_map_rgba
from sitsmap.report.markup import Html, duration, mean_ci, number, table
from sitsmap.report.sections import SECTION_TITLES
from sitsmap.validation.area import area_adjusted_accuracy
from sitsmap.validation.metrics import compute_metrics
from sitsmap.validation.report import results_json

EVIL = '<b>Maize & "Co"</b>'
EVIL_ESCAPED = "&lt;b&gt;Maize &amp; &quot;Co&quot;&lt;/b&gt;"
LABELS = [10, 11, 12]
MATRICES = {
    0: np.array([[30, 2, 1], [3, 25, 0], [0, 4, 35]]),
    1: np.array([[28, 4, 0], [1, 27, 2], [2, 1, 33]]),
}
# step -> task seconds; the report shows their sums per step
TASKS = {
    "init": [0.4],
    "sampling": [3.2, 4.1],
    "learning": [61.0, 62.0],
    "validation": [1.5, 1.5],
}

CONFIG = """\
chain:
  output_path: .
  list_tile: T31TCJ
  s2_path: S2
  ground_truth: ground_truth.shp
  nomenclature_path: nomenclature.txt
  color_table: colorFile.txt
arg_train:
  runs: 2
  random_seed: 0
  deep_learning_parameters:
    dl_name: MLPClassifier
    epochs: 3
"""


def _write_config(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(CONFIG)
    (root / "nomenclature.txt").write_text(f"{EVIL}:10\nGrassland:11\nForest:12\n")
    (root / "colorFile.txt").write_text("10 255 200 0\n11 120 220 80\n12 0 100 0\n")


def _write_split(layout: OutputLayout, seed: int) -> None:
    rows = []
    for pid, (code, side) in enumerate(
        [(10, "learning"), (10, "learning"), (10, "validation"), (11, "learning"),
         (11, "validation"), (11, "validation"), (12, "learning"), (12, "validation")]
    ):  # fmt: skip
        rows.append(
            {"code": code, "split": side, "sitsmap_pid": pid, "geometry": box(pid, 0, pid + 1, 1)}
        )
    frame = gpd.GeoDataFrame(rows, crs="EPSG:2154")
    write_vector(frame, layout.split(seed))


def _write_samples(layout: OutputLayout, seed: int) -> None:
    stats = pd.DataFrame(
        {
            "label": LABELS,
            "name": ["m", "g", "f"],
            "candidates": [90, 80, 70],
            "count": [77, 66, 55],
        }
    )
    write_table(stats, layout.class_statistics(seed))


def _write_history(layout: OutputLayout, seed: int) -> None:
    epochs = np.arange(1, 4)
    history = pd.DataFrame(
        {
            "learning_rate": 0.001,
            "batch_size": 256,
            "epoch": epochs,
            "train_loss": 1.0 / epochs,
            "val_loss": 1.2 / epochs,
            "val_oa": 0.5 + 0.1 * epochs,
            "val_kappa": 0.4 + 0.1 * epochs,
            "val_fscore": [0.5, 0.7, 0.6],
            "seconds": 0.1,
        }
    )
    write_table(history, layout.model_dir(seed) / "history.csv")


def _write_map(layout: OutputLayout, seed: int) -> None:
    classes = np.zeros((20, 20), dtype=np.uint8)
    classes[:, :8], classes[:, 8:14], classes[:, 14:] = 10, 11, 12
    classes[:2, :] = 0  # nodata
    grid = RasterGrid(20, 20, Affine(10, 0, 500000, 0, -10, 6000000), CRS.from_epsg(2154))
    colors = {0: (0, 0, 0), 10: (255, 200, 0), 11: (120, 220, 80), 12: (0, 100, 0)}
    write_raster(layout.final_map(seed), classes, grid, nodata=0, colormap=colors)


def _write_results(layout: OutputLayout) -> dict:
    per_seed = [(seed, compute_metrics(m, LABELS)) for seed, m in MATRICES.items()]
    document = results_json(per_seed)
    for entry, matrix in zip(document["seeds"], MATRICES.values(), strict=True):
        area = area_adjusted_accuracy(matrix, np.array([500, 300, 200]), LABELS, 0.01)
        entry["area_adjusted"] = area.to_dict()
    layout.final.mkdir(parents=True, exist_ok=True)
    (layout.results_json).write_text(json.dumps(document))
    return document


def _write_done(layout: OutputLayout, tasks: dict[str, list[float]]) -> None:
    layout.done.mkdir(parents=True, exist_ok=True)
    start = 1_700_000_000.0
    for step, seconds in tasks.items():
        for index, value in enumerate(seconds):
            record = {"key": f"{step}-{index}", "step": step, "started": start, "seconds": value}
            (layout.done / f"{step}-{index}.json").write_text(json.dumps(record))
            start += value


def _write_crossval(layout: OutputLayout) -> None:
    scores = {"oa": 0.81, "kappa": 0.77, "mean_fscore": 0.74, "per_class": {}}
    folds = [
        {"left_out": "T31<TCJ>", "same_area": scores, "left_out_area": {**scores, "oa": 0.612}},
    ]
    summary = {"same_area": {"oa": {"mean": 0.81, "ci95": 0.0}}}
    directory = layout.root / "crossval"
    directory.mkdir(parents=True)
    (directory / "summary.json").write_text(json.dumps({"folds": folds, "summary": summary}))


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> tuple[Path, dict, str]:
    """A finished two-seed run with deep models, area estimates and a cross-validation."""
    root = tmp_path_factory.mktemp("run")
    layout = OutputLayout(root)
    _write_config(root)
    for seed in MATRICES:
        _write_split(layout, seed)
        _write_samples(layout, seed)
        _write_history(layout, seed)
        _write_map(layout, seed)
    document = _write_results(layout)
    _write_done(layout, TASKS)
    _write_crossval(layout)
    path = write_report(root)
    return path, document, path.read_text(encoding="utf-8")


class _TagChecker(HTMLParser):
    """Records unbalanced tags and every img src/href of a page."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.sources: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "img":
            self.sources.append(attributes.get("src", ""))
        if "href" in attributes:
            self.links.append(attributes["href"])
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def _parse(text: str) -> _TagChecker:
    checker = _TagChecker()
    checker.feed(text)
    return checker


def test_report_is_one_self_contained_file(full_run):
    path, _, text = full_run
    assert path == path.parent / "report.html" and path.is_file()
    assert not list(path.parent.glob(".tmp-*"))
    page = _parse(text)
    assert page.errors == [] and page.stack == []
    assert len(page.sources) >= 8  # map, 2 × 2 curves, 2 confusion, scores
    assert all(src.startswith("data:image/png;base64,") for src in page.sources)
    assert all(link.startswith("#") for link in page.links)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text)
    assert "<script" not in text and "<link" not in text


def test_report_has_every_section(full_run):
    _, _, text = full_run
    for key, title in SECTION_TITLES.items():
        assert f'<section id="{key}"><h2>{title}</h2>' in text
    assert "Not available" not in text
    assert "partial" not in text


def test_report_shows_accuracy_and_escaped_names(full_run):
    _, document, text = full_run
    for entry in document["seeds"]:
        assert f"{entry['oa']:.3f}" in text
    summary = document["summary"]["oa"]
    assert f"{summary['mean']:.3f} \u00b1 {summary['ci95']:.3f}" in text
    assert EVIL_ESCAPED in text
    assert "<b>Maize" not in text
    oa = document["seeds"][0]["area_adjusted"]["overall_accuracy"]
    assert f"{oa['estimate']:.3f} \u00b1 {oa['ci95']:.3f}" in text
    assert "Kept epoch 2 of 3" in text


def test_report_counts_samples_per_class(full_run):
    _, _, text = full_run
    samples = text[text.index('id="samples"') : text.index('id="curves"')]
    rows = re.findall(r"<tr>(.*?)</tr>", samples)
    forest = next(row for row in rows if "Forest" in row)
    # learning polygons, validation polygons, learning pixels, validation pixels (row sum)
    assert re.findall(r"<td>([^<]*)</td>", forest) == ["1", "1", "55", str(MATRICES[0][2].sum())]


def test_report_shows_wall_time_per_step(full_run):
    _, _, text = full_run
    times = text[text.index('id="time"') : text.index('id="config"')]
    assert "7.3 s" in times  # sampling: 3.2 + 4.1
    assert "2 min 03 s" in times  # learning: 61 + 62
    assert "3.0 s" in times  # validation
    assert "No task completed in: preprocessing, split, classification, mosaic" in times


def test_report_shows_configuration_and_crossval(full_run):
    _, _, text = full_run
    config = text[text.index('id="config"') :]
    assert "dl_name: MLPClassifier" in config and "runs: 2" in config
    crossval = text[text.index('id="crossval"') : text.index('id="time"')]
    assert "T31&lt;TCJ&gt;" in crossval and "0.612" in crossval


def test_partial_run_says_what_is_missing(tmp_path):
    layout = OutputLayout(tmp_path)
    _write_config(tmp_path)
    _write_split(layout, 0)
    _write_samples(layout, 0)
    _write_done(layout, {"init": [0.4], "sampling": [2.0]})
    text = write_report(tmp_path).read_text(encoding="utf-8")
    for title in SECTION_TITLES.values():
        assert f"<h2>{title}</h2>" in text
    assert "This report is partial" in text
    assert text.count("Not available:") >= 5
    assert "final/results.json: missing" in text
    assert "final/Classif_Seed_0.tif: missing (has the mosaic step run?)" in text
    assert str(tmp_path) + "/final" not in text
    assert "No task completed in: preprocessing, split, learning" in text
    assert ">77<" in text  # learning pixels of the first class still reported


def test_empty_directory_still_gets_a_page(tmp_path):
    text = write_report(tmp_path).read_text(encoding="utf-8")
    assert text.count("Not available:") == len(SECTION_TITLES)
    assert "configuration not available" in text


def test_quicklook_is_decimated(full_run, monkeypatch):
    monkeypatch.setattr(gather_module, "QUICKLOOK_SIZE", 8)
    data = gather_module.collect(full_run[0].parent)
    assert data.class_map.full_shape == (20, 20)
    assert data.class_map.classes.shape == (8, 8)
    assert set(np.unique(data.class_map.classes).tolist()) <= {0, 10, 11, 12}


def test_class_map_colours_and_transparent_nodata():
    nomenclature = Nomenclature(names={5: "a"}, colors={5: (1, 2, 3)})
    rgba = class_map_rgba(np.array([[0, 5], [7, 5]], dtype=np.uint8), nomenclature, nodata=0)
    assert rgba.dtype == np.uint8 and rgba.shape == (2, 2, 4)
    assert rgba[0, 0, 3] == 0
    assert rgba[0, 1].tolist() == [1, 2, 3, 255]
    assert rgba[1, 0].tolist() == [128, 128, 128, 255]  # no colour: grey


def test_markup_escapes_and_formats():
    html = table(["<h>"], [["<x>", Html("<i>ok</i>"), ("5", {"style": 'a"b'})]])
    assert "&lt;h&gt;" in html and "&lt;x&gt;" in html and "<i>ok</i>" in html
    assert 'style="a&quot;b"' in html
    assert mean_ci({"mean": 0.91234, "ci95": 0.0123}, runs=3) == "0.912 \u00b1 0.012"
    assert mean_ci({"mean": 0.91234, "ci95": 0.0}, runs=1) == "0.912"
    assert mean_ci({"estimate": None, "ci95": None}) == "\u2013"
    assert number(np.float32("nan")) == "\u2013" and number(np.int64(2), 1) == "2.0"
    assert duration(12.34) == "12.3 s"
    assert duration(3725) == "1 h 02 min"


def test_malformed_output_costs_only_its_section(tmp_path):
    layout = OutputLayout(tmp_path)
    _write_config(tmp_path)
    _write_results(layout)
    (tmp_path / "crossval").mkdir()
    (tmp_path / "crossval" / "summary.json").write_text('{"folds": "oops"}')
    text = write_report(tmp_path).read_text(encoding="utf-8")
    crossval = text[text.index('id="crossval"') : text.index('id="time"')]
    assert "could not be shown" in crossval
    assert "Not available" not in text[text.index('id="confusion"') : text.index('id="area"')]


def test_classical_model_has_no_learning_curves(tmp_path):
    _write_config(tmp_path)
    config = (tmp_path / "config.yaml").read_text()
    head = config[: config.index("  deep_learning_parameters")]
    (tmp_path / "config.yaml").write_text(head + "  classifier: lightgbm\n")
    text = write_report(tmp_path).read_text(encoding="utf-8")
    curves = text[text.index('id="curves"') : text.index('id="confusion"')]
    assert curves.count("Not available") == 1
    assert "the classifier (lightgbm) is not a deep model" in curves


def test_missing_output_directory_is_an_error(tmp_path):
    with pytest.raises(InputDataError, match="not a directory"):
        write_report(tmp_path / "typo")
    assert not (tmp_path / "typo").exists()
