# One task runner: the README and .ci/run call these targets.
# Each target creates .venv and installs the project on first use, so it is one command on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-fast lint bench screenshot clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/auditor demo --output demo-output

# On every core (pytest-xdist; work-stealing, since a few tests take far longer than the rest).
# A single test or file: $(BIN)/pytest tests/... (no -n: one process, easier to debug).
PYTEST_PARALLEL ?= -n auto --dist worksteal

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_PARALLEL)

test-fast: $(STAMP)
	$(BIN)/pytest $(PYTEST_PARALLEL) -m "not slow and not browser and not libreoffice"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

screenshot: demo
	$(BIN)/python docs/screenshot.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
