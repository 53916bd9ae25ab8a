"""Helpers shared by the domain tests: a settable clock and a memory factory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from mnemolog.domain.memory import Memory, Provenance
from mnemolog.domain.values import content_hash, encode_value


class FakeClock:
    """Stands in for the events' create_timestamp; moves only when told to."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, when: datetime) -> datetime:
        self.now = when
        return self.now


T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def start_memory(
    *,
    tenant: str = "acme",
    namespace: str = "user:alice",
    key: str = "favourite-colour",
    value: Any = "blue",
    memory_type: str = "semantic",
    tags: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    importance: float = 0.5,
    confidence: float = 0.9,
    actor: str | None = "alice",
    task_id: str | None = "task-1",
    source: str | None = "chat",
    reason: str | None = "told us",
) -> Memory:
    """A new Memory with its Created event still pending."""
    wire = encode_value(value)
    return Memory.start(
        tenant=tenant,
        namespace=namespace,
        key=key,
        value=wire,
        content_hash=content_hash(wire),
        memory_type=memory_type,
        tags=["colour", "pref"] if tags is None else tags,
        metadata={"lang": "en"} if metadata is None else metadata,
        importance=importance,
        confidence=confidence,
        provenance=Provenance(
            actor=actor, task_id=task_id, source=source, reason=reason
        ),
    )


def value_change(value: Any) -> dict[str, Any]:
    """The changes that set a new value: its wire form and its content hash."""
    wire = encode_value(value)
    return {"value": wire, "content_hash": content_hash(wire)}
