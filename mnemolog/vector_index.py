"""Vectors served from memory: one contiguous float32 matrix per tenant.

Each tenant's matrix follows the log by position: before a search it reads the
current-state rows changed since the position it reflects (joined with their
vectors), and applies them in place: a new vector takes a free row or one at
the end (the matrix grows by doubling), a replaced vector overwrites its row,
and a deleted memory's row is marked dead and reused. Writes from other
processes are seen the same way, so the matrix never needs a rebuild.

Search is exact: the filters make a mask of candidate rows, scores are one
matrix-vector product (over the candidates only when they are few), and the
top k come from ``argpartition``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from mnemolog.domain.vectors import Vector

SYNC_SQL = (
    "SELECT m.id, m.namespace, m.memory_type, m.deleted, m.position, "
    "v.model, v.vector, m.tags FROM memories AS m "
    "LEFT JOIN memory_vectors AS v ON v.memory_id = m.id "
    "WHERE m.tenant = ? AND m.position > ? AND m.position <= "
    "(SELECT notification_id FROM tracking WHERE application_name = 'vectors') "
    "ORDER BY m.position"
)
"""The current-state rows changed since a position, with their vectors; only
up to the vectors projection's own position, so that where projection workers
apply the two read models in separate transactions, a memory is never taken
before its vector row has caught up with it (it is taken at a later sync)."""

ROW_CACHE = 4096
"""Rows of recent hits kept per tenant (a row is a few hundred bytes)."""

Fetch = Callable[[str, Any], list[Any]]


@dataclass(frozen=True)
class Hit:
    """A row of the index that scored in the top k."""

    memory_id: str
    score: float


class TenantVectors:
    """The vectors of one tenant, by row; the rows' namespaces and types as codes."""

    def __init__(
        self,
        model: str,
        dims: int,
        *,
        ann_threshold: int | None = None,
        ann_expansion: int = 64,
    ) -> None:
        self.model = model
        self.dims = dims
        self.ann_threshold = ann_threshold
        self.ann_expansion = ann_expansion
        self.ann: Any = None
        """A usearch HNSW index over the live rows, once the tenant is large."""
        self.position = 0
        self.matrix: npt.NDArray[np.float32] = np.zeros((0, dims), dtype=np.float32)
        self.live: npt.NDArray[np.bool_] = np.zeros(0, dtype=np.bool_)
        self.ns_code: npt.NDArray[np.int32] = np.zeros(0, dtype=np.int32)
        self.type_code: npt.NDArray[np.int32] = np.zeros(0, dtype=np.int32)
        self.count = 0
        """Rows in use or freed; rows from ``count`` on were never used."""
        self.ids: list[str | None] = []
        self.row_of: dict[str, int] = {}
        self.free: list[int] = []
        self.namespaces: dict[str, int] = {}
        self.types: dict[str, int] = {}
        self._prefix_codes: dict[str, tuple[int, npt.NDArray[np.int32]]] = {}
        self.row_tags: dict[int, tuple[str, ...]] = {}
        """The tags of each live row that has any."""
        self.tag_rows: dict[str, set[int]] = {}
        """The live rows carrying each tag."""
        self.rows: dict[str, tuple[Any, ...]] = {}
        """Current-state rows of recent hits, by id: dropped when the memory
        changes (a sync sees every change), so a search re-reads only the
        rows it has not seen since their last change."""
        self.lock = threading.Lock()

    @property
    def size(self) -> int:
        """How many vectors are live."""
        return len(self.row_of)

    # ---- keeping in step -----------------------------------------------------

    def sync(self, fetch: Fetch, tenant: str) -> None:
        """Applies the rows changed since the last sync. Call with the lock held."""
        rows = fetch(SYNC_SQL, (tenant, self.position))
        if not rows:
            return
        cached = self.rows
        for row in rows:
            memory_id, namespace, memory_type, deleted, position, model, raw, tags = row
            cached.pop(memory_id, None)
            if (
                deleted
                or raw is None
                or model != self.model
                or len(raw) != 4 * self.dims
            ):
                self.remove(memory_id)
            else:
                vector = np.frombuffer(raw, dtype="<f4")
                self.upsert(
                    memory_id, vector, namespace, memory_type, orjson.loads(tags)
                )
            self.position = max(self.position, int(position))
        if (
            self.ann is None
            and self.ann_threshold is not None
            and self.size >= self.ann_threshold
        ):
            self._build_ann()

    def _build_ann(self) -> None:
        from usearch.index import Index

        index = Index(
            ndim=self.dims,
            metric="ip",
            dtype="bf16",
            connectivity=16,
            expansion_add=128,
            expansion_search=self.ann_expansion,
        )
        rows = np.flatnonzero(self.live[: self.count])
        if rows.size:
            index.add(rows.astype(np.uint64), self.matrix[rows])
        self.ann = index

    def upsert(
        self,
        memory_id: str,
        vector: Vector,
        namespace: str,
        memory_type: str,
        tags: Sequence[str] = (),
    ) -> None:
        """Puts the vector (and the memory's filters) in its row, or in a new one."""
        row = self.row_of.get(memory_id)
        if row is None:
            row = self.free.pop() if self.free else self._append_row()
            self.row_of[memory_id] = row
            self.ids[row] = memory_id
        norm = float(np.linalg.norm(vector))
        if self.ann is not None and self.live[row]:
            self.ann.remove(row)
        self.matrix[row] = vector / norm if norm > 0 else vector
        self.live[row] = norm > 0
        if self.ann is not None and norm > 0:
            self.ann.add(row, self.matrix[row])
        self.ns_code[row] = self._code(self.namespaces, namespace)
        self.type_code[row] = self._code(self.types, memory_type)
        self._untag(row)
        if tags and norm > 0:
            self.row_tags[row] = tuple(tags)
            for tag in tags:
                self.tag_rows.setdefault(tag, set()).add(row)

    def _untag(self, row: int) -> None:
        for tag in self.row_tags.pop(row, ()):
            rows = self.tag_rows[tag]
            rows.discard(row)
            if not rows:
                del self.tag_rows[tag]

    def remove(self, memory_id: str) -> None:
        """Marks the memory's row dead and free for reuse."""
        row = self.row_of.pop(memory_id, None)
        if row is None:
            return
        if self.ann is not None and self.live[row]:
            self.ann.remove(row)
        self.live[row] = False
        self.ids[row] = None
        self._untag(row)
        self.free.append(row)

    def _append_row(self) -> int:
        if self.count == self.matrix.shape[0]:
            capacity = max(64, 2 * self.matrix.shape[0])
            self.matrix = _grown(self.matrix, capacity)
            self.live = _grown(self.live, capacity)
            self.ns_code = _grown(self.ns_code, capacity)
            self.type_code = _grown(self.type_code, capacity)
        row = self.count
        self.count += 1
        self.ids.append(None)
        return row

    @staticmethod
    def _code(codes: dict[str, int], name: str) -> int:
        code = codes.get(name)
        if code is None:
            code = codes[name] = len(codes)
        return code

    def keep_rows(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Caches current-state rows (id first) read after the last sync."""
        if len(self.rows) > ROW_CACHE:
            self.rows.clear()
        for row in rows:
            self.rows[row[0]] = row

    # ---- filters -------------------------------------------------------------

    def mask(
        self,
        *,
        namespace_prefix: str | None = None,
        memory_type: str | None = None,
        tags_any: Sequence[str] = (),
        tags_all: Sequence[str] = (),
        memory_ids: Iterable[str] | None = None,
    ) -> npt.NDArray[np.bool_]:
        """Rows that are live and pass every filter given."""
        n = self.count
        mask = self.live[:n].copy()
        if namespace_prefix is not None:
            mask &= np.isin(self.ns_code[:n], self._codes_within(namespace_prefix))
        if memory_type is not None:
            code = self.types.get(memory_type)
            if code is None:
                mask[:] = False
            else:
                mask &= self.type_code[:n] == code
        if tags_any:
            mask &= self._tagged(
                set().union(*(self.tag_rows.get(t, ()) for t in tags_any))
            )
        for tag in tags_all:
            mask &= self._tagged(self.tag_rows.get(tag, set()))
        if memory_ids is not None:
            allowed = np.zeros(n, dtype=np.bool_)
            rows = [r for r in map(self.row_of.get, memory_ids) if r is not None]
            allowed[rows] = True
            mask &= allowed
        return mask

    def _tagged(self, rows: set[int]) -> npt.NDArray[np.bool_]:
        tagged = np.zeros(self.count, dtype=np.bool_)
        if rows:
            tagged[np.fromiter(rows, dtype=np.intp, count=len(rows))] = True
        return tagged

    def _codes_within(self, prefix: str) -> npt.NDArray[np.int32]:
        """Codes of the namespaces at or under ``prefix`` (whole segments)."""
        cached = self._prefix_codes.get(prefix)
        if cached is not None and cached[0] == len(self.namespaces):
            return cached[1]
        within = prefix + ":"
        codes = np.array(
            [
                code
                for name, code in self.namespaces.items()
                if name == prefix or name.startswith(within)
            ],
            dtype=np.int32,
        )
        self._prefix_codes[prefix] = (len(self.namespaces), codes)
        return codes

    # ---- search --------------------------------------------------------------

    def top(
        self,
        query: Vector,
        k: int,
        *,
        mask: npt.NDArray[np.bool_] | None = None,
        min_score: float | None = None,
    ) -> list[Hit]:
        """The k best rows by cosine similarity to the unit vector ``query``,
        best first, among the mask's."""
        n = self.count
        if n == 0:
            return []
        q = np.asarray(query, dtype=np.float32)
        if self.ann is not None:
            hits = self._approximate(q, k, mask, min_score)
            if hits is not None:
                return hits
        rows: npt.NDArray[np.intp] | None = None
        if mask is None and not self.free:  # every row in use is live
            scores = self.matrix[:n] @ q
            available = n
        else:
            candidates = mask if mask is not None else self.live[:n]
            chosen = np.flatnonzero(candidates)
            available = int(chosen.size)
            if available == 0:
                return []
            if available * 4 < n:  # few candidates: score only them
                scores = self.matrix[chosen] @ q
                rows = chosen
            else:
                scores = self.matrix[:n] @ q
                if available < n:
                    scores[~candidates] = -np.inf
        return self._hits(scores, rows, min(k, available), min_score)

    def _hits(
        self,
        scores: npt.NDArray[np.float32],
        rows: npt.NDArray[np.intp] | None,
        k: int,
        min_score: float | None,
    ) -> list[Hit]:
        """The k best of ``scores`` (of ``rows``, or of every row if None)."""
        hits = []
        for i in _top_k(scores, k):
            score = float(scores[i])
            if min_score is not None and score < min_score:
                break
            memory_id = self.ids[int(rows[i]) if rows is not None else int(i)]
            assert memory_id is not None
            hits.append(Hit(memory_id, score))
        return hits

    def _approximate(
        self,
        q: Vector,
        k: int,
        mask: npt.NDArray[np.bool_] | None,
        min_score: float | None,
    ) -> list[Hit] | None:
        """The top k from the HNSW index, or None when exact search is the
        better answer: a filter that leaves few candidates (they are scored
        exactly), or one that the over-fetched neighbours could not satisfy.
        Every hit passes the filters; scores are recomputed exactly."""
        live = self.size
        if live == 0:
            return []
        available = live if mask is None else int(np.count_nonzero(mask))
        if available == 0:
            return []
        if available * 10 < live or available <= 4 * k:
            return None
        fetch = min(live, int(np.ceil(2 * k * live / available)) + k)
        found = self.ann.search(q, fetch)
        rows = np.asarray(found.keys, dtype=np.intp)
        if mask is not None:
            rows = rows[mask[rows]]
        if rows.size < min(k, available):
            return None
        return self._hits(self.matrix[rows] @ q, rows, min(k, rows.size), min_score)


def _top_k(scores: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.intp]:
    """Indices of the k highest scores, highest first (ties by index)."""
    if k <= 0:
        return np.zeros(0, dtype=np.intp)
    if k < scores.shape[0]:
        part = np.argpartition(-scores, k - 1)[:k]
    else:
        part = np.arange(scores.shape[0])
    order = np.lexsort((part, -scores[part]))
    return part[order]


def _grown(array: npt.NDArray[Any], capacity: int) -> npt.NDArray[Any]:
    grown = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
    grown[: array.shape[0]] = array
    return grown


class VectorIndexes:
    """The matrices of every tenant a process has searched, for one model."""

    def __init__(
        self,
        model: str,
        dims: int,
        *,
        ann_threshold: int | None = None,
        ann_expansion: int = 64,
    ) -> None:
        self._new = partial(
            TenantVectors,
            model,
            dims,
            ann_threshold=ann_threshold,
            ann_expansion=ann_expansion,
        )
        self._tenants: dict[str, TenantVectors] = {}
        self._lock = threading.Lock()

    def of(self, tenant: str) -> TenantVectors:
        """The tenant's matrix (empty until synced)."""
        with self._lock:
            vectors = self._tenants.get(tenant)
            if vectors is None:
                vectors = self._tenants[tenant] = self._new()
            return vectors

    def reset(self) -> None:
        """Forgets every matrix; the next search of a tenant reloads its own."""
        with self._lock:
            self._tenants.clear()
