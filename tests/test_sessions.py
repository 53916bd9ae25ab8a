"""Sessions through the public API, on every backend."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import pytest

import mnemolog
from mnemolog import MemoryStore, NotFound, ValidationError, VersionConflict
from mnemolog.domain.session import IllegalTransition
from mnemolog.sessions import SessionExists


def test_create_append_and_read_back(store: MemoryStore) -> None:
    sessions = store.sessions
    created = sessions.create_session(
        app_name="travel",
        user_id="alice",
        session_id="s1",
        project_id="p1",
        state={"step": 1, "temp:scratch": 1},
        metadata={"channel": "web"},
    )
    assert (created.id, created.status, created.event_count) == ("s1", "created", 0)
    assert created.state == {"step": 1}
    assert created.metadata == {"channel": "web"}
    first = sessions.append_event(
        "s1",
        {"author": "user", "content": {"text": "book a flight"}, "invocation_id": "i1"},
        {"step": 2, "temp:draft": "x"},
    )
    sessions.append_event("s1", {"id": "e2", "author": "agent", "content": "done"})
    read = sessions.get_session("s1")
    assert read is not None
    assert read.status == "active"
    assert read.state == {"step": 2}
    assert [e.author for e in read.events] == ["user", "agent"]
    assert read.events[0] == first
    assert read.events[0].state_delta == {"step": 2}
    assert read.events[1].id == "e2"
    assert read.event_count == 2
    assert sessions.get_state("s1", "step") == 2
    assert sessions.get_state("s1", "temp:draft") is None
    assert sessions.get_session("nope") is None


def test_recent_events_and_events_after_a_time(store: MemoryStore) -> None:
    sessions = store.sessions
    sessions.create_session(app_name="a", user_id="u", session_id="s")
    for n in range(5):
        sessions.append_event("s", {"id": f"e{n}", "author": "user", "content": n})
    session = sessions.get_session("s")
    assert session is not None
    recent = sessions.get_session("s", num_recent_events=2)
    assert [e.id for e in recent.events] == ["e3", "e4"]  # type: ignore[union-attr]
    assert sessions.get_session("s", num_recent_events=0).events == ()  # type: ignore[union-attr]
    after = sessions.get_session("s", after=session.events[2].timestamp)
    assert [e.id for e in after.events] == ["e3", "e4"]  # type: ignore[union-attr]


def test_user_and_app_state_are_shared_memories(store: MemoryStore) -> None:
    sessions = store.sessions
    sessions.create_session(
        app_name="travel",
        user_id="alice",
        session_id="s1",
        state={"user:seat": "window"},
    )
    sessions.create_session(app_name="travel", user_id="alice", session_id="s2")
    sessions.create_session(app_name="travel", user_id="bob", session_id="s3")
    sessions.append_event(
        "s2", {"author": "agent"}, {"user:seat": "aisle", "app:promo": 1}
    )
    assert sessions.get_state("s1", "user:seat") == "aisle"  # shared across sessions
    assert sessions.get_state("s3", "user:seat") is None  # not across users
    assert sessions.get_state("s3", "app:promo") == 1  # but across the app
    memory = store.get("user:alice:state", "seat")
    assert memory is not None
    assert (memory.value, memory.version) == ("aisle", 2)
    assert [h.memory.value for h in store.history("user:alice:state", "seat")] == [
        "window",
        "aisle",
    ]
    assert [e.kind for e in store.audit(namespace_prefix="app:travel:state")] == [
        "created"
    ]


def test_terminating_clears_working_state_and_refuses_events(
    store: MemoryStore,
) -> None:
    sessions = store.sessions
    sessions.create_session(app_name="a", user_id="u", session_id="s", state={"x": 1})
    sessions.set_state("s", "user:lang", "fr")
    ended = sessions.terminate_session("s")
    assert ended.status == "terminated"
    assert ended.state == {"user:lang": "fr"}
    with pytest.raises(mnemolog.MnemologError):
        sessions.append_event("s", {"author": "user"})
    assert sessions.update_status("s", "archived").status == "archived"


@pytest.mark.parametrize(
    ("path", "wanted"),
    [([], "paused"), (["active", "terminated"], "active"), (["terminated"], "paused")],
)
def test_illegal_transitions_are_refused(
    store: MemoryStore, path: list[str], wanted: str
) -> None:
    sessions = store.sessions
    sessions.create_session(app_name="a", user_id="u", session_id="s")
    for status in path:
        sessions.update_status("s", status)
    version = sessions.get_session("s").version  # type: ignore[union-attr]
    with pytest.raises(IllegalTransition):
        sessions.update_status("s", wanted)
    assert sessions.get_session("s").version == version  # type: ignore[union-attr]


def test_rewind_restores_state_and_keeps_history(store: MemoryStore) -> None:
    sessions = store.sessions
    sessions.create_session(app_name="a", user_id="u", session_id="s", state={"n": 0})
    for n in (1, 2, 3):
        sessions.append_event("s", {"id": f"e{n}", "author": "agent"}, {"n": n})
    rewound = sessions.rewind("s", "e1")
    assert rewound.state == {"n": 1}
    assert rewound.event_count == 3
    with pytest.raises(NotFound):
        sessions.rewind("s", "e9")


def test_listing_by_user_app_and_status(store: MemoryStore) -> None:
    sessions = store.sessions
    for n in range(5):
        sessions.create_session(
            app_name=["x", "y"][n % 2],
            user_id=["alice", "bob"][n % 2],
            session_id=f"s{n}",
        )
    sessions.append_event("s0", {"author": "user"})
    sessions.append_event("s2", {"author": "user"})
    assert {s.id for s in sessions.list_sessions(user_id="alice").sessions} == {
        "s0",
        "s2",
        "s4",
    }
    assert {s.id for s in sessions.list_sessions(app_name="y").sessions} == {"s1", "s3"}
    assert {s.id for s in sessions.list_active_sessions()} == {"s0", "s2"}
    assert {s.id for s in sessions.list_active_sessions(user_id="bob")} == set()
    first = sessions.list_sessions(limit=2)
    assert len(first.sessions) == 2
    assert first.next_cursor is not None
    rest = sessions.list_sessions(limit=10, cursor=first.next_cursor)
    assert rest.next_cursor is None
    assert {s.id for s in first.sessions + rest.sessions} == {f"s{n}" for n in range(5)}
    assert store.tenant("other").sessions.list_sessions().sessions == ()


def test_bad_input_and_conflicts(store: MemoryStore) -> None:
    sessions = store.sessions
    sessions.create_session(app_name="a", user_id="u", session_id="s")
    with pytest.raises(SessionExists):
        sessions.create_session(app_name="a", user_id="u", session_id="s")
    with pytest.raises(ValidationError) as info:
        sessions.create_session(app_name="a b", user_id="u")
    assert info.value.field == "app_name"
    with pytest.raises(ValidationError) as info:
        sessions.append_event("s", {"content": "no author"})
    assert info.value.field == "event.author"
    with pytest.raises(ValidationError):
        sessions.append_event("s", {"author": "u"}, {"x": float("nan")})
    with pytest.raises(ValidationError):
        sessions.update_status("s", "sleeping")
    with pytest.raises(NotFound):
        sessions.append_event("missing", {"author": "u"})
    version = sessions.get_session("s").version  # type: ignore[union-attr]
    with pytest.raises(VersionConflict):
        sessions.append_event("s", {"author": "u"}, expected_version=version + 3)
    assert sessions.get_session("s").version == version  # type: ignore[union-attr]


def test_fifty_sessions_appended_from_threads_lose_nothing(store: MemoryStore) -> None:
    sessions = store.sessions
    for n in range(50):
        sessions.create_session(app_name="a", user_id=f"u{n % 5}", session_id=f"s{n}")

    def worker(offset: int) -> None:
        for n in range(offset, 50, 4):
            for turn in range(4):
                sessions.append_event(
                    f"s{n}", {"author": "user", "content": turn}, {"turns": turn + 1}
                )

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n in range(50):
        session = sessions.get_session(f"s{n}")
        assert session is not None
        assert session.event_count == 4
        assert [e.content for e in session.events] == [0, 1, 2, 3]
        assert session.state == {"turns": 4}


def test_racing_writers_on_one_session(store: MemoryStore) -> None:
    sessions = store.sessions
    sessions.create_session(app_name="a", user_id="u", session_id="s")
    conflicts = []

    def writer(name: str) -> None:
        for _ in range(20):
            current = sessions.get_session("s", num_recent_events=0)
            assert current is not None
            try:
                sessions.append_event(
                    "s", {"author": name}, expected_version=current.version
                )
            except VersionConflict:
                conflicts.append(name)

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    session = sessions.get_session("s")
    assert session is not None
    assert session.event_count == 40 - len(conflicts)
    assert session.version == 1 + session.event_count


def test_sessions_from_asyncio_tasks(store_url: str) -> None:
    async def scenario() -> None:
        async with mnemolog.open_async(store_url) as astore:
            sessions = astore.sync.sessions
            for n in range(10):
                sessions.create_session(app_name="a", user_id="u", session_id=f"s{n}")

            async def chat(n: int) -> None:
                for turn in range(3):
                    await asyncio.to_thread(
                        sessions.append_event,
                        f"s{n}",
                        {"author": "user", "content": turn},
                    )

            await asyncio.gather(*(chat(n) for n in range(10)))
            for n in range(10):
                assert sessions.get_session(f"s{n}").event_count == 3  # type: ignore[union-attr]

    asyncio.run(scenario())


def test_sessions_survive_rebuild_verify_and_export(store: MemoryStore) -> None:
    sessions = store.sessions
    sessions.create_session(app_name="a", user_id="u", session_id="s", state={"x": 1})
    sessions.append_event("s", {"author": "user"}, {"user:k": 1, "y": 2})
    before = sessions.list_sessions().sessions
    store.projections.rebuild("sessions")
    assert sessions.list_sessions().sessions == before
    assert store.verify().ok
    with store.as_of(datetime.now(UTC)) as then:
        assert then.get("user:u:state", "k").value == 1  # type: ignore[union-attr]


def test_sessions_move_with_export_and_import(store: MemoryStore) -> None:
    import io

    from mnemolog.transfer import export_events, import_events

    sessions = store.sessions
    sessions.create_session(app_name="a", user_id="u", session_id="s")
    sessions.append_event("s", {"author": "user", "content": b"\x00"}, {"user:k": 1})
    buffer = io.BytesIO()
    export_events(store, buffer.write)
    lines = buffer.getvalue().splitlines(keepends=True)
    with mnemolog.open("memory://") as copy:
        import_events(copy, lambda: lines)
        assert copy.verify().ok
        moved = copy.sessions.get_session("s")
        assert moved == sessions.get_session("s")


def test_delete_session_hides_it_everywhere_and_keeps_the_log(
    store: MemoryStore,
) -> None:
    sessions = store.sessions
    sessions.create_session(app_name="a", user_id="u", session_id="s1")
    sessions.append_event("s1", {"author": "user", "content": "hi"}, {"user:x": 1})
    sessions.create_session(app_name="a", user_id="u", session_id="s2")
    sessions.delete_session("s1", actor="ops")
    assert sessions.get_session("s1") is None
    assert [s.id for s in sessions.list_sessions(app_name="a").sessions] == ["s2"]
    with pytest.raises(NotFound):
        sessions.append_event("s1", {"author": "user"})
    with pytest.raises(NotFound):
        sessions.delete_session("s1")
    with pytest.raises(NotFound):
        sessions.update_status("s1", "paused")
    with pytest.raises(SessionExists):
        sessions.create_session(app_name="a", user_id="u", session_id="s1")
    assert sessions.get_state("s2", "user:x") == 1  # shared state lives on
    report = store.verify()
    assert report.ok, report.problems
    store.projections.rebuild()
    assert [s.id for s in sessions.list_sessions(app_name="a").sessions] == ["s2"]


def test_sessions_become_searchable_memories(store: MemoryStore) -> None:
    sessions = store.sessions
    sessions.create_session(app_name="travel", user_id="ann", session_id="t1")
    sessions.append_event(
        "t1",
        {"author": "user", "content": {"parts": [{"text": "I hate red-eye flights"}]}},
    )
    sessions.append_event(
        "t1", {"author": "agent", "content": "Noted: daytime flights"}
    )
    sessions.append_event("t1", {"author": "agent", "content": {"n": 1}})  # no text
    sessions.create_session(app_name="travel", user_id="bob", session_id="t2")
    sessions.append_event("t2", {"author": "user", "content": "flights to Oslo please"})

    kept = sessions.add_session_to_memory("t1")
    assert [m.value["author"] for m in kept] == ["user", "agent"]
    assert {m.namespace for m in kept} == {"session:t1"}
    assert all(m.memory_type == "episodic" for m in kept)
    assert kept[0].value["text"] == "I hate red-eye flights"
    sessions.add_session_to_memory(
        sessions.get_session("t2"), namespace="user:bob:episodes"
    )  # type: ignore[arg-type]
    again = sessions.add_session_to_memory("t1")  # nothing new: same versions
    assert [m.version for m in again] == [1, 1]

    found = sessions.search_memory("travel", "ann", "flights")
    assert {r.item.key for r in found} == {m.key for m in kept}
    assert all(r.item.metadata["user_id"] == "ann" for r in found)
    assert [
        r.item.namespace for r in sessions.search_memory("travel", "bob", "Oslo")
    ] == ["user:bob:episodes"]
    assert sessions.search_memory("travel", "carol", "flights") == []
    only_user = sessions.add_session_to_memory(
        "t1", namespace="user:ann:said", authors=["user"]
    )
    assert [m.value["author"] for m in only_user] == ["user"]
    with pytest.raises(NotFound):
        sessions.add_session_to_memory("nope")
    with pytest.raises(ValidationError) as raised:
        sessions.search_memory("travel", "a b", "x")
    assert raised.value.field == "user_id"


def test_async_delete_and_memory_of_sessions(store_url: str) -> None:
    async def run() -> None:
        async with mnemolog.open_async(store_url) as store:
            sessions = store.sessions
            await sessions.create_session(app_name="a", user_id="u", session_id="s")
            await sessions.append_event(
                "s", {"author": "user", "content": "remember the milk"}
            )
            kept = await sessions.add_session_to_memory("s")
            assert len(kept) == 1
            found = await sessions.search_memory("a", "u", "milk")
            assert [r.item.key for r in found] == [kept[0].key]
            await sessions.delete_session("s")
            assert await sessions.get_session("s") is None

    asyncio.run(run())
