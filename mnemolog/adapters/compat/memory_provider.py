"""Seed 001, the ``MemoryProvider`` protocol, on a mnemolog store.

``MemoryProvider`` is the protocol as the seed defines it (five coroutines:
``store``, ``retrieve``, ``get_by_id``, ``delete``, ``search``); ``Memory`` and
``MemoryType`` are its schema; :class:`MnemologMemoryProvider` implements it::

    provider = MnemologMemoryProvider("sqlite:///memories.db")
    memory_id = await provider.store(memory, {"tenant_id": "acme"})

Where the seed leaves a choice open, this is what the provider does:

- **Where a memory lives.** Each memory is a mnemolog memory in the namespace
  ``user:<user>:memories`` (:func:`user_namespace`) under a random key (32 hex
  digits). ``<user>`` is the ``user_id`` itself when it is a valid namespace
  segment (letters, digits, ``_ . @ + = -``, at most 128, not starting with
  ``=``); any other user id (with ``:``, spaces, ...) becomes ``=`` and the
  SHA-256 of it, so no user id can name or reach into another user's
  namespace. The value is ``content`` (so the full-text index and the
  embedder see it); the other fields of the schema sit in the metadata under
  ``memory`` and the schema's own metadata under ``metadata``::

      {"memory": {"user_id", "memory_type", "confidence", "source",
                  "raw_source", "extraction_version", "created_at",
                  "last_accessed_at", "expires_at", "provenance"},
       "metadata": {...the memory's own metadata...}}

  Datetimes are kept as ISO 8601 text and come back equal; ``provenance``
  must be JSON (a pydantic model is stored as its JSON dump and comes back
  as a dict). ``confidence`` is also the mnemolog confidence, and the
  mnemolog memory type is ``semantic`` for preferences and facts and
  ``episodic`` for decisions (the seed's type is the one in the metadata).
  The memory's data subject is ``<user>``, so ``store.erase(<user>)``
  crypto-erases every memory of that user.
- **Ids** are strings ``<tenant>/<user>/<key>``; treat them as opaque.
  ``get_by_id`` and ``delete`` take nothing but the id (as in the seed), so an
  id is a capability: its key is 128 random bits, which nobody can guess, and
  rewriting its tenant or user part names another memory, which does not
  exist. An id that is not of this shape, or of a tenant the provider is not
  allowed to read, is unknown: ``get_by_id`` gives None and ``delete`` False.
  An id that is not a string is a :class:`mnemolog.ValidationError`.
- **Users.** ``retrieve`` and ``search`` read only the user's namespace, and
  also require ``memory.user_id`` to equal ``user_id`` in the metadata: two
  independent filters, both exact. A ``user_id`` filter naming another user
  is refused.
- **Tenants.** The protocol's reads carry no context, so a provider reads in
  one tenant: ``tenant=`` (bound), or else the store's own tenant. A context
  may name a tenant as ``tenant_id`` or ``x-tenant-id`` (the seed's tenant
  provider reads that header): a bound provider refuses any other tenant
  with :class:`mnemolog.TenantMismatch`, and returns None/False for ids of
  other tenants; an unbound provider writes each memory in the tenant its
  context names and follows the tenant written in an id. A service for many
  tenants makes one bound provider per tenant on the same store (cheap).
- **retrieve** is semantic when the store has an embedder configured
  (``store.settings.embedder is not None``, see :attr:`semantic`): then it is
  mnemolog's hybrid ``retrieve`` (meaning and words, fused by rank). Without
  one it is ``text_search`` (BM25 on stemmed words of the content; any word
  matches). Both skip memories whose metadata says ``is_valid: False``, as
  the seed's local provider does.
- **search** filters (all exact, all optional; any other key is refused):
  ``memory_type`` (a ``MemoryType`` or its value), ``source``,
  ``min_confidence``, ``extraction_version``, ``metadata`` (a dict of the
  memory's metadata keys to a value, or to a mnemolog condition like
  ``{"$gte": 2}``; nested keys as ``a.b``), ``include_invalid`` (default
  False: memories with ``metadata["is_valid"] is False`` are left out), and
  ``user_id`` (only if it is the ``user_id`` argument). Results come oldest
  first, as the seed's local provider returns them.
- **delete** is a soft delete: the memory leaves ``get_by_id``, ``retrieve``
  and ``search`` but its history stays in the log (``store.history``). It
  returns True exactly once, even for racing callers (the delete is
  conditional on the version it read), and False for an absent, deleted or
  unknown id.
- **Audit and quotas.** ``store`` and ``delete`` are events of the log, so
  they are in ``store.audit(...)``: a store as ``created`` with actor
  ``context["actor"]`` (default: the user id, or ``<user>`` if the id is
  not valid provenance text), ``task_id`` from the context and
  source the memory's source (when it is short provenance text); a delete as
  ``deleted`` with the provider's ``actor`` and a reason. Reads write no
  event, so they are not in the audit timeline. A store opened with
  ``quotas=`` refuses a ``store`` past a quota with
  :class:`mnemolog.QuotaExceeded`; nothing is written.
- **Expiry.** ``expires_at`` is the memory's lifetime in the store: from
  then on ``get_by_id``, ``retrieve`` and ``search`` do not find it, and the
  store's sweeper records its expiry in the log. A naive ``expires_at`` is
  taken as UTC (the schema's own default, ``created_at``, is UTC).
- ``last_accessed_at`` is kept as given; reads do not update it (a read that
  wrote an event would make every read a write).
- ``Memory`` is a plain (mutable) pydantic model, as in the seed; bad fields
  raise pydantic's ``ValidationError``. Bad arguments to the provider raise
  :class:`mnemolog.ValidationError` naming the field (``memory.metadata.x``,
  ``filters.min_confidence``, ``limit``, ...). ``limit`` is 1 to 10,000.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

import mnemolog
from mnemolog.aio import AsyncMemoryStore
from mnemolog.domain.errors import (
    NotFound,
    TenantMismatch,
    ValidationError,
    VersionConflict,
)
from mnemolog.domain.values import (
    check_optional_text,
    check_tenant,
    check_unit_interval,
)
from mnemolog.inputs import bounded_int
from mnemolog.models import Memory as StoredMemory
from mnemolog.store import MAX_LIMIT, MemoryStore

# ---- the seed's schema ----------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


class MemoryType(str, Enum):  # noqa: UP042 - the seed's; str() is "MemoryType.FACT"
    """Types of memories that can be stored."""

    PREFERENCE = "preference"
    FACT = "fact"
    DECISION = "decision"


class Memory(BaseModel):
    """A memory record for persistent technical context."""

    user_id: str = Field(..., description="User who owns this memory")
    content: str = Field(..., description="The memory content")
    memory_type: MemoryType = Field(..., description="Type of memory")
    confidence: float = Field(
        default=1.0, ge=0.0, le=1.0, description="Extraction confidence (0.0-1.0)"
    )
    source: str = Field(..., description="Where this memory came from")
    raw_source: str | None = Field(
        default=None, description="Original text for re-extraction"
    )
    extraction_version: int = Field(
        default=1, description="Version for re-processing on prompt updates"
    )
    created_at: datetime = Field(
        default_factory=_now, description="When the memory was created"
    )
    last_accessed_at: datetime = Field(
        default_factory=_now, description="Last access time for decay scoring"
    )
    expires_at: datetime | None = Field(default=None, description="TTL expiration time")
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Flexible metadata (scope, project_id...)"
    )
    provenance: Any = Field(
        default=None, description="Source attribution (JSON, or a pydantic model)"
    )


# ---- the seed's protocol --------------------------------------------------------


@runtime_checkable
class MemoryProvider(Protocol):
    """Protocol for memory storage providers."""

    async def store(self, memory: Memory, context: dict[str, Any]) -> str:
        """Store a memory and return its ID."""
        ...

    async def retrieve(self, query: str, user_id: str, limit: int = 5) -> list[Memory]:
        """Retrieve memories matching a query for a user."""
        ...

    async def get_by_id(self, memory_id: str) -> Memory | None:
        """Get a specific memory by ID."""
        ...

    async def delete(self, memory_id: str) -> bool:
        """Delete a memory, return True if deleted."""
        ...

    async def search(
        self, user_id: str, filters: dict[str, Any], limit: int = 10
    ) -> list[Memory]:
        """Search memories with filters."""
        ...


# ---- where a memory lives -------------------------------------------------------

_LITERAL_USER = re.compile(r"[A-Za-z0-9_.@+-][A-Za-z0-9_.@+=-]{0,127}")
"""A user id that is a namespace segment as it is (hashed ones start with '=')."""
_USER_SEGMENT = re.compile(r"[A-Za-z0-9_.@+-][A-Za-z0-9_.@+=-]{0,127}|=[0-9a-f]{64}")
_KEY = re.compile(r"[0-9a-f]{32}")
TENANT_KEYS = ("tenant_id", "x-tenant-id")
"""The context keys that name a tenant."""
STORE_TYPES = {
    MemoryType.PREFERENCE: "semantic",
    MemoryType.FACT: "semantic",
    MemoryType.DECISION: "episodic",
}
"""The mnemolog memory type of each of the seed's types."""
FILTERS = (
    "memory_type",
    "source",
    "min_confidence",
    "extraction_version",
    "metadata",
    "include_invalid",
    "user_id",
)
_LIVE = {"metadata.is_valid": {"$ne": False}}
"""The seed's convention: a memory whose metadata says is_valid False is hidden."""


def _user_segment(user_id: object) -> str:
    if not isinstance(user_id, str):
        raise ValidationError("user_id", "must be a string")
    if _LITERAL_USER.fullmatch(user_id):
        return user_id
    try:
        encoded = user_id.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            "user_id", "must be valid Unicode (no lone surrogates)"
        ) from None
    return "=" + hashlib.sha256(encoded).hexdigest()


def user_namespace(user_id: str) -> str:
    """The mnemolog namespace that holds a user's memories."""
    return f"user:{_user_segment(user_id)}:memories"


def _aware(moment: datetime | None) -> datetime | None:
    """A lifetime for the store: naive times are taken as UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _stored_metadata(memory: Memory) -> dict[str, Any]:
    provenance = memory.provenance
    if isinstance(provenance, BaseModel):
        provenance = provenance.model_dump(mode="json")
    expires_at = memory.expires_at
    return {
        "memory": {
            "user_id": memory.user_id,
            "memory_type": memory.memory_type.value,
            "confidence": memory.confidence,
            "source": memory.source,
            "raw_source": memory.raw_source,
            "extraction_version": memory.extraction_version,
            "created_at": memory.created_at.isoformat(),
            "last_accessed_at": memory.last_accessed_at.isoformat(),
            "expires_at": expires_at.isoformat() if expires_at is not None else None,
            "provenance": provenance,
        },
        "metadata": memory.metadata,
    }


def _from_stored(stored: StoredMemory) -> Memory | None:
    """The seed's memory, or None for a mnemolog memory the provider did not
    write (its namespace is open to any writer of the store)."""
    fields = stored.metadata.get("memory")
    if not isinstance(stored.value, str) or not isinstance(fields, dict):
        return None
    if not isinstance(fields.get("user_id"), str):
        return None
    expires_at = fields.get("expires_at")
    return Memory(
        user_id=fields["user_id"],
        content=stored.value,
        memory_type=fields["memory_type"],
        confidence=stored.confidence,
        source=fields["source"],
        raw_source=fields.get("raw_source"),
        extraction_version=fields["extraction_version"],
        created_at=datetime.fromisoformat(fields["created_at"]),
        last_accessed_at=datetime.fromisoformat(fields["last_accessed_at"]),
        expires_at=datetime.fromisoformat(expires_at) if expires_at else None,
        metadata=stored.metadata.get("metadata", {}),
        provenance=fields.get("provenance"),
    )


def _schema_field(field: str) -> str:
    """The schema's name for a field of the mnemolog memory it was put as."""
    for stored, schema in (
        ("value", "memory.content"),
        ("metadata.metadata", "memory.metadata"),
        ("metadata.memory", "memory"),
    ):
        if field == stored or field.startswith(stored + "."):
            return schema + field[len(stored) :]
    return field


def _provenance_text(text: object) -> str | None:
    """``text`` if it can be provenance (short, no control characters)."""
    try:
        return check_optional_text(text, "provenance")
    except ValidationError:
        return None


def _context_text(context: Mapping[str, Any], name: str) -> str | None:
    """Provenance the context gives (``actor``, ``task_id``), checked."""
    return check_optional_text(context.get(name), f"context.{name}")


def _check_limit(limit: object) -> int:
    return bounded_int(limit, "limit", 1, MAX_LIMIT)


# ---- the provider ---------------------------------------------------------------


class MnemologMemoryProvider:
    """The ``MemoryProvider`` protocol on a mnemolog store (see the module's
    docstring for every choice it makes).

    ``store_or_url`` is a :class:`mnemolog.MemoryStore` (or its async twin),
    or a URL that the provider opens with ``settings`` (fields of
    :class:`mnemolog.Settings`, such as ``embedder`` or ``quotas``) and closes
    in :meth:`close`. ``tenant`` binds the provider to one tenant. ``actor``
    is who the log records as making deletes.
    """

    def __init__(
        self,
        store_or_url: MemoryStore | AsyncMemoryStore | str | None = None,
        /,
        *,
        tenant: str | None = None,
        actor: str | None = None,
        **settings: Any,
    ) -> None:
        if isinstance(store_or_url, AsyncMemoryStore):
            store_or_url = store_or_url.sync
        if isinstance(store_or_url, MemoryStore):
            if settings:
                names = ", ".join(sorted(settings))
                raise ValidationError(
                    "settings", f"apply only to a URL; the store is open ({names})"
                )
            opened, self._owned = store_or_url, False
        elif store_or_url is None or isinstance(store_or_url, str):
            opened, self._owned = mnemolog.open(store_or_url, **settings), True
        else:
            raise ValidationError(
                "store_or_url", "must be a MemoryStore, an AsyncMemoryStore or a URL"
            )
        self._actor = check_optional_text(actor, "actor")
        self._bound = tenant is not None
        try:
            self._log = opened.tenant(check_tenant(tenant)) if self._bound else opened
        except BaseException:
            if self._owned:
                opened.close()
            raise

    # ---- what it runs on -------------------------------------------------------

    @property
    def memory_store(self) -> MemoryStore:
        """The mnemolog store underneath (bound to the tenant, if given)."""
        return self._log

    @property
    def tenant_name(self) -> str:
        """The tenant that retrieve and search read."""
        return self._log.tenant_name

    @property
    def semantic(self) -> bool:
        """True when retrieve searches by meaning: the store has an embedder."""
        return self._log.settings.embedder is not None

    async def close(self) -> None:
        """Closes the store if the provider opened it from a URL."""
        if self._owned:
            await asyncio.to_thread(self._log.close)

    async def __aenter__(self) -> MnemologMemoryProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- the protocol -----------------------------------------------------------

    async def store(self, memory: Memory, context: dict[str, Any]) -> str:
        """Stores a memory in its user's namespace; returns its new id."""
        return await asyncio.to_thread(self._store, memory, context)

    async def retrieve(self, query: str, user_id: str, limit: int = 5) -> list[Memory]:
        """The user's memories that best match ``query``, best first."""
        return await asyncio.to_thread(self._retrieve, query, user_id, limit)

    async def get_by_id(self, memory_id: str) -> Memory | None:
        """The memory with this id; None if it is unknown or deleted."""
        return await asyncio.to_thread(self._get_by_id, memory_id)

    async def delete(self, memory_id: str) -> bool:
        """Soft-deletes the memory; True if this call deleted it."""
        return await asyncio.to_thread(self._delete, memory_id)

    async def search(
        self, user_id: str, filters: dict[str, Any], limit: int = 10
    ) -> list[Memory]:
        """The user's memories passing every filter, oldest first."""
        return await asyncio.to_thread(self._search, user_id, filters, limit)

    # ---- the work, in a worker thread ------------------------------------------

    def _store(self, memory: object, context: object) -> str:
        if not isinstance(memory, Memory):
            raise ValidationError("memory", "must be a Memory")
        if not isinstance(context, Mapping):
            raise ValidationError("context", "must be a dict")
        tenant = self._context_tenant(context) or self.tenant_name
        user = _user_segment(memory.user_id)
        key = uuid.uuid4().hex
        try:
            self._log.put(
                f"user:{user}:memories",
                key,
                memory.content,
                metadata=_stored_metadata(memory),
                memory_type=STORE_TYPES[memory.memory_type],
                confidence=memory.confidence,
                actor=_context_text(context, "actor")
                or _provenance_text(memory.user_id)
                or user,
                task_id=_context_text(context, "task_id"),
                source=_provenance_text(memory.source),
                expected_version=0,
                subject=user,
                expires_at=_aware(memory.expires_at),
                tenant=tenant,
            )
        except ValidationError as error:
            raise ValidationError(_schema_field(error.field), error.rule) from None
        return f"{tenant}/{user}/{key}"

    def _retrieve(self, query: object, user_id: str, limit: int) -> list[Memory]:
        if not isinstance(query, str):
            raise ValidationError("query", "must be a string")
        namespace = user_namespace(user_id)
        k = _check_limit(limit)
        where = {"memory.user_id": user_id, **_LIVE}
        if self.semantic:
            found = self._log.retrieve(
                query, k=k, namespace_prefix=namespace, where=where
            )
        else:
            found = self._log.text_search(
                query, k=k, namespace_prefix=namespace, where=where
            )
        return [m for m in (_from_stored(s.item) for s in found) if m is not None]

    def _get_by_id(self, memory_id: object) -> Memory | None:
        address = self._address(memory_id)
        if address is None:
            return None
        tenant, namespace, key = address
        try:
            stored = self._log.get(namespace, key, tenant=tenant)
        except TenantMismatch:
            return None
        return _from_stored(stored) if stored is not None else None

    def _delete(self, memory_id: object) -> bool:
        address = self._address(memory_id)
        if address is None:
            return False
        tenant, namespace, key = address
        for _attempt in range(self._log.settings.write_retries + 1):
            try:
                current = self._log.get(namespace, key, tenant=tenant)
            except TenantMismatch:
                return False
            if current is None or _from_stored(current) is None:
                return False
            try:
                self._log.delete(
                    namespace,
                    key,
                    expected_version=current.version,
                    actor=self._actor,
                    reason="deleted through the MemoryProvider protocol",
                    tenant=tenant,
                )
            except VersionConflict:
                continue  # changed since read: read again
            except NotFound:
                return False
            return True
        raise VersionConflict(
            f"{memory_id}: still contended after "
            f"{self._log.settings.write_retries} retries",
            expected=-1,
            actual=-1,
        )

    def _search(self, user_id: str, filters: object, limit: int) -> list[Memory]:
        namespace = user_namespace(user_id)
        where = self._where(user_id, filters)
        try:
            found = self._log.search(
                namespace_prefix=namespace,
                where=where,
                order_by="created_at",
                limit=_check_limit(limit),
            )
        except ValidationError as error:
            if error.field.startswith("where.metadata."):
                field = "filters." + error.field.removeprefix("where.")
                raise ValidationError(field, error.rule) from None
            raise
        return [m for m in map(_from_stored, found) if m is not None]

    # ---- internals --------------------------------------------------------------

    def _context_tenant(self, context: Mapping[str, Any]) -> str | None:
        """The tenant a context names (None: none), checked against a binding."""
        named = {k: context[k] for k in TENANT_KEYS if context.get(k) is not None}
        for key, tenant in named.items():
            try:
                check_tenant(tenant)
            except ValidationError as error:
                raise ValidationError(f"context.{key}", error.rule) from None
        if len(set(named.values())) > 1:
            raise ValidationError(
                "context", "tenant_id and x-tenant-id name different tenants"
            )
        tenant = next(iter(named.values()), None)
        if tenant is not None and self._bound and tenant != self.tenant_name:
            raise TenantMismatch(
                f"this provider is bound to tenant {self.tenant_name!r}; "
                f"the context names {tenant!r}"
            )
        return tenant

    def _address(self, memory_id: object) -> tuple[str, str, str] | None:
        """(tenant, namespace, key) of a well-formed id this provider may read."""
        if not isinstance(memory_id, str):
            raise ValidationError("memory_id", "must be a string")
        parts = memory_id.split("/")
        if len(parts) != 3:
            return None
        tenant, user, key = parts
        if not (_USER_SEGMENT.fullmatch(user) and _KEY.fullmatch(key)):
            return None
        try:
            check_tenant(tenant)
        except ValidationError:
            return None
        if self._bound and tenant != self.tenant_name:
            return None
        return tenant, f"user:{user}:memories", key

    @staticmethod
    def _where(user_id: str, filters: object) -> dict[str, Any]:
        """The metadata conditions of a search's filters, the user's first."""
        if not isinstance(filters, Mapping):
            raise ValidationError("filters", "must be a dict")
        where: dict[str, Any] = {"memory.user_id": user_id}
        for name, value in filters.items():
            field = f"filters.{name}"
            if name == "user_id":
                if value != user_id:
                    raise ValidationError(
                        field, "may only repeat the user_id argument (no other user)"
                    )
            elif name == "memory_type":
                try:
                    where["memory.memory_type"] = MemoryType(value).value
                except ValueError:
                    kinds = ", ".join(t.value for t in MemoryType)
                    raise ValidationError(field, f"must be one of {kinds}") from None
            elif name == "source":
                if not isinstance(value, str):
                    raise ValidationError(field, "must be a string")
                where["memory.source"] = value
            elif name == "min_confidence":
                where["memory.confidence"] = {"$gte": check_unit_interval(value, field)}
            elif name == "extraction_version":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValidationError(field, "must be an integer")
                where["memory.extraction_version"] = value
            elif name == "metadata":
                if not isinstance(value, Mapping):
                    raise ValidationError(field, "must be a dict of key to condition")
                for key, condition in value.items():
                    if not isinstance(key, str) or not key:
                        raise ValidationError(field, "keys must be non-empty strings")
                    where[f"metadata.{key}"] = condition
            elif name == "include_invalid":
                if not isinstance(value, bool):
                    raise ValidationError(field, "must be a bool")
            else:
                raise ValidationError(
                    field, f"is not a filter; use one of {', '.join(FILTERS)}"
                )
        if filters.get("include_invalid") is not True:
            where = {**_LIVE, **where}  # an is_valid condition of the caller's wins
        return where
