"""Start the servers under test as separate processes and watch their CPU and memory."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int, server: Watched, timeout: float = 60) -> None:
    """Block until the process accepts connections on the port, or fail with its output."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited with {server.proc.returncode}: {server.output()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"server did not listen on port {port} within {timeout} s")


def cores() -> tuple[set[int] | None, set[int] | None]:
    """The CPUs for the server and for the load generator: one each when there are two or more.

    Unpinned, the two compete for the same cores and the generator's own pauses read as the server's latency.
    """
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return None, None
    return {available[0]}, {available[1]}


def pin(pid: int, cpus: set[int] | None) -> None:
    """Keep every thread of a process (and those it starts later) on these CPUs."""
    if cpus is None:
        return
    for thread in psutil.Process(pid).threads():
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(thread.id, cpus)


class Watched:
    """A server process, pinned to its core, with its CPU time and a sampled peak resident memory."""

    def __init__(self, args: list[str], port: int) -> None:
        self.port = port
        self.stderr = tempfile.TemporaryFile()  # read back for its warnings; a pipe nobody reads could fill and block it
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.stderr)
        pin(self.proc.pid, cores()[0])
        wait_listening(port, self)
        self.ps = psutil.Process(self.proc.pid)
        self.peak_rss = self.rss()
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    @property
    def generator_cpus(self) -> set[int] | None:
        """The load generator's CPUs: the core this server leaves free."""
        return cores()[1]

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def ws_urls(self) -> list[str]:
        return [self.ws_url]

    def output(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def rss(self) -> int:
        return self.ps.memory_info().rss

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return times.user + times.system

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            with contextlib.suppress(psutil.Error):
                self.peak_rss = max(self.peak_rss, self.rss())

    def stop(self) -> None:
        self._stop.set()
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextlib.contextmanager
def hub(config: Path, db: Path, profile: Path | None = None) -> Iterator[Watched]:
    """`diemcau serve` on a free loopback port; with `profile`, sampled by py-spy into a collapsed-stack file."""
    port = free_port()
    server = Watched([sys.executable, "-c", "from hub.cli.main import main; main()", "serve", "--config", str(config),
                      "--db", str(db), "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"], port)
    spy = None
    if profile is not None:
        spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(server.proc.pid),
                                "--format", "raw", "--rate", "200", "--output", str(profile)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield server
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        server.stop()


@contextlib.contextmanager
def baseline(mode: str) -> Iterator[Watched]:
    """One of the bare aiohttp servers of bench/baselines.py."""
    port = free_port()
    server = Watched([sys.executable, "-m", "bench.baselines", mode, str(port)], port)
    try:
        yield server
    finally:
        server.stop()
