"""Sen2Cor L2A SAFE products: finding them (folders and zips), their scaling and masks."""

import datetime as dt
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

from sitsmap.errors import InputDataError
from sitsmap.io.products import find_products, tile_grid_of
from sitsmap.io.reading import read_product_window
from sitsmap.io.safe import find_safe_products
from sitsmap.sensors import SENTINEL2_SEN2COR as SEN2COR
from sitsmap.sensors import SENTINEL2_THEIA as THEIA
from sitsmap.sensors.base import NODATA

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
SIZE = 32  # 10 m pixels; 16 at 20 m
ORIGIN = (300000.0, 5000000.0)
TIME = "105031"
BANDS = list(SEN2COR.band_names)
SCL_INVALID = (0, 1, 3, 8, 9, 10)
WHOLE = Window(0, 0, SIZE, SIZE)


# --- generated products ---------------------------------------------------------------------


def reflectance_of(band_index, size):
    """The reflectance x 10000 a test band holds: where the pixel is, and which band."""
    rows, cols = np.indices((size, size))
    return (1 + 2000 * band_index + rows * size + cols).astype(np.int32)


def write_jp2(path, data, resolution):
    """Write a lossless uint8/uint16 JPEG 2000 on the test tile's lattice."""
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "JP2OpenJPEG",
        "width": data.shape[1],
        "height": data.shape[0],
        "count": 1,
        "dtype": data.dtype.name,
        "crs": "EPSG:32631",
        "transform": Affine(resolution, 0, ORIGIN[0], 0, -resolution, ORIGIN[1]),
        "QUALITY": 100,
        "REVERSIBLE": "YES",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def metadata_xml(baseline="05.00", quantification="10000", offsets=True):
    """A minimal MTD_MSIL2A.xml with the real element names (None leaves an element out)."""
    product_info = (
        "" if baseline is None else f"<PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>"
    )
    quantity = (
        ""
        if quantification is None
        else f'<BOA_QUANTIFICATION_VALUE unit="none">{quantification}</BOA_QUANTIFICATION_VALUE>'
    )
    offset_list = ""
    if offsets:
        items = "".join(f'<BOA_ADD_OFFSET band_id="{i}">-1000</BOA_ADD_OFFSET>' for i in range(13))
        offset_list = f"<BOA_ADD_OFFSET_VALUES_LIST>{items}</BOA_ADD_OFFSET_VALUES_LIST>"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<n1:Level-2A_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/'
        'User_Product_Level-2A.xsd"><n1:General_Info>'
        f"<Product_Info><PRODUCT_TYPE>S2MSI2A</PRODUCT_TYPE>{product_info}</Product_Info>"
        "<Product_Image_Characteristics>"
        f"<QUANTIFICATION_VALUES_LIST>{quantity}</QUANTIFICATION_VALUES_LIST>{offset_list}"
        "</Product_Image_Characteristics></n1:General_Info></n1:Level-2A_User_Product>\n"
    )


def safe_name(date, baseline="05.00", tile="T31TCJ", satellite="A", discriminator=None):
    stamp = discriminator or f"{date:%Y%m%d}T{TIME}"
    number = baseline.replace(".", "")
    return f"S2{satellite}_MSIL2A_{date:%Y%m%d}T{TIME}_N{number}_R051_{tile}_{stamp}.SAFE"


def write_safe(
    root,
    date,
    baseline="05.00",
    tile="T31TCJ",
    satellite="A",
    discriminator=None,
    scl=None,
    xml=None,
):
    """Write a tiny SAFE folder; DN = reflectance_of(...) + 1000 from baseline 04.00 on.

    ``scl`` is the 16 x 16 scene classification (4, vegetation, everywhere by default);
    ``xml`` replaces the metadata (the default is :func:`metadata_xml` of ``baseline``).
    """
    folder = Path(root) / safe_name(date, baseline, tile, satellite, discriminator)
    images = folder / "GRANULE" / f"L2A_{tile}_A012345_{date:%Y%m%d}T{TIME}" / "IMG_DATA"
    shift = 1000 if baseline >= "04.00" else 0
    prefix = f"{tile}_{date:%Y%m%d}T{TIME}"
    for index, band in enumerate(SEN2COR.bands):
        size = SIZE * 10 // band.resolution
        key = band.name if band.name == "B8A" else f"B{int(band.name[1:]):02d}"
        dn = (reflectance_of(index, size) + shift).astype(np.uint16)
        name = f"{prefix}_{key}_{band.resolution}m.jp2"
        write_jp2(images / f"R{band.resolution}m" / name, dn, band.resolution)
    # Sen2Cor also resamples the 10 m bands to 20 m: they must not be taken for the bands
    decoy = np.full((SIZE // 2, SIZE // 2), 60000, dtype=np.uint16)
    write_jp2(images / "R20m" / f"{prefix}_B02_20m.jp2", decoy, 20)
    scl = np.full((SIZE // 2, SIZE // 2), 4, dtype=np.uint8) if scl is None else scl
    write_jp2(images / "R20m" / f"{prefix}_SCL_20m.jp2", scl.astype(np.uint8), 20)
    text = metadata_xml(baseline, offsets=baseline >= "04.00") if xml is None else xml
    (folder / "MTD_MSIL2A.xml").write_text(text)
    return folder


def zip_safe(folder, target_dir, suffix=".zip"):
    """Zip a SAFE folder the Data Space's way (``<name>.zip`` holding ``<name>.SAFE/``)."""
    target_dir.mkdir(parents=True, exist_ok=True)
    archive = target_dir / (folder.name.removesuffix(".SAFE") + suffix)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as opened:
        for path in sorted(folder.rglob("*")):
            opened.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
    return archive


def listing(root):
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


def one_product(root, tile="T31TCJ"):
    (product,) = find_safe_products(root, tile)
    return product


@pytest.fixture
def tile_root(tmp_path):
    root = tmp_path / "S2"
    for day in (25, 5):
        write_safe(root, dt.date(2024, 5, day))
    write_safe(root / "t31tcj", dt.date(2024, 5, 15), satellite="B")  # the <tile>/ layout
    write_safe(root, dt.date(2024, 5, 10), tile="T31TDJ")  # another tile
    (root / "README.txt").write_text("not a product")
    (root / "S2A_MSIL1C_20240501T105031_N0510_R051_T31TCJ_20240501T105031.SAFE").mkdir()
    return root


def test_finds_products_of_the_tile_in_both_layouts(tile_root):
    products = find_safe_products(tile_root, "T31TCJ")
    assert [p.date.day for p in products] == [5, 15, 25]
    assert [p.satellite for p in products] == ["A", "B", "A"]
    assert {p.tile for p in products} == {"T31TCJ"}
    assert products[0].version == (500, 20240505105031)
    assert find_safe_products(tile_root, "31tcj") == products


def test_keeps_the_date_range(tile_root):
    products = find_safe_products(tile_root, "T31TCJ", dt.date(2024, 5, 6), dt.date(2024, 5, 25))
    assert [p.date.day for p in products] == [15, 25]


def test_same_date_keeps_the_latest_baseline_then_discriminator(tmp_path):
    day = dt.date(2024, 5, 5)
    write_safe(tmp_path, day, baseline="04.00", discriminator="20250101T000000")
    newest = write_safe(tmp_path, day, baseline="05.10", discriminator="20240601T000000")
    write_safe(tmp_path, day, baseline="05.10", discriminator="20240506T000000")
    assert one_product(tmp_path).path == newest


def test_band_files_at_their_native_resolution(tmp_path):
    product = one_product(write_safe(tmp_path, dt.date(2024, 5, 5)).parent)
    assert [f.key for f in product.files] == [*BANDS, "SCL"]
    for band in SEN2COR.bands:
        assert f"/R{band.resolution}m/" in product.file(band.name).path
    assert product.file("B2").path.endswith("_B02_10m.jp2")
    assert product.file("SCL").path.endswith("_SCL_20m.jp2")
    assert tile_grid_of(product, SEN2COR).width == SIZE


@pytest.mark.parametrize(("baseline", "offset"), [("05.00", -1000.0), ("02.14", 0.0)])
def test_scaling_gives_the_reflectance(tmp_path, baseline, offset):
    product = one_product(write_safe(tmp_path, dt.date(2024, 5, 5), baseline).parent)
    assert {(f.gain, f.offset) for f in product.files if f.key != "SCL"} == {(1.0, offset)}
    reflectance, invalid = read_product_window(product, WHOLE, BANDS, SEN2COR)
    assert not invalid.any()
    for index, band in enumerate(SEN2COR.bands):
        factor = band.resolution // 10
        expected = reflectance_of(index, SIZE // factor)
        expected = np.repeat(np.repeat(expected, factor, axis=0), factor, axis=1)
        np.testing.assert_array_equal(reflectance[index], expected, err_msg=band.name)


def test_quantification_value_sets_gain_and_offset(tmp_path):
    xml = metadata_xml(quantification="1000")
    product = one_product(write_safe(tmp_path, dt.date(2024, 5, 5), xml=xml).parent)
    assert (product.file("B8A").gain, product.file("B8A").offset) == (10.0, -10000.0)


def test_baseline_from_the_name_when_the_metadata_has_none(tmp_path):
    xml = metadata_xml(baseline=None, offsets=False)
    product = one_product(write_safe(tmp_path, dt.date(2024, 5, 5), "03.01", xml=xml).parent)
    assert product.version[0] == 301 and product.file("B4").offset == 0


def test_scene_classes_make_the_mask(tmp_path):
    scl = (np.arange((SIZE // 2) ** 2).reshape(SIZE // 2, SIZE // 2) % 12).astype(np.uint8)
    product = one_product(write_safe(tmp_path, dt.date(2024, 5, 5), scl=scl).parent)
    _, invalid = read_product_window(product, WHOLE, ["B2", "B5"], SEN2COR)
    classes = np.repeat(np.repeat(scl, 2, axis=0), 2, axis=1)
    np.testing.assert_array_equal(invalid, np.isin(classes, SCL_INVALID))
    assert not invalid[classes == 4].any() and invalid[classes == 9].all()


def test_band_nodata_is_invalid(tmp_path):
    folder = write_safe(tmp_path, dt.date(2024, 5, 5))
    path = next(folder.rglob("*_B11_20m.jp2"))
    dn = np.full((SIZE // 2, SIZE // 2), 1500, dtype=np.uint16)
    dn[3, 4] = 0
    write_jp2(path, dn, 20)
    reflectance, invalid = read_product_window(one_product(tmp_path), WHOLE, ["B11"], SEN2COR)
    assert invalid.sum() == 4 and invalid[6:8, 8:10].all()
    assert (reflectance[0][invalid] == NODATA).all() and (reflectance[0][~invalid] == 500).all()


@pytest.mark.parametrize("window", [Window(3, 5, 9, 7), Window(0, 0, SIZE, SIZE)])
def test_a_20m_pixel_lands_on_its_2x2_10m_pixels(tmp_path, window):
    scl = np.full((SIZE // 2, SIZE // 2), 4, dtype=np.uint8)
    scl[4, 3] = 9  # one cloudy 20 m pixel: 10 m rows 8-9, columns 6-7
    product = one_product(write_safe(tmp_path, dt.date(2024, 5, 5), scl=scl).parent)
    reflectance, invalid = read_product_window(product, window, ["B5", "B2"], SEN2COR)
    rows = np.arange(window.height)[:, None] + window.row_off
    cols = np.arange(window.width)[None, :] + window.col_off
    coarse = reflectance_of(SEN2COR.band_names.index("B5"), SIZE // 2)
    np.testing.assert_array_equal(reflectance[0], coarse[rows // 2, cols // 2])
    np.testing.assert_array_equal(reflectance[1], reflectance_of(0, SIZE)[rows, cols])
    np.testing.assert_array_equal(invalid, (rows // 2 == 4) & (cols // 2 == 3))


def test_zip_is_read_in_place_and_reads_the_same(tmp_path):
    folder = write_safe(tmp_path / "folders", dt.date(2024, 5, 5))
    scl = (np.arange((SIZE // 2) ** 2).reshape(SIZE // 2, SIZE // 2) % 12).astype(np.uint8)
    write_jp2(next(folder.rglob("*_SCL_20m.jp2")), scl, 20)
    archive = zip_safe(folder, tmp_path / "zips")
    before = listing(tmp_path)
    product = one_product(archive.parent)
    assert product.path == archive
    assert all(f.path.startswith(f"/vsizip/{archive}/{folder.name}/") for f in product.files)
    window = Window(3, 5, 20, 17)
    zipped = read_product_window(product, window, BANDS, SEN2COR)
    unzipped = read_product_window(one_product(folder.parent), window, BANDS, SEN2COR)
    assert tile_grid_of(product, SEN2COR) == tile_grid_of(one_product(folder.parent), SEN2COR)
    for got, expected in zip(zipped, unzipped, strict=True):
        np.testing.assert_array_equal(got, expected)
    assert zipped[1].any() and not zipped[1].all()
    assert listing(tmp_path) == before


def test_safe_zip_suffix_is_a_product_too(tmp_path):
    folder = write_safe(tmp_path / "folders", dt.date(2024, 5, 5))
    archive = zip_safe(folder, tmp_path / "zips", suffix=".SAFE.zip")
    assert one_product(archive.parent).path == archive


# --- bad input ------------------------------------------------------------------------------


def assert_names(error, path):
    message = str(error.value)
    assert str(path) in message and "\n" not in message, message


def test_missing_root(tmp_path):
    with pytest.raises(InputDataError, match="not found") as error:
        find_safe_products(tmp_path / "nowhere", "T31TCJ")
    assert_names(error, tmp_path / "nowhere")


def test_root_without_a_product_of_the_tile(tmp_path):
    write_safe(tmp_path, dt.date(2024, 5, 5), tile="T31TDJ")
    with pytest.raises(InputDataError, match="no Sentinel-2 L2A SAFE product") as error:
        find_safe_products(tmp_path, "T31TCJ")
    assert_names(error, tmp_path)


@pytest.mark.parametrize("lost", ["*_B8A_20m.jp2", "*_SCL_20m.jp2", "*_B04_10m.jp2"])
def test_product_missing_a_band_or_scl(tmp_path, lost):
    folder = write_safe(tmp_path, dt.date(2024, 5, 5))
    next(folder.rglob(lost)).unlink()
    key = lost.split("_")[1].replace("B04", "B4")
    with pytest.raises(InputDataError, match=f"incomplete SAFE product: no {key} ") as error:
        find_safe_products(tmp_path, "T31TCJ")
    assert_names(error, folder)


def test_zipped_product_missing_a_band(tmp_path):
    folder = write_safe(tmp_path / "folders", dt.date(2024, 5, 5))
    next(folder.rglob("*_B12_20m.jp2")).unlink()
    archive = zip_safe(folder, tmp_path / "zips")
    with pytest.raises(InputDataError, match="no B12") as error:
        find_safe_products(archive.parent, "T31TCJ")
    assert_names(error, archive)


def test_corrupt_zip(tmp_path):
    archive = tmp_path / (safe_name(dt.date(2024, 5, 5)).removesuffix(".SAFE") + ".zip")
    archive.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputDataError, match="corrupt or unreadable zip") as error:
        find_safe_products(tmp_path, "T31TCJ")
    assert_names(error, archive)


@pytest.mark.parametrize(
    ("xml", "problem"),
    [
        (metadata_xml(quantification=None), "no BOA_QUANTIFICATION_VALUE"),
        (metadata_xml(quantification="0"), "not positive"),
        (metadata_xml(quantification="ten"), "not a number"),
        (metadata_xml(offsets=False), "no BOA_ADD_OFFSET for B2"),
        (metadata_xml(baseline="5.0"), "unknown processing baseline '5.0'"),
        (metadata_xml(baseline="100.00"), "unknown processing baseline '100.00'"),
        (metadata_xml(baseline="N0500"), "unknown processing baseline"),
        ("<Level-2A_User_Product><unclosed>", "unreadable product metadata"),
    ],
)
def test_bad_metadata(tmp_path, xml, problem):
    folder = write_safe(tmp_path, dt.date(2024, 5, 5), xml=xml)
    with pytest.raises(InputDataError, match=problem) as error:
        find_safe_products(tmp_path, "T31TCJ")
    assert_names(error, folder / "MTD_MSIL2A.xml")


def test_missing_metadata(tmp_path):
    folder = write_safe(tmp_path, dt.date(2024, 5, 5))
    (folder / "MTD_MSIL2A.xml").unlink()
    with pytest.raises(InputDataError, match="missing product metadata") as error:
        find_safe_products(tmp_path, "T31TCJ")
    assert_names(error, folder / "MTD_MSIL2A.xml")


def test_missing_metadata_in_a_zip(tmp_path):
    folder = write_safe(tmp_path / "folders", dt.date(2024, 5, 5))
    (folder / "MTD_MSIL2A.xml").unlink()
    archive = zip_safe(folder, tmp_path / "zips")
    with pytest.raises(InputDataError, match="missing product metadata") as error:
        find_safe_products(archive.parent, "T31TCJ")
    assert_names(error, archive)


# --- real data ------------------------------------------------------------------------------

real = pytest.mark.skipif(
    not (REAL_DATA / "worldcereal-t31uds-safe").is_dir()
    or not (REAL_DATA / "worldcereal-t31uds").is_dir(),
    reason=f"real WorldCereal SAFE and Theia data not found under {REAL_DATA}",
)
REAL_SAFE = REAL_DATA / "worldcereal-t31uds-safe" / "S2"
REAL_THEIA = REAL_DATA / "worldcereal-t31uds" / "S2" / "T31UDS"
# mixed (cloud and clear), clear and nearly clear dates
COMPARED = ["2017-08-14", "2018-01-16", "2018-06-13", "2018-08-14", "2018-09-18", "2018-11-27"]


@real
def test_real_safe_products_are_found_with_their_dates():
    products = find_safe_products(REAL_SAFE, "T31UDS")
    theia_dates = sorted(
        dt.datetime.strptime(path.name.split("_")[1][:8], "%Y%m%d").date()
        for path in REAL_THEIA.iterdir()
        if path.name.startswith("SENTINEL2")
    )
    assert len(products) == 118
    assert [p.date for p in products] == theia_dates
    assert (products[0].date, products[-1].date) == (dt.date(2017, 8, 4), dt.date(2018, 11, 27))
    assert {p.version[0] for p in products} == {500}
    assert {(f.gain, f.offset) for f in products[0].files if f.key != "SCL"} == {(1.0, -1000.0)}


@real
def test_real_safe_reads_as_the_theia_products_of_the_same_dates():
    safe = {p.date: p for p in find_safe_products(REAL_SAFE, "T31UDS")}
    theia = {p.date: p for p in find_products(REAL_THEIA, "T31UDS", sensor=THEIA)}
    window = Window(0, 0, 64, 64)
    assert tile_grid_of(safe[dt.date(2018, 1, 16)], SEN2COR) == tile_grid_of(
        theia[dt.date(2018, 1, 16)], THEIA
    )
    valid_pixels = invalid_pixels = 0
    for day in map(dt.date.fromisoformat, COMPARED):
        got, got_invalid = read_product_window(safe[day], window, BANDS, SEN2COR)
        expected, expected_invalid = read_product_window(theia[day], window, BANDS, THEIA)
        disagree = int((got_invalid != expected_invalid).sum())
        assert disagree == 0, f"{day}: {disagree} of {got_invalid.size} pixels' masks disagree"
        both = ~got_invalid & ~expected_invalid
        np.testing.assert_array_equal(got[:, both], expected[:, both], err_msg=str(day))
        valid_pixels += int(both.sum())
        invalid_pixels += int(got_invalid.sum())
    assert valid_pixels > 10000 and invalid_pixels > 3000


@real
def test_real_zipped_safe_reads_as_its_folder(tmp_path):
    folder = next(REAL_SAFE.glob("S2A_MSIL2A_20180613T*.SAFE"))
    copy = tmp_path / "S2" / folder.name
    shutil.copytree(folder, copy)
    archive = zip_safe(copy, tmp_path / "zips")
    window = Window(1, 7, 50, 33)
    zipped = read_product_window(one_product(archive.parent, "31UDS"), window, BANDS, SEN2COR)
    unzipped = read_product_window(one_product(copy.parent, "31UDS"), window, BANDS, SEN2COR)
    for got, expected in zip(zipped, unzipped, strict=True):
        np.testing.assert_array_equal(got, expected)
