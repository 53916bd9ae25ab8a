"""How events become bytes in the log and back: orjson, the stored digest, and
the sealing of personal fields with their stream's key (see domain.chain)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

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

from mnemolog.domain.chain import (
    COMMIT,
    PUBLIC_FIELDS,
    SALT,
    STORED_DIGEST,
    commitment,
    event_digest,
    personal_fields,
)

if TYPE_CHECKING:
    from mnemolog.adapters.keyring import Keyring

SEALED = "sealed"
"""The field of a stored event or snapshot holding its encrypted part."""

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
    """The library's mapper, plus: datetimes restored, the digest of each
    chained event computed from its stored form before any upcasting, and
    personal fields sealed with their stream's key (when a keyring is set)."""

    keyring: Keyring | None = None

    def to_stored_event(self, domain_event: DomainEventProtocol[Any]) -> StoredEvent:
        state = dict(vars(domain_event))
        state.pop(STORED_DIGEST, None)  # a cache on the event, never stored
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        topic = get_topic(type(domain_event))
        state = self.seal_state(originator_id, originator_version, topic, state)
        data = self.transcoder.encode(state)
        if self.compressor:
            data = self.compressor.compress(data)
        if self.cipher:
            data = self.cipher.encrypt(data)
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=topic,
            state=data,
        )

    def seal_state(
        self, stream: UUID, version: int, topic: str, state: dict[str, Any]
    ) -> dict[str, Any]:
        """The stored form of an event's (or snapshot's) JSON state: a sealed
        event's personal fields encrypted beside the commitment to them."""
        keyring = self.keyring
        if keyring is None:
            return state
        if SALT in state:
            cls = resolve_topic(topic)
            subject_field = getattr(cls, "subject_field", None)
            private = personal_fields(state)
            stored = {k: v for k, v in state.items() if k in PUBLIC_FIELDS}
            stored[COMMIT] = commitment(state)
            stored[SEALED] = keyring.seal(
                stream,
                state.get("tenant"),
                private.get(subject_field) if subject_field else None,
                self._pack(private),
                fresh=version == 1 or getattr(cls, "fresh_key", False),
            )
            return stored
        inner = state.get("state")
        if (
            topic.endswith(".Snapshot")
            and isinstance(inner, dict)
            and "tenant" in inner
        ):
            sealed = keyring.seal(
                stream, str(inner["tenant"]), None, self._pack(inner), fresh=False
            )
            return {**state, "state": {SEALED: sealed}}
        return state

    def _pack(self, fields: dict[str, Any]) -> bytes:
        """A sealed part's plaintext: JSON, compressed when the log is (here,
        before encryption, where it still compresses)."""
        data = orjson.dumps(fields)
        return self.compressor.compress(data) if self.compressor else data

    def _unpack(self, data: bytes) -> bytes:
        return self.compressor.decompress(data) if self.compressor else data

    def open_state(
        self, stream: UUID, state: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """A stored JSON state with its sealed part opened (salt and personal
        fields in place of the commitment and ciphertext), and True; or, when
        its key was destroyed, the state as stored and False."""
        sealed = state.get(SEALED)
        if self.keyring is None:
            return state, True
        if sealed is None:  # plain: not sealed, or written before sealing was
            if SALT not in state and "prev_hash" in state:
                return state, not self.keyring.is_erased(stream)
            return state, True
        plaintext = self.keyring.unseal(stream, sealed)
        if plaintext is None:
            return state, False
        private = orjson.loads(self._unpack(plaintext))
        if COMMIT not in state:  # a snapshot's state
            return {**state, "state": private}, True
        if commitment(private) != state[COMMIT]:
            msg = f"sealed fields of stream {stream} do not match their commitment"
            raise ValueError(msg)
        opened = {k: v for k, v in state.items() if k in PUBLIC_FIELDS}
        opened.update(private)
        return opened, True

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[Any]:
        cls = resolve_topic(stored_event.topic)
        data = stored_event.state
        convert = find_id_convertor(cls, cast(Any, type(stored_event.originator_id)))
        originator_id = convert(stored_event.originator_id)
        try:
            if self.cipher:
                data = self.cipher.decrypt(data)
            if self.compressor:
                data = self.compressor.decompress(data)
            state: dict[str, Any] = self.transcoder.decode(data)
            for name in _EVENT_DATETIMES:
                state[name] = datetime.fromisoformat(state[name])
            digest = None
            if "prev_hash" in state:
                digest = event_digest(
                    stored_event.topic,
                    cast(Any, originator_id),
                    stored_event.originator_version,
                    state,
                )
            state, readable = self.open_state(cast(UUID, originator_id), state)
            if not readable:
                if issubclass(cls, CanSnapshotAggregate):
                    raise SnapshotErased(stored_event.topic)
                cls = redacted_class(stored_event.topic)
                state = {k: v for k, v in state.items() if k in PUBLIC_FIELDS}
            if digest is not None:
                state[STORED_DIGEST] = digest
            if isinstance(cls, type) and issubclass(cls, CanSnapshotAggregate):
                inner = state["state"]
                for name in _SNAPSHOT_DATETIMES:
                    inner[name] = datetime.fromisoformat(inner[name])
        except SnapshotErased:
            raise
        except Exception as e:
            msg = (
                f"cannot read stored event {stored_event.topic} "
                f"{stored_event.originator_id} v{stored_event.originator_version}: {e}"
            )
            raise MapperDeserialisationError(msg) from e

        state["originator_id"] = originator_id
        state["originator_version"] = stored_event.originator_version
        class_version = getattr(cls, "class_version", 1)
        from_version = state.pop("class_version", 1)
        if not readable:
            from_version = class_version
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return cast(DomainEventProtocol[Any], event)


class SnapshotErased(MapperDeserialisationError):
    """A snapshot sealed with a destroyed key: fold from the events instead."""


def redacted_class(topic: str) -> type[Any]:
    """The Redacted event class of the aggregate an event topic belongs to."""
    module, _, qualname = topic.partition(":")
    aggregate = resolve_topic(f"{module}:{qualname.split('.')[0]}")
    return cast(type[Any], aggregate.Redacted)
