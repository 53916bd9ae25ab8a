"""Events to stored form and back: orjson, datetimes, upcasting, stored digests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import orjson
import pytest
from eventsourcing.compressor import ZlibCompressor
from eventsourcing.persistence import MapperDeserialisationError, StoredEvent
from eventsourcing.utils import get_topic

from mnemolog.adapters.codec import ChainedMapper, OrjsonTranscoder
from mnemolog.domain.chain import (
    GENESIS_HASH,
    STORED_DIGEST,
    event_digest,
    find_chain_break,
)
from mnemolog.domain.memory import Memory, Provenance
from mnemolog.domain.values import MAX_INT, MIN_INT, decode_value
from tests.domain.support import FakeClock, start_memory, value_change

BOB = Provenance(actor="bob", task_id="t-2", source="api", reason="because")


def fields(event: Any) -> dict[str, Any]:
    """An event's fields, without the digest the mapper leaves on read events."""
    return {k: v for k, v in vars(event).items() if k != STORED_DIGEST}


def round_trip(mapper: ChainedMapper, event: Any) -> Any:
    return mapper.to_domain_event(mapper.to_stored_event(event))


def all_event_types() -> list[Memory.Event]:
    """One event of each type (a blank name marks a repeated type)."""
    memory = start_memory(
        value={"text": "caf\u00e9", "blob": b"\xff\x00", "n": MAX_INT},
        tags=["a", "b"],
        metadata={"m": [1, 2.5, None, {"deep": "x"}]},
    )
    memory.revise({**value_change([b"", MIN_INT, 1e-300]), "tags": ["c"]}, BOB)
    memory.delete(BOB)
    memory.restore(BOB)
    memory.revise({"expires_at": "2020-01-01T00:00:00+00:00"}, BOB)
    memory.expire(BOB, datetime.now(UTC))
    memory.restore(BOB)
    memory.evict(BOB)
    memory.restore(BOB)
    memory.consolidate({"tags": ["d"]}, ["ns:x/other"], "merge_metadata", BOB)
    memory.supersede("ns:x/target", BOB)
    events = list(memory.collect_events())
    assert [type(e) for e in events] == [
        Memory.Created,
        Memory.Updated,
        Memory.Deleted,
        Memory.Restored,
        Memory.Updated,
        Memory.Expired,
        Memory.Restored,
        Memory.Evicted,
        Memory.Restored,
        Memory.Consolidated,
        Memory.Superseded,
    ]
    return events


EVENT_TYPES = [
    "Created",
    "Updated",
    "Deleted",
    "Restored",
    "",
    "Expired",
    "",
    "Evicted",
    "",
    "Consolidated",
    "Superseded",
]


def event_of_type(name: str) -> Memory.Event:
    return all_event_types()[EVENT_TYPES.index(name)]


def links(events: list[Any]) -> list[tuple[UUID, int, str, str]]:
    return [
        (e.originator_id, e.originator_version, e.prev_hash, e.digest()) for e in events
    ]


# ---- round trips -------------------------------------------------------------


@pytest.mark.parametrize("name", [name for name in EVENT_TYPES if name])
def test_event_round_trips_with_equal_fields(mapper: ChainedMapper, name: str) -> None:
    event = event_of_type(name)
    decoded = round_trip(mapper, event)
    assert type(decoded) is type(event)
    assert fields(decoded) == fields(event)


@pytest.mark.parametrize("name", [name for name in EVENT_TYPES if name])
def test_round_tripped_timestamp_is_an_aware_datetime(
    mapper: ChainedMapper, name: str
) -> None:
    event = event_of_type(name)
    decoded = round_trip(mapper, event)
    assert isinstance(decoded.timestamp, datetime)
    assert decoded.timestamp.utcoffset() is not None
    assert decoded.timestamp == event.timestamp


@pytest.mark.parametrize("name", [name for name in EVENT_TYPES if name])
def test_digest_is_the_same_before_and_after_storing(
    mapper: ChainedMapper, name: str
) -> None:
    event = event_of_type(name)
    decoded = round_trip(mapper, event)
    assert vars(decoded)[STORED_DIGEST] == event.digest()
    assert decoded.digest() == event.digest()


@pytest.mark.parametrize(
    "when",
    [
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2024, 6, 1, 8, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2024, 6, 1, 8, 30, 0, 500, tzinfo=timezone(timedelta(hours=-7))),
    ],
)
def test_digest_survives_storing_for_any_timestamp(
    mapper: ChainedMapper, clock: FakeClock, when: datetime
) -> None:
    clock.set(when)
    memory = start_memory()
    memory.revise({"importance": 0.1}, BOB)
    events = list(memory.collect_events())
    decoded = [round_trip(mapper, e) for e in events]
    assert [d.timestamp for d in decoded] == [when, when]
    assert [d.digest() for d in decoded] == [e.digest() for e in events]


def test_decoded_stream_keeps_its_chain(mapper: ChainedMapper) -> None:
    decoded = [round_trip(mapper, e) for e in all_event_types()]
    assert decoded[0].prev_hash == GENESIS_HASH
    assert find_chain_break(links(decoded)) is None


def test_decoded_events_fold_to_the_same_memory(mapper: ChainedMapper) -> None:
    memory = start_memory()
    memory.revise({"importance": 0.9}, BOB)
    memory.delete(BOB)
    events = list(memory.collect_events())
    rebuilt = None
    for event in (round_trip(mapper, e) for e in events):
        rebuilt = event.mutate(rebuilt)
    assert rebuilt == memory


@pytest.mark.parametrize(
    "value",
    [
        {"_type_": "datetime", "_data_": "2024-01-01T00:00:00+00:00"},
        {"_type_": "uuid", "_data_": "00000000000000000000000000000001"},
        {"_type_": "bytes", "_data_": b"x"},
        {"$bytes": "aGk="},
        {"$dict": {"a": 1}},
        b"\x80\x81non-utf8",
        "caf\u00e9 \U0001f600",
        [None, True, False, MAX_INT, MIN_INT, 0.1, -0.0],
    ],
)
def test_awkward_values_round_trip_through_the_log(
    mapper: ChainedMapper, value: Any
) -> None:
    memory = start_memory(value=value, metadata={"_type_": "x", "_data_": "y"})
    (event,) = memory.collect_events()
    decoded = round_trip(mapper, event)
    assert decode_value(decoded.value) == value
    assert decoded.metadata == {"_type_": "x", "_data_": "y"}
    assert fields(decoded) == fields(event)
    assert decoded.digest() == event.digest()


def test_stored_state_is_plain_json_without_the_originator(
    mapper: ChainedMapper,
) -> None:
    event = event_of_type("Updated")
    stored = mapper.to_stored_event(event)
    state = orjson.loads(stored.state)
    assert stored.originator_id == event.originator_id
    assert stored.originator_version == 2
    assert stored.topic == get_topic(Memory.Updated)
    assert "originator_id" not in state
    assert "originator_version" not in state
    assert state["timestamp"] == event.timestamp.isoformat()
    assert state["prev_hash"] == event.prev_hash


@pytest.mark.parametrize("name", [name for name in EVENT_TYPES if name])
def test_digest_cached_on_an_event_is_never_stored(
    mapper: ChainedMapper, name: str
) -> None:
    event = event_of_type(name)
    event.digest()
    state = orjson.loads(mapper.to_stored_event(event).state)
    assert STORED_DIGEST not in state


@pytest.mark.parametrize("name", [name for name in EVENT_TYPES if name])
def test_storing_a_read_event_again_gives_the_same_bytes(
    mapper: ChainedMapper, name: str
) -> None:
    stored = mapper.to_stored_event(event_of_type(name))
    again = mapper.to_stored_event(mapper.to_domain_event(stored))
    assert again == stored


def test_round_trip_with_a_compressor() -> None:
    zipped = ChainedMapper(transcoder=OrjsonTranscoder(), compressor=ZlibCompressor())
    for event in all_event_types():
        stored = zipped.to_stored_event(event)
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(stored.state)
        decoded = zipped.to_domain_event(stored)
        assert fields(decoded) == fields(event)
        assert decoded.digest() == event.digest()


@pytest.mark.parametrize(
    "state",
    [b"not json", b"{}", b'{"timestamp": "yesterday"}', b"[]"],
)
def test_unreadable_stored_state_raises_deserialisation_error(
    mapper: ChainedMapper, state: bytes
) -> None:
    stored = StoredEvent(
        originator_id=UUID(int=1),
        originator_version=1,
        topic=get_topic(Memory.Deleted),
        state=state,
    )
    with pytest.raises(MapperDeserialisationError):
        mapper.to_domain_event(stored)


def test_tampered_stored_event_breaks_the_chain_at_the_next_version(
    mapper: ChainedMapper,
) -> None:
    stored = [mapper.to_stored_event(e) for e in all_event_types()]
    state = orjson.loads(stored[1].state)
    state["changes"]["tags"] = ["forged"]
    stored[1] = StoredEvent(
        originator_id=stored[1].originator_id,
        originator_version=stored[1].originator_version,
        topic=stored[1].topic,
        state=orjson.dumps(state),
    )
    decoded = [mapper.to_domain_event(s) for s in stored]
    chain_break = find_chain_break(links(decoded))
    assert chain_break is not None
    assert chain_break.version == 3


# ---- snapshots ---------------------------------------------------------------


def snapshot_subject() -> Memory:
    memory = start_memory(value={"blob": b"\x00"}, tags=["a"], metadata={"m": 1})
    memory.revise({"importance": 0.9, "tags": ["a", "b"]}, BOB)
    memory.delete(BOB)
    memory.collect_events()
    return memory


def test_snapshot_round_trips(mapper: ChainedMapper) -> None:
    snapshot = Memory.Snapshot.take(snapshot_subject())
    decoded = round_trip(mapper, snapshot)
    assert type(decoded) is type(snapshot)
    assert fields(decoded) == fields(snapshot)
    assert STORED_DIGEST not in vars(decoded)


def test_snapshot_state_datetimes_come_back_as_datetimes(
    mapper: ChainedMapper,
) -> None:
    memory = snapshot_subject()
    decoded = round_trip(mapper, Memory.Snapshot.take(memory))
    assert decoded.state["_created_on"] == memory.created_on
    assert decoded.state["_modified_on"] == memory.modified_on
    for name in ("_created_on", "_modified_on"):
        assert isinstance(decoded.state[name], datetime)
        assert decoded.state[name].utcoffset() is not None
    assert isinstance(decoded.timestamp, datetime)


def test_snapshot_rebuilds_an_equal_memory(mapper: ChainedMapper) -> None:
    memory = snapshot_subject()
    decoded = round_trip(mapper, Memory.Snapshot.take(memory))
    rebuilt = decoded.mutate(None)
    assert isinstance(rebuilt, Memory)
    assert rebuilt == memory
    assert (rebuilt.id, rebuilt.version) == (memory.id, 3)
    assert rebuilt.head_hash == memory.head_hash
    assert rebuilt.deleted is True


def test_memory_rebuilt_from_snapshot_continues_the_chain(
    mapper: ChainedMapper,
) -> None:
    memory = snapshot_subject()
    rebuilt = round_trip(mapper, Memory.Snapshot.take(memory)).mutate(None)
    rebuilt.restore(BOB)
    (event,) = rebuilt.collect_events()
    assert event.originator_version == 4
    assert event.prev_hash == memory.head_hash


# ---- class versions and the upcaster -----------------------------------------


def test_created_is_at_class_version_5() -> None:
    assert Memory.Created.class_version == 5


def test_recreated_is_at_class_version_2() -> None:
    assert Memory.Recreated.class_version == 2


@pytest.mark.parametrize(
    "name",
    [
        "Updated",
        "Deleted",
        "Restored",
        "Expired",
        "Evicted",
        "Superseded",
        "Consolidated",
    ],
)
def test_other_events_are_at_class_version_1(name: str) -> None:
    assert getattr(getattr(Memory, name), "class_version", 1) == 1


def test_upcast_v1_v2_takes_old_memories_as_certain() -> None:
    state: dict[str, Any] = {"value": "x"}
    Memory.Created.upcast_v1_v2(state)
    assert state == {"value": "x", "confidence": 1.0}


def test_upcast_v2_v3_gives_old_memories_no_embedding() -> None:
    state: dict[str, Any] = {"value": "x"}
    Memory.Created.upcast_v2_v3(state)
    assert state == {"value": "x", "embedding": None, "embedding_model": None}


def test_upcast_v3_v4_gives_old_memories_the_tenants_key() -> None:
    state: dict[str, Any] = {"value": "x"}
    Memory.Created.upcast_v3_v4(state)
    assert state == {"value": "x", "subject": None}


def test_upcast_v4_v5_gives_old_memories_no_lifetime() -> None:
    state: dict[str, Any] = {"value": "x"}
    Memory.Created.upcast_v4_v5(state)
    assert state == {"value": "x", "expires_at": None}


def test_upcast_recreated_v1_v2_gives_no_lifetime() -> None:
    state: dict[str, Any] = {"value": "x"}
    Memory.Recreated.upcast_v1_v2(state)
    assert state == {"value": "x", "expires_at": None}


def test_v5_created_is_stored_with_its_class_version(mapper: ChainedMapper) -> None:
    event = event_of_type("Created")
    state = orjson.loads(mapper.to_stored_event(event).state)
    assert state["class_version"] == 5
    assert state["confidence"] == event.confidence


def test_decoded_v5_created_has_no_class_version_field(mapper: ChainedMapper) -> None:
    decoded = round_trip(mapper, event_of_type("Created"))
    assert "class_version" not in vars(decoded)


def v1_created_state(event: Memory.Created) -> dict[str, Any]:
    """The JSON state version 1 of Created had: no confidence, no embedding, no
    class_version."""
    dropped = (
        "originator_id",
        "originator_version",
        "confidence",
        "embedding",
        "embedding_model",
    )
    state = {k: v for k, v in vars(event).items() if k not in dropped}
    state["timestamp"] = event.timestamp.isoformat()
    return state


def stored_v1(event: Memory.Created) -> tuple[StoredEvent, dict[str, Any]]:
    state = v1_created_state(event)
    stored = StoredEvent(
        originator_id=event.originator_id,
        originator_version=1,
        topic=get_topic(Memory.Created),
        state=orjson.dumps(state),
    )
    return stored, state


@pytest.fixture
def v1_event() -> Memory.Created:
    memory = start_memory(confidence=0.3)
    (event,) = memory.collect_events()
    assert isinstance(event, Memory.Created)
    return event


def test_v1_created_is_upcast_with_confidence_1(
    mapper: ChainedMapper, v1_event: Memory.Created
) -> None:
    stored, state = stored_v1(v1_event)
    assert "confidence" not in state
    assert "class_version" not in state
    decoded = mapper.to_domain_event(stored)
    assert type(decoded) is Memory.Created
    assert decoded.confidence == 1.0
    assert "class_version" not in vars(decoded)
    expected = {
        **fields(v1_event),
        "confidence": 1.0,
        "embedding": None,
        "embedding_model": None,
    }
    assert fields(decoded) == expected


def test_v1_created_digest_is_that_of_its_stored_form(
    mapper: ChainedMapper, v1_event: Memory.Created
) -> None:
    stored, state = stored_v1(v1_event)
    decoded = mapper.to_domain_event(stored)
    stored_digest = event_digest(
        get_topic(Memory.Created), v1_event.originator_id, 1, state
    )
    assert decoded.digest() == stored_digest
    # The upcast fields would hash differently: the digest must not be recomputed.
    recomputed = Memory.Created(**fields(decoded)).digest()
    assert recomputed != stored_digest


def test_v1_created_digest_with_timestamp_as_datetime_is_the_same(
    mapper: ChainedMapper, v1_event: Memory.Created
) -> None:
    stored, state = stored_v1(v1_event)
    decoded = mapper.to_domain_event(stored)
    as_datetime = {**state, "timestamp": v1_event.timestamp}
    assert decoded.digest() == event_digest(
        get_topic(Memory.Created), v1_event.originator_id, 1, as_datetime
    )


def test_memory_folded_from_v1_created_heads_with_the_stored_digest(
    mapper: ChainedMapper, v1_event: Memory.Created
) -> None:
    stored, _ = stored_v1(v1_event)
    decoded = mapper.to_domain_event(stored)
    memory = decoded.mutate(None)
    assert isinstance(memory, Memory)
    assert memory.confidence == 1.0
    assert memory.head_hash == decoded.digest()


def test_v2_event_after_a_v1_created_keeps_the_chain_intact(
    mapper: ChainedMapper, v1_event: Memory.Created
) -> None:
    stored_created, _ = stored_v1(v1_event)
    created = mapper.to_domain_event(stored_created)
    memory = created.mutate(None)
    memory.revise({"importance": 0.9}, BOB)
    (updated,) = memory.collect_events()
    assert updated.prev_hash == created.digest()

    # Read the whole stream back from its stored form, as a verifier would.
    log = [stored_created, mapper.to_stored_event(updated)]
    decoded = [mapper.to_domain_event(s) for s in log]
    assert decoded[1].prev_hash == decoded[0].digest()
    assert find_chain_break(links(decoded)) is None


def test_reading_a_v1_created_twice_gives_the_same_digest(
    mapper: ChainedMapper, v1_event: Memory.Created
) -> None:
    stored, _ = stored_v1(v1_event)
    first = mapper.to_domain_event(stored).digest()
    second = mapper.to_domain_event(stored).digest()
    assert first == second
