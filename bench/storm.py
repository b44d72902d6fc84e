"""Reconnect storms: every site and dashboard connection dropped at once, all reconnecting together.

    python -m bench.storm --sites 1000 --dashboards 200 --drops 5

Drops alternate between a hub restart (SIGTERM, then start) and a network cut (every client socket
aborted while the hub keeps running and changes keep coming). Clients reconnect with exponential
backoff and full jitter; dashboards resubscribe with `since` = the last seq they saw. During the
storm an admin probe keeps pinging; afterwards every dashboard's merged state must equal a fresh
GET /api/state.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import websockets

from hub.config import Config, load_config
from hub.core.views import SHARED_PARTS
from hub.tokens import TokenStore
from sites.client import CommandFailed, HubClient

from .crash import KON_TUM, backoff
from .hubproc import HubProcess

SHARED = (*SHARED_PARTS, "timeline")  # what a snapshot holds whole
PUSHED = SHARED_PARTS  # event frames carry the timeline's tail only
DASHBOARD_ROLES = ("chair", "viewer", "moderator")
PROBE_TIMEOUT = 2.0
LIVE_ONLY = frozenset({"last_heartbeat", "rtt_ms"})


def merge(state: dict[str, Any] | None, frame: dict[str, Any]) -> dict[str, Any] | None:
    """What a dashboard does with a pushed frame: take a snapshot whole, fold an event frame into it."""
    if frame.get("type") == "snapshot":
        return dict(frame["state"])
    if frame.get("type") != "event" or state is None:
        return state
    state = {**state, **{k: frame[k] for k in PUSHED if k in frame}, "seq": frame["seq"]}
    tail = frame.get("timeline_tail") or []
    if tail:
        state["timeline"] = [p for p in state["timeline"] if p[0] < tail[0][0]] + tail
    for key in ("sites", "questions"):
        rows = {row["id"]: row for row in state[key]}
        rows.update({row["id"]: row for row in frame.get(key, [])})
        state[key] = list(rows.values())
    return state


def comparable(state: dict[str, Any]) -> dict[str, Any]:
    """The parts of a state two views must agree on, sites and questions keyed by id.

    A heartbeat the hub does not store (same link quality, stored one under a minute ago) freshens
    `last_heartbeat` and `rtt_ms` in memory without a push, by design; those two are left out.
    """
    sites = {s["id"]: {k: v for k, v in s.items() if k not in LIVE_ONLY} for s in state["sites"]}
    return {"seq": state["seq"], **{k: state[k] for k in SHARED}, "sites": sites,
            "questions": {q["id"]: q for q in state["questions"]}}


class Peer:
    """One client that always comes back: a site sends a command on each connect, a dashboard resubscribes."""

    def __init__(self, ws_url: str, token: str, role: str, site: str | None, config: Config, rng: random.Random) -> None:
        self.ws_url, self.token, self.role, self.site, self.config, self.rng = ws_url, token, role, site, config, rng
        self.client: HubClient | None = None
        self.state: dict[str, Any] | None = None
        self.connects = 0
        self.modes: Counter[str] = Counter()
        self.up = asyncio.Event()

    @property
    def seq(self) -> int | None:
        return None if self.state is None else self.state["seq"]

    async def run(self) -> None:
        attempt = 0
        while True:
            self.client = HubClient(self.ws_url, self.token)
            try:
                await self.client.connect(open_timeout=10)
            except (OSError, asyncio.TimeoutError, websockets.WebSocketException):
                attempt += 1
                await asyncio.sleep(backoff(attempt, self.rng))
                continue
            attempt = 0
            try:
                await self._session(self.client)
            except (ConnectionError, asyncio.TimeoutError, websockets.ConnectionClosed, CommandFailed):
                pass
            finally:
                self.up.clear()
                await self.client.close()
            await asyncio.sleep(backoff(1, self.rng))  # everyone drops at once: spread the first retry

    async def _session(self, client: HubClient) -> None:
        if self.role in DASHBOARD_ROLES:
            answer = await client.call("subscribe", **({} if self.seq is None else {"since": self.seq}))
            self.modes[answer["mode"]] += 1
        elif self.role == "technician":
            await client.call("site.heartbeat", site=self.site, rtt_ms=self.rng.randint(5, 80))
        else:
            await client.call("attendance.add", site=self.site, category=self.config.categories[0].id, delta=1)
        self.connects += 1
        self.up.set()
        while not (client.closed.is_set() and client.pushed.empty()):
            with contextlib.suppress(asyncio.TimeoutError):
                self.state = merge(self.state, await client.next_push(timeout=0.5))

    def drop(self) -> None:
        """Cut the socket without a closing handshake, as a failed network does."""
        if self.client is not None and self.client.ws is not None and self.client.ws.transport is not None:
            self.client.ws.transport.abort()


async def probe(ws_url: str, token: str, stop: asyncio.Event, latencies: list[float]) -> None:
    """Connect and ping again and again through the storm; each round trip is recorded. Each attempt gives up
    after PROBE_TIMEOUT, so one caught by the restart (a handshake the stopping hub never finishes) does not
    sit out the whole storm."""
    while not stop.is_set():
        started = time.perf_counter()
        client = HubClient(ws_url, token)
        try:
            await client.connect(open_timeout=PROBE_TIMEOUT)
            await client.send("ping", timeout=PROBE_TIMEOUT)
            latencies.append(time.perf_counter() - started)
        except (OSError, asyncio.TimeoutError, websockets.WebSocketException, ConnectionError):
            pass  # the hub is restarting
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), PROBE_TIMEOUT)
        await asyncio.sleep(0.1)


async def change_things(ws_url: str, token: str, config: Config, rng: random.Random, steps: int) -> None:
    """A moderator's changes: questions in, some queued, the floor called."""
    async with HubClient(ws_url, token) as moderator:
        for _ in range(steps):
            site = rng.choice(config.sites).id
            q = await moderator.call("question.submit", site=site, topic=rng.choice(config.topics).id,
                                     delegate={"name": "Đại biểu", "unit": site}, text="Câu hỏi trong cơn bão kết nối")
            if rng.random() < 0.5:
                await moderator.call("question.update", question=q["question"], status="queued")
            if rng.random() < 0.3:
                await moderator.call("floor.call", site=site)


async def fresh_state(url: str, token: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/api/state", headers={"Authorization": f"Bearer {token}"}) as resp:
            resp.raise_for_status()
            return await resp.json()


async def converged(peers: list[Peer], url: str, token: str, timeout: float = 30) -> dict[str, Any]:
    """Wait until every dashboard has the hub's seq, then compare each with a fresh snapshot."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    truth = await fresh_state(url, token)
    dashboards = [p for p in peers if p.role in DASHBOARD_ROLES]
    while any(p.seq != truth["seq"] for p in dashboards) and loop.time() < deadline:
        await asyncio.sleep(0.1)
        truth = await fresh_state(url, token)
    expected = comparable(truth)
    differing = [p for p in dashboards if p.state is None or comparable(p.state) != expected]
    return {"seq": truth["seq"], "dashboards": len(dashboards), "differing": len(differing),
            "differing_seqs": dict(Counter(p.seq for p in differing)),  # behind the hub, or at its seq and wrong
            "example": None if not differing else _first_difference(differing[0].state, expected)}


def _first_difference(state: dict[str, Any] | None, expected: dict[str, Any]) -> str:
    """Where a dashboard's view first departs from the fresh snapshot, down to the field."""
    if state is None:
        return "never got a state"
    path, mine, truth = "", comparable(state), expected
    while isinstance(truth, dict) and isinstance(mine, dict):
        key = next((k for k in truth.keys() | mine.keys() if mine.get(k) != truth.get(k)), None)
        if key is None:
            break
        path, mine, truth = f"{path}.{key}", mine.get(key), truth.get(key)
    return f"{path.lstrip('.')}: {str(mine)[:200]} != {str(truth)[:200]}"


async def wait_all_up(peers: list[Peer], connects: int, timeout: float = 60) -> None:
    async def one(peer: Peer) -> None:
        while peer.connects < connects or not peer.up.is_set():
            await asyncio.sleep(0.05)
    await asyncio.wait_for(asyncio.gather(*(one(p) for p in peers)), timeout)


async def run(db_path: Path, sites: int = 200, dashboards: int = 50, drops: int = 2, seed: int | None = None,
              config_path: Path = KON_TUM) -> dict[str, Any]:
    """Open the connections, drop them all `drops` times (alternating restart and network cut), check."""
    rng = random.Random(seed)
    config = load_config(config_path)
    store = TokenStore(db_path, config.event.id)
    specs: list[tuple[str, str | None, str | None, str | None]] = [
        (("technician", "registrar")[n % 2], config.sites[n % len(config.sites)].id, None, f"storm {n}")
        for n in range(sites)]
    specs += [(DASHBOARD_ROLES[n % 3], None, None, f"storm dashboard {n}") for n in range(dashboards)]
    specs += [("admin", None, None, "storm probe"), ("moderator", None, None, "storm changes")]
    *tokens, probe_token, moderator_token = [t.token for t in store.issue_many(specs)]
    hub = HubProcess(config_path, db_path)
    await hub.start()
    peers = [Peer(hub.ws_url, token, role, site, config, random.Random(rng.random()))
             for token, (role, site, _, _) in zip(tokens, specs)]
    tasks = [asyncio.create_task(p.run()) for p in peers]
    latencies: list[float] = []
    stop = asyncio.Event()
    prober = asyncio.create_task(probe(hub.ws_url, probe_token, stop, latencies))
    started = time.monotonic()
    checks = []
    try:
        await wait_all_up(peers, 1)
        await change_things(hub.ws_url, moderator_token, config, rng, 5)
        for number in range(1, drops + 1):
            pings_before = len(latencies)
            if number % 2:
                await hub.stop()
                await hub.start()
            else:
                for peer in peers:
                    peer.drop()
            await change_things(hub.ws_url, moderator_token, config, rng, 5)  # while they come back
            await wait_all_up(peers, number + 1)
            await change_things(hub.ws_url, moderator_token, config, rng, 2)
            check = await converged(peers, hub.url, probe_token)
            check.update(drop=number, kind="restart" if number % 2 else "network cut",
                         pings=len(latencies) - pings_before)
            checks.append(check)
    finally:
        stop.set()
        for task in (*tasks, prober):
            task.cancel()
        await asyncio.gather(*tasks, prober, return_exceptions=True)
        for peer in peers:
            if peer.client is not None:
                with contextlib.suppress(Exception):
                    await peer.client.close()
        code = await hub.stop()
    modes = sum((p.modes for p in peers), Counter())
    return {"connections": len(peers), "drops": drops, "checks": checks, "reconnects": sum(p.connects - 1 for p in peers),
            "resumed_delta": modes["delta"], "snapshots": modes["snapshot"], "pings": len(latencies),
            "max_ping_seconds": round(max(latencies, default=0), 3), "exit_code": code,
            "seconds": round(time.monotonic() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=1000, help="site connections (default 1000)")
    parser.add_argument("--dashboards", type=int, default=200, help="dashboard connections (default 200)")
    parser.add_argument("--drops", type=int, default=4, help="times everything is dropped (default 4)")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = asyncio.run(run(Path(tmp) / "storm.db", args.sites, args.dashboards, args.drops, args.seed))
    for check in figures.pop("checks"):
        print(f"drop {check['drop']} ({check['kind']}): {check['dashboards']} dashboards at seq {check['seq']}, "
              f"{check['differing']} differing from a fresh snapshot, {check['pings']} pings answered meanwhile"
              + (f"; e.g. {check['example']}" if check["example"] else ""))
    for key, value in figures.items():
        print(f"{key:>18}  {value}")


if __name__ == "__main__":
    main()
