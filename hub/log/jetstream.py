"""The event log on a replicated NATS JetStream stream (hub.log.base.EventLog): the engine under cluster mode.

One stream per event (`diemcau-<event>`, subject `diemcau.<event>.log`, three replicas, on servers
running `sync_interval: always`), and the hub's seq is the stream's seq. `append` publishes each event
in order without waiting (pipelined) with two headers: `Nats-Msg-Id` (from the op_id, so a message
sent twice is stored once) and `Nats-Expected-Last-Sequence` = seq - 1, so a writer whose idea of the
log is stale is refused by the stream (fencing). The future `append` returns resolves on the stream's
acknowledgements: the events are on a quorum of servers, fsynced.

Everything the stream holds is copied, through an ordered consumer, into the node's local SQLite log
(`SQLiteLog`): `read`, `follow`, `find_op` and the snapshots are answered from it, so a node can report
and restart from its own disk, and the copy can always be rebuilt from the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, PubAck, StorageType, StreamConfig, StreamInfo
from nats.js.errors import APIError, NotFoundError, ServiceUnavailableError

from hub.cluster.connect import connect, server_of, transient, until_answered
from hub.log.base import Event, Refused, StoreError
from hub.log.nats_servers import MIN_VERSION
from hub.log.sqlite import REFUSED, Pending, SQLiteLog

REPLICAS = 3
DUPLICATE_WINDOW = 120.0  # seconds the stream remembers a Nats-Msg-Id; past it, find_op answers retries
RESEND_SECONDS = 0.05  # between two sendings of what the stream has not taken
UNANSWERED_SECONDS = 1.0  # an event sent this long ago without an answer is sent again (a leader lost with it)
LINGER_SECONDS = 0.010  # a batch's appends gather this long before they are published together: see _send_loop
ACK_SECONDS = 15.0  # a batch not stored within this, sent again and again, is failed: past a leader's election
API_SECONDS = 5.0  # one JetStream API request (stream info, a message, a consumer)
CATCH_UP_SECONDS = 10.0  # after a failure, how long to wait for a leader (elected in 4-9 s) and the copy to reach it
MIRROR_HEARTBEAT = 0.5  # the ordered consumer's idle heartbeat: two missed and it is recreated
ASK_SECONDS = 0.5  # one try at asking the stream its last seq; retried while it chooses a leader (4-9 s)
WRONG_LAST_SEQUENCE = 10071  # JetStream's error code for a failed Nats-Expected-Last-Sequence
STREAM_LAST = re.compile(r"wrong last sequence: (\d+)")  # its description, naming the stream's last seq

log = logging.getLogger("diemcau.log.jetstream")


def stream_name(event_id: str) -> str:
    return f"diemcau-{event_id}"


def stream_subject(event_id: str) -> str:
    """Outside every command subject: nothing but the log's writer publishes here."""
    return f"diemcau.{event_id}.log"


def msg_id(event: Event) -> str:
    """The Nats-Msg-Id of an event: its op_id when that is a safe header value, else the op_id's digest;
    an event with no op_id (a heartbeat, a status the hub observed) gets one from its seq."""
    if event.op_id is None:
        return f"seq:{event.seq}"
    if event.op_id.isascii() and event.op_id.isprintable() and " " not in event.op_id:
        return f"op:{event.op_id}"
    return "op#" + hashlib.sha256(event.op_id.encode()).hexdigest()  # CR, LF, spaces or non-ASCII in a header


def stream_seq(reply: str) -> int:
    """A delivered message's stream seq, from its reply subject: `$JS.ACK.<stream>.<consumer>.<delivered>.<seq>...`,
    or with a domain and an account hash after `$JS.ACK` (nats-py's `Msg.metadata` parses it all, a datetime
    included, for each message)."""
    tokens = reply.split(".")
    return int(tokens[5] if len(tokens) == 9 else tokens[7])


def encode(event: Event, result: dict[str, Any] | None) -> bytes:
    return orjson.dumps({"seq": event.seq, "ts": event.ts, "type": event.type, "actor": event.actor,
                         "site": event.site, "op_id": event.op_id, "data": event.data, "result": result})


def decode(payload: bytes) -> tuple[Event, dict[str, Any] | None]:
    body = orjson.loads(payload)
    event = Event(seq=body["seq"], ts=body["ts"], type=body["type"], data=body["data"], actor=body["actor"],
                  site=body["site"], op_id=body["op_id"])
    return event, body["result"]


async def with_leader(js: JetStreamContext, stream: str, seconds: float = CATCH_UP_SECONDS) -> StreamInfo:
    """The stream's info once it has a leader: a stream just created answers its first appends with "no
    responders" until its replicas have elected one."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            info = await js.stream_info(stream)
            if info.cluster is None or info.cluster.leader:
                return info
        except (nats.errors.TimeoutError, ServiceUnavailableError):
            pass
        if asyncio.get_running_loop().time() >= deadline:
            raise StoreError(f"stream {stream} has no leader after {seconds:g} s: are two of its three servers up?")
        await asyncio.sleep(0.1)


class NotTaken(Exception):
    """The stream has not stored an event, and sending it again may: no leader to take it ("no responders"), no
    answer in time, or sent behind an event of its batch that is not stored yet."""


def _fail(future: asyncio.Future[None], error: BaseException) -> None:
    if not future.done():
        refused = isinstance(error, Refused)
        future.set_exception(Refused(str(error)) if refused else StoreError(f"write failed: {error}"))
        future.exception()  # told once, by the `on_written` callbacks, not per unread future


@dataclass(eq=False)
class _Batch:
    """The events appended between two hand-overs to the sender: one future, one settlement."""

    epoch: int  # the log's epoch when the batch opened: a failure settled since means it was folded on lost events
    write: asyncio.Future[None]
    events: list[Pending] = field(default_factory=list)
    acks: list[asyncio.Future[PubAck]] = field(default_factory=list)  # one per event, of its last sending
    refused: bool = False
    sent: float = 0.0  # when its events were last sent (the loop's clock)
    resent: bool = False  # some were sent again: a refusal may then hide a first copy stored


@dataclass(eq=False)
class JetStreamLog:
    """The log on one R3 JetStream stream, mirrored into a local SQLite copy at `path`.

    `await open()` connects, creates the stream if it is missing (every server must be up for that) and
    brings the local copy up to the stream's end; `start()` then accepts appends.
    """

    servers: list[str]
    path: Path
    event_id: str
    token: str | None = field(default=None, repr=False)  # what the NATS servers require, if anything
    replicas: int = REPLICAS
    ack_seconds: float = ACK_SECONDS
    batches: int = 0
    durable_seq: int = 0  # the highest seq this log has seen acknowledged (or found on the stream at open)
    batch_sizes: list[int] = field(default_factory=list)
    _nc: NATS | None = None
    _js: JetStreamContext | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _open: _Batch | None = None
    _to_send: asyncio.Queue[_Batch] | None = None
    _to_ack: asyncio.Queue[_Batch] | None = None
    _epoch: int = 0
    _unsettled: int = 0  # batches appended and not yet settled
    _closing: bool = False
    _reply_prefix: str = ""  # acknowledgements come to <prefix><n>, one subscription for all
    _published: int = 0
    _acks: dict[str, tuple[asyncio.Future[PubAck], Event, dict[str, Any] | None]] = field(
        default_factory=dict)  # by the n of their reply subject
    _refusing: bool = False  # a failure is being settled: nothing more is published until the state is rebuilt
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _mirror_task: asyncio.Task[None] | None = None
    _mirrored: int = 0  # the last seq handed to the local copy (committed there: local.durable_seq)
    _acked: dict[str, tuple[int, dict[str, Any] | None]] = field(default_factory=dict)  # op_id: not yet in the copy
    _copy_waiters: list[tuple[int, asyncio.Future[None]]] = field(default_factory=list)
    _arriving: list[Event] = field(default_factory=list)  # handed to the local copy, not yet committed there
    _held: list[Event] = field(default_factory=list)  # committed there, kept from the hub while its own appends settle
    _arrivals: list[Callable[[list[Event]], None]] = field(default_factory=list)
    _written: list[Callable[[BaseException | None], None]] = field(default_factory=list)
    _observers: list[tuple[Callable[[float], None], Callable[[int], None]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.stream, self.subject = stream_name(self.event_id), stream_subject(self.event_id)
        self.local = SQLiteLog(self.path, self.event_id, fsync=False)  # the stream's quorum holds it on disk
        self._mirrored = self.durable_seq = self.local.last_seq()

    # -- life cycle -------------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, create the stream if missing, and copy what the stream holds beyond the local copy."""
        self._loop = asyncio.get_running_loop()
        try:
            self._nc = await connect(self.servers, f"diemcau {self.event_id}", token=self.token,
                                     error_cb=self._nats_error,
                                     disconnected_cb=self._nats_disconnected, reconnected_cb=self._nats_reconnected)
        except StoreError:
            self.local.close()
            raise
        try:
            version = self._nc.connected_server_version
            if (version.major, version.minor) < MIN_VERSION:
                found, needed = f"{version.major}.{version.minor}.{version.patch}", ".".join(map(str, MIN_VERSION))
                raise StoreError(f"the NATS server at {server_of(self._nc)} is nats-server {found}; diemcau needs "
                                 f"{needed} or newer (sync_interval, and a clustered JetStream it can rely on)")
            self._js = self._nc.jetstream(timeout=API_SECONDS)
            info = await self._ensure_stream()
            self._reply_prefix = self._nc.new_inbox() + "."
            await self._nc.subscribe(self._reply_prefix + "*", cb=self._on_ack)
            await self._check_copy(info)
            self.local.start()
            self.local.on_written(self._copied)
            self._mirror_task = asyncio.create_task(self._mirror(), name=f"{self.stream} mirror")
            await self._wait_copied(info.state.last_seq)
            self.durable_seq = max(self.durable_seq, info.state.last_seq)
        except BaseException:
            await self._close()
            raise

    @property
    def connection(self) -> NATS:
        """The NATS connection (after `open`), shared with the node's lease, forwarding and announcements."""
        assert self._nc is not None, "await JetStreamLog.open() first"
        return self._nc

    def start(self) -> None:
        """Accept appends from the running loop (after `open`)."""
        assert self._js is not None, "await JetStreamLog.open() first"
        self._to_send, self._to_ack = asyncio.Queue(), asyncio.Queue()
        self._tasks = [asyncio.create_task(self._send_loop(), name=f"{self.stream} sender"),
                       asyncio.create_task(self._ack_loop(), name=f"{self.stream} acks")]

    async def stop(self) -> None:
        """Settle what was appended, let the local copy take it, then disconnect."""
        if self._to_send is not None and self._to_ack is not None:
            try:
                await asyncio.wait_for(self._drained(), self.ack_seconds + CATCH_UP_SECONDS)
                await asyncio.wait_for(self._wait_copied(self.durable_seq), CATCH_UP_SECONDS)
            except TimeoutError:
                log.warning("%s: stopping with appends unsettled or not yet in the local copy", self.stream)
        await self._close()

    async def _drained(self) -> None:
        while self._unsettled:
            await asyncio.sleep(0.01)

    async def _close(self) -> None:
        self._closing = True
        tasks = [*self._tasks, *([self._mirror_task] if self._mirror_task is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks, self._mirror_task = [], None
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()
        await self.local.stop()  # commits what it was given; only closes the file if it never started

    async def _ensure_stream(self) -> StreamInfo:
        return await until_answered(f"stream {self.stream}", self._stream_info_or_create)

    async def _stream_info_or_create(self) -> StreamInfo:
        assert self._js is not None
        try:
            info = await self._js.stream_info(self.stream)
        except NotFoundError:
            if self.local.last_seq() > 0:  # its servers' stores were lost, or this --db is another cluster's
                raise StoreError(f"{self.path}: the local copy holds seq {self.local.last_seq()}, and the stream "
                                 f"{self.stream} does not exist; not starting a new log under it: use another "
                                 "--db to start afresh") from None
            try:  # created again with the same config after a lost answer, it answers as for the first time
                await self._js.add_stream(StreamConfig(
                    name=self.stream, subjects=[self.subject], num_replicas=self.replicas, storage=StorageType.FILE,
                    duplicate_window=DUPLICATE_WINDOW, allow_direct=True,
                    description=f"diemcau event log of {self.event_id}"))
            except APIError as exc:
                if transient(exc):
                    raise  # asked again by until_answered
                raise StoreError(f"cannot create stream {self.stream} with {self.replicas} replicas "
                                 f"({exc.description}); every NATS server of the cluster must be up") from None
            return await with_leader(self._js, self.stream)
        if info.config.subjects != [self.subject] or info.config.num_replicas != self.replicas:
            raise StoreError(f"stream {self.stream} exists with subjects {info.config.subjects} and "
                             f"{info.config.num_replicas} replicas, not [{self.subject!r}] and {self.replicas}")
        return info

    async def _check_copy(self, info: StreamInfo) -> None:
        """Refuse a local copy that is not this stream's: longer than it, or different at its last seq."""
        last = self.local.last_seq()
        if last == 0:
            return
        if last > info.state.last_seq:
            raise StoreError(f"{self.path}: the local copy holds seq {last}, the stream {self.stream} only "
                             f"{info.state.last_seq}; it is another log's copy: use another --db")
        assert self._js is not None
        stored, _ = decode((await self._js.get_msg(self.stream, last, direct=True)).data or b"")
        mine = next(self.local.read(last - 1, last))
        if (stored.ts, stored.type, stored.op_id) != (mine.ts, mine.type, mine.op_id):
            raise StoreError(f"{self.path}: seq {last} differs from the stream {self.stream}'s; it is another "
                             "log's copy: use another --db")

    # -- appending --------------------------------------------------------------------------------

    def append(self, event: Event, result: dict[str, Any] | None = None) -> asyncio.Future[None]:
        """Add one event (with its command's answer) to the open batch; the batch's future resolves once the
        stream has acknowledged every event in it, or fails with the first error."""
        assert self._loop is not None and self._to_send is not None, "JetStreamLog.start() first"
        batch = self._open
        if batch is None:
            batch = self._open = _Batch(self._epoch, self._loop.create_future())
            self._unsettled += 1
            self._to_send.put_nowait(batch)
        batch.events.append((event, result if event.op_id is not None else None, time.perf_counter()))
        return batch.write

    async def _send_loop(self) -> None:
        """Publish each batch's events in seq order, never waiting for an acknowledgement before the next.

        A batch stays open for LINGER_SECONDS after the first append, then goes out in one write: the
        servers store a burst as one replicated, fsynced entry, and one message at a time costs each of
        them as much as a whole burst (measured here: 1,000 spaced appends a second took 0.8 cores of
        nats-server, and p99 passed 100 ms). 10 ms rather than 2: at the national load (about 260 appends a
        second) the three servers took 0.27 cores instead of 0.5, and the three nodes 0.4 instead of 0.6.
        """
        assert self._to_send is not None and self._to_ack is not None and self._js is not None
        while True:
            batch = await self._to_send.get()
            await asyncio.sleep(LINGER_SECONDS)
            if self._open is batch:
                self._open = None  # appends from here on open the next batch
            for event, result, _ in batch.events:
                if self._refusing or batch.epoch != self._epoch:
                    batch.refused = True
                    break
                batch.acks.append(await self._publish(event, result))
            batch.sent = asyncio.get_running_loop().time()
            self._to_ack.put_nowait(batch)

    async def _publish(self, event: Event, result: dict[str, Any] | None) -> asyncio.Future[PubAck]:
        """Hand one event to the connection; the future resolves with the stream's acknowledgement (NotTaken
        when the stream has no leader to take it).

        Not nats-py's `publish_async`, whose future is never resolved when the stream answers an error (a
        refused Nats-Expected-Last-Sequence among them): nats-io/nats.py#985.
        """
        assert self._nc is not None
        self._published += 1
        token = str(self._published)
        ack: asyncio.Future[PubAck] = asyncio.get_running_loop().create_future()
        self._acks[token] = (ack, event, result)
        ack.add_done_callback(lambda _: self._acks.pop(token, None))
        headers = {"Nats-Msg-Id": msg_id(event), "Nats-Expected-Last-Sequence": str(event.seq - 1)}
        try:
            await self._nc.publish(self.subject, encode(event, result), reply=self._reply_prefix + token,
                                   headers=headers)
        except Exception as exc:  # not even handed to the connection (closed, or its buffer full while reconnecting)
            ack.set_exception(NotTaken(f"not sent: {exc!r}"))
        return ack

    async def _on_ack(self, msg: Msg) -> None:
        token = msg.subject[len(self._reply_prefix):]
        sent = self._acks.get(token)
        if sent is None or sent[0].done():
            return
        ack = sent[0]
        if msg.headers and msg.headers.get("Status") == "503":
            # Nothing stored: the stream is choosing a leader, or was just created and this server does not yet
            # know it. `_acknowledged` sends it again.
            ack.set_exception(NotTaken("no responders: the stream has no leader"))
            return
        try:
            body = orjson.loads(msg.data)
            if "error" in body:
                error = body["error"]
                ack.set_exception(APIError(code=error.get("code"), err_code=error.get("err_code"),
                                           description=error.get("description")))
            else:
                ack.set_result(PubAck.from_response(body))
        except Exception as exc:
            ack.set_exception(StoreError(f"unreadable acknowledgement from stream {self.stream}: {exc!r}"))

    async def _ack_loop(self) -> None:
        """Settle batches in order: on their acknowledgements, or refused after a failure before them."""
        assert self._to_ack is not None
        while True:
            batch = await self._to_ack.get()
            try:
                if batch.refused or batch.epoch != self._epoch:
                    self._forget(batch.acks)
                    self._settle(batch, REFUSED)
                    continue
                try:
                    error = await self._acknowledged(batch)
                except Exception as exc:  # never leave a batch, and every one after it, unsettled
                    error = exc
                if error is None:
                    self._settle(batch, None)
                else:
                    await self._settle_failure(batch, error)
            finally:
                self._unsettled -= 1
                if not self._unsettled:
                    self.durable_seq = max(self.durable_seq, self.local.durable_seq)
                self._deliver()

    async def _acknowledged(self, batch: _Batch) -> BaseException | None:
        """None once every event of the batch is stored at its own seq; else the first event's error (the events
        before it are stored, and `durable_seq` moves to the last of them).

        What the stream has not taken is sent again, from the first event not stored and in order, until
        `ack_seconds` have passed: after "no responders" (no leader), no answer within UNANSWERED_SECONDS (a
        leader lost with it, a connection lost), or a refusal for being sent behind an event not yet stored.
        Its Nats-Msg-Id makes a second copy of a stored event answer as a duplicate at its seq, and the
        expected last seq keeps the order: a batch sent to a lost leader is stored once the next one is
        elected, instead of failing after a fixed wait and being decided again.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ack_seconds
        first = 0  # the events before it are stored
        while True:
            waiting = [ack for ack in batch.acks[first:] if not ack.done()]
            if waiting:
                answered_by = min(batch.sent + UNANSWERED_SECONDS, deadline)
                await asyncio.wait(waiting, timeout=max(0.0, answered_by - loop.time()))
            reason: NotTaken | None = None
            for (event, result, _), ack in zip(batch.events[first:], batch.acks[first:]):
                outcome = await self._outcome(event, result, ack, batch.resent)
                if isinstance(outcome, NotTaken):
                    reason = outcome
                    break
                if outcome is not None:
                    return outcome
                self._stored(event, result)
                first += 1
            if reason is None:
                return None
            if loop.time() >= deadline:
                return StoreError(f"seq {batch.events[first][0].seq} not stored on stream {self.stream} within "
                                  f"{self.ack_seconds:g} s ({reason})")
            if not batch.resent:
                log.warning("%s: sending seq %d again (%s)", self.stream, batch.events[first][0].seq, reason)
            await asyncio.sleep(RESEND_SECONDS)  # a stream still without a leader answers at once
            self._forget(batch.acks[first:])
            batch.acks[first:] = [await self._publish(event, result) for event, result, _ in batch.events[first:]]
            batch.sent, batch.resent = loop.time(), True

    async def _outcome(self, event: Event, result: dict[str, Any] | None, ack: asyncio.Future[PubAck],
                       resent: bool) -> BaseException | None:
        """What the stream's answer says of one event: None (stored at its seq), NotTaken, or the error that
        fails its batch."""
        if not ack.done() or ack.cancelled():
            return NotTaken(f"no answer within {UNANSWERED_SECONDS:g} s")
        error = ack.exception()
        if error is None:
            answer = ack.result()
            if answer.duplicate and answer.seq == event.seq:  # a copy sent again; or another writer's, same op_id
                return await self._holds(event, result)
            if answer.duplicate:  # its Nats-Msg-Id is already on the stream
                what = f"its op_id {event.op_id!r} is" if event.op_id is not None else "an event of that seq is"
                return StoreError(f"seq {event.seq} not stored: {what} already stored, at seq {answer.seq}")
            return None if answer.seq == event.seq else StoreError(
                f"seq {event.seq} was stored at stream seq {answer.seq}")
        if isinstance(error, APIError) and error.err_code == WRONG_LAST_SEQUENCE:
            found = STREAM_LAST.search(error.description or "")
            last = int(found.group(1)) if found else None
            if last is not None and last < event.seq - 1:
                return NotTaken(f"sent behind seq {last + 1}, not stored yet")
            if resent and last is not None and last >= event.seq:  # the first copy, stored, may be there
                return await self._holds(event, result)
            return StoreError(f"seq {event.seq} refused: the stream's last seq is not {event.seq - 1} "
                              f"(another writer, or a stale state): {error.description}")
        if isinstance(error, NotTaken | StoreError):
            return error
        return StoreError(f"seq {event.seq}: {error!r}")

    async def _holds(self, event: Event, result: dict[str, Any] | None) -> BaseException | None:
        """Whether the stream holds this very event at its seq (a first copy stored, its answer lost) or
        another writer's there (a deposed sequencer's, of the same op_id)."""
        assert self._js is not None
        try:
            stored = await self._js.get_msg(self.stream, event.seq)
        except NotFoundError:
            return NotTaken(f"seq {event.seq} not yet readable")
        except (nats.errors.TimeoutError, ServiceUnavailableError, nats.errors.NoRespondersError) as exc:
            return NotTaken(f"seq {event.seq} not readable: {exc!r}")
        if stored.data == encode(event, result):
            return None
        return StoreError(f"seq {event.seq} not stored: the stream holds another writer's event there")

    def _stored(self, event: Event, result: dict[str, Any] | None) -> None:
        self.durable_seq = max(self.durable_seq, event.seq)
        if event.op_id is not None and event.seq > self.local.durable_seq:
            self._acked[event.op_id] = (event.seq, result)

    @staticmethod
    def _forget(acks: list[asyncio.Future[PubAck]]) -> None:
        for ack in acks:
            if ack.done():
                if not ack.cancelled():
                    ack.exception()  # retrieved: an unwanted answer is not an unhandled error
            else:
                ack.cancel()

    def _settle(self, batch: _Batch, error: BaseException | None) -> None:
        """On the loop, in seq order: resolve the batch's future, count it, tell the `on_written` callbacks."""
        if error is None:
            self.batches += 1
            self.batch_sizes.append(len(batch.events))
            if len(self.batch_sizes) > 1000:
                del self.batch_sizes[:500]
            now = time.perf_counter()
            for durable, batch_size in self._observers:
                batch_size(len(batch.events))
                for _, _, appended in batch.events:
                    durable(now - appended)
            if not batch.write.done():
                batch.write.set_result(None)
        else:
            _fail(batch.write, error)
        for callback in self._written:
            callback(error)

    async def _settle_failure(self, batch: _Batch, error: BaseException) -> None:
        """A batch not stored (whole, or from some event on). Publish nothing more and let the local copy take
        what the stream holds; then, in one step as SQLiteLog does, fail the batch and call the `on_written`
        callbacks (the hub rebuilds its state from the copy, which is then what the stream holds). Every batch
        appended before that was folded on top of the lost events, and is refused in turn."""
        self._refusing = True
        self._forget(batch.acks)
        try:
            await asyncio.wait_for(self._caught_up(), CATCH_UP_SECONDS)
        except Exception as exc:  # the stream is still choosing a leader: fencing refuses whatever is stale
            log.warning("%s: local copy not confirmed at the stream's end after a failure (%r)", self.stream, exc)
        log.error("%s: write failed (%s)", self.stream, error)
        self.batches += 1
        _fail(batch.write, error)
        for callback in self._written:
            callback(error)
        self.durable_seq = max(self.durable_seq, self.local.durable_seq)  # what the rebuild folded is stored
        self._epoch += 1
        self._refusing = False
        self._open = None  # still queued for the sender, with the old epoch: refused in turn

    def on_written(self, callback: Callable[[BaseException | None], None]) -> None:
        """Call `callback` on the loop after each acknowledged batch: None, or the error (`REFUSED` for a batch
        not published because a write before it failed)."""
        self._written.append(callback)

    def on_arrival(self, callback: Callable[[list[Event]], None]) -> None:
        """Call `callback` on the loop with the events the local copy took from the stream, in seq order: every
        writer's, this node's own included (a follower folds them; a writer skips its own).

        Held while this node's own appends are unsettled, and given after their settlement (and, after a
        failure, after the rebuild it caused): an event of another writer is then never folded on top of
        events of this node's that the stream refused.
        """
        self._arrivals.append(callback)

    def _deliver(self) -> None:
        if self._held and not self._unsettled:
            arrived, self._held = self._held, []
            for callback in self._arrivals:
                callback(arrived)

    def observe(self, durable: Callable[[float], None], batch_size: Callable[[int], None]) -> None:
        """Be told each event's seconds from `append` to acknowledged, and each batch's size (metrics)."""
        self._observers.append((durable, batch_size))

    @staticmethod
    def _release(waiters: list[tuple[int, asyncio.Future[None]]], upto: int) -> None:
        for item in [item for item in waiters if item[0] <= upto]:
            waiters.remove(item)
            if not item[1].done():
                item[1].set_result(None)

    # -- the local copy ---------------------------------------------------------------------------

    async def _mirror(self) -> None:
        """Copy every stream message after the local copy's last into it, in order, through an ordered
        consumer (recreated by nats-py on a gap or two missed heartbeats; by this loop on a gap it sees).

        Messages come to a callback: `next_msg` makes a task, a uuid and a timeout per message, which had
        been most of a node's work in copying the stream."""
        assert self._js is not None
        while True:
            stopped = asyncio.Event()

            async def take(msg: Msg) -> None:
                try:
                    if not stopped.is_set() and not self._take(msg):
                        stopped.set()
                except Exception as exc:
                    log.error("%s: cannot copy a message (%r); following again after seq %d", self.stream, exc,
                              self._mirrored)
                    stopped.set()
            try:
                sub = await self._js.subscribe(
                    self.subject, stream=self.stream, ordered_consumer=True, idle_heartbeat=MIRROR_HEARTBEAT,
                    deliver_policy=DeliverPolicy.BY_START_SEQUENCE, cb=take,
                    config=ConsumerConfig(opt_start_seq=self._mirrored + 1))
            except Exception as exc:
                log.info("%s: cannot follow the stream yet (%r); retrying", self.stream, exc)
                await asyncio.sleep(0.5)
                continue
            try:
                await stopped.wait()
            finally:
                with contextlib.suppress(Exception):  # the connection may be gone with the consumer
                    await sub.unsubscribe()
            await asyncio.sleep(0.2)

    def _take(self, msg: Msg) -> bool:
        """Hand one stream message to the local copy; False on a gap (the consumer is then recreated)."""
        seq = stream_seq(msg.reply)
        if seq <= self._mirrored:
            return True
        if seq != self._mirrored + 1:
            log.warning("%s: stream seq %d after %d; following again", self.stream, seq, self._mirrored)
            return False
        event, result = decode(msg.data)
        if event.seq != seq:
            raise StoreError(f"stream {self.stream} holds seq {event.seq} at its seq {seq}: not a diemcau log")
        self.local.append(event, result)
        self._mirrored = seq
        if self._arrivals:
            self._arriving.append(event)
        return True

    def _copied(self, error: BaseException | None) -> None:
        """After each commit of the local copy: forget the op_ids it now answers, wake who waits for it."""
        if isinstance(error, Refused):  # after a failure of the copy's own: handled at the failure
            return
        if error is not None:  # the copy refuses what followed; follow the stream again from what it has
            log.error("%s: local copy %s failed (%s); copying again from seq %d", self.stream, self.path, error,
                      self.local.durable_seq + 1)
            self._mirrored = self.local.durable_seq
            self._arriving.clear()
            if self._mirror_task is not None:
                self._mirror_task.cancel()
                self._mirror_task = asyncio.create_task(self._mirror(), name=f"{self.stream} mirror")
            return
        copied = self.local.durable_seq
        if not self._unsettled:  # what came from the stream is on its quorum; while appends of this node's are
            self.durable_seq = max(self.durable_seq, copied)  # unsettled, only their acknowledgements say so
        if self._arriving:
            cut = next((i for i, event in enumerate(self._arriving) if event.seq > copied), len(self._arriving))
            self._held += self._arriving[:cut]
            del self._arriving[:cut]
            self._deliver()
        while self._acked:  # in seq order, as acknowledged
            op_id, (seq, _) = next(iter(self._acked.items()))
            if seq > copied:
                break
            del self._acked[op_id]
        self._release(self._copy_waiters, copied)

    async def _wait_copied(self, seq: int) -> None:
        if seq <= self.local.durable_seq:
            return
        assert self._loop is not None
        future = self._loop.create_future()
        self._copy_waiters.append((seq, future))
        await future

    async def _caught_up(self) -> None:
        """Ask the stream its last seq (again and again while it has no leader), then wait for the copy."""
        assert self._nc is not None
        ask = self._nc.jetstream(timeout=ASK_SECONDS)
        while True:
            try:
                info = await ask.stream_info(self.stream)
                break
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError, ServiceUnavailableError):
                await asyncio.sleep(0.1)
        await self._wait_copied(info.state.last_seq)

    async def sync(self, timeout: float = CATCH_UP_SECONDS) -> int:
        """Wait until the local copy holds everything the stream holds now; the seq it reached."""
        await asyncio.wait_for(self._caught_up(), timeout)
        return self.local.durable_seq

    # -- reading ----------------------------------------------------------------------------------

    def read(self, since: int = 0, until: int | None = None) -> Iterator[Event]:
        """Events with seq > since (and <= until), in order, from the local copy of the stream."""
        return self.local.read(since, until)

    def follow(self, since: int = 0, poll_seconds: float = 0.5) -> AsyncIterator[Event]:
        """Every event after `since`, then each new one as the local copy takes it from the stream."""
        return self.local.follow(since, poll_seconds)

    def last_seq(self) -> int:
        """The last seq in the local copy: what `read` folds."""
        return self.local.last_seq()

    def find_op(self, op_id: str) -> dict[str, Any] | None:
        """The stored answer of the command that carried `op_id`: from the acknowledgements not yet in the
        local copy, else from the copy (which holds every op_id stored on the stream, by any writer)."""
        acked = self._acked.get(op_id)
        if acked is not None:
            return acked[1] if acked[1] is not None else {"seq": acked[0]}
        return self.local.find_op(op_id)

    def save_snapshot(self, seq: int, data: bytes) -> None:
        self.local.save_snapshot(seq, data)

    def latest_snapshot(self) -> tuple[int, bytes] | None:
        return self.local.latest_snapshot()

    # -- the connection ---------------------------------------------------------------------------

    async def _nats_error(self, exc: Exception) -> None:
        log.warning("%s: NATS: %r", self.stream, exc)

    async def _nats_disconnected(self) -> None:
        if not self._closing:
            log.warning("%s: disconnected from NATS; reconnecting", self.stream)

    async def _nats_reconnected(self) -> None:
        assert self._nc is not None
        log.info("%s: reconnected to NATS at %s", self.stream, self._nc.connected_url)
