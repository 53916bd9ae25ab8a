"""Fuzzing of the ``mnemolog`` command with hostile arguments (hypothesis).

Every run exits 0, 1 (not found) or 2 (bad input, named on standard error),
and never with a traceback; what ``put`` stores, ``get`` prints back exactly.
Runs go through ``main`` in this process, where argv may hold NUL and lone
surrogates (which no operating system passes on), and a few run the real
command in a subprocess, with argv bytes that are not UTF-8.

MNEMOLOG_FUZZ_EXAMPLES and MNEMOLOG_FUZZ_PINNED work as in tests/test_fuzz.py.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mnemolog.adapters.cli import main
from tests.conftest import backend_url
from tests.test_fuzz import (
    documents,
    fair_keys,
    fair_scalars,
    fuzz,
    hostile_text,
    json_keys,
    json_scalars,
    mostly,
    report_tally,
    tricky_text,
    valid_namespaces,
)
from tests.test_properties import norm


@dataclass(frozen=True)
class Ran:
    """One run of the command: exit status and what it printed."""

    code: int
    out: str
    err: str


@dataclass
class Place:
    """A store the command runs on, shared by a module's examples, each in a
    tenant of its own."""

    url: str
    tally: Counter[tuple[str, str]] = field(default_factory=Counter)
    counter: Iterator[int] = field(default_factory=itertools.count)

    def __repr__(self) -> str:
        return f"Place({self.url.split('?')[0]!r})"

    def tenant(self) -> str:
        return f"c{next(self.counter)}"

    def run(self, *argv: str) -> Ran:
        """Runs ``mnemolog --db URL argv`` in this process. An exception that
        escapes main is what a user would see as a traceback: it fails."""
        printed = io.BytesIO()
        out = io.TextIOWrapper(printed, encoding="utf-8")  # with .buffer, for export
        err = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(["--db", self.url, *argv])
            except SystemExit as exit_:  # argparse refusing an argument
                code = exit_.code if isinstance(exit_.code, int) else 2
        out.flush()
        ran = Ran(code, printed.getvalue().decode("utf-8"), err.getvalue())
        self.tally[argv[0], f"exit {ran.code}"] += 1
        assert ran.code in (0, 1, 2), ran
        assert "Traceback" not in ran.err, ran.err
        if ran.code == 2:
            assert ran.err.startswith(("error: ", "usage: ")), ran.err
        return ran


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def place(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Place]:
    backend = str(request.param)
    opened = Place(backend_url(backend, tmp_path_factory.mktemp(f"cli-{backend}")))
    yield opened
    report_tally(request.config, f"mnemolog runs per command ({backend})", opened.tally)
    assert opened.run("verify").code == 0


# ---- arguments ----------------------------------------------------------------

cli_text = hostile_text
"""Any text (argv holds strings only)."""

cli_namespaces = mostly(valid_namespaces, cli_text)
cli_keys = mostly(tricky_text.filter(bool), cli_text)


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


value_texts = st.one_of(
    cli_text,
    documents(fair_scalars, fair_keys, st.integers(50, 63)).map(json_text),
    documents(json_scalars, json_keys, st.integers(60, 70)).map(json.dumps),
    st.sampled_from(
        [
            "NaN",
            "-Infinity",
            "1e400",
            "-0.0",
            "9" * 20,
            "1" * 5000,
            "[" * 1000 + "]" * 1000,
            "[" * 100_000,
            '{"$bytes": "AA=="}',
            '"\\ud800"',
            "null",
            " ",
        ]
    ),
)
"""A value as typed on the command line: JSON of every kind, or plain text."""

json_object_texts = st.one_of(
    st.dictionaries(fair_keys, fair_scalars, max_size=3).map(json_text),
    st.dictionaries(json_keys, json_scalars, max_size=3).map(json.dumps),
    st.sampled_from(['{"a": ' * 10_000, "[]", "1", '{"n": ' + "1" * 5000 + "}", "{"]),
    cli_text,
)
number_texts = st.one_of(
    st.integers().map(str),
    st.floats().map(repr),
    st.sampled_from(
        ["1e999", "nan", "-0", "9" * 30, "9" * 5000, "0x10", "1_000", "\u0663", ""]
    ),
    cli_text,
)
moment_texts = st.one_of(
    st.datetimes().map(lambda d: d.isoformat()),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59.999999-14:00",
            "2020-13-01",
            "2020-01-01T00:00:00+24:00",
            "now",
            "",
        ]
    ),
    cli_text,
)


def option(name: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    """``--name value`` or ``--name=value`` (a value starting with '-' needs
    the second form, or argparse takes it for an option)."""
    return st.tuples(st.booleans(), values).map(
        lambda pair: [f"{name}={pair[1]}"] if pair[0] else [name, pair[1]]
    )


def options(**choices: st.SearchStrategy[list[str]]) -> st.SearchStrategy[list[str]]:
    """Any subset of the options, flattened into argv."""
    return st.fixed_dictionaries({}, optional=choices).map(
        lambda picked: [part for parts in picked.values() for part in parts]
    )


put_options = options(
    tag=st.lists(option("--tag", cli_text), max_size=3).map(
        lambda tags: [part for tag in tags for part in tag]
    ),
    metadata=option("--metadata", json_object_texts),
    type=option("--type", st.sampled_from(["semantic", "episodic"]) | cli_text),
    importance=option("--importance", number_texts),
    expected=option("--expected-version", number_texts),
    actor=option("--actor", cli_text),
    reason=option("--reason", cli_text),
    task=option("--task-id", cli_text),
    source=option("--source", cli_text),
    raw=st.just(["--raw"]),
    format=option("--format", st.sampled_from(["json", "jsonl", "table"])),
)


def parsed_value(text: str, raw: bool) -> Any:
    """The value ``put`` stores for the text, as the command reads it."""
    if raw:
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


# ---- put, then every way to read it back -------------------------------------------


@fuzz(1.5)
@given(namespace=cli_namespaces, key=cli_keys, value=value_texts, extra=put_options)
@example(namespace="user:a", key="k", value="[" * 100_000, extra=[])
@example(namespace="user:a", key="k", value="1" * 5000, extra=[])
@example(
    namespace="user:a", key="k", value="1", extra=["--metadata", '{"a": ' * 10_000]
)
def test_put_then_get_prints_exactly_what_was_stored(
    place: Place, namespace: str, key: str, value: str, extra: list[str]
) -> None:
    tenant = place.tenant()
    where = ["--tenant", tenant]
    put = place.run("put", *where, *extra, "--", namespace, key, value)
    got = place.run("get", *where, "--", namespace, key)
    if put.code != 0:
        assert put.code == 2
        assert got.code in (1, 2)  # nothing stored, or the address is bad
        assert place.run("audit", *where).out.strip() == "[]"
        return
    assert got.code == 0, got
    memory = json.loads(got.out)
    assert (memory["tenant"], memory["namespace"], memory["key"]) == (
        tenant,
        namespace,
        key,
    )
    assert norm(memory["value"]) == norm(parsed_value(value, "--raw" in extra))
    history = json.loads(place.run("history", *where, "--", namespace, key).out)
    assert [entry["memory"]["value"] for entry in history] == [memory["value"]]
    found = place.run(
        "search",
        *where,
        "--prefix",
        namespace.split(":", maxsplit=1)[0],
        "--format",
        "jsonl",
    )
    assert [json.loads(line)["key"] for line in found.out.split("\n") if line] == [key]
    for output in ("table", "jsonl"):
        assert (
            place.run("get", *where, "--format", output, "--", namespace, key).code == 0
        )
    deleted = place.run(
        "delete", *where, f"--reason={value[:100]}", "--", namespace, key
    )
    assert deleted.code in (0, 2)


# ---- every other command -------------------------------------------------------------

commands = st.one_of(
    st.tuples(
        st.sampled_from(["get", "history", "delete", "restore"]),
        cli_namespaces,
        cli_keys,
    ).map(list),
    st.tuples(
        st.just(["get"]),
        cli_namespaces,
        cli_keys,
        options(
            version=option("--version", number_texts),
            as_of=option("--as-of", moment_texts),
            deleted=st.just(["--include-deleted"]),
        ),
    ).map(lambda t: [*t[0], t[1], t[2], *t[3]]),
    options(
        prefix=option("--prefix", cli_namespaces),
        type=option("--type", cli_text),
        any=option("--tag-any", cli_text),
        all=option("--tag-all", cli_text),
        where=option("--where", json_object_texts),
        order=option("--order-by", st.sampled_from(["key", "-namespace"]) | cli_text),
        limit=option("--limit", number_texts),
        offset=option("--offset", number_texts),
        deleted=st.just(["--include-deleted"]),
    ).map(lambda args: ["search", *args]),
    options(
        prefix=option("--prefix", cli_namespaces),
        depth=option("--max-depth", number_texts),
        limit=option("--limit", number_texts),
        offset=option("--offset", number_texts),
    ).map(lambda args: ["namespaces", *args]),
    options(
        actor=option("--actor", cli_text),
        prefix=option("--prefix", cli_namespaces),
        key=option("--key", cli_keys),
        kind=option("--kind", st.sampled_from(["created", "deleted"]) | cli_text),
        since=option("--since", moment_texts),
        until=option("--until", moment_texts),
        after=option("--after-position", number_texts),
        limit=option("--limit", number_texts),
        newest=st.just(["--newest-first"]),
    ).map(lambda args: ["audit", *args]),
    st.tuples(
        st.one_of(option("--as-of", moment_texts), option("--position", number_texts)),
        options(namespace=option("--namespace", cli_namespaces)),
    ).map(lambda t: ["replay", *t[0], *t[1]]),
    st.sampled_from(
        [["stats"], ["status"], ["verify", "--no-projections"], ["export"]]
    ),
)


@fuzz(2)
@given(argv=commands)
@example(argv=["get", "user:a", "k", "--version", "99999999999999999999"])
@example(argv=["search", "--where", '{"a": ' * 10_000])
@example(argv=["get", "user:a", "k", "--as-of", "0001-01-01T00:00:00+14:00"])
def test_every_command_exits_0_1_or_2_whatever_the_arguments(
    place: Place, argv: list[str]
) -> None:
    tenant = place.tenant()
    where = ["--tenant", tenant]
    assert (
        place.run(
            "put",
            *where,
            "user:fuzz",
            "k",
            '{"v": "\\u202e\' OR 1=1 --"}',
            "--tag",
            "t%",
        ).code
        == 0
    )
    ran = place.run(*argv, *where)
    if (
        ran.code != 0
        or argv[0] in ("export", "stats", "status", "verify")
        or not ran.out.strip()
    ):
        return
    printed = json.loads(ran.out)
    for row in printed if isinstance(printed, list) else [printed]:
        memory = row.get("memory", row)
        assert memory.get("tenant", tenant) == tenant, row


# ---- import ----------------------------------------------------------------------


@fuzz()
@given(
    lines=st.lists(
        st.one_of(
            st.binary(max_size=30),
            cli_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
            st.sampled_from(
                [
                    b'{"export":"end","events":0}',
                    b'{"export":"end","events":1}',
                    b"[" * 100_000,
                    b"\xff\xfe",
                ]
            ),
            st.fixed_dictionaries(
                {
                    "position": st.integers(0, 3),
                    "id": st.sampled_from(["00" * 16, "zz", ""]) | st.integers(),
                    "version": st.integers(0, 2),
                    "topic": st.sampled_from(
                        ["mnemolog.domain.memory:Memory.Created", "", "::", "os:system"]
                    ),
                    "state": st.just({}),
                }
            ).map(lambda r: json.dumps(r).encode()),
        ),
        max_size=4,
    )
)
@example(
    lines=[
        json.dumps(
            {"position": 1, "id": 5, "version": 1, "topic": "x:y", "state": {}}
        ).encode(),
        b'{"export":"end","events":1}',
    ]
)
def test_import_of_a_hostile_file_exits_0_or_2(
    place: Place, tmp_path_factory: pytest.TempPathFactory, lines: list[bytes]
) -> None:
    tenant = place.tenant()
    path = tmp_path_factory.mktemp("import") / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines))
    ran = place.run("import", str(path), "--tenant", tenant)
    assert ran.code in (0, 2)


# ---- the real command ---------------------------------------------------------------

DEEP = b"[" * 100_000


@pytest.mark.parametrize(
    "argv",
    [
        [b"put", b"user:a", b"k\xff", b"1"],
        [b"search", b"--where", b'{"a\xff": 1}'],
        [b"put", b"user:a", b"k", DEEP],
    ],
    ids=["key", "where", "deep-json"],
)
def test_the_real_command_never_prints_a_traceback(
    tmp_path: Path, argv: list[bytes]
) -> None:
    """argv bytes that are not UTF-8 reach Python as lone surrogates."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    db = f"sqlite:///{tmp_path / 'store.db'}".encode()
    ran = subprocess.run(
        [sys.executable.encode(), b"-m", b"mnemolog", *argv, b"--db", db],
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert b"Traceback" not in ran.stderr, ran.stderr.decode("utf-8", "replace")[-2000:]
    assert ran.returncode in (0, 1, 2)
