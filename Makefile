# Every target sets itself up: a fresh machine needs Python 3.10+, make and (for tests) Node 20.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROVIDER := tests/e2e/provider
BROWSER_DRIVER := tests/e2e/browser
# pip's errors still show; its warnings (such as index folders that a machine's own pip
# configuration names but does not have) would fill the first screen of every setup.
PIP_INSTALL := -m pip install -qq

.PHONY: venv browser redis test test-unit test-e2e lint format demo bench clean

$(BIN)/python:
	$(PYTHON) scripts/make_venv.py $(VENV)
	$(BIN)/python $(PIP_INSTALL) --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python $(PIP_INSTALL) -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed

$(PROVIDER)/node_modules/.installed: $(PROVIDER)/package-lock.json
	cd $(PROVIDER) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# playwright-core drives Debian's /usr/bin/chromium (`make browser` installs it): it never
# downloads a browser of its own.
$(BROWSER_DRIVER)/node_modules/.installed: $(BROWSER_DRIVER)/package-lock.json
	cd $(BROWSER_DRIVER) && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
	@touch $@

E2E_NODE_MODULES := $(PROVIDER)/node_modules/.installed $(BROWSER_DRIVER)/node_modules/.installed

browser:
	@bash scripts/browser.sh

# Debian's redis-server, which the Redis token cache's tests start on a free port.
redis:
	@bash scripts/redis.sh

test: venv browser redis $(E2E_NODE_MODULES)
	$(BIN)/python -m pytest

test-unit: venv
	$(BIN)/python -m pytest -m "not e2e"

test-e2e: venv browser redis $(E2E_NODE_MODULES)
	$(BIN)/python -m pytest -m e2e

lint: venv
	$(BIN)/ruff check oauthcli tests bench scripts
	$(BIN)/ruff format --check oauthcli tests bench scripts
	$(BIN)/mypy

format: venv
	$(BIN)/ruff check --fix oauthcli tests bench scripts
	$(BIN)/ruff format oauthcli tests bench scripts

demo: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

$(VENV)/.bench-installed: pyproject.toml | $(VENV)/.installed
	$(BIN)/python $(PIP_INSTALL) -e '.[dev,bench]'
	@touch $@

# Start-up, cold start, 12 processes, batch vs xargs+curl, memory; ~4 minutes.
# BENCH_ARGS=--quick for a smoke run; results in bench/results/latest.md.
bench: venv $(VENV)/.bench-installed
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(PROVIDER)/node_modules $(BROWSER_DRIVER)/node_modules .pytest_cache .mypy_cache .ruff_cache
