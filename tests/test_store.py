"""The behavioural suite: the public API, on every backend."""

from __future__ import annotations

import asyncio
import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest

import mnemolog
from mnemolog import (
    MemoryStore,
    NotFound,
    TenantMismatch,
    ValidationError,
    VersionConflict,
)


def test_put_then_get_returns_what_was_written(store: MemoryStore) -> None:
    written = store.put(
        "user:alice:preferences",
        "theme",
        {"mode": "dark", "size": 14},
        tags=["ui", "pref"],
        metadata={"source": "chat", "score": 0.9},
        memory_type="semantic",
        importance=0.8,
        actor="agent-1",
    )
    read = store.get("user:alice:preferences", "theme")
    assert read == written
    assert read is not None
    assert read.value == {"mode": "dark", "size": 14}
    assert read.tags == {"ui", "pref"}
    assert read.metadata == {"source": "chat", "score": 0.9}
    assert read.importance == 0.8
    assert read.version == 1
    assert read.created_by == read.updated_by == "agent-1"
    assert read.tenant == "default"


@pytest.mark.parametrize(
    "value",
    [
        None,
        0,
        -(2**63),
        2**63 - 1,
        1.5,
        "text",
        "",
        True,
        [],
        {},
        [1, "a", None, {"b": [True]}],
        b"\x00\xff raw",
        {"blob": b"\x89PNG", "nested": [b"", {"x": b"y"}]},
        {"$bytes": "not bytes"},
        {"$dict": {"$bytes": "x"}},
        {"_type_": "uuid_hex", "_data_": "0"},
        "emoji \U0001f9e0 and RTL \u202e",
    ],
)
def test_any_json_value_and_bytes_round_trip_exactly(
    store: MemoryStore, value: object
) -> None:
    store.put("app:test", "k", value)
    read = store.get("app:test", "k")
    assert read is not None
    assert read.value == value
    assert type(read.value) is type(value)
    history_value = store.get("app:test", "k", version=1)
    assert history_value is not None
    assert history_value.value == value


def test_get_of_a_missing_key_is_none(store: MemoryStore) -> None:
    assert store.get("user:alice", "nothing") is None


def test_put_again_makes_a_new_version_and_keeps_what_was_not_given(
    store: MemoryStore,
) -> None:
    store.put("user:bob", "k", 1, tags=["a"], metadata={"m": 1}, importance=0.2)
    second = store.put("user:bob", "k", 2)
    assert second.version == 2
    assert second.value == 2
    assert second.tags == {"a"}
    assert second.metadata == {"m": 1}
    assert second.importance == 0.2
    third = store.put("user:bob", "k", 2, tags=["b"], metadata={"n": 2})
    assert third.version == 3
    assert third.tags == {"b"}
    assert third.metadata == {"n": 2}


def test_identical_put_is_a_no_op_unless_forced(store: MemoryStore) -> None:
    first = store.put("user:bob", "k", {"a": 1}, tags=["x"], metadata={"m": 1})
    same = store.put("user:bob", "k", {"a": 1}, tags=["x"], metadata={"m": 1})
    assert same.version == first.version == 1
    assert len(store.history("user:bob", "k")) == 1
    forced = store.put("user:bob", "k", {"a": 1}, force=True)
    assert forced.version == 2
    assert store.history("user:bob", "k")[-1].changed == ()


def test_update_merges_metadata_unless_replaced(store: MemoryStore) -> None:
    store.put("user:bob", "k", "v", metadata={"a": 1, "b": 2})
    merged = store.update("user:bob", "k", metadata={"b": 3, "c": 4})
    assert merged.metadata == {"a": 1, "b": 3, "c": 4}
    assert merged.value == "v"
    replaced = store.update("user:bob", "k", metadata={"z": 0}, replace_metadata=True)
    assert replaced.metadata == {"z": 0}
    assert replaced.version == 3


def test_update_changes_only_what_is_given(store: MemoryStore) -> None:
    store.put("user:bob", "k", "v", tags=["t"], importance=0.1)
    updated = store.update("user:bob", "k", importance=0.9, actor="curator")
    assert updated.value == "v"
    assert updated.tags == {"t"}
    assert updated.importance == 0.9
    assert updated.updated_by == "curator"
    assert store.history("user:bob", "k")[-1].changed == ("importance",)
    with_none = store.update("user:bob", "k", None)
    assert with_none.value is None


def test_update_of_missing_or_deleted_memory_raises_not_found(
    store: MemoryStore,
) -> None:
    with pytest.raises(NotFound):
        store.update("user:bob", "missing", 1)
    store.put("user:bob", "k", 1)
    store.delete("user:bob", "k")
    with pytest.raises(NotFound):
        store.update("user:bob", "k", 2)
    with pytest.raises(NotFound):
        store.delete("user:bob", "missing")
    with pytest.raises(NotFound):
        store.restore("user:bob", "missing")


def test_versions_are_read_from_the_log(store: MemoryStore) -> None:
    for value in ["one", "two", "three"]:
        store.put("project:x", "k", value)
    assert [store.get("project:x", "k", version=n).value for n in (1, 2, 3)] == [  # type: ignore[union-attr]
        "one",
        "two",
        "three",
    ]
    assert store.get("project:x", "k", version=4) is None
    with pytest.raises(ValidationError) as info:
        store.get("project:x", "k", version=0)
    assert info.value.field == "version"


def test_as_of_reads_the_state_at_that_instant(store: MemoryStore) -> None:
    before = datetime.now(UTC)
    first = store.put("project:x", "k", "first")
    between = first.updated_at
    second = store.put("project:x", "k", "second")
    assert store.get("project:x", "k", as_of=before - timedelta(seconds=1)) is None
    at_first = store.get("project:x", "k", as_of=between)
    assert at_first is not None
    assert at_first.value == "first"
    at_second = store.get("project:x", "k", as_of=second.updated_at)
    assert at_second is not None
    assert at_second.value == "second"
    with pytest.raises(ValidationError) as info:
        store.get("project:x", "k", as_of=datetime(2030, 1, 1))
    assert info.value.field == "as_of"
    with pytest.raises(ValidationError):
        store.get("project:x", "k", as_of=between, version=1)


def test_as_of_sees_a_delete(store: MemoryStore) -> None:
    store.put("project:x", "k", "v")
    deleted = store.delete("project:x", "k")
    assert store.get("project:x", "k", as_of=deleted.updated_at) is None
    seen = store.get("project:x", "k", as_of=deleted.updated_at, include_deleted=True)
    assert seen is not None
    assert seen.deleted


def test_history_lists_every_change_with_who_and_the_value_after(
    store: MemoryStore,
) -> None:
    store.put("user:a", "k", 1, actor="alice", task_id="t1", source="chat")
    store.update("user:a", "k", 2, actor="bob", reason="correction")
    store.delete("user:a", "k", actor="carol", reason="obsolete")
    store.restore("user:a", "k", actor="dave")
    history = store.history("user:a", "k")
    assert [(h.version, h.kind, h.actor) for h in history] == [
        (1, "created", "alice"),
        (2, "updated", "bob"),
        (3, "deleted", "carol"),
        (4, "restored", "dave"),
    ]
    assert history[0].task_id == "t1"
    assert history[0].source == "chat"
    assert history[1].reason == "correction"
    assert [h.memory.value for h in history] == [1, 2, 2, 2]
    assert [h.memory.deleted for h in history] == [False, False, True, False]
    assert history[0].prev_hash == "0" * 64
    for earlier, later in itertools.pairwise(history):
        assert later.prev_hash == earlier.hash
        assert later.at >= earlier.at
    assert store.history("user:a", "missing") == []


def test_expected_version_conflict_raises_and_writes_nothing(
    store: MemoryStore,
) -> None:
    store.put("user:a", "k", 1)
    with pytest.raises(VersionConflict) as info:
        store.put("user:a", "k", 2, expected_version=5)
    assert (info.value.expected, info.value.actual) == (5, 1)
    with pytest.raises(VersionConflict):
        store.update("user:a", "k", 2, expected_version=0)
    with pytest.raises(VersionConflict):
        store.delete("user:a", "k", expected_version=2)
    read = store.get("user:a", "k")
    assert read is not None
    assert (read.version, read.value) == (1, 1)
    assert store.put("user:a", "k", 2, expected_version=1).version == 2
    with pytest.raises(VersionConflict) as created:
        store.put("user:a", "other", 1, expected_version=1)
    assert created.value.actual == 0
    assert store.put("user:a", "new", 1, expected_version=0).version == 1


def test_concurrent_writers_with_expected_version_lose_nothing(
    store: MemoryStore,
) -> None:
    store.put("app:counter", "n", 0)
    per_thread, threads = 25, 4

    def increment() -> None:
        for _ in range(per_thread):
            while True:
                current = store.get("app:counter", "n")
                assert current is not None
                try:
                    store.put(
                        "app:counter",
                        "n",
                        current.value + 1,
                        expected_version=current.version,
                    )
                    break
                except VersionConflict:
                    continue

    workers = [threading.Thread(target=increment) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    final = store.get("app:counter", "n")
    assert final is not None
    assert final.value == per_thread * threads
    assert final.version == per_thread * threads + 1


def test_soft_delete_hides_and_restore_brings_back(store: MemoryStore) -> None:
    store.put("user:a", "k", "v", tags=["t"])
    deleted = store.delete("user:a", "k", reason="user asked")
    assert deleted.deleted
    assert store.get("user:a", "k") is None
    assert store.get("user:a", "k", include_deleted=True) is not None
    assert store.search(tags_any=["t"]) == []
    assert [m.key for m in store.search(tags_any=["t"], include_deleted=True)] == ["k"]
    assert store.delete("user:a", "k").version == deleted.version
    restored = store.restore("user:a", "k")
    assert not restored.deleted
    assert store.get("user:a", "k") == restored
    assert store.restore("user:a", "k").version == restored.version


def test_put_on_a_deleted_memory_brings_it_back(store: MemoryStore) -> None:
    store.put("user:a", "k", 1)
    store.delete("user:a", "k")
    back = store.put("user:a", "k", 2)
    assert not back.deleted
    assert back.value == 2
    assert [h.kind for h in store.history("user:a", "k")] == [
        "created",
        "deleted",
        "restored",
        "updated",
    ]


def test_put_many_is_atomic(store: MemoryStore) -> None:
    written = store.put_many(
        [
            {"namespace": "user:a", "key": "1", "value": 1, "tags": ["x"]},
            {"namespace": "user:a", "key": "2", "value": 2},
            {"namespace": "user:a", "key": "1", "value": 11},
        ],
        actor="importer",
    )
    assert [(m.key, m.value, m.version) for m in written] == [
        ("1", 1, 1),
        ("2", 2, 1),
        ("1", 11, 2),
    ]
    assert store.get("user:a", "1").value == 11  # type: ignore[union-attr]
    with pytest.raises(ValidationError) as info:
        store.put_many(
            [
                {"namespace": "user:a", "key": "3", "value": 3},
                {"namespace": "user:a", "key": "4", "value": float("nan")},
            ]
        )
    assert info.value.field == "items[1].value"
    assert store.get("user:a", "3") is None
    with pytest.raises(VersionConflict):
        store.put_many(
            [
                {"namespace": "user:a", "key": "5", "value": 5},
                {"namespace": "user:a", "key": "2", "value": 3, "expected_version": 9},
            ]
        )
    assert store.get("user:a", "5") is None
    assert store.put_many([]) == []


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.put("nope:x", "k", 1), "namespace"),
        (lambda s: s.put("user", "k", 1), "namespace"),
        (lambda s: s.put("user:a b", "k", 1), "namespace"),
        (lambda s: s.put("user:a", "", 1), "key"),
        (lambda s: s.put("user:a", "k\x00", 1), "key"),
        (lambda s: s.put("user:a", "k", float("inf")), "value"),
        (lambda s: s.put("user:a", "k", {1: "x"}), "value"),
        (lambda s: s.put("user:a", "k", object()), "value"),
        (lambda s: s.put("user:a", "k", 2**64), "value"),
        (lambda s: s.put("user:a", "k", "\ud800"), "value"),
        (lambda s: s.put("user:a", "k", 1, tags="single"), "tags"),
        (lambda s: s.put("user:a", "k", 1, tags=[""]), "tags"),
        (lambda s: s.put("user:a", "k", 1, metadata=[1]), "metadata"),
        (lambda s: s.put("user:a", "k", 1, metadata={"b": b"x"}), "metadata"),
        (lambda s: s.put("user:a", "k", 1, memory_type="dream"), "memory_type"),
        (lambda s: s.put("user:a", "k", 1, importance=1.5), "importance"),
        (lambda s: s.put("user:a", "k", 1, confidence=-0.1), "confidence"),
        (lambda s: s.put("user:a", "k", 1, actor="a\nb"), "actor"),
        (lambda s: s.put("user:a", "k", 1, expected_version=-1), "expected_version"),
        (lambda s: s.put("user:a", "k", 1, tenant="bad tenant"), "tenant"),
        (lambda s: s.put_many([{"namespace": "user:a", "key": "k"}]), "items[0].value"),
        (lambda s: s.put_many([{"key": "k", "value": 1}]), "items[0].namespace"),
        (
            lambda s: s.put_many(
                [{"namespace": "user:a", "key": "k", "value": 1, "x": 1}]
            ),
            "items[0]",
        ),
        (lambda s: s.search(namespace_prefix="user:"), "namespace_prefix"),
        (lambda s: s.search(limit=0), "limit"),
        (lambda s: s.search(offset=-1), "offset"),
        (lambda s: s.search(order_by="value"), "order_by"),
        (lambda s: s.search(where={"a": {"$regex": "x"}}), "where.a"),
        (lambda s: s.search(where={"a": {"$gt": True}}), "where.a"),
        (lambda s: s.search(where={"a": {"$in": "abc"}}), "where.a"),
        (lambda s: s.search(where={"a": {"$exists": 1}}), "where.a"),
        (lambda s: s.search(tags_any=[]), "tags_any"),
        (lambda s: s.search(updated_after=datetime(2020, 1, 1)), "updated_after"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    store: MemoryStore, call: object, field: str
) -> None:
    before = store.projections.status()[0].head
    with pytest.raises(ValidationError) as info:
        call(store)  # type: ignore[operator]
    # The field may be a path inside the argument, like metadata.b.
    assert info.value.field == field or info.value.field.startswith(field + ".")
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith(field)
    assert store.projections.status()[0].head == before
    assert store.search(limit=10_000, include_deleted=True) == []


def test_value_size_limit_is_enforced(store_url: str) -> None:
    with mnemolog.open(store_url, max_value_bytes=100) as small:
        small.put("user:a", "k", "x" * 50)
        with pytest.raises(ValidationError) as info:
            small.put("user:a", "k2", "x" * 200)
        assert info.value.field == "value"
        assert small.get("user:a", "k2") is None


def test_extra_roots_and_memory_types_are_configurable(store_url: str) -> None:
    with mnemolog.open(
        store_url, extra_roots={"org"}, extra_memory_types={"reflection"}
    ) as custom:
        written = custom.put("org:acme", "k", 1, memory_type="reflection")
        assert written.memory_type == "reflection"
        assert [m.key for m in custom.search(namespace_prefix="org")] == ["k"]


# ---- search ----------------------------------------------------------------


@pytest.fixture
def populated(store: MemoryStore) -> MemoryStore:
    rows = [
        ("user:alice", "a1", ["x", "y"], {"score": 1, "lang": "en"}, "semantic", 0.1),
        ("user:alice:prefs", "a2", ["x"], {"score": 5, "lang": "fr"}, "episodic", 0.5),
        ("user:alice2", "b1", ["y"], {"score": 3}, "semantic", 0.9),
        ("user:al", "c1", [], {"lang": "en", "deep": {"k": 2}}, "procedural", 0.3),
        ("user:a_ice", "d1", ["z"], {"score": 10, "flag": True}, "working", 0.7),
        ("app:main", "e1", ["x"], {"score": 2.5, "none": None}, "semantic", 0.2),
    ]
    for namespace, key, tags, metadata, memory_type, importance in rows:
        store.put(
            namespace,
            key,
            key,
            tags=tags,
            metadata=metadata,
            memory_type=memory_type,
            importance=importance,
        )
    return store


def keys(memories: list[mnemolog.Memory]) -> set[str]:
    return {m.key for m in memories}


def test_namespace_prefix_matches_whole_segments(populated: MemoryStore) -> None:
    assert keys(populated.search(namespace_prefix="user:alice")) == {"a1", "a2"}
    assert keys(populated.search(namespace_prefix="user:al")) == {"c1"}
    assert keys(populated.search(namespace_prefix="user:a_ice")) == {"d1"}
    assert keys(populated.search(namespace_prefix="user")) == {
        "a1",
        "a2",
        "b1",
        "c1",
        "d1",
    }
    assert keys(populated.search(namespace_prefix="app")) == {"e1"}
    assert keys(populated.search(namespace_prefix="user:alice:prefs")) == {"a2"}
    assert populated.search(namespace_prefix="user:zed") == []


def test_search_by_type_and_tags(populated: MemoryStore) -> None:
    assert keys(populated.search(memory_type="semantic")) == {"a1", "b1", "e1"}
    assert keys(populated.search(tags_any=["y", "z"])) == {"a1", "b1", "d1"}
    assert keys(populated.search(tags_all=["x", "y"])) == {"a1"}
    assert keys(populated.search(tags_all=["x"], namespace_prefix="user")) == {
        "a1",
        "a2",
    }
    assert populated.search(tags_any=["nope"]) == []


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"score": 5}, {"a2"}),
        ({"score": {"$eq": 2.5}}, {"e1"}),
        ({"score": {"$gt": 2.5}}, {"a2", "b1", "d1"}),
        ({"score": {"$gte": 2.5}}, {"a2", "b1", "d1", "e1"}),
        ({"score": {"$lt": 3}}, {"a1", "e1"}),
        ({"score": {"$lte": 3}}, {"a1", "b1", "e1"}),
        ({"score": {"$gt": 1, "$lt": 5}}, {"b1", "e1"}),
        ({"score": {"$in": [1, 10]}}, {"a1", "d1"}),
        ({"score": {"$ne": 1}}, {"a2", "b1", "c1", "d1", "e1"}),
        ({"score": {"$exists": False}}, {"c1"}),
        ({"lang": "en"}, {"a1", "c1"}),
        ({"lang": {"$in": ["fr", "de"]}}, {"a2"}),
        ({"lang": {"$gt": "en"}}, {"a2"}),
        ({"deep.k": 2}, {"c1"}),
        ({"deep": {"k": 2}}, {"c1"}),
        ({"flag": True}, {"d1"}),
        ({"flag": 1}, set()),
        ({"none": None}, {"e1"}),
        ({"none": {"$exists": True}}, {"e1"}),
        ({"lang": "en", "score": {"$exists": True}}, {"a1"}),
    ],
)
def test_where_on_metadata(
    populated: MemoryStore, where: dict[str, object], expected: set[str]
) -> None:
    assert keys(populated.search(where=where)) == expected


def test_order_limit_offset(populated: MemoryStore) -> None:
    by_importance = [m.key for m in populated.search(order_by="-importance")]
    assert by_importance == ["b1", "d1", "a2", "c1", "e1", "a1"]
    assert [m.key for m in populated.search(order_by="key", limit=2)] == ["a1", "a2"]
    assert [m.key for m in populated.search(order_by="key", limit=2, offset=2)] == [
        "b1",
        "c1",
    ]
    newest_first = [m.key for m in populated.search()]
    assert newest_first == ["e1", "d1", "c1", "b1", "a2", "a1"]


def test_search_by_update_time(store: MemoryStore) -> None:
    old = store.put("user:a", "old", 1)
    new = store.put("user:a", "new", 1)
    assert keys(store.search(updated_after=old.updated_at)) == {"new"}
    assert keys(store.search(updated_before=new.updated_at)) == {"old"}


# ---- tenants -----------------------------------------------------------------


def test_tenants_are_isolated(store: MemoryStore) -> None:
    acme = store.tenant("acme")
    globex = store.tenant("globex")
    acme.put("user:alice", "k", "acme's", tags=["t"], metadata={"m": 1})
    globex.put("user:alice", "k", "globex's", tags=["t"], metadata={"m": 1})
    assert acme.get("user:alice", "k").value == "acme's"  # type: ignore[union-attr]
    assert globex.get("user:alice", "k").value == "globex's"  # type: ignore[union-attr]
    assert store.get("user:alice", "k") is None
    for view, name in ((acme, "acme"), (globex, "globex")):
        found = view.search(tags_any=["t"], where={"m": 1}, namespace_prefix="user")
        assert [m.tenant for m in found] == [name]
        assert [h.memory.tenant for h in view.history("user:alice", "k")] == [name]
    assert store.get("user:alice", "k", tenant="acme").value == "acme's"  # type: ignore[union-attr]
    with pytest.raises(TenantMismatch):
        acme.get("user:alice", "k", tenant="globex")
    with pytest.raises(TenantMismatch):
        acme.tenant("globex")
    assert acme.tenant("acme").get("user:alice", "k") is not None
    acme.delete("user:alice", "k")
    assert globex.get("user:alice", "k") is not None


# ---- async twin --------------------------------------------------------------


def test_async_twin_has_the_same_behaviour(store_url: str) -> None:
    async def scenario() -> None:
        async with mnemolog.open_async(store_url) as store:
            written = await store.put("user:a", "k", {"v": 1}, tags=["t"])
            assert written.version == 1
            assert (await store.get("user:a", "k")) == written
            await store.update("user:a", "k", {"v": 2})
            assert [h.version for h in await store.history("user:a", "k")] == [1, 2]
            results = await asyncio.gather(
                *(store.put("user:a", f"k{i}", i) for i in range(20))
            )
            assert sorted(m.value for m in results) == list(range(20))
            assert len(await store.search(namespace_prefix="user:a", limit=100)) == 21
            acme = store.tenant("acme")
            await acme.put("user:a", "k", "acme")
            assert (await acme.get("user:a", "k")).value == "acme"  # type: ignore[union-attr]
            await store.delete("user:a", "k")
            assert await store.get("user:a", "k") is None

    asyncio.run(scenario())


def test_reopening_a_file_store_keeps_everything(persistent_url: str) -> None:
    url = persistent_url
    with mnemolog.open(url) as store:
        store.put("user:a", "k", b"bytes")
        store.put("user:a", "k", "v2", tags=["t"])
    with mnemolog.open(url) as store:
        read = store.get("user:a", "k")
        assert read is not None
        assert read.value == "v2"
        assert read.version == 2
        assert store.get("user:a", "k", version=1).value == b"bytes"  # type: ignore[union-attr]
        assert keys(store.search(tags_any=["t"])) == {"k"}


def test_metadata_keys_with_dots_are_refused(store: MemoryStore) -> None:
    with pytest.raises(ValidationError) as info:
        store.put("user:a", "k", 1, metadata={"a": {"b": 1}, "a.b": 2})
    assert info.value.field == "metadata.a.b"
    assert store.get("user:a", "k") is None


def test_strings_compare_and_sort_by_their_bytes_on_every_backend(
    store: MemoryStore,
) -> None:
    """Whatever the database's locale: 'B' sorts before 'a', punctuation
    counts, and namespace prefixes match whole segments only."""
    for key in ("a", "B", "_z", "a-b", "a.b", "ab"):
        store.put("user:x", key, key)
    assert [m.key for m in store.search(order_by="key")] == sorted(
        ["a", "B", "_z", "a-b", "a.b", "ab"]
    )
    store.put("user:x.y", "k", 1)
    store.put("user:x-y", "k", 1)
    store.put("user:x:y", "k", 1)
    assert {m.namespace for m in store.search(namespace_prefix="user:x")} == {
        "user:x",
        "user:x:y",
    }
    store.put("user:m", "k1", 1, metadata={"s": "a"})
    store.put("user:m", "k2", 1, metadata={"s": "B"})
    store.put("user:m", "k3", 1, metadata={"s": "b"})
    assert keys(store.search(where={"s": {"$gt": "B"}})) == {"k1", "k3"}
    assert keys(store.search(where={"s": {"$lt": "a"}})) == {"k2"}


def test_metadata_strings_and_keys_with_nul_and_control_characters(
    store: MemoryStore,
) -> None:
    """Any JSON string is metadata: NUL (which PostgreSQL text cannot hold)
    and other control characters are stored, read back and compared exactly."""
    odd = ["a\x00b", "a\x01b", "a\x00", "a", "a\x01", "a\x02", "\x00"]
    for i, text in enumerate(odd):
        store.put("user:a", f"k{i}", i, metadata={"s": text, "n\x00ul": text})
    for i, text in enumerate(odd):
        memory = store.get("user:a", f"k{i}")
        assert memory is not None
        assert memory.metadata == {"s": text, "n\x00ul": text}
        assert keys(store.search(where={"s": text})) == {f"k{i}"}
        assert keys(store.search(where={"n\x00ul": text})) == {f"k{i}"}
    for pivot in odd:
        expected = {f"k{i}" for i, text in enumerate(odd) if text > pivot}
        assert keys(store.search(where={"s": {"$gt": pivot}})) == expected, pivot
    assert store.verify().ok


def test_where_on_large_integers_is_exact(store: MemoryStore) -> None:
    store.put("user:a", "low", 1, metadata={"n": 2**53})
    store.put("user:a", "high", 1, metadata={"n": 2**53 + 1})
    assert keys(store.search(where={"n": 2**53 + 1})) == {"high"}
    assert keys(store.search(where={"n": {"$gt": 2**53}})) == {"high"}
    assert keys(store.search(where={"n": {"$lte": 2**53}})) == {"low"}
    assert keys(store.search(where={"n": float(2**53)})) == {"low"}


def test_a_failing_projection_is_not_taken_for_a_version_race(
    store: MemoryStore,
) -> None:
    projection = store._recorder.projector.projections[0]  # type: ignore[union-attr]

    def broken(*args: object) -> None:
        raise RuntimeError("read model down")

    original, projection.handle = projection.handle, broken  # type: ignore[method-assign]
    try:
        with pytest.raises(mnemolog.ProjectionError):
            store.put("user:a", "k", 1)
    finally:
        projection.handle = original  # type: ignore[method-assign]
    assert store.get("user:a", "k") is None
    assert store.history("user:a", "k") == []
