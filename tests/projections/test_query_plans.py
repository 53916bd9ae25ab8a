"""Every search path is served by an index: no full scan of a read-model table."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mnemolog
from mnemolog.adapters.sqlite_backend import sqlite_sql_dialect
from mnemolog.projections.audit import AuditQuery, audit_sql
from mnemolog.projections.current_state import (
    MetaCondition,
    SearchQuery,
    get_by_id_statement,
    search_ids_sql,
    search_sql,
    text_search_sql,
)
from mnemolog.projections.namespaces import NamespaceQuery, list_namespaces_sql
from mnemolog.vector_index import SYNC_SQL

# "SCAN t" and "SCAN t USING INDEX i" both read every row of a table or index.
FULL_SCAN = re.compile(r"\bSCAN (memories|memory_tags|memory_meta)\b")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    path = Path(tmp_path_factory.mktemp("plans")) / "plans.db"
    with mnemolog.open(f"sqlite:///{path}") as store:
        for tenant in ("t1", "t2"):
            store.put_many(
                [
                    {
                        "namespace": f"user:u{i % 20}:notes",
                        "key": f"k{i}",
                        "value": {"text": f"note {i}"},
                        "tags": [f"tag{i % 7}", "common"],
                        "metadata": {"score": i % 10, "lang": ["en", "fr"][i % 2]},
                        "memory_type": ["semantic", "episodic"][i % 2],
                    }
                    for i in range(400)
                ],
                tenant=tenant,
            )
    connection = sqlite3.connect(path)
    connection.execute("ANALYZE")
    yield connection
    connection.close()


SEARCHES: dict[str, SearchQuery] = {
    "tenant only": SearchQuery(tenant="t1"),
    "namespace prefix": SearchQuery(tenant="t1", namespace_prefix="user:u3"),
    "namespace root": SearchQuery(tenant="t1", namespace_prefix="user"),
    "memory type": SearchQuery(tenant="t1", memory_type="episodic"),
    "tags any": SearchQuery(tenant="t1", tags_any=("tag1", "tag2")),
    "tags all": SearchQuery(tenant="t1", tags_all=("tag1", "common")),
    "where eq number": SearchQuery(
        tenant="t1", where=(MetaCondition("score", "$eq", 3),)
    ),
    "where range": SearchQuery(tenant="t1", where=(MetaCondition("score", "$gt", 7),)),
    "where string": SearchQuery(
        tenant="t1", where=(MetaCondition("lang", "$eq", "fr"),)
    ),
    "where in": SearchQuery(
        tenant="t1", where=(MetaCondition("score", "$in", (1, 2)),)
    ),
    "where exists": SearchQuery(
        tenant="t1", where=(MetaCondition("lang", "$exists", True),)
    ),
    "where not exists": SearchQuery(
        tenant="t1", where=(MetaCondition("lang", "$exists", False),)
    ),
    "where ne": SearchQuery(tenant="t1", where=(MetaCondition("lang", "$ne", "en"),)),
    "updated window": SearchQuery(tenant="t1", updated_after=0, updated_before=2**60),
    "include deleted": SearchQuery(tenant="t1", include_deleted=True),
    "order by importance": SearchQuery(tenant="t1", order_by="-importance"),
    "order by created": SearchQuery(tenant="t1", order_by="created_at"),
    "order by key": SearchQuery(tenant="t1", order_by="key"),
    "everything": SearchQuery(
        tenant="t1",
        namespace_prefix="user:u3",
        memory_type="semantic",
        tags_any=("common",),
        tags_all=("common", "tag2"),
        where=(MetaCondition("score", "$gte", 2),),
        updated_after=0,
        order_by="-importance",
    ),
}


def plan(db: sqlite3.Connection, sql: str, params: Any) -> list[str]:
    return [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


@pytest.mark.parametrize("name", list(SEARCHES))
def test_search_path_uses_indexes(db: sqlite3.Connection, name: str) -> None:
    sql, params = search_sql(SEARCHES[name], sqlite_sql_dialect())
    steps = plan(db, sql, params)
    assert steps, "no plan"
    scans = [step for step in steps if FULL_SCAN.search(step)]
    assert scans == [], f"{name}: full scan in {steps}"


def test_get_by_id_is_a_primary_key_lookup(db: sqlite3.Connection) -> None:
    steps = plan(db, get_by_id_statement(sqlite_sql_dialect()), {"b_id": "x"})
    assert any("PRIMARY KEY" in step or "INDEX" in step for step in steps), steps


def test_the_check_itself_catches_a_full_scan(db: sqlite3.Connection) -> None:
    steps = plan(db, "SELECT * FROM memories WHERE value LIKE '%x%'", {})
    assert any(FULL_SCAN.search(step) for step in steps), steps


NAMESPACE_LISTINGS = {
    "all": NamespaceQuery(tenant="t1"),
    "prefix": NamespaceQuery(tenant="t1", prefix="user:u3"),
    "depth": NamespaceQuery(tenant="t1", max_depth=2),
    "prefix and depth": NamespaceQuery(tenant="t1", prefix="user", max_depth=2),
}


@pytest.mark.parametrize("name", list(NAMESPACE_LISTINGS))
def test_namespace_listing_uses_indexes(db: sqlite3.Connection, name: str) -> None:
    sql, params = list_namespaces_sql(NAMESPACE_LISTINGS[name], sqlite_sql_dialect())
    steps = plan(db, sql, params)
    assert not [s for s in steps if re.search(r"\bSCAN namespaces\b", s)], steps


AUDITS = {
    "timeline": AuditQuery(tenant="t1"),
    "newest first": AuditQuery(tenant="t1", descending=True),
    "actor": AuditQuery(tenant="t1", actor="a"),
    "prefix": AuditQuery(tenant="t1", namespace_prefix="user:u3"),
    "kind": AuditQuery(tenant="t1", kind="deleted"),
    "time window": AuditQuery(tenant="t1", since=0, until=2**60),
    "page": AuditQuery(tenant="t1", after_position=100),
    "key": AuditQuery(tenant="t1", key="k1"),
}


@pytest.mark.parametrize("name", list(AUDITS))
def test_audit_paths_use_indexes(db: sqlite3.Connection, name: str) -> None:
    sql, params = audit_sql(AUDITS[name], sqlite_sql_dialect())
    steps = plan(db, sql, params)
    assert not [s for s in steps if re.search(r"\bSCAN audit_log\b", s)], steps


@pytest.mark.parametrize("name", list(SEARCHES))
def test_similarity_candidates_use_indexes(db: sqlite3.Connection, name: str) -> None:
    sql, params = search_ids_sql(SEARCHES[name], sqlite_sql_dialect())
    steps = plan(db, sql, params)
    assert not [s for s in steps if FULL_SCAN.search(s)], f"{name}: {steps}"


@pytest.mark.parametrize("name", list(SEARCHES))
def test_text_search_is_driven_by_the_full_text_index(
    db: sqlite3.Connection, name: str
) -> None:
    sql, params = text_search_sql(SEARCHES[name], ["note"], False, sqlite_sql_dialect())
    steps = plan(db, sql, params)
    assert any("VIRTUAL TABLE INDEX" in s for s in steps), steps
    assert not [s for s in steps if FULL_SCAN.search(s)], f"{name}: {steps}"
    assert not [s for s in steps if re.search(r"\bSCAN memory_text_docs\b", s)], steps


def test_the_vector_index_follows_changes_by_an_index_range(
    db: sqlite3.Connection,
) -> None:
    steps = plan(db, SYNC_SQL, ("t1", 100))
    assert any("ix_memories_position" in s for s in steps), steps
    assert not [s for s in steps if re.search(r"\bSCAN memory_vectors\b", s)], steps
