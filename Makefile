# Every target creates what it needs on a fresh machine: the Python venv and the Node packages
# (Anvil, forge, solc and the official Uniswap/Safe artifacts) come from the package registries.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NODE_BIN := node_modules/.bin
ECHARTS := lpbot/web/static/vendor/echarts.min.js

.PHONY: browser demo test test-python test-contracts nightly bench lint typecheck setup mpc clean compare-demeter chaos chaos-postgres study

setup: $(VENV)/.installed node_modules/.installed contracts/out/.built $(ECHARTS)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# the dashboard's charts: Apache ECharts from its npm package (pinned), never a CDN
$(ECHARTS): node_modules/.installed
	mkdir -p $(dir $@)
	cp node_modules/echarts/dist/echarts.min.js $@

# The MPC backend is optional and installed only on request: `@0xcarbon/dkls23-wasm` carries no
# licence grant (README, Custody). `make test` installs it to test the MPC code (MPC=0
# leaves it out and those tests are skipped); `make setup`, `make demo` and `npm ci` never do.
MPC ?= 1
MPC_BACKEND := sidecar/mpc/backend/node_modules/.installed
mpc: $(MPC_BACKEND)

$(MPC_BACKEND): sidecar/mpc/backend/package.json sidecar/mpc/backend/package-lock.json
	npm ci --prefix sidecar/mpc/backend --no-audit --no-fund --loglevel=error
	touch $@

contracts/out/.built: node_modules/.installed foundry.toml $(wildcard contracts/src/*.sol)
	$(NODE_BIN)/forge build --offline
	touch $@

demo: setup
	$(VENV)/bin/lpbot demo

test: setup lint typecheck test-contracts test-python

# The dashboard's browser tests drive Debian's chromium (installed here when missing, as root);
# `make test` requires them (BROWSER=0 leaves them to skip when chromium is absent).
BROWSER ?= 1
# `make test` also installs the optional extras it tests (the MPC backend, zelos-demeter for the
# side-by-side, Ray for distributed sweeps) and requires them, so their tests cannot be skipped
# silently; MPC=0 or EXTRAS=0 leaves them out.
EXTRAS ?= 1
TEST_DEPS := setup
TEST_ENV :=
ifeq ($(MPC),1)
TEST_DEPS += mpc
TEST_ENV += LPBOT_REQUIRE_MPC=1
endif
ifeq ($(BROWSER),1)
TEST_DEPS += browser
TEST_ENV += LPBOT_REQUIRE_BROWSER=1
endif
ifeq ($(EXTRAS),1)
TEST_DEPS += $(VENV)/.extras
TEST_ENV += LPBOT_REQUIRE_EXTRAS=1
endif

test-python: $(TEST_DEPS)
	$(TEST_ENV) $(PY) -m pytest

$(VENV)/.extras: $(VENV)/.installed pyproject.toml
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e ".[dev,compare,ray]"
	touch $(VENV)/.compare $@

browser:
	bash scripts/ci-chromium.sh >/dev/null

test-contracts: setup
	$(NODE_BIN)/forge test --offline

nightly: setup
	LPBOT_DIFF_OPS=20000 $(PY) -m pytest -m "differential or slow"
	FOUNDRY_PROFILE=ci $(NODE_BIN)/forge test --offline
	$(MAKE) chaos
	$(MAKE) chaos-postgres
	$(MAKE) study

# every strategy over 20 seeds and 12 market regimes at Arbitrum and Ethereum costs (README,
# "Backtests: the study"); fails when the default strategy misses its target. `make test` runs
# a small grid of it (tests/backtest/test_study.py). DAYS=7 gives the README's table.
SEEDS ?= 20
DAYS ?= 30
study: setup
	mkdir -p .lpbot
	$(VENV)/bin/lpbot backtest study --seeds $(SEEDS) --days $(DAYS) \
		--json-out .lpbot/study.json --markdown-out .lpbot/study.md --check-target

# the crash harness: `lpbot run` SIGKILLed at every rebalance checkpoint and at random moments,
# restarted, then the chain and the store compared (scripts/chaos.py); ROUNDS=30 by default.
# chaos-postgres: the same on a local PostgreSQL server (scripts/ci-postgres.sh starts one).
# `make test` runs the short version (tests/jobs/test_chaos.py) on SQLite, and on PostgreSQL
# too when LPBOT_TEST_POSTGRES_URL is set.
ROUNDS ?= 30
chaos: setup
	$(PY) scripts/chaos.py --rounds $(ROUNDS)

chaos-postgres: setup
	eval "$$(bash scripts/ci-postgres.sh)" && $(PY) scripts/chaos.py --rounds $(ROUNDS) --database postgresql

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
	rm -rf $(VENV) node_modules sidecar/mpc/backend/node_modules contracts/out contracts/cache .pytest_cache .benchmarks
