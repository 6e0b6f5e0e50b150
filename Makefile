# One command to run, one to test; both create the virtualenv themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
CONFIG ?= nsdi-tracker.toml

.PHONY: run check test lint venv clean

$(BIN)/nsdi-tracker: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

venv: $(BIN)/nsdi-tracker

## run: one recorded round against the resolvers in $(CONFIG): confirm, store, deliver events
run: venv
	$(BIN)/nsdi-tracker run --once --config $(CONFIG)

## check: one round's verdicts, printed, nothing recorded
check: venv
	$(BIN)/nsdi-tracker check --config $(CONFIG)

## test: lint, type-check and the whole test suite (installs Unbound from Debian if missing)
test: venv
	@./tests/ensure-unbound.sh
	$(BIN)/ruff check nsdi_tracker tests
	$(BIN)/ruff format --check nsdi_tracker tests
	$(BIN)/mypy
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check nsdi_tracker tests
	$(BIN)/ruff format --check nsdi_tracker tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
