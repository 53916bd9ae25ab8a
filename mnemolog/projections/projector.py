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

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from eventsourcing.persistence import Mapper, Notification
from eventsourcing.utils import get_topic

from mnemolog.projections.base import Projection
from mnemolog.projections.sql import DbCursor

PAGE_SIZE = 1000


class LogAccess(Protocol):
    """What the projector needs from the backend, on a cursor it already holds."""

    def write_transaction(self) -> AbstractContextManager[DbCursor]:
        """A transaction that holds the write lock from its first statement."""

    def read_transaction(self) -> AbstractContextManager[DbCursor]:
        """A transaction that only reads."""

    def tracked_position(self, cursor: DbCursor, name: str) -> int:
        """The last log position the named projection has applied (0 if none)."""

    def track(self, cursor: DbCursor, name: str, position: int) -> None:
        """Records the named projection's new position."""

    def advance(
        self, cursor: DbCursor, name: str, expected: int, position: int
    ) -> bool:
        """Moves the position from ``expected`` to ``position``; False if not there."""

    def notifications_after(
        self, cursor: DbCursor, position: int, *, upto: int | None, limit: int
    ) -> Sequence[Notification]:
        """Log entries after ``position`` (up to ``upto``), oldest first."""

    def head_position(self, cursor: DbCursor) -> int:
        """The position of the newest entry in the log (0 if empty)."""


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


class Projector:
    """Applies events to a set of projections, inline or by catch-up."""

    def __init__(
        self, projections: Sequence[Projection], log: LogAccess, mapper: Mapper[Any]
    ) -> None:
        self.projections = tuple(projections)
        self.log = log
        self.mapper = mapper
        self._topics = {
            p.name: frozenset(get_topic(t) for t in p.topics) for p in projections
        }

    def apply_inline(
        self, cursor: DbCursor, events: Sequence[Any], positions: Sequence[int]
    ) -> None:
        """Applies just-recorded events in the transaction that recorded them."""
        first, last = positions[0], positions[-1]
        for projection in self.projections:
            # The common case in one statement: the projection was current.
            if not self.log.advance(cursor, projection.name, first - 1, last):
                position = self.log.tracked_position(cursor, projection.name)
                if position < first - 1:
                    self._replay(cursor, projection, position, upto=first - 1)
                self.log.track(cursor, projection.name, last)
            for event, at in zip(events, positions, strict=True):
                if isinstance(event, projection.topics):
                    projection.handle(cursor, event, at)

    def catch_up(self, *, page_size: int = PAGE_SIZE) -> int:
        """Brings every projection to the head of the log; returns events applied."""
        applied = 0
        for projection in self.projections:
            while True:
                with self.log.write_transaction() as cursor:
                    position = self.log.tracked_position(cursor, projection.name)
                    done = self._replay(
                        cursor, projection, position, upto=None, limit=page_size
                    )
                applied += done
                if done < page_size:
                    break
        return applied

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
        topics = self._topics[projection.name]
        read = 0
        while True:
            page = self.log.notifications_after(
                cursor, position, upto=upto, limit=limit or PAGE_SIZE
            )
            for notification in page:
                if notification.topic in topics:
                    event = self.mapper.to_domain_event(notification)
                    projection.handle(cursor, event, notification.id)
                position = notification.id
            read += len(page)
            if page:
                self.log.track(cursor, projection.name, position)
            if limit is not None or len(page) < PAGE_SIZE:
                return read
