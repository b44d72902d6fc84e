"""One hub node of a cluster: its part in the lease, the commands it forwards or decides, the heartbeats
and node announcements it shares over core NATS.

Every node folds the one log (`JetStreamLog`, through `Hub._arrived`), serves websockets and pushes to
its own dashboards. The node holding the lease is the sequencer: it decides every command, appends
its events, runs the status clock and polls the bridge. The others forward what they receive.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from hub.cluster.connect import server_of
from hub.cluster.forward import Forwarder, Publisher, Responder, command_subject
from hub.cluster.lease import ASK_SECONDS as LEASE_ASK_SECONDS
from hub.cluster.lease import Lease
from hub.cluster.tokens import ClusterTokens
from hub.core.errors import Answer
from hub.core.hub import Hub
from hub.log.base import StoreError
from hub.log.jetstream import JetStreamLog
from hub.protocol.messages import CLOSE_REVOKED, encode, nodes_frame
from hub.tokens import Identity

ANNOUNCE_SECONDS = 1.0
NAME_CHECK_SECONDS = 1.5 * ANNOUNCE_SECONDS  # a starting node listens this long for another node of its name
NODE_GONE_SECONDS = 3.5  # a node not heard for this long is left out of the list clients fail over to
TAKE_OVER_SECONDS = 30.0  # the new sequencer's local copy reaching the stream's end
BEATS_SECONDS = 0.25  # heartbeats a node took go to the others together, at most this late

log = logging.getLogger("diemcau.cluster")


def nodes_subject(event_id: str) -> str:
    """Where each node announces itself every second (core NATS, no stream)."""
    return f"diemcau.{event_id}.nodes"


def beats_subject(event_id: str) -> str:
    """Where heartbeats that are not stored are shared between the nodes (core NATS, no stream)."""
    return f"diemcau.{event_id}.beat"


@dataclass(frozen=True, slots=True)
class ClusterOptions:
    """What `serve --nats` says of this node."""

    servers: list[str]
    node: str
    public_url: str
    token: str | None = field(default=None, repr=False)  # the NATS servers' (--nats-token-file)


@dataclass(slots=True)
class Peer:
    url: str
    role: str
    seq: int
    heard: float


class ClusterNode:
    """Joins a hub to its cluster; the hub sees it as `hub.cluster`."""

    def __init__(self, hub: Hub, log_: JetStreamLog, options: ClusterOptions) -> None:
        self.hub, self.log = hub, log_
        self.name, self.url = options.node, options.public_url.rstrip("/")
        self.deciding = False
        self.event_id = hub.config.event.id
        self.peers: dict[str, Peer] = {}
        self._subs: list[Subscription] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._shown: list[str] = []  # the node list as last pushed to clients
        self.publisher: Publisher | None = None
        self.forwarder: Forwarder | None = None
        self.responder: Responder | None = None
        self.lease: Lease | None = None
        self.tokens: ClusterTokens | None = None
        self._role_task: asyncio.Task[None] | None = None
        self._beats: dict[str, dict[str, Any]] = {}  # site -> its last heartbeat's measurements, not yet shared
        self._beats_due: asyncio.TimerHandle | None = None
        self.incarnation = secrets.token_hex(4)  # this process: another under the same name is another node
        self.namesake: str | None = None  # the URL of another node announcing this node's name

    @property
    def nc(self) -> NATS:
        return self.log.connection

    async def start(self) -> None:
        """After the hub has started (its log open): copy the cluster's tokens, make sure no live node has this
        node's name, contend for the lease, share heartbeats, announce.

        Two nodes of one name (a unit file copied without its --node changed) would each drop the other's shared
        heartbeats as their own, and the sequencer would mark the other's halls lost: refuse to join instead.
        """
        self._subs = [await self.nc.subscribe(nodes_subject(self.event_id), cb=self._on_announce)]
        listening = time.monotonic()
        self.tokens = ClusterTokens(self.nc, self.event_id)
        await self.tokens.open()
        self._tasks.append(asyncio.create_task(self.tokens.mirror(self.hub.tokens, self._revoked), name="tokens"))
        await self.tokens.wait_mirrored()
        await asyncio.sleep(max(0.0, listening + NAME_CHECK_SECONDS - time.monotonic()))
        if self.namesake is not None:
            raise StoreError(f"another node of this cluster is called {self.name} (at {self.namesake}); give each "
                             f"node its own --node name")
        subject = command_subject(self.event_id)
        self.publisher = Publisher(self.nc)
        self.forwarder = Forwarder(self.nc, subject, self.hub.release.after, self.hub.answers_soon)
        await self.forwarder.start()
        self.responder = Responder(self.nc, subject, self.hub.dispatch, self.hub.release.after)
        self.lease = Lease(self.nc.jetstream(timeout=LEASE_ASK_SECONDS), self.event_id, self.name, self.url,
                           self._lease_changed, self.forwarder.ask_again)
        await self.lease.open()
        self._subs.append(await self.nc.subscribe(beats_subject(self.event_id), cb=self._on_beat))
        self.hub.cluster = self
        self._tasks += [asyncio.create_task(self.lease.run(), name="lease"),
                        asyncio.create_task(self._announce_loop(), name="announce")]
        log.info("node %s joined the cluster at %s (fold at seq %d)", self.name, server_of(self.nc), self.hub.state.seq)

    async def stop(self) -> None:
        """Hand the lease over at once, then leave."""
        tasks = [*self._tasks, *([self._role_task] if self._role_task is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._beats_due is not None:
            self._beats_due.cancel()
        if self.lease is not None:
            await self.lease.release()
        self.deciding = False
        for part in (self.responder, self.forwarder, self.publisher):
            if part is not None:
                await part.stop()
        for sub in self._subs:
            try:
                await sub.unsubscribe()
            except Exception as exc:
                log.debug("unsubscribe: %r", exc)

    def _revoked(self, token_id: str) -> None:
        """A token revoked on any node: close its connections here at once (not at the hub's 2 s check)."""
        for conn in list(self.hub.connections):
            if conn.who is not None and conn.who.token_id == token_id and not conn.closing:
                log.info("closing a connection of revoked token %s", token_id)
                asyncio.get_running_loop().create_task(conn.close(CLOSE_REVOKED, "token revoked"))

    # -- the lease --------------------------------------------------------------------------------

    def _lease_changed(self) -> None:
        """From the lease: the role follows it in a task of its own, so the lease keeps renewing meanwhile."""
        if self._role_task is None or self._role_task.done():
            self._role_task = asyncio.create_task(self._follow_lease(), name="role")

    async def _follow_lease(self) -> None:
        assert self.lease is not None and self.responder is not None
        while self.lease.held != self.deciding:
            if self.lease.held:
                try:
                    seq = await self.log.sync(TAKE_OVER_SECONDS)  # fold everything stored before deciding anything
                except Exception as exc:
                    log.error("node %s cannot reach the log's end (%r): handing the lease back", self.name, exc)
                    await self.lease.release()
                    continue
                if not self.lease.held:
                    continue
                self.deciding = True
                self.hub.take_over()
                await self.responder.start()
                log.warning("node %s is the sequencer from seq %d", self.name, seq)
            else:
                self.deciding = False
                await self.responder.pause()
                self.hub.hand_over()
                log.warning("node %s is a follower", self.name)
            self._announce()

    # -- commands and heartbeats -----------------------------------------------------------------

    def forward(self, who: Identity, type_: str, fields: dict[str, Any], op_id: str | None) -> Answer:
        assert self.forwarder is not None
        return self.forwarder.forward(who, type_, fields, op_id)

    def share_heartbeat(self, site: str, measurements: dict[str, Any]) -> None:
        """Gathered for BEATS_SECONDS, then one message for all: at a national meeting a node takes hundreds of
        heartbeats a second, and a message each cost every node a callback each."""
        if self._beats_due is None:
            self._beats_due = asyncio.get_running_loop().call_later(BEATS_SECONDS, self._share_beats)
        self._beats[site] = measurements

    def _share_beats(self) -> None:
        assert self.publisher is not None
        beats, self._beats, self._beats_due = self._beats, {}, None
        self.publisher.send(beats_subject(self.event_id), orjson.dumps({"node": self.name, "beats": beats}))

    async def _on_beat(self, msg: Msg) -> None:
        body = orjson.loads(msg.data)
        if body["node"] == self.name:
            return
        sites = self.hub.state.sites
        for site, measurements in body["beats"].items():
            if site in sites:
                self.hub.heard_heartbeat(site, measurements)

    # -- the node list ----------------------------------------------------------------------------

    @property
    def role(self) -> str:
        return "sequencer" if self.deciding else "follower"

    def urls(self) -> list[str]:
        now = time.monotonic()
        live = {self.url} | {peer.url for peer in self.peers.values() if now - peer.heard < NODE_GONE_SECONDS}
        return sorted(live)

    def known_urls(self) -> list[str]:
        return sorted({self.url} | {peer.url for peer in self.peers.values()})

    def sequencer(self) -> str | None:
        """The node deciding commands, as far as this one knows."""
        if self.deciding:
            return self.name
        holder = self.lease.holder if self.lease is not None else None
        return holder.node or None if holder is not None else None

    async def _announce_loop(self) -> None:
        while True:
            self._announce()
            urls = self.urls()
            if urls != self._shown:
                self._shown = urls
                frame = encode(nodes_frame(self.name, urls))
                for conn in list(self.hub.connections):
                    if conn.who is not None:
                        conn.push(frame)
            await asyncio.sleep(ANNOUNCE_SECONDS)

    def _announce(self) -> None:
        assert self.publisher is not None
        self.publisher.send(nodes_subject(self.event_id), orjson.dumps({
            "node": self.name, "incarnation": self.incarnation, "url": self.url, "role": self.role,
            "seq": self.hub.state.seq, "ts": time.time()}))

    async def _on_announce(self, msg: Msg) -> None:
        body = orjson.loads(msg.data)
        if body["node"] != self.name:
            self.peers[body["node"]] = Peer(body["url"], body["role"], body["seq"], time.monotonic())
        elif body.get("incarnation") != self.incarnation and body["url"] != self.namesake:
            self.namesake = body["url"]
            if self.hub.cluster is self:  # both joined at once: neither heard the other before it did
                log.error("another node of this cluster is also called %s (at %s): each takes the other's heartbeats "
                          "for its own; stop one and give it its own --node name", self.name, self.namesake)

    def fold_lag(self) -> int:
        """Events the sequencer has announced beyond this node's fold."""
        now = time.monotonic()
        announced = [p.seq for p in self.peers.values() if p.role == "sequencer" and now - p.heard < NODE_GONE_SECONDS]
        return max(0, max(announced, default=0) - self.hub.state.seq)

    def counts(self) -> dict[str, int]:
        assert self.forwarder is not None and self.responder is not None and self.lease is not None
        return {"sequencer": int(self.deciding), "forwarded": self.forwarder.forwarded,
                "forward_retries": self.forwarder.retries, "answered": self.responder.answered,
                "takeovers": self.lease.takeovers, "fold_lag": self.fold_lag()}

    def health(self) -> dict[str, Any]:
        """What `/healthz` adds in cluster mode."""
        nc = self.nc
        return {"node": self.name, "role": self.role, "fold_seq": self.hub.state.seq, "fold_lag": self.fold_lag(),
                "sequencer": self.sequencer(),
                "engine": {"connected": nc.is_connected, "server": server_of(nc),
                           "stream": self.log.stream, "durable_seq": self.log.durable_seq},
                "nodes": {name: {"url": p.url, "role": p.role, "seq": p.seq} for name, p in self.peers.items()
                          if time.monotonic() - p.heard < NODE_GONE_SECONDS}}
