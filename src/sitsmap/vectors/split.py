"""Split ground-truth polygons into learning and validation sets, per class and per run.

The split is made on polygons, never on pixels, so that no polygon feeds both
learning and validation (pixels of one parcel are strongly correlated, and a
pixel split would report optimistic accuracies).
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd

LOGGER = logging.getLogger(__name__)

SPLIT_COLUMN = "split"
LEARNING = "learning"
VALIDATION = "validation"


def split_polygons(
    polygons: gpd.GeoDataFrame,
    data_field: str,
    ratio: float,
    seed: int,
    group_column: str,
    enabled: bool = True,
    stratum: str = "class",
) -> gpd.GeoDataFrame:
    """Assign every polygon group to learning or validation, class by class.

    Parameters
    ----------
    polygons : GeoDataFrame
        Clean ground truth, one row per polygon.
    data_field : str
        Integer class column.
    ratio : float
        Fraction of each class's groups that go to learning (0 < ratio < 1).
    seed : int
        Seed of this run's split; each run draws its own.
    group_column : str
        Column whose values are the units of the split (a polygon id; all rows
        with the same id go to the same side).
    enabled : bool
        iota2's ``split_ground_truth``: when False every polygon is used for
        both learning and validation (a copy of each row per side).
    stratum : str
        What a value of ``data_field`` is, in messages: ``class``, or a
        regression's ``target bin``.

    Returns
    -------
    GeoDataFrame
        The input rows with a ``split`` column, ``"learning"`` or ``"validation"``.

    Notes
    -----
    A class with a single group cannot be split: it goes to learning only,
    with a warning, so the model still knows the class.
    """
    if not enabled:
        sides = [polygons.assign(**{SPLIT_COLUMN: side}) for side in (LEARNING, VALIDATION)]
        return gpd.GeoDataFrame(pd.concat(sides, ignore_index=True), crs=polygons.crs)
    rng = np.random.default_rng(seed)
    side = {}
    for code, groups in _groups_by_class(polygons, data_field, group_column):
        side.update(_split_groups(groups, ratio, rng, f"{stratum} {code}"))
    return polygons.assign(**{SPLIT_COLUMN: polygons[group_column].map(side)})


def _groups_by_class(
    polygons: gpd.GeoDataFrame, data_field: str, group_column: str
) -> list[tuple[int, np.ndarray]]:
    pairs = polygons[[data_field, group_column]].drop_duplicates(subset=group_column)
    return [
        (int(code), np.sort(frame[group_column].to_numpy()))
        for code, frame in sorted(pairs.groupby(data_field), key=lambda item: item[0])
    ]


def _split_groups(
    groups: np.ndarray, ratio: float, rng: np.random.Generator, name: str
) -> dict[object, str]:
    if len(groups) == 1:
        LOGGER.warning("%s has a single polygon: used for learning only", name)
        return {groups[0]: LEARNING}
    n_learning = min(len(groups) - 1, max(1, round(ratio * len(groups))))
    shuffled = rng.permutation(groups)
    return {g: (LEARNING if i < n_learning else VALIDATION) for i, g in enumerate(shuffled)}
