"""The async twins of the store and its sessions: the same methods as
coroutines, run in worker threads on one implementation."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from mnemolog.access import Principal
from mnemolog.documents import DocumentService
from mnemolog.sessions import SessionService
from mnemolog.store import MemoryStore

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")


class _Twin(Generic[S]):
    """An async object that runs the methods of ``sync`` in worker threads."""

    def __init__(self, sync: S) -> None:
        self.sync = sync
        """The synchronous object this one runs on."""


def _twin(
    method: Callable[Concatenate[S, P], R],
) -> Callable[Concatenate[_Twin[S], P], Coroutine[Any, Any, R]]:
    """The coroutine form of a method, run in a worker thread."""

    async def call(twin: _Twin[S], /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(method, twin.sync, *args, **kwargs)

    functools.update_wrapper(call, method)
    return call


class AsyncSessionService(_Twin[SessionService]):
    """The sessions service with every method a coroutine."""

    create_session = _twin(SessionService.create_session)
    get_session = _twin(SessionService.get_session)
    append_event = _twin(SessionService.append_event)
    update_status = _twin(SessionService.update_status)
    terminate_session = _twin(SessionService.terminate_session)
    delete_session = _twin(SessionService.delete_session)
    add_session_to_memory = _twin(SessionService.add_session_to_memory)
    search_memory = _twin(SessionService.search_memory)
    get_state = _twin(SessionService.get_state)
    set_state = _twin(SessionService.set_state)
    rewind = _twin(SessionService.rewind)
    list_sessions = _twin(SessionService.list_sessions)
    list_active_sessions = _twin(SessionService.list_active_sessions)


class AsyncDocumentService(_Twin[DocumentService]):
    """The document index with every method a coroutine."""

    register = _twin(DocumentService.register)
    mark_synced = _twin(DocumentService.mark_synced)
    mark_failed = _twin(DocumentService.mark_failed)
    mark_stale = _twin(DocumentService.mark_stale)
    remove = _twin(DocumentService.remove)
    get = _twin(DocumentService.get)
    get_by_hash = _twin(DocumentService.get_by_hash)
    list = _twin(DocumentService.list)
    history = _twin(DocumentService.history)


class AsyncMemoryStore(_Twin[MemoryStore]):
    """The same store with every method a coroutine; one implementation underneath."""

    def tenant(self, tenant: str) -> AsyncMemoryStore:
        """A view bound to one tenant."""
        return AsyncMemoryStore(self.sync.tenant(tenant))

    def as_principal(self, principal: Principal) -> AsyncMemoryStore:
        """A view whose calls are checked as made by ``principal``."""
        return AsyncMemoryStore(self.sync.as_principal(principal))

    @property
    def sessions(self) -> AsyncSessionService:
        """The async twin of ``store.sessions``."""
        return AsyncSessionService(self.sync.sessions)

    @property
    def documents(self) -> AsyncDocumentService:
        """The async twin of ``store.documents``."""
        return AsyncDocumentService(self.sync.documents)

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
    similar = _twin(MemoryStore.similar)
    text_search = _twin(MemoryStore.text_search)
    retrieve = _twin(MemoryStore.retrieve)
    close = _twin(MemoryStore.close)
    list_namespaces = _twin(MemoryStore.list_namespaces)
    audit = _twin(MemoryStore.audit)
    verify = _twin(MemoryStore.verify)
    erase = _twin(MemoryStore.erase)
    erase_memory = _twin(MemoryStore.erase_memory)
    sweep = _twin(MemoryStore.sweep)
    consolidate = _twin(MemoryStore.consolidate)
    effective_importance = _twin(MemoryStore.effective_importance)
    flush_access = _twin(MemoryStore.flush_access)
