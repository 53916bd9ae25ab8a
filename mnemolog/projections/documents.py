"""The document index read model: one row per live document, for reads by
path, listing by sync status and type, and lookups by content hash.

The seed's five indexes, per tenant: the path (unique), the type, the sync
status, the content hash, and the update time. On PostgreSQL the path is
indexed by its MD5 (a B-tree entry holds at most about 2.7 kB, a path up to
4096 characters); the primary key, derived from tenant and path, is unique
on every backend anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Dialect

from mnemolog.domain.document import Document
from mnemolog.domain.erasure import Erasure
from mnemolog.projections.base import Projection, handles
from mnemolog.projections.current_state import dumps, to_micros
from mnemolog.projections.sql import DbCursor, compile_sql

if TYPE_CHECKING:
    from mnemolog.adapters.cipher import ColumnCipher

metadata_obj = MetaData()

documents = Table(
    "documents",
    metadata_obj,
    Column("id", String(32), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("file_path", String(4096), nullable=False),
    Column("title", Text, nullable=False),
    Column("document_type", String(128)),
    Column("content_hash", String(128), nullable=False),
    Column("chunk_count", BigInteger, nullable=False),
    Column("embedding_model", String(256)),
    Column("metadata", Text, nullable=False),
    Column("sync_status", String(8), nullable=False),
    Column("last_synced_at", BigInteger),
    Column("error", Text),
    Column("version", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("head_hash", String(64), nullable=False),
    Index(
        "uq_documents_path",
        "tenant",
        "file_path",
        unique=True,
        info={"dialects": ("sqlite",)},
    ),
    Index(
        "uq_documents_path_pg",
        "tenant",
        func.md5(literal_column("file_path")),
        unique=True,
        info={"dialects": ("postgresql",)},
    ),
    Index("ix_documents_type", "tenant", "document_type", "updated_at"),
    Index("ix_documents_status", "tenant", "sync_status", "updated_at"),
    Index("ix_documents_hash", "tenant", "content_hash"),
    Index("ix_documents_updated", "tenant", "updated_at"),
)

DOCUMENT_COLUMNS = (
    "id",
    "tenant",
    "file_path",
    "title",
    "document_type",
    "content_hash",
    "chunk_count",
    "embedding_model",
    "metadata",
    "sync_status",
    "last_synced_at",
    "error",
    "version",
    "created_at",
    "updated_at",
)
"""The columns a read returns, in this order."""

SEALED_COLUMNS = frozenset({"title", "metadata", "error"})
"""Columns held as ciphertext in a store encrypted at rest."""


def _as_is(text: str) -> str:
    return text


class DocumentsProjection(Projection):
    """Keeps one row per live document current."""

    name = "documents"
    tables = (documents,)

    def __init__(
        self, dialect: Dialect, *, suffix: str = "", columns: ColumnCipher | None = None
    ) -> None:
        super().__init__(dialect, suffix=suffix, columns=columns)
        self._seal = columns.seal if columns is not None else _as_is
        table = self._table = self.table("documents")
        self._insert = compile_sql(insert(table), dialect)
        self._delete = compile_sql(
            delete(table).where(table.c.id == bindparam("b_id")), dialect
        )

    @cache  # noqa: B019 - one entry per combination of changed columns, per instance
    def _update(self, names: tuple[str, ...]) -> str:
        table = self._table
        return compile_sql(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values({name: bindparam(name) for name in names}),
            self.dialect,
        )

    def _set(self, cursor: DbCursor, event: Document.Event, **values: Any) -> None:
        """Updates the row with ``values`` and the event's version, time and hash."""
        row = {
            **{name: self._seal_text(name, value) for name, value in values.items()},
            "version": event.originator_version,
            "updated_at": to_micros(event.timestamp),
            "head_hash": event.digest(),
        }
        cursor.execute(
            self._update(tuple(sorted(row))), {"b_id": event.originator_id.hex, **row}
        )

    def _seal_text(self, name: str, value: Any) -> Any:
        if name == "metadata":
            return self._seal(dumps(value))
        if name in SEALED_COLUMNS and value is not None:
            return self._seal(value)
        return value

    @handles(Erasure.Erased)
    def _erased(self, cursor: DbCursor, event: Erasure.Erased, position: int) -> None:
        self.purge(cursor, "id", event.streams)

    @handles(Document.Registered, Document.Reregistered)
    def _registered(
        self, cursor: DbCursor, event: Document.Registered, position: int
    ) -> None:
        at = to_micros(event.timestamp)
        document_id = event.originator_id.hex
        cursor.execute(self._delete, {"b_id": document_id})  # a removed one's
        cursor.execute(
            self._insert,
            {
                "id": document_id,
                "tenant": event.tenant,
                "file_path": event.file_path,
                "title": self._seal(event.title),
                "document_type": event.document_type,
                "content_hash": event.content_hash,
                "chunk_count": event.chunk_count,
                "embedding_model": event.embedding_model,
                "metadata": self._seal(dumps(event.metadata)),
                "sync_status": "pending",
                "last_synced_at": None,
                "error": None,
                "version": event.originator_version,
                "created_at": at,
                "updated_at": at,
                "head_hash": event.digest(),
            },
        )

    @handles(Document.Revised)
    def _revised(
        self, cursor: DbCursor, event: Document.Revised, position: int
    ) -> None:
        values = dict(event.changes)
        values["sync_status"] = event.sync_status
        if event.sync_status != "failed":
            values["error"] = None
        self._set(cursor, event, **values)

    @handles(Document.Synced)
    def _synced(self, cursor: DbCursor, event: Document.Synced, position: int) -> None:
        self._set(
            cursor,
            event,
            sync_status="synced",
            error=None,
            chunk_count=event.chunk_count,
            embedding_model=event.embedding_model,
            last_synced_at=to_micros(event.timestamp),
        )

    @handles(Document.SyncFailed)
    def _failed(
        self, cursor: DbCursor, event: Document.SyncFailed, position: int
    ) -> None:
        self._set(cursor, event, sync_status="failed", error=event.error)

    @handles(Document.MarkedStale)
    def _stale(
        self, cursor: DbCursor, event: Document.MarkedStale, position: int
    ) -> None:
        self._set(cursor, event, sync_status="stale", error=None)

    @handles(Document.Removed)
    def _removed(
        self, cursor: DbCursor, event: Document.Removed, position: int
    ) -> None:
        cursor.execute(self._delete, {"b_id": event.originator_id.hex})


# ---- queries ---------------------------------------------------------------


@dataclass(frozen=True)
class DocumentQuery:
    """Checked filters of a page of documents, newest update first."""

    tenant: str
    sync_status: str | None = None
    document_type: str | None = None
    content_hash: str | None = None
    after: tuple[int, str] | None = None
    """The (updated_at, id) of the last row of the previous page."""
    limit: int = 100


def get_document_sql(dialect: Dialect) -> str:
    """SQL for one document by id (its tenant's): parameters ``b_id``, ``tenant``."""
    return _get_sql(dialect)


@lru_cache(maxsize=4)
def _get_sql(dialect: Dialect) -> str:
    d = documents
    return compile_sql(
        select(*(d.c[name] for name in DOCUMENT_COLUMNS)).where(
            and_(d.c.id == bindparam("b_id"), d.c.tenant == bindparam("tenant"))
        ),
        dialect,
    )


def list_documents_sql(
    query: DocumentQuery, dialect: Dialect
) -> tuple[str, dict[str, Any]]:
    """SQL and parameters for a page of documents, newest update first (ties
    by id), after the previous page's last row."""
    params: dict[str, Any] = {
        "tenant": query.tenant,
        "limit": query.limit,
        "offset": 0,
    }
    present = []
    for name in ("sync_status", "document_type", "content_hash"):
        value = getattr(query, name)
        if value is not None:
            params[name] = value
            present.append(name)
    if query.after is not None:
        params["after_at"], params["after_id"] = query.after
    return _list_sql(tuple(present), query.after is not None, dialect), params


@lru_cache(maxsize=32)
def _list_sql(present: tuple[str, ...], paged: bool, dialect: Dialect) -> str:
    d = documents
    conditions = [d.c.tenant == bindparam("tenant")]
    conditions += [d.c[name] == bindparam(name) for name in present]
    if paged:
        after_at = bindparam("after_at", type_=BigInteger)
        conditions.append(
            or_(
                d.c.updated_at < after_at,
                and_(d.c.updated_at == after_at, d.c.id > bindparam("after_id")),
            )
        )
    statement = (
        select(*(d.c[name] for name in DOCUMENT_COLUMNS))
        .where(and_(*conditions))
        .order_by(d.c.updated_at.desc(), d.c.id)
        .limit(bindparam("limit", type_=BigInteger))
        .offset(bindparam("offset", type_=BigInteger))  # SQLite wants one with LIMIT
    )
    return compile_sql(statement, dialect)
