"""The sequencer's lease on three real nats-servers: every node hears that the lease moved, a follower sends its
unanswered commands to the new sequencer at once (one the lost sequencer took and never answered would
otherwise wait out the request's own retry), and the loss of the lease stream's leader changes no sequencer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator

import nats.errors
import orjson
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from hub.cluster import forward
from hub.cluster.connect import connect
from hub.cluster.forward import Forwarder
from hub.cluster.lease import LEASE_SECONDS, Lease, lease_stream
from hub.log.nats_servers import NatsCluster
from hub.tokens import Identity

pytestmark = pytest.mark.cluster

SUBJECT = "diemcau.change.command"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    with NatsCluster(tmp_path_factory.mktemp("nats")) as running:
        yield running


@pytest.fixture
async def nc(cluster: NatsCluster) -> AsyncIterator[NATS]:
    client = await connect(cluster.urls, "test", token=cluster.token)
    yield client
    await client.close()


def released(seq: int, done: Callable[[], None], failed: Callable[[], None]) -> None:
    """Release.after for a fold that already holds every seq."""
    done()


async def test_every_node_hears_when_another_takes_the_lease(nc: NATS) -> None:
    moved: dict[str, int] = {"a": 0, "b": 0, "c": 0}
    leases = {name: Lease(nc.jetstream(), "change", name, f"http://{name}", lambda: None,
                          lambda name=name: moved.__setitem__(name, moved[name] + 1)) for name in moved}
    await leases["a"].open()
    runs = {name: asyncio.create_task(held.run()) for name, held in leases.items()}
    try:
        async with asyncio.timeout(20):
            while sum(held.held for held in leases.values()) != 1:
                await asyncio.sleep(0.05)
            first = next(name for name, held in leases.items() if held.held)
            others = [name for name in leases if name != first]
            while any(leases[name].holder is None for name in others):  # each has seen the first holder
                await asyncio.sleep(0.05)
            before = dict(moved)
            runs.pop(first).cancel()  # the sequencer is lost: it renews no more
            while not any(leases[name].held for name in others):
                await asyncio.sleep(0.05)
            second = next(name for name in others if leases[name].held)
            while any(moved[name] == before[name] for name in others):
                await asyncio.sleep(0.05)
        assert leases[others[0]].holder == leases[others[1]].holder
        assert leases[others[0]].holder is not None and leases[others[0]].holder.node == second
        assert moved[first] == before[first]  # it renewed no more, and saw nothing since
    finally:
        for task in runs.values():
            task.cancel()
        await asyncio.gather(*runs.values(), return_exceptions=True)


async def test_a_command_the_lost_sequencer_held_goes_to_the_new_one_at_once(
        nc: NATS, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forward, "REQUEST_SECONDS", 120.0)  # its own retry is not what answers it here
    taken: list[Msg] = []

    async def lost_sequencer(msg: Msg) -> None:
        taken.append(msg)  # took the command and died before answering

    async def new_sequencer(msg: Msg) -> None:
        body = orjson.loads(msg.data)
        await nc.publish(msg.reply, orjson.dumps({"result": {"op_id": body["op_id"]}, "seq": 7}))

    lost = await nc.subscribe(SUBJECT, queue="sequencer", cb=lost_sequencer)
    forwarder = Forwarder(nc, SUBJECT, released, lambda: None)
    await forwarder.start()
    try:
        answer = forwarder.forward(Identity("tok1", "registrar", "dak-ha", None, ""), "attendance.add",
                                   {"site": "dak-ha", "category": "workers", "count": 1}, "op-1")
        async with asyncio.timeout(10):
            while not taken:
                await asyncio.sleep(0.01)
        await lost.unsubscribe()
        await nc.subscribe(SUBJECT, queue="sequencer", cb=new_sequencer)
        await nc.flush()
        assert answer.write is not None and not answer.write.done()
        forwarder.ask_again()
        async with asyncio.timeout(10):
            await answer.write
        assert (answer.result, answer.seq) == ({"op_id": "op-1"}, 7)
        assert forwarder.retries == 1
    finally:
        await forwarder.stop()



async def test_the_holder_keeps_the_lease_while_its_stream_elects_a_new_leader(cluster: NatsCluster, nc: NATS) -> None:
    """Nobody can renew or claim while the lease stream has no leader; when it has one again, the holder renews
    before any contender's 1.5 s of silence has passed, so the sequencer never changes (and the log, on its own
    stream, may have taken writes all along)."""
    changes: dict[str, int] = {"a": 0, "b": 0, "c": 0}
    leases = {name: Lease(nc.jetstream(), "keep", name, f"http://{name}",
                          lambda name=name: changes.__setitem__(name, changes[name] + 1)) for name in changes}
    await leases["a"].open()
    runs = [asyncio.create_task(held.run()) for held in leases.values()]
    js = nc.jetstream(timeout=1.0)
    leader = None
    try:
        async with asyncio.timeout(20):
            while sum(held.held for held in leases.values()) != 1:
                await asyncio.sleep(0.05)
        first = next(name for name, held in leases.items() if held.held)
        before = dict(changes)
        info = await js.stream_info(lease_stream("keep"))
        assert info.cluster is not None and info.cluster.leader
        leader = info.cluster.leader
        await asyncio.to_thread(cluster.kill, leader)
        killed_at = time.monotonic()
        elected = None
        async with asyncio.timeout(20):
            while elected is None:
                try:
                    info = await js.stream_info(lease_stream("keep"))
                    elected = info.cluster.leader if info.cluster is not None else None
                except nats.errors.Error:  # no leader: no answer yet
                    await asyncio.sleep(0.1)
        assert elected != leader and time.monotonic() - killed_at > LEASE_SECONDS  # the holder could not renew
        await asyncio.sleep(2 * LEASE_SECONDS)  # a contender counting from the kill would have claimed by now
        assert leases[first].held and not any(held.held for name, held in leases.items() if name != first)
        assert changes == before and all(held.takeovers == 0 for name, held in leases.items() if name != first)
        assert leases[first]._renewed_at > killed_at  # renewed on the new leader
    finally:
        for task in runs:
            task.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        if leader is not None:
            await asyncio.to_thread(cluster.restart, leader)
