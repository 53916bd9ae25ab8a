"""The ``mnemolog`` command: the library's functions, printing JSON by default."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from pydantic import BaseModel

import mnemolog
from mnemolog.config import DEFAULT_URL
from mnemolog.domain.errors import MnemologError, ValidationError
from mnemolog.models import Memory, MemoryEvent
from mnemolog.store import MemoryStore

TABLE_COLUMNS = ("namespace", "key", "version", "memory_type", "updated_at", "value")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with mnemolog.open(args.db) as store:
            view = store.tenant(args.tenant) if args.tenant else store
            result = args.run(view, args)
    except MnemologError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if isinstance(e, ValidationError) else 1
    if result is None:
        print("error: not found", file=sys.stderr)
        return 1
    if isinstance(result, str):
        print(result)
    else:
        emit(result, args.format, sys.stdout)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subcommand per operation."""
    parser = argparse.ArgumentParser(
        prog="mnemolog", description="An event-sourced memory store for AI agents."
    )
    _common(parser)
    parser.set_defaults(db=DEFAULT_URL, tenant=None, format="json")
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
        change.set_defaults(run=_delete if name == "delete" else _restore)

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
    return store.put(
        args.namespace,
        args.key,
        value,
        tags=args.tags,
        metadata=args.metadata,
        memory_type=args.memory_type,
        importance=args.importance,
        expected_version=args.expected_version,
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


def _delete(store: MemoryStore, args: argparse.Namespace) -> Memory:
    return store.delete(
        args.namespace,
        args.key,
        actor=args.actor,
        task_id=args.task_id,
        source=args.source,
        reason=args.reason,
    )


def _restore(store: MemoryStore, args: argparse.Namespace) -> Memory:
    return store.restore(
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
    """A plain-text table of the main columns of memories or history entries."""
    flat = [
        row.get("memory", {}) | {"kind": row["kind"]} if "kind" in row else row
        for row in rows
    ]
    columns = list(TABLE_COLUMNS) + (["kind"] if any("kind" in r for r in flat) else [])
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
