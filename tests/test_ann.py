"""The optional approximate index: same API, filters still exact, recall high."""

from __future__ import annotations

import numpy as np
import pytest

import mnemolog

pytest.importorskip("usearch", reason="the ann extra (usearch) is not installed")

DIMS = 16


def vectors(n: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, DIMS))
    rows = centres[rng.integers(0, 40, n)] + 0.5 * rng.standard_normal((n, DIMS))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def filled(url: str, data: np.ndarray, **settings: object) -> mnemolog.MemoryStore:
    store = mnemolog.open(url, vector_dims=DIMS, **settings)
    store.put_many(
        {
            "namespace": f"user:u{i % 10}",
            "key": f"m{i}",
            "value": i,
            "tags": ["odd"] if i % 2 else [],
            "embedding": row,
        }
        for i, row in enumerate(data)
    )
    return store


def test_recall_at_10_against_exact_search_is_high() -> None:
    data = vectors(3000)
    exact = filled("memory://", data)
    approx = filled("memory://", data, ann_threshold=1000, ann_expansion=64)
    queries = vectors(50, seed=9)
    found = 0
    for q in queries:
        want = {r.item.key for r in exact.similar(q, k=10)}
        got = approx.similar(q, k=10)
        assert len(got) == 10
        found += len(want & {r.item.key for r in got})
        scores = [r.score for r in got]
        assert scores == sorted(scores, reverse=True)
    assert approx._app.vectors.of("default").ann is not None  # type: ignore[union-attr]
    assert found / 500 >= 0.9


def test_filters_stay_exact_and_deletes_vanish_with_the_approximate_index() -> None:
    data = vectors(2000)
    store = filled("memory://", data, ann_threshold=500)
    q = data[7]
    assert store.similar(q, k=1)[0].item.key == "m7"
    store.delete("user:u7", "m7")
    assert all(r.item.key != "m7" for r in store.similar(q, k=20))
    for result in store.similar(q, k=20, tags_any=["odd"]):
        assert int(result.item.key[1:]) % 2 == 1
    for result in store.similar(q, k=20, namespace_prefix="user:u3"):
        assert result.item.namespace == "user:u3"
    store.restore("user:u7", "m7")
    assert store.similar(q, k=1)[0].item.key == "m7"
    store.put("user:u7", "m7", 7, embedding=-q)  # replaced: now the farthest
    assert all(r.item.key != "m7" for r in store.similar(q, k=50))


def test_ann_threshold_without_the_library_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "usearch.index", None)
    with pytest.raises(mnemolog.ValidationError) as raised:
        mnemolog.open("memory://", vector_dims=4, ann_threshold=10)
    assert raised.value.field == "ann_threshold"
