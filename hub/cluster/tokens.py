"""Tokens on the engine: one replicated JetStream key-value bucket per event, so a token made on any node (or by
`diemcau token --nats`) works on every node, and a revocation reaches every node within seconds.

Key = token id, value = the row's JSON (`hub.tokens.ROW_FIELDS` but the id). Rows are revoked, never deleted.
Each node copies the bucket into its local `TokenStore` (`mirror`), where the hub verifies tokens and finds
revocations exactly as in single-node mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy, KeyValueConfig, StorageType
from nats.js.errors import (
    APIError,
    BucketNotFoundError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
)
from nats.js.kv import KV_OP, KeyValue

from hub.cluster.connect import transient, until_answered
from hub.log.base import StoreError
from hub.tokens import ROW_FIELDS, IssuedToken, Spec, TokenStore, new_token, new_tokens

REPLICAS = 3
ISSUED_MARKER = "_issued"  # the key `first_issue` creates: not a token id (those are hex)
TOKEN_ID = re.compile(r"[0-9a-f]+")
WRITES_IN_FLIGHT = 64  # issuing thousands of tokens: acknowledgements awaited together, not one by one
BATCH_ROWS = 1000  # the most rows one local transaction takes while copying
HEARTBEAT = 0.5  # the copy's ordered consumer: two missed and nats-py recreates it where it stopped
RETRY_SECONDS = 0.5  # between attempts to follow the bucket again

log = logging.getLogger("diemcau.cluster.tokens")

Rows = list[tuple[str, dict]]  # (token id, row without its id), in the bucket's order


def bucket_name(event_id: str) -> str:
    return f"diemcau-{event_id}-tokens"


def _encode(row: dict) -> bytes:
    return orjson.dumps({name: row[name] for name in ROW_FIELDS if name != "id"})


class ClusterTokens:
    """The event's tokens in the bucket `diemcau-<event id>-tokens` (3 replicas, file storage, one revision kept),
    on a connected client. `await open()` first."""

    def __init__(self, nc: Client, event_id: str, replicas: int = REPLICAS) -> None:
        self.bucket = bucket_name(event_id)
        self.replicas = replicas
        self._nc, self._js = nc, nc.jetstream()
        self._kv: KeyValue | None = None
        self._mirrored = asyncio.Event()

    @property
    def kv(self) -> KeyValue:
        assert self._kv is not None, "await ClusterTokens.open() first"
        return self._kv

    async def open(self, create: bool = True) -> None:
        """Bind the bucket; create it if it is missing and `create` (every server must be up for three replicas),
        else StoreError saying the cluster has not started."""
        await until_answered(f"the token bucket {self.bucket}", lambda: self._bind(create))

    async def _bind(self, create: bool) -> None:
        try:
            self._kv = await self._js.key_value(self.bucket)
        except BucketNotFoundError:
            if not create:
                raise StoreError(f"the cluster has no token bucket {self.bucket} yet: start the cluster first "
                                 "(diemcau serve --nats …), or make a token, which creates it") from None
            try:
                self._kv = await self._js.create_key_value(KeyValueConfig(
                    bucket=self.bucket, history=1, replicas=self.replicas, storage=StorageType.FILE,
                    description="diemcau access tokens (hashed)"))
            except APIError as exc:
                if transient(exc):
                    raise  # asked again by until_answered
                raise StoreError(f"cannot create the token bucket {self.bucket} with {self.replicas} replicas "
                                 f"({exc.description}); every NATS server of the cluster must be up") from None
        replicas = (await self._kv.status()).stream_info.config.num_replicas
        if replicas != self.replicas:
            raise StoreError(f"the token bucket {self.bucket} has {replicas} replicas, not {self.replicas}")

    # -- writing ----------------------------------------------------------------------------------

    async def issue(self, role: str, site: str | None = None, agency: str | None = None,
                    label: str | None = None) -> IssuedToken:
        return (await self.issue_many([(role, site, agency, label)]))[0]

    async def issue_many(self, specs: list[Spec]) -> list[IssuedToken]:
        """Create tokens, every spec checked first (ValueError, nothing stored); StoreError if the engine does not
        take them all (those it took are valid, but their secrets were never shown to anyone)."""
        made = new_tokens(specs)
        slots = asyncio.Semaphore(WRITES_IN_FLIGHT)

        async def store(spec: Spec, row: dict, issued: IssuedToken) -> IssuedToken:
            async with slots:
                while True:
                    try:
                        await self._create(row["id"], _encode(row))
                        return issued
                    except KeyWrongLastSequenceError:  # its id is taken: another token, from scratch
                        row, issued = new_token(spec, row["created"])

        results = await asyncio.gather(*(store(spec, row, issued) for spec, (row, issued) in zip(specs, made)),
                                       return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise StoreError(f"{len(failed)} of {len(specs)} tokens not stored on the cluster ({failed[0]!r})")
        return [r for r in results if isinstance(r, IssuedToken)]

    async def revoke(self, token_id: str) -> bool:
        """Revoke an active token; False if there is none of that id (or it was revoked already, even just now
        by someone else: each write names the revision it read)."""
        if not TOKEN_ID.fullmatch(token_id):
            return False
        while True:
            try:
                entry = await self.kv.get(token_id)
            except KeyNotFoundError:
                return False
            row = orjson.loads(entry.value or b"{}")
            if row.get("revoked") is not None:
                return False
            row["revoked"] = time.time()
            try:
                await self.kv.update(token_id, _encode(row), last=entry.revision)
                return True
            except KeyWrongLastSequenceError:  # written since we read it: read again
                continue

    async def first_issue(self) -> bool:
        """True for exactly one caller over the cluster's life: the node that hands out the event's first links."""
        try:
            await self._create(ISSUED_MARKER, orjson.dumps({"at": time.time()}))
            return True
        except KeyWrongLastSequenceError:
            return False

    async def _create(self, key: str, value: bytes) -> None:
        """Write a key that must not exist yet (KeyWrongLastSequenceError if it does). Not nats-py's `kv.create`,
        which on that error reads the key back and, when the read does not find it yet, raises KeyNotFoundError."""
        await self.kv.update(key, value, last=0)

    # -- reading ----------------------------------------------------------------------------------

    async def list(self) -> list[dict]:
        """As `TokenStore.list`: ids, roles, bindings, created and revoked times; never hashes."""
        rows = await self._current()
        listed = [{"id": token_id, **{name: row[name] for name in ROW_FIELDS if name not in ("id", "hash")}}
                  for token_id, row in rows.items()]
        return sorted(listed, key=lambda row: (row["created"], row["id"]))

    async def _current(self) -> dict[str, dict]:
        """Every token row the bucket holds now, by id."""
        rows: dict[str, dict] = {}
        async with contextlib.aclosing(self._changes()) as changes:
            async for batch, at_end in changes:
                rows.update(batch)
                if at_end:
                    return rows
        return rows

    async def mirror(self, store: TokenStore, on_revoked: Callable[[str], None] | None = None) -> None:
        """Copy every row into the node's `store`, then each change as it comes, for ever: run it as a task.
        Survives a lost server or connection (it follows again from the last revision copied). `on_revoked` is
        called with the id of each row that arrives revoked (the initial copy's included), so the hub can close
        that token's connections at once; `wait_mirrored` returns once the initial copy is in `store`."""
        async with contextlib.aclosing(self._changes()) as changes:
            async for batch, at_end in changes:
                if batch:
                    await asyncio.to_thread(store.upsert, [{"id": token_id, **row} for token_id, row in batch])
                for token_id, row in batch:
                    if row["revoked"] is not None and on_revoked is not None:
                        on_revoked(token_id)
                if at_end:
                    self._mirrored.set()

    async def wait_mirrored(self) -> None:
        """Return once `mirror` has copied every row the bucket held when it started."""
        await self._mirrored.wait()

    async def _changes(self, after: int = 0) -> AsyncIterator[tuple[Rows, bool]]:
        """Token rows written after revision `after`, in order and in batches, for ever; each batch says whether it
        reached the bucket's end (an empty one says so when there is nothing to read). Whenever following stops
        (a lost server, a consumer that cannot be recreated), it follows again from the last batch given; it ends
        (StoreError) only when the client is closed."""
        stream, prefix = f"KV_{self.bucket}", f"$KV.{self.bucket}."
        while not self._nc.is_closed:
            try:
                sub = await self._js.subscribe(
                    prefix + ">", stream=stream, ordered_consumer=True, idle_heartbeat=HEARTBEAT,
                    deliver_policy=DeliverPolicy.BY_START_SEQUENCE, config=ConsumerConfig(opt_start_seq=after + 1))
            except Exception as exc:
                log.info("%s: cannot follow the bucket yet (%r); retrying", self.bucket, exc)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            try:
                if (await self._js.stream_info(stream)).state.last_seq <= after:
                    yield [], True
                batch: Rows = []
                while True:
                    msg = await sub.next_msg(timeout=None)
                    token_id = msg.subject[len(prefix):]
                    row = _decode(token_id, msg.data) if _is_row(token_id, msg) else None
                    if row is not None:
                        batch.append((token_id, row))
                    pending = msg.metadata.num_pending
                    if pending == 0 or len(batch) >= BATCH_ROWS:
                        yield batch, pending == 0
                        batch, after = [], msg.metadata.sequence.stream
            except Exception as exc:
                log.warning("%s: following the bucket stopped (%r); resuming after revision %d", self.bucket, exc,
                            after)
            finally:
                with contextlib.suppress(Exception):  # the connection may be gone with the consumer
                    await sub.unsubscribe()
            await asyncio.sleep(RETRY_SECONDS)
        raise StoreError(f"{self.bucket}: the NATS client is closed")


def _is_row(token_id: str, msg: Msg) -> bool:
    """A token's value: not the `first_issue` marker, not a delete (rows are revoked, never deleted)."""
    return TOKEN_ID.fullmatch(token_id) is not None and not (msg.headers or {}).get(KV_OP)


def _decode(token_id: str, data: bytes) -> dict[str, Any] | None:
    """A row from the bucket; None (and a warning) for a value no diemcau wrote, which is then never copied."""
    try:
        row = orjson.loads(data)
        if isinstance(row, dict) and all(isinstance(row.get(name), str) for name in ("hash", "role")):
            return {name: row.get(name) for name in ROW_FIELDS if name != "id"}
    except orjson.JSONDecodeError:
        pass
    log.warning("token bucket: the value of %s is not a token row; skipped", token_id)
    return None
