"""`diemcau serve` as a real subprocess on a free port: started, killed with SIGKILL and restarted at will."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

# The installed `diemcau` entry point, run by this interpreter (not `-m hub.cli`, which imports cli twice).
DIEMCAU = [sys.executable, "-c", "from hub.cli.main import main; main()"]


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class HubProcess:
    """One hub process at a time on a fixed port and database; its output goes to files beside the db."""

    def __init__(self, config_path: Path, db_path: Path, port: int | None = None, *extra: str) -> None:
        self.config_path, self.db_path = Path(config_path), Path(db_path)
        self.port = port or free_port()
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.log_path = self.db_path.with_name(self.db_path.stem + "-serve.log")

    @property
    def url(self) -> str:
        scheme = "https" if "--certfile" in self.extra else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1) + "/ws"

    def command(self) -> list[str]:
        return [*DIEMCAU, "serve", "--config", str(self.config_path), "--db", str(self.db_path),
                "--port", str(self.port), *self.extra]

    def spawn(self) -> None:
        """Start serve without waiting (a plain child process, usable from sync and async code alike)."""
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=out,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.starts += 1

    async def start(self, timeout: float = 20) -> None:
        """Start serve and return once /healthz answers; else kill it and raise with its output,
        so a hub that never came up is not left running behind a failed test or bench."""
        self.spawn()
        try:
            await self.wait_healthy(timeout)
        except BaseException:
            self.kill()
            raise

    async def wait_healthy(self, timeout: float = 20) -> None:
        assert self.proc is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        connector = aiohttp.TCPConnector(ssl=False)
        async with aiohttp.ClientSession(connector=connector) as http:
            while loop.time() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"serve exited with {self.proc.returncode}:\n{self.output()[-2000:]}")
                try:
                    async with http.get(f"{self.url}/healthz", timeout=aiohttp.ClientTimeout(total=1)) as resp:
                        if resp.status == 200:
                            return
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
                await asyncio.sleep(0.05)
        raise TimeoutError(f"serve did not answer /healthz within {timeout} s:\n{self.output()[-2000:]}")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a power cut for the process."""
        if self.alive:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait()

    async def stop(self) -> int:
        """SIGTERM and wait: the clean stop (queued changes are committed first)."""
        if self.proc is None:
            return 0
        if self.alive:
            self.proc.terminate()
            try:
                await asyncio.to_thread(self.proc.wait, 15)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""
