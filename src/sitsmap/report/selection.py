"""The model selection section: every candidate's cross-validated scores, and the one kept.

Only a run whose ``arg_train.model_selection`` lists candidates has this section;
the page shows it after the learning curves (see
:func:`sitsmap.report.sections.page_sections`).
"""

from __future__ import annotations

from typing import Any

from sitsmap.report.gather import Missing, ReportData
from sitsmap.report.markup import Html, details, join, missing, number, table, tag

__all__ = ["SELECTION_KEY", "SELECTION_TITLE", "selection_section"]

SELECTION_KEY = "model-selection"
"""Anchor of the section."""

SELECTION_TITLE = "Model selection"
"""Heading of the section."""

_SCORES = (("oa", "OA"), ("kappa", "Kappa"), ("mean_fscore", "Mean F-score"))

_REGRESSION_SCORES = (("rmse", "RMSE"), ("mae", "MAE"), ("r2", "R\u00b2"))
"""The scores of a regression's candidates (a document with ``"task": "regression"``)."""

_WRAP = {"style": "white-space:normal;text-align:left;min-width:14em"}
"""Attributes of a cell holding text (an error)."""


def selection_section(data: ReportData) -> Html:
    """One table per model (run, region): each candidate's mean ± std over the folds."""
    heading = tag("h2", SELECTION_TITLE)
    documents = data.model_selection
    if documents is None:
        return Html("")
    if isinstance(documents, Missing):
        return tag("section", join([heading, missing(documents.reason)]), id=SELECTION_KEY)
    blocks = [(_title(document), _block(document)) for document in documents]
    if len(blocks) == 1:
        body = join([tag("p", tag("strong", blocks[0][0])), blocks[0][1]])
    else:
        body = join(
            details(title, block, is_open=i == 0) for i, (title, block) in enumerate(blocks)
        )
    return tag("section", join([heading, _note(documents), body]), id=SELECTION_KEY)


def _note(documents: list[dict[str, Any]]) -> Html:
    criterion = documents[0].get("criterion", "fscore") if documents else "fscore"
    regression = bool(documents) and _is_regression(documents[0])
    lowest = regression and documents[0].get("lower_is_better", criterion != "r2")
    strata = "by bin of the target" if regression else "by class"
    text = (
        "Each candidate learnt on k \u2212 1 folds of the learning polygons and was scored on "
        "the fold held out (grouped k-fold: a polygon's pixels are never on both sides; folds "
        f"stratified {strata} and shuffled with the run's seed). Mean \u00b1 standard deviation "
        f"over the folds; the candidate with the {'lowest' if lowest else 'highest'} "
        f"{_label(criterion, regression)} averaged over the folds was kept (ties: the first "
        "listed) and trained on every learning sample."
    )
    return tag("p", text, class_="note")


def _title(document: dict[str, Any]) -> str:
    region = f", region {document['region']}" if document.get("region") else ""
    return f"Run seed {document.get('seed', '?')}{region}: kept {document.get('kept', '?')}"


def _is_regression(document: dict[str, Any]) -> bool:
    return document.get("task") == "regression"


def _block(document: dict[str, Any]) -> Html:
    score = document.get("score", "mean_fscore")
    scores = _REGRESSION_SCORES if _is_regression(document) else _SCORES
    head = [
        "Candidate",
        "Learner",
        *(f"{label} (criterion)" if key == score else label for key, label in scores),
        "Kept",
    ]
    rows = []
    for index, candidate in enumerate(document.get("candidates", [])):
        kept = index == document.get("kept_index")
        if candidate.get("error"):
            cells: list[Any] = [
                ("failed: " + str(candidate["error"]), {**_WRAP, "colspan": len(scores)})
            ]
        else:
            cells = [_mean_std(candidate.get(key), key == score) for key, _ in scores]
        name = tag("strong", candidate["name"]) if kept else candidate["name"]
        rows.append([name, candidate.get("learner", ""), *cells, "\u2713" if kept else ""])
    sizes = document.get("fold_sizes") or []
    folds = document.get("folds", len(sizes))
    text = f"{folds} folds"
    if sizes:
        polygons = sorted(size["polygons"] for size in sizes)
        text += f" of {polygons[0]}\u2013{polygons[-1]} polygons held out each"
    if document.get("requested_folds") not in (None, folds):
        text += f" ({document['requested_folds']} asked for)"
    parts = [table(head, rows), tag("p", text + ".", class_="note")]
    if document.get("note"):
        parts.append(tag("p", document["note"], class_="note"))
    return join(parts)


def _mean_std(entry: dict[str, Any] | None, strong: bool) -> Any:
    if not entry or entry.get("mean") is None:
        return number(None)
    text = f"{number(entry['mean'])} \u00b1 {number(entry.get('std'))}"
    return tag("strong", text) if strong else text


def _label(criterion: str, regression: bool = False) -> str:
    if regression and criterion == "fscore":  # the configuration's default means rmse there
        criterion = "rmse"
    labels = {
        "fscore": "mean F-score",
        "oa": "overall accuracy",
        "kappa": "kappa",
        "rmse": "RMSE",
        "r2": "R\u00b2",
    }
    return labels.get(criterion, criterion)
