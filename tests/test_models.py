"""The public models: built fast on read paths, equal to validated ones."""

from __future__ import annotations

import pytest

from mnemolog import Memory, MemoryStore
from mnemolog.models import MemoryEvent


def test_models_built_on_read_paths_equal_validated_ones(store: MemoryStore) -> None:
    store.put("user:a", "k", {"b": b"\x00", "n": [1, 2]}, tags=["t"], metadata={"m": 1})
    store.update("user:a", "k", {"n": 3}, actor="bob")
    read = store.get("user:a", "k")
    assert read is not None
    assert Memory.model_validate(read.model_dump()) == read
    assert read.model_fields_set == set(Memory.model_fields)
    for change in store.history("user:a", "k"):
        assert MemoryEvent.model_validate(change.model_dump()) == change


def test_models_are_frozen(store: MemoryStore) -> None:
    read = store.put("user:a", "k", 1)
    with pytest.raises(ValueError, match="frozen"):
        read.value = 2  # type: ignore[misc]


def test_json_dump_carries_bytes_as_base64(store: MemoryStore) -> None:
    read = store.put("user:a", "k", b"\x00\xff")
    assert read.model_dump(mode="json")["value"] == "AP8="
