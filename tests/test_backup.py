"""A backup taken while commands stream in is a clean cut: a hub started on it has the source's state at its seq."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sqlite3
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from click.testing import CliRunner

from hub.cli.backup import backup_command
from hub.config import Config
from hub.core import views
from hub.core.state import State
from hub.log.backup import backup_database, parse_every, prune, schedule_backups, scheduled_name
from hub.tokens import TokenStore
from hub.web.app import create_app
from sites.client import HubClient

from .conftest import StartHub


def rows(path: Path, table: str, order: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
    finally:
        conn.close()


async def stream(client: HubClient, site: str, stop: asyncio.Event) -> int:
    """Attendance changes and questions, back to back, until told to stop; how many were stored."""
    sent = 0
    while not stop.is_set():
        await client.call("attendance.add", site=site, category="workers", delta=1)
        await client.call("question.submit", site=site, delegate={"name": "Y Hoa", "unit": "Công ty Cao su"},
                          topic="livelihood", text=f"Câu hỏi số {sent} về nhà ở công nhân")
        sent += 2
    return sent


async def test_backup_under_load_restores_the_same_state(start_hub: StartHub, config: Config, tmp_path: Path) -> None:
    source = await start_hub()
    admin_token = source.token("admin")
    writers = [await source.client("admin") for _ in range(4)]  # admins are not rate-limited
    stop = asyncio.Event()
    load = [asyncio.create_task(stream(w, s.id, stop)) for w, s in zip(writers, config.sites)]
    await asyncio.sleep(0.3)
    backups = []
    for n in range(3):  # each copy is taken while the writers keep committing
        backups.append(await asyncio.to_thread(backup_database, source.db_path, tmp_path / f"copy{n}.db"))
        await asyncio.sleep(0.1)
    stop.set()
    stored = sum(await asyncio.gather(*load))
    await source.hub.release.wait(source.hub.state.seq)

    seqs = [b.seq for b in backups]
    assert seqs == sorted(seqs) and 0 < seqs[0] and seqs[-1] < source.hub.state.seq == stored
    chosen = backups[1]
    assert not Path(str(chosen.path) + "-wal").exists()  # one self-contained file
    source_events = [r for r in rows(source.db_path, "events", "seq") if r[0] <= chosen.seq]
    assert rows(chosen.path, "events", "seq") == source_events

    expected = State(config)
    for event in source.hub.log.read(0, chosen.seq):
        expected.apply(event)
    restored = await start_hub(path=chosen.path)
    assert restored.hub.state.seq == chosen.seq
    assert views.snapshot(restored.hub.state) == views.snapshot(expected)
    assert views.totals(restored.hub.state)["attendance"] == expected.present_total > 0
    async with HubClient(restored.ws_url, admin_token) as admin:  # tokens made before the backup still work
        assert (await admin.call("subscribe"))["seq"] == chosen.seq


def test_backup_command_and_restore_refusals(tmp_path: Path, config: Config) -> None:
    db = tmp_path / "event.db"
    runner = CliRunner()
    missing = runner.invoke(backup_command, ["--db", str(db), "--out", str(tmp_path / "b.db")])
    assert missing.exit_code == 1 and "no database" in missing.output
    TokenStore(db, config.event.id).issue("admin")
    same = runner.invoke(backup_command, ["--db", str(db), "--out", str(db)])
    assert same.exit_code == 1 and "must not be the database" in same.output
    done = runner.invoke(backup_command, ["--db", str(db), "--out", str(tmp_path / "b.db")])
    assert done.exit_code == 0, done.output
    assert "seq 0" in done.output and rows(tmp_path / "b.db", "tokens", "id") == rows(db, "tokens", "id")


def test_prune_keeps_the_newest(tmp_path: Path) -> None:
    db = tmp_path / "kontum-2023.db"
    start = dt.datetime(2023, 11, 24, 7, 0)
    names = [scheduled_name(db, start + dt.timedelta(minutes=5 * n)) for n in range(5)]
    for name in reversed(names):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "other-20231124-070000.db").write_bytes(b"x")  # another event's backup is not ours to delete
    gone = prune(tmp_path, db, keep=2)
    assert sorted(p.name for p in gone) == names[:3]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*names[3:], "other-20231124-070000.db"])


@pytest.mark.parametrize("text,seconds", [("30s", 30), ("5m", 300), ("1h", 3600), ("90", 90), ("0.5m", 30)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_every(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "-1m", "0", "m5"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_every(text)


async def test_scheduled_backups_run_beside_the_hub(config: Config, tmp_path: Path) -> None:
    db, folder = tmp_path / "event.db", tmp_path / "backups"
    app = create_app(config, db)
    schedule_backups(app, db, folder, every=0.2, keep=3)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        for _ in range(50):
            made = list(folder.glob("event-*.db"))
            if made:
                break
            await asyncio.sleep(0.1)
    finally:
        await server.close()
    assert made and os.path.getsize(made[0]) > 0
    assert rows(made[0], "meta", "key") == [("event_id", config.event.id)]
