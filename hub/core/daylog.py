"""The operator's log: one line for each thing that matters on the day, as text or JSON.

A hall lost or back, an incident opened or closed, a check-in, the phase, the programme, the floor:
each line names the site by id and by name and carries the same facts as JSON fields under
`--log-format json`. Only token ids are ever logged, never tokens.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import TYPE_CHECKING, Any

import orjson

from hub.core.events import EVENTS
from hub.logs import quiet_bad_requests, quiet_http_clients

if TYPE_CHECKING:
    from hub.core.state import State
    from hub.log.base import Event

log = logging.getLogger("diemcau.day")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
UNLOGGED = frozenset({"event", "seq", "phone"})  # names clashing with ours, and personal data


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, and the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage(),
            **getattr(record, "fields", {})}
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def configure(level: str, fmt: str = "text") -> None:
    """Logs to stderr, as readable text or as JSON lines for a log shipper."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter(TEXT_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    handler.addFilter(quiet_bad_requests)
    logging.basicConfig(level=getattr(logging, level.upper()), handlers=[handler], force=True)
    quiet_http_clients()


def status_line(state: State, e: Event) -> tuple[int, str]:
    before, now = e.data.get("previous"), e.data["status"]
    if now == "lost":
        return logging.WARNING, "lost: no heartbeat"
    if before == "lost":
        return logging.INFO, f"reconnected ({now})"
    return (logging.WARNING if now == "degraded" else logging.INFO), f"{before} -> {now}"


def incident_line(state: State, e: Event) -> tuple[int, str]:
    if e.data["open"]:
        return logging.WARNING, f"{e.data['kind']} incident opened: {e.data.get('note') or '-'}"
    return logging.INFO, f"{e.data['kind']} incident {e.data['incident']} closed: {e.data.get('note') or '-'}"


def agenda_line(state: State, e: Event) -> tuple[int, str]:
    titles = {item.id: item.title for item in state.config.agenda}
    return logging.INFO, f"programme: {e.data['item']} ({titles.get(e.data['item'], '?')})"


def floor_line(state: State, e: Event) -> tuple[int, str]:
    return logging.INFO, f"called to the floor{' for ' + e.data['question'] if e.data.get('question') else ''}"


def checkin_line(state: State, e: Event) -> tuple[int, str]:
    return logging.INFO, f"checked in by {e.data['technician']}"


def phase_line(state: State, e: Event) -> tuple[int, str]:
    return logging.INFO, f"phase: {e.data['phase']}"


def log_event(state: State, e: Event) -> None:
    """Log a folded event if it is one that matters on the day."""
    line = EVENTS[e.type].line
    if line is None or not log.isEnabledFor(logging.INFO):
        return
    level, text = line(state, e)
    fields: dict[str, Any] = {"event": e.type, "seq": e.seq, "actor": e.actor, **_scalars(e.data)}
    if e.site is not None:
        name = state.sites[e.site].config.name if e.site in state.sites else e.site
        fields.update(site=e.site, site_name=name)
        text = f"site {e.site} ({name}): {text}"
    log.log(level, text, extra={"fields": fields})


def _scalars(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if isinstance(v, (str, int, float, bool)) and k not in UNLOGGED}
