"""`diemcau cluster`: a rehearsal cluster on one machine, three nats-servers and the hub nodes on loopback.

Node n1 starts first, on the fresh cluster, so it is the one that issues the event's tokens and writes
the links next to its database; the others start once it answers. A process that dies is reported and
left dead (that is the failover to watch); Ctrl-C or SIGTERM stops the hubs first, then the servers.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from hub.cli.options import fail
from hub.config import ConfigError, load_config
from hub.log.nats_servers import NatsCluster, NatsServerError, free_ports
from hub.stopping import STOP_SIGNALS, interrupt_on_signals

# This interpreter's diemcau, whatever PATH holds.
DIEMCAU = [sys.executable, "-m", "hub"]
READY_SECONDS = 60.0  # a node's /healthz answering: it connects, creates or reads the streams, catches up
STOP_SECONDS = 15.0  # after SIGTERM a node commits what is queued and closes its clients (serve: up to 5 s)
WATCH_SECONDS = 1.0
LINK_ROLES = (("chair", "chair"), ("moderator", "moderator"), ("viewer", "projector"), ("registrar", "registrar"))


class ClusterError(Exception):
    """A node that would not start; the message carries the end of its log."""


@dataclass(eq=False)
class Node:
    """One hub node of the rehearsal: its name, port, local copy of the log and output file."""

    name: str
    port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None
    reported: bool = False  # its unexpected end has been told

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db(self) -> Path:
        return self.dir / f"{self.name}.db"

    @property
    def log(self) -> Path:
        return self.dir / f"{self.name}.log"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def spawn(self, config_path: Path, nats_urls: list[str], extra: list[str]) -> None:
        # Its own session: the terminal's Ctrl-C reaches only `diemcau cluster`, which stops the nodes in order.
        # The log holds the links n1 prints on issuing the tokens: readable by this user only.
        fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as out:
            self.proc = subprocess.Popen(
                [*DIEMCAU, "serve", "--config", str(config_path), "--db", str(self.db), "--nats", ",".join(nats_urls),
                 "--node", self.name, "--port", str(self.port), "--public-url", self.url, *extra],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=0.5) as response:
                body = json.loads(response.read())
        except (OSError, ValueError, urllib.error.URLError):
            return None
        return body if isinstance(body, dict) else None

    def tail(self, chars: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]
        return ""


def wait_ready(nodes: list[Node], seconds: float = READY_SECONDS) -> None:
    """Until every node's /healthz answers; a node that exits or stays silent fails the start."""
    deadline = time.monotonic() + seconds
    waiting = list(nodes)
    while waiting:
        for node in list(waiting):
            if not node.alive:
                assert node.proc is not None
                raise ClusterError(f"node {node.name} exited ({node.proc.returncode}) while starting; its log "
                                   f"{node.log} ends:\n{node.tail()}")
            if node.health() is not None:
                waiting.remove(node)
        if waiting and time.monotonic() > deadline:
            raise ClusterError(f"node {waiting[0].name} did not answer /healthz within {seconds:.0f} s; its log "
                               f"{waiting[0].log} ends:\n{waiting[0].tail()}")
        time.sleep(0.2)


def roles(nodes: list[Node], seconds: float = 10.0) -> dict[str, str]:
    """Each live node's role, once one of them says it is the sequencer (or after `seconds`)."""
    deadline = time.monotonic() + seconds
    while True:
        found = {node.name: str((node.health() or {}).get("role", "?")) for node in nodes if node.alive}
        if "sequencer" in found.values() or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def stop_nodes(nodes: list[Node]) -> None:
    """SIGTERM every node, then SIGKILL whichever still runs after STOP_SECONDS; every one reaped."""
    running = [node.proc for node in nodes if node.proc is not None and node.proc.poll() is None]
    for proc in running:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
    deadline = time.monotonic() + STOP_SECONDS
    for proc in running:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def read_links(path: Path) -> list[tuple[str, str, str]]:
    """n1's links file: (role, site or agency, link) rows."""
    with path.open(encoding="utf-8", newline="") as file:
        return [(row["role"], row["site or agency"], row["link"]) for row in csv.DictReader(file, delimiter="\t")]


def print_links(links_path: Path) -> None:
    rows = read_links(links_path)
    click.secho(f"Access links (every one, for every hall: {links_path}; printable sheet "
                f"{links_path.with_name(links_path.name.replace('-links.tsv', '-access.html'))}):", bold=True)
    for role, page in LINK_ROLES:
        row = next((row for row in rows if row[0] == role), None)
        if row is not None:
            click.echo(f"  {page:<10} {row[1]:<14} {row[2]}")


def print_cluster(nodes: list[Node], nats: NatsCluster, config_path: Path, simulate: bool) -> str | None:
    """The nodes with their roles, the servers, how to try a failover; the sequencer's name."""
    found = roles(nodes)
    click.secho("Nodes (any of them serves every page; clients move to another by themselves):", bold=True)
    for node in nodes:
        assert node.proc is not None
        click.echo(f"  {node.name:<4} {found.get(node.name, '?'):<10} {node.url:<24} pid {node.proc.pid:<8} "
                   f"log {node.log}")
    click.secho("NATS servers (the replicated log: a command answered is stored on 2 of the 3):", bold=True)
    for server in nats.servers:
        assert server.proc is not None
        click.echo(f"  nats-server {server.name:<4} {server.url:<24} pid {server.proc.pid:<8} log {server.output}")
    sequencer = next((node for node in nodes if found.get(node.name) == "sequencer"), None)
    if sequencer is not None and sequencer.proc is not None:
        click.echo(f"Try a failover: kill -9 {sequencer.proc.pid}  (the sequencer, {sequencer.name}); or kill -9 a "
                   "follower's or a NATS server's pid. A killed process stays down until the next run.")
    if simulate:
        click.echo("  the simulated halls run inside n1: they end with it. Open the chair link above and the "
                   "meeting day plays.")
    click.echo(f"Check the cluster: diemcau doctor --config {config_path} --nats {','.join(nats.urls)}")
    click.echo("Ctrl-C stops every node, then the NATS servers.")
    return sequencer.name if sequencer is not None else None


def watch(nodes: list[Node], nats: NatsCluster, sequencer: str | None) -> None:
    """Until stopped: say when a process ends on its own and when another node becomes the sequencer."""
    gone_servers: set[str] = set()
    while True:
        time.sleep(WATCH_SECONDS)
        for node in nodes:
            if not node.alive and not node.reported:
                node.reported = True
                assert node.proc is not None
                click.secho(f"{time.strftime('%H:%M:%S')} node {node.name} (pid {node.proc.pid}) exited with "
                            f"{node.proc.returncode}; it is not restarted. Its log: {node.log}", fg="yellow")
        for server in nats.servers:
            if server.proc is not None and server.proc.poll() is not None and server.name not in gone_servers:
                gone_servers.add(server.name)
                click.secho(f"{time.strftime('%H:%M:%S')} nats-server {server.name} (pid {server.proc.pid}) exited "
                            f"with {server.proc.returncode}; it is not restarted. Its log: {server.output}",
                            fg="yellow")
        now = next((n.name for n in nodes if n.alive and (n.health() or {}).get("role") == "sequencer"), None)
        if now is not None and now != sequencer:
            click.echo(f"{time.strftime('%H:%M:%S')} {now} is the sequencer now" + (f" ({sequencer} was)"
                                                                                     if sequencer else ""))
            sequencer = now


def run(config_path: Path, folder: Path, count: int, extra_n1: list[str]) -> None:
    """Start the servers, n1, then the other nodes; print; watch. Everything is stopped on the way out."""
    nats = NatsCluster(folder / "nats")
    nodes = [Node(f"n{i + 1}", port, folder) for i, port in enumerate(free_ports(count))]
    try:
        nats.start()
        click.echo(f"NATS: {', '.join(nats.urls)} (3 servers); starting node n1, which issues the tokens")
        nodes[0].spawn(config_path, nats.urls, extra_n1)
        wait_ready(nodes[:1])
        for node in nodes[1:]:
            node.spawn(config_path, nats.urls, [])
        wait_ready(nodes[1:])
        links = nodes[0].db.with_name(f"{nodes[0].db.stem}-links.tsv")
        if links.exists():
            print_links(links)
        else:
            click.echo(f"  no {links}: the cluster's tokens were issued before; make more with diemcau token --nats")
        watch(nodes, nats, print_cluster(nodes, nats, config_path, bool(extra_n1)))
    finally:
        for sig in STOP_SIGNALS:  # a second Ctrl-C must not cut the stopping short: it has its deadlines
            signal.signal(sig, signal.SIG_IGN)
        stop_nodes(nodes)
        nats.stop()


@click.command("cluster")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The event's TOML config, e.g. config/kon-tum-2023.toml.")
@click.option("--dir", "folder", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="A new folder for the rehearsal: the servers' stores, each node's copy of the log and output.")
@click.option("--nodes", "count", default=3, show_default=True, type=click.IntRange(1, 9), help="Hub nodes.")
@click.option("--simulate", is_flag=True, help="Play a simulated meeting day (inside n1), once a chair page connects.")
@click.option("--speed", default=10.0, show_default=True, type=click.FloatRange(min=0.1),
              help="With --simulate: how many times faster than real time.")
def cluster_command(config_path: Path, folder: Path, count: int, simulate: bool, speed: float) -> None:
    """Rehearse cluster mode on this machine: three nats-servers and the hub nodes on loopback.

    n1 starts first and issues the tokens; the links are printed and written next to its database.
    Kill any one process to watch the failover; Ctrl-C or SIGTERM stops them all.

    \b
    Example:
      diemcau cluster --config config/kon-tum-2023.toml --dir var/cluster --simulate
    """
    try:
        load_config(config_path)
    except ConfigError as exc:
        fail(str(exc))
    if (folder / "nats").exists() or any(folder.glob("n*.db")):
        fail(f"{folder} holds an earlier rehearsal; remove it or give another --dir")
    folder.mkdir(parents=True, exist_ok=True)
    interrupt_on_signals()
    try:
        run(config_path, folder, count, ["--simulate", "--speed", f"{speed:g}"] if simulate else [])
    except (ClusterError, NatsServerError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        pass
    click.echo(f"diemcau cluster stopped: {folder}")
