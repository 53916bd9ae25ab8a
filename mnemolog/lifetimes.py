"""Lifetimes, decay and access telemetry.

A memory may carry an end of life (``put(ttl=)`` or ``put(expires_at=)``).
Reads compare it with the clock, so an expired memory disappears from every
read and search at the moment it expires; the sweeper (``store.sweep()``)
later records an ``Expired`` event for it, so the log says when it went.

Importance decays, when configured: the effective importance of a memory is
its importance halved every half-life of its type, counted from its last
update or its last read, whichever is later. Reads are telemetry, not
history: they are buffered in memory and written in batches to a side table
beside the read models (``memory_access``), never as events.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    MetaData,
    String,
    Table,
)
from sqlalchemy.dialects import postgresql, sqlite

from mnemolog.domain.errors import ValidationError
from mnemolog.inputs import aware
from mnemolog.projections.current_state import from_micros, to_micros
from mnemolog.projections.sql import compile_sql

MAX_TTL = timedelta(days=365 * 1000)

metadata_obj = MetaData()

memory_access = Table(
    "memory_access",
    metadata_obj,
    Column("memory_id", String(32), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("accessed_at", BigInteger, nullable=False),
    Index("ix_memory_access_tenant", "tenant", "accessed_at"),
)

TABLES = (memory_access,)


def check_lifetime(ttl: object, expires_at: object, *, unset: object) -> Any:
    """The ``expires_at`` to store (ISO 8601 text, or None: never), or
    ``unset`` when the caller gave neither."""
    if ttl is not unset and expires_at is not unset:
        raise ValidationError("ttl", "give ttl or expires_at, not both")
    if ttl is not unset:
        if ttl is None:
            return None
        return (datetime.now(UTC) + check_ttl(ttl, "ttl")).isoformat()
    if expires_at is not unset:
        if expires_at is None:
            return None
        moment = aware(expires_at, "expires_at")
        try:
            return moment.astimezone(UTC).isoformat()
        except OverflowError:
            raise ValidationError("expires_at", "is out of range") from None
    return unset


def check_ttl(ttl: object, field: str) -> timedelta:
    """A positive duration: a timedelta, or seconds as an int or float."""
    if isinstance(ttl, bool) or not isinstance(ttl, int | float | timedelta):
        raise ValidationError(field, "must be a timedelta or a number of seconds")
    if isinstance(ttl, timedelta):
        duration = ttl
    else:
        if not math.isfinite(ttl) or ttl <= 0 or ttl > MAX_TTL.total_seconds():
            raise ValidationError(
                field, "must be a number of seconds > 0 and at most 1000 years"
            )
        duration = timedelta(seconds=ttl)
    if duration <= timedelta(0) or duration > MAX_TTL:
        raise ValidationError(field, "must be > 0 and at most 1000 years")
    return duration


def check_half_lives(half_lives: object) -> dict[str, float]:
    """Memory type (or ``*`` for every other type) to half-life in seconds."""
    if not isinstance(half_lives, Mapping):
        raise ValidationError("decay_half_lives", "must map memory types to half-lives")
    checked: dict[str, float] = {}
    for name, value in half_lives.items():
        if not isinstance(name, str) or not name:
            raise ValidationError("decay_half_lives", "keys must be memory types")
        checked[name] = check_ttl(value, f"decay_half_lives.{name}").total_seconds()
    return checked


def decayed(
    importance: float,
    memory_type: str,
    touched: datetime,
    half_lives: Mapping[str, float],
    at: datetime,
) -> float:
    """``importance`` halved every half-life of ``memory_type`` since
    ``touched``; unchanged when the type has no half-life."""
    half_life = half_lives.get(memory_type, half_lives.get("*"))
    if half_life is None:
        return importance
    age = max((at - touched).total_seconds(), 0.0)
    return float(importance * 0.5 ** (age / half_life))


class AccessLog:
    """Last read times, buffered and written in batches (an upsert per
    memory keeps the latest); what decay counts from besides updates."""

    def __init__(
        self, recorder: Any, *, batch_size: int = 256, interval: float = 5.0
    ) -> None:
        self._recorder = recorder
        self._batch_size = batch_size
        self._interval = interval
        self._pending: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        dialect = recorder.sql_dialect
        upsert: Any = (postgresql if dialect.name == "postgresql" else sqlite).insert(
            memory_access
        )
        greater = upsert.excluded.accessed_at > memory_access.c.accessed_at
        self._upsert = compile_sql(
            upsert.on_conflict_do_update(
                index_elements=[memory_access.c.memory_id],
                set_={"accessed_at": upsert.excluded.accessed_at},
                where=greater,
            ),
            dialect,
        )

    def record(self, tenant: str, memory_ids: list[str]) -> None:
        """Notes reads of these memories now; flushes a full or old batch."""
        now = to_micros(datetime.now(UTC))
        with self._lock:
            for memory_id in memory_ids:
                self._pending[memory_id] = (tenant, now)
            due = (
                len(self._pending) >= self._batch_size
                or time.monotonic() - self._last_flush >= self._interval
            )
        if due:
            self.flush()

    def flush(self) -> int:
        """Writes the buffered reads; returns how many rows it wrote."""
        with self._lock:
            pending, self._pending = self._pending, {}
            self._last_flush = time.monotonic()
        if not pending:
            return 0
        rows = [
            {"memory_id": memory_id, "tenant": tenant, "accessed_at": at}
            for memory_id, (tenant, at) in pending.items()
        ]
        with self._recorder.projection_transaction() as cursor:
            cursor.executemany(self._upsert, rows)
        return len(rows)

    def last_access_many(self, memory_ids: list[str]) -> dict[str, datetime]:
        """The latest read of each of these memories that was ever read."""
        found: dict[str, datetime] = {}
        with self._lock:
            for memory_id in memory_ids:
                pending = self._pending.get(memory_id)
                if pending is not None:
                    found[memory_id] = from_micros(pending[1])
        rest = [m for m in memory_ids if m not in found]
        for start in range(0, len(rest), 500):
            chunk = rest[start : start + 500]
            marks = ", ".join(["?"] * len(chunk))
            sql = (
                "SELECT memory_id, accessed_at FROM memory_access "
                f"WHERE memory_id IN ({marks})"
            )
            for memory_id, at in self._recorder.fetch_all(sql, chunk):
                found[memory_id] = from_micros(at)
        return found
