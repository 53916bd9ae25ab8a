"""Events the projection has not applied are caught up: on open, and inline."""

from __future__ import annotations

from pathlib import Path

import mnemolog
from mnemolog import MemoryStore


def write_without_projecting(store: MemoryStore, count: int, prefix: str) -> None:
    """Records events as a process that dies before projecting them would leave them."""
    recorder = store._recorder
    projector, recorder.projector = recorder.projector, None
    try:
        store.put_many(
            [
                {
                    "namespace": "app:gap",
                    "key": f"{prefix}{i}",
                    "value": i,
                    "tags": ["gap"],
                }
                for i in range(count)
            ]
        )
    finally:
        recorder.projector = projector


def test_open_catches_up_events_the_projection_missed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gap.db'}"
    with mnemolog.open(url) as store:
        store.put("app:gap", "before", 0)
        write_without_projecting(store, 2_500, "k")  # more than two pages
        status = store.projections.status()[0]
        assert status.lag == 2_500
        assert store.get("app:gap", "k0") is None  # the read model has not seen it
    with mnemolog.open(url) as store:
        assert store.projections.status()[0].lag == 0
        assert store.get("app:gap", "k2499").value == 2499  # type: ignore[union-attr]
        assert len(store.search(tags_any=["gap"], limit=10_000)) == 2_500


def test_a_write_replays_the_gap_before_its_own_events(store: MemoryStore) -> None:
    write_without_projecting(store, 10, "k")
    assert store.projections.status()[0].lag == 10
    store.put("app:gap", "after", "x")
    assert store.projections.status()[0].lag == 0
    assert {m.key for m in store.search(namespace_prefix="app:gap")} == {
        *(f"k{i}" for i in range(10)),
        "after",
    }


def test_catch_up_reports_what_it_applied(store: MemoryStore) -> None:
    write_without_projecting(store, 7, "k")
    assert store.projections.catch_up() == {
        "current_state": 7,
        "namespaces": 7,
        "audit": 7,
        "sessions": 7,
        "documents": 7,
        "vectors": 7,
        "text": 7,
    }
    assert set(store.projections.catch_up().values()) == {0}
    assert store.get("app:gap", "k6").value == 6  # type: ignore[union-attr]
