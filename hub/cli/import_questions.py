"""`diemcau import-questions`: a CSV or XLSX of pre-compiled questions, sent through a running hub.

The rows go over the hub's websocket as `question.submit` commands, never into the database
directly: one process folds the log, so two writers never disagree about the state.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from hub.config import ConfigError, load_config
from hub.questions.importer import ImportFileError, ImportRow, parse_questions, report, row_result


async def send_rows(url: str, token: str, rows: list[ImportRow]) -> tuple[int, list[dict[str, Any]]]:
    """Submit every row over one connection; return the hub's seq before the import and the per-row results."""
    from sites.client import HubClient

    async with HubClient(url, token) as client:
        before = (await client.call("subscribe"))["seq"]
        frames = await asyncio.gather(*(client.send("question.submit", op_id=r.op_id, **r.fields) for r in rows))
    return before, [row_result(row, f["result"]) if f["success"] else row_result(row, error=f["error"])
                    for row, f in zip(rows, frames)]


@click.command("import-questions")
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The event's TOML config (names in the file are matched against it).")
@click.option("--hub", "hub_url", default="ws://127.0.0.1:8080/ws", show_default=True,
              help="The running hub's websocket URL.")
@click.option("--token", envvar="DIEMCAU_TOKEN", required=True,
              help="A moderator or admin token (or set DIEMCAU_TOKEN).")
@click.option("--dry-run", is_flag=True, help="Check every row and print what would be sent; send nothing.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_questions(config_path: Path, hub_url: str, token: str, dry_run: bool, file: Path) -> None:
    """Import pre-compiled questions from a CSV (UTF-8) or XLSX file; print per-row results as JSON.

    Columns: topic, site, delegate, unit, text, agency, answer_note (or Nhóm vấn đề, Điểm cầu, Họ tên,
    Đơn vị, Nội dung, Cơ quan trả lời, Ghi chú). If any row is wrong nothing is sent and every bad
    row is listed. Importing the same rows again changes nothing. Exit 1 on any error.

    \b
    Example:
      diemcau import-questions --config config/kon-tum-2023.toml --token "$MOD" \\
          config/kon-tum-2023-questions.csv
    """
    try:
        config = load_config(config_path)
        parsed = parse_questions(config, file.read_bytes())
    except (ConfigError, ImportFileError) as exc:
        raise click.ClickException(str(exc)) from None
    if parsed.errors or dry_run:
        out = report(parsed, None)
        if dry_run:
            out["preview"] = [{"line": r.line, "op_id": r.op_id, **r.fields} for r in parsed.rows]
    else:
        try:
            before, results = asyncio.run(send_rows(hub_url, token, parsed.rows))
        except Exception as exc:  # connection refused, bad URL, token refused: say so plainly
            raise click.ClickException(f"cannot import through {hub_url}: {exc}") from None
        out = report(parsed, results, before)
    click.echo(json.dumps(out, ensure_ascii=False, indent=2))
    if not out["ok"]:
        raise SystemExit(1)
