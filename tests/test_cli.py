"""The command line as a user meets it: serve prints links and stops cleanly, token, check-config, access-sheet."""

from __future__ import annotations

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

from .conftest import KON_TUM


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 15) -> dict:
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


def test_serve_prints_links_once_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    db, port = tmp_path / "kontum.db", free_port()
    command = [sys.executable, "-m", "hub", "serve", "--config", str(KON_TUM), "--db", str(db), "--port", str(port)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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

    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_healthy(port, proc)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=15)
    assert "#token=" not in output, "links are shown once, on a fresh database only"


def _site_ids() -> list[str]:
    from hub.config import load_config

    return [s.id for s in load_config(KON_TUM).sites]


def test_large_event_writes_links_to_a_file(tmp_path: Path) -> None:
    text = KON_TUM.read_text(encoding="utf-8")
    extra = "".join(f'\n[[sites]]\nid = "xa-{i}"\nname = "Xã {i}"\nkind = "commune"\nexpected = 20\n' for i in range(60))
    config = tmp_path / "big.toml"
    config.write_text(text.replace("[[categories]]", extra + "\n[[categories]]", 1), encoding="utf-8")
    db, port = tmp_path / "big.db", free_port()
    proc = subprocess.Popen([sys.executable, "-m", "hub", "serve", "--config", str(config), "--db", str(db),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
