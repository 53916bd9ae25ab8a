"""mnemolog: an event-sourced memory store for AI agents.

Every put, update and delete is an immutable event in an append-only log;
versions, history and time travel come from the log, and read models built
from it answer queries.
"""

from __future__ import annotations

from typing import Any

from mnemolog.access import Grant, Policy, Principal
from mnemolog.adapters.cipher import new_key
from mnemolog.aio import AsyncMemoryStore
from mnemolog.config import DEFAULT_URL, Settings
from mnemolog.documents import Document
from mnemolog.domain.errors import (
    AccessDenied,
    IntegrityViolation,
    MnemologError,
    NotFound,
    ProjectionError,
    QuotaExceeded,
    TenantMismatch,
    ValidationError,
    VersionConflict,
)
from mnemolog.embedders import Embedder, FunctionEmbedder, SentenceTransformerEmbedder
from mnemolog.models import (
    AuditEntry,
    ErasureReport,
    Memory,
    MemoryEvent,
    NamespaceInfo,
    Scored,
)
from mnemolog.quotas import Limits, Quotas
from mnemolog.store import MemoryStore
from mnemolog.verification import VerifyReport

__all__ = [
    "AccessDenied",
    "Grant",
    "Policy",
    "Principal",
    "QuotaExceeded",
    "Quotas",
    "Limits",
    "AuditEntry",
    "NamespaceInfo",
    "VerifyReport",
    "DEFAULT_URL",
    "Document",
    "AsyncMemoryStore",
    "Embedder",
    "ErasureReport",
    "FunctionEmbedder",
    "Scored",
    "SentenceTransformerEmbedder",
    "IntegrityViolation",
    "Memory",
    "MemoryEvent",
    "MemoryStore",
    "MnemologError",
    "NotFound",
    "ProjectionError",
    "Settings",
    "TenantMismatch",
    "ValidationError",
    "VersionConflict",
    "new_key",
    "open",
    "open_async",
]


def open(url: str | None = None, **settings: Any) -> MemoryStore:  # noqa: A001
    """Opens the store at ``url`` (default: ``sqlite:///mnemolog.db``).

    Keyword arguments are fields of :class:`Settings`.
    """
    return MemoryStore.open(url, settings=Settings(**settings))


def open_async(url: str | None = None, **settings: Any) -> AsyncMemoryStore:
    """Opens the store at ``url`` with every method a coroutine."""
    return AsyncMemoryStore(open(url, **settings))
