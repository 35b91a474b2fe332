"""numba kernels of :mod:`sitsmap.learning.compiled`: walk flattened trees, rows interleaved.

Each kernel takes a block of rows and walks every tree for each row of the block,
several rows at once (four for a forest's deep trees, the whole block level by level
for LightGBM's small ones) and without branches on the data, so that the CPU waits on
several memory reads at once and never mispredicts a split. It sums the leaf values
in float64 in the trees' order, as scikit-learn and LightGBM do.

Node ``n`` (``nodes[n] = (feature | flags << 28, first child)``, its two children
side by side) sends a row to its second child when its feature is above
``threshold[n]``: the float64 threshold rounded down to float32, which splits float32
features exactly as the float64 one does. NaN goes the way the node's flags say, and,
for LightGBM, features within 1e-35 of 0 are 0 (and go the NaN way at a ``Zero``
missing-type node). A leaf sends every row to ``-1 - leaf``, which ends the walk.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

LIGHTGBM_ZERO = np.float32(1e-35)
FEATURE_BITS = 28
FEATURE_MASK = (1 << FEATURE_BITS) - 1
SIGMOID = 2


@njit(cache=True, nogil=True, inline="always")
def _forest_step(X, i, node, nodes, threshold):  # noqa: D103
    meta = nodes[node, 0]
    x = X[i, meta & FEATURE_MASK]
    # second child when above the threshold, or NaN at a node that sends NaN there
    go = np.int32(x > threshold[node]) | (np.int32(x != x) & (meta >> FEATURE_BITS))
    return nodes[node, 1] + go


@njit(cache=True, nogil=True, inline="always")
def _boosted_step(X, i, node, nodes, threshold):  # noqa: D103
    meta = nodes[node, 0]
    flags = meta >> FEATURE_BITS
    x = X[i, meta & FEATURE_MASK]
    tiny = np.int32(abs(x) <= LIGHTGBM_ZERO)  # read as 0 by LightGBM
    zero = (flags >> 1) & tiny  # a Zero missing-type node: 0 goes the NaN way
    above = np.int32(x * np.float32(1 - tiny) > threshold[node])
    go = (above & (1 - zero)) | ((np.int32(x != x) | zero) & flags & 1)
    return nodes[node, 1] + go


@njit(cache=True, nogil=True, inline="always")
def _forest_walk(X, start, stop, root, nodes, threshold, leaves):  # noqa: D103
    """Leaf of each row of ``X[start:stop]`` in the tree at ``root``, into ``leaves``."""
    i = start
    while i + 4 <= stop:
        a = root
        b = root
        c = root
        d = root
        while (a >= 0) | (b >= 0) | (c >= 0) | (d >= 0):
            if a >= 0:
                a = _forest_step(X, i, a, nodes, threshold)
            if b >= 0:
                b = _forest_step(X, i + 1, b, nodes, threshold)
            if c >= 0:
                c = _forest_step(X, i + 2, c, nodes, threshold)
            if d >= 0:
                d = _forest_step(X, i + 3, d, nodes, threshold)
        leaves[i - start] = -1 - a
        leaves[i - start + 1] = -1 - b
        leaves[i - start + 2] = -1 - c
        leaves[i - start + 3] = -1 - d
        i += 4
    while i < stop:
        node = root
        while node >= 0:
            node = _forest_step(X, i, node, nodes, threshold)
        leaves[i - start] = -1 - node
        i += 1


@njit(cache=True, nogil=True, inline="always")
def _boosted_walk(X, start, stop, root, nodes, threshold, leaves):  # noqa: D103
    """Leaf of each row, LightGBM's missing values; the block's rows step level by level.

    LightGBM's trees are small and lopsided: the whole block keeps the CPU busy where
    four rows would wait for the deepest.
    """
    count = stop - start
    for r in range(count):
        leaves[r] = root
    active = count
    while active > 0:
        active = 0
        for r in range(count):
            node = leaves[r]
            if node >= 0:
                node = _boosted_step(X, start + r, node, nodes, threshold)
                leaves[r] = node
                active += node >= 0
    for r in range(count):
        leaves[r] = -1 - leaves[r]


@njit(cache=True, nogil=True)
def forest_proba(X, nodes, threshold, roots, leaf_start, leaf_class, values, out, block):
    """Mean of the trees' leaf class fractions (scikit-learn's forest ``predict_proba``).

    A leaf's fractions are its non-zero ones (``values[leaf_start[j]:leaf_start[j + 1]]``,
    columns ``leaf_class``): adding the zeros would not change a sum.
    """
    n = X.shape[0]
    n_classes = out.shape[1]
    n_trees = roots.size
    acc = np.zeros((block, n_classes))
    leaves = np.zeros(block, dtype=np.int64)
    for start in range(0, n, block):
        stop = min(start + block, n)
        acc[:, :] = 0.0
        for t in range(n_trees):
            _forest_walk(X, start, stop, roots[t], nodes, threshold, leaves)
            for r in range(stop - start):
                leaf = leaves[r]
                for e in range(leaf_start[leaf], leaf_start[leaf + 1]):
                    acc[r, leaf_class[e]] += values[e]
        for r in range(stop - start):
            for k in range(n_classes):
                out[start + r, k] = acc[r, k] / n_trees


@njit(cache=True, nogil=True)
def boosted_proba(X, nodes, threshold, roots, values, tree_class, output, sigmoid, out, block):
    """LightGBM's probabilities: per-class sums of leaf scores, then softmax or sigmoid."""
    n = X.shape[0]
    n_classes = out.shape[1]
    n_trees = roots.size
    acc = np.zeros((block, n_classes))
    leaves = np.zeros(block, dtype=np.int64)
    for start in range(0, n, block):
        stop = min(start + block, n)
        acc[:, :] = 0.0
        for t in range(n_trees):
            k = tree_class[t]
            _boosted_walk(X, start, stop, roots[t], nodes, threshold, leaves)
            for r in range(stop - start):
                acc[r, k] += values[leaves[r]]
        for r in range(stop - start):
            if output == SIGMOID:
                p = 1.0 / (1.0 + math.exp(-sigmoid * acc[r, 0]))
                out[start + r, 0] = 1.0 - p
                out[start + r, 1] = p
            else:  # LightGBM's Softmax (common.h), in its order
                wmax = acc[r, 0]
                for k in range(1, n_classes):
                    wmax = max(acc[r, k], wmax)
                wsum = 0.0
                for k in range(n_classes):
                    acc[r, k] = math.exp(acc[r, k] - wmax)
                    wsum += acc[r, k]
                for k in range(n_classes):
                    out[start + r, k] = acc[r, k] / wsum
