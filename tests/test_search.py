"""Search by meaning, by words, and by both: ``similar``, ``text_search`` and
``retrieve``, on every backend.

A deterministic test embedder (a bag of hashed words, normalised) stands in
for a real model, so that which memories are near which query is known in
advance and every call to it can be counted.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import mnemolog
from mnemolog import Memory, MemoryStore, TenantMismatch, ValidationError
from mnemolog.models import Scored

DIMS = 64
_WORDS = re.compile(r"\w+", re.UNICODE)


def word_vector(text: str, dims: int = DIMS) -> npt.NDArray[np.float32]:
    """A bag of the text's lower-cased words, hashed into ``dims`` buckets,
    normalised (zeros when the text has no words)."""
    row = np.zeros(dims, dtype=np.float64)
    for word in _WORDS.findall(text.lower()):
        digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
        row[int.from_bytes(digest, "little") % dims] += 1.0
    norm = float(np.linalg.norm(row))
    if norm:
        row /= norm
    return row.astype(np.float32)


class HashEmbedder:
    """A deterministic embedder for tests; records every call it gets."""

    def __init__(self, name: str = "test-hash-64", dims: int = DIMS) -> None:
        self._name = name
        self._dims = dims
        self.calls: list[list[str]] = []

    @property
    def name(self) -> str:
        return self._name

    @property
    def dims(self) -> int:
        return self._dims

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.calls.append(list(texts))
        rows = np.zeros((len(texts), self._dims), dtype=np.float32)
        for i, text in enumerate(texts):
            rows[i] = word_vector(text, self._dims)
        return rows


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


def keys(results: Sequence[Scored[Memory]]) -> list[str]:
    return [r.item.key for r in results]


def key_set(results: Sequence[Scored[Memory]]) -> set[str]:
    return {r.item.key for r in results}


def head(store: MemoryStore) -> int:
    """The log's head position: it moves on every write."""
    return store.projections.status()[0].head


Opener = Callable[..., MemoryStore]


@pytest.fixture
def open_store(store_url: str) -> Iterator[Opener]:
    """Opens the test's store URL with the given settings; closes at teardown."""
    opened: list[MemoryStore] = []

    def opener(**settings: Any) -> MemoryStore:
        store = mnemolog.open(store_url, **settings)
        opened.append(store)
        return store

    yield opener
    for store in reversed(opened):
        store.close()


@pytest.fixture
def vstore(open_store: Opener) -> MemoryStore:
    """A store with an index of caller-given 4-dimensional vectors, model "m"."""
    return open_store(vector_dims=4, vector_model="m")


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture
def estore(open_store: Opener, embedder: HashEmbedder) -> MemoryStore:
    """A store whose vectors come from the test embedder."""
    return open_store(embedder=embedder)


# ---- similar: basics ---------------------------------------------------------


def test_put_with_embedding_then_similar_finds_it(vstore: MemoryStore) -> None:
    vectors = {
        "a": [1.0, 0.0, 0.0, 0.0],
        "b": [0.0, 1.0, 0.0, 0.0],
        "c": [1.0, 1.0, 0.0, 0.0],
        "d": [-1.0, 0.0, 0.5, 0.0],
    }
    for key, vector in vectors.items():
        vstore.put("user:alice", key, f"value {key}", embedding=vector)
    query = [1.0, 0.1, 0.0, 0.0]
    results = vstore.similar(query, k=4)
    assert keys(results) == ["a", "c", "b", "d"]
    for result in results:
        assert result.score == pytest.approx(
            cosine(query, vectors[result.item.key]), abs=1e-6
        )
        assert result.item == vstore.get("user:alice", result.item.key)
    (best,) = vstore.similar(vectors["c"], k=1)
    assert best.item.key == "c"
    assert best.score == pytest.approx(1.0, abs=1e-6)
    # The index's model may be named explicitly; numpy arrays are vectors too.
    vstore.put(
        "user:alice", "e", "e", embedding=np.array([0, 0, 0, 2.0]), embedding_model="m"
    )
    assert keys(vstore.similar([0, 0, 0, 1], k=1)) == ["e"]


def test_similar_returns_each_memory_as_it_stands_now(
    vstore: MemoryStore, tmp_path: Path
) -> None:
    """Results are never an older version of a memory, however often the
    same memories are found: every kind of change shows at the next search."""
    q = [1.0, 0.0, 0.0, 0.0]
    vstore.put("user:a", "k", {"text": "v1"}, embedding=q, tags=["x"])
    vstore.put("user:a", "other", "far", embedding=[0.0, 1.0, 0.0, 0.0])
    for _ in range(3):
        assert vstore.similar(q, k=1)[0].item.value == {"text": "v1"}
    changes: list[Callable[[], object]] = [
        lambda: vstore.update("user:a", "k", {"text": "v2"}, embedding=q),
        lambda: vstore.update("user:a", "k", tags=["y"]),
        lambda: vstore.update("user:a", "k", metadata={"m": 1}),
        lambda: vstore.update("user:a", "k", importance=0.9),
        lambda: vstore.put("user:a", "k", {"text": "v3"}, embedding=q),
    ]
    for change in changes:
        change()
        (found,) = vstore.similar(q, k=1)
        assert found.item == vstore.get("user:a", "k")
    vstore.delete("user:a", "k")
    assert keys(vstore.similar(q, k=1)) == ["other"]
    vstore.restore("user:a", "k")
    (found,) = vstore.similar(q, k=1)
    assert found.item == vstore.get("user:a", "k")
    assert not found.item.deleted


def test_tag_filters_follow_every_change_of_tags(
    vstore: MemoryStore, persistent_url: str
) -> None:
    q = [1.0, 0.0, 0.0, 0.0]
    vstore.put("user:a", "k", "v", embedding=q, tags=["red", "blue"])
    vstore.put("user:a", "o", "v", embedding=[0.9, 0.1, 0, 0], tags=["blue"])

    def found(**tags: list[str]) -> set[str]:
        return key_set(vstore.similar(q, k=5, **tags))

    assert found(tags_any=["red"]) == {"k"}
    assert found(tags_all=["red", "blue"]) == {"k"}
    assert found(tags_any=["red", "blue"]) == {"k", "o"}
    assert found(tags_all=["blue", "green"]) == set()
    vstore.update("user:a", "k", tags=["green"])
    assert found(tags_any=["red"]) == set()
    assert found(tags_any=["blue"]) == {"o"}
    assert key_set(vstore.similar(q, tags_any=["green"], namespace_prefix="user")) == {
        "k"
    }
    vstore.delete("user:a", "k")
    assert found(tags_any=["green"]) == set()
    vstore.restore("user:a", "k")
    assert found(tags_all=["green"]) == {"k"}
    vstore.update("user:a", "k", tags=[])
    assert found(tags_any=["green", "red", "blue"]) == {"o"}
    # Another store on the same log sees the same, through its own index.
    with mnemolog.open(persistent_url, vector_dims=4, vector_model="m") as one:
        one.put("user:a", "t", "v", embedding=q, tags=["x"])
        with mnemolog.open(persistent_url, vector_dims=4, vector_model="m") as two:
            assert key_set(two.similar(q, tags_any=["x"])) == {"t"}
            one.update("user:a", "t", tags=["y"])
            assert key_set(two.similar(q, tags_any=["x"])) == set()
            assert key_set(two.similar(q, tags_all=["y"])) == {"t"}


def test_a_full_row_cache_never_costs_a_result(
    vstore: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mnemolog.vector_index

    monkeypatch.setattr(mnemolog.vector_index, "ROW_CACHE", 3)
    for i in range(8):
        vstore.put("user:a", f"k{i}", f"v{i}", embedding=[1.0, i / 8, 0.0, 0.0])
    q = [1.0, 0.0, 0.0, 0.0]
    for k in (4, 5, 8, 2, 8):
        assert len(vstore.similar(q, k=k)) == k


def test_a_second_store_never_serves_an_older_version(persistent_url: str) -> None:
    url = persistent_url
    q = [1.0, 0.0, 0.0, 0.0]
    with (
        mnemolog.open(url, vector_dims=4, vector_model="m") as writer,
        mnemolog.open(url, vector_dims=4, vector_model="m") as reader,
    ):
        writer.put("user:a", "k", "v0", embedding=q)
        for version in range(1, 6):
            assert reader.similar(q, k=1)[0].item.value == f"v{version - 1}"
            writer.update("user:a", "k", f"v{version}", embedding=q)
            (found,) = reader.similar(q, k=1)
            assert found.item.value == f"v{version}"
            assert found.item.version == version + 1
        writer.update("user:a", "k", tags=["late"])
        assert reader.similar(q, k=1)[0].item.tags == frozenset({"late"})


def test_a_text_query_is_embedded_by_the_embedder(
    estore: MemoryStore, embedder: HashEmbedder
) -> None:
    texts = {
        "cat": "the cat sat on the mat",
        "dog": "dogs bark at the mailman",
        "fish": "fish swim in the deep sea",
    }
    for key, text in texts.items():
        estore.put("user:alice", key, text)
    results = estore.similar("a cat on a mat", k=3)
    assert results[0].item.key == "cat"
    for result in results:
        expected = cosine(
            word_vector("a cat on a mat"), word_vector(texts[result.item.key])
        )
        assert result.score == pytest.approx(expected, abs=1e-5)
    assert ["a cat on a mat"] in embedder.calls
    # A vector query works too, with the embedder's dimensions.
    assert keys(estore.similar(word_vector("deep sea fish"), k=1)) == ["fish"]


def test_memories_without_a_vector_are_never_similar(vstore: MemoryStore) -> None:
    vstore.put("user:a", "with", "x", embedding=[1, 0, 0, 0])
    vstore.put("user:a", "without", "x")
    assert keys(vstore.similar([1, 0, 0, 0], k=10)) == ["with"]


def test_similar_on_an_empty_index_is_empty(vstore: MemoryStore) -> None:
    assert vstore.similar([1, 2, 3, 4]) == []
    vstore.put("user:a", "k", "no vector")
    assert vstore.similar([1, 2, 3, 4], namespace_prefix="user") == []


# ---- similar: filters --------------------------------------------------------

ROWS = [
    # key, namespace, type, tags, metadata, vector
    (
        "a1",
        "user:alice",
        "semantic",
        ["x", "y"],
        {"score": 1, "lang": "en"},
        [1, 0, 0, 0],
    ),
    (
        "a2",
        "user:alice:prefs",
        "episodic",
        ["x"],
        {"score": 5, "lang": "fr"},
        [1, 1, 0, 0],
    ),
    ("b1", "user:alice2", "semantic", ["y"], {"score": 3}, [1, 0, 1, 0]),
    ("c1", "user:al", "procedural", [], {"lang": "en"}, [0, 1, 0, 0]),
    ("d1", "user:a_ice", "working", ["z"], {"score": 10}, [0, 0, 1, 1]),
    ("e1", "app:main", "semantic", ["x"], {"score": 2.5}, [1, 0, 0, 1]),
    ("f1", "app:main:sub", "episodic", ["y", "z"], {"lang": "de"}, [-1, 1, 0, 0]),
]


@pytest.fixture
def populated(vstore: MemoryStore) -> MemoryStore:
    for key, namespace, memory_type, tags, metadata, vector in ROWS:
        vstore.put(
            namespace,
            key,
            f"words about {key}",
            tags=tags,
            metadata=metadata,
            memory_type=memory_type,
            embedding=vector,
        )
    # Memories without vectors, and a deleted one, are never candidates.
    vstore.put("user:alice", "novec", "no vector", tags=["x"], metadata={"score": 1})
    vstore.put("user:alice", "gone", "deleted", tags=["x"], embedding=[1, 0, 0, 0])
    vstore.delete("user:alice", "gone")
    return vstore


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, {"a1", "a2", "b1", "c1", "d1", "e1", "f1"}),
        ({"namespace_prefix": "user:alice"}, {"a1", "a2"}),
        ({"namespace_prefix": "user:al"}, {"c1"}),
        ({"namespace_prefix": "user:alice:prefs"}, {"a2"}),
        ({"namespace_prefix": "user"}, {"a1", "a2", "b1", "c1", "d1"}),
        ({"namespace_prefix": "app"}, {"e1", "f1"}),
        ({"namespace_prefix": "app:main"}, {"e1", "f1"}),
        ({"namespace_prefix": "app:mai"}, set()),
        ({"namespace_prefix": "project"}, set()),
        ({"memory_type": "semantic"}, {"a1", "b1", "e1"}),
        ({"memory_type": "episodic"}, {"a2", "f1"}),
        ({"memory_type": "working"}, {"d1"}),
        ({"namespace_prefix": "user", "memory_type": "semantic"}, {"a1", "b1"}),
        ({"tags_any": ["x"]}, {"a1", "a2", "e1"}),
        ({"tags_any": ["x", "z"]}, {"a1", "a2", "e1", "d1", "f1"}),
        ({"tags_any": ["nope"]}, set()),
        ({"tags_all": ["x", "y"]}, {"a1"}),
        ({"tags_all": ["y", "z"]}, {"f1"}),
        ({"tags_all": ["y"], "namespace_prefix": "user"}, {"a1", "b1"}),
        ({"where": {"lang": "en"}}, {"a1", "c1"}),
        ({"where": {"score": {"$gt": 2}}}, {"a2", "b1", "d1", "e1"}),
        ({"where": {"score": {"$exists": False}}}, {"c1", "f1"}),
        ({"where": {"lang": {"$in": ["fr", "de"]}}}, {"a2", "f1"}),
        (
            {
                "where": {"score": {"$gte": 1}},
                "tags_any": ["x"],
                "memory_type": "semantic",
            },
            {"a1", "e1"},
        ),
    ],
)
def test_filters_give_exactly_the_right_candidates(
    populated: MemoryStore, filters: dict[str, Any], expected: set[str]
) -> None:
    results = populated.similar([1, 0.5, 0.25, 0.125], k=100, **filters)
    assert key_set(results) == expected
    assert len(results) == len(expected)
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)
    # The same filters in a plain search (which also sees memories without
    # vectors) agree, less the memories that have none.
    searched = {m.key for m in populated.search(limit=100, **filters)} - {"novec"}
    assert searched == expected
    # Text search over the same filters sees the same memories (every one of
    # them says "words"; the memory without a vector does not).
    assert key_set(populated.text_search("words", k=100, **filters)) == expected


def test_filtered_similar_is_the_true_top_k_never_fewer(populated: MemoryStore) -> None:
    # The best vectors overall are outside the filter; the filter must not
    # leave the result short of k.
    results = populated.similar([1, 0, 0, 0], k=2, namespace_prefix="app")
    assert keys(results) == ["e1", "f1"]
    results = populated.similar([1, 0, 0, 0], k=1, tags_any=["z"])
    assert keys(results) == ["d1"]
    assert results[0].score == pytest.approx(0.0, abs=1e-6)
    results = populated.similar([1, 0, 0, 0], k=3, memory_type="episodic")
    assert keys(results) == ["a2", "f1"]


def test_updated_after_and_before_filter_similar(vstore: MemoryStore) -> None:
    old = vstore.put("user:a", "old", "x", embedding=[1, 0, 0, 0])
    mid = vstore.put("user:a", "mid", "x", embedding=[1, 1, 0, 0])
    new = vstore.put("user:a", "new", "x", embedding=[0, 1, 0, 0])
    query = [1, 0, 0, 0]
    assert key_set(vstore.similar(query, updated_after=old.updated_at)) == {
        "mid",
        "new",
    }
    assert key_set(vstore.similar(query, updated_before=new.updated_at)) == {
        "old",
        "mid",
    }
    assert key_set(
        vstore.similar(
            query, updated_after=old.updated_at, updated_before=new.updated_at
        )
    ) == {"mid"}
    assert vstore.similar(query, updated_after=new.updated_at) == []
    # Touching the old memory (metadata only) moves it past the cut.
    vstore.update("user:a", "old", metadata={"touched": True})
    assert key_set(vstore.similar(query, updated_after=mid.updated_at)) == {
        "old",
        "new",
    }


def test_k_larger_than_the_candidates_returns_them_all(vstore: MemoryStore) -> None:
    for i in range(5):
        vstore.put("user:a", f"k{i}", i, embedding=[1, i, 0, 0])
    assert len(vstore.similar([1, 0, 0, 0], k=10_000)) == 5
    assert len(vstore.similar([1, 0, 0, 0], k=5)) == 5
    assert keys(vstore.similar([1, 0, 0, 0], k=2)) == ["k0", "k1"]
    assert keys(vstore.similar([1, 0, 0, 0], k=1)) == ["k0"]


def test_min_score_drops_the_results_below_it(vstore: MemoryStore) -> None:
    vectors = {
        "same": [1, 0, 0, 0],
        "near": [1, 1, 0, 0],
        "ortho": [0, 1, 0, 0],
        "opp": [-1, 0, 0, 0],
    }
    for key, vector in vectors.items():
        vstore.put("user:a", key, key, embedding=vector)
    query = [1, 0, 0, 0]
    assert keys(vstore.similar(query, min_score=-1)) == ["same", "near", "ortho", "opp"]
    assert keys(vstore.similar(query, min_score=-0.5)) == ["same", "near", "ortho"]
    assert keys(vstore.similar(query, min_score=0.5)) == ["same", "near"]
    assert keys(vstore.similar(query, min_score=0.99)) == ["same"]
    assert keys(vstore.similar(query, min_score=0.5, k=1)) == ["same"]
    assert all(r.score >= 0.5 for r in vstore.similar(query, min_score=0.5))
    assert vstore.similar([0, 0, 0, 1], min_score=0.1) == []


def test_a_larger_index_grows_reuses_rows_and_stays_exact(vstore: MemoryStore) -> None:
    rng = np.random.default_rng(7)
    vectors = {f"k{i}": rng.normal(size=4) for i in range(300)}
    vstore.put_many(
        [
            {
                "namespace": "user:a" if i % 3 else "user:b",
                "key": key,
                "value": i,
                "embedding": v,
            }
            for i, (key, v) in enumerate(vectors.items())
        ]
    )
    for i in range(0, 300, 4):
        vstore.delete("user:a" if i % 3 else "user:b", f"k{i}")
        del vectors[f"k{i}"]
    for i in range(300, 340):  # these take the freed rows
        vectors[f"k{i}"] = rng.normal(size=4)
        vstore.put(
            "user:a" if i % 3 else "user:b", f"k{i}", i, embedding=vectors[f"k{i}"]
        )
    query = rng.normal(size=4)
    expected = sorted(vectors, key=lambda k: -cosine(query, vectors[k]))[:25]
    results = vstore.similar(query, k=25)
    assert keys(results) == expected
    for result in results:
        assert result.score == pytest.approx(
            cosine(query, vectors[result.item.key]), abs=1e-5
        )
    in_b = [k for k in vectors if int(k[1:]) % 3 == 0]
    expected_b = sorted(in_b, key=lambda k: -cosine(query, vectors[k]))[:10]
    assert keys(vstore.similar(query, k=10, namespace_prefix="user:b")) == expected_b


# ---- tenants -----------------------------------------------------------------


def test_tenants_never_see_each_others_memories(estore: MemoryStore) -> None:
    a = estore.tenant("a")
    b = estore.tenant("b")
    a.put("user:alice", "k", "secret plans of tenant a about rockets", tags=["t"])
    b.put("user:alice", "k", "secret plans of tenant b about rockets", tags=["t"])
    b.put("user:alice", "only_b", "secret rockets rockets", tags=["t"])
    query = "secret rockets"
    for view, name, count in ((a, "a", 1), (b, "b", 2)):
        for results in (
            view.similar(query, k=100),
            view.similar(query, k=100, tags_any=["t"], namespace_prefix="user"),
            view.text_search(query, k=100),
            view.text_search(query, k=100, match="all"),
            view.retrieve(query, k=100),
            view.retrieve(query, k=100, tags_all=["t"]),
            estore.similar(query, k=100, tenant=name),
            estore.text_search(query, k=100, tenant=name),
            estore.retrieve(query, k=100, tenant=name),
        ):
            assert [r.item.tenant for r in results] == [name] * count
    # The default tenant has nothing.
    assert estore.similar(query) == []
    assert estore.text_search(query) == []
    assert estore.retrieve(query) == []
    # A view refuses another tenant.
    with pytest.raises(TenantMismatch):
        a.similar(query, tenant="b")
    with pytest.raises(TenantMismatch):
        a.text_search(query, tenant="b")
    with pytest.raises(TenantMismatch):
        a.retrieve(query, tenant="b")
    # Deleting in one tenant leaves the other's index alone.
    b.delete("user:alice", "k")
    assert keys(a.similar(query)) == ["k"]
    assert keys(b.similar(query)) == ["only_b"]


def test_tenant_vectors_are_isolated_with_caller_vectors(vstore: MemoryStore) -> None:
    vstore.put("user:a", "k", "a", embedding=[1, 0, 0, 0], tenant="a")
    vstore.put("user:a", "k", "b", embedding=[1, 0, 0, 0], tenant="b")
    vstore.put("user:a", "k2", "b", embedding=[1, 0.1, 0, 0], tenant="b")
    assert [r.item.value for r in vstore.similar([1, 0, 0, 0], tenant="a")] == ["a"]
    assert [r.item.value for r in vstore.tenant("b").similar([1, 0, 0, 0])] == [
        "b",
        "b",
    ]
    assert vstore.similar([1, 0, 0, 0]) == []


# ---- delete, restore, update -------------------------------------------------


def test_delete_hides_from_every_search_and_restore_brings_back(
    estore: MemoryStore,
) -> None:
    estore.put("user:a", "cat", "the cat sat on the mat")
    estore.put("user:a", "dog", "the dog sat on the log")
    before = {r.item.key: r.score for r in estore.similar("cat mat")}
    assert set(before) == {"cat", "dog"}
    estore.delete("user:a", "cat")
    assert "cat" not in key_set(estore.similar("cat mat", k=100))
    assert "cat" not in key_set(estore.text_search("cat mat", k=100))
    assert "cat" not in key_set(estore.retrieve("cat mat", k=100))
    assert key_set(estore.similar("cat mat", k=100, namespace_prefix="user")) == {"dog"}
    assert key_set(
        estore.similar("cat mat", k=100, where={"x": {"$exists": False}})
    ) == {"dog"}
    estore.restore("user:a", "cat")
    after = {r.item.key: r.score for r in estore.similar("cat mat")}
    assert after == pytest.approx(before)
    assert keys(estore.text_search("cat")) == ["cat"]
    assert keys(estore.retrieve("cat mat"))[0] == "cat"


def test_putting_a_deleted_memory_again_brings_it_back_to_search(
    vstore: MemoryStore,
) -> None:
    vstore.put("user:a", "k", "old words", embedding=[1, 0, 0, 0])
    vstore.delete("user:a", "k")
    vstore.put("user:a", "k", "new words", embedding=[0, 1, 0, 0])
    (found,) = vstore.similar([0, 1, 0, 0])
    assert found.item.value == "new words"
    assert found.score == pytest.approx(1.0, abs=1e-6)
    assert keys(vstore.text_search("new")) == ["k"]
    assert vstore.text_search("old") == []


def test_a_new_value_is_re_embedded_by_the_embedder(
    estore: MemoryStore, embedder: HashEmbedder
) -> None:
    estore.put("user:a", "k", "apples and pears")
    estore.put("user:a", "other", "bananas and lemons")
    embedder.calls.clear()
    estore.update("user:a", "k", "rockets and satellites")
    assert embedder.calls == [["rockets and satellites"]]
    (top, *_) = estore.similar("rockets satellites")
    assert top.item.key == "k"
    assert top.score == pytest.approx(
        cosine(
            word_vector("rockets satellites"), word_vector("rockets and satellites")
        ),
        abs=1e-5,
    )
    assert keys(estore.similar("apples pears"))[0] == "other"
    assert keys(estore.text_search("rockets")) == ["k"]
    assert estore.text_search("apples") == []
    # put re-embeds too.
    estore.put("user:a", "k", "pears only")
    assert keys(estore.similar("pears"))[0] == "k"


def test_a_new_value_without_embedder_or_embedding_drops_the_vector(
    vstore: MemoryStore,
) -> None:
    vstore.put("user:a", "k", "first words", embedding=[1, 0, 0, 0])
    vstore.put("user:a", "keep", "other", embedding=[0, 1, 0, 0])
    vstore.update("user:a", "k", "second words")
    assert keys(vstore.similar([1, 0, 0, 0], k=10)) == ["keep"]
    assert keys(vstore.text_search("second")) == ["k"]
    # A new vector may come with the value, or later on its own.
    vstore.update("user:a", "k", embedding=[0, 0, 1, 0])
    assert keys(vstore.similar([0, 0, 1, 0], k=1)) == ["k"]
    vstore.put("user:a", "k", "third words")
    assert keys(vstore.similar([0, 0, 1, 0], k=10)) == ["keep"]
    vstore.put("user:a", "k", "fourth words", embedding=[0, 0, 0, 1])
    (found,) = vstore.similar([0, 0, 0, 1], k=1)
    assert (found.item.key, found.item.value) == ("k", "fourth words")


def test_writing_the_same_value_again_without_a_vector_keeps_it(
    vstore: MemoryStore,
) -> None:
    """The put docstring: writing what is already stored is a no-op; and
    docs/search.md: changing only tags or metadata keeps the vector. The value
    is not new, so its vector still describes it."""
    vstore.put("user:a", "k", "same words", embedding=[1, 0, 0, 0])
    again = vstore.put("user:a", "k", "same words")
    assert again.version == 1
    assert len(vstore.history("user:a", "k")) == 1
    assert keys(vstore.similar([1, 0, 0, 0])) == ["k"]


def test_a_put_changing_only_tags_keeps_the_vector(vstore: MemoryStore) -> None:
    vstore.put("user:a", "k", "same words", embedding=[1, 0, 0, 0])
    tagged = vstore.put("user:a", "k", "same words", tags=["new"], metadata={"m": 1})
    assert tagged.version == 2
    assert keys(vstore.similar([1, 0, 0, 0], tags_any=["new"])) == ["k"]
    assert vstore.history("user:a", "k")[-1].changed == ("metadata", "tags")


def test_an_identical_put_with_an_embedder_is_a_no_op(
    estore: MemoryStore, embedder: HashEmbedder
) -> None:
    estore.put("user:a", "k", "same words")
    again = estore.put("user:a", "k", "same words")
    assert again.version == 1
    assert keys(estore.similar("same words")) == ["k"]


def test_changing_only_metadata_keeps_the_vector(
    vstore: MemoryStore, open_store: Opener
) -> None:
    vstore.put("user:a", "k", "words", embedding=[1, 0, 0, 0], tags=["a"])
    vstore.update("user:a", "k", metadata={"m": 1})
    vstore.update("user:a", "k", tags=["b"], importance=0.9, confidence=0.2)
    vstore.update("user:a", "k", tags=["c"])
    vstore.update("user:a", "k", memory_type="episodic")
    (found,) = vstore.similar([1, 0, 0, 0])
    assert found.item.key == "k"
    assert found.score == pytest.approx(1.0, abs=1e-6)
    assert found.item.version == 5
    # The filters see the changed type and tags.
    assert keys(vstore.similar([1, 0, 0, 0], memory_type="episodic")) == ["k"]
    assert vstore.similar([1, 0, 0, 0], memory_type="semantic") == []
    assert keys(vstore.similar([1, 0, 0, 0], tags_any=["c"])) == ["k"]
    assert vstore.similar([1, 0, 0, 0], tags_any=["a"]) == []


def test_changing_only_metadata_does_not_call_the_embedder(
    estore: MemoryStore, embedder: HashEmbedder
) -> None:
    estore.put("user:a", "k", "cats and dogs")
    embedder.calls.clear()
    estore.update("user:a", "k", metadata={"m": 1}, tags=["t"], memory_type="episodic")
    estore.delete("user:a", "k")
    estore.restore("user:a", "k")
    assert embedder.calls == []
    (found,) = estore.similar(word_vector("cats and dogs"))
    assert found.score == pytest.approx(1.0, abs=1e-5)


def test_embed_fields_choose_what_is_embedded(open_store: Opener) -> None:
    embedder = HashEmbedder()
    store = open_store(embedder=embedder, embed_fields=("text", "extra.note"))
    store.put(
        "user:a",
        "k",
        {"text": "alpha", "title": "omega", "extra": {"note": "beta", "x": "gamma"}},
    )
    assert embedder.calls == [["alpha\nbeta"]]
    (found,) = store.similar(word_vector("alpha beta"))
    assert found.score == pytest.approx(1.0, abs=1e-5)
    # A value with none of the fields gets no vector; text search still sees it.
    store.put("user:a", "none", {"title": "omega"})
    assert keys(store.similar("omega")) == ["k"]
    assert key_set(store.text_search("omega")) == {"k", "none"}


def test_a_value_without_text_gets_no_vector(
    estore: MemoryStore, embedder: HashEmbedder
) -> None:
    estore.put("user:a", "n", 42)
    estore.put("user:a", "b", b"bytes are not text")
    estore.put("user:a", "blank", "   ")
    assert embedder.calls == []
    estore.put("user:a", "t", "some text")
    assert keys(estore.similar("some text", k=10)) == ["t"]


# ---- errors ------------------------------------------------------------------

V4 = [1.0, 0.0, 0.0, 0.0]


def _put(**kwargs: Any) -> Callable[[MemoryStore], object]:
    return lambda s: s.put("user:a", "new", "v", **kwargs)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (_put(embedding=[1.0, 2.0, 3.0]), "embedding"),
        (_put(embedding=[1.0, 2.0, 3.0, 4.0, 5.0]), "embedding"),
        (_put(embedding=[]), "embedding"),
        (_put(embedding=[float("nan"), 0, 0, 1]), "embedding"),
        (_put(embedding=[float("inf"), 0, 0, 1]), "embedding"),
        (_put(embedding=[0, 0, -float("inf"), 1]), "embedding"),
        (_put(embedding=[0, 0, 0, 0]), "embedding"),
        (_put(embedding=np.zeros(4)), "embedding"),
        (_put(embedding=[1e309, 0, 0, 0]), "embedding"),  # inf as a float
        (_put(embedding=[[1, 0], [0, 1]]), "embedding"),
        (_put(embedding="abcd"), "embedding"),
        (_put(embedding=b"abcd"), "embedding"),
        (_put(embedding=["a", "b", "c", "d"]), "embedding"),
        (_put(embedding=V4, embedding_model="other"), "embedding_model"),
        (_put(embedding_model="m"), "embedding_model"),
        (
            lambda s: s.put_many(
                [
                    {"namespace": "user:a", "key": "new", "value": 1, "embedding": V4},
                    {
                        "namespace": "user:a",
                        "key": "new2",
                        "value": 2,
                        "embedding": [1],
                    },
                ]
            ),
            "items[1].embedding",
        ),
        (
            lambda s: s.put_many(
                [
                    {
                        "namespace": "user:a",
                        "key": "new",
                        "value": 1,
                        "embedding": V4,
                        "embedding_model": "x",
                    }
                ]
            ),
            "items[0].embedding_model",
        ),
        (lambda s: s.similar([1.0, 2.0]), "query"),
        (lambda s: s.similar([float("nan"), 0, 0, 1]), "query"),
        (lambda s: s.similar([float("inf"), 0, 0, 1]), "query"),
        (lambda s: s.similar([0, 0, 0, 0]), "query"),
        (lambda s: s.similar("text needs an embedder"), "query"),
        (lambda s: s.similar(None), "query"),
        (lambda s: s.similar(V4, k=0), "k"),
        (lambda s: s.similar(V4, k=-1), "k"),
        (lambda s: s.similar(V4, k=10_001), "k"),
        (lambda s: s.similar(V4, k=True), "k"),
        (lambda s: s.similar(V4, k=2.0), "k"),
        (lambda s: s.similar(V4, k="3"), "k"),
        (lambda s: s.similar(V4, min_score=1.5), "min_score"),
        (lambda s: s.similar(V4, min_score=-1.01), "min_score"),
        (lambda s: s.similar(V4, min_score=float("nan")), "min_score"),
        (lambda s: s.similar(V4, min_score=True), "min_score"),
        (lambda s: s.similar(V4, min_score="0.5"), "min_score"),
        (lambda s: s.similar(V4, namespace_prefix="user:"), "namespace_prefix"),
        (lambda s: s.similar(V4, tags_any=[]), "tags_any"),
        (lambda s: s.similar(V4, where={"a": {"$regex": "x"}}), "where.a"),
        (lambda s: s.text_search("x", match="ALL"), "match"),
        (lambda s: s.text_search("x", match="phrase"), "match"),
        (lambda s: s.text_search("x", match=None), "match"),
        (lambda s: s.text_search("x", k=0), "k"),
        (lambda s: s.text_search("x", k=10_001), "k"),
        (lambda s: s.text_search(None), "query"),
        (lambda s: s.text_search(42), "query"),
        (lambda s: s.text_search("\ud800"), "query"),  # a lone surrogate
        (lambda s: s.text_search("x" * 70_000), "query"),
        (lambda s: s.text_search("x", memory_type="dream"), "memory_type"),
        (lambda s: s.retrieve("x", weights={"vector": -1}), "weights.vector"),
        (lambda s: s.retrieve("x", weights={"text": float("nan")}), "weights.text"),
        (lambda s: s.retrieve("x", weights={"text": float("inf")}), "weights.text"),
        (lambda s: s.retrieve("x", weights={"vector": True}), "weights.vector"),
        (lambda s: s.retrieve("x", weights={"vector": "1"}), "weights.vector"),
        (lambda s: s.retrieve("x", weights={"vector": 0, "text": 0}), "weights"),
        (lambda s: s.retrieve("x", weights={"bm25": 1}), "weights"),
        (lambda s: s.retrieve("x", weights=[1, 1]), "weights"),
        (lambda s: s.retrieve("x", importance_boost=1.5), "importance_boost"),
        (lambda s: s.retrieve("x", importance_boost=-0.1), "importance_boost"),
        (
            lambda s: s.retrieve("x", recency_half_life=timedelta(0)),
            "recency_half_life",
        ),
        (
            lambda s: s.retrieve("x", recency_half_life=-timedelta(1)),
            "recency_half_life",
        ),
        (lambda s: s.retrieve("x", recency_half_life=3600), "recency_half_life"),
        (lambda s: s.retrieve("x", k=0), "k"),
        (lambda s: s.retrieve("x", vector=[1.0, 2.0]), "vector"),
        (lambda s: s.retrieve("x", vector=[0, 0, 0, 0]), "vector"),
        (lambda s: s.retrieve(None), "query"),
    ],
)
def test_bad_search_input_is_refused_naming_the_field_and_nothing_is_written(
    vstore: MemoryStore, call: Callable[[MemoryStore], object], field: str
) -> None:
    vstore.put("user:a", "old", "old words", embedding=[0, 1, 0, 0])
    before = head(vstore)
    with pytest.raises(ValidationError) as info:
        call(vstore)
    assert info.value.field == field
    assert info.value.rule
    assert str(info.value).startswith(field)
    assert head(vstore) == before
    for key in ("new", "new2"):
        assert vstore.get("user:a", key, include_deleted=True) is None
        assert vstore.history("user:a", key) == []
    assert len(vstore.history("user:a", "old")) == 1
    assert keys(vstore.similar([0, 1, 0, 0])) == ["old"]


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (
            lambda s: s.update("user:a", "old", "new words", embedding=[1, 2]),
            "embedding",
        ),
        (lambda s: s.update("user:a", "old", embedding=[0, 0, 0, 0]), "embedding"),
        (
            lambda s: s.update("user:a", "old", embedding=V4, embedding_model="n"),
            "embedding_model",
        ),
        (
            lambda s: s.put("user:a", "old", "new words", embedding=[float("nan")] * 4),
            "embedding",
        ),
    ],
)
def test_a_bad_vector_leaves_an_existing_memory_as_it_was(
    vstore: MemoryStore, call: Callable[[MemoryStore], object], field: str
) -> None:
    written = vstore.put("user:a", "old", "old words", embedding=[0, 1, 0, 0])
    before = head(vstore)
    with pytest.raises(ValidationError) as info:
        call(vstore)
    assert info.value.field == field
    assert head(vstore) == before
    assert vstore.get("user:a", "old") == written
    assert len(vstore.history("user:a", "old")) == 1
    (found,) = vstore.similar([0, 1, 0, 0])
    assert found.item == written
    assert found.score == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.put("user:a", "new", "v", embedding=V4), "embedding"),
        (lambda s: s.put("user:a", "new", "v", embedding_model="m"), "embedding_model"),
        (
            lambda s: s.put_many(
                [{"namespace": "user:a", "key": "new", "value": 1, "embedding": V4}]
            ),
            "items[0].embedding",
        ),
        (lambda s: s.update("user:a", "old", embedding=V4), "embedding"),
        (lambda s: s.similar(V4), "query"),
        (lambda s: s.similar("a text"), "query"),
        (lambda s: s.retrieve("old", vector=V4), "vector"),
    ],
)
def test_vectors_without_a_configured_index_are_refused(
    open_store: Opener, call: Callable[[MemoryStore], object], field: str
) -> None:
    store = open_store()
    store.put("user:a", "old", "old words")
    before = head(store)
    with pytest.raises(ValidationError) as info:
        call(store)
    assert info.value.field == field
    assert head(store) == before
    assert store.get("user:a", "new") is None
    assert store.history("user:a", "new") == []
    assert len(store.history("user:a", "old")) == 1


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.put("user:a", "new", "v", embedding=V4), "embedding"),
        (
            lambda s: s.put(
                "user:a", "new", "v", embedding=[1.0] * DIMS, embedding_model="m"
            ),
            "embedding_model",
        ),
        (lambda s: s.similar(""), "query"),
        (lambda s: s.similar("   \n "), "query"),
        (lambda s: s.similar(V4), "query"),
        (lambda s: s.similar("ok", k=0), "k"),
    ],
)
def test_bad_input_with_an_embedder_is_refused(
    estore: MemoryStore, call: Callable[[MemoryStore], object], field: str
) -> None:
    before = head(estore)
    with pytest.raises(ValidationError) as info:
        call(estore)
    assert info.value.field == field
    assert head(estore) == before
    assert estore.get("user:a", "new") is None
    assert estore.history("user:a", "new") == []


def test_an_embedding_given_with_an_embedder_is_used_as_is(
    estore: MemoryStore, embedder: HashEmbedder
) -> None:
    vector = np.zeros(DIMS)
    vector[3] = 1.0
    estore.put("user:a", "k", "words", embedding=vector, embedding_model=embedder.name)
    assert embedder.calls == []
    (found,) = estore.similar(vector)
    assert found.score == pytest.approx(1.0, abs=1e-6)


class _BrokenEmbedder(HashEmbedder):
    """Returns one row too few."""

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return super().embed(texts)[1:]


class _NaNEmbedder(HashEmbedder):
    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        rows = super().embed(texts)
        rows[:, 0] = np.nan
        return rows


@pytest.mark.parametrize("embedder_class", [_BrokenEmbedder, _NaNEmbedder])
def test_a_misbehaving_embedder_is_an_error_and_nothing_is_written(
    open_store: Opener, embedder_class: type[HashEmbedder]
) -> None:
    store = open_store(embedder=embedder_class())
    before = head(store)
    with pytest.raises(ValidationError) as info:
        store.put("user:a", "k", "some words")
    assert info.value.field == "embedder"
    with pytest.raises(ValidationError):
        store.put_many([{"namespace": "user:a", "key": "k2", "value": "more words"}])
    assert head(store) == before
    assert store.get("user:a", "k") is None
    assert store.history("user:a", "k") == []
    assert store.get("user:a", "k2") is None


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"vector_model": "m"}, "vector_dims"),
        ({"embedder": HashEmbedder(), "vector_dims": 3}, "vector_dims"),
        ({"embedder": HashEmbedder(), "vector_model": "other"}, "vector_model"),
        ({"embedder": object()}, "embedder"),
        ({"embedder": HashEmbedder(name="")}, "embedder.name"),
        ({"embedder": HashEmbedder(dims=0)}, "embedder.dims"),
        ({"embedder": HashEmbedder(), "embed_fields": "text"}, "embed_fields"),
        ({"embedder": HashEmbedder(), "embed_fields": []}, "embed_fields"),
        ({"embedder": HashEmbedder(), "embed_fields": ["a..b"]}, "embed_fields"),
    ],
)
def test_bad_vector_settings_are_refused(
    store_url: str, settings: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        mnemolog.open(store_url, **settings)
    assert info.value.field == field


# ---- a query whose embedding has no direction ----------------------------------


class _SparseEmbedder(HashEmbedder):
    """Embeds only the words it knows; a text of other words is all zeros."""

    KNOWN = ("cat", "dog")

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.calls.append(list(texts))
        rows = np.zeros((len(texts), self.dims), dtype=np.float32)
        for i, text in enumerate(texts):
            for j, word in enumerate(self.KNOWN):
                if word in text:
                    rows[i, j] = 1.0
        return rows


def test_a_query_embedded_to_zeros_never_breaks_the_filters(open_store: Opener) -> None:
    """A caller's all-zero vector is refused ("it has no direction"). A text
    whose embedding is all zeros must be refused the same way, or find
    nothing: never NaN or infinite scores, a crash, memories outside the
    filters, or deleted ones."""
    store = open_store(embedder=_SparseEmbedder())
    store.put("user:a", "cat", "a cat")
    store.put("app:x", "dog", "a dog")
    store.put("app:x", "gone", "a dog and a cat")
    assert key_set(store.similar("cat dog")) == {"cat", "dog", "gone"}
    store.delete("app:x", "gone")  # its row in the index is now free
    problems: list[str] = []

    def check(
        name: str, run: Callable[[], list[Scored[Memory]]], allowed: set[str]
    ) -> None:
        try:
            results = run()
        except ValidationError as e:
            if e.field != "query":
                problems.append(f"{name}: ValidationError on {e.field!r}")
            return
        except Exception as e:
            problems.append(f"{name}: raised {type(e).__name__} {e}")
            return
        found = [(r.item.key, r.score) for r in results]
        if not all(math.isfinite(score) for _, score in found):
            problems.append(f"{name}: non-finite scores {found}")
        if not key_set(results) <= allowed:
            problems.append(f"{name}: {found} outside {sorted(allowed)}")

    check("similar", lambda: store.similar("nothing known"), {"cat", "dog"})
    check(
        "similar(namespace_prefix='user')",
        lambda: store.similar("nothing known", namespace_prefix="user"),
        {"cat"},
    )
    check(
        "retrieve(namespace_prefix='user')",
        lambda: store.retrieve("nothing known", namespace_prefix="user"),
        {"cat"},
    )
    check("similar(k=3)", lambda: store.similar("nothing known", k=3), {"cat", "dog"})
    assert not problems, "\n".join(problems)


def test_a_value_embedded_to_zeros_is_never_a_result(open_store: Opener) -> None:
    """An all-zero vector has no direction: a caller's is refused, and one
    that an embedder returns must not rank either (and a filter that every
    memory passes must not change the answer)."""
    store = open_store(embedder=_SparseEmbedder())
    store.put("user:a", "cat", "a cat")
    store.put("user:a", "none", "nothing known")  # embeds to all zeros
    assert keys(store.similar("cat", k=10, namespace_prefix="user")) == ["cat"]
    assert keys(store.similar("cat", k=10)) == ["cat"]


@pytest.mark.parametrize("scale", [1e-30, 1e-22, 1e20, 1e30])
def test_cosine_does_not_depend_on_the_length_of_a_vector(
    vstore: MemoryStore, scale: float
) -> None:
    """Any finite float32 vector that is accepted must score by its direction
    alone (or be refused as a ValidationError naming the field)."""
    vstore.put("user:a", "unit", "u", embedding=[0, 1, 0, 0])
    vstore.put("user:a", "scaled", "s", embedding=[scale, 0, 0, 0])
    found = {r.item.key: r.score for r in vstore.similar([1, 0, 0, 0])}
    assert found["scaled"] == pytest.approx(1.0, abs=1e-5)
    results = vstore.similar([0, scale, 0, scale])
    assert keys(results)[0] == "unit"
    assert results[0].score == pytest.approx(math.sqrt(0.5), abs=1e-5)


# ---- text search -------------------------------------------------------------

DOCS = {
    "sym": "x marks the spot",
    "ops": "this and that or not",
    "ab": "a b c",
    "near": "near the sea",
    "quote": "she said hello",
}


@pytest.fixture
def texts(store_url: str, open_store: Opener) -> MemoryStore:
    store = open_store()
    for key, text in DOCS.items():
        store.put("user:a", key, text)
    return store


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('"', set()),
        ("'", set()),
        ("*", set()),
        ("^", set()),
        ("(", set()),
        (")", set()),
        ("", set()),
        ("   ", set()),
        ("AND OR NOT", {"ops"}),
        ("and", {"ops"}),
        ("NOT", {"ops"}),
        ("a:b", {"ab"}),
        ("user:a", {"ab"}),
        ("text:hello", {"quote"}),
        ("(x", {"sym"}),
        ("x)", {"sym"}),
        ("x*", {"sym"}),
        ('"x', {"sym"}),
        ('x"', {"sym"}),
        ('"said hello"', {"quote"}),
        ("^x", {"sym"}),
        ("-x", {"sym"}),
        ("x -spot", {"sym"}),
        ("NEAR(a b)", {"near", "ab"}),
        ("NEAR(a b, 2)", {"near", "ab"}),
        ("{x}", {"sym"}),
        ("x + spot", {"sym"}),
        ("rowid", set()),
        ("memory_text", set()),
        ("x'); DROP TABLE memories; --", {"sym"}),
        ("\u00e9t\u00e9", set()),
        ("\U0001f9e0", set()),
    ],
)
@pytest.mark.parametrize("match", ["any", "all"])
def test_text_search_reads_no_query_syntax(
    texts: MemoryStore, query: str, expected: set[str], match: str
) -> None:
    results = texts.text_search(query, match=match)
    assert isinstance(results, list)
    words = set(_WORDS.findall(query.lower()))
    if match == "all" and len(words) > 1:
        expected = {k for k in expected if words <= set(_WORDS.findall(DOCS[k]))}
    assert key_set(results) == expected
    # The retrieval that fuses it never raises either.
    assert isinstance(texts.retrieve(query), list)
    assert len(texts.search(limit=100)) == len(DOCS)


def test_whitespace_of_any_kind_in_a_query_is_not_an_error(texts: MemoryStore) -> None:
    """Queries are words, whatever surrounds them: a pasted multi-line question
    (or a whitespace-only one) must be searchable, not refused."""
    for query, expected in [
        ("\t", set()),
        (" \t\n ", set()),
        ("\r\n", set()),
        ("where is the\nspot", {"sym", "near"}),
        ("x\tmarks", {"sym"}),
    ]:
        assert key_set(texts.text_search(query)) == expected, repr(query)
        assert key_set(texts.retrieve(query)) == expected, repr(query)


def test_text_search_stems_words(texts: MemoryStore) -> None:
    texts.put("user:a", "cat", "a cat on a mat")
    texts.put("user:a", "run", "she runs every morning")
    assert keys(texts.text_search("cats")) == ["cat"]
    assert keys(texts.text_search("CAT")) == ["cat"]
    assert keys(texts.text_search("running")) == ["run"]
    assert keys(texts.text_search("ran")) == []  # porter does not know irregulars


def test_text_search_sees_string_leaves_but_not_keys_or_bytes(
    open_store: Opener,
) -> None:
    embedder = HashEmbedder()
    store = open_store(embedder=embedder)
    store.put(
        "user:a",
        "doc",
        {
            "title": "zebra",
            "nested": {"list": ["giraffe", 3, True, None, {"deep": "okapi"}]},
            "secretkey": b"hippopotamus",
            "number": 12345,
        },
    )
    for word in ("zebra", "giraffe", "okapi"):
        assert keys(store.text_search(word)) == ["doc"], word
    for word in (
        "title",
        "nested",
        "list",
        "deep",
        "secretkey",
        "hippopotamus",
        "12345",
        "bytes",
        "aGlwcG9wb3RhbXVz",
    ):
        assert store.text_search(word) == [], word
    # The embedder got the same text: the string leaves only.
    assert embedder.calls == [["zebra\ngiraffe\nokapi"]]
    # A plain bytes value has no text at all.
    store.put("user:a", "raw", b"rhinoceros")
    assert store.text_search("rhinoceros") == []


def test_match_all_wants_every_word_and_any_ranks_more_words_higher(
    open_store: Opener,
) -> None:
    store = open_store()
    store.put("user:a", "both", "red apple")
    store.put("user:a", "apple", "green apple")
    store.put("user:a", "red", "red car")
    store.put("user:a", "none", "blue sky")
    anyword = store.text_search("red apple", match="any")
    assert key_set(anyword) == {"both", "apple", "red"}
    assert anyword[0].item.key == "both"
    assert [r.score for r in anyword] == sorted(
        (r.score for r in anyword), reverse=True
    )
    assert keys(store.text_search("red apple", match="all")) == ["both"]
    assert keys(store.text_search("apple red", match="all")) == ["both"]
    assert store.text_search("red sky", match="all") == []
    assert keys(store.text_search("red red red", match="all")) == keys(
        store.text_search("red", match="all")
    )
    assert len(store.text_search("red apple", k=1)) == 1


def test_text_search_follows_value_changes(open_store: Opener) -> None:
    store = open_store()
    store.put("user:a", "k", "original words")
    store.update("user:a", "k", {"now": "replacement"})
    assert store.text_search("original") == []
    assert keys(store.text_search("replacement")) == ["k"]
    store.update("user:a", "k", 7)  # no text at all
    assert store.text_search("replacement") == []
    store.update("user:a", "k", "back again")
    assert keys(store.text_search("again")) == ["k"]


def test_text_search_filters(populated: MemoryStore) -> None:
    assert key_set(
        populated.text_search("words", k=100, namespace_prefix="user:alice")
    ) == {"a1", "a2"}
    assert key_set(populated.text_search("words", k=100, tags_all=["x", "y"])) == {"a1"}
    assert key_set(populated.text_search("words", k=100, memory_type="episodic")) == {
        "a2",
        "f1",
    }
    assert key_set(populated.text_search("words", k=100, where={"lang": "en"})) == {
        "a1",
        "c1",
    }
    assert key_set(populated.text_search("a1", k=100)) == {"a1"}
    assert populated.text_search("deleted") == []


# ---- retrieve ----------------------------------------------------------------


def expected_fusion(
    lists: dict[str, list[Scored[Memory]]], weights: dict[str, float]
) -> dict[str, float]:
    scores: dict[str, float] = {}
    for name, results in lists.items():
        for rank, result in enumerate(results, start=1):
            key = result.item.key
            scores[key] = scores.get(key, 0.0) + weights.get(name, 0.0) / (60 + rank)
    return scores


def test_retrieve_fuses_both_lists_by_reciprocal_rank(vstore: MemoryStore) -> None:
    vstore.put("user:a", "vec_only", "unrelated filler", embedding=[1, 0, 0, 0])
    vstore.put("user:a", "both", "alpha beta", embedding=[1, 0.3, 0, 0])
    vstore.put("user:a", "text_only", "alpha alpha beta")  # no vector
    vstore.put("user:a", "far", "gamma", embedding=[0, 0, 0, 1])
    query, vector = "alpha", [1, 0, 0, 0]
    by_vector = vstore.similar(vector, k=50)
    by_text = vstore.text_search(query, k=50)
    assert keys(by_vector)[:2] == ["vec_only", "both"]
    assert "both" in key_set(by_text)
    assert "text_only" in key_set(by_text)
    fused = vstore.retrieve(query, vector=vector, k=10)
    # In both lists beats first place in only one.
    assert fused[0].item.key == "both"
    expected = expected_fusion(
        {"vector": by_vector, "text": by_text}, {"vector": 1, "text": 1}
    )
    assert {r.item.key: r.score for r in fused} == pytest.approx(expected)
    assert [r.score for r in fused] == sorted((r.score for r in fused), reverse=True)
    assert key_set(fused) == {"vec_only", "both", "text_only", "far"}
    # Weights scale each list.
    weights = {"vector": 2.0, "text": 0.5}
    weighted = vstore.retrieve(query, vector=vector, weights=weights)
    assert {r.item.key: r.score for r in weighted} == pytest.approx(
        expected_fusion({"vector": by_vector, "text": by_text}, weights)
    )
    # A zero weight leaves that list out.
    text_only = vstore.retrieve(query, vector=vector, weights={"vector": 0, "text": 1})
    assert keys(text_only) == keys(by_text)
    vector_only = vstore.retrieve(query, vector=vector, weights={"vector": 1})
    assert keys(vector_only) == keys(by_vector)
    assert len(vstore.retrieve(query, vector=vector, k=2)) == 2
    # Filters apply to both lists.
    assert vstore.retrieve(query, vector=vector, namespace_prefix="app") == []


def test_retrieve_embeds_the_query_with_an_embedder(estore: MemoryStore) -> None:
    estore.put("user:a", "cat", "the cat sat on the mat")
    estore.put("user:a", "dog", "the dog chased the postman")
    estore.put("user:a", "noise", 123)  # neither text nor vector
    fused = estore.retrieve("cat mat", k=10)
    by_vector = estore.similar("cat mat", k=50)
    by_text = estore.text_search("cat mat", k=50)
    assert fused[0].item.key == "cat"
    assert {r.item.key: r.score for r in fused} == pytest.approx(
        expected_fusion(
            {"vector": by_vector, "text": by_text}, {"vector": 1, "text": 1}
        )
    )
    # A blank query with an embedder is no error: there is nothing to match.
    assert estore.retrieve("   ") == []


def test_retrieve_works_with_words_only_when_no_index_is_configured(
    open_store: Opener,
) -> None:
    store = open_store()
    store.put("user:a", "one", "kiwi kiwi kiwi")
    store.put("user:a", "two", "kiwi and banana and more words here")
    store.put("user:a", "three", "banana")
    by_text = store.text_search("kiwi")
    fused = store.retrieve("kiwi")
    assert keys(fused) == keys(by_text) == ["one", "two"]
    assert [r.score for r in fused] == pytest.approx([1 / 61, 1 / 62])
    assert store.retrieve("") == []


def _ranked_pair(
    store: MemoryStore, *, first: dict[str, Any], second: dict[str, Any]
) -> None:
    """Two memories: "first" ranks 1 by text for "kiwi", "second" ranks 2."""
    store.put("user:a", "first", "kiwi kiwi kiwi", **first)
    store.put("user:a", "second", "kiwi banana lemon lime mango papaya", **second)
    assert keys(store.text_search("kiwi")) == ["first", "second"]


def test_importance_boost_reorders_as_documented(open_store: Opener) -> None:
    store = open_store()
    _ranked_pair(store, first={"importance": 0.1}, second={"importance": 1.0})
    assert keys(store.retrieve("kiwi")) == ["first", "second"]
    for w in (0.5, 1.0):
        boosted = store.retrieve("kiwi", importance_boost=w)
        assert keys(boosted) == ["second", "first"]
        scores = {r.item.key: r.score for r in boosted}
        assert scores["first"] == pytest.approx((1 / 61) * ((1 - w) + w * 0.1))
        assert scores["second"] == pytest.approx((1 / 62) * ((1 - w) + w * 1.0))
    # A small boost does not overturn the ranks.
    assert keys(store.retrieve("kiwi", importance_boost=0.001)) == ["first", "second"]


def test_recency_half_life_reorders_as_documented(open_store: Opener) -> None:
    store = open_store()
    store.put("user:a", "first", "kiwi kiwi kiwi")
    time.sleep(0.25)
    store.put("user:a", "second", "kiwi banana lemon lime mango papaya")
    assert keys(store.text_search("kiwi")) == ["first", "second"]
    assert keys(store.retrieve("kiwi")) == ["first", "second"]
    assert keys(store.retrieve("kiwi", recency_half_life=timedelta(days=365))) == [
        "first",
        "second",
    ]
    half_life = timedelta(seconds=1)
    recent = store.retrieve("kiwi", recency_half_life=half_life)
    assert keys(recent) == ["second", "first"]
    first, second = (r.item for r in sorted(recent, key=lambda r: r.item.key))
    gap = (second.updated_at - first.updated_at) / half_life
    scores = {r.item.key: r.score for r in recent}
    assert scores["first"] / scores["second"] == pytest.approx(
        (62 / 61) * 0.5**gap, rel=1e-4
    )
    # Both boosts multiply: importance 0.5 (the default) halves both scores,
    # whatever the moment of the query (so compare ratios).
    both = {
        r.item.key: r.score
        for r in store.retrieve(
            "kiwi", recency_half_life=half_life, importance_boost=1.0
        )
    }
    assert both["first"] / both["second"] == pytest.approx(
        scores["first"] / scores["second"], rel=1e-4
    )
    assert both["second"] <= 0.5 * scores["second"] * (1 + 1e-9)
    assert both["second"] > 0.4 * scores["second"]


# ---- rebuild, reopen, another store on the same file ----------------------------


def _snapshot(store: MemoryStore) -> dict[str, list[tuple[str, int, float]]]:
    def rows(results: list[Scored[Memory]]) -> list[tuple[str, int, float]]:
        return [(r.item.key, r.item.version, round(r.score, 5)) for r in results]

    return {
        "similar": rows(store.similar("cat dog fish bird", k=50)),
        "similar_filtered": rows(
            store.similar("cat", k=50, namespace_prefix="user:b", tags_any=["t"])
        ),
        "text": rows(store.text_search("cat dog fish bird", k=50)),
        "text_all": rows(store.text_search("cat dog", k=50, match="all")),
        "retrieve": rows(store.retrieve("cat dog fish bird", k=50)),
        "tenant": rows(store.tenant("other").similar("cat", k=50)),
    }


def _fill(store: MemoryStore) -> None:
    words = ["cat", "dog", "fish", "bird", "tree", "rock"]
    store.put_many(
        [
            {
                "namespace": f"user:{'ab'[i % 2]}",
                "key": f"k{i}",
                "value": {"text": f"{words[i % 6]} {words[(i * 5) % 6]} {i}"},
                "tags": ["t"] if i % 3 else [],
            }
            for i in range(30)
        ]
    )
    store.update("user:a", "k0", {"text": "cat dog"})
    store.update("user:b", "k1", 99)  # drops text and vector
    store.delete("user:a", "k2")
    store.delete("user:b", "k3")
    store.restore("user:b", "k3")
    store.update("user:b", "k5", metadata={"m": 1})
    store.tenant("other").put("user:a", "k", "cat cat")


def test_rebuild_reproduces_the_same_search_results(
    open_store: Opener, embedder: HashEmbedder
) -> None:
    store = open_store(embedder=embedder)
    _fill(store)
    before = _snapshot(store)
    assert all(before[name] for name in ("similar", "text", "retrieve", "tenant"))
    calls = len(embedder.calls)
    store.projections.rebuild()
    assert _snapshot(store) == before
    store.projections.rebuild("vectors")
    store.projections.rebuild("text")
    assert _snapshot(store) == before
    assert store.verify().problems == ()
    # A rebuild reads vectors from the log: it embeds nothing (beyond queries).
    assert all(len(c) == 1 for c in embedder.calls[calls:])


def test_a_reopened_file_store_gives_the_same_results(persistent_url: str) -> None:
    url = persistent_url
    with mnemolog.open(url, embedder=HashEmbedder()) as store:
        _fill(store)
        before = _snapshot(store)
    with mnemolog.open(url, embedder=HashEmbedder()) as store:
        assert _snapshot(store) == before


def test_a_second_store_on_the_same_file_sees_vector_changes(
    persistent_url: str,
) -> None:
    """Like another process: the second store's index follows the log."""
    url = persistent_url
    with (
        mnemolog.open(url, vector_dims=4, vector_model="m") as writer,
        mnemolog.open(url, vector_dims=4, vector_model="m") as reader,
    ):
        q = [1, 0, 0, 0]
        assert reader.similar(q) == []  # the reader's index starts (empty) now
        writer.put("user:a", "k1", "first words", embedding=[1, 0, 0, 0])
        assert keys(reader.similar(q)) == ["k1"]
        writer.put("user:a", "k2", "second words", embedding=[1, 1, 0, 0])
        assert keys(reader.similar(q)) == ["k1", "k2"]
        writer.update("user:a", "k2", embedding=[2, 0, 0, 0.01])  # a new vector
        (top, _) = reader.similar([0, 0, 0, 1], k=2)
        assert top.item.key == "k2"
        writer.delete("user:a", "k1")
        assert keys(reader.similar(q)) == ["k2"]
        assert keys(reader.text_search("words")) == ["k2"]
        assert keys(reader.retrieve("words", vector=q)) == ["k2"]
        writer.restore("user:a", "k1")
        assert key_set(reader.similar(q)) == {"k1", "k2"}
        writer.update("user:a", "k1", "changed words")  # drops its vector
        assert keys(reader.similar(q)) == ["k2"]
        writer.update("user:a", "k2", memory_type="episodic")
        assert keys(reader.similar(q, memory_type="episodic")) == ["k2"]
        writer.put("user:a", "k3", "other tenant", embedding=q, tenant="t2")
        assert keys(reader.similar(q)) == ["k2"]
        assert keys(reader.similar(q, tenant="t2")) == ["k3"]
        # And the other way round, after a rebuild on the reader's side.
        reader.projections.rebuild()
        reader.put("user:a", "k4", "from the reader", embedding=[0, 0, 1, 0])
        assert keys(writer.similar([0, 0, 1, 0], k=1)) == ["k4"]
        assert keys(writer.text_search("reader")) == ["k4"]
        assert keys(reader.similar(q)) == ["k2", "k4"]
        with mnemolog.open(url, vector_dims=4, vector_model="m") as third:
            for query in (q, [0, 0, 1, 0], [0, 1, 0, 0]):
                assert sorted(
                    (r.item.key, round(r.score, 5)) for r in third.similar(query)
                ) == sorted(
                    (r.item.key, round(r.score, 5)) for r in reader.similar(query)
                )


def test_a_store_with_another_model_ignores_foreign_vectors(
    persistent_url: str,
) -> None:
    url = persistent_url
    with mnemolog.open(url, vector_dims=4, vector_model="m") as first:
        first.put("user:a", "k", "words", embedding=[1, 0, 0, 0])
    with mnemolog.open(url, vector_dims=4, vector_model="other") as second:
        assert second.similar([1, 0, 0, 0]) == []
        assert keys(second.text_search("words")) == ["k"]
        second.put("user:a", "k2", "more", embedding=[1, 0, 0, 0])
        assert keys(second.similar([1, 0, 0, 0])) == ["k2"]
    with mnemolog.open(url, vector_dims=2, vector_model="m") as third:
        assert third.similar([1, 0]) == []


# ---- batches -------------------------------------------------------------------


def test_put_many_embeds_the_batch_in_one_call(
    estore: MemoryStore, embedder: HashEmbedder
) -> None:
    explicit = np.zeros(DIMS)
    explicit[0] = 1.0
    written = estore.put_many(
        [
            {"namespace": "user:a", "key": "cat", "value": "the cat"},
            {"namespace": "user:a", "key": "dog", "value": {"text": "the dog"}},
            {"namespace": "user:a", "key": "num", "value": 7},
            {
                "namespace": "user:a",
                "key": "own",
                "value": "own vector",
                "embedding": explicit,
            },
            {"namespace": "user:b", "key": "fish", "value": ["the", "fish"]},
        ]
    )
    assert len(written) == 5
    assert embedder.calls == [["the cat", "the dog", "the\nfish"]]
    assert keys(estore.similar("cat", k=1)) == ["cat"]
    assert keys(estore.similar("dog", k=1)) == ["dog"]
    assert keys(estore.similar("fish", k=1)) == ["fish"]
    (own, *_) = estore.similar(explicit)
    assert own.item.key == "own"
    assert own.score == pytest.approx(1.0, abs=1e-6)
    assert "num" not in key_set(estore.similar("the cat dog fish", k=100))
    # A batch of caller vectors does not call the embedder.
    embedder.calls.clear()
    estore.put_many(
        [{"namespace": "user:a", "key": "v", "value": "x", "embedding": explicit}]
    )
    assert embedder.calls == []
    # An empty batch neither.
    assert estore.put_many([]) == []
    assert embedder.calls == []


def test_put_many_with_a_bad_vector_writes_nothing(vstore: MemoryStore) -> None:
    before = head(vstore)
    with pytest.raises(ValidationError) as info:
        vstore.put_many(
            [
                {"namespace": "user:a", "key": "good", "value": 1, "embedding": V4},
                {
                    "namespace": "user:a",
                    "key": "bad",
                    "value": 2,
                    "embedding": [0, 0, 0, 0],
                },
            ]
        )
    assert info.value.field == "items[1].embedding"
    assert head(vstore) == before
    assert vstore.get("user:a", "good") is None
    assert vstore.similar(V4) == []


# ---- async twin ----------------------------------------------------------------


def test_async_twin_searches(store_url: str) -> None:
    assert hasattr(mnemolog.AsyncMemoryStore, "similar")
    assert hasattr(mnemolog.AsyncMemoryStore, "text_search")
    assert hasattr(mnemolog.AsyncMemoryStore, "retrieve")

    async def scenario() -> None:
        async with mnemolog.open_async(store_url, embedder=HashEmbedder()) as store:
            await store.put("user:a", "cat", "the cat sat on the mat")
            await store.put("user:a", "dog", "the dog barked")
            await store.tenant("b").put("user:a", "cat", "the cat of tenant b")
            assert keys(await store.similar("cat mat", k=1)) == ["cat"]
            assert keys(await store.text_search("cats")) == ["cat"]
            fused = await store.retrieve("cat mat", k=2)
            assert fused[0].item.key == "cat"
            results = await asyncio.gather(
                *(store.similar("dog", k=1) for _ in range(5)),
                *(store.text_search("dog") for _ in range(5)),
            )
            assert all(keys(r) == ["dog"] for r in results)
            b = store.tenant("b")
            assert [r.item.tenant for r in await b.similar("cat", k=10)] == ["b"]
            assert [r.item.tenant for r in await b.retrieve("cat", k=10)] == ["b"]
            with pytest.raises(ValidationError):
                await store.similar("cat", k=0)
            await store.delete("user:a", "cat")
            assert "cat" not in key_set(await store.similar("cat mat", k=10))

    asyncio.run(scenario())
