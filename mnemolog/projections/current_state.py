"""The current-state read model: one row per memory, its tags, and its metadata.

Answers get by key, list and search with filters on namespace prefix, type,
tags, metadata and time. Every search path is served by an index; see
``tests/projections/test_query_plans.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    false,
    func,
    insert,
    literal_column,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ColumnElement, Select

from mnemolog.domain.erasure import Erasure

if TYPE_CHECKING:
    from mnemolog.adapters.cipher import ColumnCipher
from mnemolog.domain.memory import Memory
from mnemolog.domain.values import JSON, canonical_json
from mnemolog.projections.base import Projection, handles
from mnemolog.projections.sql import DbCursor, compile_sql

metadata_obj = MetaData()

memories = Table(
    "memories",
    metadata_obj,
    Column("id", String(32), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("namespace", String(512), nullable=False),
    # namespace + ':' so that a prefix on whole segments is one index range.
    Column("ns_path", String(513), nullable=False),
    Column("key", String(1024), nullable=False),
    Column("value", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("memory_type", String(64), nullable=False),
    Column("tags", Text, nullable=False),
    Column("metadata", Text, nullable=False),
    Column("importance", Float, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("created_by", String(256)),
    Column("updated_by", String(256)),
    Column("head_hash", String(64), nullable=False),
    Column("position", BigInteger, nullable=False),
    # Microseconds since the epoch; NULL: never. Added after the first release:
    # stores from before get it by ALTER TABLE on open (see added_columns).
    Column("expires_at", BigInteger),
    Index("uq_memories_key", "tenant", "namespace", "key", unique=True),
    Index("ix_memories_ns", "tenant", "ns_path", "updated_at"),
    Index("ix_memories_updated", "tenant", "updated_at"),
    Index("ix_memories_created", "tenant", "created_at"),
    Index("ix_memories_type", "tenant", "memory_type", "updated_at"),
    Index("ix_memories_importance", "tenant", "importance"),
    # What changed since a position: how the in-memory vector index follows.
    Index("ix_memories_position", "tenant", "position"),
    # What the sweeper looks for, and the lifetimes reads compare.
    Index("ix_memories_expires", "tenant", "expires_at"),
    info={"added_columns": ("expires_at",)},
)

memory_tags = Table(
    "memory_tags",
    metadata_obj,
    Column("tenant", String(64), primary_key=True),
    Column("tag", String(128), primary_key=True),
    Column("memory_id", String(32), primary_key=True),
    Index("ix_memory_tags_memory", "memory_id"),
)

# Metadata flattened to one row per path ("a", "a.b"), typed for comparisons.
memory_meta = Table(
    "memory_meta",
    metadata_obj,
    Column("memory_id", String(32), primary_key=True),
    Column("path", String(512), primary_key=True),
    Column("tenant", String(64), nullable=False),
    Column("vtype", String(8), nullable=False),
    # NUMERIC keeps integers exact (SQLite stores them as INTEGER, floats as
    # REAL, and compares the two by value), so 2**53 + 1 is not 2**53.
    Column("vnum", Numeric(asdecimal=False)),
    Column("vtext", Text),
    Index("ix_memory_meta_num", "tenant", "path", "vnum"),
    Index(
        "ix_memory_meta_text", "tenant", "path", "vtext", info={"dialects": ("sqlite",)}
    ),
    # A PostgreSQL B-tree entry holds at most about 2.7 kB: the first 256
    # characters are indexed, and the comparison on the whole text rechecks.
    Index(
        "ix_memory_meta_text_pg",
        "tenant",
        "path",
        func.substr(literal_column("vtext"), 1, 256),
        info={"dialects": ("postgresql",)},
    ),
)

TABLES = (memories, memory_tags, memory_meta)

ROW_COLUMNS = (
    "id",
    "tenant",
    "namespace",
    "key",
    "value",
    "content_hash",
    "memory_type",
    "tags",
    "metadata",
    "importance",
    "confidence",
    "deleted",
    "version",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
    "head_hash",
    "position",
    "expires_at",
)

ORDER_COLUMNS = {
    "updated_at": "updated_at",
    "created_at": "created_at",
    "importance": "importance",
    "key": "key",
    "namespace": "namespace",
}


def expiry_micros(expires_at: str | None) -> int | None:
    """An event's ``expires_at`` as stored in the read model."""
    return to_micros(datetime.fromisoformat(expires_at)) if expires_at else None


def now_micros() -> int:
    """The current time as stored in the read models."""
    return to_micros(datetime.now(UTC))


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch, the form times are stored in."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_micros(micros: int) -> datetime:
    """The inverse of :func:`to_micros`."""
    return EPOCH + timedelta(microseconds=micros)


def dumps(obj: JSON) -> str:
    """JSON text for a column."""
    return orjson.dumps(obj).decode("utf-8")


def namespace_path(namespace: str) -> str:
    """The indexed form of a namespace: the namespace and a final ':'."""
    return namespace + ":"


def flatten_metadata(
    metadata: Mapping[str, JSON], prefix: str = ""
) -> list[tuple[str, str, int | float | None, str | None]]:
    """(path, type, number, text) rows: every key; nested keys as ``a.b``.

    Metadata keys hold no dots (see ``values.check_metadata``), so paths are
    unique.
    """
    rows: list[tuple[str, str, int | float | None, str | None]] = []
    for name, value in metadata.items():
        path = prefix + name
        rows.append((path, *typed_cell(value)))
        if isinstance(value, dict):
            rows.extend(flatten_metadata(value, path + "."))
    return rows


def exact_number(number: float | None, dialect: Dialect) -> Any:
    """A number as the dialect compares it exactly with the NUMERIC column:
    PostgreSQL would turn NUMERIC into a float to compare it with a float
    (so 2**53 + 1 would equal 2.0**53), so floats go as their exact decimal."""
    if isinstance(number, float) and dialect.name == "postgresql":
        return Decimal(number)
    return number


def _as_is(text: str) -> str:
    return text


def exact_text(text: str | None, dialect: Dialect) -> str | None:
    """A caller's string as the dialect stores it for comparisons: PostgreSQL
    text cannot hold NUL, so on it NUL becomes \\x01\\x01 and \\x01 becomes
    \\x01\\x02 (one to one, and in the same byte order, so equality and
    ranges compare as they would on the original)."""
    if (
        text is None
        or dialect.name != "postgresql"
        or ("\x00" not in text and "\x01" not in text)
    ):
        return text
    return text.replace("\x01", "\x01\x02").replace("\x00", "\x01\x01")


def typed_cell(value: JSON) -> tuple[str, int | float | None, str | None]:
    """How one metadata value is stored for comparison."""
    if value is None:
        return ("null", None, None)
    if isinstance(value, bool):
        return ("bool", 1 if value else 0, None)
    if isinstance(value, int | float):
        return ("num", value, None)
    if isinstance(value, str):
        return ("str", None, value)
    return ("json", None, canonical_json(value).decode("utf-8"))


VECTOR_FIELDS = frozenset({"embedding", "embedding_model"})


class CurrentStateProjection(Projection):
    """Folds Memory events into the memories, memory_tags and memory_meta tables."""

    name = "current_state"
    tables = TABLES

    def __init__(
        self, dialect: Dialect, *, suffix: str = "", columns: ColumnCipher | None = None
    ) -> None:
        super().__init__(dialect, suffix=suffix, columns=columns)
        self._seal = columns.seal if columns is not None else _as_is
        rows, tags, meta = (self.table(t.name) for t in TABLES)
        self._rows = rows
        self._insert_row = compile_sql(insert(rows), dialect)
        self._set_deleted = compile_sql(
            update(rows)
            .where(rows.c.id == bindparam("b_id"))
            .values(
                deleted=bindparam("deleted"),
                version=bindparam("version"),
                updated_at=bindparam("updated_at"),
                updated_by=bindparam("updated_by"),
                head_hash=bindparam("head_hash"),
                position=bindparam("position"),
            ),
            dialect,
        )
        self._select_tenant = compile_sql(
            select(rows.c.tenant).where(rows.c.id == bindparam("b_id")), dialect
        )
        self._delete_tags = compile_sql(
            delete(tags).where(tags.c.memory_id == bindparam("b_id")), dialect
        )
        self._insert_tag = compile_sql(insert(tags), dialect)
        self._delete_meta = compile_sql(
            delete(meta).where(meta.c.memory_id == bindparam("b_id")), dialect
        )
        self._insert_meta = compile_sql(insert(meta), dialect)

    @cache  # noqa: B019 - one entry per combination of changed fields, per instance
    def _update_statement(self, names: tuple[str, ...]) -> str:
        values: dict[str, Any] = {name: bindparam(name) for name in names}
        rows = self._rows
        return compile_sql(
            update(rows).where(rows.c.id == bindparam("b_id")).values(**values),
            self.dialect,
        )

    @handles(Memory.Deleted, Memory.Restored)
    def _deleted_or_restored(
        self, cursor: DbCursor, event: Memory.Event, position: int
    ) -> None:
        cursor.execute(
            self._set_deleted,
            {
                "b_id": event.originator_id.hex,
                "deleted": isinstance(event, Memory.Deleted),
                **self._stamp(event, position),
            },
        )

    @staticmethod
    def _stamp(event: Memory.Event, position: int) -> dict[str, Any]:
        return {
            "version": event.originator_version,
            "updated_at": to_micros(event.timestamp),
            "updated_by": event.actor,
            "head_hash": event.digest(),
            "position": position,
        }

    @handles(Erasure.Erased)
    def _erased(self, cursor: DbCursor, event: Erasure.Erased, position: int) -> None:
        self.purge(cursor, "memory_id", event.streams)
        self.purge(cursor, "id", event.streams)

    @handles(Memory.Created, Memory.Recreated)
    def _created(self, cursor: DbCursor, event: Memory.Created, position: int) -> None:
        memory_id = event.originator_id.hex
        at = to_micros(event.timestamp)
        cursor.execute(
            self._insert_row,
            {
                "id": memory_id,
                "tenant": event.tenant,
                "namespace": event.namespace,
                "ns_path": namespace_path(event.namespace),
                "key": event.key,
                "value": self._seal(dumps(event.value)),
                "content_hash": event.content_hash,
                "memory_type": event.memory_type,
                "tags": dumps(event.tags),
                "metadata": self._seal(dumps(event.metadata)),
                "importance": event.importance,
                "confidence": event.confidence,
                "deleted": False,
                "version": event.originator_version,
                "created_at": at,
                "updated_at": at,
                "created_by": event.actor,
                "updated_by": event.actor,
                "head_hash": event.digest(),
                "position": position,
                "expires_at": expiry_micros(event.expires_at),
            },
        )
        self._write_tags(cursor, event.tenant, memory_id, event.tags)
        self._write_meta(cursor, event.tenant, memory_id, event.metadata)

    @handles(Memory.Updated)
    def _updated(self, cursor: DbCursor, event: Memory.Updated, position: int) -> None:
        memory_id = event.originator_id.hex
        values: dict[str, Any] = self._stamp(event, position)
        for name, new in event.changes.items():
            if name in VECTOR_FIELDS:  # the vectors projection's
                continue
            if name in ("value", "metadata"):
                values[name] = self._seal(dumps(new))
            elif name == "tags":
                values[name] = dumps(new)
            elif name == "expires_at":
                values[name] = expiry_micros(new)
            else:
                values[name] = new
        cursor.execute(
            self._update_statement(tuple(sorted(values))), {"b_id": memory_id, **values}
        )
        if "tags" in event.changes or "metadata" in event.changes:
            cursor.execute(self._select_tenant, {"b_id": memory_id})
            tenant = cursor.fetchone()[0]
            if "tags" in event.changes:
                cursor.execute(self._delete_tags, {"b_id": memory_id})
                self._write_tags(cursor, tenant, memory_id, event.changes["tags"])
            if "metadata" in event.changes:
                cursor.execute(self._delete_meta, {"b_id": memory_id})
                self._write_meta(cursor, tenant, memory_id, event.changes["metadata"])

    def _write_tags(
        self, cursor: DbCursor, tenant: str, memory_id: str, tags: Sequence[str]
    ) -> None:
        if tags:
            cursor.executemany(
                self._insert_tag,
                [
                    {"tenant": tenant, "tag": tag, "memory_id": memory_id}
                    for tag in tags
                ],
            )

    def _write_meta(
        self,
        cursor: DbCursor,
        tenant: str,
        memory_id: str,
        metadata: Mapping[str, JSON],
    ) -> None:
        rows = flatten_metadata(metadata)
        if rows:
            cursor.executemany(
                self._insert_meta,
                [
                    {
                        "memory_id": memory_id,
                        "path": exact_text(path, self.dialect),
                        "tenant": tenant,
                        "vtype": vtype,
                        "vnum": exact_number(vnum, self.dialect),
                        "vtext": exact_text(vtext, self.dialect),
                    }
                    for path, vtype, vnum, vtext in rows
                ],
            )


# ---- queries ---------------------------------------------------------------


@dataclass(frozen=True)
class MetaCondition:
    """One checked condition on a metadata path."""

    path: str
    op: str
    operand: Any


@dataclass(frozen=True)
class SearchQuery:
    """Checked search filters, ready to turn into SQL."""

    tenant: str
    namespace_prefix: str | None = None
    memory_type: str | None = None
    tags_any: tuple[str, ...] = ()
    tags_all: tuple[str, ...] = ()
    where: tuple[MetaCondition, ...] = field(default_factory=tuple)
    updated_after: int | None = None
    updated_before: int | None = None
    include_deleted: bool = False
    order_by: str = "-updated_at"
    limit: int = 50
    offset: int = 0
    now: int | None = None
    """The moment lifetimes are compared with (microseconds); None: now."""
    min_importance: float | None = None
    """Stored importance at least this."""


Shape = tuple[tuple[Any, ...], ...]
"""What a search filters on, without the values: its compiled SQL's cache key."""


def search_sql(query: SearchQuery, dialect: Dialect) -> tuple[str, dict[str, Any]]:
    """SQL text and parameters for a search.

    The SQL depends only on which filters are present (the shape); it is
    compiled once per shape and dialect, and the values travel as parameters.
    """
    shape, params = _shape(query, dialect)
    return _compiled_search(shape, query.order_by, dialect), params


def _shape(query: SearchQuery, dialect: Dialect) -> tuple[Shape, dict[str, Any]]:
    """What the query filters on, and the values to bind."""
    params: dict[str, Any] = {
        "tenant": query.tenant,
        "limit": query.limit,
        "offset": query.offset,
    }
    shape: list[tuple[Any, ...]] = []
    if not query.include_deleted:
        params["now"] = query.now if query.now is not None else now_micros()
        shape.append(("live",))
    if query.namespace_prefix is not None:
        low = namespace_path(query.namespace_prefix)
        params["ns_low"], params["ns_high"] = low, low[:-1] + ";"  # ';' follows ':'
        shape.append(("prefix",))
    if query.memory_type is not None:
        params["memory_type"] = query.memory_type
        shape.append(("type",))
    if query.min_importance is not None:
        params["min_importance"] = query.min_importance
        shape.append(("importance",))
    if query.updated_after is not None:
        params["after"] = query.updated_after
        shape.append(("after",))
    if query.updated_before is not None:
        params["before"] = query.updated_before
        shape.append(("before",))
    if query.tags_any:
        for i, tag in enumerate(query.tags_any):
            params[f"any{i}"] = tag
        shape.append(("tags_any", len(query.tags_any)))
    for i, tag in enumerate(query.tags_all):
        params[f"all{i}"] = tag
        shape.append(("tag_all", i))
    for i, condition in enumerate(query.where):
        params[f"path{i}"] = exact_text(condition.path, dialect)
        operands = condition.operand if condition.op == "$in" else (condition.operand,)
        kinds = []
        for j, operand in enumerate(operands):
            if condition.op == "$exists":
                kinds.append("bool")
                continue
            vtype, vnum, vtext = typed_cell(operand)
            kinds.append(vtype)
            params[f"num{i}_{j}"] = exact_number(vnum, dialect)
            params[f"text{i}_{j}"] = exact_text(vtext, dialect)
        shape.append(("meta", i, condition.op, tuple(kinds), condition.operand is True))
    return tuple(shape), params


@lru_cache(maxsize=1024)
def _compiled_search(shape: Shape, order_by: str, dialect: Dialect) -> str:
    m = memories
    column = m.c[ORDER_COLUMNS[order_by.lstrip("-")]]
    order = column.desc() if order_by.startswith("-") else column.asc()
    statement = (
        select(*(m.c[name] for name in ROW_COLUMNS))
        .where(and_(*_conditions(shape)))
        .order_by(order, m.c.id)
        .limit(bindparam("limit", type_=BigInteger))
        .offset(bindparam("offset", type_=BigInteger))
    )
    return compile_sql(statement, dialect)


def search_ids_sql(query: SearchQuery, dialect: Dialect) -> tuple[str, dict[str, Any]]:
    """SQL and parameters for the ids of every memory passing the filters
    (no order, no limit): the candidates of a similarity search."""
    shape, params = _shape(query, dialect)
    return _compiled_ids(shape, dialect), params


@lru_cache(maxsize=1024)
def _compiled_ids(shape: Shape, dialect: Dialect) -> str:
    return compile_sql(select(memories.c.id).where(and_(*_conditions(shape))), dialect)


def text_search_sql(
    query: SearchQuery, words: Sequence[str], every_word: bool, dialect: Dialect
) -> tuple[str, dict[str, Any]]:
    """SQL and parameters for full-text matches of ``words`` (all of them, or
    any) passing the filters, best first: rows in ROW_COLUMNS order, then the
    score (higher is better)."""
    from mnemolog.projections.text import match_expression

    shape, params = _shape(query, dialect)
    if dialect.name == "postgresql":
        for i, word in enumerate(words):
            params[f"w{i}"] = word
        return _compiled_ts(shape, len(words), every_word, dialect), params
    params["match"] = match_expression(list(words), every_word=every_word)
    return _compiled_text(shape, dialect), params


@lru_cache(maxsize=1024)
def _compiled_text(shape: Shape, dialect: Dialect) -> str:
    from mnemolog.projections.text import memory_text, memory_text_docs

    m, docs = memories, memory_text_docs
    fts = memory_text
    rank: ColumnElement[float] = literal_column(f"bm25({fts.name})")
    statement = (
        select(*(m.c[name] for name in ROW_COLUMNS), (-rank).label("score"))
        .select_from(
            fts.join(docs, docs.c.docid == fts.c.rowid).join(
                m, m.c.id == docs.c.memory_id
            )
        )
        .where(
            literal_column(fts.name).op("MATCH")(bindparam("match", type_=Text)),
            *_conditions(shape),
        )
        .order_by(rank, m.c.id)
        .limit(bindparam("limit", type_=BigInteger))
        .offset(bindparam("offset", type_=BigInteger))
    )
    return compile_sql(statement, dialect)


@lru_cache(maxsize=1024)
def _compiled_ts(shape: Shape, count: int, every_word: bool, dialect: Dialect) -> str:
    """PostgreSQL: the words as one tsquery (each word parsed alone, so no
    character is read as query syntax), ranked by ts_rank."""
    from mnemolog.projections.text import TS_CONFIG, memory_tsv

    m, t = memories, memory_tsv
    parts = [
        func.plainto_tsquery(literal_column(f"'{TS_CONFIG}'"), bindparam(f"w{i}"))
        for i in range(count)
    ]
    tsquery: ColumnElement[Any] = parts[0]
    for part in parts[1:]:
        tsquery = tsquery.op("&&" if every_word else "||")(part)
    rank: ColumnElement[float] = func.ts_rank(t.c.tsv, tsquery)
    statement = (
        select(*(m.c[name] for name in ROW_COLUMNS), rank.label("score"))
        .select_from(t.join(m, m.c.id == t.c.memory_id))
        .where(t.c.tsv.op("@@")(tsquery), *_conditions(shape))
        .order_by(rank.desc(), m.c.id)
        .limit(bindparam("limit", type_=BigInteger))
        .offset(bindparam("offset", type_=BigInteger))
    )
    return compile_sql(statement, dialect)


def _conditions(shape: Shape) -> list[ColumnElement[bool]]:
    m = memories
    conditions: list[ColumnElement[bool]] = [m.c.tenant == bindparam("tenant")]
    for part in shape:
        kind = part[0]
        if kind == "live":
            conditions.append(m.c.deleted == false())
            conditions.append(
                or_(m.c.expires_at.is_(None), m.c.expires_at > bindparam("now"))
            )
        elif kind == "prefix":
            conditions.append(m.c.ns_path >= bindparam("ns_low"))
            conditions.append(m.c.ns_path < bindparam("ns_high"))
        elif kind == "type":
            conditions.append(m.c.memory_type == bindparam("memory_type"))
        elif kind == "importance":
            conditions.append(m.c.importance >= bindparam("min_importance"))
        elif kind == "after":
            conditions.append(m.c.updated_at > bindparam("after"))
        elif kind == "before":
            conditions.append(m.c.updated_at < bindparam("before"))
        elif kind == "tags_any":
            tags: list[Any] = [bindparam(f"any{i}") for i in range(part[1])]
            conditions.append(m.c.id.in_(_tagged(memory_tags.c.tag.in_(tags))))
        elif kind == "tag_all":
            conditions.append(
                m.c.id.in_(_tagged(memory_tags.c.tag == bindparam(f"all{part[1]}")))
            )
        else:
            _, i, op, kinds, exists = part
            conditions.append(_meta_condition(i, op, kinds, exists))
    return conditions


def _tagged(condition: ColumnElement[bool]) -> Select[Any]:
    return select(memory_tags.c.memory_id).where(
        memory_tags.c.tenant == bindparam("tenant"), condition
    )


def _meta_condition(
    i: int, op: str, kinds: tuple[str, ...], exists: bool
) -> ColumnElement[bool]:
    mm = memory_meta

    def having(*extra: ColumnElement[bool]) -> ColumnElement[bool]:
        return memories.c.id.in_(
            select(mm.c.memory_id).where(
                mm.c.tenant == bindparam("tenant"),
                mm.c.path == bindparam(f"path{i}"),
                *extra,
            )
        )

    def equals(j: int) -> list[ColumnElement[bool]]:
        vtype = kinds[j]
        conditions: list[ColumnElement[bool]] = [mm.c.vtype == _vtype(vtype)]
        if vtype in ("num", "bool"):
            conditions.append(mm.c.vnum == bindparam(f"num{i}_{j}"))
        elif vtype in ("str", "json"):
            conditions.append(mm.c.vtext == bindparam(f"text{i}_{j}", type_=Text))
        return conditions

    if op == "$exists":
        return having() if exists else not_(having())
    if op == "$in":
        if not kinds:
            return false()
        return or_(*(having(*equals(j)) for j in range(len(kinds))))
    if op == "$eq":
        return having(*equals(0))
    if op == "$ne":
        return not_(having(*equals(0)))
    compare = {"$gt": "__gt__", "$gte": "__ge__", "$lt": "__lt__", "$lte": "__le__"}[op]
    if kinds[0] == "str":
        operand = getattr(mm.c.vtext, compare)(bindparam(f"text{i}_0", type_=Text))
        return having(mm.c.vtype == _vtype("str"), operand)
    operand = getattr(mm.c.vnum, compare)(bindparam(f"num{i}_0"))
    return having(mm.c.vtype == _vtype("num"), operand)


VTYPES = frozenset({"null", "bool", "num", "str", "json"})


def _vtype(vtype: str) -> ColumnElement[Any]:
    # A constant in the SQL text: compiled statements take no other literal values.
    assert vtype in VTYPES
    return literal_column(f"'{vtype}'")


@lru_cache(maxsize=8)
def get_by_id_statement(dialect: Dialect) -> str:
    """SELECT of one row by id, compiled once."""
    return compile_sql(
        select(*(memories.c[name] for name in ROW_COLUMNS)).where(
            memories.c.id == bindparam("b_id")
        ),
        dialect,
    )
