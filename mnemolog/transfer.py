"""Moving events between stores: export, import, and replay up to a moment.

An exported line is one stored event, exactly as stored (before upcasting):

    {"position": 7, "id": "<stream hex>", "version": 2,
     "topic": "mnemolog.domain.memory:Memory.Updated", "state": {...}}

The last line is a trailer, ``{"export": "end", "events": N}``, so that a file
cut short, even at a line boundary, is refused. Import writes the same
payloads, so every digest, and so every hash chain, is the same in the new
store.

Sealed events are exported opened (their personal fields and salt in place of
the ciphertext), and sealed again on import with the new store's keys: the
digest covers the commitment to those fields, which does not change. An
erased event, whose key is gone, is exported as stored, ciphertext and all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import TopicError, resolve_topic

from mnemolog.adapters.codec import SEALED, ChainedMapper
from mnemolog.documents import check_imported
from mnemolog.domain import memory as domain
from mnemolog.domain.chain import GENESIS_HASH
from mnemolog.domain.document import Document
from mnemolog.domain.erasure import Erasure
from mnemolog.domain.errors import ValidationError
from mnemolog.domain.session import Session
from mnemolog.domain.values import (
    check_key,
    check_metadata,
    check_tags,
    check_tenant,
    check_unit_interval,
    decode_value,
)
from mnemolog.projections.projector import PAGE_SIZE

if TYPE_CHECKING:
    from mnemolog.store import MemoryStore


@dataclass(frozen=True)
class LoggedEvent:
    """One stored event with its JSON state, as exported."""

    position: int
    stream: UUID
    version: int
    topic: str
    state: dict[str, Any]

    def to_line(self) -> bytes:
        """The JSONL form."""
        return orjson.dumps(
            {
                "position": self.position,
                "id": self.stream.hex,
                "version": self.version,
                "topic": self.topic,
                "state": self.state,
            }
        )


def read_log(store: MemoryStore) -> Iterator[LoggedEvent]:
    """Every event of the log in order, a page at a time (constant memory)."""
    recorder, mapper = store._recorder, store._app.mapper
    assert isinstance(mapper, ChainedMapper)
    store._keyring.sync()
    position = 0
    while True:
        with recorder.read_transaction() as cursor:
            page = recorder.notifications_after(
                cursor, position, upto=None, limit=PAGE_SIZE
            )
        for notification in page:
            data = notification.state
            if mapper.cipher:
                data = mapper.cipher.decrypt(data)
            if mapper.compressor:
                data = mapper.compressor.decompress(data)
            stream = notification.originator_id
            assert isinstance(stream, UUID)
            stored = orjson.loads(data)
            state, readable = mapper.open_state(stream, stored)
            position = notification.id
            if not readable and SEALED not in stored:
                # Erased, but written before sealing: its plaintext is in the
                # log, and is never copied out (its stream is left out whole).
                continue
            yield LoggedEvent(
                notification.id,
                stream,
                notification.originator_version,
                notification.topic,
                state,
            )
        if len(page) < PAGE_SIZE:
            return


def tenant_events(
    events: Iterable[LoggedEvent], *, tenant: str | None
) -> Iterator[LoggedEvent]:
    """The events of streams created in one tenant, in order."""
    chosen: set[UUID] = set()
    for event in events:
        if event.version == 1 and (
            tenant is None or event.state.get("tenant") == tenant
        ):
            chosen.add(event.stream)
        if event.stream in chosen:
            yield event


def streams_within(
    events: Iterable[LoggedEvent], *, tenant: str, namespace_prefix: str
) -> set[UUID]:
    """The streams of one tenant whose memory lives under a namespace, by
    their first event or, for one written anew after an erasure (its first
    event redacted), by the event that recreated it."""
    return {
        event.stream
        for event in events
        if event.state.get("tenant") == tenant
        and "namespace" in event.state
        and (event.version == 1 or event.topic.endswith(".Recreated"))
        and _within(str(event.state["namespace"]), namespace_prefix)
    }


def _within(namespace: str, prefix: str) -> bool:
    return namespace == prefix or namespace.startswith(prefix + ":")


def export_events(
    store: MemoryStore, write: Callable[[bytes], object], *, tenant: str | None = None
) -> int:
    """Writes every event (of one tenant, if given) as JSON lines; returns the count."""
    store._allow_admin()
    count = 0
    for event in tenant_events(read_log(store), tenant=tenant):
        write(event.to_line() + b"\n")
        count += 1
    write(orjson.dumps({"export": "end", "events": count}) + b"\n")
    return count


def parse_lines(lines: Iterable[bytes | str]) -> Iterator[LoggedEvent]:
    """Reads exported lines, refusing anything malformed with the line number."""
    count = 0
    trailer: dict[str, Any] | None = None
    number = 0
    for number, line in enumerate(lines, start=1):
        where = f"line {number}"
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise ValidationError(where, "is not JSON (a truncated file?)") from None
        if trailer is not None:
            raise ValidationError(where, "comes after the export's trailer line")
        if isinstance(record, dict) and record.get("export") == "end":
            trailer = record
            continue
        if not isinstance(record, dict) or set(record) != {
            "position",
            "id",
            "version",
            "topic",
            "state",
        }:
            raise ValidationError(
                where, "must hold position, id, version, topic, state"
            )
        try:
            stream = UUID(hex=record["id"])
        except (TypeError, ValueError, AttributeError):
            raise ValidationError(where, "id must be a stream id in hex") from None
        position, version = record["position"], record["version"]
        if not all(isinstance(n, int) and n >= 1 for n in (position, version)):
            raise ValidationError(where, "position and version must be integers >= 1")
        if not isinstance(record["topic"], str) or not isinstance(
            record["state"], dict
        ):
            raise ValidationError(where, "topic must be text and state an object")
        count += 1
        yield LoggedEvent(position, stream, version, record["topic"], record["state"])
    if trailer is None:
        raise ValidationError(
            f"line {number + 1}", "the export's trailer line is missing: truncated?"
        )
    if trailer.get("events") != count:
        raise ValidationError(
            "trailer",
            f"the export says {trailer.get('events')} events but holds {count}: "
            "lines are missing or were added",
        )


class Checker:
    """Checks a sequence of events as a log: known types and versions, streams
    without gaps, hash chains intact, ids that match their tenant/namespace/key."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._mapper = store._app.mapper
        self._versions: dict[UUID, int] = {}
        self._digests: dict[UUID, str] = {}
        self.tenants: set[str] = set()
        self._position = 0

    def check(self, event: LoggedEvent, where: str) -> Any:
        """The decoded domain event, or ValidationError naming what is wrong."""
        try:
            cls = resolve_topic(event.topic)
        except (TopicError, ValueError):
            raise ValidationError(
                where, f"unknown event type {event.topic!r}"
            ) from None
        if not (
            isinstance(cls, type)
            and issubclass(
                cls,
                domain.Memory.Event | Session.Event | Document.Event | Erasure.Erased,
            )
        ):
            raise ValidationError(where, f"unknown event type {event.topic!r}")
        written = event.state.get("class_version", 1)
        known = getattr(cls, "class_version", 1)
        if not isinstance(written, int) or written > known:
            raise ValidationError(
                where,
                f"{cls.__qualname__} version {written} is newer than this mnemolog "
                f"reads ({known}); upgrade mnemolog first",
            )
        if event.position <= self._position:
            raise ValidationError(where, "positions must increase (reordered lines?)")
        self._position = event.position
        expected = self._versions.get(event.stream, 0) + 1
        if event.version != expected:
            raise ValidationError(
                where,
                f"stream {event.stream} goes to version {event.version}, expected "
                f"{expected} (missing or reordered lines?)",
            )
        try:
            decoded: Any = self._mapper.to_domain_event(_stored(event))
        except Exception as e:
            raise ValidationError(where, f"the event cannot be read: {e}") from None
        if decoded.prev_hash != self._digests.get(event.stream, GENESIS_HASH):
            raise ValidationError(
                where, f"the hash chain of stream {event.stream} is broken here"
            )
        if isinstance(decoded, domain.Memory.Event) and not isinstance(
            decoded, domain.Memory.Redacted
        ):
            try:
                self._store._provenance(
                    decoded.actor, decoded.task_id, decoded.source, decoded.reason
                )
                if isinstance(decoded, domain.Memory.Updated):
                    self._fields(decoded.changes)
            except ValidationError as e:
                raise ValidationError(where, f"{e.field}: {e.rule}") from None
        if isinstance(decoded, domain.Memory.Created | domain.Memory.Recreated):
            self._addressable(decoded, where)
            own = domain.Memory.create_id(
                decoded.tenant, decoded.namespace, decoded.key
            )
            if own != event.stream:
                raise ValidationError(
                    where, "the stream id does not belong to its tenant/namespace/key"
                )
            self.tenants.add(decoded.tenant)
        elif isinstance(decoded, Document.Event):
            self._document(decoded, event.stream, where)
        elif isinstance(decoded, Session.Created):
            own = Session.create_id(decoded.tenant, decoded.session_id)
            if own != event.stream:
                raise ValidationError(
                    where, "the stream id does not belong to its tenant and session id"
                )
            self.tenants.add(decoded.tenant)
        self._versions[event.stream] = event.version
        self._digests[event.stream] = decoded.digest()
        return decoded

    def _document(self, event: Document.Event, stream: UUID, where: str) -> None:
        """A document event as the document index would write it, in the
        stream of its tenant and path."""
        try:
            check_imported(event)
        except ValidationError as e:
            raise ValidationError(where, f"{e.field}: {e.rule}") from None
        if isinstance(event, Document.Registered | Document.Reregistered):
            if Document.create_id(event.tenant, event.file_path) != stream:
                raise ValidationError(
                    where, "the stream id does not belong to its tenant and file path"
                )
            self.tenants.add(event.tenant)

    def _addressable(self, event: Any, where: str) -> None:
        """A memory's fields as put would accept them: an import cannot land
        a memory that no call could write, or then address."""
        try:
            check_tenant(event.tenant)
            self._store._namespace(event.namespace, "namespace")
            check_key(event.key)
            self._fields(vars(event))
        except ValidationError as e:
            raise ValidationError(where, f"{e.field}: {e.rule}") from None

    def _fields(self, fields: dict[str, Any]) -> None:
        """The changeable fields present, checked as put checks them."""
        for name in ("importance", "confidence"):
            if name in fields:
                check_unit_interval(fields[name], name)
        if "memory_type" in fields:
            self._store._memory_type(fields["memory_type"])
        if "tags" in fields and check_tags(fields["tags"]) != tuple(fields["tags"]):
            raise ValidationError("tags", "must be sorted and unique")
        if "metadata" in fields:
            check_metadata(fields["metadata"])
        if fields.get("expires_at") is not None:
            _check_expiry(fields["expires_at"])
        if "value" in fields:
            try:
                value = decode_value(fields["value"])
            except (ValueError, TypeError):
                raise ValidationError("value", "is not a stored value") from None
            _, content_hash = self._store._check_value(value)
            if fields.get("content_hash", content_hash) != content_hash:
                raise ValidationError("content_hash", "does not match the value")


def _check_expiry(expires_at: object) -> None:
    """A lifetime as put writes it: aware ISO 8601 text."""
    if not isinstance(expires_at, str):
        raise ValidationError("expires_at", "must be ISO 8601 text or null")
    try:
        moment = datetime.fromisoformat(expires_at)
    except ValueError:
        raise ValidationError("expires_at", "must be ISO 8601 text") from None
    if moment.utcoffset() is None:
        raise ValidationError("expires_at", "must name its time zone")


def _stored(event: LoggedEvent) -> StoredEvent:
    return StoredEvent(
        originator_id=event.stream,
        originator_version=event.version,
        topic=event.topic,
        state=orjson.dumps(event.state),
    )


def append(store: MemoryStore, events: Iterable[LoggedEvent]) -> int:
    """Writes events to a store exactly as they were stored, a page per
    transaction, its read models kept current; returns the count."""
    recorder, mapper = store._recorder, store._app.mapper
    count = 0
    batch: list[LoggedEvent] = []

    def flush() -> None:
        decoded = [mapper.to_domain_event(_stored(e)) for e in batch]
        stored = [_sealed(e, mapper) for e in batch]
        copied = [
            (e.originator_id.hex, e.digest(), e.streams)
            for e in decoded
            if isinstance(e, Erasure.Erased)
        ]
        recorder.insert_events(
            stored,
            projected_events=decoded,
            copied_erasures=copied,
            enforce_quotas=False,
        )
        if copied:
            store._keyring.forget()
        batch.clear()

    for event in events:
        batch.append(event)
        count += 1
        if len(batch) >= PAGE_SIZE:
            flush()
    if batch:
        flush()
    return count


def _sealed(event: LoggedEvent, mapper: Any) -> StoredEvent:
    """The stored form of an exported event in this store: personal fields
    sealed with this store's keys, then compressed and encrypted as the log
    is configured."""
    state = mapper.seal_state(event.stream, event.version, event.topic, event.state)
    data = orjson.dumps(state)
    if mapper.compressor:
        data = mapper.compressor.compress(data)
    if mapper.cipher:
        data = mapper.cipher.encrypt(data)
    return StoredEvent(event.stream, event.version, event.topic, data)


def import_events(
    store: MemoryStore,
    open_lines: Callable[[], Iterable[bytes | str]],
    *,
    tenant: str | None = None,
) -> int:
    """Imports an export into an empty store, or into a tenant empty there.

    ``open_lines`` is called twice: the whole input is checked before anything
    is written, so bad input writes nothing.
    """
    store._allow_admin()
    checker = Checker(store)
    for event in parse_lines(open_lines()):
        checker.check(event, f"line of position {event.position}")
    if tenant is None:
        head = store._head()
        if head:
            raise ValidationError(
                "store",
                "is not empty; import into an empty store, or name with --tenant "
                "a tenant that is empty there",
            )
    else:
        if checker.tenants - {tenant}:
            others = ", ".join(sorted(checker.tenants - {tenant}))
            raise ValidationError("tenant", f"the input also holds tenant(s) {others}")
        holds = store._recorder.fetch_one(
            "SELECT 1 FROM sessions WHERE tenant = ? "
            "UNION ALL SELECT 1 FROM documents WHERE tenant = ? "
            "UNION ALL SELECT 1 FROM audit_log WHERE tenant = ?",
            (tenant, tenant, tenant),
        )
        if holds is not None:
            raise ValidationError("tenant", f"tenant {tenant!r} is not empty here")
    return append(store, parse_lines(open_lines()))


def replay(
    source: MemoryStore,
    into: MemoryStore,
    *,
    tenant: str,
    as_of: datetime | None = None,
    position: int | None = None,
    namespace_prefix: str | None = None,
) -> int:
    """Copies one tenant's events (of one namespace, if given) as they stood at
    ``as_of`` or at log ``position`` into another store; returns the count."""

    if position is not None:
        head = source._head()
        if (
            isinstance(position, bool)
            or not isinstance(position, int)
            or not (0 <= position <= head)
        ):
            raise ValidationError("position", f"must be a log position in [0, {head}]")

    def upto(events: Iterable[LoggedEvent]) -> Iterator[LoggedEvent]:
        for event in events:
            if position is not None and event.position > position:
                return
            if (
                as_of is not None
                and datetime.fromisoformat(event.state["timestamp"]) > as_of
            ):
                continue  # times rise within a stream, not across the log
            yield event

    if namespace_prefix is None:
        chosen = tenant_events(read_log(source), tenant=tenant)
    else:  # two passes: a stream may be placed by a late event
        streams = streams_within(
            read_log(source), tenant=tenant, namespace_prefix=namespace_prefix
        )
        chosen = (e for e in read_log(source) if e.stream in streams)
    return append(into, upto(chosen))
