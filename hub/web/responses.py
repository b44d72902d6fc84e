"""What every HTTP endpoint shares: the bearer-token check and JSON answers, errors included.

Every error an endpoint raises is `{"error": "..."}` built here, so its shape is one and its text is
always valid JSON whatever the message holds.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
from aiohttp import web

from hub.tokens import Identity
from hub.web.keys import HUB


def json_response(data: object, status: int = 200) -> web.Response:
    """A JSON answer encoded with orjson (dates, dataclasses, Vietnamese text as UTF-8)."""
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def json_error(kind: type[web.HTTPError], message: str, headers: dict[str, str] | None = None) -> web.HTTPError:
    """An HTTP error to raise, its body `{"error": message}`."""
    return kind(text=orjson.dumps({"error": message}).decode(), content_type="application/json", headers=headers)


async def require(request: web.Request, roles: Iterable[str] | None = None) -> Identity:
    """The bearer token's identity; 401 when missing or wrong, 403 when the role may not."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise json_error(web.HTTPUnauthorized, "a bearer token is required", {"WWW-Authenticate": "Bearer"})
    who = await request.app[HUB].authenticate(token.strip())
    if who is None:
        raise json_error(web.HTTPUnauthorized, "unknown or revoked token", {"WWW-Authenticate": "Bearer"})
    if roles is not None and who.role not in roles:
        raise json_error(web.HTTPForbidden, f"role {who.role} may not read this")
    return who
