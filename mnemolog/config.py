"""Configuration: a URL plus one settings model."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from mnemolog.domain.errors import ValidationError

DEFAULT_URL = "sqlite:///mnemolog.db"
"""With no URL, a SQLite file named mnemolog.db in the working directory."""


class Settings(BaseModel):
    """Everything a store can be told besides its URL."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    default_tenant: str = "default"
    extra_roots: frozenset[str] = frozenset()
    extra_memory_types: frozenset[str] = frozenset()
    default_memory_type: str = "semantic"
    default_importance: float = Field(default=0.5, ge=0.0, le=1.0)
    max_value_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    write_retries: int = Field(default=20, ge=0)
    snapshot_interval: int = Field(default=100, ge=2)
    """A snapshot every this many versions of a memory (see bench/projections.py)."""
    embedder: Any = None
    """An :class:`~mnemolog.embedders.Embedder`: embeds values on put and text
    queries on search. It names the vector index's model and dimensions."""
    embed_fields: Any = None
    """Paths into values whose text is embedded (``"$"``, ``"text"``,
    ``"a.b"``); None embeds every string in the value."""
    vector_model: str | None = None
    """Without an embedder: the model name of the vectors callers give."""
    vector_dims: int | None = Field(default=None, ge=1, le=65_536)
    """Without an embedder: the dimensions of the vectors callers give."""
    ann_threshold: int | None = Field(default=None, ge=1)
    """Tenants with at least this many vectors also get an approximate (HNSW)
    index for similarity search (the ``ann`` extra); None: exact search only."""
    inline_projections: bool = True
    """True: each write applies the read models in its own transaction, so
    reads see it at once (the default; ``open`` also catches up). False: writes
    only append to the log, and projection workers (``mnemolog project
    --follow``, ``store.projections.follow()``) apply them; readers wait for a
    position with ``store.projections.wait()``."""
    ann_expansion: int = Field(default=64, ge=1, le=4096)
    """Candidates the HNSW search explores (``ef``): higher is slower and
    closer to exact (see bench/search.py for recall)."""
    policy: Any = None
    """A :class:`~mnemolog.access.Policy`: who may do what; once set, what it
    does not grant is denied. None: every caller may do everything."""
    acl_check: Any = None
    """``acl_check(tenant, namespace, key, op) -> bool``, asked before every
    call besides the policy; False denies."""
    cipher_keys: tuple[str, ...] = ()
    """Encryption at rest: base64 AES-256 keys (``mnemolog.new_key()``). The
    first encrypts the log, the key table and the read models; all of them
    decrypt (list a new key first to rotate). Empty: no encryption at rest
    (personal fields are still sealed with their subjects' keys)."""
    compress: bool = False
    """zlib-compress each stored event before it is encrypted."""
    quotas: Any = None
    """A :class:`~mnemolog.quotas.Quotas`: limits per tenant, checked in the
    transaction that writes."""
    working_memory_cap: int | None = Field(default=None, ge=1)
    """At most this many live ``working`` memories per namespace: a put over
    it evicts the least recently updated ones (an ``Evicted`` event each, in
    the put's transaction). None: no cap."""
    working_memory_caps: dict[str, StrictInt] = Field(default_factory=dict)
    """Caps for single namespaces, over ``working_memory_cap``."""
    decay_half_lives: dict[str, float] = Field(default_factory=dict)
    """Importance decay: memory type (``*`` for any other) to half-life in
    seconds. Empty: no decay (the default), and reads are not tracked."""
    access_batch: int = Field(default=256, ge=1)
    """Reads buffered before their times are written (with decay on)."""
    consolidator: Any = None
    """The merge callable of the ``llm_based`` consolidation strategy
    (memories, oldest first -> the merged fields); see ``consolidate``."""

    @property
    def vector_index(self) -> tuple[str, int] | None:
        """(model, dims) of the vector index, or None when none is configured."""
        if self.embedder is not None:
            return (self.embedder.name, self.embedder.dims)
        if self.vector_dims is not None:
            return (self.vector_model or "external", self.vector_dims)
        return None


@dataclass(frozen=True)
class Location:
    """Where the log lives, parsed from a URL."""

    backend: str
    sqlite_db_name: str = ""
    synchronous: str = "full"
    postgres: PostgresLocation | None = None
    directory: str = ""
    """The store directory of ``jsonl://`` (its index is ``sqlite_db_name``)."""


@dataclass(frozen=True)
class PostgresLocation:
    """A PostgreSQL database, and the schema that holds one store's tables."""

    host: str
    port: int
    dbname: str
    user: str
    password: str
    schema: str
    pool_size: int
    max_overflow: int


SQLITE_OPTIONS = frozenset({"synchronous"})
POSTGRES_OPTIONS = frozenset({"schema", "pool_size", "max_overflow"})
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def parse_url(url: str | None) -> Location:
    """``memory://``, ``sqlite:///relative.db``, ``sqlite:////absolute.db``,
    ``jsonl:///relative/dir``, ``jsonl:////absolute/dir`` or
    ``postgresql://user:password@host:port/dbname?schema=NAME``."""
    url = url or DEFAULT_URL
    parts = urlsplit(url)
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    known = POSTGRES_OPTIONS if parts.scheme in POSTGRES_SCHEMES else SQLITE_OPTIONS
    unknown = set(options) - known
    if unknown:
        raise ValidationError("url", f"unknown option(s): {', '.join(sorted(unknown))}")
    if parts.scheme in POSTGRES_SCHEMES:
        return Location(
            "postgresql", postgres=_postgres(parts.hostname, parts, options)
        )
    synchronous = options.get("synchronous", "full").lower()
    if synchronous not in ("full", "normal"):
        raise ValidationError("url", "synchronous must be 'full' or 'normal'")
    if parts.scheme == "memory":
        name = f"file:mnemolog-{uuid4().hex}?mode=memory&cache=shared"
        return Location("memory", name, synchronous)
    if parts.scheme == "sqlite":
        if parts.netloc or not parts.path.startswith("/") or len(parts.path) < 2:
            raise ValidationError(
                "url", "a SQLite URL is sqlite:///relative/path.db or sqlite:////abs.db"
            )
        path = Path(parts.path[1:])
        if path.parent and not path.parent.exists():
            raise ValidationError("url", f"directory {path.parent} does not exist")
        return Location("sqlite", str(path), synchronous)
    if parts.scheme == "jsonl":
        return _jsonl(parts, synchronous)
    raise ValidationError(
        "url",
        f"scheme {parts.scheme!r} is not supported; "
        "use memory://, sqlite:///, jsonl:/// or postgresql://",
    )


def _jsonl(parts: Any, synchronous: str) -> Location:
    """A directory holding log.jsonl and its index.db (made when missing)."""
    if parts.netloc or not parts.path.startswith("/") or len(parts.path) < 2:
        raise ValidationError(
            "url", "a JSONL URL is jsonl:///relative/dir or jsonl:////abs/dir"
        )
    if synchronous != "full":
        raise ValidationError(
            "url",
            "synchronous must be 'full' on jsonl:// (index.db holds the keys "
            "that open the file's sealed fields)",
        )
    path = Path(parts.path[1:])
    if not path.parent.exists():
        raise ValidationError("url", f"directory {path.parent} does not exist")
    if path.exists() and not path.is_dir():
        raise ValidationError("url", f"{path} is not a directory")
    return Location("jsonl", str(path / "index.db"), synchronous, directory=str(path))


POSTGRES_SCHEMES = ("postgresql", "postgres")


def _postgres(
    host: str | None, parts: Any, options: dict[str, str]
) -> PostgresLocation:
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname:
        raise ValidationError("url", "a PostgreSQL URL names its database: .../dbname")
    schema = options.get("schema", "mnemolog")
    if not _SCHEMA.fullmatch(schema):
        raise ValidationError(
            "url",
            "schema must be 1-63 lower-case letters, digits or _, "
            "not starting with a digit",
        )
    try:
        port = parts.port or 5432
    except ValueError:
        raise ValidationError("url", "the port must be a number") from None
    sizes = {}
    for name, default in (("pool_size", 5), ("max_overflow", 10)):
        text = options.get(name, str(default))
        if not text.isdigit() or not 0 <= int(text) <= 1000:
            raise ValidationError("url", f"{name} must be a whole number 0-1000")
        sizes[name] = int(text)
    if sizes["pool_size"] < 1:
        raise ValidationError("url", "pool_size must be at least 1")
    return PostgresLocation(
        host=host or "localhost",
        port=port,
        dbname=dbname,
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
        schema=schema,
        pool_size=sizes["pool_size"],
        max_overflow=sizes["max_overflow"],
    )
