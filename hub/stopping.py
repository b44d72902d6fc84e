"""How the commands that run until stopped (serve, audit --follow, simulate, agent) hear SIGINT and SIGTERM.

Each installs its own handlers for both: a shell that starts a job in the background (`diemcau … &`,
`nohup diemcau … &`) leaves SIGINT ignored in it, Python then installs no Ctrl-C handler at all, and
SIGTERM (systemd, `kill`) would otherwise end the process without its clean-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Coroutine
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def interrupt_on_signals() -> None:
    """Until an event loop takes them over, make SIGINT and SIGTERM raise KeyboardInterrupt, as Ctrl-C does."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.default_int_handler)


def run_stoppable(work: Coroutine[Any, Any, Any]) -> bool:
    """`asyncio.run` the work until it ends (False) or SIGINT or SIGTERM stops it (True), one that
    came before the loop took the signals over included."""
    interrupt_on_signals()
    try:
        return asyncio.run(run_until_signal(work))
    except KeyboardInterrupt:
        return True


async def run_until_signal(work: Awaitable[Any]) -> bool:
    """Run `work` until it ends (False) or SIGINT or SIGTERM arrives (True, once it is cancelled and done)."""
    loop = asyncio.get_running_loop()
    signalled = asyncio.Event()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, signalled.set)
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(signalled.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task.done():
        task.result()  # its exception, if it failed
        return False
    await stop(task)
    return True


async def stop(task: asyncio.Future[Any]) -> None:
    """Cancel a task and wait for it; repeat, because Python 3.11's wait_for can swallow a cancel
    that lands just as an answer arrives."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)
    with contextlib.suppress(asyncio.CancelledError):
        task.result()
