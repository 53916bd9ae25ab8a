"""The Persistent Memory Module (``persistent_memory.py``) on a mnemolog store.

``MemoryModule``, ``MemoryEntry``, ``StorageBackend``, ``SQLiteBackend`` and
``JSONBackend`` keep the names, arguments and return shapes of the module they
stand in for. Every entry is one mnemolog memory, so each create, update and
delete is an event in the log: versions, audit and time travel come for free.

How an entry is stored:

- It lives in one namespace (``app:persistent_memory`` unless the backend is
  given another), its ``id`` is the memory's key, its ``value`` the memory's
  value and its ``tags`` the memory's tags. ``category``, ``key``,
  ``entity_type``, ``entity_id``, the creating ``task_id`` and the tags in the
  order given sit in the memory's metadata, where searches filter on them.
- ``module`` becomes the event's actor, ``task_id`` its task id, and the
  source is ``persistent_memory``. ``provenance`` is read back from the log:
  ``module`` and ``created_at`` from version 1, ``updated_by`` and
  ``updated_at`` from the latest version (both present once an entry has more
  than one version), ``task_id`` from the creating call. A missing module
  reads as ``"unknown"`` and a missing task id as ``"none"``, as before.
- ``backend_type="sqlite"`` opens ``sqlite:///<storage_dir>/memory.db``;
  ``backend_type="json"`` opens the JSONL log in ``<storage_dir>/memory_jsonl``
  (``jsonl:///...``). ``StoreBackend`` runs on any store URL (``memory://``,
  PostgreSQL) or an open ``MemoryStore``; given a tenant view
  (``store.tenant("acme")``) it sees that tenant only, and a store it was
  given stays open at ``shutdown``.

Where the original left things open, this module chooses:

- Times are naive local datetimes (``timestamp``, and the ISO strings in
  ``provenance``), as ``datetime.now()`` gave; the log keeps them in UTC. The
  ``timestamp`` and ``provenance`` of an entry given to ``create`` or
  ``update`` are not stored: the log's own times and actors are the record.
- Lists come newest first (by last change). ``get_memory_by_key`` returns the
  most recently changed live entry with that key in any category (or in
  ``category=`` when given); ``get_user_preferences`` keeps the newest value
  of a key. ``set_user_preference`` and ``set_device_info`` look only in their
  own category (``preferences``, ``devices``), and two first calls racing for
  one key meet at one entry (its id derives from category and key, so it is
  the same in every tenant; each tenant's entry is its own).
- ``delete_memory`` and ``clear_all`` are soft deletes recorded in the log
  (``clear_all`` with the reason ``clear_all``): reads stop seeing the
  entries, their history stays. ``delete_memory`` of an unknown or already
  deleted id, and ``update_memory`` of one, return False. ``clear_all``
  returns how many entries it deleted.
- Every ``update_memory`` call writes a version, even with an unchanged value;
  its ``module`` (None: ``"unknown"``) is the new ``updated_by`` and its
  ``task_id`` goes on that version's event in the log (``provenance["task_id"]``
  stays the creating task's).
- ``create`` of an id that is live already keeps the stored entry and returns
  False (the original logged a warning and kept it); of a deleted id it
  brings the entry back with the new content.
- Tags come back in the order first given; a repeated tag is kept once.
  ``tags=[]`` as a filter matches nothing (no tag is among none), while
  ``tags=None`` does not filter. ``record_task(tags=None)`` tags
  ``["executed"]``; ``tags=[]`` means no tags.
- Values are dicts of JSON values and bytes, returned exactly as given;
  anything else (a datetime, a set, NaN) raises ``mnemolog.ValidationError``
  (a ``ValueError``) naming the field and the rule, before anything is
  written. So do empty or non-string categories, keys, entity types and ids,
  an unknown ``backend_type`` and ``get_task_history(limit=0)``.
- ``storage_dir`` defaults to ``~/.jarvis/memory``; ``~`` is expanded and the
  directory created. ``shutdown`` closes the store; a later call opens it
  again, as the original reconnected lazily.
- ``MemoryEntry`` stays a mutable model (callers set ``entry.value`` and pass
  it to ``backend.update``), with assignments validated.
"""

from __future__ import annotations

import json
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, uuid4, uuid5

from pydantic import BaseModel, ConfigDict, Field

import mnemolog
from mnemolog.domain.errors import NotFound, ValidationError, VersionConflict
from mnemolog.domain.values import Namespace, check_optional_text, check_tags
from mnemolog.models import Memory
from mnemolog.store import MemoryStore

logger = logging.getLogger(__name__)

NAMESPACE = "app:persistent_memory"
"""Where entries live unless a backend is given another namespace."""
SOURCE = "persistent_memory"
"""The source on every event this module writes."""
BACKEND_TYPES = ("sqlite", "json")
UNKNOWN_MODULE = "unknown"
NO_TASK = "none"
PAGE = 1000
"""Rows fetched per search call while listing."""


def default_storage_dir() -> Path:
    """``~/.jarvis/memory``, where a module with no ``storage_dir`` keeps its files."""
    return Path.home() / ".jarvis" / "memory"


class MemoryEntry(BaseModel):
    """One memory entry: what it is about, its data, and where it came from."""

    model_config = ConfigDict(validate_assignment=True)

    id: str
    """Unique identifier (a UUID string for entries the module creates)."""
    category: str
    """preferences, tasks, devices, tools, ..."""
    key: str
    """Semantic key for lookup."""
    value: dict[str, Any]
    """The data: JSON values and bytes."""
    tags: list[str] = Field(default_factory=list)
    """For retrieval; a filter matches any of them."""
    entity_type: str
    """task, tool, device, user_preference, ..."""
    entity_id: str | None = None
    """The specific entity, if any."""
    timestamp: datetime = Field(default_factory=datetime.now)
    """When the entry last changed (naive local time)."""
    provenance: dict[str, str] = Field(default_factory=dict)
    """module, task_id, created_at, and updated_by/updated_at once updated."""


class StorageBackend(ABC):
    """Where a MemoryModule keeps its entries.

    ``create``, ``update`` and ``delete`` may return a bool (False: nothing
    was written, the id was taken or absent); None counts as success.
    """

    @abstractmethod
    def create(self, entry: MemoryEntry) -> bool | None:
        """Stores a new entry."""

    @abstractmethod
    def read(self, entry_id: str) -> MemoryEntry | None:
        """The live entry with this id, or None."""

    @abstractmethod
    def update(self, entry: MemoryEntry) -> bool | None:
        """Replaces the stored entry that has ``entry.id``."""

    @abstractmethod
    def delete(self, entry_id: str) -> bool | None:
        """Deletes the entry with this id."""

    @abstractmethod
    def list_all(self) -> list[MemoryEntry]:
        """Every live entry, newest first."""

    @abstractmethod
    def query(
        self,
        category: str | None = None,
        tags: list[str] | None = None,
        entity_type: str | None = None,
        entity_id: str | None = None,
        key: str | None = None,
    ) -> list[MemoryEntry]:
        """Live entries matching every filter given (tags: any of them)."""

    @abstractmethod
    def bootstrap(self) -> None:
        """Makes the storage ready (idempotent)."""

    @abstractmethod
    def shutdown(self) -> None:
        """Releases the storage; a later call may open it again."""


class StoreBackend(StorageBackend):
    """Entries as memories of a mnemolog store, opened from a URL or given."""

    def __init__(self, store: str | MemoryStore, *, namespace: str = NAMESPACE) -> None:
        self._lock = threading.Lock()
        self._store: MemoryStore | None = None
        self._url: str | None = None
        if isinstance(store, MemoryStore):
            self._store = store
        elif isinstance(store, str):
            self._url = store
        else:
            raise ValidationError(
                "store", "must be a store URL or a mnemolog.MemoryStore"
            )
        try:
            self._namespace = str(
                Namespace.parse(
                    namespace,
                    extra_roots=self.store.settings.extra_roots,
                    field="namespace",
                )
            )
        except ValidationError:
            self.shutdown()
            raise

    @property
    def store(self) -> MemoryStore:
        """The mnemolog store underneath (opened again after a shutdown)."""
        with self._lock:
            if self._store is None:
                assert self._url is not None
                self._store = mnemolog.open(self._url)
            return self._store

    @property
    def namespace(self) -> str:
        """The namespace that holds this backend's entries."""
        return self._namespace

    def bootstrap(self) -> None:
        """Opens the store if it is closed."""
        _ = self.store

    def shutdown(self) -> None:
        """Closes a store this backend opened; one it was given stays open."""
        with self._lock:
            if self._store is not None and self._url is not None:
                self._store.close()
                self._store = None

    def create(self, entry: MemoryEntry) -> bool:
        """Stores a new entry; False (and nothing written) if the id is live."""
        entry_id = _text(entry.id, "id", 1024)
        fields = _entry_fields(entry)
        actor = _provenance(entry.provenance.get("module"), "module", UNKNOWN_MODULE)
        task_id = _provenance(entry.provenance.get("task_id"), "task_id", NO_TASK)
        expected = 0
        for _attempt in range(3):
            try:
                self.store.put(
                    self._namespace,
                    entry_id,
                    _value(entry.value, "value"),
                    tags=fields["tags"],
                    metadata={**fields, "task_id": task_id},
                    actor=actor,
                    task_id=task_id,
                    source=SOURCE,
                    expected_version=expected,
                )
                return True
            except VersionConflict:
                existing = self.store.get(
                    self._namespace, entry_id, include_deleted=True
                )
                if existing is not None and not existing.deleted:
                    logger.warning("memory entry %s exists already; kept", entry_id)
                    return False
                expected = existing.version if existing is not None else 0
        raise VersionConflict(f"memory entry {entry_id}", expected=expected, actual=-1)

    def read(self, entry_id: str) -> MemoryEntry | None:
        """The live entry with this id, or None."""
        memory = self.store.get(self._namespace, _text(entry_id, "entry_id", 1024))
        return _to_entry(memory) if memory is not None else None

    def update(self, entry: MemoryEntry, *, task_id: str | None = None) -> bool:
        """Writes a new version of the entry with ``entry.id``, by
        ``entry.provenance["updated_by"]`` for ``task_id``; False if there is
        no live entry with that id."""
        entry_id = _text(entry.id, "id", 1024)
        fields = _entry_fields(entry)
        actor = _provenance(
            entry.provenance.get("updated_by"), "updated_by", UNKNOWN_MODULE
        )
        try:
            self.store.update(
                self._namespace,
                entry_id,
                _value(entry.value, "value"),
                tags=fields["tags"],
                metadata=fields,
                actor=actor,
                task_id=_provenance(task_id, "task_id", None),
                source=SOURCE,
                force=True,
            )
        except NotFound:
            return False
        return True

    def delete(self, entry_id: str, *, reason: str | None = None) -> bool:
        """Soft-deletes the entry; False if there is no live entry with that id."""
        checked = _text(entry_id, "entry_id", 1024)
        for _attempt in range(20):
            memory = self.store.get(self._namespace, checked)
            if memory is None:
                return False
            try:
                self.store.delete(
                    self._namespace,
                    checked,
                    reason=reason,
                    source=SOURCE,
                    expected_version=memory.version,
                )
            except VersionConflict:
                continue  # changed meanwhile: look again
            except NotFound:
                return False
            return True
        raise VersionConflict(f"memory entry {checked}", expected=-1, actual=-1)

    def list_all(self) -> list[MemoryEntry]:
        """Every live entry, newest first."""
        return self.query()

    def query(
        self,
        category: str | None = None,
        tags: list[str] | None = None,
        entity_type: str | None = None,
        entity_id: str | None = None,
        key: str | None = None,
    ) -> list[MemoryEntry]:
        """Live entries matching every filter given, newest first; ``tags``
        matches entries with any of them."""
        where: dict[str, str] = {}
        for field, given, limit in (
            ("category", category, 256),
            ("entity_type", entity_type, 256),
            ("entity_id", entity_id, 1024),
            ("key", key, 1024),
        ):
            if given is not None:
                where[field] = _text(given, field, limit)
        wanted = _tags(tags) if tags is not None else None
        if wanted is not None and not wanted:
            return []
        found: list[MemoryEntry] = []
        offset = 0
        while True:
            page = self.store.search(
                namespace_prefix=self._namespace,
                tags_any=wanted,
                where=where or None,
                order_by="-updated_at",
                limit=PAGE,
                offset=offset,
            )
            found.extend(_to_entry(m) for m in page if m.namespace == self._namespace)
            if len(page) < PAGE:
                return found
            offset += PAGE


class SQLiteBackend(StoreBackend):
    """Entries in a SQLite file (``memory.db``), as an event log."""

    def __init__(self, db_path: str | Path, *, namespace: str = NAMESPACE) -> None:
        path = _path(db_path, "db_path")
        _make_dir(path.parent, "db_path")
        self.db_path = path
        """The SQLite file."""
        super().__init__(f"sqlite:///{path}", namespace=namespace)


class JSONBackend(StoreBackend):
    """Entries in a JSONL log directory (``log.jsonl`` and its index)."""

    def __init__(self, path: str | Path, *, namespace: str = NAMESPACE) -> None:
        directory = _path(path, "path")
        _make_dir(directory, "path")
        self.path = directory
        """The directory of the JSONL log."""
        super().__init__(f"jsonl:///{directory}", namespace=namespace)


class MemoryModule:
    """Memories of an application across sessions: create, read, update,
    delete and find them by category, entity, tags or key."""

    def __init__(
        self,
        storage_backend: StorageBackend | None = None,
        storage_dir: str | Path | None = None,
        backend_type: str = "sqlite",
    ) -> None:
        if not isinstance(backend_type, str) or backend_type.lower() not in (
            BACKEND_TYPES
        ):
            raise ValidationError("backend_type", "must be 'sqlite' or 'json'")
        self.storage_dir: Path | None = None
        """Where the backend's files are (None when a backend was given)."""
        if storage_backend is not None:
            if not isinstance(storage_backend, StorageBackend):
                raise ValidationError(
                    "storage_backend", "must be a StorageBackend (or None)"
                )
            self.backend: StorageBackend = storage_backend
            return
        directory = _path(
            storage_dir if storage_dir is not None else default_storage_dir(),
            "storage_dir",
        )
        _make_dir(directory, "storage_dir")
        self.storage_dir = directory
        if backend_type.lower() == "sqlite":
            self.backend = SQLiteBackend(directory / "memory.db")
        else:
            self.backend = JSONBackend(directory / "memory_jsonl")

    # ---- lifecycle -----------------------------------------------------------

    def bootstrap(self) -> None:
        """Makes the storage ready; call it on startup (idempotent)."""
        self.backend.bootstrap()

    def shutdown(self) -> None:
        """Closes the storage; every write is durable when its call returns."""
        self.backend.shutdown()

    def __enter__(self) -> MemoryModule:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # ---- CRUD ------------------------------------------------------------------

    def create_memory(  # noqa: PLR0917 (the original takes them by position)
        self,
        category: str,
        key: str,
        value: dict[str, Any],
        entity_type: str,
        entity_id: str | None = None,
        tags: list[str] | None = None,
        module: str | None = None,
        task_id: str | None = None,
    ) -> str:
        """Stores a new entry; returns its id."""
        entry = _new_entry(
            str(uuid4()),
            category=category,
            key=key,
            value=value,
            entity_type=entity_type,
            entity_id=entity_id,
            tags=tags,
        )
        entry.provenance = _created_by(module, task_id)
        self.backend.create(entry)
        return entry.id

    def get_memory(self, memory_id: str) -> MemoryEntry | None:
        """The live entry with this id, or None."""
        return self.backend.read(_text(memory_id, "memory_id", 1024))

    def update_memory(
        self,
        memory_id: str,
        value: dict[str, Any],
        tags: list[str] | None = None,
        module: str | None = None,
        task_id: str | None = None,
    ) -> bool:
        """Replaces an entry's value (and its tags, when given); False if no
        live entry has this id."""
        checked_id = _text(memory_id, "memory_id", 1024)
        new_value = _value(value, "value")
        new_tags = _tags(tags) if tags is not None else None
        updated_by = _provenance(module, "module", None)
        checked_task = _provenance(task_id, "task_id", None)
        entry = self.backend.read(checked_id)
        if entry is None:
            return False
        provenance = dict(entry.provenance)
        provenance["updated_by"] = updated_by or UNKNOWN_MODULE
        provenance["updated_at"] = datetime.now().isoformat()
        entry = entry.model_copy(
            update={
                "value": new_value,
                "tags": new_tags if new_tags is not None else entry.tags,
                "timestamp": datetime.now(),
                "provenance": provenance,
            }
        )
        if isinstance(self.backend, StoreBackend):
            return self.backend.update(entry, task_id=checked_task)
        return self.backend.update(entry) is not False

    def delete_memory(self, memory_id: str) -> bool:
        """Deletes an entry (softly: its history stays in the log); False if
        no live entry has this id."""
        checked_id = _text(memory_id, "memory_id", 1024)
        if isinstance(self.backend, StoreBackend):
            return self.backend.delete(checked_id)
        if self.backend.read(checked_id) is None:
            return False
        return self.backend.delete(checked_id) is not False

    def clear_all(self) -> int:
        """Deletes every entry (softly, with the reason ``clear_all``); returns
        how many."""
        cleared = 0
        for entry in self.backend.list_all():
            if isinstance(self.backend, StoreBackend):
                cleared += self.backend.delete(entry.id, reason="clear_all")
            else:
                cleared += self.backend.delete(entry.id) is not False
        return cleared

    # ---- queries ---------------------------------------------------------------

    def list_memories(self) -> list[MemoryEntry]:
        """Every live entry, newest first."""
        return self.backend.list_all()

    def get_memories_by_category(self, category: str) -> list[MemoryEntry]:
        """The entries of a category, newest first."""
        return self.backend.query(category=_text(category, "category", 256))

    def get_memories_by_entity(
        self, entity_type: str, entity_id: str | None = None
    ) -> list[MemoryEntry]:
        """The entries about an entity type (and one entity of it), newest first."""
        return self.search_memories(
            entity_type=_text(entity_type, "entity_type", 256), entity_id=entity_id
        )

    def get_memories_by_tags(self, tags: list[str]) -> list[MemoryEntry]:
        """The entries with any of these tags, newest first."""
        if tags is None:
            raise ValidationError("tags", "must be a list of strings")
        return self.search_memories(tags=tags)

    def get_memory_by_key(
        self, key: str, *, category: str | None = None
    ) -> MemoryEntry | None:
        """The most recently changed entry with this key (in ``category``, if
        given), or None."""
        found = self.search_memories(key=key, category=category)
        return found[0] if found else None

    def search_memories(
        self,
        category: str | None = None,
        entity_type: str | None = None,
        entity_id: str | None = None,
        tags: list[str] | None = None,
        key: str | None = None,
    ) -> list[MemoryEntry]:
        """Entries matching every filter given (tags: any of them), newest first."""
        return self.backend.query(
            category=_optional_text(category, "category", 256),
            tags=_tags(tags) if tags is not None else None,
            entity_type=_optional_text(entity_type, "entity_type", 256),
            entity_id=_optional_text(entity_id, "entity_id", 1024),
            key=_optional_text(key, "key", 1024),
        )

    # ---- convenience -------------------------------------------------------------

    def set_user_preference(self, key: str, value: dict[str, Any]) -> str:
        """Sets a preference (creating or updating it); returns its entry's id."""
        return self._set_single(
            "preferences", key, value, "user_preference", "preferences_manager"
        )

    def get_user_preferences(self) -> dict[str, Any]:
        """Every preference: key to value (the newest, if a key repeats)."""
        preferences: dict[str, Any] = {}
        for entry in self.backend.query(category="preferences"):
            preferences.setdefault(entry.key, entry.value)
        return preferences

    def set_device_info(self, device_info: dict[str, Any]) -> str:
        """Stores the device's information; returns its entry's id."""
        return self._set_single(
            "devices", "device_info", device_info, "device", "device_manager"
        )

    def get_device_info(self) -> dict[str, Any]:
        """The device's information, or {} if none was stored."""
        entry = self.get_memory_by_key("device_info", category="devices")
        return entry.value if entry is not None else {}

    def record_task(
        self,
        task_id: str,
        task_data: dict[str, Any],
        tags: list[str] | None = None,
    ) -> str:
        """Records one execution of a task (a new entry each call); returns its id."""
        checked = _text(task_id, "task_id", 256)
        return self.create_memory(
            category="tasks",
            key=f"task_{checked}",
            value=task_data,
            entity_type="task",
            entity_id=checked,
            tags=["executed"] if tags is None else tags,
            module="task_executor",
            task_id=checked,
        )

    def get_task_history(self, limit: int | None = None) -> list[MemoryEntry]:
        """Recorded tasks, newest first; at most ``limit`` of them."""
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ValidationError("limit", "must be an integer >= 1 (or None for all)")
        tasks = self.backend.query(category="tasks")
        return tasks[:limit] if limit is not None else tasks

    def _set_single(
        self,
        category: str,
        key: str,
        value: dict[str, Any],
        entity_type: str,
        module: str,
    ) -> str:
        """Updates the newest entry with this key in the category, or creates
        one whose id derives from category and key, so that racing first
        calls meet at one entry."""
        checked_key = _text(key, "key", 1024)
        checked_value = _value(value, "value")
        for _attempt in range(3):
            existing = self.get_memory_by_key(checked_key, category=category)
            if existing is not None:
                if self.update_memory(existing.id, checked_value, module=module):
                    return existing.id
                continue  # deleted meanwhile
            entry = _new_entry(
                str(uuid5(NAMESPACE_URL, json.dumps([SOURCE, category, checked_key]))),
                category=category,
                key=checked_key,
                value=checked_value,
                entity_type=entity_type,
                entity_id=None,
                tags=None,
            )
            entry.provenance = _created_by(module, None)
            if self.backend.create(entry) is not False:
                return entry.id
        raise VersionConflict(f"{category}/{checked_key}", expected=-1, actual=-1)


# ---- checks and conversions ------------------------------------------------------


def _text(value: object, field: str, max_length: int) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError(field, "must be a non-empty string")
    checked = check_optional_text(value, field, max_length=max_length)
    assert checked is not None
    return checked


def _optional_text(value: object, field: str, max_length: int) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and not value:
        raise ValidationError(field, "must be a non-empty string (or None for any)")
    return _text(value, field, max_length)


def _provenance(value: object, field: str, default: str | None) -> str | None:
    """Provenance text, with the original's placeholder (``"unknown"``,
    ``"none"``) read as no value."""
    if value is None or (default is not None and value == default):
        return None
    return _text(value, field, 256)


def _value(value: object, field: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(field, "must be a dict (a JSON object)")
    return dict(value)


def _tags(tags: object) -> list[str]:
    """Tags as given, each once, in the order first given."""
    check_tags(tags)
    assert isinstance(tags, Iterable)
    return list(dict.fromkeys(tags))


def _path(value: object, field: str) -> Path:
    if not isinstance(value, str | Path) or not str(value):
        raise ValidationError(field, "must be a path (str or pathlib.Path)")
    text = str(value)
    if "?" in text or "#" in text:
        raise ValidationError(field, "must not contain '?' or '#'")
    return Path(text).expanduser().resolve()


def _make_dir(directory: Path, field: str) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValidationError(
            field, f"directory {directory} cannot be created: {e.strerror}"
        ) from None


def _new_entry(
    entry_id: str,
    *,
    category: object,
    key: object,
    value: object,
    entity_type: object,
    entity_id: object,
    tags: object,
) -> MemoryEntry:
    return MemoryEntry(
        id=entry_id,
        category=_text(category, "category", 256),
        key=_text(key, "key", 1024),
        value=_value(value, "value"),
        tags=_tags(tags) if tags is not None else [],
        entity_type=_text(entity_type, "entity_type", 256),
        entity_id=_optional_text(entity_id, "entity_id", 1024),
    )


def _created_by(module: object, task_id: object) -> dict[str, str]:
    return {
        "module": _provenance(module, "module", None) or UNKNOWN_MODULE,
        "task_id": _provenance(task_id, "task_id", None) or NO_TASK,
        "created_at": datetime.now().isoformat(),
    }


def _entry_fields(entry: MemoryEntry) -> dict[str, Any]:
    """The checked fields of an entry, as the metadata that holds them."""
    return {
        "category": _text(entry.category, "category", 256),
        "key": _text(entry.key, "key", 1024),
        "entity_type": _text(entry.entity_type, "entity_type", 256),
        "entity_id": _optional_text(entry.entity_id, "entity_id", 1024),
        "tags": _tags(entry.tags),
    }


def _local(moment: datetime) -> datetime:
    """An aware time as naive local time, as ``datetime.now()`` gives."""
    return moment.astimezone().replace(tzinfo=None)


def _to_entry(memory: Memory) -> MemoryEntry:
    meta = memory.metadata
    tags = meta.get("tags")
    if not isinstance(tags, list) or set(tags) != memory.tags:
        tags = sorted(memory.tags)
    provenance = {
        "module": memory.created_by or UNKNOWN_MODULE,
        "task_id": str(meta.get("task_id") or NO_TASK),
        "created_at": _local(memory.created_at).isoformat(),
    }
    if memory.version > 1:
        provenance["updated_by"] = memory.updated_by or UNKNOWN_MODULE
        provenance["updated_at"] = _local(memory.updated_at).isoformat()
    value = memory.value
    return MemoryEntry(
        id=memory.key,
        category=str(meta.get("category", "")),
        key=str(meta.get("key", "")),
        value=value if isinstance(value, dict) else {"value": value},
        tags=tags,
        entity_type=str(meta.get("entity_type", "")),
        entity_id=entity_id
        if isinstance(entity_id := meta.get("entity_id"), str)
        else None,
        timestamp=_local(memory.updated_at),
        provenance=provenance,
    )
