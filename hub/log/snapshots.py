"""Periodic snapshots of the folded state, so a restart folds only the log's tail, not a million events.

A snapshot is the state's own attributes as JSON (sites and questions by their dataclass fields),
zlib-compressed, stored with the seq it holds in the `snapshots` table. It is used only when its
format version and fingerprint (the config and the state's shape) match this code and this config;
otherwise the hub folds the whole log, which is always correct, only slower.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from hub.config import Config
from hub.core.model import Incident, Question, SiteState
from hub.core.state import State
from hub.log.base import EventLog, StoreError

log = logging.getLogger("diemcau.snapshot")
Durable = Callable[[int], Awaitable[None]]  # returns once the log holds a seq (the hub's Release.wait)
VERSION = 2  # 2: the questions as a list, in the order they were asked
# Rebuilt from the config, or per push; and the kept op_id answers, which the log answers as well (`find_op`):
# they were more than half of a snapshot's bytes and of the time it holds the loop (37 -> 20 ms at 3,500 sites).
NOT_STATE = frozenset({"config", "tz", "changes", "ops"})
EVERY_EVENTS = 50_000
EVERY_SECONDS = 300.0
CHECK_SECONDS = 5.0


def fingerprint(state: State) -> str:
    """What a snapshot must agree with: the config and the names of every field it stores."""
    shape = [sorted(set(vars(state)) - NOT_STATE)] + [
        [f.name for f in dataclasses.fields(cls)] for cls in (SiteState, Question, Incident)]
    text = orjson.dumps([VERSION, shape]) + state.config.model_dump_json().encode()
    return hashlib.sha256(text).hexdigest()


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.name != "config"}
    raise TypeError(f"cannot snapshot a {type(obj).__name__}")


def dump(state: State) -> bytes:
    """The state as JSON; call on the event loop so no event lands halfway through. The questions go as a
    list: keys are sorted, and their order (q10 before q9) is not the order they were asked in."""
    fields = {name: value for name, value in vars(state).items() if name not in NOT_STATE}
    fields["questions"] = list(state.questions.values())
    return orjson.dumps({"version": VERSION, "fingerprint": fingerprint(state), "seq": state.seq, "state": fields},
                        default=_plain, option=orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_SORT_KEYS)


def load(config: Config, blob: bytes) -> State | None:
    """The state a snapshot holds, or None when it was made by other code or for another config."""
    data = orjson.loads(zlib.decompress(blob))
    state = State(config)
    if data.get("version") != VERSION or data.get("fingerprint") != fingerprint(state):
        return None
    saved = data["state"]
    sites = saved.pop("sites")
    questions = saved.pop("questions")
    for name, value in saved.items():
        setattr(state, name, value)
    for site_id, site in state.sites.items():
        fields = sites[site_id]
        fields["incidents"] = {key: Incident(**value) for key, value in fields["incidents"].items()}
        state.sites[site_id] = SiteState(config=site.config, **fields)
    state.questions = {fields["id"]: Question(**fields) for fields in questions}
    return state


def restore(config: Config, log_: EventLog) -> State:
    """The latest usable snapshot's state, or a fresh one; the caller folds the events after its seq."""
    latest = log_.latest_snapshot()
    if latest is not None and latest[0] <= log_.last_seq():
        try:
            state = load(config, latest[1])
        except (zlib.error, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            log.warning("snapshot at seq %d is unreadable (%s); folding the whole log", latest[0], exc)
            state = None
        if state is not None:
            return state
        log.info("snapshot at seq %d was made by other code or config; folding the whole log", latest[0])
    return State(config)


async def take(current: Callable[[], State], log_: EventLog, durable: Durable) -> int | None:
    """Snapshot the live state once its events are durable; the seq saved, or None if a rebuild intervened."""
    state = current()
    seq, raw = state.seq, dump(state)
    try:
        await durable(seq)
    except StoreError:
        return None
    if current() is not state:
        return None
    await asyncio.to_thread(log_.save_snapshot, seq, zlib.compress(raw, 1))
    log.info("state snapshot at seq %d (%d KB)", seq, len(raw) // 1024)
    return seq


async def keep_snapshots(current: Callable[[], State], log_: EventLog, durable: Durable,
                         every_events: int = EVERY_EVENTS, every_seconds: float = EVERY_SECONDS) -> None:
    """Take a snapshot of the live state (`current()`) after every `every_events` events, or `every_seconds`
    after a change."""
    last_seq, last_at = current().seq, time.monotonic()
    while True:
        await asyncio.sleep(CHECK_SECONDS)
        behind = current().seq - last_seq
        if behind >= every_events or (behind > 0 and time.monotonic() - last_at >= every_seconds):
            saved = await take(current, log_, durable)
            if saved is not None:
                last_seq, last_at = saved, time.monotonic()
