"""The bf16 path on a CPU that multiplies bf16 in hardware (AMX): what it costs beyond the
model's matrix products, and how that cost is taken away.

Profiled on the 2-core Xeon fairdraft is built on (MiniLM-L6, batches of 32 chunks of ~90
word pieces, one thread), bf16 autocast spent more time around its matrix products than in
them: a bias copy and a separate GELU pass over every 1536-wide activation, casts between
fp32 and bf16 around each operator, an attention kernel that runs 40 % slower on sequences
whose length is not a multiple of 16, and 16,000 page faults per batch because glibc hands
every freed activation back to the kernel. So this path:

- casts the whole transformer to bf16 once (pooling and normalisation stay fp32),
- runs each linear layer as one oneDNN kernel with its bias, its GELU and, in BERT's output
  blocks, its residual add fused in (`torch.ops.mkldnn._linear_pointwise`, what inductor's
  freezing pass emits, without its 25 s compile in every process),
- tokenises with the model's own fast tokenizer directly, padded to a multiple of 16,
- keeps freed memory in the process (`keep_freed_memory`).

Vectors stay within 0.9999 cosine of fp32's on the synthetic org's chunks (min over 1,000).
Anything this module does not recognise (a slow tokenizer, another block layout) runs
unfused or on the autocast path, never wrongly.
"""

import ctypes
import platform
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

PAD_MULTIPLE = 16
"""Sequences padded to a multiple of 16 word pieces: the CPU attention kernel is 35-40 %
faster per token on a 96-long batch than on a 90-long one, more than the padding costs."""
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 256 * 1024 * 1024
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

FloatVectors = npt.NDArray[np.float32]


def keep_freed_memory() -> bool:
    """Have glibc keep freed blocks of up to 32 MiB for reuse (and trim only past 256 MiB)
    instead of unmapping each activation when it is freed and faulting it back in on the next
    allocation: that cost a fifth of a bf16 batch. Process-wide; a no-op off glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mmap_set = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        trim_set = libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    except (OSError, AttributeError):
        return False
    return bool(mmap_set) and bool(trim_set)


def fused_kernels_available() -> bool:
    """Whether this torch has oneDNN and its fused linear operator."""
    ops = getattr(torch.ops, "mkldnn", None)
    with_onednn = bool(torch.backends.mkldnn.is_available())  # type: ignore[no-untyped-call]
    return with_onednn and hasattr(ops, "_linear_pointwise")


class FusedLinear(nn.Module):
    """A linear layer as one oneDNN call, bias (and GELU, when `gelu`) applied inside it."""

    def __init__(self, linear: nn.Linear, *, gelu: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(linear.weight.detach(), requires_grad=False)
        bias = linear.bias.detach() if linear.bias is not None else None
        self.bias = nn.Parameter(bias, requires_grad=False) if bias is not None else None
        self.out_features = linear.out_features
        self.post, self.algorithm = ("gelu", "none") if gelu else ("none", "")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        out: torch.Tensor = torch.ops.mkldnn._linear_pointwise(
            flat, self.weight, self.bias, self.post, [], self.algorithm
        )
        return out.reshape(*x.shape[:-1], self.out_features)


class FusedResidualOutput(nn.Module):
    """BERT's output block (dense, dropout, LayerNorm of the sum with the block's input)
    with the residual add done inside the matrix product; dropout is off in inference."""

    def __init__(self, dense: nn.Linear, norm: nn.LayerNorm) -> None:
        super().__init__()
        self.weight = nn.Parameter(dense.weight.detach(), requires_grad=False)
        assert dense.bias is not None, "BERT's output blocks have a bias"
        self.bias = nn.Parameter(dense.bias.detach(), requires_grad=False)
        self.out_features = dense.out_features
        self.LayerNorm = norm

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        flat = hidden_states.reshape(-1, hidden_states.shape[-1])
        residual = input_tensor.reshape(-1, self.out_features)
        out: torch.Tensor = torch.ops.mkldnn._linear_pointwise.binary(
            flat, residual, self.weight, self.bias, "add"
        )
        result: torch.Tensor = self.LayerNorm(out.reshape(*hidden_states.shape[:-1], -1))
        return result


def _bert_blocks() -> tuple[tuple[type[nn.Module], ...], tuple[type[nn.Module], ...]]:
    """BERT's feed-forward (dense then activation) and output (dense, dropout, add, norm)
    block classes, the layouts whose fusion is checked against their own code."""
    from transformers.models.bert import modeling_bert as bert

    return (bert.BertIntermediate,), (bert.BertOutput, bert.BertSelfOutput)


def fuse_for_cpu(model: nn.Module) -> int:
    """Swap, in place, BERT's blocks and every other linear layer of `model` (already bf16)
    for fused oneDNN kernels; returns how many modules were swapped."""
    from transformers.activations import GELUActivation

    intermediate, output = _bert_blocks()
    swapped = 0
    for name, module in list(model.named_modules()):
        if type(module) in intermediate:
            act = module.intermediate_act_fn
            exact_gelu = isinstance(act, GELUActivation) and act.act is nn.functional.gelu
            if exact_gelu and isinstance(module.dense, nn.Linear):
                module.dense = FusedLinear(module.dense, gelu=True)
                module.intermediate_act_fn = nn.Identity()
                swapped += 1
        elif type(module) in output and isinstance(module.dense, nn.Linear):
            parent, _, child = name.rpartition(".")
            fused = FusedResidualOutput(module.dense, module.LayerNorm)
            setattr(model.get_submodule(parent), child, fused)
            swapped += 1
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if type(child) is nn.Linear:
                setattr(module, child_name, FusedLinear(child))
                swapped += 1
    return swapped


class Bf16CpuEncoder:
    """Texts to unit vectors through a sentence-transformers model whose first module is a
    Hugging Face transformer with a fast tokenizer; the modules after it (pooling,
    normalisation, dense heads) run in fp32 as the model defines them."""

    def __init__(self, st_model: Any, tokenizer: Any, *, fuse: bool) -> None:
        self._transformer = st_model[0].auto_model
        self._tail = list(st_model)[1:]
        self._tokenizer = tokenizer
        self._with_types = "token_type_ids" in st_model[0].tokenizer.model_input_names
        self._transformer.to(torch.bfloat16)
        self.fused = fuse_for_cpu(self._transformer) if fuse and fused_kernels_available() else 0

    @classmethod
    def wrap(cls, st_model: Any, *, fuse: bool) -> "Bf16CpuEncoder | None":
        """The encoder for `st_model`, or None when its first module is not a transformer
        with a fast tokenizer (it then stays on the autocast path). `fuse` only where the CPU
        has bf16 in hardware: oneDNN refuses bf16 kernels on CPUs without AVX-512."""
        tokenizer = text_tokenizer(st_model)
        return None if tokenizer is None else cls(st_model, tokenizer, fuse=fuse)

    def encode(self, texts: Sequence[str]) -> FloatVectors:
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
        inputs = {"input_ids": ids, "attention_mask": mask}
        if self._with_types:
            inputs["token_type_ids"] = torch.tensor(
                [e.type_ids for e in encodings], dtype=torch.long
            )
        with torch.inference_mode():
            hidden = self._transformer(**inputs, return_dict=True).last_hidden_state
            features: dict[str, torch.Tensor] = {
                "attention_mask": mask,
                "token_embeddings": hidden.float(),
            }
            for module in self._tail:
                features = module(features)
            vectors = nn.functional.normalize(features["sentence_embedding"].float(), p=2, dim=1)
        return np.asarray(vectors.numpy(), dtype=np.float32)


def text_tokenizer(st_model: Any) -> Any:
    """A private copy of the model's fast tokenizer, truncating at the model's max sequence
    length and padding to the batch's longest text rounded up to PAD_MULTIPLE; None when
    there is none. A copy, set once, because the shared one is reconfigured on every call
    by the library and must not be used from two threads."""
    from sentence_transformers.base.modules.transformer import Transformer
    from tokenizers import Tokenizer

    first = st_model[0]
    backend = getattr(getattr(first, "tokenizer", None), "backend_tokenizer", None)
    if type(first) is not Transformer or not isinstance(backend, Tokenizer):
        return None
    hf = first.tokenizer
    tokenizer = Tokenizer.from_str(backend.to_str())
    tokenizer.enable_truncation(max_length=int(st_model.max_seq_length))
    tokenizer.enable_padding(
        direction=hf.padding_side,
        pad_id=hf.pad_token_id,
        pad_type_id=hf.pad_token_type_id,
        pad_token=hf.pad_token,
        pad_to_multiple_of=PAD_MULTIPLE,
    )
    return tokenizer
