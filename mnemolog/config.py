"""Configuration: a URL plus one settings model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

from pydantic import BaseModel, ConfigDict, Field

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
    ann_expansion: int = Field(default=64, ge=1, le=4096)
    """Candidates the HNSW search explores (``ef``): higher is slower and
    closer to exact (see bench/search.py for recall)."""

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
    sqlite_db_name: str
    synchronous: str


def parse_url(url: str | None) -> Location:
    """``memory://``, ``sqlite:///relative.db`` or ``sqlite:////absolute.db``."""
    url = url or DEFAULT_URL
    parts = urlsplit(url)
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(options) - {"synchronous"}
    if unknown:
        raise ValidationError("url", f"unknown option(s): {', '.join(sorted(unknown))}")
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
    raise ValidationError(
        "url", f"scheme {parts.scheme!r} is not supported; use memory:// or sqlite:///"
    )
