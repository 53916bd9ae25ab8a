"""The Memory aggregate: identity, commands, events, and folding them back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from mnemolog.domain.chain import GENESIS_HASH
from mnemolog.domain.errors import NotFound
from mnemolog.domain.memory import MUTABLE_FIELDS, Memory, Provenance, memory_at
from mnemolog.domain.values import content_hash, encode_value
from tests.domain.support import T0, FakeClock, start_memory, value_change

BOB = Provenance(actor="bob", task_id="t-2", source="api", reason="fix")


# ---- identity ----------------------------------------------------------------


def test_create_id_is_deterministic() -> None:
    first = Memory.create_id("acme", "user:alice", "k")
    assert first == Memory.create_id("acme", "user:alice", "k")
    assert isinstance(first, UUID)
    assert first.version == 5


@pytest.mark.parametrize(
    "other",
    [
        ("acme2", "user:alice", "k"),
        ("acme", "user:alicf", "k"),
        ("acme", "user:alice", "K"),
        ("acme", "user:alice", "k "),
    ],
)
def test_create_id_differs_per_tenant_namespace_and_key(
    other: tuple[str, str, str],
) -> None:
    assert Memory.create_id(*other) != Memory.create_id("acme", "user:alice", "k")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (("a", "user:b", "c:d"), ("a", "user:b:c", "d")),
        (("a", "user:bc", "d"), ("a", "user:b", "cd")),
        (("ab", "user:c", "d"), ("a", "buser:c", "d")),
        (("a", "user:b", "c\\d"), ("a", "user:b\\", "cd")),
        (("a", "user:b", 'c","d'), ("a", 'user:b","c', "d")),
        (("a", "user:b", "c"), ("a", "user:c", "b")),
    ],
)
def test_create_id_does_not_confuse_where_one_part_ends(
    one: tuple[str, str, str], other: tuple[str, str, str]
) -> None:
    assert Memory.create_id(*one) != Memory.create_id(*other)


def test_started_memory_has_the_id_of_its_tenant_namespace_and_key() -> None:
    memory = start_memory(tenant="acme", namespace="user:alice", key="k")
    assert memory.id == Memory.create_id("acme", "user:alice", "k")


# ---- start -------------------------------------------------------------------


def test_start_gives_version_1_with_one_created_event() -> None:
    memory = start_memory()
    assert memory.version == 1
    (event,) = memory.pending_events
    assert type(event) is Memory.Created
    assert event.originator_id == memory.id
    assert event.originator_version == 1


def test_start_sets_the_state_from_the_arguments() -> None:
    wire = encode_value({"colour": b"\x00blue"})
    memory = Memory.start(
        tenant="acme",
        namespace="user:alice",
        key="k",
        value=wire,
        content_hash=content_hash(wire),
        memory_type="episodic",
        tags=["a", "b"],
        metadata={"m": [1]},
        importance=0.25,
        confidence=0.75,
        provenance=Provenance(actor="alice"),
    )
    assert (memory.tenant, memory.namespace, memory.key) == ("acme", "user:alice", "k")
    assert memory.value == wire
    assert memory.content_hash == content_hash(wire)
    assert memory.memory_type == "episodic"
    assert memory.tags == ["a", "b"]
    assert memory.metadata == {"m": [1]}
    assert (memory.importance, memory.confidence) == (0.25, 0.75)
    assert memory.deleted is False
    assert memory.created_by == memory.updated_by == "alice"


def test_created_event_carries_fields_and_provenance() -> None:
    memory = start_memory(
        value="blue", actor="alice", task_id="t-1", source="chat", reason="why"
    )
    (event,) = memory.pending_events
    assert event.value == "blue"
    assert event.content_hash == content_hash("blue")
    assert (event.actor, event.task_id, event.source, event.reason) == (
        "alice",
        "t-1",
        "chat",
        "why",
    )
    assert event.prev_hash == GENESIS_HASH


def test_created_event_timestamp_is_the_memory_creation_time(clock: FakeClock) -> None:
    memory = start_memory()
    assert memory.pending_events[0].timestamp == T0
    assert memory.created_on == memory.modified_on == T0


# ---- revise ------------------------------------------------------------------


def test_revise_with_a_changed_field_emits_updated_with_only_that_change() -> None:
    memory = start_memory(tags=["a"], importance=0.5)
    changed = memory.revise(
        {"tags": ["a", "b"], "importance": 0.5, "memory_type": "semantic"}, BOB
    )
    assert changed is True
    assert memory.version == 2
    event = memory.pending_events[-1]
    assert type(event) is Memory.Updated
    assert event.changes == {"tags": ["a", "b"]}
    assert memory.tags == ["a", "b"]


def test_revise_of_value_changes_value_and_content_hash() -> None:
    memory = start_memory(value="blue")
    memory.revise(value_change(b"green"), BOB)
    assert memory.value == encode_value(b"green")
    assert memory.content_hash == content_hash(encode_value(b"green"))
    assert set(memory.pending_events[-1].changes) == {"value", "content_hash"}


@pytest.mark.parametrize(
    ("field", "new"),
    [
        ("tags", ["new"]),
        ("metadata", {"new": True}),
        ("memory_type", "procedural"),
        ("importance", 0.1),
        ("confidence", 0.2),
        ("value", {"other": [1]}),
        ("content_hash", "f" * 64),
        ("embedding", "AACAPw=="),
        ("embedding_model", "model-a"),
    ],
)
def test_each_mutable_field_can_be_revised(field: str, new: Any) -> None:
    memory = start_memory()
    assert memory.revise({field: new}, BOB) is True
    assert getattr(memory, field) == new
    assert memory.pending_events[-1].changes == {field: new}


def test_mutable_fields_are_the_documented_ones() -> None:
    assert set(MUTABLE_FIELDS) == {
        "embedding",
        "embedding_model",
        "value",
        "content_hash",
        "tags",
        "metadata",
        "memory_type",
        "importance",
        "confidence",
        "expires_at",
    }


def test_revise_with_identical_values_returns_false_and_emits_nothing() -> None:
    memory = start_memory(value="blue", tags=["a"], metadata={"m": 1})
    before = len(memory.pending_events)
    same = {
        **value_change("blue"),
        "tags": ["a"],
        "metadata": {"m": 1},
        "memory_type": memory.memory_type,
        "importance": memory.importance,
        "confidence": memory.confidence,
    }
    assert memory.revise(same, BOB) is False
    assert len(memory.pending_events) == before
    assert memory.version == 1


def test_revise_with_no_changes_returns_false() -> None:
    memory = start_memory()
    assert memory.revise({}, BOB) is False
    assert memory.version == 1


@pytest.mark.parametrize(
    ("field", "new"),
    [
        ("key", "other"),
        ("tenant", "other"),
        ("namespace", "user:bob"),
        ("deleted", True),
        ("created_by", "mallory"),
        ("head_hash", "0" * 64),
        ("no_such_field", 1),
    ],
)
def test_revise_ignores_fields_that_are_not_mutable(field: str, new: Any) -> None:
    memory = start_memory()
    before = getattr(memory, field, None)
    assert memory.revise({field: new}, BOB) is False
    assert getattr(memory, field, None) == before
    assert memory.version == 1


def test_revise_drops_non_mutable_fields_from_an_update() -> None:
    memory = start_memory()
    memory.revise({"key": "other", "importance": 0.9}, BOB)
    assert memory.pending_events[-1].changes == {"importance": 0.9}
    assert memory.key == "favourite-colour"


def test_forced_revise_without_changes_emits_updated_with_empty_changes() -> None:
    memory = start_memory()
    assert memory.revise({"importance": memory.importance}, BOB, force=True) is True
    assert memory.version == 2
    event = memory.pending_events[-1]
    assert type(event) is Memory.Updated
    assert event.changes == {}


def test_forced_revise_with_a_change_records_only_the_change() -> None:
    memory = start_memory(importance=0.5)
    memory.revise({"importance": 0.5, "confidence": 0.1}, BOB, force=True)
    assert memory.pending_events[-1].changes == {"confidence": 0.1}


@pytest.mark.parametrize("force", [False, True])
def test_revise_of_a_deleted_memory_raises_not_found(force: bool) -> None:
    memory = start_memory()
    memory.delete(BOB)
    before = len(memory.pending_events)
    with pytest.raises(NotFound):
        memory.revise({"importance": 0.9}, BOB, force=force)
    assert len(memory.pending_events) == before
    assert memory.version == 2
    assert memory.importance == 0.5


def test_not_found_is_a_lookup_error() -> None:
    memory = start_memory()
    memory.delete(BOB)
    with pytest.raises(LookupError):
        memory.revise({}, BOB)


@pytest.mark.parametrize(
    ("old", "new"),
    [(1, True), (0, False), (1, 1.0), ([1], [True]), ({"n": 0}, {"n": False})],
    ids=["1-True", "0-False", "1-1.0", "list", "dict"],
)
def test_revise_to_a_value_that_is_python_equal_but_different_json_is_recorded(
    old: Any, new: Any
) -> None:
    memory = start_memory(value=old)
    changes = value_change(new)
    memory.revise(changes, BOB)
    # The content hash of the new value is recorded; the value must be too.
    assert memory.content_hash == changes["content_hash"]
    assert memory.value == changes["value"]
    assert type(memory.value) is type(changes["value"])
    assert repr(memory.value) == repr(changes["value"])


def test_revise_of_metadata_from_one_to_true_is_recorded() -> None:
    memory = start_memory(metadata={"n": 1})
    assert memory.revise({"metadata": {"n": True}}, BOB) is True
    assert repr(memory.metadata) == repr({"n": True})


# ---- delete and restore ------------------------------------------------------


def test_delete_emits_deleted_and_hides_the_memory() -> None:
    memory = start_memory()
    assert memory.delete(BOB) is True
    assert memory.deleted is True
    assert memory.version == 2
    assert type(memory.pending_events[-1]) is Memory.Deleted


def test_second_delete_returns_false_and_emits_nothing() -> None:
    memory = start_memory()
    memory.delete(BOB)
    assert memory.delete(BOB) is False
    assert memory.version == 2
    assert len(memory.pending_events) == 2


def test_delete_keeps_the_state() -> None:
    memory = start_memory(value="blue")
    memory.delete(BOB)
    assert memory.value == "blue"


def test_restore_when_not_deleted_returns_false_and_emits_nothing() -> None:
    memory = start_memory()
    assert memory.restore(BOB) is False
    assert memory.version == 1
    assert len(memory.pending_events) == 1


def test_restore_after_delete_emits_restored_and_allows_revise() -> None:
    memory = start_memory()
    memory.delete(BOB)
    assert memory.restore(BOB) is True
    assert memory.deleted is False
    assert memory.version == 3
    assert type(memory.pending_events[-1]) is Memory.Restored
    assert memory.revise({"importance": 0.9}, BOB) is True


def test_second_restore_returns_false() -> None:
    memory = start_memory()
    memory.delete(BOB)
    memory.restore(BOB)
    assert memory.restore(BOB) is False
    assert memory.version == 3


# ---- provenance --------------------------------------------------------------


def test_created_by_stays_and_updated_by_follows_the_actor() -> None:
    memory = start_memory(actor="alice")
    assert (memory.created_by, memory.updated_by) == ("alice", "alice")
    memory.revise({"importance": 0.9}, Provenance(actor="bob"))
    assert (memory.created_by, memory.updated_by) == ("alice", "bob")
    memory.delete(Provenance(actor="carol"))
    assert (memory.created_by, memory.updated_by) == ("alice", "carol")
    memory.restore(Provenance(actor=None))
    assert (memory.created_by, memory.updated_by) == ("alice", None)
    memory.revise({}, Provenance(actor="dave"), force=True)
    assert (memory.created_by, memory.updated_by) == ("alice", "dave")


def test_memory_started_without_actor_has_no_creator() -> None:
    memory = start_memory(actor=None)
    assert memory.created_by is None
    assert memory.updated_by is None


@pytest.mark.parametrize(
    "command",
    [
        lambda m, p: m.revise({"importance": 0.9}, p),
        lambda m, p: m.delete(p),
        lambda m, p: m.revise({}, p, force=True),
    ],
)
def test_every_event_carries_the_callers_provenance(command: Any) -> None:
    memory = start_memory()
    command(memory, BOB)
    event = memory.pending_events[-1]
    assert (event.actor, event.task_id, event.source, event.reason) == (
        "bob",
        "t-2",
        "api",
        "fix",
    )


def test_provenance_as_event_fields() -> None:
    assert BOB.as_event_fields() == {
        "actor": "bob",
        "task_id": "t-2",
        "source": "api",
        "reason": "fix",
    }
    assert Provenance().as_event_fields() == dict.fromkeys(
        ("actor", "task_id", "source", "reason")
    )


# ---- time --------------------------------------------------------------------


def test_timestamps_follow_the_clock(clock: FakeClock) -> None:
    memory = start_memory()
    t1 = clock.advance(seconds=1)
    memory.revise({"importance": 0.9}, BOB)
    assert memory.pending_events[-1].timestamp == t1
    assert memory.modified_on == t1
    assert memory.created_on == T0


def test_timestamp_never_goes_back_when_the_clock_does(clock: FakeClock) -> None:
    memory = start_memory()
    clock.set(T0 - timedelta(hours=1))
    memory.revise({"importance": 0.9}, BOB)
    memory.delete(BOB)
    clock.set(T0 - timedelta(days=1))
    memory.restore(BOB)
    stamps = [event.timestamp for event in memory.pending_events]
    assert stamps == [T0, T0, T0, T0]
    assert memory.modified_on == T0


def test_timestamps_within_a_stream_never_decrease(clock: FakeClock) -> None:
    memory = start_memory()
    for offset in [5, -3, 0, 7, -10, 1, 1]:
        clock.advance(seconds=offset)
        memory.revise({}, BOB, force=True)
    stamps = [event.timestamp for event in memory.pending_events]
    assert stamps == sorted(stamps)
    assert memory.modified_on == stamps[-1]


def test_timestamps_with_the_real_clock_never_decrease() -> None:
    memory = start_memory()
    for _ in range(50):
        memory.revise({}, BOB, force=True)
    stamps = [event.timestamp for event in memory.pending_events]
    assert stamps == sorted(stamps)
    assert all(stamp.tzinfo is not None for stamp in stamps)


# ---- folding -----------------------------------------------------------------


@pytest.fixture
def history(clock: FakeClock) -> tuple[Memory, list[Memory.Event]]:
    """v1 at T0, v2 at T0+10s, v3 at T0+20s (deleted), v4 at T0+30s (restored)."""
    memory = start_memory(value="v1", actor="alice")
    clock.advance(seconds=10)
    memory.revise(value_change("v2"), Provenance(actor="bob"))
    clock.advance(seconds=10)
    memory.delete(Provenance(actor="carol"))
    clock.advance(seconds=10)
    memory.restore(Provenance(actor="dave"))
    return memory, list(memory.collect_events())


def test_memory_at_before_the_first_event_is_none(
    history: tuple[Memory, list[Memory.Event]],
) -> None:
    _, events = history
    assert memory_at(events, as_of=T0 - timedelta(microseconds=1)) is None


@pytest.mark.parametrize(
    ("offset", "version", "value", "deleted", "updated_by"),
    [
        (timedelta(0), 1, "v1", False, "alice"),
        (timedelta(seconds=9.999999), 1, "v1", False, "alice"),
        (timedelta(seconds=10), 2, "v2", False, "bob"),
        (timedelta(seconds=15), 2, "v2", False, "bob"),
        (timedelta(seconds=20), 3, "v2", True, "carol"),
        (timedelta(seconds=30), 4, "v2", False, "dave"),
        (timedelta(days=365), 4, "v2", False, "dave"),
    ],
)
def test_memory_at_folds_to_the_last_version_at_or_before_as_of(
    history: tuple[Memory, list[Memory.Event]],
    offset: timedelta,
    version: int,
    value: str,
    deleted: bool,
    updated_by: str,
) -> None:
    _, events = history
    memory = memory_at(events, as_of=T0 + offset)
    assert memory is not None
    assert memory.version == version
    assert memory.value == value
    assert memory.deleted is deleted
    assert memory.updated_by == updated_by
    assert memory.created_by == "alice"
    assert memory.head_hash == events[version - 1].digest()


def test_memory_at_the_end_equals_the_live_aggregate(
    history: tuple[Memory, list[Memory.Event]],
) -> None:
    memory, events = history
    folded = memory_at(events, as_of=T0 + timedelta(days=1))
    assert folded == memory


def test_memory_at_includes_every_event_sharing_the_as_of_timestamp(
    clock: FakeClock,
) -> None:
    memory = start_memory()
    memory.revise({"importance": 0.1}, BOB)
    memory.revise({"importance": 0.2}, BOB)
    events = list(memory.collect_events())
    folded = memory_at(events, as_of=T0)
    assert folded is not None
    assert folded.version == 3
    assert folded.importance == 0.2


def test_memory_at_of_no_events_is_none() -> None:
    assert memory_at([], as_of=T0) is None


NO_VECTOR = {"embedding": None, "embedding_model": None}


def test_a_new_value_without_a_vector_drops_the_old_vector() -> None:
    memory = start_memory(value="blue")
    memory.revise({"embedding": "AACAPw==", "embedding_model": "m"}, BOB)
    assert memory.revise({**value_change("green"), **NO_VECTOR}, BOB) is True
    assert (memory.embedding, memory.embedding_model) == (None, None)


def test_the_same_value_without_a_vector_keeps_the_vector() -> None:
    memory = start_memory(value="blue")
    memory.revise({"embedding": "AACAPw==", "embedding_model": "m"}, BOB)
    version = memory.version
    assert memory.revise({**value_change("blue"), **NO_VECTOR}, BOB) is False
    assert memory.version == version
    assert memory.revise({**value_change("blue"), **NO_VECTOR, "tags": ["t"]}, BOB)
    assert memory.pending_events[-1].changes == {"tags": ["t"]}
    assert (memory.embedding, memory.embedding_model) == ("AACAPw==", "m")
