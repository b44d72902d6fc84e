"""The day's log: one line per thing that matters, naming the hall, as text or JSON, never a token."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest

from hub.core.daylog import JsonFormatter

from .conftest import ManualClock, StartHub


async def test_the_day_in_log_lines(start_hub: StartHub, clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    running = await start_hub(clock=clock)
    moderator = await running.client("moderator")
    await moderator.call("event.phase", phase="live")
    await moderator.call("agenda.advance", item="khai-mac")
    tech = await running.client("technician", site="dak-ha")
    tech_token = tech.token
    await tech.call("site.checkin", site="dak-ha", technician="Võ Văn Dũng")
    for item in running.config.required_checks:
        await tech.call("site.check", site="dak-ha", item=item, ok=True)
    await tech.call("site.heartbeat", site="dak-ha")
    await tech.call("site.incident", site="dak-ha", kind="audio", open=True, note="Mất âm thanh")
    await tech.call("site.incident", site="dak-ha", kind="audio", open=False, note="Đã khắc phục")
    clock.advance(running.config.heartbeat.timeout_seconds + 5)
    for _ in range(50):  # the hub's status loop notices the silence
        if running.hub.state.sites["dak-ha"].status == "lost":
            break
        await asyncio.sleep(0.1)
    await tech.call("site.heartbeat", site="dak-ha")  # back after the gap
    day = [r for r in caplog.records if r.name == "diemcau.day"]
    text = [r.getMessage() for r in day]
    assert "phase: live" in text
    assert any(t.startswith("programme: khai-mac (") for t in text)
    hall = "site dak-ha (Huyện Đắk Hà): "
    assert hall + "checked in by Võ Văn Dũng" in text
    assert hall + "checking -> ready" in text
    assert hall + "audio incident opened: Mất âm thanh" in text
    assert hall + "lost: no heartbeat" in text and hall + "reconnected (ready)" in text
    assert any(t.startswith(hall + "audio incident i") and t.endswith("closed: Đã khắc phục") for t in text)
    opened = next(r for r in day if "incident opened" in r.getMessage())
    assert opened.levelno == logging.WARNING
    line = orjson.loads(JsonFormatter().format(opened))
    assert line["site"] == "dak-ha" and line["site_name"] == "Huyện Đắk Hà" and line["event"] == "site.incident"
    assert line["actor"] == tech_token.partition(".")[0] and line["level"] == "warning"
    secrets = [tech_token.partition(".")[2], *(c.token.partition(".")[2] for c in running.clients)]
    assert not any(secret in caplog.text for secret in secrets)
