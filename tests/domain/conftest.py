"""Fixtures shared by the domain tests."""

from __future__ import annotations

import pytest

from mnemolog.adapters.codec import ChainedMapper, OrjsonTranscoder
from mnemolog.domain.memory import Memory
from tests.domain.support import T0, FakeClock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Every Memory event takes its timestamp from this clock."""
    fake = FakeClock(T0)
    # Memory.Event precedes CanCreateTimestamp in every Memory event's MRO.
    monkeypatch.setattr(Memory.Event, "create_timestamp", staticmethod(fake))
    return fake


@pytest.fixture
def mapper() -> ChainedMapper:
    return ChainedMapper(transcoder=OrjsonTranscoder())
