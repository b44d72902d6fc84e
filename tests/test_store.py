"""The event log itself: group commit, migrations of older databases, answers kept for old op_ids."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import sqlite_utils

from hub.log.base import Event
from hub.log.sqlite import MIGRATIONS, SCHEMA_VERSION, SQLiteLog


async def test_a_burst_shares_commits_and_every_event_is_durable(tmp_path: Path) -> None:
    log = SQLiteLog(tmp_path / "e.db", "ev")
    log.start()
    futures = [log.append(Event(seq=n, ts=float(n), type="t", data={"n": n}, op_id=f"op-{n}"), {"seq": n})
               for n in range(1, 501)]
    await asyncio.gather(*futures)
    assert log.durable_seq == 500 and log.count() == 500
    assert log.batches < 500 and sum(log.batch_sizes) == 500  # group commit: fewer fsyncs than events
    assert log.find_op("op-250") == {"seq": 250} and log.find_op("never") is None
    await log.stop()


async def test_an_older_database_is_migrated_and_keeps_its_events(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    db = sqlite_utils.Database(conn)
    for number in range(1, SCHEMA_VERSION):  # a database as the previous release left it
        MIGRATIONS[number](db)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION - 1}")
    conn.execute("INSERT INTO events(seq, ts, type, actor, site, op_id, data) VALUES (1, 1.0, 't', 'x', NULL, 'legacy', '{}')")
    conn.close()

    log = SQLiteLog(path, "ev")
    assert [e.op_id for e in log.read(0)] == ["legacy"]
    assert log.find_op("legacy") == {"seq": 1}  # stored before answers were kept: the seq still answers
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    check.close()
    log.close()


async def test_op_ids_stored_before_a_restart_are_still_found(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    log = SQLiteLog(path, "ev")
    log.start()
    await asyncio.gather(*(log.append(Event(seq=n, ts=float(n), type="t", data={}, op_id=f"op-{n}"), {"seq": n, "n": n})
                           for n in range(1, 201)))
    await log.stop()

    reopened = SQLiteLog(path, "ev")
    reopened.start()  # fills the filter of stored op_ids from the log
    await reopened.append(Event(seq=201, ts=201.0, type="t", data={}, op_id="after"), {"seq": 201})
    lookups: list[str] = []
    real_execute = sqlite3.Connection.execute

    def counted(conn: sqlite3.Connection, sql: str, *args: object) -> sqlite3.Cursor:
        if "op_id = ?" in sql:
            lookups.append(sql)
        return real_execute(conn, sql, *args)

    assert all(reopened.find_op(f"op-{n}") == {"seq": n, "n": n} for n in range(1, 201))  # no false "never stored"
    assert reopened.find_op("after") == {"seq": 201}
    reopened._ops_reader = sqlite3.connect(path, factory=type("Counted", (sqlite3.Connection,), {"execute": counted}))
    assert [reopened.find_op(f"new-{n}") for n in range(1000)] == [None] * 1000
    assert len(lookups) < 50  # the filter answered nearly all of them without the log (1 % false positives)
    await reopened.stop()
