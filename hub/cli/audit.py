"""`diemcau audit`: who changed what and when, from the stored log joined with the token table.

Every stored event names the token id that caused it (`actor`, "hub" for the hub's own); the token
table adds that token's role, binding and label. Secrets are never read: only their hashes are
stored, and this query does not select even those.
"""

from __future__ import annotations

import csv
import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import orjson

from hub.cli.options import config_options, fail
from hub.config import Config
from hub.log.base import Event
from hub.log.sqlite import SQLiteLog, connect, open_database
from hub.stopping import interrupt_on_signals, run_stoppable

COLUMNS = ("seq", "time", "type", "site", "token_id", "role", "bound_to", "label", "data")
_SQL = """SELECT e.seq, e.ts, e.type, e.site, e.actor, t.role, coalesce(t.site, t.agency), t.label, e.data
          FROM events e LEFT JOIN tokens t ON t.id = e.actor"""


def audit_rows(config: Config, db_path: Path, site: str | None = None, token_id: str | None = None,
               until: int | None = None) -> Iterator[dict[str, Any]]:
    """The log's changes in order (up to `until`), each with who made it; filtered by site and/or token id."""
    open_database(db_path, config.event.id).close()
    where, args = [], []
    if until is not None:
        where.append("e.seq <= ?")
        args.append(until)
    if site is not None:
        where.append("e.site = ?")
        args.append(site)
    if token_id is not None:
        where.append("e.actor = ?")
        args.append(token_id)
    sql = _SQL + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY e.seq"
    conn = connect(db_path)
    try:
        for seq, ts, type_, ev_site, actor, role, bound, label, data in conn.execute(sql, args):
            yield _row(config, seq, ts, type_, ev_site, actor, (role, bound, label), orjson.loads(data))
    finally:
        conn.close()


def _row(config: Config, seq: int, ts: float, type_: str, site: str | None, actor: str | None,
         token: tuple[str | None, str | None, str | None], data: dict[str, Any]) -> dict[str, Any]:
    role, bound, label = token
    return {"seq": seq, "time": dt.datetime.fromtimestamp(ts, config.event.tz).isoformat(timespec="seconds"),
            "type": type_, "site": site or "", "token_id": actor or "",
            "role": role or ("hub" if actor == "hub" else "?"), "bound_to": bound or "", "label": label or "",
            "data": orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()}


def _tokens(db_path: Path) -> dict[str, tuple[str | None, str | None, str | None]]:
    conn = connect(db_path)
    try:
        return {r[0]: (r[1], r[2], r[3]) for r in conn.execute("SELECT id, role, coalesce(site, agency), label FROM tokens")}
    finally:
        conn.close()


async def follow_rows(config: Config, db_path: Path, since: int, site: str | None = None,
                      token_id: str | None = None) -> None:
    """Print each change as a running hub stores it (the log's tail, read from this separate process)."""
    log = SQLiteLog(db_path, config.event.id)
    tokens = _tokens(db_path)
    try:
        async for event in log.follow(since):
            if (site is None or event.site == site) and (token_id is None or event.actor == token_id):
                if event.actor not in tokens and event.actor != "hub":
                    tokens = _tokens(db_path)  # a token made since we started
                click.echo(_text_line(_event_row(config, event, tokens)))
    finally:
        log.close()


def _event_row(config: Config, e: Event, tokens: dict[str, tuple[str | None, str | None, str | None]]) -> dict[str, Any]:
    return _row(config, e.seq, e.ts, e.type, e.site, e.actor, tokens.get(e.actor or "", (None, None, None)), e.data)


def _text_line(row: dict[str, Any]) -> str:
    who = f"{row['token_id']} {row['role']}" + (f" {row['bound_to']}" if row["bound_to"] else "")
    data = row["data"] if len(row["data"]) <= 100 else row["data"][:99] + "…"
    return f"{row['seq']:>6}  {row['time']}  {who:<28} {row['type']:<18} {row['site'] or '-':<12} {data}"


@click.command("audit")
@config_options
@click.option("--site", help="Only changes to this site.")
@click.option("--token-id", help="Only changes made with this token (the part before the dot).")
@click.option("--format", "fmt", default="text", show_default=True, type=click.Choice(["text", "csv"]))
@click.option("--follow", is_flag=True,
              help="Then keep printing changes as a running hub stores them (Ctrl-C or SIGTERM ends).")
def audit_command(config: Config, config_path: Path, db_path: Path, site: str | None, token_id: str | None,
                  fmt: str, follow: bool) -> None:
    """List every stored change with the token that made it: who changed what, and when.

    \b
    Examples:
      diemcau audit --config config/kon-tum-2023.toml --site dak-ha
      diemcau audit --config config/kon-tum-2023.toml --token-id 3f2a9c1b --format csv > audit.csv
      diemcau audit --config config/kon-tum-2023.toml --follow      # watch the day from a second terminal
    """
    if not db_path.exists():
        fail(f"{db_path}: no such database (give --db)")
    if site is not None and site not in config.site_ids:
        fail(f"unknown site {site!r}")
    if follow and fmt != "text":
        fail("--follow prints text lines; leave out --format csv")
    if follow:
        interrupt_on_signals()  # before the listing, which can take a while on a long log
    until = _last_seq(db_path) if follow else None  # list up to here, then follow from here: nothing twice or missed
    rows = audit_rows(config, db_path, site, token_id, until)
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return
    click.echo(f"{'seq':>6}  {'time':<25}  {'token role binding':<28} {'type':<18} {'site':<12} data")
    count = 0
    for row in rows:
        click.echo(_text_line(row))
        count += 1
    click.echo(f"{count} change(s)")
    if until is not None:
        run_stoppable(follow_rows(config, db_path, until, site, token_id))
        click.echo("stopped following")


def _last_seq(db_path: Path) -> int:
    conn = connect(db_path)
    try:
        return conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
    finally:
        conn.close()
