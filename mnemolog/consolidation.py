"""Consolidation: finding the duplicates and conflicts in a namespace, and
merging each group into one memory.

Two live memories of a namespace belong together when they hold the same
content (same content hash: duplicates), or when their keys are of one
family (the same key once case, spaces and punctuation are set aside, such as
``user_theme`` and ``User-Theme``: conflicts). Groups are closed under both
relations. Each group is merged into its most recently updated member, the
target: a ``Consolidated`` event on the target names the sources, and each
source gets a ``Superseded`` event naming the target (a soft delete), in one
transaction per group.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from mnemolog.domain.errors import ValidationError
from mnemolog.models import Memory

STRATEGIES = ("latest_wins", "merge_metadata", "llm_based")

Merge = Callable[[list[Memory]], Mapping[str, Any]]
"""Given a group's memories, oldest first, returns the target's new fields:
``value`` (required) and optionally ``tags``, ``metadata``, ``importance``,
``confidence``, ``memory_type``."""

MERGE_FIELDS = frozenset(
    {"value", "tags", "metadata", "importance", "confidence", "memory_type"}
)

_SEPARATORS = re.compile(r"[\W_]+")


def key_family(key: str) -> str:
    """The default family of a key: casefolded, without spaces or punctuation."""
    return _SEPARATORS.sub("", key.casefold()) or key


class ConsolidatedGroup(BaseModel):
    """One merge: the sources folded into the target, and why they matched."""

    model_config = ConfigDict(frozen=True)

    target: str
    """The key of the memory that holds the merged state."""
    sources: tuple[str, ...]
    """The keys superseded by it."""
    reasons: tuple[Literal["duplicate", "family"], ...]
    version: int
    """The target's version after the merge (0 in a dry run)."""


class Consolidation(BaseModel):
    """What one ``consolidate`` call found and did."""

    model_config = ConfigDict(frozen=True)

    namespace: str
    strategy: str
    examined: int
    """Live memories in the namespace."""
    groups: tuple[ConsolidatedGroup, ...]
    superseded: int
    """Memories merged away (0 in a dry run)."""
    dry_run: bool


def check_strategy(strategy: object, merge: object) -> tuple[str, Merge | None]:
    """The strategy's name and, for ``llm_based`` or a callable, the merge."""
    if callable(strategy):
        # Never a built-in's name: the name decides how fields are merged.
        return f"custom:{getattr(strategy, '__name__', 'merge')}", strategy
    if strategy not in STRATEGIES:
        raise ValidationError(
            "strategy", f"must be one of {', '.join(STRATEGIES)}, or a callable"
        )
    if strategy == "llm_based":
        if merge is None:
            raise ValidationError(
                "merge",
                "the llm_based strategy needs a merge callable (memories -> "
                "fields), given as consolidate(merge=...) or Settings.consolidator; "
                "none is configured",
            )
        if not callable(merge):
            raise ValidationError("merge", "must be a callable (memories -> fields)")
        return "llm_based", merge
    if merge is not None:
        raise ValidationError("merge", f"is only used by llm_based, not {strategy}")
    return str(strategy), None


def find_groups(
    memories: Sequence[Memory], family: Callable[[str], str]
) -> list[tuple[list[Memory], set[str]]]:
    """Groups of two or more memories (oldest update first) and why."""
    parent = list(range(len(memories)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    reasons: dict[tuple[int, int], str] = {}
    for kind, label in (("duplicate", "content"), ("family", "key")):
        first: dict[str, int] = {}
        for i, memory in enumerate(memories):
            mark = memory.content_hash if label == "content" else family(memory.key)
            if not isinstance(mark, str):
                raise ValidationError("family", "must return a string for each key")
            j = first.setdefault(mark, i)
            if j != i:
                a, b = root(i), root(j)
                if a != b:
                    parent[a] = b
                reasons[(i, j)] = kind
    members: dict[int, list[int]] = {}
    for i in range(len(memories)):
        members.setdefault(root(i), []).append(i)
    groups = []
    for indexes in members.values():
        if len(indexes) < 2:
            continue
        chosen = set(indexes)
        why = {kind for (i, j), kind in reasons.items() if i in chosen}
        ordered = sorted(
            (memories[i] for i in indexes), key=lambda m: (m.updated_at, m.key)
        )
        groups.append((ordered, why))
    groups.sort(key=lambda group: group[0][-1].key)
    return groups


def merged_fields(
    strategy: str, group: list[Memory], merge: Merge | None
) -> dict[str, Any]:
    """The target's new fields, as put arguments (the target is the last)."""
    if strategy == "latest_wins":
        return {}
    if strategy == "merge_metadata":
        metadata: dict[str, Any] = {}
        for memory in group:  # oldest first: newer values win
            metadata.update(memory.metadata)
        tags = sorted(set().union(*(memory.tags for memory in group)))
        return {
            "metadata": metadata,
            "tags": tags,
            "importance": max(m.importance for m in group),
            "confidence": max(m.confidence for m in group),
        }
    assert merge is not None
    result = merge(list(group))
    if not isinstance(result, Mapping):
        raise ValidationError("merge", "must return a mapping of fields")
    unknown = set(result) - MERGE_FIELDS
    if unknown:
        names = ", ".join(sorted(map(str, unknown)))
        raise ValidationError("merge", f"returned unknown field(s): {names}")
    if "value" not in result:
        raise ValidationError("merge", "must return the merged 'value'")
    return dict(result)
