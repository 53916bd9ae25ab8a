"""The Document aggregate: one indexed file, one stream per (tenant, file path).

A document records what an indexer knows of a file: its title, type, content
hash, chunk count, embedding model and metadata, and where it stands in being
synced (``pending``, ``synced``, ``failed`` or ``stale``). Every change is an
event with its provenance (actor, reason); the events are sealed like a
memory's, with the tenant's key.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from mnemolog.domain.chain import GENESIS_HASH, digest_of, fold_redacted, new_salt
from mnemolog.domain.errors import NotFound, ValidationError
from mnemolog.domain.values import JSON, canonical_json

DOCUMENT_ID_NAMESPACE = UUID("3d0c9a8e-52f1-4b6e-8f3a-9e7d1c2b5a64")

SYNC_STATUSES = ("pending", "synced", "failed", "stale")
"""Where a document stands: never synced, synced, its last sync failed, or
changed (or declared out of date) since it was synced."""

MUTABLE_FIELDS = (
    "title",
    "document_type",
    "content_hash",
    "chunk_count",
    "embedding_model",
    "metadata",
)
"""What a registration may change."""


class IllegalSyncTransition(ValidationError):
    """A sync status change the document's state does not allow; nothing was
    written."""

    def __init__(self, current: str, wanted: str, why: str) -> None:
        super().__init__(
            "sync_status", f"a {current!r} document cannot become {wanted!r}: {why}"
        )
        self.current = current
        self.wanted = wanted


def status_after_revision(current: str, content_changed: bool) -> str:
    """A registration with new content makes a document that was ever synced
    (synced, failed or stale) ``stale``; a never-synced one stays ``pending``."""
    if content_changed and current != "pending":
        return "stale"
    return current


@lru_cache(maxsize=8192)
def _document_id(tenant: str, file_path: str) -> UUID:
    return uuid5(DOCUMENT_ID_NAMESPACE, canonical_json([tenant, file_path]).hex())


ERASED: dict[str, Any] = {
    "file_path": "",
    "title": "",
    "document_type": None,
    "content_hash": "",
    "chunk_count": 0,
    "embedding_model": None,
    "metadata": {},
    "sync_status": "pending",
    "last_synced_at": None,
    "error": None,
}
"""The state of a document whose events so far were erased."""


class Document(Aggregate):
    """A document's state, folded from its events."""

    deleted: bool = False
    """True after remove (until it is registered again)."""
    erased: bool = False
    """True when the events so far were erased (their key destroyed)."""

    @staticmethod
    def create_id(tenant: str, file_path: str) -> UUID:
        """The same (tenant, file path) always names the same stream."""
        return _document_id(tenant, file_path)

    class Event(Aggregate.Event):
        """Base of the document's events: provenance and the link to the
        previous one."""

        kind: ClassVar[str] = "event"

        actor: str | None
        reason: str | None
        prev_hash: str
        salt: str
        """Random; makes the commitment to the sealed fields unguessable."""

        def digest(self) -> str:
            """This event's hash as stored; the next event carries it as prev_hash."""
            return digest_of(self)

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Document), aggregate
            aggregate.head_hash = self.digest()
            self.change(aggregate)

        def change(self, document: Document) -> None:
            """What this kind of event does to the state."""

    class Registered(Event, Aggregate.Created):
        """A new document, pending its first sync."""

        kind: ClassVar[str] = "registered"

        tenant: str
        file_path: str
        title: str
        document_type: str | None
        content_hash: str
        chunk_count: int
        embedding_model: str | None
        metadata: dict[str, JSON]

    class Revised(Event):
        """A registration that changed some fields; with new content, a
        document ever synced goes ``stale``."""

        kind: ClassVar[str] = "revised"

        changes: dict[str, JSON]
        sync_status: str

        def change(self, document: Document) -> None:
            for name, new in self.changes.items():
                if name in MUTABLE_FIELDS:
                    setattr(document, name, new)
            document.set_status(self.sync_status, error=document.error)

    class Synced(Event):
        """The document's content (``content_hash``) was synced, in
        ``chunk_count`` chunks embedded by ``embedding_model``."""

        kind: ClassVar[str] = "synced"

        content_hash: str
        chunk_count: int
        embedding_model: str | None

        def change(self, document: Document) -> None:
            document.chunk_count = self.chunk_count
            document.embedding_model = self.embedding_model
            document.last_synced_at = self.timestamp
            document.set_status("synced")

    class SyncFailed(Event):
        """A sync of the document failed with ``error``."""

        kind: ClassVar[str] = "failed"

        error: str

        def change(self, document: Document) -> None:
            document.set_status("failed", error=self.error)

    class MarkedStale(Event):
        """The synced copy was declared out of date."""

        kind: ClassVar[str] = "marked_stale"

        def change(self, document: Document) -> None:
            document.set_status("stale")

    class Removed(Event):
        """Hidden from every read; the history stays."""

        kind: ClassVar[str] = "removed"

        def change(self, document: Document) -> None:
            document.deleted = True

    class Reregistered(Event):
        """A document registered again after it was removed or erased: it
        starts anew, pending, under a fresh key."""

        kind: ClassVar[str] = "reregistered"
        fresh_key: ClassVar[bool] = True

        tenant: str
        file_path: str
        title: str
        document_type: str | None
        content_hash: str
        chunk_count: int
        embedding_model: str | None
        metadata: dict[str, JSON]

        def change(self, document: Document) -> None:
            document.tenant = self.tenant
            document.file_path = self.file_path
            for name in MUTABLE_FIELDS:
                setattr(document, name, getattr(self, name))
            document.last_synced_at = None
            document.set_status("pending")
            document.deleted = document.erased = False
            document._created_on = self.timestamp

    class Redacted(Event):
        """An event whose sealed part cannot be read: its key was destroyed.

        The mapper gives one in place of any erased event of a document; it
        keeps the stream's versions and hash chain and blanks the state.
        """

        kind: ClassVar[str] = "redacted"

        def mutate(self, aggregate: Any) -> Any:
            return fold_redacted(self, aggregate, Document, ERASED)

    def __init__(
        self,
        *,
        tenant: str,
        file_path: str,
        title: str,
        document_type: str | None,
        content_hash: str,
        chunk_count: int,
        embedding_model: str | None,
        metadata: dict[str, JSON],
    ) -> None:
        self.tenant = tenant
        """The isolation boundary."""
        self.file_path = file_path
        """The file's path: the document's key in its tenant."""
        self.title = title
        """A human title."""
        self.document_type = document_type
        """A free-form kind (``markdown``, ``pdf``, ...), or None."""
        self.content_hash = content_hash
        """Lowercase hex digest of the file's content (e.g. SHA-256)."""
        self.chunk_count = chunk_count
        """Chunks the content was split into (>= 0)."""
        self.embedding_model = embedding_model
        """The model that embeds the chunks, or None."""
        self.metadata: dict[str, JSON] = dict(metadata)
        """A JSON object."""
        self.sync_status = "pending"
        """One of SYNC_STATUSES."""
        self.last_synced_at: datetime | None = None
        """When it was last synced, or None."""
        self.error: str | None = None
        """The error of the failed sync; None unless ``failed``."""
        self.head_hash = GENESIS_HASH
        """Digest of the latest event; the next event's prev_hash."""

    def set_status(self, status: str, *, error: str | None = None) -> None:
        """Moves to ``status``; the error is kept only while ``failed``."""
        self.sync_status = status
        self.error = error if status == "failed" else None

    @classmethod
    def register(
        cls,
        *,
        tenant: str,
        file_path: str,
        title: str,
        document_type: str | None,
        content_hash: str,
        chunk_count: int,
        embedding_model: str | None,
        metadata: dict[str, JSON],
        actor: str | None = None,
        reason: str | None = None,
    ) -> Document:
        """Registers a new document, pending; triggers Registered."""
        return cls._create(
            cls.Registered,
            id=cls.create_id(tenant, file_path),
            tenant=tenant,
            file_path=file_path,
            title=title,
            document_type=document_type,
            content_hash=content_hash,
            chunk_count=chunk_count,
            embedding_model=embedding_model,
            metadata=dict(metadata),
            actor=actor,
            reason=reason,
            prev_hash=GENESIS_HASH,
            salt=new_salt(),
        )

    def reregister(
        self, fields: dict[str, JSON], *, actor: str | None, reason: str | None
    ) -> None:
        """Registers a removed or erased document anew (``fields`` as
        Reregistered holds them, tenant and file path included)."""
        if not self.deleted:
            raise ValidationError("file_path", f"{self.file_path!r} is registered")
        self._trigger(self.Reregistered, actor=actor, reason=reason, **fields)

    def revise(
        self, fields: dict[str, JSON], *, actor: str | None, reason: str | None
    ) -> bool:
        """Applies what differs of ``fields`` (a subset of MUTABLE_FIELDS);
        triggers Revised. False, and nothing triggered, when nothing differs."""
        self._live()
        # Compared as JSON: in Python 1 == 1.0 == True, in metadata they differ.
        diff = {
            name: new
            for name, new in fields.items()
            if name in MUTABLE_FIELDS
            and canonical_json(getattr(self, name)) != canonical_json(new)
        }
        if not diff:
            return False
        status = status_after_revision(self.sync_status, "content_hash" in diff)
        self._trigger(
            self.Revised, actor=actor, reason=reason, changes=diff, sync_status=status
        )
        return True

    def mark_synced(
        self,
        *,
        chunk_count: int | None = None,
        embedding_model: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Records a sync of the current content; triggers Synced. Chunk count
        and model stay as they are unless given."""
        self._live()
        self._trigger(
            self.Synced,
            actor=actor,
            reason=reason,
            content_hash=self.content_hash,
            chunk_count=self.chunk_count if chunk_count is None else chunk_count,
            embedding_model=(
                self.embedding_model if embedding_model is None else embedding_model
            ),
        )

    def mark_failed(
        self, error: str, *, actor: str | None = None, reason: str | None = None
    ) -> None:
        """Records a failed sync; triggers SyncFailed."""
        self._live()
        self._trigger(self.SyncFailed, actor=actor, reason=reason, error=error)

    def mark_stale(
        self, *, actor: str | None = None, reason: str | None = None
    ) -> bool:
        """Declares the synced copy out of date; triggers MarkedStale. False
        if it is stale already; a never-synced (pending) document cannot be."""
        self._live()
        if self.sync_status == "stale":
            return False
        if self.sync_status == "pending":
            raise IllegalSyncTransition(
                "pending", "stale", "it was never synced (sync it, or fail it, first)"
            )
        self._trigger(self.MarkedStale, actor=actor, reason=reason)
        return True

    def remove(self, *, actor: str | None = None, reason: str | None = None) -> None:
        """Removes the document from reads; triggers Removed."""
        self._live()
        self._trigger(self.Removed, actor=actor, reason=reason)

    def _live(self) -> None:
        if self.deleted:
            raise NotFound(f"no document {self.file_path!r}")

    def _trigger(self, event_class: type[Document.Event], **fields: Any) -> None:
        # Time never runs backwards inside one stream.
        now = event_class.create_timestamp()
        self.trigger_event(
            event_class,
            timestamp=max(now, self.modified_on),
            prev_hash=self.head_hash,
            salt=new_salt(),
            **fields,
        )
