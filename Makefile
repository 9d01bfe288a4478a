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

# pytest-xdist, two workers per core: most tests wait on a sandbox, a browser or a child process,
# not the CPU (on 2 cores: 112 s with 4 workers, 182 s with 2, for the report and crash tests).
# Work-stealing, since a few tests take far longer than the rest. PYTEST_PARALLEL= runs one process.
PYTEST_PARALLEL ?= -n $(shell echo $$((2 * $$(nproc 2>/dev/null || echo 1)))) --dist worksteal

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
