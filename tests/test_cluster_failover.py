"""Three hub nodes on three nats-servers, all real processes on loopback, under load from registrars
spread over the nodes: kill -9 the sequencer hub, a follower hub and the NATS server leading the log's
stream, in rounds (a whole machine's loss is the bench's). After each, every acknowledged op_id is
stored exactly once at the seq its answer named, the totals equal the distinct op_ids, every node's
state is the same, a dashboard of a killed node carries on from another with `since` (a Python one,
and the chair page in Chromium), and a token revoked on one node is refused on every node.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from bench.failover import Registrar, stored_ops
from bench.failover import resumed as wait_resumed
from hub.cluster.connect import connect
from hub.cluster.local import LocalCluster
from hub.cluster.node import beats_subject
from sites.client import AuthFailed, Failover, HubClient
from sites.nodes import ws_url

from .browser import REFUSED, Pages

pytestmark = pytest.mark.cluster

CONFIG = Path(__file__).resolve().parents[1] / "config" / "kon-tum-2023.toml"
EVENT = "kontum-2023"
SITES = ["tp-kon-tum", "dak-glei", "dak-to", "ngoc-hoi", "kon-plong", "sa-thay"]
RESUME_DEADLINE = 30.0  # seconds for commands to flow again after a loss (targets are the bench's)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    folder = tmp_path_factory.mktemp("cluster")
    with LocalCluster(folder, CONFIG) as running:
        yield running


def api_state(url: str, token: str) -> dict[str, Any]:
    request = urllib.request.Request(f"{url}/api/state", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        state = json.loads(response.read())
    state.pop("now", None)
    return state


def event_tokens(cluster: LocalCluster) -> dict[str, str]:
    """The tokens the first node issued for the whole cluster, from its links file: by role, registrars by site."""
    tokens: dict[str, str] = {}
    for line in (cluster.folder / "n1-links.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        role, site, link = line.split("\t")
        token = link.split("#token=")[1]
        if role in ("registrar", "technician"):
            tokens[site if role == "registrar" else f"{role}:{site}"] = token
        elif role in ("chair", "admin", "viewer"):
            tokens[role] = token
    return tokens


def cli(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "hub", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr
    return done.stdout


async def resumed(registrars: list[Registrar], since: float) -> float:
    took = await wait_resumed(registrars, since, RESUME_DEADLINE)
    print(f"commands resumed {took:.2f} s after the loss")
    return took


async def converged(cluster: LocalCluster, token: str) -> dict[str, Any]:
    """Every node's /api/state, once they all show the same seq; returns one of them."""
    deadline = time.monotonic() + 30
    while True:
        states = [await asyncio.to_thread(api_state, node.url, token) for node in cluster.hubs.values()]
        if all(state == states[0] for state in states):
            return states[0]
        assert time.monotonic() < deadline, f"nodes did not converge: seqs {[s['seq'] for s in states]}"
        await asyncio.sleep(0.3)


async def test_killing_any_one_process_loses_nothing_acknowledged(cluster: LocalCluster) -> None:
    tokens = event_tokens(cluster)
    urls = [node.url for node in cluster.hubs.values()]
    first = await asyncio.to_thread(cluster.wait_sequencer, 20)
    assert first is not None, "no sequencer elected"
    registrars = [Registrar(site, tokens[site], urls, i % len(urls)) for i, site in enumerate(SITES)]
    load = [asyncio.create_task(r.run()) for r in registrars]
    watcher_node = list(cluster.hubs).index(first)
    others = [ws_url(url) for i, url in enumerate(urls) if i != watcher_node]
    watcher = HubClient(ws_url(urls[watcher_node]), tokens["chair"], failover=Failover(others))
    try:
        await watcher.connect()
        await watcher.call("subscribe")
        await resumed(registrars, time.monotonic())

        # 1. The sequencer hub, with a dashboard on it: the dashboard moves to another node by itself.
        lost = time.monotonic()
        cluster.kill(first)
        await resumed(registrars, lost)
        new = await asyncio.to_thread(cluster.sequencer)
        assert new is not None and new != first
        deadline = time.monotonic() + 30
        while watcher.url == ws_url(urls[watcher_node]) or not watcher.online.is_set():
            assert time.monotonic() < deadline, "the dashboard did not move off the killed node"
            await asyncio.sleep(0.1)
        await asyncio.to_thread(cluster.restart, first)  # the registrars carry on meanwhile

        # 2. A follower hub.
        sequencer = await asyncio.to_thread(cluster.sequencer)
        follower = next(name for name in cluster.hubs if name != sequencer)
        lost = time.monotonic()
        cluster.kill(follower)
        await resumed(registrars, lost)
        await asyncio.to_thread(cluster.restart, follower)

        # 3. The NATS server leading the log's stream.
        leader = await cluster.stream_leader(EVENT)
        lost = time.monotonic()
        cluster.nats.kill(leader)
        await resumed(registrars, lost)
        await asyncio.to_thread(cluster.nats.restart, leader)
        await cluster.wait_whole(EVENT)  # the tests after this one start from a whole cluster
        await resumed(registrars, time.monotonic())
    finally:
        for r in registrars:
            r.stopping = True
        await asyncio.gather(*load, return_exceptions=True)

    state = await converged(cluster, tokens["admin"])
    acked = [pair for r in registrars for pair in r.acked]
    print(f"{len(acked)} adds acknowledged: {[len(r.acked) for r in registrars]}")
    assert len({op_id for op_id, _ in acked}) == len(acked)
    for node in cluster.hubs.values():
        stored = stored_ops(node.db)
        for op_id, seq in acked:
            assert stored.get(op_id) == [seq], f"{node.name}: {op_id} stored at {stored.get(op_id)}, answered {seq}"
    for r in registrars:
        site = next(s for s in state["sites"] if s["id"] == r.site)
        assert site["attendance"]["workers"] == len(r.acked), r.site
    seen: dict[str, dict[str, int]] = {}  # each site's attendance as the moved dashboard's frames left it
    deadline = time.monotonic() + 30
    while True:
        frame = await watcher.next_push(timeout=max(0.1, deadline - time.monotonic()))
        rows = frame["state"]["sites"] if frame["type"] == "snapshot" else frame.get("sites", [])
        seen |= {row["id"]: row["attendance"] for row in rows}
        if frame.get("seq", 0) >= state["seq"] and watcher.pushed.empty():
            break
    assert all(seen.get(site["id"]) == site["attendance"] for site in state["sites"])  # no change missed
    await watcher.close()

    health = {name: node.health() for name, node in cluster.hubs.items()}
    assert sorted(h["role"] for h in health.values()) == ["follower", "follower", "sequencer"], health
    assert all(h["fold_seq"] == state["seq"] and h["engine"]["connected"] for h in health.values()), health
    counts = {name: metrics(node.url, tokens["admin"]) for name, node in cluster.hubs.items()}
    assert sum(c["diemcau_cluster_takeovers_total"] for c in counts.values()) >= 1, counts
    assert sum(c["diemcau_cluster_forwarded_commands_total"] for c in counts.values()) > 0, counts


def metrics(url: str, token: str) -> dict[str, float]:
    request = urllib.request.Request(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        lines = response.read().decode().splitlines()
    return {name: float(value) for name, value in (line.split(" ", 1) for line in lines)
            if name.startswith("diemcau_cluster_")}




async def test_a_token_made_on_the_cluster_works_on_every_node_and_its_revocation_closes_it_everywhere(
        cluster: LocalCluster) -> None:
    nats_urls = ",".join(cluster.nats.urls)
    refused = subprocess.run([sys.executable, "-m", "hub", "token", "--config", str(CONFIG), "--nats", nats_urls,
                              "--role", "viewer"], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "refused this client: give the cluster's token with --nats-token-file" \
        in refused.stderr, refused.stderr  # the servers take no client without the cluster's token
    assert cluster.nats.token not in refused.stdout + refused.stderr
    token = cli("token", "--config", str(CONFIG), "--nats", nats_urls, "--nats-token-file", str(cluster.token_file),
                "--role", "viewer").splitlines()[-1]
    token_id = token.split(".")[0]
    clients = [HubClient(node.url.replace("http", "ws") + "/ws", token) for node in cluster.hubs.values()]
    for client in clients:
        assert (await client.connect())["role"] == "viewer"
    cli("token", "--config", str(CONFIG), "--nats", nats_urls, "--revoke", token_id,
        env={"DIEMCAU_NATS_TOKEN_FILE": str(cluster.token_file)})  # the file named by the variable, as systemd's
    for client in clients:
        await asyncio.wait_for(client.closed.wait(), 10)
        assert client.ws is not None and client.ws.close_code == 4001
    for node in cluster.hubs.values():
        with pytest.raises(AuthFailed):
            await HubClient(node.url.replace("http", "ws") + "/ws", token).connect()


async def test_a_subscribe_from_a_seq_this_node_has_not_folded_waits_for_its_fold(cluster: LocalCluster) -> None:
    """A dashboard failing over from a node further ahead resumes with a delta, not a whole snapshot."""
    tokens = event_tokens(cluster)
    urls = [ws_url(node.url) for node in cluster.hubs.values()]
    async with HubClient(urls[0], tokens["tp-kon-tum"]) as registrar, HubClient(urls[1], tokens["chair"]) as chair:
        seq = (await registrar.call("attendance.add", site="tp-kon-tum", category="workers", delta=1))["seq"]
        ahead = seq + 3  # as a node that has folded three more events would have sent it
        subscribing = asyncio.create_task(chair.call("subscribe", since=ahead))
        await asyncio.sleep(0.3)
        assert not subscribing.done()  # it waits for this node's fold to reach `since`
        for _ in range(3):
            await registrar.call("attendance.add", site="tp-kon-tum", category="workers", delta=1)
        answer = await asyncio.wait_for(subscribing, 5)
    assert answer["mode"] == "delta" and answer["seq"] >= ahead


async def test_the_chair_page_carries_on_by_itself_when_its_node_is_killed(cluster: LocalCluster,
                                                                          pages: Pages) -> None:
    """In Chromium: the chair's status line names its node; kill -9 that node (the sequencer) and the page
    moves to another, says so, and shows every change made before and after."""
    tokens = event_tokens(cluster)
    pages.allow_console(REFUSED)  # Chromium's line for each refused connection to the killed node
    pages.allow_origins(*(node.url for node in cluster.hubs.values()))
    first = await asyncio.to_thread(cluster.wait_sequencer, 20)
    assert first is not None, "no sequencer"
    page = await pages.open(cluster.hubs[first], "/", tokens["chair"])  # type: ignore[arg-type]
    await expect(page.locator("#node")).to_have_text(f"Trực tuyến · nút {first}", timeout=15000)
    other = next(node for name, node in cluster.hubs.items() if name != first)
    async with HubClient(ws_url(other.url), tokens["dak-to"], failover=Failover(
            [ws_url(node.url) for node in cluster.hubs.values() if node is not other])) as registrar:
        await registrar.call("attendance.add", site="dak-to", category="workers", delta=3)
        cluster.kill(first)
        for _ in range(5):
            await registrar.call("attendance.add", site="dak-to", category="workers", delta=1)
    await expect(page.locator("#node")).not_to_have_text(f"Trực tuyến · nút {first}", timeout=30000)
    await expect(page.locator("#node")).to_have_text(re.compile(r"Trực tuyến · nút n\d"), timeout=30000)
    state = await asyncio.to_thread(api_state, other.url, tokens["chair"])
    await page.wait_for_function("(seq) => Number(document.body.dataset.seq) >= seq", arg=state["seq"],
                                 timeout=30000)
    shown = await page.locator("#present").text_content() or ""
    assert re.sub(r"\D", "", shown) == str(state["totals"]["attendance"])
    await page.click(".lang-switch button[data-lang=en]")
    await expect(page.locator("#node")).to_have_text(re.compile(r"^Online · node n\d$"))
    # Its links and downloads go to the node it is on now, not to the one that served it and is gone.
    now_on = re.sub(r"^Online · node ", "", await page.locator("#node").text_content() or "")
    report = page.locator(".links [data-report]")
    await expect(report).to_have_attribute("href", re.compile("^" + re.escape(cluster.hubs[now_on].url + "/report#token=")))
    deadline = time.monotonic() + 30  # the killed node off the live list: its origin is still let in
    while first in (await asyncio.to_thread(cluster.hubs[now_on].health) or {"nodes": [first]})["nodes"]:
        assert time.monotonic() < deadline, f"{first} still listed as live"
        await asyncio.sleep(0.2)
    async with page.expect_download() as saving:
        await page.click(".links [data-download='/report.xlsx']")
    download = await saving.value
    assert (await download.path()).read_bytes()[:2] == b"PK"  # a workbook (a zip), from the live node
    await asyncio.to_thread(cluster.restart, first)


async def test_heartbeats_a_follower_hears_keep_the_site_live_on_the_sequencer(cluster: LocalCluster) -> None:
    """Heartbeats that store nothing stay on the node that took them and are shared with the others: past the
    timeout (15 s) the sequencer, which alone moves statuses with the clock, still counts the hall live."""
    tokens = event_tokens(cluster)
    sequencer = await asyncio.to_thread(cluster.wait_sequencer, 20)
    assert sequencer is not None, "no sequencer"
    follower = next(node for name, node in cluster.hubs.items() if name != sequencer)
    async with HubClient(ws_url(follower.url), tokens["technician:kon-ray"]) as technician:
        await technician.call("site.checkin", site="kon-ray", technician="Kỹ thuật viên")
        until = time.monotonic() + 20  # longer than the timeout
        while time.monotonic() < until:
            await technician.send("site.heartbeat", site="kon-ray", rtt_ms=20)
            await asyncio.sleep(1)
        state = await asyncio.to_thread(api_state, cluster.hubs[sequencer].url, tokens["chair"])
    site = next(s for s in state["sites"] if s["id"] == "kon-ray")
    assert site["status"] == "checking", site["status"]  # checked in, checklist not done
    with sqlite3.connect(cluster.hubs[sequencer].db) as conn:  # and never counted lost meanwhile
        moves = [json.loads(data)["status"] for (data,) in conn.execute(
            "SELECT data FROM events WHERE type = 'site.status' AND site = 'kon-ray'")]
    assert "lost" not in moves and "offline" not in moves, moves


async def test_heartbeats_a_node_takes_together_reach_the_others_in_one_message(cluster: LocalCluster) -> None:
    """A quarter second's heartbeats that store nothing go to the other nodes as one message naming every site
    (one message each cost every node a callback each: at a national meeting, hundreds a second)."""
    tokens = event_tokens(cluster)
    sequencer = await asyncio.to_thread(cluster.wait_sequencer, 20)
    assert sequencer is not None, "no sequencer"
    follower = next(node for name, node in cluster.hubs.items() if name != sequencer)
    sites = ["dak-glei", "ngoc-hoi", "dak-to", "tu-mo-rong"]
    nc = await connect(cluster.nats.urls, "test beats", token=cluster.nats.token)
    shared: list[dict[str, Any]] = []

    async def heard(msg: Any) -> None:
        shared.append(json.loads(msg.data))

    try:
        await nc.subscribe(beats_subject("kontum-2023"), cb=heard)
        technicians = [HubClient(ws_url(follower.url), tokens[f"technician:{site}"]) for site in sites]
        try:
            for technician in technicians:
                await technician.connect()
            for site, technician in zip(sites, technicians):
                await technician.call("site.checkin", site=site, technician="Kỹ thuật viên")
                await technician.call("site.heartbeat", site=site, rtt_ms=20)  # the first is stored, not shared
            await nc.flush()
            shared.clear()
            await asyncio.gather(*(t.call("site.heartbeat", site=site, rtt_ms=20)
                                   for site, t in zip(sites, technicians)))
            deadline = time.monotonic() + 5
            while not shared and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # anything else this round sent
        finally:
            for technician in technicians:
                await technician.close()
    finally:
        await nc.close()
    assert {message["node"] for message in shared} == {follower.name}, shared
    assert sorted(site for message in shared for site in message["beats"]) == sorted(sites), shared
    assert len(shared) < len(sites), f"a message per heartbeat: {shared}"  # one, unless a quarter second split them
