"""The document index: files an indexer tracks, their content hashes and
where each stands in being synced, as event streams.

``store.documents`` is the index of the store's tenant. Each document is one
stream keyed by (tenant, file path); every change is an event with its actor
and reason, and a read model answers reads, listings and hash lookups.

Choices where the seed (``document_index``) is silent:

- ``register`` creates a document or updates the one at that path. Arguments
  left out (None) keep what is stored; a new document gets ``chunk_count=1``
  and empty metadata. A new content hash makes a document that was ever
  synced (``synced``, ``failed`` or ``stale``) ``stale``; a never-synced one
  stays ``pending``. Registering what is stored writes nothing.
- Content hashes are hex digests of 32 to 128 digits (SHA-256: 64), stored
  in lowercase; ``get_by_hash`` takes either case.
- ``error`` is kept only while a document is ``failed``; ``last_synced_at``
  is the time of the last ``mark_synced`` and survives going stale.
- ``mark_stale`` of a stale document writes nothing; of a ``pending`` one
  (never synced) it raises IllegalSyncTransition (a ValidationError).
- ``remove`` hides a document from get, list and hash lookups; its history
  stays. Registering the path again starts it anew, ``pending``.
- Access is checked against the namespace ``documents`` (a Policy grant names
  it as ``namespaces=["documents"]``; ``""`` covers it too): ``read`` for
  get, list, get_by_hash and history, ``write`` for register and the marks,
  ``delete`` for remove. An ``acl_check`` hook gets the file path as the key.
- The whole-tenant erasure destroys the tenant's documents (they are sealed
  with the tenant's key); a subject's erasure does not touch them.
- Events are sealed whole. In a store encrypted at rest the read model holds
  title, metadata and error as ciphertext; path, type, content hash, model
  and status stay readable there, as a memory's namespace and key do, since
  the indexes look them up.
- Paths are kept exactly as given (no normalisation), 1 to 4096 characters
  without control characters; ``list`` pages by a cursor on (update time,
  id), so a page never repeats a row of an earlier one (a document updated
  meanwhile moves ahead of the pages already read).
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

import orjson
from eventsourcing.persistence import IntegrityError
from pydantic import BaseModel, ConfigDict, Field

from mnemolog.domain.document import SYNC_STATUSES
from mnemolog.domain.document import Document as DocumentAggregate
from mnemolog.domain.errors import NotFound, ValidationError, VersionConflict
from mnemolog.domain.values import (
    JSON,
    canonical_json,
    check_metadata,
    check_optional_text,
    check_tenant,
    check_text,
)
from mnemolog.inputs import bounded_int
from mnemolog.models import uuid_from_hex
from mnemolog.projections.current_state import from_micros, to_micros
from mnemolog.projections.documents import (
    DocumentQuery,
    get_document_sql,
    list_documents_sql,
)

if TYPE_CHECKING:
    from mnemolog.store import MemoryStore

DOCUMENTS_NAMESPACE = "documents"
"""What the access policy checks document calls against."""

MAX_PATH = 4096
MAX_TITLE = 1024
MAX_ERROR = 4096
MAX_METADATA_BYTES = 65_536
MAX_CHUNKS = 2**31 - 1
MAX_LIST = 1000

SyncStatus = Literal["pending", "synced", "failed", "stale"]
DocumentChange = Literal[
    "registered",
    "revised",
    "synced",
    "failed",
    "marked_stale",
    "removed",
    "reregistered",
]

_HEX = re.compile(r"(?:[0-9a-fA-F]{2}){16,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_SPACE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CURSOR = re.compile(r"(\d{1,19})\.([0-9a-f]{32})")


class Document(BaseModel):
    """A document of the index as it stands now."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    tenant: str
    file_path: str = Field(min_length=1, max_length=MAX_PATH)
    title: str = Field(min_length=1, max_length=MAX_TITLE)
    document_type: str | None
    content_hash: str = Field(pattern=r"^(?:[0-9a-f]{2}){16,64}$")
    chunk_count: int = Field(ge=0, le=MAX_CHUNKS)
    embedding_model: str | None
    metadata: dict[str, Any]
    sync_status: SyncStatus
    last_synced_at: datetime | None
    error: str | None
    version: int = Field(ge=1)
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_aggregate(cls, document: DocumentAggregate) -> Document:
        """The public view of a folded aggregate."""
        return cls(
            id=document.id,
            tenant=document.tenant,
            file_path=document.file_path,
            title=document.title,
            document_type=document.document_type,
            content_hash=document.content_hash,
            chunk_count=document.chunk_count,
            embedding_model=document.embedding_model,
            metadata=orjson.loads(orjson.dumps(document.metadata)),
            sync_status=document.sync_status,  # type: ignore[arg-type]
            last_synced_at=document.last_synced_at,
            error=document.error,
            version=document.version,
            created_at=document.created_on,
            updated_at=document.modified_on,
        )

    @classmethod
    def from_row(cls, row: Any, opener: Callable[[str], str] | None = None) -> Document:
        """The public view of a read-model row (DOCUMENT_COLUMNS order);
        ``opener`` opens sealed columns (a store encrypted at rest)."""
        open_ = opener or (lambda text: text)
        return cls(
            id=uuid_from_hex(row[0]),
            tenant=row[1],
            file_path=row[2],
            title=open_(row[3]),
            document_type=row[4],
            content_hash=row[5],
            chunk_count=row[6],
            embedding_model=row[7],
            metadata=orjson.loads(open_(row[8])),
            sync_status=row[9],
            last_synced_at=from_micros(row[10]) if row[10] is not None else None,
            error=open_(row[11]) if row[11] is not None else None,
            version=row[12],
            created_at=from_micros(row[13]),
            updated_at=from_micros(row[14]),
        )


class DocumentEvent(BaseModel):
    """One change in a document's history, with the document right after it."""

    model_config = ConfigDict(frozen=True)

    document_id: UUID
    version: int
    kind: DocumentChange
    at: datetime
    actor: str | None
    reason: str | None
    changed: tuple[str, ...]
    """The fields the change set."""
    document: Document
    removed: bool
    """True when the document is removed after this change."""
    prev_hash: str
    hash: str


class DocumentList(BaseModel):
    """A page of documents and the cursor of the next page (None at the end)."""

    model_config = ConfigDict(frozen=True)

    documents: tuple[Document, ...]
    next_cursor: str | None


_REGISTERED_FIELDS = (
    "title",
    "document_type",
    "content_hash",
    "chunk_count",
    "embedding_model",
    "metadata",
    "sync_status",
)


class DocumentService:
    """The document index of one store's tenant. Thread-safe, like the store.

    See the module's docstring for the rules where the seed is silent.
    """

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    # ---- writes --------------------------------------------------------------

    def register(
        self,
        file_path: str,
        *,
        title: str,
        content_hash: str,
        document_type: str | None = None,
        chunk_count: int | None = None,
        embedding_model: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        actor: str | None = None,
        reason: str | None = None,
    ) -> Document:
        """Registers the file at ``file_path``, or updates its document.

        A new document is ``pending``. On an existing one, what is given
        replaces what is stored and what is None stays; new content makes a
        document that was ever synced ``stale`` (a never-synced one stays
        ``pending``). Registering what is stored writes nothing and returns
        the document as it is. A removed document starts anew.
        """
        path = check_file_path(file_path)
        fields: dict[str, JSON] = {
            "title": check_title(title),
            "content_hash": check_content_hash(content_hash),
        }
        if document_type is not None:
            fields["document_type"] = check_document_type(document_type)
        if chunk_count is not None:
            fields["chunk_count"] = check_chunk_count(chunk_count)
        if embedding_model is not None:
            fields["embedding_model"] = check_embedding_model(embedding_model)
        if metadata is not None:
            fields["metadata"] = check_document_metadata(metadata)
        who, why = _provenance(actor, reason)
        tenant = self._check("write", path)

        def decide(document: DocumentAggregate | None) -> DocumentAggregate:
            new = {
                "document_type": None,
                "chunk_count": 1,
                "embedding_model": None,
                "metadata": {},
                **fields,
            }
            if document is None:
                return DocumentAggregate.register(
                    tenant=tenant, file_path=path, actor=who, reason=why, **new
                )
            if document.deleted:
                document.reregister(
                    {"tenant": tenant, "file_path": path, **new}, actor=who, reason=why
                )
            else:
                document.revise(fields, actor=who, reason=why)
            return document

        return Document.from_aggregate(self._write(tenant, path, decide))

    def mark_synced(
        self,
        file_path: str,
        *,
        chunk_count: int | None = None,
        embedding_model: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
    ) -> Document:
        """Records that the document's current content was synced (now); chunk
        count and embedding model change when given. Clears any error."""
        path = check_file_path(file_path)
        chunks = check_chunk_count(chunk_count) if chunk_count is not None else None
        model = (
            check_embedding_model(embedding_model)
            if embedding_model is not None
            else None
        )
        who, why = _provenance(actor, reason)
        tenant = self._check("write", path)

        def decide(document: DocumentAggregate | None) -> DocumentAggregate:
            document = _existing(document, path)
            document.mark_synced(
                chunk_count=chunks, embedding_model=model, actor=who, reason=why
            )
            return document

        return Document.from_aggregate(self._write(tenant, path, decide))

    def mark_failed(
        self,
        file_path: str,
        *,
        error: str,
        actor: str | None = None,
        reason: str | None = None,
    ) -> Document:
        """Records that a sync of the document failed with ``error``."""
        path = check_file_path(file_path)
        message = check_error(error)
        who, why = _provenance(actor, reason)
        tenant = self._check("write", path)

        def decide(document: DocumentAggregate | None) -> DocumentAggregate:
            document = _existing(document, path)
            document.mark_failed(message, actor=who, reason=why)
            return document

        return Document.from_aggregate(self._write(tenant, path, decide))

    def mark_stale(
        self, file_path: str, *, actor: str | None = None, reason: str | None = None
    ) -> Document:
        """Declares the synced copy out of date. A stale document stays as it
        is; a pending one (never synced) raises IllegalSyncTransition."""
        path = check_file_path(file_path)
        who, why = _provenance(actor, reason)
        tenant = self._check("write", path)

        def decide(document: DocumentAggregate | None) -> DocumentAggregate:
            document = _existing(document, path)
            document.mark_stale(actor=who, reason=why)
            return document

        return Document.from_aggregate(self._write(tenant, path, decide))

    def remove(
        self, file_path: str, *, actor: str | None = None, reason: str | None = None
    ) -> None:
        """Removes the document: get, list and get_by_hash no longer find it;
        its history stays. Removing an absent or removed one raises NotFound."""
        path = check_file_path(file_path)
        who, why = _provenance(actor, reason)
        tenant = self._check("delete", path)

        def decide(document: DocumentAggregate | None) -> DocumentAggregate:
            document = _existing(document, path)
            document.remove(actor=who, reason=why)
            return document

        self._write(tenant, path, decide)

    # ---- reads ---------------------------------------------------------------

    def get(self, file_path: str) -> Document | None:
        """The document at ``file_path``, or None."""
        path = check_file_path(file_path)
        tenant = self._check("read", path)
        store = self._store
        row = store._recorder.fetch_one(
            get_document_sql(store._dialect),
            {"b_id": DocumentAggregate.create_id(tenant, path).hex, "tenant": tenant},
        )
        return Document.from_row(row, store._open) if row is not None else None

    def get_by_hash(
        self, content_hash: str, *, limit: int = 100
    ) -> builtins.list[Document]:
        """The documents whose content has this hash (either case), newest
        update first."""
        digest = check_content_hash(content_hash)
        return self._page(
            content_hash=digest, limit=bounded_int(limit, "limit", 1, MAX_LIST)
        )[0]

    def list(
        self,
        *,
        sync_status: str | None = None,
        document_type: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> DocumentList:
        """Documents of this tenant, newest update first, a page at a time;
        ``cursor`` is the previous page's ``next_cursor``."""
        if sync_status is not None and sync_status not in SYNC_STATUSES:
            raise ValidationError(
                "sync_status", f"must be one of {', '.join(SYNC_STATUSES)}"
            )
        kind = check_document_type(document_type) if document_type is not None else None
        page, more = self._page(
            sync_status=sync_status,
            document_type=kind,
            limit=bounded_int(limit, "limit", 1, MAX_LIST),
            after=_check_cursor(cursor) if cursor is not None else None,
        )
        next_cursor = None
        if more and page:
            last = page[-1]
            next_cursor = f"{to_micros(last.updated_at)}.{last.id.hex}"
        return DocumentList(documents=tuple(page), next_cursor=next_cursor)

    def history(self, file_path: str) -> builtins.list[DocumentEvent]:
        """Every change of the document, oldest first, each with the document
        right after it (removed ones too). Erased changes are not listed."""
        path = check_file_path(file_path)
        tenant = self._check("read", path)
        stream = DocumentAggregate.create_id(tenant, path)
        store = self._store
        store._keyring.sync()
        changes: builtins.list[DocumentEvent] = []
        document: DocumentAggregate | None = None
        for stored in store._recorder.select_events(stream):
            event = store._app.mapper.to_domain_event(stored)
            assert isinstance(event, DocumentAggregate.Event)
            status = document.sync_status if document is not None else None
            document = event.mutate(document)
            assert document is not None
            if not document.erased:
                changes.append(_change(event, document, status))
        return changes

    # ---- internals -----------------------------------------------------------

    def _check(self, action: str, path: str) -> str:
        """This view's tenant, once the caller may ``action`` the document."""
        store = self._store
        tenant = store._tenant(None)
        store._access.check(action, tenant, DOCUMENTS_NAMESPACE, path)
        return tenant

    def _page(
        self,
        *,
        limit: int,
        sync_status: str | None = None,
        document_type: str | None = None,
        content_hash: str | None = None,
        after: tuple[int, str] | None = None,
    ) -> tuple[builtins.list[Document], bool]:
        store = self._store
        tenant = store._allow("read", None, DOCUMENTS_NAMESPACE)
        query = DocumentQuery(
            tenant=tenant,
            sync_status=sync_status,
            document_type=document_type,
            content_hash=content_hash,
            after=after,
            limit=limit + 1,
        )
        sql, params = list_documents_sql(query, store._dialect)
        rows = store._recorder.fetch_all(sql, params)
        page = [Document.from_row(row, store._open) for row in rows[:limit]]
        return page, len(rows) > limit

    def _write(
        self,
        tenant: str,
        path: str,
        decide: Callable[[DocumentAggregate | None], DocumentAggregate],
    ) -> DocumentAggregate:
        """Loads the document, runs ``decide`` and saves its events; a writer
        that lost a race (or met an erasure) retries on the new state."""
        store = self._store
        stream = DocumentAggregate.create_id(tenant, path)
        for _attempt in range(store.settings.write_retries + 1):
            store._keyring.sync()
            folded = store._fold([stream]).get(stream)
            assert folded is None or isinstance(folded, DocumentAggregate)
            document = decide(folded)
            if document.pending_events:
                try:
                    store._app.save(document)
                except IntegrityError:
                    continue
            return document
        raise VersionConflict(
            f"document {path!r}: still contended after "
            f"{store.settings.write_retries} retries",
            expected=-1,
            actual=-1,
        )


# ---- checks ------------------------------------------------------------------


def check_file_path(file_path: object) -> str:
    """A file path: 1 to 4096 characters, not blank, no NUL or other control
    characters. Kept as given (no normalisation): it is the document's key."""
    if not isinstance(file_path, str):
        raise ValidationError("file_path", "must be a string")
    if not file_path.strip():
        raise ValidationError("file_path", "must not be empty or blank")
    if len(file_path) > MAX_PATH:
        raise ValidationError("file_path", f"must be at most {MAX_PATH} characters")
    if "\x00" in file_path:
        raise ValidationError("file_path", "must not contain NUL characters")
    if _CONTROL.search(file_path):
        raise ValidationError("file_path", "must not contain control characters")
    check_text(file_path, "file_path")
    return file_path


def check_title(title: object) -> str:
    """A title: 1 to 1024 characters on one line."""
    if not isinstance(title, str) or not title.strip():
        raise ValidationError("title", "must be a non-blank string")
    checked = check_optional_text(title, "title", max_length=MAX_TITLE)
    assert checked is not None
    return checked


def check_content_hash(content_hash: object) -> str:
    """A hex digest of 32 to 128 digits (SHA-256: 64), returned in lowercase."""
    if not isinstance(content_hash, str) or not _HEX.fullmatch(content_hash):
        raise ValidationError(
            "content_hash",
            "must be a hex digest of 32 to 128 digits (SHA-256 gives 64)",
        )
    return content_hash.lower()


def check_document_type(document_type: object) -> str:
    """A document type: 1 to 128 characters without control characters."""
    if not isinstance(document_type, str) or not document_type:
        raise ValidationError("document_type", "must be a non-empty string (or None)")
    checked = check_optional_text(document_type, "document_type", max_length=128)
    assert checked is not None
    return checked


def check_embedding_model(embedding_model: object) -> str:
    """A model name: 1 to 256 characters without control characters."""
    if not isinstance(embedding_model, str) or not embedding_model:
        raise ValidationError("embedding_model", "must be a non-empty string (or None)")
    checked = check_optional_text(embedding_model, "embedding_model")
    assert checked is not None
    return checked


def check_chunk_count(chunk_count: object) -> int:
    """A chunk count: an integer >= 0."""
    return bounded_int(chunk_count, "chunk_count", 0, MAX_CHUNKS)


def check_document_metadata(metadata: object) -> dict[str, JSON]:
    """Metadata: a JSON object (as a memory's), of at most 64 KiB as JSON."""
    checked = check_metadata(metadata)
    if len(canonical_json(checked)) > MAX_METADATA_BYTES:
        raise ValidationError(
            "metadata", f"must encode to at most {MAX_METADATA_BYTES} bytes of JSON"
        )
    return checked


def check_error(error: object) -> str:
    """An error message: 1 to 4096 characters; lines and tabs allowed."""
    if not isinstance(error, str) or not error.strip():
        raise ValidationError("error", "must be a non-blank string")
    if len(error) > MAX_ERROR:
        raise ValidationError("error", f"must be at most {MAX_ERROR} characters")
    if _CONTROL_BUT_SPACE.search(error):
        raise ValidationError(
            "error", "must not contain control characters (but newlines and tabs)"
        )
    check_text(error, "error")
    return error


def check_imported(event: DocumentAggregate.Event) -> None:
    """A document event from an export as the service would have written it;
    ValidationError naming the field otherwise."""
    if isinstance(event, DocumentAggregate.Redacted):
        return
    _provenance(event.actor, event.reason)
    if isinstance(event, DocumentAggregate.Registered | DocumentAggregate.Reregistered):
        check_tenant(event.tenant)
        check_file_path(event.file_path)
        _check_fields(vars(event))
    elif isinstance(event, DocumentAggregate.Revised):
        _check_fields(event.changes)
        if event.sync_status not in SYNC_STATUSES:
            raise ValidationError(
                "sync_status", f"must be one of {', '.join(SYNC_STATUSES)}"
            )
    elif isinstance(event, DocumentAggregate.Synced):
        _check_fields(
            {
                "content_hash": event.content_hash,
                "chunk_count": event.chunk_count,
                "embedding_model": event.embedding_model,
            }
        )
    elif isinstance(event, DocumentAggregate.SyncFailed):
        check_error(event.error)


_FIELD_CHECKS: dict[str, Callable[[object], object]] = {
    "title": check_title,
    "content_hash": check_content_hash,
    "chunk_count": check_chunk_count,
    "metadata": check_document_metadata,
    "document_type": lambda v: v if v is None else check_document_type(v),
    "embedding_model": lambda v: v if v is None else check_embedding_model(v),
}


def _check_fields(fields: Mapping[str, Any]) -> None:
    for name, check in _FIELD_CHECKS.items():
        if name in fields and check(fields[name]) != fields[name]:
            raise ValidationError(name, "is not as the document index stores it")


def _provenance(actor: object, reason: object) -> tuple[str | None, str | None]:
    return (
        check_optional_text(actor, "actor"),
        check_optional_text(reason, "reason", max_length=4096),
    )


def _check_cursor(cursor: object) -> tuple[int, str]:
    found = _CURSOR.fullmatch(cursor) if isinstance(cursor, str) else None
    if found is None:
        raise ValidationError("cursor", "must be a cursor from a previous page")
    return int(found.group(1)), found.group(2)


def _existing(document: DocumentAggregate | None, path: str) -> DocumentAggregate:
    if document is None or document.deleted:
        raise NotFound(f"no document {path!r}")
    return document


def _change(
    event: DocumentAggregate.Event, after: DocumentAggregate, status: str | None
) -> DocumentEvent:
    """The event as a history entry; ``status`` is the sync status before it."""
    changed: tuple[str, ...]
    if isinstance(event, DocumentAggregate.Revised):
        moved = ("sync_status",) if event.sync_status != status else ()
        changed = (*sorted(event.changes), *moved)
    elif isinstance(event, DocumentAggregate.Synced):
        changed = ("chunk_count", "embedding_model", "last_synced_at", "sync_status")
    elif isinstance(event, DocumentAggregate.SyncFailed):
        changed = ("error", "sync_status")
    elif isinstance(event, DocumentAggregate.MarkedStale):
        changed = ("sync_status",)
    elif isinstance(event, DocumentAggregate.Removed):
        changed = ()
    else:
        changed = _REGISTERED_FIELDS
    return DocumentEvent(
        document_id=event.originator_id,
        version=event.originator_version,
        kind=event.kind,  # type: ignore[arg-type]
        at=event.timestamp,
        actor=event.actor,
        reason=event.reason,
        changed=changed,
        document=Document.from_aggregate(after),
        removed=after.deleted,
        prev_hash=event.prev_hash,
        hash=event.digest(),
    )
