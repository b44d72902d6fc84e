"""Child processes a test starts, ended whatever happens in the test: a failed assertion, a timeout
or a hung child never leaves one running."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from typing import Any


def ignore_sigint() -> None:
    """A child's preexec_fn: start it with SIGINT ignored, as a shell's background job (`cmd &`) is."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def popen(*command: str, **kwargs: Any) -> Iterator[subprocess.Popen[str]]:
    """`subprocess.Popen` (text mode) for the block; killed at its end if it is still running."""
    with subprocess.Popen(command, text=True, **kwargs) as proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()


@contextlib.asynccontextmanager
async def spawn(*command: str, **kwargs: Any) -> AsyncIterator[asyncio.subprocess.Process]:
    """`asyncio.create_subprocess_exec` for the block; killed and reaped at its end if it is still running."""
    proc = await asyncio.create_subprocess_exec(*command, **kwargs)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
