"""Memory Vault V2 (``memory_vault_v2.py`` of TORI/KHA) on a mnemolog store.

``UnifiedMemoryVaultV2``, ``MemoryType`` and ``MemoryEntry`` keep the names,
arguments and return shapes of the vault they stand in for: ``initialize``,
``store``, ``retrieve``, ``search``, ``find_similar``, ``update``, ``delete``,
``stream_all``, ``export_memories``, ``import_memories``, ``consolidate``,
``get_statistics``, ``get_status``, ``save_all`` and ``shutdown``, every one a
coroutine. Each memory is one mnemolog memory, so every store, update and
delete is an event in the log, with its history and audit entry.

How the vault sits on the store:

- The store lives in ``storage_path``: ``sqlite:///<storage_path>/vault.db``
  (created with its directory). The config key ``url`` puts the vault on any
  other store URL (``memory://``, ``jsonl:///``, ``postgresql://``) instead.
  Memories live in the namespace ``app:memory_vault`` of the store's default
  tenant (config ``tenant`` names another; statistics count that tenant, so a
  vault sharing a store should have a tenant of its own).
- ``MemoryType`` values are mnemolog memory types; ``ghost`` and ``soliton``
  are added with ``extra_memory_types``.
- Working memory is capped by the store (``working_memory_cap`` =
  ``max_working_memory``): a store over the cap evicts the least recently
  *stored or updated* working memory (an ``Evicted`` event). Reading a
  working memory does not protect it, unlike the original's LRU by access.
- Ghost memories get a lifetime of ``ghost_memory_ttl`` seconds from when they
  are stored: once it ends no read or search sees them, and the vault's
  cleanup task (every ``cleanup_interval`` seconds, 60 by default; also
  ``get_statistics``, ``consolidate`` and ``save_all``) records their end in
  the log (``store.sweep()``).
- Importance decays when ``decay_enabled`` (the default): a memory's
  importance halves every half-life of its type, counted from its last store,
  update or read (``retrieve``, ``search`` without a ``query``, ``stream_all``
  and exports read; ``find_similar`` does not).
  Half-lives: episodic 7 days, semantic 69 days (the original's 0.99 a day),
  procedural 180 days, working 1 hour, ghost ``ghost_memory_ttl``; solitons
  never decay. The config key ``decay_half_lives`` (type to seconds, or None
  for no decay) overrides them. ``search(min_importance=)`` compares the
  decayed importance; ``memory.importance`` shows the importance as stored
  (a read refreshes it, so the decayed value right after a read is that one)
  and ``memory.decay_rate`` the decay per second (ln 2 / half-life; 0 without).
- Deduplication: a memory's id is the SHA-256 (hex) of the sorted-key JSON of
  its content, which is also the store's content hash. Storing content that
  is live in the vault already writes nothing and returns its id, across
  restarts and processes; the other arguments of that call are ignored (use
  ``update`` to change a memory). Content that was deleted, evicted or whose
  lifetime ended is stored anew under the same id. ``update`` of the content
  keeps the id.
- Embeddings: ``embedding_dim`` (config, default 128, the seed's examples)
  sizes the store's vector index; ``find_similar`` is ``store.similar`` with
  ``threshold`` as the minimum cosine similarity. The vector is also kept, as
  given (values and dtype), in the reserved metadata key ``$vault``, so
  ``memory.embedding`` and exports return it exactly; ``$vault`` also holds
  the ``timestamp`` and the tags given as ``tags=``. It never shows in
  ``memory.metadata``, and a caller's metadata may not use that key.
- Tags: a memory's tags are those given as ``tags=`` plus
  ``metadata['tags']`` (a string or a list of strings), as the seed's users
  write them; ``search(tags=)`` matches any of them. ``MemoryEntry`` adds a
  ``tags`` field (sorted) to the original's fields, so they can be read.

Where the original left things open, this module chooses:

- ``memory.timestamp`` is when the memory was first stored (epoch seconds),
  kept through exports. ``access_count`` and ``last_accessed`` count this
  vault object's reads (``retrieve``, ``search``, ``stream_all``), as the
  original's in-process caches did; they start again at each ``initialize``.
- ``search`` sorts by stored importance, highest first; with ``query`` it is a
  full-text search ranked by relevance (the original ignored ``query``).
  ``include_embeddings`` is accepted; results always carry their embeddings,
  as the original's did. ``tags=[]`` or None does not filter.
- ``update`` merges metadata, replaces ``tags=`` tags, keeps the embedding,
  and returns False for an id that is not live; ``delete`` is a soft delete
  (history kept) and returns False when there was nothing live to delete.
- ``consolidate`` runs the store's ``merge_metadata`` consolidation over the
  vault's namespace: memories whose content became equal (by ``update`` or an
  import under other ids) are merged into the most recently updated one
  (metadata merged, tags united, highest importance). It returns the
  original's keys: the sizes before (``working_memory_size``,
  ``ghost_memory_size``, ``file_storage_size``), ``consolidated`` (memories
  merged away), ``deleted`` (ended lifetimes recorded), plus ``groups``.
  ``shutdown`` does not consolidate.
- ``export_memories`` writes one JSON line per live memory (``to_dict()`` plus
  ``embedding``, ``embedding_dtype``, ``tags`` and ``expires_at``; bytes in
  content as ``{"$bytes": base64}``), oldest first, to a temporary file
  renamed into place. ``import_memories`` checks every line before writing
  anything (a ``ValidationError`` names the line and field), keeps each
  line's ``id``, skips lines whose lifetime has ended, leaves memories that
  are live in the vault as they are, and writes ``batch_size`` lines per
  transaction. It returns how many of the file's memories the vault now
  holds. Lines exported by the original vault import too.
- ``operation_count`` counts this session's calls of store, retrieve, search,
  find_similar, update, delete, and each memory streamed, exported or
  imported. ``total_size_mb`` is the size of ``vault.db`` and its journal
  files, or with ``url`` the bytes of the log's payloads.
- Crash recovery: ``initialize`` opens the store, which brings every read
  model up to the log (every acknowledged store is in the log: each one is
  committed before it returns). Each ``initialize`` records a session
  (``store.sessions``, app ``memory_vault``) with its host and process;
  ``shutdown`` terminates it. A session still active whose process on this
  host is gone was cut short: ``initialize`` terminates it, checks the log's
  hash chains, and reports ``recovered``, ``recovered_sessions`` and
  ``recovery_verified`` in ``get_status()`` (``recovered`` also in
  ``get_statistics()``). Sessions of other hosts are left alone.
- ``packfile_threshold`` is accepted and has no effect: the log is one SQLite
  file (or a database), with no small files to pack. ``batch_size`` is the
  page size of ``stream_all`` and exports and the transaction size of imports.
  Unknown config keys raise ``ValidationError``.
- No signal or ``atexit`` handlers are installed (a library should not take
  over the process's signals): nothing needs flushing for durability, and
  ``shutdown`` only ends the session, writes the buffered read times and
  closes the store. Calls before ``initialize`` or after ``shutdown`` raise
  ``VaultNotInitialized``.
- Bad input raises ``mnemolog.ValidationError`` (a ``ValueError``) naming the
  argument, with the seed's names (``content``, ``memory_type``,
  ``embedding``, ``threshold``, ``max_results``, ``memory_id``, ``config.*``),
  before anything is written. Content is any JSON value or bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any
from uuid import uuid4

import numpy as np
import numpy.typing as npt
import orjson

import mnemolog
from mnemolog.domain.errors import (
    MnemologError,
    NotFound,
    ValidationError,
    VersionConflict,
)
from mnemolog.domain.values import (
    canonical_json,
    check_key,
    check_metadata,
    check_tags,
    check_tenant,
    check_unit_interval,
    decode_value,
    encode_value,
    sha256_hex,
)
from mnemolog.domain.vectors import check_vector
from mnemolog.models import Memory
from mnemolog.store import MemoryStore

logger = logging.getLogger(__name__)

NAMESPACE = "app:memory_vault"
"""Where the vault's memories live in its store."""
APP_NAME = "memory_vault"
"""The app name of the vault's sessions, and the actor and source of its writes."""
VAULT_KEY = "$vault"
"""The reserved metadata key: timestamp, ``tags=`` tags and the embedding."""
DB_FILE = "vault.db"
MAX_RESULTS = 10_000
DAY = 86_400.0
MAX_WRITE_ATTEMPTS = 20
LINE_KEYS = frozenset(
    {
        "id",
        "type",
        "content",
        "metadata",
        "timestamp",
        "access_count",
        "last_accessed",
        "decay_rate",
        "importance",
        "embedding",
        "embedding_dtype",
        "tags",
        "expires_at",
    }
)
"""The fields of an exported line (the original's ``to_dict()`` and ours)."""


class MemoryType(Enum):
    """Types of memory storage."""

    EPISODIC = "episodic"
    SEMANTIC = "semantic"
    PROCEDURAL = "procedural"
    WORKING = "working"
    GHOST = "ghost"
    SOLITON = "soliton"


EXTRA_TYPES = frozenset({MemoryType.GHOST.value, MemoryType.SOLITON.value})
"""The types mnemolog does not know by itself."""


def default_half_lives(ghost_memory_ttl: float) -> dict[str, float]:
    """Half-lives in seconds by memory type; solitons never decay."""
    return {
        "episodic": 7 * DAY,
        "semantic": 69 * DAY,  # 0.99 a day, as the original decayed
        "procedural": 180 * DAY,
        "working": 3600.0,
        "ghost": float(ghost_memory_ttl),
    }


class VaultNotInitialized(MnemologError):
    """The vault was used before ``initialize()`` or after ``shutdown()``."""

    def __init__(self) -> None:
        super().__init__(
            "the vault is not open: await vault.initialize() before using it "
            "(and again after shutdown())"
        )


@dataclass(eq=False)
class MemoryEntry:
    """One memory of the vault, as the original's callers read it."""

    id: str
    """The SHA-256 of the content it was first stored with (hex)."""
    type: MemoryType
    content: Any
    embedding: npt.NDArray[Any] | None
    """The vector given to ``store`` (values and dtype), or None."""
    metadata: dict[str, Any]
    timestamp: float
    """When it was first stored (epoch seconds)."""
    access_count: int = 0
    """Reads by this vault object."""
    last_accessed: float | None = None
    """This vault object's last read (epoch seconds)."""
    decay_rate: float = 0.0
    """Importance decay per second (ln 2 / half-life); 0 without decay."""
    importance: float = 1.0
    """As stored; searches compare the decayed value."""
    tags: list[str] = field(default_factory=list)
    """Its tags: those given as ``tags=`` and ``metadata['tags']``."""

    def to_dict(self) -> dict[str, Any]:
        """The original's dictionary form: the type as its value, no embedding."""
        return {
            "id": self.id,
            "type": self.type.value,
            "content": self.content,
            "metadata": self.metadata,
            "timestamp": self.timestamp,
            "access_count": self.access_count,
            "last_accessed": self.last_accessed,
            "decay_rate": self.decay_rate,
            "importance": self.importance,
            "tags": list(self.tags),
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], embedding: npt.NDArray[Any] | None = None
    ) -> MemoryEntry:
        """The inverse of :meth:`to_dict`."""
        values = dict(data)
        values["type"] = MemoryType(values["type"])
        values["embedding"] = embedding
        values.setdefault("tags", [])
        return cls(**values)

    def __eq__(self, other: object) -> bool:
        """Equal when they hold the same memory; read counts do not matter."""
        if not isinstance(other, MemoryEntry):
            return NotImplemented
        mine, theirs = self.to_dict(), other.to_dict()
        for telemetry in ("access_count", "last_accessed"):
            del mine[telemetry], theirs[telemetry]
        if mine != theirs:
            return False
        if self.embedding is None or other.embedding is None:
            return self.embedding is None and other.embedding is None
        return bool(np.array_equal(self.embedding, other.embedding))

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class _Config:
    """The vault's config, checked."""

    storage_path: Path
    url: str | None
    tenant: str | None
    max_working_memory: int
    ghost_memory_ttl: float
    decay_enabled: bool
    decay_half_lives: dict[str, float]
    packfile_threshold: int
    batch_size: int
    embedding_dim: int
    cleanup_interval: float


CONFIG_KEYS = frozenset(
    {
        "storage_path",
        "url",
        "tenant",
        "max_working_memory",
        "ghost_memory_ttl",
        "decay_enabled",
        "decay_half_lives",
        "packfile_threshold",
        "batch_size",
        "embedding_dim",
        "cleanup_interval",
    }
)


def _check_config(config: object) -> _Config:
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise ValidationError("config", "must be a dict of settings")
    unknown = set(config) - CONFIG_KEYS
    if unknown:
        names = ", ".join(sorted(map(repr, unknown)))
        known = ", ".join(sorted(CONFIG_KEYS))
        raise ValidationError("config", f"unknown key(s) {names}; known: {known}")
    storage = config.get("storage_path", "data/memory_vault_v2")
    if not isinstance(storage, str | os.PathLike) or not str(storage):
        raise ValidationError("config.storage_path", "must be a non-empty path")
    url = config.get("url")
    if url is not None and (not isinstance(url, str) or not url):
        raise ValidationError("config.url", "must be a mnemolog store URL")
    tenant = config.get("tenant")
    if tenant is not None:
        try:
            check_tenant(tenant)
        except ValidationError as e:
            raise ValidationError("config.tenant", e.rule) from None
    ttl = _positive_number(config.get("ghost_memory_ttl", 3600), "ghost_memory_ttl")
    decay = config.get("decay_enabled", True)
    if not isinstance(decay, bool):
        raise ValidationError("config.decay_enabled", "must be True or False")
    half_lives = default_half_lives(ttl)
    overrides = config.get("decay_half_lives", {})
    if not isinstance(overrides, Mapping):
        raise ValidationError(
            "config.decay_half_lives", "must map memory types to seconds (or None)"
        )
    types = {t.value for t in MemoryType}
    for name, seconds in overrides.items():
        if name not in types:
            raise ValidationError(
                f"config.decay_half_lives.{name}",
                f"is not a memory type; use one of {', '.join(sorted(types))}",
            )
        if seconds is None:
            half_lives.pop(name, None)
        else:
            half_lives[name] = _positive_number(seconds, f"decay_half_lives.{name}")
    return _Config(
        storage_path=Path(storage).expanduser(),
        url=url,
        tenant=tenant,
        max_working_memory=_whole(
            config.get("max_working_memory", 100), "max_working_memory", 1, 10**9
        ),
        ghost_memory_ttl=ttl,
        decay_enabled=decay,
        decay_half_lives=half_lives if decay else {},
        packfile_threshold=_whole(
            config.get("packfile_threshold", 1000), "packfile_threshold", 1, 10**9
        ),
        batch_size=_whole(config.get("batch_size", 100), "batch_size", 1, MAX_RESULTS),
        embedding_dim=_whole(
            config.get("embedding_dim", 128), "embedding_dim", 1, 65_536
        ),
        cleanup_interval=_positive_number(
            config.get("cleanup_interval", 60), "cleanup_interval"
        ),
    )


def _whole(value: object, name: str, low: int, high: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not low <= value <= high
    ):
        raise ValidationError(f"config.{name}", f"must be a whole number {low}-{high}")
    return value


def _positive_number(value: object, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
        or value > 1000 * 365 * DAY
    ):
        raise ValidationError(
            f"config.{name}", "must be a number of seconds > 0 (at most 1000 years)"
        )
    return float(value)


def _memory_type(memory_type: object) -> MemoryType:
    if isinstance(memory_type, MemoryType):
        return memory_type
    try:
        return MemoryType(memory_type)
    except ValueError:
        allowed = ", ".join(t.value for t in MemoryType)
        raise ValidationError(
            "memory_type", f"must be a MemoryType or one of: {allowed}"
        ) from None


def _optional_type(memory_type: object) -> str | None:
    return _memory_type(memory_type).value if memory_type is not None else None


def _memory_id(memory_id: object) -> str:
    try:
        return check_key(memory_id)
    except ValidationError as e:
        raise ValidationError("memory_id", e.rule) from None


def _bounded(value: object, name: str, low: int, high: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not low <= value <= high
    ):
        raise ValidationError(name, f"must be a whole number {low}-{high}")
    return value


def _metadata(metadata: object, field_name: str = "metadata") -> dict[str, Any]:
    try:
        checked = check_metadata(metadata)
    except ValidationError as e:
        raise ValidationError(
            field_name + e.field.removeprefix("metadata"), e.rule
        ) from None
    if VAULT_KEY in checked:
        raise ValidationError(
            f"{field_name}.{VAULT_KEY}", "is reserved by the vault; use another key"
        )
    return checked


def _metadata_tags(metadata: Mapping[str, Any], field_name: str) -> list[str]:
    tags = metadata.get("tags")
    if tags is None:
        return []
    if isinstance(tags, str):
        return [tags]
    if isinstance(tags, list) and all(isinstance(t, str) for t in tags):
        return list(tags)
    raise ValidationError(
        f"{field_name}.tags",
        "must be a string or a list of strings (they are the memory's tags)",
    )


def _tag_list(tags: object, field_name: str = "tags") -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str) or not isinstance(tags, Iterable):
        raise ValidationError(field_name, "must be a list of strings")
    listed = list(tags)
    try:
        check_tags(listed)
    except ValidationError as e:
        raise ValidationError(field_name, e.rule) from None
    return list(dict.fromkeys(listed))


def _all_tags(
    given: list[str], metadata: Mapping[str, Any], field_name: str
) -> list[str]:
    tags = list(dict.fromkeys([*given, *_metadata_tags(metadata, field_name)]))
    try:
        check_tags(tags)
    except ValidationError as e:
        raise ValidationError("tags", e.rule) from None
    return tags


def _embedding(embedding: object, dims: int, field_name: str) -> dict[str, Any]:
    """The ``$vault`` fields that keep a vector as given, after checking it."""
    if embedding is None:
        return {}
    check_vector(embedding, dims, field_name)
    array = np.asarray(embedding)
    dtype = array.dtype.name if array.dtype.kind == "f" else "float64"
    return {
        "embedding": [float(x) for x in array.astype(np.float64)],
        "embedding_dtype": dtype,
    }


def _importance(importance: object, field_name: str = "importance") -> float:
    return check_unit_interval(importance, field_name)


def _epoch(value: object, field_name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value < 253_402_300_800  # before the year 10000
    ):
        raise ValidationError(field_name, "must be a time in epoch seconds")
    return float(value)


class UnifiedMemoryVaultV2:
    """The Memory Vault V2 on a mnemolog store (see the module's docstring)."""

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config: dict[str, Any] = dict(config or {})
        checked = _check_config(config)
        self._config = checked
        self.storage_path = checked.storage_path
        self.max_working_memory = checked.max_working_memory
        self.ghost_memory_ttl = checked.ghost_memory_ttl
        self.decay_enabled = checked.decay_enabled
        self.packfile_threshold = checked.packfile_threshold
        self.batch_size = checked.batch_size
        self.embedding_dim = checked.embedding_dim
        self.session_id = _new_session_id()
        self._root: MemoryStore | None = None
        self._store: MemoryStore | None = None
        self._started = time.time()
        self._operations = 0
        self._reads: dict[str, tuple[int, float]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._recovered: list[str] = []
        self._recovery_verified: bool | None = None

    # ---- lifecycle -----------------------------------------------------------

    async def initialize(self) -> None:
        """Opens the store (catching its read models up to the log), recovers
        from a crashed session, and starts this one. A no-op when open."""
        if self._store is not None:
            return
        await asyncio.to_thread(self._open)
        self._sweeper = asyncio.create_task(self._cleanup_loop())
        logger.info(
            "memory vault open at %s, session %s%s",
            self._config.url or self.storage_path,
            self.session_id,
            f", recovered from {self._recovered}" if self._recovered else "",
        )

    async def shutdown(self) -> None:
        """Ends the session, writes buffered read times and closes the store."""
        if self._store is None:
            return
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        store, root = self._store, self._root
        self._store = self._root = None
        assert root is not None

        def close() -> None:
            try:
                store.sessions.terminate_session(self.session_id, actor=APP_NAME)
            finally:
                root.close()

        await asyncio.to_thread(close)
        logger.info("memory vault session %s ended", self.session_id)

    async def save_all(self) -> None:
        """Writes the buffered read times and records ended lifetimes
        (every store is durable when it returns)."""
        store = self._open_store()

        def save() -> None:
            store.flush_access()
            store.sweep(actor=APP_NAME)

        await asyncio.to_thread(save)

    # ---- writes --------------------------------------------------------------

    async def store(  # noqa: PLR0917 - the original's positional order
        self,
        content: Any,
        memory_type: MemoryType | str,
        metadata: dict[str, Any] | None = None,
        embedding: Any = None,
        importance: float = 1.0,
        tags: list[str] | None = None,
    ) -> str:
        """Stores a memory and returns its id; content that is live in the
        vault already is not written again (the same id is returned)."""
        store = self._open_store()
        kind = _memory_type(memory_type)
        wire = encode_value(content, field="content")
        memory_id = sha256_hex(canonical_json(wire))
        meta = _metadata(metadata)
        given_tags = _tag_list(tags)
        item = self._item(
            memory_id,
            content,
            kind,
            meta,
            given_tags,
            importance=_importance(importance),
            vector=_embedding(embedding, self.embedding_dim, "embedding"),
            embedding=embedding,
            timestamp=time.time(),
            expires_at=None,
        )
        self._operations += 1
        await asyncio.to_thread(self._put_new, store, item)
        return memory_id

    async def update(
        self,
        memory_id: str,
        content: Any | None = None,
        metadata: dict[str, Any] | None = None,
        importance: float | None = None,
        tags: list[str] | None = None,
    ) -> bool:
        """Changes a live memory: content, metadata (merged), importance,
        ``tags=`` tags. False if there is no live memory with that id."""
        store = self._open_store()
        key = _memory_id(memory_id)
        if content is not None:
            encode_value(content, field="content")
        meta = _metadata(metadata) if metadata is not None else None
        given_tags = _tag_list(tags) if tags is not None else None
        level = _importance(importance) if importance is not None else None
        self._operations += 1

        def change() -> bool:
            for _attempt in range(MAX_WRITE_ATTEMPTS):
                current = store.get(NAMESPACE, key)
                if current is None:
                    return False
                vault = dict(current.metadata.get(VAULT_KEY) or {})
                merged = {k: v for k, v in current.metadata.items() if k != VAULT_KEY}
                if meta is not None:
                    merged.update(meta)
                if given_tags is not None:
                    vault["tags"] = given_tags
                all_tags = _all_tags(list(vault.get("tags", [])), merged, "metadata")
                vector = vault.get("embedding") if content is not None else None
                try:
                    store.update(
                        NAMESPACE,
                        key,
                        **({"value": content} if content is not None else {}),
                        metadata={**merged, VAULT_KEY: vault},
                        replace_metadata=True,
                        tags=all_tags,
                        importance=level,
                        embedding=vector,
                        expected_version=current.version,
                        actor=APP_NAME,
                        task_id=self.session_id,
                        source=APP_NAME,
                    )
                except NotFound:
                    return False
                except VersionConflict:
                    continue
                except ValidationError as e:
                    raise _renamed(e) from None
                return True
            raise VersionConflict(
                f"{NAMESPACE}/{key}: changed by others on every attempt",
                expected=-1,
                actual=-1,
            )

        return await asyncio.to_thread(change)

    async def delete(self, memory_id: str) -> bool:
        """Soft-deletes a memory (its history stays); False if none was live."""
        store = self._open_store()
        key = _memory_id(memory_id)
        self._operations += 1

        def remove() -> bool:
            if store.get(NAMESPACE, key) is None:
                return False
            try:
                store.delete(
                    NAMESPACE,
                    key,
                    actor=APP_NAME,
                    task_id=self.session_id,
                    source=APP_NAME,
                )
            except NotFound:
                return False
            return True

        found = await asyncio.to_thread(remove)
        self._reads.pop(key, None)
        return found

    # ---- reads ---------------------------------------------------------------

    async def retrieve(self, memory_id: str) -> MemoryEntry | None:
        """The live memory with this id, or None."""
        store = self._open_store()
        key = _memory_id(memory_id)
        self._operations += 1
        found = await asyncio.to_thread(store.get, NAMESPACE, key)
        if found is None:
            return None
        self._note_reads([key])
        return self._entry(found)

    async def search(  # noqa: PLR0917 - the original's positional order
        self,
        query: str | None = None,
        memory_type: MemoryType | str | None = None,
        tags: list[str] | None = None,
        min_importance: float = 0.0,
        max_results: int = 100,
        include_embeddings: bool = False,
    ) -> list[MemoryEntry]:
        """Live memories with any of ``tags``, of ``memory_type``, whose
        (decayed) importance is at least ``min_importance``; most important
        first, or best text match first with ``query``."""
        store = self._open_store()
        kind = _optional_type(memory_type)
        wanted = _tag_list(tags) or None
        floor = check_unit_interval(min_importance, "min_importance")
        limit = _bounded(max_results, "max_results", 1, MAX_RESULTS)
        if query is not None and not isinstance(query, str):
            raise ValidationError("query", "must be a string or None")
        del include_embeddings  # results always carry their embeddings
        self._operations += 1

        def find() -> list[Memory]:
            if query is not None and query.strip():
                hits = store.text_search(
                    query,
                    k=limit,
                    namespace_prefix=NAMESPACE,
                    memory_type=kind,
                    tags_any=wanted,
                )
                return [
                    hit.item
                    for hit in hits
                    if floor == 0 or store.effective_importance(hit.item) >= floor
                ]
            return store.search(
                namespace_prefix=NAMESPACE,
                memory_type=kind,
                tags_any=wanted,
                min_importance=floor or None,
                order_by="-importance",
                limit=limit,
            )

        found = await asyncio.to_thread(find)
        self._note_reads([m.key for m in found])
        return [self._entry(m) for m in found]

    async def find_similar(
        self,
        embedding: Any,
        memory_type: MemoryType | str | None = None,
        threshold: float = 0.7,
        max_results: int = 10,
    ) -> list[tuple[MemoryEntry, float]]:
        """Memories whose embeddings have a cosine similarity of at least
        ``threshold`` with ``embedding``: (memory, similarity), best first."""
        store = self._open_store()
        vector = check_vector(embedding, self.embedding_dim, "embedding")
        kind = _optional_type(memory_type)
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or not -1.0 <= threshold <= 1.0
        ):
            raise ValidationError("threshold", "must be a number in [-1, 1]")
        limit = _bounded(max_results, "max_results", 1, MAX_RESULTS)
        self._operations += 1
        hits = await asyncio.to_thread(
            store.similar,
            vector,
            k=limit,
            min_score=float(threshold),
            namespace_prefix=NAMESPACE,
            memory_type=kind,
        )
        return [(self._entry(hit.item), hit.score) for hit in hits]

    async def stream_all(
        self, memory_type: MemoryType | str | None = None
    ) -> AsyncIterator[MemoryEntry]:
        """Every live memory, oldest first, ``batch_size`` at a time."""
        store = self._open_store()
        kind = _optional_type(memory_type)
        offset = 0
        while True:
            page = await asyncio.to_thread(self._page, store, kind, offset)
            self._operations += len(page)
            self._note_reads([m.key for m in page])
            for memory in page:
                yield self._entry(memory)
            if len(page) < self.batch_size:
                return
            offset += len(page)

    async def export_memories(
        self, export_path: Path | str, memory_type: MemoryType | str | None = None
    ) -> int:
        """Writes every live memory (of ``memory_type``) to a JSONL file;
        returns how many."""
        store = self._open_store()
        kind = _optional_type(memory_type)
        path = Path(export_path)
        count = await asyncio.to_thread(self._export, store, kind, path)
        self._operations += count
        logger.info("exported %d memories to %s", count, path)
        return count

    async def import_memories(self, import_path: Path | str) -> int:
        """Stores the memories of a JSONL file made by ``export_memories``;
        returns how many of them the vault now holds."""
        store = self._open_store()
        path = Path(import_path)
        count = await asyncio.to_thread(self._import, store, path)
        self._operations += count
        logger.info("imported %d memories from %s", count, path)
        return count

    # ---- maintenance and reporting ---------------------------------------------

    async def consolidate(self) -> dict[str, Any]:
        """Merges memories of equal content and records ended lifetimes."""
        store = self._open_store()
        before = await self._counts(store)

        def run() -> tuple[int, Any]:
            swept = store.sweep(actor=APP_NAME)
            done = store.consolidate(
                NAMESPACE,
                strategy="merge_metadata",
                family=lambda key: key,  # ids are not names: no key families
                actor=APP_NAME,
                reason="memory vault consolidation",
            )
            return swept, done

        swept, done = await asyncio.to_thread(run)
        stats = {
            "working_memory_size": before.get("working", 0),
            "ghost_memory_size": before.get("ghost", 0),
            "file_storage_size": _persistent(before),
            "consolidated": done.superseded,
            "deleted": swept,
            "groups": [
                {
                    "target": g.target,
                    "sources": list(g.sources),
                    "reasons": list(g.reasons),
                }
                for g in done.groups
            ],
        }
        logger.info("memory consolidation complete: %s", stats)
        return stats

    async def get_statistics(self) -> dict[str, Any]:
        """Counts, sizes and this session's figures."""
        store = self._open_store()
        counts = await self._counts(store, sweep=True)

        def extra() -> tuple[float, int]:
            return self._size_bytes(store) / (1024 * 1024), _distinct_tags(store)

        size_mb, tag_count = await asyncio.to_thread(extra)
        total = sum(counts.values())
        return {
            "total_memories": total,
            "working_memory_count": counts.get("working", 0),
            "ghost_memory_count": counts.get("ghost", 0),
            "file_storage_count": _persistent(counts),
            "storage_path": str(self.storage_path),
            "total_size_mb": size_mb,
            "storage_type": f"MNEMOLOG EVENT LOG ({store.backend.upper()})",
            "type_distribution": {t.value: counts.get(t.value, 0) for t in MemoryType},
            "tag_count": tag_count,
            "session_id": self.session_id,
            "uptime_seconds": time.time() - self._started,
            "operation_count": self._operations,
            "decay_enabled": self.decay_enabled,
            "recovered": bool(self._recovered),
        }

    async def get_status(self) -> dict[str, Any]:
        """The original's status: entries by kind, path, last change, session."""
        store = self._open_store()
        stats = await self.get_statistics()
        newest = await asyncio.to_thread(
            store.audit, namespace_prefix=NAMESPACE, descending=True, limit=1
        )
        return {
            "entries": stats["total_memories"],
            "working_memory": stats["working_memory_count"],
            "ghost_memory": stats["ghost_memory_count"],
            "file_storage": stats["file_storage_count"],
            "path": str(self.storage_path),
            "url": self._url(),
            "last_modified": newest[0].at.astimezone().isoformat()
            if newest
            else "Never",
            "session_id": self.session_id,
            "uptime": stats["uptime_seconds"],
            "recovered": bool(self._recovered),
            "recovered_sessions": list(self._recovered),
            "recovery_verified": self._recovery_verified,
        }

    # ---- internals -------------------------------------------------------------

    def _open_store(self) -> MemoryStore:
        if self._store is None:
            raise VaultNotInitialized()
        return self._store

    def _url(self) -> str:
        if self._config.url is not None:
            return self._config.url
        return f"sqlite:///{self.storage_path / DB_FILE}"

    def _open(self) -> None:
        """Opens the store, recovers crashed sessions, starts this one."""
        if self._config.url is None:
            self.storage_path.mkdir(parents=True, exist_ok=True)
        try:
            root = mnemolog.open(
                self._url(),
                extra_memory_types=EXTRA_TYPES,
                working_memory_cap=self.max_working_memory,
                decay_half_lives=self._config.decay_half_lives,
                vector_dims=self.embedding_dim,
                vector_model=APP_NAME,
            )
        except ValidationError as e:
            if e.field != "url":
                raise
            raise ValidationError("config.url", e.rule) from None
        try:
            store = root.tenant(self._config.tenant or root.tenant_name)
            self._recovered = self._recover(store)
            self._recovery_verified = (
                store.verify(projections=False).ok if self._recovered else None
            )
            store.sweep(actor=APP_NAME)
            if self.session_id in self._recovered or _session_exists(
                store, self.session_id
            ):
                self.session_id = _new_session_id()
            store.sessions.create_session(
                app_name=APP_NAME,
                user_id=APP_NAME,
                session_id=self.session_id,
                metadata={
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "process": _PROCESS,
                },
                actor=APP_NAME,
            )
            store.sessions.update_status(self.session_id, "active", actor=APP_NAME)
        except BaseException:
            root.close()
            raise
        self._root, self._store = root, store
        self._started = time.time()
        self._operations = 0
        self._reads = {}

    @staticmethod
    def _recover(store: MemoryStore) -> list[str]:
        """Terminates the active sessions whose process on this host is gone."""
        host = socket.gethostname()
        cut_short = []
        for summary in store.sessions.list_sessions(
            app_name=APP_NAME, status="active", limit=1000
        ).sessions:
            session = store.sessions.get_session(summary.id, num_recent_events=0)
            if session is None:
                continue
            meta = session.metadata
            if meta.get("host") != host or _alive(meta.get("pid"), meta.get("process")):
                continue
            store.sessions.update_status(summary.id, "terminated", actor=APP_NAME)
            cut_short.append(summary.id)
            logger.warning("memory vault session %s ended without shutdown", summary.id)
        return cut_short

    async def _cleanup_loop(self) -> None:
        """Records ended lifetimes (expired ghosts) every cleanup_interval."""
        while True:
            await asyncio.sleep(self._config.cleanup_interval)
            store = self._store
            if store is None:
                return
            try:
                await asyncio.to_thread(store.sweep, actor=APP_NAME)
            except MnemologError:
                logger.exception("memory vault cleanup failed; retrying later")

    def _item(
        self,
        memory_id: str,
        content: Any,
        kind: MemoryType,
        metadata: dict[str, Any],
        given_tags: list[str],
        *,
        importance: float,
        vector: dict[str, Any],
        embedding: Any,
        timestamp: float,
        expires_at: float | None,
    ) -> dict[str, Any]:
        """The put arguments of one memory, checked."""
        tags = _all_tags(given_tags, metadata, "metadata")
        vault: dict[str, Any] = {"timestamp": timestamp, "tags": given_tags, **vector}
        item: dict[str, Any] = {
            "namespace": NAMESPACE,
            "key": memory_id,
            "value": content,
            "memory_type": kind.value,
            "metadata": {**metadata, VAULT_KEY: vault},
            "tags": tags,
            "importance": importance,
            "embedding": embedding,
        }
        if expires_at is not None:
            item["expires_at"] = datetime.fromtimestamp(expires_at, UTC)
        elif kind is MemoryType.GHOST:
            item["ttl"] = self.ghost_memory_ttl
        else:
            item["ttl"] = None  # a memory stored anew keeps no old lifetime
        return item

    def _put_new(self, store: MemoryStore, item: dict[str, Any]) -> bool:
        """Writes a memory unless it is live already; True if written."""
        expected = 0
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            try:
                store.put(
                    **item,
                    expected_version=expected,
                    actor=APP_NAME,
                    task_id=self.session_id,
                    source=APP_NAME,
                )
            except VersionConflict:
                if store.get(NAMESPACE, item["key"]) is not None:
                    return False  # a duplicate: nothing new to write
                gone = store.get(NAMESPACE, item["key"], include_deleted=True)
                expected = gone.version if gone is not None else 0
                continue
            except ValidationError as e:
                raise _renamed(e) from None
            return True
        raise VersionConflict(
            f"{NAMESPACE}/{item['key']}: changed by others on every attempt",
            expected=expected,
            actual=-1,
        )

    def _page(self, store: MemoryStore, kind: str | None, offset: int) -> list[Memory]:
        return store.search(
            namespace_prefix=NAMESPACE,
            memory_type=kind,
            order_by="created_at",
            limit=self.batch_size,
            offset=offset,
        )

    def _pages(self, store: MemoryStore, kind: str | None) -> Iterator[list[Memory]]:
        offset = 0
        while True:
            page = self._page(store, kind, offset)
            if page:
                yield page
            if len(page) < self.batch_size:
                return
            offset += len(page)

    def _export(self, store: MemoryStore, kind: str | None, path: Path) -> int:
        count = 0
        partial = path.with_name(path.name + ".tmp")
        with partial.open("wb") as out:
            for page in self._pages(store, kind):
                self._note_reads([m.key for m in page])
                for memory in page:
                    out.write(orjson.dumps(self._line(memory)) + b"\n")
                    count += 1
            out.flush()
            os.fsync(out.fileno())
        partial.replace(path)
        return count

    def _line(self, memory: Memory) -> dict[str, Any]:
        entry = self._entry(memory)
        line = entry.to_dict()
        line["content"] = encode_value(entry.content, field="content")
        vault = memory.metadata.get(VAULT_KEY) or {}
        line["tags"] = list(vault.get("tags", []))
        line["embedding"] = vault.get("embedding")
        if "embedding_dtype" in vault:
            line["embedding_dtype"] = vault["embedding_dtype"]
        line["expires_at"] = (
            memory.expires_at.timestamp() if memory.expires_at is not None else None
        )
        return line

    def _import(self, store: MemoryStore, path: Path) -> int:
        if not path.is_file():
            raise ValidationError("import_path", f"{path} is not a file")
        for _ in self._read_lines(path):
            pass  # every line is checked before anything is written
        held = 0
        batch: list[dict[str, Any]] = []
        for item in self._read_lines(path):
            batch.append(item)
            if len(batch) >= self.batch_size:
                held += self._write_batch(store, batch)
                batch = []
        if batch:
            held += self._write_batch(store, batch)
        return held

    def _read_lines(self, path: Path) -> Iterator[dict[str, Any]]:
        """The put arguments of each line of an export; lines whose lifetime
        has ended are skipped."""
        now = time.time()
        with path.open("rb") as lines:
            for number, raw in enumerate(lines, start=1):
                if not raw.strip():
                    continue
                item = self._parse_line(raw, f"line {number}")
                expires = item.get("expires_at")
                if isinstance(expires, datetime) and expires.timestamp() <= now:
                    continue
                yield item

    def _parse_line(self, raw: bytes, where: str) -> dict[str, Any]:
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ValidationError(where, "is not valid JSON") from None
        if not isinstance(line, dict):
            raise ValidationError(where, "must be a JSON object (one memory)")
        unknown = set(line) - LINE_KEYS
        if unknown:
            names = ", ".join(sorted(map(repr, unknown)))
            raise ValidationError(where, f"unknown field(s): {names}")
        for required in ("type", "content"):
            if required not in line:
                raise ValidationError(f"{where}.{required}", "is required")
        try:
            kind = _memory_type(line["type"])
        except ValidationError as e:
            raise ValidationError(f"{where}.type", e.rule) from None
        try:
            content = decode_value(line["content"])
        except (TypeError, ValueError, AttributeError, RecursionError):
            raise ValidationError(
                f"{where}.content",
                "is not content as exported (bytes are {'$bytes': base64})",
            ) from None
        wire = encode_value(content, field=f"{where}.content")
        memory_id = line.get("id")
        if memory_id is None:
            memory_id = sha256_hex(canonical_json(wire))
        try:
            check_key(memory_id)
        except ValidationError as e:
            raise ValidationError(f"{where}.id", e.rule) from None
        metadata = _metadata(line.get("metadata") or {}, f"{where}.metadata")
        vector = None
        if line.get("embedding") is not None:
            check_vector(line["embedding"], self.embedding_dim, f"{where}.embedding")
            vector = np.asarray(line["embedding"], dtype=_dtype(line, where))
        expires = line.get("expires_at")
        return self._item(
            memory_id,
            content,
            kind,
            metadata,
            _tag_list(line.get("tags"), f"{where}.tags"),
            importance=_importance(line.get("importance", 1.0), f"{where}.importance"),
            vector=_embedding(vector, self.embedding_dim, f"{where}.embedding"),
            embedding=vector,
            timestamp=_epoch(line.get("timestamp", time.time()), f"{where}.timestamp"),
            expires_at=(
                _epoch(expires, f"{where}.expires_at") if expires is not None else None
            ),
        )

    def _write_batch(self, store: MemoryStore, batch: list[dict[str, Any]]) -> int:
        """Writes the batch's memories that are not live in the vault, in one
        transaction; returns how many of the batch the vault holds."""
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            pending = []
            for item in batch:
                current = store.get(NAMESPACE, item["key"], include_deleted=True)
                if current is not None and _live(current):
                    continue
                version = current.version if current is not None else 0
                pending.append({**item, "expected_version": version})
            try:
                store.put_many(
                    pending, actor=APP_NAME, task_id=self.session_id, source=APP_NAME
                )
            except VersionConflict:
                continue
            return len(batch)
        raise VersionConflict(
            "import: memories of the batch changed on every attempt",
            expected=-1,
            actual=-1,
        )

    async def _counts(
        self, store: MemoryStore, *, sweep: bool = False
    ) -> dict[str, int]:
        """Live memories by type (ended lifetimes recorded first if asked)."""

        def count() -> dict[str, int]:
            if sweep:
                store.sweep(actor=APP_NAME)
            usage = store.stats()["tenants"].get(store.tenant_name, {})
            return dict(usage.get("by_type", {}))

        return await asyncio.to_thread(count)

    def _size_bytes(self, store: MemoryStore) -> int:
        if self._config.url is None:
            return sum(
                p.stat().st_size
                for p in self.storage_path.glob(DB_FILE + "*")
                if p.is_file()
            )
        return int(store.stats()["log"]["payload_bytes"])

    def _entry(self, memory: Memory) -> MemoryEntry:
        metadata = dict(memory.metadata)
        vault = metadata.pop(VAULT_KEY, None)
        if not isinstance(vault, dict):
            vault = {}
        vector = vault.get("embedding")
        embedding = (
            np.asarray(vector, dtype=vault.get("embedding_dtype", "float64"))
            if vector is not None
            else None
        )
        half_life = self._config.decay_half_lives.get(memory.memory_type)
        reads, last = self._reads.get(memory.key, (0, None))
        return MemoryEntry(
            id=memory.key,
            type=MemoryType(memory.memory_type),
            content=memory.value,
            embedding=embedding,
            metadata=metadata,
            timestamp=float(vault.get("timestamp", memory.created_at.timestamp())),
            access_count=reads,
            last_accessed=last,
            decay_rate=math.log(2) / half_life if half_life else 0.0,
            importance=memory.importance,
            tags=sorted(memory.tags),
        )

    def _note_reads(self, keys: list[str]) -> None:
        now = time.time()
        for key in keys:
            count, _ = self._reads.get(key, (0, None))
            self._reads[key] = (count + 1, now)


_PROCESS = uuid4().hex
"""This process, told apart from an earlier one that had the same pid."""


def _alive(pid: object, process: object) -> bool:
    """Whether the process that started a session on this host still runs."""
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return process == _PROCESS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it runs, as another user
    return True


def _new_session_id() -> str:
    return f"{datetime.now():%Y%m%d_%H%M%S}_{uuid4().hex[:8]}"


def _session_exists(store: MemoryStore, session_id: str) -> bool:
    return store.sessions.get_session(session_id, num_recent_events=0) is not None


def _live(memory: Memory) -> bool:
    if memory.deleted:
        return False
    return memory.expires_at is None or memory.expires_at > datetime.now(UTC)


def _persistent(counts: Mapping[str, int]) -> int:
    return sum(n for t, n in counts.items() if t not in ("working", "ghost"))


def _dtype(line: Mapping[str, Any], where: str) -> str:
    dtype = line.get("embedding_dtype", "float64")
    if dtype not in ("float16", "float32", "float64"):
        raise ValidationError(
            f"{where}.embedding_dtype", "must be float16, float32 or float64"
        )
    return str(dtype)


def _renamed(error: ValidationError) -> ValidationError:
    """The store's ``value`` is the vault's ``content``."""
    if error.field == "value" or error.field.startswith("value."):
        return ValidationError("content" + error.field[len("value") :], error.rule)
    return error


def _distinct_tags(store: MemoryStore) -> int:
    """Distinct tags of the tenant's live memories.

    The store's public statistics do not count tags yet, so this reads the
    tag read model directly (read-only)."""
    row = store._recorder.fetch_one(
        "SELECT COUNT(DISTINCT t.tag) FROM memory_tags AS t "
        "JOIN memories AS m ON m.id = t.memory_id "
        "WHERE t.tenant = ? AND NOT m.deleted",
        (store.tenant_name,),
    )
    return int(row[0]) if row is not None else 0
