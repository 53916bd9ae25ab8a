"""The application service: validates input, runs commands on the Memory
aggregate, saves its events, and answers queries from the read models."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, get_args
from uuid import UUID

from eventsourcing.persistence import IntegrityError
from sqlalchemy import BigInteger, bindparam, false, select

from mnemolog.access import Access, Policy, Principal
from mnemolog.adapters.codec import ChainedMapper, SnapshotErased
from mnemolog.adapters.keyring import TABLES as KEY_TABLES
from mnemolog.adapters.keyring import Keyring, KeysChanged
from mnemolog.adapters.log import Log
from mnemolog.application import MemoryApplication, open_application
from mnemolog.config import Settings
from mnemolog.consolidation import (
    ConsolidatedGroup,
    Consolidation,
    check_strategy,
    find_groups,
    key_family,
    merged_fields,
)
from mnemolog.documents import DocumentService
from mnemolog.domain import memory as domain
from mnemolog.domain.erasure import Erasure
from mnemolog.domain.errors import (
    NotFound,
    TenantMismatch,
    ValidationError,
    VersionConflict,
)
from mnemolog.domain.memory import Provenance
from mnemolog.domain.values import (
    JSON,
    Namespace,
    canonical_json,
    check_key,
    check_memory_type,
    check_metadata,
    check_optional_text,
    check_subject,
    check_tags,
    check_tenant,
    check_unit_interval,
    encode_value,
    sha256_hex,
)
from mnemolog.domain.vectors import (
    check_fields,
    check_vector,
    encode_vector,
    text_of,
    unit_vector,
)
from mnemolog.embedders import check_embedder, embed_checked
from mnemolog.inputs import (
    aware,
    bounded_int,
    order_by_rule,
    tag_filter,
    where_conditions,
)
from mnemolog.lifetimes import TABLES as ACCESS_TABLES
from mnemolog.lifetimes import (
    AccessLog,
    check_half_lives,
    check_lifetime,
    decayed,
)
from mnemolog.models import (
    AuditEntry,
    AuditKind,
    ErasureReport,
    Memory,
    MemoryEvent,
    NamespaceInfo,
    Scored,
)
from mnemolog.projections.audit import AuditProjection, AuditQuery, audit_sql
from mnemolog.projections.base import Projection
from mnemolog.projections.current_state import (
    CurrentStateProjection,
    SearchQuery,
    get_by_id_statement,
    search_sql,
    to_micros,
)
from mnemolog.projections.current_state import memories as memories_table
from mnemolog.projections.documents import DocumentsProjection
from mnemolog.projections.namespaces import (
    NamespaceQuery,
    NamespacesProjection,
    list_namespaces_sql,
)
from mnemolog.projections.projector import Projector
from mnemolog.projections.sessions import SessionsProjection
from mnemolog.projections.sql import compile_sql, create_statements
from mnemolog.projections.text import text_projection
from mnemolog.projections.vectors import VectorsProjection
from mnemolog.quotas import Limits, Quotas, UsageProjection
from mnemolog.retrieval import Boosts, Retrieval, check_weights, fuse
from mnemolog.sessions import SessionService
from mnemolog.vector_index import VectorIndexes
from mnemolog.verification import VerifyReport, verify
from mnemolog.views import PointInTimeView, Projections

UNSET: Any = object()
"""Marks an argument the caller did not give (None is a valid JSON value)."""

MAX_LIMIT = 10_000
AUDIT_KINDS: tuple[str, ...] = get_args(AuditKind)
SWEEP_BATCH = 200
"""Memories expired per transaction by the sweeper."""


class _MixedSubjects(Exception):
    """A consolidation group whose memories belong to different data subjects."""


@dataclass
class _Runtime:
    """What every view of one opened store shares besides the log."""

    access: AccessLog | None = None
    """Read times, when importance decays."""
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    """Now, for lifetimes and decay (a point-in-time view fixes it)."""


_RUNTIMES: weakref.WeakKeyDictionary[Any, _Runtime] = weakref.WeakKeyDictionary()


class MemoryStore:
    """Memories of every tenant, on one log. Thread-safe.

    Open one with :func:`mnemolog.open`; ``store.tenant(name)`` gives a view
    bound to one tenant.
    """

    def __init__(
        self,
        app: MemoryApplication,
        settings: Settings,
        *,
        bound_tenant: str | None = None,
        principal: Principal | None = None,
    ) -> None:
        self._app = app
        self._settings = settings
        self._bound_tenant = bound_tenant
        self._access = Access(settings.policy, settings.acl_check, principal)
        recorder: Log = app.recorder  # type: ignore[assignment]
        self._recorder = recorder
        dialect = recorder.sql_dialect
        self._dialect = dialect
        self._get_by_id = get_by_id_statement(dialect)
        self._index = settings.vector_index
        self._embed_fields = check_fields(settings.embed_fields)
        self._retrieval = Retrieval(recorder, dialect, app.vectors, app.columns)
        self._open = app.columns.open if app.columns is not None else None
        mapper = app.mapper
        assert isinstance(mapper, ChainedMapper)
        assert mapper.keyring is not None
        self._keyring: Keyring = mapper.keyring
        self._runtime = _RUNTIMES.setdefault(app, _Runtime())
        self._half_lives = settings.decay_half_lives

    @classmethod
    def open(
        cls, url: str | None = None, *, settings: Settings | None = None
    ) -> MemoryStore:
        """Opens (creating if need be) the store at ``url``; catches up read models."""
        settings = settings or Settings()
        check_tenant(settings.default_tenant)
        _check_vector_settings(settings)
        app = open_application(url, settings)
        recorder: Log = app.recorder  # type: ignore[assignment]
        dialect = recorder.sql_dialect
        projections: list[Projection] = [
            CurrentStateProjection(dialect, columns=app.columns),
            NamespacesProjection(dialect),
            AuditProjection(dialect),
            SessionsProjection(dialect),
            DocumentsProjection(dialect, columns=app.columns),
            VectorsProjection(dialect),
            text_projection(dialect, app.columns),
        ]
        if settings.policy is not None and not isinstance(settings.policy, Policy):
            raise ValidationError("policy", "must be a mnemolog.Policy")
        if settings.acl_check is not None and not callable(settings.acl_check):
            raise ValidationError(
                "acl_check", "must be a callable (tenant, namespace, key, op) -> bool"
            )
        check_half_lives(settings.decay_half_lives)
        for name, cap in settings.working_memory_caps.items():
            if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
                raise ValidationError(
                    f"working_memory_caps.{name}", "must be an integer >= 1"
                )
        if settings.consolidator is not None and not callable(settings.consolidator):
            raise ValidationError(
                "consolidator", "must be a callable (memories -> merged fields)"
            )
        if settings.quotas is not None:
            if not isinstance(settings.quotas, Quotas):
                raise ValidationError("quotas", "must be a mnemolog.Quotas")
            if not settings.inline_projections:
                raise ValidationError(
                    "quotas",
                    "are checked in the transaction that writes: they need "
                    "inline_projections=True",
                )
            projections.append(UsageProjection(dialect, quotas=settings.quotas))
        index = settings.vector_index
        if index is not None:
            app.vectors = VectorIndexes(
                *index,
                ann_threshold=settings.ann_threshold,
                ann_expansion=settings.ann_expansion,
            )

        def columns_of(table: str) -> set[str]:
            rows = recorder.fetch_all(f"PRAGMA table_info({table})", ())
            return {row[1] for row in rows}

        recorder.create_read_models(
            [
                statement
                for tables in [
                    *(p.tables for p in projections),
                    KEY_TABLES,
                    ACCESS_TABLES,
                ]
                for statement in create_statements(tables, dialect, columns_of)
            ],
            [projection.name for projection in projections],
        )
        keyring = Keyring(recorder, app.mapper.cipher)
        recorder.keyring = keyring
        mapper = app.mapper
        assert isinstance(mapper, ChainedMapper)
        mapper.keyring = keyring
        if app.vectors is not None:
            keyring.on_erasure.append(app.vectors.reset)
        recorder.projector = Projector(projections, recorder, app.mapper)
        if app.vectors is not None:
            recorder.projector.after_rebuild.append(app.vectors.reset)
        recorder.project_inline = settings.inline_projections
        if settings.inline_projections:
            recorder.projector.catch_up()
        if settings.decay_half_lives:
            _RUNTIMES[app] = _Runtime(
                access=AccessLog(recorder, batch_size=settings.access_batch)
            )
        return cls(app, settings)

    # ---- lifecycle -----------------------------------------------------------

    def close(self) -> None:
        """Closes the log's connections; a tenant view leaves them to its store."""
        if self._bound_tenant is None:
            if self._runtime.access is not None:
                self._runtime.access.flush()
            self._recorder.close_readers()
            self._app.close()

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tenant(self, tenant: str) -> MemoryStore:
        """A view bound to one tenant, with the same methods."""
        check_tenant(tenant)
        if self._bound_tenant is not None and tenant != self._bound_tenant:
            raise TenantMismatch(
                f"this view is bound to tenant {self._bound_tenant!r}, not {tenant!r}"
            )
        return MemoryStore(
            self._app,
            self._settings,
            bound_tenant=tenant,
            principal=self._access.principal,
        )

    def as_principal(self, principal: Principal) -> MemoryStore:
        """A view whose every call is checked against the policy as made by
        ``principal`` (an id and roles); same tenant binding as this one."""
        if not isinstance(principal, Principal):
            raise ValidationError("principal", "must be a mnemolog.Principal")
        return MemoryStore(
            self._app,
            self._settings,
            bound_tenant=self._bound_tenant,
            principal=principal,
        )

    @property
    def principal(self) -> Principal | None:
        """The principal this view's calls are made as (None: anonymous)."""
        return self._access.principal

    @property
    def tenant_name(self) -> str:
        """The tenant calls use when they name none."""
        return self._bound_tenant or self._settings.default_tenant

    @property
    def settings(self) -> Settings:
        """The settings this store was opened with."""
        return self._settings

    @property
    def sessions(self) -> SessionService:
        """Conversations as event streams with scoped state (this tenant's)."""
        return SessionService(self)

    @property
    def documents(self) -> DocumentService:
        """The document index: files, content hashes and sync status (this
        tenant's); see :mod:`mnemolog.documents`."""
        return DocumentService(self)

    @property
    def backend(self) -> str:
        """Where the log lives: ``"sqlite"`` (files and memory://),
        ``"jsonl"`` or ``"postgresql"``."""
        return self._recorder.backend

    @property
    def projections(self) -> Projections:
        """Status, catch-up and rebuild of the read models (for admins)."""
        self._allow_admin()
        projector = self._recorder.projector
        assert projector is not None
        return Projections(projector, self._recorder)

    # ---- writes --------------------------------------------------------------

    def put(
        self,
        namespace: str,
        key: str,
        value: Any,
        *,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        memory_type: str | None = None,
        importance: float | None = None,
        confidence: float | None = None,
        actor: str | None = None,
        task_id: str | None = None,
        source: str | None = None,
        reason: str | None = None,
        expected_version: int | None = None,
        force: bool = False,
        embedding: Any = None,
        embedding_model: str | None = None,
        subject: str | None = None,
        ttl: float | timedelta | None = UNSET,
        expires_at: datetime | None = UNSET,
        tenant: str | None = None,
    ) -> Memory:
        """Creates or replaces a memory; returns it as stored.

        Tags, metadata, type, importance and confidence replace the current ones
        when given and stay as they are when not. Writing what is already stored
        is a no-op that returns the current version, unless ``force=True``.
        ``expected_version`` (0 for "must not exist yet") guards against lost
        updates with :class:`VersionConflict`.

        ``embedding`` is the caller's vector for the vector index; without one,
        a configured embedder embeds the value's text (see ``embed_fields``).
        A new value with neither drops the old vector, which described the
        old value.

        ``subject`` names the data subject (a user id) whose key seals the
        memory's events, so that :meth:`erase` of that subject destroys it;
        without one the memory is sealed with the tenant's key. It is fixed
        when the memory is created.

        ``ttl`` (seconds or a timedelta) or ``expires_at`` (an aware datetime)
        ends the memory's life: from then on every read and search hides it,
        and ``sweep()`` records an Expired event. Without either, a put keeps
        the current lifetime, unless the memory has expired: then it starts
        a new life without one. ``None`` removes the lifetime.
        """
        item = self._check_put(
            tenant=tenant,
            namespace=namespace,
            key=key,
            value=value,
            tags=tags,
            metadata=metadata,
            memory_type=memory_type,
            importance=importance,
            confidence=confidence,
            expected_version=expected_version,
            force=force,
            embedding=embedding,
            embedding_model=embedding_model,
            subject=subject,
            ttl=ttl,
            expires_at=expires_at,
        )
        provenance = self._provenance(actor, task_id, source, reason)
        self._embed_missing([item.changes])
        return self._write_batch([item], provenance)[0]

    def put_many(
        self,
        items: Iterable[Mapping[str, Any]],
        *,
        actor: str | None = None,
        task_id: str | None = None,
        source: str | None = None,
        reason: str | None = None,
        tenant: str | None = None,
    ) -> list[Memory]:
        """Puts a batch in one atomic transaction: all of it lands, or none.

        Each item is a mapping with the arguments of :meth:`put` (namespace, key,
        value, and optionally tags, metadata, memory_type, importance,
        confidence, expected_version, force, embedding, embedding_model,
        subject, ttl, expires_at).
        """
        allowed = {
            "namespace",
            "key",
            "value",
            "tags",
            "metadata",
            "memory_type",
            "importance",
            "confidence",
            "expected_version",
            "force",
            "embedding",
            "embedding_model",
            "subject",
            "ttl",
            "expires_at",
        }
        checked = []
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise ValidationError(f"items[{index}]", "must be a mapping")
            unknown = set(item) - allowed
            if unknown:
                names = ", ".join(sorted(map(repr, unknown)))
                raise ValidationError(f"items[{index}]", f"unknown field(s): {names}")
            for required in ("namespace", "key", "value"):
                if required not in item:
                    raise ValidationError(f"items[{index}].{required}", "is required")
            try:
                checked.append(self._check_put(tenant=tenant, **item))
            except ValidationError as e:
                raise ValidationError(f"items[{index}].{e.field}", e.rule) from None
        if not checked:
            return []
        self._embed_missing([item.changes for item in checked])
        return self._write_batch(
            checked, self._provenance(actor, task_id, source, reason)
        )

    def update(
        self,
        namespace: str,
        key: str,
        value: Any = UNSET,
        *,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        replace_metadata: bool = False,
        memory_type: str | None = None,
        importance: float | None = None,
        confidence: float | None = None,
        actor: str | None = None,
        task_id: str | None = None,
        source: str | None = None,
        reason: str | None = None,
        expected_version: int | None = None,
        force: bool = False,
        embedding: Any = None,
        embedding_model: str | None = None,
        ttl: float | timedelta | None = UNSET,
        expires_at: datetime | None = UNSET,
        tenant: str | None = None,
    ) -> Memory:
        """Changes an existing memory; raises NotFound if it is absent, deleted
        or expired.

        Only what is given changes. Metadata is merged into the current
        metadata (top-level keys) unless ``replace_metadata=True``. A new value
        is embedded as by :meth:`put`.
        """
        tenant_id, ns, checked_key = self._address(tenant, namespace, key, "write")
        changes = self._check_changes(
            value=value,
            tags=tags,
            metadata=metadata,
            memory_type=memory_type,
            importance=importance,
            confidence=confidence,
            ttl=ttl,
            expires_at=expires_at,
        )
        self._vector_changes(changes, embedding, embedding_model)
        self._check_expected(expected_version)
        provenance = self._provenance(actor, task_id, source, reason)
        self._embed_missing([changes])

        def command(memory: domain.Memory) -> None:
            if memory.deleted:
                raise NotFound(f"memory {ns}/{checked_key} is deleted")
            if memory.expired_by(self._now()):
                raise NotFound(f"memory {ns}/{checked_key} has expired")
            merged = dict(changes)
            if "metadata" in merged and not replace_metadata:
                merged["metadata"] = {**memory.metadata, **merged["metadata"]}
            memory.revise(merged, provenance, force=force)

        return self._change(tenant_id, ns, checked_key, command, expected_version)

    def delete(
        self,
        namespace: str,
        key: str,
        *,
        reason: str | None = None,
        actor: str | None = None,
        task_id: str | None = None,
        source: str | None = None,
        expected_version: int | None = None,
        tenant: str | None = None,
    ) -> Memory:
        """Soft-deletes: reads hide it, its history stays. Deleting twice is a no-op."""
        provenance = self._provenance(actor, task_id, source, reason)
        return self._lifecycle(
            tenant,
            namespace,
            key,
            lambda m: m.delete(provenance),
            expected_version,
            action="delete",
        )

    def restore(
        self,
        namespace: str,
        key: str,
        *,
        reason: str | None = None,
        actor: str | None = None,
        task_id: str | None = None,
        source: str | None = None,
        expected_version: int | None = None,
        tenant: str | None = None,
    ) -> Memory:
        """Undoes a soft delete (or an expiry, eviction or merge: an ended
        lifetime is removed). Restoring a live memory is a no-op."""
        provenance = self._provenance(actor, task_id, source, reason)

        def command(memory: domain.Memory) -> None:
            memory.restore(provenance)
            if not memory.erased and memory.expired_by(self._now()):
                memory.revise({"expires_at": None}, provenance)

        return self._lifecycle(tenant, namespace, key, command, expected_version)

    def _lifecycle(
        self,
        tenant: str | None,
        namespace: str,
        key: str,
        command: Callable[[domain.Memory], object],
        expected_version: int | None,
        *,
        action: str = "write",
    ) -> Memory:
        tenant_id, ns, checked_key = self._address(tenant, namespace, key, action)
        self._check_expected(expected_version)
        return self._change(tenant_id, ns, checked_key, command, expected_version)

    # ---- reads ---------------------------------------------------------------

    def get(
        self,
        namespace: str,
        key: str,
        *,
        version: int | None = None,
        as_of: datetime | None = None,
        include_deleted: bool = False,
        tenant: str | None = None,
    ) -> Memory | None:
        """The memory now, at ``version=N``, or as at ``as_of``; None if absent.

        Current reads come from the current-state projection; ``version`` and
        ``as_of`` reads replay the memory's own events from the log.
        """
        tenant_id, ns, checked_key = self._address(tenant, namespace, key)
        memory_id = domain.Memory.create_id(tenant_id, ns, checked_key)
        if version is not None and as_of is not None:
            raise ValidationError("version", "give version or as_of, not both")
        if version is not None:
            bounded_int(version, "version", 1, 2**62)
            found = self._replay(memory_id, version=version)
            if found is None or found.version != version or found.erased:
                return None
            then = Memory.from_aggregate(found)
            return self._visible(then, include_deleted, then.updated_at)
        if as_of is not None:
            moment = aware(as_of, "as_of")
            self._keyring.sync()
            events = list(self._app.events.get(memory_id))
            at_moment = domain.memory_at(events, as_of=moment)  # type: ignore[arg-type]
            if at_moment is None or at_moment.erased:
                return None
            return self._visible(
                Memory.from_aggregate(at_moment), include_deleted, moment
            )
        row = self._recorder.fetch_one(self._get_by_id, {"b_id": memory_id.hex})
        if row is None:
            return None
        found_now = self._visible(Memory.from_row(row, self._open), include_deleted)
        if found_now is not None and self._runtime.access is not None:
            self._runtime.access.record(tenant_id, [memory_id.hex])
        return found_now

    def history(
        self, namespace: str, key: str, *, tenant: str | None = None
    ) -> list[MemoryEvent]:
        """Every change, oldest first, each with the state right after it.

        Versions that were erased are not listed: their content is gone (the
        audit timeline records the erasure)."""
        tenant_id, ns, checked_key = self._address(tenant, namespace, key)
        memory_id = domain.Memory.create_id(tenant_id, ns, checked_key)
        self._keyring.sync()
        changes: list[MemoryEvent] = []
        memory: domain.Memory | None = None
        for event in self._app.events.get(memory_id):
            assert isinstance(event, domain.Memory.Event)
            memory = event.mutate(memory)
            assert memory is not None
            if not memory.erased:
                changes.append(MemoryEvent.from_event(event, memory))
        return changes

    def search(
        self,
        *,
        namespace_prefix: str | None = None,
        memory_type: str | None = None,
        tags_any: Iterable[str] | None = None,
        tags_all: Iterable[str] | None = None,
        where: Mapping[str, Any] | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
        include_deleted: bool = False,
        min_importance: float | None = None,
        order_by: str = "-updated_at",
        limit: int = 50,
        offset: int = 0,
        tenant: str | None = None,
    ) -> list[Memory]:
        """Memories of one tenant matching every filter given.

        ``namespace_prefix`` matches whole segments (``user:al`` does not match
        ``user:alice``). ``where`` takes metadata conditions: ``{"k": v}`` or
        ``{"k": {"$gt": 3}}`` with ``$eq $ne $gt $gte $lt $lte $in $exists``;
        nested keys are written ``a.b``. ``order_by`` is one of updated_at,
        created_at, importance, key, namespace, with ``-`` for descending.
        ``min_importance`` keeps memories whose effective importance (see
        :meth:`effective_importance`) is at least that; with decay on, a page
        may then hold fewer than ``limit`` memories.
        """
        query = self._filters(
            tenant=tenant,
            namespace_prefix=namespace_prefix,
            memory_type=memory_type,
            tags_any=tags_any,
            tags_all=tags_all,
            where=where,
            updated_after=updated_after,
            updated_before=updated_before,
            include_deleted=bool(include_deleted),
            order_by=order_by_rule(order_by),
            limit=bounded_int(limit, "limit", 1, MAX_LIMIT),
            offset=bounded_int(offset, "offset", 0, 2**62),
            min_importance=(
                check_unit_interval(min_importance, "min_importance")
                if min_importance is not None
                else None
            ),
        )
        sql, params = search_sql(query, self._dialect)
        rows = self._recorder.fetch_all(sql, params)
        found = [Memory.from_row(row, self._open) for row in rows]
        if self._runtime.access is not None and found:
            if query.min_importance is not None:
                floor = query.min_importance
                levels = self._effective(found, self._now())
                found = [
                    m for m, level in zip(found, levels, strict=True) if level >= floor
                ]
            self._runtime.access.record(query.tenant, [m.id.hex for m in found])
        return found

    def similar(
        self,
        query: Any,
        *,
        k: int = 10,
        min_score: float | None = None,
        namespace_prefix: str | None = None,
        memory_type: str | None = None,
        tags_any: Iterable[str] | None = None,
        tags_all: Iterable[str] | None = None,
        where: Mapping[str, Any] | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
        tenant: str | None = None,
    ) -> list[Scored[Memory]]:
        """The ``k`` live memories nearest in meaning to ``query``, best first.

        ``query`` is a vector, or a text that the configured embedder embeds.
        The score is the cosine similarity in [-1, 1]; ``min_score`` drops
        those below it. Filters are those of :meth:`search`, applied exactly
        before ranking: the result is the true top k of the memories passing
        them, never fewer because of them.
        """
        filters = self._filters(
            tenant=tenant,
            namespace_prefix=namespace_prefix,
            memory_type=memory_type,
            tags_any=tags_any,
            tags_all=tags_all,
            where=where,
            updated_after=updated_after,
            updated_before=updated_before,
        )
        vector = self._query_vector(query, "query")
        self._keyring.sync()  # vectors erased elsewhere leave the index
        return self._retrieval.similar(
            filters,
            vector,
            k=bounded_int(k, "k", 1, MAX_LIMIT),
            min_score=_check_min_score(min_score),
        )

    def text_search(
        self,
        query: str,
        *,
        k: int = 10,
        match: str = "any",
        namespace_prefix: str | None = None,
        memory_type: str | None = None,
        tags_any: Iterable[str] | None = None,
        tags_all: Iterable[str] | None = None,
        where: Mapping[str, Any] | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
        tenant: str | None = None,
    ) -> list[Scored[Memory]]:
        """The ``k`` live memories whose text best matches the words of
        ``query`` (BM25; higher is better), best first.

        The text of a memory is its value's strings. Words are matched as
        words, whatever characters surround them: nothing in ``query`` is
        read as query syntax. ``match="any"`` (the default) wants at least one
        of the words and ranks memories with more of them higher;
        ``match="all"`` wants every word. Filters are those of :meth:`search`.
        """
        if not isinstance(query, str):
            raise ValidationError("query", "must be a string")
        _check_query(query, "query")
        if match not in ("any", "all"):
            raise ValidationError("match", "must be 'any' or 'all'")
        filters = self._filters(
            tenant=tenant,
            namespace_prefix=namespace_prefix,
            memory_type=memory_type,
            tags_any=tags_any,
            tags_all=tags_all,
            where=where,
            updated_after=updated_after,
            updated_before=updated_before,
        )
        return self._retrieval.text(
            filters,
            query,
            k=bounded_int(k, "k", 1, MAX_LIMIT),
            every_word=match == "all",
        )

    def retrieve(
        self,
        query: str,
        *,
        k: int = 10,
        vector: Any = None,
        weights: Mapping[str, float] | None = None,
        importance_boost: float = 0.0,
        recency_half_life: timedelta | None = None,
        namespace_prefix: str | None = None,
        memory_type: str | None = None,
        tags_any: Iterable[str] | None = None,
        tags_all: Iterable[str] | None = None,
        where: Mapping[str, Any] | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
        tenant: str | None = None,
    ) -> list[Scored[Memory]]:
        """Hybrid retrieval: :meth:`similar` and :meth:`text_search` results
        fused by reciprocal rank (score = sum of weight / (60 + rank)).

        The vector side uses ``vector`` if given, else the embedder on
        ``query``; with neither it is skipped and only words count.
        ``weights`` (default ``{"vector": 1, "text": 1}``) weigh the two
        lists. Two boosts, off by default, multiply the fused score:
        ``importance_boost=w`` by ``(1 - w) + w * importance``, and
        ``recency_half_life=h`` by ``0.5 ** (age / h)``, age since the last
        update.
        """
        if not isinstance(query, str):
            raise ValidationError("query", "must be a string")
        _check_query(query, "query")
        checked_weights = check_weights(weights)
        boosts = Boosts(
            importance=check_unit_interval(importance_boost, "importance_boost"),
            recency_half_life=_check_half_life(recency_half_life),
        )
        limit = bounded_int(k, "k", 1, MAX_LIMIT)
        filters = self._filters(
            tenant=tenant,
            namespace_prefix=namespace_prefix,
            memory_type=memory_type,
            tags_any=tags_any,
            tags_all=tags_all,
            where=where,
            updated_after=updated_after,
            updated_before=updated_before,
        )
        depth = min(max(3 * limit, 50), MAX_LIMIT)
        ranked: dict[str, list[Scored[Memory]]] = {}
        if checked_weights["vector"] > 0 and self._index is not None:
            query_vector = None
            if vector is not None:
                query_vector = self._query_vector(vector, "vector")
            elif self._settings.embedder is not None and query.strip():
                try:
                    query_vector = self._query_vector(query, "query")
                except ValidationError:  # a zero vector: words alone decide
                    query_vector = None
            if query_vector is not None:
                self._keyring.sync()
                ranked["vector"] = self._retrieval.similar(
                    filters, query_vector, k=depth, min_score=None
                )
        elif vector is not None:
            self._query_vector(vector, "vector")  # an error: there is no index
        if checked_weights["text"] > 0:
            ranked["text"] = self._retrieval.text(
                filters, query, k=depth, every_word=False
            )
        return fuse(ranked, checked_weights, k=limit, boosts=boosts)

    def as_of(
        self, moment: datetime | int, *, namespace_prefix: str | None = None
    ) -> PointInTimeView:
        """This tenant (or one namespace of it) as it stood at an instant
        (an aware datetime) or at a log position (an int): a read-only view.

        The events up to that point are replayed from the log into a store in
        memory, so every query answers exactly as it would have then.
        """
        from mnemolog.transfer import replay

        prefix = (
            str(self._namespace(namespace_prefix, "namespace_prefix", root_only=True))
            if namespace_prefix is not None
            else None
        )
        tenant = self._allow("read", None, prefix)
        as_of: datetime | None = None
        position: int | None = None
        if isinstance(moment, datetime):
            as_of = aware(moment, "moment")
        else:
            position = moment  # replay checks it against the head
        # Only what this caller may read is copied (checked above): the copy,
        # in memory, needs no policy, quotas or encryption of its own.
        target = MemoryStore.open(
            "memory://",
            settings=self._settings.model_copy(
                update={
                    "policy": None,
                    "acl_check": None,
                    "quotas": None,
                    "cipher_keys": (),
                    "compress": False,
                }
            ),
        )
        if as_of is not None:
            moment_then = as_of
            target._runtime.clock = lambda: moment_then  # lifetimes as they were
        try:
            replay(
                self,
                target,
                tenant=tenant,
                as_of=as_of,
                position=position,
                namespace_prefix=prefix,
            )
        except BaseException:
            target.close()
            raise
        return PointInTimeView(target, tenant)

    def stats(self) -> dict[str, Any]:
        """Counts by tenant, memory type and namespace root; the log's size; lag."""
        self._allow_admin()
        scope, params = "", ()
        if self._bound_tenant is not None:
            scope, params = "AND tenant = ?", (self._bound_tenant,)  # type: ignore[assignment]
        tenants: dict[str, Any] = {}

        def entry(tenant: str) -> dict[str, Any]:
            blank = {
                "live": 0,
                "deleted": 0,
                "by_type": {},
                "by_root": {},
                "value_bytes": 0,
                "embeddings": 0,
            }
            return tenants.setdefault(tenant, blank)  # type: ignore[no-any-return]

        for tenant, memory_type, deleted, count in self._recorder.fetch_all(
            "SELECT tenant, memory_type, deleted, COUNT(*) FROM memories "
            f"WHERE 1 = 1 {scope} GROUP BY tenant, memory_type, deleted",
            params,
        ):
            if deleted:
                entry(tenant)["deleted"] += count
            else:
                entry(tenant)["live"] += count
                entry(tenant)["by_type"][memory_type] = count
        for tenant, root, count in self._recorder.fetch_all(
            "SELECT tenant, namespace, live_count FROM namespaces "
            f"WHERE depth = 1 AND live_count > 0 {scope}",
            params,
        ):
            entry(tenant)["by_root"][root] = count
        size_of = (
            "OCTET_LENGTH(m.value)"
            if self._recorder.backend == "postgresql"
            else "LENGTH(CAST(m.value AS BLOB))"
        )
        for tenant, value_bytes, embeddings in self._recorder.fetch_all(
            f"SELECT m.tenant, COALESCE(SUM({size_of}), 0), "
            "COUNT(v.memory_id) FROM memories AS m "
            "LEFT JOIN memory_vectors AS v ON v.memory_id = m.id "
            f"WHERE NOT m.deleted {scope.replace('tenant', 'm.tenant')} "
            "GROUP BY m.tenant",
            params,
        ):
            usage = entry(tenant)
            usage["value_bytes"], usage["embeddings"] = int(value_bytes), embeddings
            quotas = self._settings.quotas
            if quotas is not None:
                limits = quotas.for_tenant(tenant)
                usage["quotas"] = {
                    name: getattr(limits, name) for name in Limits.model_fields
                }
        events, size = self._recorder.fetch_one(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(state)), 0) FROM stored_events",
            (),
        )
        return {
            "tenants": tenants,
            "log": {"events": events, "payload_bytes": size},
            "projections": [
                {"name": s.name, "position": s.position, "head": s.head, "lag": s.lag}
                for s in self.projections.status()
            ],
        }

    def verify(self, *, projections: bool = True) -> VerifyReport:
        """Checks every stream's hash chain and, unless told not to, that every
        read model equals a rebuild of it. Covers the whole log, all tenants;
        the report names events and rows by position and key, never by value.
        """
        self._allow_admin()
        projector = self._recorder.projector
        assert projector is not None
        return verify(
            self._recorder, self._app.mapper, projector, projections=projections
        )

    def list_namespaces(
        self,
        *,
        prefix: str | None = None,
        max_depth: int | None = None,
        limit: int = 100,
        offset: int = 0,
        tenant: str | None = None,
    ) -> list[NamespaceInfo]:
        """Namespaces holding live memories, and their ancestors, in name order.

        Each comes with the number of live memories at or under it. ``prefix``
        matches whole segments; ``max_depth`` keeps namespaces of at most that
        many segments (``user`` is 1, ``user:alice`` 2).
        """
        checked = (
            str(self._namespace(prefix, "prefix", root_only=True))
            if prefix is not None
            else None
        )
        query = NamespaceQuery(
            tenant=self._allow("read", tenant, checked),
            prefix=checked,
            max_depth=(
                bounded_int(max_depth, "max_depth", 1, 1024)
                if max_depth is not None
                else None
            ),
            limit=bounded_int(limit, "limit", 1, MAX_LIMIT),
            offset=bounded_int(offset, "offset", 0, 2**62),
        )
        sql, params = list_namespaces_sql(query, self._dialect)
        return [
            NamespaceInfo(namespace=row[0], depth=row[1], count=row[2])
            for row in self._recorder.fetch_all(sql, params)
        ]

    def audit(
        self,
        *,
        actor: str | None = None,
        namespace_prefix: str | None = None,
        key: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after_position: int | None = None,
        limit: int = 100,
        descending: bool = False,
        tenant: str | None = None,
    ) -> list[AuditEntry]:
        """The timeline of changes in one tenant, in log order: who, what, when.

        Filters combine; ``since`` is inclusive and ``until`` exclusive. Page with
        ``after_position`` set to the last entry's position.
        """
        if kind is not None and kind not in AUDIT_KINDS:
            raise ValidationError("kind", f"must be one of {', '.join(AUDIT_KINDS)}")
        prefix = (
            str(self._namespace(namespace_prefix, "namespace_prefix", root_only=True))
            if namespace_prefix is not None
            else None
        )
        query = AuditQuery(
            tenant=self._allow("audit", tenant, prefix),
            actor=check_optional_text(actor, "actor"),
            namespace_prefix=prefix,
            key=check_key(key) if key is not None else None,
            kind=kind,
            since=to_micros(aware(since, "since")) if since is not None else None,
            until=to_micros(aware(until, "until")) if until is not None else None,
            after_position=(
                bounded_int(after_position, "after_position", 0, 2**62)
                if after_position is not None
                else None
            ),
            limit=bounded_int(limit, "limit", 1, MAX_LIMIT),
            descending=bool(descending),
        )
        sql, params = audit_sql(query, self._dialect)
        return [
            AuditEntry.from_row(row) for row in self._recorder.fetch_all(sql, params)
        ]

    # ---- internals -----------------------------------------------------------

    # ---- erasure ---------------------------------------------------------------

    def erase(
        self,
        subject: str | None = None,
        *,
        tenant: str | None = None,
        whole_tenant: bool = False,
        reason: str | None = None,
        actor: str | None = None,
    ) -> ErasureReport:
        """Erases a data subject's memories and sessions in this tenant (or,
        with ``whole_tenant=True``, everything of the tenant) by destroying
        the keys that seal them.

        In one transaction: the keys go, every read model drops the streams,
        and an ``Erased`` event records who, when and why (with no personal
        data). Afterwards no read, search, history, export, replay or rebuild
        can return the erased content, and ``verify`` still passes: the hash
        chains cover the ciphertext's commitment, not the plaintext.
        """
        tenant_id = self._allow("erase", tenant)
        if not isinstance(whole_tenant, bool):
            raise ValidationError("whole_tenant", "must be a bool")
        if whole_tenant:
            if subject is not None:
                raise ValidationError(
                    "subject", "give a subject or whole_tenant, not both"
                )
            return self._erase(tenant_id, "tenant", reason, actor)
        checked = check_subject(subject)
        if checked is None:
            raise ValidationError(
                "subject", "is required (or whole_tenant=True to erase the tenant)"
            )
        return self._erase(tenant_id, "subject", reason, actor, subject=checked)

    def erase_memory(
        self,
        namespace: str,
        key: str,
        *,
        reason: str | None = None,
        actor: str | None = None,
        tenant: str | None = None,
    ) -> ErasureReport:
        """Erases one memory, every version of it, as :meth:`erase` does a
        subject's. A later put of the same key starts it anew."""
        tenant_id, ns, checked_key = self._address(tenant, namespace, key, "erase")
        stream = domain.Memory.create_id(tenant_id, ns, checked_key)
        if self._load(stream) is None:
            raise NotFound(f"no memory {ns}/{checked_key} in tenant {tenant_id!r}")
        return self._erase(tenant_id, "memory", reason, actor, stream=stream)

    # ---- lifetimes, decay, consolidation ---------------------------------------

    def sweep(
        self,
        *,
        limit: int | None = None,
        actor: str | None = "sweeper",
        tenant: str | None = None,
    ) -> int:
        """Records an Expired event for each memory whose lifetime has ended
        (of this view's tenant, or of every tenant from an unbound store with
        admin rights); returns how many. Reads hide expired memories without
        it: the sweep makes the log say when they went, and frees their place
        in counts, quotas and indexes. Safe to run from many workers at once.
        """
        if self._bound_tenant is None and tenant is None:
            self._allow_admin()
            tenants: list[str] | None = None
        else:
            tenants = [self._allow("delete", tenant)]
        cap = bounded_int(limit, "limit", 1, 2**62) if limit is not None else None
        provenance = self._provenance(actor, None, None, None)
        now = self._now()
        m = memories_table
        columns = (m.c.id, m.c.tenant, m.c.namespace, m.c.key)
        statement = (
            select(*columns)
            .where(
                m.c.deleted == false(),
                m.c.expires_at.is_not(None),
                m.c.expires_at <= bindparam("now"),
                *([m.c.tenant == bindparam("tenant")] if tenants else []),
            )
            .order_by(m.c.expires_at, m.c.id)
            .limit(bindparam("limit", type_=BigInteger))
            .offset(bindparam("offset", type_=BigInteger))
        )
        sql = compile_sql(statement, self._dialect)
        swept = 0
        while cap is None or swept < cap:
            batch = min(SWEEP_BATCH, cap - swept) if cap is not None else SWEEP_BATCH
            params: dict[str, Any] = {
                "now": to_micros(now),
                "limit": batch,
                "offset": 0,
            }
            if tenants:
                params["tenant"] = tenants[0]
            rows = self._recorder.fetch_all(sql, params)
            if not rows:
                break
            targets = [
                _Target(UUID(hex=row[0]), f"{row[2]}/{row[3]}", None) for row in rows
            ]
            when = {
                t.memory_id: f"lifetime ended; swept at {now.isoformat()}"
                for t in targets
            }

            def decide(
                loaded: dict[UUID, domain.Memory], when: dict[UUID, str] = when
            ) -> list[Memory]:
                done = []
                for memory_id, memory in loaded.items():
                    reason = replace(provenance, reason=when[memory_id])
                    if memory.expire(reason, now):
                        done.append(Memory.from_aggregate(memory))
                return done

            expired = self._transact(targets, decide)
            swept += len(expired)
            if len(rows) < batch or not expired:
                break
        return swept

    def effective_importance(
        self, memory: Memory, *, at: datetime | None = None
    ) -> float:
        """Its importance, halved every half-life of its type (the
        ``decay_half_lives`` setting) since its last update or read, whichever
        is later; its stored importance when decay is off."""
        if not isinstance(memory, Memory):
            raise ValidationError("memory", "must be a mnemolog.Memory")
        tenant, namespace, key = self._address(
            memory.tenant, memory.namespace, memory.key
        )
        if domain.Memory.create_id(tenant, namespace, key) != memory.id:
            raise ValidationError("memory", "its id does not match its address")
        moment = aware(at, "at") if at is not None else self._now()
        return self._effective([memory], moment)[0]

    def _effective(self, found: list[Memory], at: datetime) -> list[float]:
        access = self._runtime.access
        if access is None:
            return [memory.importance for memory in found]
        reads = access.last_access_many([memory.id.hex for memory in found])
        levels = []
        for memory in found:
            read = reads.get(memory.id.hex)
            touched = (
                memory.updated_at if read is None else max(read, memory.updated_at)
            )
            levels.append(
                decayed(
                    memory.importance, memory.memory_type, touched, self._half_lives, at
                )
            )
        return levels

    def flush_access(self) -> int:
        """Writes the buffered read times now (close does it too)."""
        access = self._runtime.access
        return access.flush() if access is not None else 0

    def consolidate(
        self,
        namespace: str,
        *,
        strategy: Any = "latest_wins",
        merge: Any = None,
        family: Callable[[str], str] | None = None,
        dry_run: bool = False,
        actor: str | None = None,
        reason: str | None = None,
        tenant: str | None = None,
    ) -> Consolidation:
        """Merges the duplicates and conflicts among the live memories of one
        namespace (not its descendants).

        Duplicates hold the same content; conflicts have keys of one family
        (``family(key)``; by default the key casefolded without spaces or
        punctuation). Each group is merged into its most recently updated
        member: ``latest_wins`` keeps that member's state; ``merge_metadata``
        gives it the metadata of all of them merged (newer keys win), the
        union of their tags and the highest importance and confidence;
        ``llm_based`` asks ``merge`` (or ``Settings.consolidator``): called
        with the group's memories, oldest first, it returns the new fields
        (``value`` and optionally tags, metadata, importance, confidence,
        memory_type). A callable given as ``strategy`` is used the same way.
        Each group is one transaction: a Consolidated event on the target,
        naming the sources, and a Superseded event on each source. A group
        whose members belong to different data subjects is left as it is (a
        dry run still lists it).
        """
        tenant_id = self._allow("write", tenant, namespace)
        ns = str(self._namespace(namespace, "namespace"))
        self._access.check("delete", tenant_id, ns)
        name, merger = check_strategy(
            strategy,
            merge
            if merge is not None
            else (self._settings.consolidator if strategy == "llm_based" else None),
        )
        keys_of = family or key_family
        if not callable(keys_of):
            raise ValidationError("family", "must be a callable (key -> family)")
        if not isinstance(dry_run, bool):
            raise ValidationError("dry_run", "must be a bool")
        provenance = self._provenance(actor, None, None, reason)
        live = [m for m in self._all_in(tenant_id, ns) if m.namespace == ns]
        groups = find_groups(live, keys_of)
        done: list[ConsolidatedGroup] = []
        superseded = 0
        for members, why in groups:
            reasons = tuple(sorted(why))
            target = members[-1]
            sources = members[:-1]
            if dry_run:
                done.append(
                    ConsolidatedGroup(
                        target=target.key,
                        sources=tuple(m.key for m in sources),
                        reasons=reasons,  # type: ignore[arg-type]
                        version=0,
                    )
                )
                continue
            fields = merged_fields(name, members, merger)
            changes = self._check_changes(
                value=fields.get("value", UNSET),
                tags=fields.get("tags"),
                metadata=fields.get("metadata"),
                memory_type=fields.get("memory_type"),
                importance=fields.get("importance"),
                confidence=fields.get("confidence"),
            )
            if changes.get("content_hash") == target.content_hash:
                # The value is the target's own: its vector still describes it.
                del changes["value"], changes["content_hash"]
            if "value" in changes:
                self._embed_missing([changes])
            result = self._merge_group(
                namespace=ns,
                target=target,
                sources=sources,
                changes=changes,
                strategy=name,
                provenance=provenance,
            )
            if result is None:
                continue  # the group changed under us: the next run sees it
            merged, count = result
            superseded += count
            done.append(
                ConsolidatedGroup(
                    target=target.key,
                    sources=tuple(m.key for m in sources),
                    reasons=reasons,  # type: ignore[arg-type]
                    version=merged.version,
                )
            )
        return Consolidation(
            namespace=ns,
            strategy=name,
            examined=len(live),
            groups=tuple(done),
            superseded=superseded,
            dry_run=dry_run,
        )

    def _all_in(self, tenant: str, namespace: str) -> list[Memory]:
        """Every live memory under a namespace, oldest update first."""
        found: list[Memory] = []
        offset = 0
        while True:
            query = SearchQuery(
                tenant=tenant,
                namespace_prefix=namespace,
                now=to_micros(self._now()),
                order_by="updated_at",
                limit=MAX_LIMIT,
                offset=offset,
            )
            sql, params = search_sql(query, self._dialect)
            rows = self._recorder.fetch_all(sql, params)
            found.extend(Memory.from_row(row, self._open) for row in rows)
            if len(rows) < MAX_LIMIT:
                return found
            offset += MAX_LIMIT

    def _merge_group(
        self,
        *,
        namespace: str,
        target: Memory,
        sources: list[Memory],
        changes: dict[str, JSON],
        strategy: str,
        provenance: Provenance,
    ) -> tuple[Memory, int] | None:
        """One group's merge, in one transaction; None if a member changed
        since it was read (then nothing is written)."""
        members = [*sources, target]
        targets = [_Target(m.id, f"{namespace}/{m.key}", m.version) for m in members]

        def decide(loaded: dict[UUID, domain.Memory]) -> list[Memory]:
            into = loaded[target.id]
            if any(loaded[m.id].subject != into.subject for m in sources):
                # Merging would move one data subject's content under another's
                # key, where erasing the first would not reach it.
                raise _MixedSubjects
            address = f"{namespace}/{target.key}"
            for source in sources:
                loaded[source.id].supersede(address, provenance)
            into.consolidate(
                changes,
                [f"{namespace}/{m.key}" for m in sources],
                strategy,
                provenance,
            )
            return [Memory.from_aggregate(into)]

        try:
            (merged,) = self._transact(targets, decide)
        except (VersionConflict, _MixedSubjects):
            return None
        return merged, len(sources)

    def _erase(
        self,
        tenant: str,
        scope: str,
        reason: str | None,
        actor: str | None,
        *,
        subject: str | None = None,
        stream: UUID | None = None,
    ) -> ErasureReport:
        provenance = self._provenance(actor, None, None, reason)
        for _attempt in range(self._settings.write_retries + 1):
            plan = self._keyring.plan(tenant, scope, subject=subject, stream=stream)
            erasure = Erasure.record(
                tenant=tenant,
                scope=scope,
                streams=list(plan.streams),
                keys=plan.keys,
                actor=provenance.actor,
                reason=provenance.reason,
            )
            (erased,) = erasure.pending_events
            plan = replace(
                plan,
                erasure_id=erasure.id.hex,
                erasure_digest=erased.digest(),  # type: ignore[attr-defined]
            )
            try:
                recordings = self._app.save(erasure, erasure=plan)
            except KeysChanged:
                continue
            finally:
                self._keyring.forget()
            self._recorder.after_erasure()
            return ErasureReport(
                erasure_id=erasure.id,
                tenant=tenant,
                scope=scope,  # type: ignore[arg-type]
                streams=len(plan.streams),
                keys_destroyed=plan.keys,
                position=recordings[-1].notification.id,
            )
        raise VersionConflict(
            f"erasure of {scope} in tenant {tenant!r}: streams kept changing",
            expected=-1,
            actual=-1,
        )

    def _tenant(self, tenant: str | None) -> str:
        if self._bound_tenant is not None:
            if tenant is not None and tenant != self._bound_tenant:
                raise TenantMismatch(
                    f"this view is bound to tenant {self._bound_tenant!r}, "
                    f"not {tenant!r}"
                )
            return self._bound_tenant
        return check_tenant(
            tenant if tenant is not None else self._settings.default_tenant
        )

    def _namespace(
        self, namespace: object, field: str, *, root_only: bool = False
    ) -> Namespace:
        return Namespace.parse(
            namespace,
            extra_roots=self._settings.extra_roots,
            field=field,
            allow_root_only=root_only,
        )

    def _filters(
        self,
        *,
        tenant: str | None,
        namespace_prefix: str | None,
        memory_type: str | None,
        tags_any: Iterable[str] | None,
        tags_all: Iterable[str] | None,
        where: Mapping[str, Any] | None,
        updated_after: datetime | None,
        updated_before: datetime | None,
        **rest: Any,
    ) -> SearchQuery:
        """The checked filters shared by every search."""
        prefix = (
            str(self._namespace(namespace_prefix, "namespace_prefix", root_only=True))
            if namespace_prefix is not None
            else None
        )
        return SearchQuery(
            now=to_micros(self._now()),
            tenant=self._allow("read", tenant, prefix),
            namespace_prefix=prefix,
            memory_type=(
                self._memory_type(memory_type) if memory_type is not None else None
            ),
            tags_any=tag_filter(tags_any, "tags_any"),
            tags_all=tag_filter(tags_all, "tags_all"),
            where=where_conditions(where),
            updated_after=(
                to_micros(aware(updated_after, "updated_after"))
                if updated_after is not None
                else None
            ),
            updated_before=(
                to_micros(aware(updated_before, "updated_before"))
                if updated_before is not None
                else None
            ),
            **rest,
        )

    def _query_vector(self, query: object, field: str) -> Any:
        """A query as a vector of the index: checked, or embedded from text."""
        if self._index is None:
            raise ValidationError(
                field,
                "similarity search needs a vector index: open the store with an "
                "embedder or vector_dims",
            )
        _, dims = self._index
        if isinstance(query, str):
            embedder = self._settings.embedder
            if embedder is None:
                raise ValidationError(
                    field, "a text query needs an embedder; give a vector instead"
                )
            _check_query(query, field)
            if not query.strip():
                raise ValidationError(field, "must not be blank")
            unit = unit_vector(embed_checked(embedder, [query])[0])
            if unit is None:
                raise ValidationError(
                    field, f"{embedder.name} embeds it to a zero vector (no direction)"
                )
            return unit
        return check_vector(query, dims, field)

    def _memory_type(self, memory_type: object) -> str:
        return check_memory_type(
            memory_type, extra_types=self._settings.extra_memory_types
        )

    def _address(
        self, tenant: str | None, namespace: str, key: str, action: str = "read"
    ) -> tuple[str, str, str]:
        """The checked (tenant, namespace, key), after the access check."""
        address = (
            self._tenant(tenant),
            str(self._namespace(namespace, "namespace")),
            check_key(key),
        )
        self._access.check(action, *address)
        return address

    def _unchecked(self) -> MemoryStore:
        """This view without the policy, for reads a checked call implies."""
        if self._access.open:
            return self
        settings = self._settings.model_copy(update={"policy": None, "acl_check": None})
        return MemoryStore(self._app, settings, bound_tenant=self._bound_tenant)

    def _head(self) -> int:
        """The log's head position (no access check: internal)."""
        with self._recorder.read_transaction() as cursor:
            return self._recorder.head_position(cursor)

    def _allow_admin(self) -> None:
        """Admin of this view's tenant when bound, else of every tenant
        (a grant with tenants ``*``): the call covers the whole store."""
        if self._bound_tenant is not None:
            self._access.check("admin", self._bound_tenant, None)
        else:
            self._access.check("admin", "*", None)

    def _allow(
        self, action: str, tenant: str | None, namespace: str | None = None
    ) -> str:
        """The checked tenant, after the access check of ``action`` on
        ``namespace`` (None: the whole tenant)."""
        tenant_id = self._tenant(tenant)
        self._access.check(action, tenant_id, namespace)
        return tenant_id

    @staticmethod
    def _provenance(
        actor: str | None, task_id: str | None, source: str | None, reason: str | None
    ) -> Provenance:
        return Provenance(
            actor=check_optional_text(actor, "actor"),
            task_id=check_optional_text(task_id, "task_id"),
            source=check_optional_text(source, "source"),
            reason=check_optional_text(reason, "reason", max_length=4096),
        )

    @staticmethod
    def _check_expected(expected_version: object) -> None:
        if expected_version is None:
            return
        if (
            isinstance(expected_version, bool)
            or not isinstance(expected_version, int)
            or expected_version < 0
        ):
            raise ValidationError("expected_version", "must be an integer >= 0")

    def _check_value(self, value: Any) -> tuple[JSON, str]:
        wire = encode_value(value)
        encoded = canonical_json(wire)
        if len(encoded) > self._settings.max_value_bytes:
            raise ValidationError(
                "value",
                f"must encode to at most {self._settings.max_value_bytes} bytes",
            )
        return wire, sha256_hex(encoded)

    def _check_changes(
        self,
        *,
        value: Any,
        tags: Iterable[str] | None,
        metadata: Mapping[str, Any] | None,
        memory_type: str | None,
        importance: float | None,
        confidence: float | None,
        ttl: Any = UNSET,
        expires_at: Any = UNSET,
    ) -> dict[str, JSON]:
        changes: dict[str, JSON] = {}
        lifetime = check_lifetime(ttl, expires_at, unset=UNSET)
        if lifetime is not UNSET:
            changes["expires_at"] = lifetime
        if value is not UNSET:
            changes["value"], changes["content_hash"] = self._check_value(value)
        if tags is not None:
            changes["tags"] = list(check_tags(tags))
        if metadata is not None:
            changes["metadata"] = check_metadata(metadata)
        if memory_type is not None:
            changes["memory_type"] = self._memory_type(memory_type)
        if importance is not None:
            changes["importance"] = check_unit_interval(importance, "importance")
        if confidence is not None:
            changes["confidence"] = check_unit_interval(confidence, "confidence")
        return changes

    def _vector_changes(
        self, changes: dict[str, JSON], embedding: Any, embedding_model: object
    ) -> None:
        """Adds the caller's vector, checked against the index, to the changes."""
        if embedding is None:
            if embedding_model is not None:
                raise ValidationError("embedding_model", "is given without embedding")
            return
        if self._index is None:
            raise ValidationError(
                "embedding",
                "no vector index is configured: open the store with an embedder "
                "or vector_dims",
            )
        model, dims = self._index
        if embedding_model is not None and embedding_model != model:
            raise ValidationError(
                "embedding_model",
                f"is {embedding_model!r} but the vector index's model is {model!r}",
            )
        changes["embedding"] = encode_vector(check_vector(embedding, dims))
        changes["embedding_model"] = model

    def _embed_missing(self, batch: list[dict[str, JSON]]) -> None:
        """Embeds the new values that came without a vector, in one call to the
        embedder; with no embedder (or no text) a new value gets no vector."""
        embedder = self._settings.embedder
        pending: list[tuple[dict[str, JSON], str]] = []
        for changes in batch:
            if "value" not in changes or "embedding" in changes:
                continue
            text = text_of(changes["value"], self._embed_fields) if embedder else ""
            if text:
                pending.append((changes, text))
            else:
                changes["embedding"] = changes["embedding_model"] = None
        if pending:
            rows = embed_checked(embedder, [text for _, text in pending])
            for (changes, _), row in zip(pending, rows, strict=True):
                unit = unit_vector(row)  # None: the model gave no direction
                changes["embedding"] = encode_vector(unit) if unit is not None else None
                changes["embedding_model"] = embedder.name if unit is not None else None

    def _check_put(
        self,
        *,
        tenant: str | None,
        namespace: str,
        key: str,
        value: Any,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        memory_type: str | None = None,
        importance: float | None = None,
        confidence: float | None = None,
        expected_version: int | None = None,
        force: bool = False,
        embedding: Any = None,
        embedding_model: str | None = None,
        subject: str | None = None,
        ttl: Any = UNSET,
        expires_at: Any = UNSET,
    ) -> _PutItem:
        tenant_id, ns, checked_key = self._address(tenant, namespace, key, "write")
        data_subject = check_subject(subject)
        changes = self._check_changes(
            value=value,
            tags=tags,
            metadata=metadata,
            memory_type=memory_type,
            importance=importance,
            confidence=confidence,
            ttl=ttl,
            expires_at=expires_at,
        )
        self._vector_changes(changes, embedding, embedding_model)
        self._check_expected(expected_version)
        if not isinstance(force, bool):
            raise ValidationError("force", "must be a bool")
        return _PutItem(
            tenant=tenant_id,
            namespace=ns,
            key=checked_key,
            changes=changes,
            expected_version=expected_version,
            force=force,
            subject=data_subject,
        )

    def _load(self, memory_id: UUID) -> domain.Memory | None:
        return self._load_many([memory_id]).get(memory_id)

    def _load_many(self, memory_ids: list[UUID]) -> dict[UUID, domain.Memory]:
        folded = self._fold(memory_ids)
        assert all(isinstance(m, domain.Memory) for m in folded.values())
        return folded

    def _fold(self, stream_ids: list[UUID]) -> dict[UUID, Any]:
        """Folds many streams: each from its newest snapshot, if it has one,
        then its events after it (one query for the rest)."""
        mapper = self._app.mapper
        folded: dict[UUID, Any] = {}
        for stored in self._recorder.latest_snapshots(stream_ids):
            try:
                snapshot: Any = mapper.to_domain_event(stored)
            except SnapshotErased:
                continue  # its stream's events are folded from the start
            aggregate = snapshot.mutate(None)
            folded[aggregate.id] = aggregate
        after = {i: a.version for i, a in folded.items()}
        for stored in self._recorder.select_streams(stream_ids, after=after):
            event: Any = mapper.to_domain_event(stored)
            folded[event.originator_id] = event.mutate(folded.get(event.originator_id))
        return folded

    def _replay(self, memory_id: UUID, *, version: int) -> domain.Memory | None:
        """The memory at ``version``: from the newest snapshot at or before it."""
        mapper = self._app.mapper
        self._keyring.sync()
        memory: domain.Memory | None = None
        stored = self._recorder.latest_snapshot(memory_id, upto=version)
        if stored is not None:
            try:
                memory = mapper.to_domain_event(stored).mutate(None)  # type: ignore[attr-defined]
            except SnapshotErased:
                memory = None
        start = memory.version if memory is not None else 0
        for event in map(
            mapper.to_domain_event,
            self._recorder.select_events(memory_id, gt=start, lte=version),
        ):
            memory = event.mutate(memory)  # type: ignore[attr-defined]
        return memory

    def _write_batch(
        self, items: list[_PutItem], provenance: Provenance
    ) -> list[Memory]:
        targets = [
            _Target(
                domain.Memory.create_id(i.tenant, i.namespace, i.key),
                f"{i.namespace}/{i.key}",
                i.expected_version,
            )
            for i in items
        ]

        evictions = self._over_cap(items, targets)
        eviction_targets = [target for target, _ in evictions]

        def decide(loaded: dict[UUID, domain.Memory]) -> list[Memory]:
            results = []
            for target, item in zip(targets, items, strict=True):
                memory = self._apply_put(loaded.get(target.memory_id), item, provenance)
                loaded[target.memory_id] = memory
                results.append(Memory.from_aggregate(memory))
            for target, why in evictions:
                evicted = loaded.get(target.memory_id)
                if evicted is not None and evicted.memory_type == "working":
                    evicted.evict(replace(provenance, reason=why))
            return results

        # The evictions are saved first: a quota on live memories never sees
        # the batch's new ones before the room they take is made.
        return self._transact([*eviction_targets, *targets], decide)

    def _cap_of(self, namespace: str) -> int | None:
        caps = self._settings.working_memory_caps
        return caps.get(namespace, self._settings.working_memory_cap)

    def _over_cap(
        self, items: list[_PutItem], targets: list[_Target]
    ) -> list[tuple[_Target, str]]:
        """The working memories a batch pushes over their namespace's cap:
        the least recently updated ones, none of them written by the batch."""
        if self._settings.working_memory_cap is None and not (
            self._settings.working_memory_caps
        ):
            return []
        default_type = self._settings.default_memory_type
        arriving: dict[tuple[str, str], set[UUID]] = {}
        for item, target in zip(items, targets, strict=True):
            kind = item.changes.get("memory_type", default_type)
            if kind == "working" and self._cap_of(item.namespace) is not None:
                arriving.setdefault((item.tenant, item.namespace), set()).add(
                    target.memory_id
                )
        written = {target.memory_id for target in targets}
        chosen: list[tuple[_Target, str]] = []
        for (tenant, namespace), ids in arriving.items():
            cap = self._cap_of(namespace)
            assert cap is not None
            query = SearchQuery(
                tenant=tenant,
                namespace_prefix=namespace,
                memory_type="working",
                now=to_micros(self._now()),
                order_by="updated_at",
                limit=MAX_LIMIT,
            )
            sql, params = search_sql(query, self._dialect)
            rows = [
                row
                for row in self._recorder.fetch_all(sql, params)
                if row[2] == namespace
            ]
            present = {UUID(hex=row[0]) for row in rows}
            over = len(rows) + len(ids - present) - cap
            why = (
                f"working memory cap: at most {cap} in {namespace}; "
                "the least recently updated is evicted"
            )
            for row in rows:
                if over <= 0:
                    break
                memory_id = UUID(hex=row[0])
                if memory_id in written:
                    continue
                # Evicting is deleting: the writer must be allowed to.
                self._access.check("delete", tenant, namespace, row[3])
                chosen.append((_Target(memory_id, f"{row[2]}/{row[3]}", None), why))
                over -= 1
        return chosen

    def _apply_put(
        self, memory: domain.Memory | None, item: _PutItem, provenance: Provenance
    ) -> domain.Memory:
        changes = item.changes
        fields: dict[str, Any] = {
            "tenant": item.tenant,
            "namespace": item.namespace,
            "key": item.key,
            "subject": item.subject,
            "value": changes["value"],
            "content_hash": changes["content_hash"],
            "memory_type": changes.get(
                "memory_type", self._settings.default_memory_type
            ),
            "tags": changes.get("tags", []),
            "metadata": changes.get("metadata", {}),
            "importance": changes.get("importance", self._settings.default_importance),
            "confidence": changes.get("confidence", 1.0),
            "embedding": changes.get("embedding"),
            "embedding_model": changes.get("embedding_model"),
            "expires_at": changes.get("expires_at"),
        }
        if memory is None:
            return domain.Memory.start(provenance=provenance, **fields)
        if memory.erased:
            memory.recreate(fields, provenance)
            return memory
        if item.subject is not None and item.subject != memory.subject:
            raise ValidationError(
                "subject",
                f"{item.namespace}/{item.key} belongs to subject {memory.subject!r}; "
                "a memory's subject is fixed when it is created",
            )
        if "expires_at" not in changes and memory.expired_by(self._now()):
            changes = {**changes, "expires_at": None}  # a new life
        memory.restore(provenance)
        memory.revise(changes, provenance, force=item.force)
        return memory

    def _change(
        self,
        tenant: str,
        namespace: str,
        key: str,
        command: Callable[[domain.Memory], object],
        expected_version: int | None,
    ) -> Memory:
        target = _Target(
            domain.Memory.create_id(tenant, namespace, key),
            f"{namespace}/{key}",
            expected_version,
        )

        def decide(loaded: dict[UUID, domain.Memory]) -> list[Memory]:
            memory = loaded.get(target.memory_id)
            if memory is None:
                raise NotFound(f"no memory {namespace}/{key} in tenant {tenant!r}")
            command(memory)
            return [Memory.from_aggregate(memory)]

        return self._transact([target], decide)[0]

    def _transact(
        self,
        targets: list[_Target],
        decide: Callable[[dict[UUID, domain.Memory]], list[Memory]],
    ) -> list[Memory]:
        """Loads the streams, runs the commands, saves their events atomically.

        A writer that lost a race to another (the log refused a version already
        taken) is retried on the new state, unless the caller expected a
        version: then it gets VersionConflict, and nothing is written.
        """
        ids = list(dict.fromkeys(t.memory_id for t in targets))
        for _attempt in range(self._settings.write_retries + 1):
            loaded = self._load_many(ids)
            self._check_versions(targets, loaded)
            results = decide(loaded)
            try:
                self._save(*(loaded[i] for i in ids if i in loaded))
            except IntegrityError:
                if any(t.expected_version is not None for t in targets):
                    self._check_versions(targets, self._load_many(ids))
                continue
            return results
        subject = ", ".join(t.subject for t in targets[:3])
        raise VersionConflict(
            f"{subject}: still contended after {self._settings.write_retries} retries",
            expected=-1,
            actual=-1,
        )

    @staticmethod
    def _check_versions(
        targets: list[_Target], loaded: dict[UUID, domain.Memory]
    ) -> None:
        for target in targets:
            if target.expected_version is None:
                continue
            memory = loaded.get(target.memory_id)
            actual = memory.version if memory is not None else 0
            if actual != target.expected_version:
                raise VersionConflict(
                    target.subject, expected=target.expected_version, actual=actual
                )

    def _save(self, *memories: domain.Memory) -> None:
        if any(m.pending_events for m in memories):
            self._app.save(*memories)

    def _visible(
        self, memory: Memory, include_deleted: bool, at: datetime | None = None
    ) -> Memory | None:
        if include_deleted:
            return memory
        if memory.deleted:
            return None
        expires = memory.expires_at
        if expires is not None and expires <= (at or self._now()):
            return None
        return memory

    def _now(self) -> datetime:
        return self._runtime.clock()


def _check_query(query: object, field: str) -> str:
    """Any text up to 64 KiB: queries are words, whatever surrounds them."""
    if not isinstance(query, str):
        raise ValidationError(field, "must be a string")
    if len(query) > 65_536:
        raise ValidationError(field, "must be at most 65536 characters")
    try:
        query.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            field, "must be valid Unicode (no lone surrogates)"
        ) from None
    return query


def _check_min_score(min_score: object) -> float | None:
    if min_score is None:
        return None
    if (
        isinstance(min_score, bool)
        or not isinstance(min_score, int | float)
        or not -1.0 <= min_score <= 1.0
    ):
        raise ValidationError("min_score", "must be a number in [-1, 1]")
    return float(min_score)


def _check_half_life(half_life: object) -> timedelta | None:
    if half_life is None:
        return None
    if not isinstance(half_life, timedelta) or half_life <= timedelta(0):
        raise ValidationError("recency_half_life", "must be a positive timedelta")
    return half_life


def _check_vector_settings(settings: Settings) -> None:
    """An embedder that has the shape of one; fields that are paths; and an
    embedder and explicit dimensions that agree."""
    if settings.embedder is not None:
        embedder = check_embedder(settings.embedder)
        if settings.vector_dims is not None and settings.vector_dims != embedder.dims:
            raise ValidationError(
                "vector_dims",
                f"is {settings.vector_dims} but the embedder gives {embedder.dims}",
            )
        if settings.vector_model is not None and settings.vector_model != embedder.name:
            raise ValidationError(
                "vector_model",
                f"is {settings.vector_model!r} but the embedder is {embedder.name!r}",
            )
    elif settings.vector_model is not None and settings.vector_dims is None:
        raise ValidationError("vector_dims", "is required with vector_model")
    if settings.ann_threshold is not None:
        try:
            import usearch.index  # noqa: F401
        except ImportError:
            raise ValidationError(
                "ann_threshold", "needs the 'ann' extra: pip install 'mnemolog[ann]'"
            ) from None
    check_fields(settings.embed_fields)


@dataclass(frozen=True)
class _Target:
    """A memory a write touches, and the version the caller expects it at."""

    memory_id: UUID
    subject: str
    expected_version: int | None


class _PutItem:
    """A put whose every field has been checked."""

    __slots__ = (
        "changes",
        "expected_version",
        "force",
        "key",
        "namespace",
        "subject",
        "tenant",
    )

    def __init__(
        self,
        *,
        tenant: str,
        namespace: str,
        key: str,
        changes: dict[str, JSON],
        expected_version: int | None,
        force: bool,
        subject: str | None = None,
    ) -> None:
        self.subject = subject
        self.tenant = tenant
        self.namespace = namespace
        self.key = key
        self.changes = changes
        self.expected_version = expected_version
        self.force = force
