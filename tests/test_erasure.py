"""Erasure by crypto-shredding: a subject's, a memory's or a tenant's content
is gone from every read, search, history, export, replay and rebuild, while
the log still verifies and the audit timeline records that it happened."""

from __future__ import annotations

import io
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import mnemolog
from mnemolog import MemoryStore, NotFound, ValidationError
from mnemolog.transfer import export_events, import_events
from tests.test_search import HashEmbedder

SECRET = "zebra-quartz-secret"


def alice_and_bob(store: MemoryStore) -> None:
    store.put(
        "user:alice:prefs",
        "theme",
        {"mode": f"dark {SECRET}"},
        subject="alice",
        tags=["ui", "alice-tag"],
        metadata={"why": f"alice said {SECRET}"},
        actor="agent",
    )
    store.put("user:alice:prefs", "theme", {"mode": f"light {SECRET}"}, subject="alice")
    store.put("user:alice:notes", "n1", f"alice note {SECRET}", subject="alice")
    store.put("user:bob:prefs", "theme", "bob keeps this", subject="bob", tags=["ui"])
    store.put("app:shared", "motd", "hello everyone")


def assert_alice_gone(store: MemoryStore) -> None:
    assert store.get("user:alice:prefs", "theme") is None
    assert store.get("user:alice:prefs", "theme", include_deleted=True) is None
    assert store.get("user:alice:prefs", "theme", version=1) is None
    assert store.get("user:alice:prefs", "theme", as_of=datetime.now(UTC)) is None
    assert store.history("user:alice:prefs", "theme") == []
    assert store.search(namespace_prefix="user:alice") == []
    assert store.search(tags_any=["alice-tag"]) == []
    assert store.text_search(SECRET.split("-", maxsplit=1)[0]) == []
    assert [n.namespace for n in store.list_namespaces(prefix="user")] == [
        "user",
        "user:bob",
        "user:bob:prefs",
    ]
    for entry in store.audit(limit=100):
        assert "alice" not in entry.namespace
        assert SECRET not in (entry.reason or "")


def test_erase_subject_leaves_nothing_readable(store: MemoryStore) -> None:
    alice_and_bob(store)
    report = store.erase(subject="alice", reason="request 17", actor="dpo")
    assert (report.scope, report.streams, report.keys_destroyed) == ("subject", 2, 2)
    assert_alice_gone(store)
    bob = store.get("user:bob:prefs", "theme")
    assert bob is not None
    assert bob.value == "bob keeps this"
    assert store.get("app:shared", "motd") is not None
    erased = store.audit(kind="erased")
    assert len(erased) == 1
    assert (erased[0].actor, erased[0].reason) == ("dpo", "request 17")
    assert erased[0].namespace == ""
    assert erased[0].key == ""
    assert store.verify().ok, store.verify().problems


def test_erasure_survives_a_rebuild(store: MemoryStore) -> None:
    alice_and_bob(store)
    store.erase(subject="alice")
    store.projections.rebuild()
    assert_alice_gone(store)
    assert store.verify().ok


def test_erase_memory_then_write_it_anew(store: MemoryStore) -> None:
    alice_and_bob(store)
    report = store.erase_memory("user:alice:prefs", "theme", reason="asked")
    assert (report.scope, report.streams) == ("memory", 1)
    assert store.get("user:alice:prefs", "theme") is None
    # The other memory of the same subject stays.
    note = store.get("user:alice:notes", "n1")
    assert note is not None
    assert SECRET in note.value
    again = store.put("user:alice:prefs", "theme", "fresh start", subject="alice")
    assert again.version == 3  # versions go on after the erased ones
    history = store.history("user:alice:prefs", "theme")
    assert [(h.kind, h.memory.value) for h in history] == [("recreated", "fresh start")]
    assert store.get("user:alice:prefs", "theme", version=2) is None
    assert store.get("user:alice:prefs", "theme", version=3) == again
    assert [m.item.key for m in store.text_search("fresh")] == ["theme"]
    assert store.verify().ok, store.verify().problems
    with pytest.raises(NotFound):
        store.erase_memory("user:alice:prefs", "nothing-here")


def test_erase_whole_tenant_spares_the_others(store: MemoryStore) -> None:
    acme, other = store.tenant("acme"), store.tenant("other")
    for view in (acme, other):
        alice_and_bob(view)
    report = acme.erase(whole_tenant=True, reason="contract ended")
    assert report.scope == "tenant"
    assert acme.search(limit=100) == []
    assert acme.list_namespaces() == []
    assert [e.kind for e in acme.audit(limit=100)] == ["erased"]
    assert len(other.search(limit=100)) == 4
    assert other.get("user:alice:prefs", "theme") is not None
    assert store.verify().ok


def test_erase_needs_a_subject_or_the_whole_tenant(store: MemoryStore) -> None:
    with pytest.raises(ValidationError, match="subject"):
        store.erase()
    with pytest.raises(ValidationError, match="subject"):
        store.erase(subject="")
    with pytest.raises(ValidationError, match="not both"):
        store.erase(subject="alice", whole_tenant=True)
    report = store.erase(subject="nobody")
    assert (report.streams, report.keys_destroyed) == (0, 0)


def test_a_memorys_subject_is_fixed(store: MemoryStore) -> None:
    store.put("user:alice:prefs", "theme", "x", subject="alice")
    with pytest.raises(ValidationError, match="subject"):
        store.put("user:alice:prefs", "theme", "y", subject="bob")
    assert store.put("user:alice:prefs", "theme", "y").value == "y"
    got = store.get("user:alice:prefs", "theme")
    assert got is not None
    assert got.version == 2


def test_sessions_of_the_subject_are_erased(store: MemoryStore) -> None:
    sessions = store.sessions
    sessions.create_session(
        app_name="chat",
        user_id="alice",
        session_id="s-alice",
        state={"user:city": SECRET},
    )
    sessions.append_event("s-alice", {"author": "user", "content": SECRET})
    sessions.create_session(app_name="chat", user_id="bob", session_id="s-bob")
    store.erase(subject="alice")
    assert sessions.get_session("s-alice") is None
    listed = sessions.list_sessions(app_name="chat").sessions
    assert [s.id for s in listed] == ["s-bob"]
    assert store.search(namespace_prefix="user:alice") == []
    assert store.verify().ok


def test_export_and_import_after_erasure(store: MemoryStore) -> None:
    alice_and_bob(store)
    store.erase(subject="alice")
    out = io.BytesIO()
    export_events(store, out.write)
    assert SECRET.encode() not in out.getvalue()
    copy = mnemolog.open("memory://")
    try:
        lines = out.getvalue().splitlines()
        import_events(copy, lambda: lines)
        assert_alice_gone(copy)
        bob = copy.get("user:bob:prefs", "theme")
        assert bob is not None
        assert bob.value == "bob keeps this"
        assert copy.verify().ok, copy.verify().problems
    finally:
        copy.close()


def test_a_copy_made_before_erasure_carries_its_own_keys(store: MemoryStore) -> None:
    """An export holds plaintext (it is a copy of the data); an import seals
    it again with the new store's keys, and erasure there works the same."""
    alice_and_bob(store)
    out = io.BytesIO()
    export_events(store, out.write)
    copy = mnemolog.open("memory://")
    try:
        lines = out.getvalue().splitlines()
        import_events(copy, lambda: lines)
        assert copy.get("user:alice:notes", "n1") is not None
        copy.erase(subject="alice")
        assert_alice_gone(copy)
        assert copy.verify().ok
    finally:
        copy.close()
    assert store.get("user:alice:notes", "n1") is not None


def test_point_in_time_views_do_not_bring_it_back(store: MemoryStore) -> None:
    alice_and_bob(store)
    before = datetime.now(UTC)
    store.erase(subject="alice")
    view = store.as_of(before)
    assert view.get("user:alice:prefs", "theme") is None
    assert view.get("user:bob:prefs", "theme") is not None


def test_similar_forgets_erased_vectors(store_url: str) -> None:
    store = mnemolog.open(store_url, embedder=HashEmbedder())
    try:
        store.put("user:alice:notes", "n1", "zebra stripes forever", subject="alice")
        store.put("user:bob:notes", "n1", "zebra crossing ahead", subject="bob")
        assert len(store.similar("zebra", k=10)) == 2
        store.erase(subject="alice")
        found = store.similar("zebra", k=10)
        assert [r.item.namespace for r in found] == ["user:bob:notes"]
        assert [r.item.namespace for r in store.retrieve("zebra", k=10)] == [
            "user:bob:notes"
        ]
    finally:
        store.close()


def test_snapshotted_streams_are_erased_too(store_url: str) -> None:
    store = mnemolog.open(store_url, snapshot_interval=2)
    try:
        for i in range(5):
            store.put("user:alice:prefs", "theme", f"{SECRET} {i}", subject="alice")
        store.erase(subject="alice")
        assert store.get("user:alice:prefs", "theme", version=4) is None
        again = store.put("user:alice:prefs", "theme", "new", subject="alice")
        assert again.version == 6
        assert store.verify().ok
    finally:
        store.close()


def test_another_process_view_sees_the_erasure(persistent_url: str) -> None:
    """A second store on the same log, with the keys cached, reads nothing
    erased afterwards, and its next write to the memory starts it anew."""
    first = mnemolog.open(persistent_url)
    second = mnemolog.open(persistent_url)
    try:
        first.put("user:alice:prefs", "theme", SECRET, subject="alice")
        assert second.history("user:alice:prefs", "theme")[0].memory.value == SECRET
        first.erase(subject="alice")
        assert second.history("user:alice:prefs", "theme") == []
        assert second.get("user:alice:prefs", "theme", version=1) is None
        written = second.put("user:alice:prefs", "theme", "after", subject="alice")
        assert written.version == 2
        assert first.get("user:alice:prefs", "theme") == written
        assert first.verify().ok
    finally:
        second.close()
        first.close()


def test_no_plaintext_left_in_the_sqlite_files(tmp_path: Path) -> None:
    path = tmp_path / "erase.db"
    store = mnemolog.open(f"sqlite:///{path}")
    alice_and_bob(store)
    store.put("user:alice:notes", "n2", {"deep": [SECRET] * 50}, subject="alice")
    store.update("user:alice:notes", "n2", value=f"changed {SECRET}")
    store.erase(subject="alice")
    store.close()
    for file in tmp_path.iterdir():
        data = file.read_bytes()
        assert SECRET.encode() not in data, f"{file.name} still holds erased text"
        assert b"alice-tag" not in data, file.name
    # Bob's memory is still there (its read-model row holds the value).
    assert (
        b"bob keeps this"
        in sqlite3.connect(path)
        .execute("SELECT value FROM memories")
        .fetchone()[0]
        .encode()
    )


def test_an_altered_sealed_event_is_found_by_verify(tmp_path: Path) -> None:
    path = tmp_path / "tamper.db"
    with mnemolog.open(f"sqlite:///{path}") as store:
        store.put("user:alice:prefs", "theme", "original", subject="alice")
    raw = sqlite3.connect(path)
    state = raw.execute("SELECT state FROM stored_events").fetchone()[0]
    marker = b'"data":"'
    at = state.index(marker) + len(marker) + 30
    flipped = b"A" if state[at : at + 1] != b"A" else b"B"
    raw.execute(
        "UPDATE stored_events SET state = ?", (state[:at] + flipped + state[at + 1 :],)
    )
    raw.commit()
    raw.close()
    with mnemolog.open(f"sqlite:///{path}", inline_projections=False) as store:
        problems = store.verify(projections=False).problems
    assert any("altered" in p or "cannot be read" in p for p in problems), problems


# ---- found in review -------------------------------------------------------------


def legacy_put(store: MemoryStore, namespace: str, key: str, value: str) -> None:
    """Writes a memory as a version before sealing did: no salt, in the clear."""
    import orjson
    from eventsourcing.persistence import StoredEvent

    from mnemolog.domain.memory import Memory as Aggregate
    from mnemolog.domain.memory import Provenance

    mapper: Any = store._app.mapper
    aggregate = Aggregate.start(
        tenant=store.tenant_name,
        namespace=namespace,
        key=key,
        value=value,
        content_hash="0" * 64,
        memory_type="semantic",
        tags=[],
        metadata={},
        importance=0.5,
        confidence=1.0,
        provenance=Provenance(),
    )
    (event,) = aggregate.collect_events()
    keyring, mapper.keyring = mapper.keyring, None
    try:
        stored = mapper.to_stored_event(event)
    finally:
        mapper.keyring = keyring
    state = orjson.loads(stored.state)
    del state["salt"]
    plain = StoredEvent(stored.originator_id, 1, stored.topic, orjson.dumps(state))
    store._recorder.insert_events(
        [plain], projected_events=[mapper.to_domain_event(plain)]
    )


def test_memories_written_before_sealing_are_erased_too(store: MemoryStore) -> None:
    legacy_put(store, "user:old:notes", "n1", f"old {SECRET}")
    legacy_put(store, "user:old:notes", "n2", f"older {SECRET}")
    assert store.get("user:old:notes", "n1") is not None
    store.erase_memory("user:old:notes", "n1")
    assert store.get("user:old:notes", "n1") is None
    assert store.get("user:old:notes", "n1", version=1) is None
    assert store.history("user:old:notes", "n1") == []
    store.erase(whole_tenant=True)
    assert store.get("user:old:notes", "n2") is None
    assert store.text_search("older") == []
    out = io.BytesIO()
    export_events(store, out.write)
    assert SECRET.encode() not in out.getvalue()
    store.projections.rebuild()
    assert store.search() == []
    assert store.verify().ok, store.verify().problems


def test_whole_tenant_must_be_a_bool(store: MemoryStore) -> None:
    alice_and_bob(store)
    with pytest.raises(ValidationError, match="whole_tenant"):
        store.erase(whole_tenant="no")  # type: ignore[arg-type]
    assert store.get("user:bob:prefs", "theme") is not None


def test_verify_finds_keys_deleted_outside_erase(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"
    with mnemolog.open(f"sqlite:///{path}") as store:
        alice_and_bob(store)
    raw = sqlite3.connect(path)
    raw.execute("DELETE FROM stream_keys")
    raw.commit()
    raw.close()
    with mnemolog.open(f"sqlite:///{path}") as store:
        problems = store.verify(projections=False).problems
    assert any("no erasure in the log names it" in p for p in problems), problems


def test_verify_finds_an_edited_erasure(tmp_path: Path) -> None:
    path = tmp_path / "edit.db"
    with mnemolog.open(f"sqlite:///{path}") as store:
        alice_and_bob(store)
        store.erase(subject="alice", reason="request 17", actor="dpo")
    raw = sqlite3.connect(path)
    (state,) = raw.execute(
        "SELECT state FROM stored_events WHERE topic LIKE '%Erasure.Erased'"
    ).fetchone()
    edited = state.replace(b'"dpo"', b'"nobody"')
    raw.execute(
        "UPDATE stored_events SET state = ? WHERE topic LIKE '%Erasure.Erased'",
        (edited,),
    )
    raw.commit()
    raw.close()
    with mnemolog.open(f"sqlite:///{path}") as store:
        problems = store.verify(projections=False).problems
    assert any("differs from the one recorded" in p for p in problems), problems


def test_a_point_in_time_view_of_a_namespace_keeps_recreated_memories(
    store: MemoryStore,
) -> None:
    store.put("user:a:notes", "k", "first life", subject="a")
    store.erase_memory("user:a:notes", "k")
    store.put("user:a:notes", "k", "second life", subject="a")
    with store.as_of(datetime.now(UTC), namespace_prefix="user:a") as view:
        found = view.get("user:a:notes", "k")
        assert found is not None
        assert found.value == "second life"
