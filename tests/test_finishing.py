"""Finished maps: COGs with majority or average overviews, QGIS styles, attribute tables."""

import ctypes
import glob
import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from sitsmap.io.finishing import finish_raster, overview_count
from sitsmap.io.raster import RasterGrid, read_raster, read_raster_info, write_raster
from sitsmap.nomenclature import Nomenclature
from sitsmap.pipeline.steps.mosaic import with_undecided

SIZE = 200
GRID = RasterGrid(
    SIZE, SIZE, Affine(10.0, 0, 600_000.0, 0, -10.0, 6_300_000.0), CRS.from_epsg(2154)
)
NOMENCLATURE = Nomenclature(
    names={10: "Crops & <orchards>", 30: "Forêt", 40: "Water"},
    colors={10: (20, 20, 20), 30: (250, 250, 250), 40: (80, 80, 80)},
)
"""Averaging the colours of three 10s and one 30 gives the colour of 40 (GDAL's AVERAGE
over a colour table), averaging their codes gives 15: only a majority gives 10."""


def class_map(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A map of 10 and 30 whose 2 x 2 blocks hold 3 pixels of one code and 1 of the other.

    Returns the map and its expected majority overview: the average of a block
    (15 or 25) would be a code the map does not hold.
    """
    majority = rng.choice(np.array([10, 30], dtype=np.uint8), size=(SIZE // 2, SIZE // 2))
    majority[:5] = 0  # nodata, whole blocks
    full = np.repeat(np.repeat(majority, 2, axis=0), 2, axis=1)
    full[::2, ::2] = np.where(majority == 0, 0, 40 - majority)  # 10 <-> 30
    return full, majority


@pytest.fixture
def class_tif(tmp_path):
    data, majority = class_map(np.random.default_rng(0))
    path = tmp_path / "Classif_Seed_0.tif"
    colours = {code: NOMENCLATURE.color(code) for code in NOMENCLATURE.codes}
    write_raster(path, data, GRID, nodata=0, colormap=colours, descriptions=["classes"])
    return path, data, majority


@pytest.fixture
def probability_tif(tmp_path):
    data = np.random.default_rng(1).integers(0, 101, size=(3, SIZE, SIZE), dtype=np.uint8)
    path = tmp_path / "ProbabilityMap_Seed_0.tif"
    write_raster(path, data, GRID, nodata=255, descriptions=["a", "b", "c"])
    return path, data


@pytest.mark.parametrize("coloured", [True, False])
def test_class_map_becomes_a_cog_with_majority_overviews(class_tif, coloured):
    path, data, majority = class_tif
    if not coloured:
        write_raster(path, data, GRID, nodata=0, descriptions=["classes"])
    finish_raster(path, "classes", NOMENCLATURE)
    with rasterio.open(path) as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "2"
        assert src.compression.name.lower() == "deflate"
        assert src.overviews(1) == [2]
        np.testing.assert_array_equal(src.read(1), data)
        assert src.nodata == 0
        assert src.descriptions == ("classes",)
        if coloured:
            assert src.colormap(1)[30] == (250, 250, 250, 255)
    with rasterio.open(path, overview_level=0) as overview:
        np.testing.assert_array_equal(overview.read(1), majority)


def test_probability_overviews_average(probability_tif):
    path, data = probability_tif
    finish_raster(path, "continuous")
    with rasterio.open(path) as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.overviews(1) == [2]
        np.testing.assert_array_equal(src.read(), data)
        assert (src.nodata, src.descriptions) == (255, ("a", "b", "c"))
    mean = data.reshape(3, SIZE // 2, 2, SIZE // 2, 2).mean(axis=(2, 4))
    with rasterio.open(path, overview_level=0) as overview:
        assert np.abs(overview.read().astype(float) - mean).max() <= 0.5
    assert sorted(os.listdir(path.parent)) == [path.name]


def test_the_chain_still_reads_a_cog(class_tif):
    path, data, _ = class_tif
    finish_raster(path, "classes", NOMENCLATURE)
    info = read_raster_info(path)
    assert (info.grid, info.count, info.dtype, info.nodata) == (GRID, 1, "uint8", 0)
    assert info.colormap[10] == (20, 20, 20, 255)
    window = Window(37, 51, 90, 70)
    np.testing.assert_array_equal(read_raster(path, window=window, bands=1), data[51:121, 37:127])


def test_the_style_lists_every_class_with_its_colour_and_name(class_tif):
    path, _, _ = class_tif
    finish_raster(path, "classes", NOMENCLATURE)
    style = ET.parse(path.with_suffix(".qml")).getroot()
    renderer = style.find("./pipe/rasterrenderer")
    assert (renderer.get("type"), renderer.get("band")) == ("paletted", "1")
    entries = [entry.attrib for entry in renderer.iterfind("./colorPalette/paletteEntry")]
    assert [(e["value"], e["color"], e["alpha"], e["label"]) for e in entries] == [
        ("10", "#141414", "255", "Crops & <orchards>"),
        ("30", "#fafafa", "255", "Forêt"),
        ("40", "#505050", "255", "Water"),
    ]


def test_the_attribute_table_has_one_row_per_class(class_tif):
    path, _, _ = class_tif
    finish_raster(path, "classes", NOMENCLATURE)
    table = (
        ET.parse(f"{path}.aux.xml")
        .getroot()
        .find("./PAMRasterBand[@band='1']/GDALRasterAttributeTable")
    )
    assert table.get("tableType") == "thematic"
    fields = [(f.findtext("Name"), f.findtext("Type"), f.findtext("Usage")) for f in table]
    assert fields[:6] == [
        ("Value", "0", "5"),
        ("Class_Name", "2", "2"),
        ("Red", "0", "6"),
        ("Green", "0", "7"),
        ("Blue", "0", "8"),
        ("Alpha", "0", "9"),
    ]
    rows = [[f.text for f in row] for row in table.iterfind("Row")]
    assert rows == [
        ["10", "Crops & <orchards>", "20", "20", "20", "255"],
        ["30", "Forêt", "250", "250", "250", "255"],
        ["40", "Water", "80", "80", "80", "255"],
    ]
    with rasterio.open(path) as src:  # the sidecar does not hide what the file holds
        assert (src.nodata, src.descriptions, src.colormap(1)[40]) == (
            0,
            ("classes",),
            (80, 80, 80, 255),
        )
    assert sorted(os.listdir(path.parent)) == sorted(
        [path.name, f"{path.name}.aux.xml", path.with_suffix(".qml").name]
    )


def test_gdal_reads_the_attribute_table(class_tif):
    path, _, _ = class_tif
    finish_raster(path, "classes", NOMENCLATURE)
    gdal = _bundled_gdal()
    dataset = gdal.GDALOpen(os.fsencode(path), 0)
    try:
        table = gdal.GDALGetDefaultRAT(gdal.GDALGetRasterBand(dataset, 1))
        assert table
        assert gdal.GDALRATGetRowCount(table) == 3
        assert gdal.GDALRATGetValueAsString(table, 1, 1).decode() == "Forêt"
        assert gdal.GDALRATGetValueAsInt(table, 2, 0) == 40
    finally:
        gdal.GDALClose(dataset)


def test_without_nomenclature_no_sidecar_is_left(class_tif):
    path, data, _ = class_tif
    finish_raster(path, "classes", NOMENCLATURE)
    finish_raster(path, "classes")  # again, as a rerun without names would
    assert sorted(os.listdir(path.parent)) == [path.name]
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(src.read(1), data)


def test_small_maps_get_one_overview_large_ones_down_to_a_block(tmp_path):
    assert [overview_count(n, n) for n in (1, 2, 200, 512, 513, 1024, 1025, 10980)] == [
        0, 1, 1, 1, 1, 1, 2, 5,
    ]  # fmt: skip
    path = tmp_path / "tiny.tif"
    write_raster(
        path, np.ones((1, 1, 1), dtype=np.uint16), RasterGrid(1, 1, GRID.transform, GRID.crs)
    )
    finish_raster(path, "classes")
    with rasterio.open(path) as src:
        assert src.overviews(1) == [] and src.read(1).tolist() == [[1]]


def test_unknown_kind_is_refused(class_tif):
    with pytest.raises(ValueError, match="classes"):
        finish_raster(class_tif[0], "categorical")


def test_the_fusion_names_its_undecided_label():
    names = with_undecided(NOMENCLATURE, 255)
    assert (names.name(255), names.color(255), names.name(10)) == (
        "undecided",
        (255, 255, 255),
        "Crops & <orchards>",
    )
    assert 255 not in NOMENCLATURE.names


def _bundled_gdal() -> ctypes.CDLL:
    """The GDAL library inside rasterio's wheel, for what rasterio cannot read (RATs)."""
    found = glob.glob(
        os.path.join(os.path.dirname(rasterio.__path__[0]), "rasterio.libs", "libgdal*")
    )
    if not found:
        pytest.skip("rasterio's wheel bundles no GDAL library here")
    gdal = ctypes.CDLL(found[0])
    pointer, text = ctypes.c_void_p, ctypes.c_char_p
    signatures = {
        "GDALOpen": (pointer, [text, ctypes.c_int]),
        "GDALGetRasterBand": (pointer, [pointer, ctypes.c_int]),
        "GDALGetDefaultRAT": (pointer, [pointer]),
        "GDALRATGetRowCount": (ctypes.c_int, [pointer]),
        "GDALRATGetValueAsString": (text, [pointer, ctypes.c_int, ctypes.c_int]),
        "GDALRATGetValueAsInt": (ctypes.c_int, [pointer, ctypes.c_int, ctypes.c_int]),
        "GDALClose": (None, [pointer]),
    }
    for name, (result, arguments) in signatures.items():
        function = getattr(gdal, name)
        function.restype, function.argtypes = result, arguments
    gdal.GDALAllRegister()
    return gdal
