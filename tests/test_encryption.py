"""Encryption at rest and compression: nothing a caller wrote is readable in
the files, keys rotate, and a store can turn both on after the fact."""

from __future__ import annotations

from pathlib import Path

import pytest

import mnemolog
from mnemolog import ValidationError
from tests.conftest import postgres_url, require_postgres

WORDS = ("quokka", "marsupial", "rottnest")
VALUE = {"text": "the quokka is a small marsupial of rottnest island", "n": 31337}


def fill(store: mnemolog.MemoryStore) -> None:
    store.put("user:alice:notes", "n1", VALUE, subject="alice", tags=["fauna"])
    store.update("user:alice:notes", "n1", value={**VALUE, "seen": "rottnest"})
    store.put("user:bob:notes", "n1", "a quokka selfie", metadata={"score": 3})
    store.sessions.create_session(app_name="chat", user_id="alice", session_id="s1")
    store.sessions.append_event("s1", {"author": "user", "content": VALUE["text"]})


def test_no_plaintext_value_in_the_sqlite_files(tmp_path: Path) -> None:
    path = tmp_path / "enc.db"
    with mnemolog.open(
        f"sqlite:///{path}", cipher_keys=(mnemolog.new_key(),), compress=True
    ) as store:
        fill(store)
        assert store.get("user:alice:notes", "n1").value["seen"] == "rottnest"  # type: ignore[union-attr]
        assert {r.item.key for r in store.text_search("Quokka")} == {"n1"}
        assert len(store.text_search("quokka")) == 2
        assert store.verify().ok
    files = list(tmp_path.iterdir())
    assert files
    for file in files:
        data = file.read_bytes()
        for word in WORDS:
            assert word.encode() not in data, f"{word!r} is readable in {file.name}"
        assert b"31337" not in data, file.name


def readable_in_schema(schema: str) -> dict[str, set[str]]:
    """The WORDS found in each table of a PostgreSQL schema, read as stored:
    text columns as text and bytea columns (the log) as their bytes."""
    import psycopg

    found: dict[str, set[str]] = {}
    with psycopg.connect("postgresql://127.0.0.1:5432/test") as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = %s",
                (schema,),
            )
        ]
        for table in tables:
            for row in connection.execute(f'SELECT * FROM "{schema}"."{table}"'):
                for cell in row:
                    data = cell if isinstance(cell, bytes) else str(cell).encode()
                    for word in WORDS:
                        if word.encode() in data:
                            found.setdefault(table, set()).add(word)
    return found


def test_no_plaintext_value_in_postgresql() -> None:
    require_postgres()
    plain_url, url = postgres_url(), postgres_url()
    with mnemolog.open(plain_url) as plain:  # the scan finds words when they are there
        fill(plain)
    assert readable_in_schema(plain_url.split("schema=")[1])["memories"] == set(WORDS)
    with mnemolog.open(url, cipher_keys=(mnemolog.new_key(),)) as store:
        fill(store)
        assert store.text_search("rottnest")[0].item.key == "n1"
    assert readable_in_schema(url.split("schema=")[1]) == {}


def test_keys_rotate_and_old_ones_keep_reading(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rotate.db'}"
    first, second = mnemolog.new_key(), mnemolog.new_key()
    with mnemolog.open(url, cipher_keys=(first,)) as store:
        fill(store)
    with mnemolog.open(url, cipher_keys=(second, first)) as store:
        store.put("user:carol", "k", "written under the second key")
        store.projections.rebuild()  # the read models, under the new key
        assert store.get("user:alice:notes", "n1") is not None
        assert len(store.history("user:alice:notes", "n1")) == 2
        assert store.verify().ok
    with mnemolog.open(url, cipher_keys=(second,)) as store:
        # The read models are readable; the old events are not, without their key.
        assert store.get("user:carol", "k") is not None
        with pytest.raises(Exception, match="no configured cipher key"):
            store.history("user:alice:notes", "n1")


def test_encryption_and_compression_can_be_turned_on_later(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'later.db'}"
    with mnemolog.open(url) as store:
        store.put("user:a", "plain", "written in the clear")
    key = mnemolog.new_key()
    with mnemolog.open(url, cipher_keys=(key,), compress=True) as store:
        store.put("user:a", "sealed", "written encrypted")
        store.projections.rebuild()
        assert store.get("user:a", "plain").value == "written in the clear"  # type: ignore[union-attr]
        assert store.verify().ok
    with mnemolog.open(url, cipher_keys=(key,)) as store:  # compression off again
        assert store.get("user:a", "sealed", version=1) is not None


def test_compression_makes_the_log_smaller(tmp_path: Path) -> None:
    sizes = {}
    for compress in (False, True):
        with mnemolog.open(
            f"sqlite:///{tmp_path / f'c{compress}.db'}", compress=compress
        ) as store:
            store.put("user:a", "k", "the same words again " * 500)
            sizes[compress] = store.stats()["log"]["payload_bytes"]
    assert sizes[True] < sizes[False] / 5


def test_bad_keys_are_refused_by_name() -> None:
    for bad in ("not base64!", "c2hvcnQ="):
        with pytest.raises(ValidationError, match="cipher_keys"):
            mnemolog.open("memory://", cipher_keys=(bad,))
