"""Core benchmark: writes, reads, time travel and search, ops/s with p50/p99.

Run by hand: ``.venv/bin/python bench/core.py [--quick]``. Prints one column
per store, side by side in one run. If LangGraph's SqliteStore is importable
(install ``langgraph-checkpoint-sqlite`` in the benchmark's environment only,
see bench/README.md), the same put/batch/get/prefix-search work runs on it
too, as shipped and tuned.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mnemolog


def measure(
    name: str, op: Callable[[int], Any], count: int, per_op: int = 1
) -> dict[str, Any]:
    """Runs op(i) for i in range(count); per_op items per call for the rate."""
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
        "name": name,
        "rate": count * per_op / total,
        "p50": statistics.median(latencies) * 1e6,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e6,
    }


def bench_store(url: str, n: int, **settings: Any) -> list[dict[str, Any]]:
    """The core workload on one mnemolog store (opened with ``settings``)."""
    store = mnemolog.open(url, **settings)
    results = []
    value = {"text": "the user prefers window seats on morning flights", "n": 0}
    results.append(
        measure(
            "put (one per call)",
            lambda i: store.put(
                f"user:u{i % 100}:prefs", f"k{i}", {**value, "n": i}, tags=["pref"]
            ),
            n,
        )
    )
    batches = max(1, n // 100)
    results.append(
        measure(
            "put_many (100 per batch), items/s",
            lambda b: store.put_many(
                [
                    {
                        "namespace": f"project:p{b}",
                        "key": f"k{j}",
                        "value": {**value, "n": j},
                        "metadata": {"j": j},
                    }
                    for j in range(100)
                ]
            ),
            batches,
            per_op=100,
        )
    )
    results.append(
        measure("get by key", lambda i: store.get(f"user:u{i % 100}:prefs", f"k{i}"), n)
    )
    for version in range(2, 11):
        store.put("user:hist:prefs", "ten", {**value, "n": version})
    store.put("user:hist:prefs", "ten", {**value, "n": 1}, force=True)
    results.append(
        measure(
            "get by version (of 10)",
            lambda i: store.get("user:hist:prefs", "ten", version=1 + i % 10),
            n,
        )
    )
    results.append(
        measure(
            "history (10 versions)",
            lambda i: store.history("user:hist:prefs", "ten"),
            n // 5,
        )
    )
    # 10,000 memories in 100 namespaces; one prefix holds 100 of them.
    store.put_many(
        [
            {"namespace": f"app:search:ns{i % 100}", "key": f"k{i}", "value": {"n": i}}
            for i in range(10_000)
        ]
    )
    results.append(
        measure(
            "search prefix (100 hits of 10k)",
            lambda i: _check(
                len(
                    store.search(namespace_prefix=f"app:search:ns{i % 100}", limit=100)
                ),
                100,
            ),
            n // 5,
        )
    )
    store.close()
    return results


def bench_langgraph(path: str, n: int, *, tuned: bool) -> list[dict[str, Any]] | None:
    """The same work on LangGraph's SqliteStore, if installed (as shipped, or tuned)."""
    try:
        import sqlite3

        from langgraph.store.base import PutOp
        from langgraph.store.sqlite import SqliteStore
    except ImportError:
        return None
    # What SqliteStore.from_conn_string does.
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    if tuned:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    store = SqliteStore(conn)
    store.setup()
    value = {"text": "the user prefers window seats on morning flights", "n": 0}
    results = [
        measure(
            "put (one per call)",
            lambda i: store.put(
                ("user", f"u{i % 100}", "prefs"), f"k{i}", {**value, "n": i}
            ),
            n,
        ),
        measure(
            "put_many (100 per batch), items/s",
            lambda b: store.batch(
                [
                    PutOp(("project", f"p{b}"), f"k{j}", {**value, "n": j})
                    for j in range(100)
                ]
            ),
            max(1, n // 100),
            per_op=100,
        ),
        measure(
            "get by key",
            lambda i: store.get(("user", f"u{i % 100}", "prefs"), f"k{i}"),
            n,
        ),
    ]
    store.batch(
        [
            PutOp(("app", "search", f"ns{i % 100}"), f"k{i}", {"n": i})
            for i in range(10_000)
        ]
    )
    results.append(
        measure(
            "search prefix (100 hits of 10k)",
            lambda i: _check(
                len(store.search(("app", "search", f"ns{i % 100}"), limit=100)), 100
            ),
            n // 5,
        )
    )
    conn.close()
    return results


def _check(got: int, expected: int) -> None:
    if got != expected:
        raise AssertionError(f"expected {expected} results, got {got}")


def print_table(columns: dict[str, list[dict[str, Any]]]) -> None:
    names: list[str] = []
    for rows in columns.values():
        for row in rows:
            if row["name"] not in names:
                names.append(row["name"])
    header = ["operation"] + [f"{label}" for label in columns]
    lines = [header]
    for name in names:
        line = [name]
        for rows in columns.values():
            row = next((r for r in rows if r["name"] == name), None)
            line.append(
                "—"
                if row is None
                else f"{row['rate']:,.0f}/s  p50 {row['p50']:,.0f}us  p99 {row['p99']:,.0f}us"
            )
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for index, line in enumerate(lines):
        print(
            "  ".join(
                cell.ljust(width) for cell, width in zip(line, widths, strict=True)
            )
        )
        if index == 0:
            print("  ".join("-" * width for width in widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer operations")
    args = parser.parse_args()
    n = 500 if args.quick else 5000
    with tempfile.TemporaryDirectory() as tmp:
        columns = {
            "memory://": bench_store("memory://", n),
            "sqlite (synchronous=full, default)": bench_store(
                f"sqlite:///{tmp}/full.db", n
            ),
            "sqlite (synchronous=normal)": bench_store(
                f"sqlite:///{tmp}/normal.db?synchronous=normal", n
            ),
        }
        for tuned, label in ((False, "as shipped"), (True, "WAL + NORMAL")):
            peer = bench_langgraph(f"{tmp}/langgraph-{tuned}.db", n, tuned=tuned)
            if peer is not None:
                columns[f"LangGraph SqliteStore ({label})"] = peer
    print(
        f"mnemolog core benchmark, {n} operations per row (python {sys.version.split()[0]})\n"
    )
    print_table(columns)


if __name__ == "__main__":
    main()
