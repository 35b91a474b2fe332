"""Where to sample next: the most uncertain pixels, spread apart (sits_uncertainty_sampling).

The choice is greedy: pixels in decreasing uncertainty, each kept unless a kept
one lies closer than the minimum distance. Streaming it over a map only needs
the most uncertain pixels: a kept point rules out at most the pixels of one disc,
so the ``n × (disc + 1)`` most uncertain pixels hold every point the greedy
choice over the whole map would keep (:func:`pool_size`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


def disc_pixels(min_distance: float, resolution: float) -> int:
    """Number of pixel centres closer than ``min_distance`` to a pixel centre (itself included)."""
    reach = math.ceil(min_distance / resolution)
    offsets = np.arange(-reach, reach + 1) * float(resolution)
    # row by row: the count of each row of the disc, without a (2 reach + 1)² array
    room = min_distance**2 - offsets**2
    per_row = np.where(room > 0, 2 * np.ceil(np.sqrt(np.maximum(room, 0)) / resolution) - 1, 0)
    return int(per_row.sum()) or 1


def pool_size(n: int, min_distance: float, resolution: float) -> int:
    """Candidates to keep so that the greedy choice over them equals the one over the map."""
    return n * (disc_pixels(min_distance, resolution) + 1)


@dataclass
class TopCandidates:
    """The ``size`` highest scores seen so far, with their coordinates and attributes.

    Ties are broken by arrival order (earlier first), as a stable sort of the whole
    map in decreasing score would.
    """

    size: int
    scores: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))
    order: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    seen: int = 0

    def add(self, scores: np.ndarray, **columns: np.ndarray) -> None:
        """Offer candidates (1-D arrays of equal length; NaN scores are ignored)."""
        keep = ~np.isnan(scores)
        if self.scores.size >= self.size:  # full: only scores reaching the lowest kept can enter
            keep &= scores >= self.scores.min()
        order = np.arange(self.seen, self.seen + scores.size)[keep]
        self.seen += scores.size
        merged_scores = np.concatenate([self.scores, scores[keep].astype(np.float64)])
        merged_order = np.concatenate([self.order, order])
        merged = {
            name: np.concatenate([self.columns[name], values[keep]])
            if name in self.columns
            else values[keep]
            for name, values in columns.items()
        }
        best = _best(merged_scores, merged_order, self.size)
        self.scores, self.order = merged_scores[best], merged_order[best]
        self.columns = {name: values[best] for name, values in merged.items()}

    def ranked(self) -> np.ndarray:
        """Indices of the kept candidates in decreasing score (ties: arrival order)."""
        return np.lexsort((self.order, -self.scores))


def _best(scores: np.ndarray, order: np.ndarray, size: int) -> np.ndarray:
    """Indices of the ``size`` best (score, then earliest) candidates, in no order."""
    if scores.size <= size:
        return np.arange(scores.size)
    ranked = np.lexsort((order, -scores))
    return ranked[:size]


def spread_selection(
    x: np.ndarray, y: np.ndarray, ranked: np.ndarray, n: int, min_distance: float
) -> np.ndarray:
    """Greedily keep up to ``n`` candidates, in ``ranked`` order, at least ``min_distance`` apart.

    Parameters
    ----------
    x, y : numpy.ndarray
        Candidate coordinates (metres of a projected CRS).
    ranked : numpy.ndarray
        Candidate indices, most wanted first.
    n : int
        Number of points wanted.
    min_distance : float
        Smallest distance allowed between two kept points.

    Returns
    -------
    numpy.ndarray
        Indices of the kept candidates, in the order they were kept.
    """
    if min_distance <= 0:
        return ranked[:n]
    # Own loop: a grid of min_distance cells makes each test look at 9 cells only,
    # and the loop stops after n points (a KD-tree would have to be rebuilt per point).
    cells: dict[tuple[int, int], list[int]] = {}
    kept: list[int] = []
    limit = min_distance**2
    for index in ranked:
        cx, cy = int(x[index] // min_distance), int(y[index] // min_distance)
        if not _near(cells, cx, cy, x, y, index, limit):
            kept.append(int(index))
            cells.setdefault((cx, cy), []).append(int(index))
            if len(kept) == n:
                break
    return np.asarray(kept, dtype=np.int64)


def _near(cells, cx: int, cy: int, x, y, index: int, limit: float) -> bool:
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            for other in cells.get((cx + dx, cy + dy), ()):
                if (x[other] - x[index]) ** 2 + (y[other] - y[index]) ** 2 < limit:
                    return True
    return False
