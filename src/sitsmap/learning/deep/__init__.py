"""PyTorch networks for pixel time series and their trainer (scikit-learn face)."""

from sitsmap.learning.deep.history import plot_history
from sitsmap.learning.deep.models import LTAE, NETWORKS, MLPClassifier, TempCNN, build_network
from sitsmap.learning.deep.trainer import DeepClassifier, select_device

__all__ = [
    "LTAE",
    "NETWORKS",
    "DeepClassifier",
    "MLPClassifier",
    "TempCNN",
    "build_network",
    "plot_history",
    "select_device",
]
