"""The Session aggregate: a conversation as an event stream with scoped state.

State keys are scoped by prefix:

- no prefix, or ``session:``: lives in the session and its events;
- ``temp:``: lives only for the current invocation, never persisted;
- ``user:`` and ``app:``: shared across sessions, kept as memories by the
  service (so they get versions and audit); the session never holds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from mnemolog.domain.chain import GENESIS_HASH, digest_of, fold_redacted, new_salt
from mnemolog.domain.errors import MnemologError, ValidationError
from mnemolog.domain.values import JSON, canonical_json

SESSION_ID_NAMESPACE = UUID("0b7a3c52-5f0e-4d8e-9a53-2f6c8e1d4b77")

STATUSES = ("created", "active", "paused", "terminated", "archived")
TRANSITIONS: dict[str, frozenset[str]] = {
    "created": frozenset({"active", "terminated"}),
    "active": frozenset({"paused", "terminated"}),
    "paused": frozenset({"active", "terminated"}),
    "terminated": frozenset({"archived"}),
    "archived": frozenset(),
}
"""Legal moves: created -> active <-> paused -> terminated -> archived."""

SHARED_PREFIXES = ("user:", "app:")
TEMP_PREFIX = "temp:"
SESSION_PREFIX = "session:"


class IllegalTransition(MnemologError, ValueError):
    """A status change the lifecycle does not allow; nothing was written."""

    def __init__(self, current: str, wanted: str) -> None:
        allowed = ", ".join(sorted(TRANSITIONS.get(current, ()))) or "none"
        super().__init__(
            f"status: a session cannot go from {current!r} to {wanted!r} "
            f"(from {current!r}: {allowed})"
        )
        self.current = current
        self.wanted = wanted


class SessionClosed(MnemologError):
    """The session is terminated or archived and takes no more events."""


def scope_of(key: str) -> str:
    """``temp``, ``user``, ``app`` or ``session``, by the key's prefix."""
    if key.startswith(TEMP_PREFIX):
        return "temp"
    for prefix in SHARED_PREFIXES:
        if key.startswith(prefix):
            return prefix[:-1]
    return "session"


def _check_keys(delta: Mapping[str, JSON]) -> None:
    for key in delta:
        if not isinstance(key, str) or not key:
            raise ValidationError("state_delta", "keys must be non-empty strings")


def session_part(delta: Mapping[str, JSON]) -> dict[str, JSON]:
    """The keys of a state delta that the session itself keeps."""
    _check_keys(delta)
    return {k: v for k, v in delta.items() if scope_of(k) == "session"}


def persisted_part(delta: Mapping[str, JSON]) -> dict[str, JSON]:
    """Every key of a state delta but the ``temp:`` ones."""
    _check_keys(delta)
    return {k: v for k, v in delta.items() if scope_of(k) != "temp"}


@lru_cache(maxsize=8192)
def _session_id(tenant: str, session_id: str) -> UUID:
    return uuid5(SESSION_ID_NAMESPACE, canonical_json([tenant, session_id]).hex())


ERASED: dict[str, Any] = {
    "session_id": "",
    "app_name": "",
    "user_id": "",
    "project_id": None,
    "state": {},
    "metadata": {},
    "status": "archived",
    "event_count": 0,
    "last_event_id": None,
}
"""The state of a session whose events so far were erased."""


class Session(Aggregate):
    """A session's state, folded from its events."""

    deleted: bool = False
    """True after delete (a class default: older snapshots lack it)."""
    erased: bool = False
    """True when the events so far were erased (their key destroyed)."""

    @staticmethod
    def create_id(tenant: str, session_id: str) -> UUID:
        """The same (tenant, session id) always names the same stream."""
        return _session_id(tenant, session_id)

    class Event(Aggregate.Event):
        """Base of the session's events: who, and the link to the previous one."""

        kind: ClassVar[str] = "event"

        actor: str | None
        prev_hash: str
        salt: str
        """Random; makes the commitment to the sealed fields unguessable."""

        def digest(self) -> str:
            """This event's hash as stored; the next event carries it as prev_hash."""
            return digest_of(self)

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, Session)
            aggregate.head_hash = self.digest()
            self.change(aggregate)

        def change(self, session: Session) -> None:
            """What this kind of event does to the state."""

    class Created(Event, Aggregate.Created):
        """A new session, with its initial (session-scoped) state."""

        kind: ClassVar[str] = "created"
        subject_field: ClassVar[str] = "user_id"

        tenant: str
        session_id: str
        app_name: str
        user_id: str
        project_id: str | None
        state: dict[str, JSON]
        metadata: dict[str, JSON]

    class EventAppended(Event):
        """One conversation event and its state delta (all but ``temp:`` keys);
        the session keeps the session-scoped part, the service the shared one."""

        kind: ClassVar[str] = "appended"

        event_id: str
        author: str
        invocation_id: str | None
        content: JSON
        actions: dict[str, JSON]
        state_delta: dict[str, JSON]

        def change(self, session: Session) -> None:
            session.state = {**session.state, **session_part(self.state_delta)}
            session.event_count += 1
            session.last_event_id = self.event_id
            if session.status == "created":
                session.status = "active"

    class StatusChanged(Event):
        """A move in the lifecycle."""

        kind: ClassVar[str] = "status_changed"

        status: str

        def change(self, session: Session) -> None:
            session.status = self.status
            if self.status == "terminated":
                # Working state goes with the session; shared state lives on.
                session.state = {}

    class Rewound(Event):
        """A compensating event: the state as it was after an earlier event."""

        kind: ClassVar[str] = "rewound"

        to_event_id: str
        state: dict[str, JSON]

        def change(self, session: Session) -> None:
            session.state = dict(self.state)

    class Redacted(Event):
        """An event whose sealed part cannot be read: its key was destroyed.

        The mapper gives one in place of any erased event of a session; it
        keeps the stream's versions and hash chain and blanks the state.
        """

        kind: ClassVar[str] = "redacted"

        def mutate(self, aggregate: Any) -> Any:
            return fold_redacted(self, aggregate, Session, ERASED)

    class Deleted(Event):
        """The session is gone from every read; its events stay in the log."""

        kind: ClassVar[str] = "deleted"

        def change(self, session: Session) -> None:
            session.deleted = True
            session.state = {}

    def __init__(
        self,
        *,
        tenant: str,
        session_id: str,
        app_name: str,
        user_id: str,
        project_id: str | None,
        state: dict[str, JSON],
        metadata: dict[str, JSON],
    ) -> None:
        self.tenant = tenant
        """The isolation boundary."""
        self.session_id = session_id
        """The caller's id for the session."""
        self.app_name = app_name
        """The application the session belongs to."""
        self.user_id = user_id
        """The user the session is with."""
        self.project_id = project_id
        """An optional project."""
        self.state: dict[str, JSON] = dict(state)
        """Session-scoped state (no prefix, or ``session:``)."""
        self.metadata: dict[str, JSON] = dict(metadata)
        """A JSON object."""
        self.status = "created"
        """One of STATUSES."""
        self.event_count = 0
        """Conversation events appended."""
        self.last_event_id: str | None = None
        """The id of the newest conversation event."""
        self.head_hash = GENESIS_HASH
        """Digest of the latest event; the next event's prev_hash."""

    @classmethod
    def start(
        cls,
        *,
        tenant: str,
        session_id: str,
        app_name: str,
        user_id: str,
        project_id: str | None = None,
        state: Mapping[str, JSON] | None = None,
        metadata: Mapping[str, JSON] | None = None,
        actor: str | None = None,
    ) -> Session:
        """Creates a session; triggers Created. Only session-scoped keys are kept."""
        return cls._create(
            cls.Created,
            id=cls.create_id(tenant, session_id),
            tenant=tenant,
            session_id=session_id,
            app_name=app_name,
            user_id=user_id,
            project_id=project_id,
            state=session_part(state or {}),
            metadata=dict(metadata or {}),
            actor=actor,
            prev_hash=GENESIS_HASH,
            salt=new_salt(),
        )

    def append(
        self,
        *,
        event_id: str,
        author: str,
        content: JSON,
        actions: Mapping[str, JSON] | None = None,
        state_delta: Mapping[str, JSON] | None = None,
        invocation_id: str | None = None,
        actor: str | None = None,
    ) -> None:
        """Appends a conversation event with its delta, atomically; triggers
        EventAppended. A created session becomes active."""
        if self.status in ("terminated", "archived"):
            raise SessionClosed(f"session {self.session_id!r} is {self.status}")
        self.trigger_event(
            self.EventAppended,
            event_id=event_id,
            author=author,
            invocation_id=invocation_id,
            content=content,
            actions=dict(actions or {}),
            state_delta=persisted_part(state_delta or {}),
            actor=actor,
            prev_hash=self.head_hash,
            salt=new_salt(),
        )

    def move_to(self, status: str, *, actor: str | None = None) -> bool:
        """Changes status if the lifecycle allows; False if already there."""
        if status not in STATUSES:
            raise ValidationError("status", f"must be one of {', '.join(STATUSES)}")
        if status == self.status:
            return False
        if status not in TRANSITIONS[self.status]:
            raise IllegalTransition(self.status, status)
        self.trigger_event(
            self.StatusChanged,
            status=status,
            actor=actor,
            prev_hash=self.head_hash,
            salt=new_salt(),
        )
        return True

    def delete(self, *, actor: str | None = None) -> bool:
        """Deletes the session; triggers Deleted. False if it already was."""
        if self.deleted:
            return False
        self.trigger_event(
            self.Deleted, actor=actor, prev_hash=self.head_hash, salt=new_salt()
        )
        return True

    def rewind(
        self, to_event_id: str, state: Mapping[str, JSON], *, actor: str | None = None
    ) -> None:
        """Restores the state as it was after ``to_event_id``; history is kept."""
        if self.status in ("terminated", "archived"):
            raise SessionClosed(f"session {self.session_id!r} is {self.status}")
        self.trigger_event(
            self.Rewound,
            to_event_id=to_event_id,
            state=dict(state),
            actor=actor,
            prev_hash=self.head_hash,
            salt=new_salt(),
        )


def state_after(events: list[Session.Event], event_id: str) -> dict[str, JSON] | None:
    """The session-scoped state right after the conversation event ``event_id``."""
    session: Session | None = None
    for event in events:
        session = event.mutate(session)
        if isinstance(event, Session.EventAppended) and event.event_id == event_id:
            assert session is not None
            return dict(session.state)
    return None
