"""A failed task is one line on stderr and exit code 2, under the ``processes`` scheduler too.

The runs are real ``sitsmap run`` subprocesses on a local Dask cluster: the worker
processes' logging, Dask's own tracebacks and the pickling of errors between the
workers and the client are what these tests are about.
"""

import datetime as dt
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from distributed.core import clean_exception, error_message
from rasterio.crs import CRS
from rasterio.transform import from_origin

from sitsmap.errors import InputDataError, StepError, portable_error
from sitsmap.io.raster import RasterGrid, read_raster, write_raster

SITSMAP = Path(sys.executable).with_name("sitsmap")
PROCESSES = (
    "scheduling.scheduler=processes",
    "scheduling.workers=2",
    "arg_train.otb_classifier_options="
    "{classifier.rf.nbtrees: 5, classifier.rf.max: 5, classifier.rf.min: 5}",
)


@pytest.fixture(scope="module")
def one_tile_world(tmp_path_factory) -> Path:
    """A 1-tile synthetic world, 64² pixels, March to October 2018."""
    from sitsmap.synth import generate_world

    out = tmp_path_factory.mktemp("one_tile")
    generate_world(
        out, ["T31TCJ"], size=64, start=dt.date(2018, 3, 1), end=dt.date(2018, 10, 31), seed=0
    )
    return out


@pytest.fixture
def world(one_tile_world, tmp_path) -> Path:
    target = tmp_path / "world"
    shutil.copytree(one_tile_world, target)
    return target


def sitsmap_run(world: Path, *extra: str, last_step: str | None = None):
    args = [str(SITSMAP), "run", str(world / "config.yaml")]
    if last_step:
        args += ["--last-step", last_step]
    for assignment in (*PROCESSES, *extra):
        args += ["--set", assignment]
    return subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)


def assert_one_line(done, *fragments) -> str:
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("sitsmap: error: ")
    assert "Traceback" not in lines[0]
    for fragment in fragments:
        assert str(fragment) in lines[0]
    return lines[0]


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_geotiff_in_a_worker(world):
    product = sorted((world / "S2" / "T31TCJ").iterdir())[0]
    band = next(product.glob("*_FRE_B4.tif"))
    truncate(band)
    done = sitsmap_run(world, last_step="preprocessing")
    assert_one_line(done, band, "truncated or corrupt GeoTIFF")
    logs = world / "output" / "logs"
    assert "Traceback" in (logs / "preprocessing-T31TCJ.log").read_text()
    assert list(logs.glob("dask-worker-*.log"))  # Dask's own logging went to files


def test_empty_ground_truth_file(world):
    (world / "ground_truth.shp").write_bytes(b"")
    done = sitsmap_run(world, last_step="init")
    assert_one_line(done, world / "ground_truth.shp", "empty")


def test_every_class_with_a_single_polygon(world):
    truth = gpd.read_file(world / "ground_truth.shp")
    truth = truth[~(truth.geometry.isna() | truth.geometry.is_empty)]
    single = truth[truth.is_valid & (truth.geom_type == "Polygon")].drop_duplicates("code")
    assert len(single) > 0
    single.to_file(world / "single.gpkg")
    done = sitsmap_run(world, f"chain.ground_truth={world / 'single.gpkg'}")
    line = assert_one_line(done, "single.gpkg", "no validation polygon")
    assert "chain.split_ground_truth: false" in line


def raster_error(tmp_path) -> InputDataError:
    """The error the chain raises on a truncated GeoTIFF, with rasterio's chain of causes."""
    path = tmp_path / "band.tif"
    grid = RasterGrid(64, 64, from_origin(500_000, 6_350_640, 10, 10), CRS.from_epsg(32631))
    noise = np.random.default_rng(0).integers(0, 10_000, (64, 64), dtype=np.int16)
    write_raster(path, noise, grid)
    truncate(path)
    with pytest.raises(InputDataError) as caught:
        read_raster(path)
    return caught.value


def test_portable_error_survives_dask_pickling(tmp_path):
    error = raster_error(tmp_path)
    assert error.__cause__ is not None
    portable = portable_error(error)
    assert portable.__cause__ is None and portable.__context__ is None
    # what a worker sends back, and what the client rebuilds from it
    message = error_message(portable)
    _, rebuilt, _ = clean_exception(message["exception"].data, message["traceback"].data)
    assert type(rebuilt) is InputDataError
    assert rebuilt.path == error.path
    assert "truncated or corrupt GeoTIFF" in rebuilt.problem
    assert "See previous exception" not in rebuilt.problem


def test_portable_error_of_a_bug_names_the_task_and_log():
    try:
        {}["missing"]
    except KeyError as exc:
        portable = portable_error(exc, "learning-seed0", "/out/logs/learning-seed0.log")
    assert isinstance(portable, StepError)
    assert str(portable) == (
        "/out/logs/learning-seed0.log: task learning-seed0 failed: KeyError: 'missing' "
        "(traceback in this log file)"
    )
    assert str(pickle.loads(pickle.dumps(portable))) == str(portable)


class _FailedFuture:
    """A finished Dask future whose result raises ``error``."""

    key = "classification-T31TCJ-seed0"

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def result(self):
        raise self.error


@pytest.mark.parametrize(
    ("error", "fragment"),
    [
        ("killed", "its worker died"),
        ("cancelled", "CancelledError"),
        ("runtime", "RuntimeError: comm closed"),
    ],
)
def test_what_the_cluster_raises_is_one_scheduling_error(tmp_path, error, fragment):
    from concurrent.futures import CancelledError

    from distributed.scheduler import KilledWorker

    from sitsmap.errors import SchedulingError
    from sitsmap.scheduling.runner import _result

    raised = {
        "killed": KilledWorker("classification-T31TCJ-seed0", "tcp://127.0.0.1:1", 3),
        "cancelled": CancelledError(),
        "runtime": RuntimeError("comm closed\nmore"),
    }[error]
    with pytest.raises(SchedulingError, match=fragment) as caught:
        _result(_FailedFuture(raised), tmp_path, 8.0)
    assert "\n" not in str(caught.value) and "classification-T31TCJ-seed0" in str(caught.value)
    assert caught.value.__cause__ is None


@pytest.mark.parametrize("address", ["tcp://localhost", "foo://x:1", "nonsense"])
def test_a_malformed_scheduler_address_is_one_line(world, address):
    done = subprocess.run(
        [str(SITSMAP), "run", str(world / "config.yaml"), "--scheduler", address,
         "--last-step", "init"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert_one_line(done, address)
    config = subprocess.run(
        [str(SITSMAP), "config", "show", str(world / "config.yaml"),
         "--set", f"scheduling.scheduler={address}"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert_one_line(config, "scheduling.scheduler")


def test_an_unknown_in_process_scheduler_is_one_line(world):
    done = subprocess.run(
        [str(SITSMAP), "run", str(world / "config.yaml"), "--scheduler", "inproc://x",
         "--last-step", "init"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert_one_line(done, "cannot reach the Dask scheduler")
