"""Completion records: a task is done when its record exists (written after its outputs)."""

from __future__ import annotations

import json
from pathlib import Path

from sitsmap.io.atomic import write_text


def record_path(done_dir: Path, key: str) -> Path:
    """Where the completion record of ``key`` lives."""
    return done_dir / f"{key}.json"


def is_done(done_dir: Path, key: str) -> bool:
    """Whether ``key`` completed in an earlier or the current run."""
    return record_path(done_dir, key).exists()


def mark_done(done_dir: Path, key: str, record: dict) -> None:
    """Record the completion of ``key`` (atomically, after its outputs)."""
    write_text(record_path(done_dir, key), json.dumps(record, indent=1))


def forget(done_dir: Path, key: str) -> None:
    """Remove the completion record of ``key`` so that it runs again."""
    record_path(done_dir, key).unlink(missing_ok=True)


def read_records(done_dir: Path) -> dict[str, dict]:
    """All completion records, by key."""
    if not done_dir.is_dir():
        return {}
    return {p.stem: json.loads(p.read_text()) for p in sorted(done_dir.glob("*.json"))}
