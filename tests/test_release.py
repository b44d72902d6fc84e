"""The one place "durable before sent" is kept: held actions run in seq order once the log holds them."""

from __future__ import annotations

import asyncio

import pytest

from hub.core.release import Release
from hub.log.base import StoreError


class Disk:
    """A log's durable seq, moved by hand."""

    def __init__(self) -> None:
        self.seq = 0


def test_held_actions_run_in_seq_order_once_durable() -> None:
    disk, ran = Disk(), []
    release = Release(lambda: disk.seq)
    release.after(3, lambda: ran.append("c3"))
    release.after(2, lambda: ran.append("b2"))
    release.after(3, lambda: ran.append("d3"))
    release.after(0, lambda: ran.append("now"))
    assert ran == ["now"] and len(release) == 3
    disk.seq = 2
    release.written()
    assert ran == ["now", "b2"]
    disk.seq = 5
    release.written()
    assert ran == ["now", "b2", "c3", "d3"] and len(release) == 0


def test_a_failed_write_tells_what_was_held_and_drops_it() -> None:
    disk, ran = Disk(), []
    release = Release(lambda: disk.seq)
    release.after(4, lambda: ran.append("sent"), lambda: ran.append("lost 4"))
    release.after(2, lambda: ran.append("sent"))  # nothing to say when lost: dropped
    release.lose()
    disk.seq = 9
    release.written()
    assert ran == ["lost 4"] and len(release) == 0


async def test_wait_returns_once_durable_and_raises_when_lost() -> None:
    disk = Disk()
    release = Release(lambda: disk.seq)
    await release.wait(0)
    kept = asyncio.ensure_future(release.wait(1))
    lost = asyncio.ensure_future(release.wait(2))
    await asyncio.sleep(0)
    assert not kept.done()
    disk.seq = 1
    release.written()
    await asyncio.wait_for(kept, 1)
    assert not lost.done()
    release.lose()
    with pytest.raises(StoreError, match="seq 2"):
        await asyncio.wait_for(lost, 1)
