"""The JSONL backend: the log as an append-only, fsynced file of JSON lines,
beside a SQLite index that holds the keys, a copy of the events and the read
models.

A store directory (``jsonl:///relative/dir`` or ``jsonl:////absolute/dir``,
created if missing; its parent must exist) holds:

- ``log.jsonl``: one JSON object a line, one line an event, in log order::

    {"id": 7, "tx": 6, "tx_size": 2, "stream": "3f1c...", "version": 2,
     "topic": "mnemolog.domain.memory:Memory.Updated", "state": {...}}

  ``id`` is the event's log position (its notification id), ``stream`` and
  ``version`` its stream and version, ``topic`` its type; ``state`` is the
  stored state as JSON, or, when it is not JSON (encrypted at rest or
  compressed), ``state_base64``. Personal fields are sealed with their
  stream's key as on every backend, so the file shows them as ciphertext.
  ``tx`` is the position of the first event of the transaction that wrote the
  line and ``tx_size`` how many events it wrote: a transaction is in the file
  when all its lines are.
- ``index.db``: the SQLite recorder of ``sqlite:///`` (keys, events, read
  models, snapshots). It holds the keys that open the sealed fields, so a
  backup needs both files: with the index lost, the events come back from the
  file but their sealed fields cannot be read (that is crypto-shredding).
- ``log.lock``: the file locked (``flock``) by whoever writes the log.

A write, holding the lock (a thread lock and ``flock``, so lines land in log
order across threads and processes): the SQLite transaction commits
(``synchronous=FULL``), then the transaction's lines are appended in one
write and fsynced; only then does the call return.

On open, holding the lock, the file is read and checked against the index:

- a torn tail (a last line with no newline or that cannot be read, or a last
  transaction with fewer lines than its ``tx_size``) is cut off, with a
  WARNING; damage anywhere else raises ``IntegrityViolation``;
- events committed to the index but not in the file (a writer stopped between
  the two) are appended to it, as one transaction;
- events in the file but not in the index (it was deleted, or restored from
  an older backup) are copied into it, and the read models catch up when the
  store opens; they read as redacted where their keys are not in the index;
- an event that the two hold differently raises ``IntegrityViolation``.

A write also checks what other processes appended since its last one, and
repairs a tail that a writer killed mid-append left. ``verify()`` compares
every line with the index.

Choices:

- ``synchronous=full`` is the only level (``?synchronous=normal`` is refused):
  a power loss must not take back keys that lines in the file were sealed
  with. A write costs two fsyncs: the index's commit and the file's append.
- Events the file lacks are appended as one transaction (``tx`` is the first
  of them), whatever transactions wrote them: each of them was committed.
- If the append itself fails (a full disk), the call raises ``OSError``,
  though the index committed: the events reach the file at the next write or
  open, as after a crash between the two.
- The file is never rewritten except to cut a torn tail off; erasure leaves
  the sealed lines as they are, unreadable once their keys are gone.
- Events copied from the file into a new or older index keep their positions,
  and the read models catch up from them at ``open()``; the erasures they
  record are not recorded again beside the index, so ``verify()`` reports
  such a store (its keys, and that record, were in the lost index).
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.utils import Environment, EnvType

from mnemolog.adapters.sqlite_backend import Factory, LogRecorder
from mnemolog.domain.errors import IntegrityViolation

JSONL_DIR = "MNEMOLOG_JSONL_DIR"
"""The environment key naming the store's directory."""
LOG_FILE = "log.jsonl"
LOCK_FILE = "log.lock"
PAGE = 1000
MAX_PROBLEMS = 20

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Line:
    """One event as the file holds it."""

    position: int
    tx: int
    tx_size: int
    stream: UUID
    version: int
    topic: str
    state: bytes
    number: int
    """Its line number in the file, from 1."""


@dataclass(frozen=True)
class Tail:
    """What follows the last whole transaction of the file, when it is not clean."""

    offset: int
    line: int
    """The number of its first line."""
    reason: str
    torn: bool
    """True when it can only be a write that did not finish (it may be cut
    off); False when the file was damaged before its end."""


def render(position: int, tx: int, tx_size: int, event: StoredEvent) -> bytes:
    """The line of one event, newline included."""
    stream = event.originator_id
    fields: dict[str, Any] = {
        "id": position,
        "tx": tx,
        "tx_size": tx_size,
        "stream": str(stream),
        "version": event.originator_version,
        "topic": event.topic,
    }
    if _is_json(event.state):
        fields["state"] = orjson.Fragment(event.state)
    else:
        fields["state_base64"] = base64.b64encode(event.state).decode("ascii")
    return orjson.dumps(fields) + b"\n"


def _is_json(state: bytes) -> bool:
    """True when the state reads back byte for byte from its JSON form (so it
    is shown as JSON, with no newline in it)."""
    try:
        return orjson.dumps(orjson.loads(state)) == state
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return False


def parse(raw: bytes, number: int) -> Line:
    """The event on one line (without its newline); ValueError names what is wrong."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        msg = f"not JSON ({e})"
        raise ValueError(msg) from None
    if not isinstance(data, dict):
        msg = "not a JSON object"
        raise ValueError(msg)
    try:
        numbers = [data[name] for name in ("id", "tx", "tx_size", "version")]
        if not all(type(n) is int and n > 0 for n in numbers):
            msg = "id, tx, tx_size and version must be positive integers"
            raise ValueError(msg)
        topic = data["topic"]
        if not isinstance(topic, str):
            msg = "topic must be a string"
            raise ValueError(msg)
        if "state" in data:
            state = orjson.dumps(data["state"])
        else:
            state = base64.b64decode(data["state_base64"], validate=True)
        stream = UUID(data["stream"])
    except KeyError as e:
        msg = f"no {e.args[0]!r} field"
        raise ValueError(msg) from None
    except (TypeError, AttributeError, binascii.Error) as e:
        raise ValueError(str(e)) from None
    position, tx, tx_size, version = numbers
    return Line(position, tx, tx_size, stream, version, topic, state, number)


class Reader:
    """Reads the file from a known-good point: whole transactions, then what
    follows the last of them (``tail``), if anything does."""

    def __init__(self, path: Path, *, offset: int, line: int, last: int) -> None:
        self.path = path
        self.offset = offset
        self.line = line
        self.last = last
        """The position of the event before ``offset``."""
        self.tail: Tail | None = None

    def transactions(self) -> Iterator[list[Line]]:
        """Each whole transaction in turn; afterwards ``offset``, ``line`` and
        ``last`` are those of the end of the last, and ``tail`` what follows."""
        group: list[Line] = []
        start, start_line = self.offset, self.line + 1
        position, number = self.offset, self.line
        problem: str | None = None
        problem_tx: int | None = None
        with self.path.open("rb") as file:
            file.seek(self.offset)
            for raw in file:
                number += 1
                position += len(raw)
                if problem is not None:
                    # Past a damaged line: what follows may be more of the
                    # same unfinished transaction, nothing else.
                    try:
                        line = parse(raw.rstrip(b"\n"), number)
                    except ValueError:
                        continue
                    if problem_tx is None and line.tx != line.position:
                        problem_tx = line.tx
                    elif line.tx != problem_tx:
                        self._damaged(
                            start, start_line, f"{problem}, then line {number}"
                        )
                        return
                    continue
                if not raw.endswith(b"\n"):
                    problem = f"line {number} has no newline"
                    problem_tx = group[0].tx if group else None
                    continue
                try:
                    line = parse(raw[:-1], number)
                except ValueError as e:
                    problem = f"line {number} cannot be read: {e}"
                    problem_tx = group[0].tx if group else None
                    continue
                wrong = self._misplaced(line, group)
                if wrong is not None:
                    self._damaged(start, start_line, wrong)
                    return
                group.append(line)
                if len(group) == group[0].tx_size:
                    yield group
                    self.offset, self.line, self.last = position, number, line.position
                    group = []
                    start, start_line = position, number + 1
        if problem is None and group:
            head = group[0]
            problem = (
                f"the transaction at position {head.tx} has {len(group)} of its "
                f"{head.tx_size} lines"
            )
        if problem is not None:
            self.tail = Tail(start, start_line, problem, torn=True)

    def _misplaced(self, line: Line, group: list[Line]) -> str | None:
        where = f"line {line.number} (position {line.position})"
        previous = group[-1].position if group else self.last
        if line.position <= previous:
            return f"{where} follows position {previous}: out of order"
        if not group:
            if line.tx != line.position:
                return f"{where} starts a transaction but names tx {line.tx}"
            return None
        head = group[0]
        if (line.tx, line.tx_size) != (head.tx, head.tx_size):
            return (
                f"{where} belongs to another transaction than the one at position "
                f"{head.tx}, which has {len(group)} of its {head.tx_size} lines"
            )
        return None

    def _damaged(self, offset: int, line: int, reason: str) -> None:
        self.tail = Tail(offset, line, reason, torn=False)


class Journal:
    """The ``log.jsonl`` of one store directory: appends, recovery, comparison."""

    def __init__(self, directory: Path) -> None:
        if not directory.exists():
            directory.mkdir(exist_ok=True)
            _fsync_directory(directory.parent)
        self.directory = directory
        self.path = directory / LOG_FILE
        self._thread_lock = threading.Lock()
        self._lock_fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
        self._fd: int | None = None
        self._size = -1
        """Bytes of the file known whole (-1: unknown, read it all again)."""
        self._lines = 0
        self._last = 0
        """The position of the file's last event."""

    def close(self) -> None:
        """Closes the file and the lock file."""
        with self._thread_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = -1

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Excludes every other writer of the file, in this process and others."""
        with self._thread_lock:
            if self._lock_fd < 0:
                msg = f"the store at {self.directory} is closed"
                raise RuntimeError(msg)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    # ---- writing ---------------------------------------------------------------

    def sync(self, recorder: LogRecorder) -> None:
        """Under the lock, before a write: takes in what other processes
        appended since, repairing what one that died left."""
        fd = self._file()
        size = os.fstat(fd).st_size
        if size == self._size:
            return
        if self._size < 0 or size < self._size or not self._ends_line(fd):
            self._reconcile(recorder, Reader(self.path, offset=0, line=0, last=0))
        else:
            reader = Reader(
                self.path, offset=self._size, line=self._lines, last=self._last
            )
            self._reconcile(recorder, reader)

    def _ends_line(self, fd: int) -> bool:
        return self._size == 0 or os.pread(fd, 1, self._size - 1) == b"\n"

    def append(
        self,
        recorder: LogRecorder,
        events: Sequence[StoredEvent],
        positions: Sequence[int],
    ) -> None:
        """Under the lock, after the index committed: the transaction's lines,
        after any events a writer that died between the two left out."""
        missing: Iterable[bytes] = ()
        if positions[0] != self._last + 1:
            missing = self._recovered(recorder, self._last, before=positions[0])
        tx, size = positions[0], len(positions)
        lines = b"".join(
            render(position, tx, size, event)
            for position, event in zip(positions, events, strict=True)
        )
        self._write(chain(missing, [lines]), positions[-1])

    def _write(self, chunks: Iterable[bytes], last: int) -> None:
        """Appends whole lines, each chunk in one write, then fsyncs."""
        fd = self._file()
        known, self._size = self._size, -1  # unknown until the write is done
        assert known >= 0
        written = lines = 0
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                done = os.write(fd, view)
                view = view[done:]
                written += done
            lines += chunk.count(b"\n")
        os.fsync(fd)
        self._size = known + written
        self._lines += lines
        self._last = last

    def _recovered(
        self, recorder: LogRecorder, after: int, *, before: int | None
    ) -> Iterator[bytes]:
        """The lines of the index's events after ``after`` (and before
        ``before``), as one transaction, a page at a time; logs how many."""
        statement = "SELECT COUNT(*), MIN(rowid) FROM stored_events WHERE rowid > ?"
        params: list[int] = [after]
        if before is not None:
            statement += " AND rowid < ?"
            params.append(before)
        count, first = recorder.fetch_one(statement, params)
        if not count:
            return
        logger.warning(
            "%s: appending %d events that index.db committed but the file does "
            "not hold (a writer stopped between the two, or the file was lost)",
            self.path,
            count,
        )
        upto = None if before is None else before - 1
        page: list[bytes] = []
        for row in _index_rows(recorder, after, upto=upto):
            page.append(render(row.id, first, count, row))
            if len(page) >= PAGE:
                yield b"".join(page)
                page.clear()
        if page:
            yield b"".join(page)

    def _file(self) -> int:
        if self._fd is None:
            created = not self.path.exists()
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
            if created:
                os.fsync(self._fd)
                _fsync_directory(self.directory)
            self._size = -1
        return self._fd

    # ---- recovery ----------------------------------------------------------------

    def recover(self, recorder: LogRecorder) -> None:
        """On open: the file checked against the index and repaired."""
        with self.locked():
            self._file()
            self._reconcile(recorder, Reader(self.path, offset=0, line=0, last=0))

    def _reconcile(self, recorder: LogRecorder, reader: Reader) -> None:
        """Compares the file from the reader's start with the index, copies
        into the index what only the file holds, cuts a torn tail off, and
        appends what only the index holds."""
        copied = 0
        only_file = only_index = False
        with ExitStack() as stack:
            cursor: Any = None
            batch: list[Line] = []
            for line, row in _pairs(recorder, reader):
                if line is not None and row is not None:
                    if only_file or only_index:
                        raise _conflict(self.path, _gap(line.position))
                    differs = _differences(line, row)
                    if differs:
                        raise _conflict(self.path, _differ(line, differs))
                elif line is not None:
                    if only_index:
                        raise _conflict(self.path, _gap(line.position))
                    only_file = True  # the file goes on past the index
                    batch.append(line)
                    if len(batch) >= PAGE:
                        cursor = cursor or stack.enter_context(
                            recorder.write_transaction()
                        )
                        copied += _insert(cursor, batch)
                elif row is not None:
                    if only_file:
                        raise _conflict(self.path, _gap(row.id))
                    only_index = True  # the index goes on past the file
            tail = reader.tail
            if tail is not None and not tail.torn:
                raise _conflict(
                    self.path, f"damaged from line {tail.line} on: {tail.reason}"
                )
            if batch:
                cursor = cursor or stack.enter_context(recorder.write_transaction())
                copied += _insert(cursor, batch)
        if copied:
            logger.warning(
                "%s: copied %d events that only log.jsonl held into index.db (it "
                "was deleted or restored from an older backup); those sealed with "
                "keys it does not hold read as redacted",
                self.directory,
                copied,
            )
        fd = self._file()
        if tail is not None:
            logger.warning(
                "%s: cut off an unfinished write from line %d on (%s)",
                self.path,
                tail.line,
                tail.reason,
            )
            os.ftruncate(fd, tail.offset)
            os.fsync(fd)
        self._size, self._lines, self._last = reader.offset, reader.line, reader.last
        head = recorder.fetch_one("SELECT MAX(rowid) FROM stored_events", ())[0]
        if head is not None and head > self._last:
            self._write(self._recovered(recorder, self._last, before=None), head)

    # ---- verification --------------------------------------------------------------

    def problems(self, recorder: LogRecorder) -> list[str]:
        """Where the file and the index differ, line by line."""
        found: list[str] = []
        only_file: list[int] = []
        only_index: list[int] = []
        with self.locked():
            if not self.path.exists():
                return [f"{self.path} is missing"]
            reader = Reader(self.path, offset=0, line=0, last=0)
            for line, row in _pairs(recorder, reader):
                if line is not None and row is not None:
                    differs = _differences(line, row)
                    if differs:
                        found.append(f"{self.path}: {_differ(line, differs)}")
                elif line is not None:
                    _extend(only_file, line.position)
                elif row is not None:
                    _extend(only_index, row.id)
        found = found[:MAX_PROBLEMS]
        if only_file:
            found.append(
                f"{self.path}: {only_file[2]} events are not in index.db "
                f"(positions {_span(only_file)})"
            )
        if only_index:
            found.append(
                f"{self.path}: {only_index[2]} events of index.db are not in the "
                f"file (positions {_span(only_index)})"
            )
        if reader.tail is not None:
            found.append(
                f"{self.path}: from line {reader.tail.line} on: {reader.tail.reason}"
            )
        return found


class JsonlRecorder(LogRecorder):
    """The SQLite recorder, whose every write also lands in ``log.jsonl``."""

    backend = "jsonl"
    journal: Journal

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Commits to the index, then appends to the file, holding its lock."""
        if not stored_events:
            return super().insert_events(stored_events, **kwargs)
        with self.journal.locked():
            self.journal.sync(self)
            positions = super().insert_events(stored_events, **kwargs)
            assert positions is not None
            self.journal.append(self, stored_events, positions)
        return positions

    def file_problems(self) -> list[str]:
        """Where ``log.jsonl`` and the index differ (for verify)."""
        return self.journal.problems(self)


class JsonlFactory(Factory):
    """The SQLite factory for ``index.db``, recovering ``log.jsonl`` beside it."""

    application_recorder_class = JsonlRecorder

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        directory = self.env.get(JSONL_DIR)
        if not directory:
            msg = f"the jsonl backend needs {JSONL_DIR}"
            raise ValueError(msg)
        self.journal = Journal(Path(directory))

    def application_recorder(self) -> JsonlRecorder:
        recorder = super().application_recorder()
        assert isinstance(recorder, JsonlRecorder)
        recorder.journal = self.journal
        try:
            self.journal.recover(recorder)
        except BaseException:
            self.close()
            raise
        return recorder

    def close(self) -> None:
        super().close()
        self.journal.close()


def _pairs(
    recorder: LogRecorder, reader: Reader
) -> Iterator[tuple[Line | None, Notification | None]]:
    """The file's events beside the index's, by position: (line, row) where
    both hold it, else one of them with None."""
    rows = _index_rows(recorder, reader.last, upto=None)
    row = next(rows, None)
    for transaction in reader.transactions():
        for line in transaction:
            while row is not None and row.id < line.position:
                yield None, row
                row = next(rows, None)
            if row is not None and row.id == line.position:
                yield line, row
                row = next(rows, None)
            else:
                yield line, None
    while row is not None:
        yield None, row
        row = next(rows, None)


def _index_rows(
    recorder: LogRecorder, after: int, *, upto: int | None
) -> Iterator[Notification]:
    """The index's events after a position, a page per read transaction."""
    while True:
        with recorder.read_transaction() as cursor:
            page = recorder.notifications_after(cursor, after, upto=upto, limit=PAGE)
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1].id


def _insert(cursor: Any, lines: list[Line]) -> int:
    cursor.executemany(
        "INSERT INTO stored_events "
        "(rowid, originator_id, originator_version, topic, state) "
        "VALUES (?, ?, ?, ?, ?)",
        [(x.position, x.stream.hex, x.version, x.topic, x.state) for x in lines],
    )
    count = len(lines)
    lines.clear()
    return count


def _differences(line: Line, row: Notification) -> list[str]:
    pairs = (
        ("stream", line.stream, row.originator_id),
        ("version", line.version, row.originator_version),
        ("topic", line.topic, row.topic),
        ("state", line.state, bytes(row.state)),
    )
    return [name for name, mine, theirs in pairs if mine != theirs]


def _differ(line: Line, fields: list[str]) -> str:
    return (
        f"line {line.number} (position {line.position}) differs from index.db "
        f"in {', '.join(fields)}"
    )


def _gap(position: int) -> str:
    return (
        f"position {position} is in one of log.jsonl and index.db only, and the "
        "other goes on past it"
    )


def _conflict(path: Path, what: str) -> IntegrityViolation:
    return IntegrityViolation(
        f"{path}: {what}. The file and the index of this store disagree: one was "
        "altered or comes from another store. Restore the altered one from a "
        "backup (store.verify() on an open store lists every difference)"
    )


def _extend(span: list[int], position: int) -> None:
    """Widens [first, last, count] to take in a position."""
    if span:
        span[1], span[2] = position, span[2] + 1
    else:
        span[:] = [position, position, 1]


def _span(span: list[int]) -> str:
    first, last, _count = span
    return str(first) if first == last else f"{first}..{last}"


def _fsync_directory(directory: Path) -> None:
    """Makes a file's creation (its directory entry) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
