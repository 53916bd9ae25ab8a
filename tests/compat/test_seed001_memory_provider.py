"""Seed 001: the MemoryProvider protocol on a mnemolog store.

The seed's three layers of compliance tests (the protocol, behaviours, a full
CRUD workflow), then its security tests (zero cross-user and cross-tenant
leakage), the audit and quota hooks, and semantic retrieval with a small
deterministic embedder. Every test runs on every backend.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import tempfile
from collections.abc import Coroutine, Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import mnemolog
from mnemolog import (
    MemoryStore,
    QuotaExceeded,
    Quotas,
    TenantMismatch,
    ValidationError,
)
from mnemolog.adapters.compat.memory_provider import (
    Memory,
    MemoryProvider,
    MemoryType,
    MnemologMemoryProvider,
    user_namespace,
)
from tests.conftest import backend_url

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def note(user_id: str, content: str, **fields: Any) -> Memory:
    """A memory of the seed's schema, a fact from a conversation by default."""
    fields.setdefault("memory_type", MemoryType.FACT)
    fields.setdefault("source", "conversation")
    return Memory(user_id=user_id, content=content, **fields)


@pytest.fixture
def mstore(store_url: str) -> Iterator[MemoryStore]:
    with mnemolog.open(store_url) as opened:
        yield opened


@pytest.fixture
def provider(mstore: MemoryStore) -> MnemologMemoryProvider:
    return MnemologMemoryProvider(mstore)


# ---- Layer 1: the protocol -------------------------------------------------------

METHODS = ("store", "retrieve", "get_by_id", "delete", "search")


def test_provider_is_a_memory_provider(provider: MnemologMemoryProvider) -> None:
    assert isinstance(provider, MemoryProvider)
    for name in METHODS:
        assert inspect.iscoroutinefunction(getattr(provider, name)), name


@pytest.mark.parametrize("name", METHODS)
def test_signatures_are_the_protocols(
    provider: MnemologMemoryProvider, name: str
) -> None:
    def shape(function: Any) -> list[tuple[str, Any, Any]]:
        parameters = inspect.signature(function).parameters.values()
        return [(p.name, p.kind, p.default) for p in parameters if p.name != "self"]

    assert shape(getattr(provider, name)) == shape(getattr(MemoryProvider, name))


def test_an_object_without_every_method_is_not_a_memory_provider() -> None:
    class StoreOnly:
        async def store(self, memory: Memory, context: dict[str, Any]) -> str:
            return "id"

    assert not isinstance(StoreOnly(), MemoryProvider)


# ---- Layer 2: behaviours ------------------------------------------------------------


def test_store_returns_a_string_id(provider: MnemologMemoryProvider) -> None:
    memory_id = run(provider.store(note("user-1", "Prefers tabs over spaces"), {}))
    assert isinstance(memory_id, str)
    assert len(memory_id) > 0
    other = run(provider.store(note("user-1", "Prefers tabs over spaces"), {}))
    assert other != memory_id  # every store is a memory of its own


def test_get_by_id_returns_every_field_as_stored(
    provider: MnemologMemoryProvider,
) -> None:
    class Source(BaseModel):
        document: str
        line: int

    memory = Memory(
        user_id="user-1",
        content="We chose PostgreSQL for the event log",
        memory_type=MemoryType.DECISION,
        confidence=0.75,
        source="adr",
        raw_source="ADR-002: PostgreSQL",
        extraction_version=3,
        created_at=datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
        last_accessed_at=datetime(2024, 5, 2, 8, 0, 0, 1, tzinfo=UTC),
        expires_at=datetime(2031, 1, 1, tzinfo=timezone(timedelta(hours=2))),
        metadata={"scope": "project", "project_id": "p-1", "tags": ["db"]},
        provenance=Source(document="ADR-002", line=14),
    )
    found = run(provider.get_by_id(run(provider.store(memory, {}))))
    assert found is not None
    assert found.model_dump(exclude={"provenance"}) == memory.model_dump(
        exclude={"provenance"}
    )
    assert found.memory_type is MemoryType.DECISION
    assert found.expires_at == memory.expires_at
    assert found.provenance == {"document": "ADR-002", "line": 14}


def test_stored_memory_is_a_copy(provider: MnemologMemoryProvider) -> None:
    memory = note("user-1", "likes tea", metadata={"n": 1})
    memory_id = run(provider.store(memory, {}))
    memory.metadata["n"] = 2
    memory.content = "likes coffee"
    found = run(provider.get_by_id(memory_id))
    assert found is not None
    assert (found.content, found.metadata) == ("likes tea", {"n": 1})


@pytest.mark.parametrize(
    "memory_id",
    [
        "",
        "nope",
        "default/user-1",
        "default/user-1/not-hex",
        "default/user-1/" + "0" * 32,  # well formed, never stored
        "default/user:1/" + "0" * 32,
        "no tenant/user-1/" + "0" * 32,
        "default/user-1/" + "0" * 32 + "/x",
    ],
)
def test_unknown_and_malformed_ids_are_not_found(
    provider: MnemologMemoryProvider, memory_id: str
) -> None:
    run(provider.store(note("user-1", "something"), {}))
    assert run(provider.get_by_id(memory_id)) is None
    assert run(provider.delete(memory_id)) is False


def test_delete_is_soft_and_true_only_once(
    provider: MnemologMemoryProvider,
) -> None:
    memory_id = run(provider.store(note("user-1", "temporary fact"), {}))
    keep = run(provider.store(note("user-1", "lasting fact"), {}))
    assert run(provider.delete(memory_id)) is True
    assert run(provider.delete(memory_id)) is False
    assert run(provider.get_by_id(memory_id)) is None
    assert [m.content for m in run(provider.retrieve("fact", "user-1"))] == [
        "lasting fact"
    ]
    assert [m.content for m in run(provider.search("user-1", {}))] == ["lasting fact"]
    assert run(provider.get_by_id(keep)) is not None
    # The history stays in the log.
    _tenant, _user, key = memory_id.split("/")
    history = provider.memory_store.history(user_namespace("user-1"), key)
    assert [(h.kind, h.memory.value) for h in history] == [
        ("created", "temporary fact"),
        ("deleted", "temporary fact"),
    ]


def test_an_expired_memory_is_not_found_and_is_swept(
    provider: MnemologMemoryProvider,
) -> None:
    past = datetime(2020, 1, 1)  # naive: taken as UTC
    gone = run(provider.store(note("user-1", "stale fact", expires_at=past), {}))
    kept = run(provider.store(note("user-1", "fresh fact"), {}))
    assert run(provider.get_by_id(gone)) is None
    assert run(provider.get_by_id(kept)) is not None
    assert [m.content for m in run(provider.retrieve("fact", "user-1"))] == [
        "fresh fact"
    ]
    assert [m.content for m in run(provider.search("user-1", {}))] == ["fresh fact"]
    assert provider.memory_store.sweep() == 1
    _tenant, _user, key = gone.split("/")
    history = provider.memory_store.history(user_namespace("user-1"), key)
    assert [h.kind for h in history] == ["created", "expired"]


def test_racing_deletes_delete_once(provider: MnemologMemoryProvider) -> None:
    memory_id = run(provider.store(note("user-1", "contended"), {}))

    async def race() -> list[bool]:
        return list(
            await asyncio.gather(*(provider.delete(memory_id) for _ in range(6)))
        )

    assert sorted(run(race())) == [False] * 5 + [True]


def test_retrieve_without_embedder_matches_words(
    provider: MnemologMemoryProvider,
) -> None:
    assert provider.semantic is False
    for content in (
        "Prefers tabs over spaces",
        "Uses PostgreSQL for storage",
        "Runs the tests before every commit",
    ):
        run(provider.store(note("user-1", content), {}))
    found = run(provider.retrieve("which tab style", "user-1"))
    assert [m.content for m in found] == ["Prefers tabs over spaces"]
    assert run(provider.retrieve("indentation", "user-1")) == []
    assert len(run(provider.retrieve("over for before", "user-1", limit=2))) == 2


def test_retrieve_and_search_respect_limit(provider: MnemologMemoryProvider) -> None:
    for n in range(12):
        run(provider.store(note("user-1", f"fact number {n}"), {}))
    assert len(run(provider.retrieve("fact", "user-1"))) == 5  # the default
    assert len(run(provider.retrieve("fact", "user-1", limit=7))) == 7
    assert len(run(provider.search("user-1", {}))) == 10  # the default
    assert len(run(provider.search("user-1", {}, limit=100))) == 12


def test_search_returns_oldest_first(provider: MnemologMemoryProvider) -> None:
    for n in range(4):
        run(provider.store(note("user-1", f"step {n}"), {}))
    found = run(provider.search("user-1", {}, limit=3))
    assert [m.content for m in found] == ["step 0", "step 1", "step 2"]


def test_search_filters(provider: MnemologMemoryProvider) -> None:
    def put(content: str, **fields: Any) -> None:
        run(provider.store(note("user-1", content, **fields), {}))

    put("tabs", memory_type=MemoryType.PREFERENCE, confidence=0.9)
    put("dark mode", memory_type=MemoryType.PREFERENCE, confidence=0.4, source="ui")
    put("postgres", confidence=0.8, metadata={"project_id": "p-1", "priority": 3})
    put("sqlite", extraction_version=2, metadata={"project_id": "p-2", "priority": 1})
    put("retracted", metadata={"is_valid": False, "project_id": "p-1"})
    put("decided", memory_type=MemoryType.DECISION, metadata={"nested": {"k": "v"}})

    def contents(filters: dict[str, Any]) -> set[str]:
        return {m.content for m in run(provider.search("user-1", filters, limit=100))}

    assert contents({}) == {"tabs", "dark mode", "postgres", "sqlite", "decided"}
    assert contents({"memory_type": MemoryType.PREFERENCE}) == {"tabs", "dark mode"}
    assert contents({"memory_type": "decision"}) == {"decided"}
    assert contents({"source": "ui"}) == {"dark mode"}
    assert contents({"min_confidence": 0.8}) == {
        "tabs",
        "postgres",
        "sqlite",
        "decided",
    }
    assert contents({"extraction_version": 2}) == {"sqlite"}
    assert contents({"metadata": {"project_id": "p-1"}}) == {"postgres"}
    assert contents({"metadata": {"priority": {"$gte": 2}}}) == {"postgres"}
    assert contents({"metadata": {"nested.k": "v"}}) == {"decided"}
    assert contents({"metadata": {"project_id": "p-1"}, "include_invalid": True}) == {
        "postgres",
        "retracted",
    }
    assert contents({"metadata": {"is_valid": False}}) == {"retracted"}
    assert contents({"memory_type": "preference", "min_confidence": 0.5}) == {"tabs"}
    assert contents({"user_id": "user-1", "source": "ui"}) == {"dark mode"}


def test_retrieve_skips_invalidated_memories(
    provider: MnemologMemoryProvider,
) -> None:
    run(
        provider.store(
            note("user-1", "old deploy target", metadata={"is_valid": False}), {}
        )
    )
    run(provider.store(note("user-1", "new deploy target"), {}))
    assert [m.content for m in run(provider.retrieve("deploy", "user-1"))] == [
        "new deploy target"
    ]


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"colour": "red"}, "filters.colour"),
        ({"memory_type": "opinion"}, "filters.memory_type"),
        ({"source": 3}, "filters.source"),
        ({"min_confidence": 1.5}, "filters.min_confidence"),
        ({"extraction_version": "2"}, "filters.extraction_version"),
        ({"include_invalid": "yes"}, "filters.include_invalid"),
        ({"metadata": ["a"]}, "filters.metadata"),
        ({"metadata": {"k": {"$near": 1}}}, "filters.metadata.k"),
        ({"user_id": "user-2"}, "filters.user_id"),
    ],
)
def test_bad_filters_name_the_filter(
    provider: MnemologMemoryProvider, filters: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        run(provider.search("user-1", filters))
    assert caught.value.field == field


def test_bad_arguments_name_the_field(provider: MnemologMemoryProvider) -> None:
    def field_of(coroutine: Coroutine[Any, Any, Any]) -> str:
        with pytest.raises(ValidationError) as caught:
            run(coroutine)
        return caught.value.field

    good = note("user-1", "fine")
    assert field_of(provider.store({"content": "x"}, {})) == "memory"  # type: ignore[arg-type]
    assert field_of(provider.store(good, [])) == "context"  # type: ignore[arg-type]
    assert field_of(provider.store(good, {"tenant_id": "a b"})) == "context.tenant_id"
    assert field_of(provider.store(good, {"actor": "x" * 300})) == "context.actor"
    assert (
        field_of(provider.store(good, {"tenant_id": "a", "x-tenant-id": "b"}))
        == "context"
    )
    dotted = note("user-1", "x", metadata={"a.b": 1})
    assert field_of(provider.store(dotted, {})) == "memory.metadata.a.b"
    not_json = note("user-1", "x", metadata={"when": datetime.now(UTC)})
    assert field_of(provider.store(not_json, {})).startswith("memory.metadata.when")
    assert field_of(provider.store(note("user-1", "x", provenance={1, 2}), {})) == (
        "memory.provenance"
    )
    assert field_of(provider.retrieve(42, "user-1")) == "query"  # type: ignore[arg-type]
    assert field_of(provider.retrieve("x", 42)) == "user_id"  # type: ignore[arg-type]
    assert field_of(provider.retrieve("x", "user-1", limit=0)) == "limit"
    assert field_of(provider.search("user-1", {}, limit=10_001)) == "limit"
    assert field_of(provider.search("user-1", None)) == "filters"  # type: ignore[arg-type]
    assert field_of(provider.get_by_id(7)) == "memory_id"  # type: ignore[arg-type]
    assert field_of(provider.delete(None)) == "memory_id"  # type: ignore[arg-type]
    # Nothing of it was written.
    assert provider.memory_store.audit() == []


def test_the_schema_refuses_a_confidence_out_of_range() -> None:
    from pydantic import ValidationError as SchemaError

    with pytest.raises(SchemaError, match="confidence"):
        note("user-1", "x", confidence=1.5)


# ---- Layer 3: the full CRUD workflow ----------------------------------------------


def test_complete_crud_workflow(provider: MnemologMemoryProvider) -> None:
    memory = note(
        "user-123",
        "Prefers tabs over spaces",
        memory_type=MemoryType.PREFERENCE,
        confidence=0.95,
        raw_source="I always use tabs, never spaces",
    )
    # Create
    memory_id = run(provider.store(memory, {}))
    # Read
    retrieved = run(provider.get_by_id(memory_id))
    assert retrieved is not None
    assert retrieved.content == memory.content
    assert run(provider.retrieve("tabs", "user-123")) == [retrieved]
    assert run(provider.search("user-123", {"memory_type": "preference"})) == [
        retrieved
    ]
    # Delete
    assert run(provider.delete(memory_id)) is True
    assert run(provider.get_by_id(memory_id)) is None
    assert run(provider.retrieve("tabs", "user-123")) == []
    assert run(provider.search("user-123", {})) == []
    assert run(provider.delete(memory_id)) is False


# ---- security: isolation of users ---------------------------------------------------


def test_users_cannot_access_each_others_memories(
    provider: MnemologMemoryProvider,
) -> None:
    run(provider.store(note("user-1", "user one's secret plan"), {}))
    for memory in run(provider.search("user-2", {}, limit=100)):
        assert memory.user_id != "user-1"
    assert run(provider.search("user-2", {}, limit=100)) == []
    assert run(provider.retrieve("secret plan", "user-2", limit=100)) == []


def test_many_users_many_memories_zero_leaks(
    provider: MnemologMemoryProvider,
) -> None:
    users = [f"user-{n}" for n in range(6)]
    ids: dict[str, list[str]] = {user: [] for user in users}

    async def fill() -> None:
        for n in range(8):
            for user in users:
                memory = note(user, f"shared project note {n} of {user}")
                ids[user].append(await provider.store(memory, {}))

    run(fill())
    for user in users:
        by_search = run(provider.search(user, {}, limit=100))
        by_retrieve = run(provider.retrieve("shared project note", user, limit=100))
        assert {m.user_id for m in by_search} == {user}
        assert {m.user_id for m in by_retrieve} == {user}
        assert len(by_search) == len(by_retrieve) == 8


def test_rewriting_the_user_in_an_id_reaches_nothing(
    provider: MnemologMemoryProvider,
) -> None:
    memory_id = run(provider.store(note("alice", "alice's note"), {}))
    tenant, _user, key = memory_id.split("/")
    forged = f"{tenant}/bob/{key}"
    assert run(provider.get_by_id(forged)) is None
    assert run(provider.delete(forged)) is False
    assert run(provider.get_by_id(memory_id)) is not None


def test_user_ids_that_are_not_namespace_segments_stay_apart(
    provider: MnemologMemoryProvider,
) -> None:
    # Each of these would, taken literally, name another user's namespace or
    # break the namespace's syntax.
    users = ["alice", "alice:memories", "alice:x", "=alice", "", "a b", "ünï"]
    for user in users:
        run(provider.store(note(user, f"note of [{user}]"), {}))
    for user in users:
        found = run(provider.search(user, {}, limit=100))
        assert [m.content for m in found] == [f"note of [{user}]"]
        assert [m.user_id for m in run(provider.retrieve("note", user))] == [user]


ISOLATION_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "max_examples": 25,
    "suppress_health_check": [HealthCheck.function_scoped_fixture],
}


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
@settings(**ISOLATION_SETTINGS)
@given(
    users=st.lists(
        st.text(st.characters(blacklist_categories=["Cs"]), max_size=12),
        min_size=2,
        max_size=4,
        unique=True,
    )
)
@example(users=["bob", "bob:memories"])
@example(users=["x", "=" + "0" * 64])
def test_no_user_ever_sees_another_users_memory(backend: str, users: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        provider = MnemologMemoryProvider(backend_url(backend, Path(tmp)))
        try:
            ids = {
                user: run(provider.store(note(user, "common words here"), {}))
                for user in users
            }
            for user in users:
                found = run(provider.search(user, {}, limit=100))
                assert [m.user_id for m in found] == [user]
                retrieved = run(provider.retrieve("common words", user, limit=100))
                assert [m.user_id for m in retrieved] == [user]
                by_id = run(provider.get_by_id(ids[user]))
                assert by_id is not None
                assert by_id.user_id == user
        finally:
            run(provider.close())


# ---- security: isolation of tenants ------------------------------------------------


def test_a_context_tenant_is_a_mnemolog_tenant(mstore: MemoryStore) -> None:
    router = MnemologMemoryProvider(mstore)
    acme = MnemologMemoryProvider(mstore, tenant="acme")
    globex = MnemologMemoryProvider(mstore, tenant="globex")
    memory_id = run(router.store(note("user-1", "acme roadmap"), {"tenant_id": "acme"}))
    header_id = run(
        router.store(note("user-1", "acme budget"), {"x-tenant-id": "acme"})
    )
    assert memory_id.startswith("acme/")
    assert header_id.startswith("acme/")
    assert {m.tenant for m in mstore.search(tenant="acme")} == {"acme"}

    assert len(run(acme.search("user-1", {}))) == 2
    assert [m.content for m in run(acme.retrieve("roadmap", "user-1"))] == [
        "acme roadmap"
    ]
    assert run(acme.get_by_id(memory_id)) is not None
    # Another tenant, or the default one, sees none of it.
    for other in (globex, router):
        assert run(other.search("user-1", {}, limit=100)) == []
        assert run(other.retrieve("acme roadmap budget", "user-1", limit=100)) == []
    assert run(globex.get_by_id(memory_id)) is None
    assert run(globex.delete(memory_id)) is False
    assert run(acme.get_by_id(memory_id)) is not None
    # The unbound provider follows the tenant written in the id.
    assert run(router.get_by_id(memory_id)) is not None


def test_a_bound_provider_refuses_another_tenants_context(
    mstore: MemoryStore,
) -> None:
    acme = MnemologMemoryProvider(mstore, tenant="acme")
    with pytest.raises(TenantMismatch, match="globex"):
        run(acme.store(note("user-1", "x"), {"tenant_id": "globex"}))
    memory_id = run(acme.store(note("user-1", "x"), {"tenant_id": "acme"}))
    assert memory_id.startswith("acme/")
    assert run(acme.store(note("user-1", "y"), {})).startswith("acme/")
    assert mstore.search(tenant="globex") == []


def test_a_provider_on_a_tenant_view_keeps_to_it(mstore: MemoryStore) -> None:
    view = mstore.tenant("acme")
    provider = MnemologMemoryProvider(view)
    assert provider.tenant_name == "acme"
    assert run(provider.store(note("u", "x"), {})).startswith("acme/")
    with pytest.raises(TenantMismatch):
        run(provider.store(note("u", "x"), {"tenant_id": "globex"}))
    with pytest.raises(TenantMismatch):
        MnemologMemoryProvider(view, tenant="globex")
    other = run(MnemologMemoryProvider(mstore).store(note("u", "z"), {}))
    assert run(provider.get_by_id(other)) is None


# ---- audit and quota hooks ---------------------------------------------------------


def test_store_and_delete_are_in_the_audit_timeline(mstore: MemoryStore) -> None:
    provider = MnemologMemoryProvider(mstore, actor="janitor")
    memory_id = run(
        provider.store(
            note("user-1", "x", source="slack"), {"actor": "agent-7", "task_id": "t-1"}
        )
    )
    implicit = run(provider.store(note("user-1", "y"), {}))
    run(provider.delete(memory_id))
    entries = mstore.audit(namespace_prefix=user_namespace("user-1"))
    assert [(e.kind, e.key, e.actor, e.task_id, e.source) for e in entries] == [
        ("created", memory_id.split("/")[2], "agent-7", "t-1", "slack"),
        ("created", implicit.split("/")[2], "user-1", None, "conversation"),
        ("deleted", memory_id.split("/")[2], "janitor", None, None),
    ]
    assert entries[2].reason is not None


def test_a_quota_refuses_a_store(store_url: str) -> None:
    with mnemolog.open(store_url, quotas=Quotas(max_memories=2)) as mstore:
        provider = MnemologMemoryProvider(mstore)
        first = run(provider.store(note("user-1", "one"), {}))
        run(provider.store(note("user-2", "two"), {}))
        with pytest.raises(QuotaExceeded, match="memories would be 3") as caught:
            run(provider.store(note("user-1", "three"), {}))
        assert (caught.value.quota, caught.value.limit) == ("memories", 2)
        assert [m.content for m in run(provider.search("user-1", {}))] == ["one"]
        # A delete frees room.
        assert run(provider.delete(first)) is True
        run(provider.store(note("user-1", "three"), {}))


def test_erasing_a_user_erases_their_memories(mstore: MemoryStore) -> None:
    provider = MnemologMemoryProvider(mstore)
    gone = run(provider.store(note("user-1", "forget me"), {}))
    kept = run(provider.store(note("user-2", "keep me"), {}))
    report = mstore.erase("user-1")
    assert report.streams == 1
    assert run(provider.get_by_id(gone)) is None
    assert run(provider.search("user-1", {})) == []
    assert run(provider.retrieve("forget", "user-1")) == []
    assert run(provider.get_by_id(kept)) is not None


# ---- semantic retrieval ------------------------------------------------------------


CONCEPTS = (
    {"tab", "tabs", "spaces", "indentation", "indent", "whitespace"},
    {"postgresql", "postgres", "database", "sql", "storage"},
    {"pytest", "tests", "testing", "commit"},
)


class ConceptEmbedder:
    """A deterministic embedder for tests: one dimension per concept (words
    that mean alike), and one for every other word."""

    name = "test-concepts"
    dims = len(CONCEPTS) + 1

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        rows = np.zeros((len(texts), self.dims), dtype=np.float32)
        for row, text in zip(rows, texts, strict=True):
            for word in re.findall(r"\w+", text.lower()):
                hits = [i for i, words in enumerate(CONCEPTS) if word in words]
                for i in hits or [len(CONCEPTS)]:
                    row[i] += 1.0 if hits else 0.1
        return rows


def test_retrieve_is_semantic_with_an_embedder(store_url: str) -> None:
    with mnemolog.open(store_url, embedder=ConceptEmbedder()) as mstore:
        provider = MnemologMemoryProvider(mstore)
        assert provider.semantic is True
        for content in (
            "Prefers tabs over spaces",
            "Uses PostgreSQL for storage",
            "Runs pytest before every commit",
        ):
            run(provider.store(note("user-1", content), {}))
        run(provider.store(note("user-2", "Indentation with tabs, always"), {}))
        # No word of the query is in the memory: only its meaning matches.
        found = run(provider.retrieve("indentation style", "user-1", limit=1))
        assert [m.content for m in found] == ["Prefers tabs over spaces"]
        found = run(provider.retrieve("which database", "user-1", limit=1))
        assert [m.content for m in found] == ["Uses PostgreSQL for storage"]
        assert {m.user_id for m in run(provider.retrieve("tabs", "user-1", 10))} == {
            "user-1"
        }


# ---- construction ------------------------------------------------------------------


def test_a_provider_opens_and_closes_a_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'memories.db'}"

    async def write() -> str:
        async with MnemologMemoryProvider(url) as provider:
            return await provider.store(note("user-1", "kept on disk"), {})

    memory_id = run(write())
    with mnemolog.open(url) as reopened:
        found = run(MnemologMemoryProvider(reopened).get_by_id(memory_id))
    assert found is not None
    assert found.content == "kept on disk"


def test_a_provider_takes_the_async_store(store_url: str) -> None:
    async def main() -> None:
        async with mnemolog.open_async(store_url) as astore:
            provider = MnemologMemoryProvider(astore)
            memory_id = await provider.store(note("user-1", "async"), {})
            assert (await provider.get_by_id(memory_id)) is not None

    run(main())


def test_bad_construction_names_the_argument(mstore: MemoryStore) -> None:
    with pytest.raises(ValidationError) as caught:
        MnemologMemoryProvider(mstore, embedder=ConceptEmbedder())
    assert caught.value.field == "settings"
    with pytest.raises(ValidationError) as caught:
        MnemologMemoryProvider(42)  # type: ignore[arg-type]
    assert caught.value.field == "store_or_url"
    with pytest.raises(ValidationError) as caught:
        MnemologMemoryProvider(mstore, tenant="no spaces")
    assert caught.value.field == "tenant"
