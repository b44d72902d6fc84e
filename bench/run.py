"""`python -m bench`: the hub against bare aiohttp baselines, driven by a separate load generator.

Scenarios, each a separate generator process on an open-loop timetable:
  target   — every site heartbeating, registrars sending, dashboards watching, one stalled dashboard;
  commands — acknowledged (durably stored) commands at rising rates: hub vs bare echo;
  fan-out  — changes pushed to every dashboard at rising rates: hub vs bare broadcast.
Steps rise until p99 passes 100 ms; ratios against the baselines are the headline.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hub.tokens import TokenStore

from . import servers
from .genconfig import site_id, write_config
from .loadgen import Plan

P99_LIMIT_MS = 100.0
BENCH_LIMITS = {"rate_per_second": 1_000_000, "rate_burst": 1_000_000, "send_queue_frames": 64}
COMMAND_STEPS = [250, 500, 1000, 2000, 4000, 8000, 16000]
FANOUT_STEPS = [10, 30, 100, 300, 1000, 3000]
QUIET_CPU = 0.15


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sites", type=int, default=3500, help="site connections heartbeating (default 3500)")
    parser.add_argument("--dashboards", type=int, default=1000, help="subscribed dashboards (default 1000)")
    parser.add_argument("--registrars", type=int, default=100, help="registrar connections sending (default 100)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per step (default 5)")
    parser.add_argument("--rate", type=float, default=200.0,
                        help="commands per second across registrars in the target scenario (default 200)")
    parser.add_argument("--quick", action="store_true", help="a few seconds at small N (what CI runs)")
    parser.add_argument("--soak", type=float, metavar="MINUTES", help="run the target load this long; report memory drift")
    parser.add_argument("--only", choices=("target", "commands", "fanout", "startup"), action="append",
                        help="run only these scenarios (repeatable)")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="sample the hub with py-spy into FILE (collapsed stacks; see docs/performance.md)")
    parser.add_argument("--startup-events", type=int, default=1_000_000,
                        help="events in the log for the start-up measurement (default 1,000,000)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sites, args.dashboards, args.registrars = min(args.sites, 100), min(args.dashboards, 20), 10
        args.duration, args.rate, args.startup_events = 0.5, 20.0, 20_000
    if min(args.sites, args.dashboards, args.registrars) < 1 or args.duration <= 0:
        parser.error("--sites, --dashboards and --registrars must be at least 1; --duration positive")
    return args


class Bench:
    """One run: the generated event, its tokens, and the collected figures."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args, self.workdir = args, workdir
        sites = max(args.sites, args.registrars) + 1
        self.config = write_config(workdir / "bench.toml", sites=sites, limits=BENCH_LIMITS)
        self.db = workdir / "bench.db"
        store = TokenStore(self.db, "bench")
        ids = [site_id(i) for i in range(1, sites)]
        tech = store.issue_many([("technician", s, None, "bench") for s in ids[:args.sites]])
        reg = store.issue_many([("registrar", s, None, "bench") for s in ids[:args.registrars]])
        views = store.issue_many([("viewer", None, None, "bench")] * (args.dashboards + 1))
        self.technicians = [[t.identity.site, t.token] for t in tech]
        self.registrars = [[t.identity.site, t.token] for t in reg]
        self.dashboards = [t.token for t in views[:-1]]
        self.stalled = views[-1].token
        self.results: dict[str, Any] = {}

    def drive(self, server: servers.Watched, **fields: Any) -> dict[str, Any]:
        """Run a generator with this plan against the server; quick runs settle for less time."""
        plan = Plan(url=server.ws_url, **{"duration": self.args.duration, "stop_p99_ms": P99_LIMIT_MS, **fields})
        return drive(server, plan, settle=0.2 if self.args.quick else 1.0)


def wait_quiet(server: servers.Watched, settle: float, limit: float = 60.0) -> None:
    """Wait until the server has sent every subscriber its catch-up snapshot (its CPU falls), so a step
    measures the steady state, not a thousand snapshots still leaving."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = server.cpu()
        time.sleep(settle)
        if (server.cpu() - before) / settle < QUIET_CPU:
            return


def drive(server: servers.Watched, plan: Plan, settle: float) -> dict[str, Any]:
    """Run one generator process against a server; add the server's CPU share and memory to each step.

    `settle`: the window in which the server must be quiet after connecting before it is weighed.
    """
    gen = subprocess.Popen([sys.executable, "-m", "bench.loadgen"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           text=True)
    assert gen.stdin is not None and gen.stdout is not None
    rss_before = server.rss()
    gen.stdin.write(json.dumps(asdict(plan)) + "\n")
    gen.stdin.flush()
    out: dict[str, Any] = {"steps": [], "rss_before": rss_before}
    mark = (time.monotonic(), server.cpu())
    for line in gen.stdout:
        record = json.loads(line)
        if record["phase"] == "connected":
            wait_quiet(server, settle)
            out.update(connections=record["connections"], rss_connected=server.rss())
            gen.stdin.write("\n")
            gen.stdin.flush()
            mark = (time.monotonic(), server.cpu())
        elif record["phase"] == "step":
            now = (time.monotonic(), server.cpu())
            record["server_cpu"] = (now[1] - mark[1]) / (now[0] - mark[0])
            record["server_rss"] = server.rss()
            mark = now
            out["steps"].append(record)
        else:
            out.update(record)
    if gen.wait() != 0:
        raise RuntimeError(f"load generator failed with exit code {gen.returncode}")
    out["peak_rss"] = server.peak_rss
    return out


def sustained(steps: list[dict[str, Any]], key: str, latency: str) -> float:
    """The best rate reached at a step whose p99 stayed within the limit (0 when none did)."""
    good = [s[key] for s in steps if s[latency] <= P99_LIMIT_MS and s["acked_per_s"] >= 0.9 * s["offered_per_s"]]
    return max(good, default=0.0)


def crossing(steps: list[dict[str, Any]], latency: str) -> str:
    over = [s for s in steps if s[latency] > P99_LIMIT_MS]
    return f"{over[0]['offered_per_s']:,.0f}/s" if over else f"not reached (up to {steps[-1]['offered_per_s']:,.0f}/s)"


def run_target(bench: Bench, hub: servers.Watched) -> None:
    args = bench.args
    steps = [args.rate] * (math.ceil(args.soak * 60 / 30) if args.soak else 1)
    # 30 s: long enough for the stalled dashboard to fill the kernel's socket buffers (a few MB on loopback)
    # and then its 64-frame queue, so the step shows it dropped (1013) as well as everyone else's p99.
    duration = 30.0 if args.soak else max(args.duration * 6, 1.0)
    bench.results["target"] = bench.drive(hub, technicians=bench.technicians, registrars=bench.registrars,
                                          dashboards=bench.dashboards, stalled=bench.stalled, steps=steps,
                                          stop_p99_ms=1e9, duration=duration)


def run_commands(bench: Bench, hub: servers.Watched) -> None:
    steps = COMMAND_STEPS[:3:2] if bench.args.quick else COMMAND_STEPS
    bench.results["commands_hub"] = bench.drive(hub, registrars=bench.registrars, steps=steps)
    with servers.baseline("echo") as echo:
        bench.results["commands_echo"] = bench.drive(echo, registrars=bench.registrars, steps=steps)


def run_fanout(bench: Bench, hub: servers.Watched) -> None:
    steps = FANOUT_STEPS[:3:2] if bench.args.quick else FANOUT_STEPS
    drivers = bench.registrars[:10]
    bench.results["fanout_hub"] = bench.drive(hub, registrars=drivers, dashboards=bench.dashboards, steps=steps)
    with servers.baseline("broadcast") as bare:
        bench.results["fanout_bare"] = bench.drive(bare, registrars=drivers, dashboards=bench.dashboards, steps=steps)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    chosen = args.only or ["target", "commands", "fanout", "startup"]
    with tempfile.TemporaryDirectory(prefix="diemcau-bench-") as tmp:
        bench = Bench(args, Path(tmp))
        print(f"diemcau bench: {args.sites:,} sites, {args.registrars:,} registrars, {args.dashboards:,} dashboards, "
              f"{args.duration:g} s per step{' (quick)' if args.quick else ''}", flush=True)
        with servers.hub(bench.config, bench.db, args.profile) as hub:
            for name, scenario in (("target", run_target), ("commands", run_commands), ("fanout", run_fanout)):
                if name in chosen:
                    print(f"  running {name}...", flush=True)
                    scenario(bench, hub)
        if "startup" in chosen:
            from .startup import measure_startup

            print("  running startup...", flush=True)
            bench.results["startup"] = measure_startup(Path(tmp), args.startup_events)
    from .report import print_report

    print_report(bench.results, args)
