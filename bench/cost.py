"""The hub's own work per command, apart from the network and the framework.

`attendance.set` frames go through `Connection._handle` as a websocket would hand them over, with the
real event log (writer thread, group commit, fsync) and the real answer path; only the socket is
replaced, by a transport that counts the frames it is given. The CPU it takes, on the loop's thread
and the log writer's, is the hub's own code without the network and the framework, and steadier from
run to run than the socket scenarios: the figure to watch when changing the command path. It is no
floor under what the hub spends over the echo: under load the hub answers several commands per commit
and per socket write, which this paced, one-by-one run does not.

It runs twice: with op_ids as the hub's own clients make them (`new_op_id`: they sort by time), and with
random ones (uuid4), as a client of its own might send, to show what those cost the log's op_id index.
"""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from hub.cli.serve import event_loop, quiet_collector
from hub.config import load_config
from hub.core.hub import Hub
from hub.log.sqlite import SQLiteLog
from hub.protocol.connection import Connection
from hub.tokens import Identity
from sites.client import new_op_id

from .genconfig import write_config

RATE = 20_000  # commands a second, in rounds of one per connection: a load the hub carries with room to spare
CONNECTIONS = 100


class CountingTransport:
    """Takes what a socket would send (several frames in one write when answers go out together); counts
    the frames afterwards, outside the measured time."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    @property
    def frames(self) -> int:
        count = 0
        for data in self.written:
            at = 0
            while at < len(data):  # unmasked text frames of under 64 KiB, as the hub's answers are here
                size = data[at + 1]
                at += 2 + (2 + int.from_bytes(data[at + 2:at + 4], "big") if size == 126 else size)
                count += 1
        return count

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


class OpenSocket:
    """What `Connection` asks of aiohttp's websocket on the answer path: only whether it is closed."""

    closed = False


OP_IDS: dict[str, Callable[[], str]] = {"time-ordered": new_op_id, "random": lambda: uuid.uuid4().hex}


async def _measure(workdir: Path, commands: int, limits: dict[str, float], op_ids: str) -> dict[str, Any]:
    config = load_config(write_config(workdir / "cost.toml", sites=CONNECTIONS, limits=limits, event_id="cost"))
    db_path = workdir / f"cost-{op_ids}.db"
    hub = Hub(config, db_path, SQLiteLog(db_path, config.event.id))
    hub.log.start()
    category = config.categories[0].id
    transports, connections = [], []
    for site in list(hub.state.sites)[:CONNECTIONS]:
        transports.append(CountingTransport())
        conn = Connection(hub, OpenSocket(), "cost", transports[-1])  # type: ignore[arg-type]
        conn.who = Identity(f"cost-{site}", "registrar", site)
        connections.append(conn)
    op_id = OP_IDS[op_ids]
    frames = [orjson.dumps({"id": n, "type": "attendance.set", "site": conn.who.site, "op_id": op_id(),
                            "category": category, "count": n % 1000})
              for n, conn in zip(range(commands), connections * (commands // CONNECTIONS + 1))]
    quiet_collector()  # the collector as `diemcau serve` sets it
    started, cpu, loop_cpu = time.perf_counter(), time.process_time(), time.thread_time()
    for first in range(0, commands, CONNECTIONS):
        for conn, frame in zip(connections, frames[first:first + CONNECTIONS]):
            conn._handle(frame)
        await asyncio.sleep(max(0.0, started + (first + CONNECTIONS) / RATE - time.perf_counter()))
    await hub.release.wait(hub.state.seq)
    while any(conn.answers for conn in connections):  # the last commit's answers go out on the loop
        await asyncio.sleep(0.001)
    cpu, loop_cpu = time.process_time() - cpu, time.thread_time() - loop_cpu
    await hub.log.stop()
    answered = sum(t.frames for t in transports)
    if answered != commands or hub.state.seq != commands:
        raise RuntimeError(f"cost run: {answered} answers and {hub.state.seq} events for {commands} commands")
    return {"commands": commands, "own_us": cpu / commands * 1e6, "loop_us": loop_cpu / commands * 1e6,
            "writer_us": (cpu - loop_cpu) / commands * 1e6, "batches": hub.log.batches}


def measure_cost(workdir: Path, commands: int, limits: dict[str, float]) -> dict[str, dict[str, Any]]:
    """CPU per command of the hub's own work, on the hub's own loop (uvloop), for each kind of op_id;
    `limits` must let every connection send at RATE / CONNECTIONS."""
    loop, thresholds = event_loop(), gc.get_threshold()
    try:
        return {kind: loop.run_until_complete(_measure(workdir, commands, limits, kind)) for kind in OP_IDS}
    finally:
        loop.close()
        gc.unfreeze()
        gc.set_threshold(*thresholds)
