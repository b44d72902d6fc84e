"""`diemcau doctor --nats` against three real nats-servers: a healthy cluster passes, and a lost server, a
missing stream, a stale lease, no sequencer, an old server and no server at all are each named.

The streams, the lease and the node announcements are made here as a node makes them, so the checks are
tested apart from the nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import orjson
import pytest
from click.testing import CliRunner
from nats.aio.client import Client as NATS
from nats.js.errors import NoStreamResponseError

from bench.hubproc import DIEMCAU, free_port
from hub.cli.doctor import Finding, doctor_command
from hub.cli.doctor_nats import check_nats, check_server, nodes_subject
from hub.cluster.lease import lease_stream, lease_subject
from hub.log.jetstream import stream_name, stream_subject, with_leader
from hub.log.nats_servers import NatsCluster

from .old_nats import old_nats_server
from .processes import spawn
from .test_doctor import event_config

pytestmark = pytest.mark.cluster

FOLLOWERS = ("n2", "n3")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    with NatsCluster(tmp_path_factory.mktemp("nats")) as running:
        yield running


@pytest.fixture
async def client(cluster: NatsCluster) -> AsyncIterator[NATS]:
    nc = await nats.connect(servers=cluster.urls)
    yield nc
    await nc.close()


async def create_streams(nc: NATS, event_id: str) -> None:
    """What the first node does on a fresh cluster: the log stream and the lease stream, three replicas each."""
    js = nc.jetstream()
    for stream, subject in ((stream_name(event_id), stream_subject(event_id)),
                            (lease_stream(event_id), lease_subject(event_id))):
        await js.add_stream(name=stream, subjects=[subject], num_replicas=3)
        await with_leader(js, stream)  # a stream just created answers "no responders" until it has one
    for _ in range(50):  # and, on a loaded machine, can for a moment after its leader is named
        with contextlib.suppress(NoStreamResponseError):
            await js.publish(stream_subject(event_id), b"{}")
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"stream {stream_name(event_id)} took no event within 5 s")


@contextlib.asynccontextmanager
async def nodes(nc: NATS, event_id: str, sequencer: str | None = "n1", lease_age: float = 0.0,
                followers: tuple[str, ...] = FOLLOWERS) -> AsyncIterator[None]:
    """Nodes as the doctor hears them: the sequencer renews its lease every 0.5 s (dated `lease_age` ago)
    and every node announces itself."""
    js = nc.jetstream()
    names = ([sequencer] if sequencer else []) + list(followers)
    once = asyncio.Event()

    async def renew() -> bool:
        """A renewal the stream does not take is sent again next time, as a node's lease does."""
        try:
            await js.publish(lease_subject(event_id), orjson.dumps(
                {"node": sequencer, "url": "http://127.0.0.1:1", "term": 2, "ts": time.time() - lease_age}))
        except (NoStreamResponseError, nats.errors.TimeoutError):
            return False
        return True

    async def run() -> None:
        while True:
            renewed = sequencer is None or await renew()
            for i, name in enumerate(names):
                role = "sequencer" if name == sequencer else "follower"
                await nc.publish(nodes_subject(event_id), orjson.dumps(
                    {"node": name, "url": f"http://127.0.0.1:{8081 + i}", "role": role, "seq": 1, "ts": time.time()}))
            if renewed:
                once.set()
            await asyncio.sleep(0.5)

    task = asyncio.create_task(run())
    try:
        await asyncio.wait_for(once.wait(), 10)  # the lease is there before the doctor asks
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def lines(findings: list[Finding], topic: str) -> list[tuple[str, str]]:
    return [(f.level, f.text) for f in findings if f.topic == topic]


async def test_a_healthy_cluster_passes(cluster: NatsCluster, client: NATS, tmp_path: Path) -> None:
    """As run the day before: every server, the stream and its replicas, the lease and three nodes are ok."""
    await create_streams(client, "healthy")
    config_path = event_config(tmp_path, event_id="healthy")
    async with nodes(client, "healthy"):
        async with spawn(*DIEMCAU, "doctor", "--config", str(config_path), "--nats", ",".join(cluster.urls),
                         stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT) as proc:
            out = (await asyncio.wait_for(proc.communicate(), 60))[0].decode()
    assert proc.returncode == 0, out
    assert "FAIL" not in out and "no active tokens" not in out, out  # a node's tokens live on the cluster
    for server in cluster.servers:
        [line] = [line for line in out.splitlines() if server.url in line]
        assert line.split()[:2] == ["ok", "nats"] and f"({server.name})" in line and "JetStream on" in line, out
    assert "stream diemcau-healthy: 3 replicas, 1 events, leader n" in out, out
    assert out.count("current") == 2, out
    assert "n1 (http://127.0.0.1:1) holds the lease, term 2, renewed" in out, out
    for name, role in (("n1", "sequencer"), ("n2", "follower"), ("n3", "follower")):
        assert f"{name}: {role}, seq 1, http://127.0.0.1:" in out, out


async def test_a_killed_server_is_named_with_its_replica(cluster: NatsCluster, client: NATS) -> None:
    await create_streams(client, "killed")
    leaders = set()
    for stream in (stream_name("killed"), lease_stream("killed")):
        info = await with_leader(client.jetstream(), stream)
        assert info.cluster is not None
        leaders.add(info.cluster.leader)
    # A server that leads neither stream: the fake sequencer keeps renewing while it is down.
    victim = next(server for server in cluster.servers if server.name not in leaders)
    # The nodes' side talks to the servers that stay, so nothing of it waits on a reconnection.
    survivor = await nats.connect(servers=[url for url in cluster.urls if url != victim.url])
    js = survivor.jetstream()
    await asyncio.to_thread(cluster.kill, victim.name)
    try:
        for _ in range(100):  # until the leader has noticed: the replica falls behind what is stored after
            await js.publish(stream_subject("killed"), b"{}")
            info = await js.stream_info(stream_name("killed"))
            peer = next(p for p in info.cluster.replicas or [] if p.name == victim.name)  # type: ignore[union-attr]
            if not peer.current:
                break
            await asyncio.sleep(0.1)
        async with nodes(survivor, "killed"):
            findings = await check_nats(cluster.urls, "killed")
    finally:
        await survivor.close()
        await asyncio.to_thread(cluster.restart, victim.name)
    [down] = [f for f in findings if victim.url in f.text]
    assert down.level == "fail" and "nothing answered within 3 s" in down.text
    [replica] = [(level, text) for level, text in lines(findings, "log") if f"replica {victim.name}:" in text]
    assert replica[0] in ("warn", "fail") and "behind" in replica[1], findings
    assert [level for level, _ in lines(findings, "nats")].count("ok") == 2
    assert all(f.level == "ok" for f in findings if f.topic in ("lease", "nodes")), findings


async def test_a_cluster_no_node_has_started_on_says_so(cluster: NatsCluster) -> None:
    findings = await check_nats(cluster.urls, "untouched")
    assert lines(findings, "log") == [("warn", "stream diemcau-untouched does not exist: no node has started on "
                                               "this cluster yet (the first node creates it, with every server up)")]
    assert not lines(findings, "lease") and not lines(findings, "nodes")


async def test_a_stale_lease_and_no_sequencer_are_named(cluster: NatsCluster, client: NATS) -> None:
    await create_streams(client, "headless")
    findings = await check_nats(cluster.urls, "headless")  # nothing ever held the lease, no node runs
    assert lines(findings, "lease") == [("fail", "stream diemcau-headless-lease is empty: no node has been the "
                                                 "sequencer yet")]
    assert [level for level, _ in lines(findings, "nodes")] == ["fail"]

    async with nodes(client, "headless", lease_age=10.0):  # a sequencer that stopped renewing, one follower
        findings = await check_nats(cluster.urls, "headless")
    [(level, text)] = lines(findings, "lease")
    assert level == "warn" and "renewed 10." in text and "not renewed for over 3 s" in text
    await client.jetstream().publish(lease_subject("headless"), orjson.dumps(  # as a sequencer that stopped
        {"node": "", "incarnation": "", "url": "", "term": 2, "ts": time.time() - 5}))
    async with nodes(client, "headless", sequencer=None, followers=("n2",)):
        findings = await check_nats(cluster.urls, "headless")
    [(level, text)] = lines(findings, "lease")
    assert level == "fail" and text.startswith("released by its last holder 5.") and "not taken since" in text
    heard = lines(findings, "nodes")
    assert heard[0] == ("ok", "n2: follower, seq 1, http://127.0.0.1:8081")
    assert ("fail", "no node says it is the sequencer (within 2.5 s): nothing can decide commands") in heard
    assert any(level == "warn" and "1 node heard, fewer than 3" in text for level, text in heard)

    async with nodes(client, "headless", followers=("n2", "n2")):  # a unit file copied, its --node unchanged
        findings = await check_nats(cluster.urls, "headless")
    twice = ("2 nodes are called n2 (http://127.0.0.1:8082, http://127.0.0.1:8083): each takes the other's "
             "heartbeats for its own; give each its own --node name")
    assert ("fail", twice) in lines(findings, "nodes")


async def test_a_server_older_than_2_10_is_refused_by_version() -> None:
    """A server that introduces itself as nats-server 2.9 (no sync_interval): refused, its version named."""
    async with old_nats_server("2.9.10") as url:
        finding = await check_server(url)
    assert finding.level == "fail"
    assert f"{url}: nats-server 2.9.10 (old); diemcau needs 2.10 or newer" in finding.text


def test_no_server_at_all_exits_one(tmp_path: Path) -> None:
    urls = [f"nats://127.0.0.1:{free_port()}" for _ in range(2)]
    result = CliRunner().invoke(doctor_command, ["--config", str(event_config(tmp_path)), "--nats", ",".join(urls)])
    assert result.exit_code == 1, result.output
    for url in urls:
        assert f"{url}: nothing answered within 3 s; is nats-server running there?" in result.output
    assert "no usable NATS server" in result.output
