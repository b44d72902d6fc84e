"""The rehearsal simulator drives a real hub, over real websockets, to the day's expected figures."""

from __future__ import annotations

import asyncio
import random
import re
import signal
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from playwright.async_api import expect

from hub.config import Config
from hub.tokens import TokenStore
from sites.client import HubClient
from sites.scenario import generate_questions, read_questions, split_attendance
from sites.simulator import Simulator, choose_sites, day_plan, db_tokens, simulate_command, ws_url

from .browser import REFUSED, Pages
from .conftest import KON_TUM, ROOT, StartHub
from .processes import ignore_sigint, spawn
from .test_cli import free_port

FAST = 4000.0  # the 260-minute day in a few seconds
DIEMCAU = str(Path(sys.executable).with_name("diemcau"))


async def test_simulated_day_reaches_the_expected_totals(start_hub: StartHub, config: Config) -> None:
    running = await start_hub()
    day = day_plan(config, KON_TUM, config.sites, seed=7)
    sim = Simulator(running.ws_url, config, db_tokens(running.db_path, config), day, speed=FAST, seed=7)
    totals = await sim.run()

    csv_rows = read_questions(ROOT / "config" / "kon-tum-2023-questions.csv")
    assert sim.failures == 0
    assert totals["attendance"] == config.expected_total == 2300
    assert totals["sites_ready"] == len(config.sites) == 11
    state = running.hub.state
    assert {s.id: s.present for s in state.sites.values()} == {s.id: s.expected for s in config.sites}
    assert sorted(q.text for q in state.questions.values()) == sorted(r.text for r in csv_rows)
    assert Counter(q.topic for q in state.questions.values()) == Counter(r.topic for r in csv_rows)
    outcomes = Counter(q.status for q in state.questions.values())
    assert set(outcomes) == {"answered", "deferred"} and outcomes["answered"] >= 5
    assert all(q.agency for q in state.questions.values() if q.status == "deferred")
    assert [p["phase"] for p in state.phase_history] == ["rehearsal", "live", "closed"]
    assert state.agenda_current == config.agenda[-1].id
    assert set(state.agencies) == {a.id for a in config.agencies}
    incidents = [i for s in state.sites.values() for i in s.incidents.values()]
    assert len(incidents) == 1 and incidents[0].kind == "audio" and incidents[0].closed is not None


def test_same_seed_same_day_other_seed_other_day(config: Config) -> None:
    def fingerprint(seed: int) -> list[tuple]:
        return [(s.at, s.actor, s.type, repr(s.fields)) for s in day_plan(config, KON_TUM, config.sites, seed).steps]

    assert fingerprint(1) == fingerprint(1)
    assert fingerprint(1) != fingerprint(2)


def test_attendance_split_sums_to_the_expected_figure(config: Config) -> None:
    rng = random.Random(3)
    for expected in (1, 7, 150, 2300):
        counts = split_attendance(config, expected, rng)
        assert sum(counts.values()) == expected and set(counts) == {c.id for c in config.categories}


def test_site_selection(config: Config) -> None:
    assert [s.id for s in choose_sites(config, 3)] == [s.id for s in config.sites[:3]]
    rest = choose_sites(config, None, ("tinh", "dak-ha"))
    assert len(rest) == 9 and not {"tinh", "dak-ha"} & {s.id for s in rest}
    with pytest.raises(ValueError, match="nowhere"):
        choose_sites(config, None, ("nowhere",))


def test_hub_urls() -> None:
    assert ws_url("http://127.0.0.1:8080") == "ws://127.0.0.1:8080/ws"
    assert ws_url("https://diemcau.kontum.gov.vn/") == "wss://diemcau.kontum.gov.vn/ws"
    assert ws_url("ws://h:1/ws") == "ws://h:1/ws"
    with pytest.raises(ValueError):
        ws_url("ftp://h")


async def test_generated_questions_for_a_config_without_a_questions_file(start_hub: StartHub, config: Config,
                                                                          tmp_path: Path) -> None:
    sites = config.sites[:3]
    generated = generate_questions(config, sites, random.Random(5))
    assert generated and {q.site for q in generated} == {s.id for s in sites}
    assert all(any(ch in q.text for ch in "ạảấầẩẫậắằẳẵặẹẻẽếềểễệịỉọỏốồổỗộớờởỡợụủứừửữựỳỷỹđ") for q in generated)
    running = await start_hub()
    day = day_plan(config, tmp_path / "other.toml", sites, seed=5)  # no other-questions.csv beside it
    sim = Simulator(running.ws_url, config, db_tokens(running.db_path, config), day, speed=FAST, seed=5)
    totals = await sim.run()
    assert sim.failures == 0
    assert totals["attendance"] == sum(s.expected for s in sites)
    assert sorted(q.text for q in running.hub.state.questions.values()) == sorted(q.text for q in generated)


async def test_cli_with_an_admin_token_leaves_excluded_halls_alone(start_hub: StartHub) -> None:
    running = await start_hub()
    async with spawn(DIEMCAU, "simulate", "--hub", running.url, "--config", str(KON_TUM),
                     "--token", running.token("admin"), "--sites", "3", "--exclude-site", "tp-kon-tum", "--speed",
                     str(FAST), cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) as proc:
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    state = running.hub.state
    simulated = ["tinh", "dak-glei", "ngoc-hoi"]
    assert {s.id for s in state.sites.values() if s.present} == set(simulated)
    assert state.sites["tp-kon-tum"].checked_in is None
    present = sum(running.config.site_ids[s].expected for s in simulated)
    assert f"done: {present:,} of 2,300 present, 3 of 11 halls ready" in err.decode()


async def test_cli_refuses_a_token_that_is_not_admin(start_hub: StartHub) -> None:
    running = await start_hub()
    async with spawn(DIEMCAU, "simulate", "--hub", running.url, "--config", str(KON_TUM),
                     "--token", running.token("viewer"), cwd=ROOT, stderr=asyncio.subprocess.PIPE) as proc:
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1 and "admin token" in err.decode()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_cli_stops_cleanly_on_a_signal(start_hub: StartHub, sig: signal.Signals) -> None:
    running = await start_hub()
    async with spawn(DIEMCAU, "simulate", "--hub", running.url, "--config", str(KON_TUM), "--db", str(running.db_path),
                     "--speed", "5", cwd=ROOT, preexec_fn=ignore_sigint,  # as a background job (`… &`) starts
                     stderr=asyncio.subprocess.PIPE) as proc:
        assert proc.stderr is not None
        while b"checked in" not in await asyncio.wait_for(proc.stderr.readline(), 30):
            pass
        proc.send_signal(sig)
        rest = await asyncio.wait_for(proc.stderr.read(), 30)
        assert await proc.wait() == 130
    assert rest.decode().rstrip().endswith("stopped") and "Traceback" not in rest.decode()
    for _ in range(50):  # the hub notices the closed sockets within moments
        if not running.hub.connections:
            break
        await asyncio.sleep(0.1)
    assert not running.hub.connections


def test_cli_refuses_another_events_database(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    TokenStore(db, "another-event").issue("admin")
    result = CliRunner().invoke(simulate_command, ["--hub", "http://127.0.0.1:9", "--config", str(KON_TUM),
                                                   "--db", str(db)])
    assert result.exit_code == 1 and "holds event 'another-event'" in result.output


def test_the_demo_gives_a_watcher_time_to_see_it(config: Config) -> None:
    """At ten times speed the sound loss stays open a minute of real time; halls are ready by the deadline."""
    for speed, shortest in ((10, 60 * 10), (1, 2 * 60)):
        steps = day_plan(config, KON_TUM, config.sites, seed=2023, speed=speed).steps
        opened, closed = (s.at for s in steps if s.type == "site.incident")
        assert closed - opened >= shortest
    live = next(s.at for s in steps if s.fields.get("phase") == "live")
    last_check = max(s.at for s in steps if s.type == "site.check")
    assert last_check <= live - config.event.readiness_deadline_minutes * 60


async def connected(client: HubClient) -> HubClient:
    """Connect once the hub listens: `serve` prints its links before it binds the port."""
    for _ in range(100):
        try:
            await client.connect()
            return client
        except OSError:
            await asyncio.sleep(0.1)
    raise AssertionError("the hub did not start listening")


async def test_the_demo_waits_for_the_chair_page(tmp_path: Path, pages: Pages) -> None:
    port = free_port()
    pages.allow_console(REFUSED)  # the hub stops before the page does, which tries to reconnect at once
    proc = await asyncio.create_subprocess_exec(
        DIEMCAU, "serve", "--config", str(KON_TUM), "--db", str(tmp_path / "demo.db"), "--port", str(port),
        "--simulate", "--speed", "2000", cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert proc.stdout is not None
    output: list[str] = []
    viewer: HubClient | None = None

    async def read_until(text: str) -> None:
        """Collect the hub's output up to the line holding `text`."""
        while True:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()  # type: ignore[union-attr]
            assert line, "".join(output)
            output.append(line)
            if text in line:
                return

    try:
        await read_until("the demo waits for the chair page: open the chair link above")
        links = dict(re.findall(r"^  (\w+) +(http://\S+)$", "".join(output), re.MULTILINE))
        viewer = await connected(HubClient(f"ws://127.0.0.1:{port}/ws", links["viewer"].split("#token=")[1]))
        await viewer.call("subscribe")
        first = await viewer.next_push(lambda f: f["type"] == "snapshot")
        assert (first["state"]["seq"], first["state"]["event"]["phase"]) == (0, "setup")  # a viewer is not the chair
        reader = asyncio.create_task(read_until("phase: closed, the meeting ends"))
        page = await pages.open(SimpleNamespace(url=f"http://127.0.0.1:{port}"),  # type: ignore[arg-type]
                                "/", links["chair"].split("#token=")[1])
        await expect(page.locator('.tile[data-site="dak-ha"]')).to_have_attribute("data-status", "ready", timeout=30000)
        await asyncio.wait_for(reader, 60)
        text = "".join(output)
        chair_at = re.search(r"connected: \S+ chair", text)
        assert chair_at and chair_at.start() < text.index("a chair page is watching: the meeting day begins at 2000x")
        assert text.index("a chair page is watching") < text.index("phase: rehearsal")
    finally:
        if viewer is not None:
            await viewer.close()
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            await asyncio.wait_for(proc.wait(), 30)
