# Every target creates what it needs on a fresh machine: the Python venv and the Node packages
# (Anvil, forge, solc and the official Uniswap/Safe artifacts) come from the package registries.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NODE_BIN := node_modules/.bin

.PHONY: demo test test-python test-contracts nightly bench lint typecheck setup clean compare-demeter

setup: $(VENV)/.installed node_modules/.installed contracts/out/.built

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

contracts/out/.built: node_modules/.installed foundry.toml $(wildcard contracts/src/*.sol)
	$(NODE_BIN)/forge build --offline
	touch $@

demo: setup
	$(VENV)/bin/lpbot demo

test: setup lint typecheck test-contracts test-python

test-python: setup
	$(PY) -m pytest

test-contracts: setup
	$(NODE_BIN)/forge test --offline

nightly: setup
	LPBOT_DIFF_OPS=20000 $(PY) -m pytest -m "differential or slow"
	FOUNDRY_PROFILE=ci $(NODE_BIN)/forge test --offline

bench: setup
	$(PY) -m pytest benchmarks --benchmark-only --benchmark-columns=min,median,mean,ops,rounds

# lpbot's bars engine beside zelos-demeter (the `compare` extra) on one synthetic dataset
$(VENV)/.compare: $(VENV)/.installed pyproject.toml
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e ".[dev,compare]"
	touch $@

compare-demeter: $(VENV)/.compare
	$(PY) -m lpbot.backtest.compare_demeter --dir .lpbot/compare-demeter

lint: setup
	$(VENV)/bin/ruff check lpbot tests benchmarks scripts
	$(VENV)/bin/ruff format --check lpbot tests benchmarks scripts

typecheck: setup
	$(VENV)/bin/mypy lpbot

clean:
	rm -rf $(VENV) node_modules contracts/out contracts/cache .pytest_cache .benchmarks
