"""Fault injection (bench/faults.py): writers, projection workers and rebuilds
killed with SIGKILL at random points lose nothing they acknowledged and leave a
store that verifies. A few cycles per backend here; by hand, a hundred."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import mnemolog
from tests.conftest import postgres_url

FAULTS = Path(__file__).resolve().parents[1] / "bench" / "faults.py"


@pytest.fixture(scope="module")
def faults() -> ModuleType:
    """bench/faults.py, imported (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_faults", FAULTS)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_sigkill_cycles_on_sqlite(faults: ModuleType, tmp_path: Path) -> None:
    options = faults.Options(
        url=f"sqlite:///{tmp_path / 'faults.db'}", cycles=8, seed=1, preload=10
    )
    summary = faults.run(options)
    assert summary.ok, summary.report()
    assert summary.survived == 8
    assert {r.scenario for r in summary.results} == set(faults.SCENARIOS)
    assert sum(r.killed_running for r in summary.results) >= 8
    assert summary.kept == []
    assert not list(tmp_path.glob("faults-*"))  # the stores the run made are gone


@pytest.mark.slow
def test_sigkill_cycles_on_postgres(
    faults: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgres_url()
    status = faults.main(
        ["--cycles", "4", "--seed", "2", "--preload", "5", "--url", url]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert "cycles run 4, survived 4, failed 0" in out


def test_the_check_tells_acknowledged_writes_from_lost_ones(
    faults: ModuleType, tmp_path: Path
) -> None:
    """The script's oracle: a store holding exactly the acknowledged calls (or
    one more, the call in flight) passes; one missing a call does not."""
    url = f"sqlite:///{tmp_path / 'check.db'}"
    workload = faults.Workload("checked", 3, 30)
    ops = workload.plan()
    assert {op.kind for op in ops} >= {"put", "update", "put_many", "session_append"}
    states = workload.states(ops)
    acks = [
        (op.index, workload.acknowledgement(after, op))
        for op, after in zip(ops, states[1:], strict=True)
    ]
    with mnemolog.open(url) as store:
        for op in ops[:10]:
            assert workload.execute(store, op) == acks[op.index][1]

    def check(ledger: Any, done: Sequence[tuple[int, Any]]) -> Any:
        return faults.check_store(ledger, [(workload, done)])

    assert check(faults.Ledger(url), acks[:10]) == faults.Verdict()
    # The 10th call committed, but was killed before it said so.
    assert check(faults.Ledger(url), acks[:9]) == faults.Verdict(landed=1)
    problems = check(faults.Ledger(url), acks[:12]).problems
    assert any("12 calls acknowledged" in p for p in problems), problems
    wrong = [*acks[:9], (9, "not what it returned")]
    problems = check(faults.Ledger(url), wrong).problems
    assert any("call 9" in p for p in problems), problems

    ledger = faults.Ledger(url)
    check(ledger, acks[:10])
    with mnemolog.open(url) as store:
        workload.execute(store, ops[10])
    problems = faults.check_store(ledger, []).problems
    assert any("(checked before) changed" in p for p in problems), problems
