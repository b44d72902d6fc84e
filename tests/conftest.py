"""Shared fixtures: a real hub on a real socket, tokens for every role, websocket clients."""

from __future__ import annotations

import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from hub.config import Config, load_config
from hub.core.hub import Hub
from hub.tokens import TokenStore
from hub.web.app import create_app
from hub.web.keys import HUB
from sites.client import HubClient

ROOT = Path(__file__).resolve().parent.parent
KON_TUM = ROOT / "config" / "kon-tum-2023.toml"


def pytest_configure(config: pytest.Config) -> None:
    """A SIGTERM (a CI timeout, `kill`) stops the run as Ctrl-C does: the fixtures' teardowns still end every
    hub, nats-server and browser the tests started."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, interrupt)


class ManualClock:
    """A clock the test moves by hand, for status transitions without sleeping."""

    def __init__(self, start: float | None = None) -> None:
        self.now = start if start is not None else time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def config() -> Config:
    return load_config(KON_TUM)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "event.db"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


class RunningHub:
    """A hub served on a real localhost port, with helpers to mint tokens and open clients."""

    def __init__(self, server: TestServer, config: Config, db_path: Path) -> None:
        self.server, self.config, self.db_path = server, config, db_path
        self.tokens = TokenStore(db_path)
        self.clients: list[HubClient] = []

    @property
    def hub(self) -> Hub:
        return self.server.app[HUB]

    @property
    def url(self) -> str:
        return str(self.server.make_url("/")).rstrip("/")

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"

    def token(self, role: str, site: str | None = None, agency: str | None = None) -> str:
        return self.tokens.issue(role, site, agency, f"test {role}").token

    async def client(self, role: str, site: str | None = None, agency: str | None = None,
                     subscribe: bool = False) -> HubClient:
        client = HubClient(self.ws_url, self.token(role, site, agency))
        await client.connect()
        self.clients.append(client)
        if subscribe:
            await client.call("subscribe")
            await client.next_push(lambda f: f["type"] == "snapshot")
        return client

    async def close_clients(self) -> None:
        for client in self.clients:
            await client.close()


StartHub = Callable[..., Awaitable[RunningHub]]


@pytest.fixture
async def start_hub(config: Config, db_path: Path) -> AsyncIterator[StartHub]:
    """Start (and restart) real hubs on the same database; all are stopped at the end."""
    running: list[RunningHub] = []

    async def start(cfg: Config | None = None, clock: Callable[[], float] | None = None,
                    path: Path | None = None) -> RunningHub:
        server = TestServer(create_app(cfg or config, path or db_path, clock), host="127.0.0.1")
        await server.start_server()
        hub = RunningHub(server, cfg or config, path or db_path)
        running.append(hub)
        return hub

    yield start
    for hub in running:
        await hub.close_clients()
        await hub.server.close()


@pytest.fixture
async def hub(start_hub: StartHub) -> RunningHub:
    return await start_hub()


@pytest.fixture
async def clocked_hub(start_hub: StartHub, clock: ManualClock) -> RunningHub:
    return await start_hub(clock=clock)


# Page-test fixtures (real headless Chromium), available to every test module; imported last because
# tests/browser.py builds on the fixtures above.
from .browser import browser, pages  # noqa: E402,F401
