"""verify proves the log was not edited, and that read models match it."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest

import mnemolog
from mnemolog import MemoryStore


def filled(url: str) -> None:
    with mnemolog.open(url) as store:
        store.put("user:alice", "theme", "light", actor="a")
        store.put("user:alice", "theme", "dark", actor="b")
        store.put("user:alice", "theme", "blue", actor="c")
        store.put("user:bob", "k", 1)


def edit_event(path: Path, version: int, old: bytes, new: bytes) -> None:
    """What an attacker with the file, and so with its keys, would do: open a
    stored payload, rewrite it, and seal it again with its stream's key."""
    with mnemolog.open(f"sqlite:///{path}") as store:
        mapper: Any = store._app.mapper
        connection = sqlite3.connect(path)
        rows = connection.execute(
            "SELECT rowid, originator_id, topic, state FROM stored_events "
            "WHERE originator_version = ?",
            (version,),
        ).fetchall()
        for rowid, stream_hex, topic, state in rows:
            stream = UUID(hex=stream_hex)
            opened, _readable = mapper.open_state(stream, orjson.loads(state))
            text = orjson.dumps(opened)
            if old not in text:
                continue
            edited = orjson.loads(text.replace(old, new))
            sealed = mapper.seal_state(stream, version, topic, edited)
            connection.execute(
                "UPDATE stored_events SET state = ? WHERE rowid = ?",
                (orjson.dumps(sealed), rowid),
            )
            break
        else:
            raise AssertionError(f"no version {version} holds {old!r}")
        connection.commit()
        connection.close()


def test_an_untouched_store_verifies(store: MemoryStore) -> None:
    store.put("user:a", "k", {"b": b"\x00"}, tags=["t"], metadata={"m": {"n": 1}})
    store.update("user:a", "k", 2)
    store.delete("user:a", "k")
    store.restore("user:a", "k")
    store.tenant("acme").put("user:a", "k", 1)
    report = store.verify()
    assert report.ok, report.problems
    assert (report.events, report.streams) == (5, 2)
    assert report.projections_checked == (
        "current_state",
        "namespaces",
        "audit",
        "sessions",
        "documents",
        "vectors",
        "text",
    )


def test_an_edited_event_in_the_middle_breaks_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    filled(f"sqlite:///{path}")
    edit_event(path, 2, b'"dark"', b'"evil"')
    with mnemolog.open(f"sqlite:///{path}") as store:
        report = store.verify(projections=False)
    assert not report.ok
    assert "version 3" in report.problems[0]
    assert "prev_hash does not match" in report.problems[0]


def test_an_edited_newest_event_is_caught_by_the_recorded_head(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    filled(f"sqlite:///{path}")
    edit_event(path, 3, b'"blue"', b'"evil"')
    with mnemolog.open(f"sqlite:///{path}") as store:
        report = store.verify()
    assert not report.ok
    assert any("the newest event differs" in p for p in report.problems)
    assert any(p.startswith("current_state: the memories row") for p in report.problems)
    assert all("evil" not in p and "blue" not in p for p in report.problems)


def test_an_unreadable_event_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    filled(f"sqlite:///{path}")
    connection = sqlite3.connect(path)
    connection.execute(
        "UPDATE stored_events SET state = substr(state, 1, 40) "
        "WHERE originator_version = 1"
    )
    connection.commit()
    connection.close()
    with mnemolog.open(
        f"sqlite:///{path}",
    ) as store:
        report = store.verify(projections=False)
    assert any("cannot be read" in p for p in report.problems)


def test_a_read_model_that_drifted_from_the_log_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    filled(f"sqlite:///{path}")
    connection = sqlite3.connect(path)
    connection.execute("UPDATE memories SET value = '\"forged\"' WHERE key = 'k'")
    connection.commit()
    connection.close()
    with mnemolog.open(f"sqlite:///{path}") as store:
        report = store.verify()
    assert report.problems == (
        report.problems[0],
        report.problems[1],
    )
    assert "current_state: the memories row with key" in report.problems[0]
    assert "forged" not in " ".join(report.problems)


def test_the_command_exits_non_zero_with_a_report(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    filled(f"sqlite:///{path}")
    command = [sys.executable, "-m", "mnemolog", "--db", f"sqlite:///{path}", "verify"]
    clean = subprocess.run(command, capture_output=True, text=True, check=False)
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["ok"] is True
    edit_event(path, 2, b'"dark"', b'"evil"')
    broken = subprocess.run(command, capture_output=True, text=True, check=False)
    assert broken.returncode == 1
    report = json.loads(broken.stdout)
    assert report["ok"] is False
    assert "version 3" in report["problems"][0]


@pytest.mark.parametrize("backend", ["memory"])
def test_verify_is_on_the_async_twin(backend: str) -> None:
    import asyncio

    async def run() -> None:
        async with mnemolog.open_async("memory://") as store:
            await store.put("user:a", "k", 1)
            assert (await store.verify()).ok

    asyncio.run(run())
