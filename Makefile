# Two entry points do all the set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test lint bench-ingest bench-retrieval eval-retrieval bench-drafting eval-drafting eval-bias bench-bias org clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first: this pin takes the CPU build on the machine's disk instead of a CUDA download.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/fairdraft demo

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench-ingest: $(VENV)/.installed
	$(BIN)/python -m evals.bench_ingest --people 2400

bench-retrieval: $(VENV)/.installed
	$(BIN)/python -m evals.bench_retrieval --people 2400 --chunks 1000000

eval-retrieval: $(VENV)/.installed
	$(BIN)/python -m evals.eval_retrieval --people 120

bench-drafting: $(VENV)/.installed
	$(BIN)/python -m evals.bench_drafting --people 2400 --latency-ms 200 --concurrency 32

eval-drafting: $(VENV)/.installed
	$(BIN)/python -m evals.eval_drafting --people 60

eval-bias: $(VENV)/.installed
	$(BIN)/python -m evals.eval_bias --seeds 10 --people 120

bench-bias: $(VENV)/.installed
	$(BIN)/python -m evals.bench_bias --people 2400

org: $(VENV)/.installed
	$(BIN)/python -m evals.synthetic_org --people 120 --out evals/out/org

clean:
	rm -rf $(VENV) .fairdraft evals/out
