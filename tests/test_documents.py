"""The document index: the aggregate alone, then the service on every backend."""

from __future__ import annotations

import hashlib
import io
import itertools
import threading
from pathlib import Path
from typing import Any

import pytest

import mnemolog
from mnemolog import (
    AccessDenied,
    Document,
    Grant,
    MemoryStore,
    NotFound,
    Policy,
    Principal,
    ValidationError,
)
from mnemolog.domain.chain import GENESIS_HASH
from mnemolog.domain.document import Document as DocumentAggregate
from mnemolog.domain.document import IllegalSyncTransition
from mnemolog.transfer import export_events, import_events


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# ---- the aggregate -------------------------------------------------------------


def new_document(**overrides: Any) -> DocumentAggregate:
    fields: dict[str, Any] = {
        "tenant": "t",
        "file_path": "/docs/a.md",
        "title": "A",
        "document_type": "markdown",
        "content_hash": sha("a"),
        "chunk_count": 1,
        "embedding_model": None,
        "metadata": {},
        **overrides,
    }
    return DocumentAggregate.register(**fields, actor="indexer", reason="scan")


def test_ids_are_derived_from_tenant_and_path() -> None:
    assert DocumentAggregate.create_id("t", "/a") == DocumentAggregate.create_id(
        "t", "/a"
    )
    assert DocumentAggregate.create_id("t", "/a") != DocumentAggregate.create_id(
        "u", "/a"
    )
    assert DocumentAggregate.create_id("t", "/a") != DocumentAggregate.create_id(
        "t", "/b"
    )


@pytest.mark.parametrize(
    ("before", "after"),
    [("pending", "pending"), ("synced", "stale"), ("failed", "stale")],
)
def test_new_content_makes_an_ever_synced_document_stale(
    before: str, after: str
) -> None:
    document = new_document()
    if before == "synced":
        document.mark_synced(chunk_count=3)
    elif before == "failed":
        document.mark_failed("timeout")
    assert document.sync_status == before
    assert document.revise({"content_hash": sha("b")}, actor=None, reason=None)
    assert document.sync_status == after
    assert document.error is None


def test_a_revision_without_new_content_keeps_the_status() -> None:
    document = new_document()
    document.mark_failed("timeout")
    assert document.revise({"title": "B"}, actor=None, reason=None)
    assert (document.sync_status, document.error, document.title) == (
        "failed",
        "timeout",
        "B",
    )
    assert not document.revise({"title": "B"}, actor=None, reason=None)


def test_stale_rules_of_mark_stale() -> None:
    document = new_document()
    with pytest.raises(IllegalSyncTransition) as caught:
        document.mark_stale()
    assert caught.value.field == "sync_status"
    document.mark_synced()
    assert document.mark_stale()
    assert not document.mark_stale()  # already stale: nothing new
    assert [type(e).__name__ for e in document.collect_events()] == [
        "Registered",
        "Synced",
        "MarkedStale",
    ]


def test_events_chain_and_carry_provenance() -> None:
    document = new_document()
    document.mark_synced(actor="worker", reason="nightly")
    document.remove(actor="admin", reason="deleted on disk")
    events = document.collect_events()
    assert events[0].prev_hash == GENESIS_HASH  # type: ignore[attr-defined]
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.digest()  # type: ignore[attr-defined]
    assert [(e.actor, e.reason) for e in events] == [  # type: ignore[attr-defined]
        ("indexer", "scan"),
        ("worker", "nightly"),
        ("admin", "deleted on disk"),
    ]
    with pytest.raises(NotFound):
        document.mark_synced()


def test_a_removed_document_is_registered_anew() -> None:
    document = new_document()
    document.mark_synced(chunk_count=9)
    document.remove()
    document.reregister(
        {
            "tenant": "t",
            "file_path": "/docs/a.md",
            "title": "A2",
            "document_type": None,
            "content_hash": sha("a"),
            "chunk_count": 1,
            "embedding_model": None,
            "metadata": {},
        },
        actor=None,
        reason=None,
    )
    assert not document.deleted
    assert (document.sync_status, document.last_synced_at, document.chunk_count) == (
        "pending",
        None,
        1,
    )


# ---- the service -----------------------------------------------------------------


def test_register_and_read_back(store: MemoryStore) -> None:
    docs = store.documents
    registered = docs.register(
        "/docs/guide.md",
        title="Guide",
        content_hash=sha("v1").upper(),
        document_type="markdown",
        metadata={"lang": "en", "tags": ["a"]},
        actor="indexer",
        reason="initial scan",
    )
    assert isinstance(registered, Document)
    assert registered.content_hash == sha("v1")  # kept in lowercase
    assert (registered.sync_status, registered.chunk_count, registered.version) == (
        "pending",
        1,
        1,
    )
    assert registered.tenant == store.tenant_name
    assert registered.last_synced_at is None
    assert docs.get("/docs/guide.md") == registered
    assert docs.get("/docs/other.md") is None
    (entry,) = docs.history("/docs/guide.md")
    assert (entry.kind, entry.actor, entry.reason) == (
        "registered",
        "indexer",
        "initial scan",
    )
    assert entry.document == registered


def test_sync_lifecycle(store: MemoryStore) -> None:
    docs = store.documents
    docs.register("/a.md", title="A", content_hash=sha("1"))
    synced = docs.mark_synced("/a.md", chunk_count=12, embedding_model="mini-lm")
    assert (synced.sync_status, synced.chunk_count, synced.embedding_model) == (
        "synced",
        12,
        "mini-lm",
    )
    assert synced.last_synced_at == synced.updated_at
    failed = docs.mark_failed("/a.md", error="embedder timed out\nafter 30s")
    assert (failed.sync_status, failed.error) == (
        "failed",
        "embedder timed out\nafter 30s",
    )
    assert failed.last_synced_at == synced.last_synced_at
    resynced = docs.mark_synced("/a.md")
    assert (resynced.sync_status, resynced.error, resynced.chunk_count) == (
        "synced",
        None,
        12,
    )
    stale = docs.mark_stale("/a.md", actor="watcher", reason="touched")
    assert stale.sync_status == "stale"
    assert docs.mark_stale("/a.md") == stale  # nothing new
    assert docs.get("/a.md") == stale
    assert [e.kind for e in docs.history("/a.md")] == [
        "registered",
        "synced",
        "failed",
        "synced",
        "marked_stale",
    ]


@pytest.mark.parametrize("status", ["pending", "synced", "failed", "stale"])
def test_a_new_content_hash_marks_a_synced_document_stale(
    store: MemoryStore, status: str
) -> None:
    docs = store.documents
    docs.register("/f.txt", title="F", content_hash=sha("old"))
    if status != "pending":
        docs.mark_synced("/f.txt")
    if status == "failed":
        docs.mark_failed("/f.txt", error="x")
    if status == "stale":
        docs.mark_stale("/f.txt")
    changed = docs.register("/f.txt", title="F", content_hash=sha("new"))
    assert changed.sync_status == ("pending" if status == "pending" else "stale")
    assert changed.error is None
    assert changed.content_hash == sha("new")
    assert docs.get("/f.txt") == changed


def test_registering_what_is_stored_writes_nothing(store: MemoryStore) -> None:
    docs = store.documents
    first = docs.register(
        "/x", title="X", content_hash=sha("x"), chunk_count=4, metadata={"k": 1}
    )
    synced = docs.mark_synced("/x")
    again = docs.register("/x", title="X", content_hash=sha("x").upper())
    assert again == synced
    assert len(docs.history("/x")) == 2
    assert again.chunk_count == first.chunk_count == 4  # left out: kept
    assert again.metadata == {"k": 1}


def test_changes_without_new_content_keep_the_status(store: MemoryStore) -> None:
    docs = store.documents
    docs.register("/x", title="X", content_hash=sha("x"))
    docs.mark_synced("/x")
    retitled = docs.register(
        "/x",
        title="X, retitled",
        content_hash=sha("x"),
        document_type="text",
        metadata={"owner": "ops"},
    )
    assert retitled.sync_status == "synced"
    assert (retitled.title, retitled.document_type, retitled.metadata) == (
        "X, retitled",
        "text",
        {"owner": "ops"},
    )
    last = docs.history("/x")[-1]
    assert (last.kind, last.changed) == (
        "revised",
        ("document_type", "metadata", "title"),
    )


def test_list_filters_and_pages_newest_first(store: MemoryStore) -> None:
    docs = store.documents
    for n in range(7):
        docs.register(
            f"/d/{n}",
            title=f"D{n}",
            content_hash=sha(str(n)),
            document_type="pdf" if n % 2 else "markdown",
        )
    for n in (1, 2, 3):
        docs.mark_synced(f"/d/{n}")
    docs.mark_failed("/d/3", error="bad pdf")
    listed = docs.list().documents
    assert [d.file_path for d in listed] == [
        "/d/3",
        "/d/2",
        "/d/1",
        "/d/6",
        "/d/5",
        "/d/4",
        "/d/0",
    ]
    assert [d.updated_at for d in listed] == sorted(
        (d.updated_at for d in listed), reverse=True
    )
    assert {d.file_path for d in docs.list(sync_status="synced").documents} == {
        "/d/1",
        "/d/2",
    }
    assert {d.file_path for d in docs.list(sync_status="pending").documents} == {
        "/d/0",
        "/d/4",
        "/d/5",
        "/d/6",
    }
    assert [
        d.file_path
        for d in docs.list(sync_status="pending", document_type="pdf").documents
    ] == ["/d/5"]
    assert docs.list(document_type="html").documents == ()
    paged: list[str] = []
    cursor = None
    while True:
        page = docs.list(limit=3, cursor=cursor)
        assert len(page.documents) <= 3
        paged += [d.file_path for d in page.documents]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert paged == [d.file_path for d in listed]


def test_get_by_hash(store: MemoryStore) -> None:
    docs = store.documents
    docs.register("/a/copy.md", title="A", content_hash=sha("same"))
    docs.register("/b/copy.md", title="B", content_hash=sha("same"))
    docs.register("/c.md", title="C", content_hash=sha("other"))
    found = docs.get_by_hash(sha("same").upper())
    assert {d.file_path for d in found} == {"/a/copy.md", "/b/copy.md"}
    assert docs.get_by_hash(sha("none")) == []
    assert len(docs.get_by_hash(sha("same"), limit=1)) == 1


def test_remove_hides_and_keeps_history(store: MemoryStore) -> None:
    docs = store.documents
    docs.register("/gone", title="G", content_hash=sha("g"))
    docs.mark_synced("/gone", chunk_count=5)
    docs.remove("/gone", actor="admin", reason="deleted on disk")
    assert docs.get("/gone") is None
    assert docs.list().documents == ()
    assert docs.get_by_hash(sha("g")) == []
    history = docs.history("/gone")
    assert [e.kind for e in history] == ["registered", "synced", "removed"]
    assert history[-1].removed
    assert (history[-1].actor, history[-1].reason) == (
        "admin",
        "deleted on disk",
    )
    for call in (
        lambda: docs.remove("/gone"),
        lambda: docs.mark_synced("/gone"),
        lambda: docs.mark_failed("/gone", error="x"),
        lambda: docs.mark_stale("/gone"),
        lambda: docs.remove("/never"),
    ):
        with pytest.raises(NotFound):
            call()
    back = docs.register("/gone", title="G again", content_hash=sha("g"))
    assert (back.sync_status, back.chunk_count, back.version) == ("pending", 1, 4)
    assert back.last_synced_at is None
    assert docs.get("/gone") == back


def test_mark_stale_of_a_never_synced_document_is_refused(store: MemoryStore) -> None:
    docs = store.documents
    docs.register("/p", title="P", content_hash=sha("p"))
    with pytest.raises(IllegalSyncTransition) as caught:
        docs.mark_stale("/p")
    assert isinstance(caught.value, ValidationError)
    assert caught.value.field == "sync_status"
    assert docs.get("/p").sync_status == "pending"  # type: ignore[union-attr]
    assert len(docs.history("/p")) == 1


GOOD: dict[str, Any] = {"title": "T", "content_hash": sha("t")}


@pytest.mark.parametrize(
    ("path", "arguments", "field", "rule"),
    [
        ("", {}, "file_path", "empty"),
        ("   ", {}, "file_path", "blank"),
        ("/a" * 2049, {}, "file_path", "4096"),
        ("/a\x00b", {}, "file_path", "NUL"),
        ("/a\nb", {}, "file_path", "control"),
        ("/a\ud800", {}, "file_path", "Unicode"),
        (7, {}, "file_path", "string"),
        ("/ok", {"title": ""}, "title", "non-blank"),
        ("/ok", {"title": "a\tb"}, "title", "control"),
        ("/ok", {"title": "x" * 1025}, "title", "1024"),
        ("/ok", {"content_hash": "xyz"}, "content_hash", "hex"),
        ("/ok", {"content_hash": sha("t")[:-1]}, "content_hash", "hex"),
        ("/ok", {"content_hash": "ab" * 65}, "content_hash", "hex"),
        ("/ok", {"content_hash": 12}, "content_hash", "hex"),
        ("/ok", {"chunk_count": -1}, "chunk_count", "[0,"),
        ("/ok", {"chunk_count": 1.5}, "chunk_count", "integer"),
        ("/ok", {"chunk_count": True}, "chunk_count", "integer"),
        ("/ok", {"document_type": ""}, "document_type", "non-empty"),
        ("/ok", {"document_type": "x" * 129}, "document_type", "128"),
        ("/ok", {"embedding_model": "m\x07"}, "embedding_model", "control"),
        ("/ok", {"metadata": ["not", "an", "object"]}, "metadata", "JSON object"),
        ("/ok", {"metadata": {"f": float("nan")}}, "metadata.f", "finite"),
        ("/ok", {"metadata": {"b": b"bytes"}}, "metadata.b", "JSON"),
        ("/ok", {"metadata": {"big": "x" * 70_000}}, "metadata", "65536"),
        ("/ok", {"actor": "a" * 300}, "actor", "256"),
        ("/ok", {"reason": "r\x00"}, "reason", "control"),
    ],
)
def test_bad_input_is_refused_by_name_and_writes_nothing(
    store: MemoryStore, path: Any, arguments: dict[str, Any], field: str, rule: str
) -> None:
    docs = store.documents
    with pytest.raises(ValidationError) as caught:
        docs.register(path, **{**GOOD, **arguments})
    assert caught.value.field == field
    assert rule in caught.value.rule
    assert docs.list().documents == ()


def test_bad_sync_arguments_are_refused(store: MemoryStore) -> None:
    docs = store.documents
    docs.register("/ok", **GOOD)
    refusals: list[tuple[Any, str]] = [
        (lambda: docs.mark_synced("/ok", chunk_count=-3), "chunk_count"),
        (lambda: docs.mark_synced("/ok", embedding_model=""), "embedding_model"),
        (lambda: docs.mark_failed("/ok", error=""), "error"),
        (lambda: docs.mark_failed("/ok", error="e\x1b[31m"), "error"),
        (lambda: docs.mark_failed("/ok", error="e" * 4097), "error"),
        (lambda: docs.list(sync_status="done"), "sync_status"),
        (lambda: docs.list(limit=0), "limit"),
        (lambda: docs.list(limit=1001), "limit"),
        (lambda: docs.list(cursor="12"), "cursor"),
        (lambda: docs.list(cursor="1.XYZ"), "cursor"),
        (lambda: docs.get_by_hash("nope"), "content_hash"),
        (lambda: docs.get(""), "file_path"),
        (lambda: docs.history("/a\x00"), "file_path"),
    ]
    for call, field in refusals:
        with pytest.raises(ValidationError) as caught:
            call()
        assert caught.value.field == field
    assert len(docs.history("/ok")) == 1


def test_tenants_are_isolated(store: MemoryStore) -> None:
    acme, globex = store.tenant("acme").documents, store.tenant("globex").documents
    acme.register("/shared/path.md", title="Acme's", content_hash=sha("h"))
    acme.mark_synced("/shared/path.md")
    assert globex.get("/shared/path.md") is None
    assert globex.list().documents == ()
    assert globex.get_by_hash(sha("h")) == []
    assert globex.history("/shared/path.md") == []
    with pytest.raises(NotFound):
        globex.mark_synced("/shared/path.md")
    theirs = globex.register("/shared/path.md", title="Globex's", content_hash=sha("h"))
    assert theirs.id != acme.get("/shared/path.md").id  # type: ignore[union-attr]
    assert theirs.sync_status == "pending"
    assert acme.get("/shared/path.md").title == "Acme's"  # type: ignore[union-attr]
    assert [d.tenant for d in acme.list().documents] == ["acme"]
    assert [d.tenant for d in globex.get_by_hash(sha("h"))] == ["globex"]
    assert store.documents.list().documents == ()  # the default tenant's


def test_access_is_checked_against_the_documents_namespace(store_url: str) -> None:
    policy = Policy(
        grants=(
            Grant(actions=frozenset({"read"}), roles=frozenset({"reader"})),
            Grant(
                actions=frozenset({"read", "write"}),
                principals=frozenset({"indexer"}),
                namespaces=("documents",),
            ),
            Grant(
                actions=frozenset({"read", "write", "delete"}),
                principals=frozenset({"notes"}),
                namespaces=("user",),
            ),
            Grant(actions=frozenset({"admin"}), principals=frozenset({"*"})),
        )
    )
    with mnemolog.open(store_url, policy=policy) as guarded:
        indexer = guarded.as_principal(Principal("indexer")).documents
        reader = guarded.as_principal(Principal("r", frozenset({"reader"}))).documents
        notes = guarded.as_principal(Principal("notes")).documents
        indexer.register("/a", title="A", content_hash=sha("a"))
        indexer.mark_synced("/a")
        assert reader.get("/a").sync_status == "synced"  # type: ignore[union-attr]
        assert len(reader.list().documents) == 1
        with pytest.raises(AccessDenied):
            reader.register("/b", title="B", content_hash=sha("b"))
        with pytest.raises(AccessDenied):
            indexer.remove("/a")  # delete is not granted
        with pytest.raises(AccessDenied):
            notes.get("/a")  # a grant on user: does not cover documents
        with pytest.raises(AccessDenied):
            notes.list()
        assert reader.get("/b") is None
        assert len(indexer.history("/a")) == 2


def test_acl_hook_sees_the_path(store_url: str) -> None:
    seen: list[tuple[str | None, str | None, str]] = []

    def hook(tenant: str, namespace: str | None, key: str | None, op: str) -> bool:
        seen.append((namespace, key, op))
        return key != "/secret"

    with mnemolog.open(store_url, acl_check=hook) as guarded:
        guarded.documents.register("/open", title="O", content_hash=sha("o"))
        with pytest.raises(AccessDenied):
            guarded.documents.register("/secret", title="S", content_hash=sha("s"))
        with pytest.raises(AccessDenied):
            guarded.documents.get("/secret")
    assert ("documents", "/open", "write") in seen


def test_whole_tenant_erasure_removes_the_documents(store: MemoryStore) -> None:
    acme, globex = store.tenant("acme"), store.tenant("globex")
    for view in (acme, globex):
        view.documents.register(
            "/private.md", title="Private", content_hash=sha("p"), metadata={"a": 1}
        )
        view.documents.mark_synced("/private.md", chunk_count=2)
    acme.put("user:alice", "note", "hello")
    report = acme.erase(whole_tenant=True, reason="tenant left")
    assert report.streams == 2
    assert acme.documents.get("/private.md") is None
    assert acme.documents.list().documents == ()
    assert acme.documents.get_by_hash(sha("p")) == []
    assert acme.documents.history("/private.md") == []
    with pytest.raises(NotFound):
        acme.documents.mark_synced("/private.md")
    assert globex.documents.get("/private.md").chunk_count == 2  # type: ignore[union-attr]
    assert store.verify().ok
    again = acme.documents.register("/private.md", title="New", content_hash=sha("n"))
    assert (again.sync_status, again.title, again.version) == ("pending", "New", 3)
    assert [e.kind for e in acme.documents.history("/private.md")] == ["reregistered"]
    assert store.verify().ok


def test_a_subject_erasure_leaves_documents_alone(store: MemoryStore) -> None:
    store.documents.register("/kept", title="K", content_hash=sha("k"))
    store.put("user:alice", "n", "x", subject="alice")
    store.erase("alice")
    assert store.documents.get("/kept") is not None
    assert store.verify().ok


def test_rebuild_reproduces_the_documents_and_verify_passes(
    store: MemoryStore,
) -> None:
    docs = store.documents
    for n in range(5):
        docs.register(
            f"/r/{n}", title=f"R{n}", content_hash=sha(str(n)), metadata={"n": n}
        )
    docs.mark_synced("/r/1", chunk_count=3, embedding_model="m")
    docs.mark_failed("/r/2", error="boom")
    docs.register("/r/1", title="R1", content_hash=sha("changed"))
    docs.remove("/r/3")
    docs.register("/r/3", title="R3 again", content_hash=sha("3"))
    docs.remove("/r/4")
    store.tenant("acme").documents.register("/r/0", title="acme", content_hash=sha("0"))
    store.tenant("acme").erase(whole_tenant=True)
    before = docs.list().documents
    assert store.verify().ok
    store.projections.rebuild("documents")
    assert docs.list().documents == before
    assert [docs.get(f"/r/{n}") for n in range(5)] == [
        *(d for d in sorted(before, key=lambda d: d.file_path)),
        None,
    ]
    assert store.verify().ok


def test_export_and_import_carry_documents(store: MemoryStore, tmp_path: Path) -> None:
    docs = store.tenant("acme").documents
    docs.register("/e.md", title="E", content_hash=sha("e"), metadata={"k": [1, 2]})
    docs.mark_synced("/e.md", chunk_count=7, embedding_model="m")
    docs.register("/gone.md", title="G", content_hash=sha("g"))
    docs.remove("/gone.md")
    buffer = io.BytesIO()
    export_events(store, buffer.write)
    lines = buffer.getvalue().splitlines(keepends=True)
    with mnemolog.open(f"sqlite:///{tmp_path / 'copy.db'}") as copy:
        import_events(copy, lambda: lines)
        copied = copy.tenant("acme").documents
        assert copied.list() == docs.list()
        assert copied.history("/gone.md") == docs.history("/gone.md")
        assert copy.verify().ok
        with pytest.raises(ValidationError):  # the tenant holds documents now
            import_events(copy, lambda: lines, tenant="acme")


def test_an_import_refuses_a_forged_document(store: MemoryStore) -> None:
    store.documents.register("/f", title="F", content_hash=sha("f"))
    buffer = io.BytesIO()
    export_events(store, buffer.write)
    original = buffer.getvalue()
    for forged, why in (
        (
            original.replace(b'"file_path":"/f"', b'"file_path":"/g"'),
            "does not belong to its tenant and file path",
        ),
        (original.replace(sha("f").encode(), b"not-a-hash"), "content_hash: "),
    ):
        assert forged != original
        lines = forged.splitlines(keepends=True)

        def read(lines: list[bytes] = lines) -> list[bytes]:
            return lines

        with mnemolog.open("memory://") as target:
            with pytest.raises(ValidationError, match=why):
                import_events(target, read)
            assert target.documents.list().documents == ()


def test_concurrent_writers_lose_nothing(store: MemoryStore) -> None:
    docs = store.documents
    docs.register("/busy", title="Busy", content_hash=sha("0"))
    errors: list[BaseException] = []

    def fail(n: int) -> None:
        try:
            docs.mark_failed("/busy", error=f"attempt {n}")
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=fail, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    history = docs.history("/busy")
    assert len(history) == 7
    assert sorted(e.document.error for e in history[1:]) == [  # type: ignore[type-var]
        f"attempt {n}" for n in range(6)
    ]
    assert docs.get("/busy").version == 7  # type: ignore[union-attr]


def test_titles_and_metadata_are_sealed_at_rest(tmp_path: Path) -> None:
    with mnemolog.open(
        f"sqlite:///{tmp_path / 'enc.db'}", cipher_keys=(mnemolog.new_key(),)
    ) as store:
        store.documents.register(
            "/notes/n.md",
            title="quokka habits",
            content_hash=sha("q"),
            metadata={"island": "rottnest"},
        )
        store.documents.mark_failed("/notes/n.md", error="marsupial parser failed")
        read = store.documents.get("/notes/n.md")
        assert read is not None
        assert (read.title, read.metadata) == ("quokka habits", {"island": "rottnest"})
        assert store.verify().ok
    for file in tmp_path.iterdir():
        data = file.read_bytes()
        for word in (b"quokka", b"rottnest", b"marsupial"):
            assert word not in data, f"{word!r} is readable in {file.name}"


def test_long_and_non_ascii_paths(store: MemoryStore) -> None:
    docs = store.documents
    longest = "/" + "é" * 4095  # 8 KB of UTF-8: too long for a plain B-tree entry
    near = "/" + "é" * 4094 + "e"
    for path in (longest, near, "/données/naïve 文档.md"):
        docs.register(path, title="T", content_hash=sha(path))
    assert docs.get(longest).content_hash == sha(longest)  # type: ignore[union-attr]
    assert docs.get(near).content_hash == sha(near)  # type: ignore[union-attr]
    assert len(docs.list().documents) == 3
