"""Embedding at the CPU's limit: which precision runs where, how the cores are shared, how
texts are batched, and that the fast path's vectors stand in for fp32's."""

import json
import random
import resource
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from typer.testing import CliRunner

from evals.bench_ingest import chunk_texts
from evals.synthetic_org import generate_org
from retrieval.cpu_bf16 import PAD_MULTIPLE, Bf16CpuEncoder, text_tokenizer
from retrieval.embedding import (
    PrecisionSetting,
    SentenceTransformerEmbedder,
    ThreadPlan,
    choose_precision,
    cpu_has_native_bf16,
    length_sorted_batches,
    load_embedder,
    plan_threads,
)
from service.cli import app
from service.settings import DEFAULT_EMBEDDING_MODEL, Settings, get_settings
from service.store import embedder_from
from tests.conftest import FIXTURES


@pytest.mark.parametrize(
    ("requested", "device", "native_bf16", "expected"),
    [
        ("auto", "cpu", True, "bf16"),
        ("auto", "cpu", False, "fp32"),
        ("auto", "cuda", False, "fp16"),
        ("auto", "cuda:1", True, "fp16"),
        ("auto", "mps", True, "fp32"),
        ("fp32", "cpu", True, "fp32"),
        ("fp32", "cuda", False, "fp32"),
        ("bf16", "cpu", False, "bf16"),
        ("bf16", "cuda", False, "bf16"),
    ],
)
def test_auto_picks_fp16_on_cuda_bf16_on_a_bf16_cpu_fp32_elsewhere_and_a_forced_one_is_obeyed(
    requested: PrecisionSetting, device: str, native_bf16: bool, expected: str
) -> None:
    assert choose_precision(requested, device, native_bf16=native_bf16) == expected


@pytest.mark.parametrize(
    ("cores", "device", "expected"),
    [
        (1, "cpu", ThreadPlan(workers=1, threads_per_worker=1)),
        (2, "cpu", ThreadPlan(workers=2, threads_per_worker=1)),
        (6, "cpu", ThreadPlan(workers=4, threads_per_worker=1)),
        (16, "cpu", ThreadPlan(workers=4, threads_per_worker=4)),
        (8, "cuda", ThreadPlan(workers=1, threads_per_worker=8)),
    ],
)
def test_cpu_cores_go_to_concurrent_batches_and_a_gpu_gets_one(
    cores: int, device: str, expected: ThreadPlan
) -> None:
    assert plan_threads(cores, device) == expected


def test_batches_hold_every_text_once_longest_first_and_no_more_than_the_batch_size() -> None:
    texts = ["x" * n for n in (5, 50, 1, 20, 7, 33, 2, 20)]

    batches = length_sorted_batches(texts, batch_size=3, workers=1)

    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(texts)))
    assert [len(texts[i]) for i in flat] == sorted(map(len, texts), reverse=True)
    assert all(len(batch) <= 3 for batch in batches)


def test_a_call_smaller_than_a_batch_per_worker_is_shared_evenly() -> None:
    assert [len(b) for b in length_sorted_batches(["t"] * 10, batch_size=32, workers=2)] == [5, 5]
    assert length_sorted_batches([], batch_size=32, workers=2) == []


def test_the_precision_setting_defaults_to_auto_and_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings(_env_file=None).embedding_precision == "auto"
    monkeypatch.setenv("FAIRDRAFT_EMBEDDING_PRECISION", "fp32")

    assert Settings(_env_file=None).embedding_precision == "fp32"


def test_an_unknown_precision_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAIRDRAFT_EMBEDDING_PRECISION", "int4<script>")

    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None)

    assert "embedding_precision" in str(refused.value)


def fixture_texts() -> list[str]:
    """Paragraphs and titles of the fixture org's records, of many lengths, plus one text
    longer than the model's 256 word pieces."""
    texts: list[str] = []
    for line in (FIXTURES / "org" / "records.jsonl").read_text().splitlines():
        record = json.loads(line)
        texts.extend(p for p in record["body"].split("\n\n") if p.strip())
        if record.get("title"):
            texts.append(record["title"])
    texts.append(" ".join(texts))
    return texts


@pytest.mark.slow
def test_bf16_vectors_are_within_0999_cosine_of_fp32_and_come_back_in_input_order() -> None:
    texts = fixture_texts()
    fp32 = embedder_from(
        Settings(
            _env_file=None, embedding_model=DEFAULT_EMBEDDING_MODEL, embedding_precision="fp32"
        )
    )
    bf16 = load_embedder(DEFAULT_EMBEDDING_MODEL, batch_size=4, precision="bf16")
    assert isinstance(fp32, SentenceTransformerEmbedder)
    assert isinstance(bf16, SentenceTransformerEmbedder)
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
    assert fp32.name == bf16.name == DEFAULT_EMBEDDING_MODEL, "one name: the vectors mix"

    reference = fp32.embed(texts)
    reversed_bf16 = bf16.embed(texts[::-1])[::-1]

    cosine = np.einsum("ij,ij->i", reference, reversed_bf16)
    assert len(texts) > 4 * bf16.threads.workers, "several batches on several workers"
    assert cosine.min() >= 0.999
    assert np.allclose(np.linalg.norm(reversed_bf16, axis=1), 1.0, atol=1e-4)
    nearest = (reversed_bf16 @ reference.T).argmax(axis=1)
    assert list(nearest) == list(range(len(texts)))


def test_a_hostile_precision_on_the_command_line_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAIRDRAFT_EMBEDDING_PRECISION", "[red]fp8[/red]")
    get_settings.cache_clear()

    result = CliRunner().invoke(app, ["serve"])

    assert result.exit_code == 2
    assert "Traceback" not in result.output and "fp8" not in result.output
    assert result.output.strip().splitlines() == [
        "error: FAIRDRAFT_EMBEDDING_PRECISION: Input should be 'auto', 'fp32' or 'bf16'"
    ]


@pytest.fixture(scope="module")
def org_chunks(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """300 chunk texts of a small synthetic org, chunked as ingest chunks them (what the
    embedder sees in use: 10 to 214 word pieces)."""
    home = tmp_path_factory.mktemp("org-chunks")
    generate_org(home / "org", people=30, seed=7)
    texts = chunk_texts(home / "org" / "records.jsonl", Settings(_env_file=None, home=home))
    return random.Random(7).sample(sorted(set(texts)), 300)


@pytest.fixture(scope="module")
def fp32_and_bf16() -> tuple[SentenceTransformerEmbedder, SentenceTransformerEmbedder]:
    fp32 = load_embedder(DEFAULT_EMBEDDING_MODEL, precision="fp32")
    bf16 = load_embedder(DEFAULT_EMBEDDING_MODEL, precision="bf16")
    assert isinstance(fp32, SentenceTransformerEmbedder)
    assert isinstance(bf16, SentenceTransformerEmbedder)
    return fp32, bf16


@pytest.mark.slow
def test_on_a_bf16_cpu_the_whole_transformer_runs_fused_and_fp32_stays_as_it_was(
    fp32_and_bf16: tuple[SentenceTransformerEmbedder, SentenceTransformerEmbedder],
) -> None:
    fp32, bf16 = fp32_and_bf16
    if not cpu_has_native_bf16():
        pytest.skip("this CPU has no bf16 in hardware: auto stays on fp32 here")

    first: Any = bf16._model[0]
    transformer: torch.nn.Module = first.auto_model
    assert bf16.fused_path and not fp32.fused_path
    assert {p.dtype for p in transformer.parameters()} == {torch.bfloat16}
    assert not [m for m in transformer.modules() if type(m) is torch.nn.Linear], "all fused"
    assert {p.dtype for p in fp32._model.parameters()} == {torch.float32}


@pytest.mark.slow
def test_fused_bf16_vectors_stay_within_0999_cosine_of_fp32_on_org_chunks_in_any_order(
    fp32_and_bf16: tuple[SentenceTransformerEmbedder, SentenceTransformerEmbedder],
    org_chunks: list[str],
) -> None:
    fp32, bf16 = fp32_and_bf16

    reference = fp32.embed(org_chunks)
    shuffled = list(range(len(org_chunks)))
    random.Random(1).shuffle(shuffled)
    fast = np.empty_like(reference)
    fast[shuffled] = bf16.embed([org_chunks[i] for i in shuffled])

    cosine = np.einsum("ij,ij->i", reference, fast)
    assert cosine.min() >= 0.999, f"min cosine {cosine.min():.6f}"
    assert cosine.mean() >= 0.9999
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-4)
    nearest = (fast @ reference.T).max(axis=1)
    assert (nearest - cosine <= 1e-3).all(), "each text's own fp32 vector is (one of) its nearest"


@pytest.mark.slow
def test_the_bf16_tokenizer_pads_to_a_multiple_of_16_and_truncates_at_the_model_window(
    fp32_and_bf16: tuple[SentenceTransformerEmbedder, SentenceTransformerEmbedder],
) -> None:
    model = fp32_and_bf16[0]._model
    tokenizer = text_tokenizer(model)

    short, long = tokenizer.encode_batch(["ledger migration", "word " * 400])
    (alone,) = tokenizer.encode_batch(["ledger migration"])

    assert len(short.ids) == len(long.ids) == model.max_seq_length == 256
    assert len(alone.ids) == PAD_MULTIPLE and sum(alone.attention_mask) == 4
    first: Any = model[0]
    reference = first.tokenizer(["ledger migration"])["input_ids"][0]
    assert alone.ids[: len(reference)] == reference


def test_a_model_without_a_transformer_first_stays_on_the_autocast_path() -> None:
    assert Bf16CpuEncoder.wrap([torch.nn.Identity()], fuse=True) is None


@pytest.mark.slow
def test_embedding_a_batch_again_does_not_fault_its_memory_back_in(
    fp32_and_bf16: tuple[SentenceTransformerEmbedder, SentenceTransformerEmbedder],
    org_chunks: list[str],
) -> None:
    """glibc would unmap each freed activation and fault it in again on the next batch:
    30,000 page faults for these 32 chunks on the autocast path, a fifth of its time. The
    fewest of three batches is what is held to the bound: in a long test process one batch
    now and then lands on a thread whose heap has not grown yet (9,200 faults, seen twice
    in full runs, never alone), while a regression faults on every batch."""
    bf16 = fp32_and_bf16[1]
    if not bf16.fused_path:
        pytest.skip("this CPU has no bf16 in hardware")
    batch = sorted(org_chunks, key=len)[-32:]
    for _ in range(2):  # each worker thread's heap grows to its peak once
        bf16.embed(batch)

    counts = []
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        bf16.embed(batch)
        counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)

    assert min(counts) < 2000, f"{counts} page faults for three batches"
