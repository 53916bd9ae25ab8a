"""The Persistent Memory Module facade (seed 003): backends, the module's API,
and sessions and workflows across them, on the SQLite and the JSONL log."""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mnemolog
from mnemolog import ValidationError
from mnemolog.adapters.compat.persistent_memory import (
    NAMESPACE,
    JSONBackend,
    MemoryEntry,
    MemoryModule,
    SQLiteBackend,
    StorageBackend,
    StoreBackend,
)

BACKEND_TYPES = ["sqlite", "json"]


@pytest.fixture(params=BACKEND_TYPES)
def backend_type(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def storage_dir(tmp_path: Path) -> Path:
    return tmp_path / "memory"


@pytest.fixture
def memory(backend_type: str, storage_dir: Path) -> Iterator[MemoryModule]:
    module = MemoryModule(storage_dir=storage_dir, backend_type=backend_type)
    module.bootstrap()
    yield module
    module.shutdown()


def file_backend(backend_type: str, place: Path) -> StoreBackend:
    """A backend of the given type whose files are under ``place``."""
    if backend_type == "sqlite":
        return SQLiteBackend(place / "memory.db")
    return JSONBackend(place / "memory_jsonl")


@pytest.fixture
def backend(backend_type: str, tmp_path: Path) -> Iterator[StoreBackend]:
    opened = file_backend(backend_type, tmp_path)
    yield opened
    opened.shutdown()


def entry(entry_id: str | None = None, **fields: Any) -> MemoryEntry:
    values: dict[str, Any] = {
        "id": entry_id if entry_id is not None else str(uuid.uuid4()),
        "category": "preferences",
        "key": "theme",
        "value": {"mode": "dark"},
        "tags": ["ui"],
        "entity_type": "user_preference",
        "entity_id": None,
        "provenance": {"module": "ui_module", "task_id": "task_1"},
        **fields,
    }
    return MemoryEntry(**values)


def content(found: MemoryEntry | None) -> tuple[Any, ...] | None:
    """What an entry holds, without its id and times."""
    if found is None:
        return None
    return (
        found.category,
        found.key,
        found.value,
        found.tags,
        found.entity_type,
        found.entity_id,
        found.provenance.get("module"),
        found.provenance.get("task_id"),
        found.provenance.get("updated_by"),
    )


def history(memory: MemoryModule, memory_id: str) -> list[mnemolog.MemoryEvent]:
    """The entry's changes as the log holds them."""
    backend = memory.backend
    assert isinstance(backend, StoreBackend)
    return backend.store.history(backend.namespace, memory_id)


# ---- backend tests -------------------------------------------------------------


def test_backend_create_read_update_delete(backend: StoreBackend) -> None:
    created = entry(tags=["ui", "important"])
    assert backend.create(created) is True
    read = backend.read(created.id)
    assert read is not None
    assert (read.id, read.category, read.key, read.value) == (
        created.id,
        "preferences",
        "theme",
        {"mode": "dark"},
    )
    assert read.tags == ["ui", "important"]
    assert (read.entity_type, read.entity_id) == ("user_preference", None)
    assert read.provenance["module"] == "ui_module"
    assert read.provenance["task_id"] == "task_1"

    read.value = {"mode": "light"}
    read.tags = ["ui"]
    read.entity_id = "alice"
    read.provenance["updated_by"] = "settings"
    assert backend.update(read) is True
    updated = backend.read(created.id)
    assert updated is not None
    assert (updated.value, updated.tags, updated.entity_id) == (
        {"mode": "light"},
        ["ui"],
        "alice",
    )
    assert updated.provenance["updated_by"] == "settings"
    assert updated.provenance["module"] == "ui_module"

    assert backend.delete(created.id) is True
    assert backend.read(created.id) is None
    assert backend.list_all() == []
    assert backend.delete(created.id) is False
    assert backend.update(updated) is False
    assert backend.read(created.id) is None


def test_backend_create_keeps_a_live_entry_and_revives_a_deleted_one(
    backend: StoreBackend,
) -> None:
    first = entry(value={"n": 1})
    assert backend.create(first) is True
    assert backend.create(first.model_copy(update={"value": {"n": 2}})) is False
    kept = backend.read(first.id)
    assert kept is not None
    assert kept.value == {"n": 1}

    backend.delete(first.id)
    assert backend.create(first.model_copy(update={"value": {"n": 3}})) is True
    revived = backend.read(first.id)
    assert revived is not None
    assert revived.value == {"n": 3}


def test_backend_query_filters_combine_and_tags_match_any(
    backend: StoreBackend,
) -> None:
    rows = [
        entry("p1", key="theme", tags=["ui", "important"]),
        entry("p2", key="font", tags=["ui"]),
        entry(
            "t1",
            category="tasks",
            key="task_1",
            entity_type="task",
            entity_id="1",
            tags=["executed"],
        ),
        entry(
            "t2",
            category="tasks",
            key="task_2",
            entity_type="task",
            entity_id="2",
            tags=["failed", "urgent"],
        ),
        entry(
            "d1", category="devices", key="device_info", entity_type="device", tags=[]
        ),
    ]
    for row in rows:
        backend.create(row)

    def ids(found: list[MemoryEntry]) -> set[str]:
        return {e.id for e in found}

    assert ids(backend.list_all()) == {"p1", "p2", "t1", "t2", "d1"}
    assert ids(backend.query(category="tasks")) == {"t1", "t2"}
    assert ids(backend.query(entity_type="task", entity_id="2")) == {"t2"}
    assert ids(backend.query(key="font")) == {"p2"}
    assert ids(backend.query(tags=["important", "urgent"])) == {"p1", "t2"}
    assert ids(backend.query(tags=["nothing-has-this"])) == set()
    assert ids(backend.query(tags=[])) == set()
    assert ids(backend.query(category="tasks", tags=["ui"])) == set()
    assert ids(backend.query(category="preferences", tags=["ui"], key="theme")) == {
        "p1"
    }
    # Newest first: the last one changed leads.
    changed = backend.read("p2")
    assert changed is not None
    changed.value = {"size": 14}
    backend.update(changed)
    assert backend.list_all()[0].id == "p2"
    assert [e.id for e in backend.query(category="preferences")] == ["p2", "p1"]


def test_backend_persists_across_instances(backend_type: str, tmp_path: Path) -> None:
    first = file_backend(backend_type, tmp_path)
    written = entry(value={"mode": "dark"}, tags=["b", "a"])
    first.create(written)
    first.shutdown()

    second = file_backend(backend_type, tmp_path)
    try:
        read = second.read(written.id)
        assert read is not None
        assert (read.value, read.tags, read.provenance["module"]) == (
            {"mode": "dark"},
            ["b", "a"],
            "ui_module",
        )
    finally:
        second.shutdown()


def test_backend_opens_again_after_shutdown(backend: StoreBackend) -> None:
    backend.create(entry("kept"))
    backend.shutdown()
    backend.shutdown()  # twice is harmless
    assert backend.read("kept") is not None
    backend.bootstrap()
    backend.bootstrap()
    assert [e.id for e in backend.list_all()] == ["kept"]


PRESERVED_VALUES = [
    {"text": "héllo wörld ✓ 日本語", "empty": ""},
    {"int": 2**62, "negative": -(2**63), "zero": 0},
    {"float": 0.1, "tiny": 5e-324, "big": 1.7976931348623157e308, "neg": -2.5},
    {"flags": [True, False], "nothing": None},
    {"nested": {"a": [1, [2, [3, {"b": None}]]], "empty_list": [], "empty": {}}},
    {"raw": b"\x00\xff\x89PNG", "blobs": [b"", {"x": b"y"}]},
    {"$bytes": "not really bytes"},
    {},
]


@pytest.mark.parametrize("value", PRESERVED_VALUES)
def test_backend_preserves_value_types_across_instances(
    backend_type: str, tmp_path: Path, value: dict[str, Any]
) -> None:
    first = file_backend(backend_type, tmp_path)
    written = entry(value=value)
    first.create(written)
    read_live = first.read(written.id)
    first.shutdown()
    second = file_backend(backend_type, tmp_path)
    try:
        read_again = second.read(written.id)
    finally:
        second.shutdown()
    for read in (read_live, read_again):
        assert read is not None
        assert read.value == value
        assert repr(read.value) == repr(value)  # types too: 1 is not 1.0 or True


JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"]))
    | st.binary(max_size=16)
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(value=st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=5))
def test_backend_round_trips_any_json_value(
    backend: StoreBackend, value: dict[str, Any]
) -> None:
    written = entry(value=value)
    backend.create(written)
    read = backend.read(written.id)
    assert read is not None
    assert repr(read.value) == repr(value)


# ---- module tests ----------------------------------------------------------------


def test_create_memory_returns_a_uuid_and_the_entry_reads_back(
    memory: MemoryModule,
) -> None:
    before = datetime.now()
    memory_id = memory.create_memory(
        category="preferences",
        key="theme",
        value={"mode": "dark"},
        entity_type="user_preference",
        tags=["ui", "important"],
        module="ui_module",
        task_id="task_123",
    )
    after = datetime.now()
    assert str(uuid.UUID(memory_id)) == memory_id
    found = memory.get_memory(memory_id)
    assert found is not None
    assert found.id == memory_id
    assert content(found) == (
        "preferences",
        "theme",
        {"mode": "dark"},
        ["ui", "important"],
        "user_preference",
        None,
        "ui_module",
        "task_123",
        None,
    )
    assert found.timestamp.tzinfo is None  # local time, as datetime.now() gives
    assert before <= found.timestamp <= after
    assert found.provenance["created_at"] == found.timestamp.isoformat()
    assert set(found.provenance) == {"module", "task_id", "created_at"}
    assert memory.get_memory(str(uuid.uuid4())) is None


def test_create_memory_takes_the_original_positional_order(
    memory: MemoryModule,
) -> None:
    memory_id = memory.create_memory(
        "tools",
        "tool_grep",
        {"args": ["-r"]},
        "tool",
        "grep",
        ["learned"],
        "teacher",
        "t9",
    )
    found = memory.get_memory(memory_id)
    assert content(found) == (
        "tools",
        "tool_grep",
        {"args": ["-r"]},
        ["learned"],
        "tool",
        "grep",
        "teacher",
        "t9",
        None,
    )


def test_provenance_defaults_to_unknown_module_and_no_task(
    memory: MemoryModule,
) -> None:
    memory_id = memory.create_memory(
        category="notes", key="n", value={}, entity_type="note"
    )
    found = memory.get_memory(memory_id)
    assert found is not None
    assert (found.provenance["module"], found.provenance["task_id"]) == (
        "unknown",
        "none",
    )
    (created,) = history(memory, memory_id)
    assert (created.actor, created.task_id, created.source) == (
        None,
        None,
        "persistent_memory",
    )


def test_provenance_tracks_updates_and_the_log_records_each_change(
    memory: MemoryModule,
) -> None:
    memory_id = memory.create_memory(
        category="preferences",
        key="theme",
        value={"mode": "dark"},
        entity_type="user_preference",
        tags=["ui"],
        module="ui_module",
        task_id="task_123",
    )
    created = memory.get_memory(memory_id)
    assert created is not None
    assert memory.update_memory(
        memory_id,
        {"mode": "light"},
        tags=["ui", "updated"],
        module="task_executor",
        task_id="task_456",
    )
    updated = memory.get_memory(memory_id)
    assert updated is not None
    assert updated.value == {"mode": "light"}
    assert updated.tags == ["ui", "updated"]
    assert updated.provenance["module"] == "ui_module"
    assert updated.provenance["task_id"] == "task_123"  # the creating task
    assert updated.provenance["created_at"] == created.provenance["created_at"]
    assert updated.provenance["updated_by"] == "task_executor"
    assert updated.provenance["updated_at"] == updated.timestamp.isoformat()
    assert updated.timestamp >= created.timestamp

    assert memory.update_memory(memory_id, {"mode": "light"})  # same value: recorded
    again = memory.get_memory(memory_id)
    assert again is not None
    assert again.tags == ["ui", "updated"]  # tags=None keeps them
    assert again.provenance["updated_by"] == "unknown"

    log = history(memory, memory_id)
    assert [(h.version, h.kind, h.actor, h.task_id) for h in log] == [
        (1, "created", "ui_module", "task_123"),
        (2, "updated", "task_executor", "task_456"),
        (3, "updated", None, None),
    ]
    assert log[0].memory.value == {"mode": "dark"}
    assert all(h.source == "persistent_memory" for h in log)


def test_categories_group_entries(memory: MemoryModule) -> None:
    prefs = {
        memory.create_memory("preferences", f"p{i}", {"i": i}, "user_preference")
        for i in range(3)
    }
    task = memory.create_memory("tasks", "task_x", {}, "task")
    assert {e.id for e in memory.get_memories_by_category("preferences")} == prefs
    assert [e.id for e in memory.get_memories_by_category("tasks")] == [task]
    assert memory.get_memories_by_category("devices") == []


def test_entities_are_found_by_type_and_by_id(memory: MemoryModule) -> None:
    a = memory.record_task("123", {"status": "done"})
    b = memory.record_task("124", {"status": "done"})
    tool = memory.create_memory("tools", "tool_ls", {}, "tool", entity_id="123")
    assert {e.id for e in memory.get_memories_by_entity("task")} == {a, b}
    assert [e.id for e in memory.get_memories_by_entity("task", entity_id="123")] == [a]
    assert [e.id for e in memory.get_memories_by_entity("tool", "123")] == [tool]
    assert [
        e.id for e in memory.search_memories(entity_type="task", entity_id="124")
    ] == [b]


def test_tags_match_any_and_come_back_in_the_order_given(
    memory: MemoryModule,
) -> None:
    urgent = memory.create_memory(
        "tasks", "k1", {}, "task", tags=["urgent", "b", "a", "urgent"]
    )
    important = memory.create_memory("tasks", "k2", {}, "task", tags=["important"])
    memory.create_memory("tasks", "k3", {}, "task", tags=["other"])
    memory.create_memory("tasks", "k4", {}, "task")
    found = memory.get_memories_by_tags(["urgent", "important"])
    assert {e.id for e in found} == {urgent, important}
    tagged = memory.get_memory(urgent)
    assert tagged is not None
    assert tagged.tags == ["urgent", "b", "a"]
    assert memory.get_memories_by_tags([]) == []
    assert {e.id for e in memory.search_memories(tags=["important"])} == {important}


def test_get_memory_by_key_returns_the_most_recently_changed(
    memory: MemoryModule,
) -> None:
    older = memory.create_memory("tools", "shared", {"n": 1}, "tool")
    newer = memory.create_memory("notes", "shared", {"n": 2}, "note")
    found = memory.get_memory_by_key("shared")
    assert found is not None
    assert found.id == newer
    memory.update_memory(older, {"n": 3})
    found = memory.get_memory_by_key("shared")
    assert found is not None
    assert found.id == older
    in_notes = memory.get_memory_by_key("shared", category="notes")
    assert in_notes is not None
    assert in_notes.id == newer
    assert memory.get_memory_by_key("absent") is None


def test_search_memories_combines_every_filter(memory: MemoryModule) -> None:
    wanted = memory.create_memory(
        "tasks", "task_summary", {"n": 1}, "task", entity_id="123", tags=["executed"]
    )
    memory.create_memory("tasks", "task_summary", {}, "task", "123", ["failed"])
    memory.create_memory("tasks", "other", {}, "task", "123", ["executed"])
    memory.create_memory("notes", "task_summary", {}, "task", "123", ["executed"])
    memory.create_memory("tasks", "task_summary", {}, "step", "123", ["executed"])
    memory.create_memory("tasks", "task_summary", {}, "task", "999", ["executed"])
    found = memory.search_memories(
        category="tasks",
        entity_type="task",
        entity_id="123",
        tags=["executed"],
        key="task_summary",
    )
    assert [e.id for e in found] == [wanted]
    assert len(memory.search_memories()) == 6


def test_user_preferences_are_set_once_and_updated_in_place(
    memory: MemoryModule,
) -> None:
    first = memory.set_user_preference("theme", {"mode": "dark"})
    second = memory.set_user_preference("theme", {"mode": "light"})
    memory.set_user_preference("language", {"code": "en"})
    assert first == second
    assert memory.get_user_preferences() == {
        "theme": {"mode": "light"},
        "language": {"code": "en"},
    }
    found = memory.get_memory(first)
    assert found is not None
    assert (found.category, found.entity_type) == ("preferences", "user_preference")
    assert found.provenance["module"] == "preferences_manager"
    assert found.provenance["updated_by"] == "preferences_manager"
    assert [h.version for h in history(memory, first)] == [1, 2]


def test_set_user_preference_looks_only_at_preferences(memory: MemoryModule) -> None:
    task = memory.create_memory("tasks", "theme", {"task": True}, "task")
    pref = memory.set_user_preference("theme", {"mode": "dark"})
    assert pref != task
    kept = memory.get_memory(task)
    assert kept is not None
    assert kept.value == {"task": True}
    assert memory.get_user_preferences() == {"theme": {"mode": "dark"}}


def test_a_deleted_preference_can_be_set_again(memory: MemoryModule) -> None:
    first = memory.set_user_preference("theme", {"mode": "dark"})
    assert memory.delete_memory(first)
    assert memory.get_user_preferences() == {}
    again = memory.set_user_preference("theme", {"mode": "light"})
    assert memory.get_user_preferences() == {"theme": {"mode": "light"}}
    assert memory.get_memory(again) is not None


def test_device_info(memory: MemoryModule) -> None:
    assert memory.get_device_info() == {}
    first = memory.set_device_info({"name": "laptop", "os": "linux"})
    second = memory.set_device_info({"name": "laptop", "os": "macos"})
    assert first == second
    assert memory.get_device_info() == {"name": "laptop", "os": "macos"}
    device = memory.get_memory(first)
    assert device is not None
    assert (device.category, device.key, device.entity_type) == (
        "devices",
        "device_info",
        "device",
    )
    assert device.provenance["module"] == "device_manager"


def test_record_task_and_task_history(memory: MemoryModule) -> None:
    ids = [memory.record_task(f"task_{i}", {"step": i}) for i in range(5)]
    again = memory.record_task("task_0", {"step": "rerun"}, tags=["retried"])
    bare = memory.record_task("bare", {}, tags=[])
    history_all = memory.get_task_history()
    assert [e.id for e in history_all] == [bare, again, *reversed(ids)]
    assert [e.id for e in memory.get_task_history(limit=2)] == [bare, again]
    assert len(memory.get_task_history(limit=100)) == 7
    recorded = memory.get_memory(ids[0])
    assert recorded is not None
    assert content(recorded) == (
        "tasks",
        "task_task_0",
        {"step": 0},
        ["executed"],
        "task",
        "task_0",
        "task_executor",
        "task_0",
        None,
    )
    retried = memory.get_memory(again)
    bare_entry = memory.get_memory(bare)
    assert retried is not None
    assert bare_entry is not None
    assert retried.tags == ["retried"]
    assert bare_entry.tags == []


def test_delete_and_update_of_deleted_or_unknown_entries_return_false(
    memory: MemoryModule,
) -> None:
    memory_id = memory.create_memory("notes", "n", {"a": 1}, "note")
    assert memory.delete_memory(memory_id) is True
    assert memory.get_memory(memory_id) is None
    assert memory.delete_memory(memory_id) is False
    assert memory.update_memory(memory_id, {"a": 2}) is False
    unknown = str(uuid.uuid4())
    assert memory.delete_memory(unknown) is False
    assert memory.update_memory(unknown, {"a": 2}) is False
    assert [h.kind for h in history(memory, memory_id)] == ["created", "deleted"]


def test_clear_all_is_a_soft_delete_recorded_in_the_log(memory: MemoryModule) -> None:
    ids = [memory.create_memory("notes", f"n{i}", {"i": i}, "note") for i in range(3)]
    gone = memory.create_memory("notes", "gone", {}, "note")
    memory.delete_memory(gone)
    assert memory.clear_all() == 3
    assert memory.list_memories() == []
    assert memory.clear_all() == 0
    backend = memory.backend
    assert isinstance(backend, StoreBackend)
    cleared = backend.store.audit(namespace_prefix=NAMESPACE, kind="deleted")
    assert sorted(e.key for e in cleared if e.reason == "clear_all") == sorted(ids)
    for memory_id in ids:
        log = history(memory, memory_id)
        assert [h.kind for h in log] == ["created", "deleted"]
        assert log[0].memory.value == {"i": ids.index(memory_id)}


BAD_CALLS: list[tuple[str, Callable[[MemoryModule], object], str]] = [
    ("empty category", lambda m: m.create_memory("", "k", {}, "t"), "category"),
    ("category not str", lambda m: m.create_memory(1, "k", {}, "t"), "category"),  # type: ignore[arg-type]
    ("empty key", lambda m: m.create_memory("c", "", {}, "t"), "key"),
    ("key with NUL", lambda m: m.create_memory("c", "a\x00b", {}, "t"), "key"),
    ("value a list", lambda m: m.create_memory("c", "k", [1], "t"), "value"),  # type: ignore[arg-type]
    ("value None", lambda m: m.create_memory("c", "k", None, "t"), "value"),  # type: ignore[arg-type]
    (
        "datetime in value",
        lambda m: m.create_memory("c", "k", {"at": datetime.now()}, "t"),
        "value.at",
    ),
    (
        "NaN in value",
        lambda m: m.create_memory("c", "k", {"x": math.nan}, "t"),
        "value.x",
    ),
    ("set in value", lambda m: m.create_memory("c", "k", {"s": {1}}, "t"), "value.s"),
    ("empty entity_type", lambda m: m.create_memory("c", "k", {}, ""), "entity_type"),
    ("empty entity_id", lambda m: m.create_memory("c", "k", {}, "t", ""), "entity_id"),
    ("tags a string", lambda m: m.create_memory("c", "k", {}, "t", tags="ui"), "tags"),  # type: ignore[arg-type]
    ("tag not str", lambda m: m.create_memory("c", "k", {}, "t", tags=[1]), "tags"),  # type: ignore[list-item]
    ("empty tag", lambda m: m.create_memory("c", "k", {}, "t", tags=[""]), "tags"),
    (
        "module not str",
        lambda m: m.create_memory("c", "k", {}, "t", module=5),  # type: ignore[arg-type]
        "module",
    ),
    (
        "task_id control",
        lambda m: m.create_memory("c", "k", {}, "t", task_id="a\nb"),
        "task_id",
    ),
    ("memory_id empty", lambda m: m.get_memory(""), "memory_id"),
    ("memory_id not str", lambda m: m.get_memory(7), "memory_id"),  # type: ignore[arg-type]
    ("update value", lambda m: m.update_memory("x", "v"), "value"),  # type: ignore[arg-type]
    ("update tags", lambda m: m.update_memory("x", {}, tags="a"), "tags"),  # type: ignore[arg-type]
    ("update module", lambda m: m.update_memory("x", {}, module=""), "module"),
    ("delete id", lambda m: m.delete_memory(None), "memory_id"),  # type: ignore[arg-type]
    ("search category", lambda m: m.search_memories(category=""), "category"),
    ("search key", lambda m: m.search_memories(key=3), "key"),  # type: ignore[arg-type]
    ("search tags", lambda m: m.search_memories(tags="ui"), "tags"),  # type: ignore[arg-type]
    ("tags None", lambda m: m.get_memories_by_tags(None), "tags"),  # type: ignore[arg-type]
    ("entity_type None", lambda m: m.get_memories_by_entity(None), "entity_type"),  # type: ignore[arg-type]
    ("category None", lambda m: m.get_memories_by_category(None), "category"),  # type: ignore[arg-type]
    ("limit 0", lambda m: m.get_task_history(limit=0), "limit"),
    ("limit negative", lambda m: m.get_task_history(limit=-1), "limit"),
    ("limit bool", lambda m: m.get_task_history(limit=True), "limit"),
    ("limit str", lambda m: m.get_task_history(limit="3"), "limit"),  # type: ignore[arg-type]
    ("pref key", lambda m: m.set_user_preference("", {}), "key"),
    ("pref value", lambda m: m.set_user_preference("k", "dark"), "value"),  # type: ignore[arg-type]
    ("device info", lambda m: m.set_device_info(["laptop"]), "value"),  # type: ignore[arg-type]
    ("task id", lambda m: m.record_task("", {}), "task_id"),
    ("task data", lambda m: m.record_task("t", None), "value"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(
    ("call", "field"),
    [pytest.param(call, field, id=name) for name, call, field in BAD_CALLS],
)
def test_bad_input_raises_a_validation_error_naming_the_field(
    memory: MemoryModule, call: Callable[[MemoryModule], object], field: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        call(memory)
    assert raised.value.field == field
    assert raised.value.rule
    assert isinstance(raised.value, ValueError)
    assert memory.list_memories() == []  # nothing was written


def test_backend_refuses_bad_entries_by_field(backend: StoreBackend) -> None:
    with pytest.raises(ValidationError) as raised:
        backend.create(entry(category=""))
    assert raised.value.field == "category"
    with pytest.raises(ValidationError) as raised:
        backend.create(entry(""))
    assert raised.value.field == "id"
    with pytest.raises(ValidationError) as raised:
        backend.create(entry(value={"when": datetime.now()}))
    assert raised.value.field == "value.when"
    with pytest.raises(ValidationError) as raised:
        backend.read("")
    assert raised.value.field == "entry_id"
    assert backend.list_all() == []


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"backend_type": "xml"}, "backend_type"),
        ({"backend_type": None}, "backend_type"),
        ({"storage_dir": 5}, "storage_dir"),
        ({"storage_dir": ""}, "storage_dir"),
        ({"storage_dir": "odd?dir"}, "storage_dir"),
        ({"storage_backend": "sqlite"}, "storage_backend"),
    ],
)
def test_bad_construction_raises_a_validation_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    arguments: dict[str, Any],
    field: str,
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ValidationError) as raised:
        MemoryModule(**arguments)
    assert raised.value.field == field


def test_a_storage_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    occupied = tmp_path / "occupied"
    occupied.write_text("not a directory")
    with pytest.raises(ValidationError) as raised:
        MemoryModule(storage_dir=occupied)
    assert raised.value.field == "storage_dir"
    assert "cannot be created" in raised.value.rule


def test_backend_type_is_case_insensitive(tmp_path: Path) -> None:
    with MemoryModule(storage_dir=tmp_path, backend_type="SQLite") as memory:
        assert isinstance(memory.backend, SQLiteBackend)


def test_files_live_in_the_storage_dir(backend_type: str, storage_dir: Path) -> None:
    with MemoryModule(storage_dir=storage_dir, backend_type=backend_type) as memory:
        memory.set_user_preference("theme", {"mode": "dark"})
    expected = {"sqlite": "memory.db", "json": "memory_jsonl/log.jsonl"}[backend_type]
    assert (storage_dir / expected).is_file()
    assert memory.storage_dir == storage_dir.resolve()


def test_default_storage_dir_is_under_the_home_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with MemoryModule() as memory:
        memory.set_device_info({"name": "laptop"})
    assert memory.storage_dir == tmp_path / ".jarvis" / "memory"
    assert (tmp_path / ".jarvis" / "memory" / "memory.db").is_file()
    with MemoryModule() as again:
        assert again.get_device_info() == {"name": "laptop"}


def test_tenants_and_namespaces_of_one_store_are_isolated() -> None:
    with mnemolog.open("memory://") as store:
        acme = MemoryModule(StoreBackend(store.tenant("acme")))
        globex = MemoryModule(StoreBackend(store.tenant("globex")))
        other = MemoryModule(StoreBackend(store.tenant("acme"), namespace="app:other"))
        child = MemoryModule(
            StoreBackend(store.tenant("acme"), namespace=f"{NAMESPACE}:child")
        )
        acme_id = acme.set_user_preference("theme", {"mode": "dark"})
        globex.set_user_preference("theme", {"mode": "light"})
        other.record_task("t", {"x": 1})
        child.record_task("t", {"x": 2})
        assert acme.get_user_preferences() == {"theme": {"mode": "dark"}}
        assert globex.get_user_preferences() == {"theme": {"mode": "light"}}
        assert acme.get_task_history() == []
        assert [e.value for e in other.get_task_history()] == [{"x": 1}]
        assert [e.value for e in child.get_task_history()] == [{"x": 2}]
        acme_note = acme.create_memory("notes", "secret", {"s": 1}, "note")
        assert globex.get_memory(acme_note) is None
        assert globex.delete_memory(acme_note) is False
        assert globex.update_memory(acme_note, {"s": "stolen"}) is False
        assert globex.search_memories(key="secret") == []
        # Derived ids are per tenant: the same id, each tenant's own entry.
        globex_theme = globex.get_memory(acme_id)
        assert globex_theme is not None
        assert globex_theme.value == {"mode": "light"}
        assert globex.clear_all() == 1
        assert acme.get_user_preferences() == {"theme": {"mode": "dark"}}
        note = acme.get_memory(acme_note)
        assert note is not None
        assert note.value == {"s": 1}
        acme.shutdown()  # a store it was given stays open
        assert acme.get_user_preferences() == {"theme": {"mode": "dark"}}


def test_store_backend_refuses_a_bad_store_or_namespace() -> None:
    with pytest.raises(ValidationError) as raised:
        StoreBackend(42)  # type: ignore[arg-type]
    assert raised.value.field == "store"
    with pytest.raises(ValidationError) as raised:
        StoreBackend("memory://", namespace="nowhere")
    assert raised.value.field == "namespace"


class DictBackend(StorageBackend):
    """A backend of the original's shape (returns None), kept in a dict: the
    module must work with any StorageBackend."""

    def __init__(self) -> None:
        self.entries: dict[str, MemoryEntry] = {}

    def create(self, entry: MemoryEntry) -> None:
        self.entries.setdefault(entry.id, entry)

    def read(self, entry_id: str) -> MemoryEntry | None:
        return self.entries.get(entry_id)

    def update(self, entry: MemoryEntry) -> None:
        if entry.id in self.entries:
            self.entries[entry.id] = entry

    def delete(self, entry_id: str) -> None:
        self.entries.pop(entry_id, None)

    def list_all(self) -> list[MemoryEntry]:
        return sorted(self.entries.values(), key=lambda e: e.timestamp, reverse=True)

    def query(
        self,
        category: str | None = None,
        tags: list[str] | None = None,
        entity_type: str | None = None,
        entity_id: str | None = None,
        key: str | None = None,
    ) -> list[MemoryEntry]:
        return [
            e
            for e in self.list_all()
            if category in (None, e.category)
            and entity_type in (None, e.entity_type)
            and entity_id in (None, e.entity_id)
            and key in (None, e.key)
            and (tags is None or any(t in e.tags for t in tags))
        ]

    def bootstrap(self) -> None:
        pass

    def shutdown(self) -> None:
        pass


def test_the_module_runs_on_a_backend_of_the_original_shape() -> None:
    memory = MemoryModule(storage_backend=DictBackend())
    pref = memory.set_user_preference("theme", {"mode": "dark"})
    assert memory.set_user_preference("theme", {"mode": "light"}) == pref
    assert memory.get_user_preferences() == {"theme": {"mode": "light"}}
    found = memory.get_memory(pref)
    assert found is not None
    assert found.provenance["updated_by"] == "preferences_manager"
    assert memory.delete_memory(pref) is True
    assert memory.delete_memory(pref) is False
    assert memory.update_memory(pref, {}) is False
    memory.record_task("t", {})
    assert memory.clear_all() == 1


# ---- integration tests ---------------------------------------------------------------


def test_memories_persist_across_sessions(backend_type: str, storage_dir: Path) -> None:
    session = MemoryModule(storage_dir=storage_dir, backend_type=backend_type)
    session.bootstrap()
    theme = session.set_user_preference("theme", {"mode": "dark"})
    task = session.record_task("build", {"status": "completed", "duration": 45})
    session.shutdown()

    session = MemoryModule(storage_dir=storage_dir, backend_type=backend_type)
    session.bootstrap()
    assert session.get_user_preferences() == {"theme": {"mode": "dark"}}
    assert session.set_user_preference("theme", {"mode": "light"}) == theme
    recorded = session.get_memory(task)
    assert recorded is not None
    assert recorded.provenance["task_id"] == "build"
    session.delete_memory(task)
    session.shutdown()

    session = MemoryModule(storage_dir=storage_dir, backend_type=backend_type)
    try:
        assert session.get_user_preferences() == {"theme": {"mode": "light"}}
        assert session.get_task_history() == []
        updated = session.get_memory(theme)
        assert updated is not None
        assert updated.provenance["updated_by"] == "preferences_manager"
        assert [h.kind for h in history(session, task)] == ["created", "deleted"]
    finally:
        session.shutdown()


def test_calls_after_shutdown_open_the_store_again(memory: MemoryModule) -> None:
    memory.set_device_info({"name": "laptop"})
    memory.shutdown()
    assert memory.get_device_info() == {"name": "laptop"}
    memory.record_task("after", {})
    memory.shutdown()
    memory.bootstrap()
    assert len(memory.get_task_history()) == 1


def scripted_session(memory: MemoryModule) -> list[Any]:
    """The same calls, whatever the backend; returns what they answered,
    without ids and times."""
    answers: list[Any] = []
    theme = memory.create_memory(
        category="preferences",
        key="theme",
        value={"mode": "dark", "sizes": [12, 14.5], "raw": b"\x01"},
        entity_type="user_preference",
        tags=["ui", "important"],
        module="ui_module",
        task_id="task_123",
    )
    memory.record_task("1", {"status": "completed"})
    memory.record_task("2", {"status": "failed"}, tags=["failed", "urgent"])
    memory.set_device_info({"name": "laptop", "os": "linux"})
    memory.set_user_preference("language", {"code": "en"})
    answers.append(
        memory.update_memory(
            theme, {"mode": "light"}, tags=["ui", "updated"], module="ui_module"
        )
    )
    answers.append(content(memory.get_memory(theme)))
    answers.append(content(memory.get_memory_by_key("theme")))
    answers.append([content(e) for e in memory.get_memories_by_category("tasks")])
    answers.append(
        [content(e) for e in memory.get_memories_by_entity("task", entity_id="2")]
    )
    answers.append(
        [content(e) for e in memory.get_memories_by_tags(["urgent", "updated"])]
    )
    answers.append(
        [
            content(e)
            for e in memory.search_memories(category="tasks", tags=["executed"])
        ]
    )
    answers.append(memory.get_user_preferences())
    answers.append(memory.get_device_info())
    answers.append([content(e) for e in memory.get_task_history(limit=1)])
    answers.append(memory.delete_memory(theme))
    answers.append(memory.delete_memory(theme))
    answers.append(memory.update_memory(theme, {}))
    answers.append([content(e) for e in memory.list_memories()])
    answers.append(memory.clear_all())
    answers.append(memory.list_memories())
    return answers


def test_both_backends_answer_the_same_calls_alike(tmp_path: Path) -> None:
    answers = {}
    for backend_type in BACKEND_TYPES:
        with MemoryModule(
            storage_dir=tmp_path / backend_type, backend_type=backend_type
        ) as memory:
            answers[backend_type] = scripted_session(memory)
    assert answers["sqlite"] == answers["json"]
    assert answers["sqlite"][0] is True
    assert answers["sqlite"][-2:] == [4, []]


def save_user_settings(memory: MemoryModule, settings: dict[str, Any]) -> None:
    for key, value in settings.items():
        memory.set_user_preference(key, value)
    memory.shutdown()


def execute_task(
    memory: MemoryModule, task_id: str, task_fn: Callable[[], Any]
) -> None:
    try:
        result = task_fn()
        memory.record_task(
            task_id=task_id,
            task_data={"status": "completed", "result": result},
            tags=["executed"],
        )
    except Exception as e:
        memory.record_task(
            task_id=task_id,
            task_data={"status": "failed", "error": str(e)},
            tags=["failed"],
        )


def test_workflow_user_settings_tasks_and_tools(
    backend_type: str, storage_dir: Path
) -> None:
    memory = MemoryModule(storage_dir=storage_dir, backend_type=backend_type)
    memory.bootstrap()
    save_user_settings(memory, {"theme": {"mode": "dark"}, "volume": {"level": 7}})

    memory = MemoryModule(storage_dir=storage_dir, backend_type=backend_type)
    try:
        assert memory.get_user_preferences() == {
            "theme": {"mode": "dark"},
            "volume": {"level": 7},
        }

        def divide() -> float:
            return 1 / 0

        execute_task(memory, "sum", lambda: 1 + 2)
        execute_task(memory, "divide", divide)
        failed = memory.search_memories(category="tasks", tags=["failed"])
        assert [(e.entity_id, e.value["status"]) for e in failed] == [
            ("divide", "failed")
        ]
        assert "division by zero" in failed[0].value["error"]
        done = memory.get_memories_by_entity("task", entity_id="sum")
        assert [e.value for e in done] == [{"status": "completed", "result": 3}]

        memory.create_memory(
            category="tools",
            key="tool_grep",
            value={"usage": "grep -r PATTERN DIR", "flags": ["-r", "-i"]},
            entity_type="tool",
            entity_id="grep",
            tags=["learned", "tool"],
            module="tool_teaching_module",
        )
        tool = memory.get_memory_by_key("tool_grep")
        assert tool is not None
        assert tool.value["flags"] == ["-r", "-i"]
        assert tool.provenance["module"] == "tool_teaching_module"

        archived = memory.record_task("old", {"status": "completed"}, tags=["archived"])
        for old in memory.search_memories(category="tasks", tags=["archived"]):
            assert memory.delete_memory(old.id)
        assert memory.get_memory(archived) is None
        assert {e.entity_id for e in memory.get_task_history()} == {"sum", "divide"}
    finally:
        memory.shutdown()


def test_racing_first_preferences_meet_at_one_entry(
    memory: MemoryModule,
) -> None:
    barrier = threading.Barrier(4)
    ids: list[str] = []
    errors: list[BaseException] = []

    def set_theme(n: int) -> None:
        try:
            barrier.wait()
            ids.append(memory.set_user_preference("theme", {"writer": n}))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=set_theme, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(ids)) == 1
    assert len(memory.get_memories_by_category("preferences")) == 1
    kinds = [h.kind for h in history(memory, ids[0])]
    assert kinds == ["created", "updated", "updated", "updated"]
