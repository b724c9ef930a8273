# Two commands do all set-up: `make run` (install, then the tour) and `make test` (dev install, then the suite).
# TORCH picks the torch build: the default is the local CPU build; e.g. `make test TORCH=torch==2.9.1`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
# Every install is constrained to the chosen torch, so no extra can replace it.
CONSTRAINTS := $(VENV)/torch-constraint.txt

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(CONSTRAINTS): | $(BIN)/python
	echo "$(TORCH)" > $(CONSTRAINTS)

$(VENV)/.installed-base: pyproject.toml $(CONSTRAINTS)
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(CONSTRAINTS)
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e ".[dev]"
	touch $@

run: $(VENV)/.installed-base
	$(BIN)/neuroplast tour

test: $(VENV)/.installed-dev
	CI=true $(BIN)/python -m pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks

bench: $(VENV)/.installed-dev
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e ".[dev,bench]"
	$(BIN)/pip install --quiet --no-deps "spikingjelly>=0.0.0.0.14" "norse>=1.0"
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) runs
