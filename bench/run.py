"""`python -m bench`: the hub against bare aiohttp baselines, driven by separate load-generator processes.

The server under test runs on one core and the generator's processes on another (see `split`).
Scenarios, each on an open-loop timetable:
  target   — every site heartbeating, registrars sending, dashboards watching, one stalled dashboard;
  commands — acknowledged (durably stored) commands at rising rates: hub vs bare echo;
  fan-out  — changes pushed to every dashboard at rising rates: hub vs bare broadcast.
Steps rise until p99 passes 100 ms; ratios against the baselines are the headline. Then, in this process:
  startup  — a log of a million events folded whole, against a snapshot and its tail;
  cost     — the hub's own CPU per command without sockets (bench/cost.py), to weigh a change to the command path.
  cluster  — three hub nodes on three nats-servers, on this machine: commands, target load, failover
             (bench/cluster.py), beside the single hub's figures.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from hub.config import load_config
from hub.tokens import TokenStore

from . import servers
from .genconfig import site_id, write_config
from .loadgen import Plan
from .stats import Histogram

P99_LIMIT_MS = 100.0
BENCH_LIMITS = {"rate_per_second": 1_000_000, "rate_burst": 1_000_000, "send_queue_frames": 64}
COMMAND_STEPS = [250, 500, 1000, 2000, 4000, 8000, 12000, 16000, 24000, 32000, 40000, 48000, 56000, 64000, 80000, 96000]
CLUSTER_COMMAND_STEPS = [250, 500, 1000, 2000, 3000, 4000, 6000, 8000]  # its target, 3,000/s, is a step of its own
FANOUT_STEPS = [10, 30, 100, 300, 1000, 3000]
QUIET_CPU = 0.15
PROBE_EVERY = 10


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sites", type=int, default=3500, help="site connections heartbeating (default 3500)")
    parser.add_argument("--dashboards", type=int, default=1000, help="subscribed dashboards (default 1000)")
    parser.add_argument("--registrars", type=int, default=100, help="registrar connections sending (default 100)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per step (default 5)")
    parser.add_argument("--rate", type=float, default=200.0,
                        help="commands per second across registrars in the target scenario (default 200)")
    parser.add_argument("--no-stall", action="store_true",
                        help="leave out the stalled dashboard (to compare: it should raise nobody's p99)")
    parser.add_argument("--quick", action="store_true", help="a few seconds at small N (what CI runs)")
    parser.add_argument("--soak", type=float, metavar="MINUTES", help="run the target load this long; report memory drift")
    parser.add_argument("--only", choices=("target", "commands", "fanout", "startup", "cost", "cluster"), action="append",
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

    def drive(self, server: servers.Watched, steps: list[float], stop_p99_ms: float = P99_LIMIT_MS,
              **fields: Any) -> dict[str, Any]:
        """Run the generators with this plan against the server; quick runs settle for less time."""
        plan = Plan(urls=server.ws_urls, **{"duration": self.args.duration, **fields})
        return drive(server, plan, steps, stop_p99_ms, settle=0.2 if self.args.quick else 1.0)


def wait_quiet(server: servers.Watched, settle: float, limit: float = 60.0) -> None:
    """Wait until the server has sent every subscriber its catch-up snapshot (its CPU falls), so a step
    measures the steady state, not a thousand snapshots still leaving."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = server.cpu()
        time.sleep(settle)
        if (server.cpu() - before) / settle < QUIET_CPU:
            return


class Worker:
    """One load-generator process on the CPUs the server under test leaves it, spoken to in JSON lines."""

    def __init__(self, plan: Plan, cpus: set[int] | None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bench.loadgen"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        servers.pin(self.proc.pid, cpus)
        self.send(asdict(plan))

    def send(self, message: dict[str, Any] | None) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(("" if message is None else json.dumps(message)) + "\n")
        self.proc.stdin.flush()

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"load generator failed with exit code {self.proc.wait()}")
        return json.loads(line)

    def finish(self) -> dict[str, Any]:
        """Its closing figures (the stalled dashboard's fate, dashboards it lost), once it has exited."""
        self.send(None)
        done = self.read()
        if self.proc.wait(30) != 0:
            raise RuntimeError(f"load generator failed with exit code {self.proc.returncode}")
        return done


def split(plan: Plan) -> dict[str, Plan]:
    """The generator's processes, all on its one core: the senders; the probes, one dashboard in
    PROBE_EVERY, whose latency is the one reported; and the rest of the dashboards.

    A burst of pushes being read never holds back a command that is due. And one process reading a
    thousand sockets in turn reaches the last of them tens of ms after the hub wrote to it, a queue no
    dashboard has in its own browser: the probes, few in a process of their own, see the hub's fan-out
    order as it is (they sit anywhere in it) without that queue. Both latencies are reported.
    """
    dashboards_only = {"technicians": [], "registrars": [], "stalled": None}
    parts = {"senders": replace(plan, dashboards=[]),
             "probes": replace(plan, **dashboards_only, dashboards=plan.dashboards[::PROBE_EVERY], worker=1),
             "readers": replace(plan, **dashboards_only, worker=2,
                                dashboards=[d for i, d in enumerate(plan.dashboards) if i % PROBE_EVERY])}
    return {name: p for name, p in parts.items() if p.technicians or p.registrars or p.stalled or p.dashboards}


def merge_steps(parts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One step's figures from every generator process: counts added, latency histograms merged."""
    ack = Histogram.merged(p["ack_latency"] for p in parts.values())
    probes = Histogram.merged([parts["probes"]["push_latency"]] if "probes" in parts else [])
    every = Histogram.merged(p["push_latency"] for p in parts.values())
    record: dict[str, Any] = {
        "phase": "step", "offered_per_s": next(iter(parts.values()))["offered_per_s"], "error_codes": {},
        "ack_p50_ms": ack.quantile(0.5), "ack_p99_ms": ack.quantile(0.99),
        "push_p50_ms": probes.quantile(0.5), "push_p99_ms": probes.quantile(0.99),
        "push_p999_ms": probes.quantile(0.999), "pushes_seen": probes.total,
        "every_push_p99_ms": every.quantile(0.99)}
    for key in ("acked_per_s", "errors", "heartbeats_per_s", "deliveries_per_s", "frames_per_s", "generator_cpu"):
        record[key] = sum(p[key] for p in parts.values())
    for part in parts.values():
        for code, count in part["error_codes"].items():
            record["error_codes"][code] = record["error_codes"].get(code, 0) + count
    return record


def drive(server: servers.Watched, plan: Plan, steps: list[float], stop_p99_ms: float,
          settle: float) -> dict[str, Any]:
    """Step the generator processes together against a server; add the server's CPU share and memory.

    Steps stop early once p99 passes `stop_p99_ms` or under 90 % of the offered rate is acknowledged.
    `settle`: the window in which the server must be quiet after connecting before it is weighed.
    """
    rss_before = server.rss()
    workers: dict[str, Worker] = {}
    try:
        connections = 0
        for name, part in split(plan).items():  # one after the other: sites check in before dashboards open
            workers[name] = Worker(part, server.generator_cpus)
            connections += workers[name].read()["connections"]
        wait_quiet(server, settle)
        out: dict[str, Any] = {"steps": [], "rss_before": rss_before, "connections": connections,
                               "rss_connected": server.rss()}
        mark = (time.monotonic(), server.cpu())
        for rate in steps:
            for worker in workers.values():
                worker.send({"rate": rate})
            record = merge_steps({name: w.read() for name, w in workers.items()})
            now = (time.monotonic(), server.cpu())
            record.update(server_cpu=(now[1] - mark[1]) / (now[0] - mark[0]), server_rss=server.rss())
            mark = now
            out["steps"].append(record)
            if max(record["ack_p99_ms"], record["push_p99_ms"]) > stop_p99_ms or record["acked_per_s"] < 0.9 * rate:
                break
        out["dashboards_closed"] = 0
        for worker in workers.values():
            done = worker.finish()
            out["dashboards_closed"] += done.pop("dashboards_closed")
            out.update({k: v for k, v in done.items() if k != "phase"})
    finally:
        for worker in workers.values():
            if worker.proc.poll() is None:
                worker.proc.kill()
                worker.proc.wait()
    out["peak_rss"] = server.peak_rss
    return out


def sustained(steps: list[dict[str, Any]], key: str, latency: str) -> float:
    """The best rate reached at a step whose p99 stayed within the limit (0 when none did)."""
    good = [s[key] for s in steps if s[latency] <= P99_LIMIT_MS and s["acked_per_s"] >= 0.9 * s["offered_per_s"]]
    return max(good, default=0.0)


def run_target(bench: Bench, hub: servers.Watched) -> None:
    args = bench.args
    steps = [args.rate] * (math.ceil(args.soak * 60 / 30) if args.soak else 1)
    # 30 s: long enough for the stalled dashboard to fill the kernel's socket buffers (a few MB on loopback)
    # and then its 64-frame queue, so the step shows it dropped (1013) as well as everyone else's p99.
    duration = 30.0 if args.soak else max(args.duration * 6, 1.0)
    bench.results["target"] = bench.drive(hub, steps, stop_p99_ms=math.inf, technicians=bench.technicians,
                                          registrars=bench.registrars, dashboards=bench.dashboards,
                                          stalled=None if args.no_stall else bench.stalled, duration=duration)
    if not args.quick:
        wait_lost(hub, load_config(bench.config).heartbeat.timeout_seconds)


def wait_lost(server: servers.Watched, timeout: float) -> None:
    """Wait until the hub has marked the target's halls lost, which stopped heartbeating when it ended.

    Otherwise their status changes, one per hall pushed to every dashboard `timeout` seconds later,
    land in the next scenario's first steps: run straight after the target, the fan-out scenario's p99
    at 30 changes/s went from 60 to 95-109 ms.
    """
    time.sleep(timeout + 2)
    wait_quiet(server, 1.0)


def run_commands(bench: Bench, hub: servers.Watched) -> None:
    steps = COMMAND_STEPS[:3:2] if bench.args.quick else COMMAND_STEPS
    bench.results["commands_hub"] = bench.drive(hub, steps, registrars=bench.registrars)
    with servers.baseline("echo") as echo:
        bench.results["commands_echo"] = bench.drive(echo, steps, registrars=bench.registrars)


def run_fanout(bench: Bench, hub: servers.Watched) -> None:
    steps = FANOUT_STEPS[:3:2] if bench.args.quick else FANOUT_STEPS
    drivers = bench.registrars[:10]
    bench.results["fanout_hub"] = bench.drive(hub, steps, registrars=drivers, dashboards=bench.dashboards)
    with servers.baseline("broadcast") as bare:
        bench.results["fanout_bare"] = bench.drive(bare, steps, registrars=drivers, dashboards=bench.dashboards)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    chosen = args.only or ["target", "commands", "fanout", "startup", "cost", "cluster"]
    with tempfile.TemporaryDirectory(prefix="diemcau-bench-") as tmp:
        bench = Bench(args, Path(tmp))
        print(f"diemcau bench: {args.sites:,} sites, {args.registrars:,} registrars, {args.dashboards:,} dashboards, "
              f"{args.duration:g} s per step{' (quick)' if args.quick else ''}", flush=True)
        with servers.hub(bench.config, bench.db, args.profile) as hub:
            for name, scenario in (("target", run_target), ("commands", run_commands), ("fanout", run_fanout)):
                if name in chosen:
                    print(f"  running {name}...", flush=True)
                    scenario(bench, hub)
            bench.results["hub_stalls"] = [line for line in hub.output().splitlines() if "event loop stopped" in line]
        if "startup" in chosen:
            from .startup import measure_startup

            print("  running startup...", flush=True)
            bench.results["startup"] = measure_startup(Path(tmp), args.startup_events)
        if "cost" in chosen:
            from .cost import measure_cost

            print("  running cost...", flush=True)
            bench.results["cost"] = measure_cost(Path(tmp), 5_000 if args.quick else 200_000, BENCH_LIMITS)
        if "cluster" in chosen:
            from .cluster import run_cluster

            print("  running cluster...", flush=True)
            run_cluster(bench, CLUSTER_COMMAND_STEPS[:3:2] if args.quick else CLUSTER_COMMAND_STEPS, Path(tmp) / "cluster")
    from .report import print_report

    print_report(bench.results, args)
