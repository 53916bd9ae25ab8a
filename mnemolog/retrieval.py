"""Retrieval by meaning, by words, and by both: the queries behind
``store.similar``, ``store.text_search`` and ``store.retrieve``.

The store checks the caller's input and hands over a :class:`SearchQuery` of
filters; everything here reads the read models (and the in-memory vector
matrix) and never writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy.engine import Dialect

from mnemolog.adapters.cipher import ColumnCipher
from mnemolog.adapters.log import Log
from mnemolog.domain.errors import ValidationError
from mnemolog.domain.vectors import Vector
from mnemolog.models import Memory, Scored, trusted
from mnemolog.projections.current_state import (
    ROW_COLUMNS,
    SearchQuery,
    now_micros,
    search_ids_sql,
    text_search_sql,
)
from mnemolog.projections.text import query_words
from mnemolog.vector_index import VectorIndexes

RRF_K = 60
"""The constant of reciprocal rank fusion: 1 / (RRF_K + rank)."""


@dataclass(frozen=True)
class Boosts:
    """Optional multipliers on fused scores; both off unless given."""

    importance: float = 0.0
    """w in [0, 1]: score x ((1 - w) + w x importance)."""
    recency_half_life: timedelta | None = None
    """Score x 0.5 ** (age / half_life), age counted from the last update."""


@lru_cache(maxsize=256)
def _rows_by_id_sql(count: int) -> str:
    # By primary key alone: with the tenant in the WHERE clause the planner may
    # prefer a tenant index and scan it. Tenant and liveness are checked on the
    # rows instead.
    columns = ", ".join(ROW_COLUMNS)
    marks = ", ".join("?" * count)
    return f"SELECT {columns} FROM memories WHERE id IN ({marks})"


_EXPIRED_SQL = (
    "SELECT 1 FROM memories WHERE tenant = ? AND deleted = ? "
    "AND expires_at IS NOT NULL AND expires_at <= ? LIMIT 1"
)

ScoredMemory = Scored[Memory]
"""The result type of every search here (parametrised once: it costs)."""


def scored(memory: Memory, score: float) -> Scored[Memory]:
    """A result from values the store produced (no validation needed)."""
    return trusted(ScoredMemory, {"item": memory, "score": score})


_TENANT = ROW_COLUMNS.index("tenant")
_DELETED = ROW_COLUMNS.index("deleted")
_EXPIRES = ROW_COLUMNS.index("expires_at")


class Retrieval:
    """Similarity, full-text and hybrid search over one store's read models."""

    def __init__(
        self,
        recorder: Log,
        dialect: Dialect,
        vectors: VectorIndexes | None,
        columns: ColumnCipher | None = None,
    ) -> None:
        self._recorder = recorder
        self._dialect = dialect
        self._vectors = vectors
        self._columns = columns
        self._open = columns.open if columns is not None else None

    def similar(
        self,
        filters: SearchQuery,
        vector: Vector,
        *,
        k: int,
        min_score: float | None,
    ) -> list[Scored[Memory]]:
        """The k memories whose vectors are nearest ``vector`` (cosine), among
        those passing every filter exactly."""
        assert self._vectors is not None
        tenant = filters.tenant
        now = filters.now if filters.now is not None else now_micros()
        index = self._vectors.of(tenant)
        with index.lock:
            index.sync(self._recorder.fetch_all, tenant)
            if (
                filters.where
                or self._expired_unswept(tenant, now)
                or filters.min_importance is not None
                or filters.updated_after is not None
                or filters.updated_before is not None
            ):
                sql, params = search_ids_sql(filters, self._dialect)
                ids = [row[0] for row in self._recorder.fetch_all(sql, params)]
                mask = index.mask(memory_ids=ids)
            elif (
                filters.namespace_prefix is not None
                or filters.memory_type
                or filters.tags_any
                or filters.tags_all
            ):
                # Filters the index holds itself, as it stood at the sync.
                mask = index.mask(
                    namespace_prefix=filters.namespace_prefix,
                    memory_type=filters.memory_type,
                    tags_any=filters.tags_any,
                    tags_all=filters.tags_all,
                )
            else:
                mask = None
            hits = index.top(vector, k, mask=mask, min_score=min_score)
            # Rows read under the lock: no sync can slip between the read and
            # the caching, so a cached row is never older than the index.
            cached = index.rows
            missing = [hit.memory_id for hit in hits if hit.memory_id not in cached]
            fetched = {row[0]: row for row in self._rows(missing)} if missing else {}
            found = {
                hit.memory_id: row
                for hit in hits
                if (row := cached.get(hit.memory_id) or fetched.get(hit.memory_id))
                is not None
            }
            if fetched:
                index.keep_rows(fetched.values())  # may evict: found is built
        return [
            scored(Memory.from_row(row, self._open), hit.score)
            for hit in hits
            if (row := found.get(hit.memory_id)) is not None
            and row[_TENANT] == tenant
            and not row[_DELETED]
            and (row[_EXPIRES] is None or row[_EXPIRES] > now)
        ]

    def text(
        self, filters: SearchQuery, text: str, *, k: int, every_word: bool
    ) -> list[Scored[Memory]]:
        """The k memories whose text best matches the words of ``text`` (bm25),
        among those passing every filter."""
        words = query_words(text)
        if not words:
            return []
        if self._columns is not None:  # the index holds keyed hashes of words
            words = list(dict.fromkeys(self._columns.word(w) for w in words))
        query = replace(filters, limit=k, offset=0)
        sql, params = text_search_sql(query, words, every_word, self._dialect)
        return [
            scored(Memory.from_row(row, self._open), float(row[-1]))
            for row in self._recorder.fetch_all(sql, params)
        ]

    def _expired_unswept(self, tenant: str, now: int) -> bool:
        """Whether the tenant has memories past their lifetime that the
        sweeper has not recorded yet: the index still holds them, so the
        search is masked to the live ones (or k could come back short)."""
        row = self._recorder.fetch_one(_EXPIRED_SQL, (tenant, False, now))
        return row is not None

    def _rows(self, memory_ids: Sequence[str]) -> list[tuple[Any, ...]]:
        rows = self._recorder.fetch_all(_rows_by_id_sql(len(memory_ids)), memory_ids)
        return [tuple(row) for row in rows]


def fuse(
    ranked: Mapping[str, Sequence[Scored[Memory]]],
    weights: Mapping[str, float],
    *,
    k: int,
    boosts: Boosts,
    now: datetime | None = None,
) -> list[Scored[Memory]]:
    """Reciprocal rank fusion of ranked lists, then the boosts; the k best."""
    scores: dict[str, float] = {}
    items: dict[str, Memory] = {}
    for name, results in ranked.items():
        weight = weights.get(name, 0.0)
        for rank, result in enumerate(results, start=1):
            memory_id = result.item.id.hex
            items[memory_id] = result.item
            scores[memory_id] = scores.get(memory_id, 0.0) + weight / (RRF_K + rank)
    if boosts.importance or boosts.recency_half_life is not None:
        moment = now or datetime.now(UTC)
        for memory_id, memory in items.items():
            scores[memory_id] *= _boost(memory, boosts, moment)
    best = sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))[:k]
    return [scored(items[i], score) for i, score in best]


def _boost(memory: Memory, boosts: Boosts, now: datetime) -> float:
    factor = 1.0
    if boosts.importance:
        factor *= (1.0 - boosts.importance) + boosts.importance * memory.importance
    if boosts.recency_half_life is not None:
        age = max((now - memory.updated_at).total_seconds(), 0.0)
        factor *= 0.5 ** (age / boosts.recency_half_life.total_seconds())
    return factor


def check_weights(weights: object) -> dict[str, float]:
    """``{"vector": w, "text": w}`` with non-negative finite weights."""
    if weights is None:
        return {"vector": 1.0, "text": 1.0}
    if not isinstance(weights, Mapping):
        raise ValidationError("weights", 'must be a mapping like {"vector": 1.0}')
    unknown = set(weights) - {"vector", "text"}
    if unknown:
        raise ValidationError(
            "weights", f"unknown list(s): {', '.join(sorted(map(str, unknown)))}"
        )
    checked: dict[str, float] = {"vector": 0.0, "text": 0.0}
    for name, value in weights.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0 <= value <= 1e300  # finite, and an int that fits a float
        ):
            raise ValidationError(f"weights.{name}", "must be a number >= 0")
        checked[name] = float(value)
    if not any(checked.values()):
        raise ValidationError("weights", "at least one weight must be above 0")
    return checked
