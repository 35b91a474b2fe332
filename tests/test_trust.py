"""Trust: sitsmap never deletes what it did not create, never serves a stale or mixed map.

Each test reproduces one defect of issue 9 on a 2-tile 96² world and shows it fixed.
"""

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from sitsmap.cli import cli
from sitsmap.config import load_config
from sitsmap.io.output_folder import MARKER, output_lock
from sitsmap.pipeline.run import run_chain

FAST = (
    "arg_train.sample_selection={sampler: periodic, strategy: constant, strategy.constant.nb: 200}",
    "arg_train.otb_classifier_options={classifier.rf.nbtrees: 20, classifier.rf.max: 12}",
    "python_data_managing.number_of_chunks=2",
    "scheduling.scheduler=synchronous",
)
SITSMAP = str(Path(sys.executable).with_name("sitsmap"))


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    from sitsmap.synth import generate_world

    out = tmp_path_factory.mktemp("trust_world")
    generate_world(
        out, ["T31TCJ", "T31TCK"], size=96, start=dt.date(2018, 4, 1), end=dt.date(2018, 9, 30)
    )
    return out


@pytest.fixture(scope="module")
def finished(world, tmp_path_factory) -> Path:
    """A finished random-forest run, shared by the tests that only read it."""
    output = tmp_path_factory.mktemp("finished")
    run_chain(load_config(world / "config.yaml", (*FAST, f"chain.output_path={output}")))
    return output


def sets(*assignments: str) -> list[str]:
    return [arg for a in (*FAST, *assignments) for arg in ("--set", a)]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def read_map(output: Path) -> np.ndarray:
    with rasterio.open(output / "final" / "Classif_Seed_0.tif") as src:
        return src.read()


def records(output: Path) -> dict[str, int]:
    return {p.stem: p.stat().st_mtime_ns for p in (output / ".sitsmap" / "done").glob("*.json")}


def every_file(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


# 1. data loss ---------------------------------------------------------------------------


def test_output_path_holding_the_inputs_is_refused_and_nothing_deleted(world):
    before = every_file(world)
    for output in (str(world), str(world / "S2"), str(world / "S2" / "T31TCJ" / "out")):
        result = invoke(
            "run", str(world / "config.yaml"), *sets(f"chain.output_path={output}"),
            "--set", "chain.remove_output_path=true",
        )  # fmt: skip
        assert result.exit_code == 2, result.output
        assert result.stderr.count("\n") == 1
        assert "input" in result.stderr
    assert every_file(world) == before


@pytest.mark.parametrize("output", ["/", ".."])
def test_root_and_a_parent_of_the_inputs_are_refused(world, output):
    before = every_file(world)
    result = invoke("run", str(world / "config.yaml"), *sets(f"chain.output_path={output}"))
    assert result.exit_code == 2
    assert "chain.output_path" in result.stderr and result.stderr.count("\n") == 1
    assert every_file(world) == before


def test_home_folder_is_refused(world, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    result = invoke("run", str(world / "config.yaml"), *sets(f"chain.output_path={tmp_path}"))
    assert result.exit_code == 2 and "home folder" in result.stderr


def test_a_folder_of_user_files_is_never_written_nor_removed(world, tmp_path):
    output = tmp_path / "my_maps"
    output.mkdir()
    (output / "notes.txt").write_text("three years of field work")
    result = invoke(
        "run", str(world / "config.yaml"), *sets(f"chain.output_path={output}"),
        "--set", "chain.remove_output_path=true",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "not created by sitsmap" in result.stderr
    assert [p.name for p in output.iterdir()] == ["notes.txt"]


def test_remove_output_path_empties_only_a_sitsmap_folder(world, tmp_path):
    output = tmp_path / "out"
    args = ["run", str(world / "config.yaml"), *sets(f"chain.output_path={output}")]
    assert invoke(*args, "--last-step", "init").exit_code == 0
    assert (output / MARKER).is_file()
    (output / "init" / "stray.txt").write_text("left by an earlier run")
    result = invoke(*args, "--last-step", "init", "--set", "chain.remove_output_path=true")
    assert result.exit_code == 0, result.output
    assert not (output / "init" / "stray.txt").exists()
    assert (output / MARKER).is_file() and (output / "init" / "acquisitions.json").is_file()


# 2. stale results -----------------------------------------------------------------------


def copy_of(finished: Path, tmp_path: Path) -> Path:
    """A private copy of the finished run: an output folder moved stays up to date."""
    output = tmp_path / "out"
    shutil.copytree(finished, output)
    return output


def test_changed_config_reruns_exactly_the_affected_tasks(world, finished, tmp_path):
    output = copy_of(finished, tmp_path)
    base = ["run", str(world / "config.yaml"), *sets(f"chain.output_path={output}")]
    assert invoke(*base, "--dry-run").output.startswith("nothing to do")
    before = records(output)

    change = ("--set", "arg_train.classifier=lightgbm")
    dry = invoke(*base, *change, "--dry-run")
    assert dry.exit_code == 0
    planned = {line.split()[0] for line in dry.stdout.splitlines()[1:]}
    assert planned == {
        "learning-seed0", "classification-T31TCJ-seed0", "classification-T31TCK-seed0",
        "mosaic-seed0", "postprocessing-seed0", "validation-seed0",
        "validation-smoothed-seed0", "validation-regularised-seed0", "validation-summary",
    }  # fmt: skip
    assert "arg_train.classifier changed ('rf' → 'lightgbm')" in dry.output
    assert records(output) == before  # a dry run changes nothing

    assert invoke(*base, *change).exit_code == 0
    after = records(output)
    rerun = {key for key in after if after[key] != before.get(key)}
    assert rerun == planned

    assert "classifier: lightgbm" in (output / "config.yaml").read_text()  # what the report shows
    clean = tmp_path / "clean"
    args = ["run", str(world / "config.yaml"), *sets(f"chain.output_path={clean}"), *change]
    assert invoke(*args).exit_code == 0
    np.testing.assert_array_equal(read_map(output), read_map(clean))
    assert not np.array_equal(read_map(output), read_map(finished))


def test_scheduler_and_workers_rerun_nothing(world, finished):
    args = sets(f"chain.output_path={finished}")
    for extra in (
        ["--set", "scheduling.scheduler=threads"],
        ["--workers", "1"],
        ["--set", "task_retry_limits={allowed_retry: 2, maximum_cpu: 1, maximum_ram: 4}"],
        ["--set", "python_data_managing.number_of_chunks=5"],  # features are bit-identical
    ):
        result = invoke("run", str(world / "config.yaml"), *args, *extra, "--dry-run")
        assert result.exit_code == 0
        assert result.output.startswith("nothing to do")


def test_a_changed_input_file_makes_its_tasks_stale(world, tmp_path):
    copy = tmp_path / "world"
    shutil.copytree(world, copy, ignore=shutil.ignore_patterns("output"))
    output = tmp_path / "out"
    args = ["--set", f"chain.output_path={output}", "--last-step", "split"]  # preprocessing too
    assert invoke("run", str(copy / "config.yaml"), *sets(), *args).exit_code == 0
    nomenclature = copy / "nomenclature.txt"
    nomenclature.write_text(nomenclature.read_text().replace("Water", "Open water"))
    steps = invoke("steps", str(copy / "config.yaml"), *sets(f"chain.output_path={output}"))
    assert steps.exit_code == 0
    assert f"input changed: {nomenclature}" in steps.output
    states = {
        line.split()[0]: line.split()[2] for line in steps.output.splitlines() if line[0] != " "
    }
    # the polygons are read again, the Sentinel-2 products are not
    assert states["init"] == "stale" and states["split"] == "stale"
    assert states["preprocessing"] == "done"


def test_products_linked_from_a_store_are_followed(world, tmp_path):
    copy = tmp_path / "world"
    shutil.copytree(world, copy, ignore=shutil.ignore_patterns("T31TCJ"))
    (copy / "S2" / "T31TCJ").mkdir()
    for product in sorted((world / "S2" / "T31TCJ").iterdir()):
        (copy / "S2" / "T31TCJ" / product.name).symlink_to(product, target_is_directory=True)
    args = sets(f"chain.output_path={tmp_path / 'out'}")
    assert invoke("run", str(copy / "config.yaml"), *args, "--last-step", "init").exit_code == 0
    dry = invoke("run", str(copy / "config.yaml"), *args, "--last-step", "init", "--dry-run")
    assert dry.stdout.startswith("nothing to do")
    sorted((copy / "S2" / "T31TCJ").iterdir())[-1].unlink()  # the store lost a product
    dry = invoke("run", str(copy / "config.yaml"), *args, "--last-step", "init", "--dry-run")
    assert "init " in dry.stdout and "input changed" in dry.stdout


def test_upper_case_shapefile_parts_are_fingerprinted(world, tmp_path):
    from sitsmap.pipeline.graph import build_tasks
    from sitsmap.scheduling.fingerprints import task_fingerprints

    for part in world.glob("ground_truth.*"):
        shutil.copy(part, tmp_path / f"GT{part.suffix.upper()}")
    config = load_config(world / "config.yaml", [f"chain.ground_truth={tmp_path / 'GT.SHP'}"])
    before = task_fingerprints(build_tasks(config), config)["init-ground-truth"]
    with (tmp_path / "GT.DBF").open("r+b") as dbf:  # a class code edited in the table only
        dbf.seek(-2, os.SEEK_END)
        dbf.write(b"9")
    after = task_fingerprints(build_tasks(config), config)["init-ground-truth"]
    assert before.digest != after.digest


def test_more_runs_keep_the_first_runs_tasks(world, finished):
    args = sets(f"chain.output_path={finished}", "arg_train.runs=2")
    dry = invoke("run", str(world / "config.yaml"), *args, "--dry-run")
    planned = {line.split()[0] for line in dry.stdout.splitlines()[1:]}
    assert "learning-seed1" in planned and "validation-summary" in planned
    assert not any("seed0" in key for key in planned)


def test_dry_run_knows_remove_output_path_and_inverted_ranges(world, finished):
    args = ["run", str(world / "config.yaml"), *sets(f"chain.output_path={finished}")]
    dry = invoke(*args, "--set", "chain.remove_output_path=true", "--dry-run")
    assert ", 0 up to date" in dry.stdout.splitlines()[0] and "emptied first" in dry.stdout
    inverted = invoke(*args, "--first-step", "sampling", "--last-step", "init")
    assert inverted.exit_code == 2 and "comes after" in inverted.stderr


def test_nested_output_folders_are_refused(world, finished, tmp_path):
    inside = invoke("run", str(world / "config.yaml"), *sets(f"chain.output_path={finished / 'b'}"))
    assert inside.exit_code == 2 and "inside another sitsmap output folder" in inside.stderr
    holder = tmp_path / "holder"
    holder.mkdir()
    shutil.copytree(finished, holder / "old_run")
    outer = invoke("run", str(world / "config.yaml"), *sets(f"chain.output_path={holder}"))
    assert outer.exit_code == 2 and "not created by sitsmap" in outer.stderr
    (holder / ".sitsmap").mkdir()
    (holder / ".sitsmap" / "done").mkdir()
    outer = invoke("run", str(world / "config.yaml"), *sets(f"chain.output_path={holder}"))
    assert outer.exit_code == 2 and "holds another sitsmap output folder" in outer.stderr


def test_first_step_forces_its_steps_and_invalidates_downstream(world, finished, tmp_path):
    output = copy_of(finished, tmp_path)
    base = ["run", str(world / "config.yaml"), *sets(f"chain.output_path={output}")]
    before = records(output)
    result = invoke(*base, "--first-step", "learning", "--last-step", "learning")
    assert result.exit_code == 0, result.output
    after = records(output)
    assert after["learning-seed0"] != before["learning-seed0"]
    assert after["sampling-table-seed0"] == before["sampling-table-seed0"]
    assert "classification-T31TCJ-seed0" not in after and "mosaic-seed0" not in after
    steps = invoke("steps", str(world / "config.yaml"), *sets(f"chain.output_path={output}"))
    states = {
        line.split()[0]: line.split()[2] for line in steps.output.splitlines() if line[0] != " "
    }
    assert states["learning"] == "done" and states["classification"] == "missing"

    dry = invoke(*base, "--dry-run")
    assert "classification-T31TCJ-seed0" in dry.output and "learning-seed0" not in dry.output


# 3. mixed results -------------------------------------------------------------------------


def test_a_second_run_on_a_busy_folder_refuses_and_the_first_finishes(world, tmp_path):
    output = tmp_path / "out"
    first = subprocess.Popen(
        [SITSMAP, "run", str(world / "config.yaml"), *sets(f"chain.output_path={output}")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lock_info = output / ".sitsmap" / "lock.json"
    deadline = time.time() + 60
    while not lock_info.exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert lock_info.exists(), "the first run never took the lock"
    second = subprocess.run(
        [SITSMAP, "run", str(world / "config.yaml"),
         *sets(f"chain.output_path={output}", "sentinel_2.temporal_resolution=20",
               "chain.remove_output_path=true")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert second.returncode == 2
    assert second.stderr.count("\n") == 1
    assert f"PID {first.pid}" in second.stderr
    assert first.wait(timeout=300) == 0, first.stderr
    steps = invoke("steps", str(world / "config.yaml"), *sets(f"chain.output_path={output}"))
    assert all(line.split()[2] == "done" for line in steps.output.splitlines() if line[0] != " ")


def test_a_killed_run_leaves_no_lock_behind(tmp_path):
    output = tmp_path / "out"
    (output / ".sitsmap").mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path\n"
         "from sitsmap.io.output_folder import output_lock\n"
         "with output_lock(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(60)",
         str(output)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(Exception, match=f"PID {holder.pid}"), output_lock(output):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with output_lock(output):
        assert json.loads((output / ".sitsmap" / "lock.json").read_text())["pid"] == os.getpid()


def test_resume_after_kill_9_gives_the_same_map_and_removes_leftovers(world, finished, tmp_path):
    output = tmp_path / "out"
    command = [SITSMAP, "run", str(world / "config.yaml"), *sets(f"chain.output_path={output}")]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = output / ".sitsmap" / "done"
    deadline = time.time() + 120
    while not (done / "learning-seed0.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert not (done / "validation-summary.json").exists(), "the run ended before the kill"
    leftover = output / "classif" / ".tmp-0badc0de-Classif_T31TCJ_seed_0.tif"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"half a GeoTIFF")
    assert subprocess.run(command, capture_output=True, timeout=300).returncode == 0
    assert not leftover.exists()
    np.testing.assert_array_equal(read_map(output), read_map(finished))
