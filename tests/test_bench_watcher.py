"""The load generator's connection (bench/watcher.py) cuts text frames out of the bytes itself: every frame,
whatever its size and however TCP splits it, reaches the reader whole and in order, and a ping mid-stream still
gets its pong from the library's parser."""

from __future__ import annotations

import asyncio

from aiohttp import WSMsgType, web

from bench.watcher import Watcher
from hub.protocol.messages import text_frame

PAYLOADS = [b'{"type":"event","n":1}', b'{"type":"event","pad":"' + b"x" * 300 + b'"}',
            b'{"type":"event","pad":"' + b"y" * 70_000 + b'"}', b'{"type":"other","n":4}']


async def test_frames_split_anywhere_arrive_whole_and_a_ping_is_answered(unused_tcp_port: int) -> None:
    pong: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False, compress=False)
        await ws.prepare(request)
        await ws.receive()  # the watcher's auth
        await ws.send_str('{"type":"auth_ok"}')
        transport = request.transport
        assert transport is not None
        raw = b"".join(text_frame(p) for p in PAYLOADS[:3])
        for cut in (1, 3, 30, 400, 40_000):  # inside a header, inside a payload, across frames
            transport.write(raw[:cut])
            raw = raw[cut:]
            await asyncio.sleep(0.05)
        transport.write(raw)
        await ws.ping(b"still there?")
        transport.write(text_frame(PAYLOADS[3]))
        message = await ws.receive()
        pong.set_result(message.data if message.type is WSMsgType.PONG else b"")
        await ws.receive()  # until the watcher closes
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    pushed: list[bytes] = []
    watcher = None
    try:
        watcher = await Watcher.connect(f"ws://127.0.0.1:{unused_tcp_port}/ws", "t", lambda d, _: pushed.append(d),
                                        subscribe=False)
        other = await asyncio.wait_for(watcher.replies.get(), 5)
        assert await asyncio.wait_for(pong, 5) == b"still there?"
        assert pushed == PAYLOADS[:3]
        assert other == PAYLOADS[3]
    finally:
        if watcher is not None:
            watcher.close()
        await runner.cleanup()
