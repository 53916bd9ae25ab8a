"""The Memory aggregate: one stream of events per (tenant, namespace, key)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from mnemolog.domain.chain import GENESIS_HASH, digest_of, fold_redacted, new_salt
from mnemolog.domain.errors import NotFound
from mnemolog.domain.values import JSON, canonical_json

MEMORY_ID_NAMESPACE = UUID("6f1c2b1e-8a43-4f0e-9d7a-3c5e2a9b7d10")

MUTABLE_FIELDS = (
    "value",
    "content_hash",
    "tags",
    "metadata",
    "memory_type",
    "importance",
    "confidence",
    "embedding",
    "embedding_model",
    "expires_at",
)


@lru_cache(maxsize=8192)
def _memory_id(tenant: str, namespace: str, key: str) -> UUID:
    # A pure function of its arguments; cached because every read by key needs it.
    return uuid5(MEMORY_ID_NAMESPACE, canonical_json([tenant, namespace, key]).hex())


@dataclass(frozen=True)
class Provenance:
    """Who made a change, for which task, from where, and why."""

    actor: str | None = None
    task_id: str | None = None
    source: str | None = None
    reason: str | None = None

    def as_event_fields(self) -> dict[str, str | None]:
        """The provenance fields every event carries."""
        return {
            "actor": self.actor,
            "task_id": self.task_id,
            "source": self.source,
            "reason": self.reason,
        }


ERASED: dict[str, Any] = {
    "namespace": "",
    "key": "",
    "value": None,
    "content_hash": "",
    "memory_type": "",
    "tags": [],
    "metadata": {},
    "importance": 0.0,
    "confidence": 0.0,
    "embedding": None,
    "embedding_model": None,
    "subject": None,
    "expires_at": None,
    "created_by": None,
    "updated_by": None,
}
"""The state of a memory whose events so far were erased."""


class Memory(Aggregate):
    """A memory's state, folded from its events."""

    # Class-level defaults: snapshots taken before embeddings existed lack them.
    embedding: str | None = None
    """Base64 of little-endian float32 (see ``vectors.encode_vector``), or None."""
    embedding_model: str | None = None
    """The model that made the embedding, or the name the caller gave."""
    subject: str | None = None
    """The data subject whose key seals the memory's events (None: the tenant's)."""
    erased: bool = False
    """True when the events so far were erased (their key destroyed)."""
    expires_at: str | None = None
    """When the memory stops being visible (ISO 8601, UTC), or None: never."""

    @staticmethod
    def create_id(tenant: str, namespace: str, key: str) -> UUID:
        """The same (tenant, namespace, key) always names the same stream."""
        return _memory_id(tenant, namespace, key)

    class Event(Aggregate.Event):
        """Base of the memory's events: provenance and the link to the previous one."""

        kind: ClassVar[str] = "event"

        actor: str | None
        task_id: str | None
        source: str | None
        reason: str | None
        prev_hash: str
        salt: str
        """Random; makes the commitment to the sealed fields unguessable."""

        def digest(self) -> str:
            """This event's hash as stored; the next event carries it as prev_hash."""
            return digest_of(self)

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Memory), aggregate
            aggregate.head_hash = self.digest()
            aggregate.updated_by = self.actor
            self.change(aggregate)

        def change(self, memory: Memory) -> None:
            """What this kind of event does to the state."""

    class Created(Event, Aggregate.Created):
        """The first version of a memory."""

        kind: ClassVar[str] = "created"
        class_version: ClassVar[int] = 5
        subject_field: ClassVar[str] = "subject"

        tenant: str
        namespace: str
        key: str
        value: JSON
        content_hash: str
        memory_type: str
        tags: list[str]
        metadata: dict[str, JSON]
        importance: float
        confidence: float
        embedding: str | None
        embedding_model: str | None
        subject: str | None
        expires_at: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1 had no confidence; its memories were taken as certain."""
            state["confidence"] = 1.0

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            """Version 2 had no embeddings."""
            state["embedding"] = None
            state["embedding_model"] = None

        @staticmethod
        def upcast_v3_v4(state: dict[str, Any]) -> None:
            """Version 3 had no data subject: its memories are the tenant's."""
            state["subject"] = None

        @staticmethod
        def upcast_v4_v5(state: dict[str, Any]) -> None:
            """Version 4 had no lifetimes: its memories never expire."""
            state["expires_at"] = None

    class Updated(Event):
        """Some of value, content hash, tags, metadata, type, importance, confidence."""

        kind: ClassVar[str] = "updated"

        changes: dict[str, JSON]

        def change(self, memory: Memory) -> None:
            for name, new in self.changes.items():
                if name in MUTABLE_FIELDS:
                    setattr(memory, name, new)

    class Recreated(Event):
        """A memory written again after its earlier versions were erased."""

        kind: ClassVar[str] = "recreated"
        class_version: ClassVar[int] = 2
        subject_field: ClassVar[str] = "subject"
        fresh_key: ClassVar[bool] = True

        tenant: str
        namespace: str
        key: str
        subject: str | None
        value: JSON
        content_hash: str
        memory_type: str
        tags: list[str]
        metadata: dict[str, JSON]
        importance: float
        confidence: float
        embedding: str | None
        embedding_model: str | None
        expires_at: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1 had no lifetimes."""
            state["expires_at"] = None

        def change(self, memory: Memory) -> None:
            for name in ("tenant", "namespace", "key", "subject", *MUTABLE_FIELDS):
                setattr(memory, name, getattr(self, name))
            memory.deleted = memory.erased = False
            memory.created_by = self.actor
            memory._created_on = self.timestamp

    class Redacted(Event):
        """An event whose sealed part cannot be read: its key was destroyed.

        The mapper gives one in place of any erased event of a memory; it
        keeps the stream's versions and hash chain and blanks the state.
        """

        kind: ClassVar[str] = "redacted"

        def mutate(self, aggregate: Any) -> Any:
            return fold_redacted(self, aggregate, Memory, ERASED)

    class Deleted(Event):
        """A soft delete: hidden from reads, history kept."""

        kind: ClassVar[str] = "deleted"

        def change(self, memory: Memory) -> None:
            memory.deleted = True

    class Expired(Deleted):
        """Recorded by the sweeper once the memory's lifetime ended: from then
        on it is soft-deleted. (Reads hide it from ``expires_at`` on.)"""

        kind: ClassVar[str] = "expired"

    class Evicted(Deleted):
        """A working memory pushed out by newer ones over its namespace's cap."""

        kind: ClassVar[str] = "evicted"

    class Superseded(Deleted):
        """Merged into another memory by a consolidation; ``target`` names it."""

        kind: ClassVar[str] = "superseded"

        target: str
        """``namespace/key`` of the memory it was merged into."""

    class Consolidated(Updated):
        """The target of a consolidation: the merged state, and its sources."""

        kind: ClassVar[str] = "consolidated"

        sources: list[str]
        """``namespace/key`` of each memory merged into this one."""
        strategy: str

    class Restored(Event):
        """Undoes a soft delete."""

        kind: ClassVar[str] = "restored"

        def change(self, memory: Memory) -> None:
            memory.deleted = False

    def __init__(
        self,
        *,
        tenant: str,
        namespace: str,
        key: str,
        value: JSON,
        content_hash: str,
        memory_type: str,
        tags: list[str],
        metadata: dict[str, JSON],
        importance: float,
        confidence: float,
        actor: str | None,
        embedding: str | None = None,
        embedding_model: str | None = None,
        subject: str | None = None,
        expires_at: str | None = None,
    ) -> None:
        self.tenant = tenant
        """The isolation boundary the memory lives in."""
        self.namespace = namespace
        """Its namespace, like ``user:alice:preferences``."""
        self.key = key
        """Its key inside the namespace."""
        self.value: JSON = value
        """The value in wire form (see ``values.encode_value``)."""
        self.content_hash = content_hash
        """SHA-256 of the canonical JSON of the value."""
        self.memory_type = memory_type
        """semantic, episodic, procedural, working, or a configured other."""
        self.tags: list[str] = tags
        """Sorted, unique tags."""
        self.metadata: dict[str, JSON] = metadata
        """A JSON object."""
        self.importance = importance
        """In [0, 1]."""
        self.confidence = confidence
        """In [0, 1]."""
        self.embedding = embedding
        self.embedding_model = embedding_model
        self.subject = subject
        self.expires_at = expires_at
        self.deleted = False
        """True after a soft delete."""
        self.created_by = actor
        """The actor of the first version."""
        self.updated_by = actor
        """The actor of the latest version."""
        self.head_hash = GENESIS_HASH
        """Digest of the latest event; the next event's prev_hash."""

    @classmethod
    def start(
        cls,
        *,
        tenant: str,
        namespace: str,
        key: str,
        value: JSON,
        content_hash: str,
        memory_type: str,
        tags: list[str],
        metadata: dict[str, JSON],
        importance: float,
        confidence: float,
        provenance: Provenance,
        embedding: str | None = None,
        embedding_model: str | None = None,
        subject: str | None = None,
        expires_at: str | None = None,
    ) -> Memory:
        """Creates a memory; triggers Created."""
        return cls._create(
            cls.Created,
            id=cls.create_id(tenant, namespace, key),
            tenant=tenant,
            namespace=namespace,
            key=key,
            value=value,
            content_hash=content_hash,
            memory_type=memory_type,
            tags=tags,
            metadata=metadata,
            importance=importance,
            confidence=confidence,
            embedding=embedding,
            embedding_model=embedding_model,
            subject=subject,
            expires_at=expires_at,
            prev_hash=GENESIS_HASH,
            salt=new_salt(),
            **provenance.as_event_fields(),
        )

    def recreate(self, fields: dict[str, JSON], provenance: Provenance) -> None:
        """Writes an erased memory anew (``fields`` as Recreated holds them);
        triggers Recreated after its erased versions."""
        if not self.erased:
            raise NotFound(f"{self.namespace}/{self.key} is not erased")
        self._trigger(self.Recreated, provenance, **fields)

    def revise(
        self, changes: dict[str, JSON], provenance: Provenance, *, force: bool = False
    ) -> bool:
        """Applies what differs from the current state; triggers Updated.

        Returns False, and triggers nothing, when nothing would change and the
        caller did not force a new version.
        """
        if self.deleted:
            raise NotFound(f"{self.namespace}/{self.key} is deleted")
        if (
            "embedding" in changes
            and changes["embedding"] is None
            and changes.get("content_hash") == self.content_hash
        ):
            # No vector came with the value, but it is the value stored: the
            # vector still describes it. (A new value without one drops it.)
            changes = {
                k: v
                for k, v in changes.items()
                if k not in ("embedding", "embedding_model")
            }
        # Compared as JSON: in Python 1 == 1.0 == True, in a memory they differ.
        diff = {
            name: new
            for name, new in changes.items()
            if name in MUTABLE_FIELDS
            and canonical_json(getattr(self, name)) != canonical_json(new)
        }
        if not diff and not force:
            return False
        self._trigger(self.Updated, provenance, changes=diff)
        return True

    def delete(self, provenance: Provenance) -> bool:
        """Soft-deletes; triggers Deleted. False if it was already deleted."""
        if self.deleted:
            return False
        self._trigger(self.Deleted, provenance)
        return True

    def expired_by(self, moment: datetime) -> bool:
        """True when its lifetime ended at or before ``moment``."""
        return self.expires_at is not None and expiry(self.expires_at) <= moment

    def expire(self, provenance: Provenance, moment: datetime) -> bool:
        """Records the end of its lifetime; triggers Expired. False if it is
        deleted already or has not expired by ``moment``."""
        if self.deleted or not self.expired_by(moment):
            return False
        self._trigger(self.Expired, provenance)
        return True

    def evict(self, provenance: Provenance) -> bool:
        """Pushes it out of working memory; triggers Evicted."""
        if self.deleted:
            return False
        self._trigger(self.Evicted, provenance)
        return True

    def supersede(self, target: str, provenance: Provenance) -> None:
        """Marks it merged into ``target``; triggers Superseded."""
        if self.deleted:
            raise NotFound(f"{self.namespace}/{self.key} is deleted")
        self._trigger(self.Superseded, provenance, target=target)

    def consolidate(
        self,
        changes: dict[str, JSON],
        sources: list[str],
        strategy: str,
        provenance: Provenance,
    ) -> None:
        """Takes the merged state of ``sources``; triggers Consolidated (even
        when the state is unchanged: the merge itself is recorded)."""
        if self.deleted:
            raise NotFound(f"{self.namespace}/{self.key} is deleted")
        diff = {
            name: new
            for name, new in changes.items()
            if name in MUTABLE_FIELDS
            and canonical_json(getattr(self, name)) != canonical_json(new)
        }
        self._trigger(
            self.Consolidated,
            provenance,
            changes=diff,
            sources=sources,
            strategy=strategy,
        )

    def restore(self, provenance: Provenance) -> bool:
        """Undoes a soft delete; triggers Restored. False if it was not deleted."""
        if not self.deleted or self.erased:
            return False
        self._trigger(self.Restored, provenance)
        return True

    def _trigger(
        self, event_class: type[Memory.Event], provenance: Provenance, **fields: Any
    ) -> None:
        # Time never runs backwards inside one stream, so as_of reads are well defined.
        now = event_class.create_timestamp()
        self.trigger_event(
            event_class,
            timestamp=max(now, self.modified_on),
            prev_hash=self.head_hash,
            salt=new_salt(),
            **provenance.as_event_fields(),
            **fields,
        )


def expiry(text: str) -> datetime:
    """An ``expires_at`` as stored, as an aware datetime."""
    return datetime.fromisoformat(text)


def memory_at(events: list[Memory.Event], *, as_of: datetime) -> Memory | None:
    """Folds a stream up to and including the last event at or before ``as_of``."""
    memory: Memory | None = None
    for event in events:
        if event.timestamp > as_of:
            break
        memory = event.mutate(memory)
    return memory
