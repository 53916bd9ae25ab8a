"""Projection workers: writers that only append to the log, workers that
follow it (woken by LISTEN/NOTIFY on PostgreSQL, polling on SQLite), and
readers that wait for a log position."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import mnemolog
from mnemolog import MemoryStore
from tests.conftest import POSTGRES

ROOT = Path(__file__).resolve().parents[1]


class Worker:
    """store.projections.follow() in a thread, stopped at the end."""

    def __init__(self, store: MemoryStore, **kwargs: Any) -> None:
        self.stop = threading.Event()
        self.passes: list[dict[str, int]] = []
        self.errors: list[BaseException] = []

        def run() -> None:
            try:
                store.projections.follow(
                    stop=self.stop, on_pass=self.passes.append, **kwargs
                )
            except BaseException as e:  # surfaced by close()
                self.errors.append(e)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()
        assert self.errors == []


@pytest.fixture
def worker_stores(persistent_url: str) -> Iterator[tuple[MemoryStore, MemoryStore]]:
    """A writer that only appends to the log, and a worker's store."""
    with (
        mnemolog.open(persistent_url, inline_projections=False) as writer,
        mnemolog.open(persistent_url) as worker,
    ):
        yield writer, worker


def test_without_inline_projections_writes_wait_for_a_worker(
    worker_stores: tuple[MemoryStore, MemoryStore],
) -> None:
    writer, worker_store = worker_stores
    writer.put("user:a", "k", "v")
    assert writer.get("user:a", "k") is None  # not projected yet
    assert writer.projections.status()[0].lag == 1
    with pytest.raises(TimeoutError, match="projection worker"):
        writer.projections.wait(timeout=0.05)
    worker = Worker(worker_store, poll_interval=0.05)
    try:
        writer.projections.wait(timeout=10)
        assert writer.get("user:a", "k").value == "v"  # type: ignore[union-attr]
        for i in range(200):
            writer.put("user:b", f"k{i}", i)
        head = writer.projections.head()
        assert writer.projections.wait(head, timeout=10) >= head
        assert len(writer.search(namespace_prefix="user:b", limit=500)) == 200
        assert all(s.lag == 0 for s in writer.projections.status())
    finally:
        worker.close()
    assert sum(p["current_state"] for p in worker.passes if "current_state" in p) == 201
    report = writer.verify()
    assert report.ok, report.problems


def test_a_worker_may_follow_only_named_projections(
    worker_stores: tuple[MemoryStore, MemoryStore],
) -> None:
    writer, worker_store = worker_stores
    worker = Worker(worker_store, names=["current_state"], poll_interval=0.05)
    try:
        writer.put("user:a", "k", "v")
        writer.projections.wait(names=["current_state"], timeout=10)
        assert writer.get("user:a", "k") is not None
        lag = {s.name: s.lag for s in writer.projections.status()}
        assert lag["current_state"] == 0
        assert lag["audit"] == 1
    finally:
        worker.close()
    with pytest.raises(mnemolog.ValidationError, match="names"):
        writer.projections.wait(names=["nope"], timeout=0.01)


def test_two_workers_never_apply_an_event_twice(
    worker_stores: tuple[MemoryStore, MemoryStore], persistent_url: str
) -> None:
    writer, first_store = worker_stores
    with mnemolog.open(persistent_url) as second_store:
        workers = [
            Worker(first_store, poll_interval=0.01),
            Worker(second_store, poll_interval=0.01),
        ]
        try:
            for i in range(300):
                writer.put(f"user:u{i % 7}", f"k{i}", i)
                if i % 50 == 0:
                    writer.delete(f"user:u{i % 7}", f"k{i}")
            writer.projections.wait(timeout=30)
        finally:
            for worker in workers:
                worker.close()
    counts = {n.namespace: n.count for n in writer.list_namespaces(prefix="user")}
    assert counts.pop("user") == 300 - 6  # the root counts its whole subtree
    assert sum(counts.values()) == 300 - 6
    report = writer.verify()
    assert report.ok, report.problems


def test_wait_returns_once_the_worker_has_applied_the_position(
    worker_stores: tuple[MemoryStore, MemoryStore],
) -> None:
    writer, worker_store = worker_stores
    worker = Worker(worker_store, poll_interval=0.02)
    try:
        for i in range(20):
            writer.put("user:a", f"k{i}", i)
            writer.projections.wait(timeout=10)
            # The write is readable the moment wait returns (how soon it
            # returns is measured by bench/postgres.py, not here).
            assert writer.get("user:a", f"k{i}") is not None
    finally:
        worker.close()


def test_the_worker_listens_again_after_its_connection_drops() -> None:
    from tests.conftest import postgres_url

    url = postgres_url()
    with (
        mnemolog.open(url, inline_projections=False) as writer,
        mnemolog.open(url) as worker_store,
    ):
        recorder = worker_store._recorder
        listeners: list[Any] = []
        make = recorder.listener

        def capture() -> Any:
            listeners.append(make())
            return listeners[-1]

        recorder.listener = capture  # type: ignore[method-assign]
        # A long poll interval: only a notification wakes the worker quickly.
        worker = Worker(worker_store, poll_interval=3.0)
        try:
            writer.put("user:a", "before", 1)
            writer.projections.wait(timeout=10)
            (listener,) = listeners
            deadline = time.monotonic() + 10
            while listener.reconnects < 1 and time.monotonic() < deadline:
                time.sleep(0.01)  # until it has connected and listens
            pid = listener._connection.info.backend_pid
            with psycopg.connect(POSTGRES, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            writer.put("user:a", "after", 2)
            writer.projections.wait(timeout=10)  # found by polling, then listening
            assert writer.get("user:a", "after") is not None
            deadline = time.monotonic() + 10
            while listener.reconnects < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert listener.reconnects >= 2  # the first connect, and again
            assert listener._connection.info.backend_pid != pid
            writer.put("user:a", "listening", 3)
            # Woken by the notification: a poll would come only after 3 s.
            writer.projections.wait(timeout=2.5)
        finally:
            worker.close()


@pytest.mark.slow
def test_the_project_command_follows_until_stopped(persistent_url: str) -> None:
    with mnemolog.open(persistent_url, inline_projections=False) as writer:
        writer.put("user:a", "k0", 0)
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mnemolog",
                "--db",
                persistent_url,
                "project",
                "--follow",
                "--poll-interval",
                "0.05",
            ],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            writer.projections.wait(timeout=30)
            for i in range(1, 30):
                writer.put("user:a", f"k{i}", i)
            writer.projections.wait(timeout=30)
            assert len(writer.search(namespace_prefix="user:a")) == 30
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        assert out.splitlines()[0].startswith('{"following"')


def test_vector_search_never_runs_ahead_of_the_vectors(persistent_url: str) -> None:
    """Workers apply read models one after another: a search in between must
    not take a memory whose vector row is not there yet, and must find it
    once it is."""
    with (
        mnemolog.open(
            persistent_url, inline_projections=False, vector_dims=3
        ) as writer,
        mnemolog.open(persistent_url, vector_dims=3) as worker,
    ):
        writer.put("user:a", "k", "hello", embedding=[1.0, 0.0, 0.0])
        worker.projections.catch_up(["current_state"])
        assert writer.similar([1.0, 0.0, 0.0]) == []  # its vector is not in yet
        worker.projections.catch_up()
        assert [r.item.key for r in writer.similar([1.0, 0.0, 0.0])] == ["k"]
        writer.update("user:a", "k", "hello", embedding=[0.0, 1.0, 0.0])
        worker.projections.catch_up(["current_state"])
        writer.similar([0.0, 1.0, 0.0])
        worker.projections.catch_up()
        (found,) = writer.similar([0.0, 1.0, 0.0])
        assert found.score == pytest.approx(1.0)


def test_rebuilds_beside_a_worker_and_writers_fail_nothing(persistent_url: str) -> None:
    with (
        mnemolog.open(persistent_url, inline_projections=False) as writer,
        mnemolog.open(persistent_url) as worker_store,
        mnemolog.open(persistent_url) as admin,
    ):
        errors: list[Exception] = []
        worker = Worker(worker_store, poll_interval=0.01, on_error=errors.append)
        stop = threading.Event()
        written: list[int] = []

        def write() -> None:
            i = 0
            while not stop.is_set():
                writer.put(f"user:u{i % 5}", f"k{i}", i)
                written.append(i)
                i += 1

        thread = threading.Thread(target=write)
        thread.start()
        try:
            for name in ("current_state", "namespaces", None):
                admin.projections.rebuild(name)
        finally:
            stop.set()
            thread.join()
            writer.projections.wait(timeout=30)
            worker.close()
        assert errors == []
        assert len(writer.search(namespace_prefix="user", limit=10_000)) == len(written)
        report = admin.verify()
        assert report.ok, report.problems
