"""Access control: the whole role x command x site matrix against the contract's roles table, every
HTTP path for 401/403, and the token rules (constant time, hashed, revocable, never logged, links
carry them only in the fragment), Origin checks, the default bind, and TLS end to end."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
import socket
import ssl
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets

from bench.hubproc import DIEMCAU, HubProcess, free_port
from hub import tokens as tokens_module
from hub.cli.serve import serve
from hub.config import Config, Server
from hub.core.commands import COMMANDS
from hub.roles import ROLES
from hub.tokens import PAGE_FOR_ROLE, TokenStore
from sites.client import HubClient

from .conftest import KON_TUM, RunningHub, StartHub

OWN, OTHER = "dak-ha", "kon-ray"
OWN_AGENCY, OTHER_AGENCY = "bhxh", "sxd"
SITE_COMMANDS = {"site.checkin", "site.check", "site.heartbeat", "site.incident"}
READ = {"subscribe", "ping"}
# The contract's roles table, cell by cell: (role, command, own binding?) -> may it?
ROLE_RULES: dict[str, Any] = {
    "admin": lambda cmd, own: True,
    "moderator": lambda cmd, own: cmd in READ | {"question.submit", "question.update", "floor.call", "agency.attendance",
                                                 "event.phase", "question.answer", "agenda.advance"},
    "chair": lambda cmd, own: cmd in READ | {"floor.call"},
    "technician": lambda cmd, own: cmd in READ or (cmd in SITE_COMMANDS and own),
    "registrar": lambda cmd, own: cmd in READ or (cmd in {"attendance.set", "attendance.add", "question.submit"} and own),
    "agency": lambda cmd, own: cmd in READ or (cmd == "question.answer" and own),
    "viewer": lambda cmd, own: cmd in READ,
}


def allowed(role: str, command: str, own: bool) -> bool:
    return ROLE_RULES[role](command, own)


def fields(command: str, own: bool, ctx: dict[str, str], config: Config) -> dict[str, Any]:
    """Fields that make `command` succeed for a role allowed to send it, at its own or another binding."""
    site = OWN if own else OTHER
    return {
        "subscribe": {}, "ping": {},
        "site.checkin": {"site": site, "technician": "Anh Minh"},
        "site.check": {"site": site, "item": config.checklist[0].id, "ok": True},
        "site.heartbeat": {"site": site, "rtt_ms": 20},
        "site.incident": {"site": site, "kind": "audio", "open": True, "note": "rè"},
        "attendance.set": {"site": site, "category": "workers", "count": 12},
        "attendance.add": {"site": site, "category": "workers", "delta": 1},
        "question.submit": {"site": site, "topic": "livelihood", "text": "Câu hỏi",
                            "delegate": {"name": "Nguyễn Văn A", "unit": "Công ty"}},
        "question.update": {"question": ctx.get("own_q", ""), "position": 1.5},
        "floor.call": {"site": site},
        "agency.attendance": {"agency": OWN_AGENCY, "status": "head", "delegate": "Ông B"},
        "event.phase": {"phase": "rehearsal"},
        "question.answer": {"question": ctx.get("own_q", "") if own else ctx.get("other_q", ""), "kind": "draft", "text": "Dự thảo"},
        "agenda.advance": {"item": config.agenda[0].id},
    }[command]


def test_the_table_covers_every_command() -> None:
    """A new command must be placed in the contract's table (and here) before it ships."""
    assert set(COMMANDS) == SITE_COMMANDS | READ | {
        "attendance.set", "attendance.add", "question.submit", "question.update", "floor.call", "agency.attendance",
        "event.phase", "question.answer", "agenda.advance"}


async def test_role_command_site_matrix(hub: RunningHub, config: Config) -> None:
    admin = await hub.client("admin")
    ctx = {"own_q": (await admin.call("question.submit", **fields("question.submit", True, {}, config),
                                      agency=OWN_AGENCY))["question"],
           "other_q": (await admin.call("question.submit", **fields("question.submit", False, {}, config),
                                        agency=OTHER_AGENCY))["question"]}
    for site in (OWN, OTHER):
        await admin.call("site.checkin", site=site, technician="Kỹ thuật viên")
    clients = {role: await hub.client(role, site=OWN if role in ("technician", "registrar") else None,
                                      agency=OWN_AGENCY if role == "agency" else None) for role in ROLES}
    wrong: list[str] = []
    cells = 0
    for role, command, own in itertools.product(ROLES, sorted(COMMANDS), (True, False)):
        before = hub.hub.log.count()
        answer = await clients[role].send(command, **fields(command, own, ctx, config))
        may = allowed(role, command, own)
        stored = hub.hub.log.count() - before
        if may and not answer["success"]:
            wrong.append(f"{role} {command} {'own' if own else 'other'}: refused {answer['error']}")
        elif not may and (answer["success"] or answer["error"]["code"] != "unauthorized" or stored):
            wrong.append(f"{role} {command} {'own' if own else 'other'}: not refused as unauthorized: {answer}")
        cells += 1
    assert not wrong, "\n".join(wrong)
    assert cells == len(ROLES) * len(COMMANDS) * 2
    print(f"\nwebsocket: {cells} role x command x site cells")


# -- HTTP ---------------------------------------------------------------------------------------

PUBLIC = {"/healthz", "/favicon.ico", "/", "/moderator", "/projector", "/agency", "/technician", "/registrar"}
REPORT_READERS = {"admin", "moderator", "chair"}
CONTRACT_HTTP = {"/api/state": set(ROLES), "/api/report": REPORT_READERS, "/report": REPORT_READERS,
                 "/report.xlsx": REPORT_READERS, "/report.csv": REPORT_READERS}


def _routes(hub: RunningHub) -> list[tuple[str, str]]:
    """Every (method, path) the app serves, placeholders filled, static assets and the websocket left out."""
    found = set()
    for route in hub.server.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if path is None or route.method == "HEAD" or path == "/ws":
            continue
        found.add((route.method, re.sub(r"\{[^}]+\}", "q1", path)))
    return sorted(found)


async def test_every_http_path_answers_401_or_403(hub: RunningHub) -> None:
    tokens = {role: hub.token(role, site=OWN if role in ("technician", "registrar") else None,
                              agency=OWN_AGENCY if role == "agency" else None) for role in ROLES}
    routes = _routes(hub)
    assert ("GET", "/api/state") in routes and len(routes) >= 8
    problems, checked = [], 0
    async with aiohttp.ClientSession() as http:
        for method, path in routes:
            async with http.request(method, hub.url + path) as resp:
                anonymous = resp.status
            if path in PUBLIC:
                if anonymous not in (200, 404):
                    problems.append(f"{method} {path}: public page answered {anonymous}")
                continue
            if anonymous != 401:
                problems.append(f"{method} {path}: {anonymous} without a token, not 401")
            for bad in ("Bearer nope.nope", f"Bearer {tokens['admin'].split('.')[0]}.wrong", "Basic YWRtaW46YWRtaW4=",
                        f"Token {tokens['admin']}", "Bearer"):
                async with http.request(method, hub.url + path, headers={"Authorization": bad}) as resp:
                    if resp.status != 401:
                        problems.append(f"{method} {path} with {bad.split(' ')[0]}: {resp.status}, not 401")
            for role, token in tokens.items():
                async with http.request(method, hub.url + path, headers={"Authorization": f"Bearer {token}"}) as resp:
                    status = resp.status
                checked += 1
                if status == 401:
                    problems.append(f"{method} {path} as {role}: 401 with a valid token")
                expected = CONTRACT_HTTP.get(path)
                if expected is not None and (status == 200) != (role in expected):
                    problems.append(f"{method} {path} as {role}: {status}")
                if expected is not None and role not in expected and status != 403:
                    problems.append(f"{method} {path} as {role}: {status}, not 403")
    assert not problems, "\n".join(problems)
    assert checked >= len(ROLES) * 5
    print(f"\nHTTP: {len(routes)} routes, {checked} role x path cells")


# -- tokens -------------------------------------------------------------------------------------

def test_tokens_are_compared_in_constant_time_even_for_unknown_ids(db_path: Path, monkeypatch) -> None:
    store = TokenStore(db_path)
    issued = store.issue("viewer")
    calls: list[tuple[str, str]] = []
    real = tokens_module.hmac.compare_digest
    monkeypatch.setattr(tokens_module.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    token_id, secret = issued.token.split(".")
    assert store.verify(issued.token) == issued.identity
    wrong_last = "y" if secret.endswith("x") else "x"  # one character off, never the same secret by chance
    assert store.verify(f"{token_id}.{secret[:-1]}{wrong_last}") is None
    assert store.verify(f"ffffffff.{secret}") is None  # unknown id: still one full comparison, no early exit
    assert len(calls) == 3 and all(len(a) == len(b) == 64 for a, b in calls)


def test_tokens_are_stored_only_hashed(db_path: Path, config: Config) -> None:
    store = TokenStore(db_path, config.event.id)
    issued = store.issue_many([(role, OWN if role in ("technician", "registrar") else None,
                                OWN_AGENCY if role == "agency" else None, role) for role in ROLES])
    raw = b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))
    for t in issued:
        secret = t.token.split(".")[1]
        assert secret.encode() not in raw and t.token.encode() not in raw
        assert hashlib.sha256(secret.encode()).hexdigest().encode() in raw


def test_links_carry_tokens_only_in_the_fragment(db_path: Path) -> None:
    store = TokenStore(db_path)
    for role in ROLES:
        issued = store.issue(role, site=OWN if role in ("technician", "registrar") else None,
                             agency=OWN_AGENCY if role == "agency" else None)
        link = issued.link("https://diemcau.kontum.gov.vn/")
        before, _, fragment = link.partition("#")
        assert fragment == f"token={issued.token}" and issued.token.split(".")[1] not in before
        assert before == f"https://diemcau.kontum.gov.vn{PAGE_FOR_ROLE[role]}"


async def test_revoked_token_is_refused_everywhere_and_its_connections_closed(hub: RunningHub) -> None:
    registrar = await hub.client("registrar", site=OWN, subscribe=True)
    token_id = registrar.token.split(".")[0]
    assert hub.tokens.revoke(token_id)
    await asyncio.wait_for(registrar.closed.wait(), 6)  # the hub polls revocations every 2 s
    assert registrar.ws.close_code == 4001 and "revoked" in registrar.ws.close_reason
    assert registrar not in hub.hub.connections
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{hub.url}/api/state", headers={"Authorization": f"Bearer {registrar.token}"}) as resp:
            assert resp.status == 401


# -- origin, bind, TLS, logs (real `serve` processes) ---------------------------------------------

async def test_origin_allow_list(start_hub: StartHub, config: Config) -> None:
    hub = await start_hub(cfg=config.model_copy(update={"server": Server(allowed_origins=["https://hoitruong.kontum.gov.vn"])}))
    ok = HubClient(hub.ws_url, hub.token("viewer"), origin="https://hoitruong.kontum.gov.vn")
    await ok.connect()
    await ok.close()
    for origin in ("https://evil.example", "null", "https://hoitruong.kontum.gov.vn.evil.example",
                   hub.url.replace("127.0.0.1", "localhost")):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(hub.ws_url, additional_headers={"Origin": origin})
        assert refused.value.response.status_code == 403, origin


async def test_origin_of_another_live_node_is_allowed(hub: RunningHub, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page one node served fails over to another node's /ws: every node takes the known nodes' origins."""
    nodes = ["https://n1.kontum.gov.vn:8443/hub/", "http://10.0.0.12:8080"]
    monkeypatch.setattr(hub.hub, "node_urls", lambda: nodes)
    monkeypatch.setattr(hub.hub, "known_node_urls", lambda: nodes)  # whose origins are let in
    for origin in ("https://n1.kontum.gov.vn:8443", "http://10.0.0.12:8080"):
        client = HubClient(hub.ws_url, hub.token("viewer"), origin=origin)
        assert (await client.connect())["nodes"] == nodes
        await client.close()
    for origin in ("https://n1.kontum.gov.vn", "http://10.0.0.12:8081", "https://10.0.0.12:8080"):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(hub.ws_url, additional_headers={"Origin": origin})
        assert refused.value.response.status_code == 403, origin


async def test_a_page_another_node_served_may_read_here_and_no_other(hub: RunningHub,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """After a failover a page keeps its first node's origin and fetches from the node it is on: CORS for the
    live nodes' origins (preflight, reads, errors it must read), nothing for any other origin."""
    monkeypatch.setattr(hub.hub, "node_urls", lambda: ["http://10.0.0.12:8080"])
    monkeypatch.setattr(hub.hub, "known_node_urls", lambda: ["http://10.0.0.12:8080"])
    node, bearer = "http://10.0.0.12:8080", {"Authorization": f"Bearer {hub.token('moderator')}"}
    async with aiohttp.ClientSession() as http:
        async with http.options(f"{hub.url}/api/questions/import", headers={
                "Origin": node, "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization"}) as preflight:
            assert preflight.status == 204
            assert preflight.headers["Access-Control-Allow-Origin"] == node
            assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
            assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        async with http.get(f"{hub.url}/report.csv", headers={"Origin": node, **bearer}) as read:
            assert read.status == 200 and read.headers["Access-Control-Allow-Origin"] == node
            assert "Content-Disposition" in read.headers["Access-Control-Expose-Headers"]
        async with http.get(f"{hub.url}/api/deadlines", headers={"Origin": node}) as refused:
            assert refused.status == 401 and refused.headers["Access-Control-Allow-Origin"] == node
        for origin in ("https://evil.example", "http://10.0.0.12:8081"):
            async with http.get(f"{hub.url}/report.csv", headers={"Origin": origin, **bearer}) as other:
                assert "Access-Control-Allow-Origin" not in other.headers, origin
            async with http.options(f"{hub.url}/report.csv", headers={
                    "Origin": origin, "Access-Control-Request-Method": "GET"}) as preflight:
                assert "Access-Control-Allow-Origin" not in preflight.headers, origin
        async with http.get(f"{hub.url}/report.csv", headers=bearer) as same:  # no Origin: as ever
            assert same.status == 200 and "Access-Control-Allow-Origin" not in same.headers
        async with http.get(f"{hub.url}/") as page:  # and the page may fetch from the other nodes
            assert "connect-src 'self' ws: wss: http://10.0.0.12:8080;" in page.headers["Content-Security-Policy"]
    monkeypatch.setattr(hub.hub, "node_urls", lambda: [])
    async with aiohttp.ClientSession() as http, http.get(f"{hub.url}/") as page:
        assert "connect-src 'self' ws: wss:;" in page.headers["Content-Security-Policy"]  # one hub: itself only


def test_serve_binds_localhost_unless_told() -> None:
    host = next(p for p in serve.params if p.name == "host")
    assert host.default == "127.0.0.1"


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "hub.crt", tmp / "hub.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


async def test_tls_end_to_end_and_no_secret_in_the_log(tmp_path: Path, config: Config) -> None:
    cert, key = _self_signed(tmp_path)
    db = tmp_path / "tls.db"
    store = TokenStore(db, config.event.id)
    issued = {role: store.issue(role, site=OWN if role in ("technician", "registrar") else None,
                                agency=OWN_AGENCY if role == "agency" else None) for role in ROLES}
    hub = HubProcess(KON_TUM, db, None, "--certfile", str(cert), "--keyfile", str(key), "--log-level", "debug")
    trust = ssl.create_default_context(cafile=str(cert))
    await hub.start()
    try:
        assert hub.ws_url.startswith("wss://")
        for role, t in issued.items():
            async with websockets.connect(hub.ws_url, ssl=trust) as ws:
                await ws.send(f'{{"type": "auth", "token": "{t.token}"}}')
                assert f'"role":"{role}"' in await ws.recv()
                await ws.send('{"id": 1, "type": "ping"}')
                assert '"success":true' in await ws.recv()
        async with websockets.connect(hub.ws_url, ssl=trust) as chair, websockets.connect(hub.ws_url, ssl=trust) as reg:
            await chair.send(f'{{"type": "auth", "token": "{issued["chair"].token}"}}')
            await reg.send(f'{{"type": "auth", "token": "{issued["registrar"].token}"}}')
            await chair.recv(), await reg.recv()
            await chair.send('{"id": 1, "type": "subscribe"}')
            await chair.recv(), await chair.recv()  # the answer, then the snapshot
            await reg.send(f'{{"id": 1, "type": "attendance.set", "site": "{OWN}", "category": "workers", '
                           '"count": 42, "op_id": "tls-push"}')
            stored = json.loads(await reg.recv())
            assert stored["success"] is True
            pushed = json.loads(await asyncio.wait_for(chair.recv(), 10))  # framed once, written over TLS
            while pushed["seq"] < stored["result"]["seq"]:  # a change the hub itself stored may come first
                pushed = json.loads(await asyncio.wait_for(chair.recv(), 10))
            assert pushed["type"] == "event" and pushed["totals"]["attendance"] == 42
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{hub.url}/api/state", ssl=trust,
                                headers={"Authorization": f"Bearer {issued['chair'].token}"}) as resp:
                assert resp.status == 200 and (await resp.json())["event"]["id"] == config.event.id
            async with http.get(f"{hub.url}/api/state", ssl=trust,
                                headers={"Authorization": f"Bearer {issued['chair'].token.split('.')[0]}.guess"}) as resp:
                assert resp.status == 401
            with pytest.raises(aiohttp.ClientError):
                async with http.get(hub.url.replace("https://", "http://") + "/healthz") as resp:
                    await resp.read()  # plain http to the TLS port gets nowhere
        with pytest.raises(ssl.SSLCertVerificationError):
            await websockets.connect(hub.ws_url)  # an untrusted certificate is refused by a default client
    finally:
        assert await hub.stop() == 0
    output = hub.output()
    assert "connected:" in output  # the session was logged (token ids only)
    for t in issued.values():
        assert t.token.split(".")[1] not in output, "a token secret reached the hub's output"


def test_serve_refuses_a_bad_certificate_or_a_taken_port_clearly(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    base = [*DIEMCAU, "serve", "--config", str(KON_TUM), "--db", str(tmp_path / "e.db")]
    bad_cert = subprocess.run([*base, "--certfile", str(junk), "--keyfile", str(junk), "--port", str(free_port())],
                              capture_output=True, text=True, timeout=30)
    assert bad_cert.returncode == 1 and "cannot use" in bad_cert.stderr and "Traceback" not in bad_cert.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = subprocess.run([*base, "--port", str(taken.getsockname()[1])], capture_output=True, text=True, timeout=30)
    assert busy.returncode == 1 and "cannot listen on 127.0.0.1" in busy.stderr and "Traceback" not in busy.stderr
    assert "serving" not in busy.stdout  # said only once it listens
