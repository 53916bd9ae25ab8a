"""Sessions benchmark: create, append with a state delta, get with 10 events,
list a user's sessions; beside Google ADK's session services when installed
(``google-adk[db]`` and ``aiosqlite`` in the benchmark's environment only).

Run by hand: ``python bench/sessions.py [--quick]``.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from core import measure, print_table

import mnemolog


def bench_ours(url: str, n: int) -> list[dict[str, Any]]:
    with mnemolog.open(url) as store:
        sessions = store.sessions
        results = [
            measure(
                "create_session",
                lambda i: sessions.create_session(
                    app_name="bench", user_id=f"u{i % 50}", session_id=f"s{i}"
                ),
                n,
            ),
            measure(
                "append_event with a state_delta",
                lambda i: sessions.append_event(
                    f"s{i % n}",
                    {"author": "user", "content": {"text": f"turn {i}"}},
                    {"turn": i, "temp:scratch": i},
                ),
                n,
            ),
        ]
        for turn in range(10):
            sessions.append_event("s0", {"author": "agent", "content": turn})
        results.append(
            measure("get_session (10+ events)", lambda i: sessions.get_session("s0"), n)
        )
        results.append(
            measure(
                "list_sessions for a user",
                lambda i: sessions.list_sessions(
                    app_name="bench", user_id=f"u{i % 50}"
                ),
                n // 5,
            )
        )
    return results


async def ameasure(
    name: str, op: Callable[[int], Awaitable[Any]], count: int
) -> dict[str, Any]:
    latencies = []
    start = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        await op(i)
        latencies.append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    latencies.sort()
    return {
        "name": name,
        "rate": count / total,
        "p50": statistics.median(latencies) * 1e6,
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1e6,
    }


async def bench_adk(service: Any, n: int) -> list[dict[str, Any]]:
    from google.adk.events import Event, EventActions

    made: dict[int, Any] = {}

    async def create(i: int) -> None:
        made[i] = await service.create_session(
            app_name="bench", user_id=f"u{i % 50}", session_id=f"s{i}"
        )

    async def append(i: int) -> None:
        session = made[i % n]
        event = Event(
            author="user",
            invocation_id=f"inv{i}",
            actions=EventActions(state_delta={"turn": i, "temp:scratch": i}),
        )
        await service.append_event(session, event)

    results = [await ameasure("create_session", create, n)]
    results.append(await ameasure("append_event with a state_delta", append, n))
    for turn in range(10):
        await service.append_event(
            made[0], Event(author="agent", invocation_id=f"t{turn}")
        )

    async def get(i: int) -> None:
        await service.get_session(app_name="bench", user_id="u0", session_id="s0")

    async def listing(i: int) -> None:
        await service.list_sessions(app_name="bench", user_id=f"u{i % 50}")

    results.append(await ameasure("get_session (10+ events)", get, n))
    results.append(await ameasure("list_sessions for a user", listing, n // 5))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    n = 200 if parser.parse_args().quick else 1000
    with tempfile.TemporaryDirectory() as tmp:
        columns = {
            "mnemolog memory://": bench_ours("memory://", n),
            "mnemolog sqlite (synchronous=full)": bench_ours(
                f"sqlite:///{tmp}/m.db", n
            ),
        }
        try:
            from google.adk.sessions import (
                DatabaseSessionService,
                InMemorySessionService,
            )
        except ImportError:
            pass
        else:
            columns["ADK InMemorySessionService"] = asyncio.run(
                bench_adk(InMemorySessionService(), n)
            )

            async def database() -> list[dict[str, Any]]:
                service = DatabaseSessionService(
                    db_url=f"sqlite+aiosqlite:///{tmp}/adk.db"
                )
                return await bench_adk(service, n)

            columns["ADK DatabaseSessionService (SQLite)"] = asyncio.run(database())
    print(f"sessions benchmark, {n} operations per row\n")
    print_table(columns)


if __name__ == "__main__":
    main()
