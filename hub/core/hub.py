"""The hub's core: command in, event appended, state folded, durable answer, changes pushed.

Every command comes through `dispatch`; every state change goes through `_store`, which folds the
event at once (so the next command sees it) and hands it to the log. Answers and pushes wait for the
commit: the log's commit callback (`_written`) lets them go. A failed write rebuilds the state from
the log, so memory never holds what the disk does not.

In cluster mode (`hub.cluster.node`) one node decides: the others check and authorise each command,
forward it to the deciding node, and fold what the log brings them (`_arrived`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from hub.bridge import BridgePoller
from hub.config import Config
from hub.core.commands import COMMANDS, Planned, SiteHeartbeat, Spec
from hub.core.daylog import log_event
from hub.core.errors import (
    Answer,
    HubError,
    InvalidFormat,
    NotFound,
    Subscription,
    Unauthorized,
    UnknownCommand,
    describe_validation,
)
from hub.core.events import EVENTS
from hub.core.release import Release
from hub.core.state import State
from hub.log import snapshots as snapshot
from hub.log.base import Event, EventLog, Refused
from hub.protocol.fanout import Fanout
from hub.protocol.messages import CLOSE_REVOKED
from hub.tokens import Identity, TokenStore

if TYPE_CHECKING:
    from hub.protocol.connection import Connection

log = logging.getLogger("diemcau.hub")
Clock = Callable[[], float]
LAG_PROBE_SECONDS = 0.1
LOOP_STALL_SECONDS = 0.2  # a stop of the loop this long holds every answer and push: logged and counted
GC_GENERATIONS = ("young", "middle", "full")


class Cluster(Protocol):
    """The other nodes, as the hub sees them in cluster mode (`hub.cluster.node.ClusterNode`)."""

    name: str
    deciding: bool  # this node holds the sequencer's lease: it decides commands and runs the status clock

    def forward(self, who: Identity, type_: str, fields: dict[str, Any], op_id: str | None) -> Answer:
        """Hand a checked command to the deciding node; the answer is ready once this node has folded it."""

    def share_heartbeat(self, site: str, measurements: dict[str, Any]) -> None:
        """Tell the other nodes of a heartbeat that is not stored."""

    def urls(self) -> list[str]:
        """The public URLs of the live nodes, this one included."""

    def known_urls(self) -> list[str]:
        """The public URLs of every node heard since this one started, gone or not."""

    def health(self) -> dict[str, Any]:
        """The node's part of `/healthz`: its name, role, fold, engine."""

    def counts(self) -> dict[str, int]:
        """The node's counters for `/metrics` (hub.web.metrics.CLUSTER_METRICS names them)."""


@dataclass
class Stats:
    """Counters the metrics endpoint and the logs read."""

    commands: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    slow_dropped: int = 0
    loop_stalls: int = 0

    def count(self, table: dict[str, int], key: str) -> None:
        table[key] = table.get(key, 0) + 1


class Hub:
    """Owns the log, the folded state and the live connections of one event."""

    def __init__(self, config: Config, db_path: str | Path, log: EventLog, clock: Clock = time.time) -> None:
        self.config = config
        self.clock = clock
        self.db_path = Path(db_path)  # the log's file on this machine (a cluster node's local copy)
        self.log = log
        self.log.on_written(self._written)
        self.log.on_arrival(self._arrived)
        self.tokens = TokenStore(self.db_path)
        self.cluster: Cluster | None = None  # set by a cluster node; None: the one hub of its event
        self.state = State(config)
        self.connections: set[Connection] = set()
        self.awaiting_disk: set[Connection] = set()  # connections whose next answer waits for a commit
        self.release = Release(lambda: self.log.durable_seq)  # what waits for the disk, but the answers
        self.fanout = Fanout(lambda: self.state, self.release, clock, config.limits.fanout_ms / 1000)
        self.bridge = (BridgePoller(config.bridge, config.sites, lambda site: self.state.sites[site].video, self.record)
                       if config.bridge is not None else None)
        self._bridge_task: asyncio.Task[None] | None = None
        self._answers_due = False
        self.stats = Stats()
        self.started = clock()
        self._tasks: list[asyncio.Task[None]] = []
        self.rebuild()

    # -- life cycle -------------------------------------------------------------------------------

    def rebuild(self) -> None:
        """Fold the log into a fresh state (on start, and after a failed write): the latest snapshot, then the tail."""
        state = snapshot.restore(self.config, self.log)
        for event in self.log.read(state.seq):
            state.apply(event)
        state.change_everything()  # after a failed write, subscribers get the state as the log holds it
        state.grace(self.clock())
        self.state = state
        self.fanout.restart()
        self.release.lose()  # what waited for the lost events: pushes give way to the rebuilt state
        log.info("state rebuilt: seq %d, %d questions", state.seq, len(state.questions))

    @property
    def node_name(self) -> str | None:
        """This node's name in its cluster; None for the one hub of its event."""
        return self.cluster.name if self.cluster is not None else None

    def node_urls(self) -> list[str]:
        """The base URL of every live node, for clients to fail over to (none for the one hub of its event)."""
        return self.cluster.urls() if self.cluster is not None else []

    def known_node_urls(self) -> list[str]:
        """Every node heard since this one started: a page one of them served fails over here after it is gone,
        and its reads and downloads come from that node's origin."""
        return self.cluster.known_urls() if self.cluster is not None else []

    async def start(self) -> None:
        await self.log.open()  # a replicated log catches its local copy up here; what it brought is folded
        self.log.start()
        snapshots = snapshot.keep_snapshots(lambda: self.state, self.log, self.release.wait)
        self._tasks = [asyncio.create_task(coro, name=name) for name, coro in (
            ("fanout", self.fanout.run()), ("status", self._status_loop()), ("revocations", self._revocation_loop()),
            ("snapshots", snapshots), ("loop lag", self._lag_loop()))]
        if self.deciding:
            self._run_bridge(True)

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._bridge_task] if self._bridge_task is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.close_connections()
        await self.log.stop()

    @property
    def deciding(self) -> bool:
        """Whether this hub decides commands and moves statuses with the clock: the one hub, or the sequencer."""
        return self.cluster is None or self.cluster.deciding

    def take_over(self) -> None:
        """This node has just become the sequencer, its fold at the log's end: give every live site one timeout
        to be heard here (so the switch itself marks none lost), and poll the bridge."""
        self.state.grace(self.clock())
        self._run_bridge(True)

    def hand_over(self) -> None:
        """This node no longer decides: the sequencer polls the bridge."""
        self._run_bridge(False)

    def _run_bridge(self, run: bool) -> None:
        if run and self.bridge is not None and self._bridge_task is None:
            self._bridge_task = asyncio.create_task(self.bridge.run(), name="bridge")
        elif not run and self._bridge_task is not None:
            self._bridge_task.cancel()
            self._bridge_task = None

    async def close_connections(self) -> None:
        """Say "going away" to every client at once, so a shutdown never waits on open websockets."""
        await asyncio.gather(*(conn.close_going_away() for conn in list(self.connections)), return_exceptions=True)

    # -- commands ---------------------------------------------------------------------------------

    def dispatch(self, who: Identity, type_: Any, fields: dict[str, Any], op_id: Any) -> Answer | Subscription:
        """The one way in for every command, from a websocket, an HTTP import or anything else.

        Finds the command, decides authority from what it declared at registration (its roles, and
        whether it is bound to the caller's site or agency), validates its fields, then runs it. A stored
        command's answer may go out once its event is durable (`Answer.ready`).
        """
        if not isinstance(type_, str):
            raise InvalidFormat("type must be a string naming a command")
        spec = COMMANDS.get(type_)
        if spec is None:
            raise UnknownCommand(f"unknown command {type_[:64]!r}")
        if who.role not in spec.roles:
            raise Unauthorized(f"role {who.role} may not send {spec.name}")
        if spec.stores and (not isinstance(op_id, str) or not 0 < len(op_id) <= 64):
            raise InvalidFormat("op_id is required: a unique string of 1 to 64 characters")
        if not spec.stores and op_id is not None:
            raise InvalidFormat(f"{spec.name} takes no op_id")
        try:
            cmd = spec.model.__pydantic_validator__.validate_python(fields)  # model_validate, less its 0.4 µs wrapper
        except ValidationError as exc:
            raise InvalidFormat(describe_validation(exc)) from None
        self._authorise(who, spec, cmd)
        if not spec.stores:
            return spec.handler(self, who, cmd)  # type: ignore[arg-type]
        self.stats.count(self.stats.commands, spec.name)
        first = self.state.ops.get(op_id) or self.log.find_op(op_id)
        if first is not None:
            return Answer(first, first["seq"])
        if self.cluster is not None and not self.cluster.deciding:
            return self.cluster.forward(who, spec.name, fields, op_id)
        planned = spec.handler(self.state, who, cmd)  # type: ignore[arg-type]
        return self._store(planned, who.token_id, op_id)

    def _authorise(self, who: Identity, spec: Spec, cmd: Any) -> None:
        """Hold a bound token to what it is bound to: a site's token to its site, an agency's to its questions."""
        if spec.bound == "site" and who.site is not None and cmd.site != who.site:
            raise Unauthorized(f"this token is for site {who.site!r}, not {cmd.site!r}")
        if spec.bound == "question" and who.agency is not None:
            question = self.state.questions.get(cmd.question)
            if question is not None and question.agency != who.agency:
                raise Unauthorized(f"question {question.id} is not assigned to agency {who.agency!r}")

    def heartbeat(self, who: Identity, cmd: SiteHeartbeat) -> Answer:
        """Freshen a site; store the heartbeat only when it tells something new, to keep the log small."""
        site = self.state.sites.get(cmd.site)
        if site is None:
            raise NotFound(f"unknown site {cmd.site!r}")
        now = self.clock()
        measurements = cmd.measurements()
        link = self.state.link_for(measurements)
        due = site.last_stored_heartbeat is None or now - site.last_stored_heartbeat >= self.config.heartbeat.store_every_seconds
        gap_ends = site.checked_in is not None and site.status in ("offline", "lost")  # not an idle agent
        if due or link != site.link or gap_ends:
            if self.cluster is not None and not self.cluster.deciding:
                return self.cluster.forward(who, "site.heartbeat", {"site": site.id, **measurements}, None)
            return self._store(Planned("site.heartbeat", site.id, measurements), who.token_id, None)
        result = self.heard_heartbeat(site.id, measurements)
        if self.cluster is not None:
            self.cluster.share_heartbeat(site.id, measurements)
        return Answer(result)

    def heard_heartbeat(self, site_id: str, measurements: dict[str, Any]) -> dict[str, Any]:
        """A heartbeat not stored, heard here or on another node: the site is seen now."""
        result = self.state.heartbeat(self.state.sites[site_id], self.clock(), measurements)
        result["seq"] = self.state.seq
        if self.deciding:
            self._record_drift([site_id])
        return result

    def _store(self, planned: Planned, actor: str | None, op_id: str | None) -> Answer:
        """Store one event, then the status moves it causes; its answer is ready once its write is."""
        answer = self._append(planned, actor, op_id)
        if planned.site is not None and EVENTS[planned.type].moves_status:
            self._record_drift([planned.site])
        return answer

    def _append(self, planned: Planned, actor: str | None, op_id: str | None) -> Answer:
        """Fold the event now (so the next command sees it) and queue it for the disk."""
        event = Event(seq=self.state.seq + 1, ts=self.clock(), type=planned.type, data=planned.data,
                      actor=actor, site=planned.site, op_id=op_id)
        result = self.state.apply(event)
        log_event(self.state, event)
        write = self.log.append(event, result)
        if "warning" in result:
            log.warning("site %s: %s (seq %d)", planned.site, result["warning"], event.seq)
        return Answer(result, event.seq, write)

    async def settled(self, answer: Answer) -> dict[str, Any]:
        """The command's result once it is durable (and folded here); raises StoreError if its write failed, or
        the deciding node's HubError for a forwarded command."""
        if answer.write is not None:
            await answer.write
        await self.release.wait(answer.seq)
        return answer.result

    def _written(self, error: BaseException | None) -> None:
        """After each group commit, the one place what waited for the disk is let go: rebuild the state if the
        disk refused the commit, then send the answers it freed and release the pushes it holds.

        Connections whose next answer waits for the disk are listed in `awaiting_disk`; one pass here
        replaces a future callback and a task wake-up per command. A batch the log refused after a failed
        commit needs no rebuild: the failed commit's own call rebuilt the state, and the log dropped
        everything folded before that.
        """
        if error is not None and not isinstance(error, Refused) and self.log.durable_seq < self.state.seq:
            log.error("event log write failed (%s); rebuilding state from the log", error)
            self.rebuild()
        self.answers_ready()

    def answers_ready(self) -> None:
        """Send the answers the log (or a forwarded command's reply) has freed, and release the pushes it holds."""
        waiting, self.awaiting_disk = self.awaiting_disk, set()
        for conn in waiting:
            conn.send_answers()
        self.release.written()

    def answers_soon(self) -> None:
        """`answers_ready` once, at the loop's next turn, for however many replies to forwarded commands come
        in meanwhile (each would otherwise walk every waiting connection)."""
        if not self._answers_due:
            self._answers_due = True
            asyncio.get_running_loop().call_soon(self._answers_now)

    def _answers_now(self) -> None:
        self._answers_due = False
        self.answers_ready()

    def _arrived(self, events: list[Event]) -> None:
        """Fold what the log brought from the stream (a cluster node): another node's events, or this one's own,
        already folded when appended. A gap means this fold went astray: rebuild it from the log."""
        state = self.state
        for event in events:
            if event.seq <= state.seq:
                continue
            if event.seq != state.seq + 1:
                log.warning("fold at seq %d, the log brought seq %d; rebuilding", state.seq, event.seq)
                self.rebuild()
                break
            state.apply(event)
            log_event(state, event)
        self.answers_ready()

    def record(self, type_: str, site: str | None, data: dict[str, Any]) -> None:
        """Store an event the hub itself observed (status changes, bridge presence); nobody awaits its answer."""
        self._store(Planned(type_, site, data), "hub", None)

    def _record_drift(self, site_ids: list[str] | None = None) -> None:
        """Store the status each of these sites (or every site) has moved to with the clock; a status event
        moves no status itself, so this ends here."""
        for site_id, status in self.state.status_drift(self.clock(), site_ids):
            previous = self.state.sites[site_id].status
            self._append(Planned("site.status", site_id, {"status": status, "previous": previous}), "hub", None)

    async def _status_loop(self) -> None:
        """Let the clock move statuses (a heartbeat that stops is `lost` within timeout + 1 s); in a cluster,
        on the deciding node only."""
        while True:
            await asyncio.sleep(0.5)
            if self.deciding:
                self._record_drift()

    async def _lag_loop(self) -> None:
        """Watch how late the loop wakes a sleeper; log each stop of LOOP_STALL_SECONDS or more with the
        garbage collections that ran meanwhile, so a slow moment on the day can be told from the network."""
        loop = asyncio.get_running_loop()
        while True:
            collections = [g["collections"] for g in gc.get_stats()]
            started = loop.time()
            await asyncio.sleep(LAG_PROBE_SECONDS)
            late = loop.time() - started - LAG_PROBE_SECONDS
            if late >= LOOP_STALL_SECONDS:
                self.stats.loop_stalls += 1
                ran = [name for name, before, g in zip(GC_GENERATIONS, collections, gc.get_stats())
                       if g["collections"] > before]
                log.warning("the event loop stopped for %d ms (%d connections; garbage collection: %s)",
                            late * 1000, len(self.connections), ", ".join(ran) or "none")

    async def _revocation_loop(self) -> None:
        """Close the open connections of revoked tokens, even when revoked from another process."""
        while True:
            await asyncio.sleep(2)
            revoked = await asyncio.to_thread(self.tokens.revoked_ids)
            for conn in list(self.connections):
                if conn.who is not None and conn.who.token_id in revoked:
                    log.info("closing a connection of revoked token %s", conn.who.token_id)
                    await conn.close(CLOSE_REVOKED, "token revoked")

    async def authenticate(self, token: Any) -> Identity | None:
        if not isinstance(token, str):
            return None
        return await asyncio.to_thread(self.tokens.verify, token)


__all__ = ["Hub", "HubError"]
