"""Data-derived names (folds, groups, tiles) never make a path escape output_path."""

import os
import re
from pathlib import Path

import geopandas as gpd
import pytest

from sitsmap.config import config_from_mapping, load_config
from sitsmap.errors import ConfigError, InputDataError, StepError
from sitsmap.pipeline.layout import MAX_NAME_LENGTH, OutputLayout, check_inside, safe_name

SAFE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")

AWKWARD = [
    "../../../x",
    "..",
    ".",
    "/etc",
    "/",
    "a/b",
    "a_b",
    "a\\b",
    ".hidden",
    "_hidden",
    "Région Hauts-de-France",
    "日本",
    "東京",
    "",
    " ",
    "\x00",
    "a\nb",
    "a\tb",
    "x" * 300,
    "x" * 301,
    "y" * MAX_NAME_LENGTH,
    "y" * (MAX_NAME_LENGTH + 1),
    "east",
    "T31TCJ",
    "east-0123456789ab",
    "\udcff",
]


@pytest.mark.parametrize("value", AWKWARD)
def test_safe_name_is_one_harmless_component(value):
    name = safe_name(value)
    assert SAFE.fullmatch(name), name
    assert 0 < len(name) <= MAX_NAME_LENGTH
    assert Path(name).name == name and name not in {".", ".."}
    assert safe_name(value) == name  # deterministic


def test_safe_values_are_kept_and_changed_ones_stay_readable():
    for value in ("east", "T31TCJ", "block_3", "v1.2", "-x"):
        assert safe_name(value) == value
    assert safe_name("../../../x").startswith("x-")
    assert safe_name("Région Nord").startswith("Region_Nord-")
    assert safe_name(".hidden").startswith("hidden-")
    assert safe_name("a/b").startswith("a_b-")


def test_distinct_values_never_share_a_name():
    names = [safe_name(value) for value in AWKWARD]
    assert len(set(names)) == len(AWKWARD)
    # values that a plain character replacement would merge
    assert safe_name("a/b") != safe_name("a_b") != safe_name("a\\b")
    assert safe_name("x" * 300) != safe_name("x" * 301)
    # a safe value that looks like a changed one's name is changed too
    assert safe_name("a_b-" + safe_name("a/b").rsplit("-", 1)[1]) != safe_name("a/b")


def test_safe_name_is_stable_across_processes():
    # a hash of the value's bytes, not Python's salted hash(): the same on every run
    assert safe_name("../x") == "x-" + __import__("hashlib").sha256(b"../x").hexdigest()[:12]


def test_for_fold_with_a_traversal_value_stays_inside(tmp_path):
    layout = OutputLayout(tmp_path / "out")
    for value in ("../../../x", "..", "/etc", "a/b", ""):
        fold = layout.for_fold(value)
        assert fold.runs.parent == layout.crossval
        for path in (fold.final, fold.split(0), fold.left_out, fold.model(0)):
            check_inside(layout.root, path)
            assert os.path.normpath(path).startswith(str(layout.crossval) + os.sep)


def test_per_tile_paths_stay_inside(tmp_path):
    layout = OutputLayout(tmp_path / "out").for_fold("../up")
    paths = [
        layout.pixels_validity("../../x"),
        layout.candidates("../../x", 0),
        layout.tile_samples("../../x", 0),
        layout.classification("../../x", 0),
        layout.classification("/etc", 0, "Confidence"),
    ]
    for path in paths:
        check_inside(layout.root, path)
        assert ".." not in path.parts
    assert layout.pixels_validity("T31TCJ") == layout.root / "features/T31TCJ/PixelsValidity.tif"
    assert layout.classification("T31TCJ", 2).name == "Classif_T31TCJ_seed_2.tif"


def test_check_inside_refuses_what_escapes(tmp_path):
    root = tmp_path / "out"
    assert check_inside(root, root / "a" / "b") == root / "a" / "b"
    check_inside(root, root)
    for outside in (root / ".." / "x", tmp_path / "outside", root / "a" / ".." / ".." / "x"):
        with pytest.raises(StepError, match="lies outside output_path"):
            check_inside(root, outside)
    with pytest.raises(StepError, match="lies outside output_path"):
        OutputLayout(root).inside(Path("/etc/passwd"))


@pytest.mark.parametrize("tiles", ["T31TCJ ../x", "T31TCJ .hidden", ["a/b"], ["T31 TCJ"], ["é"]])
def test_tile_names_are_checked(tiles):
    raw = {"chain": {"output_path": "o", "list_tile": tiles, "s2_path": "s", "ground_truth": "g"}}
    with pytest.raises(ConfigError, match="chain.list_tile: tile name"):
        config_from_mapping(raw)


def test_crossval_with_a_traversal_group_writes_only_under_output_path(world_copy):
    from sitsmap.pipeline.run import run_crossval

    from .test_crossval import FAST

    truth = gpd.read_file(world_copy / "ground_truth.shp")
    middle = truth.total_bounds[[0, 2]].mean()
    truth["block"] = [
        "../../../escaped" if g is not None and not g.is_empty and g.centroid.x < middle else "east"
        for g in truth.geometry
    ]
    truth.to_file(world_copy / "blocks.gpkg")
    output = world_copy / "nested" / "deeper" / "output"
    before = _tree(world_copy.parent)
    config = load_config(
        world_copy / "config.yaml",
        (*FAST, f"chain.ground_truth={world_copy / 'blocks.gpkg'}", f"chain.output_path={output}"),
    )
    run_crossval(config, group_field="block")
    new = {path for path in _tree(world_copy.parent) - before if not _under(path, output)}
    assert new == {world_copy / "nested", world_copy / "nested" / "deeper"}
    folds = sorted(path.name for path in (output / "crossval").iterdir() if path.is_dir())
    assert folds == sorted([safe_name("../../../escaped"), "east"])


def test_task_logs_and_records_of_a_traversal_fold_stay_inside(small_world, tmp_path):
    from sitsmap.pipeline.graph import build_crossval_tasks
    from sitsmap.scheduling.records import record_path

    config = load_config(small_world / "config.yaml", [f"chain.output_path={tmp_path / 'out'}"])
    layout = OutputLayout(config.chain.output_path)
    for task in build_crossval_tasks(config, ["../../../../../../../far"], "block"):
        check_inside(layout.root, layout.logs / f"{task.key}.log")  # as scheduling.execute does
        check_inside(layout.root, record_path(layout.done, task.key))


def _tree(root: Path) -> set[Path]:
    return {
        Path(directory) / name for directory, dirs, files in os.walk(root) for name in dirs + files
    }


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def test_one_tile_listed_twice_under_two_spellings_is_refused(small_world):
    with pytest.raises(ConfigError, match="listed twice"):
        load_config(small_world / "config.yaml", ["chain.list_tile=T31TCJ 31tcj"])


def test_group_values_differing_only_by_case_are_refused(small_world, tmp_path):
    from shapely.geometry import box

    from sitsmap.pipeline.run import _fold_names

    truth = gpd.GeoDataFrame(
        {"code": [1, 2], "zone": ["Forest", "forest"]},
        geometry=[box(0, 0, 10, 10), box(20, 0, 30, 10)],
        crs="EPSG:2154",
    )
    truth.to_file(tmp_path / "truth.gpkg")
    config = load_config(
        small_world / "config.yaml", [f"chain.ground_truth={tmp_path / 'truth.gpkg'}"]
    )
    with pytest.raises(InputDataError, match="differ only by case"):
        _fold_names(config, "zone")
