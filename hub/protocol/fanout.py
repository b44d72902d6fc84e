"""Pushing the state to subscribers: a catch-up frame on subscribe, then one frame a tick for everyone.

Each tick encodes the changes once per audience (everyone, or one agency) and hands the same bytes,
framed once, to every subscriber. Frames wait in the hub's `Release` until the log holds what they
show, so a dashboard never shows what a crash could undo.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from hub.core import views
from hub.core.model import iso
from hub.core.release import Release
from hub.core.state import State
from hub.protocol.messages import event_frame, snapshot_frame, text_frame

if TYPE_CHECKING:
    from hub.protocol.connection import Connection

SNAPSHOT_REUSE_SECONDS = 1.0  # heartbeats that change nothing stored may be this stale in a shared snapshot


class Fanout:
    """The subscribers of one hub and what each tick sends them."""

    def __init__(self, state: Callable[[], State], release: Release, clock: Callable[[], float],
                 interval_seconds: float) -> None:
        self._state, self._release, self._clock, self.interval = state, release, clock, interval_seconds
        self.subscribers: set[Connection] = set()
        self.frames_pushed = 0
        self._snapshots: dict[str | None, tuple[State, int, float, bytes]] = {}
        self._pushed_shared: dict[str, Any] = {}  # the shared parts as the last pushed frame left them
        self._timeline_points = 0  # the timeline's length when the last tick was built: all but its last are settled

    def now_iso(self) -> str | None:
        return iso(self._clock(), self._state().tz)

    def subscribe(self, conn: Connection, since: int | None) -> tuple[dict[str, Any], bytes]:
        """Register for pushes; return the answer and the catch-up frame (a delta after `since`, or a snapshot),
        which the connection hands to `catch_up` once it has sent the answer."""
        state = self._state()
        agency = conn.who.agency if conn.who else None
        if since is None or since > state.seq:
            catch_up, mode = self.snapshot(agency), "snapshot"
        else:
            sites, questions = state.changed_since(since)
            catch_up = event_frame(state.seq, self.now_iso(), [], {**views.pushed_shared(state, 0),  # the timeline as a view holds it
                                                                    **views.rows(state, sites, questions, agency)}, since)
            mode = "delta"
        conn.caught_up = state.version
        self.subscribers.add(conn)
        self._pushed_shared = {}  # the next tick sends every shared part whole again (see run)
        return {"seq": state.seq, "mode": mode}, catch_up

    def catch_up(self, conn: Connection, seq: int, frame: bytes) -> None:
        """Send a subscriber its catch-up once the log holds `seq`; if a failed write loses it, the rebuilt
        state's snapshot instead."""
        agency = conn.who.agency if conn.who else None
        self._release.after(seq, lambda: conn.push(frame), lambda: conn.push(self.snapshot(agency)))

    def snapshot(self, agency: str | None) -> bytes:
        """The encoded snapshot, built once for every subscriber arriving at the same seq within a second.

        A reconnect storm (a thousand dashboards after a network blip) would otherwise build and encode
        the whole state once per dashboard, and queue a thousand copies of it.
        """
        state, now = self._state(), self._clock()
        cached = self._snapshots.get(agency)
        if cached and cached[0] is state and cached[1] == state.seq and 0 <= now - cached[2] < SNAPSHOT_REUSE_SECONDS:
            return cached[3]
        frame = snapshot_frame(state.seq, self.now_iso(), views.snapshot(state, agency))
        self._snapshots[agency] = (state, state.seq, now, frame)
        return frame

    def restart(self) -> None:
        """After the state was rebuilt: it counts its versions afresh, so each subscriber gets the next push whole."""
        self._pushed_shared, self._timeline_points = {}, 0
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
            seq, version = state.seq, state.version
            targets = list(self.subscribers)
            shared = views.pushed_shared(state, max(0, self._timeline_points - 2))
            self._timeline_points = len(state.timeline)
            frames = self._frames(state, targets, shared)
            framed = {audience: text_frame(frame) for audience, frame in frames.items()}
            # What every subscriber will hold once this frame is out. One skipped for its catch-up (which
            # holds these changes) gets every shared part in the next frame, so the first frame after a
            # subscribe always carries them all (a subscribe meanwhile empties this too).
            self._pushed_shared = shared if all(conn.caught_up < version for conn in targets) else {}
            # Bound now: a lambda would read these names when released, and a tick still held when the next
            # one is built (a commit slower than a tick) would send the later frames twice, its own never.
            self._release.after(seq, partial(self._send, version, targets, frames, framed))

    def _send(self, version: int, targets: list[Connection], frames: dict[str | None, bytes],
              framed: dict[str | None, bytes]) -> None:
        """A tick's frames, now durable, to every target whose catch-up does not already hold them (a failed
        write drops them unsent: the rebuilt state is pushed whole instead)."""
        for conn in targets:
            if conn.caught_up < version:
                audience = conn.who.agency if conn.who else None
                conn.send(frames[audience], framed[audience])
                self.frames_pushed += 1

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
                    **changed, **views.rows(state, changes.sites, changes.questions, audience)})
        return frames
