"""What the libraries under the hub would log that must not reach the operator's log.

aiohttp logs a request it cannot parse at ERROR with a traceback whose message quotes the offending
header line, which could be anyone's Authorization header; a filter keeps only the peer and why.
httpx logs every request's full URL, and a video bridge's URL carries its credential (Jitsi's
`token=`, BigBlueButton's `checksum=`, the same on every poll and so replayable).
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

# httpx logs each request line at INFO and httpcore each step of it at DEBUG: a bridge poll's URL
# with its token or checksum every few seconds, at any level. The hub logs the bridge's condition itself.
HTTP_CLIENT_LOGGERS = ("httpx", "httpcore")


def quiet_bad_requests(record: logging.LogRecord) -> bool:
    """A logging filter: rewrite aiohttp's report of an unparseable request; let everything else through."""
    exc = record.exc_info[1] if record.exc_info else None
    if record.name == "aiohttp.server" and isinstance(exc, HttpProcessingError):
        record.args = (record.getMessage(), type(exc).__name__, exc.code)
        record.msg = "%s: malformed HTTP (%s, answered %s)"
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.INFO, "INFO"
    return True


def quiet_http_clients() -> None:
    """Keep the HTTP client's request lines (URLs with bridge credentials) out of the log at every level."""
    for name in HTTP_CLIENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
