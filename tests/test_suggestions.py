"""Where to sample next: greedy spread choice, and its streamed candidate pool."""

import numpy as np
import pytest

from sitsmap.postprocessing.suggestions import (
    TopCandidates,
    disc_pixels,
    pool_size,
    spread_selection,
)


def _greedy_over_everything(x, y, scores, n, min_distance):
    """The choice the streamed one must equal: every pixel, stable decreasing order."""
    kept = []
    for index in np.argsort(-scores, kind="stable"):
        if all((x[k] - x[index]) ** 2 + (y[k] - y[index]) ** 2 >= min_distance**2 for k in kept):
            kept.append(index)
            if len(kept) == n:
                break
    return np.asarray(kept)


def test_disc_pixels_counts_centres_strictly_closer():
    assert disc_pixels(10.0, 10.0) == 1  # the neighbours lie exactly at the distance
    assert disc_pixels(10.5, 10.0) == 5
    assert disc_pixels(15.0, 10.0) == 9


def test_spread_selection_keeps_the_most_uncertain_and_respects_the_distance():
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 1000, 400), rng.uniform(0, 1000, 400)
    scores = rng.random(400)
    ranked = np.argsort(-scores, kind="stable")
    kept = spread_selection(x, y, ranked, 15, 120.0)
    assert kept.size == 15
    assert kept[0] == ranked[0]  # the most uncertain pixel always comes first
    points = np.column_stack([x[kept], y[kept]])
    distances = np.linalg.norm(points[:, None] - points[None], axis=-1)
    assert distances[np.triu_indices(15, 1)].min() >= 120.0
    np.testing.assert_array_equal(kept, _greedy_over_everything(x, y, scores, 15, 120.0))


def test_streamed_pool_gives_the_choice_over_the_whole_map():
    rng = np.random.default_rng(5)
    rows, cols, res = 60, 80, 10.0
    scores = np.round(rng.random((rows, cols)), 2)  # many ties
    yy, xx = np.mgrid[0:rows, 0:cols]
    x, y = (xx.ravel() + 0.5) * res, -(yy.ravel() + 0.5) * res
    n, distance = 12, 45.0
    pool = TopCandidates(pool_size(n, distance, res))
    assert pool.size < scores.size  # the pool is a real cut
    for top in range(0, rows, 7):  # blocks of 7 rows, in raster order
        block = slice(top * cols, min(rows, top + 7) * cols)
        pool.add(scores.ravel()[block], x=x[block], y=y[block])
    kept = spread_selection(pool.columns["x"], pool.columns["y"], pool.ranked(), n, distance)
    expected = _greedy_over_everything(x, y, scores.ravel(), n, distance)
    np.testing.assert_array_equal(pool.columns["x"][kept], x[expected])
    np.testing.assert_array_equal(pool.columns["y"][kept], y[expected])


def test_pool_ignores_nan_and_keeps_the_best():
    pool = TopCandidates(3)
    pool.add(np.array([0.1, np.nan, 0.9]), v=np.array([1, 2, 3]))
    pool.add(np.array([0.5, 0.95, 0.2, 0.5]), v=np.array([4, 5, 6, 7]))
    assert list(pool.columns["v"][pool.ranked()]) == [5, 3, 4]


@pytest.mark.parametrize("distance", [0.0, -1.0])
def test_no_distance_takes_the_first_ranked(distance):
    ranked = np.array([4, 2, 0])
    x = y = np.zeros(5)
    np.testing.assert_array_equal(spread_selection(x, y, ranked, 2, distance), [4, 2])
