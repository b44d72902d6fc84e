"""The report over HTTP for the admin, moderator and chair: /report, /report.xlsx, /report.csv, /api/report.

Every route takes `Authorization: Bearer T` (scripts: `curl -H "Authorization: Bearer T" .../report.xlsx`).
A browser following a plain link sends no header and page tokens live in the URL fragment, which
never reaches the server; so a browser's navigation to `/report` (`Sec-Fetch-Mode: navigate`, no
header) gets a small page holding no data (dashboard/report.html) whose script reads the fragment
and fetches the same URL with the header. Anything else without a valid token is 401 (with that page
as the body, for browsers that send no fetch metadata). No token travels in a query string or a cookie.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from hub.report.build import hub_report
from hub.report.formats import MEDIA_TYPES, RENDERERS
from hub.report.tables import LANGS
from hub.roles import REPORT_READERS
from hub.web.keys import HUB
from hub.web.pages import DASHBOARD, SECURITY_HEADERS
from hub.web.responses import json_error, require

SHELL = DASHBOARD / "report.html"


async def respond(request: web.Request, form: str) -> web.Response:
    lang = request.query.get("lang", "vi")
    if lang not in LANGS:
        raise json_error(web.HTTPBadRequest, f"lang must be one of {', '.join(LANGS)}")
    hub = request.app[HUB]
    body = await asyncio.to_thread(RENDERERS[form], await hub_report(hub), lang)
    headers = {**SECURITY_HEADERS, "Content-Type": MEDIA_TYPES[form]}
    if form in ("xlsx", "csv"):
        headers["Content-Disposition"] = f'attachment; filename="{hub.config.event.id}-report.{form}"'
    return web.Response(body=body, headers=headers)


def route(form: str):
    async def handler(request: web.Request) -> web.Response:
        await require(request, REPORT_READERS)
        return await respond(request, form)
    return handler


def shell(status: int) -> web.Response:
    headers = {**SECURITY_HEADERS, "Content-Type": MEDIA_TYPES["html"]}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return web.Response(body=SHELL.read_bytes(), status=status, headers=headers)


async def report_page(request: web.Request) -> web.Response:
    """The printable report with a bearer header; for a browser's plain navigation, the page that sends it."""
    if "Authorization" not in request.headers and request.headers.get("Sec-Fetch-Mode") == "navigate":
        return shell(200)
    try:
        await require(request, REPORT_READERS)
    except web.HTTPUnauthorized:
        return shell(401)
    return await respond(request, "html")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/report", report_page)
    app.router.add_get("/report.xlsx", route("xlsx"))
    app.router.add_get("/report.csv", route("csv"))
    app.router.add_get("/api/report", route("json"))
