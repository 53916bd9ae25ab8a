"""The Session aggregate: lifecycle, scoped state, appends, rewind, the chain."""

from __future__ import annotations

import itertools

import pytest

from mnemolog.domain.chain import GENESIS_HASH
from mnemolog.domain.errors import ValidationError
from mnemolog.domain.session import (
    STATUSES,
    TRANSITIONS,
    IllegalTransition,
    Session,
    SessionClosed,
    scope_of,
    state_after,
)


def new_session(**state: object) -> Session:
    return Session.start(
        tenant="t",
        session_id="s-1",
        app_name="travel",
        user_id="alice",
        state=state,
    )


def test_ids_are_derived_from_tenant_and_session_id() -> None:
    assert Session.create_id("t", "s") == Session.create_id("t", "s")
    assert Session.create_id("t", "s") != Session.create_id("u", "s")
    assert Session.create_id("t", "s") != Session.create_id("t", "s2")


@pytest.mark.parametrize(
    ("key", "scope"),
    [
        ("plain", "session"),
        ("session:step", "session"),
        ("temp:scratch", "temp"),
        ("user:name", "user"),
        ("app:theme", "app"),
        ("project:x", "session"),
    ],
)
def test_keys_are_scoped_by_prefix(key: str, scope: str) -> None:
    assert scope_of(key) == scope


def test_only_session_scoped_state_is_kept() -> None:
    session = new_session(a=1, **{"session:b": 2, "temp:c": 3, "user:d": 4, "app:e": 5})
    assert session.state == {"a": 1, "session:b": 2}
    created = session.collect_events()[0]
    assert isinstance(created, Session.Created)
    assert created.state == {"a": 1, "session:b": 2}


def test_appending_applies_the_delta_and_activates() -> None:
    session = new_session(a=1)
    session.append(
        event_id="e1",
        author="user",
        content={"text": "hi"},
        state_delta={"a": 2, "temp:x": 1, "user:y": 1, "b": None},
    )
    assert session.status == "active"
    assert session.state == {"a": 2, "b": None}
    assert session.event_count == 1
    assert session.last_event_id == "e1"
    appended = session.collect_events()[-1]
    assert isinstance(appended, Session.EventAppended)
    assert appended.state_delta == {"a": 2, "user:y": 1, "b": None}


LEGAL = [(a, b) for a in STATUSES for b in TRANSITIONS[a]]
ILLEGAL = [
    (a, b) for a in STATUSES for b in STATUSES if a != b and b not in TRANSITIONS[a]
]


def reach(status: str) -> Session:
    session = new_session()
    path = {
        "created": [],
        "active": ["active"],
        "paused": ["active", "paused"],
        "terminated": ["terminated"],
        "archived": ["terminated", "archived"],
    }[status]
    for step in path:
        session.move_to(step)
    assert session.status == status
    return session


@pytest.mark.parametrize(("current", "wanted"), LEGAL)
def test_legal_transitions(current: str, wanted: str) -> None:
    session = reach(current)
    assert session.move_to(wanted) is True
    assert session.status == wanted


@pytest.mark.parametrize(("current", "wanted"), ILLEGAL)
def test_illegal_transitions_are_refused_and_record_nothing(
    current: str, wanted: str
) -> None:
    session = reach(current)
    version = session.version
    with pytest.raises(IllegalTransition) as info:
        session.move_to(wanted)
    assert info.value.current == current
    assert isinstance(info.value, ValueError)
    assert session.version == version
    assert session.status == current


def test_moving_to_the_same_status_is_a_no_op_and_unknown_ones_are_refused() -> None:
    session = reach("active")
    assert session.move_to("active") is False
    with pytest.raises(ValidationError):
        session.move_to("sleeping")


def test_terminating_clears_working_state_and_closes_the_session() -> None:
    session = new_session(a=1)
    session.append(event_id="e1", author="user", content="x", state_delta={"b": 2})
    session.move_to("terminated")
    assert session.state == {}
    with pytest.raises(SessionClosed):
        session.append(event_id="e2", author="user", content="y")
    with pytest.raises(SessionClosed):
        session.rewind("e1", {"a": 1})


def test_rewind_restores_an_earlier_state_and_keeps_history() -> None:
    session = new_session(a=0)
    for n in (1, 2, 3):
        session.append(
            event_id=f"e{n}", author="agent", content=n, state_delta={"a": n}
        )
    events = list(session.collect_events())
    before = state_after(events, "e1")
    assert before == {"a": 1}
    session.rewind("e1", before)
    assert session.state == {"a": 1}
    assert session.event_count == 3  # rewinding appends, it does not delete
    assert isinstance(session.collect_events()[-1], Session.Rewound)
    assert state_after(events, "nope") is None


def test_every_event_links_to_the_one_before() -> None:
    session = new_session(a=0)
    session.append(event_id="e1", author="user", content="x")
    session.move_to("paused")
    session.rewind("e1", {"a": 0})
    events = session.collect_events()
    assert events[0].prev_hash == GENESIS_HASH
    for earlier, later in itertools.pairwise(events):
        assert later.prev_hash == earlier.digest()
    replayed = None
    for event in events:
        replayed = event.mutate(replayed)
    assert replayed == session


def test_state_delta_keys_must_be_strings() -> None:
    session = new_session()
    with pytest.raises(ValidationError):
        session.append(event_id="e1", author="user", content="x", state_delta={"": 1})
