"""Crash safety: SIGKILL the hub at random moments while clients stream commands, restart it, and prove
that every acknowledged command is stored exactly once.

    python -m bench.crash --rounds 20

Each registrar client keeps a window of `attendance.add` (+1) and `question.submit` commands with
fresh op_ids in flight; whatever is not acknowledged when the hub dies is resent, same op_id, after
it is back. At the end the database is read offline: acknowledged = stored once, at the acknowledged
seq, and the folded totals equal the number of distinct op_ids.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

from hub.config import Config, load_config
from hub.core.state import State
from hub.log.sqlite import SQLiteLog
from hub.tokens import TokenStore
from sites.client import HubClient

from .hubproc import HubProcess

ROOT = Path(__file__).resolve().parent.parent
KON_TUM = ROOT / "config" / "kon-tum-2023.toml"
WINDOW = 8  # commands in flight per client


@dataclass
class Ledger:
    """What the clients sent and what the hub acknowledged, by op_id."""

    sent: dict[str, dict[str, Any]] = field(default_factory=dict)
    acked: dict[str, int] = field(default_factory=dict)  # op_id -> seq in the answer
    resent: int = 0
    reconnects: int = 0
    rate_limited: int = 0
    acked_at_kill: list[int] = field(default_factory=list)


def new_command(config: Config, site: str, rng: random.Random) -> dict[str, Any]:
    op_id = uuid.uuid4().hex
    if rng.random() < 0.75:
        return {"type": "attendance.add", "site": site, "category": rng.choice(config.categories).id, "delta": 1,
                "op_id": op_id}
    return {"type": "question.submit", "site": site, "topic": rng.choice(config.topics).id, "op_id": op_id,
            "delegate": {"name": "Đại biểu kiểm thử", "unit": site}, "text": f"Câu hỏi kiểm thử {op_id[:12]}"}


def backoff(attempt: int, rng: random.Random) -> float:
    """Exponential backoff with full jitter, capped at 2 s: what the site agent and pages do."""
    return rng.uniform(0, min(2.0, 0.05 * 2 ** attempt))


async def client_loop(url: str, token: str, site: str, config: Config, ledger: Ledger, stop: asyncio.Event,
                      rng: random.Random) -> None:
    """Send until told to stop, then until everything sent is acknowledged; reconnect and resend on loss."""
    pending: list[dict[str, Any]] = []
    attempt = 0
    while not (stop.is_set() and not pending):
        client = HubClient(url, token)
        try:
            await client.connect(open_timeout=3)
        except (OSError, asyncio.TimeoutError, websockets.WebSocketException):
            attempt += 1
            await asyncio.sleep(backoff(attempt, rng))
            continue
        if attempt:
            ledger.reconnects += 1
            ledger.resent += len(pending)
        attempt = 0
        try:
            await _send_until_broken(client, site, config, ledger, stop, rng, pending)
        finally:
            await client.close()


async def _send_until_broken(client: HubClient, site: str, config: Config, ledger: Ledger, stop: asyncio.Event,
                             rng: random.Random, pending: list[dict[str, Any]]) -> None:
    while not (stop.is_set() and not pending):
        while len(pending) < WINDOW and not stop.is_set():
            command = new_command(config, site, rng)
            ledger.sent[command["op_id"]] = command
            pending.append(command)
        batch = list(pending)
        answers = await asyncio.gather(
            *(client.send(c["type"], timeout=10, **{k: v for k, v in c.items() if k != "type"}) for c in batch),
            return_exceptions=True)
        broken = limited = False
        for command, answer in zip(batch, answers):
            if isinstance(answer, BaseException):
                broken = True
            elif answer["success"]:
                ledger.acked[command["op_id"]] = answer["result"]["seq"]
                pending.remove(command)
            elif answer["error"]["code"] == "rate_limited":
                limited = True
                ledger.rate_limited += 1
            else:
                raise AssertionError(f"unexpected answer to {command}: {answer}")
        if broken:
            return
        if limited:
            await asyncio.sleep(0.2)


async def verify(config: Config, db_path: Path, ledger: Ledger) -> dict[str, int]:
    """Read the database offline and compare it with what the clients were told."""
    log = SQLiteLog(db_path, config.event.id)
    try:
        events = list(log.read(0))
    finally:
        await log.stop()
    copies = Counter(e.op_id for e in events if e.op_id)
    stored_at = {e.op_id: e.seq for e in events if e.op_id}
    state = State(config)
    for event in events:
        state.apply(event)
    kinds = Counter(c["type"] for c in ledger.sent.values())
    return {
        "sent": len(ledger.sent),
        "acknowledged": len(ledger.acked),
        "never_acknowledged": len(set(ledger.sent) - set(ledger.acked)),
        "lost": sum(1 for op in ledger.acked if op not in stored_at),
        "moved": sum(1 for op, seq in ledger.acked.items() if op in stored_at and stored_at[op] != seq),
        "duplicates": sum(n - 1 for n in copies.values()),
        "stored_not_sent": len(set(stored_at) - set(ledger.sent)),
        "attendance_ops": kinds["attendance.add"],
        "attendance_total": state.present_total,
        "question_ops": kinds["question.submit"],
        "questions": len(state.questions),
        "events": len(events),
    }


async def run(db_path: Path, rounds: int, clients: int = 4, seed: int | None = None,
              config_path: Path = KON_TUM, max_gap: float = 0.8) -> dict[str, Any]:
    """Kill and restart the hub `rounds` times under load; return the figures (see `verify`)."""
    rng = random.Random(seed)
    config = load_config(config_path)
    sites = [s.id for s in config.sites][:clients]
    store = TokenStore(db_path, config.event.id)
    tokens = [store.issue("registrar", site, None, f"crash {site}").token for site in sites]
    hub = HubProcess(config_path, db_path)
    ledger, stop = Ledger(), asyncio.Event()
    started = time.monotonic()
    await hub.start()
    workers = [asyncio.create_task(client_loop(hub.ws_url, token, site, config, ledger, stop,
                                               random.Random(rng.random())))
               for site, token in zip(sites, tokens)]
    try:
        for _ in range(rounds):
            floor = len(ledger.acked)
            while len(ledger.acked) <= floor:  # the clients are back and sending
                for task in workers:
                    if task.done():
                        task.result()  # a client that failed for a reason other than the kill stops the run
                await asyncio.sleep(0.02)
            await asyncio.sleep(rng.uniform(0, max_gap))
            ledger.acked_at_kill.append(len(ledger.acked))
            hub.kill()
            await asyncio.sleep(rng.uniform(0, 0.3))
            await hub.start()
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers), 60)
    finally:
        stop.set()
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        hub.kill()  # the last acknowledgements must survive a kill too
    figures = await verify(config, db_path, ledger)
    figures.update(rounds=rounds, starts=hub.starts, reconnects=ledger.reconnects, resent=ledger.resent,
                   rate_limited=ledger.rate_limited, seconds=round(time.monotonic() - started, 1))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="SIGKILLs (default 20)")
    parser.add_argument("--clients", type=int, default=6, help="registrar connections (default 6)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--db", type=Path, default=None, help="database to use (default: a fresh temp file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "crash.db"
        figures = asyncio.run(run(db, args.rounds, args.clients, args.seed))
    for key, value in figures.items():
        print(f"{key:>20}  {value}")
    ok = figures["lost"] == figures["duplicates"] == figures["moved"] == figures["never_acknowledged"] == 0
    ok = ok and figures["attendance_total"] == figures["attendance_ops"] and figures["questions"] == figures["question_ops"]
    print("OK: nothing acknowledged was lost or doubled" if ok else "FAILED")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
