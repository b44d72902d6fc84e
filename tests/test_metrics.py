"""`/metrics` parses with the Prometheus client's own parser and counts what the hub did."""

from __future__ import annotations

import asyncio
import gc
import logging
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hub.core.commands import COMMANDS
from hub.core.errors import ERROR_CODES
from sites.client import CommandFailed

from .conftest import ROOT, RunningHub, StartHub


async def scrape(running: RunningHub, token: str) -> dict[str, dict[tuple, float]]:
    """Every sample by metric family and label set."""
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{running.url}/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


async def test_metrics_count_connections_commands_errors_and_commits(start_hub: StartHub) -> None:
    running = await start_hub()
    tech = await running.client("technician", site="dak-ha")
    registrar = await running.client("registrar", site="dak-ha")
    await tech.call("site.checkin", site="dak-ha", technician="Trần Văn Minh")
    for item in running.config.required_checks:
        await tech.call("site.check", site="dak-ha", item=item, ok=True)
    await tech.call("site.heartbeat", site="dak-ha", rtt_ms=42)
    for count in (10, 20, 30):
        await registrar.call("attendance.set", site="dak-ha", category="workers", count=count)
    for _ in range(2):
        with pytest.raises(CommandFailed, match="unauthorized"):
            await registrar.call("attendance.set", site="tinh", category="workers", count=5)
    stored = 1 + len(running.config.required_checks) + 3

    m = await scrape(running, running.token("viewer"))
    assert m["diemcau_connections"][(("role", "technician"),)] == 1
    assert m["diemcau_connections"][(("role", "registrar"),)] == 1
    assert m["diemcau_commands_total"][(("type", "attendance.set"),)] == 3
    assert m["diemcau_commands_total"][(("type", "site.check"),)] == len(running.config.required_checks)
    assert m["diemcau_errors_total"][(("code", "unauthorized"),)] == 2
    assert m["diemcau_ack_seconds_count"][()] >= stored
    assert m["diemcau_ack_seconds_bucket"][(("le", "+Inf"),)] == m["diemcau_ack_seconds_count"][()]
    hub = running.hub
    await hub.release.wait(hub.state.seq)
    m = await scrape(running, running.token("admin"))
    assert m["diemcau_commit_batch_size_sum"][()] == hub.log.durable_seq == m["diemcau_event_log_durable_seq"][()]
    assert m["diemcau_commit_batch_size_count"][()] == m["diemcau_commit_batches_total"][()] == hub.log.batches
    single = sum(1 for size in hub.log.batch_sizes if size == 1)  # commits of one event are in bucket le=1
    assert m["diemcau_commit_batch_size_bucket"][(("le", "1.0"),)] == single
    assert m["diemcau_event_log_seq"][()] == hub.state.seq
    sites = m["diemcau_sites"]
    assert sites[(("status", "ready"),)] == 1 and sites[(("status", "offline"),)] == len(running.config.sites) - 1
    assert sum(sites.values()) == len(running.config.sites)
    assert m["diemcau_attendance"][()] == 30


async def test_command_and_error_counters_start_at_zero_for_every_type_and_code(hub: RunningHub) -> None:
    """A series that first appears at 1 shows no rise to `rate()`: the first error of a kind would go unseen."""
    m = await scrape(hub, hub.token("viewer"))  # parsed by the Prometheus client's own parser
    assert m["diemcau_errors_total"] == {(("code", code),): 0 for code in ERROR_CODES}
    stored = {name for name, spec in COMMANDS.items() if spec.stores}
    assert m["diemcau_commands_total"] == {(("type", name),): 0 for name in stored}
    assert {"attendance.set", "question.update", "site.checkin"} <= stored and "site.heartbeat" not in stored
    registrar = await hub.client("registrar", site="dak-ha")
    with pytest.raises(CommandFailed, match="unauthorized"):
        await registrar.call("attendance.set", site="tinh", category="workers", count=5)
    m = await scrape(hub, hub.token("viewer"))
    assert m["diemcau_errors_total"][(("code", "unauthorized"),)] == 1
    assert m["diemcau_errors_total"][(("code", "conflict"),)] == 0


async def test_metrics_need_an_admin_or_viewer_token(hub: RunningHub) -> None:
    async with httpx.AsyncClient() as http:
        url = f"{hub.url}/metrics"
        assert (await http.get(url)).status_code == 401
        assert (await http.get(url, headers={"Authorization": "Bearer nope.nope"})).status_code == 401
        registrar = {"Authorization": f"Bearer {hub.token('registrar', site='tinh')}"}
        assert (await http.get(url, headers=registrar)).status_code == 403


async def test_two_hubs_in_one_process_keep_their_own_metrics(start_hub: StartHub, tmp_path) -> None:
    first = await start_hub()
    second = await start_hub(path=tmp_path / "second.db")
    tech = await first.client("technician", site="tinh")
    await tech.call("site.checkin", site="tinh", technician="Lê Thu Hà")
    one, two = await scrape(first, first.token("viewer")), await scrape(second, second.token("viewer"))
    assert one["diemcau_commands_total"][(("type", "site.checkin"),)] == 1
    assert set(two["diemcau_commands_total"].values()) == {0}
    assert two["diemcau_event_log_seq"][()] == 0 < one["diemcau_event_log_seq"][()]


async def test_every_metric_is_documented(hub: RunningHub) -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{hub.url}/metrics", headers={"Authorization": f"Bearer {hub.token('viewer')}"})
    names = {family.name for family in text_string_to_metric_families(response.text)
             if not family.name.endswith("_created")}  # the client's own histogram timestamps
    assert len(names) >= 10
    assert [name for name in sorted(names) if f"`{name}" not in guide] == []


async def test_a_stopped_event_loop_is_logged_and_counted(start_hub: StartHub, caplog) -> None:
    running = await start_hub()
    await asyncio.sleep(0.15)  # the hub's loop-lag probe is asleep, having noted the collections so far
    with caplog.at_level(logging.WARNING, logger="diemcau.hub"):
        gc.collect()
        time.sleep(0.4)  # the hub runs on this loop: nothing of it runs for 0.4 s
        await asyncio.sleep(0.3)
    stops = [r.getMessage() for r in caplog.records if "event loop stopped" in r.getMessage()]
    assert stops and stops[0].endswith("garbage collection: full)"), stops
    assert int(stops[0].split("stopped for ")[1].split(" ms")[0]) >= 300
    m = await scrape(running, running.token("admin"))
    assert m["diemcau_loop_stalls_total"][()] >= 1
