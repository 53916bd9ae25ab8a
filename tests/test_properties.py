"""Property-based tests of the public store API (hypothesis).

(a) last write wins: a stateful model (a dict) of put / put_many / update /
    delete / restore across tenants, namespaces and keys;
(b) the current-state projection equals a fold of the log, also after a
    rebuild from scratch by catch-up;
(c) no search of one tenant ever returns another tenant's memory;
(d) every search filter is exact against a brute-force filter in Python.

Each runs on both backends. Stores are opened inside the hypothesis tests (a
fresh one per example), since function-scoped fixtures are not reset between
examples. The regressions at the end keep, as explicit examples, the minimal
failures these properties found (each since fixed): a change of 1 to True (or
1.0) taken for a no-op, metadata keys with dots colliding with nested paths,
and metadata numbers compared as floats.
"""

from __future__ import annotations

import math
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

import mnemolog
from mnemolog import (
    Memory,
    MemoryStore,
    NotFound,
    TenantMismatch,
    ValidationError,
    VersionConflict,
)
from mnemolog.domain.memory import Memory as DomainMemory
from mnemolog.domain.values import content_hash, encode_value
from mnemolog.projections.current_state import ORDER_COLUMNS
from tests.conftest import BACKENDS, backend_url

SETTINGS: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
}

Addr = tuple[str, str, str]  # (tenant, namespace, key)


@contextmanager
def fresh_store(backend: str) -> Iterator[tuple[MemoryStore, str]]:
    """A new, empty store of the backend, closed (and its file removed) after."""
    with tempfile.TemporaryDirectory() as tmp:
        url = backend_url(backend, Path(tmp))
        store = mnemolog.open(url)
        try:
            yield store, url
        finally:
            store.close()


# ---- strict comparison ----------------------------------------------------------


def norm(x: Any) -> Any:
    """A hashable form of a decoded value in which True, 1, 1.0 all differ (as
    they do in JSON text), and so do 0.0 and -0.0."""
    if x is None:
        return ("null",)
    if isinstance(x, bool):
        return ("bool", x)
    if isinstance(x, int):
        return ("int", x)
    if isinstance(x, float):
        return ("float", x, math.copysign(1.0, x))  # -0.0 is not 0.0
    if isinstance(x, str):
        return ("str", x)
    if isinstance(x, bytes | bytearray):
        return ("bytes", bytes(x))
    if isinstance(x, list | tuple):
        return ("list", tuple(norm(v) for v in x))
    if isinstance(x, dict):
        return ("dict", frozenset((k, norm(v)) for k, v in x.items()))
    raise TypeError(type(x))


def json_eq(a: Any, b: Any) -> bool:
    """JSON equality: numbers compare by value, booleans are not numbers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if is_number(a) and is_number(b):
        return a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(
            json_eq(x, y) for x, y in zip(a, b, strict=True)
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_eq(a[k], b[k]) for k in a)
    return False


def is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def snapshot(m: Memory) -> tuple[Any, ...]:
    """Every field of a Memory, with values compared strictly."""
    return (
        m.id,
        m.tenant,
        m.namespace,
        m.key,
        norm(m.value),
        m.memory_type,
        m.tags,
        norm(m.metadata),
        m.importance,
        m.confidence,
        m.content_hash,
        m.version,
        m.deleted,
        m.created_at,
        m.updated_at,
        m.created_by,
        m.updated_by,
    )


# ---- strategies -----------------------------------------------------------------

TENANTS = ("default", "t1", "t2")
NAMESPACES = ("user:alice", "user:alice:prefs", "project:x")
KEYS = ("k1", "ключ")
ADDRS = [(t, n, k) for t in TENANTS for n in NAMESPACES for k in KEYS]
# Half the draws come from three addresses (two tenants with the same namespace
# and key), so that writes pile up on the same memories.
HOT_ADDRS = [ADDRS[0], ADDRS[1], ADDRS[len(NAMESPACES) * len(KEYS)]]
addrs = st.sampled_from(HOT_ADDRS) | st.sampled_from(ADDRS)
TAGS = ("red", "green", "blue", "two words", "ü")
META_KEYS = ("a", "b", "n", "s", "d")
MEMORY_TYPES = ("semantic", "episodic", "procedural", "working")
ACTORS = (None, "agent-1", "agent-2")

# The whole JSON value domain, with bytes: booleans beside 0 and 1, integral
# floats beside integers, -0.0 beside 0.0, and dicts shaped like the wire tags.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0.0, -0.0, 1.0, 2.0])
    | st.text(max_size=6)
)
json_values = st.recursive(
    json_scalars | st.binary(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.text(max_size=3) | st.sampled_from(["$bytes", "$dict"]),
            inner,
            max_size=3,
        )
    ),
    max_leaves=6,
)

# Metadata: any scalar at the top; one nested object under "d"; lists and nested
# scalars without floats, so that "does [1] equal [1.0]" never comes up (the
# store says no there, while it says yes for a top-level 1 and 1.0). Keys have
# no dots (the store refuses them: "a.b" is how nested keys are queried).
meta_text = st.text(alphabet="ab\u00e9\U0001f600", max_size=3)
meta_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0.0, -0.0, 1.0, 2.0, 0.5, 2**53 + 1, 2.0**53])
    | meta_text
)
inner_scalars = st.none() | st.booleans() | st.integers(-3, 3) | meta_text
meta_values = (
    meta_scalars
    | st.lists(st.integers(-2, 2) | st.text(alphabet="ab", max_size=1), max_size=2)
    | st.dictionaries(st.sampled_from(["x", "y"]), inner_scalars, max_size=2)
)
metadata_dicts = st.dictionaries(st.sampled_from(META_KEYS), meta_values, max_size=4)

tag_sets = st.frozensets(st.sampled_from(TAGS), max_size=3)
optional_tags = st.none() | tag_sets
optional_metadata = st.none() | metadata_dicts
optional_type = st.none() | st.sampled_from(MEMORY_TYPES)
optional_unit = st.none() | st.sampled_from([0.0, 0.25, 0.5, 1.0])
expectations = st.sampled_from([None, None, None, "current", "wrong"])
call_modes = st.sampled_from(["param", "view", "implicit"])


# ---- the model ------------------------------------------------------------------

UNSET: Any = object()


@dataclass(frozen=True)
class Rec:
    """What the model expects a memory to be."""

    value: Any
    tags: frozenset[str]
    metadata: dict[str, Any]
    memory_type: str
    importance: float
    confidence: float
    version: int
    deleted: bool
    created_by: str | None
    updated_by: str | None


class Expect(Exception):
    """The model's prediction that the store raises ``kind``."""

    def __init__(self, kind: type[Exception]) -> None:
        super().__init__(kind.__name__)
        self.kind = kind


class Model:
    """The store's write semantics, as read from store.py and domain/memory.py."""

    def __init__(self) -> None:
        self.recs: dict[Addr, Rec] = {}

    def version(self, addr: Addr) -> int:
        rec = self.recs.get(addr)
        return rec.version if rec else 0

    def expected(self, addr: Addr, how: str | None) -> int | None:
        if how is None:
            return None
        current = self.version(addr)
        return current if how == "current" else current + 1

    @staticmethod
    def _revise(
        rec: Rec, changes: dict[str, Any], force: bool, actor: str | None
    ) -> Rec:
        diff = {
            name: new
            for name, new in changes.items()
            if (
                norm(getattr(rec, name)) != norm(new)
                if name in ("value", "metadata")
                else getattr(rec, name) != new
            )
        }
        if not diff and not force:
            return rec
        return replace(rec, **diff, version=rec.version + 1, updated_by=actor)

    @staticmethod
    def _changes(
        value: Any,
        tags: frozenset[str] | None,
        metadata: dict[str, Any] | None,
        memory_type: str | None,
        importance: float | None,
        confidence: float | None,
    ) -> dict[str, Any]:
        """The fields a write gives; None means "keep", UNSET "no value"."""
        changes: dict[str, Any] = {} if value is UNSET else {"value": value}
        if tags is not None:
            changes["tags"] = frozenset(tags)
        if metadata is not None:
            changes["metadata"] = metadata
        if memory_type is not None:
            changes["memory_type"] = memory_type
        if importance is not None:
            changes["importance"] = float(importance)
        if confidence is not None:
            changes["confidence"] = float(confidence)
        return changes

    def put_into(
        self,
        recs: dict[Addr, Rec],
        addr: Addr,
        value: Any,
        *,
        tags: frozenset[str] | None = None,
        metadata: dict[str, Any] | None = None,
        memory_type: str | None = None,
        importance: float | None = None,
        confidence: float | None = None,
        force: bool = False,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> Rec:
        current = recs.get(addr)
        actual = current.version if current else 0
        if expected_version is not None and expected_version != actual:
            raise Expect(VersionConflict)
        if current is None:
            new = Rec(
                value=value,
                tags=frozenset(tags or ()),
                metadata=dict(metadata or {}),
                memory_type=memory_type or "semantic",
                importance=0.5 if importance is None else float(importance),
                confidence=1.0 if confidence is None else float(confidence),
                version=1,
                deleted=False,
                created_by=actor,
                updated_by=actor,
            )
        else:
            new = current
            if new.deleted:  # put restores first: one Restored event
                new = replace(
                    new, deleted=False, version=new.version + 1, updated_by=actor
                )
            changes = self._changes(
                value, tags, metadata, memory_type, importance, confidence
            )
            new = self._revise(new, changes, force, actor)
        recs[addr] = new
        return new

    def put(self, addr: Addr, value: Any, **kw: Any) -> Rec:
        return self.put_into(self.recs, addr, value, **kw)

    def put_many(
        self, tenant: str, items: list[dict[str, Any]], actor: str | None
    ) -> list[Rec]:
        # Every expected_version is checked against the state before the batch
        # (store._transact checks all versions, then applies the items).
        for item in items:
            expected_version = item.get("expected_version")
            addr = (tenant, item["namespace"], item["key"])
            if expected_version is not None and expected_version != self.version(addr):
                raise Expect(VersionConflict)
        staged = dict(self.recs)
        results = [
            self.put_into(
                staged,
                (tenant, item["namespace"], item["key"]),
                item["value"],
                tags=item.get("tags"),
                metadata=item.get("metadata"),
                actor=actor,
            )
            for item in items
        ]
        self.recs = staged  # all or nothing
        return results

    def _existing(self, addr: Addr, expected_version: int | None) -> Rec:
        # The version is checked first: a missing memory is at version 0.
        if expected_version is not None and expected_version != self.version(addr):
            raise Expect(VersionConflict)
        current = self.recs.get(addr)
        if current is None:
            raise Expect(NotFound)
        return current

    def update(
        self,
        addr: Addr,
        value: Any = UNSET,
        *,
        tags: frozenset[str] | None = None,
        metadata: dict[str, Any] | None = None,
        replace_metadata: bool = False,
        memory_type: str | None = None,
        importance: float | None = None,
        force: bool = False,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> Rec:
        current = self._existing(addr, expected_version)
        if current.deleted:
            raise Expect(NotFound)
        if metadata is not None and not replace_metadata:
            metadata = {**current.metadata, **metadata}
        changes = self._changes(value, tags, metadata, memory_type, importance, None)
        new = self._revise(current, changes, force, actor)
        self.recs[addr] = new
        return new

    def delete(
        self, addr: Addr, *, expected_version: int | None = None, actor: str | None
    ) -> Rec:
        current = self._existing(addr, expected_version)
        if not current.deleted:
            current = replace(
                current, deleted=True, version=current.version + 1, updated_by=actor
            )
        self.recs[addr] = current
        return current

    def restore(
        self, addr: Addr, *, expected_version: int | None = None, actor: str | None
    ) -> Rec:
        current = self._existing(addr, expected_version)
        if current.deleted:
            current = replace(
                current, deleted=False, version=current.version + 1, updated_by=actor
            )
        self.recs[addr] = current
        return current


def lookalike(x: Any) -> Any:
    """A value that Python's == may take for ``x`` but JSON does not: True and
    1, 1 and 1.0, 0.0 and -0.0 swapped, all through lists and objects."""
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, int):
        return bool(x) if x in (0, 1) else float(x) if abs(x) <= 2**53 else x
    if isinstance(x, float):
        if x == 0:
            return -x
        return int(x) if x.is_integer() and abs(x) <= 2**53 else x
    if isinstance(x, list):
        return [lookalike(v) for v in x]
    if isinstance(x, dict):
        return {k: lookalike(v) for k, v in x.items()}
    return x


def assert_matches(memory: Memory | None, addr: Addr, rec: Rec) -> None:
    """The store's memory is the model's record, field by field."""
    assert memory is not None, addr
    assert (memory.tenant, memory.namespace, memory.key) == addr
    assert memory.id == DomainMemory.create_id(*addr)
    assert norm(memory.value) == norm(rec.value), (memory.value, rec.value)
    assert memory.content_hash == content_hash(encode_value(rec.value))
    assert memory.tags == rec.tags
    assert norm(memory.metadata) == norm(rec.metadata), (
        memory.metadata,
        rec.metadata,
    )
    assert memory.memory_type == rec.memory_type
    assert memory.importance == rec.importance
    assert memory.confidence == rec.confidence
    assert memory.version == rec.version
    assert memory.deleted == rec.deleted
    assert memory.created_by == rec.created_by
    assert memory.updated_by == rec.updated_by


def target(store: MemoryStore, tenant: str, mode: str) -> tuple[Any, dict[str, Any]]:
    """The store or a tenant view to call, and the tenant keyword to pass."""
    if mode == "view":
        return store.tenant(tenant), {}
    if mode == "implicit" and tenant == "default":
        return store, {}
    return store, {"tenant": tenant}


def agree(predict: Callable[[], Any], act: Callable[[], Any]) -> Any:
    """Runs the model, then the store; both raise the same error or both succeed."""
    try:
        expected = predict()
    except Expect as e:
        with pytest.raises(e.kind):
            act()
        return None
    return expected, act()


# ---- search filters: a brute-force model -------------------------------------------


def resolve(metadata: dict[str, Any], path: str) -> tuple[bool, Any]:
    """(found, value) of a dotted path, descending through objects only."""
    node: Any = metadata
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def ordered(op: str, value: Any, operand: Any) -> bool:
    if isinstance(operand, str):
        if not isinstance(value, str):
            return False
    elif not is_number(value):
        return False
    return {
        "$gt": value > operand,
        "$gte": value >= operand,
        "$lt": value < operand,
        "$lte": value <= operand,
    }[op]


def meets(metadata: dict[str, Any], path: str, op: str, operand: Any) -> bool:
    present, value = resolve(metadata, path)
    if op == "$exists":
        return present == operand
    if op == "$ne":  # also true where the path is missing
        return not (present and json_eq(value, operand))
    if not present:
        return False
    if op == "$eq":
        return json_eq(value, operand)
    if op == "$in":
        return any(json_eq(value, v) for v in operand)
    return ordered(op, value, operand)


def conditions(where: dict[str, Any]) -> list[tuple[str, str, Any]]:
    out = []
    for path, condition in where.items():
        if (
            isinstance(condition, dict)
            and condition
            and all(k.startswith("$") for k in condition)
        ):
            out.extend((path, op, operand) for op, operand in condition.items())
        else:
            out.append((path, "$eq", condition))
    return out


def brute_force(recs: dict[Addr, Rec], tenant: str, query: dict[str, Any]) -> set:
    """(namespace, key) of the tenant's memories that the query should return."""
    hits = set()
    for (t, ns, key), rec in recs.items():
        if t != tenant:
            continue
        if rec.deleted and not query.get("include_deleted", False):
            continue
        prefix = query.get("namespace_prefix")
        if prefix is not None:
            segments = prefix.split(":")
            if ns.split(":")[: len(segments)] != segments:
                continue
        if query.get("memory_type") not in (None, rec.memory_type):
            continue
        if query.get("tags_any") and not rec.tags & set(query["tags_any"]):
            continue
        if query.get("tags_all") and not set(query["tags_all"]) <= rec.tags:
            continue
        where = query.get("where") or {}
        if all(meets(rec.metadata, *c) for c in conditions(where)):
            hits.add((ns, key))
    return hits


SEARCH_NAMESPACES = (
    "user:a",
    "user:a_",
    "user:ab",
    "user:a.b",
    "user:a-b",
    "user:al",
    "user:alice",
    "user:alice:prefs",
    "user:alice:prefs:deep",
    "user:alice2",
    "project:x",
    "app:x",
)
PREFIXES = (
    "user",
    "user:a",
    "user:a_",
    "user:al",
    "user:alice",
    "user:alice:prefs",
    "user:a.b",
    "project",
    "project:x",
    "app:x:y",
    "temp",
)
WHERE_PATHS = ("a", "b", "n", "s", "d", "d.x", "d.y", "zz", "d.x.z")

search_records = st.fixed_dictionaries(
    {
        "tags": tag_sets,
        "metadata": metadata_dicts,
        "memory_type": st.sampled_from(MEMORY_TYPES),
        "importance": st.sampled_from([0.0, 0.5, 1.0]),
        "deleted": st.booleans(),
    }
)
search_data = st.dictionaries(
    st.tuples(st.sampled_from(SEARCH_NAMESPACES), st.sampled_from(KEYS)),
    search_records,
    min_size=1,
    max_size=12,
)

ordered_operands = (
    st.integers(-3, 3)
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([2**53, 2**53 + 1, 2.0**53])
    | meta_text
)
condition_values = st.one_of(
    meta_values,
    st.fixed_dictionaries({"$eq": meta_values}),
    st.fixed_dictionaries({"$ne": meta_values}),
    st.fixed_dictionaries({"$in": st.lists(meta_values, max_size=3)}),
    st.fixed_dictionaries({"$exists": st.booleans()}),
    st.sampled_from(["$gt", "$gte", "$lt", "$lte"]).flatmap(
        lambda op: st.fixed_dictionaries({op: ordered_operands})
    ),
    st.fixed_dictionaries({"$gt": ordered_operands, "$lte": ordered_operands}),
)
queries = st.fixed_dictionaries(
    {},
    optional={
        "namespace_prefix": st.sampled_from(PREFIXES),
        "memory_type": st.sampled_from(MEMORY_TYPES),
        "tags_any": st.lists(st.sampled_from(TAGS), min_size=1, max_size=2),
        "tags_all": st.lists(st.sampled_from(TAGS), min_size=1, max_size=2),
        "where": st.dictionaries(
            st.sampled_from(WHERE_PATHS), condition_values, min_size=1, max_size=2
        ),
        "include_deleted": st.booleans(),
    },
)


SINGLE_FILTERS: list[dict[str, Any]] = [
    *({"namespace_prefix": p} for p in PREFIXES),
    *({"tags_any": [t]} for t in TAGS),
    *({"tags_all": [t]} for t in TAGS),
    {"tags_any": ["red", "blue"]},
    {"tags_all": ["red", "blue"]},
    *({"memory_type": t} for t in MEMORY_TYPES),
    *({"where": {p: {"$exists": True}}} for p in WHERE_PATHS),
    *({"where": {p: {"$exists": False}}} for p in WHERE_PATHS),
    {"where": {"n": {"$gt": 0}}},
    {"where": {"n": {"$lte": 1}}},
    {"where": {"n": {"$ne": 0}}},
    {"where": {"s": {"$lt": "b"}}},
    {"where": {"b": {"$in": [True, 0, None]}}},
    {"where": {"d.x": {"$eq": 1}}},
    {"include_deleted": True},
]
"""One query per filter value, run on every example of (d) beside random ones."""

ISOLATION_FILTERS: list[dict[str, Any]] = [
    {"include_deleted": True},
    {"namespace_prefix": "user"},
    *({"tags_any": [t], "include_deleted": True} for t in TAGS),
    *({"where": {k: {"$exists": True}}, "include_deleted": True} for k in META_KEYS),
    {"where": {"d.x": {"$exists": True}}, "include_deleted": True},
]
"""Queries run for every tenant on every example of (c)."""


def boundary_queries(recs: dict[Addr, Rec], tenant: str) -> list[dict[str, Any]]:
    """Comparisons against values that are stored: where off-by-one bugs show."""
    seen: dict[tuple[str, Any], Any] = {}
    for (t, _ns, _key), rec in recs.items():
        if t != tenant:
            continue
        stack = [("", rec.metadata)]
        while stack:
            prefix, node = stack.pop()
            for name, value in node.items():
                seen.setdefault((prefix + name, norm(value)), value)
                if isinstance(value, dict):
                    stack.append((prefix + name + ".", value))
    out: list[dict[str, Any]] = []
    for (path, _), value in list(seen.items())[:6]:
        if isinstance(value, str) or is_number(value):
            ops = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]
        else:
            ops = ["$eq", "$ne"]
        out.extend({"where": {path: {op: value}}} for op in ops)
        out.append({"where": {path: {"$in": [value, "zz"]}}, "include_deleted": True})
    return out


def found(memories: list[Memory]) -> set[tuple[str, str]]:
    keys = [(m.namespace, m.key) for m in memories]
    assert len(keys) == len(set(keys)), "a memory came back twice"
    return set(keys)


# ---- (a) last write wins: a stateful model ------------------------------------------


class StoreMachine(RuleBasedStateMachine):
    """Random writes on a small pool of addresses; get always equals the model."""

    def __init__(self, backend: str) -> None:
        super().__init__()
        self._tmp = tempfile.TemporaryDirectory()
        self.store = mnemolog.open(backend_url(backend, Path(self._tmp.name)))
        self.model = Model()

    def teardown(self) -> None:
        self.store.close()
        self._tmp.cleanup()

    def pick(self, data: st.DataObject) -> Addr:
        """Mostly a memory that exists (live or deleted), sometimes any address."""
        known = sorted(self.model.recs)
        if known and data.draw(st.integers(0, 3), label="existing") > 0:
            return data.draw(st.sampled_from(known), label="addr")
        return data.draw(addrs, label="addr")

    @rule(
        addr=addrs,
        value=json_values,
        tags=optional_tags,
        metadata=optional_metadata,
        memory_type=optional_type,
        importance=optional_unit,
        confidence=optional_unit,
        force=st.booleans(),
        how=expectations,
        actor=st.sampled_from(ACTORS),
        mode=call_modes,
    )
    def put(
        self,
        addr: Addr,
        value: Any,
        tags: frozenset[str] | None,
        metadata: dict[str, Any] | None,
        memory_type: str | None,
        importance: float | None,
        confidence: float | None,
        force: bool,
        how: str | None,
        actor: str | None,
        mode: str,
    ) -> None:
        tenant, ns, key = addr
        expected_version = self.model.expected(addr, how)
        kw: dict[str, Any] = {
            "memory_type": memory_type,
            "importance": importance,
            "confidence": confidence,
            "force": force,
            "expected_version": expected_version,
            "actor": actor,
        }
        on, tenant_kw = target(self.store, tenant, mode)
        outcome = agree(
            lambda: self.model.put(addr, value, tags=tags, metadata=metadata, **kw),
            lambda: on.put(
                ns,
                key,
                value,
                tags=None if tags is None else sorted(tags),
                metadata=metadata,
                **kw,
                **tenant_kw,
            ),
        )
        if outcome:
            assert_matches(outcome[1], addr, outcome[0])

    @rule(
        data=st.data(),
        force=st.booleans(),
        actor=st.sampled_from(ACTORS),
        mode=call_modes,
    )
    def put_what_is_stored(
        self, data: st.DataObject, force: bool, actor: str | None, mode: str
    ) -> None:
        """Writing exactly what is stored is a no-op (the version stays), unless
        forced; on a deleted memory it is a restore."""
        addr = self.pick(data)
        rec = self.model.recs.get(addr)
        if rec is None:
            return
        tenant, ns, key = addr
        on, tenant_kw = target(self.store, tenant, mode)
        kw: dict[str, Any] = {
            "metadata": rec.metadata,
            "memory_type": rec.memory_type,
            "importance": rec.importance,
            "confidence": rec.confidence,
            "force": force,
            "actor": actor,
        }
        expected = self.model.put(addr, rec.value, tags=rec.tags, **kw)
        stored = on.put(ns, key, rec.value, tags=sorted(rec.tags), **kw, **tenant_kw)
        assert_matches(stored, addr, expected)
        assert stored.version == rec.version + rec.deleted + force

    @rule(data=st.data(), mode=call_modes)
    def put_a_lookalike(self, data: st.DataObject, mode: str) -> None:
        """1 -> True, 1 -> 1.0, 0.0 -> -0.0 are changes, not no-ops. (Metadata
        only at the top level: the search rule's JSON equality takes [1] for
        [1.0], the store does not; see the note on metadata strategies.)"""
        addr = self.pick(data)
        rec = self.model.recs.get(addr)
        if rec is None:
            return
        tenant, ns, key = addr
        value = lookalike(rec.value)
        metadata = {
            k: v if isinstance(v, list | dict) else lookalike(v)
            for k, v in rec.metadata.items()
        }
        on, tenant_kw = target(self.store, tenant, mode)
        outcome = agree(
            lambda: self.model.put(addr, value, metadata=metadata),
            lambda: on.put(ns, key, value, metadata=metadata, **tenant_kw),
        )
        if outcome:
            assert_matches(outcome[1], addr, outcome[0])

    @rule(
        data=st.data(),
        force=st.booleans(),
        actor=st.sampled_from(ACTORS),
        mode=call_modes,
    )
    def update_nothing(
        self, data: st.DataObject, force: bool, actor: str | None, mode: str
    ) -> None:
        """An update that changes nothing is a no-op, unless forced."""
        addr = self.pick(data)
        tenant, ns, key = addr
        on, tenant_kw = target(self.store, tenant, mode)
        outcome = agree(
            lambda: self.model.update(addr, force=force, actor=actor),
            lambda: on.update(ns, key, force=force, actor=actor, **tenant_kw),
        )
        if outcome:
            assert_matches(outcome[1], addr, outcome[0])

    @rule(tenant=st.sampled_from(TENANTS), query=queries, mode=call_modes)
    def search(self, tenant: str, query: dict[str, Any], mode: str) -> None:
        """Searches between writes agree with a brute-force filter of the model."""
        on, tenant_kw = target(self.store, tenant, mode)
        got = on.search(limit=10_000, **query, **tenant_kw)
        assert {m.tenant for m in got} <= {tenant}
        assert found(got) == brute_force(self.model.recs, tenant, query), query
        for memory in got:
            addr = (tenant, memory.namespace, memory.key)
            assert_matches(memory, addr, self.model.recs[addr])

    @rule(
        tenant=st.sampled_from(TENANTS),
        items=st.lists(
            st.tuples(
                st.sampled_from(NAMESPACES),
                st.sampled_from(KEYS),
                json_values,
                optional_tags,
                optional_metadata,
                expectations,
            ),
            min_size=1,
            max_size=3,
        ),
        actor=st.sampled_from(ACTORS),
        mode=call_modes,
    )
    def put_many(
        self,
        tenant: str,
        items: list[tuple[Any, ...]],
        actor: str | None,
        mode: str,
    ) -> None:
        batch = []
        for ns, key, value, tags, metadata, how in items:
            item: dict[str, Any] = {"namespace": ns, "key": key, "value": value}
            if tags is not None:
                item["tags"] = sorted(tags)
            if metadata is not None:
                item["metadata"] = metadata
            # expected_version is checked against the version before the batch.
            if how is not None:
                item["expected_version"] = self.model.expected((tenant, ns, key), how)
            batch.append(item)
        on, tenant_kw = target(self.store, tenant, mode)
        outcome = agree(
            lambda: self.model.put_many(tenant, batch, actor),
            lambda: on.put_many(batch, actor=actor, **tenant_kw),
        )
        if outcome:
            expected, actual = outcome
            assert len(actual) == len(batch)
            # Each item comes back as it was stored, also for a key given twice.
            for item, rec, memory in zip(batch, expected, actual, strict=True):
                assert_matches(memory, (tenant, item["namespace"], item["key"]), rec)

    @rule(
        data=st.data(),
        value=st.just(UNSET) | json_values,
        tags=optional_tags,
        metadata=optional_metadata,
        replace_metadata=st.booleans(),
        memory_type=optional_type,
        importance=optional_unit,
        force=st.booleans(),
        how=expectations,
        actor=st.sampled_from(ACTORS),
        mode=call_modes,
    )
    def update(
        self,
        data: st.DataObject,
        value: Any,
        tags: frozenset[str] | None,
        metadata: dict[str, Any] | None,
        replace_metadata: bool,
        memory_type: str | None,
        importance: float | None,
        force: bool,
        how: str | None,
        actor: str | None,
        mode: str,
    ) -> None:
        addr = self.pick(data)
        tenant, ns, key = addr
        expected_version = self.model.expected(addr, how)
        kw: dict[str, Any] = {
            "metadata": metadata,
            "replace_metadata": replace_metadata,
            "memory_type": memory_type,
            "importance": importance,
            "force": force,
            "expected_version": expected_version,
            "actor": actor,
        }
        on, tenant_kw = target(self.store, tenant, mode)
        args = () if value is UNSET else (value,)
        outcome = agree(
            lambda: self.model.update(addr, value, tags=tags, **kw),
            lambda: on.update(
                ns,
                key,
                *args,
                tags=None if tags is None else sorted(tags),
                **kw,
                **tenant_kw,
            ),
        )
        if outcome:
            assert_matches(outcome[1], addr, outcome[0])

    @rule(
        data=st.data(),
        restore=st.booleans(),
        how=expectations,
        actor=st.sampled_from(ACTORS),
        mode=call_modes,
    )
    def delete_or_restore(
        self,
        data: st.DataObject,
        restore: bool,
        how: str | None,
        actor: str | None,
        mode: str,
    ) -> None:
        addr = self.pick(data)
        tenant, ns, key = addr
        expected_version = self.model.expected(addr, how)
        on, tenant_kw = target(self.store, tenant, mode)
        predict = self.model.restore if restore else self.model.delete
        act = on.restore if restore else on.delete
        outcome = agree(
            lambda: predict(addr, expected_version=expected_version, actor=actor),
            lambda: act(
                ns, key, expected_version=expected_version, actor=actor, **tenant_kw
            ),
        )
        if outcome:
            assert_matches(outcome[1], addr, outcome[0])

    @invariant()
    def projection_equals_the_model(self) -> None:
        """Every tenant's full listing holds exactly its memories in the model,
        each equal to the model's record; the live listing hides the deleted."""
        for tenant in TENANTS:
            every = self.store.search(tenant=tenant, include_deleted=True, limit=10_000)
            live = self.store.search(tenant=tenant, limit=10_000)
            mine = {
                (n, k): r for (t, n, k), r in self.model.recs.items() if t == tenant
            }
            assert found(every) == set(mine)
            assert found(live) == {a for a, r in mine.items() if not r.deleted}
            for memory in every:
                addr = (tenant, memory.namespace, memory.key)
                assert_matches(memory, addr, self.model.recs[addr])

    @invariant()
    def get_equals_the_model(self) -> None:
        for addr in HOT_ADDRS:
            tenant, ns, key = addr
            rec = self.model.recs.get(addr)
            got = self.store.get(ns, key, tenant=tenant, include_deleted=True)
            visible = self.store.get(ns, key, tenant=tenant)
            if rec is None:
                assert got is None
                assert visible is None
            else:
                assert_matches(got, addr, rec)
                assert (visible is None) == rec.deleted


@pytest.mark.parametrize("backend", BACKENDS)
def test_get_returns_the_last_write(backend: str) -> None:
    run_state_machine_as_test(
        lambda: StoreMachine(backend),
        settings=settings(max_examples=30, stateful_step_count=40, **SETTINGS),
    )


# ---- op lists, for (b) and (c) ------------------------------------------------------

# Two thirds of the ops go to the hot addresses, so that memories get long
# histories (update / delete / restore of a missing memory teach little).
op_addrs = st.sampled_from(HOT_ADDRS) | st.sampled_from(HOT_ADDRS) | addrs
put_ops = st.tuples(
    st.just("put"),
    op_addrs,
    json_values,
    optional_tags,
    optional_metadata,
    optional_type,
    st.sampled_from(ACTORS),
)
ops = st.lists(
    st.one_of(
        put_ops,
        put_ops,
        st.tuples(
            st.just("update"),
            op_addrs,
            optional_tags,
            optional_metadata,
            st.booleans(),
            optional_type,
            st.sampled_from(ACTORS),
        ),
        st.tuples(st.just("delete"), op_addrs, st.sampled_from(ACTORS)),
        st.tuples(st.just("restore"), op_addrs, st.sampled_from(ACTORS)),
    ),
    min_size=6,
    max_size=30,
)


def apply_ops(store: MemoryStore, model: Model, op_list: list[tuple[Any, ...]]) -> None:
    """Runs the ops on the store and the model; they must agree on each outcome."""
    for op in op_list:
        apply_op(store, model, op)


def apply_op(store: MemoryStore, model: Model, op: tuple[Any, ...]) -> None:
    """One op of :data:`ops` on both."""
    kind, (tenant, ns, key) = op[0], op[1]
    addr = (tenant, ns, key)
    if kind == "put":
        _, _, value, tags, metadata, memory_type, actor = op
        tag_list = None if tags is None else sorted(tags)
        outcome = agree(
            lambda: model.put(
                addr,
                value,
                tags=tags,
                metadata=metadata,
                memory_type=memory_type,
                actor=actor,
            ),
            lambda: store.put(
                ns,
                key,
                value,
                tags=tag_list,
                metadata=metadata,
                memory_type=memory_type,
                actor=actor,
                tenant=tenant,
            ),
        )
    elif kind == "update":
        _, _, tags, metadata, replace_metadata, memory_type, actor = op
        tag_list = None if tags is None else sorted(tags)
        outcome = agree(
            lambda: model.update(
                addr,
                tags=tags,
                metadata=metadata,
                replace_metadata=replace_metadata,
                memory_type=memory_type,
                actor=actor,
            ),
            lambda: store.update(
                ns,
                key,
                tags=tag_list,
                metadata=metadata,
                replace_metadata=replace_metadata,
                memory_type=memory_type,
                actor=actor,
                tenant=tenant,
            ),
        )
    else:
        _, _, actor = op
        predict = model.delete if kind == "delete" else model.restore
        act = store.delete if kind == "delete" else store.restore
        outcome = agree(
            lambda: predict(addr, actor=actor),
            lambda: act(ns, key, actor=actor, tenant=tenant),
        )
    if outcome:
        assert_matches(outcome[1], addr, outcome[0])


# ---- (b) the projection is a fold of the log -----------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=30, **SETTINGS)
@given(op_list=ops)
def test_projection_equals_replay_of_the_log(
    backend: str, op_list: list[tuple[Any, ...]]
) -> None:
    with fresh_store(backend) as (store, _url):
        model = Model()
        apply_ops(store, model, op_list)
        for addr in ADDRS:
            tenant, ns, key = addr
            row = store.get(ns, key, tenant=tenant, include_deleted=True)
            history = store.history(ns, key, tenant=tenant)
            if addr not in model.recs:
                assert row is None
                assert history == []
                continue
            assert row is not None
            assert_matches(row, addr, model.recs[addr])
            replayed = store.get(
                ns, key, version=row.version, tenant=tenant, include_deleted=True
            )
            assert replayed is not None
            assert snapshot(replayed) == snapshot(row)
            assert [e.version for e in history] == list(range(1, row.version + 1))
            assert snapshot(history[-1].memory) == snapshot(row)
            # The version after the latest does not exist.
            assert store.get(ns, key, version=row.version + 1, tenant=tenant) is None


REBUILD_WHERES: list[dict[str, Any]] = [
    {"a": {"$exists": True}},
    {"n": {"$gt": 0}},
    {"n": {"$lte": 0}},
    {"s": {"$gte": ""}},
    {"b": None},
    {"b": True},
    {"d.x": {"$exists": True}},
    {"d": {"$ne": None}},
]


def everything_searchable(store: MemoryStore) -> dict[Any, Any]:
    """Full listings and tag / metadata / prefix searches of every tenant."""
    answers: dict[Any, Any] = {}
    for tenant in TENANTS:
        answers[tenant, "all"] = [
            snapshot(m)
            for m in store.search(tenant=tenant, include_deleted=True, limit=10_000)
        ]
        answers[tenant, "live"] = [
            m.id for m in store.search(tenant=tenant, limit=10_000)
        ]
        for tag in TAGS:
            for mode in ("tags_any", "tags_all"):
                found = store.search(
                    tenant=tenant, include_deleted=True, limit=10_000, **{mode: [tag]}
                )
                answers[tenant, mode, tag] = [m.id for m in found]
        found = store.search(tenant=tenant, tags_all=["red", "blue"], limit=10_000)
        answers[tenant, "tags_all", "red+blue"] = [m.id for m in found]
        for n, where in enumerate(REBUILD_WHERES):
            found = store.search(
                tenant=tenant, where=where, include_deleted=True, limit=10_000
            )
            answers[tenant, "where", n] = [m.id for m in found]
        for prefix in ("user", "user:alice", "project"):
            found = store.search(
                tenant=tenant, namespace_prefix=prefix, include_deleted=True
            )
            answers[tenant, "prefix", prefix] = [m.id for m in found]
    return answers


@settings(max_examples=25, **SETTINGS)
@given(op_list=ops)
def test_rebuilding_the_projection_from_the_log_gives_the_same_answers(
    op_list: list[tuple[Any, ...]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store.db"
        url = backend_url("sqlite", Path(tmp))
        assert url.endswith(str(path))
        with mnemolog.open(url) as store:
            apply_ops(store, Model(), op_list)
            before = everything_searchable(store)
        connection = sqlite3.connect(path)
        with connection:
            for table in ("memories", "memory_tags", "memory_meta"):
                connection.execute(f"DELETE FROM {table}")
            connection.execute(
                "DELETE FROM tracking WHERE application_name = 'current_state'"
            )
        connection.close()
        with mnemolog.open(url) as store:
            assert all(s.lag == 0 for s in store.projections.status())
            after = everything_searchable(store)
        assert after == before


# ---- (c) tenant isolation ------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=20, **SETTINGS)
@given(op_list=ops, query_list=st.lists(queries, min_size=1, max_size=6))
def test_searches_never_cross_tenants(
    backend: str, op_list: list[tuple[Any, ...]], query_list: list[dict[str, Any]]
) -> None:
    with fresh_store(backend) as (store, _url):
        model = Model()
        apply_ops(store, model, op_list)
        for query in ISOLATION_FILTERS + query_list:
            for tenant in TENANTS:
                by_param = store.search(tenant=tenant, limit=10_000, **query)
                by_view = store.tenant(tenant).search(limit=10_000, **query)
                assert {m.tenant for m in by_param + by_view} <= {tenant}
                assert [snapshot(m) for m in by_param] == [snapshot(m) for m in by_view]
                assert found(by_param) == brute_force(model.recs, tenant, query)
        for tenant in TENANTS:
            for other in set(TENANTS) - {tenant}:
                view = store.tenant(tenant)
                with pytest.raises(TenantMismatch):
                    view.search(tenant=other)
                with pytest.raises(TenantMismatch):
                    view.get("user:alice", "k1", tenant=other)
                with pytest.raises(TenantMismatch):
                    view.tenant(other)
        for addr in ADDRS:
            tenant, ns, key = addr
            for other in TENANTS:
                got = store.tenant(other).get(ns, key, include_deleted=True)
                if (other, ns, key) not in model.recs:
                    assert got is None
                else:
                    assert got is not None
                    assert got.tenant == other
                    assert_matches(got, (other, ns, key), model.recs[other, ns, key])


# ---- (d) search filters are exact ---------------------------------------------------


def write_search_data(
    store: MemoryStore, tenant: str, data: dict[tuple[str, str], dict[str, Any]]
) -> dict[Addr, Rec]:
    recs = {}
    for (ns, key), record in data.items():
        stored = store.put(
            ns,
            key,
            key,
            tags=sorted(record["tags"]),
            metadata=record["metadata"],
            memory_type=record["memory_type"],
            importance=record["importance"],
            tenant=tenant,
        )
        if record["deleted"]:
            stored = store.delete(ns, key, tenant=tenant)
        assert norm(stored.metadata) == norm(record["metadata"])
        recs[tenant, ns, key] = Rec(
            value=key,
            tags=frozenset(record["tags"]),
            metadata=record["metadata"],
            memory_type=record["memory_type"],
            importance=record["importance"],
            confidence=1.0,
            version=stored.version,
            deleted=record["deleted"],
            created_by=None,
            updated_by=None,
        )
    return recs


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=40, **SETTINGS)
@given(
    data=search_data,
    noise=search_data,
    query_list=st.lists(queries, min_size=1, max_size=8),
)
def test_search_filters_are_exact(
    backend: str,
    data: dict[tuple[str, str], dict[str, Any]],
    noise: dict[tuple[str, str], dict[str, Any]],
    query_list: list[dict[str, Any]],
) -> None:
    with fresh_store(backend) as (store, _url):
        recs = write_search_data(store, "t1", data)
        recs |= write_search_data(store, "t2", noise)  # same addresses, other tenant
        for tenant in ("t1", "t2"):
            for query in SINGLE_FILTERS + boundary_queries(recs, tenant) + query_list:
                got = store.search(tenant=tenant, limit=10_000, **query)
                assert found(got) == brute_force(recs, tenant, query), query


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=30, **SETTINGS)
@given(
    data=search_data,
    order_by=st.sampled_from(
        [f"{sign}{column}" for sign in ("", "-") for column in ORDER_COLUMNS]
    ),
    page=st.integers(1, 4),
    query=queries,
)
def test_search_pages_are_slices_of_one_order(
    backend: str,
    data: dict[tuple[str, str], dict[str, Any]],
    order_by: str,
    page: int,
    query: dict[str, Any],
) -> None:
    """Results come sorted by the order_by column, ties by id; limit and offset
    cut that one sequence into pages."""
    with fresh_store(backend) as (store, _url):
        recs = write_search_data(store, "default", data)
        everything = store.search(order_by=order_by, limit=10_000, **query)
        assert found(everything) == brute_force(recs, "default", query)
        column = order_by.lstrip("-")
        expected = sorted(everything, key=lambda m: m.id.hex)
        expected.sort(key=lambda m: getattr(m, column), reverse=order_by[0] == "-")
        assert [m.id for m in everything] == [m.id for m in expected]
        pages: list[Memory] = []
        while chunk := store.search(
            order_by=order_by, limit=page, offset=len(pages), **query
        ):
            assert len(chunk) <= page
            pages += chunk
        assert [m.id for m in pages] == [m.id for m in everything]


@pytest.mark.parametrize("backend", BACKENDS)
def test_namespace_prefix_matches_whole_segments_only(backend: str) -> None:
    """The examples from the docstring, as a fixed check beside the property."""
    with fresh_store(backend) as (store, _url):
        for ns in ("user:alice", "user:al", "user:ab", "user:a_", "user:al:x"):
            store.put(ns, "k", ns)
        for prefix, expected in {
            "user:al": {"user:al", "user:al:x"},
            "user:a_": {"user:a_"},
            "user:a": set(),
            "user": {"user:alice", "user:al", "user:ab", "user:a_", "user:al:x"},
        }.items():
            got = store.search(namespace_prefix=prefix)
            assert {m.namespace for m in got} == expected, prefix


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=20, **SETTINGS)
@given(
    values=st.lists(st.integers(2, 4), min_size=1, max_size=3),
)
@example(values=[2, 3])
def test_put_many_returns_each_write_as_stored(backend: str, values: list[int]) -> None:
    with fresh_store(backend) as (store, _url):
        model = Model()
        items = [{"namespace": "user:a", "key": "k", "value": v} for v in values]
        expected = model.put_many("default", items, None)
        returned = store.put_many(items)
        for memory, rec in zip(returned, expected, strict=True):
            assert_matches(memory, ("default", "user:a", "k"), rec)


# ---- regressions -----------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=40, **SETTINGS)
@given(first=json_values, second=json_values)
@example(first=0, second=False)
@example(first=1, second=1.0)
@example(first=0.0, second=-0.0)
@example(first=[1], second=[True])
def test_overwriting_a_value_stores_exactly_the_new_value(
    backend: str, first: Any, second: Any
) -> None:
    """Regression: 1 -> True used to record only the new content hash."""
    with fresh_store(backend) as (store, _url):
        store.put("user:a", "k", first)
        written = store.put("user:a", "k", second)
        stored = store.get("user:a", "k")
        assert stored is not None
        for memory in (written, stored):
            assert norm(memory.value) == norm(second)
            assert memory.content_hash == content_hash(encode_value(second))
            assert memory.version == 1 + (norm(first) != norm(second))


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=40, **SETTINGS)
@given(first=metadata_dicts, second=metadata_dicts)
@example(first={"a": 0}, second={"a": False})
@example(first={"a": 1}, second={"a": 1.0})
def test_overwriting_metadata_stores_exactly_the_new_metadata(
    backend: str, first: dict[str, Any], second: dict[str, Any]
) -> None:
    """Regression: {"a": 0} -> {"a": False} used to be a no-op."""
    with fresh_store(backend) as (store, _url):
        store.put("user:a", "k", 1, metadata=first)
        store.put("user:a", "k", 1, metadata=second)
        stored = store.get("user:a", "k")
        assert stored is not None
        assert norm(stored.metadata) == norm(second)
        assert stored.version == 1 + (norm(first) != norm(second))
        for path, value in second.items():
            if value is not None and not isinstance(value, list | dict):
                hits = store.search(where={path: value})
                assert [m.key for m in hits] == ["k"]


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=30, **SETTINGS)
@given(
    metadata=st.dictionaries(
        st.sampled_from(["a", "b", "a.b", ""]),
        st.none()
        | st.integers(0, 2)
        | st.dictionaries(st.sampled_from(["a", "b", "b.c"]), st.none(), max_size=2),
        max_size=3,
    )
)
@example(metadata={"a": {"b": None}, "a.b": None})
def test_any_metadata_is_stored_or_rejected_as_invalid(
    backend: str, metadata: dict[str, Any]
) -> None:
    """Regression: {"a": {"b": None}, "a.b": None} used to fail with a
    VersionConflict (-1, -1) after 21 retries; dotted keys are refused now."""
    with fresh_store(backend) as (store, _url):
        try:
            store.put("user:a", "k", 1, metadata=metadata)
        except ValidationError:
            assert store.get("user:a", "k", include_deleted=True) is None
            return
        stored = store.get("user:a", "k")
        assert stored is not None
        assert norm(stored.metadata) == norm(metadata)


big_numbers = (
    st.integers(-(2**63), 2**63 - 1)
    | st.sampled_from([2**53, 2**53 + 1, 2**63 - 1, -(2**63), 2.0**53, 2.0**63])
    | st.floats(allow_nan=False, allow_infinity=False)
)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=30, **SETTINGS)
@given(
    stored=st.lists(big_numbers, min_size=1, max_size=4),
    operand=big_numbers,
    op=st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in"]),
)
@example(stored=[2**53], operand=2**53 + 1, op="$eq")
@example(stored=[2**53 + 1], operand=2**53, op="$gt")
@example(stored=[2**63 - 1], operand=2.0**63, op="$lt")
def test_where_on_large_numbers_is_exact(
    backend: str, stored: list[int | float], operand: int | float, op: str
) -> None:
    """Regression: numbers used to be compared as floats, so 2**53 + 1 found
    the memory whose n was 2**53."""
    with fresh_store(backend) as (store, _url):
        recs = {}
        for n, number in enumerate(stored):
            store.put("user:a", f"k{n}", n, metadata={"n": number})
            recs["default", "user:a", f"k{n}"] = Rec(
                value=n,
                tags=frozenset(),
                metadata={"n": number},
                memory_type="semantic",
                importance=0.5,
                confidence=1.0,
                version=1,
                deleted=False,
                created_by=None,
                updated_by=None,
            )
        condition = [operand, 0] if op == "$in" else operand
        query = {"where": {"n": {op: condition}}}
        got = store.search(limit=10_000, **query)
        assert found(got) == brute_force(recs, "default", query)


def test_norm_tells_json_types_apart() -> None:
    """The strict comparison the properties rely on."""
    assert norm(True) != norm(1) != norm(1.0)
    assert norm([1, {"a": b"x"}]) == norm([1, {"a": b"x"}])
    assert json_eq(1, 1.0)
    assert not json_eq(True, 1)
    assert norm(0.0) != norm(-0.0)
    assert norm(lookalike([True, 1, 0.0, {"a": 2}])) == norm(
        [1, True, -0.0, {"a": 2.0}]
    )
