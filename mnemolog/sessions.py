"""Sessions: conversations as event streams, with state scoped by key prefix.

``user:`` and ``app:`` keys are shared across sessions and stored as memories
in ``user:<user_id>:state`` and ``app:<app_name>:state``, so they have versions
and audit; they are written in the same transaction as the session's event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError

from mnemolog.access import session_namespace
from mnemolog.domain import memory as domain_memory
from mnemolog.domain.errors import NotFound, ValidationError, VersionConflict
from mnemolog.domain.memory import Provenance
from mnemolog.domain.session import (
    STATUSES,
    scope_of,
    state_after,
)
from mnemolog.domain.session import (
    Session as SessionAggregate,
)
from mnemolog.domain.values import (
    Namespace,
    check_key,
    check_metadata,
    check_optional_text,
    check_text,
    decode_value,
    encode_value,
)
from mnemolog.domain.vectors import text_leaves
from mnemolog.inputs import aware, bounded_int
from mnemolog.models import (
    Memory,
    Scored,
    Session,
    SessionEvent,
    SessionList,
    SessionSummary,
)
from mnemolog.projections.current_state import from_micros
from mnemolog.projections.sessions import SessionQuery, list_sessions_sql

if TYPE_CHECKING:
    from mnemolog.store import MemoryStore

SYSTEM_AUTHOR = "system"
MAX_LIST = 1000


class SessionExists(ValidationError):
    """A session with that id exists already in the tenant; nothing was written."""

    def __init__(self, session_id: str) -> None:
        super().__init__("session_id", f"a session {session_id!r} exists already")


class SessionService:
    """The sessions of one store (and tenant). Thread-safe, like the store."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    # ---- writes --------------------------------------------------------------

    def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str | None = None,
        project_id: str | None = None,
        state: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        actor: str | None = None,
    ) -> Session:
        """Starts a session; shared keys of ``state`` go to their memories."""
        sid = _session_id(session_id if session_id is not None else uuid4().hex)
        _segment(app_name, "app_name")
        _segment(user_id, "user_id")
        if project_id is not None:
            _segment(project_id, "project_id")
        initial = _state(state, "state")
        meta = check_metadata(metadata)
        actor = check_optional_text(actor, "actor")
        tenant = self._store.tenant_name

        def decide(session: SessionAggregate | None) -> SessionAggregate:
            if session is not None:
                raise SessionExists(sid)
            return SessionAggregate.start(
                tenant=tenant,
                session_id=sid,
                app_name=app_name,
                user_id=user_id,
                project_id=project_id,
                state=initial,
                metadata=meta,
                actor=actor,
            )

        self._write(
            sid, decide, delta=initial, user_id=user_id, app_name=app_name, actor=actor
        )
        found = self._read(sid, check=False)  # allowed to write it: it is theirs
        assert found is not None
        return found

    def append_event(
        self,
        session_id: str,
        event: Mapping[str, Any],
        state_delta: Mapping[str, Any] | None = None,
        *,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> SessionEvent:
        """Appends an event and applies its state delta, atomically.

        ``event`` holds ``author`` (required), ``content``, ``actions``,
        ``invocation_id`` and optionally its own ``id``. A concurrent append
        lands after this one, or, with ``expected_version``, fails with
        VersionConflict; neither is lost.
        """
        sid = _session_id(session_id)
        if not isinstance(event, Mapping):
            raise ValidationError("event", "must be a mapping with at least 'author'")
        unknown = set(event) - {"id", "author", "content", "actions", "invocation_id"}
        if unknown:
            names = ", ".join(sorted(map(repr, unknown)))
            raise ValidationError("event", f"unknown field(s): {names}")
        author = event.get("author")
        if not isinstance(author, str) or not author or len(author) > 256:
            raise ValidationError("event.author", "must be a string of 1-256 chars")
        check_text(author, "event.author")
        event_id = _event_id(event.get("id", uuid4().hex))
        content = encode_value(event.get("content"), field="event.content")
        try:
            actions = check_metadata(event.get("actions"))
        except ValidationError as e:
            raise ValidationError(
                "event.actions" + e.field.removeprefix("metadata"), e.rule
            ) from None
        invocation_id = check_optional_text(
            event.get("invocation_id"), "event.invocation_id"
        )
        delta = _state(state_delta, "state_delta")
        actor = check_optional_text(actor, "actor")
        if expected_version is not None:
            bounded_int(expected_version, "expected_version", 0, 2**62)

        def decide(session: SessionAggregate | None) -> SessionAggregate:
            session = _existing(session, sid)
            session.append(
                event_id=event_id,
                author=author,
                content=content,
                actions=actions,
                state_delta=delta,
                invocation_id=invocation_id,
                actor=actor,
            )
            return session

        session = self._write(
            sid, decide, delta=delta, actor=actor, expected_version=expected_version
        )
        return SessionEvent(
            id=event_id,
            author=author,
            invocation_id=invocation_id,
            content=event.get("content"),
            actions=actions,
            state_delta={k: v for k, v in delta.items() if scope_of(k) != "temp"},
            timestamp=session.modified_on,
        )

    def update_status(
        self, session_id: str, status: str, *, actor: str | None = None
    ) -> Session:
        """Moves the session in its lifecycle; an illegal move raises
        IllegalTransition and writes nothing."""
        sid = _session_id(session_id)
        if status not in STATUSES:
            raise ValidationError("status", f"must be one of {', '.join(STATUSES)}")
        actor = check_optional_text(actor, "actor")

        def decide(session: SessionAggregate | None) -> SessionAggregate:
            session = _existing(session, sid)
            session.move_to(status, actor=actor)
            return session

        self._write(sid, decide, delta={}, actor=actor)
        found = self._read(sid, num_recent_events=0, check=False)
        assert found is not None
        return found

    def delete_session(self, session_id: str, *, actor: str | None = None) -> None:
        """Deletes the session: no read, list or append finds it afterwards,
        and its id is not reused. Its events stay in the log for audit (erasing
        them is the security chapter's). Shared user: and app: state lives on.
        Deleting an absent or deleted session raises NotFound."""
        sid = _session_id(session_id)
        actor = check_optional_text(actor, "actor")

        def decide(session: SessionAggregate | None) -> SessionAggregate:
            session = _existing(session, sid)
            session.delete(actor=actor)
            return session

        self._write(sid, decide, delta={}, actor=actor, action="delete")

    def add_session_to_memory(
        self,
        session: Session | str,
        *,
        namespace: str | None = None,
        authors: Iterable[str] | None = None,
        actor: str | None = None,
    ) -> list[Memory]:
        """Keeps the session's salient events as episodic memories, one per
        event with text in its content, in ``session:<id>`` or ``namespace``.

        Each memory's key is the event id and its value
        ``{"author", "text", "timestamp"}``; its metadata names the app, the
        user, the session, the author and the invocation, which is how
        :meth:`search_memory` finds them. ``authors`` keeps only events by
        those authors. Adding the same session again rewrites nothing that
        is unchanged. All of it lands in one transaction.
        """
        if isinstance(session, Session):
            session = session.id  # the caller's copy may be partial: read it whole
        if authors is not None and (
            isinstance(authors, str)
            or not isinstance(authors, Iterable)
            or not all(isinstance(a, str) for a in authors)
        ):
            raise ValidationError("authors", "must be a list of author names")
        found = self.get_session(session)
        if found is None:
            raise NotFound(f"no session {session!r}")
        session = found
        target = namespace if namespace is not None else f"session:{session.id}"
        wanted = None if authors is None else set(authors)
        items = []
        for event in session.events:
            if wanted is not None and event.author not in wanted:
                continue
            text = "\n".join(text_leaves(event.content)).strip()
            if not text:
                continue
            items.append(
                {
                    "namespace": target,
                    "key": event.id,
                    "value": {
                        "author": event.author,
                        "text": text,
                        "timestamp": event.timestamp.isoformat(),
                    },
                    "memory_type": "episodic",
                    "subject": session.user_id,
                    "tags": ["session-memory"],
                    "metadata": {
                        "app_name": session.app_name,
                        "user_id": session.user_id,
                        "session_id": session.id,
                        "author": event.author,
                        "invocation_id": event.invocation_id,
                    },
                }
            )
        return self._store.put_many(items, actor=actor, source=f"session:{session.id}")

    def search_memory(
        self, app_name: str, user_id: str, query: str, *, k: int = 10
    ) -> list[Scored[Memory]]:
        """Memories that :meth:`add_session_to_memory` kept for this app and
        user, best first for ``query``: by meaning and words when the store
        has an embedder, by words otherwise (see ``store.retrieve``)."""
        _segment(app_name, "app_name")
        _segment(user_id, "user_id")
        return self._store.retrieve(
            query,
            k=k,
            memory_type="episodic",
            tags_all=["session-memory"],
            where={"app_name": app_name, "user_id": user_id},
        )

    def terminate_session(
        self, session_id: str, *, actor: str | None = None
    ) -> Session:
        """Terminates: the session's own and temp: state are cleared; shared
        user: and app: state lives on."""
        return self.update_status(session_id, "terminated", actor=actor)

    def set_state(
        self, session_id: str, key: str, value: Any, *, actor: str | None = None
    ) -> None:
        """Sets one state key, as an event by ``system`` with that delta."""
        if not isinstance(key, str) or not key:
            raise ValidationError("key", "must be a non-empty string")
        self.append_event(
            session_id, {"author": SYSTEM_AUTHOR}, {key: value}, actor=actor
        )

    def rewind(
        self, session_id: str, to_event_id: str, *, actor: str | None = None
    ) -> Session:
        """Restores the session's own state as it was after ``to_event_id`` by a
        compensating event; the history is kept."""
        sid = _session_id(session_id)
        try:
            target = check_key(to_event_id)
        except ValidationError as e:
            raise ValidationError("to_event_id", e.rule) from None

        def decide(session: SessionAggregate | None) -> SessionAggregate:
            session = _existing(session, sid)
            state = state_after(self._events(session.id), target)
            if state is None:
                raise NotFound(f"session {sid!r} has no event {target!r}")
            session.rewind(target, state, actor=actor)
            return session

        self._write(sid, decide, delta={}, actor=actor)
        found = self._read(sid, check=False)
        assert found is not None
        return found

    # ---- reads ---------------------------------------------------------------

    def get_session(
        self,
        session_id: str,
        *,
        num_recent_events: int | None = None,
        after: datetime | None = None,
    ) -> Session | None:
        """The session with its events (the newest ``num_recent_events``, or
        those after ``after``) and its merged state; None if there is none."""
        return self._read(
            _session_id(session_id),
            num_recent_events=num_recent_events,
            after=after,
            check=True,
        )

    def _read(
        self,
        sid: str,
        *,
        num_recent_events: int | None = None,
        after: datetime | None = None,
        check: bool,
    ) -> Session | None:
        """get_session; ``check=False`` right after this caller's own write
        (allowed to write is enough to be shown what it wrote)."""
        if num_recent_events is not None:
            bounded_int(num_recent_events, "num_recent_events", 0, 2**31)
        since = aware(after, "after") if after is not None else None
        stream = SessionAggregate.create_id(self._store.tenant_name, sid)
        events = self._events(stream)
        if not events:
            return None
        session: SessionAggregate | None = None
        appended: list[SessionEvent] = []
        for event in events:
            session = event.mutate(session)
            if isinstance(event, SessionAggregate.EventAppended):
                appended.append(_public_event(event))
        assert session is not None
        if session.erased:
            return None
        if check:
            self._store._access.check(
                "read",
                self._store.tenant_name,
                session_namespace(session.app_name, session.user_id),
            )
        if session.deleted:
            return None
        if since is not None:
            appended = [e for e in appended if e.timestamp > since]
        if num_recent_events is not None:
            appended = (
                appended[len(appended) - num_recent_events :]
                if num_recent_events
                else []
            )
        state = {k: decode_value(v) for k, v in session.state.items()}
        state.update(self._shared(session.user_id, session.app_name, check=check))
        return Session(
            id=session.session_id,
            app_name=session.app_name,
            user_id=session.user_id,
            project_id=session.project_id,
            status=session.status,  # type: ignore[arg-type]
            state=state,
            metadata=session.metadata,
            events=tuple(appended),
            event_count=session.event_count,
            version=session.version,
            created_at=session.created_on,
            last_update_time=session.modified_on,
        )

    def get_state(self, session_id: str, key: str) -> Any | None:
        """One key of the merged state, or None."""
        if not isinstance(key, str) or not key:
            raise ValidationError("key", "must be a non-empty string")
        session = self.get_session(session_id, num_recent_events=0)
        if session is None:
            raise NotFound(f"no session {session_id!r}")
        return session.state.get(key)

    def list_sessions(
        self,
        *,
        app_name: str | None = None,
        user_id: str | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> SessionList:
        """Sessions of this tenant, most recently updated first, a page at a time."""
        if status is not None and status not in STATUSES:
            raise ValidationError("status", f"must be one of {', '.join(STATUSES)}")
        offset = 0
        if cursor is not None:
            if (
                not isinstance(cursor, str)
                or not cursor.isascii()
                or not cursor.isdigit()
                or len(cursor) > 12
            ):
                raise ValidationError("cursor", "must be a cursor from a previous page")
            offset = int(cursor)
        if app_name is not None:
            _segment(app_name, "app_name")
        if user_id is not None:
            _segment(user_id, "user_id")
        self._store._access.check(
            "read", self._store.tenant_name, session_namespace(app_name, user_id)
        )
        query = SessionQuery(
            tenant=self._store.tenant_name,
            app_name=app_name,
            user_id=user_id,
            status=status,
            limit=bounded_int(limit, "limit", 1, MAX_LIST) + 1,
            offset=offset,
        )
        sql, params = list_sessions_sql(query, self._store._dialect)
        rows = self._store._recorder.fetch_all(sql, params)
        page = [_summary(row) for row in rows[: query.limit - 1]]
        more = len(rows) >= query.limit
        return SessionList(
            sessions=tuple(page), next_cursor=str(offset + len(page)) if more else None
        )

    def list_active_sessions(self, user_id: str | None = None) -> list[SessionSummary]:
        """Every active session, of one user if given."""
        found: list[SessionSummary] = []
        cursor: str | None = None
        while True:
            page = self.list_sessions(
                user_id=user_id, status="active", limit=MAX_LIST, cursor=cursor
            )
            found += page.sessions
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    # ---- internals -----------------------------------------------------------

    def _events(self, stream: UUID) -> list[SessionAggregate.Event]:
        mapper = self._store._app.mapper
        self._store._keyring.sync()
        events = []
        for stored in self._store._recorder.select_events(stream):
            event = mapper.to_domain_event(stored)
            assert isinstance(event, SessionAggregate.Event)
            events.append(event)
        return events

    def _load(self, stream: UUID) -> SessionAggregate | None:
        self._store._keyring.sync()
        folded = self._store._fold([stream]).get(stream)
        assert folded is None or isinstance(folded, SessionAggregate)
        return None if folded is None or folded.erased else folded

    def _shared(self, user_id: str, app_name: str, *, check: bool) -> dict[str, Any]:
        state: dict[str, Any] = {}
        store = self._store if check else self._store._unchecked()
        for scope, owner in (("app", app_name), ("user", user_id)):
            for memory in store.search(
                namespace_prefix=f"{scope}:{owner}:state", limit=10_000
            ):
                if memory.namespace == f"{scope}:{owner}:state":
                    state[f"{scope}:{memory.key}"] = memory.value
        return state

    def _write(
        self,
        sid: str,
        decide: Any,
        *,
        delta: Mapping[str, Any],
        user_id: str | None = None,
        app_name: str | None = None,
        actor: str | None = None,
        expected_version: int | None = None,
        action: str = "write",
    ) -> SessionAggregate:
        """Loads the session, runs ``decide``, and saves its events with the
        shared-state memories of ``delta`` in one transaction; retries a lost
        race unless a version was expected. The caller must be allowed to
        ``action`` the session's namespace (see mnemolog.access)."""
        store = self._store
        stream = SessionAggregate.create_id(store.tenant_name, sid)
        provenance = Provenance(actor=actor, source="session", task_id=sid)
        for _attempt in range(store.settings.write_retries + 1):
            current = self._load(stream)
            if expected_version is not None:
                actual = current.version if current is not None else 0
                if actual != expected_version:
                    raise VersionConflict(
                        f"session {sid}", expected=expected_version, actual=actual
                    )
            session = decide(current)
            store._access.check(
                action,
                store.tenant_name,
                session_namespace(session.app_name, session.user_id),
            )
            owner_user = user_id or session.user_id
            owner_app = app_name or session.app_name
            memories = self._shared_writes(delta, owner_user, owner_app, provenance)
            try:
                store._save(session, *memories)
            except IntegrityError:
                if expected_version is not None:
                    latest = self._load(stream)
                    raise VersionConflict(
                        f"session {sid}",
                        expected=expected_version,
                        actual=latest.version if latest else 0,
                    ) from None
                continue
            return session  # type: ignore[no-any-return]
        raise VersionConflict(f"session {sid}: still contended", expected=-1, actual=-1)

    def _shared_writes(
        self,
        delta: Mapping[str, Any],
        user_id: str,
        app_name: str,
        provenance: Provenance,
    ) -> list[domain_memory.Memory]:
        store = self._store
        items = []
        for key, value in delta.items():
            scope = scope_of(key)
            if scope not in ("user", "app"):
                continue
            owner = user_id if scope == "user" else app_name
            items.append(
                store._check_put(
                    tenant=None,
                    namespace=f"{scope}:{owner}:state",
                    key=key[len(scope) + 1 :],
                    value=decode_value(value),
                    subject=user_id if scope == "user" else None,
                )
            )
        if not items:
            return []
        ids = [
            domain_memory.Memory.create_id(i.tenant, i.namespace, i.key) for i in items
        ]
        loaded = store._load_many(ids)
        for memory_id, item in zip(ids, items, strict=True):
            loaded[memory_id] = store._apply_put(
                loaded.get(memory_id), item, provenance
            )
        return list(loaded.values())


def _existing(session: SessionAggregate | None, sid: str) -> SessionAggregate:
    if session is None or session.deleted:
        raise NotFound(f"no session {sid!r}")
    return session


def _session_id(session_id: object) -> str:
    try:
        return check_key(session_id)
    except ValidationError as e:
        raise ValidationError("session_id", e.rule) from None


def _event_id(event_id: object) -> str:
    try:
        return check_key(event_id)
    except ValidationError as e:
        raise ValidationError("event.id", e.rule) from None


def _segment(value: object, field: str) -> None:
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string")
    try:
        Namespace.parse(f"user:{value}")
    except ValidationError:
        raise ValidationError(
            field, "must be 1-128 of letters, digits and _.@+=- (it names a namespace)"
        ) from None


def _state(state: Mapping[str, Any] | None, field: str) -> dict[str, Any]:
    if state is None:
        return {}
    if not isinstance(state, Mapping):
        raise ValidationError(field, "must be a mapping of state keys to JSON values")
    checked: dict[str, Any] = {}
    for key, value in state.items():
        if not isinstance(key, str) or not key or len(key) > 1024:
            raise ValidationError(field, "keys must be strings of 1-1024 chars")
        check_text(key, field)
        if scope_of(key) in ("user", "app"):
            name = key.split(":", 1)[1]
            if not name:
                raise ValidationError(f"{field}.{key}", "a shared key needs a name")
            try:  # kept as a memory under that key
                check_key(name)
            except ValidationError as e:
                raise ValidationError(f"{field}.{key}", e.rule) from None
        checked[key] = encode_value(value, field=f"{field}.{key}")
    return checked


def _public_event(event: SessionAggregate.EventAppended) -> SessionEvent:
    return SessionEvent(
        id=event.event_id,
        author=event.author,
        invocation_id=event.invocation_id,
        content=decode_value(event.content),
        actions=event.actions,
        state_delta={k: decode_value(v) for k, v in event.state_delta.items()},
        timestamp=event.timestamp,
    )


def _summary(row: Any) -> SessionSummary:
    return SessionSummary(
        id=row[0],
        app_name=row[1],
        user_id=row[2],
        project_id=row[3],
        status=row[4],
        event_count=row[5],
        created_at=from_micros(row[6]),
        last_update_time=from_micros(row[7]),
    )
