"""The command line as a user meets it: serve prints links and stops cleanly, token, check-config, access-sheet."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from markupsafe import escape

from hub.cli.main import cli
from hub.config import load_config
from hub.tokens import TokenStore
from sites.client import HubClient

from .conftest import KON_TUM
from .processes import ignore_sigint, popen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"hub exited early: {proc.stdout.read() if proc.stdout else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                return json.load(response)
        except OSError:
            time.sleep(0.1)
    raise AssertionError("hub did not come up")


def serve_command(db: Path, port: int, config: Path = KON_TUM) -> list[str]:
    return [sys.executable, "-m", "hub", "serve", "--config", str(config), "--db", str(db), "--port", str(port)]


def test_serve_prints_links_once_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    db, port = tmp_path / "kontum.db", free_port()
    with popen(*serve_command(db, port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        assert wait_healthy(port, proc)["event"] == "kontum-2023"
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, output
    links = re.findall(r"(technician|registrar)\s+(\S+)\s+http://127\.0\.0\.1:\d+/(?:technician|registrar)#token=\S+", output)
    assert len(links) == 22 and {site for _, site in links} == {s for s in _site_ids()}
    assert "#token=" in output and "Traceback" not in output
    sheet = (tmp_path / "kontum-access.html").read_text(encoding="utf-8")
    for agency in load_config(KON_TUM).agencies:  # named as people know it, not by its config id
        assert f"Cơ quan trả lời — {escape(agency.name)}<" in sheet and f"— {agency.id}<" not in sheet

    with popen(*serve_command(db, port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        wait_healthy(port, proc)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=15)
    assert "#token=" not in output, "links are shown once, on a fresh database only"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_serve_started_with_sigint_ignored_stops_on_a_signal_and_prints_its_last_seq(
        tmp_path: Path, sig: signal.Signals) -> None:
    db, port = tmp_path / "kontum.db", free_port()
    token = TokenStore(db, "kontum-2023").issue("registrar", "dak-ha", None, "test").token
    with popen(*serve_command(db, port), preexec_fn=ignore_sigint, stdout=subprocess.PIPE,
               stderr=subprocess.STDOUT) as proc:
        await asyncio.to_thread(wait_healthy, port, proc)
        async with HubClient(f"ws://127.0.0.1:{port}/ws", token) as registrar:
            for count in (12, 15):
                await registrar.call("attendance.set", site="dak-ha", category="workers", count=count)
        proc.send_signal(sig)
        output, _ = await asyncio.to_thread(proc.communicate, timeout=15)
    assert proc.returncode == 0, output
    assert output.splitlines()[-1] == f"diemcau stopped: database {db} at seq 2"
    assert "Traceback" not in output


def _site_ids() -> list[str]:
    from hub.config import load_config

    return [s.id for s in load_config(KON_TUM).sites]


def test_large_event_writes_links_to_a_file(tmp_path: Path) -> None:
    text = KON_TUM.read_text(encoding="utf-8")
    extra = "".join(f'\n[[sites]]\nid = "xa-{i}"\nname = "Xã {i}"\nkind = "commune"\nexpected = 20\n' for i in range(60))
    config = tmp_path / "big.toml"
    config.write_text(text.replace("[[categories]]", extra + "\n[[categories]]", 1), encoding="utf-8")
    db, port = tmp_path / "big.db", free_port()
    with popen(*serve_command(db, port, config), stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        wait_healthy(port, proc)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=15)
    links = tmp_path / "big-links.tsv"
    assert f"written to {links}" in output and "#token=" not in output
    rows = links.read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 + 4 + 2 * 71 + 10


def test_token_prints_token_alone_on_last_line(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    result = CliRunner().invoke(cli, ["token", "--config", str(KON_TUM), "--db", str(db), "--role", "registrar",
                                      "--site", "dak-ha", "--label", "Chị Hoa"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    identity = TokenStore(db).verify(token)
    assert identity is not None and identity.role == "registrar" and identity.site == "dak-ha"
    revoked = CliRunner().invoke(cli, ["token", "--config", str(KON_TUM), "--db", str(db), "--revoke", identity.token_id])
    assert revoked.exit_code == 0 and TokenStore(db).verify(token) is None


@pytest.mark.parametrize("args, message", [
    (["--role", "registrar"], "needs --site"),
    (["--role", "registrar", "--site", "atlantis"], "unknown site 'atlantis'"),
    (["--role", "chair", "--site", "dak-ha"], "takes no --site"),
    (["--role", "agency", "--agency", "nasa"], "unknown agency 'nasa'"),
])
def test_token_refuses_bad_bindings(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["token", "--config", str(KON_TUM), "--db", str(tmp_path / "t.db"), *args])
    assert result.exit_code == 1 and message in result.output


def test_check_config_names_key_and_line(tmp_path: Path) -> None:
    ok = CliRunner().invoke(cli, ["check-config", str(KON_TUM)])
    assert ok.exit_code == 0 and "2,300" in ok.output
    broken = tmp_path / "broken.toml"
    broken.write_text(KON_TUM.read_text(encoding="utf-8").replace("expected = 220", "expected = 0"), encoding="utf-8")
    line = next(i for i, text in enumerate(broken.read_text(encoding="utf-8").splitlines(), 1) if "expected = 0" in text)
    result = CliRunner().invoke(cli, ["check-config", str(broken)])
    assert result.exit_code == 1
    assert f"broken.toml:{line}: sites[4].expected" in result.output


@pytest.mark.parametrize("old, new, expected", [
    ('start = "07:30"', 'start = "7h30"', "event.start: '7h30' should be HH:MM, e.g. 07:30"),
    ('start = "07:30"', 'start = "24:00"', "event.start: '24:00' should be HH:MM, e.g. 07:30"),
    ("duration_minutes = 240", "duraton_minutes = 240",
     "event.duraton_minutes: is not a known key; did you mean duration_minutes?"),
    ("interval_seconds = 5", "interval_secods = 5",
     "heartbeat.interval_secods: is not a known key; did you mean interval_seconds?"),
    ("expected = 220", "expected = 220\nexpectd = 1", "sites[4].expectd: is not a known key; did you mean expected?"),
    ("[heartbeat]", "[heartbeet]", "heartbeet: is not a known key; did you mean heartbeat?"),
    ("[heartbeat]", "[heartbeat]\nzzz = 1", "heartbeat.zzz: is not a known key; the keys here are interval_seconds, "),
], ids=["start-7h30", "start-24:00", "event-key", "heartbeat-key", "site-key", "section", "no-near-key"])
def test_check_config_says_what_a_value_should_look_like_and_the_key_a_typo_meant(
        tmp_path: Path, old: str, new: str, expected: str) -> None:
    broken = tmp_path / "broken.toml"
    text = KON_TUM.read_text(encoding="utf-8")
    assert old in text
    broken.write_text(text.replace(old, new, 1), encoding="utf-8")
    wrong = new.splitlines()[-1]
    line = next(i for i, text in enumerate(broken.read_text(encoding="utf-8").splitlines(), 1) if text == wrong)
    result = CliRunner().invoke(cli, ["check-config", str(broken)])
    assert result.exit_code == 1
    assert f"broken.toml:{line}: {expected}" in result.output, result.output
    assert "^" not in result.output and "\\d" not in result.output  # no regex


def test_check_config_reports_toml_syntax_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[event]\nid = "x\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["check-config", str(bad)])
    assert result.exit_code == 1 and "not valid TOML" in result.output and "line 2" in result.output
    missing = CliRunner().invoke(cli, ["check-config", str(tmp_path / "nope.toml")])
    assert missing.exit_code == 1 and "cannot read" in missing.output


def test_access_sheet_has_a_page_and_two_qr_codes_per_site(tmp_path: Path) -> None:
    out = tmp_path / "sheet.html"
    result = CliRunner().invoke(cli, ["access-sheet", "--config", str(KON_TUM), "--db", str(tmp_path / "a.db"),
                                      "--out", str(out), "--public-url", "https://diemcau.kontum.gov.vn"])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert html.count("<section>") == 11 and html.count("<svg") == 22
    assert "Huyện Ia H&#39;Drai" in html or "Huyện Ia H'Drai" in html
    tokens = re.findall(r"https://diemcau\.kontum\.gov\.vn/(?:technician|registrar)#token=([\w.-]+)", html)
    assert len(tokens) == 22 and all(TokenStore(tmp_path / "a.db").verify(t) for t in tokens)


def test_help_on_every_command() -> None:
    for command in ["serve", "token", "check-config", "access-sheet"]:
        result = CliRunner().invoke(cli, [command, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output
