"""SQL for read models: SQLAlchemy Core builds it, the log's own connection runs it.

Projection rows are written inside the log's transaction, on the DB-API cursor
the event recorder holds, so statements are compiled once per dialect into SQL
text with named parameters and executed there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import MetaData, String
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateIndex, CreateTable, Index, Table
from sqlalchemy.sql import ClauseElement


class DbCursor(Protocol):
    """The part of a DB-API cursor that projections use."""

    def execute(self, statement: Any, params: Any = ...) -> Any: ...

    def executemany(self, statement: Any, params: Any) -> Any: ...

    def fetchall(self) -> Any: ...

    def fetchone(self) -> Any: ...


def _added_columns(
    table: Table, dialect: Dialect, columns_of: Callable[[str], set[str]] | None
) -> list[str]:
    added = table.info.get("added_columns", ())
    if not added:
        return []
    quote = dialect.identifier_preparer.quote
    if dialect.name == "postgresql":
        missing, guard = list(added), "IF NOT EXISTS "
    else:
        existing = columns_of(table.name) if columns_of is not None else set()
        missing = [name for name in added if existing and name not in existing]
        guard = ""
    return [
        f"ALTER TABLE {quote(table.name)} ADD COLUMN {guard}{quote(name)} "
        f"{table.c[name].type.compile(dialect=dialect)}"
        for name in missing
    ]


def compile_sql(statement: ClauseElement, dialect: Dialect) -> str:
    """SQL text for one dialect, with named parameters."""
    return str(statement.compile(dialect=dialect))


def create_statements(
    tables: Sequence[Table],
    dialect: Dialect,
    columns_of: Callable[[str], set[str]] | None = None,
) -> list[str]:
    """CREATE TABLE and CREATE INDEX statements, all IF NOT EXISTS.

    A table's ``info["added_columns"]`` names columns added after the table
    first shipped: an ALTER TABLE adds them to a table from before (PostgreSQL
    says IF NOT EXISTS; for SQLite, ``columns_of(table)`` tells which columns
    an existing table has, empty when it does not exist yet).
    """
    statements = []
    for table in tables:
        table = _bytewise(table, dialect)
        prepare = table.info.get("prepare")  # what the table needs first
        if prepare is not None:
            statements.extend(prepare(dialect))
        create = table.info.get("create")
        if create is not None:  # a table SQLAlchemy cannot declare, such as FTS5
            statements.extend(create(table, dialect))
            continue
        statements.append(
            str(CreateTable(table, if_not_exists=True).compile(dialect=dialect))
        )
        statements.extend(_added_columns(table, dialect, columns_of))
        for index in indexes_for(table, dialect):
            statements.append(
                str(CreateIndex(index, if_not_exists=True).compile(dialect=dialect))
            )
        for index in table.indexes - set(indexes_for(table, dialect)):
            # Another dialect's index, made here by an earlier version: gone.
            name = dialect.identifier_preparer.quote(str(index.name))
            statements.append(f"DROP INDEX IF EXISTS {name}")
    return statements


def compile_query(
    statement: ClauseElement, dialect: Dialect
) -> tuple[str, Mapping[str, Any]]:
    """SQL text and its bound values, for queries built per call."""
    compiled = statement.compile(
        dialect=dialect, compile_kwargs={"render_postcompile": True}
    )
    return str(compiled), compiled.params


def _bytewise(table: Table, dialect: Dialect) -> Table:
    """On PostgreSQL, the table with every string column in the "C" collation:
    strings compare and sort by their bytes (as on SQLite), whatever the
    database's locale. A linguistic collation would sort 'a' before 'B' and
    may skip punctuation, which would break namespace-prefix ranges."""
    if dialect.name != "postgresql":
        return table
    copy = copy_table(table, MetaData())
    for column in copy.columns:
        kind = column.type
        if isinstance(kind, String) and kind.collation is None:
            column.type = type(kind)(length=kind.length, collation="C")
    return copy


def copy_table(table: Table, metadata: MetaData, name: str | None = None) -> Table:
    """``table.to_metadata``, keeping each index's ``info`` (which names the
    dialects it is for): the library's copy leaves it behind."""
    copy = table.to_metadata(metadata, name=name)
    infos = {index.name: index.info for index in table.indexes}
    for index in copy.indexes:
        index.info.update(infos.get(index.name, {}))
    return copy


def indexes_for(table: Table, dialect: Dialect) -> list[Index]:
    """The table's indexes that the dialect builds (an index may name the
    dialects it is for in ``info["dialects"]``), by name."""
    return [
        index
        for index in sorted(table.indexes, key=lambda i: str(i.name))
        if dialect.name in index.info.get("dialects", (dialect.name,))
    ]
