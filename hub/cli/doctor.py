"""`diemcau doctor`: what to check the day before, as a checklist that says what is wrong.

Config, database, disk, clock, backups, the video bridge, a running hub and, for cluster mode, the NATS
servers, the log stream, the lease and the nodes: each check gives `ok`, `warn` (works, but look at it)
or `fail` (fix it before the meeting); any failure exits 1.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import click
import httpx

from hub.bridge import ADAPTERS, BridgeError, check_health
from hub.cli.options import nats_option
from hub.config import Config, ConfigError, load_config
from hub.log.sqlite import SCHEMA_VERSION

MB = 1024 * 1024
DISK_FAIL_MB, DISK_WARN_MB = 200, 2048
LEVELS = {"ok": ("ok  ", "green"), "warn": ("WARN", "yellow"), "fail": ("FAIL", "red")}


@dataclass(frozen=True)
class Finding:
    level: str  # ok | warn | fail
    topic: str
    text: str


def check_config(path: Path) -> tuple[Config | None, Finding]:
    try:
        config = load_config(path)
    except ConfigError as exc:
        return None, Finding("fail", "config", str(exc))
    return config, Finding("ok", "config", f"{config.event.id}: {len(config.sites)} sites, "
                                            f"{config.expected_total:,} people expected")


def check_database(path: Path, config: Config, holds_tokens: bool = True) -> list[Finding]:
    """Opens, passes quick_check, has this diemcau's schema, holds this event, and can be written.

    A cluster node's database is its copy of the log: its tokens live on the cluster (`holds_tokens` False)."""
    if not path.exists():
        made = "and its tokens" if holds_tokens else "(the node's copy of the log)"
        return [Finding("warn", "database", f"{path} does not exist yet; `serve` creates it {made}")]
    if path.stat().st_size == 0:
        return [Finding("fail", "database", f"{path} is empty (0 bytes); restore it from a backup or delete it")]
    try:
        conn = sqlite3.connect(path, timeout=5)
        try:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            known = 0 < version <= SCHEMA_VERSION and check == "ok"  # tables worth reading
            event = conn.execute("SELECT value FROM meta WHERE key = 'event_id'").fetchone() if known else None
            seq, tokens = conn.execute("SELECT (SELECT coalesce(max(seq), 0) FROM events), "
                                       "(SELECT count(*) FROM tokens WHERE revoked IS NULL)").fetchone() if known else (0, 0)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return [Finding("fail", "database", f"{path} is not a usable database ({exc}); restore it from a backup")]
    if check != "ok":
        return [Finding("fail", "database", f"{path} is damaged ({check[:200]}); restore it from a backup")]
    if version > SCHEMA_VERSION:
        return [Finding("fail", "database", f"{path} was made by a newer diemcau (schema {version} > {SCHEMA_VERSION})")]
    if event is not None and event[0] != config.event.id:
        return [Finding("fail", "database", f"{path} holds event {event[0]!r}, not {config.event.id!r}")]
    out = [Finding("ok", "database", f"{path}: quick_check ok, schema {version}, {seq:,} events, {tokens} active tokens")]
    if version < SCHEMA_VERSION:
        out.append(Finding("warn", "database", f"schema {version} is upgraded to {SCHEMA_VERSION} when the hub starts"))
    if not tokens and holds_tokens:
        out.append(Finding("warn", "database", "no active tokens; `serve` prints new links on a database without any"))
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
        out.append(Finding("warn", "database", f"{path} or its folder is not writable by this user; "
                                               "check it is writable by the user the hub runs as"))
    return out


def check_disk(folder: Path, topic: str = "disk") -> Finding:
    free = shutil.disk_usage(folder).free // MB
    if free < DISK_FAIL_MB:
        return Finding("fail", topic, f"only {free} MB free at {folder}; the event log and backups need room")
    if free < DISK_WARN_MB:
        return Finding("warn", topic, f"{free} MB free at {folder}")
    return Finding("ok", topic, f"{free:,} MB free at {folder}")


def check_backups(folder: Path, db_path: Path) -> list[Finding]:
    """The backup folder exists, is writable, and sits on another disk than the database."""
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        return [Finding("fail", "backups", f"{folder} is not a writable folder")]
    out = [check_disk(folder, "backups")]
    db_dir = db_path.parent if db_path.parent.exists() else Path.cwd()
    if os.stat(folder).st_dev == os.stat(db_dir).st_dev:
        out.append(Finding("warn", "backups", f"{folder} is on the same disk as the database: a dead disk takes both"))
    return out


def check_clock(config: Config, now: dt.datetime | None = None) -> list[Finding]:
    """The system clock is synchronised, in the event's time zone, and the event is ahead, not behind."""
    now = now or dt.datetime.now().astimezone()
    event_now = now.astimezone(config.event.tz)
    out = []
    if now.utcoffset() != event_now.utcoffset():
        out.append(Finding("warn", "clock", f"the system time zone (UTC{now:%z}) is not the event's "
                                            f"{config.event.timezone} (UTC{event_now:%z}); the hub shows event times, "
                                            "but logs and timers use the system's"))
    synced = _ntp_synchronised()
    if synced is False:
        out.append(Finding("warn", "clock", "the system clock is not NTP-synchronised (timedatectl)"))
    starts = config.event.starts_at
    until = starts - now
    when = f"{starts:%Y-%m-%d %H:%M} {config.event.timezone}"
    if now > config.event.ends_at:
        out.append(Finding("warn", "clock", f"the event ({when}) is over; is this the right config?"))
    else:
        hours = until.total_seconds() / 3600
        text = f"now {event_now:%Y-%m-%d %H:%M} event time; the event starts {when}"
        out.append(Finding("ok", "clock", text + (f", in {hours:.0f} h" if hours > 0 else ", under way")))
    return out


def _ntp_synchronised() -> bool | None:
    if shutil.which("timedatectl") is None:
        return None
    try:
        done = subprocess.run(["timedatectl", "show", "--property=NTPSynchronized", "--value"],
                              capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    answer = done.stdout.strip()
    return {"yes": True, "no": False}.get(answer)


async def check_bridge(config: Config) -> Finding:
    """The bridge answers the way the hub will ask it on the day (room presence, then health).

    An answer that is not the bridge API's (wrong host, port or path) fails: on the day it would make
    every hall's video "unknown"."""
    cfg = config.bridge
    if cfg is None:
        return Finding("ok", "bridge", "no video bridge configured; video presence is not verified")
    adapter = ADAPTERS[cfg.kind](cfg)
    try:
        async with httpx.AsyncClient(timeout=cfg.timeout_seconds, follow_redirects=False) as client:
            presence = await adapter.presence(client, config.sites)
            unhealthy = await check_health(client, cfg.health_url) if cfg.health_url else None
    except BridgeError as exc:
        return Finding("fail", "bridge", f"{cfg.kind} at {cfg.url}: {exc}")
    except httpx.HTTPError as exc:
        return Finding("fail", "bridge", f"cannot reach {cfg.kind} at {cfg.url} ({type(exc).__name__})")
    if unhealthy:
        return Finding("fail", "bridge", f"{cfg.kind} media server: {unhealthy}")
    if presence is None:  # fine the day before; on the day, a wrong room name looks the same
        return Finding("warn", "bridge", f"{cfg.kind} at {cfg.url} answers, but room {adapter.room!r} is not open now: "
                                         "right if nobody has joined it yet, otherwise [bridge] room names another room")
    present, no_video = (sum(v == kind for v in presence.values()) for kind in ("present", "no_video"))
    without = f", {no_video} more in it without video" if no_video else ""
    return Finding("ok", "bridge", f"{cfg.kind} at {cfg.url} answers; {present} of {len(presence)} halls in the room "
                                   f"{adapter.room!r} now{without}")


async def check_hub(url: str, config: Config) -> Finding:
    """A running hub answers /healthz, for this event."""
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(url.rstrip("/") + "/healthz")
        health = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        return Finding("fail", "hub", f"no answer from {url}/healthz ({type(exc).__name__})")
    if not isinstance(health, dict) or health.get("status") != "ok":
        return Finding("fail", "hub", f"{url}/healthz answered HTTP {response.status_code}, not ok")
    if health.get("event") != config.event.id:
        return Finding("fail", "hub", f"{url} serves event {health.get('event')!r}, not {config.event.id!r}")
    return Finding("ok", "hub", f"{url}: phase {health.get('phase')}, seq {health.get('seq')}, "
                                f"{health.get('connections')} connections")


async def examine(config_path: Path, db_path: Path | None, hub_url: str | None, backup_dir: Path | None,
                  nats_urls: list[str] | None = None, nats_token: str | None = None) -> list[Finding]:
    config, finding = check_config(config_path)
    if config is None:
        return [finding]
    db = db_path or config_path.with_suffix(".db")
    out = [finding, *check_database(db, config, holds_tokens=not nats_urls),
           check_disk(db.parent if db.parent.exists() else Path.cwd())]
    if backup_dir is not None:
        out += check_backups(backup_dir, db)
    out += check_clock(config)
    out.append(await check_bridge(config))
    if hub_url:
        out.append(await check_hub(hub_url, config))
    if nats_urls:
        from hub.cli.doctor_nats import check_nats  # nats-py comes with the cluster extra

        out += await check_nats(nats_urls, config.event.id, nats_token)
    return out


@click.command("doctor")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The event's config.")
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The event database. Default: next to the config, <config stem>.db.")
@click.option("--hub", "hub_url", help="A running hub to ask, e.g. http://127.0.0.1:8080")
@click.option("--backup-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where scheduled backups go: checked for room and for being on another disk.")
@nats_option("Cluster mode: the NATS servers, each checked on its own, then the streams and the nodes.")
def doctor_command(config_path: Path, db_path: Path | None, hub_url: str | None, backup_dir: Path | None,
                   nats_urls: list[str] | None, nats_token: str | None) -> None:
    """Check a setup the day before: config, database, disk, clock, backups, bridge, hub, cluster.

    Exits 1 on a failure.

    \b
    Examples:
      diemcau doctor --config /etc/diemcau/kontum-2023.toml --db /var/lib/diemcau/kontum-2023.db \\
          --hub http://127.0.0.1:8080 --backup-dir /mnt/backup/diemcau
      diemcau doctor --config /etc/diemcau/event.toml --db /var/lib/diemcau/event.db \\
          --nats nats://10.0.0.11:4222,nats://10.0.0.12:4222,nats://10.0.0.13:4222 \\
          --nats-token-file /etc/diemcau/nats.token
    """
    findings = asyncio.run(examine(config_path, db_path, hub_url, backup_dir, nats_urls, nats_token))
    click.echo(f"diemcau doctor: {config_path}")
    for f in findings:
        label, colour = LEVELS[f.level]
        click.echo(f"  {click.style(label, fg=colour)}  {f.topic:<9} {f.text}")
    failed = sum(f.level == "fail" for f in findings)
    warned = sum(f.level == "warn" for f in findings)
    click.echo(f"{failed} to fix, {warned} to look at" if failed or warned else "all good")
    if failed:
        raise SystemExit(1)
