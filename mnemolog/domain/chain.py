"""The hash chain: each event carries the digest of the one before it in its stream.

A digest covers the event exactly as it is stored (topic, stream id, version and
its JSON state before any upcasting), so it can be recomputed from the log alone
and stays stable when an event class later gains a version.

An event that carries a ``salt`` is *sealed*: everything but its public fields
(time, link, tenant) is personal and is stored encrypted with its stream's key.
Its digest then covers the public fields and a commitment to the rest: the
SHA-256 of the personal fields with the salt, a random value stored only under
the same encryption. Destroying the key (erasure) leaves the commitment, so the
chain still verifies, while the salt makes the commitment useless for guessing
what the erased fields held.
"""

from __future__ import annotations

import secrets
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

PUBLIC_FIELDS = frozenset(
    {"timestamp", "prev_hash", "tenant", "class_version", "originator_topic"}
)
"""The fields of a sealed event stored in the clear: no personal data."""

SALT = "salt"
"""The field whose presence marks a sealed event (see the module's doc)."""

COMMIT = "commit"
"""The field of a stored sealed event holding the commitment to its sealed part."""


def new_salt() -> str:
    """A fresh salt for a sealed event: 128 random bits, in hex."""
    return secrets.token_hex(16)


def personal_fields(state: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a sealed event's state that is stored encrypted (with the salt)."""
    return {
        k: v for k, v in state.items() if k not in PUBLIC_FIELDS and k != STORED_DIGEST
    }


def commitment(state: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the personal fields, salt included."""
    return sha256_hex(canonical_json(personal_fields(state)))


def chained_view(state: Mapping[str, Any]) -> dict[str, Any]:
    """What the digest covers: a plain event whole; a sealed one (whether its
    personal fields are at hand, or only their stored commitment) as its
    public fields and the commitment."""
    if SALT in state:
        view = {k: v for k, v in state.items() if k in PUBLIC_FIELDS}
        view[COMMIT] = commitment(state)
        return view
    if COMMIT in state:
        return {k: v for k, v in state.items() if k in PUBLIC_FIELDS or k == COMMIT}
    return {k: v for k, v in state.items() if k != STORED_DIGEST}


def event_digest(
    topic: str, originator_id: UUID, version: int, state: Mapping[str, Any]
) -> str:
    """SHA-256 over the canonical JSON of one stored event.

    Datetimes in the state are written as the log's codec writes them (orjson's
    RFC 3339), so the digest of an event read back equals the one written.
    """
    fields = chained_view(state)
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


def fold_redacted(
    event: Any, aggregate: Any, cls: type[Any], blank: Mapping[str, Any]
) -> Any:
    """Folds an event whose sealed part is gone into ``aggregate`` (made when
    None): its version and hash advance, its state is ``blank``, erased."""
    if aggregate is None:
        aggregate = object.__new__(cls)
        aggregate.__base_init__(
            originator_id=event.originator_id,
            originator_version=0,
            timestamp=event.timestamp,
        )
    tenant = event.__dict__.get("tenant", getattr(aggregate, "tenant", ""))
    aggregate.__dict__.update(
        blank, tenant=tenant, deleted=True, erased=True, head_hash=event.digest()
    )
    aggregate._version = event.originator_version
    aggregate._modified_on = event.timestamp
    return aggregate


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
