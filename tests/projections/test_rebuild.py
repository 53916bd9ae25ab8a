"""Rebuilding a projection from the log gives the live one back, row for row."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mnemolog
from mnemolog import MemoryStore, ValidationError
from mnemolog.projections.current_state import CurrentStateProjection
from mnemolog.projections.projector import RebuildProgress


def dump(store: MemoryStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every projection table, sorted."""
    projector = store._recorder.projector
    assert projector is not None
    tables: dict[str, list[tuple[Any, ...]]] = {}
    for projection in projector.projections:
        for table in projection.tables:
            rows = store._recorder.fetch_all(f"SELECT * FROM {table.name}", ())
            tables[table.name] = sorted(tuple(row) for row in rows)
    return tables


def churn(store: MemoryStore) -> None:
    for i in range(60):
        tenant = ["default", "acme"][i % 2]
        view = store.tenant(tenant)
        view.put(
            f"user:u{i % 5}:notes",
            f"k{i % 17}",
            {"i": i, "b": bytes([i % 256])},
            tags=[f"t{i % 3}", "all"],
            metadata={"i": i, "even": i % 2 == 0, "deep": {"n": i % 4}},
            actor=f"agent-{i % 3}",
        )
        if i % 7 == 0:
            view.delete(f"user:u{i % 5}:notes", f"k{i % 17}", reason="cleanup")
        if i % 11 == 0:
            view.restore(f"user:u{i % 5}:notes", f"k{i % 17}")


def test_rebuilding_every_projection_gives_the_same_rows(store: MemoryStore) -> None:
    churn(store)
    before = dump(store)
    assert all(before[name] for name in ("memories", "audit_log", "namespaces"))
    statuses = store.projections.rebuild()
    assert all(s.lag == 0 for s in statuses)
    assert dump(store) == before
    assert store.search(tags_any=["all"], limit=1000) != []


@pytest.mark.parametrize("name", ["current_state", "namespaces", "audit", "sessions"])
def test_rebuilding_one_projection_gives_the_same_rows(
    store: MemoryStore, name: str
) -> None:
    churn(store)
    before = dump(store)
    store.projections.rebuild(name)
    assert dump(store) == before
    store.put("user:after", "k", 1)  # the rebuilt tables take new writes
    assert store.get("user:after", "k") is not None
    assert [n.namespace for n in store.list_namespaces(prefix="user:after")] == [
        "user:after"
    ]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    operations=st.lists(
        st.tuples(
            st.sampled_from(["put", "delete", "restore", "update"]),
            st.sampled_from(["user:a", "user:a:b", "app:x"]),
            st.sampled_from(["k1", "k2", "k3"]),
            st.integers(0, 3),
        ),
        max_size=25,
    )
)
def test_rebuild_equals_live_after_random_operations(
    operations: list[tuple[str, str, str, int]],
) -> None:
    with mnemolog.open("memory://") as store:
        for kind, namespace, key, n in operations:
            try:
                if kind == "put":
                    store.put(namespace, key, n, tags=[f"t{n}"], metadata={"n": n})
                elif kind == "update":
                    store.update(namespace, key, metadata={"m": n})
                elif kind == "delete":
                    store.delete(namespace, key)
                else:
                    store.restore(namespace, key)
            except mnemolog.NotFound:
                pass
        before = dump(store)
        store.projections.rebuild()
        assert dump(store) == before


def test_a_failed_rebuild_leaves_the_old_projection(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    churn(store)
    before = dump(store)
    calls = {"n": 0}
    original = CurrentStateProjection._created

    def failing(self: CurrentStateProjection, *args: Any) -> None:
        calls["n"] += 1
        if self.suffix and calls["n"] > 5:
            raise RuntimeError("disk on fire")
        original(self, *args)

    monkeypatch.setattr(CurrentStateProjection, "_created", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.projections.rebuild("current_state")
    monkeypatch.undo()
    assert dump(store) == before
    catalog = (
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
        "UNION ALL SELECT indexname FROM pg_indexes "
        "WHERE schemaname = current_schema()"
        if store.backend == "postgresql"
        else "SELECT name FROM sqlite_master"
    )
    names = [row[0] for row in store._recorder.fetch_all(catalog, ())]
    assert names  # the catalog query reads this store's tables
    assert [name for name in names if "rebuild" in name] == []
    store.put("user:x", "k", 1)
    assert store.get("user:x", "k") is not None


def test_rebuild_reports_progress_and_refuses_unknown_names(store: MemoryStore) -> None:
    store.put_many(
        [{"namespace": "app:bulk", "key": f"k{i}", "value": i} for i in range(2_500)]
    )
    seen: list[RebuildProgress] = []
    store.projections.rebuild("audit", progress=seen.append)
    assert [p.done for p in seen] == sorted(p.done for p in seen)
    assert seen[-1].done == seen[-1].total == 2_500
    assert seen[-1].rate > 0
    with pytest.raises(ValidationError) as info:
        store.projections.rebuild("nope")
    assert info.value.field == "name"


def test_writes_during_a_rebuild_are_kept(store: MemoryStore) -> None:
    store.put_many(
        [{"namespace": "app:bulk", "key": f"k{i}", "value": i} for i in range(3_000)]
    )
    stop = threading.Event()
    written: list[str] = []

    def writer() -> None:
        i = 0
        while not stop.is_set():
            store.put("app:live", f"w{i}", i)
            written.append(f"w{i}")
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        store.projections.rebuild()
    finally:
        stop.set()
        thread.join()
    found = {m.key for m in store.search(namespace_prefix="app:live", limit=10_000)}
    assert found == set(written)
    assert all(s.lag == 0 for s in store.projections.status())
    audit_keys = {e.key for e in store.audit(namespace_prefix="app:live", limit=10_000)}
    assert audit_keys == set(written)
