"""The shipped systemd unit starts `serve` with options that exist, bound to localhost, with backups."""

from __future__ import annotations

import re

from click.testing import CliRunner

from hub.cli.serve import serve

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
