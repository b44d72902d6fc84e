"""The rehearsal simulator: plays a meeting day against any hub through its public websocket protocol.

Every technician, registrar and the moderator is its own connection, sending exactly what the pages
send. Tokens come from the hub's database (`--db`, same machine) or one admin token (`--token`) that
acts for every hall. `serve --simulate` runs it inside the hub's process for `make demo`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hub.config import Config, ConfigError, Site, load_config
from hub.log.base import StoreError
from hub.stopping import run_stoppable, stop
from hub.tokens import TokenStore
from hub.web.keys import HUB

from .client import AuthFailed, CommandFailed, Failover, HubClient, new_op_id
from .nodes import ws_url
from .scenario import Plan, Ref, Step, generate_questions, plan, questions_file, read_questions

if TYPE_CHECKING:
    from hub.core.hub import Hub

log = logging.getLogger("diemcau.simulator")
TokenFor = Callable[[str, str | None], str]  # (role, site) -> token
RETRIES = 6
CONNECT_SECONDS = 10.0  # an actor's connection tries the hub's nodes this long before its command counts a retry
MIN_HEARTBEAT_SECONDS = 0.25
WATCH_POLL_SECONDS = 0.2


def local_ws_url(host: str, port: int) -> str:
    """How a process on the hub's own machine reaches it when it binds `host`."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"ws://{f'[{host}]' if ':' in host else host}:{port}/ws"


def db_tokens(db_path: Path, config: Config) -> TokenFor:
    """Mint one token per actor in the hub's database; their secrets live only in this process."""
    store = TokenStore(db_path, config.event.id)

    def token_for(role: str, site: str | None) -> str:
        return store.issue(role, site, None, "simulator").token
    return token_for


def choose_sites(config: Config, limit: int | None, exclude: tuple[str, ...] = ()) -> list[Site]:
    """The halls to simulate: every one not left to real people, the first `limit` of them."""
    unknown = [s for s in exclude if s not in config.site_ids]
    if unknown:
        raise ValueError(f"unknown site(s): {', '.join(unknown)}")
    sites = [s for s in config.sites if s.id not in exclude]
    return sites[:limit] if limit else sites


def day_plan(config: Config, config_path: Path | None, sites: list[Site], seed: int, speed: float = 1.0) -> Plan:
    """The day for these halls at this speed: the config's own questions file if it has one, else generated ones."""
    rng = random.Random(seed)
    path = questions_file(config_path) if config_path else None
    questions = read_questions(path) if path and path.exists() else generate_questions(config, sites, rng)
    return plan(config, sites, rng, questions, speed)


class Simulator:
    """Runs a plan: one connection per actor, steps at their scenario time divided by `speed`. Each actor's
    connection fails over to the hub's other nodes (`nodes`, and those the hub announces) by itself."""

    def __init__(self, url: str, config: Config, token_for: TokenFor, day: Plan, *, speed: float = 10,
                 seed: int = 0, linger: bool = False, nodes: tuple[str, ...] = ()) -> None:
        self.url, self.config, self.token_for, self.day, self.nodes = url, config, token_for, day, nodes
        self.speed, self.seed, self.linger = speed, seed, linger
        self.clients: dict[str, HubClient] = {}
        self.tokens: dict[str, str] = {}
        self.refs: dict[str, str] = {}
        self.heartbeats: dict[str, asyncio.Task[None]] = {}
        self.failures = 0
        self.closing = False  # a cancel can be lost in a race with a closing socket; this flag cannot
        self._start = 0.0

    async def run(self) -> dict[str, Any]:
        """Play every step, then return the hub's totals as the moderator sees them."""
        loop = asyncio.get_running_loop()
        self._start = loop.time()
        try:
            for step in self.day.steps:
                await asyncio.sleep(max(0.0, self._start + step.at / self.speed - loop.time()))
                if self.closing:
                    raise asyncio.CancelledError
                await self._play(step)
            totals = await self.totals()
            log.info("done: %s of %s present, %s of %s halls ready, %s questions; %d commands failed",
                     f"{totals['attendance']:,}", f"{totals['expected']:,}", totals["sites_ready"], totals["sites"],
                     sum(totals["questions"].values()), self.failures)
            if self.linger:
                await asyncio.Event().wait()  # keep the halls' heartbeats going until stopped
            return totals
        finally:
            await self.close()

    async def totals(self) -> dict[str, Any]:
        moderator = await self.client("moderator")
        await moderator.call("subscribe")
        frame = await moderator.next_push(lambda f: f["type"] == "snapshot", timeout=30)
        return frame["state"]["totals"]

    async def close(self) -> None:
        self.closing = True
        for task in self.heartbeats.values():
            task.cancel()
        await asyncio.gather(*self.heartbeats.values(), return_exceptions=True)
        for client in self.clients.values():
            with contextlib.suppress(Exception):
                await client.close()

    def clock(self) -> str:
        elapsed = int((asyncio.get_running_loop().time() - self._start) * self.speed)
        return f"T+{elapsed // 3600:02d}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}"

    async def _play(self, step: Step) -> None:
        fields = {k: self.refs.get(v.key) if isinstance(v, Ref) else v for k, v in step.fields.items()}
        if any(v is None for v in fields.values()):
            return  # the question it refers to was never stored
        try:
            result = await self._send(step.actor, step.type, fields)
        except CommandFailed as exc:
            self.failures += 1
            log.warning("%s %s %s refused: %s", self.clock(), step.actor, step.type, exc)
            return
        if step.ref:
            self.refs[step.ref] = result["question"]
        if step.type == "site.checkin":
            self._start_heartbeat(step.actor, fields["site"])
        if step.say:
            log.info("%s %s", self.clock(), step.say)

    async def _send(self, actor: str, type_: str, fields: dict[str, Any]) -> dict[str, Any]:
        """One command, retried with the same op_id after a rate limit or while no node answers (a lost
        connection the client itself survives: it sends the command again on the next node)."""
        if type_ != "site.heartbeat":
            fields = {**fields, "op_id": new_op_id()}
        for attempt in range(RETRIES):
            if self.closing:
                raise CommandFailed("internal_error", "the simulator is stopping")
            try:
                client = await self.client(actor)
                return await client.call(type_, **fields)
            except CommandFailed as exc:
                if exc.code != "rate_limited" or attempt == RETRIES - 1:
                    raise
            except OSError as exc:  # ConnectionError, TimeoutError
                if attempt == RETRIES - 1:
                    raise CommandFailed("internal_error", f"hub unreachable: {exc}") from None
            await asyncio.sleep(0.2 * 2 ** attempt)
        raise AssertionError("unreachable")

    async def client(self, actor: str) -> HubClient:
        """The actor's connection, opened on first use; it stays connected to some node by itself."""
        client = self.clients.get(actor)
        if client is not None and not client.closed.is_set():
            return client
        role, _, site = actor.partition(":")
        if actor not in self.tokens:
            self.tokens[actor] = await asyncio.to_thread(self.token_for, role, site or None)
        client = HubClient(self.url, self.tokens[actor], failover=Failover(self.nodes))
        await asyncio.wait_for(client.connect(), CONNECT_SECONDS)
        self.clients[actor] = client
        return client

    def _start_heartbeat(self, actor: str, site: str) -> None:
        if site not in self.heartbeats:
            self.heartbeats[site] = asyncio.create_task(self._heartbeat(actor, site), name=f"heartbeat {site}")

    async def _heartbeat(self, actor: str, site: str) -> None:
        """Every interval (scaled, never slower than real time) with a round-trip time that wanders."""
        hb = self.config.heartbeat
        every = min(max(hb.interval_seconds / self.speed, MIN_HEARTBEAT_SECONDS), hb.interval_seconds)
        rng = random.Random(f"{self.seed}:{site}")
        rtt = rng.uniform(30, 120)
        while not self.closing:
            rtt = min(hb.rtt_poor_ms * 0.9, max(10.0, rtt + rng.gauss(0, 10)))
            with contextlib.suppress(CommandFailed):
                await self._send(actor, "site.heartbeat", {"site": site, "rtt_ms": round(rtt, 1)})
            await asyncio.sleep(every)


def cluster_tokens(tokens: Any, loop: asyncio.AbstractEventLoop) -> TokenFor:
    """Mint one token per actor on the cluster (hub.cluster.tokens.ClusterTokens), so the simulated halls carry
    on when they fail over to another node; called from a worker thread, as `db_tokens` is."""
    def token_for(role: str, site: str | None) -> str:
        return asyncio.run_coroutine_threadsafe(tokens.issue(role, site, None, "simulator"), loop).result(30).token
    return token_for


def run_in_app(app: Any, config: Config, config_path: Path, db_path: Path, url: str, speed: float, seed: int) -> None:
    """`serve --simulate`: play the day inside the hub's own process once a chair page watches, stopped with it."""
    async def simulate(app: Any) -> AsyncIterator[None]:
        day = day_plan(config, config_path, config.sites, seed, speed)
        cluster = app[HUB].cluster
        tokens = (db_tokens(db_path, config) if cluster is None
                  else cluster_tokens(cluster.tokens, asyncio.get_running_loop()))
        sim = Simulator(url, config, tokens, day, speed=speed, seed=seed, linger=True)
        task = asyncio.create_task(_when_watched(sim, app[HUB]), name="simulator")
        yield
        sim.closing = True
        await stop(task)
    app.cleanup_ctx.append(simulate)


async def chair_watching(hub: Hub) -> None:
    """Return once a chair page has subscribed: at ten times speed the halls check in within seconds, so the
    demo waits for someone to watch it from its first step."""
    while not any(conn.who is not None and conn.who.role == "chair" for conn in hub.fanout.subscribers):
        await asyncio.sleep(WATCH_POLL_SECONDS)


async def _when_watched(sim: Simulator, hub: Hub) -> None:
    """Play the day once a chair page watches (the hub is listening by then)."""
    await chair_watching(hub)
    log.info("a chair page is watching: the meeting day begins at %gx", sim.speed)
    try:
        await sim.run()
    except Exception:  # a broken demo must not take the hub down with it
        log.exception("simulator stopped")


@click.command("simulate")
@click.option("--hub", "hub_url", required=True,
              help="The running hub, e.g. http://127.0.0.1:8080; a cluster's nodes separated by commas.")
@click.option("--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The event's config, the same the hub runs.")
@click.option("--speed", default=10.0, show_default=True, type=click.FloatRange(min=0.1),
              help="How many times faster than real time the day runs.")
@click.option("--sites", "limit", type=click.IntRange(min=1), help="Simulate only the first N halls.")
@click.option("--exclude-site", "exclude", multiple=True, metavar="SITE",
              help="Leave this hall to real people (repeatable).")
@click.option("--token", help="An admin token; it acts for every hall.")
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The hub's database on this machine; the simulator mints its own tokens there.")
@click.option("--seed", default=2023, show_default=True, help="The same seed plays the same day.")
def simulate_command(hub_url: str, config_path: Path, speed: float, limit: int | None, exclude: tuple[str, ...],
                     token: str | None, db_path: Path | None, seed: int) -> None:
    """Play a meeting day against a running hub: halls check in, people arrive, questions come.

    \b
    Rehearse with two real halls and the rest simulated:
      diemcau simulate --hub http://127.0.0.1:8080 --config config/kon-tum-2023.toml \\
          --db config/kon-tum-2023.db --exclude-site tinh --exclude-site dak-ha
    """
    try:
        config = load_config(config_path)
        sites = choose_sites(config, limit, exclude)
        url, *nodes = [ws_url(hub) for hub in hub_url.split(",")]
    except (ConfigError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if bool(token) == bool(db_path):
        raise click.ClickException("give either --db (the hub's database, to mint tokens) or --token (an admin token)")
    if db_path is not None and not db_path.exists():
        raise click.ClickException(f"no database at {db_path}; give the --db the hub serves")
    if not sites:
        raise click.ClickException("no halls left to simulate")
    try:
        token_for: TokenFor = db_tokens(db_path, config) if db_path else (lambda role, site: token or "")
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    day = day_plan(config, config_path, sites, seed, speed)
    click.echo(f"simulating {len(sites)} halls, {day.questions} questions, at {speed:g}x: about "
               f"{day.ends_at / speed / 60:.0f} minutes (Ctrl-C to stop)", err=True)
    if run_stoppable(_simulate(url, tuple(nodes), config, token_for, day, speed, seed, admin=bool(token))):
        click.echo("stopped", err=True)
        raise SystemExit(130)


async def _simulate(url: str, nodes: tuple[str, ...], config: Config, token_for: TokenFor, day: Plan, speed: float,
                    seed: int, admin: bool) -> None:
    sim = Simulator(url, config, token_for, day, speed=speed, seed=seed, nodes=nodes)
    try:
        moderator = await sim.client("moderator")
    except (OSError, AuthFailed) as exc:
        raise click.ClickException(f"cannot use the hub at {url}: {exc}") from None
    if admin and moderator.identity.get("role") != "admin":
        await sim.close()
        raise click.ClickException("--token must be an admin token: it acts for every hall")
    await sim.run()
