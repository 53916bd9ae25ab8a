"""Fuzzing of every public entry point with hostile input (hypothesis).

The rule: each input is either stored and read back exactly, through every
read path (get, versions, as_of, history, search, text_search, audit,
namespaces, export and import), or refused with a ValidationError naming the
argument, or another MnemologError where the API documents one. Never another
exception (sqlite3, psycopg, UnicodeEncodeError, OverflowError, ...), never a
read model that ``verify`` finds wrong, and never a result from another tenant.

Hostile means: SQL and LIKE metacharacters, FTS5 and tsquery syntax, NUL and
other control characters, lone surrogates, bidi controls, zero-width and
combining characters, strings long enough to cross every length limit, deep
nesting, integers beyond 64 bits, NaN, infinities, -0.0, naive and extreme
datetimes, and values of the wrong type.

Every backend gets one store (an "arena") per module; each example writes into
two tenants of its own, named from a counter, so examples never see each
other's data and tenant A's reads can be checked against what was written to
A, with the same data in B. Each arena must verify at the end.

``MNEMOLOG_FUZZ_EXAMPLES`` (default 12) is the number of examples of a typical
test; run longer with, for instance::

    MNEMOLOG_FUZZ_EXAMPLES=200 .venv/bin/python -m pytest -q tests/test_fuzz*.py \\
        --hypothesis-show-statistics

Each arena also prints how many calls each entry point took and refused.
Explicit ``@example`` rows are the minimal failures found so far: a test that
fails on one of them is a library bug still open, and hypothesis then skips
generation for it. ``MNEMOLOG_FUZZ_PINNED=0`` leaves them out, so generation
explores past the open bugs.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import string
from collections import Counter
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cached_property
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

import mnemolog
from mnemolog import (
    AsyncMemoryStore,
    AuditEntry,
    Memory,
    MemoryEvent,
    MemoryStore,
    MnemologError,
    NamespaceInfo,
    NotFound,
    Scored,
    TenantMismatch,
    ValidationError,
    VersionConflict,
)
from mnemolog.domain.memory import Memory as DomainMemory
from mnemolog.domain.session import IllegalTransition, SessionClosed
from mnemolog.domain.values import content_hash, decode_value, encode_value
from mnemolog.models import Session, SessionList, SessionSummary
from mnemolog.projections.text import MAX_TS_TEXT
from mnemolog.transfer import export_events, import_events
from tests.conftest import BACKENDS, backend_url
from tests.test_properties import SETTINGS, Rec, brute_force, found, norm

EXAMPLES = int(os.environ.get("MNEMOLOG_FUZZ_EXAMPLES", "12"))
PINNED = os.environ.get("MNEMOLOG_FUZZ_PINNED", "1") != "0"

FUZZ_SETTINGS: dict[str, Any] = {
    **SETTINGS,
    "suppress_health_check": [
        *SETTINGS["suppress_health_check"],
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
    # Without the pinned failures, generation explores past the open bugs.
    "phases": tuple(Phase) if PINNED else tuple(set(Phase) - {Phase.explicit}),
}


def fuzz(share: float = 1.0) -> settings:
    """Settings for a test that runs ``share`` of MNEMOLOG_FUZZ_EXAMPLES examples."""
    return settings(max_examples=max(1, round(EXAMPLES * share)), **FUZZ_SETTINGS)


# ---- hostile text -----------------------------------------------------------------

# fmt: off
SQL = ("'", '"', ";", "--", "/*", "*/", "' OR '1'='1", "'); DROP TABLE memories; --",
       "`", "?", "$1", ":name", "\\")
LIKE = ("%", "_", "\\%", "\\_", "%_%", "[a-z]", "[!x]")
QUERY_SYNTAX = ("NEAR", "NEAR(a b, 2)", "*", "^", ":", "a:b", "&", "|", "!", "(", ")",
                '"', "AND", "OR", "NOT", "a*", "-a", "+a", "{a b}", "<->", ":*", "&&",
                "!!", "'a' & 'b'")
BIDI = tuple("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c")
ZERO_WIDTH = tuple("\u200b\u200c\u200d\u2060\ufeff\u00ad")
COMBINING = ("e\u0301", "\u0301", "\u0338", "a\u0300\u0301\u0302\u0303", "\u1100\u1161")
WIDE = ("\u00e9", "\u00df", "\u0130", "\ufb01", "\u03a9", "\u0661", "\U0001f600",
        "\U0001f469\u200d\U0001f4bb")
EDGE = ("\U0010ffff", "\uffff", "\ufffd", "\uf8ff", "\u2028", "\u2029")
SPACES = (" ", "\u00a0", "\u2003", "\u3000")
CONTROLS = tuple("\x00\x01\x08\x1b\x1f\x7f\x85\x9f\t\n\r")
LONE_SURROGATES = ("\ud800", "\udbff", "\udc00", "\udfff")
LENGTHS = (64, 65, 128, 129, 256, 257, 512, 513, 1024, 1025, 4096, 4097, 65_537)
"""Lengths on each side of every limit: tags 128, actors 256, namespaces 512,
keys 1024, reasons 4096, queries 65536."""
JUNK = (None, 0, -1, 1.5, float("nan"), True, b"bytes", bytearray(b"x"), ["list"],
        ("tuple",), {"dict": 1}, frozenset({"set"}))
"""Values of the wrong type for a text argument."""
# fmt: on

tricky_piece = st.sampled_from(
    SQL + LIKE + QUERY_SYNTAX + BIDI + ZERO_WIDTH + COMBINING + WIDE + EDGE + SPACES
) | st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=3)
poison_piece = st.sampled_from(CONTROLS + LONE_SURROGATES)

tricky_text = st.lists(tricky_piece, max_size=6).map("".join)
"""Text that every field should take: no control characters, no surrogates."""


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each drawn in proportion to its weight (one_of
    draws its branches evenly, whatever their number)."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(table.__getitem__)


hostile_text = weighted(
    (3, tricky_text),
    (1, st.tuples(tricky_text, poison_piece, tricky_text).map("".join)),
    (
        1,
        st.lists(st.sampled_from((*SPACES, "\t", "\n")), min_size=1, max_size=3).map(
            "".join
        ),
    ),
    (
        1,
        st.builds(
            lambda piece, n: piece * n,
            tricky_piece | poison_piece,
            st.sampled_from(LENGTHS),
        ),
    ),
)
"""Any text: tricky, poisoned, blank, or long enough to cross the limits."""

junk = st.sampled_from(JUNK)
hashable_junk = st.sampled_from([j for j in JUNK if j.__hash__ is not None])

text_or_junk = weighted((3, hostile_text), (1, junk))


def mostly(
    good: st.SearchStrategy[Any], anything: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """A tricky but valid input four times in five, anything otherwise: with
    many arguments to a call, some calls must get through to be read back."""
    return weighted((4, good), (1, anything))


SEGMENT = "Az09_.@+=-"
ROOTS = ("user", "app", "temp", "session", "project")
valid_namespaces = st.builds(
    lambda root, rest: ":".join([root, *rest]),
    st.sampled_from(ROOTS),
    st.lists(st.text(alphabet=SEGMENT, min_size=1, max_size=6), min_size=1, max_size=4),
)
"""Namespaces the store takes, with '_', '.', '-', '=' in them."""

namespaces = mostly(
    valid_namespaces,
    st.one_of(
        st.builds(
            lambda root, rest: ":".join([root, *rest]),
            st.sampled_from((*ROOTS, "USER", "users", "", "user ")),
            st.lists(
                st.text(alphabet=SEGMENT, min_size=1, max_size=6) | hostile_text,
                max_size=4,
            ),
        ),
        st.sampled_from([128, 129]).map(lambda n: "user:" + "=" * n),
        st.sampled_from([511, 512, 513]).map(
            lambda n: ("user:" + ":".join(["_"] * 300))[:n]
        ),
        text_or_junk,
    ),
)
"""Namespaces: mostly valid ones, then ones crossing each rule, and non-strings."""

keys = mostly(tricky_text.filter(bool), text_or_junk)
provenance_text = mostly(tricky_text, hostile_text | junk)

# ---- hostile numbers and JSON ------------------------------------------------------

HUGE_INTS = (2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 10**400, -(10**400))
ODD_FLOATS = (
    float("nan"),
    float("inf"),
    float("-inf"),
    -0.0,
    0.0,
    1e308,
    -1e308,
    5e-324,
    2.0**63,
    1.7976931348623157e308,
)
numbers = st.one_of(
    st.integers(),
    st.integers(-1, 10_001),
    st.floats(),
    st.sampled_from(HUGE_INTS + ODD_FLOATS),
    st.sampled_from((True, False, 0, 1, -1, 2**31, 2**62, 2**62 + 1, 10_000, 10_001)),
    st.sampled_from((np.int64(3), np.float64("nan"), np.float32(0.5), "1", None)),
)
"""Every kind of number, and a few things that only look like one."""

fair_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from((2**63 - 1, -(2**63), -0.0, 1e308, 5e-324, 2.0**63)),
    st.floats(allow_nan=False, allow_infinity=False),
    tricky_text,
)
"""Scalars the store must take, every one at an edge."""

json_scalars = st.one_of(
    fair_scalars,
    st.sampled_from(HUGE_INTS + ODD_FLOATS),
    st.floats(),
    hostile_text,
)
json_keys = hostile_text | st.sampled_from(["$bytes", "$dict", "$gt", "$in", "a.b", ""])
fair_keys = tricky_text | st.sampled_from(["$bytes", "$dict", "$gt", "$in"])
meta_keys = fair_keys.filter(lambda k: k and "." not in k)


def nest(leaf: Any, depth: int, as_dict: bool) -> Any:
    """``leaf`` inside ``depth`` lists or objects."""
    for _ in range(depth):
        leaf = {"a": leaf} if as_dict else [leaf]
    return leaf


def documents(
    scalars: st.SearchStrategy[Any],
    names: st.SearchStrategy[str],
    depths: st.SearchStrategy[int],
) -> st.SearchStrategy[Any]:
    """JSON documents of those scalars and keys, and some nested about as deep
    as the store allows (64 levels)."""
    tree = st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.tuples(inner)
            | st.dictionaries(names, inner, max_size=3)
        ),
        max_leaves=8,
    )
    return weighted((3, tree), (1, st.builds(nest, scalars, depths, st.booleans())))


values = mostly(
    documents(fair_scalars | st.binary(max_size=6), fair_keys, st.integers(50, 63)),
    documents(json_scalars | st.binary(max_size=6), json_keys, st.integers(60, 70)),
)
"""Values: JSON and bytes, with hostile text, numbers and nesting anywhere."""

metadata_maps = mostly(
    st.dictionaries(
        meta_keys, documents(fair_scalars, fair_keys, st.integers(50, 62)), max_size=4
    ),
    st.dictionaries(
        json_keys, documents(json_scalars, json_keys, st.integers(60, 70)), max_size=4
    )
    | junk,
)
tag_lists = mostly(
    st.lists(tricky_text.filter(bool), max_size=4),
    st.one_of(
        st.lists(text_or_junk, max_size=4),
        st.lists(
            st.text(alphabet="ab", min_size=1, max_size=8), min_size=60, max_size=70
        ),
        st.sampled_from(["a-string", b"bytes", 5]),
    ),
)
memory_types = mostly(
    st.sampled_from(["semantic", "episodic", "procedural", "working"]),
    st.sampled_from(["Semantic", "", "semantic "]) | junk,
)

PROVENANCE = ("actor", "task_id", "source", "reason")
PUT_FIELDS = (
    "namespace",
    "key",
    "value",
    "tags",
    "metadata",
    "memory_type",
    *PROVENANCE,
)

put_calls = st.fixed_dictionaries(
    {"namespace": namespaces, "key": keys, "value": values},
    optional={
        "tags": tag_lists,
        "metadata": metadata_maps,
        "memory_type": memory_types,
        **dict.fromkeys(PROVENANCE, provenance_text),
    },
)
"""The arguments of one hostile put."""

# ---- hostile moments -------------------------------------------------------------

OFFSETS = (
    UTC,
    timezone(timedelta(hours=14)),
    timezone(timedelta(hours=-14)),
    timezone(timedelta(hours=23, minutes=59)),
)
moments = st.one_of(
    st.datetimes(timezones=st.none() | st.sampled_from(OFFSETS)),
    st.sampled_from(
        [datetime.min.replace(tzinfo=tz) for tz in OFFSETS]
        + [datetime.max.replace(tzinfo=tz) for tz in OFFSETS]
        + [datetime.min, datetime.max, datetime(1970, 1, 1, tzinfo=UTC)]
    ),
    st.sampled_from(("2020-01-01T00:00:00+00:00", date(2020, 1, 1), 0, -1, 2**63)),
    st.integers(),
    junk,
)

# ---- the arena: one store per backend --------------------------------------------

DIMS = 8


def byte_counts(texts: list[str]) -> np.ndarray:
    """A toy model: how many UTF-8 bytes of each text fall in each of DIMS bins,
    plus one (so never a zero vector). Fast on 10 MB."""
    rows = []
    for text in texts:
        raw = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
        rows.append(np.bincount(raw % DIMS, minlength=DIMS) + 1.0)
    return np.array(rows, dtype=np.float32)


EMBEDDER = mnemolog.FunctionEmbedder("byte-counts", DIMS, byte_counts)


@dataclass(frozen=True)
class Tried:
    """One call's outcome: its result, or the error that refused it."""

    value: Any = None
    refusal: Exception | None = None

    @property
    def refused(self) -> bool:
        return self.refusal is not None


def settle(call: Callable[[], Any], allowed: tuple[type[Exception], ...] = ()) -> Tried:
    """The call's result, or the ValidationError (or allowed error) it raised."""
    try:
        return Tried(value=call())
    except (ValidationError, *allowed) as error:
        return Tried(refusal=error)


@dataclass
class Arena:
    """One store of a backend, shared by a module's examples, each in tenants
    of its own."""

    store: MemoryStore
    backend: str
    tally: Counter[tuple[str, str]] = field(default_factory=Counter)
    counter: Iterator[int] = field(default_factory=itertools.count)
    verified: bool = False
    """Whether the last test of the module verified the store (else the
    fixture does, on teardown)."""

    def __repr__(self) -> str:
        return f"Arena({self.backend!r})"

    def tenants(self) -> tuple[str, str]:
        """Two fresh tenants: the one an example reads, and its twin."""
        n = next(self.counter)
        return f"a{n}", f"b{n}"

    def marker(self) -> str:
        """A fresh word of letters only (PostgreSQL drops words with digits)."""
        n, letters = next(self.counter), ""
        while True:
            n, rest = divmod(n, 26)
            letters += string.ascii_lowercase[rest]
            if not n:
                return "zq" + letters + "zq"

    def attempt(
        self,
        entry: str,
        call: Callable[[], Any],
        fields: tuple[str, ...],
        *,
        allowed: tuple[type[MnemologError], ...] = (),
    ) -> Tried:
        """Runs ``call``: its result, a ValidationError that names one of
        ``fields``, or one of the ``allowed`` errors. Anything else escapes."""
        tried = settle(call, allowed)
        self.record(entry, tried, fields)
        return tried

    def record(self, entry: str, tried: Tried, fields: tuple[str, ...]) -> None:
        """Counts an outcome, after checking that a refusal names the input."""
        error = tried.refusal
        if isinstance(error, ValidationError):
            assert names_one_of(error.field, fields), (
                f"{entry} refused input naming {error.field!r}, not one of {fields}: "
                f"{error}"
            )
        self.tally[entry, "refused" if tried.refused else "done"] += 1

    @cached_property
    def reads(self) -> Known:
        """A population in tenant 'ra' (and more of it in 'rb') for the tables
        of read arguments."""
        populate(self.store.tenant("ra"), twin=False)
        populate(self.store.tenant("rb"), twin=True)
        return Known("ra", frozenset({"only-b"}), frozenset({"user:b-only"}))


def names_one_of(field_name: str, fields: tuple[str, ...]) -> bool:
    """True if the error's field is one of ``fields`` or a path inside one
    (``metadata.a``, ``items[0].key``, ``metadata key``)."""
    parts = re.split(r"[.\[\] ]+", field_name)
    return field_name in fields or any(part in fields for part in parts)


def report_tally(
    config: pytest.Config, title: str, tally: Counter[tuple[str, str]]
) -> None:
    """Prints, at the end of the run, how each entry point's calls turned out."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not tally:
        return
    outcomes: dict[str, list[str]] = {}
    for (entry, outcome), count in sorted(tally.items()):
        outcomes.setdefault(entry, []).append(f"{count:>6} {outcome}")
    lines = [f"{entry:<44}{'  '.join(row)}" for entry, row in outcomes.items()]

    def write() -> None:
        reporter.write_sep("-", title)
        for line in lines:
            reporter.write_line(line)

    config.add_cleanup(write)


@pytest.fixture(scope="module", params=BACKENDS)
def arena(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Arena]:
    backend = str(request.param)
    url = backend_url(backend, tmp_path_factory.mktemp(f"fuzz-{backend}"))
    store = mnemolog.open(url, embedder=EMBEDDER)
    opened = Arena(store, backend)
    yield opened
    report_tally(
        request.config, f"fuzz calls per entry point ({backend})", opened.tally
    )
    report = None if opened.verified else store.verify()
    store.close()
    assert report is None or report.ok, report.problems


@pytest.fixture(scope="module")
def target(arena: Arena, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Arena]:
    """A second store of the arena's backend, that imports land in."""
    url = backend_url(arena.backend, tmp_path_factory.mktemp(f"target-{arena.backend}"))
    store = mnemolog.open(url, embedder=EMBEDDER)
    opened = Arena(store, arena.backend, tally=arena.tally)
    yield opened
    report = store.verify()
    store.close()
    assert report.ok, report.problems


# ---- what reads must return ------------------------------------------------------


def expected_memory(call: dict[str, Any]) -> dict[str, Any]:
    """The fields a memory written by ``put(**call)`` must read back with."""
    return {
        "namespace": call["namespace"],
        "key": call["key"],
        "value": norm(call["value"]),
        "tags": frozenset(call.get("tags") or ()),
        "metadata": norm(dict(call.get("metadata") or {})),
        "memory_type": call.get("memory_type") or "semantic",
        "created_by": call.get("actor"),
    }


def fields_of(memory: Memory) -> dict[str, Any]:
    return {
        "namespace": memory.namespace,
        "key": memory.key,
        "value": norm(memory.value),
        "tags": memory.tags,
        "metadata": norm(memory.metadata),
        "memory_type": memory.memory_type,
        "created_by": memory.created_by,
    }


def metadata_paths(
    metadata: dict[str, Any], prefix: str = ""
) -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every key, nested ones too."""
    for name, value in metadata.items():
        yield prefix + name, value
        if isinstance(value, dict):
            yield from metadata_paths(value, prefix + name + ".")


def ancestors(namespace: str) -> list[str]:
    parts = namespace.split(":")
    return [":".join(parts[:i]) for i in range(1, len(parts) + 1)]


def assert_reads_back(
    store: MemoryStore, tenant: str, call: dict[str, Any], stored: Memory
) -> None:
    """Every read path returns exactly what ``put(**call)`` wrote, and nothing
    else: the tenant holds that one memory."""
    view = store.tenant(tenant)
    ns, key, want = call["namespace"], call["key"], expected_memory(call)
    assert stored.tenant == tenant
    assert fields_of(stored) == want
    assert stored.content_hash == content_hash(encode_value(call["value"]))
    assert fields_of(view.get(ns, key)) == want
    assert fields_of(view.get(ns, key, version=stored.version)) == want
    assert fields_of(view.get(ns, key, as_of=stored.updated_at)) == want

    (change,) = view.history(ns, key)
    assert fields_of(change.memory) == want
    assert (change.kind, change.version) == ("created", 1)
    assert [getattr(change, p) for p in PROVENANCE] == [call.get(p) for p in PROVENANCE]

    only = [stored.id]
    assert [m.id for m in view.search(limit=10_000)] == only
    assert [m.id for m in view.search(namespace_prefix=ns)] == only
    assert [m.id for m in view.search(memory_type=want["memory_type"])] == only
    for tag in sorted(want["tags"])[:4]:
        assert [m.id for m in view.search(tags_all=[tag])] == only
    if want["tags"]:
        assert [m.id for m in view.search(tags_any=sorted(want["tags"]))] == only
    for path, value in list(metadata_paths(dict(call.get("metadata") or {})))[:5]:
        if len(path) <= 512:
            assert [m.id for m in view.search(where={path: {"$eq": value}})] == only
            assert [m.id for m in view.search(where={path: {"$exists": True}})] == only

    counts = {
        n.namespace: n.count
        for n in view.list_namespaces(prefix=ns.split(":")[0], limit=10_000)
    }
    assert counts == dict.fromkeys(ancestors(ns), 1)

    (entry,) = view.audit()
    assert (entry.tenant, entry.namespace, entry.key, entry.kind) == (
        tenant,
        ns,
        key,
        "created",
    )
    assert [getattr(entry, p) for p in PROVENANCE] == [call.get(p) for p in PROVENANCE]
    assert view.audit(key=key) == [entry]
    assert view.audit(namespace_prefix=ns) == [entry]
    if call.get("actor") is not None:
        assert view.audit(actor=call["actor"]) == [entry]

    with view.as_of(stored.updated_at) as past:
        assert fields_of(past.get(ns, key)) == want
        assert [m.id for m in past.search()] == only
    assert set(view.stats()["tenants"]) == {tenant}


def assert_nothing_written(store: MemoryStore, tenant: str) -> None:
    view = store.tenant(tenant)
    assert view.audit(limit=1) == []
    assert view.search(include_deleted=True) == []


# ---- writes -------------------------------------------------------------------


@fuzz(2)
@given(call=put_calls)
@example(
    call={
        "namespace": "user:a",
        "key": "'; --",
        "value": "\x00\u202e%_",
        "tags": ["\u200b", "NEAR(*"],
        "metadata": {"\x00": "x\x00y"},
        "actor": "\u202e",
    }
)
@example(
    call={
        "namespace": "user:a",
        "key": "k",
        "value": [{"$bytes": "x"}, {"$dict": 1}, -0.0, 2**63 - 1, b"\x00"],
    }
)
def test_put_stores_exactly_what_it_was_given_or_refuses(
    arena: Arena, call: dict[str, Any]
) -> None:
    a, b = arena.tenants()
    tried = arena.attempt("put", lambda: arena.store.put(**call, tenant=a), PUT_FIELDS)
    if tried.refused:
        assert_nothing_written(arena.store, a)
        return
    twin = arena.store.put(**call, tenant=b)
    assert twin.id != tried.value.id
    assert_reads_back(arena.store, a, call, tried.value)
    assert_reads_back(arena.store, b, call, twin)


@fuzz()
@given(
    items=st.lists(
        put_calls.map(
            lambda call: {k: v for k, v in call.items() if k not in PROVENANCE}
        )
        | put_calls
        | st.dictionaries(
            weighted((3, hostile_text), (1, hashable_junk)), values, max_size=3
        )
        | junk,
        max_size=4,
    ),
    actor=provenance_text,
)
@example(items=[{1: "not a field name"}], actor=None)
def test_put_many_writes_all_or_nothing(
    arena: Arena, items: list[Any], actor: Any
) -> None:
    a, b = arena.tenants()
    tried = arena.attempt(
        "put_many",
        lambda: arena.store.put_many(items, actor=actor, tenant=a),
        ("items", "actor"),
    )
    if tried.refused:
        assert_nothing_written(arena.store, a)
        return
    arena.store.put_many(items, actor=actor, tenant=b)
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for item in items:
        last[item["namespace"], item["key"]] = item
    view = arena.store.tenant(a)
    assert found(view.search(limit=10_000)) == set(last)
    for (ns, key), item in last.items():
        got = view.get(ns, key)
        assert got is not None
        assert got.tenant == a
        assert norm(got.value) == norm(item["value"])


update_calls = st.fixed_dictionaries(
    {},
    optional={
        "value": values,
        "tags": tag_lists,
        "metadata": metadata_maps,
        "replace_metadata": st.booleans(),
        "memory_type": memory_types,
        **dict.fromkeys(PROVENANCE, provenance_text),
    },
)
provenance_calls = st.fixed_dictionaries(
    {}, optional=dict.fromkeys(PROVENANCE, provenance_text)
)


@fuzz()
@given(change=update_calls, deletion=provenance_calls, restoration=provenance_calls)
def test_update_delete_and_restore_keep_hostile_input_exactly(
    arena: Arena,
    change: dict[str, Any],
    deletion: dict[str, Any],
    restoration: dict[str, Any],
) -> None:
    a, _ = arena.tenants()
    view = arena.store.tenant(a)
    ns, key = "user:u", "k"
    before = view.put(ns, key, "first", tags=["t"], metadata={"m": 1, "n": {"x": 2}})

    tried = arena.attempt(
        "update",
        lambda: view.update(ns, key, **change),
        (*PUT_FIELDS, "replace_metadata"),
    )
    now = view.get(ns, key)
    if tried.refused:
        assert now == before
    else:
        metadata = dict(change.get("metadata") or {})
        if not change.get("replace_metadata") or "metadata" not in change:
            metadata = {**before.metadata, **metadata}
        want = {
            "value": norm(change.get("value", before.value)),
            "tags": frozenset(change["tags"])
            if change.get("tags") is not None
            else before.tags,
            "metadata": norm(metadata),
        }
        assert {k: v for k, v in fields_of(now).items() if k in want} == want
        history = view.history(ns, key)
        assert len(history) == now.version
        if now.version == 2:
            assert [getattr(history[-1], p) for p in PROVENANCE] == [
                change.get(p) for p in PROVENANCE
            ]

    for entry, method, kind, provenance in (
        ("delete", view.delete, "deleted", deletion),
        ("restore", view.restore, "restored", restoration),
    ):
        current = view.get(ns, key, include_deleted=True)
        tried = arena.attempt(
            entry, lambda m=method, p=provenance: m(ns, key, **p), PROVENANCE
        )
        latest = view.history(ns, key)[-1]
        if tried.refused or current.deleted == (kind == "deleted"):
            assert latest.version == current.version  # refused, or nothing to do
            continue
        version = current.version
        assert (latest.kind, latest.version) == (kind, version + 1)
        assert [getattr(latest, p) for p in PROVENANCE] == [
            provenance.get(p) for p in PROVENANCE
        ]
        assert view.audit(descending=True, limit=1)[0].reason == provenance.get(
            "reason"
        )
        deleted = kind == "deleted"
        assert (view.get(ns, key) is None) == deleted
        assert [m.key for m in view.search()] == ([] if deleted else [key])
        assert [m.key for m in view.search(include_deleted=True)] == [key]


# ---- search -------------------------------------------------------------------

population_metadata = mostly(
    st.dictionaries(
        meta_keys,
        fair_scalars
        | st.dictionaries(
            meta_keys,
            st.none() | st.booleans() | st.integers() | tricky_text,
            max_size=2,
        ),
        max_size=3,
    ),
    st.dictionaries(json_keys, json_scalars, max_size=3),
)
"""Metadata whose nested values hold no floats: the store compares nested
values by their JSON text, where 1 and 1.0 differ (see test_properties)."""

exact_scalars = st.none() | st.booleans() | st.integers() | hostile_text
where_operands = st.one_of(
    json_scalars,
    st.lists(exact_scalars, max_size=2),
    st.dictionaries(json_keys, exact_scalars, max_size=2),
)


@st.composite
def where_filters(draw: st.DrawFn, known: list[tuple[str, Any]]) -> dict[str, Any]:
    """Conditions on stored paths and values (where bugs show), or hostile ones."""
    where: dict[Any, Any] = {}
    for _ in range(draw(st.integers(1, 2))):
        if known and draw(st.booleans()):
            path, value = draw(st.sampled_from(known))
        else:
            path, value = draw(json_keys | hashable_junk), draw(where_operands)
        op = draw(
            st.sampled_from(
                [
                    "=",
                    "$eq",
                    "$ne",
                    "$gt",
                    "$gte",
                    "$lt",
                    "$lte",
                    "$in",
                    "$exists",
                    "$regex",
                    "$",
                ]
            )
        )
        if op == "=":
            where[path] = value
        elif op == "$in":
            where[path] = {
                op: draw(st.lists(st.just(value) | json_scalars, max_size=3))
            }
        elif op == "$exists":
            where[path] = {op: draw(st.booleans() | junk)}
        else:
            where[path] = {op: value}
    return where


@fuzz(2)
@given(
    data=st.data(),
    records=st.lists(
        st.tuples(valid_namespaces, hostile_text, tag_lists, population_metadata),
        min_size=1,
        max_size=4,
    ),
)
def test_search_with_hostile_filters_is_exact_within_the_tenant(
    arena: Arena,
    data: st.DataObject,
    records: list[tuple[str, str, Any, dict[str, Any]]],
) -> None:
    a, b = arena.tenants()
    recs: dict[tuple[str, str, str], Rec] = {}
    for ns, key, tags, metadata in records:
        for tenant in (a, b):
            tried = arena.attempt(
                "put",
                lambda ns=ns, key=key, tags=tags, metadata=metadata, tenant=tenant: (
                    arena.store.put(
                        ns, key, key, tags=tags, metadata=metadata, tenant=tenant
                    )
                ),
                PUT_FIELDS,
            )
            if tenant == a and not tried.refused:
                recs[a, ns, key] = Rec(
                    key,
                    tried.value.tags,
                    metadata,
                    "semantic",
                    0.5,
                    1.0,
                    1,
                    False,
                    None,
                    None,
                )
    known = [pv for rec in recs.values() for pv in metadata_paths(rec.metadata)]
    stored_tags = sorted({t for rec in recs.values() for t in rec.tags})
    query = data.draw(
        st.fixed_dictionaries(
            {},
            optional={
                "namespace_prefix": st.sampled_from(
                    [ns for _, ns, _ in recs] or ["user"]
                ).map(lambda ns: ":".join(ns.split(":")[:2]))
                | namespaces,
                "tags_any": st.lists(
                    st.sampled_from(stored_tags) if stored_tags else text_or_junk,
                    min_size=1,
                    max_size=2,
                )
                | tag_lists,
                "tags_all": st.lists(
                    st.sampled_from(stored_tags) if stored_tags else text_or_junk,
                    min_size=1,
                    max_size=2,
                )
                | tag_lists,
                "where": where_filters(known) | junk,
                "memory_type": memory_types,
            },
        )
    )
    page = data.draw(
        st.fixed_dictionaries(
            {},
            optional={
                "order_by": st.sampled_from(["key", "-namespace", "-importance"])
                | text_or_junk,
                "limit": numbers,
                "offset": numbers,
            },
        )
    )
    view = arena.store.tenant(a)
    # "metadata": a where operand is refused naming metadata.v (a bug that the
    # read tables and the nesting test report); tolerated here to look further.
    tried = arena.attempt(
        "search",
        lambda: view.search(limit=10_000, **query),
        (
            "namespace_prefix",
            "tags_any",
            "tags_all",
            "where",
            "memory_type",
            "metadata",
        ),
    )
    if not tried.refused:
        assert {m.tenant for m in tried.value} <= {a}
        assert found(tried.value) == brute_force(recs, a, query)
    paged = arena.attempt(
        "search",
        lambda: view.search(**query, **page),
        (
            "namespace_prefix",
            "tags_any",
            "tags_all",
            "where",
            "memory_type",
            "metadata",
            "order_by",
            "limit",
            "offset",
        ),
    )
    if not paged.refused and not tried.refused:
        whole = view.search(
            limit=10_000, order_by=page.get("order_by", "-updated_at"), **query
        )
        start = page.get("offset", 0)
        assert [m.id for m in paged.value] == [
            m.id for m in whole[start : start + page.get("limit", 50)]
        ]


# ---- words ---------------------------------------------------------------------


@fuzz(2)
@given(
    left=hostile_text,
    right=hostile_text,
    noise=st.lists(values, max_size=3),
    query=text_or_junk,
    match=st.sampled_from(["any", "all"]) | text_or_junk,
)
@example(left="", right="", noise=[], query="\x00", match="any")
@example(left="00" * 65_537, right="", noise=[], query=None, match="any")
@example(
    left="NEAR(",
    right='"*',
    noise=["' OR 1=1 --"],
    query='NEAR(a b) "unbalanced * ^x:y',
    match="all",
)
def test_text_search_finds_words_among_hostile_text(
    arena: Arena, left: str, right: str, noise: list[Any], query: Any, match: Any
) -> None:
    a, b = arena.tenants()
    word = arena.marker()
    value = {"text": f"{left} {word} {right}", "n": 1}
    for tenant in (a, b):
        for i, other in enumerate(noise):
            arena.attempt(
                "put",
                lambda t=tenant, i=i, v=other: arena.store.put(
                    "user:noise", f"n{i}", v, tenant=t
                ),
                PUT_FIELDS,
            )
        hit = arena.attempt(
            "put",
            lambda t=tenant: arena.store.put("user:words", "hit", value, tenant=t),
            PUT_FIELDS,
        )
    view = arena.store.tenant(a)
    # PostgreSQL indexes the first 100,000 characters (docs/deploy-postgres.md).
    indexed = arena.backend != "postgres" or len(f"{left} {word}") <= MAX_TS_TEXT
    if not hit.refused and indexed:
        for how, words in (
            ("any", f"{query if isinstance(query, str) else ''} {word}"),
            ("all", word),
        ):
            tried = arena.attempt(
                "text_search",
                lambda w=words, h=how: view.text_search(w, k=100, match=h),
                ("query",),
            )
            if not tried.refused:
                assert "hit" in [r.item.key for r in tried.value]
                assert {r.item.tenant for r in tried.value} == {a}
                (best,) = [r.item for r in tried.value if r.item.key == "hit"]
                assert norm(best.value) == norm(value)
    for entry, call in (
        ("text_search", lambda: view.text_search(query, k=100, match=match)),
        ("retrieve", lambda: view.retrieve(query, k=100)),
    ):
        tried = arena.attempt(entry, call, ("query", "match"))
        if not tried.refused:
            assert {r.item.tenant for r in tried.value} <= {a}


@fuzz()
@given(
    before=st.sampled_from(["", "x", "see", "42"]),
    left=st.sampled_from([*string.punctuation, " "]),
    right=st.sampled_from([*string.punctuation, " "]),
    after=st.sampled_from(["", "y", "com", "7"]),
)
@example(before="bob", left="@", right=".", after="org")
@example(before="x", left=".", right=".", after="y")
@example(before="", left="/", right="/", after="lib")
def test_a_word_is_found_whatever_punctuation_surrounds_it(
    arena: Arena, before: str, left: str, right: str, after: str
) -> None:
    """SQLite splits words at every punctuation mark; the text search must find
    a word in 'bob@word.org' or 'x.word.y' on every backend alike."""
    a, _ = arena.tenants()
    word = arena.marker()
    text = f"{before}{left}{word}{right}{after}"
    view = arena.store.tenant(a)
    view.put("user:words", "k", text)
    assert [r.item.key for r in view.text_search(word)] == ["k"], text


# ---- meaning ----------------------------------------------------------------------

vectors = st.one_of(
    st.lists(numbers, min_size=DIMS, max_size=DIMS),
    st.lists(st.floats(-1e308, 1e308), min_size=DIMS, max_size=DIMS),
    st.lists(st.floats(width=32), min_size=0, max_size=DIMS + 1),
    st.sampled_from(
        [
            [1.0] * DIMS,
            [0.0] * DIMS,
            [5e-324] * DIMS,
            [1e308] * DIMS,
            [[1.0] * DIMS],
            np.ones(DIMS, dtype=np.float32),
        ]
    ),
    text_or_junk,
)


@fuzz(2)
@given(
    texts=st.lists(hostile_text, min_size=1, max_size=3),
    embedding=vectors,
    query=vectors | text_or_junk,
    k=numbers,
    min_score=numbers,
    weights=st.none()
    | st.dictionaries(
        st.sampled_from(["vector", "text"]) | hostile_text, numbers, max_size=2
    )
    | junk,
    boost=numbers,
    half_life=st.none()
    | st.timedeltas()
    | st.sampled_from([timedelta.max, timedelta(microseconds=1), timedelta(0)])
    | junk,
)
@example(
    texts=["a"],
    embedding=None,
    query="a",
    k=10,
    min_score=None,
    weights={"text": 10**400},
    boost=0.0,
    half_life=None,
)
@example(
    texts=["a"],
    embedding=None,
    query="a",
    k=10,
    min_score=None,
    weights=None,
    boost=10**400,
    half_life=None,
)
def test_similar_and_retrieve_with_hostile_queries(
    arena: Arena,
    texts: list[str],
    embedding: Any,
    query: Any,
    k: Any,
    min_score: Any,
    weights: Any,
    boost: Any,
    half_life: Any,
) -> None:
    a, b = arena.tenants()
    for tenant in (a, b):
        view = arena.store.tenant(tenant)
        for i, text in enumerate(texts):
            arena.attempt(
                "put",
                lambda v=view, i=i, t=text: v.put("user:m", f"t{i}", t),
                PUT_FIELDS,
            )
        arena.attempt(
            "put",
            lambda v=view: v.put("user:m", "vec", "v", embedding=embedding),
            ("embedding",),
        )
    view = arena.store.tenant(a)
    stored = view.search(limit=10_000)
    for memory in stored:
        if (
            memory.key != "vec"
            and isinstance(memory.value, str)
            and memory.value.strip()
        ):
            tried = arena.attempt(
                "similar", lambda m=memory: view.similar(m.value, k=100), ("query",)
            )
            if not tried.refused:
                scores = {r.item.key: r.score for r in tried.value}
                assert scores[memory.key] == pytest.approx(1.0, abs=1e-5)
    for entry, call in (
        ("similar", lambda: view.similar(query, k=k, min_score=min_score)),
        (
            "retrieve",
            lambda: view.retrieve(
                query,
                k=k,
                weights=weights,
                importance_boost=boost,
                recency_half_life=half_life,
            ),
        ),
        ("retrieve", lambda: view.retrieve("v", vector=query, k=k)),
    ):
        tried = arena.attempt(
            entry,
            call,
            (
                "query",
                "vector",
                "k",
                "min_score",
                "weights",
                "importance_boost",
                "recency_half_life",
            ),
        )
        if not tried.refused:
            assert {r.item.tenant for r in tried.value} <= {a}
            assert {r.item.id for r in tried.value} <= {m.id for m in stored}


# ---- the past -----------------------------------------------------------------------


@fuzz()
@given(moment=moments, prefix=st.none() | namespaces)
@example(moment=datetime.min.replace(tzinfo=timezone(timedelta(hours=14))), prefix=None)
def test_as_of_with_hostile_moments(arena: Arena, moment: Any, prefix: Any) -> None:
    a, b = arena.tenants()
    written = {
        tenant: [arena.store.put("user:p", "k", v, tenant=tenant) for v in ("v1", "v2")]
        for tenant in (a, b)
    }
    first, second = written[a]
    view = arena.store.tenant(a)
    tried = arena.attempt(
        "as_of",
        lambda: view.as_of(moment, namespace_prefix=prefix),
        ("moment", "position", "namespace_prefix"),
    )
    if tried.refused:
        return
    with tried.value as past:
        got = past.get("user:p", "k")
        memories = past.search(include_deleted=True)
    assert {m.tenant for m in memories} <= {a}
    if isinstance(moment, datetime) and (
        prefix is None or "user:p".startswith(str(prefix))
    ):
        expected = (
            None
            if moment < first.updated_at
            else "v1"
            if moment < second.updated_at
            else "v2"
        )
        assert (got.value if got else None) == expected


# ---- read arguments: three tables --------------------------------------------------


@dataclass(frozen=True)
class Known:
    """A tenant whose reads are checked, and what only its twin holds."""

    tenant: str
    foreign_sessions: frozenset[str] = frozenset()
    foreign_namespaces: frozenset[str] = frozenset()


def populate(view: MemoryStore, *, twin: bool) -> None:
    """A few hostile memories and a session; more of them in the twin."""
    view.put(
        "user:r",
        "k",
        {"text": "alpha \u202e' OR 1=1 -- NEAR(beta)", "n": 1},
        tags=["t%", "t_", "\u200b"],
        metadata={"m": "x'\x00", "n": 1, "d": {"e": None}},
        actor="a;--",
        reason="r/*",
        task_id="t\u0301",
        source="s%",
    )
    view.put("user:r:deep", "k2", "beta * alpha", tags=["t_"])
    view.put("user:n", "k", 1)
    sessions = view.sessions
    sessions.create_session(
        app_name="app", user_id="u", session_id="s", state={"n": 1, "user:pref": "x"}
    )
    sessions.append_event("s", {"author": "user", "content": "alpha words", "id": "e1"})
    sessions.add_session_to_memory("s")
    if twin:
        view.put("user:r", "only-b", "alpha beta")
        view.put("user:b-only", "k", "alpha beta")
        sessions.create_session(app_name="app", user_id="u", session_id="only-b")


def assert_within(result: Any, known: Known) -> None:
    """Every memory, entry, namespace and session in a result is the tenant's."""
    if isinstance(result, Memory):
        assert result.tenant == known.tenant, result
    elif isinstance(result, Scored):
        assert_within(result.item, known)
    elif isinstance(result, MemoryEvent):
        assert_within(result.memory, known)
    elif isinstance(result, AuditEntry):
        assert result.tenant == known.tenant, result
    elif isinstance(result, NamespaceInfo):
        assert result.namespace not in known.foreign_namespaces, result
    elif isinstance(result, Session | SessionSummary):
        assert result.id not in known.foreign_sessions, result
    elif isinstance(result, SessionList):
        assert_within(result.sessions, known)
    elif isinstance(result, list | tuple):
        for item in result:
            assert_within(item, known)


def past_search(view: MemoryStore, moment: Any) -> list[Memory]:
    with view.as_of(moment) as past:
        return past.search(limit=10_000)


Read = Callable[[MemoryStore, Any], Any]
"""A read in the population's tenant, with the hostile input in one argument."""


def argument_of(entry: str) -> tuple[str, ...]:
    """The argument an entry is named after: 'audit.actor' is the actor,
    'search.where/path' the where (a moment may be a log position)."""
    name = entry.split("/", maxsplit=1)[0].rsplit(".", 1)[-1]
    return ("moment", "position") if name == "moment" else (name,)


# fmt: off
TEXT_READS: dict[str, Read] = {
    "get.namespace": lambda v, x: v.get(x, "k"),
    "get.key": lambda v, x: v.get("user:r", x),
    "history.key": lambda v, x: v.history("user:r", x),
    "search.namespace_prefix": lambda v, x: v.search(namespace_prefix=x),
    "search.memory_type": lambda v, x: v.search(memory_type=x),
    "search.tags_any": lambda v, x: v.search(tags_any=[x]),
    "search.tags_all": lambda v, x: v.search(tags_all=[x, "t_"]),
    "search.where/path": lambda v, x: v.search(where={x: {"$exists": True}}),
    "search.where/value": lambda v, x: v.search(where={"m": x}),
    # An unhashable operator cannot be a dict key: it is given as the condition.
    "search.where/operator": lambda v, x: v.search(
        where={"m": {x: "x"} if isinstance(x, Hashable) else x}
    ),
    "search.where/ordered": lambda v, x: v.search(where={"m": {"$gte": x}}),
    "search.order_by": lambda v, x: v.search(order_by=x),
    "text_search.query": lambda v, x: v.text_search(x),
    "text_search.match": lambda v, x: v.text_search("alpha", match=x),
    "similar.query": lambda v, x: v.similar(x),
    "retrieve.query": lambda v, x: v.retrieve(x),
    "list_namespaces.prefix": lambda v, x: v.list_namespaces(prefix=x),
    "audit.actor": lambda v, x: v.audit(actor=x),
    "audit.namespace_prefix": lambda v, x: v.audit(namespace_prefix=x),
    "audit.key": lambda v, x: v.audit(key=x),
    "audit.kind": lambda v, x: v.audit(kind=x),
    "store.tenant": lambda v, x: v.tenant(x).search(),
    "sessions.get_session.session_id": lambda v, x: v.sessions.get_session(x),
    "sessions.get_state.key": lambda v, x: v.sessions.get_state("s", x),
    "sessions.list_sessions.app_name": lambda v, x: v.sessions.list_sessions(app_name=x),
    "sessions.list_sessions.user_id": lambda v, x: v.sessions.list_sessions(user_id=x),
    "sessions.list_sessions.status": lambda v, x: v.sessions.list_sessions(status=x),
    "sessions.list_sessions.cursor": lambda v, x: v.sessions.list_sessions(cursor=x),
    "sessions.list_active_sessions.user_id": lambda v, x: v.sessions.list_active_sessions(x),
    "sessions.search_memory.query": lambda v, x: v.sessions.search_memory("app", "u", x),
    "sessions.search_memory.app_name": lambda v, x: v.sessions.search_memory(x, "u", "a"),
    "sessions.search_memory.user_id": lambda v, x: v.sessions.search_memory("app", x, "a"),
    "sessions.rewind.to_event_id": lambda v, x: v.sessions.rewind("s", x),
}
NUMERIC_READS: dict[str, Read] = {
    "put.importance": lambda v, x: v.put("user:n", "k", 1, importance=x),
    "put.confidence": lambda v, x: v.put("user:n", "k", 1, confidence=x),
    "update.importance": lambda v, x: v.update("user:n", "k", importance=x),
    "put.expected_version": lambda v, x: v.put("user:n", "k", 1, expected_version=x),
    "put.embedding": lambda v, x: v.put("user:n", "v", 1, embedding=[x] + [1.0] * (DIMS - 1)),
    "delete.expected_version": lambda v, x: v.delete("user:n", "no", expected_version=x),
    "get.version": lambda v, x: v.get("user:r", "k", version=x),
    "search.limit": lambda v, x: v.search(limit=x),
    "search.offset": lambda v, x: v.search(offset=x),
    "text_search.k": lambda v, x: v.text_search("alpha", k=x),
    "similar.k": lambda v, x: v.similar("alpha", k=x),
    "similar.min_score": lambda v, x: v.similar("alpha", min_score=x),
    "similar.query/vector": lambda v, x: v.similar([x] * DIMS),
    "retrieve.k": lambda v, x: v.retrieve("alpha", k=x),
    "retrieve.importance_boost": lambda v, x: v.retrieve("alpha", importance_boost=x),
    "retrieve.weights": lambda v, x: v.retrieve("alpha", weights={"text": x}),
    "list_namespaces.max_depth": lambda v, x: v.list_namespaces(max_depth=x),
    "list_namespaces.limit": lambda v, x: v.list_namespaces(limit=x),
    "list_namespaces.offset": lambda v, x: v.list_namespaces(offset=x),
    "audit.after_position": lambda v, x: v.audit(after_position=x),
    "audit.limit": lambda v, x: v.audit(limit=x),
    "as_of.position": past_search,
    "sessions.get_session.num_recent_events": lambda v, x: v.sessions.get_session("s", num_recent_events=x),
    "sessions.list_sessions.limit": lambda v, x: v.sessions.list_sessions(limit=x),
    "sessions.append_event.expected_version": lambda v, x: v.sessions.append_event("s", {"author": "a"}, expected_version=x),
    "sessions.search_memory.k": lambda v, x: v.sessions.search_memory("app", "u", "a", k=x),
}
MOMENT_READS: dict[str, Read] = {
    "get.as_of": lambda v, x: v.get("user:r", "k", as_of=x),
    "search.updated_after": lambda v, x: v.search(updated_after=x),
    "search.updated_before": lambda v, x: v.search(updated_before=x),
    "text_search.updated_before": lambda v, x: v.text_search("alpha", updated_before=x),
    "similar.updated_after": lambda v, x: v.similar("alpha", updated_after=x),
    "audit.since": lambda v, x: v.audit(since=x),
    "audit.until": lambda v, x: v.audit(until=x),
    "as_of.moment": past_search,
    "sessions.get_session.after": lambda v, x: v.sessions.get_session("s", after=x),
}
# fmt: on

HITS = (
    "user",
    "user:r",
    "user:r:deep",
    "k",
    "t%",
    "t_",
    "\u200b",
    "m",
    "d.e",
    "x'\x00",
    "semantic",
    "created",
    "-key",
    "namespace",
    "all",
    "a;--",
    "alpha",
    "s",
    "e1",
    "app",
    "u",
    "active",
    "ra",
    "rb",
    "0",
    "1",
)
"""Arguments that find something in the population."""
CURSORS = ("\u00b2", "\u0663", "9" * 20, "9" * 5000, "-1", " 1", "1\x00")
"""Cursors that str.isdigit() takes, or int() does, or neither."""


def check_read(arena: Arena, entry: str, call: Read, argument: Any) -> Tried:
    """One read in the population's tenant: refused naming the argument (or
    NotFound, or TenantMismatch for another tenant), or only the tenant's data."""
    known = arena.reads
    tried = arena.attempt(
        entry,
        lambda: call(arena.store.tenant(known.tenant), argument),
        argument_of(entry),
        allowed=(NotFound, TenantMismatch, VersionConflict),
    )
    if not tried.refused:
        assert_within(tried.value, known)
    return tried


@pytest.mark.parametrize("entry", sorted(TEXT_READS))
@fuzz()
@given(text=weighted((3, text_or_junk), (2, st.sampled_from(HITS + CURSORS))))
@example(text="\ud800")
@example(text="\x00")
@example(text=["unhashable"])
@example(text="\u00b2")
@example(text="9" * 20)
def test_text_arguments_are_checked(arena: Arena, entry: str, text: Any) -> None:
    if entry == "search.where/path" and getattr(text, "__hash__", None) is None:
        return  # cannot be a key of the where mapping
    check_read(arena, entry, TEXT_READS[entry], text)


@pytest.mark.parametrize("entry", sorted(NUMERIC_READS))
@fuzz()
@given(number=numbers)
@example(number=10**400)
@example(number=2**63)
@example(number=float("nan"))
def test_numeric_arguments_are_checked(arena: Arena, entry: str, number: Any) -> None:
    tried = check_read(arena, entry, NUMERIC_READS[entry], number)
    name = entry.removeprefix("put.")
    if (
        name in ("importance", "confidence")
        and number is not None
        and not tried.refused
    ):
        assert getattr(tried.value, name) == number  # stored as given


@pytest.mark.parametrize("entry", sorted(MOMENT_READS))
@fuzz()
@given(moment=moments)
def test_moment_arguments_are_checked(arena: Arena, entry: str, moment: Any) -> None:
    check_read(arena, entry, MOMENT_READS[entry], moment)


# ---- the audit timeline and namespaces --------------------------------------------


@fuzz()
@given(
    writes=st.lists(
        st.tuples(valid_namespaces, hostile_text, provenance_calls),
        min_size=1,
        max_size=4,
    ),
    data=st.data(),
)
def test_audit_filters_are_exact_on_hostile_provenance(
    arena: Arena, writes: list[tuple[str, str, dict[str, Any]]], data: st.DataObject
) -> None:
    a, b = arena.tenants()
    for tenant in (a, b):
        view = arena.store.tenant(tenant)
        for ns, key, provenance in writes:
            arena.attempt(
                "put",
                lambda v=view, n=ns, k=key, p=provenance: v.put(n, k, 1, **p),
                PUT_FIELDS,
            )
    view = arena.store.tenant(a)
    everything = view.audit(limit=10_000)
    assert {e.tenant for e in everything} <= {a}
    if not everything:
        return
    entry = data.draw(st.sampled_from(everything))
    filters = data.draw(
        st.fixed_dictionaries(
            {},
            optional={
                "actor": st.just(entry.actor) | provenance_text,
                "namespace_prefix": st.just(entry.namespace) | namespaces,
                "key": st.just(entry.key) | text_or_junk,
                "kind": st.sampled_from(["created", "updated", "deleted"])
                | text_or_junk,
                "since": st.just(entry.at) | moments,
                "until": st.just(entry.at + timedelta(microseconds=1)) | moments,
                "after_position": st.just(entry.position - 1) | numbers,
                "descending": st.booleans(),
            },
        )
    )
    tried = arena.attempt(
        "audit", lambda: view.audit(limit=10_000, **filters), tuple(filters)
    )
    if tried.refused:
        return

    def passes(e: AuditEntry) -> bool:
        f = filters
        prefix = f.get("namespace_prefix")
        after = f.get("after_position")
        return all(
            (
                f.get("actor") is None or e.actor == f["actor"],
                prefix is None
                or e.namespace == prefix
                or e.namespace.startswith(f"{prefix}:"),
                f.get("key") is None or e.key == f["key"],
                f.get("kind") is None or e.kind == f["kind"],
                f.get("since") is None or e.at >= f["since"],
                f.get("until") is None or e.at < f["until"],
                # descending pages run toward older entries
                after is None
                or (e.position < after if f.get("descending") else e.position > after),
            )
        )

    expected = [e for e in everything if passes(e)]
    if filters.get("descending"):
        expected.reverse()
    assert tried.value == expected


@fuzz()
@given(
    placed=st.lists(valid_namespaces, min_size=1, max_size=5),
    prefix=st.none()
    | valid_namespaces.map(lambda ns: ns.rsplit(":", 1)[0])
    | namespaces,
    max_depth=st.none() | numbers,
)
def test_list_namespaces_counts_exactly_within_the_tenant(
    arena: Arena, placed: list[str], prefix: Any, max_depth: Any
) -> None:
    a, b = arena.tenants()
    for tenant in (a, b):
        for i, ns in enumerate(placed):
            arena.store.put(ns, f"k{i}", i, tenant=tenant)
    view = arena.store.tenant(a)
    tried = arena.attempt(
        "list_namespaces",
        lambda: view.list_namespaces(prefix=prefix, max_depth=max_depth, limit=10_000),
        ("prefix", "max_depth"),
    )
    if tried.refused:
        return
    counts: Counter[str] = Counter()
    for ns in placed:
        counts.update(ancestors(ns))
    expected = {
        ns: n
        for ns, n in counts.items()
        if (prefix is None or ns == prefix or ns.startswith(f"{prefix}:"))
        and (max_depth is None or ns.count(":") < max_depth)
    }
    assert {n.namespace: n.count for n in tried.value} == expected
    stats = view.stats()["tenants"]
    assert set(stats) == {a}
    assert stats[a]["live"] == len(placed)


# ---- export and import ---------------------------------------------------------------


def exported(store: MemoryStore, tenant: str) -> list[bytes]:
    lines: list[bytes] = []
    export_events(store, lines.append, tenant=tenant)
    return lines


@fuzz()
@given(
    calls=st.lists(put_calls, min_size=1, max_size=4),
    event=st.fixed_dictionaries(
        {"author": tricky_text.filter(bool), "content": values}
    ),
)
def test_export_then_import_round_trips_hostile_data_exactly(
    arena: Arena, target: Arena, calls: list[dict[str, Any]], event: dict[str, Any]
) -> None:
    a, _ = arena.tenants()
    view = arena.store.tenant(a)
    for call in calls:
        arena.attempt("put", lambda c=call: view.put(**c), PUT_FIELDS)
    sessions = view.sessions
    sessions.create_session(app_name="app", user_id="u", session_id="s")
    arena.attempt(
        "sessions.append_event", lambda: sessions.append_event("s", event), ("event",)
    )
    lines = exported(arena.store, a)
    count = arena.attempt(
        "import", lambda: import_events(target.store, lambda: lines, tenant=a), ()
    )
    assert count.value == len(lines) - 1
    there = target.store.tenant(a)
    here_memories = view.search(limit=10_000, include_deleted=True, order_by="key")
    assert (
        there.search(limit=10_000, include_deleted=True, order_by="key")
        == here_memories
    )
    for memory in here_memories:
        assert there.history(memory.namespace, memory.key) == view.history(
            memory.namespace, memory.key
        )
    assert there.sessions.get_session("s") == sessions.get_session("s")
    assert [e.model_dump(exclude={"position"}) for e in there.audit(limit=10_000)] == [
        e.model_dump(exclude={"position"}) for e in view.audit(limit=10_000)
    ]


damage = st.one_of(
    st.tuples(
        st.just("field"),
        st.sampled_from(["id", "position", "version", "topic", "state"]),
        values | junk,
    ),
    st.tuples(
        st.just("drop"),
        st.sampled_from(["id", "position", "version", "topic", "state"]),
        st.none(),
    ),
    st.tuples(st.just("state"), json_keys, values),
    st.tuples(
        st.just("line"),
        st.none(),
        st.binary(max_size=20)
        | hostile_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
    ),
    st.tuples(st.just("cut"), st.none(), st.integers(0, 400)),
    st.tuples(st.just("deep"), st.none(), st.sampled_from([1000, 100_000])),
)


@fuzz(2)
@given(where=st.integers(0, 3), harm=damage)
@example(where=0, harm=("field", "id", 5))
@example(where=0, harm=("field", "topic", ""))
@example(where=0, harm=("field", "topic", "::"))
def test_import_refuses_damaged_exports(
    arena: Arena, target: Arena, where: int, harm: tuple[str, Any, Any]
) -> None:
    a, _ = arena.tenants()
    view = arena.store.tenant(a)
    view.put("user:i", "k", {"v": "\x00'"}, tags=["t"])
    view.update("user:i", "k", metadata={"m": 1})
    view.sessions.create_session(app_name="app", user_id="u", session_id="s")
    lines = exported(arena.store, a)
    index = where % len(lines)
    kind, name, payload = harm
    if kind == "line":
        lines.insert(index, payload)
    elif kind == "cut":
        lines[index] = lines[index][: payload % max(1, len(lines[index]))]
    elif kind == "deep":
        lines[index] = b"[" * payload + b"]" * payload
    else:
        record = orjson.loads(lines[index])
        if kind == "drop":
            record.pop(name, None)
        elif kind == "field":
            record[name] = payload
        elif isinstance(record.get("state"), dict):
            record["state"][name] = payload
        try:
            lines[index] = orjson.dumps(record, default=repr)
        except orjson.JSONEncodeError:
            return  # not representable as a line (a surrogate, a huge int)
    head = target.store.projections.status()[0].head
    tried = target.attempt(
        "import",
        lambda: import_events(target.store, lambda: lines, tenant=a),
        ("line", "trailer", "tenant", "store"),
    )
    if tried.refused:
        assert target.store.projections.status()[0].head == head
        assert_nothing_written(target.store, a)


TEMPLATE: dict[str, Any] = {
    "timestamp": "2026-01-01T00:00:00+00:00",
    "originator_topic": "mnemolog.domain.memory:Memory",
    "actor": None,
    "task_id": None,
    "source": None,
    "reason": None,
    "prev_hash": "0" * 64,
    "tenant": "",
    "namespace": "user:x",
    "key": "k",
    "value": "v",
    "content_hash": "",
    "memory_type": "semantic",
    "tags": [],
    "metadata": {},
    "importance": 0.5,
    "confidence": 1.0,
    "embedding": None,
    "embedding_model": None,
    "class_version": 3,
}
"""The state of a Created event, as an export holds it."""

forged_fields = st.fixed_dictionaries(
    {},
    optional={
        "namespace": namespaces,
        "key": text_or_junk,
        "value": values,
        "tags": tag_lists,
        "metadata": metadata_maps,
        "importance": numbers,
        "memory_type": memory_types,
        "actor": provenance_text,
    },
)


@fuzz(2)
@given(forged=forged_fields)
@example(forged={"namespace": "bogus:x"})
@example(forged={"key": "a\x00b"})
@example(forged={"metadata": {"a.b": 1, "a": {"b": 2}}})
def test_import_lands_only_memories_that_put_would_accept(
    arena: Arena, target: Arena, forged: dict[str, Any]
) -> None:
    """An export file is input too: a Created event forged with a consistent
    stream id and content hash must be refused unless put would accept the
    same memory, and what lands must read back."""
    a, _ = arena.tenants()
    try:
        state = {**TEMPLATE, **forged, "tenant": a}
        state["content_hash"] = content_hash(state["value"])
        stream = DomainMemory.create_id(a, state["namespace"], state["key"])
        line = orjson.dumps(
            {
                "position": 1,
                "id": stream.hex,
                "version": 1,
                "topic": "mnemolog.domain.memory:Memory.Created",
                "state": state,
            }
        )
    except (TypeError, ValueError, AttributeError, orjson.JSONEncodeError):
        return  # not something an export file can hold
    state = orjson.loads(line)["state"]  # as the file holds it (NaN is null)
    try:
        value = decode_value(state["value"])
        with mnemolog.open("memory://") as scratch:
            scratch.put(
                state["namespace"],
                state["key"],
                value,
                tags=state["tags"],
                metadata=state["metadata"],
                importance=state["importance"],
                memory_type=state["memory_type"],
                actor=state["actor"],
            )
        put_accepts = True
    except (MnemologError, ValueError, TypeError, OverflowError):
        put_accepts = False
    tried = target.attempt(
        "import.forged",
        lambda: import_events(
            target.store, lambda: [line, b'{"export":"end","events":1}'], tenant=a
        ),
        ("line", "trailer", "tenant", "store"),
        allowed=(MnemologError,),
    )
    if tried.refused:
        assert_nothing_written(target.store, a)
        return
    assert put_accepts, f"import landed a memory that put refuses: {forged!r}"
    got = target.store.get(state["namespace"], state["key"], tenant=a)
    assert got is not None
    assert norm(got.value) == norm(value)


def test_importing_a_session_that_exists_in_the_tenant_is_refused(
    arena: Arena, target: Arena
) -> None:
    """Found by fuzzing: audit() sees memories only, so a tenant holding only
    sessions passes the 'tenant is empty' check and the insert fails."""
    a, _ = arena.tenants()
    arena.store.tenant(a).sessions.create_session(
        app_name="app", user_id="u", session_id="s"
    )
    target.store.tenant(a).sessions.create_session(
        app_name="app", user_id="u", session_id="s"
    )
    lines = exported(arena.store, a)
    with pytest.raises(ValidationError):
        import_events(target.store, lambda: lines, tenant=a)


# ---- erasure -----------------------------------------------------------------------


@fuzz()
@given(
    call=put_calls,
    subject=provenance_text,
    scope=st.sampled_from(["subject", "memory", "tenant"]),
    why=st.fixed_dictionaries(
        {}, optional=dict.fromkeys(("reason", "actor"), provenance_text)
    ),
)
def test_erasure_forgets_hostile_data_in_one_tenant_only(
    arena: Arena, call: dict[str, Any], subject: Any, scope: str, why: dict[str, Any]
) -> None:
    a, b = arena.tenants()
    word = arena.marker()
    for tenant in (a, b):
        tried = arena.attempt(
            "put",
            lambda t=tenant: arena.store.put(**call, subject=subject, tenant=t),
            (*PUT_FIELDS, "subject"),
        )
        if tried.refused:
            return
        arena.store.put("user:erase", "marker", word, subject=subject, tenant=tenant)
    erase = {
        "subject": lambda: arena.store.erase(subject, tenant=a, **why),
        "memory": lambda: arena.store.erase_memory(
            call["namespace"], call["key"], tenant=a, **why
        ),
        "tenant": lambda: arena.store.erase(whole_tenant=True, tenant=a, **why),
    }[scope]
    tried = arena.attempt(f"erase/{scope}", erase, ("subject", *why))
    view = arena.store.tenant(a)
    if tried.refused:
        assert fields_of(view.get(call["namespace"], call["key"])) == expected_memory(
            call
        )
    else:
        assert view.get(call["namespace"], call["key"], include_deleted=True) is None
        assert view.history(call["namespace"], call["key"]) == []
        if scope != "memory":
            assert view.search(include_deleted=True, limit=10_000) == []
            assert view.text_search(word) == []
            assert word.encode() not in b"".join(exported(arena.store, a))
        assert [e.kind for e in view.audit(descending=True, limit=1)] == ["erased"]
    twin = arena.store.tenant(b)
    assert fields_of(twin.get(call["namespace"], call["key"])) == expected_memory(call)
    assert [r.item.key for r in twin.text_search(word)] == ["marker"]


# ---- sessions ---------------------------------------------------------------------

state_keys = (
    hostile_text
    | st.sampled_from(["user:", "app:", "temp:", "session:", "user:\x00", "app:\ud800"])
    | st.tuples(
        st.sampled_from(["user:", "app:", "temp:", "session:"]), hostile_text
    ).map("".join)
)
state_maps = st.dictionaries(state_keys, values, max_size=3) | junk
segment_names = mostly(st.text(alphabet=SEGMENT, min_size=1, max_size=8), text_or_junk)

create_calls = st.fixed_dictionaries(
    {"app_name": segment_names, "user_id": segment_names},
    optional={
        "session_id": keys,
        "project_id": segment_names,
        "state": state_maps,
        "metadata": metadata_maps,
        "actor": provenance_text,
    },
)
events = st.one_of(
    st.fixed_dictionaries(
        {"author": keys},
        optional={
            "content": values,
            "actions": metadata_maps,
            "invocation_id": provenance_text,
            "id": keys,
        },
    ),
    st.dictionaries(
        weighted((3, hostile_text), (1, hashable_junk)), values, max_size=2
    ),
    junk,
)


def visible_state(state: dict[str, Any]) -> dict[str, Any]:
    return {k: norm(v) for k, v in state.items() if not k.startswith("temp:")}


@fuzz(2)
@given(call=create_calls)
@example(call={"app_name": "a", "user_id": "u", "state": {"user:\x00": 1}})
def test_create_session_stores_exactly_or_refuses(
    arena: Arena, call: dict[str, Any]
) -> None:
    a, b = arena.tenants()
    fields = (
        "app_name",
        "user_id",
        "session_id",
        "project_id",
        "state",
        "metadata",
        "actor",
    )
    tried = arena.attempt(
        "sessions.create_session",
        lambda: arena.store.tenant(a).sessions.create_session(**call),
        fields,
    )
    if tried.refused:
        assert arena.store.tenant(a).sessions.list_sessions().sessions == ()
        assert_nothing_written(arena.store, a)
        return
    twin = arena.store.tenant(b).sessions.create_session(**call)
    sessions = arena.store.tenant(a).sessions
    got = sessions.get_session(tried.value.id)
    assert got == tried.value
    assert (got.app_name, got.user_id, got.project_id) == (
        call["app_name"],
        call["user_id"],
        call.get("project_id"),
    )
    assert {k: norm(v) for k, v in got.state.items()} == visible_state(
        dict(call.get("state") or {})
    )
    assert norm(got.metadata) == norm(dict(call.get("metadata") or {}))
    sessions.append_event(got.id, {"author": "only-a"})
    assert [s.id for s in sessions.list_sessions().sessions] == [got.id]
    assert [s.event_count for s in sessions.list_sessions().sessions] == [1]
    assert arena.store.tenant(b).sessions.get_session(twin.id).event_count == 0


@fuzz(2)
@given(event=events, delta=st.none() | state_maps, actor=provenance_text)
@example(event={"author": "\ud800"}, delta=None, actor=None)
@example(event={"author": "a", None: 1}, delta=None, actor=None)
@example(event={"author": "a"}, delta={"\ud800": 1}, actor=None)
@example(event={"author": "a", "actions": {"a.b": 1}}, delta=None, actor=None)
@example(event={"author": "a"}, delta={"user:\x00": 1}, actor=None)
def test_append_event_stores_exactly_or_refuses(
    arena: Arena, event: Any, delta: Any, actor: Any
) -> None:
    a, b = arena.tenants()
    for tenant in (a, b):
        arena.store.tenant(tenant).sessions.create_session(
            app_name="app", user_id="u", session_id="s", state={"keep": 1}
        )
    sessions = arena.store.tenant(a).sessions
    tried = arena.attempt(
        "sessions.append_event",
        lambda: sessions.append_event("s", event, delta, actor=actor),
        ("event", "state_delta", "actor"),
    )
    got = sessions.get_session("s")
    if tried.refused:
        assert got.events == ()
        assert got.state == {"keep": 1}
        return
    (stored,) = got.events
    returned = tried.value
    assert (stored.id, stored.author, stored.invocation_id, stored.timestamp) == (
        returned.id,
        returned.author,
        returned.invocation_id,
        returned.timestamp,
    )
    assert norm(stored.content) == norm(returned.content)
    assert stored.author == event["author"]
    assert norm(stored.content) == norm(event.get("content"))
    assert norm(stored.actions) == norm(dict(event.get("actions") or {}))
    assert stored.invocation_id == event.get("invocation_id")
    assert stored.id == event.get("id", stored.id)
    assert {k: norm(v) for k, v in stored.state_delta.items()} == visible_state(
        dict(delta or {})
    )
    assert {k: norm(v) for k, v in got.state.items()} == {
        "keep": norm(1)
    } | visible_state(dict(delta or {}))
    assert arena.store.tenant(b).sessions.get_session("s").events == ()


@fuzz()
@given(
    key=state_keys | junk,
    value=values,
    status=st.sampled_from(["active", "paused", "terminated", "archived", "created"])
    | text_or_junk,
    namespace=st.none() | namespaces,
    authors=st.none() | st.lists(text_or_junk, max_size=2) | junk,
)
@example(key=["unhashable"], value=1, status="active", namespace=None, authors=None)
def test_session_state_lifecycle_and_memory_with_hostile_input(
    arena: Arena, key: Any, value: Any, status: Any, namespace: Any, authors: Any
) -> None:
    a, b = arena.tenants()
    for tenant in (a, b):
        sessions = arena.store.tenant(tenant).sessions
        sessions.create_session(app_name="app", user_id="u", session_id="s")
        sessions.append_event(
            "s",
            {
                "author": "user",
                "content": {"parts": [{"text": "alpha \u202e words"}]},
                "id": "e1",
            },
        )
    sessions = arena.store.tenant(a).sessions
    tried = arena.attempt(
        "sessions.set_state",
        lambda: sessions.set_state("s", key, value),
        ("key", "value", "state_delta"),
    )
    if not tried.refused and not key.startswith("temp:"):
        assert norm(sessions.get_state("s", key)) == norm(value)
    kept = arena.attempt(
        "sessions.add_session_to_memory",
        lambda: sessions.add_session_to_memory(
            "s", namespace=namespace, authors=authors
        ),
        ("namespace", "authors"),
    )
    if not kept.refused:
        assert {m.tenant for m in kept.value} <= {a}
        found_again = sessions.search_memory("app", "u", "alpha")
        assert {r.item.tenant for r in found_again} <= {a}
    moved = arena.attempt(
        "sessions.update_status",
        lambda: sessions.update_status("s", status),
        ("status",),
        allowed=(IllegalTransition,),
    )
    if not moved.refused:
        assert moved.value.status == status
    arena.attempt(
        "sessions.rewind",
        lambda: sessions.rewind("s", "e1"),
        ("to_event_id",),
        allowed=(NotFound, SessionClosed),
    )
    sessions.delete_session("s")
    assert sessions.get_session("s") is None
    assert sessions.list_sessions().sessions == ()
    assert arena.store.tenant(b).sessions.get_session("s") is not None


# ---- the async twin -----------------------------------------------------------------


def outcome(tried: Tried) -> Any:
    """What two runs of the same call must agree on."""
    if tried.refused:
        return type(tried.refusal), getattr(tried.refusal, "field", None)
    return tried.value


@fuzz(0.5)
@given(call=put_calls, event=events, query=text_or_junk)
@example(
    call={"namespace": "user:a", "key": "k", "value": 1}, event={None: 1}, query="a"
)
def test_the_async_twin_behaves_like_the_store(
    arena: Arena, call: dict[str, Any], event: Any, query: Any
) -> None:
    a, b = arena.tenants()
    fields = (*PUT_FIELDS, "query", "event")

    async def run() -> list[Tried]:
        twin = AsyncMemoryStore(arena.store).tenant(a)
        tried = []
        for entry, coroutine in (
            ("async.put", lambda: twin.put(**call)),
            ("async.search", twin.search),
            ("async.text_search", lambda: twin.text_search(query)),
            (
                "async.sessions.create_session",
                lambda: twin.sessions.create_session(
                    app_name="app", user_id="u", session_id="s"
                ),
            ),
            (
                "async.sessions.append_event",
                lambda: twin.sessions.append_event("s", event),
            ),
        ):
            try:
                result = Tried(value=await coroutine())
            except ValidationError as error:
                result = Tried(refusal=error)
            arena.record(entry, result, fields)
            tried.append(result)
        return tried

    done = asyncio.run(run())
    sync = arena.store.tenant(b)
    expected = [
        arena.attempt("put", lambda: sync.put(**call), fields),
        Tried(value=sync.search()),
        arena.attempt("text_search", lambda: sync.text_search(query), fields),
        Tried(
            value=sync.sessions.create_session(
                app_name="app", user_id="u", session_id="s"
            )
        ),
        arena.attempt(
            "sessions.append_event",
            lambda: sync.sessions.append_event("s", event),
            fields,
        ),
    ]
    for mine, theirs in zip(done, expected, strict=True):
        if mine.refused or theirs.refused:
            assert outcome(mine) == outcome(theirs)
    if not done[0].refused:
        assert fields_of(done[0].value) == fields_of(expected[0].value)
        assert [m.id for m in done[1].value] == [done[0].value.id]


# ---- explicit giants ------------------------------------------------------------------

TEN_MB = 10 * 1024 * 1024


def test_ten_megabyte_strings_are_stored_exactly_or_refused(arena: Arena) -> None:
    a, _ = arena.tenants()
    view = arena.store.tenant(a)
    plain = "x" * TEN_MB
    hostile = ("\u202e\x00'%_\U0001f600 NEAR(" * (TEN_MB // 12))[:TEN_MB]
    stored = view.put("user:big", "plain", plain)
    assert view.get("user:big", "plain").value == plain
    refused = arena.attempt(
        "put", lambda: view.put("user:big", "hostile", hostile), ("value",)
    )
    if not refused.refused:
        assert view.get("user:big", "hostile").value == hostile
    assert stored.version == 1
    calls: dict[str, tuple[tuple[str, ...], Callable[[], Any]]] = {
        "put.namespace": (("namespace",), lambda: view.put(plain, "k", 1)),
        "put.key": (("key",), lambda: view.put("user:big", plain, 1)),
        "put.tags": (("tags",), lambda: view.put("user:big", "k", 1, tags=[plain])),
        "put.metadata.key": (
            ("metadata",),
            lambda: view.put("user:big", "k", 1, metadata={plain: 1}),
        ),
        "put.actor": (("actor",), lambda: view.put("user:big", "k", 1, actor=plain)),
        "put.reason": (("reason",), lambda: view.put("user:big", "k", 1, reason=plain)),
        "search.where.path": (("where",), lambda: view.search(where={plain: 1})),
        "search.where.value": (("where",), lambda: view.search(where={"m": plain})),
        "text_search.query": (("query",), lambda: view.text_search(plain)),
        "retrieve.query": (("query",), lambda: view.retrieve(hostile)),
        "similar.query": (("query",), lambda: view.similar(hostile)),
        "audit.actor": (("actor",), lambda: view.audit(actor=plain)),
        "sessions.create_session": (
            ("session_id",),
            lambda: view.sessions.create_session(
                app_name="a", user_id="u", session_id=plain
            ),
        ),
        "sessions.list_sessions.app_name": (
            ("app_name",),
            lambda: view.sessions.list_sessions(app_name=plain),
        ),
    }
    for entry, (fields, call) in calls.items():
        tried = arena.attempt(entry, call, fields)
        if not tried.refused:
            assert_within(tried.value, Known(a))
    big_meta = view.put("user:big", "meta", 1, metadata={"m": plain})
    assert [m.id for m in view.search(where={"m": plain})] == [big_meta.id]


def nested_lists(depth: int) -> list[Any]:
    root: list[Any] = []
    node = root
    for _ in range(depth):
        node.append([])
        node = node[0]
    return root


def nested_dicts(depth: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth):
        node["a"] = {}
        node = node["a"]
    return root


@pytest.mark.parametrize("depth", [1000, 10_000])
def test_deep_nesting_is_refused_naming_the_field(arena: Arena, depth: int) -> None:
    a, _ = arena.tenants()
    view = arena.store.tenant(a)
    view.sessions.create_session(app_name="app", user_id="u", session_id="s")
    deep_list, deep_dict = nested_lists(depth), nested_dicts(depth)
    calls: dict[str, tuple[str, Callable[[], Any]]] = {
        "put.value.list": ("value", lambda: view.put("user:deep", "k", deep_list)),
        "put.value.dict": ("value", lambda: view.put("user:deep", "k", deep_dict)),
        "put.metadata": (
            "metadata",
            lambda: view.put("user:deep", "k", 1, metadata=deep_dict),
        ),
        "put_many.value": (
            "items",
            lambda: view.put_many(
                [{"namespace": "user:deep", "key": "k", "value": deep_list}]
            ),
        ),
        "update.value": ("value", lambda: view.update("user:deep", "k", deep_list)),
        "search.where": ("where", lambda: view.search(where={"a": {"$eq": deep_dict}})),
        "search.where.in": (
            "where",
            lambda: view.search(where={"a": {"$in": [deep_list]}}),
        ),
        "sessions.append_event.content": (
            "event",
            lambda: view.sessions.append_event(
                "s", {"author": "a", "content": deep_list}
            ),
        ),
        "sessions.append_event.actions": (
            "event",
            lambda: view.sessions.append_event(
                "s", {"author": "a", "actions": deep_dict}
            ),
        ),
        "sessions.append_event.state_delta": (
            "state_delta",
            lambda: view.sessions.append_event("s", {"author": "a"}, {"k": deep_dict}),
        ),
        "sessions.create_session.state": (
            "state",
            lambda: view.sessions.create_session(
                app_name="a", user_id="u", state={"k": deep_list}
            ),
        ),
    }
    problems = []
    for entry, (name, call) in calls.items():
        try:
            call()
        except ValidationError as error:
            if not names_one_of(error.field, (name,)):
                problems.append(f"{entry}: refused naming {error.field[:40]!r}")
        except MnemologError as error:
            problems.append(f"{entry}: {type(error).__name__}")
        else:
            problems.append(f"{entry}: accepted {depth} levels")
    assert problems == []
    assert_nothing_written(arena.store, a)


def test_every_arena_verifies_after_the_fuzzing(arena: Arena) -> None:
    """Last in the module: the hash chains and every read model, after all of it."""
    report = arena.store.verify()
    arena.verified = True
    assert report.ok, report.problems
