"""State snapshots: a snapshot plus the log's tail folds to exactly the state the whole log folds to."""

from __future__ import annotations

import zlib
from pathlib import Path

from hub.config import Config
from hub.core import views
from hub.core.state import State
from hub.log import snapshots as snapshot
from hub.log.sqlite import SQLiteLog
from sites.client import HubClient

from .conftest import RunningHub, StartHub


async def first_half(admin: HubClient) -> str:
    """Commands touching every part of the state: sites, incidents, attendance, questions, agenda."""
    await admin.call("event.phase", phase="live")
    await admin.call("site.checkin", site="dak-ha", technician="Anh Minh", phone="0912 345 678")
    for item in ("camera", "audio", "display", "network", "video_link"):
        await admin.call("site.check", site="dak-ha", item=item, ok=True)
    await admin.call("site.incident", site="dak-ha", kind="audio", open=True, note="micro rè")
    await admin.call("attendance.set", site="dak-ha", category="workers", count=120, op_id="before-snapshot")
    await admin.call("attendance.add", site="tinh", category="guests", delta=15)
    await admin.call("agenda.advance", item="khai-mac")
    answer = await admin.call("question.submit", site="dak-ha", topic="training", text="Đào tạo nghề cho công nhân?",
                              delegate={"name": "Chị Lan", "unit": "Công ty A"}, agency="sldtbxh")
    return answer["question"]


async def second_half(admin: HubClient, question: str) -> None:
    """Commands after the snapshot, some of which change what the snapshot holds."""
    await admin.call("site.incident", site="dak-ha", kind="audio", open=False, note="đã xử lý")
    await admin.call("attendance.add", site="dak-ha", category="workers", delta=7)
    await admin.call("question.update", question=question, status="queued")
    await admin.call("floor.call", site="dak-ha", question=question)
    await admin.call("agency.attendance", agency="sldtbxh", status="deputy", delegate="Ông Hùng", written_report=True)
    await admin.call("question.update", question=question, status="deferred")
    await admin.call("question.answer", question=question, kind="written", text="Sở đã trả lời bằng văn bản.")
    await admin.call("agenda.advance", item="bao-cao")


def full_fold(config: Config, db_path: Path) -> State:
    log = SQLiteLog(db_path, config.event.id)
    state = State(config)
    for event in log.read(0):
        state.apply(event)
    return state


def from_snapshot(config: Config, db_path: Path) -> tuple[State, int]:
    """The state a restart builds (snapshot, then the tail), and the seq the snapshot held."""
    log = SQLiteLog(db_path, config.event.id)
    state = snapshot.restore(config, log)
    restored_at = state.seq
    for event in log.read(state.seq):
        state.apply(event)
    return state, restored_at


async def run_event(start_hub: StartHub) -> tuple[RunningHub, int]:
    running = await start_hub()
    admin = await running.client("admin")
    question = await first_half(admin)
    taken = await snapshot.take(lambda: running.hub.state, running.hub.log, running.hub.release.wait)
    await second_half(admin, question)
    await running.close_clients()
    await running.server.close()
    assert taken is not None
    return running, taken


async def test_snapshot_plus_tail_equals_full_fold(start_hub: StartHub, config: Config, db_path: Path) -> None:
    running, taken = await run_event(start_hub)
    full = full_fold(config, db_path)
    restored, restored_at = from_snapshot(config, db_path)
    assert 0 < restored_at == taken < full.seq
    assert snapshot.dump(restored) == snapshot.dump(full)
    assert views.snapshot(restored) == views.snapshot(full)
    assert views.snapshot(restored, "sldtbxh") == views.snapshot(full, "sldtbxh")


async def test_restarted_hub_starts_from_the_snapshot(start_hub: StartHub, config: Config, db_path: Path,
                                                      monkeypatch) -> None:
    running, taken = await run_event(start_hub)
    monkeypatch.setattr("hub.core.state.RECENT_OPS", 2)  # answers kept after a restart are evicted oldest first too
    again = await start_hub()
    full = full_fold(config, db_path)
    assert again.hub.state.seq == full.seq
    assert views.snapshot(again.hub.state)["questions"] == views.snapshot(full)["questions"]
    assert views.snapshot(again.hub.state)["totals"] == views.snapshot(full)["totals"]
    admin = await again.client("admin")
    answer = await admin.call("attendance.add", site="dak-ha", category="workers", delta=1, op_id="after-restart")
    assert answer["present"] == 128 and list(again.hub.state.ops)[-1] == "after-restart"
    # Snapshots leave the kept answers out: a retry from before the snapshot is answered from the log.
    retried = await admin.call("attendance.set", site="dak-ha", category="workers", count=120, op_id="before-snapshot")
    assert retried["seq"] <= taken and again.hub.state.sites["dak-ha"].attendance["workers"] == 128


async def test_snapshot_of_another_config_is_ignored(start_hub: StartHub, config: Config, db_path: Path) -> None:
    await run_event(start_hub)
    changed = config.model_copy(update={"sites": [config.sites[0].model_copy(update={"name": "Hội trường mới"}),
                                                  *config.sites[1:]]})
    state, restored_at = from_snapshot(changed, db_path)
    assert restored_at == 0
    assert snapshot.dump(state) == snapshot.dump(full_fold(changed, db_path))


async def test_unreadable_snapshot_falls_back_to_the_whole_log(start_hub: StartHub, config: Config,
                                                               db_path: Path) -> None:
    _, taken = await run_event(start_hub)
    log = SQLiteLog(db_path, config.event.id)
    log.save_snapshot(taken, zlib.compress(b"{not json"))
    state, restored_at = from_snapshot(config, db_path)
    assert restored_at == 0
    assert snapshot.dump(state) == snapshot.dump(full_fold(config, db_path))
