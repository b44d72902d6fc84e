"""The cluster scenario of `python -m bench`: three hub nodes on three nats-servers, every process on this
one machine, driven by the same generators as the single hub (connections spread over the nodes).

  commands — acknowledged commands at rising rates through the cluster (each durable on 2 of 3 servers);
  target   — the target load spread over the three nodes;
  failover — registrars adding people while the sequencer hub is killed (kill -9), then the NATS server
             leading the log's stream, then a machine (the sequencer hub and the server leading the lease
             stream at once): how long until every registrar is answered again, and whether every
             acknowledged op_id is stored exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import psutil

from hub.cluster.local import LocalCluster
from hub.tokens import ROW_FIELDS, TokenStore

from .failover import Registrar, resumed, stored_ops

ROUNDS = 3  # of each loss, in the full run
SHEET_SECONDS = 300.0  # the first node's access sheet (a QR code per token) is drawn before anything is measured


class ClusterServer:
    """A LocalCluster as the generators' `drive` sees a server: URLs to spread over, CPU and memory summed."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.peak_rss = 0

    @property
    def generator_cpus(self) -> set[int] | None:
        """None: the generator is not pinned. The cluster's six processes run on every core, and a generator kept
        to one would share it with half the cluster while the other core had room (measured here at the target
        load: push p99 164-199 ms pinned, 104-113 ms not; the readers of 900 dashboards 1.7-3.4 s behind pinned)."""
        return None

    @property
    def ws_urls(self) -> list[str]:
        return [node.url.replace("http", "ws", 1) + "/ws" for node in self.cluster.hubs.values()]

    def _processes(self) -> list[psutil.Process]:
        pids = [node.process.pid for node in self.cluster.hubs.values() if node.running() and node.process]
        pids += [s.proc.pid for s in self.cluster.nats.servers if s.proc is not None and s.proc.poll() is None]
        found = []
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                found.append(psutil.Process(pid))
        return found

    def cpu(self) -> float:
        """CPU seconds of every hub node and nats-server (a share of 1.0 is one core)."""
        total = 0.0
        for process in self._processes():
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def rss(self) -> int:
        total = 0
        for process in self._processes():
            with contextlib.suppress(psutil.Error):
                total += process.memory_info().rss
        self.peak_rss = max(self.peak_rss, total)
        return total

    def output(self) -> str:
        return "\n".join(node.tail(200_000) for node in self.cluster.hubs.values())


@contextlib.contextmanager
def started(config: Path, db: Path, folder: Path) -> Iterator[ClusterServer]:
    """The cluster, every node knowing the bench's tokens (copied into each node's store: the bench is not
    about how tokens reach the nodes)."""
    cluster = LocalCluster(folder, config, extra={name: ["--log-level", "warning"] for name in ("n1", "n2", "n3")})
    conn = sqlite3.connect(db)
    try:
        conn.row_factory = sqlite3.Row
        rows = [dict(row) for row in conn.execute(f"SELECT {', '.join(ROW_FIELDS)} FROM tokens")]
    finally:
        conn.close()
    for node in cluster.hubs.values():
        TokenStore(node.db, "bench").upsert(rows)
    with cluster:
        if cluster.wait_sequencer(30) is None:
            raise RuntimeError("no sequencer elected within 30 s")
        first = next(iter(cluster.hubs.values()))
        sheet, deadline = first.db.with_name(f"{first.db.stem}-access.html"), time.monotonic() + SHEET_SECONDS
        while not sheet.exists() and time.monotonic() < deadline:  # a first start's one-off: a core for a minute
            time.sleep(1)
        yield ClusterServer(cluster)


async def _failover(cluster: LocalCluster, registrars: list[tuple[str, str]], event_id: str, rounds: int
                    ) -> dict[str, Any]:
    urls = [node.url for node in cluster.hubs.values()]
    load = [Registrar(site, token, urls, i % len(urls)) for i, (site, token) in enumerate(registrars)]
    tasks = [asyncio.create_task(r.run()) for r in load]
    out: dict[str, Any] = {"sequencer_s": [], "nats_leader_s": [], "machine_s": []}
    try:
        await resumed(load, time.monotonic())
        for _ in range(rounds):
            sequencer = await asyncio.to_thread(cluster.sequencer)
            assert sequencer is not None
            out["sequencer_s"].append(await _lose(load, partial(cluster.kill, sequencer)))
            await asyncio.to_thread(cluster.restart, sequencer)
            leader = await cluster.stream_leader(event_id)
            out["nats_leader_s"].append(await _lose(load, partial(cluster.nats.kill, leader)))
            await asyncio.to_thread(cluster.nats.restart, leader)
            await cluster.wait_whole(event_id)  # each loss is of one process, or one machine, of a whole cluster
            await resumed(load, time.monotonic())
            sequencer = await asyncio.to_thread(cluster.sequencer)  # a machine: its hub and its server, the
            leader = await cluster.stream_leader(event_id, lease=True)  # worst one leading the lease stream
            assert sequencer is not None
            out["machine_s"].append(await _lose(load, partial(cluster.kill, sequencer),
                                                partial(cluster.nats.kill, leader)))
            await asyncio.to_thread(cluster.restart, sequencer)
            await asyncio.to_thread(cluster.nats.restart, leader)
            await cluster.wait_whole(event_id)
            await resumed(load, time.monotonic())
    finally:
        for r in load:
            r.stopping = True
        await asyncio.gather(*tasks, return_exceptions=True)
    acked = [pair for r in load for pair in r.acked]
    await asyncio.sleep(2)  # every node's copy takes the last events
    out["acked"] = len(acked)
    out["lost_or_doubled"] = {name: _mismatches(node.db, acked) for name, node in cluster.hubs.items()}
    return out


async def _lose(load: list[Registrar], *kills: Callable[[], None]) -> float:
    """Kill these processes at once; the seconds until every registrar is answered again."""
    lost = time.monotonic()
    for kill in kills:
        kill()
    return await resumed(load, lost)


def _mismatches(db: Path, acked: list[tuple[str, int]]) -> int:
    """Acknowledged op_ids not stored exactly once at the seq their answer named, in one node's copy."""
    stored = stored_ops(db)
    return sum(stored.get(op_id) != [seq] for op_id, seq in acked)


def run_cluster(bench: Any, steps: list[float], folder: Path) -> None:
    """Every cluster figure into bench.results (see bench/run.py's Bench), on one cluster: the commands, then the
    target load, then the failover rounds, which kill its processes."""
    args = bench.args
    with started(bench.config, bench.db, folder) as server:
        bench.results["commands_cluster"] = bench.drive(server, steps, registrars=bench.registrars)
        bench.results["target_cluster"] = bench.drive(
            server, [args.rate], stop_p99_ms=float("inf"), technicians=bench.technicians,
            registrars=bench.registrars, dashboards=bench.dashboards, duration=max(args.duration * 6, 1.0))
        bench.results["failover"] = asyncio.run(_failover(
            server.cluster, bench.registrars[:10], "bench", 1 if args.quick else ROUNDS))
