"""How events become bytes in the log and back: orjson, plus the stored digest."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import orjson
from eventsourcing.domain import CanSnapshotAggregate, DomainEventProtocol
from eventsourcing.persistence import (
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    Transcoder,
    find_id_convertor,
)
from eventsourcing.utils import get_topic, resolve_topic

from mnemolog.domain.chain import STORED_DIGEST, event_digest

# Fields that eventsourcing's base classes hold as datetimes; ours are JSON-native.
_EVENT_DATETIMES = ("timestamp",)
_SNAPSHOT_DATETIMES = ("_created_on", "_modified_on")


class OrjsonTranscoder(Transcoder):
    """JSON by orjson, with no type tags inside payloads.

    The library's JSONTranscoder reads any dict shaped ``{"_type_", "_data_"}`` as
    a tagged object, so a caller's value of that shape could not be read back.
    Our events hold JSON-native fields only; the few datetimes that the library's
    base classes add are restored by name in :class:`ChainedMapper`.
    """

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj)

    def decode(self, data: bytes) -> Any:
        return orjson.loads(data)


class ChainedMapper(Mapper[Any]):
    """The library's mapper, plus: datetimes restored, and the digest of each
    chained event computed from its stored form before any upcasting."""

    def to_stored_event(self, domain_event: DomainEventProtocol[Any]) -> StoredEvent:
        state = dict(vars(domain_event))
        state.pop(STORED_DIGEST, None)  # a cache on the event, never stored
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        data = self.transcoder.encode(state)
        if self.compressor:
            data = self.compressor.compress(data)
        if self.cipher:
            data = self.cipher.encrypt(data)
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(type(domain_event)),
            state=data,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[Any]:
        cls = resolve_topic(stored_event.topic)
        data = stored_event.state
        try:
            if self.cipher:
                data = self.cipher.decrypt(data)
            if self.compressor:
                data = self.compressor.decompress(data)
            state: dict[str, Any] = self.transcoder.decode(data)
            for name in _EVENT_DATETIMES:
                state[name] = datetime.fromisoformat(state[name])
            if isinstance(cls, type) and issubclass(cls, CanSnapshotAggregate):
                inner = state["state"]
                for name in _SNAPSHOT_DATETIMES:
                    inner[name] = datetime.fromisoformat(inner[name])
        except Exception as e:
            msg = (
                f"cannot read stored event {stored_event.topic} "
                f"{stored_event.originator_id} v{stored_event.originator_version}: {e}"
            )
            raise MapperDeserialisationError(msg) from e

        convert = find_id_convertor(cls, cast(Any, type(stored_event.originator_id)))
        originator_id = convert(stored_event.originator_id)
        if "prev_hash" in state:
            state[STORED_DIGEST] = event_digest(
                stored_event.topic,
                cast(Any, originator_id),
                stored_event.originator_version,
                state,
            )
        state["originator_id"] = originator_id
        state["originator_version"] = stored_event.originator_version
        class_version = getattr(cls, "class_version", 1)
        from_version = state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return cast(DomainEventProtocol[Any], event)
