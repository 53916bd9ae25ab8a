"""list_namespaces: namespaces with live memories and their ancestors, counted."""

from __future__ import annotations

import pytest

from mnemolog import MemoryStore, ValidationError


def listing(store: MemoryStore, **kwargs: object) -> list[tuple[str, int, int]]:
    return [(n.namespace, n.depth, n.count) for n in store.list_namespaces(**kwargs)]  # type: ignore[arg-type]


@pytest.fixture
def filled(store: MemoryStore) -> MemoryStore:
    store.put("user:alice:prefs", "a", 1)
    store.put("user:alice:prefs", "b", 1)
    store.put("user:alice", "c", 1)
    store.put("user:alicia:x", "d", 1)
    store.put("app:main", "e", 1)
    store.tenant("other").put("user:alice:prefs", "z", 1)
    return store


def test_counts_live_memories_at_or_under_each_namespace(filled: MemoryStore) -> None:
    assert listing(filled) == [
        ("app", 1, 1),
        ("app:main", 2, 1),
        ("user", 1, 4),
        ("user:alice", 2, 3),
        ("user:alice:prefs", 3, 2),
        ("user:alicia", 2, 1),
        ("user:alicia:x", 3, 1),
    ]


def test_prefix_matches_whole_segments_and_depth_limits(filled: MemoryStore) -> None:
    assert [n for n, _, _ in listing(filled, prefix="user:alice")] == [
        "user:alice",
        "user:alice:prefs",
    ]
    assert listing(filled, prefix="user:ali") == []
    assert [n for n, _, _ in listing(filled, max_depth=1)] == ["app", "user"]
    assert [n for n, _, _ in listing(filled, prefix="user", max_depth=2)] == [
        "user",
        "user:alice",
        "user:alicia",
    ]
    assert [n for n, _, _ in listing(filled, limit=2, offset=1)] == ["app:main", "user"]


def test_deletes_and_restores_move_the_counts(filled: MemoryStore) -> None:
    filled.delete("user:alicia:x", "d")
    assert [n for n, _, _ in listing(filled, prefix="user")] == [
        "user",
        "user:alice",
        "user:alice:prefs",
    ]
    filled.delete("user:alicia:x", "d")  # a second delete changes nothing
    assert listing(filled, prefix="user", max_depth=1) == [("user", 1, 3)]
    filled.restore("user:alicia:x", "d")
    filled.put("user:alicia:x", "d", 2)  # an update moves nothing
    assert listing(filled, prefix="user", max_depth=1) == [("user", 1, 4)]


def test_tenants_see_only_their_namespaces(filled: MemoryStore) -> None:
    assert listing(filled.tenant("other")) == [
        ("user", 1, 1),
        ("user:alice", 2, 1),
        ("user:alice:prefs", 3, 1),
    ]
    assert listing(filled.tenant("nobody")) == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"prefix": "user:"}, "prefix"),
        ({"prefix": "nope"}, "prefix"),
        ({"max_depth": 0}, "max_depth"),
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
    ],
)
def test_bad_arguments_are_refused(
    store: MemoryStore, kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        store.list_namespaces(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
