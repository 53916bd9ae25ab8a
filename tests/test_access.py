"""Principals, policies and quotas: who may touch what, and how much."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import mnemolog
from mnemolog import (
    AccessDenied,
    Grant,
    Limits,
    MemoryStore,
    Policy,
    Principal,
    QuotaExceeded,
    ValidationError,
)
from tests.conftest import backend_url

POLICY = Policy(
    grants=(
        Grant(
            roles=frozenset({"agent"}),
            actions=frozenset({"read", "write"}),
            tenants=frozenset({"acme"}),
            # A session's state merges its user's and app's shared state.
            namespaces=("user:alice", "session:chat:alice", "app:chat:state"),
        ),
        Grant(
            principals=frozenset({"auditor"}),
            actions=frozenset({"audit"}),
            tenants=frozenset({"acme"}),
        ),
        Grant(
            principals=frozenset({"ops"}),
            actions=frozenset({"read", "write", "delete", "erase", "audit", "admin"}),
        ),
    )
)
AGENT = Principal("agent-7", frozenset({"agent"}))
OPS = Principal("ops")


@pytest.fixture
def guarded(backend: str, tmp_path: Path) -> Any:
    store = mnemolog.open(backend_url(backend, tmp_path), policy=POLICY)
    yield store
    store.close()


def denied(call: Any, action: str, namespace: str | None) -> AccessDenied:
    with pytest.raises(AccessDenied) as caught:
        call()
    assert caught.value.action == action
    assert caught.value.namespace == namespace
    return caught.value


def test_without_a_policy_everything_is_allowed(store: MemoryStore) -> None:
    view = store.as_principal(Principal("anyone"))
    view.put("user:x", "k", 1)
    assert view.get("user:x", "k") is not None
    assert view.stats()["tenants"]["default"]["live"] == 1


def test_a_grant_allows_only_its_actions_and_namespaces(guarded: MemoryStore) -> None:
    agent = guarded.tenant("acme").as_principal(AGENT)
    agent.put("user:alice:prefs", "theme", "dark")
    assert agent.get("user:alice:prefs", "theme") is not None
    assert len(agent.search(namespace_prefix="user:alice")) == 1
    error = denied(lambda: agent.put("user:alice2", "k", 1), "write", "user:alice2")
    assert "agent-7" in str(error)
    assert "user:alice2" in str(error)
    denied(lambda: agent.put("user:bob", "k", 1), "write", "user:bob")
    denied(
        lambda: agent.delete("user:alice:prefs", "theme"), "delete", "user:alice:prefs"
    )
    denied(agent.search, "read", None)
    denied(lambda: agent.text_search("dark"), "read", None)
    denied(agent.list_namespaces, "read", None)
    denied(agent.audit, "audit", None)
    denied(agent.stats, "admin", None)
    denied(agent.verify, "admin", None)
    denied(lambda: agent.erase(subject="alice"), "erase", None)
    denied(lambda: agent.projections, "admin", None)
    # The same principal in another tenant has no grant at all.
    other = guarded.tenant("globex").as_principal(AGENT)
    denied(lambda: other.get("user:alice:prefs", "theme"), "read", "user:alice:prefs")


def test_nothing_is_written_when_denied(guarded: MemoryStore) -> None:
    agent = guarded.tenant("acme").as_principal(AGENT)
    with pytest.raises(AccessDenied):
        agent.put_many(
            [
                {"namespace": "user:alice", "key": "a", "value": 1},
                {"namespace": "user:bob", "key": "b", "value": 2},
            ]
        )
    ops = guarded.tenant("acme").as_principal(OPS)
    assert ops.search() == []
    assert ops.audit() == []


def test_an_anonymous_caller_is_denied_once_a_policy_exists(
    guarded: MemoryStore,
) -> None:
    denied(lambda: guarded.put("user:x", "k", 1), "write", "user:x")
    denied(lambda: guarded.get("user:x", "k"), "read", "user:x")


def test_roles_tenants_and_wildcards(guarded: MemoryStore) -> None:
    ops = guarded.as_principal(OPS)
    for tenant in ("acme", "globex"):
        ops.tenant(tenant).put("user:bob", "k", tenant)
    assert ops.stats()["tenants"]["acme"]["live"] == 1
    assert ops.verify().ok
    auditor = guarded.tenant("acme").as_principal(Principal("auditor"))
    assert [e.kind for e in auditor.audit()] == ["created"]
    denied(lambda: auditor.get("user:bob", "k"), "read", "user:bob")
    denied(
        lambda: guarded.tenant("globex").as_principal(Principal("auditor")).audit(),
        "audit",
        None,
    )


def test_sessions_are_checked_by_app_and_user(guarded: MemoryStore) -> None:
    agent = guarded.tenant("acme").as_principal(AGENT)
    sessions = agent.sessions
    sessions.create_session(app_name="chat", user_id="alice", session_id="s1")
    sessions.append_event("s1", {"author": "user", "content": "hi"})
    got = sessions.get_session("s1")
    assert got is not None
    denied(
        lambda: sessions.create_session(app_name="chat", user_id="bob"),
        "write",
        "session:chat:bob",
    )
    denied(lambda: sessions.delete_session("s1"), "delete", "session:chat:alice")
    listed = sessions.list_sessions(app_name="chat", user_id="alice").sessions
    assert [s.id for s in listed] == ["s1"]
    denied(sessions.list_sessions, "read", "session")
    ops = guarded.tenant("acme").as_principal(OPS)
    ops.sessions.create_session(app_name="chat", user_id="bob", session_id="s2")
    denied(lambda: sessions.get_session("s2"), "read", "session:chat:bob")


def test_the_acl_hook_is_asked_on_every_call(tmp_path: Path) -> None:
    asked: list[tuple[str, str | None, str | None, str]] = []

    def acl_check(tenant: str, namespace: str | None, key: str | None, op: str) -> bool:
        asked.append((tenant, namespace, key, op))
        return not (namespace or "").startswith("project:secret")

    with mnemolog.open(
        f"sqlite:///{tmp_path / 'hook.db'}", acl_check=acl_check
    ) as store:
        store.put("user:a", "k", 1)
        assert store.get("user:a", "k") is not None
        with pytest.raises(AccessDenied):
            store.put("project:secret", "k", 1)
        assert store.search() == [store.get("user:a", "k")]
    assert ("default", "user:a", "k", "write") in asked
    assert ("default", "user:a", "k", "read") in asked
    assert ("default", "project:secret", "k", "write") in asked


def test_policies_load_from_json_and_refuse_bad_ones(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"grants": [{"actions": ["read"], "roles": ["*"]}]}))
    policy = Policy.load(path)
    assert policy.allows(None, "read", "t", "user:x")
    assert not policy.allows(None, "write", "t", "user:x")
    path.write_text(json.dumps({"grants": [{"actions": ["fly"]}]}))
    with pytest.raises(ValueError, match="actions"):
        Policy.load(path)
    with pytest.raises(ValueError, match="namespace prefix"):
        Grant(actions=frozenset({"read"}), namespaces=("user:",))
    with pytest.raises(ValidationError, match="principal"):
        Principal("")


def test_the_command_line_honours_the_policy(tmp_path: Path) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(POLICY.model_dump_json())
    db = f"sqlite:///{tmp_path / 'cli.db'}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [
            sys.executable,
            "-m",
            "mnemolog",
            "--db",
            db,
            "--policy",
            str(policy),
        ]
        return subprocess.run(
            [*command, *args], capture_output=True, text=True, check=False
        )

    ok = run(
        "--tenant",
        "acme",
        "--principal",
        "a",
        "--role",
        "agent",
        "put",
        "user:alice",
        "k",
        "1",
    )
    assert ok.returncode == 0, ok.stderr
    no = run(
        "--tenant",
        "acme",
        "--principal",
        "a",
        "--role",
        "agent",
        "put",
        "user:bob",
        "k",
        "1",
    )
    assert no.returncode == 3
    assert "may not write namespace 'user:bob'" in no.stderr
    assert run("--principal", "a", "stats").returncode == 3
    assert run("--principal", "ops", "stats").returncode == 0
    assert run("--principal", "a", "export").returncode == 3


# ---- quotas -------------------------------------------------------------------


def test_quotas_refuse_the_write_that_goes_over(backend: str, tmp_path: Path) -> None:
    quotas = mnemolog.Quotas(
        max_memories=2,
        max_value_bytes=1_000,
        per_tenant={"big": Limits(max_memories=10)},
    )
    with mnemolog.open(backend_url(backend, tmp_path), quotas=quotas) as store:
        store.put("user:a", "1", "x")
        store.put("user:a", "2", "y")
        with pytest.raises(QuotaExceeded, match="memories would be 3"):
            store.put("user:a", "3", "z")
        with pytest.raises(QuotaExceeded):
            store.put_many([{"namespace": "user:a", "key": "4", "value": 1}])
        assert {m.key for m in store.search()} == {"1", "2"}
        store.put("user:a", "2", "y" * 10)  # a replacement adds no memory
        with pytest.raises(QuotaExceeded, match="value_bytes"):
            store.put("user:a", "2", "y" * 2_000)
        assert store.get("user:a", "2").value == "y" * 10  # type: ignore[union-attr]
        store.delete("user:a", "1")
        store.put("user:a", "3", "z")  # a delete frees its place
        for i in range(10):
            store.tenant("big").put("user:a", str(i), i)
        usage = store.stats()["tenants"]["default"]
        assert (usage["live"], usage["quotas"]["max_memories"]) == (2, 2)
        assert usage["value_bytes"] == len(b'"z"') + len(b'"' + b"y" * 10 + b'"')
        assert store.verify().ok


def test_quotas_need_inline_projections() -> None:
    with pytest.raises(ValidationError, match="inline_projections"):
        mnemolog.open(
            "memory://",
            quotas=mnemolog.Quotas(max_memories=1),
            inline_projections=False,
        )


def test_a_point_in_time_view_answers_within_the_grant(guarded: MemoryStore) -> None:
    agent = guarded.tenant("acme").as_principal(AGENT)
    agent.put("user:alice:prefs", "theme", "dark")
    later = datetime(2100, 1, 1, tzinfo=UTC)
    with agent.as_of(later, namespace_prefix="user:alice") as view:
        assert view.get("user:alice:prefs", "theme") is not None
    with pytest.raises(AccessDenied):
        agent.as_of(later)


# ---- found in review -------------------------------------------------------------


def test_a_writer_without_read_gets_what_it_wrote_and_nothing_more(
    tmp_path: Path,
) -> None:
    policy = Policy(
        grants=(
            Grant(
                principals=frozenset({"w"}),
                actions=frozenset({"write"}),
                namespaces=("session:app:alice", "user:alice:state", "app:app:state"),
            ),
        )
    )
    with mnemolog.open(f"sqlite:///{tmp_path / 'w.db'}", policy=policy) as store:
        sessions = store.as_principal(Principal("w")).sessions
        created = sessions.create_session(
            app_name="app", user_id="alice", session_id="s", state={"user:c": 1}
        )
        assert created.state == {"user:c": 1}
        sessions.append_event("s", {"author": "user", "content": "hi"})
        with pytest.raises(AccessDenied):
            sessions.get_session("s")


def test_bad_policies_principals_and_quotas_are_refused_by_name() -> None:
    with pytest.raises(ValidationError, match=r"principal\.roles"):
        Principal("x", "admin")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"principal\.roles"):
        Principal("x", None)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="policy"):
        mnemolog.open("memory://", policy={"grants": []})
    with pytest.raises(ValidationError, match="acl_check"):
        mnemolog.open("memory://", acl_check=5)
    with pytest.raises(ValueError, match="max_memories"):
        mnemolog.Quotas(max_memories=True)


def test_an_import_is_not_cut_short_by_quotas(tmp_path: Path) -> None:
    import io

    from mnemolog.transfer import export_events, import_events

    with mnemolog.open("memory://") as source:
        source.put_many(
            [{"namespace": "user:a", "key": str(i), "value": i} for i in range(1200)]
        )
        out = io.BytesIO()
        export_events(source, out.write)
    lines = out.getvalue().splitlines()
    quotas = mnemolog.Quotas(max_memories=10)
    with mnemolog.open(f"sqlite:///{tmp_path / 'q.db'}", quotas=quotas) as target:
        assert import_events(target, lambda: lines) == 1200
        assert len(target.search(limit=10_000)) == 1200
        with pytest.raises(QuotaExceeded):
            target.put("user:a", "one-more", 1)


def test_the_command_line_opens_an_encrypted_store(tmp_path: Path) -> None:
    import os

    key = mnemolog.new_key()
    db = f"sqlite:///{tmp_path / 'enc.db'}"
    with mnemolog.open(db, cipher_keys=(key,)) as store:
        store.put("user:a", "k", "sealed")
    base = [sys.executable, "-m", "mnemolog", "--db", db]
    env = {**os.environ, "MNEMOLOG_CIPHER_KEYS": key}
    ok = subprocess.run(
        [*base, "get", "user:a", "k"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["value"] == "sealed"
    keyless = {k: v for k, v in env.items() if k != "MNEMOLOG_CIPHER_KEYS"}
    no = subprocess.run(
        [*base, "history", "user:a", "k"],
        capture_output=True,
        text=True,
        env=keyless,
        check=False,
    )
    assert no.returncode == 1
    assert "encrypted at rest" in no.stderr
    assert "Traceback" not in no.stderr
