"""The public, immutable shapes that mnemolog returns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID, SafeUUID

import orjson
from pydantic import BaseModel, ConfigDict

from mnemolog.domain import memory as domain
from mnemolog.domain.values import decode_value
from mnemolog.projections.current_state import from_micros

ChangeKind = Literal[
    "created",
    "updated",
    "deleted",
    "restored",
    "recreated",
    "expired",
    "evicted",
    "superseded",
    "consolidated",
]

M = TypeVar("M", bound=BaseModel)


def trusted(cls: type[M], values: dict[str, Any]) -> M:
    """Builds a model from values the store itself produced, without validation.

    What ``model_construct`` does when every field is given, minus its per-field
    loop: read paths build thousands of these a second. Validation happened
    when the values entered the store.
    """
    model = cls.__new__(cls)
    setattr_ = object.__setattr__
    setattr_(model, "__dict__", values)
    setattr_(model, "__pydantic_fields_set__", set(values))
    setattr_(model, "__pydantic_extra__", None)
    setattr_(model, "__pydantic_private__", None)
    return model


_UUID_NEW = UUID.__new__
_SAFE_UNKNOWN = SafeUUID.unknown


def uuid_from_hex(text: str) -> UUID:
    """A UUID from the 32 hex digits the read models store, without the
    parsing UUID() does for every spelling (a quarter of the time)."""
    uuid = _UUID_NEW(UUID)
    object.__setattr__(uuid, "int", int(text, 16))
    object.__setattr__(uuid, "is_safe", _SAFE_UNKNOWN)
    return uuid


def _value_from_text(text: str) -> Any:
    # Only wire forms holding a "$bytes" or "$dict" tag need the decoding walk.
    parsed = orjson.loads(text)
    return decode_value(parsed) if '"$' in text else parsed


T = TypeVar("T")


class Scored(BaseModel, Generic[T]):
    """A search result and its score (higher is better; see each search for
    what the score means)."""

    model_config = ConfigDict(frozen=True)

    item: T
    score: float


class Memory(BaseModel):
    """A memory as it stands at one version."""

    model_config = ConfigDict(frozen=True, ser_json_bytes="base64")

    id: UUID
    tenant: str
    namespace: str
    key: str
    value: Any
    memory_type: str
    tags: frozenset[str]
    metadata: dict[str, Any]
    importance: float
    confidence: float
    content_hash: str
    version: int
    deleted: bool
    created_at: datetime
    updated_at: datetime
    created_by: str | None
    updated_by: str | None
    expires_at: datetime | None = None
    """When it stops being visible (None: never); see ``put(ttl=)``."""

    @classmethod
    def from_aggregate(cls, memory: domain.Memory) -> Memory:
        """The public view of a folded aggregate."""
        return trusted(
            cls,
            dict(
                id=memory.id,
                tenant=memory.tenant,
                namespace=memory.namespace,
                key=memory.key,
                value=decode_value(memory.value),
                memory_type=memory.memory_type,
                tags=frozenset(memory.tags),
                metadata=orjson.loads(orjson.dumps(memory.metadata)),
                importance=memory.importance,
                confidence=memory.confidence,
                content_hash=memory.content_hash,
                version=memory.version,
                deleted=memory.deleted,
                created_at=memory.created_on,
                updated_at=memory.modified_on,
                created_by=memory.created_by,
                updated_by=memory.updated_by,
                expires_at=(
                    domain.expiry(memory.expires_at)
                    if memory.expires_at is not None
                    else None
                ),
            ),
        )

    @classmethod
    def from_row(
        cls, row: Sequence[Any], opener: Callable[[str], str] | None = None
    ) -> Memory:
        """The public view of a current-state row (columns in ROW_COLUMNS order);
        ``opener`` opens sealed columns (a store encrypted at rest)."""
        if opener is not None:
            row = [*row[:4], opener(row[4]), *row[5:8], opener(row[8]), *row[9:]]
        return trusted(
            cls,
            dict(
                id=uuid_from_hex(row[0]),
                tenant=row[1],
                namespace=row[2],
                key=row[3],
                value=_value_from_text(row[4]),
                content_hash=row[5],
                memory_type=row[6],
                tags=frozenset(orjson.loads(row[7])),
                metadata=orjson.loads(row[8]),
                importance=row[9],
                confidence=row[10],
                deleted=bool(row[11]),
                version=row[12],
                created_at=from_micros(row[13]),
                updated_at=from_micros(row[14]),
                created_by=row[15],
                updated_by=row[16],
                expires_at=from_micros(row[19]) if row[19] is not None else None,
            ),
        )


class ErasureReport(BaseModel):
    """What one erasure destroyed."""

    model_config = ConfigDict(frozen=True)

    erasure_id: UUID
    """The stream of the Erased event in the log."""
    tenant: str
    scope: Literal["memory", "subject", "tenant"]
    streams: int
    """Memories and sessions whose content is gone."""
    keys_destroyed: int
    position: int
    """The log position of the Erased event."""


class MemoryEvent(BaseModel):
    """One change in a memory's history, with the state right after it."""

    model_config = ConfigDict(frozen=True, ser_json_bytes="base64")

    memory_id: UUID
    version: int
    kind: ChangeKind
    at: datetime
    actor: str | None
    task_id: str | None
    source: str | None
    reason: str | None
    changed: tuple[str, ...]
    memory: Memory
    prev_hash: str
    hash: str

    @classmethod
    def from_event(
        cls, event: domain.Memory.Event, after: domain.Memory
    ) -> MemoryEvent:
        """Pairs an event with the state it produced."""
        if isinstance(event, domain.Memory.Updated):
            changed = tuple(sorted(event.changes))
        elif isinstance(event, domain.Memory.Created | domain.Memory.Recreated):
            changed = ("value", "tags", "metadata", "memory_type", "importance")
        else:
            changed = ("deleted",)
        return trusted(
            cls,
            dict(
                memory_id=event.originator_id,
                version=event.originator_version,
                kind=event.kind,
                at=event.timestamp,
                actor=event.actor,
                task_id=event.task_id,
                source=event.source,
                reason=event.reason,
                changed=changed,
                memory=Memory.from_aggregate(after),
                prev_hash=event.prev_hash,
                hash=event.digest(),
            ),
        )


class NamespaceInfo(BaseModel):
    """A namespace (or an ancestor of one) and how many live memories are under it."""

    model_config = ConfigDict(frozen=True)

    namespace: str
    depth: int
    count: int


AuditKind = Literal[
    "created",
    "updated",
    "deleted",
    "restored",
    "recreated",
    "expired",
    "evicted",
    "superseded",
    "consolidated",
    "erased",
]


class AuditEntry(BaseModel):
    """One event in the audit timeline: who did what, when, to which memory."""

    model_config = ConfigDict(frozen=True)

    position: int
    at: datetime
    tenant: str
    actor: str | None
    task_id: str | None
    source: str | None
    reason: str | None
    kind: AuditKind
    namespace: str
    key: str
    version: int

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> AuditEntry:
        """From an audit_log row (columns in AUDIT_COLUMNS order)."""
        return trusted(
            cls,
            {
                "position": row[0],
                "at": from_micros(row[1]),
                "tenant": row[2],
                "actor": row[3],
                "task_id": row[4],
                "source": row[5],
                "reason": row[6],
                "kind": row[7],
                "namespace": row[8],
                "key": row[9],
                "version": row[10],
            },
        )


SessionStatus = Literal["created", "active", "paused", "terminated", "archived"]


class SessionEvent(BaseModel):
    """One event of a conversation, as appended."""

    model_config = ConfigDict(frozen=True)

    id: str
    author: str
    invocation_id: str | None
    content: Any
    actions: dict[str, Any]
    state_delta: dict[str, Any]
    timestamp: datetime


class Session(BaseModel):
    """A session: its events and its state, merged across scopes.

    ``state`` holds the session's own keys (no prefix, or ``session:``) and the
    shared ``user:`` and ``app:`` keys; ``temp:`` keys are never kept.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    app_name: str
    user_id: str
    project_id: str | None
    status: SessionStatus
    state: dict[str, Any]
    metadata: dict[str, Any]
    events: tuple[SessionEvent, ...]
    event_count: int
    version: int
    created_at: datetime
    last_update_time: datetime


class SessionSummary(BaseModel):
    """A session as listed: who, which app, where in its life, how much."""

    model_config = ConfigDict(frozen=True)

    id: str
    app_name: str
    user_id: str
    project_id: str | None
    status: SessionStatus
    event_count: int
    created_at: datetime
    last_update_time: datetime


class SessionList(BaseModel):
    """A page of sessions and the cursor of the next page (None at the end)."""

    model_config = ConfigDict(frozen=True)

    sessions: tuple[SessionSummary, ...]
    next_cursor: str | None
