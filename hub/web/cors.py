"""Cross-origin requests from a page another node served: after a failover its fetches come here.

A page keeps its origin (the node that served it) when its websocket moves to another node; its
downloads and reads (`conn.fetch` in hub.js) then go to the node it is on. Browsers allow that only
with CORS headers, given here to the origins `origin_allowed` accepts for websockets (every node heard,
live or gone, and `server.allowed_origins`), never to any other. Same-origin requests and non-browsers (no Origin)
pass untouched.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from hub.web.api import origin_allowed

PREFLIGHT = {"Access-Control-Allow-Methods": "GET, POST", "Access-Control-Allow-Headers": "Authorization, Content-Type",
             "Access-Control-Max-Age": "600"}


def _cross_origin(request: web.Request) -> str | None:
    """The Origin of a browser on another origin that may read here; None for any other request."""
    origin = request.headers.get("Origin")
    if origin is None or urlsplit(origin).netloc.lower() == (request.host or "").lower():
        return None
    return origin if origin_allowed(request) else None


def _allow(answer: web.StreamResponse | web.HTTPException, origin: str) -> None:
    answer.headers["Access-Control-Allow-Origin"] = origin
    answer.headers["Access-Control-Expose-Headers"] = "Content-Disposition"
    answer.headers["Vary"] = "Origin"


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    origin = _cross_origin(request)
    if origin is None or request.path == "/ws":  # the websocket checks its Origin itself
        return await handler(request)
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        response: web.StreamResponse = web.Response(status=204, headers=PREFLIGHT)
    else:
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # a 401 or 404 the page should read, not a CORS failure
            _allow(exc, origin)
            raise
    _allow(response, origin)
    return response
