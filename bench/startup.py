"""Start-up time: fold a log of a million events whole, against a snapshot plus the tail after it."""

from __future__ import annotations

import time
import zlib
from pathlib import Path
from typing import Any

import orjson

from hub.config import load_config
from hub.core.state import State
from hub.log import snapshots as snapshot
from hub.log.sqlite import SQLiteLog, connect

from .genconfig import site_id, write_config

SITES = 1000
TAIL = 10_000
CHECKS = ("camera", "audio", "video_link")


def event_rows(count: int, start: float) -> list[tuple[Any, ...]]:
    """A meeting's worth of events: check-ins and checks, then mostly heartbeats and attendance."""
    rows: list[tuple[Any, ...]] = []
    for seq in range(1, count + 1):
        site = site_id(seq % SITES)
        if seq <= SITES:
            type_, data, op_id = "site.checkin", {"technician": "Kỹ thuật viên"}, f"c{seq}"
        elif seq <= SITES * (1 + len(CHECKS)):
            type_, data, op_id = "site.check", {"item": CHECKS[seq % len(CHECKS)], "ok": True}, f"k{seq}"
        elif seq % 3:
            type_, data, op_id = "site.heartbeat", {"rtt_ms": 20 + seq % 7}, None
        else:
            type_, data, op_id = "attendance.set", {"category": "workers", "count": seq % 300}, f"a{seq}"
        rows.append((seq, start + seq * 0.01, type_, "bench", site, op_id, orjson.dumps(data).decode()))
    return rows


def measure_startup(workdir: Path, events: int) -> dict[str, Any]:
    """Seconds to rebuild the state from the whole log, and from a snapshot taken `TAIL` events before its end."""
    config = load_config(write_config(workdir / "startup.toml", sites=SITES, event_id="startup"))
    db = workdir / "startup.db"
    log = SQLiteLog(db, config.event.id)
    conn = connect(db)
    with conn:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO events(seq, ts, type, actor, site, op_id, data) VALUES (?,?,?,?,?,?,?)",
                         event_rows(events, time.time() - events * 0.01))
    conn.close()
    tail = min(TAIL, events // 2)
    started = time.perf_counter()
    state = State(config)
    for event in log.read(0, events - tail):
        state.apply(event)
    started_save = time.perf_counter()
    blob = zlib.compress(snapshot.dump(state), 1)
    log.save_snapshot(state.seq, blob)
    save_seconds = time.perf_counter() - started_save
    for event in log.read(state.seq):
        state.apply(event)
    full_seconds = time.perf_counter() - started - save_seconds
    started = time.perf_counter()
    restored = snapshot.restore(config, log)
    for event in log.read(restored.seq):
        restored.apply(event)
    snapshot_seconds = time.perf_counter() - started
    if snapshot.dump(restored) != snapshot.dump(state):
        raise RuntimeError("the state rebuilt from the snapshot differs from the full fold")
    return {"events": events, "tail": tail, "full_seconds": full_seconds, "snapshot_seconds": snapshot_seconds,
            "save_seconds": save_seconds, "snapshot_bytes": len(blob)}
