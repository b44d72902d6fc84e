"""Consistent copies of a live event database, on demand and on a schedule.

SQLite's online backup API copies the database as one read transaction sees it, so a copy taken
while the hub commits is a clean cut at one seq. The copy is written beside its target, checked,
switched out of WAL mode (one self-contained file) and renamed into place: a crash never leaves a
half-written backup under the final name.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("diemcau.backup")
UNITS = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class Backup:
    path: Path
    seq: int
    size: int


def parse_every(text: str) -> float:
    """`90s`, `5m`, `1h` or plain seconds, as seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match or float(match[1]) <= 0:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m or 1h")
    return float(match[1]) * UNITS[match[2] or "s"]


def backup_database(source: Path, out: Path) -> Backup:
    """Copy `source` to `out` consistently, even while another process writes to it."""
    if not source.exists() or source.stat().st_size == 0:
        raise FileNotFoundError(f"no database at {source}")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(partial, isolation_level=None)
    try:
        src.backup(dst)  # one step: the whole file as one read transaction sees it
        dst.execute("PRAGMA journal_mode=DELETE")
        check = dst.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise sqlite3.DatabaseError(f"the copy failed its check: {check}")
        seq = dst.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
    finally:
        src.close()
        dst.close()
    _fsync(partial)
    os.replace(partial, out)
    _fsync(out.parent)
    return Backup(out, seq, out.stat().st_size)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def scheduled_name(db_path: Path, when: dt.datetime) -> str:
    """`kontum-2023-20231124-073000.db`: sorts by time, names its database."""
    return f"{db_path.stem}-{when:%Y%m%d-%H%M%S}.db"


def prune(directory: Path, db_path: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` scheduled backups of this database; return what went."""
    pattern = re.compile(re.escape(db_path.stem) + r"-\d{8}-\d{6}\.db")
    ours = sorted(p for p in directory.iterdir() if pattern.fullmatch(p.name))
    gone = ours[:-keep]
    for path in gone:
        path.unlink()
    return gone


async def backup_loop(db_path: Path, directory: Path, every: float, keep: int) -> None:
    """Every `every` seconds, a backup into `directory`, keeping the newest `keep`; failures are logged, not fatal."""
    while True:
        await asyncio.sleep(every)
        out = directory / scheduled_name(db_path, dt.datetime.now())
        try:
            made = await asyncio.to_thread(backup_database, db_path, out)
            gone = await asyncio.to_thread(prune, directory, db_path, keep)
        except (OSError, sqlite3.Error) as exc:
            log.error("backup to %s failed: %s", out, exc, extra={"fields": {"event": "backup.failed"}})
            continue
        log.info("backup written: %s (seq %d, %d bytes, %d old removed)", made.path, made.seq, made.size, len(gone),
                 extra={"fields": {"event": "backup.written", "path": str(made.path), "seq": made.seq}})


def schedule_backups(app: Any, db_path: Path, directory: Path, every: float, keep: int) -> None:
    """`serve --backup-dir`: run the backup loop beside the hub, stopped with it."""
    directory.mkdir(parents=True, exist_ok=True)

    async def backups(app: Any) -> AsyncIterator[None]:
        task = asyncio.create_task(backup_loop(db_path, directory, every, keep), name="backups")
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    app.cleanup_ctx.append(backups)
