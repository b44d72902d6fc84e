"""GET /api/deadlines: the work around the day against its deadlines, for whoever may read it."""

from __future__ import annotations

from aiohttp import web

from hub.questions.deadlines import for_agency, progress
from hub.roles import DEADLINE_READERS
from hub.web.keys import HUB
from hub.web.responses import json_response, require


async def api_deadlines(request: web.Request) -> web.Response:
    """GET /api/deadlines: progress against the plan for moderator, chair and admin; an agency sees its own row."""
    who = await require(request, DEADLINE_READERS)
    hub = request.app[HUB]
    report = progress(hub.state, hub.clock())
    return json_response(for_agency(report, who.agency or "") if who.role == "agency" else report)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/deadlines", api_deadlines)
