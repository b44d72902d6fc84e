"""The site agent: runs on the hall's PC and keeps telling the hub the hall is alive and how good its link is.

Every interval it measures the round trip to the hub (a `ping`), optionally whether the video bridge
answers, and the PC's load, and sends them as a `site.heartbeat`. When the hub (or one node of a cluster)
goes away its client fails over to another node, retrying with full-jitter backoff, so a hundred halls do
not all knock at the same second.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import click
import httpx

from hub.stopping import run_stoppable

from .client import AuthFailed, CommandFailed, Failover, HubClient
from .nodes import ws_url

log = logging.getLogger("diemcau.agent")


class AgentError(Exception):
    """A problem retrying cannot fix (a refused token, a token for the wrong role)."""


@dataclass(frozen=True)
class AgentOptions:
    hub: str
    token: str
    interval: float = 5.0
    bridge_url: str | None = None
    backoff_start: float = 0.5
    backoff_cap: float = 10.0
    nodes: tuple[str, ...] = ()  # a cluster's other nodes; the hub announces the live ones as well


class Agent:
    """Connect, then heartbeat every interval on whichever node is up; cancel the task to stop."""

    def __init__(self, options: AgentOptions) -> None:
        self.options = options
        self.url = ws_url(options.hub)
        self.nodes = tuple(ws_url(node) for node in options.nodes)
        self.link: str | None = None
        self.bridge_ok: bool | None = None
        self.heartbeats = 0

    async def run(self) -> None:
        failover = Failover(self.nodes, self.options.backoff_start, self.options.backoff_cap, _connected, _lost)
        async with httpx.AsyncClient(timeout=min(3.0, max(0.5, self.options.interval))) as http:
            client = HubClient(self.url, self.options.token, failover=failover)
            try:
                await self._connect(client)
                await self._beat(client, http)
            finally:
                await client.close()

    async def _connect(self, client: HubClient) -> None:
        try:
            identity = await client.connect()
        except AuthFailed as exc:
            raise _refused(exc) from None
        if identity.get("role") != "technician" or not identity.get("site"):
            raise AgentError(f"this token is for role {identity.get('role')}, not for a site's technician")

    async def _beat(self, client: HubClient, http: httpx.AsyncClient) -> None:
        """Heartbeat every interval, on whichever node the client is connected to, until cancelled or refused."""
        site = client.identity["site"]
        while True:
            try:
                await client.wait_online()  # a round trip measured across a reconnection would say nothing
                measurements = await self.measure(client, http)
                result = await client.call("site.heartbeat", site=site, **measurements)
            except AuthFailed as exc:  # the token was revoked
                raise _refused(exc) from None
            except CommandFailed as exc:
                log.warning("hub did not take the heartbeat: %s", exc)
            except OSError as exc:  # the connection went during the ping, or no node answered in time
                log.debug("heartbeat skipped: %s", _why(exc))
            else:
                self.heartbeats += 1
                self._note_link(result.get("link"), measurements["rtt_ms"])
            await asyncio.sleep(self.options.interval)

    async def measure(self, client: HubClient, http: httpx.AsyncClient) -> dict[str, Any]:
        """Round trip to the hub, the PC's load and, if asked, the video bridge's reachability."""
        started = time.perf_counter()
        answer = await client.send("ping", timeout=max(5.0, 2 * self.options.interval), sent=time.time())
        if not answer.get("success"):
            raise ConnectionError(f"ping failed: {answer.get('error')}")
        out: dict[str, Any] = {"rtt_ms": round((time.perf_counter() - started) * 1000, 1)}
        if hasattr(os, "getloadavg"):
            out["load1"] = round(os.getloadavg()[0], 2)
        if self.options.bridge_url:
            out.update(await self.bridge(http, self.options.bridge_url))
        return out

    async def bridge(self, http: httpx.AsyncClient, url: str) -> dict[str, Any]:
        """Whether the video bridge answers from this hall (any HTTP answer below 500), and how fast."""
        started = time.perf_counter()
        try:
            response = await http.get(url)
            ok, result = response.status_code < 500, {"bridge_ms": round((time.perf_counter() - started) * 1000, 1)}
        except httpx.HTTPError as exc:
            ok, result = False, {}
            reason = _why(exc)
        else:
            reason = f"HTTP {response.status_code}"
        if ok != self.bridge_ok:
            level = logging.INFO if ok else logging.WARNING
            log.log(level, "Cầu truyền hình %s: %s (%s)", url, "kết nối được" if ok else "KHÔNG kết nối được", reason)
        self.bridge_ok = ok
        return {**result, "bridge_ok": ok}

    def _note_link(self, link: str | None, rtt: float) -> None:
        if link != self.link:
            if link == "poor":
                log.warning("Đường truyền chậm: %.0f ms tới hub (link poor)", rtt)
            else:
                log.info("Đường truyền tốt: %.0f ms tới hub (link %s)", rtt, link)
        else:
            log.debug("heartbeat: %.1f ms", rtt)
        self.link = link


def _connected(url: str, identity: dict[str, Any]) -> None:
    node = f", nút {identity['node']}" if identity.get("node") else ""
    log.info("Đã kết nối hub %s%s — điểm cầu %s (connected)", url, node, identity.get("site"))


def _lost(url: str, why: BaseException, delay: float) -> None:
    log.warning("Mất kết nối tới hub %s (%s); thử lại sau %.1f s", url, _why(why), delay)


def _refused(exc: AuthFailed) -> AgentError:
    return AgentError(f"hub refused the token ({exc}); ask the organisers for a technician link")


def _why(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@click.command("agent")
@click.option("--hub", "hub_url", required=True,
              help="The hub's address, e.g. http://192.168.1.10:8080; a cluster's nodes separated by commas.")
@click.option("--token", required=True, envvar="DIEMCAU_TOKEN", help="The site's technician token (or DIEMCAU_TOKEN).")
@click.option("--interval", default=5.0, show_default=True, type=click.FloatRange(0.5, 300),
              help="Seconds between heartbeats; keep it below the hub's heartbeat timeout.")
@click.option("--bridge-url", help="Also check that this hall reaches the video bridge, e.g. https://meet.example.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False))
def agent_command(hub_url: str, token: str, interval: float, bridge_url: str | None, log_level: str) -> None:
    """Run the site agent on a hall's PC: heartbeats with the measured link to the hub.

    \b
    Example:
      diemcau agent --hub http://192.168.1.10:8080 --token 'T' --bridge-url https://meet.kontum.gov.vn
    Stop with Ctrl-C (or SIGTERM).
    """
    logging.basicConfig(level=getattr(logging, log_level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(message)s", datefmt="%H:%M:%S")
    try:
        first, *others = hub_url.split(",")
        agent = Agent(AgentOptions(first, token, interval, bridge_url, nodes=tuple(others)))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--hub") from None
    try:
        run_stoppable(agent.run())
    except AgentError as exc:
        click.secho(f"Lỗi: {exc}", fg="red", err=True)
        sys.exit(1)
    click.echo(f"Đã dừng agent sau {agent.heartbeats} nhịp (agent stopped).")
