"""Hostile input, property-based: malformed websocket frames, HTTP requests and config files.

The hub runs as a real `diemcau serve` process. Every frame gets an error answer or a clean close,
the process never dies, a dashboard connected all along keeps working, and the log grows only by
the commands that were answered `success: true`. Example counts are small here; the longer run is
`DIEMCAU_FUZZ_EXAMPLES=2000 python -m pytest -s tests/test_fuzz.py` (docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import string
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from bench.crash import KON_TUM
from bench.hubproc import HubProcess
from hub.config import ConfigError, load_config, parse_config
from hub.core.commands import COMMANDS
from hub.core.errors import ERROR_CODES, INTERNAL_ERROR
from hub.tokens import TokenStore

EXAMPLES = int(os.environ.get("DIEMCAU_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZED: Counter[str] = Counter()
CONFIG = load_config(KON_TUM)
LIMIT = CONFIG.limits.max_frame_bytes


@dataclass
class Served:
    hub: HubProcess
    tokens: dict[str, str]
    bystander: ClientConnection

    def seq(self) -> int:
        return httpx.get(f"{self.hub.url}/healthz").json()["durable_seq"]

    @contextlib.contextmanager
    def open(self, role: str = "registrar") -> Iterator[ClientConnection]:
        with connect(self.hub.ws_url, max_size=2**24, open_timeout=10, ping_interval=None) as ws:  # as the bystander
            ws.send(json.dumps({"type": "auth", "token": self.tokens[role]}))
            assert json.loads(ws.recv(timeout=10))["type"] == "auth_ok"
            yield ws


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    db = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    store = TokenStore(db, CONFIG.event.id)
    tokens = {"registrar": store.issue("registrar", "dak-ha").token, "viewer": store.issue("viewer").token,
              "chair": store.issue("chair").token, "admin": store.issue("admin").token}
    hub = HubProcess(KON_TUM, db)
    hub.spawn()
    try:
        asyncio.run(hub.wait_healthy())
        # No keepalive pings: their payload comes from the `random` module, in websockets' own thread, and a
        # draw hypothesis saw it move in is replayed as flaky (HypothesisDeprecationWarning, FlakyFailure).
        with connect(hub.ws_url, open_timeout=10, max_queue=None, ping_interval=None) as bystander:
            bystander.send(json.dumps({"type": "auth", "token": tokens["chair"]}))
            bystander.recv(timeout=10)
            bystander.send(json.dumps({"id": 1, "type": "subscribe"}))
            yield Served(hub, tokens, bystander)
        assert hub.alive, hub.output()[-2000:]
        output = hub.output()
        assert "Traceback" not in output, output[output.find("Traceback") - 300:][:3000]
        print(f"\nfuzzed: {dict(FUZZED)}, total {sum(FUZZED.values())}")
    finally:
        assert asyncio.run(hub.stop()) == 0


def answers(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    """The next `count` command answers, skipping pushes; fewer if the hub closes the connection."""
    got: list[dict[str, Any]] = []
    try:
        while len(got) < count:
            frame = json.loads(ws.recv(timeout=10))
            if frame.get("type") == "result":
                got.append(frame)
    except ConnectionClosed:
        pass
    return got


def check_error(answer: dict[str, Any]) -> None:
    error = answer["error"]
    assert error["code"] in ERROR_CODES and error["code"] != INTERNAL_ERROR, answer
    assert isinstance(error["message"], str) and error["message"], answer


def _parses(frame: dict[str, Any]) -> bool:
    """Whether the frame is JSON the hub can read (Python writes inf as `Infinity`; 2**64 overflows)."""
    try:
        orjson.loads(json.dumps(frame))
    except orjson.JSONDecodeError:
        return False
    return True


# -- strategies ---------------------------------------------------------------------------------

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
           | st.text(max_size=40) | st.sampled_from(["dak-ha", "kon-ray", "workers", "q1", "", "x" * 300]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)
GOOD = {
    "attendance.set": {"site": "dak-ha", "category": "workers", "count": 3},
    "attendance.add": {"site": "dak-ha", "category": "guests", "delta": 1},
    "question.submit": {"site": "dak-ha", "topic": "training", "text": "Câu hỏi",
                        "delegate": {"name": "Nguyễn Văn A", "unit": "Công ty"}},
    "site.checkin": {"site": "dak-ha", "technician": "Anh Minh"},
    "event.phase": {"phase": "live"},
    "ping": {},
    "subscribe": {"since": 0},
}
FIELDS = sorted({name for spec in COMMANDS.values() for name in spec.model.model_fields} | {"op_id", "id", "type"})


@st.composite
def command_frames(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed command bent in one to three ways: a field dropped, retyped, or added."""
    kind = draw(st.sampled_from(sorted(GOOD)))
    frame: dict[str, Any] = {"id": draw(st.integers(1, 2**40)), "type": kind, **GOOD[kind]}
    if COMMANDS[kind].stores:
        frame["op_id"] = draw(st.text(string.ascii_letters, min_size=1, max_size=64))
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["drop", "retype", "add"])) if frame else "add"
        key = draw(st.sampled_from(sorted(frame) if how != "add" else FIELDS + ["unknown_field"]))
        if how == "drop":
            frame.pop(key, None)
        else:
            frame[key] = draw(json_values)
    return frame


raw_text = st.one_of(
    st.text(max_size=200),
    json_values.map(json.dumps),
    st.integers(1, 1100).map(lambda n: '{"id": 1, "type": "ping", "sent": ' + "[" * n + "]" * n + "}"),
    st.integers(1, 1100).map(lambda n: '{"id": 2, "type": "ping", "x": ' + '{"a":' * n + "1" + "}" * n + "}"),
    st.sampled_from(['{"id": 1e400, "type": "ping"}', '{"id": 1' + "0" * 400 + ', "type": "ping"}',
                     '{"id": 3, "type": "ping", "sent": 1e400}', '{"id": 4, "type": "ping", "sent": NaN}',
                     '{"id": 5, "type": "ping"', '{"id": 6, "type": "ping"}}', '\ufeff{"id": 7}', "null", "[]"]),
)


# -- websocket ----------------------------------------------------------------------------------

@FUZZ
@given(frames=st.lists(command_frames(), min_size=1, max_size=6))
def test_bent_commands_answer_and_store_only_successes(served: Served, frames: list[dict[str, Any]]) -> None:
    before = served.seq()
    with served.open() as ws:
        for frame in frames:
            ws.send(json.dumps(frame))
        got = answers(ws, len(frames))
    FUZZED["websocket command"] += len(frames)
    assert len(got) == len(frames)
    for frame, answer in zip(frames, got):
        parsed = _parses(frame)
        msg_id = frame.get("id")
        usable_id = isinstance(msg_id, int) and not isinstance(msg_id, bool) and abs(msg_id) < 2**53
        if parsed and usable_id:
            assert answer["id"] == msg_id
        if not parsed or not usable_id:  # past 2**53 a browser would not hold the id exactly
            assert answer["id"] is None and answer["error"]["code"] == "invalid_format"
        if not answer["success"]:
            check_error(answer)
    stored = {a["result"]["seq"] for a in got if a["success"] and a["result"].get("seq", 0) > before}
    assert served.seq() - before == len(stored)


@FUZZ
@given(data=st.lists(raw_text | st.binary(max_size=200), min_size=1, max_size=6))
def test_raw_frames_get_an_error_each_and_store_nothing(served: Served, data: list[str | bytes]) -> None:
    before = served.seq()
    with served.open("viewer") as ws:
        for item in data:
            ws.send(item)
        got = answers(ws, len(data))
        ws.send(json.dumps({"id": 99, "type": "ping"}))
        assert answers(ws, 1)[0]["success"]  # the connection stays usable
    FUZZED["websocket raw"] += len(data)
    assert len(got) == len(data)
    for answer in got:
        if not answer["success"]:
            check_error(answer)
    assert served.seq() == before


@pytest.mark.parametrize("depth, code", [(1024, "invalid_format"), (1025, "invalid_format")])
def test_deep_nesting_is_invalid_format(served: Served, depth: int, code: str) -> None:
    with served.open() as ws:
        ws.send('{"id": 1, "type": "attendance.set", "site": ' + "[" * depth + "]" * depth + "}")
        assert answers(ws, 1)[0]["error"]["code"] == code
    FUZZED["websocket raw"] += 1


@FUZZ
@given(first=json_values.map(json.dumps) | st.binary(max_size=64)
       | st.text(max_size=80).map(lambda t: json.dumps({"type": "auth", "token": t})))
def test_bad_first_frames_are_refused_and_closed(served: Served, first: str | bytes) -> None:
    with connect(served.hub.ws_url, open_timeout=10) as ws:
        ws.send(first)
        reply = json.loads(ws.recv(timeout=10))
        assert reply["type"] == "auth_invalid" and reply["message"]
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code == 1008
    FUZZED["websocket auth"] += 1


def test_oversized_frames_refused_then_closed(served: Served) -> None:
    with served.open() as ws:
        ws.send(json.dumps({"id": 5, "type": "ping", "pad": "x" * (LIMIT + 10)}))
        answer = answers(ws, 1)[0]
        assert answer["id"] == 5 and answer["error"]["code"] == "invalid_format" and "limit" in answer["error"]["message"]
        ws.send("y" * (LIMIT * 5))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code == 1009
    FUZZED["websocket oversized"] += 2


def test_flood_past_the_rate_limit_is_refused_then_closed(served: Served) -> None:
    before = served.seq()
    with served.open() as ws:
        sent = 0
        with pytest.raises(ConnectionClosed):
            for n in range(2000):
                ws.send(json.dumps({"id": n + 1, "type": "attendance.add", "site": "dak-ha", "category": "workers",
                                    "delta": 1, "op_id": f"flood-{os.getpid()}-{n}"}))
                sent += 1
            ws.recv(timeout=10)
            while True:
                ws.recv(timeout=10)
        assert ws.close_code == 1008 and "rate" in (ws.close_reason or "")
    FUZZED["websocket flood"] += sent
    stored = served.seq() - before
    assert 0 < stored <= CONFIG.limits.rate_burst + 2 * CONFIG.limits.rate_per_second * 10


def test_bystander_was_unaffected(served: Served) -> None:
    """The chair connected before all of the above still answers and saw every stored change pushed."""
    served.bystander.send(json.dumps({"id": 2, "type": "ping"}))
    frames: list[dict[str, Any]] = []
    final = served.seq()

    def done() -> bool:  # the ping answered, and the push of the last stored change arrived (a tick later)
        pushed = [f["seq"] for f in frames if f["type"] == "event"]
        return any(f.get("id") == 2 for f in frames) and bool(pushed) and pushed[-1] >= final

    while not done():
        frames.append(json.loads(served.bystander.recv(timeout=10)))
    ping = next(f for f in frames if f.get("id") == 2)
    assert ping["success"] and frames[0]["type"] == "result" and frames[1]["type"] == "snapshot"
    pushed = [f["seq"] for f in frames if f["type"] == "event"]
    assert pushed == sorted(pushed) and pushed[-1] == served.seq()


# -- HTTP ---------------------------------------------------------------------------------------

header_text = st.text(alphabet=string.printable.replace("\r", "").replace("\n", "").replace("\x0b", "").replace("\x0c", ""),
                      max_size=300)
paths = st.one_of(st.sampled_from(["/api/state", "/healthz", "/ws", "/", "/moderator", "/assets/hub.js", "/report",
                                   "/api/report", "/metrics", "/assets/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd"]),
                  st.text(alphabet=string.ascii_letters + string.digits + "/._-%~", max_size=60).map(lambda p: "/" + p))


@FUZZ
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"]), path=paths,
       auth=st.one_of(st.none(), header_text, header_text.map(lambda t: f"Bearer {t}"),
                      st.sampled_from(["Bearer", "Bearer ", "bearer x.y", "Basic dXNlcjpwYXNz", "Bearer " + "a." * 5000])),
       extra=st.dictionaries(st.sampled_from(["Origin", "Upgrade", "Connection", "Content-Type", "X-Forwarded-For", "Host"]),
                             header_text, max_size=3),
       body=st.binary(max_size=300))
def test_http_requests_never_break_the_hub(served: Served, method: str, path: str, auth: str | None,
                                            extra: dict[str, str], body: bytes) -> None:
    headers = {**extra, **({"Authorization": auth} if auth is not None else {})}
    try:
        response = httpx.request(method, served.hub.url + path, headers=headers, content=body or None, timeout=10)
    except (httpx.LocalProtocolError, httpx.RemoteProtocolError):
        return  # a request the client itself cannot put on the wire, or one the server hangs up on
    FUZZED["http"] += 1
    assert response.status_code < 500, (method, path, headers, response.text[:300])
    if path == "/api/state" and method == "GET":
        assert response.status_code in (400, 401)
    assert "passwd" not in path or "root:" not in response.text


# -- config -------------------------------------------------------------------------------------

KON_TUM_TEXT = KON_TUM.read_text(encoding="utf-8")
KON_TUM_LINES = KON_TUM_TEXT.splitlines()


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, len(KON_TUM_LINES) - 1),
                                st.one_of(st.text(max_size=40), st.sampled_from(
                                    ["expected = -5", "expected = \"many\"", "id = \"Dak Ha\"", "[[sites]]", "[limits]",
                                     "kind = \"central\"", "timezone = \"Mars/Olympus\"", "start = \"25:00\"", "x = ",
                                     "date = 2023-02-30", "rate_per_second = 0", "[event", "\"\"\"", ""]))),
                      min_size=1, max_size=3),
       cut=st.none() | st.integers(0, len(KON_TUM_TEXT)))
def test_broken_configs_give_a_clear_error(edits: list[tuple[int, str]], cut: int | None) -> None:
    lines = list(KON_TUM_LINES)
    for index, replacement in edits:
        lines[index] = replacement
    text = "\n".join(lines)[:cut]
    FUZZED["config"] += 1
    try:
        parse_config(text, "fuzz.toml")
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("fuzz.toml") and len(message) < 5000
        for line in message.splitlines():
            assert line.startswith("fuzz.toml"), message
            assert "not valid TOML" in line or line.count(": ") >= 2, message  # file[:line]: key: message


@pytest.mark.parametrize("old, new, key", [
    ('id = "dak-ha"', 'id = "Đắk Hà"', f"sites[{list(CONFIG.site_ids).index('dak-ha')}].id"),
    ("expected = 220", 'expected = "many"', f"sites[{[s.expected for s in CONFIG.sites].index(220)}].expected"),
    ('timezone = "Asia/Ho_Chi_Minh"', 'timezone = "Asia/Kontum"', "event.timezone"),
    ('start = "07:30"', 'start = "7h30"', "event.start"),
    ("duration_minutes = 240", "duration_minutes = 0", "event.duration_minutes"),
    ("[event]", "[limits]\nrate_per_second = -1\n\n[event]", "limits.rate_per_second"),
    ("[event]", "[limits]\nmax_frame_bytes = 10\n\n[event]", "limits.max_frame_bytes"),
    ("[event]", "[server]\nallowed_origins = \"*\"\n\n[event]", "server.allowed_origins"),
    ("timeout_seconds = 15", "timeout_seconds = 3", "heartbeat"),
    ("[event]", "[surprise]\nx = 1\n\n[event]", "surprise"),
])
def test_wrong_values_name_the_key_and_line(old: str, new: str, key: str) -> None:
    assert old in KON_TUM_TEXT
    text = KON_TUM_TEXT.replace(old, new, 1)
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "event.toml")
    message = str(raised.value)
    assert len(message.splitlines()) == 1, message
    assert f": {key}: " in message and message.startswith("event.toml:"), message
    line = int(message.split(":")[1])
    assert key.split(".")[-1].split("[")[0] in text.splitlines()[line - 1] or text.splitlines()[line - 1].startswith("["), message
