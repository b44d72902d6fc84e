"""Verified video presence: ask the video bridge which halls are really in the room.

A technician's "video ok" tick is a claim; the bridge is the witness. Each site names the display
name (or id) its endpoint uses on the bridge (`endpoint`, else its name). The poller records a
`site.presence` event only when a site's presence changes, and a bridge that is down, slow or
talking nonsense makes every site "unknown": it never crashes or blocks the hub. A room that is not
open makes every site "absent"; an answer that is not the bridge API's (a misconfigured host, port
or path) is never mistaken for one.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any, Protocol
from urllib.parse import quote, unquote, urlencode, urlsplit
from xml.etree.ElementTree import Element, ParseError

import httpx
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from hub.config import Bridge, Site

log = logging.getLogger("diemcau.bridge")
Presence = dict[str, str]  # site id -> "present" | "no_video" | "absent" | "unknown"
Record = Callable[[str, str | None, dict[str, Any]], None]  # stores an event the hub observed: type, site, data


class BridgeError(Exception):
    """The bridge answered, but in a way that says nothing about who is in the room."""


def normalise(name: str) -> str:
    """Names compare the way people read them: same Unicode form, case and spacing ignored."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


def endpoint_of(site: Site) -> str:
    return normalise(site.endpoint or site.name)


def every(sites: Iterable[Site], video: str) -> Presence:
    return {site.id: video for site in sites}


def presence_of(sites: Iterable[Site], in_room: set[str], with_video: set[str] | None = None) -> Presence:
    """Present when the bridge shows the site's endpoint (with video, where the bridge tells video
    apart: in the room without it is "no_video"), absent otherwise."""
    def one(name: str) -> str:
        if name not in in_room:
            return "absent"
        return "present" if with_video is None or name in with_video else "no_video"
    return {site.id: one(endpoint_of(site)) for site in sites}


class Adapter(Protocol):
    room: str  # as the bridge is asked for it

    async def presence(self, client: httpx.AsyncClient, sites: list[Site]) -> Presence | None:
        """Each site's presence; None when the room is not open (nobody has joined it)."""


def jitsi_room(name: str) -> str:
    """The room as Jitsi Meet's clients join it (their getBackendSafeRoomName: NFKC, lower case,
    URL-encoded), so a name copied from a meeting URL with capitals or diacritics finds that room."""
    return quote(unicodedata.normalize("NFKC", unquote(name)).lower(), safe="!*'()").lower()


class Jitsi:
    """Prosody's mod_muc_size `/room`: one object per occupant, matched on its display name."""

    def __init__(self, cfg: Bridge) -> None:
        self.cfg = cfg
        self.base = cfg.url.rstrip("/")
        self.domain = cfg.domain or urlsplit(cfg.url).hostname or ""
        self.room = jitsi_room(cfg.room or "")

    async def presence(self, client: httpx.AsyncClient, sites: list[Site]) -> Presence | None:
        params = {"room": self.room, "domain": self.domain}
        if self.cfg.token:
            params["token"] = self.cfg.token
        response = await client.get(f"{self.base}/room", params=params, headers={"Host": self.domain})
        if response.status_code == 404 and not response.content:
            return None  # the module's own answer: no such room now
        if response.status_code == 404:
            raise BridgeError(self._not_the_module(response.text))
        if response.status_code == 403:
            raise BridgeError("Prosody refused the token (HTTP 403): check [bridge] token")
        if response.status_code != 200:
            raise BridgeError(f"Prosody /room answered HTTP {response.status_code}")
        return presence_of(sites, self._seen(response))

    def _not_the_module(self, page: str) -> str:
        """Why a 404 with a page came back: Prosody's own error page, or another web server's."""
        if "Unknown host" in page:
            return (f"Prosody does not serve the host {self.domain!r} (it answered \"Unknown host\"): "
                    "set [bridge] domain to the Jitsi domain (Prosody's VirtualHost)")
        return ("Prosody /room answered HTTP 404 with a page, not mod_muc_size's answer: check that [bridge] url "
                f"is Prosody's HTTP port (usually :5280) and that mod_muc_size is enabled for {self.domain}")

    def _seen(self, response: httpx.Response) -> set[str]:
        try:
            occupants = response.json()
        except ValueError:
            raise BridgeError("Prosody /room answered something that is not JSON: check that [bridge] url is "
                              "Prosody's HTTP port (usually :5280), not the Jitsi web page") from None
        if occupants == {}:
            occupants = []
        if not isinstance(occupants, list) or not all(isinstance(o, dict) for o in occupants):
            raise BridgeError("Prosody /room answered JSON that is not a list of occupants")
        return {normalise(str(o.get("display_name") or "")) for o in occupants} - {""}


def bbb_checksum(call: str, query: str, secret: str, algorithm: str = "sha1") -> str:
    """BigBlueButton's request signature: hash(callName + queryString + sharedSecret), in hex."""
    return hashlib.new(algorithm, f"{call}{query}{secret}".encode()).hexdigest()


class BigBlueButton:
    """`getMeetingInfo`: an attendee (by full name or join userID) whose `hasVideo` is true has video flowing;
    one without it (listen-only, voice only, sharing a screen) is in the meeting with no video."""

    def __init__(self, cfg: Bridge) -> None:
        self.cfg = cfg
        self.room = cfg.room or ""
        # the server alone, or as `bbb-conf --secret` prints it (…/bigbluebutton/), or the API itself
        base = cfg.url.rstrip("/").removesuffix("/bigbluebutton/api").removesuffix("/bigbluebutton")
        self.api = f"{base}/bigbluebutton/api"

    def url(self, call: str, **params: str) -> str:
        query = urlencode(params)  # spaces as '+', byte-identical to what is signed
        checksum = bbb_checksum(call, query, self.cfg.secret or "", self.cfg.checksum)
        return f"{self.api}/{call}?{query}&checksum={checksum}"

    async def presence(self, client: httpx.AsyncClient, sites: list[Site]) -> Presence | None:
        response = await client.get(self.url("getMeetingInfo", meetingID=self.room))
        if response.status_code != 200:
            raise BridgeError(f"BigBlueButton answered HTTP {response.status_code}")
        try:
            root = fromstring(response.content)
        except (ParseError, DefusedXmlException):
            raise BridgeError("BigBlueButton answered something that is not usable XML") from None
        code, key = root.findtext("returncode"), root.findtext("messageKey")
        if code == "FAILED" and key == "notFound":
            return None  # the meeting is not running
        if code == "FAILED" and key == "checksumError":
            raise BridgeError("BigBlueButton refused our checksum (checksumError): check [bridge] secret and checksum")
        if code != "SUCCESS":
            raise BridgeError(f"BigBlueButton answered {code or 'no returncode'} ({key or 'no messageKey'})")
        return presence_of(sites, *_attendees(root))


def _attendees(root: Element) -> tuple[set[str], set[str]]:
    """The names and ids of everyone in the meeting, and of those among them with a webcam on."""
    in_room: set[str] = set()
    with_video: set[str] = set()
    for attendee in root.iter("attendee"):
        names = {normalise(attendee.findtext(tag) or "") for tag in ("fullName", "userID")} - {""}
        in_room |= names
        if (attendee.findtext("hasVideo") or "").strip() == "true":
            with_video |= names
    return in_room, with_video


ADAPTERS: dict[str, type[Jitsi] | type[BigBlueButton]] = {"jitsi": Jitsi, "bbb": BigBlueButton}


async def check_health(client: httpx.AsyncClient, url: str) -> str | None:
    """None when the media server is healthy (`/about/health` 2xx, `/colibri/stats` not shutting down), else why."""
    try:
        response = await client.get(url)
    except httpx.HTTPError as exc:
        return f"health check failed ({type(exc).__name__})"
    if not response.is_success:
        return f"health check answered HTTP {response.status_code}"
    try:
        stats: Any = response.json() if response.content else {}
    except ValueError:
        stats = {}
    if isinstance(stats, dict) and stats.get("graceful_shutdown") is True:
        return "videobridge is shutting down"
    return None


class BridgePoller:
    """Polls the bridge every `poll_seconds` and records each site's presence when it changes."""

    def __init__(self, cfg: Bridge, sites: list[Site], video_of: Callable[[str], str | None], record: Record) -> None:
        self.cfg, self.sites, self.video_of, self.record = cfg, sites, video_of, record
        self.adapter: Adapter = ADAPTERS[self.cfg.kind](self.cfg)
        self.condition: str | None = None  # what is wrong or unusual about the bridge now, as last logged

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=self.cfg.timeout_seconds, follow_redirects=False) as client:
            while True:
                try:
                    self.apply(await self.poll(client))
                except Exception:  # a bug here must not end verification for the rest of the event
                    log.exception("bridge poll failed")
                await asyncio.sleep(self.cfg.poll_seconds)

    async def poll(self, client: httpx.AsyncClient) -> Presence:
        """Every site's presence now; "unknown" for all when the bridge cannot say."""
        sites = self.sites
        try:
            presence = await self.adapter.presence(client, sites)
            unhealthy = await check_health(client, self.cfg.health_url) if self.cfg.health_url else None
        except BridgeError as exc:
            return self._trouble(str(exc))
        except httpx.TimeoutException:
            return self._trouble(f"no answer within {self.cfg.timeout_seconds:g} s from {self.cfg.url}")
        except httpx.HTTPError as exc:
            return self._trouble(f"cannot reach {self.cfg.url} ({type(exc).__name__})")
        if unhealthy:  # in the room, but no media server to carry the video: cannot vouch for it
            self._report(f"{unhealthy}; video presence unknown")
            if presence is None:
                return every(sites, "absent")
            return {sid: "unknown" if video == "present" else video for sid, video in presence.items()}
        if presence is None:  # a wrong room name looks exactly like this: say so, once
            self._report(f"room {self.adapter.room!r} is not open (nobody has joined it yet, or [bridge] room "
                         "names another room); every hall absent", logging.INFO)
            return every(sites, "absent")
        self._report(None)
        return presence

    def _trouble(self, problem: str) -> Presence:
        self._report(f"{problem}; video presence unknown")
        return every(self.sites, "unknown")

    def _report(self, condition: str | None, level: int = logging.WARNING) -> None:
        """Log when the bridge's condition changes, not on every poll."""
        if condition != self.condition:
            if condition:
                log.log(level, "video bridge (%s): %s", self.cfg.kind, condition)
            else:
                log.info("video bridge (%s) answering, room %r open; video presence verified again",
                         self.cfg.kind, self.adapter.room)
        self.condition = condition

    def apply(self, presence: Presence) -> None:
        for site_id, video in presence.items():
            if self.video_of(site_id) != video:
                self.record("site.presence", site_id, {"video": video})
