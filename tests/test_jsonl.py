"""The jsonl:// backend: a log file of JSON lines beside a SQLite index, the
same store as on every backend, recovered on open after any crash."""

from __future__ import annotations

import io
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mnemolog
from mnemolog import IntegrityViolation, MemoryStore, ValidationError
from mnemolog.transfer import export_events, import_events

SECRET = "otter-basalt-secret"
LOGGER = "mnemolog.adapters.jsonl_backend"


def url_of(directory: Path) -> str:
    return f"jsonl:///{directory}"


def log_lines(directory: Path) -> list[dict[str, Any]]:
    """Every line of the store's log file, parsed."""
    text = (directory / "log.jsonl").read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def event_count(store: MemoryStore) -> int:
    return int(store.stats()["log"]["events"])


def assert_file_matches_log(store: MemoryStore, directory: Path) -> None:
    """The file holds every event of the log, once, in log order."""
    lines = log_lines(directory)
    assert [line["id"] for line in lines] == list(range(1, event_count(store) + 1))
    report = store.verify()
    assert report.ok, report.problems


@pytest.fixture
def place(tmp_path: Path) -> Path:
    return tmp_path / "store"


def fill(store: MemoryStore) -> None:
    store.put("user:alice", "theme", {"mode": f"dark {SECRET}"}, tags=["ui"])
    store.put("user:alice", "theme", {"mode": "light"}, tags=["ui", "v2"])
    store.put_many(
        [
            {
                "namespace": "app:notes",
                "key": f"n{i}",
                "value": f"note {i} about otters",
            }
            for i in range(3)
        ]
    )
    store.put("user:bob", "theme", "bob keeps this", subject="bob")


# ---- the store through the public API ----------------------------------------------


def test_the_store_works_and_reopens_the_same(place: Path) -> None:
    with mnemolog.open(url_of(place), vector_dims=2, vector_model="m") as store:
        assert store.backend == "jsonl"
        fill(store)
        assert store.get("user:alice", "theme").value == {"mode": "light"}  # type: ignore[union-attr]
        assert store.get("user:alice", "theme", version=1).value == {  # type: ignore[union-attr]
            "mode": f"dark {SECRET}"
        }
        assert [e.version for e in store.history("user:alice", "theme")] == [1, 2]
        assert {m.key for m in store.search(namespace_prefix="app:notes")} == {
            "n0",
            "n1",
            "n2",
        }
        assert {s.item.key for s in store.text_search("otters")} == {"n0", "n1", "n2"}
        store.put("app:vec", "x", "x", embedding=[1.0, 0.0])
        store.put("app:vec", "y", "y", embedding=[0.0, 1.0])
        assert store.similar([1.0, 0.1], k=1)[0].item.key == "x"
        store.delete("app:notes", "n0")
        assert store.get("app:notes", "n0") is None
        store.restore("app:notes", "n0")
        assert store.get("app:notes", "n0") is not None
        sessions = store.sessions
        sessions.create_session(app_name="a", user_id="u", session_id="s1")
        sessions.append_event("s1", {"author": "user", "content": "hi"}, {"step": 1})
        assert sessions.get_state("s1", "step") == 1
        report = store.erase(subject="bob", reason="asked")
        assert report.keys_destroyed == 1
        assert store.get("user:bob", "theme") is None
        assert_file_matches_log(store, place)
        before = {m.key: (m.value, m.version) for m in store.search(limit=100)}
        events = event_count(store)
        buffer = io.BytesIO()
        export_events(store, buffer.write)
    with mnemolog.open(url_of(place), vector_dims=2, vector_model="m") as store:
        after = {m.key: (m.value, m.version) for m in store.search(limit=100)}
        assert after == before
        assert event_count(store) == events
        assert store.sessions.get_state("s1", "step") == 1
        assert store.similar([0.0, 1.0], k=1)[0].item.key == "y"
        assert store.get("user:bob", "theme") is None
        assert_file_matches_log(store, place)
        statuses = store.projections.rebuild()
        assert all(s.lag == 0 for s in statuses)
    lines = buffer.getvalue().splitlines(keepends=True)
    with mnemolog.open(url_of(place.parent / "copy")) as copy:
        assert import_events(copy, lambda: lines) == events
        assert copy.get("user:alice", "theme").value == {"mode": "light"}  # type: ignore[union-attr]
        assert copy.get("user:bob", "theme") is None
        assert_file_matches_log(copy, place.parent / "copy")


def test_each_line_is_json_naming_stream_version_and_topic(place: Path) -> None:
    with mnemolog.open(url_of(place)) as store:
        fill(store)
        memory = store.get("user:alice", "theme")
        assert memory is not None
    lines = log_lines(place)
    assert len(lines) == 6
    for line in lines:
        assert set(line) == {
            "id",
            "tx",
            "tx_size",
            "stream",
            "version",
            "topic",
            "state",
        }
        assert isinstance(line["state"], dict)
        assert line["topic"].startswith("mnemolog.domain.")
    alice = [line for line in lines if line["stream"] == str(memory.id)]
    assert [(line["version"], line["topic"].rsplit(".", 1)[1]) for line in alice] == [
        (1, "Created"),
        (2, "Updated"),
    ]
    # The put_many is one transaction of three lines; the others one line each.
    assert [(line["tx"], line["tx_size"]) for line in lines] == [
        (1, 1),
        (2, 1),
        (3, 3),
        (3, 3),
        (3, 3),
        (6, 1),
    ]
    # Personal fields are sealed, as on every backend: not in the clear.
    assert SECRET not in (place / "log.jsonl").read_text(encoding="utf-8")


def test_a_store_encrypted_at_rest_writes_its_states_as_base64(place: Path) -> None:
    key = mnemolog.new_key()
    with mnemolog.open(url_of(place), cipher_keys=(key,)) as store:
        fill(store)
    lines = log_lines(place)
    assert all("state_base64" in line and "state" not in line for line in lines)
    with mnemolog.open(url_of(place), cipher_keys=(key,)) as store:
        assert store.get("user:alice", "theme").value == {"mode": "light"}  # type: ignore[union-attr]
        assert_file_matches_log(store, place)


def test_the_url_is_checked(tmp_path: Path) -> None:
    for url, rule in [
        (f"jsonl:///{tmp_path}/no/such/dir", "does not exist"),
        (f"jsonl:///{tmp_path}/s?synchronous=normal", "synchronous must be 'full'"),
        (f"jsonl:///{tmp_path}/s?mode=fast", "unknown option(s): mode"),
        ("jsonl://host/dir", "jsonl:///relative/dir"),
        ("jsonl:///", "jsonl:///relative/dir"),
    ]:
        with pytest.raises(ValidationError) as caught:
            mnemolog.open(url)
        assert caught.value.field == "url"
        assert rule in caught.value.rule
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValidationError, match="is not a directory"):
        mnemolog.open(f"jsonl:///{tmp_path}/file")
    # A relative path, made when missing; synchronous=full is the only level.
    os.chdir(tmp_path)
    with mnemolog.open("jsonl:///rel?synchronous=full") as store:
        store.put("app:x", "k", 1)
    assert (tmp_path / "rel" / "log.jsonl").exists()
    assert (tmp_path / "rel" / "index.db").exists()


# ---- recovery on open --------------------------------------------------------------------


def test_a_torn_last_line_is_cut_off_with_a_warning(
    place: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with mnemolog.open(url_of(place)) as store:
        fill(store)
    whole = (place / "log.jsonl").read_bytes()
    with (place / "log.jsonl").open("ab") as file:
        file.write(b'{"id":7,"tx":7,"tx_size":1,"stream":"3f')
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        store = mnemolog.open(url_of(place))
    assert "cut off an unfinished write from line 7 on" in caplog.text
    assert "line 7 has no newline" in caplog.text
    with store:
        assert (place / "log.jsonl").read_bytes() == whole
        assert_file_matches_log(store, place)
        store.put("app:after", "k", 1)
        assert_file_matches_log(store, place)


def test_an_unreadable_last_line_is_cut_off_too(
    place: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with mnemolog.open(url_of(place)) as store:
        fill(store)
    whole = (place / "log.jsonl").read_bytes()
    with (place / "log.jsonl").open("ab") as file:
        file.write(b"\x00\x00\x00\x00\n")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        store = mnemolog.open(url_of(place))
    assert "line 7 cannot be read" in caplog.text
    with store:
        assert (place / "log.jsonl").read_bytes() == whole
        assert_file_matches_log(store, place)


def test_a_transaction_missing_its_last_lines_comes_back_whole_from_the_index(
    place: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Lines lost from the file after the index committed (the write order
    guarantees the index has them): cut off, then appended again."""
    with mnemolog.open(url_of(place)) as store:
        fill(store)
        store.put_many(
            [{"namespace": "app:batch", "key": f"b{i}", "value": i} for i in range(4)]
        )
    whole = (place / "log.jsonl").read_bytes()
    lines = whole.splitlines(keepends=True)
    # Keep the batch's first line and half of its second.
    cut = b"".join(lines[:7]) + lines[7][: len(lines[7]) // 2]
    (place / "log.jsonl").write_bytes(cut)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        store = mnemolog.open(url_of(place))
    assert "cut off an unfinished write from line 7 on" in caplog.text
    assert "appending 4 events that index.db committed" in caplog.text
    with store:
        assert [
            m.key for m in store.search(namespace_prefix="app:batch", order_by="key")
        ] == [
            "b0",
            "b1",
            "b2",
            "b3",
        ]
        assert_file_matches_log(store, place)
    assert [line["tx"] for line in log_lines(place)][6:] == [7, 7, 7, 7]


def test_an_unfinished_transaction_is_all_or_nothing(
    place: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With an index that never had it (restored from a backup taken before),
    a transaction with lines missing is dropped whole: none of its events."""
    with mnemolog.open(url_of(place)) as store:
        fill(store)
    shutil.copy(place / "index.db", place.parent / "index-backup.db")
    with mnemolog.open(url_of(place)) as store:
        store.put("user:alice", "theme", {"mode": "sepia"})
        store.put_many(
            [{"namespace": "app:batch", "key": f"b{i}", "value": i} for i in range(4)]
        )
    lines = (place / "log.jsonl").read_bytes().splitlines(keepends=True)
    assert len(lines) == 11
    (place / "log.jsonl").write_bytes(b"".join(lines[:9]))  # two of the batch's four
    shutil.copy(place.parent / "index-backup.db", place / "index.db")
    for companion in ("index.db-wal", "index.db-shm"):
        (place / companion).unlink(missing_ok=True)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        store = mnemolog.open(url_of(place))
    assert "has 2 of its 4 lines" in caplog.text
    assert "copied 1 events that only log.jsonl held into index.db" in caplog.text
    with store:
        assert store.search(namespace_prefix="app:batch") == []
        assert event_count(store) == 7
        assert len(log_lines(place)) == 7
        # The update made after the backup comes back from the file: the stream
        # key it was sealed with is one the backup holds.
        assert store.get("user:alice", "theme").value == {"mode": "sepia"}  # type: ignore[union-attr]
        assert store.verify().ok, store.verify().problems


def test_events_the_file_missed_are_appended_on_open(
    place: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A crash after the index committed and before the append: the
    transaction is in the index only; open appends it to the file."""
    with mnemolog.open(url_of(place)) as store:
        fill(store)
        store.put_many(
            [{"namespace": "app:batch", "key": f"b{i}", "value": i} for i in range(2)]
        )
    whole = (place / "log.jsonl").read_bytes()
    lines = whole.splitlines(keepends=True)
    (place / "log.jsonl").write_bytes(b"".join(lines[:6]))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        store = mnemolog.open(url_of(place))
    assert "appending 2 events that index.db committed but the file does not hold" in (
        caplog.text
    )
    assert "cut off" not in caplog.text
    with store:
        assert (place / "log.jsonl").read_bytes() == whole
        assert_file_matches_log(store, place)


def envelope(line: dict[str, Any]) -> dict[str, Any]:
    """A line without its transaction fields (recovery may group anew)."""
    return {k: v for k, v in line.items() if k not in ("tx", "tx_size")}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of a few transactions, closed: copied for each example."""
    place = tmp_path_factory.mktemp("written") / "store"
    with mnemolog.open(url_of(place)) as store:
        fill(store)
        store.put_many(
            [{"namespace": "app:batch", "key": f"b{i}", "value": i} for i in range(3)]
        )
        store.delete("app:notes", "n1")
    return place


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(cut=st.floats(min_value=0.0, max_value=1.0), garbage=st.binary(max_size=40))
def test_any_cut_of_the_file_recovers_every_event(
    written: Path, tmp_path_factory: pytest.TempPathFactory, cut: float, garbage: bytes
) -> None:
    """Whatever a crash leaves of the file's end (a prefix of it, then any
    bytes), reopening gives back every event of the index, in order."""
    place = tmp_path_factory.mktemp("cut") / "store"
    shutil.copytree(written, place)
    whole = (place / "log.jsonl").read_bytes()
    (place / "log.jsonl").write_bytes(whole[: int(len(whole) * cut)] + garbage)
    with mnemolog.open(url_of(place)) as store:
        assert_file_matches_log(store, place)
    expected = [envelope(json.loads(line)) for line in whole.splitlines()]
    assert [envelope(line) for line in log_lines(place)] == expected


def test_a_deleted_log_file_is_written_again_from_the_index(place: Path) -> None:
    with mnemolog.open(url_of(place)) as store:
        fill(store)
    whole = (place / "log.jsonl").read_bytes()
    (place / "log.jsonl").unlink()
    with mnemolog.open(url_of(place)) as store:
        assert_file_matches_log(store, place)
        # One recovered transaction, the same events.
        assert {line["tx_size"] for line in log_lines(place)} == {6}
    assert [envelope(json.loads(line)) for line in whole.splitlines()] == [
        envelope(line) for line in log_lines(place)
    ]


def test_a_lost_index_brings_the_events_back_but_not_their_content(
    place: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """index.db holds the keys: without it the events come back from the
    file, their sealed fields cannot be opened, and verify says so."""
    with mnemolog.open(url_of(place)) as store:
        fill(store)
        events = event_count(store)
    for name in ("index.db", "index.db-wal", "index.db-shm"):
        (place / name).unlink(missing_ok=True)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        store = mnemolog.open(url_of(place))
    assert f"copied {events} events that only log.jsonl held" in caplog.text
    with store:
        assert event_count(store) == events
        assert store.get("user:alice", "theme") is None
        assert store.history("user:alice", "theme") == []
        assert store.search(limit=100) == []
        assert store.text_search("otters") == []
        report = store.verify()
        assert not report.ok
        assert any("keys were deleted outside erase" in p for p in report.problems)
        # The store goes on: new writes are readable, and reach the file.
        store.put("app:new", "k", "fresh")
        assert store.get("app:new", "k").value == "fresh"  # type: ignore[union-attr]
        assert [line["id"] for line in log_lines(place)] == list(range(1, events + 2))


# ---- damage is reported, never guessed at --------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [("version", 5, "version"), ("state", {"edited": True}, "state")],
)
def test_a_hand_edited_line_fails_verify_and_open(
    place: Path, field: str, value: Any, named: str
) -> None:
    store = mnemolog.open(url_of(place))
    fill(store)
    assert store.verify().ok
    lines = log_lines(place)
    lines[1][field] = value
    (place / "log.jsonl").write_text(
        "".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8"
    )
    report = store.verify()
    assert not report.ok
    assert any(
        f"line 2 (position 2) differs from index.db in {named}" in p
        for p in report.problems
    ), report.problems
    store.close()
    with pytest.raises(
        IntegrityViolation, match=f"line 2 .* differs from index.db in {named}"
    ):
        mnemolog.open(url_of(place))


@pytest.mark.parametrize("damaged", [3, 6])
def test_damage_before_the_end_is_not_cut_off(place: Path, damaged: int) -> None:
    """An unreadable line with whole transactions after it is no torn write."""
    with mnemolog.open(url_of(place)) as store:
        fill(store)
        store.put("app:last", "k", 1)
    lines = (place / "log.jsonl").read_bytes().splitlines(keepends=True)
    lines[damaged - 1] = b"{garbage\n"
    (place / "log.jsonl").write_bytes(b"".join(lines))
    with pytest.raises(IntegrityViolation, match=f"damaged from line {damaged} on"):
        mnemolog.open(url_of(place))
    assert (place / "log.jsonl").read_bytes() == b"".join(lines)


# ---- crashes and concurrency ---------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    import mnemolog

    store = mnemolog.open(sys.argv[1])
    i = int(sys.argv[2])
    while True:
        if i % 5 == 4:
            store.put_many(
                [{"namespace": "app:crash", "key": f"b{i}-{j}", "value": j} for j in range(5)]
            )
        else:
            store.put("app:crash", f"k{i}", {"i": i}, tags=[f"t{i % 3}"])
        print(i, flush=True)
        i += 1
    """
)


@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_loses_no_acknowledged_write(place: Path, seed: int) -> None:
    url = url_of(place)
    mnemolog.open(url).close()
    rng = random.Random(seed)
    acknowledged = -1
    for _round in range(4):
        stop_after = rng.randint(5, 60)
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, url, str(acknowledged + 1)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert child.stdout is not None
        for seen, line in enumerate(child.stdout, start=1):
            acknowledged = max(acknowledged, int(line))
            if seen >= stop_after:
                break
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        with mnemolog.open(url) as store:
            for i in range(acknowledged + 1):
                if i % 5 == 4:
                    found = store.search(namespace_prefix="app:crash", limit=10_000)
                    assert {f"b{i}-{j}" for j in range(5)} <= {m.key for m in found}
                    continue
                memory = store.get("app:crash", f"k{i}")
                assert memory is not None, f"acknowledged write k{i} is missing"
                assert memory.value == {"i": i}
            assert_file_matches_log(store, place)


def test_a_writer_repairs_what_another_left_unfinished(
    place: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One store open while another (here: a hand-made torn line) dies
    mid-append: the next write cuts the torn line off and goes on."""
    with mnemolog.open(url_of(place)) as first, mnemolog.open(url_of(place)) as second:
        first.put("app:a", "k", 1)
        second.put("app:b", "k", 2)
        with (place / "log.jsonl").open("ab") as file:
            file.write(b'{"id":3,"tx":3,"tx_')
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            first.put("app:a", "k", 3)
        assert "cut off an unfinished write from line 3 on" in caplog.text
        assert second.get("app:a", "k").value == 3  # type: ignore[union-attr]
        assert_file_matches_log(second, place)


def test_concurrent_writers_keep_the_file_in_log_order(place: Path) -> None:
    """Threads of one store and a second store on the same directory (its
    own file lock) write at once: every write lands once, in log order."""
    with mnemolog.open(url_of(place)) as store, mnemolog.open(url_of(place)) as other:
        errors: list[BaseException] = []

        def write(target: MemoryStore, name: str) -> None:
            try:
                for i in range(40):
                    if i % 10 == 0:
                        target.put_many(
                            [
                                {
                                    "namespace": f"app:{name}",
                                    "key": f"m{i}-{j}",
                                    "value": j,
                                }
                                for j in range(3)
                            ]
                        )
                    else:
                        target.put(f"app:{name}", f"k{i}", i)
            except BaseException as e:  # reported below
                errors.append(e)

        threads = [
            threading.Thread(target=write, args=(store, "t1")),
            threading.Thread(target=write, args=(store, "t2")),
            threading.Thread(target=write, args=(other, "t3")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert event_count(store) == 3 * (36 + 4 * 3)
        assert_file_matches_log(store, place)
        for name in ("t1", "t2", "t3"):
            assert len(store.search(namespace_prefix=f"app:{name}", limit=100)) == 48
    lines = log_lines(place)
    batches = [line for line in lines if line["tx_size"] == 3]
    assert len(batches) == 3 * 4 * 3
    for start in range(0, len(batches), 3):
        tx = batches[start]["tx"]
        assert [line["id"] for line in batches[start : start + 3]] == [
            tx,
            tx + 1,
            tx + 2,
        ]
