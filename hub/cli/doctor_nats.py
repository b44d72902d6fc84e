"""`diemcau doctor --nats`: the cluster's checks (its NATS servers, the log stream, the lease, the nodes).

Each server is asked on its own, so one that is down, old or without JetStream is named; the rest is
asked through any server that answers. Imported only when `--nats` is given: nats-py comes with the
`cluster` extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.parse
from typing import Any

import nats
import orjson
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import PeerInfo, StreamInfo
from nats.js.errors import NotFoundError

from hub.cli.doctor import Finding
from hub.cluster.connect import connect
from hub.cluster.lease import lease_stream, lease_subject
from hub.cluster.node import nodes_subject
from hub.log.base import StoreError
from hub.log.jetstream import REPLICAS, stream_name
from hub.log.nats_servers import MIN_VERSION

SERVER_SECONDS = 3.0  # each server: connecting and reading its INFO
ASK_SECONDS = 3.0  # each question to JetStream
LISTEN_SECONDS = 2.5  # node announcements come every second
LEASE_WARN_SECONDS = 3.0  # the sequencer renews every 0.5 s; a contender takes over after about 2 s
SILENT_REPLICA_SECONDS = 5.0  # a replica not heard from this long is down, not just behind
DEFAULT_PORT = 4222
STREAM_NOT_FOUND = 10059  # JetStream's error code for a missing stream (10037: a stream without that message)


def version_text(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


async def server_info(url: str) -> dict[str, Any]:
    """The INFO line a NATS server sends every client as it connects (its version, name, JetStream)."""
    parts = urllib.parse.urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or DEFAULT_PORT)
    try:
        line = await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    if not line.startswith(b"INFO "):
        raise ValueError(f"not a NATS server (it said {line[:60]!r})")
    info = orjson.loads(line[5:])
    if not isinstance(info, dict):
        raise ValueError("not a NATS server (its INFO is not an object)")
    return info


async def check_server(url: str) -> Finding:
    """One server answers, is 2.10 or newer (`sync_interval`), and runs JetStream."""
    try:
        info = await asyncio.wait_for(server_info(url), SERVER_SECONDS)
    except (OSError, TimeoutError, ValueError) as exc:
        why = "nothing answered" if isinstance(exc, (OSError, TimeoutError)) else str(exc)
        return Finding("fail", "nats", f"{url}: {why} within {SERVER_SECONDS:g} s; is nats-server running there?")
    version = tuple(int(part) for part in str(info.get("version", "0.0.0")).split("-")[0].split(".")[:3]
                    if part.isdigit())
    name = info.get("server_name") or info.get("server_id", "?")
    found = f"{url}: nats-server {info.get('version', '?')} ({name})"
    if version[:2] < MIN_VERSION:
        return Finding("fail", "nats", f"{found}; diemcau needs {version_text(MIN_VERSION)} or newer "
                                       "(install the official release: docs/cluster.md)")
    if not info.get("jetstream"):
        return Finding("fail", "nats", f"{found}, JetStream off: its config needs a jetstream {{ … }} block")
    return Finding("ok", "nats", f"{found}, JetStream on")


def replica_finding(peer: PeerInfo) -> Finding:
    heard = (peer.active or 0) / 1e9
    if peer.current:
        return Finding("ok", "log", f"replica {peer.name}: current")
    if peer.offline or heard > SILENT_REPLICA_SECONDS:
        return Finding("fail", "log", f"replica {peer.name}: not heard from for {heard:.0f} s ({peer.lag or 0} "
                                      "messages behind); is its server down?")
    return Finding("warn", "log", f"replica {peer.name}: lagging, {peer.lag or 0} messages behind "
                                  f"(heard {heard:.1f} s ago)")


def log_stream_findings(info: StreamInfo) -> list[Finding]:
    """The log stream has its replicas, a leader, and each follower is current."""
    name, replicas = info.config.name, info.config.num_replicas
    cluster = info.cluster
    leader = cluster.leader if cluster is not None else None
    out = []
    if replicas != REPLICAS:
        out.append(Finding("fail", "log", f"stream {name} has {replicas} replicas, not {REPLICAS}: a lost server "
                                          "would lose it or stop it"))
    if leader is None:
        out.append(Finding("fail", "log", f"stream {name} has no leader now (one is elected within seconds; "
                                          "if this stays, fewer than 2 of its servers are up)"))
    else:
        out.append(Finding("ok", "log", f"stream {name}: {replicas} replicas, {info.state.last_seq:,} events, "
                                        f"leader {leader}"))
    out += [replica_finding(peer) for peer in (cluster.replicas or []) if cluster is not None]
    return out


async def check_lease(js: JetStreamContext, event_id: str) -> Finding:
    """The last lease message names the sequencer; it renews every 0.5 s."""
    stream = lease_stream(event_id)
    try:
        msg = await js.get_last_msg(stream, lease_subject(event_id))
    except NotFoundError as exc:
        missing = "does not exist" if exc.err_code == STREAM_NOT_FOUND else "is empty"
        return Finding("fail", "lease", f"stream {stream} {missing}: no node has been the sequencer yet")
    lease = orjson.loads(msg.data or b"{}")
    ago = max(0.0, time.time() - float(lease.get("ts", 0)))
    if not lease.get("node"):  # a sequencer that stopped cleanly hands it back; a contender takes it at once
        return Finding("fail" if ago > LEASE_WARN_SECONDS else "warn", "lease",
                       f"released by its last holder {ago:.1f} s ago (a clean stop) and not taken since: "
                       "is any node up to take it?")
    holder = (f"{lease.get('node')} ({lease.get('url')}) holds the lease, term {lease.get('term')}, "
              f"renewed {ago:.1f} s ago")
    if ago > LEASE_WARN_SECONDS:
        return Finding("warn", "lease", f"{holder}: not renewed for over {LEASE_WARN_SECONDS:g} s; "
                                        "is any node up to take it over?")
    return Finding("ok", "lease", holder)


async def hear_nodes(nc: NATS, event_id: str, seconds: float = LISTEN_SECONDS) -> dict[str, dict[str, Any]]:
    """The nodes' announcements heard for `seconds`: the latest from each node, by name, with every URL heard
    under that name in "urls" (more than one: two nodes share a name)."""
    heard: dict[str, dict[str, Any]] = {}

    async def take(msg: Any) -> None:
        with contextlib.suppress(ValueError, AttributeError, KeyError):
            body = orjson.loads(msg.data)
            name = str(body["node"])
            urls = heard.get(name, {}).get("urls", [])
            heard[name] = {**body, "urls": sorted({*urls, str(body.get("url"))})}

    sub = await nc.subscribe(nodes_subject(event_id), cb=take)
    try:
        await asyncio.sleep(seconds)
    finally:
        await sub.unsubscribe()
    return heard


def node_findings(heard: dict[str, dict[str, Any]]) -> list[Finding]:
    """One line per node heard; a failure without a sequencer, a warning with fewer nodes than servers."""
    out = [Finding("ok", "nodes", f"{name}: {node.get('role')}, seq {node.get('seq')}, {node.get('url')}")
           for name, node in sorted(heard.items())]
    sequencers = sorted(name for name, node in heard.items() if node.get("role") == "sequencer")
    within = f"within {LISTEN_SECONDS:g} s"
    if not heard:
        return [Finding("fail", "nodes", f"no node announced itself {within}: no diemcau node is running")]
    if not sequencers:
        out.append(Finding("fail", "nodes", f"no node says it is the sequencer ({within}): nothing can decide "
                                            "commands"))
    elif len(sequencers) > 1:
        out.append(Finding("warn", "nodes", f"{', '.join(sequencers)} each say they are the sequencer: "
                                            "a takeover under way? run doctor again"))
    out += [Finding("fail", "nodes", f"{len(node['urls'])} nodes are called {name} ({', '.join(node['urls'])}): each "
                                     f"takes the other's heartbeats for its own; give each its own --node name")
            for name, node in sorted(heard.items()) if len(node.get("urls", [])) > 1]
    if len(heard) < REPLICAS:
        out.append(Finding("warn", "nodes", f"{len(heard)} node{'s' if len(heard) != 1 else ''} heard, fewer than "
                                            f"{REPLICAS}: losing one more machine leaves fewer to fail over to"))
    return out


async def check_streams(nc: NATS, event_id: str) -> list[Finding]:
    """Through any server: the log stream, then (if a node has started) the lease and the nodes."""
    js = nc.jetstream(timeout=ASK_SECONDS)
    listening = asyncio.create_task(hear_nodes(nc, event_id))
    try:
        info = await js.stream_info(stream_name(event_id))
    except NotFoundError:
        listening.cancel()
        return [Finding("warn", "log", f"stream {stream_name(event_id)} does not exist: no node has started on "
                                       "this cluster yet (the first node creates it, with every server up)")]
    except (nats.errors.Error, asyncio.TimeoutError) as exc:
        listening.cancel()
        return [Finding("fail", "log", f"JetStream does not answer about {stream_name(event_id)} "
                                       f"({type(exc).__name__}); are 2 of the 3 servers up?")]
    out = log_stream_findings(info)
    try:
        out.append(await check_lease(js, event_id))
    except (nats.errors.Error, asyncio.TimeoutError) as exc:
        out.append(Finding("fail", "lease", f"JetStream does not answer about {lease_stream(event_id)} "
                                            f"({type(exc).__name__})"))
    return out + node_findings(await listening)


async def _quiet(exc: Exception) -> None:
    """nats-py's error callback: doctor reports what it finds; the client's own retries are noise."""


async def check_nats(urls: list[str], event_id: str, token: str | None = None) -> list[Finding]:
    """Every server on its own, then the cluster's streams and nodes through those that answered (giving
    `token` if they require one)."""
    servers = await asyncio.gather(*(check_server(url) for url in urls))
    usable = [url for url, finding in zip(urls, servers, strict=True) if finding.level == "ok"]
    if not usable:
        return [*servers, Finding("fail", "nats", "no usable NATS server: nothing more can be checked until one "
                                                  "of the above answers with JetStream on")]
    try:
        nc = await connect(usable, "diemcau doctor", SERVER_SECONDS * 2, token=token, error_cb=_quiet)
    except StoreError as exc:
        return [*servers, Finding("fail", "nats", str(exc))]
    try:
        return [*servers, *await check_streams(nc, event_id)]
    finally:
        await nc.close()
