"""The full-text read model: the words of each memory's value, in SQLite FTS5.

The text is the value's strings (a string value, or the string leaves of an
object or list). ``memory_text_docs`` gives each memory a document number, the
rowid of its row in the FTS5 table ``memory_text``, so a new value replaces
the old by rowid. Tenant, liveness and every other filter come from joining
the current-state rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.engine import Dialect

from mnemolog.domain.erasure import Erasure
from mnemolog.domain.memory import Memory
from mnemolog.domain.vectors import text_of
from mnemolog.projections.base import Projection, handles
from mnemolog.projections.sql import DbCursor

if TYPE_CHECKING:
    from mnemolog.adapters.cipher import ColumnCipher

metadata_obj = MetaData()

TOKENIZER = "porter unicode61 remove_diacritics 2"


def _create_fts(table: Table, dialect: Dialect) -> list[str]:
    quote = dialect.identifier_preparer.quote
    return [
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {quote(table.name)} USING fts5("
        f"text, tokenize = '{TOKENIZER}')"
    ]


memory_text_docs = Table(
    "memory_text_docs",
    metadata_obj,
    Column("docid", Integer, primary_key=True),
    Column("memory_id", String(32), nullable=False),
    Index("uq_memory_text_docs", "memory_id", unique=True),
)

memory_text = Table(
    "memory_text",
    metadata_obj,
    Column("rowid", Integer, primary_key=True),
    Column("text", Text, nullable=False),
    info={"create": _create_fts},
)

_WORD = re.compile(r"\w+", re.UNICODE)


def query_words(query: str) -> list[str]:
    """The distinct words of a query, in order."""
    return list(dict.fromkeys(_WORD.findall(query)))


def match_expression(words: list[str], *, every_word: bool) -> str:
    """An FTS5 query for the words, each quoted, so that no character of the
    caller's text is read as FTS syntax."""
    quoted = [f'"{word}"' for word in words]
    return " AND ".join(quoted) if every_word else " OR ".join(quoted)


class TextProjection(Projection):
    """Keeps memory_text equal to the text of each memory's latest value."""

    name = "text"
    tables = (memory_text_docs, memory_text)

    def __init__(
        self, dialect: Dialect, *, suffix: str = "", columns: ColumnCipher | None = None
    ) -> None:
        super().__init__(dialect, suffix=suffix, columns=columns)
        self._text = _indexed_text(columns)
        quote = dialect.identifier_preparer.quote
        docs = quote(self.table("memory_text_docs").name)
        fts = quote(self.table("memory_text").name)
        # A document's id is the log position of the event that first gave the
        # memory text: the same in a rebuild, whatever was erased before it.
        self._new_doc = f"INSERT INTO {docs} (docid, memory_id) VALUES (?, ?)"
        self._docid = f"SELECT docid FROM {docs} WHERE memory_id = ?"
        self._insert = f"INSERT INTO {fts} (rowid, text) VALUES (?, ?)"
        self._delete = f"DELETE FROM {fts} WHERE rowid = ?"

    @handles(Erasure.Erased)
    def _erased(self, cursor: DbCursor, event: Erasure.Erased, position: int) -> None:
        for memory_id in event.streams:
            cursor.execute(self._docid, (memory_id,))
            row = cursor.fetchone()
            if row is not None:
                cursor.execute(self._delete, (row[0],))
        self.purge(cursor, "memory_id", event.streams)

    @handles(Memory.Created, Memory.Recreated)
    def _created(self, cursor: DbCursor, event: Memory.Created, position: int) -> None:
        text = self._text(event.value)
        if text:
            cursor.execute(self._new_doc, (position, event.originator_id.hex))
            cursor.execute(self._insert, (position, text))

    @handles(Memory.Updated)
    def _updated(self, cursor: DbCursor, event: Memory.Updated, position: int) -> None:
        if "value" not in event.changes:
            return
        memory_id = event.originator_id.hex
        text = self._text(event.changes["value"])
        cursor.execute(self._docid, (memory_id,))
        row = cursor.fetchone()
        if row is not None:
            cursor.execute(self._delete, (row[0],))
            docid = row[0]
        elif text:
            cursor.execute(self._new_doc, (position, memory_id))
            docid = position
        if text:
            cursor.execute(self._insert, (docid, text))


# ---- PostgreSQL: a tsvector per memory -----------------------------------------

TS_CONFIG = "mnemolog_text"
"""The text search configuration: PostgreSQL's word parser, every word
lower-cased and stemmed by the English Snowball stemmer, no stop words (so
that, as with SQLite, every word can be searched)."""

MAX_TS_TEXT = 100_000
"""Characters of a value that PostgreSQL indexes (a tsvector holds at most
1 MB); SQLite indexes the whole text."""

pg_metadata = MetaData()


def _create_ts_config(dialect: Dialect) -> list[str]:
    # CREATE TEXT SEARCH ... has no IF NOT EXISTS: a DO block checks first.
    return [
        "DO $$ BEGIN "
        "IF NOT EXISTS (SELECT 1 FROM pg_ts_config c JOIN pg_namespace n "
        "ON n.oid = c.cfgnamespace "
        f"WHERE c.cfgname = '{TS_CONFIG}' AND n.nspname = current_schema()) THEN "
        "CREATE TEXT SEARCH DICTIONARY mnemolog_stem "
        "(TEMPLATE = snowball, Language = english); "
        f"CREATE TEXT SEARCH CONFIGURATION {TS_CONFIG} (COPY = simple); "
        f"ALTER TEXT SEARCH CONFIGURATION {TS_CONFIG} ALTER MAPPING FOR "
        "asciiword, asciihword, hword_asciipart, word, hword, hword_part "
        "WITH mnemolog_stem; "
        "END IF; END $$"
    ]


memory_tsv = Table(
    "memory_tsv",
    pg_metadata,
    Column("memory_id", String(32), primary_key=True),
    Column("tsv", TSVECTOR, nullable=False),
    Index("ix_memory_tsv", "tsv", postgresql_using="gin"),
    info={"prepare": _create_ts_config},
)


class PgTextProjection(Projection):
    """Keeps memory_tsv equal to the words of each memory's latest value."""

    name = "text"
    tables = (memory_tsv,)

    def __init__(
        self, dialect: Dialect, *, suffix: str = "", columns: ColumnCipher | None = None
    ) -> None:
        super().__init__(dialect, suffix=suffix, columns=columns)
        self._text = _indexed_text(columns)
        quote = dialect.identifier_preparer.quote
        table = quote(self.table("memory_tsv").name)
        self._upsert = (
            f"INSERT INTO {table} (memory_id, tsv) "
            f"VALUES (%s, to_tsvector('{TS_CONFIG}', %s)) "
            "ON CONFLICT (memory_id) DO UPDATE SET tsv = excluded.tsv"
        )
        self._delete = f"DELETE FROM {table} WHERE memory_id = %s"

    @handles(Erasure.Erased)
    def _erased(self, cursor: DbCursor, event: Erasure.Erased, position: int) -> None:
        self.purge(cursor, "memory_id", event.streams)

    @handles(Memory.Created, Memory.Recreated)
    def _created(self, cursor: DbCursor, event: Memory.Created, position: int) -> None:
        text = self._text(event.value)
        if text:
            cursor.execute(self._upsert, (event.originator_id.hex, _ts_text(text)))

    @handles(Memory.Updated)
    def _updated(self, cursor: DbCursor, event: Memory.Updated, position: int) -> None:
        if "value" not in event.changes:
            return
        text = self._text(event.changes["value"])
        if text:
            cursor.execute(self._upsert, (event.originator_id.hex, _ts_text(text)))
        else:
            cursor.execute(self._delete, (event.originator_id.hex,))


_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def _ts_text(text: str) -> str:
    """The text PostgreSQL indexes: its words, split as SQLite splits them.

    PostgreSQL's parser would keep ``bob@example.org``, ``/usr/lib`` or
    ``3.14`` as single tokens (an email, a path, a number), so their words
    could not be found alone; NUL cannot be in a PostgreSQL text at all."""
    return _NOT_WORD.sub(" ", text[:MAX_TS_TEXT])


def text_projection(
    dialect: Dialect, columns: ColumnCipher | None = None
) -> Projection:
    """The full-text projection of the dialect's backend (of keyed word hashes
    when the store is encrypted at rest)."""
    if dialect.name == "postgresql":
        return PgTextProjection(dialect, columns=columns)
    return TextProjection(dialect, columns=columns)


def _indexed_text(columns: ColumnCipher | None) -> Callable[[Any], str]:
    """What the index holds of a value: its text, or its words' hashes."""
    if columns is None:
        return text_of
    hashed = columns.words
    return lambda value: hashed(text_of(value))
