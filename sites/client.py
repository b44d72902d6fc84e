"""A small websocket client for the hub's protocol, shared by the site agent, the simulator, the load
generator and the tests: auth, numbered commands matched to their answers, pushed frames in a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection


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


class HubClient:
    """One authenticated connection. `call` sends a command and waits for its own answer."""

    def __init__(self, url: str, token: str, origin: str | None = None, max_queue: int = 10000) -> None:
        self.url, self.token, self.origin = url, token, origin
        self.ws: ClientConnection | None = None
        self.identity: dict[str, Any] = {}
        self.pushed: asyncio.Queue[dict[str, Any]] = asyncio.Queue(max_queue)
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    async def __aenter__(self) -> HubClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self, open_timeout: float = 10) -> dict[str, Any]:
        headers = {"Origin": self.origin} if self.origin else None
        self.ws = await websockets.connect(self.url, open_timeout=open_timeout, max_size=2**24,
                                           additional_headers=headers, max_queue=None)
        await self.ws.send(json.dumps({"type": "auth", "token": self.token}))
        reply = json.loads(await asyncio.wait_for(self.ws.recv(), open_timeout))
        if reply.get("type") != "auth_ok":
            await self.ws.close()
            raise AuthFailed(reply.get("message", str(reply)))
        self.identity = reply
        self.closed.clear()
        self._reader = asyncio.create_task(self._read())
        return reply

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                if frame.get("type") == "result" and frame.get("id") in self._waiting:
                    future = self._waiting.pop(frame["id"])
                    if not future.done():
                        future.set_result(frame)
                elif self.pushed.full():
                    self.pushed.get_nowait()
                    self.pushed.put_nowait(frame)
                else:
                    self.pushed.put_nowait(frame)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ConnectionError("connection to the hub closed"))
            self._waiting.clear()

    async def send(self, type_: str, timeout: float = 30, **fields: Any) -> dict[str, Any]:
        """Send one command and return its whole answer frame (success or not)."""
        if type_ not in NO_OP_ID and "op_id" not in fields:
            fields["op_id"] = new_op_id()
        msg_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = future
        assert self.ws is not None, "connect() first"
        try:
            await self.ws.send(json.dumps({"id": msg_id, "type": type_, **fields}, ensure_ascii=False))
        except BaseException:
            self._waiting.pop(msg_id, None)
            future.cancel()  # never sent: nobody will await its answer
            raise
        return await asyncio.wait_for(future, timeout)

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
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
