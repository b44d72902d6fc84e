"""`diemcau audit`: every stored change names the token that made it, with role and binding, never a secret."""

from __future__ import annotations

import asyncio
import csv
import io
import signal
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.cli.main import cli
from hub.tokens import TokenStore

from .conftest import KON_TUM, RunningHub
from .processes import ignore_sigint, spawn

QUESTION = {"site": "dak-ha", "delegate": {"name": "Nguyễn Thị Lan", "unit": "Công ty Cao su"}, "topic": "livelihood",
            "text": "Đề nghị hỗ trợ nhà ở cho công nhân."}


async def test_audit_lists_who_changed_what(hub: RunningHub) -> None:
    registrar = await hub.client("registrar", site="dak-ha")
    moderator = await hub.client("moderator")
    await registrar.call("attendance.set", site="dak-ha", category="workers", count=40)
    q = await moderator.call("question.submit", **{**QUESTION, "site": "kon-ray"})
    await moderator.call("event.phase", phase="live")
    reg_id, mod_id = registrar.token.split(".")[0], moderator.token.split(".")[0]
    for event in hub.hub.log.read(0):
        assert event.actor in (reg_id, mod_id, "hub")  # every stored change names its token

    args = ["audit", "--config", str(KON_TUM), "--db", str(hub.db_path)]
    everything = CliRunner().invoke(cli, [*args, "--format", "csv"])
    assert everything.exit_code == 0, everything.output
    rows = list(csv.DictReader(io.StringIO(everything.output)))
    assert [r["type"] for r in rows] == ["attendance.set", "question.submit", "event.phase"]
    assert rows[0]["token_id"] == reg_id and rows[0]["role"] == "registrar" and rows[0]["bound_to"] == "dak-ha"
    assert rows[0]["label"] == "test registrar" and '"count":40' in rows[0]["data"]
    assert rows[1]["token_id"] == mod_id and rows[1]["site"] == "kon-ray" and int(rows[1]["seq"]) == int(q["seq"])
    assert rows[2]["time"].endswith("+07:00")  # the event's time zone
    for client in (registrar, moderator):
        assert client.token.split(".")[1] not in everything.output

    by_site = CliRunner().invoke(cli, [*args, "--site", "dak-ha"])
    assert by_site.exit_code == 0 and "attendance.set" in by_site.output and "question.submit" not in by_site.output
    assert "1 change(s)" in by_site.output and f"{reg_id} registrar dak-ha" in by_site.output
    by_token = CliRunner().invoke(cli, [*args, "--token-id", mod_id, "--format", "csv"])
    assert [r["type"] for r in csv.DictReader(io.StringIO(by_token.output))] == ["question.submit", "event.phase"]


def test_audit_refuses_unknown_site_and_missing_database(tmp_path: Path) -> None:
    missing = CliRunner().invoke(cli, ["audit", "--config", str(KON_TUM), "--db", str(tmp_path / "none.db")])
    assert missing.exit_code == 1 and "no such database" in missing.output
    assert not (tmp_path / "none.db").exists()
    (tmp_path / "bad.db").write_bytes(b"not a database at all" * 100)
    broken = CliRunner().invoke(cli, ["audit", "--config", str(KON_TUM), "--db", str(tmp_path / "bad.db")])
    assert broken.exit_code == 1 and "restore it from a backup" in broken.output
    unknown = CliRunner().invoke(cli, ["audit", "--config", str(KON_TUM), "--db", str(tmp_path / "bad.db"),
                                       "--site", "atlantis"])
    assert unknown.exit_code == 1 and "unknown site 'atlantis'" in unknown.output


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_audit_follow_prints_changes_as_the_hub_stores_them_and_stops_on_a_signal(
        hub: RunningHub, sig: signal.Signals) -> None:
    registrar = await hub.client("registrar", site="kon-ray")
    await registrar.call("attendance.set", site="kon-ray", category="workers", count=40)
    async with spawn(sys.executable, "-m", "hub", "audit", "--config", str(KON_TUM), "--db", str(hub.db_path),
                     "--follow", preexec_fn=ignore_sigint,  # as a shell's background job (`… &`) starts it
                     stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT) as follower:
        assert follower.stdout is not None
        lines: list[str] = []

        async def read_until(text: str) -> None:
            while not any(text in line for line in lines):
                line = await asyncio.wait_for(follower.stdout.readline(), 15)
                assert line, f"audit --follow ended early: {lines}"
                lines.append(line.decode())
        await read_until("1 change(s)")
        await registrar.call("attendance.add", site="kon-ray", category="workers", delta=7)
        await read_until("attendance.add")
        followed = next(line for line in lines if "attendance.add" in line)
        assert "registrar kon-ray" in followed and '"delta":7' in followed
        assert sum("attendance.set" in line for line in lines) == 1  # listed once, not again by the follow
        follower.send_signal(sig)
        output, _ = await asyncio.wait_for(follower.communicate(), 15)
    assert follower.returncode == 0 and output.decode().splitlines()[-1] == "stopped following"
    assert "Traceback" not in output.decode()


def test_audit_follow_refuses_csv(tmp_path: Path) -> None:
    db = tmp_path / "event.db"
    TokenStore(db, "kontum-2023").issue("admin")
    result = CliRunner().invoke(cli, ["audit", "--config", str(KON_TUM), "--db", str(db), "--follow",
                                      "--format", "csv"])
    assert result.exit_code == 1 and "--follow prints text lines; leave out --format csv" in result.output
