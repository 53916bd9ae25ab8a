"""Views a store hands out: the past, read-only; and its read models' controls."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import InterfaceError, OperationalError

from mnemolog.domain.errors import ValidationError
from mnemolog.models import Memory, MemoryEvent, NamespaceInfo
from mnemolog.projections.projector import ProjectionStatus, Projector, RebuildProgress

if TYPE_CHECKING:
    from mnemolog.adapters.log import Log
    from mnemolog.store import MemoryStore


class PointInTimeView:
    """A read-only view of one tenant as it stood at an instant or log position."""

    def __init__(self, store: MemoryStore, tenant: str) -> None:
        self._store = store.tenant(tenant)
        self._owner = store

    def get(self, namespace: str, key: str, **kwargs: Any) -> Memory | None:
        """As :meth:`MemoryStore.get`, at that point."""
        return self._store.get(namespace, key, **kwargs)

    def search(self, **kwargs: Any) -> list[Memory]:
        """As :meth:`MemoryStore.search`, at that point."""
        return self._store.search(**kwargs)

    def list_namespaces(self, **kwargs: Any) -> list[NamespaceInfo]:
        """As :meth:`MemoryStore.list_namespaces`, at that point."""
        return self._store.list_namespaces(**kwargs)

    def history(self, namespace: str, key: str) -> list[MemoryEvent]:
        """As :meth:`MemoryStore.history`, up to that point."""
        return self._store.history(namespace, key)

    def close(self) -> None:
        """Frees the replayed state."""
        self._owner.close()

    def __enter__(self) -> PointInTimeView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Projections:
    """The read models of a store: where each stands, catching up, rebuilding."""

    def __init__(self, projector: Projector, log: Log) -> None:
        self._projector = projector
        self._log = log

    @property
    def names(self) -> list[str]:
        """The projections of this store."""
        return [p.name for p in self._projector.projections]

    def status(self) -> list[ProjectionStatus]:
        """Per projection: its log position, the log's head, and the lag."""
        return self._projector.status()

    def catch_up(self, names: Sequence[str] | None = None) -> dict[str, int]:
        """Applies events recorded without being projected; how many, per
        projection (every one, or the named ones)."""
        return self._projector.catch_up(self._names(names))

    def head(self) -> int:
        """The position of the newest event in the log (0 if it is empty)."""
        with self._log.read_transaction() as cursor:
            return self._log.head_position(cursor)

    def follow(
        self,
        names: Sequence[str] | None = None,
        *,
        stop: threading.Event | None = None,
        poll_interval: float = 1.0,
        on_pass: Callable[[dict[str, int]], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        """Runs as a projection worker until ``stop`` is set: applies new
        events to every projection (or the named ones) as they are recorded.

        On PostgreSQL it sleeps until a write NOTIFYs the log's channel, or
        ``poll_interval`` seconds pass; if the listening connection drops it
        polls every ``poll_interval`` until it listens again, so no event is
        missed for long. On SQLite it polls. Any number of workers may run:
        each projection's position is taken under a row lock, so no event is
        applied twice. ``on_pass`` gets the counts of each pass that applied
        something. Lost connections and other operational errors of the
        database do not stop it: it reports them to ``on_error``, waits
        ``poll_interval`` and goes on from the recorded positions.
        """
        if poll_interval <= 0:
            raise ValidationError("poll_interval", "must be > 0 seconds")
        wanted = self._names(names)
        stop = stop or threading.Event()
        listener = self._log.listener()
        try:
            while not stop.is_set():
                try:
                    applied = self._projector.catch_up(wanted)
                except (OperationalError, InterfaceError) as e:
                    # A dropped connection, a restart, a failover, a deadlock
                    # with a rebuild: nothing was half-applied (each page is
                    # one transaction). Wait, then carry on from the positions.
                    if on_error is not None:
                        on_error(e)
                    stop.wait(poll_interval)
                    continue
                if any(applied.values()):
                    if on_pass is not None:
                        on_pass(applied)
                    continue  # more may have come meanwhile
                listener.wait(poll_interval)
        finally:
            listener.close()

    def wait(
        self,
        position: int | None = None,
        *,
        names: Sequence[str] | None = None,
        timeout: float = 10.0,
    ) -> int:
        """Blocks until every projection (or the named ones) has applied the
        log up to ``position`` (default: the head of the log now); returns the
        lowest position reached. Checks every few milliseconds, so it returns
        soon after a worker gets there; raises TimeoutError after ``timeout``
        seconds."""
        wanted = set(self._names(names) or self.names)
        target = self.head() if position is None else position
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while True:
            rows = self._log.fetch_all(
                "SELECT application_name, notification_id FROM tracking", ()
            )
            positions = {name: int(at or 0) for name, at in rows}
            reached = min(positions.get(name, 0) for name in wanted)
            if reached >= target:
                return reached
            if time.monotonic() >= deadline:
                msg = (
                    f"read models reached position {reached}, not {target}, "
                    f"within {timeout}s: is a projection worker running?"
                )
                raise TimeoutError(msg)
            time.sleep(delay)
            delay = min(delay * 2, 0.005)

    def _names(self, names: Sequence[str] | None) -> list[str] | None:
        if names is None:
            return None
        if isinstance(names, str):
            names = [names]
        unknown = [name for name in names if name not in self.names]
        if unknown:
            known = ", ".join(self.names)
            raise ValidationError(
                "names", f"unknown projection(s) {', '.join(unknown)}; known: {known}"
            )
        return list(names)

    def rebuild(
        self,
        name: str | None = None,
        *,
        progress: Callable[[RebuildProgress], None] | None = None,
    ) -> list[ProjectionStatus]:
        """Rebuilds one projection (or every one) from the log.

        Rows are built in shadow tables and swapped in by one transaction, so
        readers never see a half-built read model and a failed rebuild leaves
        the old one in place.
        """
        if name is not None and name not in self.names:
            known = ", ".join(self.names)
            raise ValidationError(
                "name", f"unknown projection {name!r}; known: {known}"
            )
        return self._projector.rebuild(name, progress=progress)
