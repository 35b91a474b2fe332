"""Temporaries left by killed runs are removed, and nothing else."""

import os
from pathlib import Path

from sitsmap.io.atomic import (
    TEMPORARY_NAME,
    atomic_path,
    remove_stale_temporaries,
    temporary_sibling,
)


def files_under(root: Path) -> set[str]:
    return {
        str((Path(top) / name).relative_to(root))
        for top, dirs, files in os.walk(root)
        for name in dirs + files
    }


def test_temporary_sibling_names_match_the_pattern(tmp_path):
    assert TEMPORARY_NAME.match(temporary_sibling(tmp_path / "map.tif").name)


def test_removes_only_temporaries_nested_files_and_directories(tmp_path):
    keep = [
        ".tmp-notes.txt",
        "tmp-x",
        ".tmp-1234567-short.tif",  # 7 hex digits
        ".tmp-0123456G-x.tif",  # not hex
        ".tmp-ABCDEF01-x.tif",  # upper case: not ours
        ".tmp-01234567-",  # no final name
        "a.tmp-01234567-x.tif",
        "classif/T31TCJ/Classif_T31TCJ_seed_0.tif",
    ]
    stale = [
        ".tmp-01234567-config.yaml",
        "classif/T31TCJ/.tmp-89abcdef-Classif_T31TCJ_seed_0.tif",
        "model/seed_0/.tmp-deadbeef-model.bin/weights.pt",  # a directory written atomically
        ".sitsmap/done/.tmp-00000000-init.json",
    ]
    for name in keep + stale:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert remove_stale_temporaries(tmp_path) == 4
    assert files_under(tmp_path) == {
        *keep,
        "classif",
        "classif/T31TCJ",
        "model",
        "model/seed_0",
        ".sitsmap",
        ".sitsmap/done",
    }
    assert remove_stale_temporaries(tmp_path) == 0


def test_never_follows_a_link_out_of_root(tmp_path):
    outside = tmp_path / "outside"
    (outside / ".tmp-01234567-victim").mkdir(parents=True)
    (outside / ".tmp-01234567-file.txt").write_text("mine")
    root = tmp_path / "output"
    root.mkdir()
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (root / ".tmp-abcdef01-link").symlink_to(outside, target_is_directory=True)
    (root / ".tmp-abcdef02-file").symlink_to(outside / ".tmp-01234567-file.txt")
    assert remove_stale_temporaries(root) == 2
    assert (root / "linked").is_symlink()
    assert not os.path.lexists(root / ".tmp-abcdef01-link")
    assert not os.path.lexists(root / ".tmp-abcdef02-file")
    assert (outside / ".tmp-01234567-victim").is_dir()
    assert (outside / ".tmp-01234567-file.txt").read_text() == "mine"


def test_missing_root_removes_nothing(tmp_path):
    assert remove_stale_temporaries(tmp_path / "absent") == 0


def test_cleans_what_a_killed_write_leaves(tmp_path):
    final = tmp_path / "out" / "map.tif"
    final.parent.mkdir()
    final.write_text("complete")
    temporary_sibling(final).write_text("half")  # a SIGKILL skips atomic_path's own cleanup
    with atomic_path(final) as tmp:
        tmp.write_text("new")
    assert remove_stale_temporaries(tmp_path) == 1
    assert files_under(tmp_path) == {"out", "out/map.tif"}
    assert final.read_text() == "new"
