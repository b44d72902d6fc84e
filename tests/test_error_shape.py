"""Every HTTP error an endpoint gives is one JSON shape, `{"error": "<why>"}`, whatever the message holds."""

from __future__ import annotations

import aiohttp
import pytest

from .conftest import RunningHub

CASES = [  # (path, the token's role or None, the status, words the message must hold)
    ("/api/state", None, 401, "bearer token"),
    ("/api/report", "registrar", 403, "may not read"),
    ("/api/deadlines", "viewer", 403, "may not read"),
    ("/api/documents/nope\".docx", "admin", 404, "no document"),
    ("/api/documents.zip?date=24/11/2023", "admin", 400, "YYYY-MM-DD"),
    ("/report.csv?lang=fr", "admin", 400, "lang must be one of"),
    ("/api/questions/q\"404/similar", "moderator", 404, "unknown question"),
]


@pytest.mark.parametrize(("path", "role", "status", "words"), CASES, ids=[c[0] for c in CASES])
async def test_http_errors_are_one_json_shape(hub: RunningHub, path: str, role: str | None, status: int,
                                              words: str) -> None:
    headers = {"Authorization": f"Bearer {hub.token(role, site='dak-ha' if role == 'registrar' else None)}"} if role else {}
    async with aiohttp.ClientSession() as http, http.get(hub.url + path, headers=headers) as resp:
        assert resp.status == status
        assert resp.content_type == "application/json"
        body = await resp.json()
    assert list(body) == ["error"] and words in body["error"], body
