"""The audit timeline: one entry per change, filterable, per tenant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mnemolog import MemoryStore, ValidationError


@pytest.fixture
def history(store: MemoryStore) -> MemoryStore:
    store.put(
        "user:alice:prefs",
        "theme",
        "light",
        actor="agent-1",
        task_id="t1",
        source="chat",
    )
    store.put("user:alice:prefs", "theme", "dark", actor="agent-2", reason="asked")
    store.delete("user:alice:prefs", "theme", actor="agent-2", reason="reset")
    store.restore("user:alice:prefs", "theme", actor="admin")
    store.put("user:bob", "k", 1, actor="agent-1")
    store.tenant("other").put("user:alice:prefs", "theme", "x", actor="agent-1")
    return store


def test_every_change_is_an_entry_in_log_order(history: MemoryStore) -> None:
    entries = history.audit()
    assert [(e.kind, e.key, e.version, e.actor) for e in entries] == [
        ("created", "theme", 1, "agent-1"),
        ("updated", "theme", 2, "agent-2"),
        ("deleted", "theme", 3, "agent-2"),
        ("restored", "theme", 4, "admin"),
        ("created", "k", 1, "agent-1"),
    ]
    assert entries[0].task_id == "t1"
    assert entries[0].source == "chat"
    assert entries[2].reason == "reset"
    assert all(e.tenant == "default" for e in entries)
    positions = [e.position for e in entries]
    assert positions == sorted(positions)
    assert [e.at for e in entries] == sorted(e.at for e in entries)


def test_filters(history: MemoryStore) -> None:
    def kinds(**kwargs: object) -> list[str]:
        return [e.kind for e in history.audit(**kwargs)]  # type: ignore[arg-type]

    assert kinds(actor="agent-2") == ["updated", "deleted"]
    assert kinds(namespace_prefix="user:bob") == ["created"]
    assert kinds(namespace_prefix="user:al") == []
    assert kinds(key="theme", kind="deleted") == ["deleted"]
    assert kinds(descending=True, limit=2) == ["created", "restored"]
    everything = history.audit()
    assert kinds(after_position=everything[2].position) == ["restored", "created"]
    assert kinds(since=everything[3].at) == ["restored", "created"]
    assert kinds(until=everything[1].at) == ["created"]
    assert kinds(since=datetime.now(UTC) + timedelta(hours=1)) == []


def test_other_tenants_are_never_in_the_timeline(history: MemoryStore) -> None:
    other = history.tenant("other").audit()
    assert [(e.tenant, e.kind) for e in other] == [("other", "created")]
    assert history.audit(tenant="nobody") == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "shredded"}, "kind"),
        ({"since": datetime(2020, 1, 1)}, "since"),
        ({"limit": 0}, "limit"),
        ({"namespace_prefix": "x:y"}, "namespace_prefix"),
        ({"after_position": -1}, "after_position"),
    ],
)
def test_bad_filters_are_refused(
    store: MemoryStore, kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        store.audit(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
