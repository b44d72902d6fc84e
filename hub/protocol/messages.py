"""Frames in and out: the one place the envelope and the error codes are defined."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

INVALID_FORMAT = "invalid_format"
UNKNOWN_COMMAND = "unknown_command"
UNAUTHORIZED = "unauthorized"
NOT_FOUND = "not_found"
CONFLICT = "conflict"
RATE_LIMITED = "rate_limited"
INTERNAL_ERROR = "internal_error"
ERROR_CODES = (INVALID_FORMAT, UNKNOWN_COMMAND, UNAUTHORIZED, NOT_FOUND, CONFLICT, RATE_LIMITED, INTERNAL_ERROR)

# Close codes: 1008 policy (auth, flood), 1009 too big, 1013 try again later (too slow to keep up).
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_SLOW = 1013
CLOSE_GOING_AWAY = 1001
CLOSE_REVOKED = 4001


class HubError(Exception):
    """A command that cannot be carried out; `code` is one of the contract's error codes."""

    code = INTERNAL_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidFormat(HubError):
    code = INVALID_FORMAT


class UnknownCommand(HubError):
    code = UNKNOWN_COMMAND


class Unauthorized(HubError):
    code = UNAUTHORIZED


class NotFound(HubError):
    code = NOT_FOUND


class Conflict(HubError):
    code = CONFLICT


class RateLimited(HubError):
    code = RATE_LIMITED


@dataclass(slots=True)
class Answer:
    """A command's result, and what must be on disk before it may be sent."""

    result: dict[str, Any]
    seq: int = 0  # sent once the log is durable up to here (a retried op_id: its first event)
    write: asyncio.Future[None] | None = None  # the group commit holding the event this command stored, if any

    def ready(self, durable_seq: int) -> bool:
        return self.write.done() if self.write is not None else self.seq <= durable_seq


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


def auth_ok(role: str, site: str | None, agency: str | None) -> dict[str, Any]:
    return {"type": "auth_ok", "role": role, "site": site, "agency": agency}


def auth_invalid(message: str) -> dict[str, Any]:
    return {"type": "auth_invalid", "message": message}


def describe_validation(exc: ValidationError) -> str:
    """Pydantic's errors as one readable line: `count: Input should be greater than or equal to 0`."""
    parts = []
    for error in exc.errors()[:5]:
        loc = ".".join(str(p) for p in error["loc"]) or "command"
        msg = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            msg = "is not a field of this command"
        elif error["type"] == "missing":
            msg = "is required"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)
