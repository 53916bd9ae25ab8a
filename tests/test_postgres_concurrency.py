"""Many processes on one PostgreSQL store: nothing acknowledged is lost, no
update is silently overwritten, and every read model equals its rebuild.

Four writer processes each put their own memories and, interleaved, increment
shared counters: half with ``expected_version`` and a retry on conflict, half
as plain read-modify-write guarded the same way. Each writer reports what the
store acknowledged; afterwards the log must hold all of it.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import time
from typing import Any

import pytest

import mnemolog
from mnemolog import VersionConflict
from tests.conftest import postgres_url

WRITERS = 4
PUTS = 1000
COUNTERS = 5
INCREMENTS = 60


def _writer(url: str, writer: int, inline: bool, ready: Any, results: Any) -> None:
    rng = random.Random(writer)
    acknowledged: list[str] = []
    increments = 0
    conflicts = 0
    with mnemolog.open(url, inline_projections=inline) as store:
        ready.wait()
        for i in range(PUTS):
            key = f"w{writer}-{i}"
            store.put(f"user:w{writer}", key, {"writer": writer, "i": i})
            acknowledged.append(key)
            if i % (PUTS // INCREMENTS) == 0 and increments < INCREMENTS:
                counter = f"c{rng.randrange(COUNTERS)}"
                while True:
                    current = store.get("app:counters", counter)
                    assert current is not None
                    try:
                        store.update(
                            "app:counters",
                            counter,
                            {"n": current.value["n"] + 1},
                            expected_version=current.version,
                        )
                    except VersionConflict:
                        # Read again (a worker may not have applied it yet).
                        conflicts += 1
                        time.sleep(0.001 * rng.random())
                        continue
                    increments += 1
                    break
    results.put(
        json.dumps(
            {
                "writer": writer,
                "keys": acknowledged,
                "increments": increments,
                "conflicts": conflicts,
            }
        )
    )


def _worker(url: str, stop: Any) -> None:
    with mnemolog.open(url) as store:
        store.projections.follow(stop=stop, poll_interval=0.2)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["inline", "worker"])
def test_four_writer_processes_lose_nothing(mode: str) -> None:
    """Inline: each write projects itself. Worker: writers only append and
    one worker process projects, woken by LISTEN/NOTIFY."""
    url = postgres_url()
    inline = mode == "inline"
    with mnemolog.open(url) as store:
        for c in range(COUNTERS):
            store.put("app:counters", f"c{c}", {"n": 0})
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    stop = context.Event()
    results = context.Queue()
    processes = [
        context.Process(target=_writer, args=(url, w, inline, ready, results))
        for w in range(WRITERS)
    ]
    worker = None if inline else context.Process(target=_worker, args=(url, stop))
    for process in [*processes, *([worker] if worker else [])]:
        process.start()
    ready.set()
    reports = [json.loads(results.get(timeout=600)) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    if worker is not None:
        with mnemolog.open(url, inline_projections=False) as store:
            store.projections.wait(timeout=120)
        stop.set()
        worker.join(timeout=60)
        assert worker.exitcode == 0
    print("version conflicts retried:", sum(r["conflicts"] for r in reports))
    with mnemolog.open(url) as store:
        for report in reports:
            writer = report["writer"]
            stored = {
                m.key
                for m in store.search(namespace_prefix=f"user:w{writer}", limit=10_000)
            }
            assert stored == set(report["keys"])
            assert len(stored) == PUTS
        total = sum(
            store.get("app:counters", f"c{c}").value["n"]  # type: ignore[union-attr]
            for c in range(COUNTERS)
        )
        # Every acknowledged increment is in the counters: none was lost.
        assert total == sum(r["increments"] for r in reports) == WRITERS * INCREMENTS
        versions = sum(
            store.get("app:counters", f"c{c}").version  # type: ignore[union-attr]
            for c in range(COUNTERS)
        )
        assert versions == COUNTERS + total
        report = store.verify()
        assert report.ok, report.problems
        assert report.events == WRITERS * PUTS + COUNTERS + total
        assert report.projections_checked  # and each equals its rebuild


def _opener(url: str, n: int, ready: Any, results: Any) -> None:
    ready.wait()
    try:
        with mnemolog.open(url) as store:
            store.put("app:starts", f"p{n}", n)
        results.put("ok")
    except Exception as e:  # reported, so the test can show it
        results.put(f"{type(e).__name__}: {e}")


@pytest.mark.slow
def test_many_processes_may_open_a_new_store_at_once() -> None:
    """Tables are created once, under a lock: racing starts never fail."""
    url = postgres_url()
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    results = context.Queue()
    processes = [
        context.Process(target=_opener, args=(url, n, ready, results)) for n in range(6)
    ]
    for process in processes:
        process.start()
    ready.set()
    outcomes = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert outcomes == ["ok"] * 6
    with mnemolog.open(url) as store:
        assert {m.key for m in store.search(namespace_prefix="app:starts")} == {
            f"p{n}" for n in range(6)
        }
        assert store.verify().ok


def test_opening_a_current_store_creates_and_locks_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tables are created once per version of them: later starts run no DDL
    and never take the writers' lock, so starting a worker never stalls writers."""
    import psycopg

    url = postgres_url()
    with mnemolog.open(url) as store:
        store.put("app:x", "k", 1)
    statements: list[str] = []
    execute = psycopg.Cursor.execute
    connection_execute = psycopg.Connection.execute

    def spy(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        statements.append(
            str(query.as_string(None) if hasattr(query, "as_string") else query)
        )
        return execute(self, query, *args, **kwargs)

    def connection_spy(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        statements.append(
            str(query.as_string(None) if hasattr(query, "as_string") else query)
        )
        return connection_execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", spy)
    monkeypatch.setattr(psycopg.Connection, "execute", connection_spy)
    with mnemolog.open(url) as store:
        assert store.get("app:x", "k").value == 1  # type: ignore[union-attr]
    assert statements  # the spy saw the open's statements
    for statement in statements:
        words = statement.split()
        assert words[0].upper() not in {"CREATE", "ALTER", "DO", "LOCK"}, statement
        assert "LOCK TABLE" not in statement.upper(), statement
