import geopandas as gpd
import pyogrio
from shapely.geometry import box

from sitsmap.io.vector import read_vector, write_vector


def test_a_shapefile_whose_first_row_is_empty_stays_a_polygon_layer(tmp_path):
    frame = gpd.GeoDataFrame(
        {"code": [1, 2, 3]},
        geometry=[None, box(0, 0, 10, 10), box(20, 0, 30, 10).union(box(40, 0, 50, 10))],
        crs="EPSG:2154",
    )
    write_vector(frame, tmp_path / "truth.shp")
    assert pyogrio.read_info(tmp_path / "truth.shp")["geometry_type"] in ("Polygon", "MultiPolygon")
    back = read_vector(tmp_path / "truth.shp")
    assert back.geometry.dropna().area.tolist() == [100.0, 200.0]
