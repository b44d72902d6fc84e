"""The shipped systemd unit starts `serve` with options that exist, bound to localhost, with backups."""

from __future__ import annotations

import re
import subprocess

from click.testing import CliRunner

from hub.cli.serve import serve
from hub.log.nats_servers import find_nats_server

from .conftest import ROOT

UNIT = (ROOT / "deploy" / "diemcau.service").read_text(encoding="utf-8")


def test_unit_runs_serve_with_real_options() -> None:
    exec_start = re.search(r"^ExecStart=(.*?)(?<!\\)$", UNIT, re.M | re.S)
    assert exec_start is not None
    words = exec_start[1].replace("\\\n", " ").split()
    assert words[1] == "serve"
    options = [w for w in words if w.startswith("--")]
    help_text = CliRunner().invoke(serve, ["--help"]).output
    assert [o for o in options if o not in help_text] == []
    assert words[words.index("--host") + 1] == "127.0.0.1"
    assert {"--backup-dir", "--backup-every", "--log-format"} <= set(options)


def test_the_cluster_files_are_valid_and_ask_for_the_token() -> None:
    """nats-server takes the shipped config (clients and routes behind the token); the node's unit starts
    serve with options that exist and reads the token from the file node.env names, not from its command line."""
    conf = ROOT / "deploy" / "nats-server.conf"
    checked = subprocess.run([str(find_nats_server()), "-c", str(conf), "-t"], capture_output=True, text=True,
                             timeout=30)
    assert checked.returncode == 0 and "is valid" in checked.stdout + checked.stderr, checked.stderr
    text = conf.read_text(encoding="utf-8")
    assert re.search(r"^authorization \{\s*token:", text, re.M) and "nats-route://route:" in text
    unit = (ROOT / "deploy" / "diemcau-node.service").read_text(encoding="utf-8")
    exec_start = re.search(r"^ExecStart=(.*?)(?<!\\)$", unit, re.M | re.S)
    assert exec_start is not None
    options = [w for w in exec_start[1].replace("\\\n", " ").split() if w.startswith("--")]
    help_text = CliRunner().invoke(serve, ["--help"]).output
    assert [o for o in options if o not in help_text] == [] and "--nats-token-file" not in options
    assert "DIEMCAU_NATS_TOKEN_FILE" in help_text
    env = (ROOT / "deploy" / "diemcau-node.env").read_text(encoding="utf-8")
    assert re.search(r"^DIEMCAU_NATS_TOKEN_FILE=/etc/diemcau/nats\.token", env, re.M)
