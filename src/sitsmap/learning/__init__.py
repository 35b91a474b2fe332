"""Classifiers (random forest, LightGBM, PyTorch networks) and their model files.

:mod:`~sitsmap.learning.classical` (scikit-learn and LightGBM),
:mod:`~sitsmap.learning.deep` (PyTorch) and :mod:`~sitsmap.learning.persistence`
(model files). Nothing is imported here: torch, scikit-learn and LightGBM take about
2.5 s to import, and a process that only plans the chain (or draws its report) needs
none of them.
"""
