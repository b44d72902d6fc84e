"""Registrars that carry on through the loss of a node or a NATS server, timing how long commands stop:
shared by the cluster's failover test and the bench's cluster scenario."""

from __future__ import annotations

import asyncio
import time

from sites.client import HubClient, new_op_id

CALL_SECONDS = 10.0  # an answer not come by then: the node is taken for lost


class Registrar:
    """One hall's registrar adding people one at a time, moving to the next node whenever its node fails,
    and resending the unanswered command with its op_id until it is acknowledged."""

    def __init__(self, site: str, token: str, urls: list[str], first: int, pause: float = 0.02) -> None:
        self.site, self.token, self.urls, self.node, self.pause = site, token, urls, first, pause
        self.acked: list[tuple[str, int]] = []  # (op_id, seq) as answered
        self.last_ack = time.monotonic()
        self.stopping = False

    async def run(self) -> None:
        client: HubClient | None = None
        op_id = new_op_id()
        while not self.stopping:
            try:
                if client is None:
                    client = HubClient(self.urls[self.node].replace("http", "ws", 1) + "/ws", self.token)
                    await client.connect(open_timeout=3)
                result = await asyncio.wait_for(client.call("attendance.add", site=self.site, category="workers",
                                                            delta=1, op_id=op_id), CALL_SECONDS)
            except Exception:
                if client is not None:
                    await asyncio.gather(client.close(), return_exceptions=True)
                client = None
                self.node = (self.node + 1) % len(self.urls)
                await asyncio.sleep(0.2)
                continue
            self.acked.append((op_id, result["seq"]))
            self.last_ack = time.monotonic()
            op_id = new_op_id()
            await asyncio.sleep(self.pause)
        if client is not None:
            await client.close()


async def resumed(registrars: list[Registrar], since: float, deadline_seconds: float = 30.0) -> float:
    """Seconds from `since` until every registrar has been answered again; AssertionError past the deadline."""
    deadline = time.monotonic() + deadline_seconds
    while not all(r.last_ack > since for r in registrars):
        assert time.monotonic() < deadline, f"commands did not resume within {deadline_seconds:g} s of the loss"
        await asyncio.sleep(0.02)
    return max(r.last_ack for r in registrars) - since
