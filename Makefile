# One command to run, one to test; both create the virtualenv themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
CONFIG ?= nsdi-tracker.toml

.PHONY: run once demo fleet-demo check test test-compiled compiled bench bench-pages bench-fleet load soak image-smoke lint lock venv clean

$(BIN)/nsdi-tracker: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	@touch $@

venv: $(BIN)/nsdi-tracker

## run: the daemon on $(CONFIG): a round every interval, transitions stored, events delivered,
##      status on http://127.0.0.1:8080/ (Ctrl-C stops it cleanly)
run: venv
	$(BIN)/nsdi-tracker run --config $(CONFIG)

## demo: the February 2026 removals replayed on loopback with the live dashboard (no network)
demo: venv
	$(BIN)/nsdi-tracker demo

## fleet-demo: a fleet on loopback: a throw-away PostgreSQL (installed from Debian if missing),
##             the collector and three probes in three simulated ISPs; prints the fleet's
##             verdicts and keeps the collector up until Ctrl-C (no network)
fleet-demo: venv
	@./tests/ensure-tools.sh postgresql
	$(BIN)/nsdi-tracker fleet-demo

## once: one recorded round, then exit
once: venv
	$(BIN)/nsdi-tracker run --once --config $(CONFIG)

## check: one round's verdicts, printed, nothing recorded
check: venv
	$(BIN)/nsdi-tracker check --config $(CONFIG)

## test: lint, type-check, the floors contract and the whole test suite, on the pure-Python
##       build and then on the compiled one (installs Unbound, tmux, PostgreSQL, Chromium
##       from Debian if missing)
test: venv
	@./tests/ensure-tools.sh
	$(BIN)/ruff check nsdi_tracker tests docker benchmarks hatch_build.py
	$(BIN)/ruff format --check nsdi_tracker tests docker benchmarks hatch_build.py
	$(BIN)/mypy
	$(BIN)/lint-imports
	NSDI_TRACKER_EXPECT_BUILD="pure Python" $(BIN)/pytest
	$(MAKE) --no-print-directory test-compiled

## test-compiled: the whole suite again against the compiled build: a wheel whose hot path
##                mypyc compiled (hatch_build.py), installed in .venv-compiled (needs gcc)
test-compiled: compiled
	@# from tests/, so that `python -m nsdi_tracker` in a child finds the installed build
	cd tests && NSDI_TRACKER_EXPECT_BUILD="compiled with mypyc" \
		../.venv-compiled/bin/pytest -c ../pyproject.toml --rootdir .. -p no:cacheprovider

## compiled: build the wheel (the hot path compiled by mypyc) into .venv-compiled
compiled: venv
	@./tests/ensure-tools.sh
	@./tests/ensure-tools.sh gcc
	rm -rf .wheel
	$(BIN)/pip wheel -q --no-deps -w .wheel .
	$(PYTHON) -m venv .venv-compiled
	.venv-compiled/bin/pip install -q --upgrade pip
	.venv-compiled/bin/pip install -q --force-reinstall --no-deps .wheel/*.whl
	.venv-compiled/bin/pip install -q -c constraints.txt "$$(ls .wheel/*.whl)[dev]"

## bench: tracker rounds over 200,000 names against NSD on loopback, for the compiled build
##        (and over 1,000,000 for memory and storage) and the pure-Python one, with dnsperf's
##        ceiling; prints a table, JSON in benchmarks/results/ (installs NSD, dnsperf, gcc)
bench: compiled
	$(BIN)/python benchmarks/sweep.py --python .venv-compiled/bin/python --python $(BIN)/python

## bench-pages: every page of the web page for a 100,000-domain database (built by three real
##              rounds against NSD on loopback): median and worst time (installs NSD)
bench-pages: venv
	$(BIN)/python benchmarks/pages.py

## bench-fleet: the collector taking 100 probes' rounds of 10,000 domains into a throw-away
##              PostgreSQL (rows/s), and the fleet status over them (installs PostgreSQL)
bench-fleet: venv
	$(BIN)/python benchmarks/fleet.py

## image-smoke: replay the Docker image (install, entry command as its user, health, stop)
##              where no Docker engine runs; installs tini and python3-venv from Debian
image-smoke:
	@./docker/ensure-deps.sh
	python3 docker/smoke.py

## load: the status server under 32 clients for 60 s while rounds run every 3 s on 2,000
##       names against NSD on loopback: requests/s, p99, the rounds' spacing (installs NSD)
load: venv
	$(BIN)/python benchmarks/load.py

## soak: the daemon for 1,000 rounds of 300 names, its RSS at rounds 50, 500 and 1,000
soak: venv
	$(BIN)/python benchmarks/soak.py

## lock: renew constraints.txt, the exact versions CI and the image install, from a fresh
##       resolution of pyproject.toml's ranges (uses PyPI)
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install -q '.[dev]'
	{ echo "# The exact versions CI and the Docker image install (pip install -c constraints.txt)."; \
	  echo "# Renewed by \`make lock\` from pyproject.toml's ranges; commit it with what it changes."; \
	  .lock-venv/bin/pip freeze --exclude-editable | grep -v '^nsdi-tracker'; } > constraints.txt
	rm -rf .lock-venv

lint: venv
	$(BIN)/ruff check nsdi_tracker tests docker benchmarks hatch_build.py
	$(BIN)/ruff format --check nsdi_tracker tests docker benchmarks hatch_build.py
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
