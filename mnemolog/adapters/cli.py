"""The ``mnemolog`` command: the library's functions, printing JSON by default."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from eventsourcing.persistence import MapperDeserialisationError
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

import mnemolog
from mnemolog.access import Policy, Principal
from mnemolog.config import DEFAULT_URL
from mnemolog.domain.errors import AccessDenied, MnemologError, ValidationError
from mnemolog.models import (
    AuditEntry,
    ErasureReport,
    Memory,
    MemoryEvent,
    NamespaceInfo,
)
from mnemolog.projections.projector import RebuildProgress
from mnemolog.store import AUDIT_KINDS, MemoryStore
from mnemolog.transfer import export_events, import_events, replay


@dataclass(frozen=True)
class Outcome:
    """A result printed as usual, with the exit status it calls for."""

    data: Any
    status: int


TABLE_COLUMNS = ("namespace", "key", "version", "memory_type", "updated_at", "value")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        policy_file = args.policy or os.environ.get("MNEMOLOG_POLICY")
        policy = Policy.load(policy_file) if policy_file else None
        principal_id = args.principal or os.environ.get("MNEMOLOG_PRINCIPAL")
        keys = os.environ.get("MNEMOLOG_CIPHER_KEYS", "")
        with mnemolog.open(
            args.db,
            policy=policy,
            cipher_keys=tuple(k for k in keys.split(",") if k),
            compress=os.environ.get("MNEMOLOG_COMPRESS", "") in ("1", "yes", "true"),
        ) as store:
            view = store.tenant(args.tenant) if args.tenant else store
            if principal_id:
                view = view.as_principal(
                    Principal(principal_id, frozenset(args.roles or ()))
                )
            result = args.run(view, args)
    except AccessDenied as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except MnemologError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if isinstance(e, ValidationError) else 1
    except PydanticValidationError as e:
        print(f"error: policy: {e}", file=sys.stderr)
        return 2
    except MapperDeserialisationError as e:  # a key missing, or an altered log
        print(f"error: {e}", file=sys.stderr)
        return 1
    if result is None:
        print("error: not found", file=sys.stderr)
        return 1
    status = 0
    if isinstance(result, Outcome):
        result, status = result.data, result.status
        if result is None:
            return int(status)
    if isinstance(result, str):
        print(result)
    else:
        emit(result, args.format, sys.stdout)
    return status


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subcommand per operation."""
    parser = argparse.ArgumentParser(
        prog="mnemolog", description="An event-sourced memory store for AI agents."
    )
    _common(parser)
    parser.set_defaults(
        db=DEFAULT_URL,
        tenant=None,
        format="json",
        policy=None,
        principal=None,
        roles=None,
    )
    # The same options after the command name: `mnemolog get ... --format table`.
    common = argparse.ArgumentParser(add_help=False)
    _common(common)
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser

    def command(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return add(name, parents=[common], **kwargs)

    put = command("put", help="create or replace a memory")
    _address(put)
    put.add_argument("value", help="a JSON value; text that is not JSON is a string")
    put.add_argument("--raw", action="store_true", help="take VALUE as a plain string")
    put.add_argument("--tag", action="append", dest="tags", help="a tag (repeatable)")
    put.add_argument("--metadata", type=_json_object, help="a JSON object")
    put.add_argument("--type", dest="memory_type", help="memory type")
    put.add_argument("--importance", type=float)
    put.add_argument("--expected-version", type=int)
    put.add_argument(
        "--subject", help="the data subject (a user id) whose key seals it"
    )
    put.add_argument(
        "--ttl", type=float, help="seconds until it expires (hidden, then swept)"
    )
    _provenance(put)
    put.set_defaults(run=_put)

    get = command("get", help="read a memory, now or in the past")
    _address(get)
    get.add_argument("--version", type=int, help="read this version from the log")
    get.add_argument("--as-of", type=_moment, help="ISO time; read the state then")
    get.add_argument("--include-deleted", action="store_true")
    get.set_defaults(run=_get)

    history = command("history", help="every change of a memory")
    _address(history)
    history.set_defaults(run=_history)

    for name, help_text in (("delete", "soft-delete"), ("restore", "undo a delete")):
        change = command(name, help=help_text)
        _address(change)
        _provenance(change)
        change.set_defaults(run=_lifecycle)

    search = command("search", help="filter memories")
    search.add_argument("--prefix", dest="namespace_prefix", help="namespace prefix")
    search.add_argument("--type", dest="memory_type")
    search.add_argument("--tag-any", action="append", dest="tags_any")
    search.add_argument("--tag-all", action="append", dest="tags_all")
    search.add_argument(
        "--where", type=_json_object, help='JSON, e.g. {"n": {"$gt": 1}}'
    )
    search.add_argument("--include-deleted", action="store_true")
    search.add_argument("--order-by", default="-updated_at")
    search.add_argument("--limit", type=int, default=50)
    search.add_argument("--offset", type=int, default=0)
    search.set_defaults(run=_search)

    namespaces = command("namespaces", help="namespaces with live memories, counted")
    namespaces.add_argument("--prefix", help="namespace prefix (whole segments)")
    namespaces.add_argument("--max-depth", type=int)
    namespaces.add_argument("--limit", type=int, default=100)
    namespaces.add_argument("--offset", type=int, default=0)
    namespaces.set_defaults(run=_namespaces)

    audit = command("audit", help="the timeline: who changed what, when")
    audit.add_argument("--actor")
    audit.add_argument("--prefix", dest="namespace_prefix", help="namespace prefix")
    audit.add_argument("--key")
    audit.add_argument("--kind", choices=AUDIT_KINDS)
    audit.add_argument("--since", type=_moment, help="ISO time, inclusive")
    audit.add_argument("--until", type=_moment, help="ISO time, exclusive")
    audit.add_argument("--after-position", type=int, help="page after this entry")
    audit.add_argument("--limit", type=int, default=100)
    audit.add_argument("--newest-first", action="store_true")
    audit.set_defaults(run=_audit)

    erase = command(
        "erase",
        help="destroy the keys of a subject, a memory or the tenant: the content "
        "is gone for good",
    )
    target = erase.add_mutually_exclusive_group(required=True)
    target.add_argument("--subject", help="a data subject (user id) of --tenant")
    target.add_argument(
        "--memory", nargs=2, metavar=("NAMESPACE", "KEY"), help="one memory"
    )
    target.add_argument(
        "--whole-tenant", action="store_true", help="everything of --tenant"
    )
    erase.add_argument("--actor")
    erase.add_argument("--reason", help="why (recorded; no personal data here)")
    erase.set_defaults(run=_erase)

    sweep = command(
        "sweep",
        help="record an Expired event for each memory whose lifetime ended "
        "(of --tenant, or of every tenant)",
    )
    sweep.add_argument("--limit", type=int, help="at most this many (default: all)")
    sweep.add_argument(
        "--follow",
        action="store_true",
        help="run as a worker: sweep, wait --interval seconds, again",
    )
    sweep.add_argument(
        "--interval", type=float, default=60.0, help="seconds between sweeps"
    )
    sweep.add_argument("--actor", default="sweeper")
    sweep.set_defaults(run=_sweep)

    consolidate = command(
        "consolidate",
        help="merge the duplicates and same-family keys of one namespace",
    )
    consolidate.add_argument("namespace")
    consolidate.add_argument(
        "--strategy",
        choices=("latest_wins", "merge_metadata"),
        default="latest_wins",
        help="llm_based needs a merge callable: use the Python API",
    )
    consolidate.add_argument(
        "--dry-run", action="store_true", help="report the groups, merge nothing"
    )
    consolidate.add_argument("--actor")
    consolidate.add_argument("--reason")
    consolidate.set_defaults(run=_consolidate)

    status = command("status", help="each projection's position, the head, the lag")
    status.set_defaults(run=_status)

    project = command(
        "project",
        help="apply new events to the read models; with --follow, keep doing it",
    )
    project.add_argument("names", nargs="*", help="projections (default: all)")
    project.add_argument(
        "--follow", action="store_true", help="run as a worker until stopped"
    )
    project.add_argument(
        "--poll-interval",
        type=float,
        default=1.0,
        help="seconds between looks when no notification comes (default: 1)",
    )
    project.set_defaults(run=_project)

    migrate = command(
        "migrate",
        help="create the store's tables if missing and bring read models up to date",
    )
    migrate.set_defaults(run=_migrate)

    export = command(
        "export", help="every event (of --tenant, if given) as JSON lines, in log order"
    )
    export.set_defaults(run=_export)

    load = command(
        "import", help="import an export into an empty store, or into an empty --tenant"
    )
    load.add_argument("file", help="a JSONL file written by export")
    load.set_defaults(run=_import)

    replay_command = command("replay", help="the state as it was at a time or position")
    moment = replay_command.add_mutually_exclusive_group(required=True)
    moment.add_argument("--as-of", type=_moment, help="ISO time")
    moment.add_argument("--position", type=int, help="log position")
    replay_command.add_argument("--namespace", help="namespace prefix")
    replay_command.add_argument(
        "--into", help="materialise into this (empty) store URL"
    )
    replay_command.set_defaults(run=_replay)

    stats = command("stats", help="counts by tenant, type and root; log size; lag")
    stats.set_defaults(run=_stats)

    check = command("verify", help="check hash chains and read models; 1 if broken")
    check.add_argument("--no-projections", action="store_true", help="chains only")
    check.set_defaults(run=_verify)

    rebuild = command("rebuild", help="rebuild read models from the log")
    rebuild.add_argument("name", nargs="?", help="one projection (default: all)")
    rebuild.set_defaults(run=_rebuild)

    demo = command("demo", help="a tour: write, change, time-travel, search")
    demo.set_defaults(run=_demo)
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    suppress = argparse.SUPPRESS
    parser.add_argument(
        "--db", default=suppress, help=f"store URL (default: {DEFAULT_URL})"
    )
    parser.add_argument(
        "--tenant", default=suppress, help="tenant to work in (default: 'default')"
    )
    parser.add_argument(
        "--format",
        choices=("json", "jsonl", "table"),
        default=suppress,
        help="output (default: json)",
    )
    parser.add_argument(
        "--policy",
        default=suppress,
        help="a JSON policy file (default: $MNEMOLOG_POLICY; none: allow all)",
    )
    parser.add_argument(
        "--principal",
        default=suppress,
        help="who is calling, checked against the policy ($MNEMOLOG_PRINCIPAL)",
    )
    parser.add_argument(
        "--role",
        action="append",
        dest="roles",
        default=suppress,
        help="a role of the principal (repeatable)",
    )


def _address(command: argparse.ArgumentParser) -> None:
    command.add_argument("namespace", help="like user:alice:preferences")
    command.add_argument("key")


def _provenance(command: argparse.ArgumentParser) -> None:
    command.add_argument("--actor")
    command.add_argument("--task-id")
    command.add_argument("--source")
    command.add_argument("--reason")


def _json_object(text: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {e}") from None
    except (RecursionError, ValueError) as e:  # too deep; a number too long
        raise argparse.ArgumentTypeError(f"not accepted: {e}") from None
    if not isinstance(parsed, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return parsed


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _put(store: MemoryStore, args: argparse.Namespace) -> Memory:
    value: Any = args.value
    if not args.raw:
        try:
            value = json.loads(args.value)
        except json.JSONDecodeError:
            value = args.value
        except (RecursionError, ValueError) as e:  # too deep; a number too long
            raise ValidationError("value", f"not accepted as JSON: {e}") from None
    return store.put(
        args.namespace,
        args.key,
        value,
        tags=args.tags,
        metadata=args.metadata,
        memory_type=args.memory_type,
        importance=args.importance,
        expected_version=args.expected_version,
        subject=args.subject,
        **({"ttl": args.ttl} if args.ttl is not None else {}),
        actor=args.actor,
        task_id=args.task_id,
        source=args.source,
        reason=args.reason,
    )


def _get(store: MemoryStore, args: argparse.Namespace) -> Memory | None:
    return store.get(
        args.namespace,
        args.key,
        version=args.version,
        as_of=args.as_of,
        include_deleted=args.include_deleted,
    )


def _history(store: MemoryStore, args: argparse.Namespace) -> list[MemoryEvent]:
    return store.history(args.namespace, args.key)


def _erase(store: MemoryStore, args: argparse.Namespace) -> ErasureReport:
    if args.memory is not None:
        namespace, key = args.memory
        return store.erase_memory(namespace, key, reason=args.reason, actor=args.actor)
    return store.erase(
        args.subject,
        whole_tenant=args.whole_tenant,
        reason=args.reason,
        actor=args.actor,
    )


def _sweep(store: MemoryStore, args: argparse.Namespace) -> dict[str, Any]:
    if not args.follow:
        return {"expired": store.sweep(limit=args.limit, actor=args.actor)}
    if not args.interval > 0:
        raise ValidationError("interval", "must be > 0 seconds")
    total = 0
    try:
        while True:
            swept = store.sweep(limit=args.limit, actor=args.actor)
            total += swept
            if swept:
                print(json.dumps({"expired": swept, "total": total}), flush=True)
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return {"expired": total}


def _consolidate(store: MemoryStore, args: argparse.Namespace) -> Any:
    return store.consolidate(
        args.namespace,
        strategy=args.strategy,
        dry_run=args.dry_run,
        actor=args.actor,
        reason=args.reason,
    )


def _lifecycle(store: MemoryStore, args: argparse.Namespace) -> Memory:
    change = store.delete if args.command == "delete" else store.restore
    return change(
        args.namespace,
        args.key,
        actor=args.actor,
        task_id=args.task_id,
        source=args.source,
        reason=args.reason,
    )


def _search(store: MemoryStore, args: argparse.Namespace) -> list[Memory]:
    return store.search(
        namespace_prefix=args.namespace_prefix,
        memory_type=args.memory_type,
        tags_any=args.tags_any,
        tags_all=args.tags_all,
        where=args.where,
        include_deleted=args.include_deleted,
        order_by=args.order_by,
        limit=args.limit,
        offset=args.offset,
    )


def _namespaces(store: MemoryStore, args: argparse.Namespace) -> list[NamespaceInfo]:
    return store.list_namespaces(
        prefix=args.prefix,
        max_depth=args.max_depth,
        limit=args.limit,
        offset=args.offset,
    )


def _audit(store: MemoryStore, args: argparse.Namespace) -> list[AuditEntry]:
    return store.audit(
        actor=args.actor,
        namespace_prefix=args.namespace_prefix,
        key=args.key,
        kind=args.kind,
        since=args.since,
        until=args.until,
        after_position=args.after_position,
        limit=args.limit,
        descending=args.newest_first,
    )


def _status(store: MemoryStore, args: argparse.Namespace) -> list[dict[str, Any]]:
    return [
        {"name": s.name, "position": s.position, "head": s.head, "lag": s.lag}
        for s in store.projections.status()
    ]


def _project(store: MemoryStore, args: argparse.Namespace) -> Any:
    names = args.names or None
    if not args.follow:
        return store.projections.catch_up(names)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    def report(applied: dict[str, int]) -> None:
        print(json.dumps(applied), flush=True)

    print(json.dumps({"following": names or store.projections.names}), flush=True)

    def complain(error: Exception) -> None:
        print(f"error (retrying): {error}", file=sys.stderr, flush=True)

    store.projections.follow(
        names,
        stop=stop,
        poll_interval=args.poll_interval,
        on_pass=report,
        on_error=complain,
    )
    return Outcome(None, 0)


def _migrate(store: MemoryStore, args: argparse.Namespace) -> dict[str, Any]:
    # Opening the store did the work (tables under a lock, then catch-up).
    return {"backend": store.backend, "projections": _status(store, args)}


def _export(store: MemoryStore, args: argparse.Namespace) -> Outcome:
    out = sys.stdout.buffer
    count = export_events(store, out.write, tenant=args.tenant)
    out.flush()
    print(f"exported {count} events", file=sys.stderr)
    return Outcome(None, 0)


def _import(store: MemoryStore, args: argparse.Namespace) -> dict[str, Any]:
    path = Path(args.file)
    if not path.is_file():
        raise ValidationError("file", f"{path} is not a readable file")

    def lines() -> Iterable[bytes]:
        with path.open("rb") as handle:
            yield from handle

    count = import_events(store, lines, tenant=args.tenant)
    return {"imported": count, "verify": store.verify().ok}


def _replay(store: MemoryStore, args: argparse.Namespace) -> Any:
    if args.into:
        store._allow("read", None, args.namespace)
        with mnemolog.open(args.into) as target:
            if target.projections.status()[0].head:
                raise ValidationError("into", f"{args.into} is not empty")
            count = replay(
                store,
                target,
                tenant=store.tenant_name,
                as_of=args.as_of,
                position=args.position,
                namespace_prefix=args.namespace,
            )
        return {"replayed_events": count, "into": args.into}
    moment = args.as_of if args.as_of is not None else args.position
    with store.as_of(moment, namespace_prefix=args.namespace) as view:
        return view.search(limit=10_000, order_by="namespace")


def _stats(store: MemoryStore, args: argparse.Namespace) -> dict[str, Any]:
    return store.stats()


def _verify(store: MemoryStore, args: argparse.Namespace) -> Outcome:
    report = store.verify(projections=not args.no_projections)
    result = {
        "ok": report.ok,
        "events": report.events,
        "streams": report.streams,
        "projections_checked": list(report.projections_checked),
        "problems": list(report.problems),
    }
    return Outcome(result, 0 if report.ok else 1)


def _rebuild(store: MemoryStore, args: argparse.Namespace) -> list[dict[str, Any]]:
    bar = ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    store.projections.rebuild(args.name, progress=bar)
    if bar is not None:
        bar.finish()
    return _status(store, args)


class ProgressBar:
    """Events done, rate and time left, redrawn on one terminal line."""

    def __init__(self, out: TextIO, width: int = 30) -> None:
        self.out = out
        self.width = width
        self.drawn = False

    def __call__(self, progress: RebuildProgress) -> None:
        share = progress.done / progress.total if progress.total else 1.0
        filled = round(share * self.width)
        eta = f"{progress.eta:.0f}s" if progress.eta is not None else "?"
        self.out.write(
            f"\r{progress.name:<14} [{'#' * filled}{'.' * (self.width - filled)}] "
            f"{progress.done:,}/{progress.total:,} events  "
            f"{progress.rate:,.0f}/s  ETA {eta}   "
        )
        self.out.flush()
        self.drawn = True

    def finish(self) -> None:
        """Ends the bar's line."""
        if self.drawn:
            self.out.write("\n")


def _demo(store: MemoryStore, args: argparse.Namespace) -> str:
    from mnemolog.adapters.demo import run_demo

    return run_demo(store)


def to_jsonable(item: Any) -> Any:
    """Models as JSON-ready dicts (bytes as base64), lists element by element."""
    if isinstance(item, BaseModel):
        return item.model_dump(mode="json")
    if isinstance(item, list):
        return [to_jsonable(i) for i in item]
    return item


def emit(result: Any, output_format: str, out: TextIO) -> None:
    """Prints a result as JSON, JSON lines, or a table."""
    data = to_jsonable(result)
    if output_format == "json":
        out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return
    rows = data if isinstance(data, list) else [data]
    if output_format == "jsonl":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        return
    out.write(render_table(rows) + "\n")


def render_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table: the main columns of memories and history entries, or
    every column of other rows."""
    if not rows:
        return "(none)"
    flat = [
        row.get("memory", {}) | {"kind": row["kind"]} if "memory" in row else row
        for row in rows
    ]
    if "value" in flat[0]:
        columns = list(TABLE_COLUMNS) + (["kind"] if "kind" in flat[0] else [])
    else:
        columns = list(flat[0])
    cells = [[_cell(r.get(c)) for c in columns] for r in flat]
    widths = [
        max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)
    ]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells
    ]
    return "\n".join(lines)


def _cell(value: Any, width: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
