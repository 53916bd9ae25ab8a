"""The audit read model: one row per event, for the timeline of who did what."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    insert,
    literal_column,
    select,
)
from sqlalchemy.engine import Dialect

from mnemolog.domain.erasure import Erasure
from mnemolog.domain.memory import Memory
from mnemolog.projections.base import Projection, handles
from mnemolog.projections.current_state import namespace_path, to_micros
from mnemolog.projections.sql import DbCursor, compile_sql

metadata_obj = MetaData()

audit_log = Table(
    "audit_log",
    metadata_obj,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("at", BigInteger, nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("actor", String(256)),
    Column("task_id", String(256)),
    Column("source", String(256)),
    Column("reason", String(4096)),
    Column("kind", String(16), nullable=False),
    Column("memory_id", String(32), nullable=False),
    Column("namespace", String(512), nullable=False),
    Column("ns_path", String(513), nullable=False),
    Column("key", String(1024), nullable=False),
    Column("version", Integer, nullable=False),
    Index("ix_audit_tenant", "tenant", "position"),
    Index("ix_audit_at", "tenant", "at"),
    Index("ix_audit_actor", "tenant", "actor", "position"),
    Index("ix_audit_ns", "tenant", "ns_path", "position"),
    Index("ix_audit_kind", "tenant", "kind", "position"),
    Index("ix_audit_memory", "memory_id", "version"),
)

AUDIT_COLUMNS = (
    "position",
    "at",
    "tenant",
    "actor",
    "task_id",
    "source",
    "reason",
    "kind",
    "namespace",
    "key",
    "version",
)


class AuditProjection(Projection):
    """Appends one row per Memory event."""

    name = "audit"
    tables = (audit_log,)

    def __init__(self, dialect: Dialect, *, suffix: str = "") -> None:
        super().__init__(dialect, suffix=suffix)
        log = self.table("audit_log")
        self._insert = compile_sql(insert(log), dialect)
        # Later events name only their stream; its newest row says where it lives.
        self._address = (
            compile_sql(
                select(log.c.tenant, log.c.namespace, log.c.key)
                .where(log.c.memory_id == bindparam("b_id"))
                .order_by(log.c.version.desc()),
                dialect,
            )
            + " LIMIT 1"
        )

    @handles(Erasure.Erased)
    def _erased(self, cursor: DbCursor, event: Erasure.Erased, position: int) -> None:
        """The erased streams' rows go; one row records the erasure itself
        (who, when, why, how many streams), with no personal data."""
        self.purge(cursor, "memory_id", event.streams)
        cursor.execute(
            self._insert,
            {
                "position": position,
                "at": to_micros(event.timestamp),
                "tenant": event.tenant,
                "actor": event.actor,
                "task_id": None,
                "source": f"{event.scope}: {len(event.streams)} streams",
                "reason": event.reason,
                "kind": event.kind,
                "memory_id": event.originator_id.hex,
                "namespace": "",
                "ns_path": "",
                "key": "",
                "version": event.originator_version,
            },
        )

    @handles(Memory.Redacted)
    def _redacted(self, cursor: DbCursor, event: Memory.Event, position: int) -> None:
        """An erased event leaves no row."""

    @handles(Memory.Event)
    def _any(self, cursor: DbCursor, event: Memory.Event, position: int) -> None:
        if isinstance(event, Memory.Created | Memory.Recreated):
            tenant, namespace, key = event.tenant, event.namespace, event.key
        else:
            cursor.execute(self._address, {"b_id": event.originator_id.hex})
            tenant, namespace, key = cursor.fetchone()
        cursor.execute(
            self._insert,
            {
                "position": position,
                "at": to_micros(event.timestamp),
                "tenant": tenant,
                "actor": event.actor,
                "task_id": event.task_id,
                "source": event.source,
                "reason": event.reason,
                "kind": event.kind,
                "memory_id": event.originator_id.hex,
                "namespace": namespace,
                "ns_path": namespace_path(namespace),
                "key": key,
                "version": event.originator_version,
            },
        )


@dataclass(frozen=True)
class AuditQuery:
    """Checked filters of the audit timeline."""

    tenant: str
    actor: str | None = None
    namespace_prefix: str | None = None
    key: str | None = None
    kind: str | None = None
    since: int | None = None
    until: int | None = None
    after_position: int | None = None
    limit: int = 100
    descending: bool = False


def audit_sql(query: AuditQuery, dialect: Dialect) -> tuple[str, dict[str, Any]]:
    """SQL and parameters for a page of the timeline, in log order."""
    params: dict[str, Any] = {"tenant": query.tenant, "limit": query.limit}
    present = []
    for name in ("actor", "key", "kind", "since", "until", "after_position"):
        value = getattr(query, name)
        if value is not None:
            params[name] = value
            present.append(name)
    if query.namespace_prefix is not None:
        low = namespace_path(query.namespace_prefix)
        params["low"], params["high"] = low, low[:-1] + ";"  # ';' follows ':'
        present.append("prefix")
    return _audit_sql(tuple(present), query.descending, dialect), params


@lru_cache(maxsize=256)
def _audit_sql(present: tuple[str, ...], descending: bool, dialect: Dialect) -> str:
    a = audit_log
    conditions = [a.c.tenant == bindparam("tenant")]
    for name in present:
        if name == "prefix":
            conditions.append(a.c.ns_path >= bindparam("low"))
            conditions.append(a.c.ns_path < bindparam("high"))
        elif name == "since":
            conditions.append(a.c.at >= bindparam("since"))
        elif name == "until":
            conditions.append(a.c.at < bindparam("until"))
        elif name == "after_position":
            column = a.c.position
            after: Any = bindparam("after_position")
            conditions.append(column < after if descending else column > after)
        else:
            conditions.append(a.c[name] == bindparam(name))
    order = a.c.position.desc() if descending else a.c.position.asc()
    statement = (
        select(*(a.c[name] for name in AUDIT_COLUMNS))
        .where(and_(*conditions))
        .order_by(order)
        .limit(bindparam("limit", type_=BigInteger))
        .offset(literal_column("0"))  # SQLite's LIMIT clause wants an OFFSET
    )
    return compile_sql(statement, dialect)
