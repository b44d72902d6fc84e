"""What a command can come to: the contract's error codes, the errors handlers raise, and the outcomes
the dispatch hands back (an answer to send once durable, or a subscription to start).

Handlers raise one of these; the connection maps each to its code, so no handler builds a frame.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

INVALID_FORMAT = "invalid_format"
UNKNOWN_COMMAND = "unknown_command"
UNAUTHORIZED = "unauthorized"
NOT_FOUND = "not_found"
CONFLICT = "conflict"
RATE_LIMITED = "rate_limited"
INTERNAL_ERROR = "internal_error"
ERROR_CODES = (INVALID_FORMAT, UNKNOWN_COMMAND, UNAUTHORIZED, NOT_FOUND, CONFLICT, RATE_LIMITED, INTERNAL_ERROR)


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
    write: asyncio.Future[None] | None = None  # the commit holding its event; forwarded: the reply, folded here

    def ready(self, durable_seq: int) -> bool:
        return self.write.done() if self.write is not None else self.seq <= durable_seq


@dataclass(frozen=True, slots=True)
class Subscription:
    """A subscribe waiting its turn, so its answer precedes the catch-up frame it triggers."""

    since: int | None


Outcome = Answer | Subscription | HubError


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
