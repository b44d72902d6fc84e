"""`diemcau serve`: run the hub for one event; on a fresh database, issue its tokens and hand out the links."""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import click
from aiohttp import web

from hub import __version__
from hub.cli.options import config_options, fail, nats_option
from hub.config import Config
from hub.core.daylog import configure as configure_logging
from hub.documents.access_sheet import write_access_sheet
from hub.log.backup import parse_every, schedule_backups
from hub.stopping import interrupt_on_signals
from hub.tokens import IssuedToken, Spec, TokenStore
from hub.web.app import create_app
from hub.web.keys import HUB
from sites.simulator import local_ws_url, run_in_app

LINKS_PRINT_LIMIT = 40
GC_YOUNG_ALLOCATIONS = 50_000  # see quiet_collector


def base_url(config: Config, host: str, port: int, tls: bool = False) -> str:
    if config.server.public_url:
        return config.server.public_url.rstrip("/")
    shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def event_token_specs(config: Config) -> list[Spec]:
    """One token per role, per site (technician and registrar) and per agency: a fresh event's."""
    specs: list[Spec] = [(role, None, None, role) for role in ("admin", "moderator", "chair", "viewer")]
    for site in config.sites:
        specs += [("technician", site.id, None, site.name), ("registrar", site.id, None, site.name)]
    specs += [("agency", None, agency.id, agency.name) for agency in config.agencies]
    return specs


def write_links(issued: list[IssuedToken], url: str, path: Path) -> None:
    lines = [f"{t.identity.role}\t{t.identity.site or t.identity.agency or ''}\t{t.link(url)}" for t in issued]
    path.write_text("role\tsite or agency\tlink\n" + "\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)


def print_links(issued: list[IssuedToken], url: str) -> None:
    click.secho("Access links (shown once; tokens are stored only hashed):", bold=True)
    for t in issued:
        who = t.identity.site or t.identity.agency or ""
        click.echo(f"  {t.identity.role:<11} {who:<14} {t.link(url)}")


@click.command()
@config_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; 0.0.0.0 to serve the network.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--certfile", type=click.Path(exists=True, dir_okay=False), help="TLS certificate (PEM) to serve https/wss.")
@click.option("--keyfile", type=click.Path(exists=True, dir_okay=False), help="TLS private key (PEM).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--log-format", default="text", show_default=True, type=click.Choice(["text", "json"]),
              help="json: one JSON object per line, for a log shipper.")
@click.option("--backup-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Take consistent backups into this folder (put it on another disk).")
@click.option("--backup-every", default="5m", show_default=True, callback=lambda c, p, v: _duration(v),
              help="How often to back up: 30s, 5m, 1h.")
@click.option("--backup-keep", default=12, show_default=True, type=click.IntRange(min=1),
              help="How many scheduled backups to keep.")
@click.option("--simulate", is_flag=True,
              help="Also play a simulated meeting day against this hub (the demo), once a chair page connects.")
@click.option("--speed", default=10.0, show_default=True, type=click.FloatRange(min=0.1),
              help="With --simulate: how many times faster than real time.")
@nats_option("Run as one node of a cluster on these NATS servers (JetStream); --db is then the node's "
             "local copy of the log.")
@click.option("--node", "node_name", metavar="NAME", help="With --nats: this node's name, unique in the cluster.")
@click.option("--public-url", metavar="URL",
              help="With --nats: how clients reach this node (announced to them for failing over). "
                   "Default: http://<host>:<port>.")
def serve(config: Config, config_path: Path, db_path: Path, host: str, port: int, certfile: str | None,
          keyfile: str | None, log_level: str, log_format: str, backup_dir: Path | None, backup_every: float,
          backup_keep: int, simulate: bool, speed: float, nats_urls: list[str] | None, nats_token: str | None,
          node_name: str | None, public_url: str | None) -> None:
    """Start the hub for one event, or one node of a cluster (--nats).

    On a fresh database (a fresh cluster, with --nats) it creates the access tokens and prints one
    link per role, site and agency (for more than 40 sites it writes them to a file next to the
    database instead). Ctrl-C or SIGTERM stops it cleanly: queued changes are committed first, then
    the last seq is printed.
    """
    interrupt_on_signals()  # while it starts; aiohttp's runner takes the signals over once it listens
    setup_logging(log_level, log_format)
    if bool(certfile) != bool(keyfile):
        fail("--certfile and --keyfile go together")
    if simulate and certfile:
        fail("--simulate is for the demo over plain http; leave out --certfile")
    ssl_context = None
    if certfile:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ssl_context.load_cert_chain(certfile, keyfile)
        except (ssl.SSLError, OSError) as exc:
            fail(f"cannot use {certfile} / {keyfile} for TLS ({exc}); give a PEM certificate and its private key")
    if (nats_urls is None) != (node_name is None):
        fail("--nats and --node go together: each node of a cluster has a name")
    if public_url is not None and nats_urls is None:
        fail("--public-url is for a cluster node; a single hub takes [server] public_url from the config")
    url = base_url(config, host, port, tls=ssl_context is not None)
    cluster = None
    if nats_urls is not None and node_name is not None:
        from hub.cluster.node import ClusterOptions

        url = (public_url or f"{'https' if ssl_context else 'http'}://{host}:{port}").rstrip("/")
        cluster = ClusterOptions(nats_urls, node_name, url, nats_token)
    app = create_app(config, db_path, cluster=cluster)
    store = TokenStore(db_path)
    if cluster is not None:
        app.cleanup_ctx.append(lambda app: _first_links(app, config, url, db_path))
    elif store.is_empty():
        announce_tokens(config, store.issue_many(event_token_specs(config)), url, db_path)
    if backup_dir is not None:
        schedule_backups(app, db_path, backup_dir, backup_every, backup_keep)
    if simulate:
        run_in_app(app, config, config_path, db_path, local_ws_url(host, port), speed, seed=2023)
        click.echo(f"  the demo waits for the chair page: open the chair link above and the meeting day "
                   f"plays at {speed:g}x")
    click.echo(f"diemcau {__version__}: {config.event.title}")
    quiet_collector()

    def serving(_: str) -> None:
        """Said once the hub listens (a cluster node: once on its engine too), never before a refusal."""
        click.echo(f"  database {db_path} (seq {app_hub_seq(app)}), serving {url}  (Ctrl-C to stop)")
    try:
        web.run_app(app, host=host, port=port, ssl_context=ssl_context, print=serving, access_log=None,
                    handle_signals=True, shutdown_timeout=5, loop=event_loop())
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}; is another hub running? try another --port")
    click.echo(f"diemcau stopped: database {db_path} at seq {app[HUB].log.durable_seq}")


def quiet_collector() -> None:
    """Keep the cyclic GC from stalling the loop (docs/performance.md has the measurements).

    The start-up heap (modules, config, rebuilt state) lives all day, so it is frozen out of every full
    collection; and the young generation is collected every 50,000 allocations instead of 700, so a
    command's or a frame's short-lived objects die by reference count before they are promoted. With
    4,600 connections open each full collection stopped the loop for 100-300 ms.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_ALLOCATIONS, 20, 100)


def event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (Linux): about a fifth less CPU per command than asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def app_hub_seq(app: Any) -> int:
    from hub.web.keys import HUB

    return app[HUB].state.seq


async def _first_links(app: web.Application, config: Config, url: str, db_path: Path) -> AsyncIterator[None]:
    """A cluster node, once joined: the first node ever to start issues the event's tokens for the whole cluster
    and hands their links over; the others say where they went. The printable sheet (a QR code per token:
    minutes of CPU for a national meeting) is drawn in a process of its own, so the node serves, and renews its
    lease, meanwhile (in a thread it held the interpreter's lock, and the node answered in hundreds of ms)."""
    tokens = app[HUB].cluster.tokens
    if not await tokens.first_issue():
        click.echo("  the event's tokens were issued when the cluster first started (see that node's links file); "
                   "diemcau token --nats makes more")
        yield
        return
    issued = await tokens.issue_many(event_token_specs(config))
    hand_out_links(config, issued, url, db_path)
    drawer = multiprocessing.get_context("spawn").Process(target=write_sheet, args=(config, issued, url, db_path),
                                                          name="access sheet", daemon=True)
    drawer.start()
    yield
    if drawer.is_alive():
        drawer.terminate()
        click.echo("the printable access sheet was not finished; make one with diemcau access-sheet --nats")
    drawer.join()


def announce_tokens(config: Config, issued: list[IssuedToken], url: str, db_path: Path) -> None:
    """Hand the event's new tokens over: links printed for small events, a file for large; and the sheet."""
    hand_out_links(config, issued, url, db_path)
    write_sheet(config, issued, url, db_path)


def hand_out_links(config: Config, issued: list[IssuedToken], url: str, db_path: Path) -> None:
    links = db_path.with_name(db_path.stem + "-links.tsv")
    write_links(issued, url, links)
    if len(config.sites) <= LINKS_PRINT_LIMIT:
        print_links(issued, url)
    else:
        click.echo(f"{len(issued)} access links written to {links} (tokens are shown only there).")


def write_sheet(config: Config, issued: list[IssuedToken], url: str, db_path: Path) -> None:
    sheet = db_path.with_name(db_path.stem + "-access.html")
    write_access_sheet(config, issued, url, sheet)
    click.echo(f"Printable access sheet with QR codes: {sheet}")


def setup_logging(level: str, fmt: str = "text") -> None:
    """One line per event that matters, with the time; tokens never appear (only their ids)."""
    configure_logging(level, fmt)


def _duration(text: str) -> float:
    try:
        return parse_every(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
