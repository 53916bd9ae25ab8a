"""What is particular to the PostgreSQL backend: its URL, its limits, and how
it recovers from connections the server dropped. (The behavioural suite runs
on it through the backend fixture like on every other backend.)"""

from __future__ import annotations

import random
from collections.abc import Iterator

import psycopg
import pytest

import mnemolog
from mnemolog import ValidationError
from mnemolog.config import parse_url
from tests.conftest import POSTGRES, postgres_url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u@h:5432/", "names its database"),
        ("postgresql://u@h/db?schema=Bad-Name", "schema must be"),
        ("postgresql://u@h/db?schema=1abc", "schema must be"),
        ("postgresql://u@h/db?pool_size=0", "pool_size must be at least 1"),
        ("postgresql://u@h/db?pool_size=x", "pool_size must be a whole number"),
        ("postgresql://u@h/db?max_overflow=-1", "max_overflow must be a whole"),
        ("postgresql://u@h/db?synchronous=full", "unknown option"),
        ("postgresql://u@h:notaport/db", "port must be a number"),
        ("sqlite:///x.db?schema=a", "unknown option"),
        ("mysql://u@h/db", "postgresql://"),
    ],
)
def test_bad_urls_are_refused_naming_the_rule(url: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        parse_url(url)
    assert caught.value.field == "url"


def test_a_url_gives_every_part() -> None:
    location = parse_url(
        "postgresql://ann:s%40cret@db.example:6543/mem?schema=team_a&pool_size=3"
        "&max_overflow=0"
    ).postgres
    assert location is not None
    assert (location.user, location.password) == ("ann", "s@cret")
    assert (location.host, location.port, location.dbname) == (
        "db.example",
        6543,
        "mem",
    )
    assert (location.schema, location.pool_size, location.max_overflow) == (
        "team_a",
        3,
        0,
    )
    defaults = parse_url("postgres://h/mem").postgres
    assert defaults is not None
    assert (defaults.schema, defaults.port, defaults.user) == (
        "mnemolog",
        5432,
        "postgres",
    )


def test_stores_in_two_schemas_never_meet() -> None:
    with (
        mnemolog.open(postgres_url()) as first,
        mnemolog.open(postgres_url()) as second,
    ):
        first.put("user:a", "k", "first")
        second.put("user:a", "k", "second")
        assert first.get("user:a", "k").value == "first"  # type: ignore[union-attr]
        assert second.get("user:a", "k").value == "second"  # type: ignore[union-attr]
        assert [r.item.value for r in second.text_search("first")] == []
        assert first.stats()["log"]["events"] == 1


def test_a_huge_text_of_distinct_words_is_stored_and_searchable() -> None:
    """A tsvector holds at most 1 MB: the indexed text is capped, the write
    never fails because of it, and the words before the cap are found."""
    rng = random.Random(7)
    words = [
        "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(3))
        for _ in range(60_000)
    ]
    with mnemolog.open(postgres_url()) as store:
        store.put("user:a", "big", " ".join(words))  # 240,000 characters
        assert [r.item.key for r in store.text_search(words[0])] == ["big"]
        assert store.get("user:a", "big").value == " ".join(words)  # type: ignore[union-attr]


def _terminate_store_connections(url: str) -> int:
    """Ends every server connection of the store (its application_name)."""
    schema = url.split("schema=")[1].split("&", maxsplit=1)[0]
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s",
            (f"mnemolog/{schema}",),
        ).fetchall()
    return len(rows)


def test_reads_survive_connections_the_server_dropped() -> None:
    url = postgres_url(pool_size="2", max_overflow="0")
    with mnemolog.open(url) as store:
        store.put("user:a", "k", 1)
        assert store.get("user:a", "k") is not None
        assert _terminate_store_connections(url) >= 1
        for _ in range(5):  # each dropped pooled connection fails once, inside
            assert store.get("user:a", "k").value == 1  # type: ignore[union-attr]
        store.put("user:a", "k2", 2)  # writes work again once reads have
        assert store.get("user:a", "k2").value == 2  # type: ignore[union-attr]


def test_a_worker_survives_connections_the_server_dropped() -> None:
    from tests.test_workers import Worker

    url = postgres_url(pool_size="1", max_overflow="1")
    with (
        mnemolog.open(url, inline_projections=False) as writer,
        mnemolog.open(url) as worker_store,
    ):
        errors: list[Exception] = []
        worker = Worker(worker_store, poll_interval=0.05, on_error=errors.append)
        try:
            writer.put("user:a", "before", 1)
            writer.projections.wait(timeout=10)
            assert _terminate_store_connections(url) >= 2  # the pool's, the LISTEN
            for i in range(20):
                writer.put("user:a", f"after{i}", i)
            writer.projections.wait(timeout=30)
            assert len(writer.search(namespace_prefix="user:a")) == 21
        finally:
            worker.close()


@pytest.fixture
def linguistic_database() -> Iterator[str]:
    """A database whose default collation is English (ICU), where 'a' sorts
    before 'B' and punctuation barely counts: stores must not depend on it."""
    postgres_url()  # skips or fails as every PostgreSQL test does
    name = "mnemolog_test_icu"
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(
            f'CREATE DATABASE "{name}" TEMPLATE template0 '
            "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        )
    base = POSTGRES.rsplit("/", 1)[0]
    try:
        with psycopg.connect(f"{base}/{name}") as check:
            assert check.execute("SELECT 'a' < 'B'").fetchone() == (True,)
        yield f"{base}/{name}?schema=store"
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_strings_compare_by_bytes_whatever_the_database_locale(
    linguistic_database: str,
) -> None:
    with mnemolog.open(linguistic_database) as store:
        for key in ("a", "B", "_z", "a-b", "a.b", "ab"):
            store.put("user:x", key, key, metadata={"s": key})
        store.put("user:x.y", "k", 1)
        store.put("user:x-y", "k", 1)
        store.put("user:x:y", "k", 1)
        keys = ["a", "B", "_z", "a-b", "a.b", "ab"]
        found = store.search(namespace_prefix="user:x", order_by="key", limit=100)
        assert [m.key for m in found if m.namespace == "user:x"] == sorted(keys)
        assert {m.namespace for m in found} == {"user:x", "user:x:y"}
        assert {m.key for m in store.search(where={"s": {"$lt": "a"}})} == {
            k for k in keys if k < "a"
        }
        assert {n.namespace for n in store.list_namespaces(prefix="user:x")} == {
            "user:x",
            "user:x:y",
        }
        assert store.verify().ok
