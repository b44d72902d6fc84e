"""One websocket client's life: authenticate, then read commands while answers and pushes flow out.

Reading never waits for storage: each command's answer is queued in order and sent when its batch is
durable (the hub calls `send_answers` after each commit). A frame goes straight to an idle socket;
otherwise through a bounded queue drained by a writer task, and a client that stops reading fills it
and is dropped, so it never slows the hub or anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from hub.core.errors import INTERNAL_ERROR, Answer, HubError, InvalidFormat, Outcome, RateLimited, Subscription
from hub.protocol.messages import (
    CLOSE_GOING_AWAY,
    CLOSE_POLICY,
    CLOSE_SLOW,
    auth_invalid,
    auth_ok,
    decode,
    encode,
    result_error,
    result_ok,
    text_frame,
)
from hub.roles import UNLIMITED
from hub.tokens import Identity

if TYPE_CHECKING:
    from hub.core.hub import Hub

log = logging.getLogger("diemcau.ws")
AUTH_TIMEOUT = 10.0
PENDING_ANSWERS = 1024
DIRECT_WRITE_LIMIT = 256 * 1024  # bytes already waiting in a socket's buffer before pushes queue instead
FLOOD_STRIKES = 200  # rate-limited frames in a row before the connection is closed
MAX_SAFE_ID = 2**53
FOLD_WAIT_SECONDS = 2.0  # a cluster node behind a subscriber's `since`: how long the subscribe waits for its fold


def _frame_id(data: bytes) -> int | None:
    """The id of a frame refused for its size, so the client still gets its one answer."""
    try:
        frame = decode(data)
    except HubError:
        return None
    msg_id = frame.get("id") if isinstance(frame, dict) else None
    return msg_id if isinstance(msg_id, int) and not isinstance(msg_id, bool) else None


class TokenBucket:
    """Per-connection rate limit: `rate` commands a second on average, bursts up to `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.stamp = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Connection:
    """A websocket client after the handshake."""

    def __init__(self, hub: Hub, ws: web.WebSocketResponse, peer: str, transport: asyncio.Transport | None = None
                 ) -> None:
        self.hub, self.ws, self.peer, self.transport = hub, ws, peer, transport
        self.sending = False  # the writer holds a frame it has taken from the outbox but not yet written
        limits = hub.config.limits
        self.who: Identity | None = None
        self.outbox: asyncio.Queue[bytes] = asyncio.Queue(limits.send_queue_frames)
        self.answers: deque[tuple[Any, Outcome]] = deque()  # by message id, in command order
        self._room = asyncio.Event()  # set while fewer than PENDING_ANSWERS answers wait
        self.bucket = TokenBucket(limits.rate_per_second, limits.rate_burst)
        self.strikes = 0
        self.closing = False
        self.caught_up = -1  # the state version its catch-up holds: a tick at or below it is news to nobody here
        self._fold_wait: float | None = None  # until when a subscribe from a seq this node has not folded waits

    async def run(self) -> None:
        """Serve the connection until it closes; always leaves the hub's sets clean."""
        self.hub.connections.add(self)
        writer = asyncio.create_task(self._writer())
        try:
            if await self._authenticate():
                await self._read_loop()
        finally:
            self.hub.connections.discard(self)
            self.hub.fanout.subscribers.discard(self)
            self.hub.awaiting_disk.discard(self)
            self.answers.clear()  # nobody will read them; their changes are stored (or not) regardless
            try:
                if not self.ws.closed:
                    with contextlib.suppress(asyncio.QueueFull):
                        self.outbox.put_nowait(b"")  # let the writer drain what is queued, then stop
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(asyncio.shield(writer), 2)
            finally:
                writer.cancel()
                await asyncio.gather(writer, return_exceptions=True)

    async def _authenticate(self) -> bool:
        try:
            msg = await self.ws.receive(timeout=AUTH_TIMEOUT)
        except asyncio.TimeoutError:
            await self._refuse("no auth frame within 10 seconds")
            return False
        if msg.type != WSMsgType.TEXT:
            if msg.type in (WSMsgType.BINARY,):
                await self._refuse("the first frame must be {\"type\": \"auth\", \"token\": \"...\"}")
            return False
        try:
            frame = decode(msg.data)
        except HubError as exc:
            await self._refuse(exc.message)
            return False
        if not isinstance(frame, dict) or frame.get("type") != "auth":
            await self._refuse("the first frame must be {\"type\": \"auth\", \"token\": \"...\"}")
            return False
        who = await self.hub.authenticate(frame.get("token"))
        if who is None:
            await self._refuse("unknown or revoked token")
            return False
        self.who = who
        self.push(encode(auth_ok(who.role, who.site, who.agency, self.hub.node_name, self.hub.node_urls())))
        log.info("connected: %s %s%s from %s", who.token_id, who.role, f" {who.site}" if who.site else "", self.peer)
        return True

    async def _refuse(self, message: str) -> None:
        with contextlib.suppress(Exception):
            await self.ws.send_frame(encode(auth_invalid(message)), WSMsgType.TEXT)
        await self.ws.close(code=CLOSE_POLICY, message=b"authentication failed")

    async def _read_loop(self) -> None:
        limit = self.hub.config.limits.max_frame_bytes
        async for msg in self.ws:
            if msg.type == WSMsgType.TEXT:
                data = msg.data
                if len(data) > limit:
                    error = InvalidFormat(f"frame of {len(data)} bytes is over the {limit}-byte limit")
                    self._answer(_frame_id(data), error)
                else:
                    self._handle(data)
            elif msg.type == WSMsgType.BINARY:
                self._answer(None, InvalidFormat("binary frames are not accepted; send JSON text frames"))
            elif msg.type == WSMsgType.ERROR:
                log.info("connection %s ended with an error: %s", self.peer, self.ws.exception())
                break
            if self.strikes > FLOOD_STRIKES:
                await self.close(CLOSE_POLICY, "rate limit exceeded")
            if self.closing:
                break
            if len(self.answers) >= PENDING_ANSWERS:  # far ahead of the disk: read on once answers go out
                self._room.clear()
                await self._room.wait()

    def _handle(self, data: str | bytes) -> None:
        """Parse, check and run one command frame; every path answers exactly once."""
        assert self.who is not None
        msg_id: Any = None
        try:
            frame = decode(data)
            if not isinstance(frame, dict):
                raise InvalidFormat("a command frame is a JSON object with id and type")
            msg_id = frame.pop("id", None)
            if isinstance(msg_id, bool) or not isinstance(msg_id, int) or not -MAX_SAFE_ID < msg_id < MAX_SAFE_ID:
                bad, msg_id = msg_id, None
                past = isinstance(bad, int) and not isinstance(bad, bool)
                got = "an integer past 2^53" if past else type(bad).__name__
                raise InvalidFormat(f"id must be an integer within ±2^53 (a browser's safe integers), got {got}")
            if self.who.role not in UNLIMITED and not self.bucket.take():
                self.strikes += 1  # past FLOOD_STRIKES in a row, the read loop closes the connection
                raise RateLimited("too many commands; slow down")
            self.strikes = 0
            type_, op_id = frame.pop("type", None), frame.pop("op_id", None)
            self._answer(msg_id, self.hub.dispatch(self.who, type_, frame, op_id))
        except HubError as exc:
            self._answer(msg_id, exc)
        except Exception:
            log.exception("command failed on %s", self.peer)
            self._answer(msg_id, HubError("the hub could not carry out this command"))

    def _answer(self, msg_id: Any, outcome: Outcome) -> None:
        self.answers.append((msg_id, outcome))
        if len(self.answers) == 1:  # otherwise the first is waiting for the disk, and this one behind it
            self.send_answers()

    def send_answers(self) -> None:
        """Send the answers whose turn has come, in command order, each once its change is durable.

        When the next one still waits for a commit, the connection is listed in the hub's
        `awaiting_disk`, and the hub calls this again after the commit.
        """
        hub, answers = self.hub, self.answers
        ready: list[bytes] = []  # written together: a commit frees several answers at once under load
        while answers:
            msg_id, outcome = answers[0]
            if isinstance(outcome, Answer):
                if not outcome.ready(hub.log.durable_seq):
                    hub.awaiting_disk.add(self)
                    break
                frame = self._result(msg_id, outcome)
            elif isinstance(outcome, Subscription):
                if self._fold_behind(outcome.since):
                    hub.awaiting_disk.add(self)
                    break
                answers.popleft()
                result, catch_up = hub.fanout.subscribe(self, outcome.since)
                self.send_all([*ready, encode(result_ok(msg_id, result))])
                ready = []
                hub.fanout.catch_up(self, result["seq"], catch_up)
                continue
            else:
                hub.stats.count(hub.stats.errors, outcome.code)
                frame = result_error(msg_id, outcome.code, outcome.message)
            answers.popleft()
            ready.append(encode(frame))
        if ready:
            self.send_all(ready)
        if len(answers) < PENDING_ANSWERS:
            self._room.set()

    def _fold_behind(self, since: int | None) -> bool:
        """Whether a subscribe from `since` waits for this node's fold (at most FOLD_WAIT_SECONDS): a client that
        comes from a node further ahead then resumes with a delta; past the wait it gets a snapshot."""
        if since is None or since <= self.hub.state.seq or self.hub.cluster is None:
            self._fold_wait = None
            return False
        loop = asyncio.get_running_loop()
        if self._fold_wait is None:
            self._fold_wait = loop.time() + FOLD_WAIT_SECONDS
            loop.call_later(FOLD_WAIT_SECONDS, self.send_answers)
        if loop.time() < self._fold_wait:
            return True
        self._fold_wait = None
        return False

    def _result(self, msg_id: Any, answer: Answer) -> dict[str, Any]:
        error = answer.write.exception() if answer.write is not None else None
        if error is None:
            return result_ok(msg_id, answer.result)
        if isinstance(error, HubError):  # the deciding node refused a forwarded command
            self.hub.stats.count(self.hub.stats.errors, error.code)
            return result_error(msg_id, error.code, error.message)
        log.error("command %s from %s failed to store: %s", msg_id, self.peer, error)
        self.hub.stats.count(self.hub.stats.errors, INTERNAL_ERROR)
        return result_error(msg_id, INTERNAL_ERROR, "the change could not be stored; retry with the same op_id")

    def push(self, data: bytes) -> None:
        """Queue a frame to go out after those queued before it.

        A client too slow to take its frames is dropped rather than slowing everyone.
        """
        if self.closing:
            return
        try:
            self.outbox.put_nowait(data)
        except asyncio.QueueFull:
            self.hub.stats.slow_dropped += 1
            who = self.who or Identity("?", "?")
            log.warning("dropping slow client %s (token %s, %s%s): %d frames queued", self.peer, who.token_id, who.role,
                        f" site {who.site}" if who.site else "", self.outbox.qsize(),
                        extra={"fields": {"event": "client.dropped", "token_id": who.token_id, "role": who.role,
                                          "site": who.site, "peer": self.peer}})
            self.closing = True
            self.hub.fanout.subscribers.discard(self)
            asyncio.get_running_loop().create_task(self.ws.close(code=CLOSE_SLOW, message=b"too slow to keep up"))

    def send(self, data: bytes, framed: bytes) -> None:
        """A pushed frame to go out now: written straight to an idle socket, else queued in order.

        `framed` is the same frame with its websocket header, framed once for every subscriber.
        Only when nothing is queued or being written, so frames never overtake each other; a socket whose
        kernel buffer is backing up goes through the queue, where a slow reader is caught and dropped.
        """
        if self._idle():
            self.transport.write(framed)  # type: ignore[union-attr]
        else:
            self.push(data)

    def send_all(self, frames: list[bytes]) -> None:
        """Several frames to go out now, in order: one write (one system call) to an idle socket."""
        if self._idle():
            framed = text_frame(frames[0]) if len(frames) == 1 else b"".join([text_frame(data) for data in frames])
            self.transport.write(framed)  # type: ignore[union-attr]
        else:
            for data in frames:
                self.push(data)

    def _idle(self) -> bool:
        """Whether a frame may be written straight to the socket, ahead of nothing: see `send`."""
        transport = self.transport
        return (self.outbox.empty() and not self.sending and not self.closing and not self.ws.closed
                and transport is not None and not transport.is_closing()
                and transport.get_write_buffer_size() < DIRECT_WRITE_LIMIT)

    async def _writer(self) -> None:
        while True:
            data = await self.outbox.get()
            if not data:
                return
            self.sending = True
            try:
                await self.ws.send_frame(data, WSMsgType.TEXT)
            except (ConnectionError, RuntimeError):
                return
            self.sending = False

    async def close(self, code: int, reason: str) -> None:
        self.closing = True
        self.hub.fanout.subscribers.discard(self)
        await self.ws.close(code=code, message=reason.encode()[:120])

    async def close_going_away(self) -> None:
        await self.close(CLOSE_GOING_AWAY, "hub shutting down")
