"""Seed 002: the Memory Vault V2 on a mnemolog store.

The seed's features, one group each: memory types, tags, importance decay,
deduplication (also across a restart), embeddings and find_similar,
streaming, export and import, crash recovery (a vault process killed with
SIGKILL), statistics and status, the working memory cap, the ghost TTL and
consolidation; then bad input. The behaviours that do not need a file run on
every backend (the vault's ``url`` config key).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import orjson
import pytest

import mnemolog
from mnemolog import ValidationError
from mnemolog.adapters.compat.memory_vault import (
    NAMESPACE,
    MemoryEntry,
    MemoryType,
    UnifiedMemoryVaultV2,
    VaultNotInitialized,
)

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


@asynccontextmanager
async def opened(config: dict[str, Any]) -> AsyncIterator[UnifiedMemoryVaultV2]:
    vault = UnifiedMemoryVaultV2(config)
    await vault.initialize()
    try:
        yield vault
    finally:
        await vault.shutdown()


@pytest.fixture
def config(store_url: str, tmp_path: Path) -> dict[str, Any]:
    """A vault on a fresh store of each backend."""
    return {"url": store_url, "storage_path": str(tmp_path)}


def file_config(path: Path, **extra: Any) -> dict[str, Any]:
    """A vault whose store is the file in ``path``, as the seed's vaults are."""
    return {"storage_path": str(path), **extra}


async def everything(vault: UnifiedMemoryVaultV2) -> list[MemoryEntry]:
    return [memory async for memory in vault.stream_all()]


# ---- storing and reading ------------------------------------------------------------


def test_store_and_retrieve_return_the_seeds_memory_entry(
    config: dict[str, Any],
) -> None:
    async def scenario() -> None:
        async with opened(config) as vault:
            memory_id = await vault.store(
                content="Test memory content",
                memory_type=MemoryType.SEMANTIC,
                metadata={"test": True},
                importance=0.8,
            )
            assert isinstance(memory_id, str)
            memory = await vault.retrieve(memory_id)
            assert memory is not None
            assert memory.id == memory_id
            assert memory.content == "Test memory content"
            assert memory.type is MemoryType.SEMANTIC
            assert memory.importance == 0.8
            assert memory.metadata == {"test": True}
            assert memory.embedding is None
            assert memory.access_count == 1
            assert isinstance(memory.timestamp, float)
            again = await vault.retrieve(memory_id)
            assert again is not None
            assert again.access_count == 2
            assert again.last_accessed is not None
            assert again.to_dict()["type"] == "semantic"
            assert MemoryEntry.from_dict(again.to_dict()) == again
            assert await vault.retrieve("invalid_id") is None

    run(scenario())


@pytest.mark.parametrize("kind", list(MemoryType))
def test_every_memory_type_is_kept(tmp_path: Path, kind: MemoryType) -> None:
    async def scenario() -> None:
        async with opened(file_config(tmp_path)) as vault:
            by_enum = await vault.store({"about": kind.name}, kind)
            by_value = await vault.store([kind.value], kind.value)
            for memory_id in (by_enum, by_value):
                memory = await vault.retrieve(memory_id)
                assert memory is not None
                assert memory.type is kind
            found = await vault.search(memory_type=kind)
            assert {m.id for m in found} == {by_enum, by_value}
            stats = await vault.get_statistics()
            assert stats["type_distribution"][kind.value] == 2
            assert sum(stats["type_distribution"].values()) == 2

    run(scenario())


def test_content_is_any_json_value_or_bytes(tmp_path: Path) -> None:
    contents: list[Any] = [
        "text",
        42,
        3.5,
        None,
        True,
        [1, "two", {"three": 3}],
        {"nested": {"deep": [1, 2]}, "bytes": b"\x00\xff"},
        {"$bytes": "not really bytes"},
        b"raw bytes",
    ]

    async def scenario() -> None:
        async with opened(file_config(tmp_path)) as vault:
            for content in contents:
                memory = await vault.retrieve(
                    await vault.store(content, MemoryType.EPISODIC)
                )
                assert memory is not None
                assert memory.content == content

    run(scenario())


def test_update_and_delete(config: dict[str, Any]) -> None:
    async def scenario() -> None:
        async with opened(config) as vault:
            memory_id = await vault.store(
                "Original content",
                MemoryType.SEMANTIC,
                metadata={"version": 1, "keep": "me"},
                importance=0.5,
            )
            assert await vault.update(
                memory_id,
                content="Updated content",
                metadata={"version": 2, "updated": True},
                importance=0.8,
            )
            memory = await vault.retrieve(memory_id)
            assert memory is not None
            assert memory.content == "Updated content"
            assert memory.metadata == {"version": 2, "updated": True, "keep": "me"}
            assert memory.importance == 0.8

            working = await vault.store("Working", MemoryType.WORKING)
            ghost = await vault.store("Ghost", MemoryType.GHOST)
            for doomed in (working, ghost, memory_id):
                assert await vault.delete(doomed)
                assert await vault.retrieve(doomed) is None
                assert not await vault.delete(doomed)
                assert not await vault.update(doomed, importance=0.1)
            assert await vault.search() == []

    run(scenario())


# ---- tags and search ------------------------------------------------------------------


def test_search_by_type_tags_and_importance_as_the_seed_does(
    config: dict[str, Any],
) -> None:
    async def scenario() -> None:
        async with opened(config) as vault:
            important = await vault.store(
                "Important semantic memory",
                MemoryType.SEMANTIC,
                metadata={"tags": ["important", "test"]},
                importance=0.9,
            )
            await vault.store(
                "Less important memory",
                MemoryType.EPISODIC,
                metadata={"tags": ["test"]},
                importance=0.3,
            )
            await vault.store(
                "Another semantic memory",
                MemoryType.SEMANTIC,
                metadata={"tags": ["other"]},
                importance=0.5,
            )
            assert len(await vault.search(memory_type=MemoryType.SEMANTIC)) == 2
            assert len(await vault.search(tags=["test"])) == 2
            assert len(await vault.search(tags=["test", "other"])) == 3
            assert len(await vault.search(tags=[])) == 3  # no filter, as before
            above = await vault.search(min_importance=0.7)
            assert [m.id for m in above] == [important]
            combined = await vault.search(
                memory_type=MemoryType.SEMANTIC, tags=["test"], min_importance=0.5
            )
            assert [m.id for m in combined] == [important]
            ranked = await vault.search(max_results=2)
            assert [m.importance for m in ranked] == [0.9, 0.5]

    run(scenario())


def test_tags_come_from_the_argument_and_from_metadata(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with opened(file_config(tmp_path)) as vault:
            memory_id = await vault.store(
                {"action": "compile", "command": "gcc -O2"},
                MemoryType.PROCEDURAL,
                metadata={"executable": True, "tags": ["build", "commands"]},
                tags=["toolchain"],
            )
            single = await vault.store(
                "a single tag", MemoryType.SEMANTIC, metadata={"tags": "solo"}
            )
            memory = await vault.retrieve(memory_id)
            assert memory is not None
            assert sorted(memory.tags) == ["build", "commands", "toolchain"]
            assert memory.metadata == {
                "executable": True,
                "tags": ["build", "commands"],
            }
            for tag in ("build", "toolchain"):
                assert [m.id for m in await vault.search(tags=[tag])] == [memory_id]
            assert [m.id for m in await vault.search(tags=["solo"])] == [single]

            # New metadata tags replace the old ones; the argument's stay.
            assert await vault.update(memory_id, metadata={"tags": ["linked"]})
            assert await vault.search(tags=["build"]) == []
            assert [m.id for m in await vault.search(tags=["linked"])] == [memory_id]
            assert [m.id for m in await vault.search(tags=["toolchain"])] == [memory_id]
            assert await vault.update(memory_id, tags=["replaced"])
            assert await vault.search(tags=["toolchain"]) == []
            stats = await vault.get_statistics()
            assert stats["tag_count"] == 3  # linked, replaced, solo

    run(scenario())


def test_search_with_a_query_matches_words(config: dict[str, Any]) -> None:
    async def scenario() -> None:
        async with opened(config) as vault:
            python = await vault.store(
                "Python asyncio provides concurrent execution",
                MemoryType.SEMANTIC,
                metadata={"tags": ["programming"]},
                importance=0.8,
            )
            await vault.store("Rust has ownership", MemoryType.SEMANTIC, importance=0.8)
            found = await vault.search(query="asyncio")
            assert [m.id for m in found] == [python]
            assert await vault.search(query="asyncio", min_importance=0.9) == []
            assert await vault.search(query="asyncio", tags=["other"]) == []

    run(scenario())


# ---- importance decay -------------------------------------------------------------


def test_importance_decays_until_read(tmp_path: Path) -> None:
    half_life = 0.5

    async def scenario() -> None:
        config = file_config(tmp_path, decay_half_lives={"semantic": half_life})
        async with opened(config) as vault:
            memory_id = await vault.store("fading", MemoryType.SEMANTIC, importance=0.8)
            lasting = await vault.store("lasting", MemoryType.SOLITON, importance=0.8)
            found = {m.id for m in await vault.search(min_importance=0.5)}
            assert found == {memory_id, lasting}
            await asyncio.sleep(3 * half_life)  # 0.8 halved three times: 0.1
            assert [m.id for m in await vault.search(min_importance=0.5)] == [lasting]
            memory = await vault.retrieve(memory_id)  # a read refreshes it
            assert memory is not None
            assert memory.importance == 0.8  # as stored
            assert memory.decay_rate == pytest.approx(np.log(2) / half_life)
            found = {m.id for m in await vault.search(min_importance=0.5)}
            assert found == {memory_id, lasting}
            soliton = await vault.retrieve(lasting)
            assert soliton is not None
            assert soliton.decay_rate == 0.0

    run(scenario())


def test_without_decay_importance_stays(tmp_path: Path) -> None:
    async def scenario() -> None:
        config = file_config(
            tmp_path, decay_enabled=False, decay_half_lives={"semantic": 0.2}
        )
        async with opened(config) as vault:
            memory_id = await vault.store("steady", MemoryType.SEMANTIC, importance=0.8)
            await asyncio.sleep(0.6)
            found = await vault.search(min_importance=0.7)
            assert [m.id for m in found] == [memory_id]
            assert found[0].decay_rate == 0.0
            assert (await vault.get_statistics())["decay_enabled"] is False

    run(scenario())


# ---- deduplication ----------------------------------------------------------------


def test_the_same_content_twice_is_one_memory(config: dict[str, Any]) -> None:
    async def scenario() -> None:
        async with opened(config) as vault:
            first = await vault.store(
                "Duplicate test", MemoryType.SEMANTIC, {"key": "value"}
            )
            second = await vault.store(
                "Duplicate test", MemoryType.SEMANTIC, {"key": "value"}
            )
            assert first == second
            # Other arguments with the same content do not make another memory,
            # nor change this one (update does that).
            third = await vault.store(
                "Duplicate test", MemoryType.EPISODIC, {"key": "other"}, importance=0.2
            )
            assert third == first
            memory = await vault.retrieve(first)
            assert memory is not None
            assert (memory.type, memory.metadata, memory.importance) == (
                MemoryType.SEMANTIC,
                {"key": "value"},
                1.0,
            )
            # Key order does not matter: the hash is of sorted-key JSON.
            a = await vault.store({"x": 1, "y": [1, 2]}, MemoryType.SEMANTIC)
            b = await vault.store({"y": [1, 2], "x": 1}, MemoryType.SEMANTIC)
            assert a == b
            assert (await vault.get_statistics())["total_memories"] == 2

    run(scenario())


def test_dedup_holds_across_restarts_and_writes_nothing(tmp_path: Path) -> None:
    async def store_once() -> str:
        async with opened(file_config(tmp_path)) as vault:
            return await vault.store(
                {"fact": "water boils at 100C"}, MemoryType.SEMANTIC, importance=0.7
            )

    first = run(store_once())
    second = run(store_once())
    assert first == second
    with mnemolog.open(f"sqlite:///{tmp_path / 'vault.db'}") as store:
        history = store.history(NAMESPACE, first)
        assert [h.kind for h in history] == ["created"]
        assert history[0].memory.content_hash == first  # the id is the content hash


def test_deleted_content_is_stored_anew_under_its_id(config: dict[str, Any]) -> None:
    async def scenario() -> None:
        async with opened(config) as vault:
            memory_id = await vault.store("again", MemoryType.SEMANTIC, importance=0.3)
            assert await vault.delete(memory_id)
            assert (
                await vault.store("again", MemoryType.PROCEDURAL, importance=0.6)
                == memory_id
            )
            memory = await vault.retrieve(memory_id)
            assert memory is not None
            assert (memory.type, memory.importance) == (MemoryType.PROCEDURAL, 0.6)

    run(scenario())


def test_concurrent_stores_of_the_same_content_meet(config: dict[str, Any]) -> None:
    async def scenario() -> None:
        async with opened(config) as vault:
            ids = await asyncio.gather(
                *(vault.store("same", MemoryType.SEMANTIC) for _ in range(8)),
                *(
                    vault.store(f"write {i}", MemoryType.SEMANTIC, {"writer": i})
                    for i in range(12)
                ),
            )
            assert len(set(ids[:8])) == 1
            assert (await vault.get_statistics())["total_memories"] == 13

    run(scenario())


# ---- embeddings -------------------------------------------------------------------


def test_find_similar_as_the_seed_does(config: dict[str, Any]) -> None:
    rng = np.random.default_rng(7)
    embedding1 = rng.standard_normal(128)
    embedding2 = embedding1 + rng.standard_normal(128) * 0.1
    embedding3 = rng.standard_normal(128)

    async def scenario() -> None:
        async with opened(config) as vault:
            id1 = await vault.store(
                "Memory 1", MemoryType.SEMANTIC, embedding=embedding1
            )
            id2 = await vault.store(
                "Memory 2", MemoryType.SEMANTIC, embedding=embedding2
            )
            id3 = await vault.store(
                "Memory 3", MemoryType.SEMANTIC, embedding=embedding3
            )
            await vault.store("No embedding", MemoryType.SEMANTIC)
            similar = await vault.find_similar(embedding1, threshold=0.5)
            ids = [memory.id for memory, _ in similar]
            assert ids == [id1, id2]
            assert id3 not in ids
            scores = dict((m.id, score) for m, score in similar)
            assert scores[id1] > 0.99
            assert 0.5 <= scores[id2] < scores[id1]
            assert len(await vault.find_similar(embedding1, threshold=-1.0)) == 3
            assert len(await vault.find_similar(embedding1, max_results=1)) == 1
            assert (
                await vault.find_similar(embedding1, memory_type=MemoryType.EPISODIC)
                == []
            )

    run(scenario())


def test_embeddings_come_back_as_given(tmp_path: Path) -> None:
    vector32 = np.arange(1, 9, dtype=np.float32) / 3
    as_list = [0.1, -0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]

    async def scenario() -> None:
        async with opened(file_config(tmp_path, embedding_dim=8)) as vault:
            a = await vault.retrieve(
                await vault.store("float32", MemoryType.SEMANTIC, embedding=vector32)
            )
            b = await vault.retrieve(
                await vault.store("a list", MemoryType.EPISODIC, embedding=as_list)
            )
            assert a is not None
            assert a.embedding is not None
            assert a.embedding.dtype == np.float32
            assert np.array_equal(a.embedding, vector32)
            assert b is not None
            assert b.embedding is not None
            assert b.embedding.tolist() == as_list
            # A new content keeps the vector, and find_similar still finds it.
            assert await vault.update(a.id, content="float32, reworded")
            (hit, score), *_ = await vault.find_similar(vector32 * 5)
            assert hit.id == a.id
            assert score > 0.99
            assert hit.content == "float32, reworded"
            assert hit.embedding is not None
            assert np.array_equal(hit.embedding, vector32)

    run(scenario())


# ---- streaming ----------------------------------------------------------------------


def test_stream_all_pages_through_everything(config: dict[str, Any]) -> None:
    async def scenario() -> None:
        async with opened({**config, "batch_size": 4}) as vault:
            stored = [
                await vault.store(
                    f"Memory {i}",
                    MemoryType.WORKING if i % 3 == 0 else MemoryType.EPISODIC,
                    metadata={"index": i},
                )
                for i in range(11)
            ]
            assert inspect.isasyncgen(vault.stream_all())
            streamed = await everything(vault)
            assert [m.id for m in streamed] == stored  # oldest first
            working = [m async for m in vault.stream_all(MemoryType.WORKING)]
            assert [m.metadata["index"] for m in working] == [0, 3, 6, 9]
            assert [m async for m in vault.stream_all("soliton")] == []

    run(scenario())


# ---- export and import ----------------------------------------------------------------


def test_export_then_import_into_a_fresh_vault_gives_equal_memories(
    config: dict[str, Any], tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    export_path = tmp_path / "backup.jsonl"

    async def scenario() -> None:
        async with opened(config) as vault:
            for i in range(30):
                await vault.store(
                    f"Memory {i}",
                    list(MemoryType)[i % len(MemoryType)],
                    metadata={"index": i, "tags": [f"t{i % 4}"]},
                    importance=i / 30,
                    embedding=rng.standard_normal(128).astype(np.float32)
                    if i % 2
                    else None,
                    tags=["exported"] if i % 5 == 0 else None,
                )
            await vault.store({"png": b"\x89PNG", "$bytes": "x"}, MemoryType.SEMANTIC)
            await vault.store({"$bytes": "only key"}, MemoryType.SEMANTIC)
            updated = await vault.store("before", MemoryType.SEMANTIC)
            await vault.update(updated, content="after", metadata={"changed": True})
            before = await everything(vault)
            assert await vault.export_memories(export_path) == 33
            assert await vault.export_memories(
                tmp_path / "ghosts.jsonl", MemoryType.GHOST
            ) == len([m for m in before if m.type is MemoryType.GHOST])

        fresh = {"storage_path": str(tmp_path / "fresh")}
        async with opened(fresh) as copy:
            assert await copy.import_memories(export_path) == 33
            after = await everything(copy)
            assert sorted(after, key=lambda m: m.id) == sorted(
                before, key=lambda m: m.id
            )
            assert {m.id for m in await copy.search(tags=["exported"])} == {
                m.id for m in before if "exported" in m.tags
            }
            again = await copy.import_memories(str(export_path))  # writes nothing
            assert again == 33
            assert (await copy.get_statistics())["total_memories"] == 33
        with mnemolog.open(f"sqlite:///{tmp_path / 'fresh' / 'vault.db'}") as store:
            assert all(len(store.history(NAMESPACE, m.id)) == 1 for m in after)

    run(scenario())


def test_import_reads_the_original_vaults_lines(tmp_path: Path) -> None:
    lines = [
        {
            "id": "3f2a9c1b7d4e5f60",
            "type": "semantic",
            "content": "Python asyncio provides concurrent execution",
            "metadata": {"tags": ["programming", "python"]},
            "timestamp": 1700000000.5,
            "access_count": 4,
            "last_accessed": 1700000100.0,
            "decay_rate": 0.0,
            "importance": 0.8,
        },
        {
            "id": "0a1b2c3d4e5f6071",
            "type": "procedural",
            "content": {"action": "compile", "command": "gcc -O2"},
            "metadata": {"executable": True},
            "timestamp": 1700000001.0,
            "access_count": 0,
            "last_accessed": None,
            "decay_rate": 0.0,
            "importance": 1.0,
        },
    ]
    path = tmp_path / "v2_export.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n\n")

    async def scenario() -> None:
        async with opened(file_config(tmp_path / "vault")) as vault:
            assert await vault.import_memories(path) == 2
            memory = await vault.retrieve("3f2a9c1b7d4e5f60")
            assert memory is not None
            assert memory.timestamp == 1700000000.5
            assert memory.importance == 0.8
            assert memory.access_count == 1  # this vault's reads, not the file's
            assert [m.id for m in await vault.search(tags=["python"])] == [
                "3f2a9c1b7d4e5f60"
            ]
            procedure = await vault.retrieve("0a1b2c3d4e5f6071")
            assert procedure is not None
            assert procedure.content == {"action": "compile", "command": "gcc -O2"}

    run(scenario())


def test_import_keeps_live_memories_and_skips_ended_lifetimes(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"

    async def scenario() -> None:
        async with opened(file_config(tmp_path / "vault")) as vault:
            kept = await vault.store("kept", MemoryType.SEMANTIC, importance=0.9)
            path.write_bytes(
                b"\n".join(
                    orjson.dumps(line)
                    for line in [
                        {
                            "id": kept,
                            "type": "semantic",
                            "content": "kept",
                            "importance": 0.1,
                        },
                        {"type": "ghost", "content": "gone", "expires_at": 1.0},
                        {"type": "ghost", "content": "ghost without a lifetime"},
                    ]
                )
            )
            assert await vault.import_memories(path) == 2
            memory = await vault.retrieve(kept)
            assert memory is not None
            assert memory.importance == 0.9  # the vault's memory stays as it is
            ghosts = await vault.search(memory_type=MemoryType.GHOST)
            assert [g.content for g in ghosts] == ["ghost without a lifetime"]

    run(scenario())


@pytest.mark.parametrize(
    ("bad_line", "field"),
    [
        (b"not json", "line 2"),
        (b"[1, 2]", "line 2"),
        (b'{"content": "no type"}', "line 2.type"),
        (b'{"type": "semantic"}', "line 2.content"),
        (b'{"type": "dream", "content": 1}', "line 2.type"),
        (b'{"type": "semantic", "content": 1, "colour": "red"}', "line 2"),
        (b'{"type": "semantic", "content": {"$bytes": 5}}', "line 2.content"),
        (b'{"type": "semantic", "content": 1, "importance": 3}', "line 2.importance"),
        (
            b'{"type": "semantic", "content": 1, "embedding": [1, 2]}',
            "line 2.embedding",
        ),
        (
            b'{"type": "semantic", "content": 1, "metadata": {"$vault": 1}}',
            "line 2.metadata.$vault",
        ),
        (
            b'{"type": "semantic", "content": 1, "timestamp": "noon"}',
            "line 2.timestamp",
        ),
        (b'{"type": "semantic", "content": 1, "id": ""}', "line 2"),
    ],
)
def test_import_refuses_a_bad_line_before_writing(
    tmp_path: Path, bad_line: bytes, field: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"type": "semantic", "content": "fine"}\n' + bad_line + b"\n")

    async def scenario() -> None:
        async with opened(file_config(tmp_path / "vault")) as vault:
            with pytest.raises(ValidationError) as refused:
                await vault.import_memories(path)
            assert refused.value.field.startswith(field)
            assert await everything(vault) == []
            with pytest.raises(ValidationError, match="import_path"):
                await vault.import_memories(tmp_path / "missing.jsonl")

    run(scenario())


# ---- crash recovery -----------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    import numpy as np
    from mnemolog.adapters.compat.memory_vault import MemoryType, UnifiedMemoryVaultV2

    async def main():
        vault = UnifiedMemoryVaultV2({"storage_path": sys.argv[1], "max_working_memory": 5})
        await vault.initialize()
        rng = np.random.default_rng(int(sys.argv[2]))
        i = 0
        while True:
            kind = [MemoryType.EPISODIC, MemoryType.WORKING, MemoryType.SOLITON][i % 3]
            memory_id = await vault.store(
                {"note": i, "run": sys.argv[2]}, kind, metadata={"i": i},
                embedding=rng.standard_normal(128),
            )
            print(memory_id, i, kind.value, flush=True)
            i += 1

    asyncio.run(main())
    """
)


def test_a_killed_vault_loses_no_acknowledged_store(tmp_path: Path) -> None:
    acknowledged: dict[str, tuple[int, str]] = {}
    for run_number, stop_after in enumerate((40, 75)):
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path), str(run_number)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
        )
        assert child.stdout is not None
        for seen, line in enumerate(child.stdout, start=1):
            memory_id, index, kind = line.split()
            acknowledged[memory_id] = (int(index), kind)
            if seen >= stop_after:
                break
        child.send_signal(signal.SIGKILL)
        child.wait()

        async def check() -> str:
            async with opened(file_config(tmp_path, max_working_memory=5)) as vault:
                status = await vault.get_status()
                assert status["recovered"] is True
                assert len(status["recovered_sessions"]) == 1
                assert status["recovery_verified"] is True
                assert (await vault.get_statistics())["recovered"] is True
                for memory_id, (index, kind) in acknowledged.items():
                    memory = await vault.retrieve(memory_id)
                    if kind == "working":
                        continue  # the cap evicts all but the newest five
                    assert memory is not None, f"acknowledged store {index} is missing"
                    assert memory.metadata == {"i": index}
                    assert memory.embedding is not None
                return str(status["recovered_sessions"][0])

        cut_short = run(check())
        assert cut_short != ""

    async def after_a_clean_shutdown() -> None:
        async with opened(file_config(tmp_path)) as vault:
            status = await vault.get_status()
            assert status["recovered"] is False
            assert status["recovered_sessions"] == []
            assert status["recovery_verified"] is None

    run(after_a_clean_shutdown())


def test_a_second_vault_on_a_live_store_is_not_a_recovery(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with opened(file_config(tmp_path)) as first:
            memory_id = await first.store("shared", MemoryType.SEMANTIC)
            async with opened(file_config(tmp_path)) as second:
                assert (await second.get_status())["recovered"] is False
                assert await second.retrieve(memory_id) is not None
                assert second.session_id != first.session_id

    run(scenario())


# ---- statistics and status ------------------------------------------------------------


def test_statistics_and_status(config: dict[str, Any]) -> None:
    async def scenario() -> None:
        async with opened({**config, "max_working_memory": 50}) as vault:
            for i in range(6):
                await vault.store(f"Perf test {i}", MemoryType.SEMANTIC)
            await vault.store("context", MemoryType.WORKING, metadata={"tags": ["a"]})
            await vault.store("fleeting", MemoryType.GHOST, tags=["b"])
            await vault.retrieve("missing")
            stats = await vault.get_statistics()
            assert stats["total_memories"] == 8
            assert stats["working_memory_count"] == 1
            assert stats["ghost_memory_count"] == 1
            assert stats["file_storage_count"] == 6
            assert stats["type_distribution"] == {
                "episodic": 0,
                "semantic": 6,
                "procedural": 0,
                "working": 1,
                "ghost": 1,
                "soliton": 0,
            }
            assert stats["tag_count"] == 2
            assert stats["operation_count"] == 9
            assert stats["session_id"] == vault.session_id
            assert stats["uptime_seconds"] >= 0
            assert stats["total_size_mb"] > 0
            assert stats["storage_path"] == config["storage_path"]
            assert stats["storage_type"].startswith("MNEMOLOG EVENT LOG")
            assert stats["recovered"] is False

            status = await vault.get_status()
            assert {
                k: status[k]
                for k in ("entries", "working_memory", "ghost_memory", "file_storage")
            } == {
                "entries": 8,
                "working_memory": 1,
                "ghost_memory": 1,
                "file_storage": 6,
            }
            assert status["session_id"] == vault.session_id
            assert status["path"] == config["storage_path"]
            assert status["url"] == config["url"]
            assert status["last_modified"] != "Never"
            assert status["uptime"] >= 0

    run(scenario())


def test_a_new_vault_has_never_changed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with opened(file_config(tmp_path / "nested" / "vault")) as vault:
            status = await vault.get_status()
            assert status["last_modified"] == "Never"
            assert status["entries"] == 0
            assert (
                status["url"]
                == f"sqlite:///{tmp_path / 'nested' / 'vault' / 'vault.db'}"
            )
        assert (tmp_path / "nested" / "vault" / "vault.db").is_file()

    run(scenario())


# ---- working memory and ghosts ----------------------------------------------------------


def test_working_memory_is_capped(config: dict[str, Any]) -> None:
    async def scenario() -> None:
        async with opened({**config, "max_working_memory": 3}) as vault:
            ids = [
                await vault.store(f"Working memory {i}", MemoryType.WORKING)
                for i in range(5)
            ]
            await vault.store("not working", MemoryType.SEMANTIC)
            assert [await vault.retrieve(i) is not None for i in ids] == [
                False,
                False,
                True,
                True,
                True,
            ]
            stats = await vault.get_statistics()
            assert stats["working_memory_count"] == 3
            assert stats["total_memories"] == 4
            # An evicted memory's content stored again comes back under its id.
            assert await vault.store("Working memory 0", MemoryType.WORKING) == ids[0]
            assert await vault.retrieve(ids[2]) is None

    run(scenario())


def test_ghost_memories_end_after_their_ttl(config: dict[str, Any]) -> None:
    async def scenario() -> None:
        async with opened({**config, "ghost_memory_ttl": 0.4}) as vault:
            ghost = await vault.store(
                "Ghost memory", MemoryType.GHOST, {"ephemeral": True}
            )
            solid = await vault.store("Solid memory", MemoryType.SEMANTIC)
            assert await vault.retrieve(ghost) is not None
            assert (await vault.get_statistics())["ghost_memory_count"] == 1
            await asyncio.sleep(0.6)
            assert await vault.retrieve(ghost) is None
            assert [m.id for m in await vault.search()] == [solid]
            assert (await vault.consolidate())["deleted"] == 1  # its end recorded
            stats = await vault.get_statistics()
            assert (stats["ghost_memory_count"], stats["total_memories"]) == (0, 1)
            # The same content stored again starts a new life.
            assert await vault.store("Ghost memory", MemoryType.GHOST) == ghost
            assert await vault.retrieve(ghost) is not None

    run(scenario())


# ---- consolidation -------------------------------------------------------------------


def test_consolidate_merges_memories_whose_content_became_equal(
    config: dict[str, Any],
) -> None:
    async def scenario() -> None:
        async with opened(config) as vault:
            older = await vault.store(
                "The meeting is on Monday",
                MemoryType.EPISODIC,
                metadata={"source": "email", "tags": ["meeting"]},
                importance=0.9,
            )
            newer = await vault.store(
                "The meeting is Monday",
                MemoryType.EPISODIC,
                metadata={"room": "4B"},
                importance=0.4,
            )
            other = await vault.store("Lunch at noon", MemoryType.EPISODIC)
            assert await vault.update(newer, content="The meeting is on Monday")
            stats = await vault.consolidate()
            assert stats["consolidated"] == 1
            assert stats["groups"] == [
                {"target": newer, "sources": [older], "reasons": ["duplicate"]}
            ]
            assert stats["file_storage_size"] == 3
            assert await vault.retrieve(older) is None
            merged = await vault.retrieve(newer)
            assert merged is not None
            assert merged.metadata == {
                "source": "email",
                "tags": ["meeting"],
                "room": "4B",
            }
            assert merged.importance == 0.9  # the highest of the group
            assert merged.tags == ["meeting"]
            assert await vault.retrieve(other) is not None
            assert (await vault.consolidate())["consolidated"] == 0

    run(scenario())


# ---- bad input -----------------------------------------------------------------------

BAD_CALLS: list[tuple[str, Any, str]] = [
    ("store", lambda v: v.store("x", "dream"), "memory_type"),
    ("store", lambda v: v.store("x", 5), "memory_type"),
    ("store", lambda v: v.store(float("nan"), MemoryType.SEMANTIC), "content"),
    ("store", lambda v: v.store({1: "x"}, MemoryType.SEMANTIC), "content"),
    ("store", lambda v: v.store(object(), MemoryType.SEMANTIC), "content"),
    (
        "store",
        lambda v: v.store("x", MemoryType.SEMANTIC, importance=1.5),
        "importance",
    ),
    ("store", lambda v: v.store("x", MemoryType.SEMANTIC, metadata=[1]), "metadata"),
    ("store", lambda v: v.store("x", MemoryType.SEMANTIC, {"a.b": 1}), "metadata.a.b"),
    (
        "store",
        lambda v: v.store("x", MemoryType.SEMANTIC, {"$vault": 1}),
        "metadata.$vault",
    ),
    (
        "store",
        lambda v: v.store("x", MemoryType.SEMANTIC, {"tags": 3}),
        "metadata.tags",
    ),
    ("store", lambda v: v.store("x", MemoryType.SEMANTIC, tags="solo"), "tags"),
    (
        "store",
        lambda v: v.store("x", MemoryType.SEMANTIC, embedding=[1, 2]),
        "embedding",
    ),
    (
        "store",
        lambda v: v.store("x", MemoryType.SEMANTIC, embedding=np.zeros(128)),
        "embedding",
    ),
    (
        "store",
        lambda v: v.store("x", MemoryType.SEMANTIC, embedding="vector"),
        "embedding",
    ),
    ("retrieve", lambda v: v.retrieve(""), "memory_id"),
    ("retrieve", lambda v: v.retrieve(7), "memory_id"),
    ("update", lambda v: v.update("id", importance=-0.1), "importance"),
    ("update", lambda v: v.update("id", metadata={"$vault": {}}), "metadata.$vault"),
    ("delete", lambda v: v.delete(None), "memory_id"),
    ("search", lambda v: v.search(max_results=0), "max_results"),
    ("search", lambda v: v.search(min_importance=2), "min_importance"),
    ("search", lambda v: v.search(memory_type="dream"), "memory_type"),
    ("search", lambda v: v.search(query=5), "query"),
    ("find_similar", lambda v: v.find_similar(np.ones(3)), "embedding"),
    (
        "find_similar",
        lambda v: v.find_similar(np.ones(128), threshold=1.5),
        "threshold",
    ),
    (
        "find_similar",
        lambda v: v.find_similar(np.ones(128), max_results=0),
        "max_results",
    ),
]


@pytest.mark.parametrize(
    ("call", "field"),
    [(call, field) for _, call, field in BAD_CALLS],
    ids=[f"{name}-{field}-{i}" for i, (name, _, field) in enumerate(BAD_CALLS)],
)
def test_bad_input_is_refused_by_name(tmp_path: Path, call: Any, field: str) -> None:
    async def scenario() -> None:
        async with opened(file_config(tmp_path)) as vault:
            with pytest.raises(ValidationError) as refused:
                await call(vault)
            assert refused.value.field == field
            assert isinstance(refused.value, ValueError)
            assert await everything(vault) == []

    run(scenario())


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"max_working_memroy": 10}, "config"),
        ({"max_working_memory": 0}, "config.max_working_memory"),
        ({"max_working_memory": "100"}, "config.max_working_memory"),
        ({"ghost_memory_ttl": -1}, "config.ghost_memory_ttl"),
        ({"decay_enabled": "yes"}, "config.decay_enabled"),
        ({"batch_size": 0}, "config.batch_size"),
        ({"packfile_threshold": 1.5}, "config.packfile_threshold"),
        ({"embedding_dim": 0}, "config.embedding_dim"),
        ({"decay_half_lives": {"dream": 3}}, "config.decay_half_lives.dream"),
        ({"decay_half_lives": {"semantic": 0}}, "config.decay_half_lives.semantic"),
        ({"storage_path": 3}, "config.storage_path"),
        ({"url": ""}, "config.url"),
        ({"tenant": "no spaces"}, "config.tenant"),
        ({"cleanup_interval": 0}, "config.cleanup_interval"),
    ],
)
def test_bad_config_is_refused_by_name(config: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        UnifiedMemoryVaultV2(config)
    assert refused.value.field == field


def test_a_url_the_store_refuses_is_named(tmp_path: Path) -> None:
    vault = UnifiedMemoryVaultV2({"url": f"sqlite:///{tmp_path / 'no' / 'v.db'}"})
    with pytest.raises(ValidationError) as refused:
        run(vault.initialize())
    assert refused.value.field == "config.url"
    with pytest.raises(VaultNotInitialized):
        run(vault.get_status())


def test_the_config_keys_that_mean_nothing_here_are_accepted(tmp_path: Path) -> None:
    async def scenario() -> None:
        config = file_config(tmp_path, packfile_threshold=10, batch_size=50)
        async with opened(config) as vault:
            assert vault.packfile_threshold == 10
            assert vault.batch_size == 50
            assert vault.max_working_memory == 100  # the original's defaults
            assert vault.ghost_memory_ttl == 3600
            assert vault.decay_enabled is True

    run(scenario())


def test_a_vault_must_be_initialized(tmp_path: Path) -> None:
    async def scenario() -> None:
        vault = UnifiedMemoryVaultV2(file_config(tmp_path))
        with pytest.raises(VaultNotInitialized):
            await vault.store("x", MemoryType.SEMANTIC)
        await vault.initialize()
        await vault.initialize()  # a no-op when open
        memory_id = await vault.store("x", MemoryType.SEMANTIC)
        await vault.save_all()
        await vault.shutdown()
        await vault.shutdown()
        with pytest.raises(VaultNotInitialized):
            await vault.retrieve(memory_id)
        with pytest.raises(VaultNotInitialized):
            await vault.get_statistics()
        with pytest.raises(VaultNotInitialized):
            [m async for m in vault.stream_all()]
        await vault.initialize()  # opens again, with a new session
        assert await vault.retrieve(memory_id) is not None
        await vault.shutdown()

    run(scenario())
