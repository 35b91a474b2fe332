"""Tests of the synthetic world in other product layouts (``sitsmap synth --layout``)."""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from click.testing import CliRunner
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds

from sitsmap.cli import cli
from sitsmap.config import load_config
from sitsmap.errors import ConfigError
from sitsmap.sensors import SENTINEL2_THEIA
from sitsmap.synth import generate_world, tile_grid
from sitsmap.synth.layout import acquisitions
from sitsmap.synth.layouts import (
    LAYOUTS,
    landsat_product_id,
    landsat_qa,
    parse_layouts,
    safe_name,
    stac_item_id,
    write_safe_product,
)
from sitsmap.synth.world import chain_config

from .conftest import REAL_DATA

TILE = "T31TCJ"
SIZE = 64
START, END = dt.date(2018, 5, 1), dt.date(2018, 6, 5)
PLAN = acquisitions(TILE, START, END, 0)
SAFE_BANDS = {"B02": "B2", "B03": "B3", "B04": "B4", "B08": "B8", "B05": "B5", "B06": "B6",
              "B07": "B7", "B8A": "B8A", "B11": "B11", "B12": "B12"}  # fmt: skip
QA_VALUES = {1, 21824, 22280, 23888, 54596, 55052, 23888 | 4 | 32768}
REAL_SAFE = REAL_DATA / "worldcereal-t31uds-safe" / "S2"


def _world(out: Path, *layouts: str) -> Path:
    generate_world(out, [TILE], size=SIZE, start=START, end=END, seed=0, layouts=layouts)
    return out


@pytest.fixture(scope="module")
def theia(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _world(tmp_path_factory.mktemp("theia"), "theia")


@pytest.fixture(scope="module")
def theia_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _world(tmp_path_factory.mktemp("theia_zip"), "theia-zip")


@pytest.fixture(scope="module")
def safe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _world(tmp_path_factory.mktemp("safe"), "safe")


@pytest.fixture(scope="module")
def stac(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _world(tmp_path_factory.mktemp("stac"), "stac")


@pytest.fixture(scope="module")
def safe_zip_landsat(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The world the CLI writes with ``--layout safe-zip --layout landsat``."""
    out = tmp_path_factory.mktemp("cli") / "world"
    period = ["--start", f"{START}", "--end", f"{END}"]
    layouts = ["--layout", "safe-zip", "--layout", "landsat"]
    arguments = ["synth", str(out), "--tiles", TILE, "--size", str(SIZE), *period, *layouts]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 0, result.output
    return out, result.output


# -- helpers --------------------------------------------------------------------------------


def _read(path: str | Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def _theia_product(theia: Path, acquisition) -> Path:
    return theia / "S2" / TILE / acquisition.name


def _fre(product: Path, band: str) -> np.ndarray:
    return _read(SENTINEL2_THEIA.band_path(product, band))


def _masks(product: Path, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(_read(SENTINEL2_THEIA.mask_path(product, m, index)) for m in ("CLM", "EDG", "SAT"))


def _expected_dn(fre: np.ndarray, offset: int) -> np.ndarray:
    return np.where(fre == -10000, 0, fre.astype(np.int32) + offset).astype(np.uint16)


def _expected_flags(product: Path) -> np.ndarray:
    """The SCL a Theia product's 20 m masks give: -1 where a clear class (4, 5 or 6) is due."""
    clm, edg, sat = _masks(product, 2)
    scl = np.full(clm.shape, -1)
    scl[(clm & 32) > 0] = 3
    scl[(clm & 128) > 0] = 10
    scl[(clm & 2) > 0] = 9
    scl[sat > 0] = 1
    scl[edg > 0] = 0
    return scl


def _check_scl(scl: np.ndarray, product: Path) -> None:
    expected = _expected_flags(product)
    flagged = expected >= 0
    assert np.array_equal(scl[flagged], expected[flagged])
    assert set(np.unique(scl[~flagged])) <= {4, 5, 6}


def _config(out: Path) -> dict:
    return yaml.safe_load((out / "config.yaml").read_text())


def _no_leftovers(out: Path) -> None:
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def _tags(root: ET.Element) -> set[str]:
    """Every element path of an XML document, namespaces dropped."""
    paths = set()

    def walk(element: ET.Element, prefix: str) -> None:
        path = f"{prefix}/{element.tag.split('}')[-1]}"
        paths.add(path)
        for child in element:
            walk(child, path)

    walk(root, "")
    return paths


# -- choosing layouts -----------------------------------------------------------------------


def test_layouts_are_parsed_in_canonical_order() -> None:
    assert parse_layouts(["landsat", "safe"]) == ("safe", "landsat")
    assert parse_layouts("landsat, STAC") == ("stac", "landsat")
    assert parse_layouts(["theia"]) == ("theia",)
    assert parse_layouts(["landsat"]) == ("landsat",)
    for layout in LAYOUTS:
        assert parse_layouts([layout]) == (layout,)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["safe", "stac"], "cannot be written together"),
        (["theia,theia-zip"], "cannot be written together"),
        (["jp2"], "unknown layout"),
        ([" , "], "at least one layout"),
    ],
)
def test_bad_layouts_are_config_errors(tmp_path: Path, values: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        generate_world(tmp_path / "w", [TILE], size=32, start=START, end=END, layouts=values)
    assert not (tmp_path / "w").exists()


def test_the_theia_configuration_is_unchanged(theia: Path) -> None:
    raw = chain_config([TILE], START, END)
    assert raw == chain_config([TILE], START, END, ("theia",))
    assert list(raw) == ["chain", "sentinel_2", "arg_train", "arg_classification", "scheduling"]
    assert list(raw["chain"]) == ["output_path", "list_tile", "s2_path", "ground_truth",
                                  "data_field", "nomenclature_path", "color_table", "proj",
                                  "spatial_resolution"]  # fmt: skip
    assert _config(theia) == raw
    _no_leftovers(theia)


# -- theia-zip ------------------------------------------------------------------------------


def test_theia_zip_holds_the_product_folder(theia: Path, theia_zip: Path) -> None:
    tile_dir = theia_zip / "S2" / TILE
    assert sorted(p.name for p in tile_dir.iterdir()) == sorted(f"{a.name}.zip" for a in PLAN)
    acquisition = PLAN[2]
    archive = tile_dir / f"{acquisition.name}.zip"
    with zipfile.ZipFile(archive) as bundle:
        names = set(bundle.namelist())
    product = _theia_product(theia, acquisition)
    for path in SENTINEL2_THEIA.required_files(product):
        member = path.relative_to(product.parent).as_posix()
        assert member in names
        assert np.array_equal(_read(f"/vsizip/{archive}/{member}"), _read(path))
    assert _config(theia_zip)["chain"]["s2_path"] == "S2"
    assert load_config(theia_zip / "config.yaml").chain.s2_path == theia_zip / "S2"
    _no_leftovers(theia_zip)


def test_zips_are_identical_from_run_to_run(tmp_path: Path) -> None:
    worlds = [tmp_path / "a", tmp_path / "b"]
    for out in worlds:
        generate_world(out, [TILE], size=32, start=START, end=dt.date(2018, 5, 8),
                       layouts=["theia-zip"])  # fmt: skip
    first, second = ([p.read_bytes() for p in sorted(w.rglob("*.zip"))] for w in worlds)
    assert first and first == second


# -- SAFE -----------------------------------------------------------------------------------


def test_safe_products_follow_the_sen2cor_layout(safe: Path) -> None:
    names = sorted(p.name for p in (safe / "S2").iterdir())
    assert names == sorted(safe_name(a) for a in PLAN)
    acquisition = PLAN[1]
    sensing = f"{acquisition.date:%Y%m%d}T{acquisition.time:%H%M%S}"
    assert safe_name(acquisition) == (
        f"S2{acquisition.satellite}_MSIL2A_{sensing}_N0500_R051_{TILE}_{sensing}.SAFE"
    )
    product = safe / "S2" / safe_name(acquisition)
    granule = product / "GRANULE" / f"L2A_{TILE}_A000000_{sensing}"
    images = sorted(p.relative_to(granule).as_posix() for p in granule.rglob("*.jp2"))
    expected = [f"IMG_DATA/R10m/{TILE}_{sensing}_{b}_10m.jp2" for b in ("B02", "B03", "B04", "B08")]
    expected += [f"IMG_DATA/R20m/{TILE}_{sensing}_{b}_20m.jp2"
                 for b in ("B05", "B06", "B07", "B8A", "B11", "B12", "SCL")]  # fmt: skip
    assert images == sorted(expected)
    assert (granule / "MTD_TL.xml").is_file() and (product / "MTD_MSIL2A.xml").is_file()
    raw = _config(safe)
    assert raw["chain"]["s2_s2c_path"] == "S2" and "s2_path" not in raw["chain"]
    assert load_config(safe / "config.yaml").chain.s2_s2c_path == safe / "S2"
    assert not (safe / "S2" / TILE).exists()
    _no_leftovers(safe)


def test_safe_product_metadata_matches_the_genuine_fields(safe: Path) -> None:
    acquisition = PLAN[1]
    product = safe / "S2" / safe_name(acquisition)
    root = ET.parse(product / "MTD_MSIL2A.xml").getroot()
    assert root.tag == "{https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd}" \
        "Level-2A_User_Product"  # fmt: skip
    start = root.findtext(".//PRODUCT_START_TIME")
    assert start.startswith(f"{acquisition.date:%Y-%m-%d}T{acquisition.time:%H:%M:%S}.")
    assert root.findtext(".//PROCESSING_BASELINE") == "05.00"
    assert root.findtext(".//PRODUCT_TYPE") == "S2MSI2A"
    assert root.findtext(".//SPACECRAFT_NAME") == f"Sentinel-2{acquisition.satellite}"
    assert root.findtext(".//BOA_QUANTIFICATION_VALUE") == "10000"
    offsets = root.findall(".//BOA_ADD_OFFSET")
    assert [(o.get("band_id"), o.text) for o in offsets] == [(str(i), "-1000") for i in range(13)]
    specials = {s.findtext("SPECIAL_VALUE_TEXT"): s.findtext("SPECIAL_VALUE_INDEX")
                for s in root.iter("Special_Values")}  # fmt: skip
    assert specials == {"NODATA": "0", "SATURATED": "65535"}
    files = [f"{e.text}.jp2" for e in root.iter("IMAGE_FILE")]
    assert len(files) == 11 and all((product / f).is_file() for f in files)


def test_safe_tile_metadata_describes_both_grids(safe: Path) -> None:
    acquisition = PLAN[1]
    granule = next((safe / "S2" / safe_name(acquisition) / "GRANULE").iterdir())
    root = ET.parse(granule / "MTD_TL.xml").getroot()
    grid = tile_grid(TILE, SIZE)
    assert root.findtext(".//HORIZONTAL_CS_CODE") == "EPSG:32631"
    for resolution in (10, 20):
        size = root.find(f".//Size[@resolution='{resolution}']")
        side = SIZE * 10 // resolution
        assert (size.findtext("NROWS"), size.findtext("NCOLS")) == (str(side), str(side))
        position = root.find(f".//Geoposition[@resolution='{resolution}']")
        assert float(position.findtext("ULX")) == grid.transform.c
        assert float(position.findtext("ULY")) == grid.transform.f
        assert float(position.findtext("XDIM")) == resolution


@pytest.mark.skipif(not REAL_SAFE.is_dir(), reason="real SAFE example not found")
def test_safe_metadata_has_the_real_elements(safe: Path) -> None:
    real = next(REAL_SAFE.iterdir())
    ours = safe / "S2" / safe_name(PLAN[0])
    for relative in ("MTD_MSIL2A.xml", "GRANULE/*/MTD_TL.xml"):
        real_tags = _tags(ET.parse(next(real.glob(relative))).getroot())
        our_tags = _tags(ET.parse(next(ours.glob(relative))).getroot())
        assert real_tags == our_tags, relative


def test_safe_bands_are_lossless_jp2_of_the_theia_reflectances(theia: Path, safe: Path) -> None:
    for acquisition in PLAN:
        theia_product = _theia_product(theia, acquisition)
        product = safe / "S2" / safe_name(acquisition)
        for path in product.rglob("*_B*.jp2"):
            band = SAFE_BANDS[path.stem.split("_")[-2]]
            with rasterio.open(path) as src:
                assert src.driver == "JP2OpenJPEG" and src.dtypes[0] == "uint16"
                assert src.tags(ns="IMAGE_STRUCTURE")["COMPRESSION_REVERSIBILITY"] == "LOSSLESS"
                fre = _fre(theia_product, band)
                assert np.array_equal(src.read(1), _expected_dn(fre, 1000))
                with rasterio.open(SENTINEL2_THEIA.band_path(theia_product, band)) as ref:
                    assert src.crs == ref.crs and src.transform == ref.transform


def test_safe_scene_classification_follows_the_masks(theia: Path, safe: Path) -> None:
    seen: set[int] = set()
    for acquisition in PLAN:
        scl_path = next((safe / "S2" / safe_name(acquisition)).rglob("*_SCL_20m.jp2"))
        with rasterio.open(scl_path) as src:
            assert src.dtypes[0] == "uint8" and src.res == (20.0, 20.0)
            scl = src.read(1)
        _check_scl(scl, _theia_product(theia, acquisition))
        seen |= set(np.unique(scl).tolist())
    assert {0, 4, 5, 9} <= seen


def test_an_old_baseline_has_no_offset(theia: Path, tmp_path: Path) -> None:
    acquisition = PLAN[0]
    theia_product = _theia_product(theia, acquisition)
    product = write_safe_product(theia_product, acquisition, tmp_path, baseline="02.14")
    assert product.name == safe_name(acquisition, "02.14") and "_N0214_" in product.name
    root = ET.parse(product / "MTD_MSIL2A.xml").getroot()
    assert root.findtext(".//PROCESSING_BASELINE") == "02.14"
    assert root.find(".//BOA_ADD_OFFSET_VALUES_LIST") is None
    b4 = _read(next(product.rglob("*_B04_10m.jp2")))
    assert np.array_equal(b4, _expected_dn(_fre(theia_product, "B4"), 0))


# -- safe-zip and landsat, from the command line --------------------------------------------


def test_cli_writes_safe_zips_and_landsat(safe_zip_landsat: tuple[Path, str], theia: Path) -> None:
    out, output = safe_zip_landsat
    assert "safe-zip layout" in output and "Landsat 8 L2SP scenes" in output
    raw = _config(out)
    assert raw["chain"]["s2_s2c_path"] == "S2" and raw["chain"]["l8_path"] == "L8"
    assert "s2_path" not in raw["chain"] and "stac" not in raw
    config = load_config(out / "config.yaml")
    assert config.chain.l8_path == out / "L8"
    zips = sorted(p.name for p in (out / "S2").iterdir())
    assert zips == sorted(safe_name(a).replace(".SAFE", ".zip") for a in PLAN)
    acquisition = PLAN[3]
    name = safe_name(acquisition)
    archive = out / "S2" / name.replace(".SAFE", ".zip")
    with zipfile.ZipFile(archive) as bundle:
        members = bundle.namelist()
    assert all(m.startswith(f"{name}/") for m in members) and f"{name}/MTD_MSIL2A.xml" in members
    b8a = next(m for m in members if m.endswith("_B8A_20m.jp2"))
    expected = _expected_dn(_fre(_theia_product(theia, acquisition), "B8A"), 1000)
    assert np.array_equal(_read(f"/vsizip/{archive}/{b8a}"), expected)
    _no_leftovers(out)


def test_cli_refuses_two_sentinel2_layouts_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["synth", str(tmp_path / "w"), "--size", "32", "--layout", "safe", "--layout", "stac"]
    )
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert (
        len(lines) == 1 and lines[0].startswith("sitsmap: error:") and "safe and stac" in lines[0]
    )
    assert not (tmp_path / "w").exists()


def _landsat_scenes(out: Path) -> list[Path]:
    return sorted((out / "L8").iterdir())


def _scene_file(scene: Path, key: str) -> Path:
    suffix = "QA_PIXEL" if key == "QA_PIXEL" else f"SR_{key}"
    return scene / f"{scene.name}_{suffix}.TIF"


def test_landsat_scenes_are_every_third_date_in_zone_30(safe_zip_landsat: tuple[Path, str]) -> None:
    out, _ = safe_zip_landsat
    scenes = _landsat_scenes(out)
    assert [s.name for s in scenes] == sorted(landsat_product_id(a) for a in PLAN[::3])
    assert re.fullmatch(r"LC08_L2SP_199030_\d{8}_\d{8}_02_T1", scenes[0].name)
    grid = tile_grid(TILE, SIZE)
    for scene in scenes:
        names = {p.name for p in scene.iterdir()}
        assert names == {f"{scene.name}_{k}" for k in ("MTL.txt", "MTL.json", "QA_PIXEL.TIF")} | {
            f"{scene.name}_SR_B{n}.TIF" for n in range(2, 8)
        }
        for key in ("B2", "B7", "QA_PIXEL"):
            with rasterio.open(_scene_file(scene, key)) as src:
                assert src.crs.to_epsg() == 32630 and src.res == (30.0, 30.0)
                assert src.dtypes[0] == "uint16" and src.nodata == (1 if key == "QA_PIXEL" else 0)
                assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
                left, bottom, right, top = transform_bounds(src.crs, grid.crs, *src.bounds)
                assert left < grid.bounds[0] and right > grid.bounds[2]
                assert bottom < grid.bounds[1] and top > grid.bounds[3]
                corner = src.read(1)[0, 0]
                assert corner == (1 if key == "QA_PIXEL" else 0)  # outside the tile: fill


def _on_tile(path: Path, resampling: Resampling) -> np.ndarray:
    grid = tile_grid(TILE, SIZE)
    with rasterio.open(path) as src, WarpedVRT(
        src, crs=grid.crs, transform=grid.transform, width=SIZE, height=SIZE,
        resampling=resampling,
    ) as vrt:  # fmt: skip
        return vrt.read(1)


def test_landsat_reflectance_matches_the_tile(
    safe_zip_landsat: tuple[Path, str], theia: Path
) -> None:
    out, _ = safe_zip_landsat
    for acquisition, scene in zip(PLAN[::3], _landsat_scenes(out), strict=True):
        product = _theia_product(theia, acquisition)
        clm, edg, _ = _masks(product, 1)
        qa = _on_tile(_scene_file(scene, "QA_PIXEL"), Resampling.nearest)
        for landsat, sentinel2 in (("B4", "B4"), ("B5", "B8"), ("B6", "B11")):
            dn = _on_tile(_scene_file(scene, landsat), Resampling.bilinear).astype(float)
            fre = _fre(product, sentinel2).astype(np.float32)
            if fre.shape != clm.shape:
                fre = np.kron(fre, np.ones((2, 2), np.float32))
            clear = (qa == 21824) & (clm == 0) & (edg == 0) & (dn > 0)
            if clear.sum() < 200:
                continue
            landsat_reflectance, reflectance = dn[clear] * 2.75e-5 - 0.2, fre[clear] / 10000
            assert np.median(np.abs(landsat_reflectance - reflectance)) < 0.015
            assert np.corrcoef(landsat_reflectance, reflectance)[0, 1] > 0.9


def test_landsat_quality_follows_the_masks(safe_zip_landsat: tuple[Path, str], theia: Path) -> None:
    out, _ = safe_zip_landsat
    cloudy = 0
    for acquisition, scene in zip(PLAN[::3], _landsat_scenes(out), strict=True):
        qa_native = _read(_scene_file(scene, "QA_PIXEL"))
        assert set(np.unique(qa_native).tolist()) <= QA_VALUES
        fill = qa_native == 1
        for n in range(2, 8):
            assert np.array_equal(_read(_scene_file(scene, f"B{n}")) == 0, fill)
        clm, edg, _ = _masks(_theia_product(theia, acquisition), 1)
        qa = _on_tile(_scene_file(scene, "QA_PIXEL"), Resampling.nearest)
        inside = qa != 1
        assert not (inside & (edg > 0)).any()
        clear = inside & ((qa & 0b11100) == 0)
        assert not (clear & (clm > 0)).any()  # a clear 30 m pixel has no flagged 10 m one
        cloud = (clm & 2) > 0
        assert ((qa[cloud & inside] & 8) > 0).all()
        cloudy += int(cloud.sum())
    assert cloudy > 0


def test_landsat_metadata_in_both_forms(safe_zip_landsat: tuple[Path, str]) -> None:
    out, _ = safe_zip_landsat
    acquisition, scene = PLAN[3], _landsat_scenes(out)[1]
    document = json.loads((scene / f"{scene.name}_MTL.json").read_text())
    groups = document["LANDSAT_METADATA_FILE"]
    image = groups["IMAGE_ATTRIBUTES"]
    assert image["DATE_ACQUIRED"] == f"{acquisition.date}"
    assert (image["WRS_PATH"], image["WRS_ROW"]) == ("199", "30")
    assert 0.0 <= float(image["CLOUD_COVER"]) <= 100.0
    assert groups["PRODUCT_CONTENTS"]["LANDSAT_PRODUCT_ID"] == scene.name
    assert groups["PROJECTION_ATTRIBUTES"]["UTM_ZONE"] == "30"
    reflectance = groups["LEVEL2_SURFACE_REFLECTANCE_PARAMETERS"]
    assert reflectance["REFLECTANCE_MULT_BAND_4"] == "2.75E-05"
    assert reflectance["REFLECTANCE_ADD_BAND_4"] == "-0.200000"
    text = (scene / f"{scene.name}_MTL.txt").read_text()
    assert text.startswith("GROUP = LANDSAT_METADATA_FILE\n") and text.endswith("END\n")
    pairs = dict(re.findall(r"^\s+(\w+) = (.+)$", text, flags=re.MULTILINE))
    pairs = {k: v for k, v in pairs.items() if k not in ("GROUP", "END_GROUP")}
    flat = {k: v for group in groups.values() for k, v in group.items()}
    assert {k: v.strip('"') for k, v in pairs.items()} == flat
    assert pairs["SPACECRAFT_ID"] == '"LANDSAT_8"' and pairs["WRS_PATH"] == "199"


def test_landsat_alone_needs_no_sentinel2_key(tmp_path: Path) -> None:
    out = _world(tmp_path / "w", "landsat")
    raw = _config(out)
    assert raw["chain"]["l8_path"] == "L8"
    assert not {"s2_path", "s2_s2c_path"} & set(raw["chain"]) and "stac" not in raw
    assert len(_landsat_scenes(out)) == len(PLAN[::3]) and not (out / "S2").exists()
    _no_leftovers(out)


def test_quality_codes_are_the_real_common_values() -> None:
    fill = np.array([[True, False, False, False, False, False]])
    cloud = np.array([[True, True, False, False, False, True]])
    shadow = np.array([[False, True, True, False, False, False]])
    cirrus = np.array([[False, False, False, True, False, True]])
    qa = landsat_qa(fill, cloud & ~fill, shadow, cirrus)
    assert qa.tolist() == [[1, 22280, 23888, 54596, 21824, 55052]]


# -- STAC -----------------------------------------------------------------------------------


def _item(stac: Path, acquisition) -> tuple[Path, dict]:
    item_id = stac_item_id(acquisition)
    path = stac / "stac" / "sentinel-2-l2a" / item_id / f"{item_id}.json"
    return path, json.loads(path.read_text())


def test_stac_catalog_links_resolve(stac: Path) -> None:
    root = stac / "stac"
    catalog = json.loads((root / "catalog.json").read_text())
    assert catalog["type"] == "Catalog" and catalog["stac_version"] == "1.0.0"
    child = next(link for link in catalog["links"] if link["rel"] == "child")
    collection_path = (root / child["href"]).resolve()
    collection = json.loads(collection_path.read_text())
    assert collection["id"] == "sentinel-2-l2a" and collection["type"] == "Collection"
    items = [link for link in collection["links"] if link["rel"] == "item"]
    assert len(items) == len(PLAN)
    for link in collection["links"] + catalog["links"]:
        if not link["href"].startswith("http"):
            base = collection_path.parent if link in collection["links"] else root
            assert (base / link["href"]).is_file(), link
    raw = _config(stac)
    assert raw["stac"] == {"catalog": "stac/catalog.json"} and "s2_path" not in raw["chain"]
    assert load_config(stac / "config.yaml").stac.catalog == str(root / "catalog.json")
    _no_leftovers(stac)


def test_stac_items_carry_earth_search_fields(stac: Path) -> None:
    acquisition = PLAN[2]
    path, item = _item(stac, acquisition)
    assert item["id"] == f"S2{acquisition.satellite}_31TCJ_{acquisition.date:%Y%m%d}_0_L2A"
    properties = item["properties"]
    assert properties["datetime"].startswith(f"{acquisition.date}T{acquisition.time:%H:%M:%S}")
    assert properties["platform"] == f"sentinel-2{acquisition.satellite.lower()}"
    assert properties["constellation"] == "sentinel-2" and properties["proj:epsg"] == 32631
    assert (properties["mgrs:utm_zone"], properties["mgrs:latitude_band"]) == (31, "T")
    assert properties["mgrs:grid_square"] == "CJ" and properties["grid:code"] == "MGRS-31TCJ"
    assert set(item["assets"]) == {"blue", "green", "red", "rededge1", "rededge2", "rededge3",
                                   "nir", "nir08", "swir16", "swir22", "scl"}  # fmt: skip
    for link in item["links"]:
        assert (path.parent / link["href"]).is_file()
    scl = _read(path.parent / "SCL.tif")
    valid = scl > 0
    cloudy = 100.0 * np.isin(scl[valid], (8, 9, 10)).mean() if valid.any() else 0.0
    assert properties["eo:cloud_cover"] == pytest.approx(cloudy, abs=1e-4)


def test_stac_assets_hold_the_theia_reflectances(theia: Path, stac: Path) -> None:
    stac_bands = {"blue": "B2", "green": "B3", "red": "B4", "rededge1": "B5", "rededge2": "B6",
                  "rededge3": "B7", "nir": "B8", "nir08": "B8A", "swir16": "B11",
                  "swir22": "B12"}  # fmt: skip
    for acquisition in PLAN[:3]:
        path, item = _item(stac, acquisition)
        product = _theia_product(theia, acquisition)
        for key, asset in item["assets"].items():
            assert asset["href"].startswith("./")
            with rasterio.open(path.parent / asset["href"]) as src:
                assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and src.nodata == 0
                assert list(src.shape) == asset["proj:shape"]
                assert list(src.transform)[:6] == asset["proj:transform"]
                data = src.read(1)
            band = asset["raster:bands"][0]
            if key == "scl":
                assert band["data_type"] == "uint8" and src.res == (20.0, 20.0)
                _check_scl(data, product)
                continue
            assert band == {"nodata": 0, "data_type": "uint16", "bits_per_sample": 15,
                            "spatial_resolution": asset["gsd"], "scale": 0.0001,
                            "offset": -0.1}  # fmt: skip
            assert src.res == (asset["gsd"],) * 2 and asset["eo:bands"][0]["name"] == key
            fre = _fre(product, stac_bands[key])
            assert np.array_equal(data, _expected_dn(fre, 1000))


def test_stac_catalog_reads_with_pystac(stac: Path) -> None:
    pystac = pytest.importorskip("pystac")
    catalog = pystac.Catalog.from_file(str(stac / "stac" / "catalog.json"))
    items = list(catalog.get_items(recursive=True))
    assert len(items) == len(PLAN)
    asset = items[0].assets["red"]
    assert Path(asset.get_absolute_href()).is_file()


# -- regenerating ---------------------------------------------------------------------------


def test_another_layout_replaces_the_older_sentinel2_products(tmp_path: Path) -> None:
    period = {"start": START, "end": dt.date(2018, 5, 12)}
    generate_world(tmp_path, [TILE], size=32, **period, layouts=["theia"])
    assert any((tmp_path / "S2" / TILE).iterdir())
    generate_world(tmp_path, [TILE], size=32, **period, layouts=["safe"])
    assert not any((tmp_path / "S2" / TILE).iterdir())
    safes = [p for p in (tmp_path / "S2").iterdir() if p.suffix == ".SAFE"]
    generate_world(tmp_path, [TILE], size=32, **period, layouts=["theia-zip"])
    assert all(not p.exists() for p in safes)
    zips = list((tmp_path / "S2" / TILE).iterdir())
    assert zips and all(p.suffix == ".zip" for p in zips)
