"""Bridge adapters against a local server answering exactly as ../shared/bridges.md documents.

Neither Jitsi nor BigBlueButton can run here, so `bridge_app` answers as they do: Prosody's
mod_muc_size (its own empty 404 for a room that is not open, Prosody's HTML error page for a host it
does not serve) and BigBlueButton's signed API (its XML, checksum checked).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlencode

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import expect

from bench.hubproc import HubProcess
from hub.bridge import BigBlueButton, bbb_checksum, jitsi_room
from hub.config import Bridge, Config

from .browser import Pages
from .conftest import KON_TUM, RunningHub, StartHub

DOMAIN = "meet.kontum.gov.vn"
ROOM = "doithoai2023"
QUICK_POLLS = {"poll_seconds": 0.05, "timeout_seconds": 0.5}
# A hall that was ever ready is "degraded", not "checking", once its video is contradicted. Where a test expects
# "checking", no poll may fail first: an unknown video lets the hall look ready (a 0.5 s garbage collection in the
# test's own process once timed a poll out).
STEADY_POLLS = {"timeout_seconds": 5.0}
SECRET = "MyTestSalt"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJyb29tIjoiZG9pdGhvYWkyMDIzIn0.bm90LWEtcmVhbC1zaWduYXR1cmU"
NOT_FOUND = ("<response><returncode>FAILED</returncode><messageKey>notFound</messageKey><message>We could not find "
             "a meeting with that meeting ID - perhaps the meeting is not yet running?</message></response>")
CHECKSUM_ERROR = ("<response><returncode>FAILED</returncode><messageKey>checksumError</messageKey>"
                  "<message>You did not pass the checksum security check</message></response>")


class Attendee(NamedTuple):
    """One BigBlueButton attendee: listen-only joins without a microphone, a screen share is not a webcam."""

    user_id: str
    name: str
    video: bool
    listening_only: bool = False
    voice: bool = True
    presenter: bool = False


class Double:
    """What the fake bridge answers next; tests change it between polls."""

    def __init__(self) -> None:
        self.occupants: Any = []  # Jitsi /room body (list, or {} for an empty room)
        self.attendees: list[tuple[Any, ...]] | None = []  # BBB Attendee fields; None: not running
        self.status = 200
        self.body: str | None = None  # raw body that replaces the documented one
        self.delay = 0.0
        self.health: tuple[int, str] = (200, json.dumps({"conferences": 1, "graceful_shutdown": False}))
        self.requests: list[web.Request] = []


def jitsi_body(occupants: Any) -> str:
    """Prosody's encoder: UTF-8 names, '/' escaped as '\\/'."""
    return json.dumps(occupants, ensure_ascii=False).replace("/", "\\/")


def occupant(nick: str, name: str) -> dict[str, str]:
    return {"jid": f"{ROOM}@conference.{DOMAIN}/{nick}", "email": "", "display_name": name}


def prosody_error_page(extra: str = "") -> str:
    """Prosody's mod_http_errors page for a 404: with `extra` "Unknown host: …" for a host it does not
    serve, without it for a path nothing is registered at on a host it does."""
    line = f"<p class=\"extra\">{extra}</p>\n" if extra else ""
    return ("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>404 Not Found</title>\n</head>\n<body>\n"
            f"<h1>404 Not Found</h1>\n<p>Whatever you were looking for is not here. Keep looking.</p>\n\n{line}"
            "</body>\n</html>\n")


def bbb_meeting(attendees: list[tuple[Any, ...]]) -> str:
    def xml(bool_: bool) -> str:
        return str(bool_).lower()
    people = [Attendee(*a) for a in attendees]
    rows = "".join(
        f"<attendee><userID>{a.user_id}</userID><fullName>{a.name}</fullName><role>VIEWER</role><isPresenter>"
        f"{xml(a.presenter)}</isPresenter><isListeningOnly>{xml(a.listening_only)}</isListeningOnly><hasJoinedVoice>"
        f"{xml(a.voice)}</hasJoinedVoice><hasVideo>{xml(a.video)}</hasVideo><clientType>HTML5</clientType>"
        f"<customdata></customdata></attendee>" for a in people)
    return (f"<response><returncode>SUCCESS</returncode><meetingID>{ROOM}</meetingID><running>true</running>"
            f"<participantCount>{len(people)}</participantCount><voiceParticipantCount>{sum(a.voice for a in people)}"
            f"</voiceParticipantCount><listenerCount>{sum(a.listening_only for a in people)}</listenerCount>"
            f"<videoCount>{sum(a.video for a in people)}</videoCount><attendees>{rows}</attendees>"
            f"<isBreakout>false</isBreakout></response>")


def bridge_app(double: Double) -> web.Application:
    async def room(request: web.Request) -> web.Response:
        double.requests.append(request)
        await asyncio.sleep(double.delay)
        if request.host != DOMAIN:
            return web.Response(status=404, text=prosody_error_page(f"Unknown host: {request.host}"),
                                content_type="text/html")
        if not request.query_string:
            return web.Response(status=400)
        if double.status != 200 or double.body is not None:
            return web.Response(status=double.status, text=double.body or "")
        if double.occupants is None or request.query.get("room") != ROOM:
            return web.Response(status=404)
        return web.Response(text=jitsi_body(double.occupants), content_type="application/json")

    async def bbb(request: web.Request) -> web.Response:
        double.requests.append(request)
        await asyncio.sleep(double.delay)
        query, _, checksum = request.query_string.rpartition("&checksum=")
        if double.status != 200 or double.body is not None:
            body = double.body or ""
        elif checksum != hashlib.sha1(f"getMeetingInfo{query}{SECRET}".encode()).hexdigest():
            body = CHECKSUM_ERROR
        elif double.attendees is None or request.query.get("meetingID") != ROOM:
            body = NOT_FOUND
        else:
            body = bbb_meeting(double.attendees)
        return web.Response(status=double.status, text=body, content_type="text/xml")

    async def health(request: web.Request) -> web.Response:
        status, body = double.health
        return web.Response(status=status, text=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/room", room)
    app.router.add_get("/bigbluebutton/api/getMeetingInfo", bbb)
    app.router.add_get("/colibri/stats", health)
    return app


@pytest.fixture
def double() -> Double:
    return Double()


@pytest.fixture
async def bridge_url(double: Double) -> Any:
    server = TestServer(bridge_app(double), host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


def jitsi_cfg(url: str, **extra: Any) -> Bridge:
    return Bridge(**{"kind": "jitsi", "url": url, "room": ROOM, "domain": DOMAIN, **QUICK_POLLS, **extra})


def bbb_cfg(url: str, **extra: Any) -> Bridge:
    return Bridge(**{"kind": "bbb", "url": url, "room": ROOM, "secret": SECRET, **QUICK_POLLS, **extra})


def with_bridge(config: Config, bridge: Bridge) -> Config:
    return config.model_copy(update={"bridge": bridge})


async def poll(running: RunningHub) -> dict[str, str]:
    """One poll through the hub's own poller, as its background task does it."""
    async with httpx.AsyncClient(timeout=running.config.bridge.timeout_seconds) as client:  # type: ignore[union-attr]
        return await running.hub.bridge.poll(client)  # type: ignore[union-attr]


async def eventually(check: Callable[[], bool], timeout: float = 5) -> None:
    async def wait() -> None:
        while not check():
            await asyncio.sleep(0.02)
    await asyncio.wait_for(wait(), timeout)


def test_bbb_checksum_matches_the_documented_vector() -> None:
    assert bbb_checksum("isMeetingRunning", "meetingID=Foo", "MyTestSalt") == "f59b73c5cf1db387da4ca7d937049420d4c50a12"


def test_bbb_url_signs_the_exact_query_string() -> None:
    url = BigBlueButton(Bridge(kind="bbb", url="https://bbb.example/", room="hội nghị 2023", secret="s")).url(
        "getMeetingInfo", meetingID="hội nghị 2023")
    query, _, checksum = url.partition("?")[2].rpartition("&checksum=")
    assert url.startswith("https://bbb.example/bigbluebutton/api/getMeetingInfo?meetingID=h%E1%BB%99i+ngh")
    assert checksum == hashlib.sha1(f"getMeetingInfo{query}s".encode()).hexdigest()


async def test_jitsi_matches_display_names_and_nicks(start_hub: StartHub, double: Double, bridge_url: str,
                                                     config: Config) -> None:
    running = await start_hub(with_bridge(config, jitsi_cfg(bridge_url, token="jwt-abc")))
    double.occupants = [occupant("3f2a9c1b", "Điểm cầu tỉnh"), occupant("7c0d", "ĐẮK  HÀ"), occupant("tp-kon-tum", "")]
    presence = await poll(running)
    assert presence["tinh"] == "present"
    assert presence["dak-ha"] == "present"  # case and spacing do not matter
    assert presence["tp-kon-tum"] == "absent"  # no display name: nothing proves it is that hall
    assert {presence[s] for s in presence if s not in ("tinh", "dak-ha")} == {"absent"}
    request = double.requests[-1]
    assert request.host == DOMAIN
    assert dict(request.query) == {"room": ROOM, "domain": DOMAIN, "token": "jwt-abc"}


@pytest.mark.parametrize("empty", [[], {}, None])
async def test_jitsi_empty_or_missing_room_is_absent(start_hub: StartHub, double: Double, bridge_url: str,
                                                     config: Config, empty: Any) -> None:
    running = await start_hub(with_bridge(config, jitsi_cfg(bridge_url)))
    double.occupants = empty
    assert set((await poll(running)).values()) == {"absent"}


@pytest.mark.parametrize("status, body, logged", [
    (403, "", "403"),
    (500, "", "HTTP 500"),
    (200, "<html>Bad gateway</html>", "not JSON"),
    (200, '{"participants": 3}', "not a list"),
    (404, "<html><head><title>404 Not Found</title></head><body><h1>404 Not Found</h1><hr>nginx</body></html>",
     "not mod_muc_size's answer"),
    (404, prosody_error_page(), "not mod_muc_size's answer"),  # the host is served, the module is not there
])
async def test_jitsi_errors_make_every_site_unknown(start_hub: StartHub, double: Double, bridge_url: str,
                                                   config: Config, caplog: pytest.LogCaptureFixture,
                                                   status: int, body: str, logged: str) -> None:
    running = await start_hub(with_bridge(config, jitsi_cfg(bridge_url)))
    double.status, double.body = status, body
    with caplog.at_level(logging.WARNING, "diemcau.bridge"):
        assert set((await poll(running)).values()) == {"unknown"}
    assert logged in caplog.text


async def polled(running: RunningHub, double: Double, caplog: pytest.LogCaptureFixture,
                 polls: int = 4) -> list[logging.LogRecord]:
    """What the hub's own poller logged over a few polls, once every site's presence has been recorded."""
    await eventually(lambda: len(double.requests) >= polls)
    await eventually(lambda: all(s.video is not None for s in running.hub.state.sites.values()))
    return [r for r in caplog.records if r.name == "diemcau.bridge"]


@pytest.mark.parametrize("domain, host", [(None, "127.0.0.1"), ("meet.example", "meet.example")])
async def test_jitsi_unknown_host_is_unknown_and_warned_once(start_hub: StartHub, double: Double, bridge_url: str,
                                                            config: Config, caplog: pytest.LogCaptureFixture,
                                                            domain: str | None, host: str) -> None:
    """Prosody's "Unknown host" page is a 404 too, but not the module's: no hall is called absent for it."""
    caplog.set_level(logging.INFO, "diemcau.bridge")
    double.occupants = [occupant("a", "Điểm cầu tỉnh")]
    running = await start_hub(with_bridge(config, jitsi_cfg(bridge_url).model_copy(update={"domain": domain})))
    [warning] = await polled(running, double, caplog)
    assert {s.video for s in running.hub.state.sites.values()} == {"unknown"}
    assert warning.levelno == logging.WARNING
    assert f"Prosody does not serve the host '{host}'" in warning.getMessage()
    assert "[bridge] domain" in warning.getMessage()


async def test_jitsi_room_not_open_is_absent_and_said_once(start_hub: StartHub, double: Double, bridge_url: str,
                                                          config: Config, caplog: pytest.LogCaptureFixture) -> None:
    """A wrong room name and a room nobody has joined answer the same (the module's empty 404): one line says both."""
    caplog.set_level(logging.INFO, "diemcau.bridge")
    double.occupants = [occupant("a", "Điểm cầu tỉnh")]
    running = await start_hub(with_bridge(config, jitsi_cfg(bridge_url).model_copy(update={"room": "hoi-nghi"})))
    [line] = await polled(running, double, caplog)
    assert {s.video for s in running.hub.state.sites.values()} == {"absent"}
    assert line.levelno == logging.INFO
    assert "room 'hoi-nghi' is not open" in line.getMessage() and "[bridge] room" in line.getMessage()


@pytest.mark.parametrize("name, joined", [
    ("DoiThoai2023", "doithoai2023"),  # copied from a meeting URL with capitals
    ("doithoai2023", "doithoai2023"),
    ("Hội Nghị", "h%e1%bb%99i%20ngh%e1%bb%8b"),  # as lib-jitsi-meet names the room's JID
    ("H%E1%BB%99i%20Ngh%E1%BB%8B", "h%e1%bb%99i%20ngh%e1%bb%8b"),  # copied from the address bar, encoded
    ("ＤoiＴhoai", "doithoai"),  # NFKC folds full-width letters
])
def test_jitsi_room_name_as_jitsi_clients_join_it(name: str, joined: str) -> None:
    assert jitsi_room(name) == joined


async def test_jitsi_room_with_capitals_finds_the_room(start_hub: StartHub, double: Double, bridge_url: str,
                                                      config: Config) -> None:
    running = await start_hub(with_bridge(config, jitsi_cfg(bridge_url).model_copy(update={"room": "DoiThoai2023"})))
    double.occupants = [occupant("a", "Điểm cầu tỉnh")]
    assert (await poll(running))["tinh"] == "present"
    assert double.requests[-1].query["room"] == ROOM


async def test_slow_or_unreachable_bridge_is_unknown(start_hub: StartHub, double: Double, bridge_url: str,
                                                     config: Config, caplog: pytest.LogCaptureFixture) -> None:
    running = await start_hub(with_bridge(config, jitsi_cfg(bridge_url)))
    double.delay = 2
    with caplog.at_level(logging.WARNING, "diemcau.bridge"):
        assert set((await poll(running)).values()) == {"unknown"}
    assert "no answer within 0.5 s" in caplog.text
    closed = await start_hub(with_bridge(config, jitsi_cfg("http://127.0.0.1:9")),
                             path=running.db_path.with_name("b.db"))
    assert set((await poll(closed)).values()) == {"unknown"}


async def test_jitsi_unhealthy_videobridge_cannot_vouch(start_hub: StartHub, double: Double, bridge_url: str,
                                                        config: Config) -> None:
    running = await start_hub(with_bridge(config, jitsi_cfg(bridge_url, health_url=f"{bridge_url}/colibri/stats")))
    double.occupants = [occupant("a", "Điểm cầu tỉnh")]
    assert (await poll(running))["tinh"] == "present"
    double.health = (200, json.dumps({"conferences": 1, "graceful_shutdown": True}))
    presence = await poll(running)
    assert presence["tinh"] == "unknown" and presence["dak-ha"] == "absent"
    double.health = (503, "")
    assert (await poll(running))["tinh"] == "unknown"


async def test_bbb_has_video_means_present_and_joined_without_it_is_no_video(
        start_hub: StartHub, double: Double, bridge_url: str, config: Config) -> None:
    running = await start_hub(with_bridge(config, bbb_cfg(bridge_url)))
    double.attendees = [
        ("w_1", "Điểm cầu tỉnh", True), ("w_3", "Kon Plông", True),
        Attendee("w_2", "Đắk Hà", False, listening_only=True, voice=False),  # listen-only
        Attendee("w_4", "Sa Thầy", False),  # voice only
        Attendee("w_5", "Ngọc Hồi", False, presenter=True),  # sharing a screen, no webcam
        ("w_6", "Kon Rẫy", False), ("w_7", "Kon Rẫy", True)]  # a second PC carries its camera
    presence = await poll(running)
    assert presence["tinh"] == "present" and presence["kon-plong"] == "present" and presence["kon-ray"] == "present"
    assert presence["dak-ha"] == presence["sa-thay"] == presence["ngoc-hoi"] == "no_video"  # there, no video
    assert presence["tp-kon-tum"] == "absent"  # not in the meeting at all
    assert "checksum=" in str(double.requests[-1].url)


async def test_pages_show_a_hall_in_the_meeting_without_video(start_hub: StartHub, double: Double, bridge_url: str,
                                                             config: Config, pages: Pages) -> None:
    """A listen-only hall reaches the chair's tile and the technician's page as there without video, not as gone."""
    double.attendees = [("w_1", "Điểm cầu tỉnh", True), Attendee("w_2", "Đắk Hà", False, listening_only=True, voice=False)]
    running = await start_hub(with_bridge(config, bbb_cfg(bridge_url, **STEADY_POLLS)))
    await eventually(lambda: running.hub.state.sites["dak-ha"].video == "no_video")  # before the hall ever looks ready
    tech = await running.client("technician", site="dak-ha")
    await tech.call("site.checkin", site="dak-ha", technician="Y Khoa")
    for item in running.config.required_checks:
        await tech.call("site.check", site="dak-ha", item=item, ok=True)
    await tech.call("site.heartbeat", site="dak-ha", rtt_ms=20)
    chair = await pages.open(running, "/", running.token("chair"))
    technician = await pages.open(running, "/technician", running.token("technician", site="dak-ha"))
    tile_video = chair.locator('.tile[data-site="dak-ha"] .tile-video')
    await expect(tile_video).to_have_text("Hình: tắt, đã vào cầu")
    await expect(chair.locator('.tile[data-site="tinh"] .tile-video')).to_have_text("Hình: có")
    await expect(chair.locator('.tile[data-site="tp-kon-tum"] .tile-video')).to_have_text("Hình: không")
    await expect(technician.locator("#video")).to_have_text(
        "Đã vào cầu truyền hình nhưng không có hình (chỉ nghe, chỉ tiếng hoặc chia sẻ màn hình)")
    await expect(technician.locator("#status")).to_have_text("Đang kiểm tra")  # a ticked video_link is contradicted
    await expect(technician.locator("#hint")).to_contain_text("đã vào cầu truyền hình nhưng không có hình (camera chưa bật)")
    for page in (chair, technician):
        await page.click('.lang-switch button[data-lang="en"]')
    await expect(tile_video).to_have_text("Video: off, in the call")
    await expect(technician.locator("#video")).to_have_text(
        "In the video call, but no camera (listening, voice only or sharing a screen)")
    await expect(technician.locator("#hint")).to_contain_text("in the video call but sends no picture (camera off)")


@pytest.mark.parametrize("path", ["", "/", "/bigbluebutton", "/bigbluebutton/", "/bigbluebutton/api",
                                  "/bigbluebutton/api/"])
async def test_bbb_url_with_or_without_its_path(start_hub: StartHub, double: Double, bridge_url: str,
                                                config: Config, path: str) -> None:
    """The server alone, as `bbb-conf --secret` prints it (…/bigbluebutton/), or the API's own address."""
    running = await start_hub(with_bridge(config, bbb_cfg(bridge_url + path)))
    double.attendees = [("w_1", "Điểm cầu tỉnh", True)]
    assert (await poll(running))["tinh"] == "present"
    assert double.requests[-1].path == "/bigbluebutton/api/getMeetingInfo"


async def test_bbb_not_running_is_absent_and_bad_checksum_is_unknown(
        start_hub: StartHub, double: Double, bridge_url: str, config: Config,
        caplog: pytest.LogCaptureFixture) -> None:
    running = await start_hub(with_bridge(config, bbb_cfg(bridge_url)))
    double.attendees = None
    assert set((await poll(running)).values()) == {"absent"}
    wrong = await start_hub(with_bridge(config, bbb_cfg(bridge_url).model_copy(update={"secret": "wrong"})),
                            path=running.db_path.with_name("b.db"))
    double.attendees = [("w_1", "Điểm cầu tỉnh", True)]
    with caplog.at_level(logging.WARNING, "diemcau.bridge"):
        assert set((await poll(wrong)).values()) == {"unknown"}
    assert "checksumError" in caplog.text and "secret" in caplog.text


@pytest.mark.parametrize("body", [
    "<html><body>502 Bad Gateway</body></html>",
    "not xml at all",
    '<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]><response>&b;</response>',
    "<response><returncode>FAILED</returncode><messageKey>invalidMeetingIdentifier</messageKey></response>",
])
async def test_bbb_garbage_is_unknown(start_hub: StartHub, double: Double, bridge_url: str, config: Config,
                                      body: str) -> None:
    running = await start_hub(with_bridge(config, bbb_cfg(bridge_url)))
    double.body = body
    assert set((await poll(running)).values()) == {"unknown"}


async def test_poller_records_changes_only_and_flags_a_false_video_tick(
        start_hub: StartHub, double: Double, bridge_url: str, config: Config) -> None:
    running = await start_hub(with_bridge(config, bbb_cfg(bridge_url, **STEADY_POLLS)))
    site = running.hub.state.sites["dak-ha"]
    await eventually(lambda: site.video == "absent")  # before the hall ever looks ready
    tech = await running.client("technician", site="dak-ha")
    await tech.call("site.checkin", site="dak-ha", technician="Y Khoa", phone="0905 123 456")
    for item in running.config.required_checks:
        await tech.call("site.check", site="dak-ha", item=item, ok=True)
    await tech.call("site.heartbeat", site="dak-ha", rtt_ms=20)
    assert site.status == "checking"  # technician says video ok, the bridge does not see it
    double.attendees = [("w_9", "Đắk Hà", True)]
    await eventually(lambda: site.status == "ready")
    double.attendees = [("w_9", "Đắk Hà", False)]
    await eventually(lambda: site.status == "degraded")
    double.status, double.body = 500, "oops"
    await eventually(lambda: site.video == "unknown")
    assert site.status == "ready"  # an outage of the bridge is not the hall's fault
    polls = len(double.requests)
    await eventually(lambda: len(double.requests) >= polls + 3)
    events = [e for e in running.hub.log.read(0) if e.site == "dak-ha"]
    assert [e.data["video"] for e in events if e.type == "site.presence"] == ["absent", "present", "no_video", "unknown"]
    assert [(e.data["previous"], e.data["status"]) for e in events if e.type == "site.status"] == [
        ("offline", "checking"), ("checking", "ready"), ("ready", "degraded"), ("degraded", "ready")]


@pytest.mark.parametrize("kind", ["jitsi", "bbb"])
@pytest.mark.parametrize("level", ["info", "debug"])
async def test_no_bridge_secret_reaches_the_log(tmp_path: Path, double: Double, bridge_url: str,
                                                kind: str, level: str) -> None:
    """`diemcau serve`, polling a bridge through an outage and back, logs no token, secret or checksum."""
    secrets = {"jitsi": f'domain = "{DOMAIN}"\ntoken = "{JWT}"', "bbb": f'secret = "{SECRET}"'}[kind]
    config = tmp_path / "event.toml"
    config.write_text(KON_TUM.read_text(encoding="utf-8") + f'\n[bridge]\nkind = "{kind}"\nurl = "{bridge_url}"\n'
                      f'room = "{ROOM}"\npoll_seconds = 0.05\n{secrets}\n', encoding="utf-8")
    double.status = 500  # the first polls fail, so the warning and the recovery line are logged too
    hub = HubProcess(config, tmp_path / "event.db", None, "--log-level", level)
    try:
        await hub.start()
        await eventually(lambda: len(double.requests) >= 3, timeout=20)
        double.status = 200
        polls = len(double.requests)
        await eventually(lambda: len(double.requests) >= polls + 3, timeout=20)
    finally:
        await hub.stop()
    output = hub.output()
    assert "video presence verified again" in output  # the bridge's own lines are in this log
    checksum = bbb_checksum("getMeetingInfo", urlencode({"meetingID": ROOM}), SECRET)
    for secret in (JWT, SECRET, checksum):
        assert secret not in output
