import io
import json
import math

import numpy as np
import pytest
from matplotlib.figure import Figure

from sitsmap.nomenclature import Nomenclature
from sitsmap.validation.figures import confusion_figure
from sitsmap.validation.metrics import compute_metrics, summarise_runs
from sitsmap.validation.report import results_json, results_txt

LABELS = [11, 12, 31]
NOMENCLATURE = Nomenclature(
    names={11: "Urbain dense", 12: "Cultures ete", 31: "Forets feuillus"},
    colors={11: (255, 0, 255), 12: (255, 85, 0), 31: (0, 150, 0)},
)
MATRICES = [
    np.array([[50, 5, 0], [4, 40, 6], [0, 3, 60]]),
    np.array([[48, 6, 1], [5, 42, 3], [1, 2, 58]]),
    np.array([[52, 2, 1], [2, 45, 3], [0, 4, 61]]),
]


@pytest.fixture
def runs():
    return [(seed, compute_metrics(matrix, LABELS)) for seed, matrix in enumerate(MATRICES)]


def test_results_json_schema_one_seed(runs):
    report = results_json(runs[:1])
    assert set(report) == {"seeds", "summary"}
    (entry,) = report["seeds"]
    assert set(entry) == {
        "seed", "oa", "kappa", "mean_fscore", "per_class", "confusion", "labels",
    }  # fmt: skip
    assert entry["seed"] == 0
    assert entry["labels"] == LABELS
    assert entry["confusion"] == MATRICES[0].tolist()
    assert set(entry["per_class"]) == {"11", "12", "31"}
    assert set(entry["per_class"]["12"]) == {"precision", "recall", "fscore", "support"}
    assert entry["per_class"]["12"]["support"] == 50
    assert entry["oa"] == pytest.approx(150 / 168)
    summary = report["summary"]
    assert set(summary) == {"oa", "kappa", "mean_fscore", "per_class"}
    assert summary["oa"] == {"mean": pytest.approx(150 / 168), "ci95": 0.0}
    assert set(summary["per_class"]["31"]) == {"precision", "recall", "fscore"}
    assert set(summary["per_class"]["31"]["fscore"]) == {"mean", "ci95"}


def test_results_json_three_seeds_is_serialisable(runs):
    report = results_json(runs, extra={"area_adjusted": {"labels": LABELS}})
    text = json.dumps(report, allow_nan=False)
    back = json.loads(text)
    assert [entry["seed"] for entry in back["seeds"]] == [0, 1, 2]
    assert back["area_adjusted"] == {"labels": LABELS}
    mean, half_width = summarise_runs([metrics.kappa for _, metrics in runs])
    assert back["summary"]["kappa"]["mean"] == pytest.approx(mean)
    assert back["summary"]["kappa"]["ci95"] == pytest.approx(half_width)
    assert half_width > 0
    fscores = [metrics.fscore[12] for _, metrics in runs]
    assert back["summary"]["per_class"]["12"]["fscore"]["mean"] == pytest.approx(np.mean(fscores))


def test_results_json_refuses_to_overwrite_its_own_keys(runs):
    with pytest.raises(ValueError, match="summary"):
        results_json(runs, extra={"summary": {}})


def test_results_json_writes_nan_as_null():
    empty = compute_metrics(np.zeros((2, 2), dtype=int), [1, 2])
    report = results_json([(0, empty)])
    json.dumps(report, allow_nan=False)
    assert report["seeds"][0]["kappa"] is None
    assert report["summary"]["oa"] == {"mean": None, "ci95": None}


def test_results_txt_one_seed(runs):
    text = results_txt(runs[:1], NOMENCLATURE)
    lines = text.splitlines()
    assert lines[:3] == ["#row = reference", "#col = production", ""]
    assert "*********** Matrice de confusion ***********" in lines
    metrics = runs[0][1]
    assert f"KAPPA : {metrics.kappa:.3f}" in lines
    assert f"OA : {metrics.oa:.3f}" in lines
    header = next(line for line in lines if line.strip().startswith("Classes"))
    assert [cell.strip() for cell in header.split("|")] == [
        "Classes", "Precision mean", "Rappel mean", "F-score mean", "Confusion max",
    ]  # fmt: skip
    row = next(line for line in lines if line.strip().startswith("Cultures ete"))
    cells = [cell.strip() for cell in row.split("|")]
    assert cells[1:4] == [
        f"{metrics.precision[12]:.3f}",
        f"{metrics.recall[12]:.3f}",
        f"{metrics.fscore[12]:.3f}",
    ]
    assert cells[4] == "Cultures ete, Forets feuillus, Urbain dense"  # 40, 6, 4
    matrix_row = next(line for line in lines if line.strip().startswith("12 "))
    assert [cell.strip() for cell in matrix_row.split("|")] == ["12", "4", "40", "6", "12"]


def test_results_txt_three_seeds_mean_plus_minus(runs):
    text = results_txt(runs, NOMENCLATURE)
    for seed in range(3):
        assert f"*********** Matrice de confusion (seed {seed}) ***********" in text
    kappa_mean, kappa_ci = summarise_runs([m.kappa for _, m in runs])
    oa_mean, oa_ci = summarise_runs([m.oa for _, m in runs])
    assert f"KAPPA : {kappa_mean:.3f} +- {kappa_ci:.3f}\n" in text
    assert f"OA : {oa_mean:.3f} +- {oa_ci:.3f}\n" in text
    f_mean, f_ci = summarise_runs([m.fscore[31] for _, m in runs])
    forest = next(line for line in text.splitlines() if line.strip().startswith("Forets"))
    assert forest.split("|")[3].strip() == f"{f_mean:.3f} +- {f_ci:.3f}"


def test_confusion_figure_builds(runs):
    figure = confusion_figure(runs[0][1], NOMENCLATURE)
    assert isinstance(figure, Figure)
    labels = [tick.get_text() for tick in figure.axes[0].get_yticklabels()]
    assert labels == ["11 Urbain dense", "12 Cultures ete", "31 Forets feuillus"]
    counts = {text.get_text() for text in figure.axes[0].texts}
    assert {"50", "40", "60", "6"} <= counts
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=50)
    assert buffer.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not math.isnan(runs[0][1].kappa)
