"""`diemcau cluster` as an operator runs it: three nats-servers and three hub nodes come up, one of them the
sequencer, a printed link works on every node, a node that dies is reported, and Ctrl-C ends every process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bench.hubproc import DIEMCAU
from hub.cluster.local import LocalCluster
from hub.log.nats_servers import free_ports

from .conftest import KON_TUM
from .old_nats import old_nats_server
from .processes import spawn

pytestmark = pytest.mark.cluster

NODE_LINE = re.compile(r"^\s+(n\d+)\s+(sequencer|follower|\?)\s+(http://\S+)\s+pid (\d+)", re.MULTILINE)
SERVER_LINE = re.compile(r"^\s+nats-server (n\d+)\s+(nats://\S+)\s+pid (\d+)", re.MULTILINE)
CHAIR_LINK = re.compile(r"^\s+chair\s+(http://\S+#token=(\S+))$", re.MULTILINE)


async def read_until(stream: asyncio.StreamReader, marker: str, seconds: float) -> str:
    """The output up to and including the line holding `marker`."""
    out = ""
    async with asyncio.timeout(seconds):
        while marker not in out:
            line = await stream.readline()
            if not line:
                raise AssertionError(f"the output ended before {marker!r}:\n{out}")
            out += line.decode()
    return out


@contextlib.asynccontextmanager
async def diemcau_cluster(folder: Path, *extra: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """`diemcau cluster` for the block. At its end, whatever happened, it is stopped as an operator stops it
    (SIGTERM: it ends its nodes and servers), and killed only if that does not end it in time."""
    async with spawn(*DIEMCAU, "cluster", "--config", str(KON_TUM), "--dir", str(folder), "--nodes", "3", *extra,
                     stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                     env={**os.environ, "PYTHONUNBUFFERED": "1"}) as proc:
        try:
            yield proc
        finally:
            if proc.returncode is None:
                proc.terminate()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), 45)


def gone(pid: int) -> bool:
    """No such process (not even one waiting to be reaped by its parent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_a_local_cluster_serves_on_every_node_and_stops_every_process(tmp_path: Path) -> None:
    async with diemcau_cluster(tmp_path / "rehearsal") as proc:
        assert proc.stdout is not None
        out = await read_until(proc.stdout, "Ctrl-C stops", 120)
        nodes = {name: (url, int(pid)) for name, _, url, pid in NODE_LINE.findall(out)}
        servers = {name: int(pid) for name, _, pid in SERVER_LINE.findall(out)}
        assert sorted(nodes) == ["n1", "n2", "n3"] and len(servers) == 3, out
        chair = CHAIR_LINK.search(out)
        assert chair is not None and chair[1].startswith(nodes["n1"][0] + "/#token="), out
        assert str(tmp_path / "rehearsal" / "n1-links.tsv") in out

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            roles = {}
            for name, (url, _) in nodes.items():
                async with http.get(f"{url}/healthz") as response:
                    health = await response.json()
                assert health["node"] == name and health["event"] == "kontum-2023", health
                roles[name] = health["role"]
            assert sorted(roles.values()) == ["follower", "follower", "sequencer"], roles
            for url, _ in nodes.values():  # a token issued by n1 holds on every node
                async with http.get(f"{url}/api/state", headers={"Authorization": f"Bearer {chair[2]}"}) as response:
                    assert response.status == 200, (url, await response.text())
                    assert len((await response.json())["sites"]) == 11

        follower = next(name for name, role in roles.items() if role == "follower")
        os.kill(nodes[follower][1], signal.SIGKILL)
        out += await read_until(proc.stdout, f"node {follower} (pid {nodes[follower][1]}) exited with -9", 30)

        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 60)
        out += (await proc.stdout.read()).decode()
    assert proc.returncode == 0, out
    assert "diemcau cluster stopped" in out
    still = [pid for pid in [*servers.values(), *(pid for _, pid in nodes.values())] if not gone(pid)]
    assert not still, f"left running: {still}\n{out}"
    # The servers take clients and routes only with the rehearsal's token, which no output or log holds.
    folder = tmp_path / "rehearsal"
    secret = (folder / "nats.token").read_text(encoding="utf-8").strip()
    assert (folder / "nats.token").stat().st_mode & 0o077 == 0
    assert f"--nats-token-file {folder / 'nats.token'}" in out, out  # the doctor line says how to give it
    logs = [*folder.glob("n*.log"), *folder.glob("nats/*/server.log")]
    assert len(logs) == 6 and not [log for log in logs if secret in log.read_text(errors="replace")]
    assert secret not in out


async def fold_seq(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(f"{url}/healthz") as response:
        return (await response.json())["fold_seq"]


async def test_the_simulated_day_carries_on_when_the_sequencer_is_killed(tmp_path: Path) -> None:
    async with diemcau_cluster(tmp_path / "rehearsal", "--simulate", "--speed", "40") as proc:
        assert proc.stdout is not None
        out = await read_until(proc.stdout, "Ctrl-C stops", 120)
        nodes = {name: (url, int(pid)) for name, role, url, pid in NODE_LINE.findall(out)}
        sequencer = next(name for name, role, _, _ in NODE_LINE.findall(out) if role == "sequencer")
        others = [url for name, (url, _) in nodes.items() if name != sequencer]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            async with asyncio.timeout(60):  # the halls check in
                while await fold_seq(http, others[0]) < 20:
                    await asyncio.sleep(0.5)
            os.kill(nodes[sequencer][1], signal.SIGKILL)
            before = await fold_seq(http, others[0])
            async with asyncio.timeout(60):  # and go on, through another sequencer
                while await fold_seq(http, others[0]) < before + 20:
                    await asyncio.sleep(0.5)
            assert await fold_seq(http, others[1]) >= before  # the other survivor folds the same log
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 60)
    assert proc.returncode == 0
    log = (tmp_path / "rehearsal" / "simulator.log").read_text(encoding="utf-8")
    assert "simulating 11 halls" in log, log


async def test_a_node_on_a_nats_server_older_than_2_10_refuses_to_start_and_says_why(tmp_path: Path) -> None:
    """What an operator sees who points a node at an old server (the machine's own 2.9, say): one line naming the
    server and its version, exit 1, and no "serving" line before it."""
    async with (old_nats_server("2.9.10") as url,
                spawn(*DIEMCAU, "serve", "--config", str(KON_TUM), "--db", str(tmp_path / "n1.db"), "--nats", url,
                      "--node", "n1", "--port", str(free_ports(1)[0]), stdout=asyncio.subprocess.PIPE,
                      stderr=asyncio.subprocess.PIPE) as proc):
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1, (out, err)
    assert f"the NATS server at {url.removeprefix('nats://')} is nats-server 2.9.10; diemcau needs 2.10 or newer" \
        in err.decode(), err
    assert b"serving" not in out and b"Traceback" not in err, (out, err)


async def test_a_second_node_of_the_same_name_refuses_to_join_and_the_first_carries_on(tmp_path: Path) -> None:
    """A unit file copied without its --node changed: the second n1 would take the first's shared heartbeats
    for its own. It names the first and exits 1; the first stays the sequencer, alone under its name."""
    with LocalCluster(tmp_path / "c", KON_TUM, nodes=1) as cluster:
        first = cluster.hubs["n1"]
        assert cluster.wait_sequencer(30) == "n1"
        async with spawn(*DIEMCAU, "serve", "--config", str(KON_TUM), "--db", str(tmp_path / "copy.db"),
                         "--nats", ",".join(cluster.nats.urls), "--nats-token-file", str(cluster.token_file),
                         "--node", "n1", "--port", str(free_ports(1)[0]), stdout=asyncio.subprocess.PIPE,
                         stderr=asyncio.subprocess.PIPE) as proc:
            out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 1, (out, err)
        assert f"another node of this cluster is called n1 (at {first.url}); give each node its own --node name" \
            in err.decode(), err
        assert b"serving" not in out and b"Traceback" not in err, (out, err)
        health = first.health()
        assert health is not None and health["role"] == "sequencer" and health["nodes"] == {}, health
        assert "also called n1" not in first.tail(100_000)
