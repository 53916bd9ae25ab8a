"""Seed 004, the milestone's ``SessionService`` and ``MemoryService``, on a
mnemolog store.

Both services keep the seed's names, arguments, return shapes (dicts shaped
like rows of its ``sessions`` and ``memory_entries`` tables) and errors. Every
method is a coroutine that runs the store in a worker thread. Give both
services the same store to share it::

    store = mnemolog.open("sqlite:///abathur.db")
    sessions, memories = SessionService(store), MemoryService(store)

A service given a URL instead opens a store of its own and closes it at
``close()`` (or at the end of ``async with``); one given a store leaves it open.

Sessions are mnemolog sessions (:mod:`mnemolog.sessions`), so each change is
an event in the log. Where the seed leaves a choice open, this is what the
service does:

- ``event`` is any dict of JSON values; it is kept whole as the content of a
  mnemolog session event (its author is the event's ``actor`` or ``author``
  when that is a string of 1-256 characters, else ``unknown``) and comes back
  in ``events`` exactly as given, oldest first. ``set_state`` is a state-only
  event and is not listed in ``events``.
- A session is ``created`` until its first event or state change, which
  makes it ``active`` (both are events in the log). The lifecycle is the
  store's: ``created -> active <-> paused -> terminated -> archived``; a move
  it does not allow raises ``IllegalTransition`` (a ``ValueError``) and
  writes nothing, and a terminated or archived session takes no more events
  or state (:class:`SessionClosedError`, a ``ValueError``). Setting the status
  a session already has writes nothing.
- State keys are scoped by prefix, as in the store. Keys with no prefix, and
  with ``session:``, ``temp:`` or ``project:``, belong to the session; ``temp:``
  keys are kept until the session is terminated, then dropped, while the
  others stay readable. ``user:`` and ``app:`` keys are shared by every
  session of the user (app) and kept as memories in ``user:<user_id>:state``
  (``app:<app_name>:state``) under the rest of the key, with versions and
  audit. A session's own ``temp:`` keys are stored as ``session:~temp:...``
  (and keys that begin ``session:~`` get a second ``session:~``), which is how
  ``store.sessions`` shows them.
- ``terminated_at`` and ``archived_at`` are the times of those moves (None
  before). Times are text in SQLite's UTC form with microseconds,
  ``YYYY-MM-DD HH:MM:SS.ffffff``, as the seed's TIMESTAMP columns read back.
- ``metadata`` is the mnemolog session's metadata (``{}`` for sessions this
  service creates). ``app_name`` and ``user_id`` follow ``store.sessions``'
  rules: they name the namespaces of shared state (letters, digits and
  ``_.@+=-``). A missing session raises :class:`SessionNotFound` (a
  ``ValueError``) from every method but ``get_session``, which returns None.
  A duplicate ``session_id`` raises :class:`SessionAlreadyExists`, which is a
  ``sqlite3.IntegrityError`` (the seed's ``IntegrityError``) and a
  ``ValueError`` (what the seed's reference code raised).

Memories are mnemolog memories: ``namespace``, ``key``, ``value``,
``memory_type`` and ``metadata`` are the memory's own, and each version is a
version in the log.

- ``id`` is the log position of the event that wrote that version: an integer
  that identifies one version of one memory and never changes (rebuilding the
  read models keeps it; an export into another store does not). It is
  the ``position`` of that version's entry in ``store.audit(...)``. Reading it
  needs the audit timeline, so the store must project inline (the default)
  and, under a policy, the caller must be allowed to audit.
- ``add_memory`` writes version 1 with ``created_by`` as the actor and
  ``task_id`` as the task, and ``update_memory`` the next version (always one,
  even for an unchanged value), keeping the type and metadata, with
  ``updated_by``. ``delete_memory`` is a soft delete by ``deleted_by``: it is a
  version of its own, ``get_memory`` and ``search_memories`` stop finding the
  memory, and ``get_memory(version=N)`` and ``get_memory_history`` still
  return every version. Deleting what is absent or deleted writes nothing, as
  the seed's ``UPDATE`` would. Adding a deleted key brings it back with the
  new value, type and metadata: the log records a restore and then the new
  content, two versions (``id`` is the second's). Every write is in
  the audit timeline, with the service's source ``memory_service``; reads
  write no event, so they are not.
- ``is_deleted`` is a bool: whether the memory was deleted at that version.
  ``created_by`` stays the creator on later versions; ``updated_by`` is the
  actor of the version.
- ``value`` is any JSON value (the seed's are dicts); bytes come back as bytes.
- ``search_memories`` matches whole segments: ``user:alice`` finds
  ``user:alice`` and ``user:alice:preferences`` but not ``user:alicex``. The
  prefix may end with ``:`` and may be a root alone (``user``). It returns the
  current version of live memories, most recently updated first.
- ``get_memory_history`` returns every version, oldest first (an erased
  version is gone; see ``store.erase``); an unknown key gives ``[]``.
- ``consolidate_memories`` is ``store.consolidate`` on the namespace (not its
  descendants): duplicates (the same value) and conflicts (keys that
  differ only in case, spaces and punctuation, such as ``theme`` and
  ``Theme``) are merged into the most recently updated member, and the others
  are superseded (soft-deleted, in the audit timeline). It returns how many
  memories were merged away. ``consolidation_strategy`` is ``llm_based`` (the
  default), ``latest_wins`` or ``merge_metadata``. ``llm_based`` calls the
  ``merge`` the service was built with: ``merge(entries)`` gets the group's
  entries (dicts as ``get_memory`` returns, oldest first; the last one is
  kept) and returns the merged value; it may be a coroutine function, which
  runs on the caller's event loop. Without one, the store's
  ``Settings.consolidator`` is asked, and without that the call raises
  :class:`mnemolog.ValidationError` on field ``merge``. The merges are
  recorded with the actor ``consolidated_by`` (``memory_service`` unless the
  service was built with another) and the reason ``consolidate_memories``.
- Namespaces must contain ``:`` and begin with ``temp:``, ``session:``,
  ``user:``, ``app:`` or ``project:``, and ``memory_type`` must be
  ``semantic``, ``episodic`` or ``procedural``. Bad input, an existing key
  given to ``add_memory`` (:class:`MemoryExists`) and a missing one given to
  ``update_memory`` (:class:`MemoryNotFound`) raise ``ValueError`` subclasses
  that say what is wrong; nothing is written.
"""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import mnemolog
from mnemolog.domain.errors import (
    NotFound,
    ProjectionError,
    ValidationError,
    VersionConflict,
)
from mnemolog.domain.session import STATUSES, SessionClosed, scope_of
from mnemolog.domain.session import Session as SessionAggregate
from mnemolog.domain.values import (
    KNOWN_ROOTS,
    Namespace,
    check_key,
    check_metadata,
    check_optional_text,
    decode_value,
    encode_value,
)
from mnemolog.models import Memory, Session
from mnemolog.sessions import SessionExists
from mnemolog.store import MAX_LIMIT, MemoryStore

__all__ = [
    "MEMORY_TYPES",
    "NAMESPACE_ROOTS",
    "SOURCE",
    "Merge",
    "MemoryExists",
    "MemoryNotFound",
    "MemoryService",
    "SessionAlreadyExists",
    "SessionClosedError",
    "SessionNotFound",
    "SessionService",
]

NAMESPACE_ROOTS = ("temp", "session", "user", "app", "project")
"""The roots the seed allows a memory namespace to begin with."""
MEMORY_TYPES = ("semantic", "episodic", "procedural")
STRATEGIES = ("llm_based", "latest_wins", "merge_metadata")
SOURCE = "memory_service"
"""The source on every memory event the MemoryService writes."""
UNKNOWN_AUTHOR = "unknown"
KEPT = "session:~"
"""Marks a session's own key stored under another name (see the module doc)."""
TEMP = "temp:"
_TICK = timedelta(microseconds=1)

assert set(NAMESPACE_ROOTS) <= KNOWN_ROOTS

Merge = Callable[[list[dict[str, Any]]], Any]
"""Given a group's entries, oldest first, returns the merged value (or an
awaitable of it)."""


class SessionNotFound(NotFound, ValueError):
    """No session has that id (a ``ValueError``, as the seed raises)."""


class SessionAlreadyExists(SessionExists, sqlite3.IntegrityError):
    """A session with that id exists already: the seed's ``IntegrityError``
    (``sqlite3.IntegrityError``), also a ``ValueError``; nothing was written."""


class SessionClosedError(SessionClosed, ValueError):
    """The session is terminated or archived and takes no more events or state."""


class MemoryNotFound(NotFound, ValueError):
    """No live memory has that namespace and key."""


class MemoryExists(ValidationError):
    """A live memory has that namespace and key already; nothing was written."""

    def __init__(self, namespace: str, key: str) -> None:
        super().__init__(
            "key",
            f"a memory {namespace}/{key} exists already: update_memory() writes "
            "its next version",
        )


class _Service:
    """A service on a store it was given, or one it opened from a URL."""

    def __init__(self, store: str | MemoryStore) -> None:
        if isinstance(store, MemoryStore):
            self._store, self._owned = store, False
        elif isinstance(store, str):
            self._store, self._owned = mnemolog.open(store), True
        else:
            raise ValidationError("store", "must be a store URL or a MemoryStore")

    @property
    def store(self) -> MemoryStore:
        """The mnemolog store underneath."""
        return self._store

    def close(self) -> None:
        """Closes a store this service opened; one it was given stays open."""
        if self._owned:
            self._store.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


# ---- sessions --------------------------------------------------------------------


class SessionService(_Service):
    """The seed's sessions: events, scoped state and a lifecycle."""

    async def create_session(
        self,
        session_id: str,
        app_name: str,
        user_id: str,
        project_id: str | None = None,
        initial_state: dict[str, Any] | None = None,
    ) -> None:
        """Create new session with optional initial state."""
        await asyncio.to_thread(
            self._create, session_id, app_name, user_id, project_id, initial_state
        )

    async def get_session(self, session_id: str) -> dict[str, Any] | None:
        """Retrieve session by ID with parsed JSON fields."""
        return await asyncio.to_thread(self._get, session_id)

    async def append_event(
        self,
        session_id: str,
        event: dict[str, Any],
        state_delta: dict[str, Any] | None = None,
    ) -> None:
        """Append event to session with optional state update."""
        await asyncio.to_thread(self._append, session_id, event, state_delta)

    async def update_status(self, session_id: str, status: str) -> None:
        """Update session lifecycle status."""
        await asyncio.to_thread(self._move, session_id, status)

    async def get_state(self, session_id: str, key: str) -> Any | None:
        """Get specific state value from session."""
        if not isinstance(key, str) or not key:
            raise ValidationError("key", "must be a non-empty string")
        return (await asyncio.to_thread(self._existing, session_id))["state"].get(key)

    async def set_state(self, session_id: str, key: str, value: Any) -> None:
        """Set specific state value in session."""
        await asyncio.to_thread(self._set, session_id, key, value)

    async def list_active_sessions(
        self, user_id: str | None = None
    ) -> list[dict[str, Any]]:
        """List all active sessions, optionally filtered by user."""
        return await asyncio.to_thread(self._active, user_id)

    async def terminate_session(self, session_id: str) -> None:
        """Terminate session and clear temp: state."""
        await asyncio.to_thread(self._move, session_id, "terminated")

    # ---- in a worker thread -------------------------------------------------------

    def _create(
        self,
        session_id: str,
        app_name: str,
        user_id: str,
        project_id: str | None,
        initial_state: Mapping[str, Any] | None,
    ) -> None:
        try:
            self._store.sessions.create_session(
                session_id=session_id,
                app_name=app_name,
                user_id=user_id,
                project_id=project_id,
                state=_stored_state(initial_state, "initial_state"),
            )
        except SessionExists:
            raise SessionAlreadyExists(session_id) from None

    def _get(self, session_id: str) -> dict[str, Any] | None:
        session = self._store.sessions.get_session(session_id)
        return self._row(session) if session is not None else None

    def _existing(self, session_id: str) -> dict[str, Any]:
        found = self._get(session_id)
        if found is None:
            raise SessionNotFound(f"no session {session_id!r}")
        return found

    def _append(
        self,
        session_id: str,
        event: Mapping[str, Any],
        state_delta: Mapping[str, Any] | None,
    ) -> None:
        if not isinstance(event, Mapping):
            raise ValidationError("event", "must be a dict (a JSON object)")
        encode_value(event, field="event")
        delta = _stored_state(state_delta, "state_delta")
        with _session_errors(session_id):
            self._store.sessions.append_event(
                session_id, {"author": _author(event), "content": event}, delta
            )

    def _set(self, session_id: str, key: str, value: Any) -> None:
        if not isinstance(key, str) or not key:
            raise ValidationError("key", "must be a non-empty string")
        encode_value(value, field="value")
        with _session_errors(session_id):
            self._store.sessions.set_state(session_id, _stored_key(key), value)

    def _move(self, session_id: str, status: str) -> None:
        if status not in STATUSES:
            raise ValidationError(
                "status", f"must be one of {', '.join(STATUSES)}, not {status!r}"
            )
        with _session_errors(session_id):
            self._store.sessions.update_status(session_id, status)

    def _active(self, user_id: str | None) -> list[dict[str, Any]]:
        found = []
        for summary in self._store.sessions.list_active_sessions(user_id=user_id):
            row = self._get(summary.id)
            if row is not None:  # deleted since it was listed
                found.append(row)
        return found

    def _row(self, session: Session) -> dict[str, Any]:
        """The seed's sessions row of a mnemolog session."""
        shared = {k: v for k, v in session.state.items() if scope_of(k) != "session"}
        own = {k: v for k, v in session.state.items() if scope_of(k) == "session"}
        terminated_at = archived_at = None
        closed = session.status in ("terminated", "archived")
        if closed:
            own, terminated_at, archived_at = self._at_termination(session.id)
        state = {_given_key(k): v for k, v in own.items()}
        if closed:
            state = {k: v for k, v in state.items() if not k.startswith(TEMP)}
        return {
            "id": session.id,
            "app_name": session.app_name,
            "user_id": session.user_id,
            "project_id": session.project_id,
            "status": session.status,
            "events": [e.content for e in session.events if e.content is not None],
            "state": {**state, **shared},
            "metadata": dict(session.metadata),
            "created_at": _timestamp(session.created_at),
            "last_update_time": _timestamp(session.last_update_time),
            "terminated_at": _timestamp(terminated_at),
            "archived_at": _timestamp(archived_at),
        }

    def _at_termination(
        self, session_id: str
    ) -> tuple[dict[str, Any], datetime | None, datetime | None]:
        """The session's own state right before it was terminated (the store
        clears it then), and when it was terminated and archived."""
        stream = SessionAggregate.create_id(self._store.tenant_name, session_id)
        session: SessionAggregate | None = None
        own: dict[str, Any] = {}
        terminated_at = archived_at = None
        for event in self._store.sessions._events(stream):
            if isinstance(event, SessionAggregate.StatusChanged):
                if event.status == "terminated" and session is not None:
                    own = {k: decode_value(v) for k, v in session.state.items()}
                    terminated_at = event.timestamp
                elif event.status == "archived":
                    archived_at = event.timestamp
            session = event.mutate(session)
        return own, terminated_at, archived_at


@contextmanager
def _session_errors(session_id: str) -> Iterator[None]:
    """Turns the store's session errors into the seed's ValueErrors."""
    try:
        yield
    except SessionClosed:
        raise SessionClosedError(
            f"session {session_id!r} is closed (terminated or archived): it "
            "takes no more events or state"
        ) from None
    except NotFound:
        raise SessionNotFound(f"no session {session_id!r}") from None


def _stored_key(key: str) -> str:
    """A caller's state key as the store keeps it: own ``temp:`` keys (and
    keys that look like the marker) get the marker, so they live on."""
    return KEPT + key if key.startswith((TEMP, KEPT)) else key


def _given_key(key: str) -> str:
    return key[len(KEPT) :] if key.startswith(KEPT) else key


def _stored_state(state: Mapping[str, Any] | None, field: str) -> dict[str, Any]:
    if state is None:
        return {}
    if not isinstance(state, Mapping):
        raise ValidationError(field, "must be a dict of state keys to JSON values")
    stored: dict[str, Any] = {}
    for key, value in state.items():
        if not isinstance(key, str) or not key:
            raise ValidationError(field, "keys must be non-empty strings")
        encode_value(value, field=f"{field}.{key}")
        stored[_stored_key(key)] = value
    return stored


def _author(event: Mapping[str, Any]) -> str:
    for name in ("actor", "author"):
        author = event.get(name)
        if isinstance(author, str) and 0 < len(author) <= 256:
            return author
    return UNKNOWN_AUTHOR


def _timestamp(moment: datetime | None) -> str | None:
    """SQLite's UTC TIMESTAMP text, with microseconds."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


# ---- memories --------------------------------------------------------------------


class MemoryService(_Service):
    """The seed's namespaced, versioned memories, with history, soft delete,
    consolidation and audit."""

    def __init__(
        self,
        store: str | MemoryStore,
        *,
        merge: Merge | None = None,
        consolidated_by: str = SOURCE,
    ) -> None:
        if merge is not None and not callable(merge):
            raise ValidationError("merge", "must be a callable (entries -> value)")
        self._consolidated_by = _actor(consolidated_by, "consolidated_by")
        super().__init__(store)
        if not self._store.settings.inline_projections:
            self.close()
            raise ValidationError(
                "store",
                "needs inline_projections=True: entry ids are log positions, "
                "read from the audit timeline as each write lands",
            )
        self._merge = merge

    async def add_memory(  # noqa: PLR0917 (the seed takes them by position)
        self,
        namespace: str,
        key: str,
        value: dict[str, Any],
        memory_type: str,
        created_by: str,
        task_id: str,
        metadata: dict[str, Any] | None = None,
    ) -> int:
        """Add new memory entry (version 1)."""
        return await asyncio.to_thread(
            self._add,
            namespace,
            key,
            value,
            memory_type=memory_type,
            created_by=created_by,
            task_id=task_id,
            metadata=metadata,
        )

    async def get_memory(
        self, namespace: str, key: str, version: int | None = None
    ) -> dict[str, Any] | None:
        """Retrieve memory entry (latest or specific version)."""
        return await asyncio.to_thread(self._get, namespace, key, version)

    async def update_memory(
        self,
        namespace: str,
        key: str,
        value: dict[str, Any],
        updated_by: str,
        task_id: str,
    ) -> int:
        """Update memory by creating new version."""
        return await asyncio.to_thread(
            self._update, namespace, key, value, updated_by, task_id
        )

    async def delete_memory(
        self, namespace: str, key: str, deleted_by: str, task_id: str
    ) -> None:
        """Soft-delete memory (set is_deleted=1)."""
        await asyncio.to_thread(self._delete, namespace, key, deleted_by, task_id)

    async def search_memories(
        self, namespace_prefix: str, memory_type: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Search memories by namespace prefix and optional type."""
        return await asyncio.to_thread(
            self._search, namespace_prefix, memory_type, limit
        )

    async def get_memory_history(
        self, namespace: str, key: str
    ) -> list[dict[str, Any]]:
        """Get all versions of a memory entry."""
        return await asyncio.to_thread(self._history, namespace, key)

    async def consolidate_memories(
        self, namespace: str, consolidation_strategy: str = "llm_based"
    ) -> int:
        """Consolidate conflicting memories in namespace."""
        loop = asyncio.get_running_loop()
        return await asyncio.to_thread(
            self._consolidate, namespace, consolidation_strategy, loop
        )

    # ---- in a worker thread -------------------------------------------------------

    def _add(
        self,
        namespace: str,
        key: str,
        value: Any,
        *,
        memory_type: str,
        created_by: str,
        task_id: str | None,
        metadata: Mapping[str, Any] | None,
    ) -> int:
        ns, checked_key = _namespace(namespace), check_key(key)
        kind = _memory_type(memory_type)
        actor = _actor(created_by, "created_by")
        task = check_optional_text(task_id, "task_id")
        meta = check_metadata(metadata)
        store = self._store
        found = store.get(ns, checked_key, include_deleted=True)
        if found is not None and not found.deleted:
            raise MemoryExists(ns, checked_key)
        expected = found.version if found is not None else 0
        for _attempt in range(store.settings.write_retries + 1):
            try:
                memory = store.put(
                    ns,
                    checked_key,
                    value,
                    memory_type=kind,
                    metadata=meta,
                    tags=(),
                    actor=actor,
                    task_id=task,
                    source=SOURCE,
                    expected_version=expected,
                )
            except VersionConflict as conflict:
                if store.get(ns, checked_key) is not None:
                    raise MemoryExists(ns, checked_key) from None
                expected = conflict.actual  # deleted or expired meanwhile
                continue
            return self._position(memory)
        raise VersionConflict(
            f"memory {ns}/{checked_key}", expected=expected, actual=-1
        )

    def _get(
        self, namespace: str, key: str, version: int | None
    ) -> dict[str, Any] | None:
        ns, checked_key = _namespace(namespace), check_key(key)
        memory = self._store.get(
            ns, checked_key, version=version, include_deleted=version is not None
        )
        return _entry(memory, self._position(memory)) if memory is not None else None

    def _update(
        self, namespace: str, key: str, value: Any, updated_by: str, task_id: str | None
    ) -> int:
        ns, checked_key = _namespace(namespace), check_key(key)
        actor = _actor(updated_by, "updated_by")
        task = check_optional_text(task_id, "task_id")
        try:
            memory = self._store.update(
                ns,
                checked_key,
                value,
                actor=actor,
                task_id=task,
                source=SOURCE,
                force=True,
            )
        except NotFound:
            raise MemoryNotFound(
                f"no memory {ns}/{checked_key} to update: add_memory() creates it"
            ) from None
        return self._position(memory)

    def _delete(
        self, namespace: str, key: str, deleted_by: str, task_id: str | None
    ) -> None:
        ns, checked_key = _namespace(namespace), check_key(key)
        actor = _actor(deleted_by, "deleted_by")
        task = check_optional_text(task_id, "task_id")
        store = self._store
        for _attempt in range(store.settings.write_retries + 1):
            memory = store.get(ns, checked_key)
            if memory is None:
                return
            try:
                store.delete(
                    ns,
                    checked_key,
                    actor=actor,
                    task_id=task,
                    source=SOURCE,
                    expected_version=memory.version,
                )
            except VersionConflict:
                continue  # changed meanwhile: look again
            except NotFound:
                return
            return
        raise VersionConflict(f"memory {ns}/{checked_key}", expected=-1, actual=-1)

    def _search(
        self, namespace_prefix: str, memory_type: str | None, limit: int
    ) -> list[dict[str, Any]]:
        prefix = _prefix(namespace_prefix)
        kind = _memory_type(memory_type) if memory_type is not None else None
        found = self._store.search(
            namespace_prefix=prefix, memory_type=kind, limit=limit
        )
        return [_entry(m, self._position(m)) for m in found]

    def _history(self, namespace: str, key: str) -> list[dict[str, Any]]:
        ns, checked_key = _namespace(namespace), check_key(key)
        changes = self._store.history(ns, checked_key)
        if not changes:
            return []
        positions = self._positions(ns, checked_key)
        return [
            _entry(change.memory, _known(positions, change.memory))
            for change in changes
        ]

    def _consolidate(
        self, namespace: str, strategy: str, loop: asyncio.AbstractEventLoop
    ) -> int:
        ns = _namespace(namespace)
        if strategy not in STRATEGIES:
            raise ValidationError(
                "consolidation_strategy", f"must be one of {', '.join(STRATEGIES)}"
            )
        merge: Callable[[list[Memory]], dict[str, Any]] | None = None
        if strategy == "llm_based" and self._merge is not None:
            given = self._merge

            def merge_entries(group: list[Memory]) -> dict[str, Any]:
                entries = [_entry(m, self._position(m)) for m in group]
                merged = given(entries)
                if inspect.isawaitable(merged):
                    merged = _on_loop(merged, loop)
                return {"value": merged}

            merge = merge_entries
        result = self._store.consolidate(
            ns,
            strategy=strategy,
            merge=merge,
            actor=self._consolidated_by,
            reason="consolidate_memories",
        )
        return result.superseded

    # ---- ids ----------------------------------------------------------------------

    def _position(self, memory: Memory) -> int:
        """The log position of the event that wrote this version."""
        at = memory.updated_at
        return _known(
            self._positions(memory.namespace, memory.key, since=at, until=at + _TICK),
            memory,
        )

    def _positions(
        self,
        namespace: str,
        key: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict[int, int]:
        """Version to log position, for the versions of a memory in the audit
        timeline (between ``since`` and ``until``, when given)."""
        found: dict[int, int] = {}
        after: int | None = None
        while True:
            page = self._store.audit(
                namespace_prefix=namespace,
                key=key,
                since=since,
                until=until,
                after_position=after,
                limit=MAX_LIMIT,
            )
            for entry in page:
                if entry.namespace == namespace:
                    found[entry.version] = entry.position
            if len(page) < MAX_LIMIT:
                return found
            after = page[-1].position


def _known(positions: Mapping[int, int], memory: Memory) -> int:
    try:
        return positions[memory.version]
    except KeyError:
        raise ProjectionError(
            f"memory {memory.namespace}/{memory.key} version {memory.version} is "
            "not in the audit timeline (erased meanwhile, or the read models lag)"
        ) from None


def _on_loop(awaitable: Awaitable[Any], loop: asyncio.AbstractEventLoop) -> Any:
    """Runs a coroutine of the caller's on the caller's event loop, which
    waits for this worker thread meanwhile."""

    async def wait() -> Any:
        return await awaitable

    return asyncio.run_coroutine_threadsafe(wait(), loop).result()


def _entry(memory: Memory, position: int) -> dict[str, Any]:
    """The seed's memory_entries row of one version of a memory."""
    return {
        "id": position,
        "namespace": memory.namespace,
        "key": memory.key,
        "value": memory.value,
        "memory_type": memory.memory_type,
        "version": memory.version,
        "is_deleted": memory.deleted,
        "metadata": dict(memory.metadata),
        "created_by": memory.created_by,
        "updated_by": memory.updated_by,
        "created_at": _timestamp(memory.created_at),
        "updated_at": _timestamp(memory.updated_at),
    }


_ROOTS_RULE = (
    "must contain ':' and begin with one of "
    + ", ".join(f"{root}:" for root in NAMESPACE_ROOTS)
    + " (like 'user:alice:preferences')"
)


def _namespace(namespace: object) -> str:
    if (
        not isinstance(namespace, str)
        or ":" not in namespace
        or namespace.split(":", 1)[0] not in NAMESPACE_ROOTS
    ):
        raise ValidationError("namespace", f"{_ROOTS_RULE}, not {namespace!r}")
    return str(Namespace.parse(namespace, field="namespace"))


def _prefix(prefix: object) -> str:
    """A namespace prefix: a namespace, or a root alone; a final ':' is dropped."""
    if not isinstance(prefix, str) or prefix.split(":", 1)[0] not in NAMESPACE_ROOTS:
        raise ValidationError(
            "namespace_prefix",
            "must begin with one of "
            + ", ".join(NAMESPACE_ROOTS)
            + f" (like 'user:alice'), not {prefix!r}",
        )
    trimmed = prefix.removesuffix(":")
    return str(Namespace.parse(trimmed, field="namespace_prefix", allow_root_only=True))


def _memory_type(memory_type: object) -> str:
    if memory_type not in MEMORY_TYPES:
        raise ValidationError(
            "memory_type",
            f"must be one of {', '.join(MEMORY_TYPES)}, not {memory_type!r}",
        )
    assert isinstance(memory_type, str)
    return memory_type


def _actor(actor: object, field: str) -> str:
    if not isinstance(actor, str) or not actor:
        raise ValidationError(field, "must be a non-empty string (who did it)")
    checked = check_optional_text(actor, field)
    assert checked is not None
    return checked
