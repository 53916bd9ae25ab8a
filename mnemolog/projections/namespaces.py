"""The namespaces read model: every namespace and ancestor, with live counts.

A memory in ``user:alice:prefs`` counts under ``user:alice:prefs``,
``user:alice`` and ``user``; prefixes match whole segments.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    delete,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from mnemolog.domain.erasure import Erasure
from mnemolog.domain.memory import Memory
from mnemolog.projections.base import Projection, handles
from mnemolog.projections.current_state import namespace_path
from mnemolog.projections.sql import DbCursor, compile_sql

metadata_obj = MetaData()

namespace_members = Table(
    "namespace_members",
    metadata_obj,
    Column("memory_id", String(32), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("namespace", String(512), nullable=False),
    Column("live", Boolean, nullable=False),
)

namespaces = Table(
    "namespaces",
    metadata_obj,
    Column("tenant", String(64), primary_key=True),
    Column("namespace", String(512), primary_key=True),
    Column("ns_path", String(513), nullable=False),
    Column("depth", Integer, nullable=False),
    Column("live_count", BigInteger, nullable=False),
    Index("ix_namespaces_path", "tenant", "ns_path"),
)


def ancestors(namespace: str) -> list[str]:
    """The namespace and every prefix of it on whole segments, root first."""
    segments = namespace.split(":")
    return [":".join(segments[:depth]) for depth in range(1, len(segments) + 1)]


class NamespacesProjection(Projection):
    """Counts live memories under every namespace and its ancestors."""

    name = "namespaces"
    tables = (namespace_members, namespaces)

    def __init__(self, dialect: Dialect, *, suffix: str = "") -> None:
        super().__init__(dialect, suffix=suffix)
        members = self.table("namespace_members")
        counts = self.table("namespaces")
        self._insert_member = compile_sql(insert(members), dialect)
        self._select_member = compile_sql(
            select(members.c.tenant, members.c.namespace, members.c.live).where(
                members.c.memory_id == bindparam("b_id")
            ),
            dialect,
        )
        self._set_live = compile_sql(
            update(members)
            .where(members.c.memory_id == bindparam("b_id"))
            .values(live=bindparam("live")),
            dialect,
        )
        self._any_member = (
            compile_sql(
                select(literal_column("1")).where(
                    members.c.tenant == bindparam("tenant"),
                    or_(
                        members.c.namespace == bindparam("ns"),
                        and_(
                            members.c.namespace >= bindparam("low"),
                            members.c.namespace < bindparam("high"),
                        ),
                    ),
                ),
                dialect,
            )
            + " LIMIT 1"
        )
        self._drop_namespace = compile_sql(
            delete(counts).where(
                counts.c.tenant == bindparam("tenant"),
                counts.c.namespace == bindparam("ns"),
            ),
            dialect,
        )
        upsert: Any = (postgresql if dialect.name == "postgresql" else sqlite).insert(
            counts
        )
        self._add = compile_sql(
            upsert.on_conflict_do_update(
                index_elements=[counts.c.tenant, counts.c.namespace],
                set_={"live_count": counts.c.live_count + upsert.excluded.live_count},
            ),
            dialect,
        )

    @handles(Erasure.Erased)
    def _erased(self, cursor: DbCursor, event: Erasure.Erased, position: int) -> None:
        """Erased members leave their counts, and a namespace left with no
        member under it goes, as if the erased memories had never been."""
        touched: set[tuple[str, str]] = set()
        for memory_id in event.streams:
            cursor.execute(self._select_member, {"b_id": memory_id})
            row = cursor.fetchone()
            if row is None:
                continue
            tenant, namespace, live = row
            if live:
                self._count(cursor, tenant, namespace, -1)
            touched.update((tenant, prefix) for prefix in ancestors(namespace))
        self.purge(cursor, "memory_id", event.streams)
        for tenant, prefix in sorted(touched):
            cursor.execute(
                self._any_member,
                {
                    "tenant": tenant,
                    "ns": prefix,
                    "low": prefix + ":",
                    "high": prefix + ";",
                },
            )
            if cursor.fetchone() is None:
                cursor.execute(self._drop_namespace, {"tenant": tenant, "ns": prefix})

    @handles(Memory.Created, Memory.Recreated)
    def _created(self, cursor: DbCursor, event: Memory.Created, position: int) -> None:
        cursor.execute(
            self._insert_member,
            {
                "memory_id": event.originator_id.hex,
                "tenant": event.tenant,
                "namespace": event.namespace,
                "live": True,
            },
        )
        self._count(cursor, event.tenant, event.namespace, +1)

    @handles(Memory.Deleted, Memory.Restored)
    def _liveness(self, cursor: DbCursor, event: Memory.Event, position: int) -> None:
        live = isinstance(event, Memory.Restored)
        cursor.execute(self._select_member, {"b_id": event.originator_id.hex})
        tenant, namespace, was_live = cursor.fetchone()
        if bool(was_live) == live:
            return
        cursor.execute(self._set_live, {"b_id": event.originator_id.hex, "live": live})
        self._count(cursor, tenant, namespace, +1 if live else -1)

    def _count(self, cursor: DbCursor, tenant: str, namespace: str, delta: int) -> None:
        cursor.executemany(
            self._add,
            [
                {
                    "tenant": tenant,
                    "namespace": prefix,
                    "ns_path": namespace_path(prefix),
                    "depth": prefix.count(":") + 1,
                    "live_count": delta,
                }
                for prefix in ancestors(namespace)
            ],
        )


@dataclass(frozen=True)
class NamespaceQuery:
    """Checked arguments of list_namespaces."""

    tenant: str
    prefix: str | None = None
    max_depth: int | None = None
    limit: int = 100
    offset: int = 0


def list_namespaces_sql(
    query: NamespaceQuery, dialect: Dialect
) -> tuple[str, dict[str, Any]]:
    """SQL and parameters listing namespaces with live memories, in name order."""
    params: dict[str, Any] = {
        "tenant": query.tenant,
        "limit": query.limit,
        "offset": query.offset,
    }
    if query.prefix is not None:
        low = namespace_path(query.prefix)
        params["low"], params["high"] = low, low[:-1] + ";"  # ';' follows ':'
    if query.max_depth is not None:
        params["max_depth"] = query.max_depth
    sql = _list_sql(query.prefix is not None, query.max_depth is not None, dialect)
    return sql, params


@lru_cache(maxsize=16)
def _list_sql(by_prefix: bool, by_depth: bool, dialect: Dialect) -> str:
    n = namespaces
    conditions = [
        n.c.tenant == bindparam("tenant"),
        n.c.live_count > literal_column("0"),
    ]
    if by_prefix:
        conditions += [n.c.ns_path >= bindparam("low"), n.c.ns_path < bindparam("high")]
    if by_depth:
        conditions.append(n.c.depth <= bindparam("max_depth"))
    statement = (
        select(n.c.namespace, n.c.depth, n.c.live_count)
        .where(and_(*conditions))
        .order_by(n.c.ns_path)
        .limit(bindparam("limit", type_=BigInteger))
        .offset(bindparam("offset", type_=BigInteger))
    )
    return compile_sql(statement, dialect)
