"""The Erasure aggregate: the log's record that personal data was destroyed.

An erasure destroys the keys that seal a data subject's events (or one
memory's, or a whole tenant's) and records one event saying who erased, when,
why, and which streams lost their content. It holds no personal data: the
subject is named by nothing but the opaque stream ids it owned.
"""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from mnemolog.domain.chain import GENESIS_HASH, digest_of

SCOPES = ("memory", "subject", "tenant")
"""What one erasure covers."""


class Erasure(Aggregate):
    """One erasure, as a stream of a single event."""

    class Erased(Aggregate.Created):
        """Keys destroyed and read models purged, in one transaction."""

        kind: ClassVar[str] = "erased"

        tenant: str
        scope: str
        streams: list[str]
        """Hex ids of the memories and sessions whose content is gone."""
        keys: int
        """How many stream keys were destroyed."""
        actor: str | None
        reason: str | None
        prev_hash: str

        def digest(self) -> str:
            """This event's hash as stored."""
            return digest_of(self)

    def __init__(
        self,
        *,
        tenant: str,
        scope: str,
        streams: list[str],
        keys: int,
        actor: str | None,
        reason: str | None,
    ) -> None:
        self.tenant = tenant
        self.scope = scope
        self.streams = streams
        self.keys = keys
        self.actor = actor
        self.reason = reason

    @classmethod
    def record(
        cls,
        *,
        tenant: str,
        scope: str,
        streams: list[str],
        keys: int,
        actor: str | None,
        reason: str | None,
    ) -> Erasure:
        """A new erasure; triggers Erased."""
        assert scope in SCOPES, scope
        return cls._create(
            cls.Erased,
            id=uuid4(),
            tenant=tenant,
            scope=scope,
            streams=streams,
            keys=keys,
            actor=actor,
            reason=reason,
            prev_hash=GENESIS_HASH,
        )

    @staticmethod
    def stream_ids(event: Any) -> list[UUID]:
        """The streams an Erased event names."""
        return [UUID(hex=s) for s in event.streams]
