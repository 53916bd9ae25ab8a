"""The ProjectMemory facade (seed 000): the original's behaviour on every
backend, and what its users rely on besides (denials write nothing, bytes
come back exact, bad input is refused by name)."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from unittest.mock import Mock

import pytest

import mnemolog
from mnemolog.adapters.compat.project_memory import (
    Artifact,
    FileProjectMemory,
    InMemProjectMemory,
    ProjectAccessDenied,
    ProjectMemory,
    StoreProjectMemory,
)
from tests.conftest import postgres_url

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def must(artifact: Artifact | None) -> Artifact:
    assert artifact is not None
    return artifact


def open_memory(kind: str, tmp_path: Path, acl_check: Any = None) -> StoreProjectMemory:
    if kind == "inmem":
        return InMemProjectMemory(acl_check=acl_check)
    if kind == "file":
        return FileProjectMemory(root_dir=tmp_path / "memory", acl_check=acl_check)
    if kind == "postgres":
        return StoreProjectMemory(postgres_url(), acl_check=acl_check)
    raise AssertionError(kind)


@pytest.fixture
def acl() -> Mock:
    """The original suite's hook: a Mock that allows until told otherwise."""
    return Mock(return_value=True)


@pytest.fixture(params=["inmem", "file", "postgres"])
def memory(
    request: pytest.FixtureRequest, tmp_path: Path, acl: Mock
) -> Iterator[StoreProjectMemory]:
    opened = open_memory(str(request.param), tmp_path, acl)
    yield opened
    run(opened.close())


# ---- basic: put and get with every kind of data ------------------------------


def test_basic_put_returns_the_stored_artifact(memory: StoreProjectMemory) -> None:
    before = datetime.now(UTC).replace(tzinfo=None)
    artifact = run(
        memory.put(
            "test_key", "test data", meta={"type": "string"}, artifact_type="text"
        )
    )
    assert isinstance(artifact, Artifact)
    assert (artifact.key, artifact.data, artifact.version) == (
        "test_key",
        "test data",
        1,
    )
    assert (artifact.tenant_id, artifact.project_id) == ("default", "default")
    assert artifact.meta == {"type": "string"}
    assert artifact.type == "text"
    assert artifact.created_at.tzinfo is None  # naive UTC, as the original's
    assert before <= artifact.created_at <= datetime.now(UTC).replace(tzinfo=None)


def test_basic_get_returns_what_put_stored(memory: StoreProjectMemory) -> None:
    stored = run(memory.put("config", "data", meta={"env": "prod"}))
    assert run(memory.get("config")) == stored
    assert run(memory.get("config", version=1)) == stored


def test_basic_missing_keys_are_none_and_empty(memory: StoreProjectMemory) -> None:
    assert run(memory.get("nonexistent")) is None
    assert run(memory.get("nonexistent", version=1)) is None
    assert run(memory.list_versions("nonexistent")) == []
    assert run(memory.delete("nonexistent")) is False
    assert run(memory.delete("nonexistent", version=1)) is False


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain",
        "multi\nline\ttext",
        "naïve café 東京 🚀",
        "AP8=",  # reads like base64, stays text
        '{"$bytes": "AAE="}',  # reads like mnemolog's own bytes form, stays text
        "x" * 100_000,
    ],
)
def test_basic_text_round_trips(memory: StoreProjectMemory, text: str) -> None:
    run(memory.put("doc", text))
    got = run(memory.get("doc"))
    assert got is not None
    assert type(got.data) is str
    assert got.data == text


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x01\x02\x03\xff",  # the original suite's bytes
        b"",
        bytes(range(256)),
        b'{"$bytes": "AAE="}',
        os.urandom(1 << 20),
    ],
    ids=["seed", "empty", "every-byte", "tag-lookalike", "1MiB-random"],
)
def test_basic_binary_round_trips_byte_exact(
    memory: StoreProjectMemory, data: bytes
) -> None:
    put = run(memory.put("model", data, artifact_type="binary"))
    got = run(memory.get("model"))
    assert got is not None
    assert type(got.data) is bytes
    assert got.data == put.data == data
    assert got.type == "binary"


def test_basic_bytearray_and_memoryview_are_stored_as_bytes(
    memory: StoreProjectMemory,
) -> None:
    run(memory.put("a", bytearray(b"\x00\xfe")))  # type: ignore[arg-type]
    run(memory.put("b", memoryview(b"\x01\xfd")))  # type: ignore[arg-type]
    assert must(run(memory.get("a"))).data == b"\x00\xfe"
    assert must(run(memory.get("b"))).data == b"\x01\xfd"


def test_basic_artifact_json_uses_base64_for_bytes(memory: StoreProjectMemory) -> None:
    data = b"\xfb\xff\xfe\x00"  # standard base64 needs '+' and '/' for these
    artifact = run(memory.put("blob", data, meta={"n": 1}, artifact_type="binary"))
    form = artifact.to_json()
    assert form["data"] == base64.b64encode(data).decode() == "+//+AA=="
    assert form["data_type"] == "bytes"
    assert form["created_at"] == artifact.created_at.isoformat()
    assert Artifact.from_json(form) == artifact
    assert Artifact.model_validate_json(artifact.model_dump_json()) == artifact
    text = run(memory.put("text", "+//+AA=="))
    assert text.to_json()["data_type"] == "str"
    assert Artifact.from_json(text.to_json()).data == "+//+AA=="


def test_basic_artifact_json_refuses_damaged_forms() -> None:
    form = {
        "id": "x",
        "type": "binary",
        "tenant_id": "default",
        "project_id": "default",
        "key": "k",
        "version": 1,
        "created_at": "2025-01-01T00:00:00",
        "meta": {},
        "data": "not base64!",
        "data_type": "bytes",
    }
    with pytest.raises(ValueError, match="base64"):
        Artifact.from_json(form)
    with pytest.raises(ValueError, match="data_type"):
        Artifact.from_json({**form, "data_type": "float"})


def test_basic_ids_are_stable_per_version_and_unique(
    memory: StoreProjectMemory,
) -> None:
    first = run(memory.put("k", "v1"))
    second = run(memory.put("k", "v2"))
    assert first.id != second.id
    assert must(run(memory.get("k", version=1))).id == first.id
    other = run(memory.put("k", "v1", project_id="elsewhere"))
    assert other.id not in (first.id, second.id)


def test_basic_delete_all_versions_erases_the_key(memory: StoreProjectMemory) -> None:
    run(memory.put("delete_all_key", "v1", meta={"old": True}))
    run(memory.put("delete_all_key", "secret v2"))
    assert run(memory.delete("delete_all_key")) is True
    assert run(memory.get("delete_all_key")) is None
    assert run(memory.get("delete_all_key", version=1)) is None
    assert run(memory.list_versions("delete_all_key")) == []
    assert run(memory.delete("delete_all_key")) is False
    # Gone from the log's readable history too, not only hidden by the facade.
    assert memory.store.history("project:default", "delete_all_key") == []
    (erasure,) = memory.store.audit(kind="erased")
    assert erasure.reason == "deleted through ProjectMemory"
    # A new put starts afresh (no old meta) and versions are never reused.
    again = run(memory.put("delete_all_key", "v3", meta={"new": True}))
    assert again.version > 2
    assert again.meta == {"new": True}
    assert run(memory.list_versions("delete_all_key")) == [again.version]


def test_basic_delete_one_version(memory: StoreProjectMemory) -> None:
    for data in ("v1", "v2", "v3"):
        run(memory.put("delete_key", data))
    assert run(memory.delete("delete_key", version=2)) is True
    assert run(memory.get("delete_key", version=2)) is None
    assert must(run(memory.get("delete_key", version=1))).data == "v1"
    assert must(run(memory.get("delete_key", version=3))).data == "v3"
    assert run(memory.list_versions("delete_key")) == [1, 3]
    # The project's namespace holds the artifact only, not the bookkeeping.
    listed = memory.store.search(namespace_prefix="project:default")
    assert [(m.key, m.version) for m in listed] == [("delete_key", 3)]
    assert run(memory.delete("delete_key", version=2)) is False  # already gone
    assert run(memory.delete("delete_key", version=9)) is False  # never was
    # Withdrawing the latest makes the one before it the latest.
    assert run(memory.delete("delete_key", version=3)) is True
    assert must(run(memory.get("delete_key"))).version == 1
    assert run(memory.delete("delete_key", version=1)) is True
    assert run(memory.get("delete_key")) is None
    assert run(memory.list_versions("delete_key")) == []
    assert run(memory.delete("delete_key")) is False  # nothing left to delete
    assert run(memory.put("delete_key", "v4")).version == 4
    # Deleting the key erases it and the list of its withdrawn versions.
    assert run(memory.delete("delete_key")) is True
    for namespace in ("project:default", "app:project_memory:default"):
        assert memory.store.get(namespace, "delete_key", include_deleted=True) is None
    assert len(memory.store.audit(kind="erased")) == 2
    assert run(memory.put("delete_key", "v5")).version == 5
    assert run(memory.list_versions("delete_key")) == [5]


BAD_CALLS = [
    ("key", lambda m: m.put("", "x")),
    ("key", lambda m: m.get("bad\x00key")),
    ("key", lambda m: m.put(42, "x")),
    ("tenant_id", lambda m: m.put("k", "x", tenant_id="has space")),
    ("tenant_id", lambda m: m.list_versions("k", tenant_id="")),
    ("project_id", lambda m: m.put("k", "x", project_id="a:b")),
    ("project_id", lambda m: m.get("k", project_id="has space")),
    ("project_id", lambda m: m.delete("k", project_id=None)),
    ("data", lambda m: m.put("k", 123)),
    ("data", lambda m: m.put("k", {"a": 1})),
    ("data", lambda m: m.put("k", "\ud800")),
    ("meta", lambda m: m.put("k", "x", meta="not a dict")),
    ("meta.a.b", lambda m: m.put("k", "x", meta={"a.b": 1})),
    ("meta.score", lambda m: m.put("k", "x", meta={"score": float("nan")})),
    ("meta.blob", lambda m: m.put("k", "x", meta={"blob": b"\x00"})),
    ("artifact_type", lambda m: m.put("k", "x", artifact_type=None)),
    ("artifact_type", lambda m: m.put("k", "x", artifact_type="t" * 115)),
    ("artifact_type", lambda m: m.put("k", "x", artifact_type="a\nb")),
    ("version", lambda m: m.get("k", version=0)),
    ("version", lambda m: m.get("k", version=True)),
    ("version", lambda m: m.delete("k", version="2")),
]


@pytest.mark.parametrize(
    ("field", "call"), BAD_CALLS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD_CALLS)]
)
def test_basic_bad_input_is_refused_by_name(
    memory: StoreProjectMemory, field: str, call: Any
) -> None:
    with pytest.raises(mnemolog.ValidationError) as caught:
        run(call(memory))
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)
    assert memory.store.search(namespace_prefix="project", limit=10) == []


def test_basic_data_over_the_size_limit_is_refused() -> None:
    memory = InMemProjectMemory()
    limit = mnemolog.Settings().max_value_bytes
    with pytest.raises(mnemolog.ValidationError) as caught:
        run(memory.put("big", b"\x00" * limit))  # 4/3 of the limit as base64
    assert caught.value.field == "data"
    assert run(memory.get("big")) is None
    run(memory.close())


# ---- versioning --------------------------------------------------------------


def test_versioning_latest_specific_and_list(memory: StoreProjectMemory) -> None:
    for n in (1, 2, 3):
        run(memory.put("versioned_key", f"v{n}", meta={"version": str(n)}))
    latest = run(memory.get("versioned_key"))
    assert latest is not None
    assert (latest.data, latest.version) == ("v3", 3)
    v2 = run(memory.get("versioned_key", version=2))
    assert v2 is not None
    assert (v2.data, v2.version, v2.meta) == ("v2", 2, {"version": "2"})
    assert run(memory.get("versioned_key", version=4)) is None
    assert run(memory.list_versions("versioned_key")) == [1, 2, 3]
    same = run(memory.put("versioned_key", "v3", meta={"version": "3"}))
    assert same.version == 4  # every put is a version, as in the original


def test_versioning_numbers_are_the_logs_own(memory: StoreProjectMemory) -> None:
    for n in range(5):
        run(memory.put("k", f"v{n}", tenant_id="acme", project_id="apollo"))
    history = memory.store.history("project:apollo", "k", tenant="acme")
    assert [h.version for h in history] == run(
        memory.list_versions("k", tenant_id="acme", project_id="apollo")
    )
    assert [h.memory.value for h in history] == [f"v{n}" for n in range(5)]
    assert {h.source for h in history} == {"project_memory"}


# ---- metadata ----------------------------------------------------------------


def test_metadata_merges_over_the_previous_version(memory: StoreProjectMemory) -> None:
    run(memory.put("cfg", "a", meta={"env": "prod", "owner": "ops", "n": {"x": 1}}))
    second = run(memory.put("cfg", "b", meta={"owner": "dev", "n": {"y": 2}}))
    third = run(memory.put("cfg", "c"))
    assert second.meta == {"env": "prod", "owner": "dev", "n": {"y": 2}}
    assert third.meta == second.meta  # no meta: the previous is kept whole
    first = run(memory.get("cfg", version=1))
    assert first is not None
    assert first.meta == {"env": "prod", "owner": "ops", "n": {"x": 1}}


def test_metadata_is_never_lost_and_is_searchable(memory: StoreProjectMemory) -> None:
    for n in range(1, 6):
        run(memory.put("run", f"v{n}", meta={f"step{n}": n}))
    for n in range(1, 6):
        artifact = run(memory.get("run", version=n))
        assert artifact is not None
        assert artifact.meta == {f"step{i}": i for i in range(1, n + 1)}
    # A withdrawn latest version's meta is not merged: get() no longer shows it.
    assert run(memory.delete("run", version=5)) is True
    assert run(memory.put("run", "v6", meta={"step6": 6})).meta == {
        **{f"step{i}": i for i in range(1, 5)},
        "step6": 6,
    }
    # The meta is mnemolog metadata: the store's own queries find it.
    found = memory.store.search(namespace_prefix="project:default", where={"step6": 6})
    assert [m.key for m in found] == ["run"]


# ---- ACL ---------------------------------------------------------------------


def test_acl_denied_write_raises_and_writes_nothing(
    memory: StoreProjectMemory, acl: Mock
) -> None:
    acl.return_value = False
    with pytest.raises(PermissionError, match="Access denied") as caught:
        run(memory.put("denied_key", "data", tenant_id="t1", project_id="p1"))
    assert isinstance(caught.value, mnemolog.AccessDenied)
    assert isinstance(caught.value, ProjectAccessDenied)
    assert "t1/p1/denied_key" in str(caught.value)
    acl.assert_called_with("t1", "p1", "denied_key", "write")
    acl.return_value = True
    assert (
        run(memory.list_versions("denied_key", tenant_id="t1", project_id="p1")) == []
    )
    assert memory.store.history("project:p1", "denied_key", tenant="t1") == []
    assert memory.store.audit(tenant="t1") == []


def test_acl_denied_read_list_and_delete(memory: StoreProjectMemory, acl: Mock) -> None:
    run(memory.put("read_denied_key", "data"))
    acl.return_value = False
    for call in (
        memory.get("read_denied_key"),
        memory.get("read_denied_key", version=1),
        memory.list_versions("read_denied_key"),
        memory.delete("read_denied_key"),
        memory.delete("read_denied_key", version=1),
    ):
        with pytest.raises(PermissionError, match="Access denied"):
            run(call)
    acl.return_value = True
    assert must(run(memory.get("read_denied_key"))).data == "data"
    assert run(memory.list_versions("read_denied_key")) == [1]


def test_acl_is_asked_once_per_call_with_the_ops_name(
    memory: StoreProjectMemory,
) -> None:
    asked: list[tuple[str, str, str, str]] = []

    def recording(tenant_id: str, project_id: str, key: str, op: str) -> bool:
        asked.append((tenant_id, project_id, key, op))
        return True

    memory.acl_check = recording  # takes effect at the next call
    address: dict[str, Any] = {"tenant_id": "acme", "project_id": "apollo"}
    run(memory.put("k", "v1", **address))
    run(memory.put("k", "v2", **address))
    run(memory.get("k", **address))
    run(memory.get("k", version=1, **address))
    run(memory.list_versions("k", **address))
    run(memory.delete("k", version=1, **address))
    run(memory.delete("k", **address))
    assert asked == [
        ("acme", "apollo", "k", op)
        for op in ("write", "write", "read", "read", "list", "delete", "delete")
    ]


def test_acl_the_seeds_example_hook(tmp_path: Path) -> None:
    def my_acl(tenant: str, project: str, key: str, op: str) -> bool:
        return tenant == "trusted"

    memory = InMemProjectMemory(acl_check=my_acl)
    assert run(memory.put("k", "v", tenant_id="trusted")).version == 1
    with pytest.raises(PermissionError):
        run(memory.put("k", "v", tenant_id="stranger"))
    with pytest.raises(PermissionError):
        run(memory.get("k", tenant_id="stranger"))
    assert must(run(memory.get("k", tenant_id="trusted"))).data == "v"


def test_acl_denied_delete_keeps_every_version(
    memory: StoreProjectMemory, acl: Mock
) -> None:
    run(memory.put("k", "v1"))
    run(memory.put("k", "v2"))
    acl.side_effect = lambda tenant, project, key, op: op != "delete"
    with pytest.raises(PermissionError):
        run(memory.delete("k"))
    with pytest.raises(PermissionError):
        run(memory.delete("k", version=1))
    assert run(memory.list_versions("k")) == [1, 2]
    assert must(run(memory.get("k", version=1))).data == "v1"


def test_acl_default_allows_and_bad_hooks_are_refused() -> None:
    memory = InMemProjectMemory()
    assert memory.acl_check("any", "thing", "at", "all") is True
    assert run(memory.put("k", "v")).version == 1

    async def coroutine_hook(*args: str) -> bool:
        return False

    with pytest.raises(mnemolog.ValidationError) as caught:
        InMemProjectMemory(acl_check=coroutine_hook)  # type: ignore[arg-type]
    assert caught.value.field == "acl_check"
    with pytest.raises(mnemolog.ValidationError):
        InMemProjectMemory(acl_check="yes")  # type: ignore[arg-type]


def test_acl_also_guards_the_store_underneath(
    memory: StoreProjectMemory, acl: Mock
) -> None:
    run(memory.put("k", "v", project_id="apollo"))
    acl.return_value = False
    with pytest.raises(mnemolog.AccessDenied):
        memory.store.get("project:apollo", "k")
    acl.assert_called_with("default", "apollo", "k", "read")
    with pytest.raises(mnemolog.AccessDenied):
        memory.store.search(namespace_prefix="project:apollo")
    acl.assert_called_with("default", "apollo", "", "read")


# ---- isolation ---------------------------------------------------------------


def test_isolation_of_tenants_projects_and_keys(memory: StoreProjectMemory) -> None:
    places = [("tenant1", "proj1"), ("tenant2", "proj1"), ("tenant1", "proj2")]
    for tenant, project in places:
        for n in range(2 if tenant == "tenant1" and project == "proj1" else 1):
            run(
                memory.put(
                    "shared_key",
                    f"{tenant}/{project}/{n}",
                    meta={"owner": tenant},
                    tenant_id=tenant,
                    project_id=project,
                )
            )
    for tenant, project in places:
        got = run(memory.get("shared_key", tenant_id=tenant, project_id=project))
        assert got is not None
        assert str(got.data).startswith(f"{tenant}/{project}/")
        assert (got.tenant_id, got.project_id, got.meta) == (
            tenant,
            project,
            {"owner": tenant},
        )
    assert run(memory.list_versions("shared_key", "tenant1", "proj1")) == [1, 2]
    assert run(memory.list_versions("shared_key", "tenant2", "proj1")) == [1]
    assert run(memory.get("shared_key")) is None  # the default tenant and project
    assert run(memory.delete("shared_key", tenant_id="tenant2", project_id="proj1"))
    assert run(memory.get("shared_key", tenant_id="tenant1", project_id="proj1"))
    assert run(memory.get("shared_key", tenant_id="tenant1", project_id="proj2"))
    # A project name that prefixes another is a different namespace.
    run(memory.put("k", "short", project_id="ab"))
    assert run(memory.get("k", project_id="abc")) is None


# ---- persistence -------------------------------------------------------------


def test_persistence_file_backend_survives_a_restart(tmp_path: Path, acl: Mock) -> None:
    root = tmp_path / "deep" / "persistent_memory"  # created, parents too
    first = FileProjectMemory(root_dir=root, acl_check=acl)
    run(first.put("persistent_key", "persistent_data", meta={"persistent": True}))
    run(first.put("persistent_key", b"\x00updated\xff", meta={"updated": True}))
    run(first.put("other", "x", tenant_id="t2", project_id="p2"))
    run(first.put("gone", "x"))
    run(first.delete("gone"))
    run(first.close())
    assert root.is_dir()

    second = FileProjectMemory(root_dir=str(root), acl_check=acl)
    latest = run(second.get("persistent_key"))
    assert latest is not None
    assert (latest.data, latest.version) == (b"\x00updated\xff", 2)
    assert latest.meta == {"persistent": True, "updated": True}
    v1 = run(second.get("persistent_key", version=1))
    assert v1 is not None
    assert (v1.data, v1.meta) == ("persistent_data", {"persistent": True})
    assert run(second.list_versions("persistent_key")) == [1, 2]
    assert must(run(second.get("other", tenant_id="t2", project_id="p2"))).data == "x"
    assert run(second.get("gone")) is None
    assert run(second.put("persistent_key", "third")).version == 3
    assert run(second.get("persistent_key", version=1)) == v1
    run(second.close())


# ---- performance (correctness of a long run; never timed) ----------------------


@pytest.mark.parametrize("kind", ["inmem", "file"])
def test_performance_1000_puts_and_gets(kind: str, tmp_path: Path, acl: Mock) -> None:
    memory = open_memory(kind, tmp_path, acl)

    async def exercise() -> None:
        for i in range(1000):
            await memory.put(f"perf_key_{i}", f"data_{i}", meta={"index": i})
        for i in range(1000):
            got = await memory.get(f"perf_key_{i}")
            assert got is not None
            assert (got.data, got.version, got.meta) == (f"data_{i}", 1, {"index": i})

    run(exercise())
    run(memory.close())


# ---- concurrency ---------------------------------------------------------------


def test_concurrency_5_tasks_of_10_puts(memory: StoreProjectMemory) -> None:
    async def writer(task_id: int) -> None:
        for i in range(10):
            await memory.put(f"concurrent_key_{task_id}", f"data_{task_id}_{i}")

    async def exercise() -> None:
        await asyncio.gather(*(writer(t) for t in range(5)))
        for task_id in range(5):
            key = f"concurrent_key_{task_id}"
            assert await memory.list_versions(key) == list(range(1, 11))
            for version in range(1, 11):
                got = await memory.get(key, version=version)
                assert got is not None
                assert got.data == f"data_{task_id}_{version - 1}"

    run(exercise())


def test_concurrency_on_one_key_loses_nothing(memory: StoreProjectMemory) -> None:
    async def writer(task_id: int) -> None:
        for i in range(10):
            await memory.put("hot", f"{task_id}:{i}", meta={f"task{task_id}": i})

    async def exercise() -> None:
        await asyncio.gather(*(writer(t) for t in range(5)))
        versions = await memory.list_versions("hot")
        assert versions == list(range(1, 51))
        seen = []
        for version in versions:
            got = await memory.get("hot", version=version)
            assert got is not None
            seen.append(got.data)
        assert sorted(seen) == sorted(f"{t}:{i}" for t in range(5) for i in range(10))
        latest = await memory.get("hot")
        assert latest is not None
        assert latest.meta == {f"task{t}": 9 for t in range(5)}

    run(exercise())


def test_concurrency_two_instances_on_one_root_dir(tmp_path: Path) -> None:
    one = FileProjectMemory(root_dir=tmp_path)
    two = FileProjectMemory(root_dir=tmp_path)

    async def writer(memory: ProjectMemory, name: str) -> None:
        for i in range(10):
            await memory.put("shared", f"{name}{i}", meta={name: i})

    async def exercise() -> None:
        await asyncio.gather(writer(one, "a"), writer(two, "b"))
        assert await one.list_versions("shared") == list(range(1, 21))
        latest = await two.get("shared")
        assert latest is not None
        assert latest.meta == {"a": 9, "b": 9}

    run(exercise())
    run(one.close())
    run(two.close())


# ---- the shape of the API ------------------------------------------------------


def test_basic_the_interface_is_an_abc_user_backends_extend() -> None:
    with pytest.raises(TypeError):
        ProjectMemory()  # type: ignore[abstract]
    assert issubclass(InMemProjectMemory, ProjectMemory)
    assert issubclass(FileProjectMemory, ProjectMemory)

    class Nothing(ProjectMemory):
        async def put(self, key: str, data: str | bytes, *args: Any) -> Artifact:
            raise NotImplementedError

        async def get(self, key: str, *args: Any) -> Artifact | None:
            return None

        async def list_versions(self, key: str, *args: Any) -> list[int]:
            return []

        async def delete(self, key: str, *args: Any) -> bool:
            return False

    assert Nothing().acl_check("t", "p", "k", "read") is True
    assert run(Nothing().get("k")) is None


def test_basic_memories_written_through_mnemolog_read_as_artifacts(
    memory: StoreProjectMemory,
) -> None:
    memory.store.put("project:apollo", "budget", {"usd": 25_400_000_000})
    got = run(memory.get("budget", project_id="apollo"))
    assert got is not None
    assert (got.data, got.type, got.version) == ('{"usd":25400000000}', "data", 1)
    memory.store.delete("project:apollo", "budget")
    assert run(memory.get("budget", project_id="apollo")) is None
    assert run(memory.list_versions("budget", project_id="apollo")) == []
    # A put revives it with its versions and its meta.
    revived = run(memory.put("budget", "new", meta={"k": 1}, project_id="apollo"))
    assert revived.meta == {"k": 1}
    assert run(memory.get("budget", version=1, project_id="apollo")) is not None
