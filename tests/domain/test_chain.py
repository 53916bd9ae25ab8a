"""The hash chain: each event carries the digest of the one before it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.utils import get_topic

from mnemolog.domain.chain import (
    GENESIS_HASH,
    STORED_DIGEST,
    ChainBreak,
    event_digest,
    find_chain_break,
)
from mnemolog.domain.memory import Memory, Provenance
from tests.domain.support import start_memory, value_change

BOB = Provenance(actor="bob")


def stream() -> list[Memory.Event]:
    """Five events of one memory: Created, Updated, Deleted, Restored, Updated."""
    memory = start_memory(value="v1")
    memory.revise(value_change("v2"), BOB)
    memory.delete(BOB)
    memory.restore(BOB)
    memory.revise({"tags": ["x"]}, BOB)
    return list(memory.collect_events())


def links(events: list[Memory.Event]) -> list[tuple[UUID, int, str, str]]:
    return [
        (e.originator_id, e.originator_version, e.prev_hash, e.digest()) for e in events
    ]


def other_value(value: Any) -> Any:
    """A value of the same kind as ``value`` but different from it."""
    if value is None:
        return "now-set"
    if isinstance(value, bool):
        return not value
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, datetime):
        return value + timedelta(microseconds=1)
    if isinstance(value, UUID):
        return uuid4()
    if isinstance(value, list):
        return [*value, "extra"]
    if isinstance(value, dict):
        return {**value, "extra": 1}
    raise AssertionError(f"no other value for {value!r}")


# ---- the links ---------------------------------------------------------------


def test_genesis_hash_is_64_zeros() -> None:
    assert GENESIS_HASH == "0" * 64


def test_first_event_links_to_genesis() -> None:
    assert stream()[0].prev_hash == GENESIS_HASH


def test_each_event_links_to_the_digest_of_the_one_before() -> None:
    events = stream()
    assert len(events) == 5
    for previous, event in pairwise(events):
        assert event.prev_hash == previous.digest()


def test_head_hash_is_the_digest_of_the_latest_event() -> None:
    memory = start_memory()
    assert memory.head_hash == memory.pending_events[-1].digest()
    memory.revise({"importance": 0.1}, BOB)
    assert memory.head_hash == memory.pending_events[-1].digest()
    memory.delete(BOB)
    assert memory.head_hash == memory.pending_events[-1].digest()


def test_digests_in_a_stream_are_distinct_sha256_hex() -> None:
    digests = [event.digest() for event in stream()]
    assert len(set(digests)) == len(digests)
    for digest in digests:
        assert len(digest) == 64
        assert set(digest) <= set("0123456789abcdef")


def test_digest_is_deterministic() -> None:
    event = stream()[1]
    assert event.digest() == event.digest()
    assert dataclasses.replace(event).digest() == event.digest()


def test_digest_is_event_digest_of_the_stored_form() -> None:
    event = stream()[1]
    state = {
        k: v
        for k, v in vars(event).items()
        if k not in ("originator_id", "originator_version")
    }
    expected = event_digest(
        get_topic(Memory.Updated), event.originator_id, event.originator_version, state
    )
    assert event.digest() == expected


def test_created_digest_covers_its_class_version() -> None:
    event = stream()[0]
    state = {
        k: v
        for k, v in vars(event).items()
        if k not in ("originator_id", "originator_version")
    }
    topic = get_topic(Memory.Created)
    without = event_digest(topic, event.originator_id, 1, state)
    with_version = event_digest(
        topic, event.originator_id, 1, {**state, "class_version": 5}
    )
    assert event.digest() == with_version
    assert event.digest() != without


# ---- find_chain_break --------------------------------------------------------


def test_intact_stream_has_no_break() -> None:
    assert find_chain_break(links(stream())) is None


def test_empty_stream_has_no_break() -> None:
    assert find_chain_break([]) is None


@pytest.mark.parametrize("version", [1, 2, 3, 4, 5])
def test_altered_prev_hash_is_named_as_the_first_break(version: int) -> None:
    events = stream()
    index = version - 1
    expected = GENESIS_HASH if index == 0 else events[index - 1].digest()
    events[index] = dataclasses.replace(events[index], prev_hash="f" * 64)
    assert find_chain_break(links(events)) == ChainBreak(
        originator_id=events[0].originator_id,
        version=version,
        expected=expected,
        found="f" * 64,
    )


def test_only_the_first_of_several_breaks_is_named() -> None:
    events = stream()
    events[1] = dataclasses.replace(events[1], prev_hash="a" * 64)
    events[3] = dataclasses.replace(events[3], prev_hash="b" * 64)
    chain_break = find_chain_break(links(events))
    assert chain_break is not None
    assert chain_break.version == 2


def test_edited_event_breaks_the_link_after_it() -> None:
    events = stream()
    edited = dataclasses.replace(events[1], changes={"value": "forged"})
    events[1] = edited
    assert find_chain_break(links(events)) == ChainBreak(
        originator_id=events[0].originator_id,
        version=3,
        expected=edited.digest(),
        found=events[2].prev_hash,
    )


def test_removed_event_breaks_the_chain() -> None:
    events = stream()
    del events[2]
    chain_break = find_chain_break(links(events))
    assert chain_break is not None
    assert chain_break.version == 4


def test_swapped_events_break_the_chain() -> None:
    events = stream()
    events[1], events[2] = events[2], events[1]
    chain_break = find_chain_break(links(events))
    assert chain_break is not None
    assert chain_break.version == 3


def test_editing_the_last_event_is_not_caught_by_links_alone() -> None:
    # No later event vouches for the last one: its digest must be checked
    # against a recorded head, which find_chain_break does not do.
    events = stream()
    events[-1] = dataclasses.replace(events[-1], changes={"tags": ["forged"]})
    assert find_chain_break(links(events)) is None


# ---- what a digest covers ----------------------------------------------------


def created_event() -> Memory.Created:
    memory = start_memory(
        value={"v": [1, "x"]},
        tags=["a"],
        metadata={"m": 1},
        actor="alice",
        task_id="t",
        source="s",
        reason="r",
    )
    event = memory.pending_events[0]
    assert isinstance(event, Memory.Created)
    return event


def updated_event() -> Memory.Updated:
    memory = start_memory()
    memory.revise({"importance": 0.25}, Provenance())
    event = memory.pending_events[-1]
    assert isinstance(event, Memory.Updated)
    return event


CREATED_FIELDS = sorted(f.name for f in dataclasses.fields(Memory.Created))
UPDATED_FIELDS = sorted(f.name for f in dataclasses.fields(Memory.Updated))


def test_digest_tests_cover_every_field() -> None:
    assert set(CREATED_FIELDS) >= {
        "originator_id",
        "originator_version",
        "timestamp",
        "originator_topic",
        "prev_hash",
        "actor",
        "task_id",
        "source",
        "reason",
        "tenant",
        "namespace",
        "key",
        "value",
        "content_hash",
        "memory_type",
        "tags",
        "metadata",
        "importance",
        "confidence",
    }
    assert "changes" in UPDATED_FIELDS


@pytest.mark.parametrize("field", CREATED_FIELDS)
def test_changing_any_field_of_created_changes_its_digest(field: str) -> None:
    event = created_event()
    changed = dataclasses.replace(event, **{field: other_value(getattr(event, field))})
    assert changed.digest() != event.digest()


@pytest.mark.parametrize("field", UPDATED_FIELDS)
def test_changing_any_field_of_updated_changes_its_digest(field: str) -> None:
    event = updated_event()
    changed = dataclasses.replace(event, **{field: other_value(getattr(event, field))})
    assert changed.digest() != event.digest()


@pytest.mark.parametrize(
    ("field", "one", "other"),
    [
        ("value", 1, True),
        ("value", 0, False),
        ("value", 1, 1.0),
        ("value", 0.0, -0.0),
        ("metadata", {"a": 1}, {"a": True}),
    ],
)
def test_digest_tells_apart_values_python_may_equate(
    field: str, one: Any, other: Any
) -> None:
    event = created_event()
    first = dataclasses.replace(event, **{field: one})
    second = dataclasses.replace(event, **{field: other})
    assert first.digest() != second.digest()


def test_digest_differs_between_event_types_with_equal_fields() -> None:
    memory = start_memory()
    memory.delete(BOB)
    deleted = memory.pending_events[-1]
    restored = Memory.Restored(
        **{f.name: getattr(deleted, f.name) for f in dataclasses.fields(deleted)}
    )
    assert restored.digest() != deleted.digest()


# ---- event_digest ----------------------------------------------------------


def test_event_digest_ignores_a_stored_digest_key() -> None:
    uid = uuid4()
    state = {"a": 1}
    assert event_digest("t", uid, 1, {**state, STORED_DIGEST: "x"}) == event_digest(
        "t", uid, 1, state
    )


@pytest.mark.parametrize(
    "change",
    [
        {"topic": "other"},
        {"originator_id": UUID(int=2)},
        {"version": 2},
        {"state": {"a": 2}},
        {"state": {"a": 1, "b": None}},
    ],
)
def test_event_digest_depends_on_topic_id_version_and_state(
    change: dict[str, Any],
) -> None:
    base: dict[str, Any] = {
        "topic": "t",
        "originator_id": UUID(int=1),
        "version": 1,
        "state": {"a": 1},
    }
    assert event_digest(**base) != event_digest(**{**base, **change})


def test_event_digest_does_not_depend_on_key_order() -> None:
    uid = uuid4()
    assert event_digest("t", uid, 1, {"a": 1, "b": 2}) == event_digest(
        "t", uid, 1, {"b": 2, "a": 1}
    )


@pytest.mark.parametrize(
    "when",
    [
        datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2024, 1, 2, 3, 4, 5, 999999, tzinfo=timezone(timedelta(hours=-3))),
    ],
)
def test_event_digest_treats_a_datetime_as_its_logged_string(when: datetime) -> None:
    # The log holds a timestamp as a string; read back, it must hash the same.
    uid = uuid4()
    assert event_digest("t", uid, 1, {"timestamp": when}) == event_digest(
        "t", uid, 1, {"timestamp": when.isoformat()}
    )


def test_event_digest_tells_apart_different_instants() -> None:
    uid = uuid4()
    when = datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert event_digest("t", uid, 1, {"timestamp": when}) != event_digest(
        "t", uid, 1, {"timestamp": when + timedelta(microseconds=1)}
    )
