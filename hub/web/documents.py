"""The official documents over HTTP: the list on offer, one .docx, or all of them in a zip."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import zipfile

from aiohttp import web

from hub.config import Config
from hub.core.schedule import today
from hub.documents.letters import DOCX, Report, catalogue, render, render_one
from hub.report.build import hub_report
from hub.roles import DOCUMENT_READERS
from hub.web.keys import HUB
from hub.web.responses import json_error, json_response, require


def _day(request: web.Request) -> dt.date:
    hub = request.app[HUB]
    given = request.query.get("date")
    if given is None:
        return today(hub.state.tz, hub.clock())
    try:
        return dt.date.fromisoformat(given)
    except ValueError:
        raise json_error(web.HTTPBadRequest, f"date must be YYYY-MM-DD, not {given[:20]!r}") from None


async def api_list(request: web.Request) -> web.Response:
    """GET /api/documents: the documents on offer, for the moderator console to list."""
    await require(request, DOCUMENT_READERS)
    hub = request.app[HUB]
    return json_response({"documents": catalogue(hub.config, await hub_report(hub))})


async def api_one(request: web.Request) -> web.Response:
    """GET /api/documents/{name}: one .docx."""
    await require(request, DOCUMENT_READERS)
    hub, name = request.app[HUB], request.match_info["name"]
    day = _day(request)
    report = await hub_report(hub)
    if name not in {d["name"] for d in catalogue(hub.config, report)}:
        raise json_error(web.HTTPNotFound, f"no document {name[:80]!r}")
    body = await asyncio.to_thread(render_one, hub.config, report, name, day)
    return web.Response(body=body, content_type=DOCX,
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def api_zip(request: web.Request) -> web.Response:
    """GET /api/documents.zip: every document in one archive."""
    await require(request, DOCUMENT_READERS)
    hub = request.app[HUB]
    day = _day(request)
    body = await asyncio.to_thread(_zip, hub.config, await hub_report(hub), day)
    name = f"{hub.config.event.id}-van-ban.zip"
    return web.Response(body=body, content_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _zip(config: Config, report: Report, day: dt.date) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in render(config, report, day).items():
            archive.writestr(name, content)
    return buffer.getvalue()


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/documents", api_list)
    app.router.add_get("/api/documents.zip", api_zip)
    app.router.add_get("/api/documents/{name}", api_one)
