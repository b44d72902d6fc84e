"""The site agent against the real hub: heartbeats, bridge reachability, reconnecting, clean exit on signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from hub.config import Config
from hub.core.model import SiteState
from hub.stopping import stop
from hub.tokens import TokenStore
from hub.web.app import create_app
from hub.web.keys import HUB
from sites.agent import Agent, AgentError, AgentOptions, ws_url
from sites.client import new_op_id

from .conftest import ROOT, RunningHub
from .processes import ignore_sigint, spawn

SITE = "sa-thay"


async def eventually(check: Callable[[], bool], timeout: float = 10) -> None:
    async def wait() -> None:
        while not check():
            await asyncio.sleep(0.02)
    await asyncio.wait_for(wait(), timeout)


@contextlib.asynccontextmanager
async def running_agent(options: AgentOptions) -> AsyncIterator[tuple[Agent, asyncio.Task[None]]]:
    agent = Agent(options)
    task = asyncio.create_task(agent.run())
    try:
        yield agent, task
    finally:
        await stop(task)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def serve_on(config: Config, db_path: Path, port: int) -> TestServer:
    """A hub on a port of our choosing, so it can come back on the same address after a restart."""
    server = TestServer(create_app(config, db_path), host="127.0.0.1", port=port)
    await server.start_server()
    return server


def site(server: TestServer) -> SiteState:
    return server.app[HUB].state.sites[SITE]


@pytest.mark.parametrize("given, expected", [
    ("http://192.168.1.10:8080", "ws://192.168.1.10:8080/ws"),
    ("https://diemcau.kontum.gov.vn/hub/", "wss://diemcau.kontum.gov.vn/hub/ws"),
    ("ws://127.0.0.1:8080/ws", "ws://127.0.0.1:8080/ws"),
    (" http://hub:80/technician#token=x ", "ws://hub:80/technician/ws"),
])
def test_ws_url(given: str, expected: str) -> None:
    assert ws_url(given) == expected


@pytest.mark.parametrize("bad", ["192.168.1.10:8080", "ftp://hub", "http://", ""])
def test_ws_url_refuses_what_is_not_a_hub_address(bad: str) -> None:
    with pytest.raises(ValueError, match="not a hub address"):
        ws_url(bad)


def test_op_ids_sort_by_time_and_stay_unique() -> None:
    spaced = []
    for _ in range(3):
        spaced.append(new_op_id())
        time.sleep(0.002)
    burst = [new_op_id() for _ in range(10_000)]
    assert spaced == sorted(spaced) and spaced[-1] <= min(burst)  # the log's op_id index takes them at its end
    assert len(set(spaced + burst)) == 10_003
    assert all(re.fullmatch(r"[0-9a-f]{32}", op_id) for op_id in spaced + burst)
    assert abs(int(spaced[0][:12], 16) / 1000 - time.time()) < 60  # the first 12 hex digits: the time in ms


async def test_agent_heartbeats_with_measurements(hub: RunningHub) -> None:
    async def meet(request: web.Request) -> web.Response:
        return web.Response(text="Jitsi Meet")

    bridge = web.Application()
    bridge.router.add_get("/", meet)
    bridge_server = TestServer(bridge, host="127.0.0.1")
    await bridge_server.start_server()
    tech = await hub.client("technician", site=SITE)
    await tech.call("site.checkin", site=SITE, technician="A Thị Hoa")
    for item in hub.config.required_checks:
        await tech.call("site.check", site=SITE, item=item, ok=True)
    options = AgentOptions(hub.url, hub.token("technician", site=SITE), interval=0.1,
                           bridge_url=str(bridge_server.make_url("/")))
    async with running_agent(options) as (agent, _):
        await eventually(lambda: agent.heartbeats >= 3)
        state = hub.hub.state.sites[SITE]
        assert state.status == "ready" and state.link == "good"
        assert set(state.measurements) >= {"rtt_ms", "load1", "bridge_ms", "bridge_ok"}
        assert state.measurements["bridge_ok"] is True and state.measurements["rtt_ms"] > 0
        await bridge_server.close()
        await eventually(lambda: state.measurements.get("bridge_ok") is False)
        assert "bridge_ms" not in state.measurements


@pytest.mark.parametrize("role, site_id", [("viewer", None), ("registrar", SITE)])
async def test_agent_needs_a_technician_token(hub: RunningHub, role: str, site_id: str | None) -> None:
    with pytest.raises(AgentError, match="not for a site's technician"):
        await Agent(AgentOptions(hub.url, hub.token(role, site=site_id))).run()
    with pytest.raises(AgentError, match="refused the token"):
        await Agent(AgentOptions(hub.url, "abc.def")).run()


async def test_agent_waits_for_the_hub_and_reconnects_after_a_restart(
        config: Config, db_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    token = TokenStore(db_path, config.event.id).issue("technician", SITE, None, "agent test").token
    options = AgentOptions(f"http://127.0.0.1:{port}", token, interval=0.1, backoff_start=0.05, backoff_cap=0.2)
    with caplog.at_level(logging.INFO, "diemcau.agent"):
        async with running_agent(options) as (agent, task):
            await eventually(lambda: "thử lại sau" in caplog.text)  # no hub yet: it keeps retrying
            first = await serve_on(config, db_path, port)
            await eventually(lambda: agent.heartbeats >= 2)
            await first.close()
            seen = agent.heartbeats
            second = await serve_on(config, db_path, port)
            try:
                await eventually(lambda: agent.heartbeats >= seen + 2)
                assert site(second).last_heartbeat is not None and not task.done()
            finally:
                await second.close()
    assert caplog.text.count("Đã kết nối hub") == 2


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_cli_agent_exits_cleanly_on_a_signal(hub: RunningHub, sig: signal.Signals) -> None:
    token = hub.token("technician", site=SITE)
    async with spawn(str(Path(sys.executable).with_name("diemcau")), "agent", "--hub", hub.url, "--token", token,
                     "--interval", "0.5", cwd=ROOT, preexec_fn=ignore_sigint,  # as a background job (`… &`) starts
                     stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) as process:
        await eventually(lambda: hub.hub.state.sites[SITE].last_heartbeat is not None, timeout=20)
        process.send_signal(sig)
        out, err = await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == 0, err.decode()
    assert out.decode().strip().splitlines()[-1].startswith("Đã dừng agent sau")
    assert "Traceback" not in err.decode()
    assert "Đã kết nối hub" in err.decode() and token not in err.decode()
