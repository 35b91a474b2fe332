import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box

from sitsmap.config.schema import SampleSelection
from sitsmap.sampling.selection import samples_per_class, select_samples
from sitsmap.vectors.split import split_polygons


def polygons(classes: list[int]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": classes, "pid": np.arange(len(classes))},
        geometry=[box(i, 0, i + 0.9, 1) for i in range(len(classes))],
        crs="EPSG:32631",
    )


def test_split_never_shares_a_polygon_and_follows_ratio():
    frame = polygons([1] * 10 + [2] * 4 + [3])
    out = split_polygons(frame, "code", ratio=0.7, seed=3, group_column="pid")
    sides = out.groupby("pid")["split"].nunique()
    assert (sides == 1).all()
    learning = out[out.split == "learning"].groupby("code").size()
    validation = out[out.split == "validation"].groupby("code").size()
    assert learning[1] == 7 and validation[1] == 3
    assert learning[2] == 3 and validation[2] == 1
    assert learning[3] == 1 and 3 not in validation.index  # a single polygon cannot be split


def test_split_groups_stay_together():
    frame = polygons([1] * 8)
    frame["pid"] = [0, 0, 1, 1, 2, 2, 3, 3]  # parts of multipolygons share an id
    out = split_polygons(frame, "code", ratio=0.5, seed=0, group_column="pid")
    assert (out.groupby("pid")["split"].nunique() == 1).all()
    assert set(out.split) == {"learning", "validation"}


def test_split_differs_between_seeds_and_repeats_for_a_seed():
    frame = polygons([1] * 30)
    a = split_polygons(frame, "code", 0.5, seed=1, group_column="pid").split.tolist()
    b = split_polygons(frame, "code", 0.5, seed=1, group_column="pid").split.tolist()
    c = split_polygons(frame, "code", 0.5, seed=2, group_column="pid").split.tolist()
    assert a == b and a != c


def test_split_disabled_uses_everything_twice():
    frame = polygons([1, 1, 2])
    out = split_polygons(frame, "code", 0.5, seed=0, group_column="pid", enabled=False)
    assert len(out) == 6
    assert (out.groupby("split").size() == 3).all()
    assert out.crs == frame.crs


COUNTS = {1: 1000, 2: 50, 3: 7}


@pytest.mark.parametrize(
    "settings, expected",
    [
        ({"strategy": "all"}, {1: 1000, 2: 50, 3: 7}),
        ({"strategy": "constant", "strategy.constant.nb": 100}, {1: 100, 2: 50, 3: 7}),
        ({"strategy": "percent", "strategy.percent.p": 0.1}, {1: 100, 2: 5, 3: 1}),
        ({"strategy": "smallest"}, {1: 7, 2: 7, 3: 7}),
        ({"strategy": "total", "strategy.total.v": 105}, {1: 99, 2: 5, 3: 1}),
    ],
)
def test_samples_per_class(settings, expected):
    assert samples_per_class(COUNTS, SampleSelection.model_validate(settings)) == expected


def test_samples_per_class_byclass(tmp_path):
    settings = SampleSelection.model_validate(
        {"strategy": "byclass", "strategy.byclass.in": str(tmp_path / "x.csv")}
    )
    assert samples_per_class(COUNTS, settings, {1: 10, 3: 99}) == {1: 10, 2: 0, 3: 7}


@pytest.mark.parametrize("sampler", ["periodic", "random"])
def test_select_samples_counts_and_membership(sampler):
    rng = np.random.default_rng(0)
    labels = rng.choice([1, 2, 3], size=5000, p=[0.8, 0.15, 0.05])
    wanted = {1: 100, 2: 100, 3: 10_000}
    chosen = select_samples(labels, wanted, sampler, seed=5)
    assert len(np.unique(chosen)) == len(chosen)
    picked = np.bincount(labels[chosen], minlength=4)
    assert picked[1] == 100 and picked[2] == 100
    assert picked[3] == (labels == 3).sum()  # capped by the candidates
    again = select_samples(labels, wanted, sampler, seed=5)
    np.testing.assert_array_equal(chosen, again)


def test_periodic_sampler_spreads_over_space():
    labels = np.ones(10_000, dtype=int)
    chosen = select_samples(labels, {1: 10}, "periodic", seed=0)
    gaps = np.diff(chosen)
    assert gaps.min() >= 999 and gaps.max() <= 1001


def test_majority_vote_with_ties_and_nodata():
    from sitsmap.classification.fusion import majority_vote

    maps = np.array(
        [
            [[1, 2, 0, 3]],
            [[1, 3, 0, 0]],
            [[2, 2, 0, 0]],
            [[1, 3, 0, 0]],
        ],
        dtype=np.uint8,
    )
    fused = majority_vote(maps, nodata=0, undecided=255)
    assert fused.tolist() == [[1, 255, 0, 3]]
