"""The event log in SQLite (the embedded default; see hub.log.base for the interface): group-committed appends, reads from a seq, following the tail.

One writer thread owns the write connection. `append` adds an event to the open batch and returns
the batch's future, which resolves once the batch is committed with `synchronous=FULL` (fsynced): a
burst of commands from many connections shares one fsync, one future and one hand-over to the writer.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import sqlite_utils
from rbloom import Bloom

from hub.log.base import Event, Refused, StoreError

SCHEMA_VERSION = 3
COMMIT_INTERVAL = 0.005  # seconds from one commit's start to the next one's at the soonest: see _write_loop
OP_FILTER_ITEMS = 1_000_000  # sized for at least this many op_ids (or twice the log) at start; beyond, more lookups
OP_FILTER_ERROR_RATE = 0.01


def _migrate_v1(db: sqlite_utils.Database) -> None:
    db["events"].create(
        {"seq": int, "ts": float, "type": str, "actor": str, "site": str, "op_id": str, "data": str},
        pk="seq",
        not_null={"ts", "type", "data"},
    )
    db.execute("CREATE UNIQUE INDEX events_op_id ON events(op_id) WHERE op_id IS NOT NULL")
    db["tokens"].create(
        {"id": str, "hash": str, "role": str, "site": str, "agency": str, "label": str,
         "created": float, "revoked": float},
        pk="id",
        not_null={"hash", "role", "created"},
    )
    db["meta"].create({"key": str, "value": str}, pk="key")


def _migrate_v2(db: sqlite_utils.Database) -> None:
    db["snapshots"].create({"seq": int, "ts": float, "data": bytes}, pk="seq", not_null={"ts", "data"})


def _migrate_v3(db: sqlite_utils.Database) -> None:
    db.execute("ALTER TABLE events ADD COLUMN result TEXT")  # a command's answer, for retries of old op_ids


MIGRATIONS = {1: _migrate_v1, 2: _migrate_v2, 3: _migrate_v3}


def connect(path: str | Path) -> sqlite3.Connection:
    """A connection with the settings every user of the file needs (WAL, full fsync, busy wait)."""
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def open_database(path: str | Path, event_id: str | None = None) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the database; refuse damaged files and other events' logs."""
    path = Path(path)
    existed = path.exists() and path.stat().st_size > 0
    if path.exists() and not existed:
        # SQLite would take an empty file (or one beside a leftover -wal) for a new database: a silent reset.
        raise StoreError(f"{path}: the database file is empty (0 bytes), perhaps truncated; restore it from "
                         "a backup, or delete it (and its -wal file) to start a new event")
    try:
        conn = connect(path)
        if existed:
            row = conn.execute("PRAGMA quick_check").fetchone()
            if row[0] != "ok":
                detail = " ".join(row[0].replace("*** in database main ***", "").split())[:300]
                raise StoreError(f"{path}: database is damaged ({detail}); restore it from a backup")
        db = sqlite_utils.Database(conn)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{path}: made by a newer diemcau (schema {version} > {SCHEMA_VERSION})")
        for number in range(version + 1, SCHEMA_VERSION + 1):
            with conn:
                conn.execute("BEGIN")
                MIGRATIONS[number](db)
                conn.execute(f"PRAGMA user_version={number}")
        if event_id is not None:
            _bind_event(conn, path, event_id)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: not a usable diemcau database ({exc}); restore it from a backup") from None
    return conn


def _bind_event(conn: sqlite3.Connection, path: Path, event_id: str) -> None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'event_id'").fetchone()
    if row is None:
        conn.execute("INSERT INTO meta(key, value) VALUES ('event_id', ?)", (event_id,))
    elif row[0] != event_id:
        raise StoreError(f"{path}: holds event {row[0]!r}, not {event_id!r}; use another --db")


def _row_event(row: tuple) -> Event:
    seq, ts, type_, actor, site, op_id, data = row
    return Event(seq=seq, ts=ts, type=type_, actor=actor, site=site, op_id=op_id, data=orjson.loads(data))


_SELECT = "SELECT seq, ts, type, actor, site, op_id, data FROM events"


# An event waiting for the disk: (event, its answer if it carries an op_id, perf_counter when appended).
Pending = tuple[Event, dict[str, Any] | None, float]


REFUSED = Refused("not written: an earlier write failed, and the state these changes were decided on was lost with it")


def _fail(write: asyncio.Future[None] | None, error: BaseException) -> None:
    if write is not None and not write.done():
        write.set_exception(StoreError(f"write failed: {error}"))
        write.exception()  # told once, by the `on_written` callbacks, not per unread (or cancelled) future


@dataclass(eq=False)
class SQLiteLog:
    """The log in one SQLite file (hub.log.base.EventLog): `append` (the idempotency key `op_id` unique in
    the table), `read` from a seq, `follow` the tail; one writer thread group-commits."""

    path: Path
    event_id: str | None = None
    fsync: bool = True  # False for a copy of a log kept elsewhere (a cluster node's): committed, not fsynced
    batches: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    durable_seconds: list[float] = field(default_factory=list)  # per event, from `append` to fsynced
    durable_seq: int = 0
    _open: list[Pending] = field(default_factory=list)  # appended, not yet taken by the writer
    _open_write: asyncio.Future[None] | None = None  # the open batch's future
    _lock: threading.Lock = field(default_factory=threading.Lock)  # guards _open and _open_write
    _wake: queue.SimpleQueue[bool] = field(default_factory=queue.SimpleQueue)  # True: a batch opened; False: stop
    _refusing: bool = False  # a commit failed: batches folded on top of it are refused until the loop has seen it
    _thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _ops_reader: sqlite3.Connection | None = None
    _op_ids: Bloom | None = None  # every stored op_id, approximately: see find_op
    _written: list[Callable[[BaseException | None], None]] = field(default_factory=list)
    _observers: list[tuple[Callable[[float], None], Callable[[int], None]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self._reader = open_database(self.path, self.event_id)
        self.durable_seq = self.last_seq()

    def last_seq(self) -> int:
        return self._reader.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]

    def count(self) -> int:
        return self._reader.execute("SELECT count(*) FROM events").fetchone()[0]

    def read(self, since: int = 0, until: int | None = None) -> Iterator[Event]:
        """Events with seq > since (and <= until), in order; a separate cursor, safe beside the writer."""
        sql, args = f"{_SELECT} WHERE seq > ?", [since]
        if until is not None:
            sql += " AND seq <= ?"
            args.append(until)
        for row in self._reader.execute(sql + " ORDER BY seq", args):
            yield _row_event(row)

    async def follow(self, since: int = 0, poll_seconds: float = 0.5) -> AsyncIterator[Event]:
        """Every event after `since`, then each new one as it is committed, by this or another process."""
        while True:
            reading = asyncio.ensure_future(asyncio.to_thread(list, self.read(since)))
            try:
                batch = await asyncio.shield(reading)
            except asyncio.CancelledError:  # the thread still reads on the connection: closing it now crashed
                await asyncio.gather(reading, return_exceptions=True)  # the process (SIGSEGV), so let it finish
                raise
            for event in batch:
                since = event.seq
                yield event
            if not batch:
                await asyncio.sleep(poll_seconds)

    async def open(self) -> None:
        """Nothing to connect to: the file was opened with the log."""

    def on_arrival(self, callback: Callable[[list[Event]], None]) -> None:
        """The hub is this log's only writer: nothing arrives from elsewhere."""

    def start(self) -> None:
        """Start the writer thread; appends are accepted from the running loop only after this."""
        self._loop = asyncio.get_running_loop()
        stored = self._reader.execute("SELECT op_id FROM events WHERE op_id IS NOT NULL")
        self._op_ids = Bloom(max(OP_FILTER_ITEMS, 2 * self.last_seq()), OP_FILTER_ERROR_RATE)
        self._op_ids.update(op_id for (op_id,) in stored)
        self._thread = threading.Thread(target=self._write_loop, name="event-log-writer", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Commit what is queued, then stop the writer."""
        if self._thread is not None:
            self._wake.put(False)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        self._close_readers()

    def close(self) -> None:
        """Close a log opened only to read it (the report), which never started a writer."""
        assert self._thread is None, "a started log is closed with stop()"
        self._close_readers()

    def _close_readers(self) -> None:
        self._reader.close()
        if self._ops_reader is not None:
            self._ops_reader.close()

    def on_written(self, callback: Callable[[BaseException | None], None]) -> None:
        """Call `callback` on the loop after each group commit: None once it is durable, else the write error
        (`REFUSED` for a batch not written because an earlier commit failed)."""
        self._written.append(callback)

    def observe(self, durable: Callable[[float], None], batch_size: Callable[[int], None]) -> None:
        """Be told each stored event's seconds from `append` to fsynced, and each group commit's size (metrics)."""
        self._observers.append((durable, batch_size))

    def append(self, event: Event, result: dict[str, Any] | None = None) -> asyncio.Future[None]:
        """Add one event (with the answer its command got, kept for retries of its op_id) to the open batch.

        Returns the batch's future: it resolves when the batch is fsynced, or fails with the write error.
        """
        assert self._loop is not None, "SQLiteLog.start() first"
        pending = (event, result if event.op_id is not None else None, time.perf_counter())
        with self._lock:
            self._open.append(pending)
            write = self._open_write
            if write is None:
                write = self._open_write = self._loop.create_future()
                self._wake.put(True)
        if event.op_id is not None and self._op_ids is not None:
            self._op_ids.add(event.op_id)
        return write

    def find_op(self, op_id: str) -> dict[str, Any] | None:
        """The stored answer of the command that carried `op_id`, or None if no such command was stored.

        Asked for every op_id the state no longer holds in memory, so for nearly every new command: the
        Bloom filter of stored op_ids (filled in `start`, about 1.2 MB a million) answers "never stored"
        without the indexed lookup, which had been an eighth of the loop's time at 4,000 commands/s. The
        hub is the log's only writer, so every op_id stored since `start` went through `append`.
        """
        if self._op_ids is not None and op_id not in self._op_ids:
            return None
        if self._ops_reader is None:
            self._ops_reader = connect(self.path)  # the loop's own connection: readers never share one across threads
        row = self._ops_reader.execute("SELECT seq, result FROM events WHERE op_id = ?", (op_id,)).fetchone()
        if row is None:
            return None
        return orjson.loads(row[1]) if row[1] else {"seq": row[0]}

    def _write_loop(self) -> None:
        """Commit the open batch whole each time; a commit starts at most every COMMIT_INTERVAL seconds.

        An fsync costs the hub's core 0.4-0.8 ms on the bench machine (the flush is system time). Committing
        whenever anything waited, the fsyncs took more of the core than the commands did at a few thousand
        a second; spaced out, a burst shares one, and an answer waits at most COMMIT_INTERVAL longer.
        """
        conn = connect(self.path)
        if not self.fsync:  # WAL with synchronous=NORMAL: a crash keeps the file whole, perhaps less its last commits
            conn.execute("PRAGMA synchronous=NORMAL")
        started = 0.0
        while self._wake.get():
            wait = started + COMMIT_INTERVAL - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            started = time.monotonic()
            self._commit_open(conn)
        self._commit_open(conn)  # stopping: what was appended before stop()
        conn.close()

    def _commit_open(self, conn: sqlite3.Connection) -> None:
        """Commit the open batch, or refuse it when an earlier commit failed and the loop has not yet
        rebuilt its state: its events were folded on top of the lost ones, so storing them would keep
        changes decided on a state the log never held."""
        with self._lock:
            batch, write = self._open, self._open_write
            self._open, self._open_write = [], None
            refused = self._refusing
        if write is None:
            return
        error = REFUSED if refused else self._commit(conn, batch)
        if error is not None and not refused:
            with self._lock:  # set before the loop hears of the failure, and cleared only by it
                self._refusing = True
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._settle, batch, write, error)

    @staticmethod
    def _commit(conn: sqlite3.Connection, batch: list[Pending]) -> BaseException | None:
        rows = [
            (event.seq, event.ts, event.type, event.actor, event.site, event.op_id, orjson.dumps(event.data).decode(),
             None if result is None else orjson.dumps(result).decode())
            for event, result, _ in batch
        ]
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO events(seq, ts, type, actor, site, op_id, data, result) VALUES (?,?,?,?,?,?,?,?)", rows)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return exc
        return None

    def _settle(self, batch: list[Pending], write: asyncio.Future[None], error: BaseException | None) -> None:
        """On the loop after a commit: resolve the batch's future, count it, tell the `on_written` callbacks."""
        if error is not REFUSED:
            self.batches += 1
            self.batch_sizes.append(len(batch))
            if len(self.batch_sizes) > 1000:
                del self.batch_sizes[:500]
            for _, batch_size in self._observers:
                batch_size(len(batch))
        if error is None:
            now = time.perf_counter()
            seconds = [now - appended for _, _, appended in batch]
            self.durable_seconds.extend(seconds)
            if len(self.durable_seconds) > 10000:
                del self.durable_seconds[:-5000]
            for durable, _ in self._observers:
                for value in seconds:
                    durable(value)
            if not write.done():  # read by the answers, never awaited; a cancelled future must not stop the log
                write.set_result(None)
            self.durable_seq = max(self.durable_seq, batch[-1][0].seq)
        else:
            _fail(write, error)
            if error is not REFUSED:
                with self._lock:  # what was appended since was folded on top of the lost events as well
                    _fail(self._open_write, REFUSED)
                    self._open, self._open_write, self._refusing = [], None, False
        for callback in self._written:
            callback(error)

    def save_snapshot(self, seq: int, data: bytes) -> None:
        """Keep one state snapshot so a restart folds only the tail; older ones are dropped."""
        conn = connect(self.path)
        try:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT OR REPLACE INTO snapshots(seq, ts, data) VALUES (?,?,?)", (seq, time.time(), data))
                conn.execute("DELETE FROM snapshots WHERE seq < ?", (seq,))
        finally:
            conn.close()

    def latest_snapshot(self) -> tuple[int, bytes] | None:
        row = self._reader.execute("SELECT seq, data FROM snapshots ORDER BY seq DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else None
