"""Map validation: confusion matrix, accuracy metrics, area-adjusted accuracy, reports.

Confusion matrices follow iota2's convention: rows = reference, columns = production.
"""

from sitsmap.validation.area import AreaAdjusted, area_adjusted_accuracy
from sitsmap.validation.figures import confusion_figure
from sitsmap.validation.metrics import (
    ClassificationMetrics,
    compute_metrics,
    confusion_matrix,
    summarise_runs,
)
from sitsmap.validation.reference import reference_and_production
from sitsmap.validation.report import results_json, results_txt

__all__ = [
    "AreaAdjusted",
    "ClassificationMetrics",
    "area_adjusted_accuracy",
    "compute_metrics",
    "confusion_figure",
    "confusion_matrix",
    "reference_and_production",
    "results_json",
    "results_txt",
    "summarise_runs",
]
