"""`GET /metrics` in Prometheus text format, for the IT centre's monitoring on the day.

Each app has its own registry (tests run many hubs in one process). Gauges and counters are read
from the hub when scraped; the two histograms count every sample as the log records it. Reading
needs a bearer token of role `admin` or `viewer` (give Prometheus a viewer token: it can read, not act).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from hub.core.commands import COMMANDS
from hub.core.errors import ERROR_CODES
from hub.core.hub import Hub
from hub.core.model import QUESTION_STATUSES, SITE_STATUSES
from hub.roles import METRICS_READERS, ROLES
from hub.web.keys import HUB
from hub.web.responses import require

ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
STORED_COMMANDS = tuple(name for name, spec in COMMANDS.items() if spec.stores)  # what `commands` counts


class Buckets:
    """A histogram's counts, kept plainly: prometheus_client's `Histogram` takes a lock per observation,
    and the log observes every event it stores (a few % of the loop at 16,000 commands a second)."""

    def __init__(self, name: str, doc: str, bounds: tuple[float, ...]) -> None:
        self.name, self.doc, self.bounds = name, doc, bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1  # le: a value equal to a bound is in it
        self.sum += value

    def family(self) -> HistogramMetricFamily:
        bounds = [floatToGoString(b) for b in self.bounds] + ["+Inf"]
        return HistogramMetricFamily(self.name, self.doc, buckets=list(zip(bounds, itertools.accumulate(self.counts))),
                                     sum_value=self.sum)


class HubCollector(Collector):
    """Reads the hub's counters and state at scrape time."""

    def __init__(self, hub: Hub, histograms: list[Buckets]) -> None:
        self.hub, self.histograms = hub, histograms

    def collect(self) -> Iterator[Metric]:
        hub = self.hub
        for histogram in self.histograms:
            yield histogram.family()
        yield _labelled(GaugeMetricFamily, "diemcau_connections", "Open websocket connections by role.", "role",
                        _count(conn.who.role if conn.who else "unauthenticated" for conn in hub.connections),
                        [*ROLES, "unauthenticated"])
        yield GaugeMetricFamily("diemcau_subscribers", "Connections receiving pushed changes.", len(hub.fanout.subscribers))
        yield _labelled(CounterMetricFamily, "diemcau_commands", "State-changing commands received, by type.", "type",
                        hub.stats.commands, STORED_COMMANDS)
        yield _labelled(CounterMetricFamily, "diemcau_errors", "Error answers sent, by error code.", "code",
                        hub.stats.errors, ERROR_CODES)
        yield CounterMetricFamily("diemcau_frames_pushed", "Frames queued to subscribers.", hub.fanout.frames_pushed)
        yield CounterMetricFamily("diemcau_slow_clients_dropped", "Clients dropped for not reading.",
                                  hub.stats.slow_dropped)
        yield CounterMetricFamily("diemcau_loop_stalls", "Times the event loop stopped for 0.2 s or more.",
                                  hub.stats.loop_stalls)
        yield GaugeMetricFamily("diemcau_event_log_seq", "Seq of the newest event (the event log's size).",
                                hub.state.seq)
        yield GaugeMetricFamily("diemcau_event_log_durable_seq", "Seq of the newest event on disk.", hub.log.durable_seq)
        yield CounterMetricFamily("diemcau_commit_batches", "Group commits (fsyncs) of the event log.", hub.log.batches)
        yield _labelled(GaugeMetricFamily, "diemcau_sites", "Sites by status.", "status",
                        _count(site.status for site in hub.state.sites.values()), SITE_STATUSES)
        yield _labelled(GaugeMetricFamily, "diemcau_questions", "Questions by status.", "status",
                        _count(q.status for q in hub.state.questions.values()), QUESTION_STATUSES)
        if hub.cluster is not None:
            yield from _cluster(hub.cluster.counts())
        yield GaugeMetricFamily("diemcau_attendance", "People present over every site.", hub.state.present_total)
        yield GaugeMetricFamily("diemcau_attendance_expected", "People expected over every site.",
                                hub.config.expected_total)


CLUSTER_METRICS = {  # name in ClusterNode.counts(): (kind, metric, help)
    "sequencer": (GaugeMetricFamily, "diemcau_cluster_sequencer", "1 while this node is the sequencer, else 0."),
    "forwarded": (CounterMetricFamily, "diemcau_cluster_forwarded_commands",
                  "Commands this node forwarded to the sequencer."),
    "forward_retries": (CounterMetricFamily, "diemcau_cluster_forward_retries",
                        "Forwarded commands sent again (no sequencer answered in time)."),
    "answered": (CounterMetricFamily, "diemcau_cluster_answered_commands",
                 "Commands forwarded by other nodes that this node decided as the sequencer."),
    "takeovers": (CounterMetricFamily, "diemcau_cluster_takeovers", "Times this node took the sequencer's lease."),
    "fold_lag": (GaugeMetricFamily, "diemcau_cluster_fold_lag_events",
                 "Events the sequencer has announced that this node has not folded yet."),
}


def _cluster(counts: dict[str, int]) -> Iterator[Metric]:
    for key, (kind, name, doc) in CLUSTER_METRICS.items():
        yield kind(name, doc, counts[key])


def _count(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values:
        out[value] = out.get(value, 0) + 1
    return out


def _labelled(kind: type[GaugeMetricFamily] | type[CounterMetricFamily], name: str, doc: str, label: str,
              values: dict[str, int], always: Iterable[str]) -> Metric:
    """A labelled gauge or counter listing every known label value from the start, zero included: graphs
    never gap, and a counter's first occurrence is a rise from 0 that `rate()` and `increase()` can see."""
    family = kind(name, doc, labels=[label])
    for key in dict.fromkeys([*always, *values]):
        family.add_metric([key], values.get(key, 0))
    return family


def instrument(hub: Hub) -> CollectorRegistry:
    """A registry for this hub: its collector, with histograms the log feeds as it stores."""
    acks = Buckets("diemcau_ack_seconds", "Time from an event's append to its fsync: what an answer waits for.",
                   ACK_BUCKETS)
    batches = Buckets("diemcau_commit_batch_size", "Events per group commit of the event log.", BATCH_BUCKETS)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(hub, [acks, batches]))
    hub.log.observe(acks.observe, batches.observe)
    return registry


def add_routes(app: web.Application) -> None:
    registry = instrument(app[HUB])

    async def metrics(request: web.Request) -> web.Response:
        await require(request, METRICS_READERS)
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/metrics", metrics)
