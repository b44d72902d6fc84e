"""The event log's interface: what the hub needs of a log, so SQLite and a replicated log can both serve.

The hub appends events with an idempotency key (`op_id`), reads from a seq, follows the tail, asks
whether an op_id was stored, and is told after each commit; `durable_seq` says how far the log is
on disk (or, for a replicated log, on a quorum). Snapshots of the fold are kept beside the log.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, NamedTuple, Protocol


class StoreError(Exception):
    """The database cannot be used as it is; the message says why and what to do."""


class Event(NamedTuple):
    """One stored fact. `actor` is the id of the token that caused it, or "hub" for the hub's own.

    Immutable as a NamedTuple, which is built in half the time of a frozen dataclass: one per command.
    """

    seq: int
    ts: float
    type: str
    data: dict[str, Any]
    actor: str | None = None
    site: str | None = None
    op_id: str | None = None

    def public(self) -> dict[str, Any]:
        """The event as pushed to subscribers and written to JSON exports."""
        return {"seq": self.seq, "ts": self.ts, "type": self.type, "site": self.site, "data": self.data}


class Refused(StoreError):
    """A batch not written because a commit before it failed: it was folded on top of the lost events."""


class EventLog(Protocol):
    """The log as the hub uses it: appends from the loop, answers and pushes released on commit."""

    durable_seq: int  # every event up to here is committed (fsynced; on a quorum, for a replicated log)
    batches: int  # commits so far (each an fsync, or a round of acknowledgements)

    async def open(self) -> None:
        """Connect and bring the local copy up to the log's end, before `start` (a local file: nothing to do)."""

    def start(self) -> None:
        """Begin accepting appends from the running loop."""

    async def stop(self) -> None:
        """Commit what was appended, then stop."""

    def append(self, event: Event, result: dict[str, Any] | None = None) -> asyncio.Future[None]:
        """Add an event (with its command's answer, kept for retries of its op_id); the future resolves once it
        is committed, or fails with the write error."""

    def read(self, since: int = 0, until: int | None = None) -> Iterator[Event]:
        """Events with seq > since (and <= until), in order."""

    def follow(self, since: int = 0, poll_seconds: float = 0.5) -> AsyncIterator[Event]:
        """Every event after `since`, then each new one as it is committed."""

    def last_seq(self) -> int: ...

    def find_op(self, op_id: str) -> dict[str, Any] | None:
        """The stored answer of the command that carried `op_id`, or None if none was stored."""

    def on_written(self, callback: Callable[[BaseException | None], None]) -> None:
        """Call `callback` on the loop after each commit: None once durable, else the write error."""

    def on_arrival(self, callback: Callable[[list[Event]], None]) -> None:
        """Call `callback` on the loop with the events the log brought from elsewhere (a replicated log's
        other writers, and this node's own echoed back); a log with one writer never calls it."""

    def observe(self, durable: Callable[[float], None], batch_size: Callable[[int], None]) -> None:
        """Be told each event's seconds from append to committed, and each commit's size."""

    def save_snapshot(self, seq: int, data: bytes) -> None: ...

    def latest_snapshot(self) -> tuple[int, bytes] | None: ...
