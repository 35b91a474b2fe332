"""Classifiers (random forest, LightGBM, PyTorch networks) and their model files."""

from sitsmap.learning.classical import ClassifierProtocol, make_classifier
from sitsmap.learning.deep import DeepClassifier, plot_history
from sitsmap.learning.persistence import ModelMetadata, load_model, save_model

__all__ = [
    "ClassifierProtocol",
    "DeepClassifier",
    "ModelMetadata",
    "load_model",
    "make_classifier",
    "plot_history",
    "save_model",
]
