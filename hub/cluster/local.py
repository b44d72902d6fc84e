"""A whole cluster on one machine, for rehearsals, tests and the bench: three nats-servers and hub nodes
(`diemcau serve --nats`) on loopback, each node's local copy and log in one folder.

Every process is ended when it stops, whatever happened: use it as a context manager.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import nats.errors
from nats.js import JetStreamContext

from hub.cluster.connect import connect
from hub.cluster.lease import lease_stream
from hub.log.jetstream import stream_name
from hub.log.nats_servers import NatsCluster, free_ports

READY_SECONDS = 60.0  # a node answering /healthz (it connects, catches up and joins)
STOP_SECONDS = 10.0  # after SIGTERM, before SIGKILL
STEADY_SECONDS = 3.0  # a cluster whole this long after a restart is taken to have settled

log = logging.getLogger("diemcau.cluster.local")


class NodeError(Exception):
    """A node that would not start; the message ends with the tail of its log."""


@dataclass(eq=False)
class HubNode:
    name: str
    port: int
    db: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def health(self, timeout: float = 2.0) -> dict[str, Any] | None:
        """The node's /healthz, or None when it does not answer."""
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=timeout) as response:
                return json.loads(response.read())
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""


@dataclass(eq=False)
class LocalCluster:
    """NATS servers and `nodes` hub nodes in `folder`; `extra` arguments go to every node's `serve`."""

    folder: Path
    config_path: Path
    nodes: int = 3
    extra: dict[str, list[str]] = field(default_factory=dict)  # per node name
    nats: NatsCluster = field(init=False)
    hubs: dict[str, HubNode] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.nats = NatsCluster(self.folder / "nats", token=self._token())
        for number in range(1, self.nodes + 1):
            name = f"n{number}"
            self.hubs[name] = HubNode(name, 0, self.folder / f"{name}.db", self.folder / f"{name}.log")

    @property
    def token_file(self) -> Path:
        """The NATS servers' token (clients and routes give it), readable by this user only."""
        return self.folder / "nats.token"

    def _token(self) -> str:
        """The token of this folder's servers: made once, kept for a restart in the same folder."""
        if not self.token_file.exists():
            with os.fdopen(os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
                out.write(secrets.token_urlsafe(32) + "\n")
        return self.token_file.read_text(encoding="utf-8").strip()

    def start(self) -> Self:
        """The servers, then the first node alone (it creates the streams and issues the tokens), then the rest."""
        try:
            self.nats.start()
            for node, port in zip(self.hubs.values(), free_ports(self.nodes)):  # not one a server just took
                node.port = port
            first, *others = self.hubs
            self.spawn(first)
            self.wait_ready([first])
            for name in others:
                self.spawn(name)
            self.wait_ready(others)
        except BaseException:
            self.stop()
            raise
        return self

    def spawn(self, name: str) -> None:
        node = self.hubs[name]
        command = [sys.executable, "-m", "hub", "serve", "--config", str(self.config_path), "--db", str(node.db),
                   "--nats", ",".join(self.nats.urls), "--nats-token-file", str(self.token_file),
                   "--node", name, "--port", str(node.port),
                   "--public-url", node.url, *self.extra.get(name, [])]
        # The log holds the links the first node prints on issuing the tokens: readable by this user only.
        # Its own session: a terminal's Ctrl-C reaches only who runs the cluster, which stops the nodes in order.
        with os.fdopen(os.open(node.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as out:
            node.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)

    def wait_ready(self, names: list[str], seconds: float = READY_SECONDS) -> None:
        deadline = time.monotonic() + seconds
        for name in names:
            node = self.hubs[name]
            while node.health() is None:
                if not node.running():
                    raise NodeError(f"node {name} exited ({node.process and node.process.returncode}):\n{node.tail()}")
                if time.monotonic() > deadline:
                    raise NodeError(f"node {name} did not answer /healthz within {seconds:g} s:\n{node.tail()}")
                time.sleep(0.1)

    def kill(self, name: str) -> None:
        """SIGKILL one node, as a lost machine."""
        node = self.hubs[name]
        if node.process is not None and node.process.poll() is None:
            node.process.kill()
            node.process.wait()

    def restart(self, name: str) -> None:
        self.kill(name)
        self.spawn(name)
        self.wait_ready([name])

    def sequencer(self) -> str | None:
        """The node whose /healthz says it is the sequencer, if exactly one does."""
        found = [name for name, node in self.hubs.items()
                 if node.running() and (node.health() or {}).get("role") == "sequencer"]
        return found[0] if len(found) == 1 else None

    def wait_sequencer(self, seconds: float) -> str | None:
        """The sequencer's name once one node says it is (None if none does within `seconds`)."""
        deadline = time.monotonic() + seconds
        while (found := self.sequencer()) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        return found

    async def stream_leader(self, event_id: str, lease: bool = False) -> str:
        """The name of the NATS server leading the event's log stream, or its lease stream (the one to kill to
        test its loss)."""
        stream = lease_stream(event_id) if lease else stream_name(event_id)
        nc = await connect(self.nats.urls, "diemcau local cluster", token=self.nats.token)
        try:
            info = await nc.jetstream().stream_info(stream)
        finally:
            await nc.close()
        if info.cluster is None or not info.cluster.leader:
            raise NodeError(f"stream {stream} has no leader")
        return info.cluster.leader

    async def wait_whole(self, event_id: str, seconds: float = 60.0, steady: float = STEADY_SECONDS) -> None:
        """Until the event's log and lease streams have each kept one leader, with every replica current, for
        `steady` seconds: a restarted server rejoins them only then, and its return can move a leader a few
        seconds later. A loss before that would be a second one."""
        streams = [stream_name(event_id), lease_stream(event_id)]
        nc = await connect(self.nats.urls, "diemcau local cluster", token=self.nats.token)
        loop = asyncio.get_running_loop()
        deadline, since, leaders = loop.time() + seconds, loop.time(), None
        try:
            js = nc.jetstream(timeout=1.0)
            while (now := loop.time()) - since < steady:
                if now >= deadline:
                    raise NodeError(f"streams {', '.join(streams)} not whole and steady within {seconds:g} s")
                try:
                    found = [await self._whole_leader(js, stream) for stream in streams]
                except nats.errors.Error as exc:  # no leader: no answer, or no responders
                    log.debug("streams not whole yet: %r", exc)
                    found = None
                if found is None or None in found or found != leaders:
                    since, leaders = now, found
                await asyncio.sleep(0.2)
        finally:
            await nc.close()

    async def _whole_leader(self, js: JetStreamContext, stream: str) -> str | None:
        """The stream's leader if every replica is current, else None."""
        info = await js.stream_info(stream)
        replicas = info.cluster.replicas or [] if info.cluster is not None else []
        whole = len(replicas) == len(self.nats.servers) - 1 and all(r.current for r in replicas)
        return info.cluster.leader if info.cluster is not None and whole else None

    def stop(self) -> None:
        """SIGTERM every node (they hand the lease over and commit), SIGKILL what lingers, then the servers."""
        running = [node for node in self.hubs.values() if node.running()]
        for node in running:
            node.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        deadline = time.monotonic() + STOP_SECONDS
        for node in running:
            try:
                node.process.wait(max(0.1, deadline - time.monotonic()))  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                node.process.kill()  # type: ignore[union-attr]
                node.process.wait()  # type: ignore[union-attr]
        self.nats.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
