"""A dashboard connection for the load generator, on websockets' Sans-I/O protocol.

A thousand dashboards receive a frame each per tick: twenty thousand frames a second into one
process. Through `websockets.asyncio` each frame also passes a queue and wakes a coroutine, which
made the generator, not the hub, the slowest part of the path it measures. Here the frames are
parsed by the same library (`websockets.client.ClientProtocol`) inside `data_received`, and each
push is timed when its bytes reached the process rather than when a coroutine got round to it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import cast

import orjson
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

EVENT_PREFIX = b'{"type":"event"'
OnPush = Callable[[bytes, float], None]


class Watcher(asyncio.Protocol):
    """Authenticate, subscribe, then hand every pushed change frame to `on_push` with its arrival time."""

    def __init__(self, url: str, on_push: OnPush) -> None:
        self.ws = ClientProtocol(parse_uri(url), max_size=None)
        self.on_push = on_push
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()  # every frame that is not a pushed change
        self.closed = asyncio.Event()

    @classmethod
    async def connect(cls, url: str, token: str, on_push: OnPush) -> Watcher:
        uri = parse_uri(url)
        _, watcher = await asyncio.get_running_loop().create_connection(lambda: cls(url, on_push), uri.host, uri.port)
        await watcher.opened
        answer = orjson.loads(await watcher.call({"type": "auth", "token": token}))
        if answer.get("type") == "auth_invalid":
            raise SystemExit(f"auth refused: {answer}")
        if b'"mode"' in await watcher.call({"id": 1, "type": "subscribe"}):
            await watcher.replies.get()  # the hub's catch-up frame (a baseline sends none)
        return watcher

    async def call(self, message: dict[str, object]) -> bytes:
        self.send(message)
        return await self.replies.get()

    def send(self, message: dict[str, object]) -> None:
        self.ws.send_text(orjson.dumps(message))
        self._flush()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self.ws.send_request(self.ws.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        arrived = time.time()
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Response):
                if self.ws.handshake_exc is not None:
                    self.opened.set_exception(self.ws.handshake_exc)
                else:
                    self.opened.set_result(None)
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                payload = bytes(event.data)  # the parser hands out a bytearray
                if payload.startswith(EVENT_PREFIX):
                    self.on_push(payload, arrived)
                else:
                    self.replies.put_nowait(payload)
        self._flush()  # pongs and the closing handshake

    def eof_received(self) -> bool:
        self.ws.receive_eof()
        self._flush()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the opening handshake"))
        self.closed.set()

    def _flush(self) -> None:
        assert self.transport is not None
        for chunk in self.ws.data_to_send():
            if chunk:
                self.transport.write(chunk)
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.ws.send_close(1000)
            self._flush()
            self.transport.close()
