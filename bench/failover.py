"""Registrars that carry on through the loss of a node or a NATS server, timing how long commands stop:
shared by the cluster's failover test and the bench's cluster scenario."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from sites.client import CommandFailed, Failover, HubClient, new_op_id
from sites.nodes import ws_url

RETRYABLE = ("internal_error", "rate_limited")  # answers after which the same op_id is sent again


class Registrar:
    """One hall's registrar adding people one at a time through the failover client: whatever node it is on
    fails, its command goes out again, with its op_id, on the next one it reaches."""

    def __init__(self, site: str, token: str, urls: list[str], first: int, pause: float = 0.08) -> None:
        self.site, self.token, self.pause = site, token, pause
        self.urls = [*urls[first:], *urls[:first]]  # its own node first, then the others
        self.acked: list[tuple[str, int]] = []  # (op_id, seq) as answered
        self.last_ack = time.monotonic()
        self.stopping = False

    async def run(self) -> None:
        client = HubClient(ws_url(self.urls[0]), self.token, failover=Failover([ws_url(u) for u in self.urls[1:]]))
        await client.connect()
        try:
            while not self.stopping:
                op_id = new_op_id()
                while True:  # the client resends it on each node it reaches; past its 30 s, once more
                    try:
                        result = await client.call("attendance.add", site=self.site, category="workers", delta=1,
                                                   op_id=op_id)
                        break
                    except (TimeoutError, ConnectionError, CommandFailed) as exc:
                        if isinstance(exc, CommandFailed) and exc.code not in RETRYABLE or self.stopping:
                            raise
                        await asyncio.sleep(self.pause)

                self.acked.append((op_id, result["seq"]))
                self.last_ack = time.monotonic()
                await asyncio.sleep(self.pause)
        finally:
            await client.close()


async def resumed(registrars: list[Registrar], since: float, deadline_seconds: float = 30.0) -> float:
    """Seconds from `since` until every registrar has been answered again; AssertionError past the deadline."""
    deadline = time.monotonic() + deadline_seconds
    while not all(r.last_ack > since for r in registrars):
        assert time.monotonic() < deadline, f"commands did not resume within {deadline_seconds:g} s of the loss"
        await asyncio.sleep(0.02)
    return max(r.last_ack for r in registrars) - since


def stored_ops(db: Path) -> dict[str, list[int]]:
    """Every op_id in a node's copy of the log, with the seqs it is stored at (one, if all is well)."""
    conn = sqlite3.connect(db)
    try:
        out: dict[str, list[int]] = {}
        for op_id, seq in conn.execute("SELECT op_id, seq FROM events WHERE op_id IS NOT NULL"):
            out.setdefault(op_id, []).append(seq)
        return out
    finally:
        conn.close()
