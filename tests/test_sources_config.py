"""Configuring image sources: one Sentinel-2 source, what is ignored, what is documented."""

import pytest
from click.testing import CliRunner

from sitsmap.cli import cli
from sitsmap.config import config_from_mapping
from sitsmap.config.checks import ineffective_settings
from sitsmap.config.keys import iter_keys
from sitsmap.errors import ConfigError
from sitsmap.pipeline.sources import image_sources

BASE = {"output_path": "/out", "list_tile": "T31TCJ", "ground_truth": "/gt.shp"}


def config(chain: dict, *overrides: str):
    return config_from_mapping({"chain": {**BASE, **chain}}, overrides)


def test_two_sentinel2_sources_are_refused():
    with pytest.raises(ConfigError, match="chain.s2_path and chain.s2_s2c_path are both set"):
        config({"s2_path": "/a", "s2_s2c_path": "/b"})
    with pytest.raises(ConfigError, match="chain.s2_path and stac.catalog"):
        config({"s2_path": "/a"}, "stac.catalog=/c/catalog.json")


def test_a_run_needs_an_image_source():
    with pytest.raises(ConfigError, match="no image source"):
        config({})


def test_sources_in_order_with_their_settings():
    resolved = config(
        {"s2_s2c_path": "/safe", "l8_path": "/l8"},
        "sentinel_2.scl_invalid_classes=[0, 8, 9]",
        "landsat8.qa_invalid_bits=[0, 3]",
        "landsat8.temporal_resolution=8",
        "user_sensor.path=/s1",
        "user_sensor.bands=[vv, vh]",
    )
    sources = image_sources(resolved)
    assert [s.key for s in sources] == ["chain.s2_s2c_path", "chain.l8_path", "user_sensor.path"]
    safe, landsat, user = sources
    assert safe.sensor.mask.values == (0, 8, 9)
    assert landsat.sensor.mask.values == (0, 3) and landsat.sensor.warped
    assert landsat.settings.temporal_resolution == 8
    assert user.sensor.band_names == ("VV", "VH") and not user.sensor.brightness


@pytest.mark.parametrize("model", ["TempCNN", "LTAE"])
def test_temporal_networks_need_one_series(model):
    deep = f"arg_train.deep_learning_parameters={{dl_name: {model}, epochs: 1}}"
    config({"s2_path": "/a"}, deep)  # one sensor: fine
    with pytest.raises(ConfigError, match="reads one sensor's time series"):
        config({"s2_path": "/a", "l8_path": "/l8"}, deep)


def test_stac_catalog_urls_stay_urls_and_paths_become_absolute(tmp_path):
    from sitsmap.config import load_config

    path = tmp_path / "config.yaml"
    url = "https://earth-search.aws.element84.com/v1"
    path.write_text(
        f"chain: {{output_path: out, list_tile: T31TCJ, ground_truth: gt.shp}}\n"
        f"stac: {{catalog: {url}}}\n"
    )
    assert load_config(path).stac.catalog == url
    path.write_text(
        "chain: {output_path: out, list_tile: T31TCJ, ground_truth: gt.shp}\n"
        "stac: {catalog: stac/catalog.json}\n"
    )
    assert load_config(path).stac.catalog == str(tmp_path / "stac" / "catalog.json")


def test_unknown_stac_band_and_landsat_band_are_refused():
    with pytest.raises(ConfigError, match="unknown band"):
        config({"s2_path": "/a"}, "stac.assets={red: B13}")
    with pytest.raises(ConfigError, match="unknown band"):
        config({"l8_path": "/a"}, "landsat8.keep_bands=[B8]")


def test_settings_of_an_absent_source_are_reported():
    messages = ineffective_settings(
        config(
            {"s2_path": "/a"},
            "landsat8.temporal_resolution=8",
            "stac.collection=other",
            "userFeat.patterns=ALT",
            "sentinel_2.scl_invalid_classes=[8]",
        )
    )
    assert "landsat8.temporal_resolution has no effect: no chain.l8_path" in messages
    assert "stac.collection has no effect: no stac.catalog" in messages
    assert "userFeat.patterns has no effect: no chain.user_feat_path" in messages
    assert any(m.startswith("sentinel_2.scl_invalid_classes has no effect") for m in messages)


def test_every_key_is_documented_and_config_keys_prints_the_new_ones():
    undocumented = [doc.key for doc in iter_keys() if not doc.description]
    assert undocumented == []
    result = CliRunner().invoke(cli, ["config", "keys"])
    assert result.exit_code == 0
    for key in (
        "chain.s2_s2c_path",
        "chain.l8_path",
        "chain.user_feat_path",
        "sentinel_2.scl_invalid_classes",
        "landsat8.qa_invalid_bits",
        "stac.catalog",
        "stac.assets",
        "userFeat.patterns",
        "user_sensor.date_pattern",
    ):
        assert f"\n{key} = " in f"\n{result.output}"
    bad = CliRunner().invoke(cli, ["config", "keys", "nope"])
    assert bad.exit_code == 2


def test_stac_assets_must_cover_the_kept_bands_and_scl():
    with pytest.raises(ConfigError, match=r"stac.assets maps no asset to \['B8A', 'SCL'\]"):
        config(
            {},
            "stac.catalog=/c/catalog.json",
            "stac.assets={blue: B2, nir: B8}",
            "sentinel_2.keep_bands=[B2, B8, B8A]",
        )
    config(
        {},
        "stac.catalog=/c/catalog.json",
        "stac.assets={blue: B2, scl: SCL}",
        "sentinel_2.keep_bands=[B2]",
    )


def test_user_band_names_are_letters_and_digits():
    with pytest.raises(ConfigError, match="may hold only letters and digits"):
        config({}, "user_sensor.path=/s1", "user_sensor.bands=[vv_asc, vh]")


def test_user_sensor_files_and_settings_are_fingerprinted(tmp_path):
    from sitsmap.pipeline.graph import build_tasks

    resolved = config(
        {"s2_path": str(tmp_path)}, f"user_sensor.path={tmp_path / 's1'}", "user_sensor.bands=[vv]"
    )
    init = next(task for task in build_tasks(resolved) if task.key == "init")
    assert "user_sensor" in init.reads and tmp_path / "s1" in init.files


def test_earth_search_items_with_the_offset_applied_are_not_offset_twice(tmp_path):
    import json

    from sitsmap.io.stac import find_stac_products

    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "S2B_31UDS_20180601_0_L2A",
        "geometry": None,
        "links": [],
        "properties": {
            "datetime": "2018-06-01T10:50:00Z",
            "grid:code": "MGRS-31UDS",
            "earthsearch:boa_offset_applied": True,
        },
        "assets": {
            "blue": {"href": "./B02.tif", "raster:bands": [{"scale": 0.0001, "offset": -0.1}]},
            "scl": {"href": "./SCL.tif"},
        },
    }
    path = tmp_path / "item.json"
    path.write_text(json.dumps(item))
    collection = {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": "sentinel-2-l2a",
        "description": "x",
        "license": "x",
        "links": [{"rel": "item", "href": "./item.json"}],
        "extent": {
            "spatial": {"bbox": [[-180, -90, 180, 90]]},
            "temporal": {"interval": [[None, None]]},
        },
    }
    (tmp_path / "collection.json").write_text(json.dumps(collection))
    (product,) = find_stac_products(
        str(tmp_path / "collection.json"), "T31UDS", assets={"blue": "B2", "scl": "SCL"}
    )
    assert product.file("B2").gain == 1.0 and product.file("B2").offset == 0.0


def test_settings_of_an_absent_user_sensor_or_sentinel2_are_reported():
    messages = ineffective_settings(
        config({"l8_path": "/l8"}, "user_sensor.scale=10", "sentinel_2.temporal_resolution=5")
    )
    assert "user_sensor.scale has no effect: no user_sensor.path" in messages
    assert "sentinel_2.temporal_resolution has no effect: no Sentinel-2 source" in messages


def test_new_keys_reach_exactly_the_tasks_that_read_them(tmp_path):
    from sitsmap.pipeline.graph import _reads_of, build_tasks
    from sitsmap.pipeline.steps import classification, learning, regions

    resolved = config({"s2_path": str(tmp_path)})
    tasks = {task.key: task for task in build_tasks(resolved)}
    image_keys = (
        "chain.l8_path",
        "landsat8",
        "stac",
        "user_sensor",
        "userFeat",
        "chain.s2_s2c_path",
    )
    for key in (
        "init",
        "preprocessing-T31TCJ",
        "sampling-extraction-T31TCJ-seed0",
        "classification-T31TCJ-seed0",
    ):
        assert set(image_keys) <= set(tasks[key].reads), key
    for key in ("learning-seed0", "mosaic-seed0", "validation-seed0", "split-seed0"):
        assert not set(image_keys) & set(tasks[key].reads), key
    assert "chain.region_border_width" in _reads_of(classification.classify_tile)
    assert "chain.region_fallback" in _reads_of(learning.train)
    assert "chain.region_path" in _reads_of(regions.prepare_region_rasters)
