"""The full-text read model: the words of each memory's value, in SQLite FTS5.

The text is the value's strings (a string value, or the string leaves of an
object or list). ``memory_text_docs`` gives each memory a document number, the
rowid of its row in the FTS5 table ``memory_text``, so a new value replaces
the old by rowid. Tenant, liveness and every other filter come from joining
the current-state rows.
"""

from __future__ import annotations

import re

from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text
from sqlalchemy.engine import Dialect

from mnemolog.domain.memory import Memory
from mnemolog.domain.vectors import text_of
from mnemolog.projections.base import Projection, handles
from mnemolog.projections.sql import DbCursor

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


def match_expression(query: str, *, every_word: bool) -> str | None:
    """An FTS5 query for the words of ``query``, each quoted, so that no
    character of the caller's text is read as FTS syntax; None if it has no
    words."""
    words = _WORD.findall(query)
    if not words:
        return None
    quoted = [f'"{word}"' for word in dict.fromkeys(words)]
    return " AND ".join(quoted) if every_word else " OR ".join(quoted)


class TextProjection(Projection):
    """Keeps memory_text equal to the text of each memory's latest value."""

    name = "text"
    tables = (memory_text_docs, memory_text)

    def __init__(self, dialect: Dialect, *, suffix: str = "") -> None:
        super().__init__(dialect, suffix=suffix)
        quote = dialect.identifier_preparer.quote
        docs = quote(self.table("memory_text_docs").name)
        fts = quote(self.table("memory_text").name)
        self._new_doc = f"INSERT INTO {docs} (memory_id) VALUES (?) RETURNING docid"
        self._docid = f"SELECT docid FROM {docs} WHERE memory_id = ?"
        self._insert = f"INSERT INTO {fts} (rowid, text) VALUES (?, ?)"
        self._delete = f"DELETE FROM {fts} WHERE rowid = ?"

    @handles(Memory.Created)
    def _created(self, cursor: DbCursor, event: Memory.Created, position: int) -> None:
        text = text_of(event.value)
        if text:
            cursor.execute(self._new_doc, (event.originator_id.hex,))
            cursor.execute(self._insert, (cursor.fetchone()[0], text))

    @handles(Memory.Updated)
    def _updated(self, cursor: DbCursor, event: Memory.Updated, position: int) -> None:
        if "value" not in event.changes:
            return
        memory_id = event.originator_id.hex
        text = text_of(event.changes["value"])
        cursor.execute(self._docid, (memory_id,))
        row = cursor.fetchone()
        if row is not None:
            cursor.execute(self._delete, (row[0],))
            docid = row[0]
        elif text:
            cursor.execute(self._new_doc, (memory_id,))
            docid = cursor.fetchone()[0]
        if text:
            cursor.execute(self._insert, (docid, text))
