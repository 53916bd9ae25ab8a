"""What the store needs of a backend's recorder: the log, its positions, and
one-statement reads of the read models beside it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from sqlalchemy.engine import Dialect

from mnemolog.projections.projector import LogAccess, Projector

if TYPE_CHECKING:
    from mnemolog.adapters.keyring import Keyring
from mnemolog.projections.sql import DbCursor


class Listener(Protocol):
    """Wakes a projection worker when the log may have grown."""

    reconnects: int

    def wait(self, timeout: float) -> bool: ...

    def close(self) -> None: ...


class Log(LogAccess, Protocol):
    """A recorder of the SQLite or the PostgreSQL backend: what the projector
    needs (``LogAccess``), and what the store needs besides.

    Statements given to ``fetch_one`` and ``fetch_all`` use ``?`` placeholders
    with a sequence of parameters, or the dialect's named ones with a mapping.
    """

    projector: Projector | None
    project_inline: bool
    sql_dialect: Dialect
    backend: str
    keyring: Keyring | None

    def fetch_one(self, statement: str, params: Any) -> Any: ...

    def fetch_all(self, statement: str, params: Any) -> list[Any]: ...

    def close_readers(self) -> None: ...

    def after_erasure(self) -> None:
        """Leaves no copy of erased rows in the files where the backend can."""

    def select_streams(
        self, originator_ids: Sequence[UUID], *, after: Mapping[UUID, int] | None = None
    ) -> list[StoredEvent]: ...

    def latest_snapshot(
        self, originator_id: UUID, *, upto: int
    ) -> StoredEvent | None: ...

    def latest_snapshots(self, originator_ids: Sequence[UUID]) -> list[StoredEvent]: ...

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]: ...

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None: ...

    def ensure_tracked(self, cursor: DbCursor, name: str) -> None: ...

    def listener(self) -> Listener: ...

    def create_read_models(
        self, statements: Sequence[str], names: Sequence[str]
    ) -> None: ...
