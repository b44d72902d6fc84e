"""The sequencer's lease: which node decides commands, elected on a small replicated stream.

The stream `diemcau-<event>-lease` holds the renewals; its last message names the holder. The holder
renews every RENEW_SECONDS with `Nats-Expected-Last-Sequence` = its previous renewal's seq, so two
nodes can never both extend the same lease. A contender watches the stream's last seq and claims the
lease (with the same header, naming the seq it watched) once that seq has not moved for LEASE_SECONDS
by its own clock, counted only while the stream answers: no node's clock is compared with another's.

A holder that cannot renew keeps deciding. If the lease stream has lost its leader, nobody can claim
it either, and the log (on its own stream, often led elsewhere) may still take writes: stepping down
would stop every command until both streams had elected, and the contenders' clocks restart when the
stream answers again, so the holder's next renewal comes first. If only the holder is cut off, the
others claim after LEASE_SECONDS and its next renewal is refused. The lease only keeps the cluster live;
the log's own fencing (expected last seq on every event) keeps it correct, so a node that still
believes it holds the lease cannot store anything over another's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError

from hub.cluster.connect import transient, until_answered
from hub.log.base import StoreError
from hub.log.jetstream import REPLICAS, WRONG_LAST_SEQUENCE, with_leader

LEASE_SECONDS = 1.5  # no renewal seen for this long: a contender claims
RENEW_SECONDS = 0.5
WATCH_SECONDS = 0.2  # how often a contender looks at the stream
ASK_SECONDS = 1.0  # one request to the stream (give `Lease` a JetStreamContext with this timeout): a request
# sent while the stream has no leader waits out its timeout even once a leader is elected, and a contender's
# LEASE_SECONDS of silence count only from its first answered watch
KEEP_RENEWALS = 100

log = logging.getLogger("diemcau.cluster.lease")


def lease_stream(event_id: str) -> str:
    return f"diemcau-{event_id}-lease"


def lease_subject(event_id: str) -> str:
    return f"diemcau.{event_id}.lease"


@dataclass(frozen=True, slots=True)
class Holder:
    """A renewal as stored: the node, its process (a restarted node is a new holder), and the public URL."""

    node: str
    incarnation: str
    url: str
    term: int


def _holder(data: bytes | None) -> Holder:
    body = orjson.loads(data or b"{}")
    return Holder(str(body.get("node", "")), str(body.get("incarnation", "")), str(body.get("url", "")),
                  int(body.get("term", 0)))


class Lease:
    """Contend for the lease, hold it while this node can renew it, and say when that changes."""

    def __init__(self, js: JetStreamContext, event_id: str, node: str, url: str, changed: Callable[[], None],
                 moved: Callable[[], None] = lambda: None, clock: Callable[[], float] = time.monotonic) -> None:
        """`changed`: this node took the lease or lost it; `moved`: another holder was seen (any node's)."""
        self.js, self.node, self.url, self.changed, self.moved, self.clock = js, node, url, changed, moved, clock
        self.stream, self.subject = lease_stream(event_id), lease_subject(event_id)
        self.incarnation = secrets.token_hex(4)
        self.held = False
        self.holder: Holder | None = None  # the last renewal seen, by any node
        self.takeovers = 0  # leases this node claimed
        self._seq = 0  # the stream's last seq as last seen
        self._seen_at = clock()  # when _seq last moved, by this node's clock
        self._renewed_at = 0.0
        self._unrenewed_told = False  # "cannot renew" logged, and not yet "renewed again"

    async def open(self) -> None:
        """Create the lease stream if missing (with every server up, as for the log's)."""
        await until_answered(f"stream {self.stream}", self._create)

    async def _create(self) -> None:
        try:
            await self.js.stream_info(self.stream)
        except NotFoundError:
            try:
                await self.js.add_stream(StreamConfig(
                    name=self.stream, subjects=[self.subject], num_replicas=REPLICAS, storage=StorageType.FILE,
                    retention=RetentionPolicy.LIMITS, max_msgs=KEEP_RENEWALS,
                    description="diemcau sequencer lease"))
            except APIError as exc:
                if transient(exc):
                    raise  # asked again by until_answered
                raise StoreError(f"cannot create stream {self.stream} with {REPLICAS} replicas "
                                 f"({exc.description}); every NATS server of the cluster must be up") from None
            await with_leader(self.js, self.stream)

    async def run(self) -> None:
        """Renew while held, watch otherwise; a failing server only delays the next step."""
        while True:
            try:
                await (self._renew() if self.held else self._watch())
            except Exception as exc:  # a server lost, no responders for a while: never the end of the lease loop
                log.log(logging.DEBUG if isinstance(exc, (TimeoutError, APIError, OSError)) else logging.WARNING,
                        "lease: %r", exc)
                if self.held and not self._unrenewed_told and self.clock() - self._renewed_at >= LEASE_SECONDS:
                    self._unrenewed_told = True
                    log.warning("node %s cannot renew the sequencer's lease (%r); still deciding", self.node, exc)
                if not self.held:
                    self._seen_at = self.clock()  # the holder cannot renew meanwhile either
            await asyncio.sleep(RENEW_SECONDS if self.held else WATCH_SECONDS)

    async def _watch(self) -> None:
        try:
            last = await self.js.get_last_msg(self.stream, self.subject)
            seq = last.seq or 0
            self._saw(_holder(last.data))
        except NotFoundError:  # a new cluster: nobody has held it yet
            seq = 0
        now = self.clock()
        released = self.holder is not None and not self.holder.node
        if seq != self._seq and not released:
            self._seq, self._seen_at = seq, now
            return
        if released or now - self._seen_at >= LEASE_SECONDS:
            self._seq = seq
            await self._claim(seq)

    async def _claim(self, seq: int) -> None:
        previous = self.holder
        term = previous.term + 1 if previous is not None else 1
        if await self._publish(seq, term):
            self.takeovers += 1
            gone = f" from {previous.node}" if previous is not None and previous.node not in ("", self.node) else ""
            log.warning("node %s took the sequencer's lease%s (term %d)", self.node, gone, term)
            self._set(True)

    async def _renew(self) -> None:
        assert self.holder is not None
        if await self._publish(self._seq, self.holder.term):
            return
        with contextlib.suppress(Exception):  # unreadable: step down, the safe side
            last = await self.js.get_last_msg(self.stream, self.subject)
            holder = _holder(last.data)
            if (holder.node, holder.incarnation) == (self.node, self.incarnation):  # stored, its answer lost
                self._seq = last.seq or 0
                return
        log.warning("node %s lost the sequencer's lease to another node", self.node)
        self._set(False)

    async def _publish(self, seq: int, term: int) -> bool:
        """Append a renewal after `seq`; False if the stream's last seq is not `seq` (another node renewed)."""
        holder = Holder(self.node, self.incarnation, self.url, term)
        payload = orjson.dumps({"node": holder.node, "incarnation": holder.incarnation, "url": holder.url,
                                "term": term, "ts": time.time()})
        try:
            ack = await self.js.publish(self.subject, payload, timeout=ASK_SECONDS, stream=self.stream,
                                        headers={"Nats-Expected-Last-Sequence": str(seq)})
        except APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                self._seq, self._seen_at = -1, self.clock()  # look again before contending
                return False
            raise
        self._seq, self._seen_at, self._renewed_at = ack.seq, self.clock(), self.clock()
        if self._unrenewed_told:
            self._unrenewed_told = False
            log.warning("node %s renewed the sequencer's lease again", self.node)
        self._saw(holder)
        return True

    def _saw(self, holder: Holder) -> None:
        previous, self.holder = self.holder, holder
        if previous is not None and (previous.node, previous.incarnation) != (holder.node, holder.incarnation):
            self.moved()

    def _set(self, held: bool) -> None:
        if held != self.held:
            self.held = held
            self.changed()

    async def release(self) -> None:
        """Stepping down on a clean stop: contenders take over at once instead of after LEASE_SECONDS."""
        if self.held:
            self.held = False
            self.changed()
            try:
                await self.js.publish(self.subject, orjson.dumps({"node": "", "incarnation": "", "url": "", "term":
                                      self.holder.term if self.holder else 0, "ts": time.time()}),
                                      timeout=ASK_SECONDS, stream=self.stream,
                                      headers={"Nats-Expected-Last-Sequence": str(self._seq)})
            except Exception as exc:  # the others take over after the lease time instead
                log.info("lease not released (%r)", exc)
