"""Views a store hands out: the past, read-only; and its read models' controls."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mnemolog.domain.errors import ValidationError
from mnemolog.models import Memory, MemoryEvent, NamespaceInfo
from mnemolog.projections.projector import ProjectionStatus, Projector, RebuildProgress

if TYPE_CHECKING:
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

    def __init__(self, projector: Projector) -> None:
        self._projector = projector

    @property
    def names(self) -> list[str]:
        """The projections of this store."""
        return [p.name for p in self._projector.projections]

    def status(self) -> list[ProjectionStatus]:
        """Per projection: its log position, the log's head, and the lag."""
        return self._projector.status()

    def catch_up(self) -> dict[str, int]:
        """Applies events recorded without being projected; how many, per projection."""
        return self._projector.catch_up()

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
