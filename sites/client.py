"""A small websocket client for the hub's protocol, shared by the site agent, the simulator, the load
generator and the tests: auth, numbered commands matched to their answers, pushed frames in a queue.

`HubClient(url, token)` is one connection: when it closes, the calls waiting for an answer fail with
ConnectionError. `HubClient(url, token, failover=Failover(nodes=...))` stays connected to one of the hub's
nodes (see sites/nodes.py for which): it notices a dead node within about 10 s even when the TCP connection
stays open (a `ping` after 4 s without a frame; nothing for 10 s ends the connection), reconnects with
full-jitter backoff, sends every unanswered command again with its op_id (so the hub stores it once) and
subscribes again from the last seq it received. A call in flight when a node dies completes on the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from .nodes import Nodes, backoff

PING_AFTER = 4.0  # seconds without a frame before a failover client pings
DEAD_AFTER = 10.0  # seconds without a frame before it gives the node up
CLOSE_TIMEOUT = 2.0  # a failover client does not wait long for a closing handshake a dead node never answers


class CommandFailed(Exception):
    """The hub answered `success: false`; `code` is the contract's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class AuthFailed(Exception):
    pass


# Commands that change nothing need no op_id; everything else gets a fresh one unless given.
NO_OP_ID = frozenset({"subscribe", "ping", "site.heartbeat"})


def new_op_id() -> str:
    """A fresh op_id that sorts by time: the time in ms (12 hex digits), then 80 random bits.

    The hub's log indexes op_ids. Ids arriving in time order go in at the index's end; random ones
    (uuid4) land all over it, and each commit rewrites a page of the index per command: several times
    the log writer's work (`python -m bench --only cost` prints both).
    """
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


@dataclass(frozen=True)
class Failover:
    """How a client fails over: the other nodes it may use besides its URL, its backoff (seconds), and who is
    told of each connection (`on_connect(url, auth_ok)`) and each lost or failed one (`on_retry(url, why, wait)`)."""

    nodes: Iterable[str] = ()
    backoff_base: float = 0.5
    backoff_cap: float = 10.0
    on_connect: Callable[[str, dict[str, Any]], None] | None = None
    on_retry: Callable[[str, BaseException, float], None] | None = None


@dataclass
class _Command:
    """A command sent, or to send on the next connection, and its answer's future (None for the client's own)."""

    frame: dict[str, Any]
    future: asyncio.Future[dict[str, Any]] | None
    sent: bool = False


class HubClient:
    """One authenticated connection, or with `failover` one to whichever node is up. `call` sends a command
    and waits for its own answer."""

    def __init__(self, url: str, token: str, origin: str | None = None, max_queue: int = 10000, *,
                 failover: Failover | None = None) -> None:
        self.url, self.token, self.origin = url, token, origin  # with failover, `url` is the node in use
        self.failover = failover
        self.nodes = Nodes([url, *failover.nodes]) if failover else None
        self.ws: ClientConnection | None = None
        self.identity: dict[str, Any] = {}
        self.pushed: asyncio.Queue[dict[str, Any]] = asyncio.Queue(max_queue)
        self.last_seq: int | None = None  # of the last snapshot or event received: where a resubscription resumes
        self.online = asyncio.Event()  # connected and authenticated
        self.closed = asyncio.Event()  # this client carries no more commands (with failover: closed or refused)
        self._ids = itertools.count(1)
        self._waiting: dict[int, _Command] = {}
        self._reader: asyncio.Task[None] | None = None  # with failover, the task that keeps the client connected
        self._subscription: dict[str, Any] | None = None  # the fields of the last subscribe, to renew on a new node
        self._heard = 0.0  # loop time of the last frame received
        self._ended: BaseException | None = None

    async def __aenter__(self) -> HubClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self, open_timeout: float = 10) -> dict[str, Any]:
        """Authenticate and start reading; raise AuthFailed if the hub refuses the token. With failover, keep
        trying the nodes (`open_timeout` for each try) until one takes it, and stay connected from then on."""
        if self.failover is None:
            self.ws, self.identity = await self._open(self.url, open_timeout)
            self.closed.clear()
            self.online.set()
            self._reader = asyncio.create_task(self._read_until_closed(self.ws))
            return self.identity
        self._reader = asyncio.create_task(self._keep_connected(open_timeout), name=f"hub client {self.url}")
        try:
            await self.wait_online()
        except BaseException:
            self._reader.cancel()
            raise
        return self.identity

    async def _open(self, url: str, open_timeout: float) -> tuple[ClientConnection, dict[str, Any]]:
        headers = {"Origin": self.origin} if self.origin else None
        ws = await websockets.connect(url, open_timeout=open_timeout, max_size=2**24, additional_headers=headers,
                                      max_queue=None, close_timeout=CLOSE_TIMEOUT if self.failover else 10)
        try:
            await ws.send(json.dumps({"type": "auth", "token": self.token}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), open_timeout))
        except BaseException:
            ws.transport.abort()
            raise
        if reply.get("type") != "auth_ok":
            await ws.close()
            raise AuthFailed(reply.get("message", str(reply)))
        return ws, reply

    async def _read(self, ws: ClientConnection) -> None:
        """Hand every frame to the command it answers or to the push queue, until the connection ends."""
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                self._heard = asyncio.get_running_loop().time()
                self._receive(json.loads(raw))

    def _receive(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "result" and frame.get("id") in self._waiting:
            future = self._waiting.pop(frame["id"]).future
            if future is not None and not future.done():
                future.set_result(frame)
            return
        if kind in ("snapshot", "event") and isinstance(frame.get("seq"), int):
            self.last_seq = frame["seq"]
        elif kind == "nodes" and self.nodes is not None:
            self.nodes.announce(frame.get("nodes") or ())
            self.identity = {**self.identity, "node": frame.get("node"), "nodes": frame.get("nodes") or []}
        if self.pushed.full():
            self.pushed.get_nowait()
        self.pushed.put_nowait(frame)

    async def _read_until_closed(self, ws: ClientConnection) -> None:
        try:
            await self._read(ws)
        finally:
            self._end(ConnectionError("connection to the hub closed"))

    # -- failover -------------------------------------------------------------------------------------

    async def _keep_connected(self, open_timeout: float) -> None:
        """Connect, serve until the connection ends or goes silent, back off, try the next node; until closed or
        refused (tokens are valid on every node, so a refusal is final)."""
        assert self.nodes is not None and self.failover is not None
        options, attempt = self.failover, 0
        try:
            while True:
                url = self.nodes.pick()
                try:
                    ws, identity = await asyncio.wait_for(self._open(url, open_timeout), open_timeout)
                except AuthFailed as exc:
                    self._end(exc)
                    return
                except (OSError, websockets.WebSocketException) as exc:  # TimeoutError is an OSError
                    why: BaseException = exc
                else:
                    attempt = 0
                    why = await self._serve(url, ws, identity)
                delay = backoff(attempt, options.backoff_base, options.backoff_cap)
                attempt += 1
                if options.on_retry is not None:
                    options.on_retry(url, why, delay)
                await asyncio.sleep(delay)
        finally:  # closed, or a bug: nothing waits for a node this task will no longer look for
            if not self.closed.is_set():
                self._end(ConnectionError("the hub client was closed"))

    async def _serve(self, url: str, ws: ClientConnection, identity: dict[str, Any]) -> BaseException:
        """One node's connection, from its auth_ok to its end; returns why it ended."""
        assert self.nodes is not None and self.failover is not None
        self.ws, self.url, self.identity = ws, url, identity
        self.nodes.connected(url)
        self.nodes.announce(identity.get("nodes") or ())
        self._heard = asyncio.get_running_loop().time()
        reader = asyncio.create_task(self._read(ws))
        watchdog = asyncio.create_task(self._watch(ws))
        try:
            await self._resend(ws)
            if self.failover.on_connect is not None:
                self.failover.on_connect(url, identity)
            await reader
        except websockets.ConnectionClosed:
            pass
        finally:
            self.online.clear()
            for task in (reader, watchdog):
                task.cancel()
            await asyncio.gather(reader, watchdog, return_exceptions=True)
            self._unsend()
        if watchdog.done() and not watchdog.cancelled():
            return TimeoutError(f"no frame from the hub for {DEAD_AFTER:g} s")
        return ConnectionError(f"connection closed (code {ws.close_code})")

    async def _resend(self, ws: ClientConnection) -> None:
        """Every unanswered command again, in order and with its op_id; the subscription from the last seq held.
        Commands sent meanwhile are queued and go in the same pass; then the client is online."""
        subscribing = any(c.frame["type"] == "subscribe" for c in self._waiting.values())
        if self._subscription is not None and not subscribing:
            msg_id = next(self._ids)
            self._waiting[msg_id] = _Command({"id": msg_id, "type": "subscribe", **self._subscription}, None)
        while unsent := [c for c in self._waiting.values() if not c.sent]:
            for command in unsent:
                if command.frame["type"] == "subscribe" and self.last_seq is not None:
                    command.frame["since"] = self.last_seq
                command.sent = True
                await ws.send(json.dumps(command.frame, ensure_ascii=False))
        self.online.set()

    def _unsend(self) -> None:
        """After a lost connection every waiting command goes again on the next, but pings: a round trip measures
        one connection, so a ping fails with it (the caller pings the next one)."""
        for msg_id, command in list(self._waiting.items()):
            command.sent = False
            if command.frame["type"] == "ping":
                del self._waiting[msg_id]
                if command.future is not None and not command.future.done():
                    command.future.set_exception(ConnectionError("the connection this ping measured closed"))

    async def _watch(self, ws: ClientConnection) -> None:
        """Ping after PING_AFTER s without a frame; abort after DEAD_AFTER s without one: a node that stopped,
        or a network gone, without closing the TCP connection."""
        loop = asyncio.get_running_loop()
        pinged = 0.0
        while True:
            quiet = loop.time() - self._heard
            if quiet >= DEAD_AFTER:
                ws.transport.abort()
                return
            if quiet >= PING_AFTER and pinged <= self._heard:
                pinged = loop.time()
                msg_id = next(self._ids)
                self._waiting[msg_id] = _Command({"id": msg_id, "type": "ping"}, None, sent=True)
                with contextlib.suppress(websockets.ConnectionClosed):
                    await ws.send(json.dumps({"id": msg_id, "type": "ping"}))
            due = self._heard + (DEAD_AFTER if pinged > self._heard else PING_AFTER)
            await asyncio.sleep(max(0.05, due - loop.time()))

    async def wait_online(self) -> None:
        """Return once connected and authenticated; raise AuthFailed or ConnectionError if the client has ended."""
        waits = [asyncio.ensure_future(self.online.wait()), asyncio.ensure_future(self.closed.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        if not self.online.is_set():
            raise self._gone()

    def _gone(self) -> Exception:
        """A fresh exception saying why this client carries no more commands."""
        if isinstance(self._ended, AuthFailed):
            return AuthFailed(str(self._ended))
        return ConnectionError(str(self._ended or "connect() first"))

    def _end(self, why: BaseException) -> None:
        self._ended = why
        self.online.clear()
        self.closed.set()
        for command in self._waiting.values():
            if command.future is not None and not command.future.done():
                command.future.set_exception(self._gone())
        self._waiting.clear()

    # -- commands -------------------------------------------------------------------------------------

    async def send(self, type_: str, timeout: float = 30, **fields: Any) -> dict[str, Any]:
        """Send one command and return its whole answer frame (success or not). With failover, a command not
        answered when its connection ends goes again on the next, until `timeout`."""
        if type_ not in NO_OP_ID and "op_id" not in fields:
            fields["op_id"] = new_op_id()
        msg_id = next(self._ids)
        frame = {"id": msg_id, "type": type_, **fields}
        command = _Command(frame, asyncio.get_running_loop().create_future())
        if self.failover is None:
            await self._send_now(command)
        else:
            if self.closed.is_set():
                raise self._gone()
            if type_ == "subscribe":
                self._subscription = {k: v for k, v in fields.items() if k != "since"}
            self._waiting[msg_id] = command
            if self.online.is_set():
                command.sent = True
                with contextlib.suppress(websockets.ConnectionClosed):  # then it goes again on the next connection
                    await self.ws.send(json.dumps(frame, ensure_ascii=False))  # type: ignore[union-attr]
        assert command.future is not None
        try:
            return await asyncio.wait_for(command.future, timeout)
        finally:
            self._waiting.pop(msg_id, None)

    async def _send_now(self, command: _Command) -> None:
        assert self.ws is not None, "connect() first"
        assert command.future is not None
        self._waiting[command.frame["id"]] = command
        try:
            await self.ws.send(json.dumps(command.frame, ensure_ascii=False))
        except BaseException:
            self._waiting.pop(command.frame["id"], None)
            command.future.cancel()  # never sent: nobody will await its answer
            raise

    async def call(self, type_: str, **fields: Any) -> dict[str, Any]:
        """Send one command and return its result, raising CommandFailed on an error answer."""
        frame = await self.send(type_, **fields)
        if not frame["success"]:
            raise CommandFailed(frame["error"]["code"], frame["error"]["message"])
        return frame["result"]

    async def send_raw(self, data: str | bytes) -> None:
        assert self.ws is not None
        await self.ws.send(data)

    async def next_push(self, predicate: Callable[[dict[str, Any]], bool] = lambda f: True,
                        timeout: float = 5) -> dict[str, Any]:
        """The next pushed frame that matches, skipping others; TimeoutError if none comes in time."""
        async def wait() -> dict[str, Any]:
            while True:
                frame = await self.pushed.get()
                if predicate(frame):
                    return frame
        return await asyncio.wait_for(wait(), timeout)

    async def close(self) -> None:
        if self.failover is not None and self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self.ws is not None:
            await self.ws.close()
        if self.failover is None and self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
