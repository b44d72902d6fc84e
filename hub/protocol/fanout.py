"""Pushing the state to subscribers: a catch-up frame on subscribe, then one frame a tick for everyone.

Each tick encodes the changes once per audience (everyone, or one agency) and hands the same bytes,
framed once, to every subscriber; only what is durable is ever pushed, so a dashboard never shows
what a crash could undo.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hub.core.model import iso
from hub.core.state import State
from hub.log.base import EventLog, StoreError
from hub.protocol.messages import event_frame, snapshot_frame, text_frame

if TYPE_CHECKING:
    from hub.protocol.connection import Connection

SNAPSHOT_REUSE_SECONDS = 1.0  # heartbeats that change nothing stored may be this stale in a shared snapshot


class Fanout:
    """The subscribers of one hub and what each tick sends them."""

    def __init__(self, state: Callable[[], State], log: EventLog, clock: Callable[[], float],
                 interval_seconds: float) -> None:
        self._state, self._log, self._clock, self.interval = state, log, clock, interval_seconds
        self.subscribers: set[Connection] = set()
        self.frames_pushed = 0
        self._snapshots: dict[str | None, tuple[State, int, float, bytes]] = {}
        self._pushed_shared: dict[str, Any] = {}  # the shared parts as the last pushed frame left them
        self._subscribes = 0  # counted, so a tick can tell that someone subscribed while it waited for the disk

    def now_iso(self) -> str | None:
        return iso(self._clock(), self._state().tz)

    def subscribe(self, conn: Connection, since: int | None) -> tuple[dict[str, Any], bytes]:
        """Register for pushes; return the answer and the catch-up frame (a delta after `since`, or a snapshot)."""
        state = self._state()
        agency = conn.who.agency if conn.who else None
        if since is None or since > state.seq:
            catch_up, mode = self.snapshot(agency), "snapshot"
        else:
            sites, questions = state.changed_since(since)
            catch_up = event_frame(state.seq, self.now_iso(), [], {**state.pushed_shared(),
                                                                    **state.rows(sites, questions, agency)}, since)
            mode = "delta"
        conn.caught_up = state.version
        self.subscribers.add(conn)
        self._subscribes += 1
        self._pushed_shared = {}  # the next tick sends every shared part whole again (see run)
        return {"seq": state.seq, "mode": mode}, catch_up

    def snapshot(self, agency: str | None) -> bytes:
        """The encoded snapshot, built once for every subscriber arriving at the same seq within a second.

        A reconnect storm (a thousand dashboards after a network blip) would otherwise build and encode
        the whole state once per dashboard, and queue a thousand copies of it.
        """
        state, now = self._state(), self._clock()
        cached = self._snapshots.get(agency)
        if cached and cached[0] is state and cached[1] == state.seq and 0 <= now - cached[2] < SNAPSHOT_REUSE_SECONDS:
            return cached[3]
        frame = snapshot_frame(state.seq, self.now_iso(), state.snapshot(agency))
        self._snapshots[agency] = (state, state.seq, now, frame)
        return frame

    def restart(self) -> None:
        """After the state was rebuilt: it counts its versions afresh, so each subscriber gets the next push whole."""
        self._pushed_shared = {}
        for conn in self.subscribers:
            conn.caught_up = -1

    async def run(self) -> None:
        """Each tick, encode the changes once per audience and queue the same bytes to every subscriber.

        Ticks keep a fixed period whatever a tick's own work takes. A frame carries only the shared parts
        that differ from the previous frame's: every subscriber holds those (a new one, from its catch-up
        frame, and `subscribe` makes the next tick send them all), and with a thousand dashboards the
        bytes not sent are what the hub and every reader save.
        """
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due = max(due + self.interval, loop.time())
            await asyncio.sleep(due - loop.time())
            state = self._state()
            if not state.changes or not self.subscribers:
                if not self.subscribers:
                    state.take_changes()
                continue
            seq, version, subscribes = state.seq, state.version, self._subscribes
            targets = list(self.subscribers)
            shared = state.pushed_shared()
            frames = self._frames(state, targets, shared)
            framed = {audience: text_frame(frame) for audience, frame in frames.items()}
            try:
                await self._log.wait_durable(seq)
            except StoreError:
                continue  # a write failed: these changes were lost, and the rebuilt state is pushed whole
            if self._state() is not state:
                continue
            sent = 0
            for conn in targets:
                if conn.caught_up < version:  # one that subscribed since these changes holds them in its catch-up
                    audience = conn.who.agency if conn.who else None
                    conn.send(frames[audience], framed[audience])
                    sent += 1
            self.frames_pushed += sent
            # What every subscriber now holds; one skipped for its catch-up, or subscribed meanwhile, gets every
            # shared part in the next frame, so the first frame after a subscribe always carries them all.
            self._pushed_shared = shared if sent == len(targets) and subscribes == self._subscribes else {}

    def _frames(self, state: State, targets: list[Connection], shared: dict[str, Any]) -> dict[str | None, bytes]:
        """This tick's frame for each audience among the targets; takes the state's pending changes."""
        changes = state.take_changes()
        changed = {key: value for key, value in shared.items() if self._pushed_shared.get(key) != value}
        now = self.now_iso()
        frames: dict[str | None, bytes] = {}
        for conn in targets:
            audience = conn.who.agency if conn.who else None
            if audience not in frames:
                events = [] if audience else [e.public() for e in changes.events]
                frames[audience] = event_frame(seq=state.seq, now=now, events=events, parts={
                    **changed, **state.rows(changes.sites, changes.questions, audience)})
        return frames
