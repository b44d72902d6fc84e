"""Malformed HTTP from a client is one quiet log line: no traceback to flood the log, no echo of its bytes.

aiohttp logs a request it cannot parse at ERROR with a traceback whose message quotes the offending
header line, which could be anyone's Authorization header; this filter keeps only the peer and why.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError


def quiet_bad_requests(record: logging.LogRecord) -> bool:
    """A logging filter: rewrite aiohttp's report of an unparseable request; let everything else through."""
    exc = record.exc_info[1] if record.exc_info else None
    if record.name == "aiohttp.server" and isinstance(exc, HttpProcessingError):
        record.args = (record.getMessage(), type(exc).__name__, exc.code)
        record.msg = "%s: malformed HTTP (%s, answered %s)"
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.INFO, "INFO"
    return True
