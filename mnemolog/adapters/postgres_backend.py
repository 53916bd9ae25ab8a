"""The PostgreSQL backend: eventsourcing's PostgreSQL recorder (psycopg 3 and
its pool), with read models written inside the log's own transactions, in one
schema per store.

Writers serialise on the events table (eventsourcing takes it in EXCLUSIVE
mode, which readers never wait for), so log positions are handed out in commit
order and a projection applied inline never sees a later event before an
earlier one. Tables are created under an advisory lock, so many processes may
open a new store at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InterfaceError,
    Notification,
    OperationalError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresFactory, PostgresProcessRecorder
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.engine import Dialect

from mnemolog.adapters.keyring import ErasurePlan, Keyring
from mnemolog.domain.errors import ProjectionError, QuotaExceeded
from mnemolog.projections.projector import Projector
from mnemolog.projections.sql import DbCursor

EVENTS_TABLE = "stored_events"
SNAPSHOTS_TABLE = "stored_snapshots"
TRACKING_TABLE = "tracking"

_PLACEHOLDER = re.compile(r"%|\?")
READ_ATTEMPTS = 3
"""Tries of a read whose connection failed (a write is never retried: its
commit may have happened)."""


@lru_cache(maxsize=1)
def postgres_sql_dialect() -> Dialect:
    """SQLAlchemy's PostgreSQL dialect with psycopg's named parameters."""
    dialect: Dialect = postgresql_dialect.psycopg.dialect(paramstyle="pyformat")  # type: ignore[no-untyped-call]
    return dialect


@lru_cache(maxsize=512)
def positional(statement: str) -> str:
    """A statement written with ``?`` placeholders in psycopg's ``%s`` form."""
    return _PLACEHOLDER.sub(lambda m: "%s" if m.group() == "?" else "%%", statement)


def _lock_key(schema: str) -> int:
    """The advisory lock that serialises table creation in one schema."""
    return zlib.crc32(f"mnemolog:{schema}".encode()) - 2**31


class PgLogRecorder(PostgresProcessRecorder):
    """Records events, and applies the projections in the same transaction."""

    projector: Projector | None = None
    project_inline = True
    """False when projection workers apply new events instead of writers."""
    backend = "postgresql"
    keyring: Keyring | None = None
    """The keys that seal personal fields (set by the store)."""

    def __init__(self, datastore: Any, **kwargs: Any) -> None:
        kwargs["tracking_table_name"] = TRACKING_TABLE
        super().__init__(datastore, **kwargs)
        self.sql_dialect = postgres_sql_dialect()
        schema, table = datastore.schema, self.events_table_name
        # Channels are database-wide: one per store, so a worker wakes only
        # for writes to its own store.
        self.channel_name = f"mnemolog_{schema}"
        self._events = f'"{schema}"."{table}"'
        self._snapshots = f'"{schema}"."{SNAPSHOTS_TABLE}"'
        self._tracking = f'"{schema}"."{TRACKING_TABLE}"'

    # ---- reads ---------------------------------------------------------------

    @contextmanager
    def _cursor(self) -> Iterator[psycopg.Cursor[Any]]:
        with (
            self.datastore.get_connection() as connection,
            connection.cursor(row_factory=tuple_row) as cursor,
        ):
            yield cursor

    def fetch_one(self, statement: str, params: Any) -> Any:
        """The first row of a one-statement query, or None."""
        rows = self._read(statement, params, one=True)
        return rows[0] if rows else None

    def fetch_all(self, statement: str, params: Any) -> list[Any]:
        """Every row of a one-statement query."""
        return self._read(statement, params, one=False)

    def _read(self, statement: str, params: Any, *, one: bool) -> list[Any]:
        # A read is safe to try again: a pooled connection that the server
        # dropped (a restart, a failover) fails once, and is discarded.
        if not isinstance(params, Mapping):
            statement = positional(statement)
        for attempt in range(READ_ATTEMPTS):
            try:
                with self._cursor() as cursor:
                    cursor.execute(statement, params)
                    if one:
                        row = cursor.fetchone()
                        return [] if row is None else [row]
                    return cursor.fetchall()
            except (OperationalError, InterfaceError):
                if attempt == READ_ATTEMPTS - 1:
                    raise
        raise AssertionError  # pragma: no cover - the loop returns or raises

    def close_readers(self) -> None:
        """Nothing to close: reads borrow the pool's connections."""

    def select_streams(
        self, originator_ids: Sequence[UUID], *, after: Mapping[UUID, int] | None = None
    ) -> list[StoredEvent]:
        """Every event of the given streams, stream by stream, oldest first; for
        a stream in ``after``, only its events past that version."""
        after = after or {}
        columns = "originator_id, originator_version, topic, state"
        rows: list[Any] = []
        whole = [i for i in originator_ids if i not in after]
        if whole:
            rows += self.fetch_all(
                f"SELECT {columns} FROM {self._events} WHERE originator_id = ANY(?) "
                "ORDER BY originator_id, originator_version",
                (whole,),
            )
        for stream, version in after.items():
            rows += self.fetch_all(
                f"SELECT {columns} FROM {self._events} WHERE originator_id = ? "
                "AND originator_version > ? ORDER BY originator_version",
                (stream, version),
            )
        return [_stored(row) for row in rows]

    def latest_snapshot(self, originator_id: UUID, *, upto: int) -> StoredEvent | None:
        """The newest snapshot of a stream at or before version ``upto``."""
        row = self.fetch_one(
            "SELECT originator_id, originator_version, topic, state "
            f"FROM {self._snapshots} WHERE originator_id = ? "
            "AND originator_version <= ? ORDER BY originator_version DESC LIMIT 1",
            (originator_id, upto),
        )
        return None if row is None else _stored(row)

    def latest_snapshots(self, originator_ids: Sequence[UUID]) -> list[StoredEvent]:
        """The newest snapshot of each given stream that has one."""
        if not originator_ids:
            return []
        return [
            _stored(row)
            for row in self.fetch_all(
                "SELECT DISTINCT ON (originator_id) originator_id, "
                f"originator_version, topic, state FROM {self._snapshots} "
                "WHERE originator_id = ANY(?) "
                "ORDER BY originator_id, originator_version DESC",
                (list(originator_ids),),
            )
        ]

    # ---- writes --------------------------------------------------------------

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Inserts the events and applies the projections, in one transaction."""
        domain_events = kwargs.pop("projected_events", None)
        erasure: ErasurePlan | None = kwargs.pop("erasure", None)
        copied: Sequence[Any] = kwargs.pop("copied_erasures", ())
        enforce: bool = kwargs.pop("enforce_quotas", True)
        keyring = self.keyring
        keys: list[dict[str, Any]] = []
        if not stored_events:
            return []
        rows = [
            self.construct_pg_stored_event(
                e.originator_id, e.originator_version, e.topic, e.state
            )
            for e in stored_events
        ]
        with (
            self.datastore.get_connection() as connection,
            connection.transaction(),
            connection.cursor(row_factory=tuple_row) as cursor,
        ):
            # First, unpipelined: the writers' lock, then the keys (the epoch
            # check reads a row; a pipeline would hand its result, or a key
            # INSERT's, to a later fetch on the cursor).
            for statement in self.lock_table_statements:
                cursor.execute(statement, prepare=True)
            if keyring is not None:
                keys = keyring.before_insert(cursor)
                keyring.record(cursor, copied)
                if erasure is not None:
                    keyring.destroy(cursor, erasure, "%s")
                    self.delete_snapshots(cursor, erasure.streams)
            # Then pipelined, as statements that go out without waiting for
            # each other's results: only reading a result (the positions, a
            # projection's lookups) waits. A round trip costs more than most
            # statements here.
            with connection.pipeline() as pipeline:
                cursor.execute(SQL("NOTIFY {0}").format(Identifier(self.channel_name)))
                cursor.execute(self.insert_events_statement, (rows,), prepare=True)
                positions = [row[0] for row in cursor.fetchall()]
                if (
                    self.projector is not None
                    and self.project_inline
                    and domain_events
                    and positions
                ):
                    try:
                        self.projector.apply_inline(
                            cursor, domain_events, positions, enforce=enforce
                        )
                        # A projection's error shows here, not as the log's own.
                        pipeline.sync()
                    except QuotaExceeded:
                        raise
                    except Exception as e:
                        msg = f"projection failed; nothing was written: {e!r}"
                        raise ProjectionError(msg) from e
        if keyring is not None:
            keyring.committed(keys)
        return positions

    def after_erasure(self) -> None:
        """Vacuums the key tables, so destroyed keys leave their pages (the
        read models' dead rows go at the next autovacuum)."""
        with self.datastore.get_connection() as connection:
            connection.autocommit = True
            try:
                connection.execute("VACUUM stream_keys, subject_keys")
            finally:
                connection.autocommit = False

    @staticmethod
    def delete_snapshots(cursor: DbCursor, streams: Sequence[str]) -> None:
        """Deletes the snapshots of streams (hex ids) whose keys are destroyed."""
        for stream in streams:
            cursor.execute(
                f"DELETE FROM {SNAPSHOTS_TABLE} WHERE originator_id = %s",
                (UUID(hex=stream),),
            )

    @contextmanager
    def write_transaction(self) -> Iterator[DbCursor]:
        """A transaction holding the writers' lock on the log."""
        with (
            self.datastore.get_connection() as connection,
            connection.transaction(),
            connection.cursor(row_factory=tuple_row) as cursor,
        ):
            for statement in self.lock_table_statements:
                cursor.execute(statement, prepare=True)
            yield cursor

    @contextmanager
    def projection_transaction(self) -> Iterator[DbCursor]:
        """A transaction without the writers' lock: log positions are handed
        out in commit order, so what a reader sees of the log is final up to
        its head, and the projection's tracking row (read FOR UPDATE) keeps
        two appliers of it apart."""
        with (
            self.datastore.get_connection() as connection,
            connection.transaction(),
            connection.cursor(row_factory=tuple_row) as cursor,
        ):
            yield cursor

    @contextmanager
    def read_transaction(self) -> Iterator[DbCursor]:
        """A consistent snapshot for reads."""
        with (
            self.datastore.get_connection() as connection,
            connection.transaction(),
            connection.cursor(row_factory=tuple_row) as cursor,
        ):
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield cursor

    def tracked_position(
        self, cursor: DbCursor, name: str, *, for_update: bool = False
    ) -> int:
        # FOR UPDATE: a worker and an inline writer never apply the same
        # events twice; the second waits, then reads the first one's position.
        cursor.execute(
            f"SELECT notification_id FROM {self._tracking} "
            f"WHERE application_name = %s{' FOR UPDATE' if for_update else ''}",
            (name,),
        )
        row = cursor.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def track(self, cursor: DbCursor, name: str, position: int) -> None:
        self.set_position(cursor, name, position)

    def set_position(self, cursor: DbCursor, name: str, position: int) -> None:
        cursor.execute(
            f"INSERT INTO {self._tracking} VALUES (%s, %s) "
            "ON CONFLICT (application_name) "
            "DO UPDATE SET notification_id = excluded.notification_id",
            (name, position),
        )

    def ensure_tracked(self, cursor: DbCursor, name: str) -> None:
        """Gives the projection a position row (at 0) if it has none, so that
        reading it FOR UPDATE always has a row to lock."""
        cursor.execute(
            f"INSERT INTO {self._tracking} VALUES (%s, 0) "
            "ON CONFLICT (application_name) DO NOTHING",
            (name,),
        )

    def advance(
        self, cursor: DbCursor, names: Sequence[str], expected: int, position: int
    ) -> int:
        cursor.execute(
            f"UPDATE {self._tracking} SET notification_id = %s "
            "WHERE application_name = ANY(%s) AND notification_id = %s "
            "RETURNING 1",
            (position, list(names), expected),
        )
        return len(cursor.fetchall())  # rowcount waits for no result when pipelined

    def notifications_after(
        self, cursor: DbCursor, position: int, *, upto: int | None, limit: int
    ) -> Sequence[Notification]:
        statement = (
            "SELECT notification_id, originator_id, originator_version, topic, state "
            f"FROM {self._events} WHERE notification_id > %s "
        )
        params: list[Any] = [position]
        if upto is not None:
            statement += "AND notification_id <= %s "
            params.append(upto)
        statement += "ORDER BY notification_id LIMIT %s"
        params.append(limit)
        cursor.execute(statement, params)
        return [
            Notification(
                id=row[0],
                originator_id=row[1],
                originator_version=row[2],
                topic=row[3],
                state=bytes(row[4]),
            )
            for row in cursor.fetchall()
        ]

    def create_read_models(
        self, statements: Sequence[str], names: Sequence[str]
    ) -> None:
        """Creates missing read-model tables and position rows, once per
        version of them: a fingerprint of the statements is kept in
        ``schema_version``, and a process that finds its own there does
        nothing (no lock, no DDL). Otherwise it creates them under the
        writers' lock and an advisory lock, so racing starts never fail."""
        fingerprint = hashlib.sha256(
            "\n".join([*statements, *names]).encode()
        ).hexdigest()
        try:
            row = self.fetch_one("SELECT fingerprint FROM schema_version", ())
        except ProgrammingError:  # no such table yet
            row = None
        if row is not None and row[0] == fingerprint:
            return
        with self.write_transaction() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s)",
                (_lock_key(self.datastore.schema),),
            )
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(id INTEGER PRIMARY KEY, fingerprint TEXT NOT NULL)"
            )
            for statement in statements:
                cursor.execute(statement)
            for name in names:
                self.ensure_tracked(cursor, name)
            cursor.execute(
                "INSERT INTO schema_version VALUES (1, %s) ON CONFLICT (id) "
                "DO UPDATE SET fingerprint = excluded.fingerprint",
                (fingerprint,),
            )

    def listener(self) -> LogListener:
        """A new listener for the log's notifications."""
        kwargs = self.datastore.pool.kwargs
        assert isinstance(kwargs, dict)
        connect = {k: v for k, v in kwargs.items() if k != "row_factory"}
        return LogListener(connect, self.channel_name)

    def head_position(self, cursor: DbCursor) -> int:
        cursor.execute(f"SELECT MAX(notification_id) FROM {self._events}")
        row = cursor.fetchone()
        return int(row[0]) if row and row[0] is not None else 0


class LogListener:
    """Wakes a projection worker when the log grows: LISTEN on the channel
    every write NOTIFYs. If the listening connection drops (notifications
    sent meanwhile are lost), it says "look now" and falls back to polling
    until it has listened again."""

    def __init__(self, connect: dict[str, Any], channel: str) -> None:
        self._connect = connect
        self._channel = channel
        self._connection: psycopg.Connection[Any] | None = None
        self.reconnects = 0

    def wait(self, timeout: float) -> bool:
        """Waits up to ``timeout`` seconds; True if the log may have grown."""
        try:
            if self._connection is None or self._connection.closed:
                self._connection = psycopg.connect(
                    **self._connect, autocommit=True, connect_timeout=10
                )
                self._connection.execute(
                    SQL("LISTEN {0}").format(Identifier(self._channel))
                )
                self.reconnects += 1
                return True  # what was sent while nobody listened is unknown
            # Consumed whole: the generator holds the connection's lock until
            # it finishes (after one notification, or the timeout).
            heard = bool(list(self._connection.notifies(timeout=timeout, stop_after=1)))
            if heard:
                # One pass serves a burst: drop what else is queued already.
                for _ in self._connection.notifies(timeout=0):
                    pass
            return heard
        except psycopg.Error:
            self.close()
            time.sleep(timeout)  # polling, until listening works again
            return True

    def close(self) -> None:
        """Closes the listening connection."""
        if self._connection is not None:
            with contextlib.suppress(psycopg.Error):
                self._connection.close()
        self._connection = None


def _stored(row: Sequence[Any]) -> StoredEvent:
    return StoredEvent(row[0], row[1], row[2], bytes(row[3]))


class PgFactory(PostgresFactory):
    """eventsourcing's PostgreSQL factory: our recorder, the table names the
    SQLite backend uses, the store's schema on every connection's search path,
    and tables created once, under an advisory lock."""

    application_recorder_class = PgLogRecorder

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        schema = self.datastore.schema
        # Unqualified names in the read models' SQL resolve to the store's schema.
        kwargs = self.datastore.pool.kwargs
        assert isinstance(kwargs, dict)
        kwargs["options"] = f"-c search_path={schema}"
        # So that pg_stat_activity tells which store a connection serves.
        kwargs["application_name"] = f"mnemolog/{schema}"
        self._connect_kwargs: dict[str, Any] = kwargs

    def env_create_table(self) -> bool:
        return False  # created by _create under the lock instead

    def application_recorder(self) -> ApplicationRecorder:
        recorder = PgLogRecorder(self.datastore, events_table_name=EVENTS_TABLE)
        self._create(recorder)
        return recorder

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        recorder = self.aggregate_recorder_class(
            datastore=self.datastore, events_table_name=f"stored_{purpose}"
        )
        self._create(recorder)
        return recorder

    def _create(self, recorder: Any) -> None:
        """Creates the schema and the recorder's tables if missing, one
        process at a time (CREATE ... IF NOT EXISTS races otherwise)."""
        schema = self.datastore.schema
        with self.datastore.get_connection() as connection:
            found = connection.execute(
                "SELECT 1 FROM information_schema.tables "
                "WHERE table_schema = %s AND table_name = %s",
                (schema, recorder.events_table_name),
            ).fetchone()
        if found is not None:
            recorder.datastore.register_type_adapters()
            return
        # Its own connection: the pool may have none to spare while it waits.
        with psycopg.connect(**self._connect_kwargs, autocommit=True) as lock:
            lock.execute("SELECT pg_advisory_lock(%s)", (_lock_key(schema),))
            lock.execute(
                SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(Identifier(schema))
            )
            recorder.create_table()
