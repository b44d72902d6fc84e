"""A load-generator connection on websockets' Sans-I/O protocol: dashboards and registrars.

A thousand dashboards receive a frame each per tick: twenty thousand frames a second into one
process. Through `websockets.asyncio` each frame also passes a queue and wakes a coroutine, which
made the generator, not the hub, the slowest part of the path it measures. Here the frames are
parsed by the same library (`websockets.client.ClientProtocol`) inside `data_received`, and each
push, or each answer to a registrar, is timed when its bytes reached the process rather than when a
coroutine got round to it. Frames sent together go out in one write.

Once the connection is open, a complete unfragmented text frame is cut out of the bytes here (a hub's
frames are unmasked: a two-byte header and a length), and only the rest (pings, closes, fragments) goes
through the library's parser at a frame boundary. Its generator-based parser had been over a quarter of
the readers' core at a thousand dashboards, on the machine the hub shares.
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
OnFrame = Callable[[bytes, float], None]


class Watcher(asyncio.Protocol):
    """Authenticate (and subscribe, for a dashboard), then hand every pushed change frame to `on_push`
    with its arrival time; once `on_reply` is set, every other frame goes to it the same way."""

    def __init__(self, url: str, on_push: OnFrame) -> None:
        self.ws = ClientProtocol(parse_uri(url), max_size=None)
        self.on_push = on_push
        self.on_reply: OnFrame | None = None  # else replies queue up for `call`
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()  # every frame that is not a pushed change
        self.closed = asyncio.Event()
        self.partial = bytearray()  # the start of a frame whose end has not arrived
        self.wanted = 0  # the bytes that frame takes, once its header is in

    @classmethod
    async def connect(cls, url: str, token: str, on_push: OnFrame, subscribe: bool = True) -> Watcher:
        uri = parse_uri(url)
        _, watcher = await asyncio.get_running_loop().create_connection(lambda: cls(url, on_push), uri.host, uri.port)
        await watcher.opened
        answer = orjson.loads(await watcher.call({"type": "auth", "token": token}))
        if answer.get("type") == "auth_invalid":
            raise SystemExit(f"auth refused: {answer}")
        if subscribe and b'"mode"' in await watcher.call({"id": 1, "type": "subscribe"}):
            await watcher.replies.get()  # the hub's catch-up frame (a baseline sends none)
        return watcher

    async def call(self, message: dict[str, object]) -> bytes:
        self.send(message)
        return await self.replies.get()

    def send(self, message: dict[str, object]) -> None:
        self.queue(orjson.dumps(message))
        self.flush()

    def queue(self, data: bytes) -> None:
        """A text frame to go out with the next `flush`: frames queued together share one write."""
        self.ws.send_text(data)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self.ws.send_request(self.ws.connect())
        self.flush()

    def data_received(self, data: bytes) -> None:
        arrived = time.time()
        if not self.opened.done() or self.ws.reader.buffer:  # the handshake, or what the parser has begun
            self.ws.receive_data(data)
            self.received(arrived)
            return
        if self.partial:  # gathered until the frame it begins is whole: a snapshot comes in many reads
            self.partial += data
            if len(self.partial) < self.wanted:
                return
            data, self.partial = bytes(self.partial), bytearray()
        start, size = 0, len(data)
        self.wanted = 0
        while size - start >= 2:
            length, head = data[start + 1] & 0x7F, 2  # the mask bit is clear: the server does not mask
            if length >= 126:
                head = 4 if length == 126 else 10
                if size - start < head:
                    break
                length = int.from_bytes(data[start + 2:start + head], "big")
            end = start + head + length
            if end > size:
                self.wanted = end - start
                break
            if data[start] == 0x81:  # FIN and text
                self.dispatch(data[start + head:end], arrived)
            else:
                self.ws.receive_data(data[start:end])
                self.received(arrived)
            start = end
        if start < size:
            self.partial = bytearray(data[start:])

    def received(self, arrived: float) -> None:
        """What the library's parser has made of the bytes it was given."""
        for event in self.ws.events_received():
            if isinstance(event, Response):
                if self.ws.handshake_exc is not None:
                    self.opened.set_exception(self.ws.handshake_exc)
                else:
                    self.opened.set_result(None)
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self.dispatch(bytes(event.data), arrived)  # the parser hands out a bytearray
        self.flush()  # pongs and the closing handshake

    def dispatch(self, payload: bytes, arrived: float) -> None:
        if payload.startswith(EVENT_PREFIX):
            self.on_push(payload, arrived)
        elif self.on_reply is not None:
            self.on_reply(payload, arrived)
        else:
            self.replies.put_nowait(payload)

    def eof_received(self) -> bool:
        self.ws.receive_eof()
        self.flush()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the opening handshake"))
        self.closed.set()

    def flush(self) -> None:
        assert self.transport is not None
        chunks = self.ws.data_to_send()
        self.transport.write(b"".join(chunks))
        if b"" in chunks and self.transport.can_write_eof():  # the protocol's end of the closing handshake
            self.transport.write_eof()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.ws.send_close(1000)
            self.flush()
            self.transport.close()
