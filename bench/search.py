"""Search benchmark: similar, text_search and retrieve, beside raw numpy and
LangGraph's stores on the same vectors, in one run.

Run by hand: ``.venv/bin/python bench/search.py [--quick] [--sizes 10000,100000]``.

For each size N (vectors of 384 dimensions, clustered like real embeddings):

- raw numpy on the same matrix (``matrix @ q``, argpartition, sort): the floor;
- ``store.similar`` unfiltered, with a namespace filter (1% of memories), and
  with a tag filter (10%);
- LangGraph's InMemoryStore and SqliteStore vector search, when installed in
  the benchmark's environment (see bench/README.md), on the same vectors
  (their embed function looks the vectors up, so no model runs anywhere);
- ``text_search`` and ``retrieve``;
- ``similar`` with the approximate index (usearch HNSW, ``ann_threshold``):
  its build time, latency, and recall@10 against the exact top 10.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mnemolog

DIMS = 384
WORDS = (
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "amber",
    "basalt",
    "cedar",
    "dune",
    "ember",
    "fjord",
    "glacier",
    "harbor",
    "iris",
    "jasper",
    "kelp",
    "lagoon",
    "meadow",
    "nectar",
    "orchid",
    "pebble",
    "quartz",
    "river",
    "saffron",
    "tundra",
)


def dataset(n: int, queries: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """n unit vectors around 1,000 centres, and queries drawn the same way."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, DIMS)).astype(np.float32)

    def draw(count: int) -> np.ndarray:
        picks = centres[rng.integers(0, 1000, count)]
        rows = picks + 0.6 * rng.standard_normal((count, DIMS)).astype(np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    return draw(n), draw(queries)


def sentence(i: int) -> str:
    rng = np.random.default_rng(i)
    return " ".join(WORDS[j] for j in rng.integers(0, len(WORDS), 12))


def timed(op: Callable[[int], Any], count: int) -> dict[str, float]:
    """p50 and p99 latency in microseconds, and calls a second."""
    latencies = []
    gc.collect()
    start = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        op(i)
        latencies.append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    latencies.sort()
    return {
        "rate": count / total,
        "p50": statistics.median(latencies) * 1e6,
        "p99": latencies[min(count - 1, int(count * 0.99))] * 1e6,
    }


def raw_top(matrix: np.ndarray, q: np.ndarray, k: int = 10) -> np.ndarray:
    scores = matrix @ q
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part])]


def load_mnemolog(url: str, vectors: np.ndarray) -> tuple[Any, float]:
    store = mnemolog.open(url, vector_dims=DIMS, vector_model="bench")
    started = time.perf_counter()
    batch = 1000
    for first in range(0, len(vectors), batch):
        store.put_many(
            {
                "namespace": f"user:u{i % 100}",
                "key": f"m{i}",
                "value": {"text": sentence(i)},
                "tags": ["tenth"] if i % 10 == 0 else [],
                "embedding": vectors[i],
            }
            for i in range(first, min(first + batch, len(vectors)))
        )
    return store, time.perf_counter() - started


def bench_size(n: int, queries: int, rows: list[tuple[str, ...]]) -> None:
    vectors, qs = dataset(n, queries)
    q_count = len(qs)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/search.db?synchronous=normal"
        store, load_s = load_mnemolog(url, vectors)
        rows.append(
            (
                f"N={n:,}",
                "load (put_many, 1,000 a batch)",
                f"{n / load_s:,.0f} memories/s",
                "",
                "",
            )
        )
        store.close()
        store = mnemolog.open(url, vector_dims=DIMS, vector_model="bench")
        t0 = time.perf_counter()
        store.similar(qs[0], k=10)
        cold = time.perf_counter() - t0
        rows.append(
            (
                f"N={n:,}",
                "first similar after open (matrix load)",
                f"{cold * 1e3:,.0f} ms",
                "",
                "",
            )
        )

        def row(name: str, result: dict[str, float], note: str = "") -> None:
            rows.append(
                (
                    f"N={n:,}",
                    name,
                    f"{result['rate']:,.0f}/s",
                    f"{result['p50']:,.0f}",
                    f"{result['p99']:,.0f}" + note,
                )
            )

        raw = timed(lambda i: raw_top(vectors, qs[i % q_count]), q_count)
        row("raw numpy top-10 (matrix @ q)", raw)
        ours = timed(lambda i: store.similar(qs[i % q_count], k=10), q_count)
        row("similar top-10", ours, f"   ({ours['p50'] / raw['p50']:.2f}x raw)")
        # The same queries again: their results' rows are cached now.
        warm = timed(lambda i: store.similar(qs[i % q_count], k=10), q_count)
        row(
            "similar top-10, same queries again",
            warm,
            f"   ({warm['p50'] / raw['p50']:.2f}x raw)",
        )
        # Same answers as raw numpy?
        agree = 0
        for i in range(min(20, q_count)):
            expected = {f"m{j}" for j in raw_top(vectors, qs[i])}
            got = {r.item.key for r in store.similar(qs[i], k=10)}
            agree += expected == got
        rows.append(
            (
                f"N={n:,}",
                "similar equals raw numpy's top 10",
                f"{agree}/{min(20, q_count)}",
                "",
                "",
            )
        )

        ns_mask = np.array([i % 100 == 7 for i in range(n)])
        ns_rows = np.flatnonzero(ns_mask)
        raw_ns = timed(lambda i: raw_top(vectors[ns_rows], qs[i % q_count]), q_count)
        row("raw numpy top-10 of a 1% subset", raw_ns)
        row(
            "similar, namespace_prefix (1%)",
            timed(
                lambda i: store.similar(
                    qs[i % q_count], k=10, namespace_prefix="user:u7"
                ),
                q_count,
            ),
        )
        row(
            "similar, tags_any (10%)",
            timed(
                lambda i: store.similar(qs[i % q_count], k=10, tags_any=["tenth"]),
                q_count,
            ),
        )
        words = [" ".join(sentence(i).split()[:2]) for i in range(q_count)]
        row(
            "text_search top-10 (2 words, any)",
            timed(lambda i: store.text_search(words[i], k=10), q_count),
        )
        row(
            "retrieve top-10 (vector + words, RRF)",
            timed(lambda i: store.retrieve(words[i], vector=qs[i], k=10), q_count),
        )
        store.close()
        bench_ann(url, n, vectors, qs, rows)
    bench_langgraph(n, vectors, qs, rows)


def bench_langgraph(
    n: int, vectors: np.ndarray, qs: np.ndarray, rows: list[tuple[str, ...]]
) -> None:
    try:
        from langgraph.store.memory import InMemoryStore
    except ImportError:
        rows.append((f"N={n:,}", "LangGraph stores", "not installed", "", ""))
        return
    lookup: dict[str, list[float]] = {}
    texts = [f"doc {i}" for i in range(n)]
    for i, text in enumerate(texts):
        lookup[text] = vectors[i].tolist()
    q_texts = [f"query {i}" for i in range(len(qs))]
    for i, text in enumerate(q_texts):
        lookup[text] = qs[i].tolist()

    def embed(batch: list[str]) -> list[list[float]]:
        # SqliteStore hands over the field's JSON ('{"text": ...}') as text.
        return [
            lookup[t] if t in lookup else lookup[json.loads(t)["text"]] for t in batch
        ]

    q_count = min(len(qs), 50)
    index = {"dims": DIMS, "embed": embed, "fields": ["text"]}
    memory_store = InMemoryStore(index=index)  # type: ignore[arg-type]
    for i in range(n):
        memory_store.put(("user", f"u{i % 100}"), f"m{i}", {"text": texts[i]})
    result = timed(
        lambda i: memory_store.search(("user",), query=q_texts[i], limit=10), q_count
    )
    rows.append(
        (
            f"N={n:,}",
            "LangGraph InMemoryStore search top-10",
            f"{result['rate']:,.0f}/s",
            f"{result['p50']:,.0f}",
            f"{result['p99']:,.0f}",
        )
    )
    try:
        import sqlite3

        from langgraph.store.sqlite import SqliteStore
    except ImportError:
        rows.append((f"N={n:,}", "LangGraph SqliteStore", "not installed", "", ""))
        return
    driver: Any = sqlite3
    if not hasattr(sqlite3.Connection, "enable_load_extension"):
        # A Python built without extension loading cannot load sqlite-vec;
        # pysqlite3-binary (benchmark environment only) bundles a SQLite that can.
        with contextlib.suppress(ImportError):
            import pysqlite3 as driver  # type: ignore[no-redef]
    with tempfile.TemporaryDirectory() as tmp:
        conn = driver.connect(
            f"{tmp}/lg.db", check_same_thread=False, isolation_level=None
        )
        sqlite_store = SqliteStore(conn, index=index)  # type: ignore[arg-type]
        try:
            sqlite_store.setup()
        except Exception as e:  # sqlite-vec missing, say
            rows.append(
                (f"N={n:,}", "LangGraph SqliteStore", f"unavailable: {e}", "", "")
            )
            return
        from langgraph.store.base import PutOp

        for first in range(0, n, 1000):
            sqlite_store.batch(
                [
                    PutOp(("user", f"u{i % 100}"), f"m{i}", {"text": texts[i]})
                    for i in range(first, min(first + 1000, n))
                ]
            )
        result = timed(
            lambda i: sqlite_store.search(("user",), query=q_texts[i], limit=10),
            q_count,
        )
        rows.append(
            (
                f"N={n:,}",
                "LangGraph SqliteStore search top-10",
                f"{result['rate']:,.0f}/s",
                f"{result['p50']:,.0f}",
                f"{result['p99']:,.0f}",
            )
        )
        conn.close()


def bench_ann(
    url: str, n: int, vectors: np.ndarray, qs: np.ndarray, rows: list[tuple[str, ...]]
) -> None:
    """similar with the approximate index (usearch HNSW): build, latency, recall@10."""
    try:
        import usearch.index  # noqa: F401
    except ImportError:
        rows.append(
            (f"N={n:,}", "approximate index (usearch)", "not installed", "", "")
        )
        return
    exact = [{f"m{j}" for j in raw_top(vectors, q)} for q in qs]
    for ef in (32, 64, 128):
        store = mnemolog.open(
            url,
            vector_dims=DIMS,
            vector_model="bench",
            ann_threshold=1,
            ann_expansion=ef,
        )
        t0 = time.perf_counter()
        store.similar(qs[0], k=10)
        if ef == 32:
            rows.append(
                (
                    f"N={n:,}",
                    "first similar, ann on (load + HNSW build)",
                    f"{time.perf_counter() - t0:,.1f} s",
                    "",
                    "",
                )
            )
        found = [{r.item.key for r in store.similar(q, k=10)} for q in qs]
        recall = sum(len(f & e) for f, e in zip(found, exact, strict=True)) / (
            10 * len(qs)
        )
        search = store.similar
        result = timed(lambda i, search=search: search(qs[i % len(qs)], k=10), len(qs))
        rows.append(
            (
                f"N={n:,}",
                f"similar top-10, ann ef={ef}",
                f"{result['rate']:,.0f}/s",
                f"{result['p50']:,.0f}",
                f"{result['p99']:,.0f}   recall@10 {recall:.3f}",
            )
        )
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10,000 vectors only")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    sizes = [10_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    rows: list[tuple[str, ...]] = []
    for n in sizes:
        bench_size(n, args.queries, rows)
    header = ("size", "operation", "rate", "p50 us", "p99 us")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    for r in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
