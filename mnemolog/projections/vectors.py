"""The vector read model: each memory's embedding, as float32 bytes in SQL.

One row per memory that has an embedding. Which memories are live, and their
namespace and type, come from the current-state rows; the in-memory matrix
(:mod:`mnemolog.vector_index`) follows both by log position.
"""

from __future__ import annotations

import base64

from sqlalchemy import (
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    insert,
    update,
)
from sqlalchemy.engine import Dialect

from mnemolog.domain.erasure import Erasure
from mnemolog.domain.memory import Memory
from mnemolog.projections.base import Projection, handles
from mnemolog.projections.sql import DbCursor, compile_sql

metadata_obj = MetaData()

memory_vectors = Table(
    "memory_vectors",
    metadata_obj,
    Column("memory_id", String(32), primary_key=True),
    Column("model", String(256), nullable=False),
    Column("dims", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),
)


class VectorsProjection(Projection):
    """Keeps memory_vectors equal to each memory's latest embedding."""

    name = "vectors"
    tables = (memory_vectors,)

    def __init__(self, dialect: Dialect, *, suffix: str = "") -> None:
        super().__init__(dialect, suffix=suffix)
        table = self.table("memory_vectors")
        self._delete = compile_sql(
            delete(table).where(table.c.memory_id == bindparam("b_id")), dialect
        )
        self._insert = compile_sql(insert(table), dialect)
        self._update = compile_sql(
            update(table)
            .where(table.c.memory_id == bindparam("b_id"))
            .values(vector=bindparam("vector"), dims=bindparam("dims")),
            dialect,
        )

    @handles(Erasure.Erased)
    def _erased(self, cursor: DbCursor, event: Erasure.Erased, position: int) -> None:
        self.purge(cursor, "memory_id", event.streams)

    @handles(Memory.Created, Memory.Recreated)
    def _created(self, cursor: DbCursor, event: Memory.Created, position: int) -> None:
        if event.embedding is not None and event.embedding_model is not None:
            raw = base64.b64decode(event.embedding)
            cursor.execute(self._insert, self._row(event, event.embedding_model, raw))

    @handles(Memory.Updated)
    def _updated(self, cursor: DbCursor, event: Memory.Updated, position: int) -> None:
        changes = event.changes
        if "embedding" not in changes:
            return
        embedding = changes["embedding"]
        model = changes.get("embedding_model")
        if not isinstance(embedding, str):
            cursor.execute(self._delete, {"b_id": event.originator_id.hex})
            return
        raw = base64.b64decode(embedding)
        if isinstance(model, str):  # a new model: the row is replaced
            cursor.execute(self._delete, {"b_id": event.originator_id.hex})
            cursor.execute(self._insert, self._row(event, model, raw))
        else:  # the same model, a new vector
            cursor.execute(
                self._update,
                {"b_id": event.originator_id.hex, "vector": raw, "dims": len(raw) // 4},
            )

    @staticmethod
    def _row(event: Memory.Event, model: str, raw: bytes) -> dict[str, object]:
        return {
            "memory_id": event.originator_id.hex,
            "model": model,
            "dims": len(raw) // 4,
            "vector": raw,
        }
