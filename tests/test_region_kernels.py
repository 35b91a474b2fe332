"""Eco-regions: the region layer's checks, polygon assignment, and the border blending kernel."""

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from sitsmap.classification.regions import blend_probabilities, border_halo, region_weights
from sitsmap.errors import InputDataError
from sitsmap.vectors.regions import (
    REGION_COLUMN,
    assign_regions,
    check_region_ids,
    prepare_regions,
    region_index,
)

CRS = "EPSG:32631"
PATH = Path("regions.gpkg")
COVER = shapely.box(0, 0, 1000, 1000)


def halves(ids=("west", "east"), field="zone", overlap=0.0) -> gpd.GeoDataFrame:
    west = shapely.box(-100, -100, 500 + overlap, 1100)
    east = shapely.box(500, -100, 1100, 1100)
    return gpd.GeoDataFrame({field: list(ids)}, geometry=[west, east], crs=CRS)


def test_regions_are_dissolved_sorted_and_numbered():
    frame = halves(ids=(2, 10.0))  # a Shapefile's float 10.0 reads as "10"
    regions = prepare_regions(frame, PATH, "zone", CRS, COVER)
    assert regions[REGION_COLUMN].tolist() == ["10", "2"]
    assert region_index(regions[REGION_COLUMN]) == {"10": 1, "2": 2}


@pytest.mark.parametrize(
    ("frame", "field", "message"),
    [
        (halves(), "region", "no field 'region' (chain.region_field); its fields: zone"),
        (halves(ids=("west", "east side")), "zone", "region id 'east side' is not a valid name"),
        (halves(overlap=50), "zone", "regions east and west overlap (60000 m²)"),
    ],
)
def test_bad_region_layers_are_one_line_errors(frame, field, message):
    with pytest.raises(InputDataError, match=re.escape(message)) as error:
        prepare_regions(frame, PATH, field, CRS, COVER)
    assert "\n" not in str(error.value)


def test_regions_over_no_tile_are_refused():
    with pytest.raises(InputDataError, match="no region overlaps any tile"):
        prepare_regions(halves(), PATH, "zone", CRS, shapely.box(5000, 5000, 6000, 6000))


def test_empty_ids_are_refused():
    with pytest.raises(InputDataError, match="is not a valid name"):
        check_region_ids(["a", None], PATH, "zone")


def test_polygons_go_to_the_region_of_their_representative_point():
    regions = prepare_regions(halves(), PATH, "zone", CRS, COVER)
    polygons = gpd.GeoDataFrame(
        geometry=[
            shapely.box(100, 100, 200, 200),
            shapely.box(450, 100, 900, 200),
            shapely.box(2000, 0, 2100, 100),
        ],
        crs=CRS,
    )
    assigned = assign_regions(polygons, regions)
    assert assigned.iloc[:2].tolist() == ["west", "east"]  # the second lies mostly east
    assert assigned.isna().tolist() == [False, False, True]


def two_regions(width: int = 40, height: int = 10, border: int = 20) -> np.ndarray:
    regions = np.ones((height, width), dtype=np.uint16)
    regions[:, border:] = 2
    return regions


def test_hard_borders_give_each_pixel_its_own_model():
    regions = two_regions()
    regions[0, 0] = 0
    weights = region_weights(regions, 0, 0.0, 10.0)
    assert set(weights) == {1, 2}
    np.testing.assert_array_equal(weights[1], (regions == 1).astype(np.float32))
    np.testing.assert_array_equal(weights[2], (regions == 2).astype(np.float32))


def test_blended_weights_are_linear_across_the_band_and_sum_to_one():
    band, resolution = 100.0, 10.0  # 10 pixels: 5 on each side of the border
    halo = border_halo(band, resolution)
    regions = np.pad(two_regions(width=40), halo, mode="edge")
    weights = region_weights(regions, halo, band, resolution)
    total = weights[1] + weights[2]
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    profile = weights[1][0]
    # columns 15..24 straddle the border between columns 19 and 20
    assert profile[:15].min() == 1.0 and profile[25:].max() == 0.0
    np.testing.assert_allclose(profile[19] + profile[20], 1.0, atol=1e-6)
    np.testing.assert_allclose(profile[19], 0.55, atol=1e-6)  # half a pixel inside
    assert np.all(np.diff(profile) <= 1e-7)  # never rises going east


def test_weights_do_not_depend_on_where_the_window_starts():
    band, resolution = 100.0, 10.0
    halo = border_halo(band, resolution)
    whole = np.pad(two_regions(width=60, border=27), halo, mode="constant")
    full = region_weights(whole, halo, band, resolution)
    # the same pixels as a window starting at column 20, with its own halo
    part = whole[:, 20 : 20 + 30 + 2 * halo]
    window = region_weights(part, halo, band, resolution)
    for region in (1, 2):
        np.testing.assert_allclose(window[region], full[region][:, 20:50], atol=1e-6)


def test_pixels_of_no_region_get_no_weight():
    regions = two_regions()
    regions[:, 30:] = 0
    weights = region_weights(regions, 0, 50.0, 10.0)
    assert all(w[:, 30:].max() == 0 for w in weights.values())
    np.testing.assert_allclose(sum(weights.values())[:, :30], 1.0, atol=1e-6)


def test_blend_probabilities_weights_each_model():
    first = (
        np.array([0, 1]),
        np.array([1.0, 0.5], np.float32),
        np.array([[1, 0], [1, 0]], np.float32),
    )
    second = (np.array([1]), np.array([0.5], np.float32), np.array([[0, 1]], np.float32))
    blended = blend_probabilities([first, second], 2, 2)
    np.testing.assert_allclose(blended, [[1, 0], [0.5, 0.5]])
