"""Crash safety: SIGKILL under load loses and doubles nothing; a damaged database is refused, never reset."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.crash import KON_TUM, run
from bench.hubproc import DIEMCAU, free_port
from hub.config import Config
from hub.log.base import Event, StoreError
from hub.log.sqlite import SQLiteLog, connect, open_database


async def test_sigkill_rounds_lose_and_double_nothing(tmp_path: Path) -> None:
    figures = await run(tmp_path / "crash.db", rounds=3, clients=4, seed=random.randrange(2**32), max_gap=0.5)
    assert figures["starts"] == 4
    assert figures["acknowledged"] == figures["sent"] > 0 and figures["never_acknowledged"] == 0
    assert figures["lost"] == figures["moved"] == figures["duplicates"] == figures["stored_not_sent"] == 0
    assert figures["attendance_total"] == figures["attendance_ops"]
    assert figures["questions"] == figures["question_ops"]
    assert figures["events"] == figures["sent"]
    assert figures["reconnects"] >= 3 and figures["resent"] > 0


async def _make_log(path: Path, config: Config, events: int = 1500) -> None:
    log = SQLiteLog(path, config.event.id)
    log.start()
    futures = [log.append(Event(seq=n, ts=1.7e9 + n, type="attendance.add", actor="t", site="dak-ha", op_id=f"op-{n}",
                                data={"category": "workers", "delta": 1})) for n in range(1, events + 1)]
    for future in futures:
        await future
    await log.stop()


def _truncate(fraction: float) -> Callable[[Path], None]:
    return lambda path: os.truncate(path, int(path.stat().st_size * fraction))


def _garbage(offset: int | None) -> Callable[[Path], None]:
    def mutate(path: Path) -> None:
        with path.open("r+b") as f:
            f.seek(path.stat().st_size // 2 if offset is None else offset)
            f.write(random.randbytes(4096))
    return mutate


def _serve(config_path: Path, db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DIEMCAU, "serve", "--config", str(config_path), "--db", str(db),
                           "--port", str(free_port())], capture_output=True, text=True, timeout=30)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("mutate", [_truncate(0.5), _truncate(0.1), _truncate(0), _garbage(0), _garbage(None),
                                    _garbage(4096)],
                         ids=["truncated-half", "truncated-tenth", "truncated-empty", "garbage-header",
                              "garbage-middle", "garbage-page-2"])
async def test_damaged_database_is_refused_by_serve(tmp_path: Path, config: Config, mutate) -> None:
    db = tmp_path / "event.db"
    await _make_log(db, config)
    assert not Path(f"{db}-wal").exists()  # a clean stop checkpoints: the main file holds everything
    mutate(db)
    before = _digest(db)
    done = _serve(KON_TUM, db)
    assert done.returncode == 1, done.stdout + done.stderr
    assert str(db) in done.stderr and "restore it from a backup" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert _digest(db) == before  # refused, not reset


def _copy_with_wal(config: Config, tmp_path: Path) -> Path:
    """A database as a killed hub leaves it: the recent commits only in the -wal file."""
    live = tmp_path / "live.db"
    conn = open_database(live, config.event.id)
    conn.execute("PRAGMA wal_autocheckpoint=0")
    writer = connect(live)
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("BEGIN")
    writer.executemany("INSERT INTO events(seq, ts, type, site, op_id, data) VALUES (?,?,?,?,?,?)",
                       [(n, 1.7e9, "attendance.add", "dak-ha", f"op-{n}", '{"category":"workers","delta":1}')
                        for n in range(1, 801)])
    writer.execute("COMMIT")
    killed = tmp_path / "killed.db"
    for suffix in ("", "-wal"):
        shutil.copy(f"{live}{suffix}", f"{killed}{suffix}")
    writer.close()
    conn.close()
    return killed


def test_killed_hub_database_opens_with_every_commit(config: Config, tmp_path: Path) -> None:
    killed = _copy_with_wal(config, tmp_path)
    assert Path(f"{killed}-wal").stat().st_size > killed.stat().st_size
    conn = open_database(killed, config.event.id)
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 800
    conn.close()


def test_empty_main_file_beside_a_wal_is_refused(config: Config, tmp_path: Path) -> None:
    killed = _copy_with_wal(config, tmp_path)
    os.truncate(killed, 0)  # SQLite alone would start afresh and drop the -wal: a silent reset
    with pytest.raises(StoreError, match="empty"):
        open_database(killed, config.event.id)
    assert killed.stat().st_size == 0 and Path(f"{killed}-wal").stat().st_size > 0
    done = _serve(KON_TUM, killed)
    assert done.returncode == 1 and "restore it from a backup" in done.stderr and "Traceback" not in done.stderr


def test_garbage_header_superseded_by_the_wal_loses_nothing(config: Config, tmp_path: Path) -> None:
    killed = _copy_with_wal(config, tmp_path)
    _garbage(0)(killed)  # page 1 is newer in the -wal, so SQLite reads it from there
    conn = open_database(killed, config.event.id)
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 800
    conn.close()
