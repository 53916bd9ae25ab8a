"""One parametrised fixture runs the behavioural suite on every backend."""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from uuid import uuid4

import pytest

import mnemolog
from mnemolog import MemoryStore

BACKENDS = ["memory", "sqlite", "postgres", "jsonl"]

POSTGRES = os.environ.get(
    "MNEMOLOG_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
"""The PostgreSQL server the tests use; each store gets a schema of its own."""
SCHEMA_PREFIX = "mnemolog_test_"
_schemas: list[str] = []


@lru_cache(maxsize=1)
def postgres_unavailable() -> str | None:
    """Why the PostgreSQL tests cannot run here, or None if they can."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (the postgres extra)"
    try:
        with psycopg.connect(POSTGRES, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as e:
        return f"no PostgreSQL server at {POSTGRES}: {e}"
    return None


def require_postgres() -> None:
    """Skips outside CI when there is no server; in CI a missing server fails."""
    reason = postgres_unavailable()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
    pytest.skip(f"{reason} (outside CI, so skipped; CI runs them)")


def postgres_url(**options: str) -> str:
    """The URL of a new, empty store on the test server (a fresh schema,
    dropped at the end of the test session)."""
    require_postgres()
    schema = f"{SCHEMA_PREFIX}{uuid4().hex[:16]}"
    _schemas.append(schema)
    query = "&".join(f"{k}={v}" for k, v in {"schema": schema, **options}.items())
    return f"{POSTGRES}?{query}"


def drop_test_schemas(prefix_only: bool = False) -> None:
    """Drops the schemas this session made (or every test schema left over)."""
    if postgres_unavailable() is not None:
        return
    import psycopg

    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        if prefix_only:
            names = [
                row[0]
                for row in connection.execute(
                    # Not a schema another test run is using right now: each
                    # connection of a store names its schema in application_name.
                    "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s "
                    "AND NOT EXISTS (SELECT 1 FROM pg_stat_activity "
                    "WHERE application_name = 'mnemolog/' || nspname)",
                    (SCHEMA_PREFIX.replace("_", r"\_") + "%",),
                )
            ]
        else:
            names, _schemas[:] = list(_schemas), []
        for name in names:
            connection.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(scope="session", autouse=True)
def _postgres_schemas() -> Iterator[None]:
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        drop_test_schemas(prefix_only=True)  # what an interrupted run left
    yield
    drop_test_schemas()


def backend_url(backend: str, tmp_path: Path) -> str:
    """A fresh store URL of the given backend."""
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    if backend == "postgres":
        return postgres_url()
    if backend == "jsonl":
        return f"jsonl:///{tmp_path / 'store'}"
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


@pytest.fixture(params=["sqlite", "postgres"])
def persistent_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL that outlives one open: a SQLite file, a PostgreSQL schema
    (never the ``store`` fixture's own)."""
    place = tmp_path / "persistent"
    place.mkdir(exist_ok=True)
    return backend_url(str(request.param), place)
