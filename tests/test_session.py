"""The session's clock: the planned times on the day, the live start when rehearsed or demonstrated on another day."""

from __future__ import annotations

import datetime as dt

from hub.config import Config

from .conftest import ManualClock, StartHub


def local(config: Config, day: dt.date, hour: int, minute: int) -> float:
    return dt.datetime.combine(day, dt.time(hour, minute), config.event.tz).timestamp()


async def test_on_the_day_the_planned_times_hold(start_hub: StartHub, config: Config) -> None:
    clock = ManualClock(local(config, config.event.date, 7, 41))
    hub = await start_hub(clock=clock)
    moderator = await hub.client("moderator")
    await moderator.call("event.phase", phase="live")
    event = hub.hub.state.event_view()
    assert event["session_starts_at"] == "2023-11-24T07:30:00+07:00"
    assert event["session_ends_at"] == "2023-11-24T11:30:00+07:00"
    assert event["readiness_deadline"] == "2023-11-24T07:00:00+07:00"


async def test_on_another_day_the_session_runs_from_going_live(start_hub: StartHub, config: Config) -> None:
    clock = ManualClock(local(config, dt.date(2026, 11, 22), 14, 5))
    hub = await start_hub(clock=clock)
    moderator = await hub.client("moderator")
    assert hub.hub.state.event_view()["session_ends_at"] == "2023-11-24T11:30:00+07:00"  # not live yet: the plan
    await moderator.call("event.phase", phase="live")
    event = hub.hub.state.event_view()
    assert event["session_starts_at"] == "2026-11-22T14:05:00+07:00"
    assert event["session_ends_at"] == "2026-11-22T18:05:00+07:00"
    clock.advance(3600)
    await moderator.call("event.phase", phase="rehearsal")
    await moderator.call("event.phase", phase="live")
    assert hub.hub.state.event_view()["session_starts_at"] == "2026-11-22T14:05:00+07:00"  # the first time it went live
