"""Connecting to the cluster's NATS servers: the first time within a deadline, with a clear error; after that, for ever.

nats-py's `connect` with unlimited reconnects never gives up on its first connect; here it does after
`seconds`, so a command pointed at the wrong address (or at a cluster not started) says so instead of hanging.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import nats.errors
from nats.aio.client import Client
from nats.js.errors import ServiceUnavailableError

from hub.log.base import StoreError

CONNECT_SECONDS = 10.0
SETUP_SECONDS = 30.0  # how long a starting node asks a cluster that does not answer JetStream requests yet

T = TypeVar("T")

log = logging.getLogger("diemcau.cluster")


async def connect(urls: list[str], name: str, seconds: float = CONNECT_SECONDS, **options: Any) -> Client:
    """A client connected to one of `urls` (then reconnecting to whichever answers, for ever), named `name` on the
    servers; StoreError naming the URLs when none answers within `seconds`. `options` go to nats-py's `connect`
    (callbacks, timeouts); errors are logged at INFO, without tracebacks, unless an `error_cb` is given."""
    client = Client()
    settings: dict[str, Any] = {"connect_timeout": 2, "reconnect_time_wait": 0.25, "max_reconnect_attempts": -1,
                                "error_cb": _log_error(name), **options}
    try:
        await asyncio.wait_for(client.connect(servers=urls, name=name, **settings), seconds)
    except (TimeoutError, OSError) as exc:
        with contextlib.suppress(Exception):
            await client.close()
        why = f"tried for {seconds:g} s" if isinstance(exc, TimeoutError) else str(exc)
        raise StoreError(f"no NATS server answers at {', '.join(urls)} ({why})") from None
    return client


async def until_answered(what: str, ask: Callable[[], Awaitable[T]], seconds: float | None = None) -> T:
    """`ask()`, again while JetStream does not answer (a request timing out, or 503): a cluster just started or
    electing its meta leader does that for a while. StoreError naming `what` after `seconds` (SETUP_SECONDS)."""
    loop = asyncio.get_running_loop()
    seconds = SETUP_SECONDS if seconds is None else seconds
    deadline = loop.time() + seconds
    while True:
        try:
            return await ask()
        except (nats.errors.TimeoutError, ServiceUnavailableError) as exc:
            if loop.time() >= deadline:
                raise StoreError(f"JetStream did not answer about {what} within {seconds:g} s "
                                 f"({exc.__class__.__name__}): is JetStream enabled on the NATS servers, and are "
                                 "two of the three up?") from None
            log.info("JetStream not answering about %s yet (%s); asking again", what, exc.__class__.__name__)
            await asyncio.sleep(0.5)


def server_of(client: Client) -> str | None:
    """The `host:port` of the server a client is connected to (None while it is not)."""
    return client.connected_url.netloc if client.is_connected and client.connected_url else None


def _log_error(name: str) -> Any:
    async def error_cb(exc: Exception) -> None:
        log.info("%s: NATS: %r", name, exc)
    return error_cb
