"""A local server that introduces itself as an old nats-server does (its INFO, then PONG to each PING): what a
node or the doctor must refuse by version. No nats-server that old ships here, and the machine's own 2.9
service is not the tests' to use."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import orjson


@contextlib.asynccontextmanager
async def old_nats_server(version: str) -> AsyncIterator[str]:
    """The server's URL for the block, every connection greeted as nats-server `version` with JetStream on."""
    info = orjson.dumps({"server_id": "OLD", "server_name": "old", "version": version, "proto": 1, "headers": True,
                         "max_payload": 1048576, "jetstream": True})

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"INFO " + info + b"\r\n")
        with contextlib.suppress(ConnectionError):
            while line := await reader.readline():
                if line.startswith(b"PING"):
                    writer.write(b"PONG\r\n")
                    await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    async with server:
        yield f"nats://127.0.0.1:{server.sockets[0].getsockname()[1]}"
