"""Clients fail over by themselves: the Python client, the site agent and the pages' hub.js, against real
`serve` processes killed with SIGKILL or frozen with SIGSTOP.

Until cluster mode runs, a second node is a second `serve` process: on the same database once the first is
dead (the same log and tokens, so "stored exactly once" means something), or on a copy of it while the first
is frozen. The clients are given both addresses, as a cluster's auth_ok would list them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, expect

from bench.hubproc import HubProcess
from hub.stopping import stop
from hub.tokens import TokenStore
from sites.agent import Agent, AgentOptions
from sites.client import AuthFailed, Failover, HubClient
from sites.nodes import Nodes, backoff

from .browser import REFUSED, Pages
from .conftest import KON_TUM, RunningHub

SITE = "dak-ha"
EVENT_ID = "kontum-2023"


async def eventually(check: Callable[[], Any], timeout: float = 20) -> None:
    """Wait until `check()` is true: a deadline, never a measured time."""
    async def wait() -> None:
        while not check():
            await asyncio.sleep(0.05)
    await asyncio.wait_for(wait(), timeout)


@contextlib.asynccontextmanager
async def hub_processes(*hubs: HubProcess) -> AsyncIterator[None]:
    """Every hub process started in the block is killed at its end, frozen or not."""
    try:
        yield
    finally:
        for hub in hubs:
            hub.kill()  # SIGKILL ends a SIGSTOPped process as well


def freeze(hub: HubProcess) -> None:
    """SIGSTOP: the node stops answering, but its kernel keeps the TCP connections open."""
    assert hub.proc is not None
    os.kill(hub.proc.pid, signal.SIGSTOP)


def tokens(db: Path) -> TokenStore:
    return TokenStore(db, EVENT_ID)


async def api_state(hub: HubProcess, token: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{hub.url}/api/state",
                                                         headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 200
        return await resp.json()


def copy_db(source: Path, target: Path) -> None:
    """A consistent copy (SQLite's online backup): the second node's database, tokens and all."""
    with contextlib.closing(sqlite3.connect(source)) as src, contextlib.closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def stored_op_ids(db: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return [op_id for (op_id,) in conn.execute("SELECT op_id FROM events WHERE op_id IS NOT NULL")]


# -- which node, how long to wait ---------------------------------------------------------------------

def test_backoff_is_full_jitter_under_a_growing_cap() -> None:
    """Anywhere from 0 to min(cap, base * 2**attempt): clients that lost the same node spread over the window."""
    rng = random.Random(18)
    for attempt in range(12):
        ceiling = min(10.0, 0.5 * 2 ** attempt)
        delays = [backoff(attempt, 0.5, 10.0, rng) for _ in range(2000)]
        assert all(0 <= d <= ceiling for d in delays)
        assert min(delays) < ceiling * 0.05 and max(delays) > ceiling * 0.95  # the whole window, not half of it


def test_nodes_start_on_the_given_address_and_try_every_other_before_one_again() -> None:
    nodes = Nodes(["http://10.0.0.1:8080", "ws://10.0.0.2:8080/ws"], random.Random(1))
    assert nodes.pick() == "ws://10.0.0.1:8080/ws"
    nodes.connected("ws://10.0.0.1:8080/ws")
    nodes.announce(["http://10.0.0.1:8080", "http://10.0.0.3:8080/", "not a url"])
    assert nodes.urls == ["ws://10.0.0.1:8080/ws", "ws://10.0.0.2:8080/ws", "ws://10.0.0.3:8080/ws"]
    for _ in range(20):  # the node in use failed: each round tries the others first, and none twice
        round_ = [nodes.pick() for _ in range(3)]
        assert sorted(round_) == nodes.urls and round_[0] != "ws://10.0.0.1:8080/ws"
        nodes.connected(round_[-1])
        assert nodes.pick() != round_[-1]
        nodes.connected("ws://10.0.0.1:8080/ws")
    nodes.announce([])  # a single-node hub names no nodes: the given ones stay, announced ones go
    assert nodes.urls == ["ws://10.0.0.1:8080/ws", "ws://10.0.0.2:8080/ws"]


def test_a_lone_node_is_tried_again_and_again() -> None:
    nodes = Nodes(["http://10.0.0.1:8080"])
    assert {nodes.pick() for _ in range(5)} == {"ws://10.0.0.1:8080/ws"}


# -- the Python client -----------------------------------------------------------------------------------

async def test_client_fails_over_after_kill_9_and_every_command_is_stored_once(tmp_path: Path) -> None:
    db = tmp_path / "event.db"
    registrar_token = tokens(db).issue("registrar", SITE, None, "failover test").token
    viewer_token = tokens(db).issue("viewer", None, None, "failover test").token
    a, b = HubProcess(KON_TUM, db), HubProcess(KON_TUM, db)
    async with hub_processes(a, b):
        await a.start()
        registrar = HubClient(a.ws_url, registrar_token, failover=Failover([b.url]))
        viewer = HubClient(a.ws_url, viewer_token, failover=Failover([b.url]))
        try:
            await registrar.connect()
            await viewer.connect()
            await viewer.call("subscribe")
            await viewer.next_push(lambda f: f["type"] == "snapshot")
            for n in range(3):
                await registrar.call("attendance.add", site=SITE, category="workers", delta=1, op_id=f"before-{n}")
            ops = [f"burst-{n}" for n in range(50)]
            calls = [asyncio.create_task(registrar.call("attendance.add", site=SITE, category="workers", delta=1,
                                                        op_id=op)) for op in ops[:25]]
            await asyncio.sleep(0)  # the first half reaches the socket: stored or not, answered or not
            freeze(a)
            calls += [asyncio.create_task(registrar.call("attendance.add", site=SITE, category="workers", delta=1,
                                                         op_id=op)) for op in ops[25:]]
            await asyncio.sleep(0.2)
            assert not any(call.done() for call in calls[25:])  # sent to a node that cannot answer
            a.kill()
            await b.start()
            results = await asyncio.wait_for(asyncio.gather(*calls), 30)

            assert registrar.url == b.ws_url
            stored = stored_op_ids(db)
            assert sorted(stored) == sorted([f"before-{n}" for n in range(3)] + ops)  # each once, none lost
            assert len({r["seq"] for r in results}) == len(ops)
            state = await api_state(b, viewer_token)
            assert state["totals"]["attendance"] == 53 == state["seq"]
            resumed = await viewer.next_push(lambda f: "since" in f, timeout=20)  # on B: A is gone
            assert viewer.url == b.ws_url
            assert resumed["type"] == "event"  # resumed from where it was, not a whole snapshot
            frame = resumed  # it carries the totals if they changed since, and later frames whenever they change
            while frame.get("totals", {}).get("attendance") != 53:
                frame = await viewer.next_push(lambda f: "totals" in f, timeout=20)
            assert frame["totals"] == state["totals"]
        finally:
            await registrar.close()
            await viewer.close()


async def test_client_leaves_a_node_that_stops_answering_within_the_deadline(tmp_path: Path) -> None:
    db, copy = tmp_path / "event.db", tmp_path / "copy.db"
    token = tokens(db).issue("chair", None, None, "failover test").token
    copy_db(db, copy)
    a, b = HubProcess(KON_TUM, db), HubProcess(KON_TUM, copy)
    async with hub_processes(a, b):
        await a.start()
        await b.start()
        client = HubClient(a.ws_url, token, failover=Failover([b.url]))
        try:
            await client.connect()
            await client.call("subscribe")
            freeze(a)  # the TCP connection stays open: only the silence tells
            await eventually(lambda: client.url == b.ws_url and client.online.is_set(), timeout=20)
            assert (await client.call("ping"))["now"]
        finally:
            await client.close()


async def test_agent_carries_on_to_the_second_node_after_kill_9(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "event.db"
    token = tokens(db).issue("technician", SITE, None, "agent test").token
    chair = tokens(db).issue("chair", None, None, "failover test").token
    a, b = HubProcess(KON_TUM, db), HubProcess(KON_TUM, db)
    async with hub_processes(a, b):
        await a.start()
        agent = Agent(AgentOptions(a.url, token, interval=0.2, nodes=(b.url,)))
        with caplog.at_level(logging.INFO, "diemcau.agent"):
            task = asyncio.create_task(agent.run())
            try:
                await eventually(lambda: agent.heartbeats >= 2)
                a.kill()
                seen = agent.heartbeats
                await b.start()
                await eventually(lambda: agent.heartbeats >= seen + 2)
                rows = {s["id"]: s for s in (await api_state(b, chair))["sites"]}
                assert rows[SITE]["last_heartbeat"] is not None
                assert not task.done()
            finally:
                await stop(task)
    assert f"Đã kết nối hub {b.ws_url}" in caplog.text and "thử lại sau" in caplog.text


# -- the pages' hub.js -----------------------------------------------------------------------------------

PAGE_CLIENT = """async ([token, nodes]) => {
  const { HubConnection } = await import('/assets/hub.js');
  window.conn = new HubConnection(token, { nodes }).start();
}"""

SAME_STATE = """(state) => {
  const mine = window.conn.state;
  const rows = (m) => JSON.stringify([...m.values()].map((s) => [s.id, s.attendance, s.status]));
  return mine.seq === state.seq && rows(mine.sites) === rows(new Map(state.sites.map((s) => [s.id, s])))
    && JSON.stringify(mine.totals) === JSON.stringify(state.totals);
}"""


def config_allowing(tmp_path: Path, origin: str) -> Path:
    """Kon Tum with a node's origin allowed, as a cluster node allows the other nodes' origins."""
    path = tmp_path / "kon-tum-2023.toml"
    path.write_text(KON_TUM.read_text(encoding="utf-8") + f'\n[server]\nallowed_origins = ["{origin}"]\n',
                    encoding="utf-8")
    return path


async def open_client(pages: Pages, hub: HubProcess, token: str, nodes: list[str]) -> Page:
    page = await pages.open(SimpleNamespace(url=hub.url), "/healthz")  # type: ignore[arg-type]
    await page.evaluate(PAGE_CLIENT, [token, nodes])
    await page.wait_for_function("window.conn.status === 'online' && window.conn.state", timeout=10000)
    return page


async def test_page_fails_over_after_kill_9_and_resends_with_the_same_op_id(tmp_path: Path, pages: Pages) -> None:
    db = tmp_path / "event.db"
    registrar = tokens(db).issue("registrar", SITE, None, "page test").token
    a = HubProcess(KON_TUM, db)
    b = HubProcess(config_allowing(tmp_path, a.url), db)
    pages.allow_console(REFUSED)  # the page tries B while it starts, and both once they are killed
    async with hub_processes(a, b):
        await a.start()
        page = await open_client(pages, a, registrar, [b.url])
        freeze(a)
        await page.evaluate("""() => {
          window.answer = conn.send('attendance.add', {site: 'dak-ha', category: 'workers', delta: 5, op_id: 'page-1'});
          conn.submit('attendance.add', {site: 'dak-ha', category: 'guests', delta: 2});
        }""")
        a.kill()
        await b.start()
        await page.wait_for_function(f"window.conn.url === '{b.ws_url}' && window.conn.status === 'online'"
                                     " && window.conn.outbox().length === 0", timeout=20000)
        answer = await page.evaluate("window.answer")  # the send in flight completed on B
        assert stored_op_ids(db).count("page-1") == 1 and len(stored_op_ids(db)) == 2
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            assert conn.execute("SELECT seq FROM events WHERE op_id = 'page-1'").fetchone() == (answer["seq"],)
        await page.wait_for_function(SAME_STATE, arg=await api_state(b, registrar), timeout=10000, polling=200)
        assert await page.evaluate("window.conn.state.totals.attendance") == 7


async def test_page_leaves_a_node_that_stops_answering(tmp_path: Path, pages: Pages) -> None:
    db, copy = tmp_path / "event.db", tmp_path / "copy.db"
    chair = tokens(db).issue("chair", None, None, "page test").token
    copy_db(db, copy)
    a = HubProcess(KON_TUM, db)
    b = HubProcess(config_allowing(tmp_path, a.url), copy)
    pages.allow_console(REFUSED)  # once the test kills both nodes, before the page closes
    async with hub_processes(a, b):
        await a.start()
        await b.start()
        page = await open_client(pages, a, chair, [b.url])
        freeze(a)
        await page.wait_for_function(f"window.conn.url === '{b.ws_url}' && window.conn.status === 'online'",
                                     timeout=20000)
        await page.wait_for_function(SAME_STATE, arg=await api_state(b, chair), timeout=10000, polling=200)


async def test_page_takes_the_node_list_the_hub_pushes(hub: RunningHub, pages: Pages) -> None:
    """A cluster node pushes `nodes` when its list changes; the page adds them and keeps its own origin."""
    page = await pages.open(hub, "/healthz")
    injected = asyncio.Event()

    async def route(ws: Any) -> None:
        server = ws.connect_to_server()
        server.on_message(lambda message: ws.send(message))

        def to_server(message: str | bytes) -> None:
            server.send(message)
            if isinstance(message, str) and json.loads(message).get("type") == "subscribe" and not injected.is_set():
                injected.set()
                ws.send(json.dumps({"type": "nodes", "node": "n1", "nodes": ["http://10.0.0.2:8080"]}))
        ws.on_message(to_server)

    await page.route_web_socket("**/ws", route)
    await page.evaluate(PAGE_CLIENT, [hub.token("chair"), []])
    await page.wait_for_function("window.conn.nodes.urls.length === 2", timeout=10000)
    assert await page.evaluate("window.conn.nodes.urls") == [hub.ws_url, "ws://10.0.0.2:8080/ws"]
    assert await page.evaluate("window.conn.identity.node") == "n1"


async def test_page_backoff_and_node_order(hub: RunningHub, pages: Pages) -> None:
    page = await pages.open(hub, "/healthz")
    found = await page.evaluate("""async () => {
      const { backoffDelay, Nodes } = await import('/assets/hub.js');
      const windows = [];
      for (let attempt = 0; attempt < 12; attempt++) {
        const delays = Array.from({ length: 2000 }, () => backoffDelay(attempt));
        windows.push([Math.min(...delays), Math.max(...delays)]);
      }
      const nodes = new Nodes(['http://10.0.0.1:8080', 'https://10.0.0.2/hub/']);
      const first = nodes.pick();
      nodes.connected(first);
      return { windows, first, next: nodes.pick(), urls: nodes.urls };
    }""")
    for attempt, (low, high) in enumerate(found["windows"]):
        ceiling = min(10000, 500 * 2 ** attempt)
        assert 0 <= low < ceiling * 0.05 and ceiling * 0.95 < high <= ceiling
    assert found["urls"] == ["ws://10.0.0.1:8080/ws", "wss://10.0.0.2/hub/ws"]
    assert (found["first"], found["next"]) == ("ws://10.0.0.1:8080/ws", "wss://10.0.0.2/hub/ws")


# -- the chair's status line -------------------------------------------------------------------------

async def test_the_chair_names_no_node_on_a_single_hub(hub: RunningHub, pages: Pages) -> None:
    """On a cluster it does (tests/test_cluster_failover.py, on three real nodes)."""
    page = await pages.open(hub, "/", hub.token("chair"))
    await expect(page.locator(".tile").first).to_be_visible(timeout=15000)
    await expect(page.locator("#node")).to_be_hidden()


async def test_a_refused_token_is_final_on_every_node(hub: RunningHub) -> None:
    """Tokens are valid on every node: after a revocation the client stops, and what waited fails, at once."""
    client = HubClient(hub.ws_url, hub.token("registrar", site=SITE), failover=Failover(["http://127.0.0.1:9"]))
    await client.connect()
    hub.tokens.revoke(client.token.split(".")[0])
    await asyncio.wait_for(client.closed.wait(), 20)
    with pytest.raises(AuthFailed):
        await client.call("attendance.add", site=SITE, category="workers", delta=1)
    with pytest.raises(AuthFailed):
        await client.wait_online()
    await client.close()
