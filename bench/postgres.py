"""PostgreSQL benchmark: many writer processes, cross-process visibility, and
the core workload, beside SQLite in the same run.

Run by hand: ``.venv/bin/python bench/postgres.py [--quick] [--url URL]``
(default URL: postgresql://postgres@127.0.0.1:5432/test; each store gets a
fresh schema, dropped afterwards).

- puts/s with 1, 2 and 4 writer processes, each putting its own memories, on
  PostgreSQL and on a SQLite file (synchronous=full and normal);
- lag: from a put returning in one process to a reader polling ``get`` in
  another process seeing it (p50/p99), on both;
- the core workload (bench/core.py) on PostgreSQL, beside SQLite.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg

import mnemolog

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMAS: list[str] = []


def fresh(base: str) -> str:
    schema = f"bench_{uuid4().hex[:12]}"
    SCHEMAS.append(schema)
    return f"{base}?schema={schema}"


def drop_schemas(base: str) -> None:
    with psycopg.connect(base, autocommit=True) as connection:
        for schema in SCHEMAS:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _writer(
    url: str, writer: int, count: int, inline: bool, ready: Any, done: Any
) -> None:
    with mnemolog.open(url, inline_projections=inline) as store:
        store.put(f"user:w{writer}", "warm", 0)
        ready.wait()
        start = time.perf_counter()
        for i in range(count):
            store.put(f"user:w{writer}", f"k{i}", {"text": "a memory", "i": i})
        done.put(time.perf_counter() - start)


def _follower(url: str, stop: Any) -> None:
    with mnemolog.open(url) as store:
        store.projections.follow(stop=stop, poll_interval=0.5)


class Follower:
    """A projection worker process, for writers that do not project."""

    def __init__(self, url: str, inline: bool) -> None:
        context = multiprocessing.get_context("spawn")
        self.stop = context.Event()
        self.process = (
            None if inline else context.Process(target=_follower, args=(url, self.stop))
        )
        if self.process is not None:
            self.process.start()

    def close(self) -> None:
        if self.process is not None:
            self.stop.set()
            self.process.join()


def writers(url: str, inline: bool, processes: int, count: int) -> float:
    """Total puts/s of ``processes`` writers putting ``count`` each."""
    with mnemolog.open(url):
        pass  # create the tables before the race
    follower = Follower(url, inline)
    context = multiprocessing.get_context("spawn")
    ready, done = context.Event(), context.Queue()
    workers = [
        context.Process(target=_writer, args=(url, w, count, inline, ready, done))
        for w in range(processes)
    ]
    for worker in workers:
        worker.start()
    time.sleep(1.0)  # let every writer open its store
    start = time.perf_counter()
    ready.set()
    for _ in workers:
        done.get(timeout=600)
    elapsed = time.perf_counter() - start
    for worker in workers:
        worker.join()
    follower.close()
    return processes * count / elapsed


def _reader(url: str, count: int, ready: Any, seen: Any) -> None:
    with mnemolog.open(url) as store:
        ready.set()
        times = []
        for i in range(count):
            while store.get("user:lag", f"k{i}") is None:
                pass
            times.append(time.time())
        seen.put(times)


def lag(url: str, inline: bool, count: int) -> tuple[float, float]:
    """p50 and p99 (ms) from a put returning to another process seeing it."""
    context = multiprocessing.get_context("spawn")
    ready, seen = context.Event(), context.Queue()
    with mnemolog.open(url):
        pass
    follower = Follower(url, inline)
    with mnemolog.open(url, inline_projections=inline) as store:
        reader = context.Process(target=_reader, args=(url, count, ready, seen))
        reader.start()
        ready.wait(60)
        returned = []
        for i in range(count):
            store.put("user:lag", f"k{i}", i)
            returned.append(time.time())
            time.sleep(0.002)
        times = seen.get(timeout=120)
        reader.join()
    follower.close()
    lags = sorted(max(0.0, s - r) * 1e3 for s, r in zip(times, returned, strict=True))
    return statistics.median(lags), lags[min(len(lags) - 1, int(len(lags) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--url", default=DEFAULT_URL)
    args = parser.parse_args()
    count = 300 if args.quick else 1500
    base = args.url
    rows: list[tuple[str, ...]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            stores = {
                "postgresql": (lambda: fresh(base), True),
                "postgresql, worker": (lambda: fresh(base), False),
                "sqlite full": (lambda: f"sqlite:///{tmp}/{uuid4().hex}.db", True),
                "sqlite normal": (
                    lambda: f"sqlite:///{tmp}/{uuid4().hex}.db?synchronous=normal",
                    True,
                ),
            }
            for processes in (1, 2, 4):
                row = [f"puts/s, {processes} writer process(es)"]
                for make, inline in stores.values():
                    row.append(f"{writers(make(), inline, processes, count):,.0f}")
                rows.append(tuple(row))
            row = ["lag put -> visible in another process, p50 / p99 ms"]
            for make, inline in stores.values():
                p50, p99 = lag(make(), inline, 200 if args.quick else 1000)
                row.append(f"{p50:.2f} / {p99:.2f}")
            rows.append(tuple(row))
            from core import bench_store

            n = 1000 if args.quick else 5000
            core = {
                "postgresql": bench_store(fresh(base), n),
                "sqlite full": bench_store(f"sqlite:///{tmp}/core.db", n),
                "sqlite normal": bench_store(
                    f"sqlite:///{tmp}/core-n.db?synchronous=normal", n
                ),
            }
            for i, result in enumerate(core["postgresql"]):
                rows.append(
                    (
                        f"{result['name']} (ops/s, p50 us)",
                        *(
                            f"{core[name][i]['rate']:,.0f}, {core[name][i]['p50']:,.0f}"
                            if name in core
                            else "-"
                            for name in stores
                        ),
                    )
                )
    finally:
        drop_schemas(base)
    widths = [56, 20, 20, 20, 20]
    header = ("", *stores)
    for row in (header, *rows):
        print("".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
