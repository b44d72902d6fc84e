"""Durable before sent, kept in one place: what may go out only once the log holds its events waits here.

A push, a new subscriber's catch-up, a snapshot of the fold, an import's answers: each is registered
with the seq it shows and runs once the log is durable up to there, in seq order. The log's commit
callback releases them (with the websocket answers, see `Hub._written`); after a failed write the hub
rebuilds its state and tells everything still held that it was lost, so nothing a crash could undo is
ever shown.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable

from hub.log.base import StoreError

Action = Callable[[], None]


class Release:
    """Actions held until the log is durable up to their seq."""

    def __init__(self, durable_seq: Callable[[], int]) -> None:
        self._durable_seq = durable_seq
        self._held: list[tuple[int, int, Action, Action | None]] = []  # a heap by seq, then by arrival
        self._arrival = itertools.count()

    def __len__(self) -> int:
        return len(self._held)

    def after(self, seq: int, send: Action, lost: Action | None = None) -> None:
        """Run `send` once every event up to `seq` is durable (at once if it is); `lost` if a failed write
        loses what it would show."""
        if seq <= self._durable_seq():
            send()
        else:
            heapq.heappush(self._held, (seq, next(self._arrival), send, lost))

    async def wait(self, seq: int) -> None:
        """Return once every event up to `seq` is durable; StoreError if a failed write lost it."""
        future = asyncio.get_running_loop().create_future()

        def send() -> None:
            if not future.done():
                future.set_result(None)

        def lost() -> None:
            if not future.done():
                future.set_exception(StoreError(f"the change at seq {seq} was lost with a failed write"))

        self.after(seq, send, lost)
        await future

    def written(self) -> None:
        """After a commit: run what the log now holds, in seq order."""
        durable, held = self._durable_seq(), self._held
        while held and held[0][0] <= durable:
            heapq.heappop(held)[2]()

    def lose(self) -> None:
        """After a failed write (the state is rebuilt from the log): nothing held will be written as it was."""
        held, self._held = self._held, []
        for _, _, _, lost in sorted(held):
            if lost is not None:
                lost()
