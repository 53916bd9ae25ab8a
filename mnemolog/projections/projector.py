"""Keeps projections in step with the log, exactly once.

Each projection's tracking position is written in the same transaction as the
rows it covers. Two ways in:

- inline: inside the transaction that records new events, so a write returns
  with its read models current (any gap left by an earlier writer is replayed
  from the log first, in that same transaction);
- catch-up: pages of the log, one transaction per page, for a projection that
  is behind (a new projection, or events written by a process without it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from eventsourcing.persistence import Mapper, Notification
from eventsourcing.utils import resolve_topic
from sqlalchemy.schema import CreateIndex, DropIndex, DropTable

from mnemolog.projections.base import Projection
from mnemolog.projections.sql import DbCursor, create_statements, indexes_for

PAGE_SIZE = 1000


class LogAccess(Protocol):
    """What the projector needs from the backend, on a cursor it already holds."""

    def write_transaction(self) -> AbstractContextManager[DbCursor]:
        """A transaction that holds the write lock from its first statement."""

    def read_transaction(self) -> AbstractContextManager[DbCursor]:
        """A transaction that only reads."""

    def projection_transaction(self) -> AbstractContextManager[DbCursor]:
        """A transaction that writes read models (and positions) only: it may
        leave writers of the log free to go on."""

    def tracked_position(
        self, cursor: DbCursor, name: str, *, for_update: bool = False
    ) -> int:
        """The last log position the named projection has applied (0 if none);
        ``for_update`` holds it against other writers until the transaction ends."""

    def track(self, cursor: DbCursor, name: str, position: int) -> None:
        """Records the named projection's new position."""

    def advance(
        self, cursor: DbCursor, names: Sequence[str], expected: int, position: int
    ) -> int:
        """Moves the named positions found at ``expected`` to ``position``; a count."""

    def notifications_after(
        self, cursor: DbCursor, position: int, *, upto: int | None, limit: int
    ) -> Sequence[Notification]:
        """Log entries after ``position`` (up to ``upto``), oldest first."""

    def head_position(self, cursor: DbCursor) -> int:
        """The position of the newest entry in the log (0 if empty)."""

    def set_position(self, cursor: DbCursor, name: str, position: int) -> None:
        """Sets the named projection's position, whatever it was."""


@dataclass(frozen=True)
class ProjectionStatus:
    """Where a projection stands against the log."""

    name: str
    position: int
    head: int

    @property
    def lag(self) -> int:
        """Events recorded but not yet applied."""
        return self.head - self.position


@dataclass(frozen=True)
class RebuildProgress:
    """How far a rebuild has read the log."""

    name: str
    done: int
    total: int
    elapsed: float

    @property
    def rate(self) -> float:
        """Events a second so far."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate."""
        rate = self.rate
        return (self.total - self.done) / rate if rate > 0 else None


SHADOW_SUFFIX = "__rebuild"
T = TypeVar("T")


class Projector:
    """Applies events to a set of projections, inline or by catch-up."""

    def __init__(
        self, projections: Sequence[Projection], log: LogAccess, mapper: Mapper[Any]
    ) -> None:
        self.projections = tuple(projections)
        self.log = log
        self.mapper = mapper
        self._wanted: dict[tuple[str, str], bool] = {}
        self.after_rebuild: list[Callable[[], None]] = []
        """Called after every rebuild: caches of read-model rows drop them."""

    def apply_inline(
        self,
        cursor: DbCursor,
        events: Sequence[Any],
        positions: Sequence[int],
        *,
        enforce: bool = True,
    ) -> None:
        """Applies just-recorded events in the transaction that recorded them;
        with ``enforce``, projections that hold limits (quotas) enforce them."""
        first, last = positions[0], positions[-1]
        names = [p.name for p in self.projections]
        # The common case in one statement: every projection was current.
        if self.log.advance(cursor, names, first - 1, last) < len(names):
            for projection in self.projections:
                position = self.log.tracked_position(
                    cursor, projection.name, for_update=True
                )
                if position == last:
                    continue
                if position < first - 1:
                    self._replay(cursor, projection, position, upto=first - 1)
                self.log.track(cursor, projection.name, last)
        for projection in self.projections:
            limits = getattr(projection, "enforce", None) if enforce else None
            if limits is not None:  # limits hold for a writer's own events
                limits(True)
            try:
                for event, at in zip(events, positions, strict=True):
                    if isinstance(event, projection.topics):
                        projection.handle(cursor, event, at)
            finally:
                if limits is not None:
                    limits(False)

    def catch_up(
        self, names: Sequence[str] | None = None, *, page_size: int = PAGE_SIZE
    ) -> dict[str, int]:
        """Brings every projection (or the named ones) to the head of the log;
        events read by each."""
        counts: dict[str, int] = {}
        for projection in self.projections:
            if names is not None and projection.name not in names:
                continue
            applied = counts[projection.name] = 0
            while True:
                with self.log.projection_transaction() as cursor:
                    position = self.log.tracked_position(
                        cursor, projection.name, for_update=True
                    )
                    done = self._replay(
                        cursor, projection, position, upto=None, limit=page_size
                    )
                applied += done
                counts[projection.name] = applied
                if done < page_size:
                    break
        return counts

    def status(self) -> list[ProjectionStatus]:
        """Position, head and lag of each projection."""
        with self.log.read_transaction() as cursor:
            head = self.log.head_position(cursor)
            return [
                ProjectionStatus(
                    p.name, self.log.tracked_position(cursor, p.name), head
                )
                for p in self.projections
            ]

    def rebuild(
        self,
        name: str | None = None,
        *,
        progress: Callable[[RebuildProgress], None] | None = None,
    ) -> list[ProjectionStatus]:
        """Rebuilds one projection (or all) from the log, into shadow tables
        swapped in at the end in one transaction: readers see the old tables
        or the new, never a half-built one, and a failure leaves the old."""
        known = {p.name: p for p in self.projections}
        if name is not None and name not in known:
            msg = f"unknown projection {name!r}; known: {', '.join(sorted(known))}"
            raise KeyError(msg)
        for projection in self.projections:
            if name is None or projection.name == name:
                self._rebuild(projection, progress)
        for forget in self.after_rebuild:
            forget()
        return self.status()

    def differences(self, name: str | None = None) -> list[str]:
        """Builds each projection (or the named one) afresh from the log beside
        the live one and compares them; one line per table that differs."""
        found: list[str] = []
        for projection in self.projections:
            if name is None or projection.name == name:
                found += self._build(projection, None, self._compare)
        return found

    def _rebuild(
        self,
        live: Projection,
        progress: Callable[[RebuildProgress], None] | None,
    ) -> None:
        def swap(cursor: DbCursor, live: Projection, shadow: Projection) -> None:
            self._swap(cursor, live, shadow)
            self.log.set_position(cursor, live.name, self.log.head_position(cursor))

        self._build(live, progress, swap)

    def _build(
        self,
        live: Projection,
        progress: Callable[[RebuildProgress], None] | None,
        finish: Callable[[DbCursor, Projection, Projection], T],
    ) -> T:
        """Replays the whole log into shadow tables, then, under the write lock,
        what was written meanwhile, and hands both sets of tables to ``finish``
        in that same transaction. The shadow tables are gone afterwards unless
        ``finish`` took them."""
        shadow = type(live)(live.dialect, suffix=SHADOW_SUFFIX, **live.options)
        with self.log.write_transaction() as cursor:
            self._drop(cursor, shadow)
            for statement in create_statements(shadow.live_tables, live.dialect):
                cursor.execute(statement)
            total = self.log.head_position(cursor)
        try:
            started = time.monotonic()
            position, done = 0, 0
            while True:
                with self.log.write_transaction() as cursor:
                    read, position = self._replay_page(cursor, shadow, position)
                done += read
                if progress is not None:
                    total = max(total, position)
                    elapsed = time.monotonic() - started
                    progress(RebuildProgress(live.name, done, total, elapsed))
                if read < PAGE_SIZE:
                    break
            with self.log.write_transaction() as cursor:
                # The live projection's position first, as a worker takes it
                # before touching the live tables: the same order, no deadlock.
                self.log.tracked_position(cursor, live.name, for_update=True)
                while True:  # what was written meanwhile, under the write lock
                    read, position = self._replay_page(cursor, shadow, position)
                    if read < PAGE_SIZE:
                        break
                result = finish(cursor, live, shadow)
                self._drop(cursor, shadow)
        except BaseException:
            with self.log.write_transaction() as cursor:
                self._drop(cursor, shadow)
            raise
        return result

    @staticmethod
    def _drop(cursor: DbCursor, projection: Projection) -> None:
        for table in projection.live_tables:
            drop = DropTable(table, if_exists=True)
            cursor.execute(str(drop.compile(dialect=projection.dialect)))

    @staticmethod
    def _compare(cursor: DbCursor, live: Projection, built: Projection) -> list[str]:
        quote = live.dialect.identifier_preparer.quote
        found = []
        for table, rebuilt in zip(live.tables, built.live_tables, strict=True):
            names = ", ".join(quote(c.name) for c in table.columns)
            # Name the row by its key only: the report must not leak values.
            keys = ", ".join(quote(c.name) for c in table.primary_key.columns)
            for left, right, side in (
                (table, rebuilt, "the live read model but not in a rebuild"),
                (rebuilt, table, "a rebuild but not in the live read model"),
            ):
                cursor.execute(
                    f"SELECT {keys} FROM (SELECT {names} FROM {quote(left.name)} "
                    f"EXCEPT SELECT {names} FROM {quote(right.name)}) AS d LIMIT 1"
                )
                row = cursor.fetchone()
                if row is not None:
                    found.append(
                        f"{live.name}: the {table.name} row with key {tuple(row)} "
                        f"is in {side}"
                    )
        return found

    def _replay_page(
        self, cursor: DbCursor, projection: Projection, position: int
    ) -> tuple[int, int]:
        page = self.log.notifications_after(
            cursor, position, upto=None, limit=PAGE_SIZE
        )
        for notification in page:
            if self._wants(projection, notification.topic):
                event = self.mapper.to_domain_event(notification)
                projection.handle(cursor, event, notification.id)
            position = notification.id
        return len(page), position

    @staticmethod
    def _swap(cursor: DbCursor, live: Projection, shadow: Projection) -> None:
        dialect = live.dialect
        quote = dialect.identifier_preparer.quote
        for table, built in zip(live.tables, shadow.live_tables, strict=True):
            cursor.execute(
                str(DropTable(table, if_exists=True).compile(dialect=dialect))
            )
            cursor.execute(
                f"ALTER TABLE {quote(built.name)} RENAME TO {quote(table.name)}"
            )
            for index in indexes_for(built, dialect):
                cursor.execute(str(DropIndex(index).compile(dialect=dialect)))
            for index in indexes_for(table, dialect):
                cursor.execute(str(CreateIndex(index).compile(dialect=dialect)))

    def _wants(self, projection: Projection, topic: str) -> bool:
        key = (projection.name, topic)
        wanted = self._wanted.get(key)
        if wanted is None:
            cls = resolve_topic(topic)
            wanted = isinstance(cls, type) and issubclass(cls, projection.topics)
            self._wanted[key] = wanted
        return wanted

    def _replay(
        self,
        cursor: DbCursor,
        projection: Projection,
        position: int,
        *,
        upto: int | None,
        limit: int | None = None,
    ) -> int:
        """Applies log entries after ``position``; returns how many were read."""
        read = 0
        while True:
            page = self.log.notifications_after(
                cursor, position, upto=upto, limit=limit or PAGE_SIZE
            )
            for notification in page:
                if self._wants(projection, notification.topic):
                    event = self.mapper.to_domain_event(notification)
                    projection.handle(cursor, event, notification.id)
                position = notification.id
            read += len(page)
            if page:
                self.log.track(cursor, projection.name, position)
            if limit is not None or len(page) < PAGE_SIZE:
                return read
