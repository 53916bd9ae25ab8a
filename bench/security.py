"""Security features' cost: encryption at rest, compression, a policy, erasure.

Run by hand: ``.venv/bin/python bench/security.py [--quick]``. Prints the core
workload (bench/core.py) on SQLite (synchronous=normal, so that fsync does not
hide the CPU cost) side by side: as shipped (personal fields sealed with their
subjects' keys, no encryption at rest), with encryption at rest, with
encryption and compression, and with a policy checked on every call; then the
time an erasure takes as a subject's memories grow.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mnemolog
from bench.core import bench_store, measure, print_table
from mnemolog import Grant, Policy, Principal


def bench_policy(url: str, n: int) -> list[dict[str, Any]]:
    """The core put/get/search with a policy of 20 grants, the caller's last."""
    grants = [
        Grant(principals=frozenset({f"other-{i}"}), actions=frozenset({"read"}))
        for i in range(19)
    ]
    grants.append(
        Grant(roles=frozenset({"agent"}), actions=frozenset({"read", "write"}))
    )
    store = mnemolog.open(url, policy=Policy(grants=tuple(grants)))
    view = store.as_principal(Principal("agent-1", frozenset({"agent"})))
    value = {"text": "the user prefers window seats on morning flights", "n": 0}
    results = [
        measure(
            "put (one per call)",
            lambda i: view.put(f"user:u{i % 100}:prefs", f"k{i}", {**value, "n": i}),
            n,
        ),
        measure("get by key", lambda i: view.get(f"user:u{i % 100}:prefs", f"k{i}"), n),
    ]
    store.close()
    return results


def bench_erasure(directory: str, sizes: list[int]) -> None:
    """Seconds for erase(subject=...) of a subject holding N memories (among
    as many of another subject's)."""
    print("\nerase(subject) on SQLite, synchronous=normal")
    print("memories of the subject  seconds  streams/s")
    for size in sizes:
        url = f"sqlite:///{directory}/erase-{size}.db?synchronous=normal"
        with mnemolog.open(url) as store:
            for subject in ("alice", "bob"):
                for start in range(0, size, 500):
                    store.put_many(
                        [
                            {
                                "namespace": f"user:{subject}:notes",
                                "key": f"k{i}",
                                "value": {"text": f"note {i} of {subject}"},
                                "subject": subject,
                            }
                            for i in range(start, min(size, start + 500))
                        ]
                    )
            began = time.perf_counter()
            report = store.erase(subject="alice")
            took = time.perf_counter() - began
            assert report.streams == size
            print(f"{size:>23,}  {took:7.3f}  {size / took:9,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer operations")
    args = parser.parse_args()
    n = 500 if args.quick else 3000
    key = mnemolog.new_key()
    with tempfile.TemporaryDirectory() as tmp:

        def url(name: str) -> str:
            return f"sqlite:///{tmp}/{name}.db?synchronous=normal"

        columns = {
            "sealed (default)": bench_store(url("plain"), n),
            "+ encryption at rest": bench_store(url("enc"), n, cipher_keys=(key,)),
            "+ encryption + zlib": bench_store(
                url("encz"), n, cipher_keys=(key,), compress=True
            ),
            "+ policy (20 grants)": bench_policy(url("policy"), n),
        }
        print(f"SQLite, synchronous=normal, {n} operations per row\n")
        print_table(columns)
        bench_erasure(tmp, [100, 1000] if args.quick else [100, 1000, 10_000])


if __name__ == "__main__":
    main()
