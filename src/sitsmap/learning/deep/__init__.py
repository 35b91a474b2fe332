"""PyTorch networks for pixel time series and their trainer (scikit-learn face).

:mod:`~sitsmap.learning.deep.models` (MLP, TempCNN, L-TAE),
:mod:`~sitsmap.learning.deep.trainer` (``DeepClassifier``) and
:mod:`~sitsmap.learning.deep.history` (learning curves, without torch).
"""
