"""The hash chain: each event carries the digest of the one before it in its stream.

A digest covers the event exactly as it is stored (topic, stream id, version and
its JSON state before any upcasting), so it can be recomputed from the log alone
and stays stable when an event class later gains a version.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from mnemolog.domain.values import canonical_json, sha256_hex

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the first event of every stream."""

STORED_DIGEST = "_stored_digest"
"""Key under which the mapper leaves the digest of an event read from the log."""


def event_digest(
    topic: str, originator_id: UUID, version: int, state: Mapping[str, Any]
) -> str:
    """SHA-256 over the canonical JSON of one stored event.

    Datetimes in the state are written as the log's codec writes them (orjson's
    RFC 3339), so the digest of an event read back equals the one written.
    """
    fields = {k: v for k, v in state.items() if k != STORED_DIGEST}
    return sha256_hex(
        canonical_json(
            {
                "topic": topic,
                "id": originator_id.hex,
                "version": version,
                "state": fields,
            }
        )
    )


def digest_of(event: Any) -> str:
    """The digest of a domain event as the codec stores it (see ChainedMapper).

    Computed once and kept on the event, under a key the codec never stores.
    """
    cached = event.__dict__.get(STORED_DIGEST)
    if isinstance(cached, str):
        return cached
    state = dict(vars(event))
    originator_id = state.pop("originator_id")
    version = state.pop("originator_version")
    class_version = getattr(type(event), "class_version", 1)
    if class_version > 1:
        state["class_version"] = class_version
    digest = event_digest(get_topic(type(event)), originator_id, version, state)
    event.__dict__[STORED_DIGEST] = digest
    return digest


@dataclass(frozen=True)
class ChainBreak:
    """The first event whose ``prev_hash`` does not match its predecessor."""

    originator_id: UUID
    version: int
    expected: str
    found: str


def find_chain_break(
    links: Iterable[tuple[UUID, int, str, str]],
) -> ChainBreak | None:
    """Checks (id, version, prev_hash, digest) links of one stream, in order."""
    expected = GENESIS_HASH
    for originator_id, version, prev_hash, digest in links:
        if prev_hash != expected:
            return ChainBreak(originator_id, version, expected, prev_hash)
        expected = digest
    return None
