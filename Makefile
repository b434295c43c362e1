# Two entry points do all the set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test lint chromium bench-ingest bench-retrieval eval-retrieval bench-drafting eval-drafting eval-bias eval-agency eval-flags bench-bias org clean

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

# The browser tests (tests/test_e2e.py) drive Debian's chromium; install it when missing.
chromium:
	@command -v chromium >/dev/null || { \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }

test: lint chromium
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

.PHONY: eval-groups
eval-groups: $(VENV)/.installed
	$(BIN)/python -m evals.eval_groups --seeds 10 --per-group 200

.PHONY: eval-injection
eval-injection: $(VENV)/.installed
	$(BIN)/python -m evals.eval_injection --people 120

.PHONY: eval-ratings
eval-ratings: $(VENV)/.installed
	$(BIN)/python -m evals.eval_ratings --seeds 10 --sizes 120 2400

eval-agency: $(VENV)/.installed
	$(BIN)/python -m evals.eval_agency

eval-flags: $(VENV)/.installed
	$(BIN)/python -m evals.eval_flags --people 120

bench-bias: $(VENV)/.installed
	$(BIN)/python -m evals.bench_bias --people 2400

.PHONY: bench-sync
bench-sync: $(VENV)/.installed
	$(BIN)/python -m evals.bench_sync --pulls 50000 --reviews 1 --people 300

.PHONY: bench-api
bench-api: $(VENV)/.installed
	$(BIN)/python -m evals.bench_api --people 600 --clients 50 --seconds 60 --workers $(shell nproc)

org: $(VENV)/.installed
	$(BIN)/python -m evals.synthetic_org --people 120 --out evals/out/org

clean:
	rm -rf $(VENV) .fairdraft evals/out
