"""STAC Sentinel-2 items and Landsat Collection 2 scenes, found and read onto a tile's grid."""

import datetime as dt
import json
import shutil
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform
from rasterio.windows import Window

from sitsmap.errors import InputDataError
from sitsmap.io.landsat import find_landsat_products
from sitsmap.io.products import find_products, tile_grid_of
from sitsmap.io.raster import RasterGrid, write_raster
from sitsmap.io.reading import read_product_window
from sitsmap.io.stac import find_stac_products, gdal_href, item_tile
from sitsmap.sensors import LANDSAT8, NODATA, SENTINEL2_STAC, SENTINEL2_THEIA
from sitsmap.sensors.sentinel2 import STAC_ASSETS

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
UTM31 = CRS.from_epsg(32631)
UTM30 = CRS.from_epsg(32630)
S2_BANDS = SENTINEL2_STAC.band_names
L8_BANDS = LANDSAT8.band_names
CLEAR, CLOUD, SHADOW, FILL = 21824, 22280, 23888, 1
SIZE = 8


# --------------------------------------------------------------------------- STAC helpers


def stac_item(
    catalog_dir: Path,
    item_id: str,
    day: str,
    properties: dict | None = None,
    reflectance: np.ndarray | None = None,
    scl: np.ndarray | None = None,
    scaling: dict | None = None,
    drop: tuple[str, ...] = (),
    collection: str | None = "sentinel-2-l2a",
) -> Path:
    """Write an item folder (COGs + item JSON, relative hrefs); return the item JSON path.

    ``reflectance`` is ``(10, SIZE, SIZE)`` reflectance x 10000, written as DN 1000 + r
    with ``raster:bands`` scale 0.0001 and offset -0.1 (unless ``scaling`` says otherwise).
    """
    folder = catalog_dir / item_id
    folder.mkdir(parents=True)
    grid = RasterGrid(SIZE, SIZE, Affine(10, 0, 500000, 0, -10, 5600000), UTM31)
    if reflectance is None:
        reflectance = np.full((len(S2_BANDS), SIZE, SIZE), 500, dtype=np.int32)
    scl = np.full((SIZE, SIZE), 4, dtype=np.uint8) if scl is None else scl
    scaling = {"scale": 0.0001, "offset": -0.1} if scaling is None else scaling
    band_index = {band: index for index, band in enumerate(S2_BANDS)}
    assets = {}
    for key, band in STAC_ASSETS.items():
        if key in drop:
            continue
        if band == "SCL":
            write_raster(folder / "SCL.tif", scl, grid, nodata=0)
            assets[key] = {"href": "./SCL.tif", "raster:bands": [{"nodata": 0}]}
            continue
        offset = 1000 if scaling.get("offset") == -0.1 else 0
        dn = (reflectance[band_index[band]] + offset).astype(np.uint16)
        write_raster(folder / f"{band}.tif", dn, grid, nodata=0)
        assets[key] = {"href": f"./{band}.tif", "raster:bands": [{"nodata": 0, **scaling}]}
    props = {"datetime": f"{day}T10:53:28Z", "platform": "sentinel-2b"}
    props.update({"grid:code": "MGRS-31UDS"} if properties is None else properties)
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "geometry": None,
        "properties": props,
        "links": [],
        "assets": assets,
    }
    if collection is not None:
        item["collection"] = collection
    path = folder / f"{item_id}.json"
    path.write_text(json.dumps(item))
    return path


def write_catalog(catalog_dir: Path, items: list[Path]) -> Path:
    """A catalog.json linking the items (relative links)."""
    links = [{"rel": "root", "href": "./catalog.json", "type": "application/json"}]
    links += [
        {"rel": "item", "href": "./" + item.relative_to(catalog_dir).as_posix()} for item in items
    ]
    catalog = {
        "type": "Catalog",
        "id": "test",
        "stac_version": "1.0.0",
        "description": "test catalog",
        "links": links,
    }
    path = catalog_dir / "catalog.json"
    path.write_text(json.dumps(catalog))
    return path


def one_item_catalog(tmp_path: Path, **kwargs) -> Path:
    item = stac_item(tmp_path, "S2B_31UDS_20180601_0_L2A", "2018-06-01", **kwargs)
    return write_catalog(tmp_path, [item])


def read_all(product, sensor, bands, size=SIZE, grid=None):
    return read_product_window(product, Window(0, 0, size, size), bands, sensor, grid=grid)


# --------------------------------------------------------------------------- STAC tests


def test_stac_scale_and_offset_give_reflectance_and_scl_gives_validity(tmp_path):
    rng = np.random.default_rng(0)
    reflectance = rng.integers(0, 9000, size=(len(S2_BANDS), SIZE, SIZE))
    scl = np.full((SIZE, SIZE), 4, dtype=np.uint8)
    scl[0, 0], scl[0, 1], scl[0, 2] = 9, 3, 0  # cloud, shadow, no data
    reflectance[0, 1, 1] = -1000  # DN 0: no data in B2 alone
    catalog = one_item_catalog(tmp_path, reflectance=reflectance, scl=scl)
    (product,) = find_stac_products(catalog, "T31UDS")
    assert product.tile == "T31UDS"
    assert product.file("B2").gain == 1 and product.file("B2").offset == -1000
    assert product.file("SCL").gain == 1 and product.file("SCL").offset == 0
    values, invalid = read_all(product, SENTINEL2_STAC, S2_BANDS)
    expected = np.zeros((SIZE, SIZE), dtype=bool)
    expected[0, :3] = expected[1, 1] = True
    np.testing.assert_array_equal(invalid, expected)
    np.testing.assert_array_equal(values[:, ~invalid], reflectance[:, ~invalid])
    assert values[0, 1, 1] == NODATA


def test_stac_without_scale_reads_dn_as_reflectance(tmp_path):
    reflectance = np.full((len(S2_BANDS), SIZE, SIZE), 1234)
    catalog = one_item_catalog(tmp_path, reflectance=reflectance, scaling={})
    (product,) = find_stac_products(catalog, "31UDS")
    assert (product.file("B8").gain, product.file("B8").offset) == (1, 0)
    values, invalid = read_all(product, SENTINEL2_STAC, ["B8", "B11"])
    assert not invalid.any() and (values == 1234).all()


def test_stac_item_missing_an_asset_is_named(tmp_path):
    catalog = one_item_catalog(tmp_path, drop=("nir08",))
    with pytest.raises(InputDataError, match="S2B_31UDS_20180601_0_L2A.*nir08") as error:
        find_stac_products(catalog, "T31UDS")
    assert "S2B_31UDS_20180601_0_L2A.json" in str(error.value)


@pytest.mark.parametrize(
    "style",
    [
        lambda tile: {"s2:mgrs_tile": tile},
        lambda tile: {
            "mgrs:utm_zone": int(tile[:2]),
            "mgrs:latitude_band": tile[2],
            "mgrs:grid_square": tile[3:],
        },
        lambda tile: {"grid:code": f"MGRS-{tile}"},
    ],
    ids=["s2:mgrs_tile", "mgrs:*", "grid:code"],
)
def test_stac_items_are_matched_to_the_tile_by_each_mgrs_style(tmp_path, style):
    items = [
        stac_item(tmp_path, "S2B_31UDS_20180601_0_L2A", "2018-06-01", style("31UDS")),
        stac_item(tmp_path, "S2B_31TCJ_20180601_0_L2A", "2018-06-01", style("31TCJ")),
        stac_item(tmp_path, "S2B_31UDS_20180611_0_L2A", "2018-06-11", style("31UDS")),
    ]
    catalog = write_catalog(tmp_path, items)
    for name in ("T31UDS", "31uds"):
        products = find_stac_products(catalog, name)
        assert [p.path.name for p in products] == [
            "S2B_31UDS_20180601_0_L2A.json",
            "S2B_31UDS_20180611_0_L2A.json",
        ]
    (other,) = find_stac_products(catalog, "T31TCJ")
    assert other.date == dt.date(2018, 6, 1) and other.satellite == "B"


def test_item_tile_pads_the_zone_and_ignores_other_grids():
    assert item_tile({"mgrs:utm_zone": 1, "mgrs:latitude_band": "C", "mgrs:grid_square": "DH"}) == (
        "01CDH"
    )
    assert item_tile({"grid:code": "WRS2-199025"}) is None
    assert item_tile({}) is None


def test_stac_period_and_one_product_per_date(tmp_path):
    items = [
        stac_item(tmp_path, "S2B_31UDS_20180501_0_L2A", "2018-05-01"),
        stac_item(tmp_path, "S2B_31UDS_20180601_0_L2A", "2018-06-01"),
        stac_item(tmp_path, "S2B_31UDS_20180601_1_L2A", "2018-06-01"),  # reprocessed
        stac_item(tmp_path, "S2B_31UDS_20180701_0_L2A", "2018-07-01"),
    ]
    catalog = write_catalog(tmp_path, items)
    products = find_stac_products(catalog, "T31UDS", dt.date(2018, 5, 15), dt.date(2018, 7, 1))
    assert [p.date for p in products] == [dt.date(2018, 6, 1), dt.date(2018, 7, 1)]
    assert products[0].path.name == "S2B_31UDS_20180601_1_L2A.json"
    assert products[0].version == (0, 1)
    with pytest.raises(InputDataError, match="no product of tile T31UDS between 2019"):
        find_stac_products(catalog, "T31UDS", dt.date(2019, 1, 1))


def test_stac_processing_baseline_wins_over_the_sequence_number(tmp_path):
    items = [
        stac_item(
            tmp_path, "S2B_31UDS_20180601_1_L2A", "2018-06-01",
            {"grid:code": "MGRS-31UDS", "s2:processing_baseline": "02.07"},
        ),
        stac_item(
            tmp_path, "S2B_31UDS_20180601_0_L2A", "2018-06-01",
            {"grid:code": "MGRS-31UDS", "s2:processing_baseline": "05.00"},
        ),
    ]  # fmt: skip
    (product,) = find_stac_products(write_catalog(tmp_path, items), "T31UDS")
    assert product.version == (500, 0)


def test_stac_local_catalog_keeps_items_of_the_collection(tmp_path):
    items = [
        stac_item(tmp_path, "S2B_31UDS_20180501_0_L2A", "2018-05-01", collection="landsat-c2-l2"),
        stac_item(tmp_path, "S2B_31UDS_20180601_0_L2A", "2018-06-01", collection=None),
        stac_item(tmp_path, "S2B_31UDS_20180701_0_L2A", "2018-07-01"),
    ]
    catalog = write_catalog(tmp_path, items)
    products = find_stac_products(catalog, "T31UDS")
    assert [p.date.month for p in products] == [6, 7]
    # an item that names no collection is kept whatever the collection asked for
    assert [p.date.month for p in find_stac_products(catalog, "T31UDS", collection="x")] == [6]


def test_stac_absolute_hrefs_become_gdal_paths(tmp_path):
    item_path = stac_item(tmp_path, "S2B_31UDS_20180601_0_L2A", "2018-06-01")
    item = json.loads(item_path.read_text())
    item["assets"]["blue"]["href"] = "s3://sentinel-cogs/31/U/DS/B02.tif"
    item["assets"]["red"]["href"] = "https://example.com/cogs/B04.tif"
    item_path.write_text(json.dumps(item))
    (product,) = find_stac_products(write_catalog(tmp_path, [item_path]), "T31UDS")
    assert product.file("B2").path == "/vsis3/sentinel-cogs/31/U/DS/B02.tif"
    assert product.file("B4").path == "/vsicurl/https://example.com/cogs/B04.tif"
    assert product.file("B3").path == str(item_path.parent / "B3.tif")
    assert gdal_href("file:///data/x.tif") == "/data/x.tif"


def test_stac_unreadable_catalogs_are_one_line_errors(tmp_path):
    with pytest.raises(InputDataError, match="STAC catalog not found"):
        find_stac_products(tmp_path / "nothing.json", "T31UDS")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputDataError, match="cannot read STAC catalog") as error:
        find_stac_products(bad, "T31UDS")
    assert str(bad) in str(error.value) and "\n" not in str(error.value)
    missing_item = write_catalog(tmp_path, [tmp_path / "gone" / "gone.json"])
    with pytest.raises(InputDataError, match="cannot read STAC catalog"):
        find_stac_products(missing_item, "T31UDS")


def test_stac_unreachable_api_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with pytest.raises(InputDataError, match="cannot search STAC API") as error:
        find_stac_products("http://127.0.0.1:9/stac", "T31UDS")
    assert "http://127.0.0.1:9/stac" in str(error.value) and "\n" not in str(error.value)


class _StacApi(BaseHTTPRequestHandler):
    """A STAC API of two items (31UDS, 31TCJ), with the query extension; records searches."""

    items: list[dict] = []
    searches: list[dict] = []
    extensions: tuple[str, ...] = ("query",)

    def log_message(self, *args) -> None:  # quiet
        return

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        base = f"http://{self.headers['Host']}"
        self._send(
            {
                "type": "Catalog",
                "id": "api",
                "stac_version": "1.0.0",
                "description": "test API",
                "conformsTo": [
                    "https://api.stacspec.org/v1.0.0/core",
                    "https://api.stacspec.org/v1.0.0/item-search",
                    *(f"https://api.stacspec.org/v1.0.0/item-search#{e}" for e in self.extensions),
                ],
                "links": [
                    {"rel": "self", "href": base},
                    {"rel": "root", "href": base},
                    {
                        "rel": "search",
                        "href": f"{base}/search",
                        "type": "application/geo+json",
                        "method": "POST",
                    },
                ],
            }
        )

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.searches.append(body)
        found = [item for item in self.items if self._matches(item, body)]
        self._send({"type": "FeatureCollection", "features": found, "links": []})

    @staticmethod
    def _matches(item: dict, body: dict) -> bool:
        if item["collection"] not in body.get("collections", [item["collection"]]):
            return False
        query = body.get("query", {})
        if "filter" in body:  # the CQL2 equalities the finder sends
            cql2 = body["filter"]
            tests = cql2["args"] if cql2["op"] == "and" else [cql2]
            query = {test["args"][0]["property"]: {"eq": test["args"][1]} for test in tests}
        return all(item["properties"].get(k) == v["eq"] for k, v in query.items())

    def _send(self, document: dict) -> None:
        data = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(params=[("query",), ("filter",), ()], ids=["query", "filter", "neither"])
def stac_api(tmp_path, monkeypatch, request):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    items = []
    for tile in ("31UDS", "31TCJ"):
        path = stac_item(tmp_path, f"S2A_{tile}_20180601_0_L2A", "2018-06-01")
        item = json.loads(path.read_text())
        item["properties"] = {
            "datetime": "2018-06-01T10:53:28Z",
            "platform": "sentinel-2a",
            "grid:code": f"MGRS-{tile}",
        }
        for key, asset in item["assets"].items():
            asset["href"] = f"https://cogs.example.com/{tile}/{key}.tif"
        items.append(item)
    handler = type(
        "Api", (_StacApi,), {"items": items, "searches": [], "extensions": request.param}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_stac_api_is_searched_by_collection_period_and_tile(stac_api):
    url, handler = stac_api
    if not handler.extensions:
        with pytest.raises(InputDataError, match="neither the query nor the filter extension"):
            find_stac_products(url, "T31UDS")
        assert handler.searches == []  # the whole collection is never asked for
        return
    products = find_stac_products(url, "T31UDS", dt.date(2018, 5, 1), dt.date(2018, 6, 30))
    assert [p.path for p in products] == [Path("S2A_31UDS_20180601_0_L2A")]
    assert products[0].satellite == "A"
    assert products[0].file("B4").path == "/vsicurl/https://cogs.example.com/31UDS/red.tif"
    search = handler.searches[0]
    assert search["collections"] == ["sentinel-2-l2a"]
    assert search["datetime"].startswith("2018-05-01T00:00:00")
    assert search["datetime"].split("/")[1].startswith("2018-06-30T23:59:59")
    sent = [s.get("query") or s.get("filter") for s in handler.searches]
    if handler.extensions == ("query",):
        assert {"grid:code": {"eq": "MGRS-31UDS"}} in sent
    else:
        assert {"op": "=", "args": [{"property": "grid:code"}, "MGRS-31UDS"]} in sent


# --------------------------------------------------------------------------- Landsat helpers

SCENE = "LC08_L2SP_199025_20180606_20180610_02_T1"


def write_scene(
    folder: Path, grid: RasterGrid, dn: np.ndarray | dict, qa: np.ndarray | int = CLEAR
) -> Path:
    """Write a Landsat C2 L2 scene folder: SR_B2..SR_B7 (nodata 0) and QA_PIXEL (nodata 1).

    ``dn`` is one ``(h, w)`` array for every band or a band → array mapping.
    """
    folder.mkdir(parents=True)
    shape = (grid.height, grid.width)
    qa = np.broadcast_to(np.asarray(qa, dtype=np.uint16), shape)
    for band in L8_BANDS:
        values = dn[band] if isinstance(dn, dict) else dn
        values = np.where(qa == FILL, 0, np.broadcast_to(values, shape)).astype(np.uint16)
        write_raster(folder / f"{folder.name}_SR_{band}.TIF", values, grid, nodata=0)
    write_raster(folder / f"{folder.name}_QA_PIXEL.TIF", np.array(qa), grid, nodata=1)
    return folder


def scene_grid(size: int = SIZE, left: float = 500000, top: float = 5600000) -> RasterGrid:
    return RasterGrid(size, size, Affine(30, 0, left, 0, -30, top), UTM31)


def tile_grid_over(scene: RasterGrid) -> RasterGrid:
    """The 10 m grid over exactly the scene's extent."""
    transform_ = Affine(10, 0, scene.transform.c, 0, -10, scene.transform.f)
    return RasterGrid(scene.width * 3, scene.height * 3, transform_, scene.crs)


def dn_of(reflectance_x10000: float) -> int:
    return round((reflectance_x10000 / 10000 + 0.2) / 0.0000275)


def files_under(path: Path) -> set[Path]:
    return set(path.rglob("*"))


# --------------------------------------------------------------------------- Landsat tests


def test_landsat_dn_scaling_and_qa_bits(tmp_path):
    grid = scene_grid()
    dn = {band: 10000 + 2000 * i for i, band in enumerate(L8_BANDS)}
    qa = np.full((SIZE, SIZE), CLEAR, dtype=np.uint16)
    qa[0, 0], qa[0, 1], qa[0, 2], qa[0, 3] = CLOUD, SHADOW, FILL, CLEAR | 1 << 3
    write_scene(tmp_path / SCENE, grid, dn, qa)
    (product,) = find_landsat_products(tmp_path, "T31UDS")
    assert (product.satellite, product.version, product.date) == (
        "LC08",
        (20180610,),
        dt.date(2018, 6, 6),
    )
    tile = tile_grid_over(grid)
    values, invalid = read_all(product, LANDSAT8, L8_BANDS, tile.width, tile)
    expected_invalid = np.kron(qa != CLEAR, np.ones((3, 3), dtype=bool))
    np.testing.assert_array_equal(invalid, expected_invalid)
    for index, band in enumerate(L8_BANDS):
        expected = dn[band] * 0.0000275 * 10000 - 0.2 * 10000
        assert np.abs(values[index][~invalid] - expected).max() <= 0.5
    assert (values[:, 0, 6:9] == NODATA).all()  # fill: no data; cloudy pixels keep values


def test_landsat_scene_in_the_neighbouring_utm_zone_lands_on_the_right_pixels(tmp_path):
    # A 600 m tile in UTM 31 just east of 0°E, and a 30 m scene in UTM 30 around it.
    (x,), (y,) = transform(CRS.from_epsg(4326), UTM31, [0.3], [50.0])
    tile = RasterGrid(60, 60, Affine(10, 0, x // 10 * 10, 0, -10, y // 10 * 10), UTM31)
    # the truth, a 150 m bright square at rows 20..34, cols 25..39 of the tile, on a wide
    # 10 m UTM 31 canvas around it
    margin = 90
    canvas_grid = RasterGrid(240, 240, tile.transform * Affine.translation(-margin, -margin), UTM31)
    dark, bright = dn_of(800), dn_of(4000)
    canvas = np.full((240, 240), dark, dtype=np.float32)
    canvas[margin + 20 : margin + 35, margin + 25 : margin + 40] = bright
    (cx,), (cy,) = transform(UTM31, UTM30, [x + 300], [y - 300])
    scene = RasterGrid(
        40, 40, Affine(30, 0, cx // 30 * 30 - 600, 0, -30, cy // 30 * 30 + 600), UTM30
    )
    warped = np.zeros((40, 40), dtype=np.float32)
    reproject(
        canvas, warped,
        src_transform=canvas_grid.transform, src_crs=UTM31,
        dst_transform=scene.transform, dst_crs=UTM30,
        resampling=Resampling.average,
    )  # fmt: skip
    write_scene(tmp_path / SCENE, scene, np.rint(warped))
    (product,) = find_landsat_products(tmp_path, "T31UDS", footprint=(tile.crs, tile.bounds))
    values, invalid = read_all(product, LANDSAT8, ["B4"], 60, tile)
    assert not invalid.any()
    excess = np.clip(values[0].astype(float) - 800, 0, None)
    rows, cols = np.indices(excess.shape)
    centre = (rows * excess).sum() / excess.sum(), (cols * excess).sum() / excess.sum()
    assert abs(centre[0] - 27) < 0.5 and abs(centre[1] - 32) < 0.5  # no half-pixel shift
    assert abs(values[0, 27, 32] - 4000) < 200  # middle of the square: full brightness
    assert abs(values[0, 5, 5] - 800) < 50 and abs(values[0, 55, 55] - 800) < 50


def test_landsat_same_day_scenes_are_merged_and_fill_each_other(tmp_path):
    grid = scene_grid()
    qa = np.full((SIZE, SIZE), CLEAR, dtype=np.uint16)
    qa[:, :3] = FILL  # the first scene's swath ends here
    first = "LC08_L2SP_199024_20180606_20180610_02_T1"
    write_scene(tmp_path / first, grid, dn_of(1000), qa)
    write_scene(tmp_path / SCENE, grid, dn_of(2000))
    write_scene(tmp_path / "LC08_L2SP_199025_20180622_20180630_02_T1", grid, dn_of(3000))
    products = find_landsat_products(tmp_path, "31UDS")
    assert [p.date.day for p in products] == [6, 22]
    assert products[0].tile == "T31UDS"
    assert products[0].name == first
    assert [p.name for p in products[0].same_day] == [SCENE]
    tile = tile_grid_over(grid)
    values, invalid = read_all(products[0], LANDSAT8, ["B4"], tile.width, tile)
    assert not invalid.any()
    assert np.abs(values[0, :, :9] - 2000).max() <= 1
    assert np.abs(values[0, :, 9:] - 1000).max() <= 1


def test_landsat_reprocessed_scene_is_kept_once(tmp_path):
    grid = scene_grid()
    write_scene(tmp_path / "LC08_L2SP_199025_20180606_20180610_02_T1", grid, dn_of(1000))
    write_scene(tmp_path / "LC08_L2SP_199025_20180606_20200901_02_T1", grid, dn_of(1000))
    (product,) = find_landsat_products(tmp_path, "T31UDS")
    assert product.version == (20200901,) and product.same_day == ()


def test_landsat_tar_is_read_in_place(tmp_path):
    grid = scene_grid()
    folder = write_scene(tmp_path / "build" / SCENE, grid, dn_of(1500))
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(root / f"{SCENE}.tar", "w") as archive:
        for file in sorted(folder.iterdir()):
            archive.add(file, arcname=file.name)  # USGS bulk downloads: members at the root
    shutil.rmtree(tmp_path / "build")
    before = files_under(tmp_path)
    tile = tile_grid_over(grid)
    (product,) = find_landsat_products(root, "T31UDS", footprint=(tile.crs, tile.bounds))
    assert product.name == f"{SCENE}.tar"
    assert all(f.path.startswith(f"/vsitar/{root / SCENE}.tar/") for f in product.files)
    values, invalid = read_all(product, LANDSAT8, L8_BANDS, tile.width, tile)
    assert not invalid.any() and np.abs(values - 1500).max() <= 1
    assert files_under(tmp_path) == before  # nothing extracted


def test_landsat_footprint_and_tile_folder(tmp_path):
    here, far = scene_grid(), scene_grid(left=600000)
    tile_dir = tmp_path / "T31UDS"
    write_scene(tile_dir / SCENE, here, dn_of(1000))
    write_scene(tile_dir / "LC08_L2SP_198025_20180615_20180620_02_T1", far, dn_of(1000))
    write_scene(tmp_path / "LC09_L2SP_199025_20180614_20180620_02_T1", here, dn_of(1000))
    assert len(find_landsat_products(tmp_path, "31UDS")) == 2  # the tile folder only
    tile = tile_grid_over(here)
    kept = find_landsat_products(tmp_path, "T31UDS", footprint=(tile.crs, tile.bounds))
    assert [p.name for p in kept] == [SCENE]
    with pytest.raises(InputDataError, match="no Landsat Collection 2 Level-2 scene over"):
        find_landsat_products(tmp_path, "T31UDS", footprint=(UTM31, (0.0, 0.0, 10.0, 10.0)))


@pytest.mark.parametrize("missing", ["QA_PIXEL.TIF", "SR_B5.TIF"])
def test_landsat_incomplete_scene_is_named(tmp_path, missing):
    folder = write_scene(tmp_path / SCENE, scene_grid(), dn_of(1000))
    (folder / f"{SCENE}_{missing}").unlink()
    with pytest.raises(InputDataError, match=f"incomplete Landsat scene: no {SCENE}_{missing}"):
        find_landsat_products(tmp_path, "T31UDS")


def test_landsat_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(InputDataError, match="Landsat directory not found"):
        find_landsat_products(tmp_path / "absent", "T31UDS")
    (tmp_path / f"{SCENE}.tar").write_bytes(b"not a tar at all" * 100)
    with pytest.raises(InputDataError, match="corrupt or unreadable tar") as error:
        find_landsat_products(tmp_path, "T31UDS")
    assert "\n" not in str(error.value)
    (tmp_path / f"{SCENE}.tar").unlink()
    (tmp_path / "LC08_L2SP_notascene").mkdir()
    with pytest.raises(InputDataError, match="no Landsat Collection 2 Level-2 scene"):
        find_landsat_products(tmp_path, "T31UDS")


# --------------------------------------------------------------------------- real data

STAC_CATALOG = REAL / "worldcereal-t31uds-stac" / "stac" / "catalog.json"
THEIA_TILE = REAL / "worldcereal-t31uds" / "S2" / "T31UDS"
LANDSAT_ROOT = REAL / "worldcereal-t31uds-landsat" / "L8"
needs_real = pytest.mark.skipif(
    not REAL.is_dir(),
    reason=f"real data not found at {REAL} (it lives in ../shared beside the repo)",
)


@needs_real
def test_real_stac_catalog_reads_the_theia_reflectances():
    stac = find_stac_products(STAC_CATALOG, "T31UDS")
    theia = {p.date: p for p in find_products(THEIA_TILE, "T31UDS")}
    assert len(stac) == 118
    collection = STAC_CATALOG.parent / "sentinel-2-l2a" / "collection.json"
    assert find_stac_products(collection, "31UDS") == stac
    compared = 0
    window = Window(0, 0, 64, 64)
    for product in stac:
        if product.date not in theia:
            continue
        ours, ours_invalid = read_product_window(product, window, S2_BANDS, SENTINEL2_STAC)
        ref, ref_invalid = read_product_window(theia[product.date], window, S2_BANDS)
        both = ~ours_invalid & ~ref_invalid
        np.testing.assert_array_equal(ours[:, both], ref[:, both], err_msg=str(product.date))
        compared += int(both.any())
    assert compared > 50


def ndvi(red: np.ndarray, nir: np.ndarray) -> np.ndarray:
    red, nir = red.astype(float), nir.astype(float)
    return (nir - red) / (nir + red)


@needs_real
def test_real_landsat_scenes_on_the_theia_grid():
    theia = find_products(THEIA_TILE, "T31UDS")
    grid = tile_grid_of(theia[0], SENTINEL2_THEIA)
    products = find_landsat_products(LANDSAT_ROOT, "T31UDS", footprint=(grid.crs, grid.bounds))
    assert len(products) == 24
    assert sum(1 + len(p.same_day) for p in products) == 26
    merged = [p.date for p in products if p.same_day]
    assert merged == [dt.date(2018, 6, 6), dt.date(2018, 7, 24)]
    window = Window(0, 0, grid.width, grid.height)
    compared = 0
    for product in products:
        values, invalid = read_product_window(product, window, L8_BANDS, LANDSAT8, grid=grid)
        if invalid.all():
            continue
        valid = values[:, ~invalid].astype(float) / 10000
        assert valid.min() >= 0 and valid.max() <= 1, product.name
        # NDVI as Sentinel-2 saw it within 3 days, pixel by pixel
        s2 = min(theia, key=lambda p: abs((p.date - product.date).days))
        s2_values, s2_invalid = read_product_window(s2, window, ["B4", "B8"])
        both = ~invalid & ~s2_invalid
        if abs((s2.date - product.date).days) > 3 or both.sum() < 1000:
            continue
        landsat_ndvi = ndvi(values[L8_BANDS.index("B4")], values[L8_BANDS.index("B5")])[both]
        s2_ndvi = ndvi(s2_values[0], s2_values[1])[both]
        assert np.corrcoef(landsat_ndvi, s2_ndvi)[0, 1] > 0.75, product.name
        assert abs(np.mean(landsat_ndvi - s2_ndvi)) < 0.08, product.name
        compared += 1
    assert compared >= 8


def test_landsat_alone_over_several_tiles_needs_tile_folders(tmp_path):
    from sitsmap.config import config_from_mapping
    from sitsmap.pipeline.sources import _check_tile_folders, image_sources

    scenes = tmp_path / "L8"
    (scenes / "T31UDS").mkdir(parents=True)
    chain = {
        "output_path": str(tmp_path / "out"),
        "list_tile": "T31UDS T31UDR",
        "ground_truth": "/gt.shp",
        "l8_path": str(scenes),
    }
    config = config_from_mapping({"chain": chain})
    with pytest.raises(InputDataError, match="none for T31UDR"):
        _check_tile_folders(image_sources(config)[0], config.chain.list_tile)
