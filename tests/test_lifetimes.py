"""Lifetimes, the sweeper, the working-memory cap, importance decay and
consolidation, through the public API on every backend."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import mnemolog
from mnemolog import MemoryStore, ValidationError
from mnemolog.domain.errors import NotFound
from mnemolog.transfer import export_events, import_events

PAST = datetime(2020, 1, 1, tzinfo=UTC)
FUTURE = datetime.now(UTC) + timedelta(days=3650)


@pytest.fixture
def open_store(store_url: str) -> Iterator[Any]:
    """Opens the fixture's store URL with settings (one store per test)."""
    opened: list[MemoryStore] = []

    def open_(**settings: Any) -> MemoryStore:
        store = mnemolog.open(store_url, **settings)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


def visible_everywhere(store: MemoryStore, namespace: str, key: str) -> list[bool]:
    """Whether get, search, text search and hybrid retrieval see it."""
    return [
        store.get(namespace, key) is not None,
        any(m.key == key for m in store.search(namespace_prefix=namespace)),
        any(s.item.key == key for s in store.text_search("lifetime")),
        any(s.item.key == key for s in store.retrieve("lifetime")),
    ]


# ---- lifetimes ------------------------------------------------------------------


def test_an_expired_memory_disappears_from_every_read_at_once(
    store: MemoryStore,
) -> None:
    kept = store.put("user:a", "kept", "a lifetime without end")
    short = store.put("user:a", "short", "a lifetime of moments", ttl=0.3)
    assert kept.expires_at is None
    assert short.expires_at is not None
    assert visible_everywhere(store, "user:a", "short") == [True] * 4
    time.sleep(0.4)
    assert visible_everywhere(store, "user:a", "short") == [False] * 4
    assert visible_everywhere(store, "user:a", "kept") == [True] * 4
    hidden = store.get("user:a", "short", include_deleted=True)
    assert hidden is not None
    assert hidden.expires_at == short.expires_at
    # Not swept yet: the log has no Expired event, only what was written.
    assert [e.kind for e in store.history("user:a", "short")] == ["created"]


def test_expires_at_in_the_past_is_hidden_from_the_first_read(
    store: MemoryStore,
) -> None:
    store.put("user:a", "old", "lifetime over", expires_at=PAST)
    assert store.get("user:a", "old") is None
    assert store.search(namespace_prefix="user:a") == []


def test_sweep_records_an_expired_event_with_its_reason(store: MemoryStore) -> None:
    store.put("user:a", "gone", "lifetime over", expires_at=PAST, actor="writer")
    store.put("user:a", "later", "lifetime ahead", expires_at=FUTURE)
    assert store.sweep() == 1
    assert store.sweep() == 0  # nothing left to sweep
    history = store.history("user:a", "gone")
    assert [e.kind for e in history] == ["created", "expired"]
    assert history[-1].actor == "sweeper"
    assert history[-1].reason is not None
    assert "lifetime ended" in history[-1].reason
    assert history[-1].memory.deleted
    audit = store.audit(kind="expired")
    assert [(a.key, a.kind) for a in audit] == [("gone", "expired")]
    assert store.get("user:a", "later") is not None
    assert store.verify().ok


def test_sweep_limit_and_tenants(store_url: str) -> None:
    with mnemolog.open(store_url) as store:
        for tenant in ("t1", "t2"):
            view = store.tenant(tenant)
            for i in range(3):
                view.put("user:a", f"k{i}", i, expires_at=PAST)
        assert store.tenant("t1").sweep(limit=2) == 2
        assert store.tenant("t1").sweep() == 1
        assert store.tenant("t2").search(namespace_prefix="user:a") == []
        assert store.sweep() == 3  # the unbound store sweeps every tenant
        with pytest.raises(ValidationError) as refused:
            store.sweep(limit=0)
        assert refused.value.field == "limit"


def test_a_put_on_an_expired_key_starts_a_new_life(store: MemoryStore) -> None:
    store.put("user:a", "k", "first life", expires_at=PAST)
    again = store.put("user:a", "k", "second life")
    assert again.expires_at is None
    assert store.get("user:a", "k") == again
    store.put("user:a", "swept", "first", expires_at=PAST)
    store.sweep()
    revived = store.put("user:a", "swept", "second", ttl=3600)
    assert not revived.deleted
    assert revived.expires_at is not None
    assert store.get("user:a", "swept") is not None


def test_a_put_without_lifetime_keeps_the_current_one(store: MemoryStore) -> None:
    first = store.put("user:a", "k", "v1", expires_at=FUTURE)
    second = store.put("user:a", "k", "v2")
    assert second.expires_at == first.expires_at
    cleared = store.put("user:a", "k", "v3", expires_at=None)
    assert cleared.expires_at is None


def test_update_of_an_expired_memory_is_not_found(store: MemoryStore) -> None:
    store.put("user:a", "k", "v", expires_at=PAST)
    with pytest.raises(NotFound):
        store.update("user:a", "k", "new")


def test_update_extends_a_lifetime(store: MemoryStore) -> None:
    store.put("user:a", "k", "v", ttl=60)
    extended = store.update("user:a", "k", ttl=timedelta(days=2))
    assert extended.expires_at is not None
    assert extended.expires_at > datetime.now(UTC) + timedelta(days=1)
    assert [e.changed for e in store.history("user:a", "k")][-1] == ("expires_at",)


def test_restore_lifts_an_ended_lifetime(store: MemoryStore) -> None:
    store.put("user:a", "k", "v", expires_at=PAST)
    store.sweep()
    restored = store.restore("user:a", "k")
    assert restored.expires_at is None
    assert store.get("user:a", "k") is not None
    store.put("user:a", "unswept", "v", expires_at=PAST)
    assert store.restore("user:a", "unswept").expires_at is None
    assert store.get("user:a", "unswept") is not None


def test_put_many_takes_lifetimes(store: MemoryStore) -> None:
    store.put_many(
        [
            {"namespace": "user:a", "key": "a", "value": 1, "ttl": 3600},
            {"namespace": "user:a", "key": "b", "value": 2, "expires_at": PAST},
        ]
    )
    assert [m.key for m in store.search(namespace_prefix="user:a")] == ["a"]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"ttl": 0}, "ttl"),
        ({"ttl": -5}, "ttl"),
        ({"ttl": float("nan")}, "ttl"),
        ({"ttl": True}, "ttl"),
        ({"ttl": "60"}, "ttl"),
        ({"ttl": timedelta(seconds=-1)}, "ttl"),
        ({"ttl": 10**20}, "ttl"),
        ({"expires_at": datetime(2030, 1, 1)}, "expires_at"),  # naive
        ({"expires_at": "2030-01-01"}, "expires_at"),
        ({"ttl": 5, "expires_at": FUTURE}, "ttl"),
    ],
)
def test_bad_lifetimes_are_refused_and_nothing_is_written(
    store: MemoryStore, arguments: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        store.put("user:a", "k", "v", **arguments)
    assert refused.value.field == field
    assert store.get("user:a", "k", include_deleted=True) is None


def test_a_point_in_time_view_sees_what_was_alive_then(store: MemoryStore) -> None:
    store.put("user:a", "brief", "lifetime", ttl=0.4)
    during = datetime.now(UTC)
    time.sleep(0.5)
    with store.as_of(during) as view:
        found = view.get("user:a", "brief")
        assert found is not None
        assert found.value == "lifetime"
    assert store.get("user:a", "brief", as_of=during) is not None
    assert store.get("user:a", "brief", as_of=datetime.now(UTC)) is None


def test_lifetimes_survive_export_import_and_rebuild(
    store: MemoryStore, tmp_path: Path
) -> None:
    store.put("user:a", "later", "v", expires_at=FUTURE)
    store.put("user:a", "gone", "v", expires_at=PAST)
    store.sweep()
    lines: list[bytes] = []
    export_events(store, lines.append)
    with mnemolog.open(f"sqlite:///{tmp_path / 'copy.db'}") as copy:
        import_events(copy, lambda: iter(lines))
        assert copy.get("user:a", "later") == store.get("user:a", "later")
        assert copy.get("user:a", "gone") is None
        assert [e.kind for e in copy.history("user:a", "gone")] == [
            "created",
            "expired",
        ]
        assert copy.verify().ok
    store.projections.rebuild()
    assert store.get("user:a", "later") is not None
    assert store.verify().ok


def test_a_store_from_before_lifetimes_gets_the_column(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    with mnemolog.open(url) as store:
        store.put("user:a", "k", "v")
    import sqlite3

    connection = sqlite3.connect(tmp_path / "old.db")
    connection.execute("DROP INDEX ix_memories_expires")
    connection.execute("ALTER TABLE memories DROP COLUMN expires_at")
    connection.commit()
    connection.close()
    with mnemolog.open(url) as store:
        assert store.get("user:a", "k") is not None
        store.put("user:a", "t", "v", expires_at=PAST)
        assert store.get("user:a", "t") is None
        assert store.verify().ok


def test_the_sweep_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with mnemolog.open(url) as store:
        store.put("user:a", "k", "v", expires_at=PAST)
    result = subprocess.run(
        [sys.executable, "-m", "mnemolog", "--db", url, "sweep"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"expired": 1' in result.stdout
    with mnemolog.open(url) as store:
        assert [e.kind for e in store.history("user:a", "k")] == ["created", "expired"]


# ---- the working-memory cap ---------------------------------------------------


def test_working_memories_over_the_cap_evict_the_oldest(open_store: Any) -> None:
    store = open_store(working_memory_cap=3)
    for i in range(5):
        store.put("app:scratch", f"w{i}", i, memory_type="working")
    store.put("app:scratch", "fact", "not working memory")
    live = store.search(namespace_prefix="app:scratch", memory_type="working")
    assert sorted(m.key for m in live) == ["w2", "w3", "w4"]
    assert store.get("app:scratch", "fact") is not None
    evicted = store.history("app:scratch", "w0")
    assert [e.kind for e in evicted] == ["created", "evicted"]
    assert evicted[-1].reason is not None
    assert "at most 3 in app:scratch" in evicted[-1].reason
    # Rewriting a live one does not push anything out.
    store.put("app:scratch", "w2", "again", memory_type="working")
    live = store.search(namespace_prefix="app:scratch", memory_type="working")
    assert sorted(m.key for m in live) == ["w2", "w3", "w4"]
    # Another namespace has its own cap.
    store.put("app:other", "w0", 0, memory_type="working")
    assert store.get("app:other", "w0") is not None


def test_caps_per_namespace_and_batches(open_store: Any) -> None:
    store = open_store(working_memory_caps={"app:tiny": 1})
    store.put_many(
        [
            {
                "namespace": "app:tiny",
                "key": f"w{i}",
                "value": i,
                "memory_type": "working",
            }
            for i in range(3)
        ]
    )
    store.put("app:tiny", "w3", 3, memory_type="working")
    live = store.search(namespace_prefix="app:tiny", memory_type="working")
    assert [m.key for m in live] == ["w3"]
    for i in range(4):
        store.put("app:free", f"w{i}", i, memory_type="working")
    assert len(store.search(namespace_prefix="app:free")) == 4


def test_bad_caps_are_refused(store_url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        mnemolog.open(store_url, working_memory_caps={"app:x": 0})
    assert refused.value.field == "working_memory_caps.app:x"


# ---- importance decay ----------------------------------------------------------


def test_decay_is_off_by_default(store: MemoryStore) -> None:
    memory = store.put("user:a", "k", "v", importance=0.8)
    later = datetime.now(UTC) + timedelta(days=365)
    assert store.effective_importance(memory, at=later) == 0.8


def test_importance_halves_every_half_life_of_its_type(open_store: Any) -> None:
    store = open_store(decay_half_lives={"episodic": 3600.0, "*": 86400.0})
    episode = store.put("user:a", "e", "v", memory_type="episodic", importance=0.8)
    fact = store.put("user:a", "f", "v", memory_type="semantic", importance=0.8)
    one_hour = episode.updated_at + timedelta(hours=1)
    assert store.effective_importance(episode, at=one_hour) == pytest.approx(0.4)
    two_hours = episode.updated_at + timedelta(hours=2)
    assert store.effective_importance(episode, at=two_hours) == pytest.approx(0.2)
    one_day = fact.updated_at + timedelta(days=1)
    assert store.effective_importance(fact, at=one_day) == pytest.approx(0.4)


def test_a_read_resets_the_decay_clock_and_is_not_an_event(open_store: Any) -> None:
    store = open_store(decay_half_lives={"episodic": 0.5}, access_batch=1)
    memory = store.put("user:a", "e", "v", memory_type="episodic", importance=1.0)
    time.sleep(0.6)
    before = store.effective_importance(memory)
    assert before < 0.5
    read = store.get("user:a", "e")
    assert read is not None
    after = store.effective_importance(memory)
    assert after > 0.9
    assert [e.kind for e in store.history("user:a", "e")] == ["created"]


def test_min_importance_filters_by_effective_importance(open_store: Any) -> None:
    store = open_store(decay_half_lives={"episodic": 0.3})
    store.put("user:a", "fading", "v", memory_type="episodic", importance=0.9)
    store.put("user:a", "steady", "v", memory_type="semantic", importance=0.6)
    store.put("user:a", "low", "v", memory_type="semantic", importance=0.1)
    assert sorted(m.key for m in store.search(min_importance=0.5)) == [
        "fading",
        "steady",
    ]
    time.sleep(0.4)
    assert [m.key for m in store.search(min_importance=0.5)] == ["steady"]


def test_bad_half_lives_are_refused(store_url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        mnemolog.open(store_url, decay_half_lives={"episodic": 0.0})
    assert refused.value.field == "decay_half_lives.episodic"


# ---- consolidation ---------------------------------------------------------------


def fill_conflicts(store: MemoryStore) -> None:
    store.put("user:a:prefs", "user_theme", "dark", metadata={"a": 1}, tags=["x"])
    store.put("user:a:prefs", "User-Theme", "light", metadata={"b": 2}, tags=["y"])
    store.put("user:a:prefs", "copy1", {"same": True}, importance=0.9)
    store.put("user:a:prefs", "copy2", {"same": True}, importance=0.2)
    store.put("user:a:prefs", "alone", "unique")
    store.put("user:a:prefs:deeper", "copy3", {"same": True})


def test_a_dry_run_finds_duplicates_and_conflicts(store: MemoryStore) -> None:
    fill_conflicts(store)
    found = store.consolidate("user:a:prefs", dry_run=True)
    assert found.examined == 5  # the deeper namespace is not examined
    assert [(g.target, g.sources, g.reasons) for g in found.groups] == [
        ("User-Theme", ("user_theme",), ("family",)),
        ("copy2", ("copy1",), ("duplicate",)),
    ]
    assert found.superseded == 0
    assert len(store.search(namespace_prefix="user:a:prefs")) == 6


def test_latest_wins_keeps_the_newest_and_supersedes_the_rest(
    store: MemoryStore,
) -> None:
    fill_conflicts(store)
    result = store.consolidate("user:a:prefs", actor="curator", reason="tidy")
    assert result.superseded == 2
    live = store.search(namespace_prefix="user:a:prefs", order_by="key")
    assert [m.key for m in live] == ["User-Theme", "alone", "copy2", "copy3"]
    assert store.get("user:a:prefs", "User-Theme").value == "light"  # type: ignore[union-attr]
    source = store.history("user:a:prefs", "user_theme")
    assert [e.kind for e in source] == ["created", "superseded"]
    assert source[-1].actor == "curator"
    target = store.history("user:a:prefs", "User-Theme")
    assert [e.kind for e in target] == ["created", "consolidated"]
    kinds = {a.kind for a in store.audit(actor="curator")}
    assert kinds == {"superseded", "consolidated"}
    assert store.verify().ok


def test_merge_metadata_merges_metadata_tags_and_importance(
    store: MemoryStore,
) -> None:
    fill_conflicts(store)
    store.consolidate("user:a:prefs", strategy="merge_metadata")
    theme = store.get("user:a:prefs", "User-Theme")
    assert theme is not None
    assert theme.metadata == {"a": 1, "b": 2}
    assert theme.tags == {"x", "y"}
    copy = store.get("user:a:prefs", "copy2")
    assert copy is not None
    assert copy.importance == 0.9


def test_llm_based_needs_a_merge_callable(store: MemoryStore) -> None:
    fill_conflicts(store)
    with pytest.raises(ValidationError) as refused:
        store.consolidate("user:a:prefs", strategy="llm_based")
    assert refused.value.field == "merge"
    assert "none is configured" in refused.value.rule
    assert len(store.search(namespace_prefix="user:a:prefs")) == 6


def test_llm_based_uses_the_callers_merge(store: MemoryStore) -> None:
    fill_conflicts(store)
    seen: list[list[str]] = []

    def merge(memories: list[mnemolog.Memory]) -> dict[str, Any]:
        seen.append([m.key for m in memories])
        return {"value": " | ".join(str(m.value) for m in memories), "tags": ["merged"]}

    store.consolidate("user:a:prefs", strategy="llm_based", merge=merge)
    assert seen == [["user_theme", "User-Theme"], ["copy1", "copy2"]]
    theme = store.get("user:a:prefs", "User-Theme")
    assert theme is not None
    assert theme.value == "dark | light"
    assert theme.tags == {"merged"}


def test_a_configured_consolidator_and_a_custom_family(open_store: Any) -> None:
    store = open_store(consolidator=lambda ms: {"value": ms[-1].value})
    store.put("app:x", "color.v1", "red")
    store.put("app:x", "color.v2", "blue")
    result = store.consolidate(
        "app:x", strategy="llm_based", family=lambda key: key.split(".")[0]
    )
    assert [(g.target, g.sources) for g in result.groups] == [
        ("color.v2", ("color.v1",))
    ]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"strategy": "newest"}, "strategy"),
        ({"strategy": "latest_wins", "merge": len}, "merge"),
        ({"strategy": "llm_based", "merge": "not callable"}, "merge"),
        ({"family": "not callable"}, "family"),
        ({"dry_run": "yes"}, "dry_run"),
    ],
)
def test_bad_consolidation_arguments_are_refused(
    store: MemoryStore, arguments: dict[str, Any], field: str
) -> None:
    fill_conflicts(store)
    with pytest.raises(ValidationError) as refused:
        store.consolidate("user:a:prefs", **arguments)
    assert refused.value.field == field
    assert len(store.search(namespace_prefix="user:a:prefs")) == 6


def test_a_merge_returning_nonsense_writes_nothing(store: MemoryStore) -> None:
    fill_conflicts(store)
    with pytest.raises(ValidationError) as refused:
        store.consolidate(
            "user:a:prefs", strategy="llm_based", merge=lambda ms: {"colour": 1}
        )
    assert refused.value.field == "merge"
    assert len(store.search(namespace_prefix="user:a:prefs")) == 6


def test_consolidation_stays_in_its_tenant(store_url: str) -> None:
    with mnemolog.open(store_url) as store:
        for tenant in ("t1", "t2"):
            fill_conflicts(store.tenant(tenant))
        store.tenant("t1").consolidate("user:a:prefs")
        assert len(store.tenant("t2").search(namespace_prefix="user:a:prefs")) == 6
        assert len(store.tenant("t1").search(namespace_prefix="user:a:prefs")) == 4


# ---- found by review -------------------------------------------------------------


def test_similar_finds_k_live_memories_past_unswept_expired_ones(
    open_store: Any,
) -> None:
    store = open_store(vector_dims=2)
    store.put("app:x", "near", "a", embedding=[1.0, 0.0], expires_at=PAST)
    store.put("app:x", "far", "b", embedding=[0.0, 1.0])
    assert [s.item.key for s in store.similar([1.0, 0.0], k=1)] == ["far"]


def test_a_put_that_evicts_stays_within_a_memory_quota(open_store: Any) -> None:
    store = open_store(working_memory_cap=2, quotas=mnemolog.Quotas(max_memories=2))
    for i in range(4):
        store.put("app:w", f"w{i}", i, memory_type="working")
    assert sorted(m.key for m in store.search(namespace_prefix="app:w")) == [
        "w2",
        "w3",
    ]


def test_eviction_needs_the_right_to_delete(store_url: str) -> None:
    policy = mnemolog.Policy(
        grants=(
            mnemolog.Grant(actions={"read", "write"}, principals={"mallory"}),
            mnemolog.Grant(actions={"read", "write", "delete"}, principals={"alice"}),
        )
    )
    with mnemolog.open(store_url, policy=policy, working_memory_cap=1) as store:
        alice = store.as_principal(mnemolog.Principal("alice"))
        mallory = store.as_principal(mnemolog.Principal("mallory"))
        alice.put("app:p", "plan", "alice's", memory_type="working")
        with pytest.raises(mnemolog.AccessDenied):
            mallory.put("app:p", "mine", "mallory's", memory_type="working")
        assert [m.key for m in alice.search(namespace_prefix="app:p")] == ["plan"]


def test_consolidation_never_mixes_data_subjects(store: MemoryStore) -> None:
    store.put("app:crm", "contact_email", "x", metadata={"email": "b@x"}, subject="bob")
    store.put("app:crm", "Contact-Email", "x", metadata={"note": "a"}, subject="alice")
    result = store.consolidate("app:crm", strategy="merge_metadata")
    assert result.superseded == 0
    store.erase("bob")
    left = store.search(namespace_prefix="app:crm")
    assert [(m.key, m.metadata) for m in left] == [("Contact-Email", {"note": "a"})]


def test_an_unchanged_merged_value_keeps_its_vector(open_store: Any) -> None:
    store = open_store(vector_dims=2)
    store.put("app:v", "Size", 12)
    store.put("app:v", "size", 14, embedding=[0.0, 1.0])  # newest: the target
    store.consolidate(
        "app:v", strategy="llm_based", merge=lambda ms: {"value": 14}, family=str.lower
    )
    assert [s.item.key for s in store.similar([0.0, 1.0], k=1)] == ["size"]


def test_a_callable_strategy_is_never_taken_for_a_built_in(store: MemoryStore) -> None:
    def latest_wins(memories: list[mnemolog.Memory]) -> dict[str, Any]:
        return {"value": 99}

    store.put("app:c", "a_b", 1)
    store.put("app:c", "A-B", 2)
    result = store.consolidate("app:c", strategy=latest_wins)
    assert result.strategy == "custom:latest_wins"
    assert store.get("app:c", "A-B").value == 99  # type: ignore[union-attr]


def test_effective_importance_stays_in_its_tenant(store_url: str) -> None:
    with mnemolog.open(store_url, decay_half_lives={"*": 60}) as store:
        theirs = store.tenant("b").put("user:bob", "k", "v", importance=0.9)
        with pytest.raises(mnemolog.TenantMismatch):
            store.tenant("a").effective_importance(theirs)
        forged = (
            store.tenant("a")
            .put("user:x", "k", "v")
            .model_copy(update={"id": theirs.id})
        )
        with pytest.raises(ValidationError) as refused:
            store.tenant("a").effective_importance(forged)
        assert refused.value.field == "memory"


def test_a_version_read_shows_the_version_as_it_was(store: MemoryStore) -> None:
    store.put(
        "user:a", "k", "v1", expires_at=datetime.now(UTC) + timedelta(seconds=0.3)
    )
    time.sleep(0.4)
    assert store.get("user:a", "k") is None
    then = store.get("user:a", "k", version=1)
    assert then is not None
    assert then.value == "v1"


def test_an_import_with_a_bad_lifetime_is_refused(
    store: MemoryStore, tmp_path: Path
) -> None:
    import orjson

    store.put("user:a", "k", "v", expires_at=FUTURE)
    lines: list[bytes] = []
    export_events(store, lines.append)
    for bad in ("soon", "2030-01-01T00:00:00", 12):
        forged = []
        for line in lines:
            record = orjson.loads(line)
            state = record.get("state", {})
            if isinstance(state, dict) and "expires_at" in state:
                state["expires_at"] = bad
            forged.append(orjson.dumps(record))
        with mnemolog.open(f"sqlite:///{tmp_path / f'copy{bad}.db'}") as copy:
            with pytest.raises(ValidationError):
                import_events(copy, lambda forged=forged: iter(forged))
            assert copy.search(namespace_prefix="user:a") == []
