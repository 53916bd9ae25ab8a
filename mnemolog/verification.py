"""Proof that the log was not edited: hash chains and read models checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.persistence import Mapper

from mnemolog.adapters.log import Log
from mnemolog.domain.chain import GENESIS_HASH
from mnemolog.domain.document import Document
from mnemolog.domain.erasure import Erasure
from mnemolog.domain.memory import Memory
from mnemolog.domain.session import Session
from mnemolog.projections.projector import PAGE_SIZE, Projector

MAX_PROBLEMS = 20


@dataclass(frozen=True)
class VerifyReport:
    """What verify checked and what it found wrong, first problem first."""

    events: int
    streams: int
    projections_checked: tuple[str, ...]
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """True when nothing was found wrong."""
        return not self.problems


def verify(
    recorder: Log,
    mapper: Mapper[Any],
    projector: Projector,
    *,
    projections: bool = True,
) -> VerifyReport:
    """Checks every stream's hash chain, and each read model against a rebuild."""
    problems: list[str] = []
    versions: dict[UUID, int] = {}
    digests: dict[UUID, str] = {}
    redacted: set[str] = set()
    erasures = Erasures()
    position = events = 0
    while True:
        with recorder.read_transaction() as cursor:
            page = recorder.notifications_after(
                cursor, position, upto=None, limit=PAGE_SIZE
            )
        for notification in page:
            position = notification.id
            events += 1
            stream = notification.originator_id
            assert isinstance(stream, UUID)
            version = notification.originator_version
            where = f"log position {position} (stream {stream}, version {version})"
            try:
                event = mapper.to_domain_event(notification)
            except Exception as e:  # a corrupted payload is a finding, not a crash
                problems.append(f"{where}: cannot be read: {e}")
                continue
            expected_version = versions.get(stream, 0) + 1
            if version != expected_version:
                problems.append(
                    f"{where}: expected version {expected_version} of its stream"
                )
            if isinstance(
                event, Memory.Redacted | Session.Redacted | Document.Redacted
            ):
                redacted.add(stream.hex)
            elif isinstance(event, Erasure.Erased):
                erasures.saw(event)
            prev_hash = getattr(event, "prev_hash", None)
            if prev_hash is not None:
                expected = digests.get(stream, GENESIS_HASH)
                if prev_hash != expected:
                    problems.append(
                        f"{where}: prev_hash does not match the digest of the event "
                        "before it; that event, or this one, was altered"
                    )
                digests[stream] = event.digest()  # type: ignore[attr-defined]
            versions[stream] = version
        if len(page) < PAGE_SIZE:
            break
    if isinstance(recorder, FileLog):
        problems += recorder.file_problems()
    problems += _heads(recorder, digests, versions)
    problems += erasures.check(recorder, redacted)
    checked: tuple[str, ...] = ()
    if projections:
        checked = tuple(p.name for p in projector.projections)
        problems += projector.differences()
    return VerifyReport(events, len(versions), checked, tuple(problems[:MAX_PROBLEMS]))


@runtime_checkable
class FileLog(Protocol):
    """A recorder that also keeps the log in a file (``jsonl://``)."""

    def file_problems(self) -> list[str]:
        """Where the file and the events checked above differ."""
        ...


class Erasures:
    """What the log says was erased, against the keys that are gone and the
    record each erasure left beside the log."""

    def __init__(self) -> None:
        self.streams: set[str] = set()
        self.digests: dict[str, str] = {}

    def saw(self, event: Erasure.Erased) -> None:
        self.streams.update(event.streams)
        self.digests[event.originator_id.hex] = event.digest()

    def check(self, recorder: Log, redacted: set[str]) -> list[str]:
        problems = [
            f"stream {UUID(hex=s)}: its events cannot be opened (their key is "
            "gone) but no erasure in the log names it: keys were deleted outside "
            "erase"
            for s in sorted(redacted - self.streams)
        ]
        recorded = recorder.fetch_all(
            "SELECT DISTINCT erasure_id, erasure_digest FROM erased_streams", ()
        )
        for erasure_id, digest in recorded:
            if self.digests.get(erasure_id) != digest:
                problems.append(
                    f"erasure {UUID(hex=erasure_id)}: its Erased event differs from "
                    "the one recorded when the erasure was done (or is missing)"
                )
        missing = set(self.digests) - {str(r[0]) for r in recorded}
        problems += [
            f"erasure {UUID(hex=e)}: in the log but not recorded beside it"
            for e in sorted(missing)
        ]
        return problems


def _heads(
    recorder: Log, digests: dict[UUID, str], versions: dict[UUID, int]
) -> list[str]:
    """The newest event of a stream has no successor to vouch for it; the
    current-state row (a document's row) recorded its digest when it was
    written."""
    problems = []
    rows = recorder.fetch_all(
        "SELECT id, version, head_hash FROM memories "
        "UNION ALL SELECT id, version, head_hash FROM documents",
        (),
    )
    for memory_id, version, head_hash in rows:
        stream = UUID(memory_id)
        if digests.get(stream) != head_hash or versions.get(stream) != version:
            problems.append(
                f"stream {stream} version {versions.get(stream)}: the newest event "
                f"differs from version {version} as recorded when it was written"
            )
    return problems
