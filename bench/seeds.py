"""The five seed systems' own published figures, measured on their facades in
one run, on SQLite files in a temporary directory (and ``memory://`` where a
seed names an in-memory backend).

- 000 ProjectMemory: 1,000 puts + 1,000 gets; published ~0.05 s in memory,
  ~0.15 s with files.
- 001 MemoryProvider: store, retrieve, search, delete latency; targets store
  <10 ms, retrieve <50 ms p95, search <200 ms p95, delete <10 ms.
- 002 Memory Vault: store, retrieve, search ops/s; published 500-1000,
  2000-5000 and 100-500.
- 003 Memory Module: 1,000 create + get on the SQLite and JSON backends (the
  seed publishes complexities, not figures).
- 004 SessionService/MemoryService: session create <10 ms, event append
  <20 ms, memory get <20 ms, namespace query of 100 memories <50 ms, 50
  concurrent session reads <1 s, history of 10 versions <30 ms.

Run by hand: ``python bench/seeds.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mnemolog.adapters.compat.memory_provider import (
    Memory,
    MemoryType,
    MnemologMemoryProvider,
)
from mnemolog.adapters.compat.memory_vault import MemoryType as VaultType
from mnemolog.adapters.compat.memory_vault import UnifiedMemoryVaultV2
from mnemolog.adapters.compat.persistent_memory import MemoryModule
from mnemolog.adapters.compat.project_memory import (
    FileProjectMemory,
    InMemProjectMemory,
)
from mnemolog.adapters.compat.session_memory import MemoryService, SessionService

Row = dict[str, Any]


def row(seed: str, what: str, latencies: list[float], published: str) -> Row:
    """A table row from per-call latencies in seconds."""
    ordered = sorted(latencies)
    total = sum(ordered)
    return {
        "seed": seed,
        "what": what,
        "calls": len(ordered),
        "total_s": total,
        "ops_s": len(ordered) / total if total else float("inf"),
        "p50_ms": statistics.median(ordered) * 1e3,
        "p95_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1e3,
        "published": published,
    }


async def timed(call: Callable[[int], Awaitable[Any]], count: int) -> list[float]:
    latencies = []
    for i in range(count):
        start = time.perf_counter()
        await call(i)
        latencies.append(time.perf_counter() - start)
    return latencies


def timed_sync(call: Callable[[int], Any], count: int) -> list[float]:
    latencies = []
    for i in range(count):
        start = time.perf_counter()
        call(i)
        latencies.append(time.perf_counter() - start)
    return latencies


async def seed000(place: Path, n: int) -> list[Row]:
    rows = []
    for name, memory, published in (
        ("InMemProjectMemory", InMemProjectMemory(), "~0.05 s"),
        ("FileProjectMemory", FileProjectMemory(root_dir=str(place / "pm")), "~0.15 s"),
    ):
        puts = await timed(lambda i, m=memory: m.put(f"k{i}", f"data {i}"), n)
        gets = await timed(lambda i, m=memory: m.get(f"k{i}"), n)
        rows.append(
            row(
                "000",
                f"{name}: {n} puts + {n} gets",
                puts + gets,
                f"{published} for 1,000 + 1,000",
            )
        )
        await memory.close()
    return rows


async def seed001(place: Path, n: int) -> list[Row]:
    provider = MnemologMemoryProvider(f"sqlite:///{place / 'provider.db'}")
    rows = []
    users = [f"user-{u}" for u in range(20)]
    ids: list[str] = []

    async def store(i: int) -> None:
        memory = Memory(
            user_id=users[i % 20],
            content=f"prefers option {i} for deployments and reviews",
            memory_type=MemoryType.PREFERENCE,
            confidence=0.9,
            source="conversation",
        )
        ids.append(await provider.store(memory, {}))

    rows.append(row("001", "store", await timed(store, n), "<10 ms"))
    rows.append(
        row(
            "001",
            "retrieve (text)",
            await timed(lambda i: provider.retrieve("deployments", users[i % 20]), n),
            "<50 ms p95",
        )
    )
    rows.append(
        row(
            "001",
            "search",
            await timed(
                lambda i: provider.search(users[i % 20], {"memory_type": "preference"}),
                n,
            ),
            "<200 ms p95",
        )
    )
    rows.append(
        row(
            "001", "delete", await timed(lambda i: provider.delete(ids[i]), n), "<10 ms"
        )
    )
    await provider.close()
    return rows


async def seed002(place: Path, n: int) -> list[Row]:
    vault = UnifiedMemoryVaultV2({"storage_path": str(place / "vault")})
    await vault.initialize()
    ids: list[str] = []

    async def store(i: int) -> None:
        ids.append(
            await vault.store(
                content=f"observation {i}",
                memory_type=VaultType.SEMANTIC,
                metadata={"tags": ["bench", f"t{i % 10}"]},
                importance=(i % 10) / 10,
            )
        )

    rows = [row("002", "store", await timed(store, n), "500-1000 ops/s")]
    rows.append(
        row(
            "002",
            "retrieve",
            await timed(lambda i: vault.retrieve(ids[i]), n),
            "2000-5000 ops/s",
        )
    )
    rows.append(
        row(
            "002",
            "search (a tag, min_importance, 10 results)",
            await timed(
                lambda i: vault.search(
                    tags=[f"t{i % 10}"], min_importance=0.3, max_results=10
                ),
                n,
            ),
            "100-500 ops/s",
        )
    )
    await vault.shutdown()
    return rows


def seed003(place: Path, n: int) -> list[Row]:
    rows = []
    for backend in ("sqlite", "json"):
        module = MemoryModule(
            storage_dir=place / f"jarvis-{backend}", backend_type=backend
        )
        module.bootstrap()
        ids: list[str] = []
        creates = timed_sync(
            lambda i, module=module, ids=ids: ids.append(
                module.create_memory(
                    category="tasks",
                    key=f"task_{i}",
                    value={"status": "completed", "n": i},
                    entity_type="task",
                )
            ),
            n,
        )
        gets = timed_sync(
            lambda i, module=module, ids=ids: module.get_memory(ids[i]), n
        )
        rows.append(row("003", f"{backend}: create_memory", creates, "O(1) write"))
        rows.append(row("003", f"{backend}: get_memory", gets, "O(log n) query"))
        module.shutdown()
    return rows


async def seed004(place: Path, n: int) -> list[Row]:
    url = f"sqlite:///{place / 'milestone.db'}"
    sessions = SessionService(url)
    memories = MemoryService(sessions.store)
    rows = [
        row(
            "004",
            "create_session",
            await timed(
                lambda i: sessions.create_session(f"s{i}", "bench", f"u{i % 50}"), n
            ),
            "<10 ms",
        ),
        row(
            "004",
            "append_event with a state delta",
            await timed(
                lambda i: sessions.append_event(
                    f"s{i % n}", {"actor": "agent", "n": i}, {"temp:step": i}
                ),
                n,
            ),
            "<20 ms",
        ),
    ]
    for i in range(100):
        await memories.add_memory(
            f"user:alice:notes:{i % 5}", f"k{i}", {"n": i}, "semantic", "bench", "t"
        )
    for version in range(9):
        await memories.update_memory(
            "user:alice:notes:0", "k0", {"n": version}, "bench", "t"
        )
    rows.append(
        row(
            "004",
            "get_memory (current version)",
            await timed(
                lambda i: memories.get_memory(
                    f"user:alice:notes:{i % 5}", f"k{i % 100}"
                ),
                n,
            ),
            "<20 ms",
        )
    )
    rows.append(
        row(
            "004",
            "search_memories user:alice (100 memories)",
            await timed(
                lambda i: memories.search_memories("user:alice", limit=100), n // 5
            ),
            "<50 ms",
        )
    )
    rows.append(
        row(
            "004",
            "get_memory_history (10 versions)",
            await timed(
                lambda i: memories.get_memory_history("user:alice:notes:0", "k0"), n
            ),
            "<30 ms",
        )
    )

    async def fifty_reads(i: int) -> None:
        await asyncio.gather(*(sessions.get_session(f"s{j}") for j in range(50)))

    rows.append(
        row(
            "004",
            "50 concurrent get_session (all of them)",
            await timed(fifty_reads, 20),
            "<1 s",
        )
    )
    sessions.close()
    return rows


def print_rows(rows: list[Row]) -> None:
    header = f"{'seed':4}  {'what':46} {'calls':>6} {'total s':>8} {'ops/s':>9} {'p50 ms':>8} {'p95 ms':>8}  published"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['seed']:4}  {r['what']:46} {r['calls']:6d} {r['total_s']:8.3f} "
            f"{r['ops_s']:9.0f} {r['p50_ms']:8.2f} {r['p95_ms']:8.2f}  {r['published']}"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="200 calls, not 1,000")
    args = parser.parse_args()
    n = 200 if args.quick else 1000
    with tempfile.TemporaryDirectory() as directory:
        place = Path(directory)
        rows = await seed000(place, n)
        rows += await seed001(place, n)
        rows += await seed002(place, n)
        rows += await asyncio.to_thread(seed003, place, n)
        rows += await seed004(place, n)
    print_rows(rows)


if __name__ == "__main__":
    asyncio.run(main())
