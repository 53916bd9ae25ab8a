"""Long streams load from snapshots and answer exactly as a full replay."""

from __future__ import annotations

import mnemolog
import mnemolog.domain.memory
from mnemolog import MemoryStore


def test_a_long_stream_loads_from_its_snapshot(store_url: str) -> None:
    with mnemolog.open(store_url, snapshot_interval=10) as store:
        for n in range(1, 36):
            store.put("user:a", "k", n, metadata={"n": n}, tags=[f"t{n % 3}"])
        snapshots = store._recorder.fetch_all(
            "SELECT originator_version FROM stored_snapshots ORDER BY 1", ()
        )
        assert [row[0] for row in snapshots] == [10, 20, 30]
        memory_id = mnemolog.domain.memory.Memory.create_id("default", "user:a", "k")
        loaded = store._load(memory_id)
        assert loaded is not None
        assert mnemolog.Memory.from_aggregate(loaded) == store.get("user:a", "k")
        assert [store.get("user:a", "k", version=v).value for v in (9, 10, 11, 35)] == [  # type: ignore[union-attr]
            9,
            10,
            11,
            35,
        ]
        written = store.update("user:a", "k", 36, expected_version=35)
        assert written.version == 36
        assert [h.version for h in store.history("user:a", "k")] == list(range(1, 37))
        assert store.verify().ok


def test_snapshots_do_not_change_what_a_write_sees(store: MemoryStore) -> None:
    for n in range(250):
        store.put("user:a", "k", {"n": n})
    store.delete("user:a", "k")
    restored = store.restore("user:a", "k")
    assert restored.version == 252
    assert restored.value == {"n": 249}
    assert (
        store.history("user:a", "k")[-1].prev_hash
        == store.history("user:a", "k")[-2].hash
    )
