"""The load generator: separate processes that drive a hub (or a baseline) on an open-loop timetable.

Each process reads a plan (JSON) on stdin, connects, prints `connected`, then runs one step per
`{"rate": R}` line and prints its figures, until an empty line (bench/run.py conducts three in
lock-step: the senders, a sample of dashboards, the other dashboards; so a burst of pushes being read
never delays a command that is due). Commands are sent on a fixed schedule whatever the answers do, and
each `attendance.set` carries its scheduled send time as its `count` (milliseconds since the plan's
epoch, modulo the schema's 1,000,000 cap), so latency is measured from when the message was due,
not from when a slow hub let it out. Dashboards read that time back from the pushed events.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import resource
import socket
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from .stats import Histogram
from .watcher import Watcher

T = TypeVar("T")
STAMP_MODULO = 1_000_000  # attendance counts are capped at 1,000,000: the stamp wraps every 16 minutes
SAMPLES_PER_FRAME = 8
CONNECT_CONCURRENCY = 64
TICK = 0.001  # the sender's shortest sleep (uvloop's timers count whole ms: a shorter one returns at once)


@dataclass
class Plan:
    """What to connect and how hard to drive it (see bench/run.py for how it is built)."""

    urls: list[str]  # one hub's websocket URL, or a cluster's nodes' (connections spread over them in turn)
    technicians: list[list[str]] = field(default_factory=list)  # [site, token]
    registrars: list[list[str]] = field(default_factory=list)  # [site, token]
    dashboards: list[str] = field(default_factory=list)
    stalled: str | None = None
    duration: float = 5.0
    heartbeat_interval: float = 5.0
    prepare_sites: bool = True
    category: str = "workers"
    epoch: float = field(default_factory=time.time)  # shared by the processes of one run: stamps are comparable
    worker: int = 0  # keeps op_ids unique across the processes of one run


@dataclass(eq=False)  # hashed by identity: a key of `Recorder.arrivals`
class Pushed:
    """A pushed frame as every dashboard gets it, parsed once for them all."""

    stamps: list[int]  # scheduled send times (ms since the epoch) of its attendance changes, sampled
    weight: int  # changes each sample stands for

    @classmethod
    def parse(cls, data: bytes) -> Pushed:
        events = orjson.loads(data).get("events", [])
        times = [e["data"]["count"] for e in events if e.get("type") == "attendance.set"]
        stride = max(1, -(-len(times) // SAMPLES_PER_FRAME))
        return cls(times[::stride], stride)


class Recorder:
    """Counters and latency histograms for the current step; reset between steps."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.acks, self.errors, self.heartbeats, self.frames = 0, 0, 0, 0
        self.ack_latency = Histogram()
        self.arrivals: Counter[tuple[Pushed, int]] = Counter()  # (frame, ms it arrived at): dashboards it reached
        self.error_codes: dict[str, int] = {}

    def push_latency(self) -> tuple[Histogram, int]:
        """Each pushed change's latency, and how many changes reached a dashboard. Counted by frame and arrival
        millisecond as they come, since a thousand dashboards get each frame within a few ms: one count per
        arrival instead of a histogram add per sampled change (a tenth of the readers' core at the full load)."""
        latency, deliveries = Histogram(), 0
        for (frame, arrived), dashboards in self.arrivals.items():
            for stamp in frame.stamps:
                latency.add(((arrived - stamp) % STAMP_MODULO) / 1000, frame.weight * dashboards)
            deliveries += len(frame.stamps) * frame.weight * dashboards
        return latency, deliveries


class Generator:
    """Holds the connections and runs the schedule."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.epoch = plan.epoch
        self.rec = Recorder()
        self.frame_memo: dict[bytes, Pushed] = {}
        self.pending: dict[int, float] = {}  # a registrar command's id: when it was due
        self.ids = itertools.count(1)
        self.nonce = f"{int(self.epoch * 1000) % 10**9:x}-{plan.worker}"
        self.tasks: list[asyncio.Task[None]] = []
        self.stall_ws: ClientConnection | None = None
        self.urls = itertools.cycle(plan.urls)

    # -- connecting ---------------------------------------------------------------------------------

    async def open(self, token: str, sock: socket.socket | None = None, max_queue: int = 64) -> ClientConnection:
        """Connect and authenticate; the hub answers auth_ok, a baseline answers anything."""
        kwargs: dict[str, Any] = {"sock": sock} if sock else {}
        ws = await connect(next(self.urls), max_size=None, max_queue=max_queue, ping_interval=None,
                           open_timeout=60, close_timeout=2, **kwargs)
        await send_json(ws, {"type": "auth", "token": token})
        answer = orjson.loads(await ws.recv(decode=False))
        if answer.get("type") == "auth_invalid":
            raise SystemExit(f"auth refused: {answer}")
        return ws

    async def open_all(self, tokens: list[str], opener: Callable[[str], Awaitable[T]]) -> list[T]:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one(token: str) -> T:
            async with gate:
                return await opener(token)
        return list(await asyncio.gather(*(one(t) for t in tokens)))

    async def watch(self, token: str) -> Watcher:
        """A subscribed dashboard; its pushes are timed from here on (each step resets the figures)."""
        return await Watcher.connect(next(self.urls), token, self.pushed)

    async def register(self, token: str) -> Watcher:
        """A registrar: its answers are timed as they arrive (see `answered`)."""
        watcher = await Watcher.connect(next(self.urls), token, self.pushed, subscribe=False)
        watcher.on_reply = self.answered
        return watcher

    async def prepare_site(self, ws: ClientConnection, site: str) -> None:
        """Check a site in and report every checklist item ok, so it turns ready like a real hall."""
        commands = [{"type": "site.checkin", "site": site, "technician": "Kỹ thuật viên"}]
        commands += [{"type": "site.check", "site": site, "item": item, "ok": True}
                     for item in ("camera", "audio", "video_link")]
        for number, cmd in enumerate(commands, 1):
            await send_json(ws, {"id": number, "op_id": f"{self.nonce}-{site}-{number}", **cmd})
        for _ in commands:
            await ws.recv(decode=False)

    # -- running ------------------------------------------------------------------------------------

    async def send_on_schedule(self, registrars: list[Watcher], rate: float, until: float) -> None:
        """Open loop: `attendance.set` on a fixed timetable per registrar, whatever the answers do.

        One task for them all: each tick sends every command that has come due, a connection's in one
        write, and sleeps until the next is due (at least TICK). A task per registrar sleeping per
        command woke 48,000 times a second at the top step and made the generator the limit.
        """
        interval = len(registrars) / rate
        start = time.time()
        dues = [start + interval * (index % 97) / 97 for index in range(len(registrars))]
        category = self.plan.category
        while True:
            now = time.time()
            for index, conn in enumerate(registrars):
                due, site = dues[index], self.plan.registrars[index][0]
                if due > now or due >= until:
                    continue
                while due <= now and due < until:
                    msg_id = next(self.ids)
                    self.pending[msg_id] = due
                    count = round((due - self.epoch) * 1000) % STAMP_MODULO
                    conn.queue(orjson.dumps({"id": msg_id, "type": "attendance.set", "site": site,
                                             "op_id": f"{self.nonce}-{msg_id}", "category": category, "count": count}))
                    due += interval
                dues[index] = due
                conn.flush()
            upcoming = min(dues)
            if upcoming >= until:
                return
            await asyncio.sleep(max(TICK, upcoming - time.time()))

    def answered(self, data: bytes, arrived: float) -> None:
        frame = orjson.loads(data)
        sent = self.pending.pop(frame.get("id"), None)
        if sent is None:
            return
        if frame.get("success"):
            self.rec.acks += 1
            self.rec.ack_latency.add(arrived - sent)
        else:
            self.rec.errors += 1
            code = frame.get("error", {}).get("code", "?")
            self.rec.error_codes[code] = self.rec.error_codes.get(code, 0) + 1

    async def heartbeats(self, ws: ClientConnection, site: str, offset: float) -> None:
        """Every interval, a heartbeat; the answer is counted by the reader."""
        await asyncio.sleep(offset)
        number = itertools.count(1)
        while True:
            await send_json(ws, {"id": next(number), "type": "site.heartbeat", "site": site, "rtt_ms": 20})
            await asyncio.sleep(self.plan.heartbeat_interval)

    async def heartbeat_answers(self, ws: ClientConnection) -> None:
        async for _ in frames(ws):
            self.rec.heartbeats += 1

    def pushed(self, data: bytes, arrived: float) -> None:
        """Count a pushed frame's arrival at a dashboard, by the millisecond; `Recorder.push_latency` turns the
        counts into each change's time from its scheduled send."""
        now = round((arrived - self.epoch) * 1000)
        frame = self.frame_memo.get(data)
        if frame is None:
            if len(self.frame_memo) > 256:
                self.frame_memo.clear()
            frame = self.frame_memo[data] = Pushed.parse(data)
        self.rec.frames += 1
        self.rec.arrivals[frame, now] += 1

    async def stall(self, token: str) -> None:
        """A dashboard that subscribes and then stops reading, with small buffers so it fills fast."""
        host, port = self.plan.urls[0].split("//")[1].split("/")[0].split(":")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((host, int(port)))
        sock.setblocking(False)
        self.stall_ws = await self.open(token, sock=sock, max_queue=1)
        await send_json(self.stall_ws, {"id": 1, "type": "subscribe"})

    async def stall_outcome(self) -> dict[str, Any]:
        """Drain the stalled dashboard: did the hub close it as too slow (1013)?"""
        ws = self.stall_ws
        assert ws is not None
        frames = 0
        deadline = time.monotonic() + 3  # live pushes keep coming (heartbeat times): drain a bounded while
        with contextlib.suppress(ConnectionClosed, asyncio.TimeoutError):
            while time.monotonic() < deadline:
                await asyncio.wait_for(ws.recv(decode=False), 1)
                frames += 1
        code = ws.close_code if ws.close_code is not None else None
        return {"stalled_frames_buffered": frames, "stalled_close_code": code, "stalled_dropped": code == 1013}

    async def run(self) -> None:
        plan = self.plan
        technicians = await self.open_all([t for _, t in plan.technicians], self.open)
        if plan.prepare_sites:
            gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

            async def prep(ws: ClientConnection, site: str) -> None:
                async with gate:
                    await self.prepare_site(ws, site)
            await asyncio.gather(*(prep(ws, s) for ws, (s, _) in zip(technicians, plan.technicians)))
        registrars = await self.open_all([t for _, t in plan.registrars], self.register)
        dashboards = await self.open_all(plan.dashboards, self.watch)
        if plan.stalled:
            await self.stall(plan.stalled)
        gc.collect()
        gc.freeze()  # thousands of open connections: a full collection over them would stall the generator's timing
        emit({"phase": "connected", "connections": len(technicians) + len(registrars) + len(dashboards)
              + bool(plan.stalled)})
        loop = asyncio.get_running_loop()
        while command := await loop.run_in_executor(None, sys.stdin.readline):  # the orchestrator's next step
            if not command.strip():
                break
            if not self.tasks:
                self.start(technicians)
            emit(await self.step(registrars, json.loads(command)["rate"]))
        outcome = await self.stall_outcome() if plan.stalled else {}
        closed = sum(w.closed.is_set() for w in dashboards)  # a hub that drops readers must not look faster
        emit({"phase": "done", "dashboards_closed": closed, **outcome})
        for task in self.tasks:
            task.cancel()
        # All at once: a connection whose unread answers filled its queue waits out its close_timeout.
        await asyncio.gather(*(ws.close() for ws in technicians), return_exceptions=True)
        for watcher in [*registrars, *dashboards]:
            watcher.close()

    def start(self, technicians: list[ClientConnection]) -> None:
        """Heartbeats, spread evenly over the interval, and the readers of their answers."""
        spread = self.plan.heartbeat_interval / max(1, len(technicians))
        self.tasks = [asyncio.create_task(self.heartbeats(ws, s, spread * i))
                      for i, (ws, (s, _)) in enumerate(zip(technicians, self.plan.technicians))]
        self.tasks += [asyncio.create_task(self.heartbeat_answers(ws)) for ws in technicians]

    async def step(self, registrars: list[Watcher], rate: float) -> dict[str, Any]:
        """One step at `rate` commands per second across the registrars; settle, then report."""
        self.rec.reset()
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        started = time.time()
        until = started + self.plan.duration
        if rate > 0 and registrars:
            await self.send_on_schedule(registrars, rate, until)
        await asyncio.sleep(max(0.0, until - time.time()) + 0.3)  # let the last answers and pushes arrive
        wall = self.plan.duration
        rec = self.rec
        push_latency, deliveries = rec.push_latency()  # the generator's work, so counted in its CPU below
        used = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "phase": "step", "offered_per_s": rate, "acked_per_s": rec.acks / wall, "errors": rec.errors,
            "error_codes": rec.error_codes, "heartbeats_per_s": rec.heartbeats / wall,
            "ack_latency": rec.ack_latency.counts(), "push_latency": push_latency.counts(),
            "deliveries_per_s": deliveries / wall, "frames_per_s": rec.frames / wall,
            "generator_cpu": (used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime) / (time.time() - started),
        }


async def send_json(ws: ClientConnection, message: dict[str, Any]) -> None:
    """A text frame from orjson's UTF-8 bytes as they are (a str would be decoded here, encoded again there)."""
    await ws.send(orjson.dumps(message), text=True)


async def frames(ws: ClientConnection) -> AsyncIterator[bytes]:
    """Every frame's bytes undecoded, until the connection closes; the readers parse only what they time."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            yield await ws.recv(decode=False)


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def main() -> None:
    plan = Plan(**json.loads(sys.stdin.readline()))
    try:
        from uvloop import run
    except ImportError:
        run = asyncio.run
    run(Generator(plan).run())


if __name__ == "__main__":
    main()
