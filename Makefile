# `make check` sets up .venv with the dev dependencies (once, or when pyproject.toml
# changes) and runs the one gate: format, lint, types, import layers, tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: check install bench-validate bench-sandbox bench-reconcile bench-summary bench-writeback bench-gates bench-soak bench-latency bench-fleet

$(VENV)/.dev-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.dev-installed

check: install
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/check

bench-validate: install
	$(BIN)/python bench/validate.py

bench-sandbox: install
	$(BIN)/python bench/sandbox.py

bench-reconcile: install
	$(BIN)/python bench/reconcile.py

bench-summary: install
	$(BIN)/python bench/summary.py

bench-writeback: install
	$(BIN)/python bench/writeback.py

bench-gates: install
	$(BIN)/python bench/gates.py

# Ten minutes of drift every second and a broken commit every five seconds; MINUTES=2 shortens it.
bench-soak: install
	$(BIN)/python bench/soak.py $(if $(MINUTES),--minutes $(MINUTES))

# cvsync against a naive 20 ms poller and one server-side apply, on one sandbox in one run;
# ROUNDS=30 takes more samples of each figure.
bench-latency: install
	$(BIN)/python bench/latency.py $(if $(ROUNDS),--rounds $(ROUNDS)) $(if $(SETUPS),--setups $(SETUPS))

# 1,000 clusters once a minute and 200 in an upgrade wave, a status branch each, 3 minutes
# apiece; SCENARIO=500/min, LAYOUT=shared|both, MINUTES=5, TRANSPORT=http change it.
bench-fleet: install
	$(BIN)/python bench/fleet.py $(if $(SCENARIO),--scenario $(SCENARIO)) $(if $(LAYOUT),--layout $(LAYOUT)) $(if $(MINUTES),--minutes $(MINUTES)) $(if $(TRANSPORT),--transport $(TRANSPORT))
