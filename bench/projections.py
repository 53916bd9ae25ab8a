"""Operations benchmark: rebuild, as_of views, verify, export/import, snapshots.

Run by hand: ``.venv/bin/python bench/projections.py [--quick]``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mnemolog
from mnemolog.transfer import export_events, import_events


def timed(label: str, work: object, count: int, unit: str = "events") -> float:
    start = time.perf_counter()
    work()  # type: ignore[operator]
    elapsed = time.perf_counter() - start
    print(f"{label:<52} {elapsed:8.2f} s   {count / elapsed:>10,.0f} {unit}/s")
    return elapsed


def fill(store: mnemolog.MemoryStore, events: int) -> None:
    """Half creates, half updates, in 100 namespaces, 100 a batch."""
    for batch in range(events // 100):
        store.put_many(
            [
                {
                    "namespace": f"app:bench:ns{(batch * 100 + j) % 100}",
                    "key": f"k{(batch * 100 + j) % (events // 2)}",
                    "value": {
                        "text": "a memory of moderate length",
                        "n": batch * 100 + j,
                    },
                    "tags": ["bench"],
                    "metadata": {"n": j},
                }
                for j in range(100)
            ]
        )


def operations(events: int, tmp: str) -> None:
    url = f"sqlite:///{tmp}/ops.db?synchronous=normal"
    with mnemolog.open(url) as store:
        timed(
            f"fill: put_many of {events:,} events", lambda: fill(store, events), events
        )
        head = store.projections.status()[0].head
        timed(
            f"rebuild all 3 projections ({head:,} events each)",
            store.projections.rebuild,
            head * 3,
        )
        timed(
            "rebuild current_state",
            lambda: store.projections.rebuild("current_state"),
            head,
        )
        report: list[object] = []
        timed(
            "verify: chains and every projection",
            lambda: report.append(store.verify()),
            head,
        )
        timed("verify: chains only", lambda: store.verify(projections=False), head)
        buffer = io.BytesIO()
        timed("export (JSONL)", lambda: export_events(store, buffer.write), head)
        lines = buffer.getvalue().splitlines(keepends=True)
        with mnemolog.open(f"sqlite:///{tmp}/copy.db?synchronous=normal") as copy:
            timed(
                "import (checked, then written with projections)",
                lambda: import_events(copy, lambda: lines),
                head,
            )
        moment = head // 2
        timed(
            f"as_of view at position {moment:,} (namespace app:bench)",
            lambda: store.as_of(moment, namespace_prefix="app:bench").close(),
            moment,
        )


def snapshots(versions: int) -> None:
    print(
        f"\nloading a memory: 10 versions against {versions:,} (memory://), per snapshot interval"
    )
    print(
        f"{'interval':>10} {'update, 10 versions':>22} {'update, long stream':>22} {'get(version=last), long':>26}"
    )
    for interval in (1_000_000, 1000, 100, 20):
        with mnemolog.open("memory://", snapshot_interval=interval) as store:
            for n in range(10):
                store.put("user:short", "k", n)
            # 100 versions a batch: one load a batch, so "none" is not quadratic.
            for start in range(0, versions, 100):
                store.put_many(
                    [
                        {"namespace": "user:long", "key": "k", "value": n}
                        for n in range(start, start + 100)
                    ]
                )
            short = _median(lambda: store.update("user:short", "k", force=True))
            long = _median(lambda: store.update("user:long", "k", force=True))
            last = store.get("user:long", "k").version  # type: ignore[union-attr]
            read = _median(lambda last=last: store.get("user:long", "k", version=last))
        label = "none" if interval >= versions else str(interval)
        print(
            f"{label:>10} {short * 1e3:>19.2f} ms {long * 1e3:>19.2f} ms {read * 1e3:>23.2f} ms"
        )


def _median(work: object, runs: int = 15) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        work()  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--snapshots-only", action="store_true")
    args = parser.parse_args()
    events = 10_000 if args.quick else 100_000
    versions = 2_000 if args.quick else 10_000
    if not args.snapshots_only:
        with tempfile.TemporaryDirectory() as tmp:
            operations(events, tmp)
    snapshots(versions)


if __name__ == "__main__":
    main()
