"""numba kernels of :mod:`sitsmap.learning.compiled`: walk flattened trees, rows interleaved.

Each kernel takes a block of rows and walks every tree for each row of the block,
several rows at once (sixteen for a forest's deep trees, the whole block level by level
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
    # X's values within 1e-35 of 0 are 0 already (_lightgbm_zeros)
    meta = nodes[node, 0]
    flags = meta >> FEATURE_BITS
    x = X[i, meta & FEATURE_MASK]
    zero = (flags >> 1) & np.int32(x == 0)  # a Zero missing-type node: 0 goes the NaN way
    go = (np.int32(x > threshold[node]) & (1 - zero)) | ((np.int32(x != x) | zero) & flags & 1)
    return nodes[node, 1] + go


@njit(cache=True, nogil=True, inline="always")
def _forest_walk(X, start, stop, root, nodes, threshold, leaves):  # noqa: D103
    """Leaf of each row of ``X[start:stop]`` in the tree at ``root``, into ``leaves``.

    Sixteen rows at a time, written out as scalars (the same ``if`` in an inlined
    helper measured 4 times slower). Each step of a deep tree waits on cache misses:
    sixteen walks in flight measured 1.2 (the benchmark's 762 000-node forest) to 1.8
    times faster than four; eight 1.2 to 1.4; twenty-four and thirty-two, or giving a
    finished walk's place to the next row at once, no faster than sixteen.
    """
    i = start
    while i + 16 <= stop:
        r0, r1, r2, r3 = root, root, root, root
        r4, r5, r6, r7 = root, root, root, root
        r8, r9, r10, r11 = root, root, root, root
        r12, r13, r14, r15 = root, root, root, root
        # a walk ends at a leaf, negative: the AND of all is negative once all have ended
        while (
            r0 & r1 & r2 & r3 & r4 & r5 & r6 & r7 & r8 & r9 & r10 & r11 & r12 & r13 & r14 & r15
        ) >= 0:
            if r0 >= 0:
                r0 = _forest_step(X, i, r0, nodes, threshold)
            if r1 >= 0:
                r1 = _forest_step(X, i + 1, r1, nodes, threshold)
            if r2 >= 0:
                r2 = _forest_step(X, i + 2, r2, nodes, threshold)
            if r3 >= 0:
                r3 = _forest_step(X, i + 3, r3, nodes, threshold)
            if r4 >= 0:
                r4 = _forest_step(X, i + 4, r4, nodes, threshold)
            if r5 >= 0:
                r5 = _forest_step(X, i + 5, r5, nodes, threshold)
            if r6 >= 0:
                r6 = _forest_step(X, i + 6, r6, nodes, threshold)
            if r7 >= 0:
                r7 = _forest_step(X, i + 7, r7, nodes, threshold)
            if r8 >= 0:
                r8 = _forest_step(X, i + 8, r8, nodes, threshold)
            if r9 >= 0:
                r9 = _forest_step(X, i + 9, r9, nodes, threshold)
            if r10 >= 0:
                r10 = _forest_step(X, i + 10, r10, nodes, threshold)
            if r11 >= 0:
                r11 = _forest_step(X, i + 11, r11, nodes, threshold)
            if r12 >= 0:
                r12 = _forest_step(X, i + 12, r12, nodes, threshold)
            if r13 >= 0:
                r13 = _forest_step(X, i + 13, r13, nodes, threshold)
            if r14 >= 0:
                r14 = _forest_step(X, i + 14, r14, nodes, threshold)
            if r15 >= 0:
                r15 = _forest_step(X, i + 15, r15, nodes, threshold)
        leaves[i - start] = -1 - r0
        leaves[i - start + 1] = -1 - r1
        leaves[i - start + 2] = -1 - r2
        leaves[i - start + 3] = -1 - r3
        leaves[i - start + 4] = -1 - r4
        leaves[i - start + 5] = -1 - r5
        leaves[i - start + 6] = -1 - r6
        leaves[i - start + 7] = -1 - r7
        leaves[i - start + 8] = -1 - r8
        leaves[i - start + 9] = -1 - r9
        leaves[i - start + 10] = -1 - r10
        leaves[i - start + 11] = -1 - r11
        leaves[i - start + 12] = -1 - r12
        leaves[i - start + 13] = -1 - r13
        leaves[i - start + 14] = -1 - r14
        leaves[i - start + 15] = -1 - r15
        i += 16
    while i < stop:
        node = root
        while node >= 0:
            node = _forest_step(X, i, node, nodes, threshold)
        leaves[i - start] = -1 - node
        i += 1


@njit(cache=True, nogil=True, inline="always")
def _lightgbm_zeros(X, start, stop, into):  # noqa: D103
    """Rows ``start:stop`` of ``X`` into ``into``, values LightGBM reads as 0 set to 0."""
    for r in range(stop - start):
        for f in range(X.shape[1]):
            x = X[start + r, f]
            into[r, f] = np.float32(0.0) if abs(x) <= LIGHTGBM_ZERO else x


@njit(cache=True, nogil=True, inline="always")
def _boosted_walk(X, count, at, nodes, threshold):  # noqa: D103
    """Walk each of ``count`` rows from its node in ``at`` to a leaf, level by level.

    LightGBM's trees are small and lopsided: the whole block keeps the CPU busy where
    a few rows would wait for the deepest (sixteen rows interleaved as for a forest, or
    the unfinished rows compacted at each level, measured twice slower).
    """
    active = count
    while active > 0:
        active = 0
        for r in range(count):
            node = at[r]
            if node >= 0:
                node = _boosted_step(X, r, node, nodes, threshold)
                at[r] = node
                active += node >= 0


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
    """LightGBM's probabilities: per-class sums of leaf scores, then softmax or sigmoid.

    Each block's rows are copied once with LightGBM's zeros made 0 (a step then needs
    no ``abs``), and a tree's leaf values are added while the rows go to the next
    tree's root (one pass over the block instead of three): 1.15 to 1.2 times faster.
    """
    n = X.shape[0]
    n_classes = out.shape[1]
    n_trees = roots.size
    acc = np.zeros((block, n_classes))
    at = np.zeros(block, dtype=np.int64)
    rows = np.empty((block, X.shape[1]), dtype=np.float32)
    for start in range(0, n, block):
        stop = min(start + block, n)
        count = stop - start
        _lightgbm_zeros(X, start, stop, rows)
        acc[:, :] = 0.0
        at[:count] = roots[0]
        for t in range(n_trees):
            k = tree_class[t]
            _boosted_walk(rows, count, at, nodes, threshold)
            following = roots[min(t + 1, n_trees - 1)]
            for r in range(count):
                acc[r, k] += values[-1 - at[r]]
                at[r] = following
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
