"""Seed 004: the milestone's SessionService and MemoryService on a mnemolog store.

Unit tests of every method and every error of both services, then the seed's
integration scenarios (session -> task -> memory -> audit, temp: and session:
state, versioning, namespace hierarchy, 50+ concurrent sessions,
consolidation, the audit trail). Every test runs on every backend.
"""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mnemolog
from mnemolog import MemoryStore, NotFound, ValidationError
from mnemolog.adapters.compat.session_memory import (
    MemoryExists,
    MemoryNotFound,
    MemoryService,
    SessionAlreadyExists,
    SessionClosedError,
    SessionNotFound,
    SessionService,
)
from mnemolog.domain.session import IllegalTransition

T = TypeVar("T")

SESSION_FIELDS = {
    "id",
    "app_name",
    "user_id",
    "project_id",
    "status",
    "events",
    "state",
    "metadata",
    "created_at",
    "last_update_time",
    "terminated_at",
    "archived_at",
}
ENTRY_FIELDS = {
    "id",
    "namespace",
    "key",
    "value",
    "memory_type",
    "version",
    "is_deleted",
    "metadata",
    "created_by",
    "updated_by",
    "created_at",
    "updated_at",
}
PREFS = "user:alice:preferences"


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def parse_time(text: str) -> datetime:
    """The seed's TIMESTAMP text (UTC) as an aware datetime."""
    assert len(text) == len("2025-10-10 10:00:00.000000"), text
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def store(store_url: str) -> Iterator[MemoryStore]:
    with mnemolog.open(store_url) as opened:
        yield opened


@pytest.fixture
def sessions(store: MemoryStore) -> SessionService:
    return SessionService(store)


@pytest.fixture
def memories(store: MemoryStore) -> MemoryService:
    return MemoryService(store)


def add(
    memories: MemoryService, namespace: str, key: str, value: Any, **kw: Any
) -> int:
    """add_memory with the seed's usual provenance."""
    kw.setdefault("memory_type", "semantic")
    kw.setdefault("created_by", "session:abc123")
    kw.setdefault("task_id", "task:xyz789")
    return run(memories.add_memory(namespace, key, value, **kw))


# ---- the seed's interfaces -------------------------------------------------------

SEED_SIGNATURES = {
    SessionService: {
        "create_session": [
            ("session_id", None),
            ("app_name", None),
            ("user_id", None),
            ("project_id", None),
            ("initial_state", None),
        ],
        "get_session": [("session_id", inspect.Parameter.empty)],
        "append_event": [("session_id", None), ("event", None), ("state_delta", None)],
        "update_status": [("session_id", None), ("status", None)],
        "get_state": [("session_id", None), ("key", None)],
        "set_state": [("session_id", None), ("key", None), ("value", None)],
        "list_active_sessions": [("user_id", None)],
        "terminate_session": [("session_id", None)],
    },
    MemoryService: {
        "add_memory": [
            ("namespace", None),
            ("key", None),
            ("value", None),
            ("memory_type", None),
            ("created_by", None),
            ("task_id", None),
            ("metadata", None),
        ],
        "get_memory": [("namespace", None), ("key", None), ("version", None)],
        "update_memory": [
            ("namespace", None),
            ("key", None),
            ("value", None),
            ("updated_by", None),
            ("task_id", None),
        ],
        "delete_memory": [
            ("namespace", None),
            ("key", None),
            ("deleted_by", None),
            ("task_id", None),
        ],
        "search_memories": [
            ("namespace_prefix", None),
            ("memory_type", None),
            ("limit", 50),
        ],
        "get_memory_history": [("namespace", None), ("key", None)],
        "consolidate_memories": [
            ("namespace", None),
            ("consolidation_strategy", "llm_based"),
        ],
    },
}
REQUIRED = {
    "create_session": 3,
    "get_session": 1,
    "append_event": 2,
    "update_status": 2,
    "get_state": 2,
    "set_state": 3,
    "list_active_sessions": 0,
    "terminate_session": 1,
    "add_memory": 6,
    "get_memory": 2,
    "update_memory": 5,
    "delete_memory": 4,
    "search_memories": 1,
    "get_memory_history": 2,
    "consolidate_memories": 1,
}


@pytest.mark.parametrize(
    ("service", "name"),
    [(s, n) for s, methods in SEED_SIGNATURES.items() for n in methods],
    ids=lambda x: getattr(x, "__name__", x),
)
def test_methods_are_coroutines_with_the_seeds_parameters(
    service: type[Any], name: str
) -> None:
    method = getattr(service, name)
    assert inspect.iscoroutinefunction(method)
    parameters = list(inspect.signature(method).parameters.values())[1:]
    assert [p.name for p in parameters] == [
        n for n, _ in SEED_SIGNATURES[service][name]
    ]
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in parameters)
    required = REQUIRED[name]
    assert all(p.default is p.empty for p in parameters[:required])
    defaults = [p.default for p in parameters[required:]]
    assert defaults == [d for _, d in SEED_SIGNATURES[service][name][required:]]


# ---- SessionService ----------------------------------------------------------------


def test_create_and_get_session(sessions: SessionService) -> None:
    before = datetime.now(UTC)
    result = run(
        sessions.create_session(
            "abc123",
            "abathur",
            "alice",
            project_id="schema_redesign",
            initial_state={"session:abc123:task": "design", "mode": 1},
        )
    )
    assert result is None
    found = run(sessions.get_session("abc123"))
    assert found is not None
    assert set(found) == SESSION_FIELDS
    assert found["id"] == "abc123"
    assert (found["app_name"], found["user_id"]) == ("abathur", "alice")
    assert found["project_id"] == "schema_redesign"
    assert found["status"] == "created"
    assert found["events"] == []
    assert found["state"] == {"session:abc123:task": "design", "mode": 1}
    assert found["metadata"] == {}
    created = parse_time(found["created_at"])
    assert before <= created <= datetime.now(UTC)
    assert found["last_update_time"] == found["created_at"]
    assert found["terminated_at"] is None
    assert found["archived_at"] is None


def test_create_without_project_or_state(sessions: SessionService) -> None:
    run(sessions.create_session("s", "abathur", "alice"))
    found = run(sessions.get_session("s"))
    assert found is not None
    assert (found["project_id"], found["state"]) == (None, {})


def test_an_unknown_session_is_none(sessions: SessionService) -> None:
    assert run(sessions.get_session("nope")) is None


def test_a_duplicate_session_id_is_an_integrity_error(
    sessions: SessionService,
) -> None:
    run(sessions.create_session("abc123", "abathur", "alice", initial_state={"a": 1}))
    with pytest.raises(sqlite3.IntegrityError, match="exists already") as caught:
        run(sessions.create_session("abc123", "other", "bob", initial_state={"a": 2}))
    assert isinstance(caught.value, SessionAlreadyExists)
    assert isinstance(caught.value, ValueError)
    found = run(sessions.get_session("abc123"))
    assert found is not None
    assert (found["app_name"], found["user_id"], found["state"]) == (
        "abathur",
        "alice",
        {"a": 1},
    )


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        (("", "abathur", "alice"), "session_id"),
        (("s", "abathur app", "alice"), "app_name"),
        (("s", "abathur", "alice bob"), "user_id"),
        (("s", "abathur", "alice", "a project"), "project_id"),
        (("s", "abathur", "alice", None, ["a"]), "initial_state"),
        (("s", "abathur", "alice", None, {"": 1}), "initial_state"),
        (("s", "abathur", "alice", None, {"k": {1, 2}}), "initial_state.k"),
        (("s", "abathur", "alice", None, {"k": float("nan")}), "initial_state.k"),
    ],
)
def test_create_session_refuses_bad_input(
    sessions: SessionService, arguments: tuple[Any, ...], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        run(sessions.create_session(*arguments))
    assert isinstance(caught.value, ValueError)
    assert caught.value.field == field
    assert run(sessions.list_active_sessions()) == []
    assert run(sessions.get_session("s")) is None


def test_append_event_keeps_events_and_merges_the_state_delta(
    sessions: SessionService,
) -> None:
    run(sessions.create_session("abc123", "abathur", "alice", initial_state={"a": 1}))
    first = {
        "event_id": "evt_001",
        "timestamp": "2025-10-10T10:00:00Z",
        "event_type": "message",
        "actor": "user",
        "content": {"message": "Design the schema"},
        "is_final_response": False,
    }
    second = {"event_id": "evt_002", "actor": "agent:planner", "content": [1, None]}
    created = run(sessions.get_session("abc123"))
    assert created is not None
    run(
        sessions.append_event(
            "abc123", first, {"session:abc123:current_task": "schema", "a": 2}
        )
    )
    run(sessions.append_event("abc123", second))
    run(sessions.append_event("abc123", {"no": "actor"}, {"a": None}))
    found = run(sessions.get_session("abc123"))
    assert found is not None
    assert found["events"] == [first, second, {"no": "actor"}]
    assert found["state"] == {"a": None, "session:abc123:current_task": "schema"}
    assert found["status"] == "active"  # the first event activates a session
    assert parse_time(found["last_update_time"]) > parse_time(created["created_at"])


def test_append_event_to_an_unknown_session_is_a_value_error(
    sessions: SessionService,
) -> None:
    with pytest.raises(ValueError, match="no session 'nope'") as caught:
        run(sessions.append_event("nope", {"actor": "user"}))
    assert isinstance(caught.value, SessionNotFound)
    assert isinstance(caught.value, NotFound)


@pytest.mark.parametrize(
    ("event", "delta", "field"),
    [
        ("not a dict", None, "event"),
        ({"when": datetime(2025, 1, 1)}, None, "event.when"),
        ({"actor": "user"}, "not a dict", "state_delta"),
        ({"actor": "user"}, {"k": object()}, "state_delta.k"),
        ({"actor": "user"}, {3: "x"}, "state_delta"),
    ],
)
def test_append_event_refuses_bad_input(
    sessions: SessionService, event: Any, delta: Any, field: str
) -> None:
    run(sessions.create_session("s", "abathur", "alice"))
    with pytest.raises(ValidationError) as caught:
        run(sessions.append_event("s", event, delta))
    assert isinstance(caught.value, ValueError)
    assert caught.value.field == field
    found = run(sessions.get_session("s"))
    assert found is not None
    assert (found["events"], found["status"]) == ([], "created")


def test_update_status_walks_the_lifecycle(sessions: SessionService) -> None:
    run(sessions.create_session("s", "abathur", "alice"))
    seen = []
    for status in ("active", "paused", "active", "terminated", "archived"):
        run(sessions.update_status("s", status))
        found = run(sessions.get_session("s"))
        assert found is not None
        seen.append(found["status"])
    assert seen == ["active", "paused", "active", "terminated", "archived"]
    run(sessions.update_status("s", "archived"))  # where it is already: no change


def test_update_status_errors(sessions: SessionService) -> None:
    run(sessions.create_session("s", "abathur", "alice"))
    with pytest.raises(ValidationError, match="status: must be one of") as invalid:
        run(sessions.update_status("s", "running"))
    assert isinstance(invalid.value, ValueError)
    with pytest.raises(SessionNotFound):
        run(sessions.update_status("nope", "active"))
    with pytest.raises(IllegalTransition):  # created -> paused skips active
        run(sessions.update_status("s", "paused"))
    run(sessions.update_status("s", "active"))
    run(sessions.update_status("s", "paused"))
    with pytest.raises(IllegalTransition) as illegal:
        run(sessions.update_status("s", "created"))
    assert isinstance(illegal.value, ValueError)
    found = run(sessions.get_session("s"))
    assert found is not None
    assert found["status"] == "paused"


def test_get_and_set_state(sessions: SessionService) -> None:
    run(sessions.create_session("s", "abathur", "alice", initial_state={"a": 1}))
    run(sessions.set_state("s", "session:s:step", {"n": 2}))
    run(sessions.set_state("s", "a", [1, 2]))
    assert run(sessions.get_state("s", "session:s:step")) == {"n": 2}
    assert run(sessions.get_state("s", "a")) == [1, 2]
    assert run(sessions.get_state("s", "missing")) is None
    found = run(sessions.get_session("s"))
    assert found is not None
    assert found["events"] == []  # set_state changes state, it is no event
    assert found["state"] == {"a": [1, 2], "session:s:step": {"n": 2}}


def test_state_errors(sessions: SessionService) -> None:
    run(sessions.create_session("s", "abathur", "alice"))
    with pytest.raises(SessionNotFound):
        run(sessions.get_state("nope", "a"))
    with pytest.raises(SessionNotFound):
        run(sessions.set_state("nope", "a", 1))
    for key in ("", None):
        with pytest.raises(ValidationError, match="key: must be a non-empty string"):
            run(sessions.get_state("s", key))  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="key: must be a non-empty string"):
            run(sessions.set_state("s", key, 1))  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as caught:
        run(sessions.set_state("s", "k", {1, 2}))
    assert caught.value.field == "value"
    assert run(sessions.get_state("s", "k")) is None


def test_list_active_sessions(sessions: SessionService) -> None:
    for sid, user in (("a1", "alice"), ("a2", "alice"), ("b1", "bob"), ("a3", "alice")):
        run(sessions.create_session(sid, "abathur", user))
    for sid in ("a1", "a2", "b1"):
        run(sessions.append_event(sid, {"actor": "user", "n": sid}))
    run(sessions.update_status("a2", "paused"))
    everyone = run(sessions.list_active_sessions())
    assert sorted(s["id"] for s in everyone) == ["a1", "b1"]
    assert all(set(s) == SESSION_FIELDS for s in everyone)
    (alice,) = run(sessions.list_active_sessions("alice"))
    assert alice == run(sessions.get_session("a1"))
    assert run(sessions.list_active_sessions("carol")) == []
    with pytest.raises(ValidationError, match="user_id"):
        run(sessions.list_active_sessions("not a user"))


def test_terminate_clears_temp_state_and_keeps_the_rest(
    sessions: SessionService,
) -> None:
    run(
        sessions.create_session(
            "s",
            "abathur",
            "alice",
            initial_state={"temp:draft": "...", "session:s:goal": "ship", "n": 0},
        )
    )
    run(sessions.append_event("s", {"actor": "agent"}, {"temp:scratch": [1], "n": 1}))
    run(sessions.set_state("s", "user:theme", "dark"))
    live = run(sessions.get_session("s"))
    assert live is not None
    assert live["state"] == {
        "temp:draft": "...",
        "temp:scratch": [1],
        "session:s:goal": "ship",
        "n": 1,
        "user:theme": "dark",
    }
    run(sessions.terminate_session("s"))
    ended = run(sessions.get_session("s"))
    assert ended is not None
    assert ended["status"] == "terminated"
    assert ended["state"] == {"session:s:goal": "ship", "n": 1, "user:theme": "dark"}
    assert run(sessions.get_state("s", "temp:draft")) is None
    assert ended["events"] == [{"actor": "agent"}]
    assert ended["terminated_at"] == ended["last_update_time"]
    assert parse_time(ended["terminated_at"]) > parse_time(live["last_update_time"])
    assert ended["archived_at"] is None
    run(sessions.update_status("s", "archived"))
    archived = run(sessions.get_session("s"))
    assert archived is not None
    assert archived["terminated_at"] == ended["terminated_at"]
    assert archived["archived_at"] == archived["last_update_time"]
    assert parse_time(archived["archived_at"]) > parse_time(ended["terminated_at"])
    assert archived["state"] == ended["state"]


def test_a_closed_session_takes_no_events_or_state(sessions: SessionService) -> None:
    run(sessions.create_session("s", "abathur", "alice"))
    with pytest.raises(SessionNotFound):
        run(sessions.terminate_session("nope"))
    run(sessions.terminate_session("s"))
    run(sessions.terminate_session("s"))  # already terminated: no change
    with pytest.raises(SessionClosedError, match="closed") as caught:
        run(sessions.append_event("s", {"actor": "user"}))
    assert isinstance(caught.value, ValueError)
    with pytest.raises(SessionClosedError):
        run(sessions.set_state("s", "k", 1))
    with pytest.raises(IllegalTransition):
        run(sessions.update_status("s", "active"))
    found = run(sessions.get_session("s"))
    assert found is not None
    assert (found["status"], found["events"], found["state"]) == ("terminated", [], {})


def test_user_state_is_shared_by_the_users_sessions(
    sessions: SessionService, memories: MemoryService
) -> None:
    run(
        sessions.create_session(
            "s1", "abathur", "alice", initial_state={"user:theme": "dark"}
        )
    )
    run(sessions.create_session("s2", "abathur", "alice"))
    run(sessions.create_session("s3", "abathur", "bob"))
    assert run(sessions.get_state("s2", "user:theme")) == "dark"
    assert run(sessions.get_state("s3", "user:theme")) is None
    run(sessions.set_state("s2", "user:theme", "light"))
    run(sessions.set_state("s2", "app:motd", "hello"))
    assert run(sessions.get_state("s1", "user:theme")) == "light"
    assert run(sessions.get_state("s3", "app:motd")) == "hello"
    # kept as memories, with versions
    history = run(memories.get_memory_history("user:alice:state", "theme"))
    assert [h["value"] for h in history] == ["dark", "light"]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    state=st.dictionaries(
        st.tuples(
            st.sampled_from(["", "temp:", "session:", "session:~", "project:"]),
            st.text(
                alphabet=st.characters(exclude_categories=["Cc", "Cs"]),
                min_size=1,
                max_size=12,
            ),
        )
        .map("".join)
        .filter(lambda key: not key.startswith(("user:", "app:"))),
        st.none() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
        max_size=6,
    )
)
def test_session_state_keys_come_back_as_given(state: dict[str, Any]) -> None:
    with mnemolog.open("memory://") as store:
        sessions = SessionService(store)
        run(sessions.create_session("s", "abathur", "alice"))
        for key, value in state.items():
            run(sessions.set_state("s", key, value))
        found = run(sessions.get_session("s"))
        assert found is not None
        assert found["state"] == state
        run(sessions.terminate_session("s"))
        ended = run(sessions.get_session("s"))
        assert ended is not None
        assert ended["state"] == {
            k: v for k, v in state.items() if not k.startswith("temp:")
        }


def test_a_service_owns_a_store_it_opened(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'abathur.db'}"

    async def first() -> None:
        async with SessionService(url) as sessions:
            await sessions.create_session("s", "abathur", "alice", None, {"a": 1})

    async def again() -> dict[str, Any] | None:
        async with SessionService(url) as sessions:
            return await sessions.get_session("s")

    run(first())
    found = run(again())
    assert found is not None
    assert found["state"] == {"a": 1}
    with pytest.raises(ValidationError, match="store: must be a store URL"):
        SessionService(42)  # type: ignore[arg-type]


def test_a_given_store_stays_open(store: MemoryStore) -> None:
    service = SessionService(store)
    service.close()
    assert service.store is store
    run(service.create_session("s", "abathur", "alice"))
    assert run(service.get_session("s")) is not None


# ---- MemoryService -----------------------------------------------------------------


def test_add_and_get_memory(memories: MemoryService, store: MemoryStore) -> None:
    before = datetime.now(UTC)
    memory_id = add(
        memories,
        PREFS,
        "communication_style",
        {"language": "concise", "technical_level": "expert"},
        metadata={"confidence": 0.9},
    )
    assert isinstance(memory_id, int)
    found = run(memories.get_memory(PREFS, "communication_style"))
    assert found is not None
    assert set(found) == ENTRY_FIELDS
    assert found["id"] == memory_id
    assert found["value"] == {"language": "concise", "technical_level": "expert"}
    assert (found["namespace"], found["key"]) == (PREFS, "communication_style")
    assert (found["memory_type"], found["version"], found["is_deleted"]) == (
        "semantic",
        1,
        False,
    )
    assert found["metadata"] == {"confidence": 0.9}
    assert found["created_by"] == found["updated_by"] == "session:abc123"
    assert before <= parse_time(found["created_at"]) <= datetime.now(UTC)
    assert found["updated_at"] == found["created_at"]
    (entry,) = store.audit(kind="created", namespace_prefix=PREFS)
    assert entry.position == memory_id
    assert (entry.actor, entry.task_id, entry.version) == (
        "session:abc123",
        "task:xyz789",
        1,
    )


def test_ids_are_distinct_and_stable(memories: MemoryService, store_url: str) -> None:
    ids = [add(memories, PREFS, f"k{i}", {"i": i}) for i in range(5)]
    ids.append(run(memories.update_memory(PREFS, "k0", {"i": 9}, "agent", "t")))
    assert len(set(ids)) == 6
    assert ids == sorted(ids)
    if store_url != "memory://":  # a second store on the same log
        with mnemolog.open(store_url) as reopened:
            again = MemoryService(reopened)
            found = run(again.get_memory(PREFS, "k0", 1))
            assert found is not None
            assert found["id"] == ids[0]
            history = run(again.get_memory_history(PREFS, "k0"))
            assert [h["id"] for h in history] == [ids[0], ids[5]]


def test_get_memory_of_an_unknown_key_is_none(memories: MemoryService) -> None:
    add(memories, PREFS, "theme", {"mode": "dark"})
    assert run(memories.get_memory(PREFS, "other")) is None
    assert run(memories.get_memory("user:bob:preferences", "theme")) is None
    assert run(memories.get_memory(PREFS, "theme", 2)) is None


def test_adding_an_existing_key_is_a_value_error(
    memories: MemoryService, store: MemoryStore
) -> None:
    add(memories, PREFS, "theme", {"mode": "dark"})
    with pytest.raises(MemoryExists, match="exists already") as caught:
        add(memories, PREFS, "theme", {"mode": "light"})
    assert isinstance(caught.value, ValueError)
    found = run(memories.get_memory(PREFS, "theme"))
    assert found is not None
    assert (found["value"], found["version"]) == ({"mode": "dark"}, 1)
    assert len(store.audit(namespace_prefix=PREFS)) == 1


def test_a_deleted_key_can_be_added_again(memories: MemoryService) -> None:
    add(memories, PREFS, "theme", {"mode": "dark"}, metadata={"a": 1})
    run(memories.delete_memory(PREFS, "theme", "ops", "task:cleanup"))
    again = add(memories, PREFS, "theme", {"mode": "light"}, memory_type="episodic")
    found = run(memories.get_memory(PREFS, "theme"))
    assert found is not None
    assert found["id"] == again
    assert (found["value"], found["memory_type"], found["metadata"]) == (
        {"mode": "light"},
        "episodic",
        {},
    )
    # the log records a restore and the new content: two versions
    assert (found["version"], found["is_deleted"]) == (4, False)
    history = run(memories.get_memory_history(PREFS, "theme"))
    assert [(h["value"]["mode"], h["is_deleted"]) for h in history] == [
        ("dark", False),
        ("dark", True),
        ("dark", False),
        ("light", False),
    ]


@pytest.mark.parametrize(
    "namespace",
    [
        "alice",  # no ':'
        "",
        "users:alice",  # not a known root
        "tenant:acme",
        "user:",
        "user:alice bob",
        "user::alice",
        42,
        None,
    ],
)
def test_invalid_namespaces_are_value_errors(
    memories: MemoryService, namespace: Any
) -> None:
    calls = [
        memories.add_memory(namespace, "k", {}, "semantic", "me", "t"),
        memories.get_memory(namespace, "k"),
        memories.update_memory(namespace, "k", {}, "me", "t"),
        memories.delete_memory(namespace, "k", "me", "t"),
        memories.get_memory_history(namespace, "k"),
        memories.consolidate_memories(namespace, "latest_wins"),
    ]
    for call in calls:
        with pytest.raises(ValidationError) as caught:
            run(call)
        assert isinstance(caught.value, ValueError)
        assert caught.value.field == "namespace"
    assert memories.store.audit() == []


@pytest.mark.parametrize(
    "namespace", ["temp:x", "session:s1", "user:a", "app:b:c", "project:p"]
)
def test_every_seed_root_is_a_namespace(
    memories: MemoryService, namespace: str
) -> None:
    add(memories, namespace, "k", {"v": 1})
    found = run(memories.get_memory(namespace, "k"))
    assert found is not None
    assert found["namespace"] == namespace


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"memory_type": "working"}, "memory_type"),
        ({"memory_type": "facts"}, "memory_type"),
        ({"memory_type": None}, "memory_type"),
        ({"created_by": ""}, "created_by"),
        ({"created_by": None}, "created_by"),
        ({"created_by": "x" * 257}, "created_by"),
        ({"task_id": 7}, "task_id"),
        ({"metadata": ["a"]}, "metadata"),
        ({"metadata": {"b": b"bytes"}}, "metadata.b"),
        ({"value": {1, 2}}, "value"),
        ({"key": ""}, "key"),
        ({"key": "a\x00b"}, "key"),
    ],
)
def test_add_memory_refuses_bad_input(
    memories: MemoryService, changes: dict[str, Any], field: str
) -> None:
    arguments: dict[str, Any] = {
        "namespace": PREFS,
        "key": "theme",
        "value": {"mode": "dark"},
        "memory_type": "semantic",
        "created_by": "me",
        "task_id": "t",
        **changes,
    }
    with pytest.raises(ValidationError) as caught:
        run(memories.add_memory(**arguments))
    assert isinstance(caught.value, ValueError)
    assert caught.value.field == field
    assert memories.store.audit() == []


def test_values_are_any_json(memories: MemoryService) -> None:
    for key, value in (("list", [1, "a"]), ("text", "plain"), ("bytes", b"\x00\xff")):
        add(memories, PREFS, key, value)
        found = run(memories.get_memory(PREFS, key))
        assert found is not None
        assert found["value"] == value


def test_update_memory_writes_the_next_version(
    memories: MemoryService, store: MemoryStore
) -> None:
    first = add(
        memories,
        PREFS,
        "theme",
        {"mode": "dark"},
        memory_type="procedural",
        metadata={"source": "ui"},
    )
    second = run(
        memories.update_memory(PREFS, "theme", {"mode": "light"}, "agent:b", "task:2")
    )
    third = run(
        memories.update_memory(PREFS, "theme", {"mode": "light"}, "agent:c", "task:3")
    )
    assert first < second < third
    found = run(memories.get_memory(PREFS, "theme"))
    assert found is not None
    assert found["id"] == third
    assert found["version"] == 3  # an unchanged value is still a version
    assert (found["memory_type"], found["metadata"]) == ("procedural", {"source": "ui"})
    assert (found["created_by"], found["updated_by"]) == ("session:abc123", "agent:c")
    assert parse_time(found["updated_at"]) > parse_time(found["created_at"])
    updates = store.audit(kind="updated")
    assert [(e.position, e.actor, e.task_id, e.version) for e in updates] == [
        (second, "agent:b", "task:2", 2),
        (third, "agent:c", "task:3", 3),
    ]


def test_update_memory_errors(memories: MemoryService) -> None:
    with pytest.raises(MemoryNotFound, match="no memory") as missing:
        run(memories.update_memory(PREFS, "theme", {}, "me", "t"))
    assert isinstance(missing.value, ValueError)
    add(memories, PREFS, "theme", {"mode": "dark"})
    run(memories.delete_memory(PREFS, "theme", "me", "t"))
    with pytest.raises(MemoryNotFound):
        run(memories.update_memory(PREFS, "theme", {}, "me", "t"))
    add(memories, PREFS, "other", {"mode": "dark"})
    for changes, field in (
        ({"updated_by": ""}, "updated_by"),
        ({"task_id": ["t"]}, "task_id"),
        ({"value": float("inf")}, "value"),
        ({"key": None}, "key"),
    ):
        arguments: dict[str, Any] = {
            "namespace": PREFS,
            "key": "other",
            "value": {"x": 1},
            "updated_by": "me",
            "task_id": "t",
            **changes,
        }
        with pytest.raises(ValidationError) as caught:
            run(memories.update_memory(**arguments))
        assert caught.value.field == field
    found = run(memories.get_memory(PREFS, "other"))
    assert found is not None
    assert found["version"] == 1


def test_delete_is_soft(memories: MemoryService, store: MemoryStore) -> None:
    first = add(memories, PREFS, "theme", {"mode": "dark"})
    add(memories, PREFS, "kept", {"mode": "dark"})
    assert run(memories.delete_memory(PREFS, "theme", "session:abc", "task:9")) is None
    assert run(memories.get_memory(PREFS, "theme")) is None
    assert [m["key"] for m in run(memories.search_memories("user:alice"))] == ["kept"]
    old = run(memories.get_memory(PREFS, "theme", 1))
    assert old is not None
    assert (old["id"], old["value"], old["is_deleted"]) == (
        first,
        {"mode": "dark"},
        False,
    )
    gone = run(memories.get_memory(PREFS, "theme", 2))
    assert gone is not None
    assert (gone["is_deleted"], gone["updated_by"]) == (True, "session:abc")
    (entry,) = store.audit(kind="deleted")
    assert (entry.position, entry.actor, entry.task_id, entry.key) == (
        gone["id"],
        "session:abc",
        "task:9",
        "theme",
    )


def test_deleting_what_is_not_there_writes_nothing(
    memories: MemoryService, store: MemoryStore
) -> None:
    run(memories.delete_memory(PREFS, "never", "me", "t"))
    add(memories, PREFS, "theme", {"mode": "dark"})
    run(memories.delete_memory(PREFS, "theme", "me", "t"))
    run(memories.delete_memory(PREFS, "theme", "me", "t"))
    assert [e.kind for e in store.audit()] == ["created", "deleted"]
    with pytest.raises(ValidationError) as caught:
        run(memories.delete_memory(PREFS, "theme", "", "t"))
    assert caught.value.field == "deleted_by"


def test_get_memory_version_errors(memories: MemoryService) -> None:
    add(memories, PREFS, "theme", {"mode": "dark"})
    for version in (0, -1, "1", 1.5):
        with pytest.raises(ValidationError) as caught:
            run(memories.get_memory(PREFS, "theme", version))  # type: ignore[arg-type]
        assert caught.value.field == "version"


def test_search_follows_the_namespace_hierarchy(memories: MemoryService) -> None:
    add(memories, "user:alice", "name", {"v": "Alice"})
    add(memories, PREFS, "theme", {"v": "dark"}, memory_type="semantic")
    add(memories, "user:alice:episodes", "met_bob", {"v": 1}, memory_type="episodic")
    add(memories, "user:alicex", "theme", {"v": "light"})
    add(memories, "user:bob", "theme", {"v": "blue"})
    add(memories, "app:abathur", "version", {"v": 2}, memory_type="procedural")

    def keys(prefix: str, memory_type: str | None = None, limit: int = 50) -> set[str]:
        found = run(memories.search_memories(prefix, memory_type, limit))
        assert all(set(entry) == ENTRY_FIELDS for entry in found)
        return {f"{entry['namespace']}/{entry['key']}" for entry in found}

    alice = {"user:alice/name", f"{PREFS}/theme", "user:alice:episodes/met_bob"}
    assert keys("user:alice") == alice
    assert keys("user:alice:") == alice
    assert keys(PREFS) == {f"{PREFS}/theme"}
    assert keys("user:alicex") == {"user:alicex/theme"}
    assert keys("user:ali") == set()
    assert keys("user") == alice | {"user:alicex/theme", "user:bob/theme"}
    assert keys("user:") == keys("user")
    assert keys("user:alice", "episodic") == {"user:alice:episodes/met_bob"}
    assert keys("app:") == {"app:abathur/version"}
    assert len(keys("user", limit=2)) == 2


def test_search_returns_current_versions_newest_first(
    memories: MemoryService,
) -> None:
    for key in ("a", "b", "c"):
        add(memories, PREFS, key, {"v": 1})
    run(memories.update_memory(PREFS, "a", {"v": 2}, "me", "t"))
    found = run(memories.search_memories(PREFS))
    assert [(m["key"], m["version"], m["value"]) for m in found] == [
        ("a", 2, {"v": 2}),
        ("c", 1, {"v": 1}),
        ("b", 1, {"v": 1}),
    ]
    for entry in found:
        assert entry == run(memories.get_memory(PREFS, entry["key"]))


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        (("alice",), "namespace_prefix"),
        (("tenant:x",), "namespace_prefix"),
        ((None,), "namespace_prefix"),
        (("user:a b",), "namespace_prefix"),
        (("user", "working"), "memory_type"),
        (("user", None, 0), "limit"),
        (("user", None, 10_001), "limit"),
    ],
)
def test_search_refuses_bad_input(
    memories: MemoryService, arguments: tuple[Any, ...], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        run(memories.search_memories(*arguments))
    assert isinstance(caught.value, ValueError)
    assert caught.value.field == field


def test_history_lists_every_version_oldest_first(
    memories: MemoryService, store: MemoryStore
) -> None:
    assert run(memories.get_memory_history(PREFS, "theme")) == []
    add(memories, PREFS, "theme", {"mode": "dark"})
    for mode in ("light", "auto"):
        run(memories.update_memory(PREFS, "theme", {"mode": mode}, "agent", "t"))
    run(memories.delete_memory(PREFS, "theme", "ops", "t"))
    add(memories, "user:alice:preferences:sub", "theme", {"mode": "other"})
    history = run(memories.get_memory_history(PREFS, "theme"))
    assert [(h["version"], h["value"]["mode"], h["is_deleted"]) for h in history] == [
        (1, "dark", False),
        (2, "light", False),
        (3, "auto", False),
        (4, "auto", True),
    ]
    timeline = store.audit(namespace_prefix=PREFS, key="theme")
    assert [h["id"] for h in history] == [
        e.position for e in timeline if e.namespace == PREFS
    ]
    for entry in history:
        assert entry == run(memories.get_memory(PREFS, "theme", entry["version"]))
    with pytest.raises(ValidationError) as caught:
        run(memories.get_memory_history(PREFS, ""))
    assert caught.value.field == "key"


def test_consolidation_needs_a_merge_for_llm_based(memories: MemoryService) -> None:
    add(memories, PREFS, "theme", {"mode": "dark"})
    add(memories, PREFS, "Theme", {"mode": "light"})
    with pytest.raises(ValidationError) as caught:
        run(memories.consolidate_memories(PREFS))
    assert isinstance(caught.value, ValueError)
    assert caught.value.field == "merge"
    assert len(run(memories.search_memories(PREFS))) == 2
    with pytest.raises(ValidationError) as strategy:
        run(memories.consolidate_memories(PREFS, "newest"))
    assert strategy.value.field == "consolidation_strategy"
    with pytest.raises(ValidationError, match="merge: must be a callable"):
        MemoryService(memories.store, merge="llm")  # type: ignore[arg-type]


def merge_values(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A deterministic stand-in for a model: the union of the values, later wins."""
    merged: dict[str, Any] = {}
    for entry in entries:
        merged.update(entry["value"])
    merged["merged_from"] = [entry["key"] for entry in entries]
    return merged


async def merge_values_async(entries: list[dict[str, Any]]) -> dict[str, Any]:
    await asyncio.sleep(0)
    return merge_values(entries)


@pytest.mark.parametrize("merge", [merge_values, merge_values_async])
def test_llm_based_consolidation_merges_conflicts(
    store: MemoryStore, merge: Any
) -> None:
    memories = MemoryService(store, merge=merge, consolidated_by="consolidator")
    add(memories, PREFS, "user_theme", {"mode": "dark", "contrast": "high"})
    add(memories, PREFS, "User-Theme", {"mode": "light"})
    add(memories, PREFS, "font", {"size": 12})
    add(memories, "user:alice:preferences:ui", "UserTheme", {"mode": "blue"})
    assert run(memories.consolidate_memories(PREFS)) == 1
    live = {m["key"]: m for m in run(memories.search_memories(PREFS))}
    assert set(live) == {"User-Theme", "font", "UserTheme"}
    kept = live["User-Theme"]
    assert kept["value"] == {
        "mode": "light",
        "contrast": "high",
        "merged_from": ["user_theme", "User-Theme"],
    }
    assert (kept["version"], kept["updated_by"]) == (2, "consolidator")
    assert run(memories.get_memory(PREFS, "user_theme")) is None
    history = run(memories.get_memory_history(PREFS, "user_theme"))
    assert [h["is_deleted"] for h in history] == [False, True]
    kinds = {(e.kind, e.key, e.actor) for e in store.audit(after_position=0)}
    assert ("consolidated", "User-Theme", "consolidator") in kinds
    assert ("superseded", "user_theme", "consolidator") in kinds
    assert run(memories.consolidate_memories(PREFS)) == 0  # nothing left to merge


def test_other_strategies_and_duplicates(memories: MemoryService) -> None:
    add(memories, PREFS, "a", {"same": True}, metadata={"x": 1})
    add(memories, PREFS, "b", {"same": True}, metadata={"y": 2})
    add(memories, PREFS, "c", {"other": True})
    assert run(memories.consolidate_memories(PREFS, "merge_metadata")) == 1
    (kept,) = [m for m in run(memories.search_memories(PREFS)) if m["key"] != "c"]
    assert (kept["key"], kept["metadata"]) == ("b", {"x": 1, "y": 2})
    add(memories, "user:bob", "Theme", {"v": 1})
    add(memories, "user:bob", "theme", {"v": 2})
    assert run(memories.consolidate_memories("user:bob", "latest_wins")) == 1
    (bob,) = run(memories.search_memories("user:bob"))
    assert (bob["key"], bob["value"]) == ("theme", {"v": 2})


def test_memory_service_needs_inline_projections(tmp_path: Path) -> None:
    with (
        mnemolog.open(
            f"sqlite:///{tmp_path / 'lagging.db'}", inline_projections=False
        ) as lagging,
        pytest.raises(ValidationError, match="inline_projections"),
    ):
        MemoryService(lagging)


def test_memory_service_on_a_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'abathur.db'}"

    async def write() -> int:
        async with MemoryService(url) as memories:
            return await memories.add_memory(
                PREFS, "k", {"v": 1}, "semantic", "me", "t"
            )

    async def read() -> dict[str, Any] | None:
        async with MemoryService(url) as memories:
            return await memories.get_memory(PREFS, "k")

    memory_id = run(write())
    found = run(read())
    assert found is not None
    assert found["id"] == memory_id


# ---- the seed's integration scenarios -------------------------------------------


def test_workflow_session_task_memory_audit(
    sessions: SessionService, memories: MemoryService, store: MemoryStore
) -> None:
    run(sessions.create_session("abc123", "abathur", "alice", "schema_redesign"))
    task_id = "task:xyz789"
    run(
        sessions.append_event(
            "abc123",
            {"event_id": "evt_001", "actor": "user", "content": {"ask": "design"}},
            {"session:abc123:current_task": task_id},
        )
    )
    memory_id = run(
        memories.add_memory(
            PREFS,
            "communication_style",
            {"language": "concise"},
            "semantic",
            "session:abc123",
            task_id,
        )
    )
    run(
        sessions.append_event(
            "abc123",
            {"event_id": "evt_002", "actor": "agent:designer", "memory_id": memory_id},
            {"session:abc123:current_task": None},
        )
    )
    session = run(sessions.get_session("abc123"))
    assert session is not None
    assert [e["event_id"] for e in session["events"]] == ["evt_001", "evt_002"]
    assert session["events"][1]["memory_id"] == memory_id
    memory = run(memories.get_memory(PREFS, "communication_style"))
    assert memory is not None
    assert memory["created_by"] == "session:abc123"
    (entry,) = store.audit(actor="session:abc123")
    assert (entry.position, entry.task_id, entry.kind, entry.namespace) == (
        memory_id,
        task_id,
        "created",
        PREFS,
    )


def test_temp_and_session_state(sessions: SessionService) -> None:
    run(
        sessions.create_session(
            "abc123", "abathur", "alice", initial_state={"temp:parse": {"city": "x"}}
        )
    )
    run(
        sessions.append_event(
            "abc123",
            {"actor": "agent"},
            {"session:abc123:phase": "plan", "temp:attempts": 1},
        )
    )
    run(sessions.set_state("abc123", "temp:attempts", 2))
    run(sessions.set_state("abc123", "session:abc123:phase", "build"))
    assert run(sessions.get_state("abc123", "temp:attempts")) == 2
    assert run(sessions.get_state("abc123", "temp:parse")) == {"city": "x"}
    run(sessions.terminate_session("abc123"))
    assert run(sessions.get_state("abc123", "temp:attempts")) is None
    assert run(sessions.get_state("abc123", "temp:parse")) is None
    assert run(sessions.get_state("abc123", "session:abc123:phase")) == "build"


def test_versioning_keeps_both_versions(memories: MemoryService) -> None:
    v1 = add(memories, PREFS, "theme", {"mode": "dark"})
    v2 = run(memories.update_memory(PREFS, "theme", {"mode": "light"}, "me", "t"))
    first = run(memories.get_memory(PREFS, "theme", 1))
    second = run(memories.get_memory(PREFS, "theme", 2))
    latest = run(memories.get_memory(PREFS, "theme"))
    assert first is not None
    assert second is not None
    assert (first["id"], first["value"]) == (v1, {"mode": "dark"})
    assert (second["id"], second["value"]) == (v2, {"mode": "light"})
    assert latest == second


def test_fifty_concurrent_sessions(
    sessions: SessionService, memories: MemoryService
) -> None:
    count = 60

    async def one(n: int) -> dict[str, Any] | None:
        sid = f"s{n}"
        await sessions.create_session(sid, "abathur", f"user{n % 7}", f"p{n % 3}")
        for step in range(3):
            await sessions.append_event(
                sid, {"actor": "agent", "step": step}, {"session:step": step}
            )
        await sessions.set_state(sid, "temp:n", n)
        await memories.add_memory(
            f"session:{sid}", "result", {"n": n}, "episodic", sid, f"task:{n}"
        )
        await memories.update_memory(f"session:{sid}", "result", {"n": -n}, sid, "t")
        return await sessions.get_session(sid)

    async def everything() -> list[dict[str, Any] | None]:
        return await asyncio.gather(*(one(n) for n in range(count)))

    found = run(everything())
    for n, session in enumerate(found):
        assert session is not None
        assert session["id"] == f"s{n}"
        assert [e["step"] for e in session["events"]] == [0, 1, 2]
        assert session["state"] == {"session:step": 2, "temp:n": n}

    async def read_all() -> list[Any]:
        return await asyncio.gather(
            *(sessions.get_session(f"s{n}") for n in range(count)),
            *(memories.get_memory(f"session:s{n}", "result") for n in range(count)),
        )

    reads = run(read_all())
    assert reads[:count] == found
    assert [m["value"]["n"] for m in reads[count:]] == [-n for n in range(count)]
    assert len(run(sessions.list_active_sessions())) == count
    assert len(run(memories.search_memories("session", limit=1000))) == count


def test_concurrent_appends_to_one_session_all_land(sessions: SessionService) -> None:
    run(sessions.create_session("s", "abathur", "alice"))

    async def many() -> None:
        await asyncio.gather(
            *(
                sessions.append_event("s", {"actor": "agent", "n": n}, {f"k{n}": n})
                for n in range(20)
            )
        )

    run(many())
    found = run(sessions.get_session("s"))
    assert found is not None
    assert sorted(e["n"] for e in found["events"]) == list(range(20))
    assert found["state"] == {f"k{n}": n for n in range(20)}


def test_concurrent_adds_of_one_key_make_one_memory(memories: MemoryService) -> None:
    async def racing() -> list[Any]:
        return await asyncio.gather(
            *(
                memories.add_memory(PREFS, "theme", {"n": n}, "semantic", "me", "t")
                for n in range(8)
            ),
            return_exceptions=True,
        )

    results = run(racing())
    ids = [r for r in results if isinstance(r, int)]
    assert len(ids) == 1
    assert all(isinstance(r, MemoryExists) for r in results if not isinstance(r, int))
    history = run(memories.get_memory_history(PREFS, "theme"))
    assert [h["id"] for h in history] == ids


def test_audit_trail_of_every_memory_operation(store: MemoryStore) -> None:
    memories = MemoryService(store, merge=merge_values)
    add(memories, PREFS, "theme", {"mode": "dark"}, created_by="alice", task_id="t1")
    run(memories.update_memory(PREFS, "theme", {"mode": "light"}, "bob", "t2"))
    add(memories, PREFS, "Theme", {"mode": "auto"}, created_by="carol", task_id="t3")
    run(memories.consolidate_memories(PREFS))
    add(memories, PREFS, "font", {"size": 12}, created_by="dave", task_id="t4")
    run(memories.delete_memory(PREFS, "font", "erin", "t5"))
    timeline = [
        (e.kind, e.key, e.actor, e.task_id, e.source)
        for e in store.audit(namespace_prefix="user:alice")
    ]
    assert timeline == [
        ("created", "theme", "alice", "t1", "memory_service"),
        ("updated", "theme", "bob", "t2", "memory_service"),
        ("created", "Theme", "carol", "t3", "memory_service"),
        ("superseded", "theme", "memory_service", None, None),
        ("consolidated", "Theme", "memory_service", None, None),
        ("created", "font", "dave", "t4", "memory_service"),
        ("deleted", "font", "erin", "t5", "memory_service"),
    ]
