"""Quantile bins of a regression target: the strata of the split, the sampling and the scores.

In regression the chain treats each bin of the target as classification treats
a class: the split is stratified on bins, the sample selection strategies apply
per bin (``constant`` = that many pixels per bin), and the validation reports
errors per bin. Pure functions on arrays.
"""

from __future__ import annotations

import numpy as np

__all__ = ["REGRESSION_NODATA", "bin_edges", "bin_of"]

REGRESSION_NODATA = -9999.0
"""No-data value of the float32 regression and regression-uncertainty maps."""


def bin_edges(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Edges of ``n_bins`` quantile bins of ``values`` (duplicate edges merged).

    Parameters
    ----------
    values : numpy.ndarray
        The target, one value per polygon (finite).
    n_bins : int
        Bins wanted; fewer when the values have fewer distinct quantiles.

    Returns
    -------
    numpy.ndarray
        Increasing float64 edges, ``len >= 2``: bin ``k`` holds
        ``edges[k] <= v < edges[k + 1]`` (the last bin includes its upper edge).
    """
    values = np.asarray(values, dtype=np.float64)
    # edges are values of the data (no interpolation), so that ties merge into one bin
    levels = np.linspace(0.0, 1.0, n_bins + 1)
    edges = np.unique(np.quantile(values, levels, method="inverted_cdf"))
    if edges.size < 2:  # a constant target: one bin (the config check refuses it earlier)
        edges = np.array([edges[0], edges[0]], dtype=np.float64)
    return edges


def bin_of(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The bin number (0 … len(edges) - 2) of each value; values beyond the edges clipped.

    Parameters
    ----------
    values : numpy.ndarray
        Target values.
    edges : numpy.ndarray
        From :func:`bin_edges`.

    Returns
    -------
    numpy.ndarray
        int32 bin numbers, the shape of ``values``.
    """
    inner = np.asarray(edges, dtype=np.float64)[1:-1]
    return np.searchsorted(inner, np.asarray(values, dtype=np.float64), side="right").astype(
        np.int32
    )
