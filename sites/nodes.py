"""Which hub node a client tries next, and how long it waits first.

A client knows the addresses it was given (never forgotten: the one a technician typed, `--hub a,b`) and the
nodes the hub announces (`auth_ok` and `nodes` frames list every live node's base URL; each announcement
replaces the last). It starts on the first address it was given, then picks at random among the nodes it has
not tried since it last connected, the node that just failed last of all: clients that lose the same node
spread over the others, and every node is tried before any is tried twice.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

WS_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


def ws_url(hub: str) -> str:
    """The hub's websocket address from what a technician types: `http://hub:8080` or `ws://hub:8080/ws`."""
    parts = urlsplit(hub.strip())
    if parts.scheme not in WS_SCHEMES or not parts.netloc:
        raise ValueError(f"{hub!r} is not a hub address; give e.g. http://192.168.1.10:8080")
    path = parts.path.rstrip("/")
    return urlunsplit((WS_SCHEMES[parts.scheme], parts.netloc, path if path.endswith("/ws") else f"{path}/ws", "", ""))


def backoff(attempt: int, base: float = 0.5, cap: float = 10.0, rng: random.Random | None = None) -> float:
    """Full jitter: anywhere from 0 to the capped exponential `base * 2**attempt`, so the thousand clients of a
    node that went away spread their retries over the whole window instead of knocking at the same moments."""
    return (rng or random).uniform(0, min(cap, base * 2 ** attempt))


class Nodes:
    """The websocket URLs a client may use, and which one it tries next."""

    def __init__(self, given: Iterable[str], rng: random.Random | None = None) -> None:
        self.given = list(dict.fromkeys(ws_url(url) for url in given))
        if not self.given:
            raise ValueError("a client needs at least one hub address")
        self.announced: list[str] = []
        self._rng = rng or random.Random()
        self._tried: set[str] = set()  # this round's
        self._avoid: str | None = None  # the node that failed: the round tries it last
        self._last: str | None = None

    @property
    def urls(self) -> list[str]:
        return list(dict.fromkeys(self.given + self.announced))

    def announce(self, nodes: Iterable[str]) -> None:
        """The hub's list of live nodes (base URLs); an empty list (a single-node hub) leaves the given ones."""
        self.announced = [url for url in map(_ws_url_or_none, nodes) if url]

    def pick(self) -> str:
        """The node to try now: the first given one at first, then one not tried in this round."""
        urls = self.urls
        if all(url in self._tried for url in urls):  # a new round, the node just tried last of all
            self._tried, self._avoid = set(), self._last
        fresh = [url for url in urls if url not in self._tried]
        preferred = [url for url in fresh if url != self._avoid] or fresh
        url = preferred[0] if self._last is None else self._rng.choice(preferred)
        self._tried.add(url)
        self._last = url
        return url

    def connected(self, url: str) -> None:
        """A new round starts: when this node fails, every other one is tried before it."""
        self._tried, self._avoid = set(), url

def _ws_url_or_none(url: object) -> str | None:
    try:
        return ws_url(url) if isinstance(url, str) else None
    except ValueError:
        return None
