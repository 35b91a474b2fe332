"""PyTorch networks for pixel time series and their trainer (scikit-learn face).

:mod:`~sitsmap.learning.deep.models` (MLP, TempCNN, L-TAE, Transformer),
:mod:`~sitsmap.learning.deep.trainer` (``DeepClassifier`` and the training loop it
shares with :mod:`~sitsmap.learning.deep.regressor`'s ``DeepRegressor``),
:mod:`~sitsmap.learning.deep.augment` (jitter, date dropout, time shifts) and
:mod:`~sitsmap.learning.deep.history` (learning curves, without torch).
"""
