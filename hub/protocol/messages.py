"""Frames in and out: the one place the envelope of every frame is built and parsed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from hub.core.errors import InvalidFormat
from hub.core.views import PUSHED_SHARED

# Close codes: 1008 policy (auth, flood), 1009 too big, 1013 try again later (too slow to keep up).
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_SLOW = 1013
CLOSE_GOING_AWAY = 1001
CLOSE_REVOKED = 4001


def encode(frame: dict[str, Any]) -> bytes:
    return orjson.dumps(frame)


SHORT_HEADERS = tuple(bytes((0x81, size)) for size in range(126))


def text_frame(payload: bytes) -> bytes:
    """A complete server-to-client websocket text frame (RFC 6455: FIN, unmasked), framed once for every subscriber."""
    size = len(payload)
    if size < 126:
        header = SHORT_HEADERS[size]  # most answers: a third of building it each time
    elif size < 1 << 16:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + payload


def event_frame(seq: int, now: str | None, events: list[dict[str, Any]], parts: dict[str, Any],
                since: int | None = None) -> bytes:
    """A push of the changes up to `seq`: the shared parts and the rows that changed (a catch-up says `since`)."""
    frame: dict[str, Any] = {"type": "event", "seq": seq, "now": now, "events": events}
    if since is not None:
        frame["since"] = since
    frame.update(parts)
    return encode(frame)


def snapshot_frame(seq: int, now: str | None, state: dict[str, Any]) -> bytes:
    """The whole state as one audience sees it: a new subscriber's catch-up, or one too far behind for a delta."""
    return encode({"type": "snapshot", "seq": seq, "now": now, "state": state})


def decode(data: bytes | str) -> Any:
    """Parse a frame's JSON; raise InvalidFormat with the parser's reason."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidFormat(f"frame is not valid JSON: {exc}") from None


def result_ok(msg_id: int | None, result: dict[str, Any]) -> dict[str, Any]:
    return {"id": msg_id, "type": "result", "success": True, "result": result}


def result_error(msg_id: int | None, code: str, message: str) -> dict[str, Any]:
    return {"id": msg_id, "type": "result", "success": False, "error": {"code": code, "message": message}}


def auth_ok(role: str, site: str | None, agency: str | None, node: str | None = None,
            nodes: Iterable[str] = ()) -> dict[str, Any]:
    """Who the token is, the shared parts pushed frames carry (`shared`: a client replaces exactly those), and
    this node's name with every live node's base URL, so a client can fail over (null and [] on a single hub)."""
    return {"type": "auth_ok", "role": role, "site": site, "agency": agency, "shared": list(PUSHED_SHARED),
            "node": node, "nodes": list(nodes)}


def nodes_frame(node: str, nodes: list[str]) -> dict[str, Any]:
    """A cluster's live nodes changed: the URLs a client may fail over to (also in `auth_ok`)."""
    return {"type": "nodes", "node": node, "nodes": nodes}


def auth_invalid(message: str) -> dict[str, Any]:
    return {"type": "auth_invalid", "message": message}
