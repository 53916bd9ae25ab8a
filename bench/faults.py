"""Fault injection: writers, projection workers and rebuilds killed with
SIGKILL at random points; after each kill the store must hold every
acknowledged write, pass ``verify()`` and have every read model at the head.

Run by hand: ``.venv/bin/python bench/faults.py --cycles 100 [--seed N]
[--url sqlite:///path.db | postgresql://127.0.0.1:5432/test?schema=NAME]``
(default: a SQLite file in a temporary directory). tests/test_faults.py runs a
few cycles on each backend.

Each cycle draws a scenario and its kill points:

- writes: a writer puts, updates, deletes, restores, puts batches and appends
  to a session, and is killed after a random number of acknowledged calls or
  a random delay, so that the kill lands inside a call; half the writers take
  a snapshot every third version, so that their writes load from snapshots;
- first-open: the same, on a store that does not exist yet, killed within
  moments of starting to open it (creating its tables);
- catch-up: a writer opened with ``inline_projections=False`` only appends,
  while a projector (``store.projections.catch_up()`` in a loop, ``mnemolog
  project`` or ``mnemolog project --follow``) applies its events; each is
  killed at a moment of its own;
- rebuild: ``store.projections.rebuild()`` in a loop, or ``mnemolog rebuild
  [NAME]``, alone or beside a writer, killed at a random moment.

A writer's calls come from a plan drawn from a seed, which the parent draws
too. The writer prints a line for each call after the call returned, so the
parent knows the acknowledged prefix of the plan and expects the store to
hold exactly the state after it, or after one call more (the call in flight
may have committed before its line was printed). Earlier cycles' workloads
must read as they did, ``verify()`` must pass and no projection may lag.
Every ``--cycles-per-store`` cycles, and after a failed cycle, the run moves
to a fresh store (another file, or another schema), so verify stays cheap;
stores that came through are removed at the end, except the one at ``--url``
itself, and those that did not are kept and named.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit
from uuid import uuid4

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mnemolog
from mnemolog import MemoryStore
from mnemolog.config import parse_url

ROOT = Path(__file__).resolve().parents[1]

CYCLE_TIMEOUT = 120.0
"""Seconds a cycle's processes may take before the cycle counts as hung."""
CHILD_ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}

# ---- the workload: a plan drawn from a seed, and the state it must leave ----

Key = tuple[str, str]
"""A memory's (namespace, key)."""


@dataclass(frozen=True)
class Op:
    """One call of a writer's plan."""

    index: int
    kind: str
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Stored:
    """A memory as it must read."""

    value: Any
    deleted: bool
    version: int
    metadata: Mapping[str, Any]


@dataclass(frozen=True)
class State:
    """What a workload's namespaces hold: its memories, and its session as
    (event count, state ``step``, state ``user:last``), None before it starts."""

    memories: Mapping[Key, Stored] = field(default_factory=dict)
    session: tuple[int, Any, Any] | None = None


WEIGHTS = {
    "put": 25,
    "overwrite": 10,
    "update": 20,
    "delete": 10,
    "restore": 5,
    "put_many": 10,
    "session": 15,
}
"""How often a writer draws each kind of call."""
BULK_WEIGHTS = {**WEIGHTS, "put_many": 200}
"""Mostly large batches: a log that projectors take a while to catch up on."""


def value_of(op: Op, key: str) -> dict[str, Any]:
    """The value a call writes to a key: never one the key held before."""
    return {"op": op.index, "key": key}


@dataclass(frozen=True)
class Workload:
    """A writer's plan, drawn from a seed, in namespaces no other writer uses."""

    name: str
    seed: int
    length: int
    bulk: bool = False

    @property
    def namespace(self) -> str:
        """Where its memories live."""
        return f"project:{self.name}"

    @property
    def user_namespace(self) -> str:
        """Where its session's ``user:`` state lives, a memory per key."""
        return f"user:{self.name}:state"

    def plan(self) -> list[Op]:
        """The calls, the same in every process that draws them."""
        rng = random.Random(self.seed)
        fresh = itertools.count()
        state, ops = State(), []
        for index in range(self.length):
            op = self._draw(rng, index, state, fresh)
            ops.append(op)
            state = self.apply(state, op)
        return ops

    def states(self, ops: Sequence[Op]) -> list[State]:
        """The state before the first call, then after each call."""
        states = [State()]
        for op in ops:
            states.append(self.apply(states[-1], op))
        return states

    def _draw(
        self, rng: random.Random, index: int, state: State, fresh: Iterator[int]
    ) -> Op:
        mine = {k: m for (ns, k), m in state.memories.items() if ns == self.namespace}
        live = sorted(k for k, m in mine.items() if not m.deleted)
        gone = sorted(k for k, m in mine.items() if m.deleted)
        possible = {"overwrite": mine, "update": live, "delete": live, "restore": gone}
        weights = BULK_WEIGHTS if self.bulk else WEIGHTS
        kinds = [k for k in weights if possible.get(k, True)]
        kind = rng.choices(kinds, [weights[k] for k in kinds])[0]
        if kind == "put":
            return Op(index, "put", (f"k{next(fresh)}",))
        if kind == "overwrite":  # a live or a deleted key: put restores it
            return Op(index, "put", (rng.choice(sorted(mine)),))
        if kind in ("update", "delete"):
            return Op(index, kind, (rng.choice(live),))
        if kind == "restore":
            return Op(index, kind, (rng.choice(gone),))
        if kind == "session":
            return Op(index, "session_append" if state.session else "session_start")
        size = rng.randint(20, 100) if self.bulk else rng.randint(2, 20)
        keys: list[str] = []
        for _ in range(size):
            taken = sorted(set(mine) - set(keys))
            old = taken and rng.random() < 0.2
            keys.append(rng.choice(taken) if old else f"k{next(fresh)}")
        return Op(index, "put_many", tuple(keys))

    def apply(self, state: State, op: Op) -> State:
        """The state after a call that succeeded."""
        memories = dict(state.memories)
        session = state.session
        for key in op.keys:
            address = (self.namespace, key)
            old = memories.get(address)
            if op.kind in ("put", "put_many"):
                bump = 1 if old is None else old.version + (2 if old.deleted else 1)
                memories[address] = Stored(
                    value_of(op, key), False, bump, {"op": op.index}
                )
            elif old is not None and op.kind == "update":
                memories[address] = replace(
                    old, value=value_of(op, key), version=old.version + 1
                )
            elif old is not None:  # delete or restore
                memories[address] = replace(
                    old, deleted=op.kind == "delete", version=old.version + 1
                )
        if op.kind == "session_start":
            session = (0, -1, None)
        elif op.kind == "session_append" and session is not None:
            last = memories.get((self.user_namespace, "last"))
            version = 1 if last is None else last.version + 1
            memories[(self.user_namespace, "last")] = Stored(
                op.index, False, version, {}
            )
            session = (session[0] + 1, op.index, op.index)
        return State(memories, session)

    def acknowledgement(self, after: State, op: Op) -> Any:
        """What the call returns (as the writer prints it), given the state after."""
        versions = [after.memories[(self.namespace, k)].version for k in op.keys]
        if op.kind == "put_many":
            return versions
        return versions[0] if versions else None

    def execute(self, store: MemoryStore, op: Op) -> Any:
        """Makes the call; returns what :meth:`acknowledgement` predicts."""
        ns, index = self.namespace, op.index
        key = op.keys[0] if op.keys else ""
        if op.kind == "put":
            return store.put(
                ns,
                key,
                value_of(op, key),
                tags=[f"t{index % 3}"],
                metadata={"op": index},
            ).version
        if op.kind == "put_many":
            items = [
                {
                    "namespace": ns,
                    "key": k,
                    "value": value_of(op, k),
                    "tags": [f"t{index % 3}"],
                    "metadata": {"op": index},
                }
                for k in op.keys
            ]
            return [m.version for m in store.put_many(items)]
        if op.kind == "update":
            return store.update(ns, key, value_of(op, key)).version
        if op.kind == "delete":
            return store.delete(ns, key).version
        if op.kind == "restore":
            return store.restore(ns, key).version
        if op.kind == "session_start":
            store.sessions.create_session(
                app_name="faults",
                user_id=self.name,
                session_id=self.name,
                state={"step": -1},
            )
            return None
        store.sessions.append_event(
            self.name,
            {"author": "agent", "content": {"op": index}},
            {"step": index, "user:last": index},
        )
        return None

    def observe(self, store: MemoryStore) -> State:
        """What the store holds in this workload's namespaces, as read."""
        memories: dict[Key, Stored] = {}
        for ns in (self.namespace, self.user_namespace):
            for m in store.search(
                namespace_prefix=ns, include_deleted=True, limit=10_000
            ):
                memories[(m.namespace, m.key)] = Stored(
                    m.value, m.deleted, m.version, m.metadata
                )
        found = store.sessions.get_session(self.name, num_recent_events=0)
        if found is None:
            return State(memories)
        state = found.state
        return State(
            memories, (found.event_count, state.get("step"), state.get("user:last"))
        )


def difference(expected: State, found: State, limit: int = 3) -> str:
    """The first few ways in which two states differ."""
    notes = []
    for address in sorted(set(expected.memories) | set(found.memories)):
        want, got = expected.memories.get(address), found.memories.get(address)
        if want != got:
            notes.append(
                f"{address[0]}/{address[1]}: expected {_describe(want)}, "
                f"found {_describe(got)}"
            )
    if expected.session != found.session:
        notes.append(
            "session (events, step, user:last): "
            f"expected {expected.session}, found {found.session}"
        )
    more = f" (and {len(notes) - limit} more)" if len(notes) > limit else ""
    return "; ".join(notes[:limit]) + more


def _describe(stored: Stored | None) -> str:
    if stored is None:
        return "nothing"
    deleted = " (deleted)" if stored.deleted else ""
    return f"version {stored.version} = {stored.value}{deleted}"


# ---- what the child processes run ---------------------------------------------


def say(line: str) -> None:
    """Tells the parent something, at once."""
    print(line, flush=True)


def child_writer(args: argparse.Namespace) -> None:
    """Runs a plan, printing each call once it returned; then waits to be killed."""
    workload = Workload(args.name, args.seed, args.length, args.bulk)
    ops = workload.plan()
    with mnemolog.open(
        args.url,
        inline_projections=not args.append_only,
        snapshot_interval=args.snapshot_interval,
    ) as store:
        say("ready")
        for op in ops:
            result = workload.execute(store, op)
            say(f"ack {op.index} {json.dumps(result)}")
        say("done")
        signal.pause()


def child_catch_up(args: argparse.Namespace) -> None:
    """Applies what append-only writers record, over and over, until killed."""
    with mnemolog.open(args.url, inline_projections=False) as store:
        say("ready")
        while True:
            applied = store.projections.catch_up()
            if any(applied.values()):
                say(f"applied {json.dumps(applied)}")
            else:
                time.sleep(0.01)


def child_rebuild(args: argparse.Namespace) -> None:
    """Rebuilds one projection or all, drawn at random, until killed."""
    rng = random.Random(args.seed)
    with mnemolog.open(args.url) as store:
        names: list[str | None] = [None, *store.projections.names]
        say("ready")
        while True:
            name = rng.choice(names)
            store.projections.rebuild(name)
            say(f"rebuilt {name or 'all'}")


def child_main(argv: Sequence[str]) -> int:
    """The entry point of a child process: ``faults.py --child ROLE ...``."""
    say("imported")
    parser = argparse.ArgumentParser(prog="faults.py --child")
    roles = parser.add_subparsers(dest="role", required=True)
    writer = roles.add_parser("writer")
    writer.add_argument("url")
    writer.add_argument("name")
    writer.add_argument("seed", type=int)
    writer.add_argument("length", type=int)
    writer.add_argument("--bulk", action="store_true")
    writer.add_argument("--append-only", action="store_true")
    writer.add_argument("--snapshot-interval", type=int, default=100)
    writer.set_defaults(run=child_writer)
    catch_up = roles.add_parser("catch-up")
    catch_up.add_argument("url")
    catch_up.set_defaults(run=child_catch_up)
    rebuild = roles.add_parser("rebuild")
    rebuild.add_argument("url")
    rebuild.add_argument("seed", type=int)
    rebuild.set_defaults(run=child_rebuild)
    args = parser.parse_args(argv)
    args.run(args)
    return 0


# ---- the parent: processes started and killed on cue ---------------------------


def child_argv(role: str, *args: str) -> list[str]:
    """The command of a child process of this script."""
    return [sys.executable, str(Path(__file__).resolve()), "--child", role, *args]


def cli_argv(url: str, *args: str) -> list[str]:
    """The command of a ``mnemolog`` CLI child."""
    return [sys.executable, "-m", "mnemolog", "--db", url, *args]


@dataclass(frozen=True)
class Role:
    """A process of a cycle: its command, when it starts and when it is killed.

    It starts once the writer has acknowledged ``start_after_acks`` calls (or
    has stopped), and is killed once it acknowledged ``kill_after_acks`` calls
    itself, or ``kill_after`` seconds after ``clock``: ``"start"``, or the line
    it prints once it has imported mnemolog (``"imported"``) or opened the
    store (``"ready"``). ``may_finish``: exiting with status 0 before the kill
    is no failure (one-shot commands)."""

    name: str
    argv: tuple[str, ...]
    start_after_acks: int = 0
    kill_after_acks: int | None = None
    kill_after: float | None = None
    clock: str = "ready"
    may_finish: bool = False


def writer_role(
    rng: random.Random,
    url: str,
    workload: Workload,
    *,
    append_only: bool = False,
    kill_after_acks: int | None = None,
    kill_after: float | None = None,
    clock: str = "ready",
) -> Role:
    """A writer child running the workload; half of them snapshot every third
    version, so that their writes load memories from snapshots."""
    flags = ["--bulk"] * workload.bulk + ["--append-only"] * append_only
    interval = rng.choice([100, 3])
    argv = [
        *child_argv("writer", url, workload.name, str(workload.seed)),
        str(workload.length),
        *flags,
        f"--snapshot-interval={interval}",
    ]
    return Role(
        "writer",
        tuple(argv),
        kill_after_acks=kill_after_acks,
        kill_after=kill_after,
        clock=clock,
    )


class Child:
    """A running child process whose output lines are read as they come."""

    def __init__(self, role: Role) -> None:
        self.role = role
        self.marks = {"start": time.monotonic()}
        self.acks: list[tuple[int, Any]] = []
        self.finished_plan = False
        self.killed_running = False
        self.stderr: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115 (close())
        self.process = subprocess.Popen(
            role.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env=CHILD_ENV,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            word, _, rest = line.strip().partition(" ")
            if word in ("imported", "ready"):
                self.marks[word] = time.monotonic()
            elif word == "ack":
                index, _, result = rest.partition(" ")
                self.acks.append((int(index), json.loads(result)))
            elif word == "done":
                self.finished_plan = True

    @property
    def running(self) -> bool:
        """True until the process has exited."""
        return self.process.poll() is None

    def due(self) -> bool:
        """True once the role's kill point is reached."""
        role = self.role
        if role.kill_after_acks is not None and (
            len(self.acks) >= role.kill_after_acks or self.finished_plan
        ):
            return True
        if role.kill_after is None:
            return False
        origin = self.marks.get(role.clock)
        return origin is not None and time.monotonic() - origin >= role.kill_after

    def kill(self) -> None:
        """SIGKILL, if it still runs; then every line it printed is read."""
        if self.running:
            self.process.send_signal(signal.SIGKILL)
            self.killed_running = True
        self.process.wait()
        self._reader.join(timeout=30)

    def exit_problem(self) -> str | None:
        """Why the way it ended is a failure, or None."""
        code = self.process.returncode
        if code == -signal.SIGKILL or (code == 0 and self.role.may_finish):
            return None
        self.stderr.seek(0)
        tail = self.stderr.read()[-1500:].strip()
        return f"{self.role.name} exited by itself with status {code}: {tail}"

    def close(self) -> None:
        """Frees the captured standard error."""
        self.stderr.close()


def run_roles(roles: Sequence[Role]) -> tuple[dict[str, Child], list[str]]:
    """Starts and kills the cycle's processes on their cues; problems seen."""
    children: dict[str, Child] = {}
    problems: list[str] = []
    deadline = time.monotonic() + CYCLE_TIMEOUT
    try:
        while True:
            writer = children.get("writer")
            acks = len(writer.acks) if writer is not None else 0
            stopped = writer is not None and (
                writer.finished_plan or not writer.running
            )
            for role in roles:
                if role.name not in children and (
                    acks >= role.start_after_acks or stopped
                ):
                    children[role.name] = Child(role)
            for child in children.values():
                if child.running and child.due():
                    child.kill()
            if len(children) == len(roles) and not any(
                c.running for c in children.values()
            ):
                break
            if time.monotonic() > deadline:
                problems.append(f"the cycle's processes hung for {CYCLE_TIMEOUT:.0f}s")
                break
            time.sleep(0.001)
    finally:
        for child in children.values():
            child.kill()
    problems += [p for c in children.values() if (p := c.exit_problem()) is not None]
    return children, problems


# ---- checking the store after the kills ----------------------------------------


@dataclass
class Ledger:
    """What a store must hold: each checked workload's state, fixed from then on."""

    url: str
    entries: list[tuple[Workload, State]] = field(default_factory=list)


def check_writer(
    store: MemoryStore, workload: Workload, acks: Sequence[tuple[int, Any]]
) -> tuple[list[str], State, bool]:
    """Checks a killed writer's acknowledged calls; returns problems, the state
    found, and whether the call in flight had committed."""
    ops = workload.plan()
    states = workload.states(ops)
    done = len(acks)
    problems = []
    if [index for index, _ in acks] != list(range(done)):
        problems.append(f"{workload.name}: acknowledgements out of order")
    for index, result in acks:
        expected = workload.acknowledgement(states[index + 1], ops[index])
        if result != expected:
            problems.append(
                f"{workload.name}: call {index} ({ops[index].kind}) returned "
                f"{result}, expected {expected}"
            )
    found = workload.observe(store)
    problems += replay_problems(store, workload)
    if found == states[done]:
        return problems, found, False
    if done < len(ops) and found == states[done + 1]:
        return problems, found, True
    problems.append(
        f"{workload.name}: {done} calls acknowledged, but the store holds neither "
        f"their state nor that of one call more: {difference(states[done], found)}"
    )
    return problems, found, False


def replay_problems(
    store: MemoryStore, workload: Workload, sample: int = 40
) -> list[str]:
    """Some of the workload's memories read from the log (from snapshots,
    where there are) must equal their rows in the read model."""
    rows = store.search(
        namespace_prefix=workload.namespace,
        include_deleted=True,
        order_by="key",
        limit=10_000,
    )
    step = max(1, len(rows) // sample)
    problems = []
    for row in rows[::step]:
        replayed = store.get(
            row.namespace, row.key, version=row.version, include_deleted=True
        )
        if replayed != row:
            problems.append(
                f"{row.namespace}/{row.key} version {row.version} read from the "
                f"log differs from the read model: {replayed} != {row}"
            )
    return problems


def check_read_models(store: MemoryStore) -> list[str]:
    """Catch-up leaves no lag, and verify finds nothing wrong."""
    store.projections.catch_up()
    problems = [
        f"projection {s.name} lags {s.lag} events after catch-up"
        for s in store.projections.status()
        if s.lag
    ]
    report = store.verify()
    return problems + [f"verify: {problem}" for problem in report.problems]


@dataclass(frozen=True)
class Verdict:
    """What checking a store found."""

    problems: tuple[str, ...] = ()
    landed: int = 0
    """Writers whose call in flight had committed."""
    behind: int = 0
    """Events the read models lagged behind the log, as the kills left them."""


def check_store(
    ledger: Ledger, writers: Sequence[tuple[Workload, Sequence[tuple[int, Any]]]]
) -> Verdict:
    """Opens the store and checks it; the writers' states join the ledger."""
    try:
        with mnemolog.open(ledger.url, inline_projections=False) as looking:
            behind = max(s.lag for s in looking.projections.status())
        store = mnemolog.open(ledger.url)  # which catches up
    except Exception as e:
        return Verdict((f"open raised {type(e).__name__}: {e}",))
    problems: list[str] = []
    landed = 0
    try:
        with store:
            for workload, expected in ledger.entries:
                found = workload.observe(store)
                if found != expected:
                    problems.append(
                        f"{workload.name} (checked before) changed: "
                        f"{difference(expected, found)}"
                    )
            for workload, acks in writers:
                found_problems, found, in_flight = check_writer(store, workload, acks)
                problems += found_problems
                landed += in_flight
                ledger.entries.append((workload, found))
            problems += check_read_models(store)
    except Exception as e:
        problems.append(
            f"checking raised {type(e).__name__}: {e}\n{traceback.format_exc()}"
        )
    return Verdict(tuple(problems), landed, behind)


# ---- cycles and scenarios ------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """A cycle's scenario, how it kills, and its processes."""

    scenario: str
    variant: str
    detail: str
    roles: tuple[Role, ...]
    writers: tuple[Workload, ...]


@dataclass(frozen=True)
class Context:
    """What a scenario needs to know of the run."""

    url: str
    backend: str
    name: str
    projections: tuple[str, ...]


WRITE_WINDOW = {"sqlite": 0.25, "postgresql": 1.0}
"""Seconds a writer takes for most of a plan of 150 calls, by backend."""
OPEN_WINDOW = {"sqlite": 0.03, "postgresql": 0.25}
"""Seconds the first open of a store takes (creating its tables), by backend."""


def writes_plan(rng: random.Random, context: Context) -> Plan:
    """A writer killed after some acknowledged calls, or after a delay."""
    workload = Workload(context.name, rng.randrange(2**32), 150)
    if rng.random() < 0.5:
        stop = rng.randint(0, workload.length - 1)
        role = writer_role(rng, context.url, workload, kill_after_acks=stop)
        variant, detail = "after acks", f"after {stop} acks"
    else:
        delay = rng.uniform(0.0, WRITE_WINDOW[context.backend])
        role = writer_role(rng, context.url, workload, kill_after=delay)
        variant, detail = "after a delay", f"{delay:.3f}s after opening"
    return Plan("writes", variant, detail, (role,), (workload,))


def first_open_plan(rng: random.Random, context: Context) -> Plan:
    """A writer on a store that does not exist yet, killed as it creates the
    tables (or soon after, as it writes)."""
    workload = Workload(context.name, rng.randrange(2**32), 150)
    delay = rng.uniform(0.0, OPEN_WINDOW[context.backend])
    role = writer_role(rng, context.url, workload, kill_after=delay, clock="imported")
    detail = f"{delay:.3f}s after import"
    return Plan("first-open", "writer", detail, (role,), (workload,))


def catch_up_plan(rng: random.Random, context: Context) -> Plan:
    """An append-only writer and a projector, each killed at its own moment."""
    workload = Workload(context.name, rng.randrange(2**32), 40, bulk=True)
    stop = rng.randint(1, workload.length - 1)
    start = rng.randint(0, stop)
    writer = writer_role(
        rng, context.url, workload, append_only=True, kill_after_acks=stop
    )
    variant = rng.choice(
        ["catch_up()", "mnemolog project", "mnemolog project --follow"]
    )
    if variant == "catch_up()":
        delay = rng.uniform(0.0, 1.0)
        projector = Role(
            "projector",
            tuple(child_argv("catch-up", context.url)),
            start_after_acks=start,
            kill_after=delay,
        )
    else:
        delay = rng.uniform(0.4, 2.0)  # from its start: it catches up as it opens
        follow = ["--follow", "--poll-interval", "0.05"] if "follow" in variant else []
        projector = Role(
            "projector",
            tuple(cli_argv(context.url, "project", *follow)),
            start_after_acks=start,
            kill_after=delay,
            clock="start",
            may_finish=not follow,
        )
    detail = f"writer after {stop} acks, projector from ack {start} for {delay:.3f}s"
    return Plan("catch-up", variant, detail, (writer, projector), (workload,))


def rebuild_plan(rng: random.Random, context: Context) -> Plan:
    """A rebuild killed at a random moment, alone or beside a writer."""
    roles: list[Role] = []
    writers: tuple[Workload, ...] = ()
    beside = ""
    if rng.random() < 0.5:
        workload = Workload(context.name, rng.randrange(2**32), 150)
        stop = rng.randint(0, workload.length - 1)
        roles.append(writer_role(rng, context.url, workload, kill_after_acks=stop))
        writers, beside = (workload,), f", writer after {stop} acks"
    if rng.random() < 0.5:
        delay = rng.uniform(0.0, 1.5)
        argv = child_argv("rebuild", context.url, str(rng.randrange(2**32)))
        rebuilder = Role("rebuilder", tuple(argv), kill_after=delay)
        variant = "rebuild()"
    else:
        delay = rng.uniform(0.4, 2.0)  # from its start, open included
        name = rng.choice([None, *context.projections])
        argv = cli_argv(context.url, "rebuild", *([name] if name else []))
        rebuilder = Role(
            "rebuilder", tuple(argv), kill_after=delay, clock="start", may_finish=True
        )
        variant = f"mnemolog rebuild {name or ''}".strip()
    variant += " + writer" if writers else ""
    detail = f"rebuilder for {delay:.3f}s{beside}"
    return Plan("rebuild", variant, detail, (*roles, rebuilder), writers)


PLANS = {
    "writes": writes_plan,
    "first-open": first_open_plan,
    "catch-up": catch_up_plan,
    "rebuild": rebuild_plan,
}
SCENARIOS = tuple(PLANS)


@dataclass(frozen=True)
class CycleResult:
    """How one cycle went."""

    index: int
    scenario: str
    variant: str
    detail: str
    problems: tuple[str, ...]
    acks: int
    landed: int
    behind: int
    processes: int
    killed_running: int
    seconds: float

    @property
    def ok(self) -> bool:
        """True when the store came through."""
        return not self.problems

    def line(self) -> str:
        """One line for the progress log."""
        verdict = "ok" if self.ok else "FAILED"
        return (
            f"cycle {self.index:3d} {self.scenario:<10} {self.variant:<40} "
            f"{verdict:<6} acks {self.acks:<4} killed {self.killed_running}/"
            f"{self.processes} behind {self.behind:<5} {self.seconds:5.1f}s  "
            f"{self.detail}"
        )


def run_cycle(index: int, plan: Plan, ledger: Ledger) -> CycleResult:
    """Runs the plan's processes, kills them, and checks the store."""
    started = time.monotonic()
    children, problems = run_roles(plan.roles)
    writer = children.get("writer")
    acks = list(writer.acks) if writer is not None else []
    verdict = check_store(ledger, [(w, acks) for w in plan.writers])
    for child in children.values():
        child.close()
    return CycleResult(
        index,
        plan.scenario,
        plan.variant,
        plan.detail,
        tuple(problems) + verdict.problems,
        len(acks),
        verdict.landed,
        verdict.behind,
        len(children),
        sum(c.killed_running for c in children.values()),
        time.monotonic() - started,
    )


# ---- stores --------------------------------------------------------------------


def store_url(base: str, index: int) -> str:
    """The run's store number ``index``: the base URL first, then siblings
    (``name-1.db``, or schema ``name_1``)."""
    if index == 0:
        return base
    parts = urlsplit(base)
    if parts.scheme == "sqlite":
        path = Path(parts.path[1:])
        sibling = path.with_name(f"{path.stem}-{index}{path.suffix}")
        suffix = f"?{parts.query}" if parts.query else ""
        return f"sqlite:///{sibling}{suffix}"
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    options["schema"] = f"{options.get('schema', 'mnemolog')[:50]}_{index}"
    return urlunsplit(parts._replace(query=urlencode(options)))


def remove_store(url: str) -> None:
    """Deletes a store this run created: its files, or its schema."""
    location = parse_url(url)
    if location.postgres is None:
        for suffix in ("", "-wal", "-shm"):
            Path(location.sqlite_db_name + suffix).unlink(missing_ok=True)
        return
    import psycopg

    pg = location.postgres
    with psycopg.connect(
        host=pg.host,
        port=pg.port,
        dbname=pg.dbname,
        user=pg.user,
        password=pg.password,
        autocommit=True,
    ) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{pg.schema}" CASCADE')


def preloaded(url: str, name: str, seed: int, calls: int) -> Ledger:
    """Opens a store and writes a preload into it, mostly batches, so that
    rebuilds and catch-ups have a log to chew on; its ledger."""
    workload = Workload(name, seed, calls, bulk=True)
    ops = workload.plan()
    with mnemolog.open(url) as store:
        for op in ops:
            workload.execute(store, op)
    return Ledger(url, [(workload, workload.states(ops)[-1])])


# ---- the run ---------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """What a run is told."""

    url: str | None = None
    cycles: int = 100
    seed: int = 1
    cycles_per_store: int = 10
    preload: int = 40
    quiet: bool = False


@dataclass
class Summary:
    """A run's figures."""

    url: str
    seed: int
    results: list[CycleResult] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failures(self) -> list[CycleResult]:
        """The cycles the store did not come through."""
        return [r for r in self.results if not r.ok]

    @property
    def ok(self) -> bool:
        """True when every cycle came through."""
        return not self.failures

    @property
    def survived(self) -> int:
        """How many cycles the store came through."""
        return sum(r.ok for r in self.results)

    def report(self) -> str:
        """The summary as printed."""
        results = self.results
        processes = sum(r.processes for r in results)
        lines = [
            f"fault injection on {self.url}, seed {self.seed}",
            f"cycles run {len(results)}, survived {self.survived}, "
            f"failed {len(self.failures)}, elapsed {self.seconds:.1f}s",
            f"processes killed while running: "
            f"{sum(r.killed_running for r in results)} of {processes} "
            "(the others had finished, or exited)",
            f"calls acknowledged: {sum(r.acks for r in results)}; cycles in which "
            f"the call in flight had committed: {sum(r.landed for r in results)}",
            "cycles whose kills left read models behind the log (caught up on "
            f"open): {sum(r.behind > 0 for r in results)}",
            "",
            f"{'scenario':<48} {'run':>5} {'survived':>9}",
        ]
        for scenario in SCENARIOS:
            mine = [r for r in results if r.scenario == scenario]
            lines.append(f"{scenario:<48} {len(mine):>5} {sum(r.ok for r in mine):>9}")
            for variant, count in sorted(Counter(r.variant for r in mine).items()):
                ok = sum(r.ok for r in mine if r.variant == variant)
                lines.append(f"  {variant:<46} {count:>5} {ok:>9}")
        for failure in self.failures:
            lines += ["", failure.line()]
            lines += [f"  - {problem}" for problem in failure.problems]
        if self.kept:
            lines += ["", "kept for inspection: " + ", ".join(self.kept)]
        return "\n".join(lines)


def scenario_order(rng: random.Random, cycles: int) -> list[str]:
    """Scenarios in random order, each once in every len(SCENARIOS) cycles."""
    order: list[str] = []
    while len(order) < cycles:
        order += rng.sample(SCENARIOS, len(SCENARIOS))
    return order[:cycles]


class Run:
    """The stores of a run: a preloaded one for a few cycles at a time, and a
    new one for each first-open cycle; those that came through are removed."""

    def __init__(self, base: str, options: Options) -> None:
        self.base = base
        self.options = options
        self.rng = random.Random(options.seed)
        self.name = f"f{uuid4().hex[:8]}"  # unique, should the store be reused
        self.backend = parse_url(base).backend
        self.stores = itertools.count(1)
        self.base_used = False
        self.ledger: Ledger | None = None
        self.cycles_on_store = 0
        self.projections: tuple[str, ...] = ()
        self.kept: list[str] = []

    def cycle(self, index: int, scenario: str) -> CycleResult:
        """Draws the scenario's plan, runs it, and checks the store."""
        fresh = scenario == "first-open"
        ledger = Ledger(self._next_url()) if fresh else self._shared_store()
        context = Context(
            ledger.url, self.backend, f"{self.name}c{index}", self.projections
        )
        result = run_cycle(index, PLANS[scenario](self.rng, context), ledger)
        if not result.ok:
            self.kept.append(ledger.url)
            if not fresh:
                self.ledger = None  # a damaged store would fail every later cycle
        elif fresh:
            self._remove(ledger.url)
        return result

    def finish(self) -> None:
        """Removes the shared store, if it came through."""
        if self.ledger is not None:
            self._remove(self.ledger.url)

    def _shared_store(self) -> Ledger:
        if self.ledger is None or self.cycles_on_store >= self.options.cycles_per_store:
            self.finish()
            url = self._next_url() if self.base_used else self.base
            self.base_used = True
            seed = self.rng.randrange(2**32)
            self.ledger = preloaded(url, f"{self.name}s", seed, self.options.preload)
            with mnemolog.open(url) as store:
                self.projections = tuple(store.projections.names)
            self.cycles_on_store = 0
        self.cycles_on_store += 1
        return self.ledger

    def _next_url(self) -> str:
        return store_url(self.base, next(self.stores))

    def _remove(self, url: str) -> None:
        if url != self.base:  # the caller's own store is left as it is
            remove_store(url)


def run(options: Options) -> Summary:
    """Runs the cycles; returns their figures."""
    started = time.monotonic()
    scratch = None
    base = options.url
    if base is None:
        scratch = Path(tempfile.mkdtemp(prefix="mnemolog-faults-"))
        base = f"sqlite:///{scratch / 'faults.db'}"
    if parse_url(base).backend == "memory":
        raise SystemExit("memory:// lives in one process: give a file or a server")
    state = Run(base, options)
    summary = Summary(base, options.seed)
    for index, scenario in enumerate(scenario_order(state.rng, options.cycles), 1):
        result = state.cycle(index, scenario)
        summary.results.append(result)
        if not options.quiet:
            print(result.line(), flush=True)
    state.finish()
    summary.kept = state.kept
    if scratch is not None:
        if summary.kept:
            summary.kept.append(str(scratch))
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    summary.seconds = time.monotonic() - started
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the fault injection from the command line; 1 if any cycle failed."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        return child_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--url", help="sqlite:///path.db or postgresql://...?schema=NAME"
    )
    parser.add_argument(
        "--cycles-per-store", type=int, default=10, help="then a fresh store"
    )
    parser.add_argument(
        "--preload", type=int, default=40, help="calls (mostly batches) before cycles"
    )
    parser.add_argument("--quiet", action="store_true", help="no line per cycle")
    args = parser.parse_args(argv)
    summary = run(
        Options(
            url=args.url,
            cycles=args.cycles,
            seed=args.seed,
            cycles_per_store=args.cycles_per_store,
            preload=args.preload,
            quiet=args.quiet,
        )
    )
    print(summary.report())
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
