"""Quotas per tenant: live memories, bytes of their values, embeddings.

With quotas configured, the ``usage`` projection keeps each tenant's totals,
and a write that would take a total past its limit fails with QuotaExceeded in
the transaction that records it, so nothing is written. A write that lowers a
total, or leaves it as it was, always passes (quotas can be lowered below what
a tenant holds; it then only shrinks). With projection workers
(``inline_projections=False``) the check runs before the write, on totals that
may lag by the workers' delay.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from mnemolog.domain.erasure import Erasure
from mnemolog.domain.errors import QuotaExceeded
from mnemolog.domain.memory import Memory
from mnemolog.projections.base import Projection, handles
from mnemolog.projections.current_state import dumps
from mnemolog.projections.sql import DbCursor, compile_sql

COUNTERS = ("memories", "value_bytes", "embeddings")


class Limits(BaseModel):
    """Limits of one tenant; None is no limit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_memories: int | None = Field(default=None, ge=0, strict=True)
    max_value_bytes: int | None = Field(default=None, ge=0, strict=True)
    max_embeddings: int | None = Field(default=None, ge=0, strict=True)


class Quotas(Limits):
    """Limits for every tenant, and other limits for some by name."""

    per_tenant: Mapping[str, Limits] = Field(default_factory=dict)

    def for_tenant(self, tenant: str) -> Limits:
        """The limits that apply to a tenant."""
        return self.per_tenant.get(tenant, self)

    def check(
        self, tenant: str, before: Mapping[str, int], after: Mapping[str, int]
    ) -> None:
        """Raises QuotaExceeded when a total grew past its limit."""
        limits = self.for_tenant(tenant)
        for name in COUNTERS:
            limit = getattr(limits, f"max_{name}")
            if limit is not None and after[name] > before[name] and after[name] > limit:
                raise QuotaExceeded(tenant, name, limit, after[name])


metadata_obj = MetaData()

memory_usage = Table(
    "memory_usage",
    metadata_obj,
    Column("memory_id", String(32), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("value_bytes", BigInteger, nullable=False),
    Column("embedded", Boolean, nullable=False),
    Column("live", Boolean, nullable=False),
)

tenant_usage = Table(
    "tenant_usage",
    metadata_obj,
    Column("tenant", String(64), primary_key=True),
    Column("memories", BigInteger, nullable=False),
    Column("value_bytes", BigInteger, nullable=False),
    Column("embeddings", BigInteger, nullable=False),
)


class UsageProjection(Projection):
    """Each tenant's live memories, bytes of their values and embeddings."""

    name = "usage"
    tables = (memory_usage, tenant_usage)

    def __init__(
        self, dialect: Dialect, *, suffix: str = "", quotas: Quotas | None = None
    ) -> None:
        super().__init__(dialect, suffix=suffix, quotas=quotas)
        self.quotas = quotas
        self._enforcing = threading.local()
        members, totals = self.table("memory_usage"), self.table("tenant_usage")
        by_id = members.c.memory_id == bindparam("b_id")
        self._member = compile_sql(
            select(
                members.c.tenant,
                members.c.value_bytes,
                members.c.embedded,
                members.c.live,
            ).where(by_id),
            dialect,
        )
        self._insert_member = compile_sql(insert(members), dialect)
        self._update_member = compile_sql(
            update(members)
            .where(by_id)
            .values(
                value_bytes=bindparam("value_bytes"),
                embedded=bindparam("embedded"),
                live=bindparam("live"),
            ),
            dialect,
        )
        self._delete_member = compile_sql(delete(members).where(by_id), dialect)
        self._totals = compile_sql(
            select(totals.c.memories, totals.c.value_bytes, totals.c.embeddings).where(
                totals.c.tenant == bindparam("b_tenant")
            ),
            dialect,
        )
        upsert: Any = (postgresql if dialect.name == "postgresql" else sqlite).insert(
            totals
        )
        self._add = compile_sql(
            upsert.on_conflict_do_update(
                index_elements=[totals.c.tenant],
                set_={
                    name: totals.c[name] + upsert.excluded[name] for name in COUNTERS
                },
            ),
            dialect,
        )

    def enforce(self, on: bool) -> None:
        """Quotas are enforced only while a writer applies its own events
        (never in catch-up, rebuild or a worker: those events are logged)."""
        self._enforcing.on = on

    # ---- handlers ----------------------------------------------------------------

    @handles(Memory.Created, Memory.Recreated)
    def _created(self, cursor: DbCursor, event: Memory.Created, position: int) -> None:
        row = {
            "memory_id": event.originator_id.hex,
            "tenant": event.tenant,
            "value_bytes": _size(event.value),
            "embedded": event.embedding is not None,
            "live": True,
        }
        cursor.execute(self._insert_member, row)
        self._change(cursor, event.tenant, None, row)

    @handles(Memory.Updated)
    def _updated(self, cursor: DbCursor, event: Memory.Updated, position: int) -> None:
        changes = event.changes
        if "value" not in changes and "embedding" not in changes:
            return
        old = self._load(cursor, event.originator_id.hex)
        if old is None:
            return
        new = dict(old)
        if "value" in changes:
            new["value_bytes"] = _size(changes["value"])
        if "embedding" in changes:
            new["embedded"] = changes["embedding"] is not None
        self._save(cursor, event, old, new)

    @handles(Memory.Deleted, Memory.Restored)
    def _liveness(self, cursor: DbCursor, event: Memory.Event, position: int) -> None:
        old = self._load(cursor, event.originator_id.hex)
        if old is None:
            return
        self._save(
            cursor, event, old, {**old, "live": isinstance(event, Memory.Restored)}
        )

    @handles(Erasure.Erased)
    def _erased(self, cursor: DbCursor, event: Erasure.Erased, position: int) -> None:
        for memory_id in event.streams:
            old = self._load(cursor, memory_id)
            if old is not None:
                cursor.execute(self._delete_member, {"b_id": memory_id})
                self._change(cursor, str(old["tenant"]), old, None)

    # ---- internals -------------------------------------------------------------

    def _load(self, cursor: DbCursor, memory_id: str) -> dict[str, Any] | None:
        cursor.execute(self._member, {"b_id": memory_id})
        row = cursor.fetchone()
        if row is None:
            return None
        tenant, value_bytes, embedded, live = row
        return {
            "memory_id": memory_id,
            "tenant": tenant,
            "value_bytes": int(value_bytes),
            "embedded": bool(embedded),
            "live": bool(live),
        }

    def _save(
        self,
        cursor: DbCursor,
        event: Memory.Event,
        old: dict[str, Any],
        new: dict[str, Any],
    ) -> None:
        cursor.execute(
            self._update_member,
            {
                "b_id": event.originator_id.hex,
                "value_bytes": new["value_bytes"],
                "embedded": new["embedded"],
                "live": new["live"],
            },
        )
        self._change(cursor, str(old["tenant"]), old, new)

    def _change(
        self,
        cursor: DbCursor,
        tenant: str,
        old: Mapping[str, Any] | None,
        new: Mapping[str, Any] | None,
    ) -> None:
        delta = {name: _counted(new, name) - _counted(old, name) for name in COUNTERS}
        if not any(delta.values()):
            return
        enforcing = self.quotas is not None and getattr(self._enforcing, "on", False)
        before = self.totals(cursor, tenant) if enforcing else None
        cursor.execute(self._add, {"tenant": tenant, **delta})
        if before is not None and self.quotas is not None:
            after = {name: before[name] + delta[name] for name in COUNTERS}
            self.quotas.check(tenant, before, after)

    def totals(self, cursor: DbCursor, tenant: str) -> dict[str, int]:
        """A tenant's totals, as this transaction sees them."""
        cursor.execute(self._totals, {"b_tenant": tenant})
        row = cursor.fetchone()
        return (
            dict(zip(COUNTERS, (int(v) for v in row), strict=True))
            if row
            else {name: 0 for name in COUNTERS}
        )


def _size(value: Any) -> int:
    """Bytes of a value as the read model stores it (its JSON, in UTF-8)."""
    return len(dumps(value).encode("utf-8"))


def _counted(row: Mapping[str, Any] | None, name: str) -> int:
    if row is None or not row["live"]:
        return 0
    if name == "memories":
        return 1
    if name == "value_bytes":
        return int(row["value_bytes"])
    return 1 if row["embedded"] else 0
