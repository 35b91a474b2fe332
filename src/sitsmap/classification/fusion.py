"""Fusion of several runs' class maps by majority voting (pure, window by window)."""

from __future__ import annotations

import numpy as np


def majority_vote(maps: np.ndarray, nodata: int, undecided: int) -> np.ndarray:
    """Most frequent class of each pixel over the runs.

    Parameters
    ----------
    maps : numpy.ndarray
        ``(runs, rows, cols)`` class codes of the same window in every run.
    nodata : int
        No-data code: it never wins a vote; a pixel with no data in any run stays no-data.
    undecided : int
        Code of pixels where two or more classes tie for the most votes.

    Returns
    -------
    numpy.ndarray
        ``(rows, cols)`` fused codes, in a type that holds ``undecided``.
    """
    dtype = np.promote_types(maps.dtype, np.min_scalar_type(undecided))
    best = np.full(maps.shape[1:], nodata, dtype=dtype)
    best_votes = np.zeros(maps.shape[1:], dtype=np.int32)
    tied = np.zeros(maps.shape[1:], dtype=bool)
    for code in np.unique(maps):
        if code == nodata:
            continue
        votes = (maps == code).sum(axis=0, dtype=np.int32)
        wins = votes > best_votes
        tied = np.where(wins, False, tied | ((votes == best_votes) & (votes > 0)))
        best = np.where(wins, code, best)
        best_votes = np.maximum(votes, best_votes)
    best[tied] = undecided
    return best
