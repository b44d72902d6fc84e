"""`diemcau doctor` passes a good setup and names what is wrong with a broken one."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from click.testing import CliRunner

from bench.hubproc import DIEMCAU
from hub.cli.doctor import Finding, check_clock, doctor_command, examine
from hub.config import Config, load_config
from hub.tokens import TokenStore

from .conftest import KON_TUM, StartHub
from .test_bridge import prosody_error_page

TOMORROW = dt.date.today() + dt.timedelta(days=1)
DOMAIN = "meet.kontum.gov.vn"
ROOM = f'room = "doithoai"\ndomain = "{DOMAIN}"'


def event_config(tmp_path: Path, bridge_url: str | None = None, event_id: str = "kontum-2023",
                 room: str = ROOM) -> Path:
    """The Kon Tum config moved to tomorrow, optionally with a Jitsi bridge (`room`: its room and domain keys)."""
    text = KON_TUM.read_text(encoding="utf-8").replace("date = 2023-11-24", f"date = {TOMORROW.isoformat()}")
    text = text.replace('id = "kontum-2023"', f'id = "{event_id}"')
    if bridge_url:
        text += f'\n[bridge]\nkind = "jitsi"\nurl = "{bridge_url}"\n{room}\n'
    path = tmp_path / f"{event_id}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def levels(findings: list[Finding]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in findings:
        out.setdefault(f.topic, set()).add(f.level)
    return out


@pytest.fixture
async def jitsi() -> AsyncIterator[str]:
    """Prosody's /room as bridges.md shows it: one occupant, Đắk Hà's hall (Jitsi and Prosody cannot run here)."""
    async def room(request: web.Request) -> web.Response:
        if request.host != DOMAIN:
            return web.Response(status=404, text=prosody_error_page(f"Unknown host: {request.host}"),
                                content_type="text/html")
        if request.query.get("room") != "doithoai":
            return web.Response(status=404)
        return web.json_response([{"jid": "doithoai@conference.meet.kontum.gov.vn/3f2a9c1b", "email": "",
                                   "display_name": "Đắk Hà"}])
    app = web.Application()
    app.router.add_get("/room", room)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


async def test_a_good_setup_passes(tmp_path: Path, jitsi: str, start_hub: StartHub) -> None:
    config_path = event_config(tmp_path, jitsi)
    db = tmp_path / "event.db"
    running = await start_hub(cfg=load_config(config_path), path=db)
    running.token("admin")
    findings = await examine(config_path, db, running.url, tmp_path)
    by_topic = levels(findings)
    assert not any("fail" in lv for lv in by_topic.values()), findings
    assert {"config", "database", "disk", "backups", "clock", "bridge", "hub"} <= set(by_topic)
    bridge = next(f for f in findings if f.topic == "bridge")
    assert "1 of 11 halls" in bridge.text


async def test_broken_bridge_and_hub_fail(tmp_path: Path, start_hub: StartHub) -> None:
    config_path = event_config(tmp_path, "http://127.0.0.1:9")  # the discard port: nothing listens
    other = await start_hub()  # serves kontum-2023 from another config: here it is the wrong event
    renamed = event_config(tmp_path, "http://127.0.0.1:9", event_id="other-event")
    by_topic = levels(await examine(renamed, tmp_path / "x.db", other.url, None))
    assert by_topic["bridge"] == {"fail"} and by_topic["hub"] == {"fail"}
    by_topic = levels(await examine(config_path, tmp_path / "x.db", "http://127.0.0.1:9", None))
    assert by_topic["hub"] == {"fail"} and by_topic["database"] == {"warn"}  # not created yet


@pytest.mark.parametrize("room, label, expected", [
    ('room = "doithoai"\ndomain = "kontum.gov.vn"', "FAIL", "does not serve the host 'kontum.gov.vn'"),
    ('room = "doithoai"', "FAIL", "does not serve the host '127.0.0.1'"),  # no domain: the url's host is sent
    ('room = "DoiThoai"\ndomain = "meet.kontum.gov.vn"', "ok", "1 of 11 halls in the room 'doithoai'"),
    ('room = "doi-thoai"\ndomain = "meet.kontum.gov.vn"', "WARN", "room 'doi-thoai' is not open now"),
])
async def test_cli_bridge_misconfiguration_is_named(tmp_path: Path, jitsi: str, room: str, label: str,
                                                    expected: str) -> None:
    """`diemcau doctor` as run the day before: a wrong host fails, a room not open warns, capitals are fine."""
    config_path = event_config(tmp_path, jitsi, room=room)
    proc = await asyncio.create_subprocess_exec(*DIEMCAU, "doctor", "--config", str(config_path),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out = (await asyncio.wait_for(proc.communicate(), 60))[0].decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    [line] = [line for line in out.splitlines() if " bridge " in line]
    assert line.split()[0] == label and expected in line, out
    assert proc.returncode == (1 if label == "FAIL" else 0), out


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(doctor_command, list(args))
    return result.exit_code, result.output


def test_cli_good_database_exits_zero(tmp_path: Path) -> None:
    config_path = event_config(tmp_path)
    db = tmp_path / "event.db"
    TokenStore(db, "kontum-2023").issue("admin")
    code, out = run("--config", str(config_path), "--db", str(db))
    assert code == 0, out
    assert "ok" in out and "quick_check ok" in out and "1 active tokens" in out


@pytest.mark.parametrize("damage,expected", [
    (lambda db: db.write_bytes(b"this is not a database" * 100), "not a usable database"),
    (lambda db: db.write_bytes(b""), "empty"),
    (lambda db: TokenStore(db, "another-event").issue("admin"), "holds event 'another-event'"),
    (lambda db: sqlite3.connect(db).execute("PRAGMA user_version=99").connection.close(), "newer diemcau"),
])
def test_cli_broken_database_exits_one(tmp_path: Path, damage, expected: str) -> None:
    config_path = event_config(tmp_path)
    db = tmp_path / "event.db"
    damage(db)
    code, out = run("--config", str(config_path), "--db", str(db))
    assert code == 1 and "FAIL" in out and expected in out, out


def test_cli_broken_config_exits_one(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(KON_TUM.read_text(encoding="utf-8").replace('timezone = "Asia/Ho_Chi_Minh"', 'timezone = 7'),
                   encoding="utf-8")
    code, out = run("--config", str(bad))
    assert code == 1 and "FAIL" in out and "timezone" in out


def test_cli_backup_folder_that_is_not_there(tmp_path: Path) -> None:
    code, out = run("--config", str(event_config(tmp_path)), "--backup-dir", str(tmp_path / "nope"))
    assert code == 1 and "not a writable folder" in out


def test_clock_time_zone_and_event_date(config: Config) -> None:
    tz = config.event.tz
    before = dt.datetime.combine(config.event.date, dt.time(6, 0), tzinfo=tz)
    assert [f.level for f in check_clock(config, before) if "time zone" in f.text] == []
    utc = check_clock(config, before.astimezone(dt.UTC))
    assert any(f.level == "warn" and "time zone" in f.text for f in utc)
    after = check_clock(config, before + dt.timedelta(days=3))
    assert any(f.level == "warn" and "is over" in f.text for f in after)
    assert any(f.level == "ok" and "in 2 h" in f.text for f in check_clock(config, before))
