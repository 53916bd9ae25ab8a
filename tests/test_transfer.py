"""export, import and replay: the log moves between stores with its chains intact."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mnemolog
from mnemolog import MemoryStore, ValidationError
from mnemolog.transfer import export_events, import_events


def exported(store: MemoryStore, tenant: str | None = None) -> list[bytes]:
    buffer = io.BytesIO()
    export_events(store, buffer.write, tenant=tenant)
    return buffer.getvalue().splitlines(keepends=True)


def answers(store: MemoryStore, tenant: str) -> dict[str, Any]:
    """Everything a caller can ask of one tenant, positions aside."""
    view = store.tenant(tenant)
    memories = view.search(include_deleted=True, limit=10_000, order_by="key")
    return {
        "memories": [m.model_dump() for m in memories],
        "histories": [
            [h.model_dump() for h in view.history(m.namespace, m.key)] for m in memories
        ],
        "namespaces": [n.model_dump() for n in view.list_namespaces()],
        "audit": [
            {k: v for k, v in e.model_dump().items() if k != "position"}
            for e in view.audit(limit=10_000)
        ],
    }


def churn(store: MemoryStore) -> None:
    for i in range(30):
        view = store.tenant(["default", "acme"][i % 2])
        view.put(
            f"user:u{i % 3}",
            f"k{i % 7}",
            {"i": i, "b": b"\x01"},
            tags=["t"],
            metadata={"i": i},
        )
        if i % 5 == 0:
            view.delete(f"user:u{i % 3}", f"k{i % 7}", reason="why")


def test_export_then_import_gives_a_store_that_answers_the_same(
    store: MemoryStore, persistent_url: str
) -> None:
    """From every backend into a SQLite file and into PostgreSQL: how a store
    moves between backends."""
    churn(store)
    lines = exported(store)
    assert len(lines) == store.projections.status()[0].head + 1  # and a trailer
    with mnemolog.open(persistent_url) as copy:
        assert import_events(copy, lambda: lines) == len(lines) - 1
        assert copy.verify().ok
        for tenant in ("default", "acme"):
            assert answers(copy, tenant) == answers(store, tenant)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["default", "acme"]),
            st.sampled_from(["user:a", "app:b"]),
            st.sampled_from(["k1", "k2"]),
            st.one_of(
                st.integers(-(2**63), 2**63 - 1),
                st.text(max_size=5),
                st.binary(max_size=4),
            ),
            st.booleans(),
        ),
        max_size=15,
    )
)
def test_round_trip_property(ops: list[tuple[str, str, str, Any, bool]]) -> None:
    with mnemolog.open("memory://") as source, mnemolog.open("memory://") as copy:
        for tenant, namespace, key, value, delete in ops:
            source.put(namespace, key, value, tenant=tenant)
            if delete:
                source.delete(namespace, key, tenant=tenant)
        lines = exported(source)
        import_events(copy, lambda: lines)
        assert copy.verify().ok
        for tenant in ("default", "acme"):
            assert answers(copy, tenant) == answers(source, tenant)


def test_one_tenant_moves_into_a_store_where_it_is_empty(store: MemoryStore) -> None:
    churn(store)
    lines = exported(store, tenant="acme")
    assert all(b'"tenant":"default"' not in line for line in lines)
    with mnemolog.open("memory://") as other:
        other.put("user:x", "k", "already here")  # the default tenant is not empty
        with pytest.raises(ValidationError) as info:
            import_events(other, lambda: lines)
        assert info.value.field == "store"
        import_events(other, lambda: lines, tenant="acme")
        assert answers(other, "acme") == answers(store, "acme")
        assert other.get("user:x", "k") is not None
        with pytest.raises(ValidationError) as again:
            import_events(other, lambda: lines, tenant="acme")
        assert "not empty" in again.value.rule
        with pytest.raises(ValidationError) as wrong:
            import_events(other, lambda: exported(store), tenant="acme")
        assert "also holds tenant" in wrong.value.rule


def mangle(lines: list[bytes], how: str) -> list[bytes]:
    records = [json.loads(line) for line in lines]
    events, trailer = lines[:-1], lines[-1]
    records = records[:-1]
    if how == "truncated":
        return [*events[:-1], events[-1][: len(events[-1]) // 2]]
    if how == "cut at a line":
        return events
    if how == "reordered":
        return [events[1], events[0], *events[2:], trailer]
    if how == "missing line":
        return [events[0], *events[2:], trailer]
    if how == "unknown type":
        records[0]["topic"] = "mnemolog.domain.memory:Memory.Teleported"
    elif how == "newer version":
        records[0]["state"]["class_version"] = 99
    elif how == "tampered":
        records[0]["state"]["value"] = "forged"
    elif how == "foreign id":
        records[0]["id"] = "0" * 32
    elif how == "not an object":
        return [b"[1, 2]\n", *lines]
    return [json.dumps(r).encode() + b"\n" for r in records] + [trailer]


@pytest.mark.parametrize(
    "how",
    [
        "truncated",
        "cut at a line",
        "reordered",
        "missing line",
        "unknown type",
        "newer version",
        "tampered",
        "foreign id",
        "not an object",
    ],
)
def test_bad_input_is_refused_and_writes_nothing(store: MemoryStore, how: str) -> None:
    store.put("user:a", "k", 1)
    store.put("user:a", "k", 2)
    store.put("user:b", "k", 3)
    bad = mangle(exported(store), how)
    with mnemolog.open("memory://") as copy:
        with pytest.raises(ValidationError) as info:
            import_events(copy, lambda: bad)
        assert info.value.field.startswith(("line", "trailer"))
        assert copy.projections.status()[0].head == 0


def test_as_of_is_a_read_only_view_of_the_past(store: MemoryStore) -> None:
    first = store.put("user:a:notes", "n", "first", tags=["t"])
    store.put("user:a:notes", "other", "x")
    position = store.projections.status()[0].head
    store.put("user:a:notes", "n", "second")
    store.delete("user:a:notes", "other")
    store.tenant("acme").put("user:a:notes", "n", "acme's")
    with store.as_of(first.updated_at) as then:
        assert then.get("user:a:notes", "n").value == "first"  # type: ignore[union-attr]
        assert then.get("user:a:notes", "other") is None
        assert [m.key for m in then.search(tags_any=["t"])] == ["n"]
        assert not hasattr(then, "put")
    with store.as_of(position) as then:
        assert {m.key: m.value for m in then.search()} == {"n": "first", "other": "x"}
        assert then.list_namespaces(prefix="user:a")[0].count == 2
        assert [h.version for h in then.history("user:a:notes", "n")] == [1]
    with store.tenant("acme").as_of(datetime.now(UTC)) as acme:
        assert [m.value for m in acme.search()] == ["acme's"]
    with pytest.raises(ValidationError):
        store.as_of(position + 100)
    with pytest.raises(ValidationError):
        store.as_of(datetime(2020, 1, 1))


def test_cli_export_import_and_replay(tmp_path: Path) -> None:
    source, copy = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"

    def run(*words: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mnemolog", *words],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
        )

    assert run("--db", source, "put", "user:a", "k", "1").returncode == 0
    assert run("--db", source, "put", "user:a", "k", "2").returncode == 0
    dump = run("--db", source, "export")
    assert dump.returncode == 0
    (tmp_path / "events.jsonl").write_text(dump.stdout)
    loaded = run("--db", copy, "import", "events.jsonl")
    assert json.loads(loaded.stdout) == {"imported": 2, "verify": True}
    refused = run("--db", copy, "import", "events.jsonl")
    assert refused.returncode == 2
    assert "not empty" in refused.stderr
    past = run("--db", source, "replay", "--position", "1")
    assert [m["value"] for m in json.loads(past.stdout)] == [1]
    into = f"sqlite:///{tmp_path / 'c.db'}"
    made = run("--db", source, "replay", "--position", "1", "--into", into)
    assert json.loads(made.stdout)["replayed_events"] == 1
    assert json.loads(run("--db", into, "get", "user:a", "k").stdout)["value"] == 1
    beyond = run("--db", source, "replay", "--position", "99", "--into", into + "x")
    assert beyond.returncode == 2
    assert "position" in beyond.stderr
    bad_time = run("--db", source, "replay", "--as-of", "yesterday")
    assert bad_time.returncode == 2
    assert "not an ISO time" in bad_time.stderr
    stats = json.loads(run("--db", source, "stats").stdout)
    assert stats["tenants"]["default"]["live"] == 1
    assert stats["log"]["events"] == 2
