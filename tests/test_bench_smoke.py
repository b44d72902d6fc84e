"""The benchmark's smoke run: `python -m bench --quick` completes and prints its table with numbers.

Benchmarks are not unit tests: no timing thresholds here, only that every part runs and reports.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.hubproc import HubProcess
from bench.report import capped, ratio, target_headline

from .conftest import KON_TUM, ROOT

NUMBER = r"[\d,.]+"


def test_quick_bench_completes_and_reports() -> None:
    # Its own process group, so a hang takes the hub and generator it started down with it.
    bench = subprocess.Popen([sys.executable, "-m", "bench", "--quick"], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = bench.communicate(timeout=240)
    finally:
        if bench.poll() is None:
            os.killpg(bench.pid, signal.SIGKILL)
            bench.wait()
    assert bench.returncode == 0, err[-3000:]
    assert re.search(rf"connections {NUMBER}; hub memory {NUMBER} MB before them, {NUMBER} MB with them: "
                     rf"{NUMBER} KB per connection; peak {NUMBER} MB", out), out
    assert re.search(rf"^\s+1(\s+{NUMBER}){{7}}\s+\d+%", out, re.M), out  # heartbeats/s ... spread, then hub CPU
    assert re.search(rf"^\s+250 \|\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}", out, re.M), out
    assert re.search(rf"acknowledged commands/s at p99 <= 100 ms: hub (>= )?{NUMBER}, bare echo (>= )?{NUMBER}, "
                     r"ratio ((<=|>=) )?([\d.]+|n/a)", out), out
    assert re.search(rf"changes/s reaching every dashboard at p99 <= 100 ms: hub (>= )?{NUMBER}, "
                     rf"bare broadcast (>= )?{NUMBER}", out), out
    assert re.search(r"^Hub event-loop stops of 0.2 s or more \(its log\): \d+$", out, re.M), out
    assert re.search(rf"Start-up from a log of 20,000 events: full fold {NUMBER} s; snapshot \+ {NUMBER}-event tail",
                     out), out
    assert re.search(rf"^\s+250 \|\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}.*\| +{NUMBER}", out, re.M), out  # cluster | single
    assert re.search(rf"Target load over 3 nodes: .*\n  heartbeats/s {NUMBER}, acked/s {NUMBER}, ack p99 {NUMBER} ms, "
                     rf"push p50 {NUMBER} ms, push p99 {NUMBER} ms", out), out
    assert re.search(rf"Failover under {NUMBER} acknowledged adds: commands resumed {NUMBER} s after kill -9 of the "
                     rf"sequencer hub .*, {NUMBER} s after kill -9 of the stream's leading NATS server .*, {NUMBER} s "
                     r"after kill -9 of both the sequencer hub and the lease stream's leading server \(a machine\); "
                     r"acknowledged but not stored exactly once at their seq: 0$", out, re.M), out
    assert re.search(rf"cluster: (>= )?{NUMBER} durable commands/s at p99 <= 100 ms", out), out
    assert re.search(rf"The hub's own work per command \(in-process, 5,000 attendance.set .*\): {NUMBER} µs CPU "
                     rf"\(loop {NUMBER}, log writer {NUMBER}; {NUMBER} commits\)\n"
                     rf"  with random op_ids \(uuid4\) instead of time-ordered ones: {NUMBER} µs CPU \(log writer {NUMBER}\)",
                     out), out


def test_a_rate_the_top_step_capped_is_a_bound_not_a_ratio() -> None:
    assert ratio(8000, 16000, hub_floor=False, bare_floor=False) == "0.50"
    assert ratio(8000, 32000, hub_floor=False, bare_floor=True) == "<= 0.25"  # the echo never ran out
    assert ratio(3000, 10, hub_floor=True, bare_floor=False) == ">= 300.00"
    assert ratio(3000, 3000, hub_floor=True, bare_floor=True) == "n/a"


def test_a_step_only_a_saturated_generator_lagged_in_is_not_the_servers_limit() -> None:
    def step(p99: float, generator: float) -> dict[str, float]:
        return {"ack_p99_ms": p99, "generator_cpu": generator}
    assert capped([step(10, 0.5), step(300, 0.9)], "ack_p99_ms")  # the echo at 32,000/s: the generator's limit
    assert not capped([step(10, 0.5), step(300, 0.6)], "ack_p99_ms")  # the hub's own limit


def test_a_target_p99_a_saturated_generator_measured_says_so() -> None:
    def step(p99: float, generator: float) -> dict[str, float]:
        return {"push_p99_ms": p99, "generator_cpu": generator}
    assert target_headline([step(60, 0.5), step(62, 0.6)]) == \
        "target load: update-to-dashboard p99 62.0 ms (target <= 100 ms)"
    busy = target_headline([step(167.1, 0.95), step(80, 0.6)])
    assert busy.startswith("target load: update-to-dashboard p99 167.1 ms (target <= 100 ms); the generator at 95%")


async def test_a_hub_that_does_not_come_up_in_time_is_not_left_running(tmp_path: Path) -> None:
    hub = HubProcess(KON_TUM, tmp_path / "event.db")
    try:
        with pytest.raises(TimeoutError):
            await hub.start(timeout=0)
        assert not hub.alive
    finally:
        hub.kill()
