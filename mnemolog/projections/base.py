"""The one way to declare a projection: a name, its tables, a handler per event.

```python
class Counts(Projection):
    name = "counts"
    tables = (counts_table,)

    @handles(Memory.Created)
    def created(self, cursor, event, position): ...
```

The event types handled are the ones with a handler; ``handle`` dispatches on
the event's class (an event of a subclass finds its base class's handler).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from sqlalchemy import MetaData, Table, bindparam, delete
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import quoted_name

from mnemolog.projections.sql import DbCursor, compile_sql, copy_table

Handler = Callable[[Any, DbCursor, Any, int], None]
F = TypeVar("F", bound=Callable[..., None])

_HANDLES = "__mnemolog_handles__"


def handles(*event_types: type[Any]) -> Callable[[F], F]:
    """Marks a method as the handler of the given event types."""

    def mark(method: F) -> F:
        setattr(method, _HANDLES, event_types)
        return method

    return mark


class Projection:
    """Base of read models folded from the log."""

    name: ClassVar[str]
    """Unique; also the projection's row in the tracking table."""
    tables: ClassVar[tuple[Table, ...]]
    """The tables it writes, created at open and rebuilt together."""
    topics: ClassVar[tuple[type[Any], ...]]
    """The event types it handles (from its handlers)."""
    _handlers: ClassVar[dict[type[Any], str]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handlers: dict[type[Any], str] = {}
        for klass in reversed(cls.__mro__):
            for attribute, value in vars(klass).items():
                for event_type in getattr(value, _HANDLES, ()):
                    handlers[event_type] = attribute
        cls._handlers = handlers
        cls.topics = tuple(handlers)

    def __init__(self, dialect: Dialect, *, suffix: str = "", **options: Any) -> None:
        self.dialect = dialect
        self.options = options
        """What a subclass was configured with; a rebuild's shadow gets it too."""
        self.suffix = suffix
        """Non-empty for a rebuild: the projection then writes shadow tables."""
        if suffix:
            shadow = MetaData()
            self.live_tables = tuple(
                copy_table(t, shadow, name=t.name + suffix) for t in self.tables
            )
            for table in self.live_tables:
                for index in table.indexes:  # index names are global in a schema
                    index.name = quoted_name(f"{index.name}{suffix}", None)
        else:
            self.live_tables = self.tables
        self._by_name = {
            base.name: table
            for base, table in zip(self.tables, self.live_tables, strict=True)
        }

    def table(self, name: str) -> Table:
        """The table this instance writes for the canonical table ``name``."""
        return self._by_name[name]

    def purge(self, cursor: DbCursor, column: str, streams: list[str]) -> None:
        """Deletes the rows of erased streams from each table with ``column``."""
        params = [{"b_id": s} for s in streams]
        for table in self.live_tables:
            if column in table.c and params:
                statement = delete(table).where(table.c[column] == bindparam("b_id"))
                cursor.executemany(compile_sql(statement, self.dialect), params)

    def handle(self, cursor: DbCursor, event: Any, position: int) -> None:
        """Applies one event at its log position."""
        for klass in type(event).__mro__:
            name = self._handlers.get(klass)
            if name is not None:
                getattr(self, name)(cursor, event, position)
                return
