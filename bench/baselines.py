"""The two bare aiohttp servers the hub is measured against: what the framework alone can do.

`echo`: parse each JSON frame and answer it (no validation, no storage).
`broadcast`: answer each frame and send one pre-encoded frame carrying it to every subscriber.
Both speak just enough of the hub's protocol (auth, subscribe, id/result) for the same load generator.
Run: `python -m bench.baselines echo|broadcast PORT`.
"""

from __future__ import annotations

import sys

import orjson
from aiohttp import WSMsgType, web

from hub.cli.serve import event_loop

SUBSCRIBERS: set[web.WebSocketResponse] = set()


async def handle(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=0, compress=False)
    await ws.prepare(request)
    broadcast = request.app["mode"] == "broadcast"
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            frame = orjson.loads(msg.data)
            if frame.get("type") == "subscribe":
                SUBSCRIBERS.add(ws)
            elif broadcast and frame.get("type") != "auth":
                data = orjson.dumps({"type": "event", "events": [{"type": frame["type"], "data": frame}]})
                for sub in list(SUBSCRIBERS):
                    await sub.send_frame(data, WSMsgType.TEXT)
            answer = {"id": frame.get("id"), "type": "result", "success": True, "result": {}}
            await ws.send_frame(orjson.dumps(answer), WSMsgType.TEXT)
    finally:
        SUBSCRIBERS.discard(ws)
    return ws


def main() -> None:
    mode, port = sys.argv[1], int(sys.argv[2])
    app = web.Application()
    app["mode"] = mode
    app.router.add_get("/ws", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, loop=event_loop())  # the hub's loop


if __name__ == "__main__":
    main()
