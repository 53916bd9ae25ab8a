"""The sessions read model: one row per session, for listing by app, user,
project and status, with the last update time and the event count."""

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
    delete,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.engine import Dialect

from mnemolog.domain.erasure import Erasure
from mnemolog.domain.session import Session
from mnemolog.projections.base import Projection, handles
from mnemolog.projections.current_state import to_micros
from mnemolog.projections.sql import DbCursor, compile_sql

metadata_obj = MetaData()

sessions = Table(
    "sessions",
    metadata_obj,
    Column("id", String(32), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("session_id", String(256), nullable=False),
    Column("app_name", String(128), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("project_id", String(128)),
    Column("status", String(16), nullable=False),
    Column("event_count", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("uq_sessions_id", "tenant", "session_id", unique=True),
    Index("ix_sessions_user", "tenant", "user_id", "status", "updated_at"),
    Index("ix_sessions_app", "tenant", "app_name", "user_id", "updated_at"),
    Index("ix_sessions_status", "tenant", "status", "updated_at"),
    Index("ix_sessions_project", "tenant", "project_id", "updated_at"),
)

SESSION_COLUMNS = (
    "session_id",
    "app_name",
    "user_id",
    "project_id",
    "status",
    "event_count",
    "created_at",
    "updated_at",
)


class SessionsProjection(Projection):
    """Keeps one row per session current."""

    name = "sessions"
    tables = (sessions,)

    def __init__(self, dialect: Dialect, *, suffix: str = "") -> None:
        super().__init__(dialect, suffix=suffix)
        table = self.table("sessions")
        self._insert = compile_sql(insert(table), dialect)
        where = table.c.id == bindparam("b_id")
        self._appended = compile_sql(
            update(table)
            .where(where)
            .values(
                event_count=table.c.event_count + literal_column("1"),
                updated_at=bindparam("updated_at"),
                status=bindparam("status"),
            ),
            dialect,
        )
        self._status = compile_sql(
            update(table)
            .where(where)
            .values(status=bindparam("status"), updated_at=bindparam("updated_at")),
            dialect,
        )
        self._touched = compile_sql(
            update(table).where(where).values(updated_at=bindparam("updated_at")),
            dialect,
        )
        self._current_status = compile_sql(select(table.c.status).where(where), dialect)
        self._delete = compile_sql(delete(table).where(where), dialect)

    @handles(Erasure.Erased)
    def _erased(self, cursor: DbCursor, event: Erasure.Erased, position: int) -> None:
        self.purge(cursor, "id", event.streams)

    @handles(Session.Created)
    def _created(self, cursor: DbCursor, event: Session.Created, position: int) -> None:
        at = to_micros(event.timestamp)
        cursor.execute(
            self._insert,
            {
                "id": event.originator_id.hex,
                "tenant": event.tenant,
                "session_id": event.session_id,
                "app_name": event.app_name,
                "user_id": event.user_id,
                "project_id": event.project_id,
                "status": "created",
                "event_count": 0,
                "created_at": at,
                "updated_at": at,
            },
        )

    @handles(Session.EventAppended)
    def _appended_event(
        self, cursor: DbCursor, event: Session.EventAppended, position: int
    ) -> None:
        cursor.execute(self._current_status, {"b_id": event.originator_id.hex})
        status = cursor.fetchone()[0]
        cursor.execute(
            self._appended,
            {
                "b_id": event.originator_id.hex,
                "updated_at": to_micros(event.timestamp),
                "status": "active" if status == "created" else status,
            },
        )

    @handles(Session.StatusChanged)
    def _status_changed(
        self, cursor: DbCursor, event: Session.StatusChanged, position: int
    ) -> None:
        cursor.execute(
            self._status,
            {
                "b_id": event.originator_id.hex,
                "status": event.status,
                "updated_at": to_micros(event.timestamp),
            },
        )

    @handles(Session.Deleted)
    def _deleted(self, cursor: DbCursor, event: Session.Deleted, position: int) -> None:
        cursor.execute(self._delete, {"b_id": event.originator_id.hex})

    @handles(Session.Rewound)
    def _rewound(self, cursor: DbCursor, event: Session.Rewound, position: int) -> None:
        cursor.execute(
            self._touched,
            {"b_id": event.originator_id.hex, "updated_at": to_micros(event.timestamp)},
        )


@dataclass(frozen=True)
class SessionQuery:
    """Checked filters of list_sessions."""

    tenant: str
    app_name: str | None = None
    user_id: str | None = None
    status: str | None = None
    limit: int = 50
    offset: int = 0


def list_sessions_sql(
    query: SessionQuery, dialect: Dialect
) -> tuple[str, dict[str, Any]]:
    """SQL and parameters for a page of sessions, most recently updated first."""
    params: dict[str, Any] = {
        "tenant": query.tenant,
        "limit": query.limit,
        "offset": query.offset,
    }
    present = []
    for name in ("app_name", "user_id", "status"):
        value = getattr(query, name)
        if value is not None:
            params[name] = value
            present.append(name)
    return _list_sql(tuple(present), dialect), params


@lru_cache(maxsize=16)
def _list_sql(present: tuple[str, ...], dialect: Dialect) -> str:
    s = sessions
    conditions = [s.c.tenant == bindparam("tenant")]
    conditions += [s.c[name] == bindparam(name) for name in present]
    statement = (
        select(*(s.c[name] for name in SESSION_COLUMNS))
        .where(and_(*conditions))
        .order_by(s.c.updated_at.desc(), s.c.id)
        .limit(bindparam("limit", type_=BigInteger))
        .offset(bindparam("offset", type_=BigInteger))
    )
    return compile_sql(statement, dialect)
