"""Reconnect storms: 200 site and 50 dashboard connections dropped at once (a hub restart, then a
network cut) come back with backoff and jitter; the hub keeps answering and every dashboard resumes
by seq to exactly what a fresh snapshot shows."""

from __future__ import annotations

import random
from pathlib import Path

from bench.storm import comparable, merge, run


async def test_everyone_drops_at_once_and_converges(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    figures = await run(tmp_path / "storm.db", sites=200, dashboards=50, drops=2, seed=seed)
    assert [c["kind"] for c in figures["checks"]] == ["restart", "network cut"]
    for check in figures["checks"]:
        assert check["dashboards"] == 50 and check["differing"] == 0, (f"seed {seed}", check)
        assert check["pings"] > 0  # the hub answered while the storm was on
    assert figures["reconnects"] == 250 * 2
    assert figures["resumed_delta"] == 50 * 2 and figures["snapshots"] == 50  # resumed by seq, never a full reload
    assert figures["exit_code"] == 0


def test_merge_folds_event_frames_into_a_snapshot() -> None:
    snapshot = {"type": "snapshot", "seq": 3, "state": {
        "seq": 3, "event": {"phase": "setup"}, "totals": {"attendance": 1}, "floor": {}, "agenda": {}, "agencies": {},
        "timeline": [], "sites": [{"id": "a", "present": 1}, {"id": "b", "present": 0}], "questions": []}}
    state = merge(None, snapshot)
    state = merge(state, {"type": "event", "seq": 5, "event": {"phase": "live"}, "totals": {"attendance": 4},
                          "floor": {}, "agenda": {}, "agencies": {}, "timeline_tail": [[10.0, 4, 0]],
                          "sites": [{"id": "b", "present": 3}], "questions": [{"id": "q4", "status": "submitted"}]})
    view = comparable(state)
    assert view["seq"] == 5 and view["event"] == {"phase": "live"} and view["totals"] == {"attendance": 4}
    assert view["timeline"] == [[10.0, 4, 0]]
    assert view["sites"] == {"a": {"id": "a", "present": 1}, "b": {"id": "b", "present": 3}}
    assert list(view["questions"]) == ["q4"]
    assert merge(state, {"type": "result", "id": 1}) is state
