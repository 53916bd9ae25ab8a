"""ProjectMemory (LunaCore phase 5) on a mnemolog store: versioned artifacts by
tenant, project and key, with metadata merged across versions and an ACL hook.

Code written against ``services.memory`` and ``core.artifacts`` runs once its
imports name this module: ``ProjectMemory``, ``InMemProjectMemory``,
``FileProjectMemory``, ``Artifact`` and ``ArtifactId`` keep their names,
arguments, return shapes and errors. ``StoreProjectMemory(url)`` is the same
on any store URL (PostgreSQL included).

Where an artifact lives: ``tenant_id`` is the mnemolog tenant, ``project_id``
the namespace ``project:<project_id>``, ``key`` the memory's key, ``data`` its
value (str or bytes), ``meta`` its metadata, and the artifact type the tag
``artifact_type:<type>``. ``InMemProjectMemory`` opens ``memory://``;
``FileProjectMemory(root_dir)`` opens ``<root_dir>/project_memory.db``
(SQLite), creating ``root_dir`` if it is missing.

Choices where the original is vague, or could not be kept:

- Versions are the memory's own versions in the log: one per put (the same
  data again still makes a version) and never reused, so a put after
  ``delete(key)`` continues past the erased numbers instead of restarting at 1.
- A put's ``meta`` is merged (top-level keys, the new winning) over the meta of
  the version ``get(key)`` returns; after ``delete(key)`` it starts empty.
  Metadata keys are non-empty and hold no ``.`` and values are JSON (mnemolog
  queries nested metadata as ``a.b``).
- ``delete(key)`` erases the key (mnemolog's ``erase_memory``): every version's
  content becomes unreadable for good, while the audit timeline keeps who
  erased it and when. ``delete(key, version=N)`` withdraws that one version:
  the facade no longer returns or lists it, but the log keeps it until the key
  is deleted. The withdrawn numbers are kept in the namespace
  ``app:project_memory:<project_id>`` under the same key, so that
  ``project:<project_id>`` holds artifacts only. Both return False when there
  was nothing to delete.
- ``acl_check(tenant_id, project_id, key, op)``, ``op`` one of ``write``,
  ``read``, ``list``, ``delete``, is asked once per call, through the store's
  own ``acl_check`` setting, before anything is read or written; it runs in a
  worker thread, so it must be a plain function. False raises
  :class:`ProjectAccessDenied`: a ``PermissionError`` whose message starts
  ``Access denied for <tenant>/<project>/<key>`` as before, and a mnemolog
  ``AccessDenied``. Assigning ``memory.acl_check`` takes effect at the next
  call. Calls made directly on ``memory.store`` are checked too, with
  mnemolog's action names (and key ``""`` for calls not about one key).
- ``Artifact`` is frozen. Its ``id`` is derived from the memory and the
  version, so one version keeps one id across restarts; ``created_at`` is when
  that version was written, naive UTC as before; ``type`` is the
  ``artifact_type`` its put was given. ``to_json()`` gives the original's dict
  (bytes as standard base64, with ``data_type``) and ``from_json`` reads it;
  ``model_dump_json``/``model_validate_json`` round-trip the same form. This
  is the phase-5 shape; a later LunaCore ``Artifact`` (an ``artifact_type``
  field, ``to_json()`` returning a string) is not what this module keeps.
- Bad input raises ``mnemolog.ValidationError`` (a ``ValueError``) whose
  ``field`` is the argument's name: ``tenant_id`` (1-64 letters, digits and
  ``_.-``), ``project_id`` (1-128 letters, digits and ``_.@+=-``), ``key``
  (1-1024 characters, no control characters), ``data`` (str or bytes, within
  the store's ``max_value_bytes``; bytes count as base64), ``meta``,
  ``artifact_type`` (a string of at most 114 characters), ``version`` (an
  integer >= 1).
- Each method runs the store in a worker thread. Writes of one key through one
  instance take turns on a lock; writers in other instances or processes meet
  mnemolog's version check and retry, up to the store's ``write_retries``, then
  raise ``mnemolog.VersionConflict``.
- Memories written directly through mnemolog into ``project:<project_id>`` read
  as artifacts (values other than str or bytes as their JSON text). One
  soft-deleted through mnemolog is hidden until it is restored or put again,
  and then comes back with its versions.
- New: ``close()`` (also ``async with``) and ``store``, the mnemolog store
  underneath. The file backend is one SQLite file, not a JSON file per
  version: files written by the original are not read.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import inspect
import random
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from uuid import uuid5

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from mnemolog.config import Settings
from mnemolog.domain.errors import (
    AccessDenied,
    NotFound,
    ValidationError,
    VersionConflict,
)
from mnemolog.domain.values import (
    MAX_TAG_LENGTH,
    Namespace,
    check_key,
    check_metadata,
    check_tenant,
    check_text,
)
from mnemolog.models import Memory
from mnemolog.store import MemoryStore

__all__ = [
    "AclCheck",
    "Artifact",
    "ArtifactId",
    "FileProjectMemory",
    "InMemProjectMemory",
    "ProjectAccessDenied",
    "ProjectMemory",
    "StoreProjectMemory",
]

P = ParamSpec("P")
R = TypeVar("R")

AclCheck = Callable[[str, str, str, str], bool]
"""``acl_check(tenant_id, project_id, key, op) -> bool``; True allows."""

TYPE_TAG = "artifact_type:"
"""Prefix of the tag that holds an artifact's type."""
MAX_TYPE_LENGTH = MAX_TAG_LENGTH - len(TYPE_TAG)
WITHDRAWN = "app:project_memory"
"""Parent of the namespaces that list each key's withdrawn versions."""
SOURCE = "project_memory"
"""Provenance ``source`` of every write this facade makes."""
LOCK_STRIPES = 64
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ArtifactId(BaseModel):
    """The address of one version of an artifact."""

    model_config = ConfigDict(frozen=True)

    tenant_id: str
    project_id: str
    key: str
    version: int


class Artifact(BaseModel):
    """One version of an artifact. Its JSON form carries bytes as base64 and
    names what ``data`` holds in ``data_type`` (``"str"`` or ``"bytes"``)."""

    model_config = ConfigDict(frozen=True, ser_json_bytes="base64")

    id: str
    type: str
    tenant_id: str
    project_id: str
    key: str
    version: int
    created_at: datetime
    meta: dict[str, Any] = Field(default_factory=dict)
    data: str | bytes

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: bytes as base64, ``data_type`` saying which."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Artifact:
        """The artifact a :meth:`to_json` dict describes."""
        return cls.model_validate(data)

    @model_validator(mode="before")
    @classmethod
    def _decode_data(cls, values: Any) -> Any:
        if not isinstance(values, Mapping) or "data_type" not in values:
            return values
        fields = dict(values)
        data_type = fields.pop("data_type")
        if data_type == "bytes":
            text = fields.get("data")
            if not isinstance(text, str):
                raise ValueError("data: with data_type 'bytes' it must be base64 text")
            try:
                fields["data"] = base64.b64decode(text, validate=True)
            except binascii.Error:
                raise ValueError("data: is not valid base64") from None
        elif data_type != "str":
            raise ValueError("data_type must be 'str' or 'bytes'")
        return fields

    @model_serializer(mode="wrap")
    def _encode_data(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, Any]:
        fields: dict[str, Any] = handler(self)
        if info.mode_is_json() and "data" in fields:
            if isinstance(self.data, bytes):
                fields["data"] = base64.b64encode(self.data).decode("ascii")
                fields["data_type"] = "bytes"
            else:
                fields["data_type"] = "str"
        return fields


class ProjectAccessDenied(AccessDenied):
    """``acl_check`` refused the call; nothing was written."""

    def __init__(self, tenant_id: str, project_id: str, key: str, op: str) -> None:
        super().__init__("anonymous", op, tenant_id, f"project:{project_id}")
        self.args = (
            f"Access denied for {tenant_id}/{project_id}/{key} "
            f"(acl_check refused {op!r})",
        )
        self.project_id = project_id
        self.key = key
        self.op = op


def allow_all(tenant_id: str, project_id: str, key: str, op: str) -> bool:
    """The default ``acl_check``: everything is allowed."""
    return True


class ProjectMemory(ABC):
    """Versioned artifacts by tenant, project and key; every method async."""

    def __init__(self, acl_check: AclCheck | None = None) -> None:
        if acl_check is not None and (
            not callable(acl_check) or inspect.iscoroutinefunction(acl_check)
        ):
            raise ValidationError(
                "acl_check",
                "must be a plain function (tenant_id, project_id, key, op) -> bool, "
                "not a coroutine function",
            )
        self.acl_check: AclCheck = acl_check or allow_all

    @abstractmethod
    async def put(  # noqa: PLR0917 - the original's positional order
        self,
        key: str,
        data: str | bytes,
        meta: dict[str, Any] | None = None,
        tenant_id: str = "default",
        project_id: str = "default",
        artifact_type: str = "data",
    ) -> Artifact:
        """Stores a new version of ``key`` and returns it."""

    @abstractmethod
    async def get(
        self,
        key: str,
        version: int | None = None,
        tenant_id: str = "default",
        project_id: str = "default",
    ) -> Artifact | None:
        """The latest version of ``key``, or ``version``; None if there is none."""

    @abstractmethod
    async def list_versions(
        self, key: str, tenant_id: str = "default", project_id: str = "default"
    ) -> list[int]:
        """The versions of ``key``, oldest first."""

    @abstractmethod
    async def delete(
        self,
        key: str,
        version: int | None = None,
        tenant_id: str = "default",
        project_id: str = "default",
    ) -> bool:
        """Deletes one version, or every version; False if there was none."""


@dataclass(frozen=True)
class _Address:
    tenant_id: str
    project_id: str
    key: str

    @property
    def namespace(self) -> str:
        return f"project:{self.project_id}"

    @property
    def withdrawn_namespace(self) -> str:
        return f"{WITHDRAWN}:{self.project_id}"


@dataclass
class _Call:
    """The facade call a worker thread is making: its op and the hook's answers."""

    op: str
    answers: dict[tuple[str, str, str, str], bool] = field(default_factory=dict)


_CALL: ContextVar[_Call | None] = ContextVar("project_memory_call", default=None)


class StoreProjectMemory(ProjectMemory):
    """ProjectMemory on the mnemolog store at ``url``."""

    def __init__(self, url: str, acl_check: AclCheck | None = None) -> None:
        super().__init__(acl_check)
        self._store = MemoryStore.open(url, settings=Settings(acl_check=self._allows))
        self._locks = tuple(threading.Lock() for _ in range(LOCK_STRIPES))

    @property
    def store(self) -> MemoryStore:
        """The mnemolog store underneath (its calls are checked by acl_check)."""
        return self._store

    async def close(self) -> None:
        """Closes the store's connections (an in-memory store is gone)."""
        await asyncio.to_thread(self._store.close)

    async def __aenter__(self) -> StoreProjectMemory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- the API -------------------------------------------------------------

    async def put(  # noqa: PLR0917 - the original's positional order
        self,
        key: str,
        data: str | bytes,
        meta: dict[str, Any] | None = None,
        tenant_id: str = "default",
        project_id: str = "default",
        artifact_type: str = "data",
    ) -> Artifact:
        """Stores a new version of ``key``, its meta merged over the latest's."""
        address = _address(tenant_id, project_id, key)
        value = _check_data(data)
        with _renamed():
            delta = check_metadata(meta)
        tag = _type_tag(artifact_type)
        return await self._run("write", address, self._put, address, value, delta, tag)

    async def get(
        self,
        key: str,
        version: int | None = None,
        tenant_id: str = "default",
        project_id: str = "default",
    ) -> Artifact | None:
        """The latest version of ``key``, or ``version``; None if there is none."""
        address = _address(tenant_id, project_id, key)
        wanted = _check_version(version)
        return await self._run("read", address, self._get, address, wanted)

    async def list_versions(
        self, key: str, tenant_id: str = "default", project_id: str = "default"
    ) -> list[int]:
        """The versions of ``key``, oldest first ([] if there are none)."""
        address = _address(tenant_id, project_id, key)
        return await self._run("list", address, self._list_versions, address)

    async def delete(
        self,
        key: str,
        version: int | None = None,
        tenant_id: str = "default",
        project_id: str = "default",
    ) -> bool:
        """Erases every version of ``key``, or withdraws ``version``; False if
        there was nothing to delete."""
        address = _address(tenant_id, project_id, key)
        wanted = _check_version(version)
        return await self._run("delete", address, self._delete, address, wanted)

    # ---- in a worker thread --------------------------------------------------

    async def _run(
        self,
        op: str,
        address: _Address,
        method: Callable[P, R],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        def call() -> R:
            token = _CALL.set(_Call(op))
            try:
                with _renamed():
                    return method(*args, **kwargs)
            except AccessDenied:
                raise ProjectAccessDenied(
                    address.tenant_id, address.project_id, address.key, op
                ) from None
            finally:
                _CALL.reset(token)

        return await asyncio.to_thread(call)

    def _allows(
        self, tenant: str, namespace: str | None, key: str | None, action: str
    ) -> bool:
        """The store's acl_check: asks ours, once per facade call."""
        call = _CALL.get()
        question = (
            tenant,
            _project_of(namespace),
            key or "",
            call.op if call is not None else action,
        )
        if call is None:
            return bool(self.acl_check(*question))
        if question not in call.answers:
            call.answers[question] = bool(self.acl_check(*question))
        return call.answers[question]

    def _lock(self, address: _Address) -> threading.Lock:
        return self._locks[hash(address) % LOCK_STRIPES]

    def _put(
        self, address: _Address, value: str | bytes, delta: dict[str, Any], tag: str
    ) -> Artifact:
        store, ns = self._store, address.namespace
        with self._lock(address):
            stream_version = 0  # what a VersionConflict said the stream holds
            conflict: VersionConflict | None = None
            for attempt in range(store.settings.write_retries + 1):
                current = store.get(
                    ns, address.key, include_deleted=True, tenant=address.tenant_id
                )
                base: dict[str, Any] = {}
                if current is None:  # never written, or erased
                    expected = stream_version
                elif current.deleted:  # through mnemolog: the put restores it
                    base, expected = current.metadata, current.version
                else:
                    latest = self._latest(address, current)
                    base = latest.metadata if latest is not None else {}
                    expected = current.version
                try:
                    memory = store.put(
                        ns,
                        address.key,
                        value,
                        metadata={**base, **delta},
                        tags=[tag],
                        force=True,
                        expected_version=expected,
                        source=SOURCE,
                        tenant=address.tenant_id,
                    )
                except VersionConflict as refused:
                    stream_version, conflict = refused.actual, refused
                    _back_off(attempt)
                    continue
                return _artifact(address, memory)
        assert conflict is not None
        raise conflict

    def _get(self, address: _Address, version: int | None) -> Artifact | None:
        store = self._store
        current = store.get(address.namespace, address.key, tenant=address.tenant_id)
        if current is None:
            return None
        if version is None:
            latest = self._latest(address, current)
            return _artifact(address, latest) if latest is not None else None
        if version in self._withdrawn(address):
            return None
        found = store.get(
            address.namespace, address.key, version=version, tenant=address.tenant_id
        )
        return _artifact(address, found) if found is not None else None

    def _list_versions(self, address: _Address) -> list[int]:
        store = self._store
        if store.get(address.namespace, address.key, tenant=address.tenant_id) is None:
            return []
        withdrawn = self._withdrawn(address)
        return [
            change.version
            for change in store.history(
                address.namespace, address.key, tenant=address.tenant_id
            )
            if not change.memory.deleted and change.version not in withdrawn
        ]

    def _delete(self, address: _Address, version: int | None) -> bool:
        store, ns = self._store, address.namespace
        with self._lock(address):
            current = store.get(ns, address.key, tenant=address.tenant_id)
            if current is None:
                return False
            if version is None:
                if self._latest(address, current) is None:
                    return False
                return self._erase(address)
            if version in self._withdrawn(address) or (
                store.get(ns, address.key, version=version, tenant=address.tenant_id)
                is None
            ):
                return False
            self._withdraw(address, version)
            return True

    def _erase(self, address: _Address) -> bool:
        """Erases the key, and its list of withdrawn versions (which names it)."""
        store, reason = self._store, "deleted through ProjectMemory"
        try:
            store.erase_memory(
                address.namespace, address.key, reason=reason, tenant=address.tenant_id
            )
        except NotFound:  # erased by another writer meanwhile
            return False
        record = store.get(
            address.withdrawn_namespace,
            address.key,
            include_deleted=True,
            tenant=address.tenant_id,
        )
        if record is not None:
            store.erase_memory(
                address.withdrawn_namespace,
                address.key,
                reason=reason,
                tenant=address.tenant_id,
            )
        return True

    def _latest(self, address: _Address, current: Memory) -> Memory | None:
        """The newest version not withdrawn, of a memory that is not deleted."""
        withdrawn = self._withdrawn(address)
        if current.version not in withdrawn:
            return current
        changes = self._store.history(
            address.namespace, address.key, tenant=address.tenant_id
        )
        for change in reversed(changes):
            if not change.memory.deleted and change.version not in withdrawn:
                return change.memory
        return None

    def _withdrawn(self, address: _Address) -> frozenset[int]:
        record = self._store.get(
            address.withdrawn_namespace, address.key, tenant=address.tenant_id
        )
        if record is None or not isinstance(record.value, list):
            return frozenset()
        return frozenset(v for v in record.value if isinstance(v, int))

    def _withdraw(self, address: _Address, version: int) -> None:
        store, ns = self._store, address.withdrawn_namespace
        stream_version = 0
        conflict: VersionConflict | None = None
        for attempt in range(store.settings.write_retries + 1):
            record = store.get(
                ns, address.key, include_deleted=True, tenant=address.tenant_id
            )
            versions = {version}
            expected = stream_version
            if record is not None:
                expected = record.version
                if not record.deleted and isinstance(record.value, list):
                    versions.update(v for v in record.value if isinstance(v, int))
            try:
                store.put(
                    ns,
                    address.key,
                    sorted(versions),
                    expected_version=expected,
                    source=SOURCE,
                    tenant=address.tenant_id,
                )
            except VersionConflict as refused:
                stream_version, conflict = refused.actual, refused
                _back_off(attempt)
                continue
            return
        assert conflict is not None
        raise conflict


class InMemProjectMemory(StoreProjectMemory):
    """ProjectMemory in this process only (``memory://``); gone when closed."""

    def __init__(self, acl_check: AclCheck | None = None) -> None:
        super().__init__("memory://", acl_check)


class FileProjectMemory(StoreProjectMemory):
    """ProjectMemory in ``<root_dir>/project_memory.db``; survives restarts."""

    def __init__(
        self,
        root_dir: str | Path = ".lunacore/memory",
        acl_check: AclCheck | None = None,
    ) -> None:
        self.root_dir = Path(root_dir)
        self.root_dir.mkdir(parents=True, exist_ok=True)
        database = (self.root_dir / "project_memory.db").resolve()
        super().__init__(f"sqlite:///{database}", acl_check)


# ---- checks and conversions --------------------------------------------------

FACADE_FIELDS = {
    "tenant": "tenant_id",
    "namespace": "project_id",
    "value": "data",
    "metadata": "meta",
    "tags": "artifact_type",
}
"""Store argument names, as this API calls them."""


@contextmanager
def _renamed() -> Iterator[None]:
    """Re-raises a ValidationError with the field named as this API names it."""
    try:
        yield
    except ValidationError as error:
        head, sep, rest = error.field.partition(".")
        name = FACADE_FIELDS.get(head, head)
        raise ValidationError(f"{name}{sep}{rest}", error.rule) from None


def _address(tenant_id: object, project_id: object, key: object) -> _Address:
    with _renamed():
        tenant = check_tenant(tenant_id)
        checked_key = check_key(key)
    rule = "must be 1-128 of letters, digits and _.@+=- (it names project:<id>)"
    if not isinstance(project_id, str) or ":" in project_id:
        raise ValidationError("project_id", rule)
    try:
        Namespace.parse(f"project:{project_id}")
    except ValidationError:
        raise ValidationError("project_id", rule) from None
    return _Address(tenant, project_id, checked_key)


def _check_data(data: object) -> str | bytes:
    if isinstance(data, str):
        check_text(data, "data")
        return data
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise ValidationError("data", f"must be str or bytes, not {type(data).__name__}")


def _type_tag(artifact_type: object) -> str:
    if not isinstance(artifact_type, str) or len(artifact_type) > MAX_TYPE_LENGTH:
        raise ValidationError(
            "artifact_type", f"must be a string of at most {MAX_TYPE_LENGTH} characters"
        )
    if CONTROL.search(artifact_type):
        raise ValidationError("artifact_type", "must not contain control characters")
    check_text(artifact_type, "artifact_type")
    return TYPE_TAG + artifact_type


def _check_version(version: object) -> int | None:
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValidationError("version", "must be an integer >= 1 (or None)")
    return version


def _back_off(attempt: int) -> None:
    """A short random pause, longer each time, so that writers in other
    processes stop meeting at the same version."""
    time.sleep(random.uniform(0, 0.002) * (attempt + 1))


def _project_of(namespace: str | None) -> str:
    """The project a namespace belongs to (the namespace itself if none)."""
    if namespace is None:
        return ""
    for parent in ("project", WITHDRAWN):
        if namespace.startswith(f"{parent}:"):
            return namespace[len(parent) + 1 :].partition(":")[0]
    return namespace


def _artifact(address: _Address, memory: Memory) -> Artifact:
    value = memory.value
    data = value if isinstance(value, str | bytes) else orjson.dumps(value).decode()
    types = sorted(t for t in memory.tags if t.startswith(TYPE_TAG))
    return Artifact(
        id=str(uuid5(memory.id, str(memory.version))),
        type=types[0][len(TYPE_TAG) :] if types else "data",
        tenant_id=address.tenant_id,
        project_id=address.project_id,
        key=address.key,
        version=memory.version,
        created_at=memory.updated_at.astimezone(UTC).replace(tzinfo=None),
        meta=memory.metadata,
        data=data,
    )
