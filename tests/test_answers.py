"""How a connection sends its answers: in command order, and those one commit frees in one write."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets

from hub.core.errors import Answer, Conflict
from hub.protocol.connection import Connection

from .conftest import RunningHub


class RecordingTransport:
    """The hub-side socket of one connection, with each write noted on its way out."""

    def __init__(self, real: asyncio.Transport) -> None:
        self.real, self.writes = real, []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.real.write(data)

    def is_closing(self) -> bool:
        return self.real.is_closing()

    def get_write_buffer_size(self) -> int:
        return self.real.get_write_buffer_size()


async def _connected(hub: RunningHub) -> tuple[Any, Connection, RecordingTransport]:
    ws = await websockets.connect(hub.ws_url)
    await ws.send(json.dumps({"type": "auth", "token": hub.token("registrar", site="dak-ha")}))
    assert json.loads(await ws.recv())["type"] == "auth_ok"
    conn = next(iter(hub.hub.connections))
    assert conn.transport is not None
    recording = RecordingTransport(conn.transport)
    conn.transport = recording  # type: ignore[assignment]
    return ws, conn, recording


async def test_answers_freed_by_one_commit_go_out_in_one_write_in_command_order(hub: RunningHub) -> None:
    ws, conn, recording = await _connected(hub)
    commit = asyncio.get_running_loop().create_future()
    conn._answer(1, Answer({"n": 1}, 1, commit))  # waits for its commit...
    for n in range(2, 5):
        conn._answer(n, Answer({"n": n}))  # ...and these, ready, wait behind it
    conn._answer(5, Conflict("an error waits its turn as well"))
    assert recording.writes == []
    commit.set_result(None)
    conn.send_answers()  # what the hub does after each commit
    assert len(recording.writes) == 1
    frames = [json.loads(await ws.recv()) for _ in range(5)]
    assert [f["id"] for f in frames] == [1, 2, 3, 4, 5]
    assert [f["result"]["n"] for f in frames[:4]] == [1, 2, 3, 4]
    assert frames[4]["error"]["code"] == "conflict"
    await ws.close()


async def test_a_subscribe_answer_keeps_its_place_among_answers_sent_together(hub: RunningHub) -> None:
    ws, conn, recording = await _connected(hub)
    commit = asyncio.get_running_loop().create_future()
    conn._answer(1, Answer({"n": 1}, 1, commit))
    conn._handle(json.dumps({"id": 2, "type": "subscribe"}).encode())
    conn._answer(3, Answer({"n": 3}))
    commit.set_result(None)
    conn.send_answers()
    kinds = []
    while len(kinds) < 4:
        frame = json.loads(await ws.recv())
        kinds.append(frame.get("id") or frame["type"])
    assert kinds == [1, 2, "snapshot", 3]  # the catch-up follows its own answer, and 3 waits for both
    await ws.close()
