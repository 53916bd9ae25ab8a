"""The async twin of the store: the same methods as coroutines, one implementation."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

from mnemolog.store import MemoryStore

P = ParamSpec("P")
R = TypeVar("R")


def _twin(
    method: Callable[Concatenate[MemoryStore, P], R],
) -> Callable[Concatenate[AsyncMemoryStore, P], Coroutine[Any, Any, R]]:
    """The coroutine form of a MemoryStore method, run in a worker thread."""

    async def call(twin: AsyncMemoryStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(method, twin.sync, *args, **kwargs)

    functools.update_wrapper(call, method)
    return call


class AsyncMemoryStore:
    """The same store with every method a coroutine; one implementation underneath."""

    def __init__(self, store: MemoryStore) -> None:
        self.sync = store
        """The synchronous store this one runs on."""

    def tenant(self, tenant: str) -> AsyncMemoryStore:
        """A view bound to one tenant."""
        return AsyncMemoryStore(self.sync.tenant(tenant))

    async def __aenter__(self) -> AsyncMemoryStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    put = _twin(MemoryStore.put)
    put_many = _twin(MemoryStore.put_many)
    update = _twin(MemoryStore.update)
    delete = _twin(MemoryStore.delete)
    restore = _twin(MemoryStore.restore)
    get = _twin(MemoryStore.get)
    history = _twin(MemoryStore.history)
    search = _twin(MemoryStore.search)
    close = _twin(MemoryStore.close)
    list_namespaces = _twin(MemoryStore.list_namespaces)
    audit = _twin(MemoryStore.audit)
    verify = _twin(MemoryStore.verify)
