"""A writer killed with SIGKILL loses nothing it acknowledged."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mnemolog

WRITER = textwrap.dedent(
    """
    import sys
    import mnemolog

    store = mnemolog.open(sys.argv[1])
    i = int(sys.argv[2])
    while True:
        if i % 10 == 9:
            store.put_many(
                [{"namespace": "app:crash", "key": f"b{i}-{j}", "value": j} for j in range(5)]
            )
        else:
            store.put("app:crash", f"k{i}", {"i": i}, tags=[f"t{i % 3}"], metadata={"i": i})
        store.put("app:crash", "counter", i)
        print(i, flush=True)
        i += 1
    """
)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_loses_no_acknowledged_write(tmp_path: Path, seed: int) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    mnemolog.open(url).close()  # tables exist before the writer races to create them
    rng = random.Random(seed)
    acknowledged = -1
    for _round in range(3):
        stop_after = rng.randint(20, 150)
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, url, str(acknowledged + 1)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert child.stdout is not None
        for seen, line in enumerate(child.stdout, start=1):
            acknowledged = max(acknowledged, int(line))
            if seen >= stop_after:
                break
        child.send_signal(signal.SIGKILL)
        child.wait()

        with mnemolog.open(url) as store:
            status = store.projections.status()[0]
            assert status.lag == 0
            counter = store.get("app:crash", "counter")
            assert counter is not None
            assert counter.value >= acknowledged
            # Every acknowledged write is there, and the read model agrees with the log.
            for i in range(acknowledged + 1):
                if i % 10 == 9:
                    assert store.get("app:crash", f"b{i}-4") is not None
                    continue
                memory = store.get("app:crash", f"k{i}")
                assert memory is not None, f"acknowledged write k{i} is missing"
                assert memory.value == {"i": i}
                replayed = store.get("app:crash", f"k{i}", version=memory.version)
                assert replayed == memory
            found = store.search(namespace_prefix="app:crash", limit=10_000)
            assert {m.key for m in found} >= {
                f"k{i}" for i in range(acknowledged + 1) if i % 10 != 9
            }
            assert len(store.search(where={"i": {"$gte": 0}}, limit=10_000)) == len(
                [m for m in found if m.key.startswith("k")]
            )
