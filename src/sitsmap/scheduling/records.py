"""Completion records: written after a task's outputs, with the fingerprint they were made from.

:mod:`sitsmap.scheduling.planning` compares a record's fingerprint with the
task's current one to tell whether the task is up to date.
"""

from __future__ import annotations

import json
from pathlib import Path

from sitsmap.io.atomic import write_text


def record_path(done_dir: Path, key: str) -> Path:
    """Where the completion record of ``key`` lives."""
    return done_dir / f"{key}.json"


def read_record(done_dir: Path, key: str) -> dict | None:
    """The completion record of ``key``, or None when it has none (or an unreadable one)."""
    try:
        record = json.loads(record_path(done_dir, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


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
    records = {p.stem: read_record(done_dir, p.stem) for p in sorted(done_dir.glob("*.json"))}
    return {key: record for key, record in records.items() if record is not None}


def recorded_outputs(done_dir: Path, key: str) -> dict:
    """What task ``key`` reported about its outputs when it completed (e.g. a model checksum).

    A task function may return a mapping (JSON values); it is kept in the
    task's completion record under ``"outputs"``. Empty when the task returned
    nothing or has no record.
    """
    record = read_record(done_dir, key) or {}
    return dict(record.get("outputs") or {})
