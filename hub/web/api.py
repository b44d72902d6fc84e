"""HTTP endpoints: health, the state snapshot, bearer-token checks, and the websocket handshake."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from aiohttp import web

from hub.core import views
from hub.protocol.connection import Connection
from hub.web.keys import HUB
from hub.web.responses import json_response, require


async def healthz(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    health = {
        "status": "ok", "event": hub.config.event.id, "seq": hub.state.seq, "durable_seq": hub.log.durable_seq,
        "phase": hub.state.phase, "connections": len(hub.connections), "subscribers": len(hub.fanout.subscribers),
        "uptime_seconds": round(hub.clock() - hub.started, 1),
    }
    if hub.cluster is not None:
        health.update(hub.cluster.health())
    return web.json_response(health)


async def api_state(request: web.Request) -> web.Response:
    who = await require(request)
    hub = request.app[HUB]
    snapshot = views.snapshot(hub.state, who.agency)
    snapshot["now"] = hub.fanout.now_iso()
    return json_response(snapshot)


def origin_allowed(request: web.Request) -> bool:
    """Browsers must come from the hub's own origin, the allow-list, or another node of the cluster, live or
    gone (a page it served failing over here); non-browsers send no Origin."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    hub = request.app[HUB]
    if origin in hub.config.server.allowed_origins or origin.lower() in map(node_origin, hub.known_node_urls()):
        return True
    return urlsplit(origin).netloc.lower() == (request.host or "").lower()


def node_origin(url: str) -> str:
    """`https://n1.example:8443/hub/` as a browser's Origin header names it: `https://n1.example:8443`."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


async def websocket(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB]
    if not origin_allowed(request):
        raise web.HTTPForbidden(text=f"origin {request.headers.get('Origin')!r} is not allowed")
    limit = hub.config.limits.max_frame_bytes
    # No permessage-deflate: it would compress every pushed frame again per client and keep a zlib
    # context (hundreds of KB) per connection; frames are encoded once and sent as the same bytes.
    ws = web.WebSocketResponse(max_msg_size=limit * 4, heartbeat=30, decode_text=False, compress=False)
    await ws.prepare(request)
    conn = Connection(hub, ws, request.remote or "?", request.transport)
    try:
        await conn.run()
    except asyncio.CancelledError:
        raise
    finally:
        if not ws.closed:
            await ws.close()
    return ws


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/state", api_state)
    app.router.add_get("/ws", websocket)
