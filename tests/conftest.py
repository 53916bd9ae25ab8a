"""One parametrised fixture runs the behavioural suite on every backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import mnemolog
from mnemolog import MemoryStore

BACKENDS = ["memory", "sqlite"]


def backend_url(backend: str, tmp_path: Path) -> str:
    """A fresh store URL of the given backend."""
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    raise AssertionError(backend)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, tmp_path: Path) -> str:
    return backend_url(backend, tmp_path)


@pytest.fixture
def store(store_url: str) -> Iterator[MemoryStore]:
    with mnemolog.open(store_url) as opened:
        yield opened
