"""`diemcau cluster`: a rehearsal cluster on one machine, three nats-servers and the hub nodes on loopback.

The processes are `hub.cluster.local.LocalCluster`'s: n1 starts first on the fresh cluster, so it is the
node that issues the event's tokens and writes the links next to its database. This command prints
what an operator needs, reports a process that dies and leaves it dead (that is the failover to watch),
and on Ctrl-C or SIGTERM stops the hubs first, then the servers.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from hub.cli.options import fail
from hub.cluster.local import LocalCluster, NodeError
from hub.config import ConfigError, load_config
from hub.log.nats_servers import NatsServerError
from hub.stopping import STOP_SIGNALS, interrupt_on_signals

WATCH_SECONDS = 1.0
SEQUENCER_SECONDS = 10.0  # after the start, how long to wait for a node to say it is the sequencer
LINK_PAGES = (("chair", "chair"), ("moderator", "moderator"), ("viewer", "projector"), ("registrar", "registrar"))


def read_links(path: Path) -> list[tuple[str, str, str]]:
    """The first node's links file: (role, site or agency, link) rows."""
    with path.open(encoding="utf-8", newline="") as file:
        return [(row["role"], row["site or agency"], row["link"]) for row in csv.DictReader(file, delimiter="\t")]


def print_links(cluster: LocalCluster) -> None:
    first = next(iter(cluster.hubs.values()))
    links = first.db.with_name(f"{first.db.stem}-links.tsv")
    if not links.exists():
        click.echo(f"  no {links}: the tokens were issued before; make more with diemcau token --nats "
                   f"{','.join(cluster.nats.urls)} --nats-token-file {cluster.token_file}")
        return
    rows = read_links(links)
    click.secho(f"Access links (every one, for every hall: {links}; printable sheet "
                f"{first.db.with_name(f'{first.db.stem}-access.html')}):", bold=True)
    for role, page in LINK_PAGES:
        row = next((row for row in rows if row[0] == role), None)
        if row is not None:
            click.echo(f"  {page:<10} {row[1]:<14} {row[2]}")


def print_cluster(cluster: LocalCluster, config_path: Path, simulate: bool) -> str | None:
    """The nodes with their roles, the servers, how to try a failover; the sequencer's name."""
    sequencer = cluster.wait_sequencer(SEQUENCER_SECONDS)
    click.secho("Nodes (each serves every page; clients move to another by themselves):", bold=True)
    for node in cluster.hubs.values():
        assert node.process is not None
        role = (node.health() or {}).get("role", "?")
        click.echo(f"  {node.name:<4} {role:<10} {node.url:<24} pid {node.process.pid:<8} log {node.log_path}")
    click.secho("NATS servers (the replicated log: a command answered is stored on 2 of the 3):", bold=True)
    for server in cluster.nats.servers:
        assert server.proc is not None
        click.echo(f"  nats-server {server.name:<4} {server.url:<24} pid {server.proc.pid:<8} log {server.output}")
    if sequencer is not None:
        pid = cluster.hubs[sequencer].process.pid  # type: ignore[union-attr]
        click.echo(f"Try a failover: kill -9 {pid} (the sequencer, {sequencer}), or a follower's or a NATS server's "
                   "pid. A killed process stays down until the next run.")
    if simulate:
        click.echo("The simulated halls run in a process of their own and move to another node when theirs is lost: "
                   "open the chair link and watch the meeting day play.")
    click.echo(f"Check the cluster: diemcau doctor --config {config_path} --nats {','.join(cluster.nats.urls)} "
               f"--nats-token-file {cluster.token_file}")
    click.echo("Ctrl-C stops every node, then the NATS servers.")
    return sequencer


def stamp() -> str:
    return time.strftime("%H:%M:%S")


def watch(cluster: LocalCluster, sequencer: str | None) -> None:
    """Until stopped: say when a process ends on its own and when another node becomes the sequencer."""
    told: set[str] = set()
    while True:
        time.sleep(WATCH_SECONDS)
        for node in cluster.hubs.values():
            if not node.running() and node.name not in told:
                told.add(node.name)
                assert node.process is not None
                click.secho(f"{stamp()} node {node.name} (pid {node.process.pid}) exited with "
                            f"{node.process.returncode}; it is not restarted. Its log: {node.log_path}", fg="yellow")
        for server in cluster.nats.servers:
            assert server.proc is not None
            if server.proc.poll() is not None and f"nats {server.name}" not in told:
                told.add(f"nats {server.name}")
                click.secho(f"{stamp()} nats-server {server.name} (pid {server.proc.pid}) exited with "
                            f"{server.proc.returncode}; it is not restarted. Its log: {server.output}", fg="yellow")
        now = cluster.sequencer()
        if now is not None and now != sequencer:
            click.echo(f"{stamp()} {now} is the sequencer now" + (f" ({sequencer} was)" if sequencer else ""))
            sequencer = now


def start_simulator(cluster: LocalCluster, config_path: Path, speed: float) -> subprocess.Popen[bytes]:
    """`diemcau simulate` against every node with the admin token the first node issued: the halls fail over
    like real ones, so no node's loss ends the simulated day. Its output goes to simulator.log in the folder."""
    first = next(iter(cluster.hubs.values()))
    admin = next(link for role, _, link in read_links(first.db.with_name(f"{first.db.stem}-links.tsv"))
                 if role == "admin")
    hubs = ",".join(node.url for node in cluster.hubs.values())
    log = cluster.folder / "simulator.log"
    with open(log, "ab") as out:
        os.chmod(log, 0o600)
        return subprocess.Popen([sys.executable, "-m", "hub", "simulate", "--hub", hubs, "--config", str(config_path),
                                 "--token", admin.split("#token=", 1)[1], "--speed", f"{speed:g}"],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def stop_simulator(simulator: subprocess.Popen[bytes] | None) -> None:
    if simulator is not None and simulator.poll() is None:
        simulator.terminate()
        try:
            simulator.wait(10)
        except subprocess.TimeoutExpired:
            simulator.kill()
            simulator.wait()


def run(cluster: LocalCluster, config_path: Path, simulate: bool, speed: float) -> None:
    """Start, print, watch; everything is stopped on the way out, whatever happened."""
    simulator = None
    try:
        click.echo(f"Starting 3 nats-servers and {len(cluster.hubs)} nodes in {cluster.folder}; n1 first, "
                   "which issues the tokens")
        cluster.start()
        print_links(cluster)
        sequencer = print_cluster(cluster, config_path, simulate)
        if simulate:
            simulator = start_simulator(cluster, config_path, speed)
        watch(cluster, sequencer)
    finally:
        for sig in STOP_SIGNALS:  # a second Ctrl-C must not cut the stopping short: it has its own deadlines
            signal.signal(sig, signal.SIG_IGN)
        stop_simulator(simulator)
        cluster.stop()


@click.command("cluster")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The event's TOML config, e.g. config/kon-tum-2023.toml.")
@click.option("--dir", "folder", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="A new folder for the rehearsal: the servers' stores, each node's copy of the log and output.")
@click.option("--nodes", "count", default=3, show_default=True, type=click.IntRange(1, 9), help="Hub nodes.")
@click.option("--simulate", is_flag=True, help="Play a simulated meeting day against the nodes (its log: simulator.log).")
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
    interrupt_on_signals()
    try:
        run(LocalCluster(folder, config_path, count), config_path, simulate, speed)
    except (NodeError, NatsServerError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        pass
    click.echo(f"diemcau cluster stopped: {folder}")
