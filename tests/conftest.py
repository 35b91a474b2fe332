import datetime as dt
import logging
import shutil
from pathlib import Path

import pytest

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


@pytest.fixture(autouse=True)
def _restore_logging():
    """The CLI replaces the root handlers; give each test the handlers it started with."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def small_world(tmp_path_factory) -> Path:
    """A 4-tile synthetic world, 64² pixels, March to October 2018 (generated once)."""
    from sitsmap.synth import generate_world

    out = tmp_path_factory.mktemp("world")
    generate_world(
        out,
        ["T31TCJ", "T31TCK", "T31TDJ", "T31TDK"],
        size=64,
        start=dt.date(2018, 3, 1),
        end=dt.date(2018, 10, 31),
        seed=1,
    )
    return out


@pytest.fixture
def world_copy(small_world, tmp_path) -> Path:
    """A private copy of the small world, for tests that damage it."""
    target = tmp_path / "world"
    shutil.copytree(small_world, target)
    return target
