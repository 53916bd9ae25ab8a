"""The SQLite backend: eventsourcing's SQLite recorder, with read models written
inside the log's own transactions, on one file (or one in-memory database).

Durability: the log runs in WAL mode with ``synchronous=FULL`` by default, so a
write that returned survives a process crash and a power loss. ``NORMAL`` is on
offer (``?synchronous=normal``): about 2.5x the write rate, still safe against
a process crash, but a power loss may drop the last transactions.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    InterfaceError,
    Notification,
    StoredEvent,
    Tracking,
)
from eventsourcing.sqlite import (
    SQLITE3_DEFAULT_LOCK_TIMEOUT,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteFactory,
    SQLiteProcessRecorder,
    SQLiteTransaction,
)
from eventsourcing.utils import Environment, EnvType
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Dialect

from mnemolog.adapters.keyring import ErasurePlan, Keyring
from mnemolog.domain.errors import ProjectionError, QuotaExceeded
from mnemolog.projections.projector import Projector
from mnemolog.projections.sql import DbCursor

SYNCHRONOUS = "MNEMOLOG_SQLITE_SYNCHRONOUS"
SYNCHRONOUS_LEVELS = ("full", "normal")
SNAPSHOTS_TABLE = "stored_snapshots"  # eventsourcing's name: "stored_" + purpose


@lru_cache(maxsize=1)
def sqlite_sql_dialect() -> Dialect:
    """SQLAlchemy's SQLite dialect with named parameters, as sqlite3 takes them."""
    return sqlite_dialect.dialect(paramstyle="named")


class TunedConnectionPool(SQLiteConnectionPool):
    """The library's pool, setting the durability level on every connection."""

    def __init__(self, *, synchronous: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.synchronous = synchronous

    def _create_connection(self) -> SQLiteConnection:
        # The library's connection, but with a real statement cache: it passes
        # cached_statements=True, which sqlite3 reads as a cache of ONE
        # statement, so every statement of a write was prepared anew (about
        # half the cost of a put).
        try:
            raw = sqlite3.connect(
                database=self.db_name,
                uri=True,
                check_same_thread=False,
                isolation_level=None,
                cached_statements=256,
                timeout=self.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT,
            )
        except (sqlite3.Error, TypeError) as e:
            raise InterfaceError(e) from e
        if not self.is_sqlite_memory_mode:
            if not self.is_journal_mode_wal:
                raw.execute("PRAGMA journal_mode=WAL")
                self.is_journal_mode_wal = True
            raw.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
            # Deleted rows are overwritten with zeros, not left in free pages:
            # an erasure's purge leaves no copy in the file.
            raw.execute("PRAGMA secure_delete=ON")
        raw.row_factory = sqlite3.Row
        return SQLiteConnection(sqlite_conn=raw, max_age=self.max_age)


class PollingListener:
    """A listener that never hears anything: the worker looks every interval."""

    reconnects = 0

    def wait(self, timeout: float) -> bool:
        """Sleeps ``timeout`` seconds; the log may have grown meanwhile."""
        time.sleep(timeout)
        return True

    def close(self) -> None:
        """Nothing to close."""


class ImmediateTransaction(SQLiteTransaction):
    """The library's transaction (its errors translated the same way), begun
    with the write lock taken."""

    def __enter__(self) -> SQLiteCursor:
        cursor = self.connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        return cursor


class LogRecorder(SQLiteProcessRecorder):
    """Records events, and applies the projections in the same transaction.

    Reads that are one statement run without BEGIN/ROLLBACK (one statement is
    its own consistent snapshot), on a connection kept per thread for a file
    database: about 3x faster than a pooled transaction per read.
    """

    projector: Projector | None = None
    project_inline = True
    """False when projection workers apply new events instead of writers."""
    backend = "sqlite"
    keyring: Keyring | None = None
    """The keys that seal personal fields (set by the store)."""

    def __init__(self, datastore: Any, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        self.sql_dialect = sqlite_sql_dialect()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Cursor]:
        pool = self.datastore.pool
        if pool.is_sqlite_memory_mode:
            # Shared-cache memory databases need the pool's reader/writer lock.
            with self.datastore.get_connection(commit=False) as pooled:
                yield pooled._sqlite_conn.cursor()
            return
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                pool.db_name,
                uri=True,
                check_same_thread=False,
                isolation_level=None,
                timeout=pool.lock_timeout or 5,
            )
            with self._readers_lock:
                self._readers.append(connection)
            self._local.connection = connection
        yield connection.cursor()

    def fetch_one(self, statement: str, params: Any) -> Any:
        """The first row of a one-statement query, or None."""
        writing = getattr(self._local, "writing", None)
        if writing is not None:  # inside this thread's write: read there
            writing.execute(statement, params)
            return writing.fetchone()
        with self._reader() as cursor:
            return cursor.execute(statement, params).fetchone()

    def fetch_all(self, statement: str, params: Any) -> list[Any]:
        """Every row of a one-statement query."""
        writing = getattr(self._local, "writing", None)
        if writing is not None:
            writing.execute(statement, params)
            return list(writing.fetchall())
        with self._reader() as cursor:
            return cursor.execute(statement, params).fetchall()

    def close_readers(self) -> None:
        """Closes the per-thread read connections."""
        with self._readers_lock:
            for connection in self._readers:
                connection.close()
            self._readers.clear()
        self._local = threading.local()

    def select_streams(
        self, originator_ids: Sequence[UUID], *, after: Mapping[UUID, int] | None = None
    ) -> list[StoredEvent]:
        """Every event of the given streams, stream by stream, oldest first; for
        a stream in ``after``, only its events past that version."""
        after = after or {}
        columns = "originator_id, originator_version, topic, state"
        table = self.events_table_name
        rows: list[Any] = []
        whole = [i.hex for i in originator_ids if i not in after]
        for start in range(0, len(whole), 500):
            chunk = whole[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows += self.fetch_all(
                f"SELECT {columns} FROM {table} WHERE originator_id IN ({marks}) "
                "ORDER BY originator_id, originator_version",
                chunk,
            )
        for stream, version in after.items():
            rows += self.fetch_all(
                f"SELECT {columns} FROM {table} WHERE originator_id = ? "
                "AND originator_version > ? ORDER BY originator_version",
                (stream.hex, version),
            )
        return [StoredEvent(UUID(row[0]), row[1], row[2], row[3]) for row in rows]

    def latest_snapshot(self, originator_id: UUID, *, upto: int) -> StoredEvent | None:
        """The newest snapshot of a stream at or before version ``upto``."""
        row = self.fetch_one(
            "SELECT originator_id, originator_version, topic, state "
            f"FROM {SNAPSHOTS_TABLE} WHERE originator_id = ? "
            "AND originator_version <= ? ORDER BY originator_version DESC LIMIT 1",
            (originator_id.hex, upto),
        )
        return (
            None if row is None else StoredEvent(UUID(row[0]), row[1], row[2], row[3])
        )

    def latest_snapshots(self, originator_ids: Sequence[UUID]) -> list[StoredEvent]:
        """The newest snapshot of each given stream that has one."""
        found: list[StoredEvent] = []
        ids = [i.hex for i in originator_ids]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found += [
                StoredEvent(UUID(row[0]), row[1], row[2], row[3])
                for row in self.fetch_all(
                    "SELECT originator_id, originator_version, topic, state "
                    f"FROM {SNAPSHOTS_TABLE} AS s WHERE originator_id IN ({marks}) "
                    "AND originator_version = (SELECT MAX(originator_version) "
                    f"FROM {SNAPSHOTS_TABLE} WHERE originator_id = s.originator_id)",
                    chunk,
                )
            ]
        return found

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        statement = (
            "SELECT originator_id, originator_version, topic, state "
            f"FROM {self.events_table_name} WHERE originator_id = ? "
        )
        params: list[Any] = [
            originator_id.hex if isinstance(originator_id, UUID) else originator_id
        ]
        if gt is not None:
            statement += "AND originator_version > ? "
            params.append(gt)
        if lte is not None:
            statement += "AND originator_version <= ? "
            params.append(lte)
        statement += f"ORDER BY originator_version {'DESC' if desc else 'ASC'} "
        if limit is not None:
            statement += "LIMIT ? "
            params.append(limit)
        return [
            StoredEvent(
                originator_id=self.convert_originator_id(row[0]),
                originator_version=row[1],
                topic=row[2],
                state=row[3],
            )
            for row in self.fetch_all(statement, params)
        ]

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Inserts the events, their new stream keys, and applies the
        projections, in one transaction."""
        keys: list[dict[str, Any]] = []
        # BEGIN IMMEDIATE: the transaction reads (the key epoch) before it
        # writes, and a deferred one that another process wrote past in the
        # meantime fails at once with "database is locked" (WAL snapshot).
        with (
            self.datastore.get_connection(commit=True) as connection,
            ImmediateTransaction(connection, commit=True) as cursor,
            cursor,
        ):
            positions = self._insert_events(cursor, stored_events, _keys=keys, **kwargs)
        if self.keyring is not None:
            self.keyring.committed(keys)
        return positions

    def _insert_events(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        **kwargs: Any,
    ) -> Sequence[int] | None:
        domain_events = kwargs.pop("projected_events", None)
        keys: list[dict[str, Any]] = kwargs.pop("_keys", [])
        erasure: ErasurePlan | None = kwargs.pop("erasure", None)
        copied: Sequence[Any] = kwargs.pop("copied_erasures", ())
        enforce: bool = kwargs.pop("enforce_quotas", True)
        if self.keyring is not None:
            keys += self.keyring.before_insert(c)
            self.keyring.record(c, copied)
            if erasure is not None:
                self.keyring.destroy(c, erasure, "?")
                self.delete_snapshots(c, erasure.streams)
        positions = super()._insert_events(c, stored_events, **kwargs)
        if (
            self.projector is not None
            and self.project_inline
            and domain_events
            and positions
        ):
            try:
                self.projector.apply_inline(
                    c, domain_events, positions, enforce=enforce
                )
            except QuotaExceeded:
                raise
            except Exception as e:
                # Never let a read model's failure pass for the log's own
                # IntegrityError, which callers take as a lost version race.
                msg = f"projection failed; nothing was written: {e!r}"
                raise ProjectionError(msg) from e
        return positions

    def after_erasure(self) -> None:
        """Merges the full-text index (an FTS5 delete only marks a row until
        its segments merge) and truncates the write-ahead log, so that with
        secure_delete (on for every connection) no erased row is left in the
        files."""
        with self.write_transaction() as cursor:
            cursor.execute("INSERT INTO memory_text(memory_text) VALUES ('optimize')")
        if not self.datastore.pool.is_sqlite_memory_mode:
            with self.datastore.get_connection(commit=False) as connection:
                connection.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @staticmethod
    def delete_snapshots(cursor: DbCursor, streams: Sequence[str]) -> None:
        """Deletes the snapshots of streams (hex ids) whose keys are destroyed."""
        cursor.executemany(
            f"DELETE FROM {SNAPSHOTS_TABLE} WHERE originator_id = ?",
            [(s,) for s in streams],
        )

    @contextmanager
    def write_transaction(self) -> Iterator[DbCursor]:
        """BEGIN IMMEDIATE: the write lock is ours before the first read."""
        with self.datastore.get_connection(commit=True) as connection:
            cursor = connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            # Reads in this thread meanwhile (a key the mapper needs) run in
            # this transaction: a reader would wait for it (memory://) or
            # miss what it wrote.
            self._local.writing = cursor
            try:
                yield cursor
            except BaseException:
                connection.rollback()
                raise
            finally:
                self._local.writing = None
            connection.commit()

    def create_read_models(
        self, statements: Sequence[str], names: Sequence[str]
    ) -> None:
        """Creates missing read-model tables, and a position row for each
        projection (cheap on one file: done at every open)."""
        with self.write_transaction() as cursor:
            for statement in statements:
                cursor.execute(statement)
            for name in names:
                self.ensure_tracked(cursor, name)

    def listener(self) -> PollingListener:
        """SQLite cannot notify other processes: a worker polls."""
        return PollingListener()

    def projection_transaction(self) -> AbstractContextManager[DbCursor]:
        """SQLite has one writer at a time: the write transaction."""
        return self.write_transaction()

    @contextmanager
    def read_transaction(self) -> Iterator[DbCursor]:
        """A consistent snapshot for reads."""
        with self.datastore.transaction(commit=False) as cursor:
            yield cursor

    def tracked_position(
        self, cursor: DbCursor, name: str, *, for_update: bool = False
    ) -> int:
        # One writer at a time holds the database: no row lock is needed.
        cursor.execute(self.select_max_tracking_id_statement, (name,))
        row = cursor.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def track(self, cursor: DbCursor, name: str, position: int) -> None:
        assert isinstance(cursor, SQLiteCursor)
        self._insert_tracking(cursor, Tracking(name, position))

    def set_position(self, cursor: DbCursor, name: str, position: int) -> None:
        cursor.execute(
            "INSERT INTO tracking VALUES (?, ?) ON CONFLICT (application_name) "
            "DO UPDATE SET notification_id = excluded.notification_id",
            (name, position),
        )

    def ensure_tracked(self, cursor: DbCursor, name: str) -> None:
        """Gives the projection a position row (at 0) if it has none."""
        cursor.execute(
            "INSERT INTO tracking VALUES (?, 0) ON CONFLICT (application_name) "
            "DO NOTHING",
            (name,),
        )

    def advance(
        self, cursor: DbCursor, names: Sequence[str], expected: int, position: int
    ) -> int:
        marks = ",".join("?" * len(names))
        cursor.execute(
            "UPDATE tracking SET notification_id = ? "
            f"WHERE application_name IN ({marks}) AND notification_id = ?",
            (position, *names, expected),
        )
        assert isinstance(cursor, SQLiteCursor)
        return int(cursor.sqlite_cursor.rowcount)

    def notifications_after(
        self, cursor: DbCursor, position: int, *, upto: int | None, limit: int
    ) -> Sequence[Notification]:
        statement = (
            "SELECT rowid, originator_id, originator_version, topic, state "
            f"FROM {self.events_table_name} WHERE rowid > ? "
        )
        params: list[Any] = [position]
        if upto is not None:
            statement += "AND rowid <= ? "
            params.append(upto)
        statement += "ORDER BY rowid LIMIT ?"
        params.append(limit)
        cursor.execute(statement, params)
        return [
            Notification(
                id=row[0],
                originator_id=UUID(row[1]),
                originator_version=row[2],
                topic=row[3],
                state=row[4],
            )
            for row in cursor.fetchall()
        ]

    def head_position(self, cursor: DbCursor) -> int:
        cursor.execute(self.select_max_notification_id_statement)
        row = cursor.fetchone()
        return int(row[0]) if row and row[0] is not None else 0


class Factory(SQLiteFactory):
    """eventsourcing's SQLite factory with our recorder and durability setting."""

    application_recorder_class = LogRecorder  # type: ignore[assignment]

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        synchronous = (self.env.get(SYNCHRONOUS) or "full").lower()
        if synchronous not in SYNCHRONOUS_LEVELS:
            msg = (
                f"synchronous must be one of {SYNCHRONOUS_LEVELS}, not {synchronous!r}"
            )
            raise ValueError(msg)
        old = self.datastore.pool
        self.datastore.pool = TunedConnectionPool(
            synchronous=synchronous,
            db_name=old.db_name,
            lock_timeout=old.lock_timeout,
        )
        old.close()
