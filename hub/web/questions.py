"""HTTP for the question queue: search (diacritics optional), likely duplicates, and file import."""

from __future__ import annotations

from aiohttp import BodyPartReader, web

from hub.core import views
from hub.questions.importer import ImportFileError, parse_questions, report, store
from hub.questions.search import search, similar
from hub.roles import IMPORTERS
from hub.web.keys import HUB
from hub.web.responses import json_error, json_response, require

MAX_IMPORT_BYTES = 4 * 1024 * 1024


def _set(request: web.Request, name: str) -> set[str] | None:
    """A filter given once or repeated, each possibly comma-separated: ?status=queued,on_air."""
    values = {v.strip() for raw in request.query.getall(name, []) for v in raw.split(",") if v.strip()}
    return values or None


async def list_questions(request: web.Request) -> web.Response:
    """`GET /api/questions?q=dao tao&topic=&status=&site=`: any token; an agency token sees only its own."""
    who = await require(request)
    state = request.app[HUB].state
    visible = (q for q in state.questions.values() if views.question_visible(q, who.agency))
    found = search(visible, request.query.get("q", ""), _set(request, "topic"), _set(request, "status"),
                   _set(request, "site"))
    return json_response({"count": len(found), "questions": [q.view(state.tz) for q in found]})


async def similar_questions(request: web.Request) -> web.Response:
    """`GET /api/questions/{id}/similar[?all_topics=1]`: likely duplicates, best first, with their score."""
    who = await require(request)
    state = request.app[HUB].state
    target = state.questions.get(request.match_info["id"])
    if target is None or not views.question_visible(target, who.agency):
        raise json_error(web.HTTPNotFound, f"unknown question {request.match_info['id']!r}")
    others = (q for q in state.questions.values() if views.question_visible(q, who.agency))
    pairs = similar(target, others, same_topic=request.query.get("all_topics") not in ("1", "true"))
    return json_response({"question": target.id, "similar": [
        {"score": round(score, 3), **q.view(state.tz)} for q, score in pairs]})


async def import_questions(request: web.Request) -> web.Response:
    """`POST /api/questions/import[?dry_run=1]`: a CSV or XLSX file, raw or as multipart field `file`."""
    who = await require(request, IMPORTERS)
    hub = request.app[HUB]
    data = await _upload(request)
    try:
        parsed = parse_questions(hub.config, data)
    except ImportFileError as exc:
        return json_response({"ok": False, "rows": 0, "imported": 0, "unchanged": 0, "failed": 0, "results": [],
                      "errors": [{"line": None, "field": None, "message": str(exc), "text": str(exc)}]}, 400)
    if parsed.errors:
        return json_response(report(parsed, None), 422)
    if request.query.get("dry_run") in ("1", "true"):
        return json_response({**report(parsed, None), "dry_run": True, "preview": [
            {"line": r.line, "op_id": r.op_id, **r.fields} for r in parsed.rows]})
    before = hub.state.seq
    results = await store(hub, who, parsed.rows)
    return json_response(report(parsed, results, before))


async def _upload(request: web.Request) -> bytes:
    """The file's bytes, from a multipart form or the raw body."""
    if not request.content_type.startswith("multipart/"):
        return await request.read()
    reader = await request.multipart()
    async for part in reader:
        if isinstance(part, BodyPartReader) and (part.name == "file" or part.filename):
            data = await part.read(decode=True)
            if len(data) > MAX_IMPORT_BYTES:
                raise web.HTTPRequestEntityTooLarge(max_size=MAX_IMPORT_BYTES, actual_size=len(data))
            return bytes(data)
    raise json_error(web.HTTPBadRequest, 'send the file as the multipart field "file"')


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/questions", list_questions)
    app.router.add_get("/api/questions/{id}/similar", similar_questions)
    app.router.add_post("/api/questions/import", import_questions)
