"""Properties of search (hypothesis), on ``memory://`` stores.

(a) ``similar`` is the exact filtered top k: it equals a brute-force cosine
    ranking computed here with numpy, on random data (2-16 dimensions, up to
    60 vectors, random tenants, namespaces, types, tags and metadata, some
    memories without a vector, some deleted), with and without each filter,
    also after further changes (new vectors, dropped vectors, deletes,
    restores, metadata changes) that the index must follow;
(b) ``retrieve`` scores are the reciprocal rank fusion of the two lists;
(c) ``text_search`` reads no query syntax: any text is a list of words.

Results are compared by their scores (within 1e-5: the store works in
float32) and, where the reference scores are distinct, by their memories.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mnemolog
from mnemolog import Memory, MemoryStore
from mnemolog.models import Scored

SETTINGS: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}

TENANTS = ["default", "other"]
NAMESPACES = [
    "user:a",
    "user:a:x",
    "user:a:x:y",
    "user:ab",
    "user:a_b",
    "user:b",
    "app:a",
    "app:a:b",
]
PREFIXES = [
    "user",
    "user:a",
    "user:a:x",
    "user:ab",
    "user:a_b",
    "user:b",
    "app",
    "app:a",
    "app:a:b",
    "project",
]
TYPES = ["semantic", "episodic", "procedural"]
TAGS = ["t1", "t2", "t3"]
WHERE = [
    {"g": 1},
    {"g": {"$gt": 1}},
    {"g": {"$lte": 1}},
    {"g": {"$ne": 2}},
    {"g": {"$in": [0, 3]}},
    {"g": {"$exists": True}},
    {"h": {"$exists": False}},
]
TOLERANCE = 1e-5
SINGLE_FILTERS: list[dict[str, Any]] = [
    *({"namespace_prefix": prefix} for prefix in PREFIXES),
    *({"memory_type": memory_type} for memory_type in TYPES),
    *({"tags_any": [tag]} for tag in TAGS),
    {"tags_any": TAGS[:2]},
    *({"tags_all": [tag]} for tag in TAGS),
    {"tags_all": TAGS[1:]},
    *({"where": where} for where in WHERE),
]


@contextmanager
def memory_store(**settings_: Any) -> Iterator[MemoryStore]:
    store = mnemolog.open("memory://", **settings_)
    try:
        yield store
    finally:
        store.close()


# ---- the model: what the store should hold -------------------------------------


@dataclass
class Item:
    tenant: str
    namespace: str
    key: str
    memory_type: str
    tags: frozenset[str]
    group: int | None
    vector: list[float] | None
    deleted: bool = False

    @property
    def address(self) -> tuple[str, str, str]:
        return (self.tenant, self.namespace, self.key)


@dataclass
class Model:
    items: dict[tuple[str, str, str], Item] = field(default_factory=dict)


def passes(item: Item, filters: dict[str, Any]) -> bool:
    """The filters of ``search``, in plain Python."""
    prefix = filters.get("namespace_prefix")
    if prefix is not None and not (
        item.namespace == prefix or item.namespace.startswith(prefix + ":")
    ):
        return False
    if "memory_type" in filters and item.memory_type != filters["memory_type"]:
        return False
    if "tags_any" in filters and not item.tags & set(filters["tags_any"]):
        return False
    if "tags_all" in filters and not set(filters["tags_all"]) <= item.tags:
        return False
    return all(
        meta_passes(item, path, condition)
        for path, condition in filters.get("where", {}).items()
    )


def meta_passes(item: Item, path: str, condition: Any) -> bool:
    metadata = {"g": item.group} if item.group is not None else {}
    if not isinstance(condition, dict):
        condition = {"$eq": condition}
    present = path in metadata
    value = metadata.get(path)
    for op, operand in condition.items():
        if op == "$exists":
            ok = present == operand
        elif not present:
            ok = op == "$ne"
        elif op == "$eq":
            ok = value == operand
        elif op == "$ne":
            ok = value != operand
        elif op == "$gt":
            ok = value > operand
        elif op == "$gte":
            ok = value >= operand
        elif op == "$lt":
            ok = value < operand
        elif op == "$lte":
            ok = value <= operand
        elif op == "$in":
            ok = value in operand
        else:
            raise AssertionError(op)
        if not ok:
            return False
    return True


def reference(
    model: Model, query: list[float], tenant: str, filters: dict[str, Any]
) -> list[tuple[float, str]]:
    """(cosine, key) of every candidate, best first: brute force in float64 on
    the float32 values the store keeps."""
    q = np.asarray(query, dtype=np.float32).astype(np.float64)
    q /= np.linalg.norm(q)
    ranked = []
    for item in model.items.values():
        if item.tenant != tenant or item.deleted or item.vector is None:
            continue
        if not passes(item, filters):
            continue
        v = np.asarray(item.vector, dtype=np.float32).astype(np.float64)
        ranked.append(
            (float(v @ q / np.linalg.norm(v)), f"{item.namespace}/{item.key}")
        )
    ranked.sort(key=lambda pair: -pair[0])
    return ranked


def check_similar(
    store: MemoryStore,
    model: Model,
    query: list[float],
    *,
    k: int,
    min_score: float | None,
    tenant: str,
    filters: dict[str, Any],
) -> None:
    results = store.similar(query, k=k, min_score=min_score, tenant=tenant, **filters)
    expected = reference(model, query, tenant, filters)
    truth = {name: score for score, name in expected}
    names = [f"{r.item.namespace}/{r.item.key}" for r in results]
    scores = [r.score for r in results]
    context = f"results={list(zip(names, scores, strict=True))} expected={expected[:k]}"

    # How many: k, or every candidate, or those at or above min_score
    # (up to the tolerance for scores right at min_score).
    low = high = len(expected)
    if min_score is not None:
        low = sum(score >= min_score + TOLERANCE for score, _ in expected)
        high = sum(score >= min_score - TOLERANCE for score, _ in expected)
    assert min(k, low) <= len(results) <= min(k, high), context

    # Only candidates, each once, each with its true score, best first.
    assert len(set(names)) == len(names), context
    assert all(r.item.tenant == tenant and not r.item.deleted for r in results), context
    for name, score in zip(names, scores, strict=True):
        assert name in truth, context
        assert abs(score - truth[name]) <= TOLERANCE, context
    assert scores == sorted(scores, reverse=True), context
    if min_score is not None:
        assert all(score >= min_score for score in scores), context

    # The multiset of scores is that of the true top: nothing better was missed.
    top = [score for score, _ in expected[: len(results)]]
    assert np.allclose(sorted(scores), sorted(top), rtol=0, atol=TOLERANCE), context

    # Where the true scores are clearly distinct, the memories are the same too.
    for i, (score, name) in enumerate(expected[: len(results)]):
        neighbours = [expected[j][0] for j in (i - 1, i + 1) if 0 <= j < len(expected)]
        if all(abs(score - other) > 100 * TOLERANCE for other in neighbours):
            assert names[i] == name, context


# ---- strategies ------------------------------------------------------------------

coordinate = st.one_of(
    st.integers(-3, 3).map(float),  # small integers make exact ties common
    st.floats(-1.0, 1.0, width=32).map(lambda x: 0.0 if abs(x) < 1e-6 else x),
)


def vectors(dims: int) -> st.SearchStrategy[list[float]]:
    def nonzero(values: list[float]) -> list[float]:
        if not any(values):
            values[0] = 1.0
        return values

    return st.lists(coordinate, min_size=dims, max_size=dims).map(nonzero)


filter_sets = st.fixed_dictionaries(
    {},
    optional={
        "namespace_prefix": st.sampled_from(PREFIXES),
        "memory_type": st.sampled_from(TYPES),
        "tags_any": st.lists(
            st.sampled_from(TAGS), min_size=1, max_size=2, unique=True
        ),
        "tags_all": st.lists(
            st.sampled_from(TAGS), min_size=1, max_size=2, unique=True
        ),
        "where": st.sampled_from(WHERE),
    },
)


def items(dims: int) -> st.SearchStrategy[list[Item]]:
    """1 to 60 memories; a list of independent items shrinks well."""
    one = st.builds(
        Item,
        tenant=st.sampled_from(TENANTS),
        namespace=st.sampled_from(NAMESPACES),
        key=st.just(""),
        memory_type=st.sampled_from(TYPES),
        tags=st.frozensets(st.sampled_from(TAGS)),
        group=st.one_of(st.none(), st.integers(0, 3)),
        vector=st.one_of(vectors(dims), vectors(dims), vectors(dims), st.none()),
        deleted=st.integers(0, 4).map(lambda n: n == 0),
    )

    def keyed(drawn: list[Item]) -> list[Item]:
        for i, item in enumerate(drawn):
            item.key = f"k{i}"
        return drawn

    return st.lists(one, min_size=1, max_size=60).map(keyed)


@st.composite
def searches(draw: st.DrawFn, dims: int) -> dict[str, Any]:
    return {
        "query": draw(vectors(dims)),
        "k": draw(st.one_of(st.integers(1, 5), st.integers(1, 80))),
        "min_score": draw(st.one_of(st.none(), st.none(), st.floats(-1.0, 1.0))),
        "tenant": draw(st.sampled_from(TENANTS)),
        "filters": draw(filter_sets),
    }


def fill(store: MemoryStore, model: Model, drawn: list[Item]) -> None:
    for tenant in TENANTS:
        batch = []
        for item in drawn:
            if item.tenant != tenant:
                continue
            entry: dict[str, Any] = {
                "namespace": item.namespace,
                "key": item.key,
                "value": item.key,
                "memory_type": item.memory_type,
                "tags": sorted(item.tags),
                "metadata": {"g": item.group} if item.group is not None else {},
            }
            if item.vector is not None:
                entry["embedding"] = item.vector
            batch.append(entry)
        if batch:
            store.put_many(batch, tenant=tenant)
    for item in drawn:
        model.items[item.address] = item
        if item.deleted:
            store.delete(item.namespace, item.key, tenant=item.tenant)


# ---- (a) similar is the exact filtered top k -------------------------------------


@settings(max_examples=40, **SETTINGS)
@given(data=st.data(), dims=st.integers(2, 16))
def test_similar_is_the_brute_force_top_k(data: st.DataObject, dims: int) -> None:
    drawn = data.draw(items(dims))
    with memory_store(vector_dims=dims, vector_model="m") as store:
        model = Model()
        fill(store, model, drawn)
        # Unfiltered, then each filter alone (every value of each), then a
        # random combination.
        search = data.draw(searches(dims))
        check_similar(store, model, **{**search, "filters": {}})
        for single in SINGLE_FILTERS:
            check_similar(store, model, **{**search, "filters": single})
        check_similar(store, model, **search)
        check_similar(
            store,
            model,
            **{**data.draw(searches(dims)), "k": 10_000, "min_score": None},
        )


@st.composite
def changes(draw: st.DrawFn, count: int, dims: int) -> list[tuple[str, int, Any]]:
    kinds = st.sampled_from(["vector", "drop", "delete", "restore", "meta", "type"])
    return draw(
        st.lists(
            st.tuples(
                kinds,
                st.integers(0, count - 1),
                st.one_of(vectors(dims), st.integers(0, 3), st.sampled_from(TYPES)),
            ),
            max_size=30,
        )
    )


def apply(
    store: MemoryStore, model: Model, change: tuple[str, int, Any], dims: int
) -> None:
    kind, index, argument = change
    item = list(model.items.values())[index]
    address = {"tenant": item.tenant}
    if kind == "delete":
        store.delete(item.namespace, item.key, **address)
        item.deleted = True
    elif kind == "restore":
        store.restore(item.namespace, item.key, **address)
        item.deleted = False
    elif kind == "vector" and isinstance(argument, list):
        # A put of a live or deleted memory: a new vector, and it is live.
        store.put(
            item.namespace, item.key, f"{item.key} again", embedding=argument, **address
        )
        item.vector, item.deleted = argument, False
    elif kind == "drop":
        # A new value without a vector drops the old one (and brings it back).
        store.put(
            item.namespace,
            item.key,
            f"{item.key} {len(str(argument))} dropped",
            **address,
        )
        item.vector, item.deleted = None, False
    elif kind == "meta" and isinstance(argument, int) and not item.deleted:
        store.update(item.namespace, item.key, metadata={"g": argument}, **address)
        item.group = argument
    elif kind == "type" and isinstance(argument, str) and not item.deleted:
        store.update(item.namespace, item.key, memory_type=argument, **address)
        item.memory_type = argument


@settings(max_examples=30, **SETTINGS)
@given(data=st.data(), dims=st.integers(2, 16))
def test_similar_follows_changes_exactly(data: st.DataObject, dims: int) -> None:
    drawn = data.draw(items(dims))
    with memory_store(vector_dims=dims, vector_model="m") as store:
        model = Model()
        fill(store, model, drawn)
        # A first search builds the index; the changes must then be followed
        # row by row (freed rows are reused by new vectors).
        check_similar(store, model, **data.draw(searches(dims)))
        steps = data.draw(changes(len(drawn), dims))
        for i, change in enumerate(steps):
            apply(store, model, change, dims)
            if i % 7 == 6:
                check_similar(store, model, **data.draw(searches(dims)))
        search = data.draw(searches(dims))
        check_similar(store, model, **search)
        check_similar(
            store, model, **{**search, "filters": {}, "min_score": None, "k": 10_000}
        )


@settings(max_examples=25, **SETTINGS)
@given(data=st.data(), dims=st.integers(2, 16))
def test_similar_after_rebuild_is_the_same(data: st.DataObject, dims: int) -> None:
    drawn = data.draw(items(dims))
    with memory_store(vector_dims=dims, vector_model="m") as store:
        model = Model()
        fill(store, model, drawn)
        search = data.draw(searches(dims))
        before = store.similar(
            search["query"], k=100, tenant=search["tenant"], **search["filters"]
        )
        store.projections.rebuild()
        after = store.similar(
            search["query"], k=100, tenant=search["tenant"], **search["filters"]
        )
        assert sorted((r.item.key, round(r.score, 5)) for r in before) == sorted(
            (r.item.key, round(r.score, 5)) for r in after
        )
        check_similar(store, model, **search)


# ---- (b) retrieve is reciprocal rank fusion ------------------------------------------

WORDS = ["alpha", "beta", "gamma", "delta", "kiwi", "lemon"]


def fused(
    lists: dict[str, list[Scored[Memory]]], weights: dict[str, float]
) -> dict[str, float]:
    scores: dict[str, float] = {}
    for name, results in lists.items():
        for rank, result in enumerate(results, start=1):
            key = result.item.id.hex
            scores[key] = scores.get(key, 0.0) + weights.get(name, 0.0) / (60 + rank)
    return scores


@settings(max_examples=30, **SETTINGS)
@given(
    data=st.data(),
    dims=st.integers(2, 8),
    texts=st.lists(
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=5).map(" ".join),
        min_size=1,
        max_size=30,
    ),
    query=st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(" ".join),
    k=st.integers(1, 40),
    weights=st.fixed_dictionaries(
        {}, optional={"vector": st.floats(0.1, 3.0), "text": st.floats(0.1, 3.0)}
    ),
)
def test_retrieve_scores_are_the_reciprocal_rank_fusion(
    data: st.DataObject,
    dims: int,
    texts: list[str],
    query: str,
    k: int,
    weights: dict[str, float],
) -> None:
    with memory_store(vector_dims=dims, vector_model="m") as store:
        for i, text in enumerate(texts):
            vector = data.draw(st.one_of(st.none(), vectors(dims)))
            store.put("user:a", f"k{i}", text, embedding=vector)
        q = data.draw(vectors(dims))
        depth = max(3 * k, 50)
        used = weights or {"vector": 1.0, "text": 1.0}
        lists = {}
        if used.get("vector", 0) > 0:
            lists["vector"] = store.similar(q, k=depth)
        if used.get("text", 0) > 0:
            lists["text"] = store.text_search(query, k=depth)
        expected = fused(lists, used)
        best = sorted(expected.items(), key=lambda pair: (-pair[1], pair[0]))[:k]
        results = store.retrieve(query, vector=q, k=k, weights=weights or None)
        got = [(r.item.id.hex, r.score) for r in results]
        assert [i for i, _ in got] == [i for i, _ in best]
        assert np.allclose(
            [s for _, s in got], [s for _, s in best], rtol=1e-12, atol=0
        )


# ---- (c) text search reads no query syntax ------------------------------------------

DOCS = [
    "x marks the spot",
    "this and that or not",
    "a b c",
    "near the sea",
    'quotes " and stars * and colons :',
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9",
    "emoji \U0001f9e0 brain",
]

_TEXT_STORE: list[MemoryStore] = []


def text_store() -> MemoryStore:
    if not _TEXT_STORE:
        store = mnemolog.open("memory://")
        for i, doc in enumerate(DOCS):
            store.put("user:a", f"d{i}", {"text": doc, "n": i})
        _TEXT_STORE.append(store)
    return _TEXT_STORE[0]


query_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("\"*^():-+{}[],.'NEARANDORNOT \u00e9\t\n\r")),
        st.characters(blacklist_categories=("Cc", "Cs")),
    ),
    max_size=40,
)


@settings(max_examples=40, **SETTINGS)
@given(query=query_text)
def test_any_text_is_a_query_of_words(query: str) -> None:
    store = text_store()
    every = {r.item.key for r in store.text_search(query, k=100, match="any")}
    both = {r.item.key for r in store.text_search(query, k=100, match="all")}
    assert both <= every <= {f"d{i}" for i in range(len(DOCS))}
    fused_keys = [r.item.key for r in store.retrieve(query, k=100)]
    assert set(fused_keys) == every
    if not any(ch.isalnum() for ch in query):
        assert every == set()
