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
from nats.js.errors import APIError, ServiceUnavailableError

from hub.log.base import StoreError

CONNECT_SECONDS = 10.0
AUTH_REFUSED = "Authorization Violation"  # the servers' -ERR to a missing or wrong token
SETUP_SECONDS = 30.0  # how long a starting node asks a cluster that does not answer JetStream requests yet
NO_PEERS = 10005  # "no suitable peers for placement": healthy servers not yet all known online to the meta leader

T = TypeVar("T")

log = logging.getLogger("diemcau.cluster")


async def connect(urls: list[str], name: str, seconds: float = CONNECT_SECONDS, token: str | None = None,
                  **options: Any) -> Client:
    """A client connected to one of `urls` (then reconnecting to whichever answers, for ever), named `name` on the
    servers and giving `token` if the servers require one; StoreError naming the URLs when none answers within
    `seconds`, at once when they refuse the token. `options` go to nats-py's `connect` (callbacks, timeouts);
    errors are logged at INFO, without tracebacks, unless an `error_cb` is given."""
    client = Client()
    refused = asyncio.get_running_loop().create_future()
    told = options.pop("error_cb", None) or _log_error(name)

    async def error_cb(exc: Exception) -> None:
        if AUTH_REFUSED in str(exc) and not refused.done():  # nats-py would try again for ever
            refused.set_result(None)
        await told(exc)

    settings: dict[str, Any] = {"connect_timeout": 2, "reconnect_time_wait": 0.25, "max_reconnect_attempts": -1,
                                **options, "error_cb": error_cb}
    connecting = asyncio.ensure_future(client.connect(servers=urls, name=name, token=token, **settings))
    servers = ", ".join(urls)
    try:
        done, _ = await asyncio.wait([connecting, refused], timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        if connecting in done:
            connecting.result()
            return client
        if refused.done():
            hint = "give the cluster's token with --nats-token-file" if token is None else \
                "is --nats-token-file the cluster's token?"
            problem = f"the NATS servers at {servers} refused this client: {hint}"
        else:
            problem = f"no NATS server answers at {servers} (tried for {seconds:g} s)"
    except OSError as exc:
        problem = f"no NATS server answers at {servers} ({exc})"
    connecting.cancel()
    await asyncio.gather(connecting, return_exceptions=True)
    with contextlib.suppress(Exception):
        await client.close()
    raise StoreError(problem)


def transient(exc: BaseException) -> bool:
    """A JetStream answer that asking again a little later may change: no answer in time, no responders (503),
    or a stream's replicas not placeable yet because the meta leader has not seen every server online."""
    if isinstance(exc, (nats.errors.TimeoutError, ServiceUnavailableError)):
        return True
    return isinstance(exc, APIError) and (exc.err_code == NO_PEERS or "no suitable peers" in (exc.description or ""))


async def until_answered(what: str, ask: Callable[[], Awaitable[T]], seconds: float | None = None) -> T:
    """`ask()`, again while JetStream's answer is `transient`: a cluster just started or electing its meta leader
    answers so for a while. StoreError naming `what` after `seconds` (SETUP_SECONDS)."""
    loop = asyncio.get_running_loop()
    seconds = SETUP_SECONDS if seconds is None else seconds
    deadline = loop.time() + seconds
    while True:
        try:
            return await ask()
        except (nats.errors.TimeoutError, APIError) as exc:
            if not transient(exc):
                raise
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
