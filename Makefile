# Every target sets up what it needs: a fresh machine has only Python 3.11+, pip, git and make.
# `make help` lists the targets.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help run test check lint typecheck pytest e2e sandbox schema format clean bench bench-scaleout

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

run: $(STAMP) ## install, then run the gateway on the embedded sandbox (GraphiQL URL printed)
	$(BIN)/appointments-gateway serve

test: $(STAMP) ## install, then lint, type-check and run every test (unit, integration, e2e)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP) ## mypy --strict with the Strawberry plugin
	$(BIN)/mypy

pytest: $(STAMP) ## only the tests (pass ARGS='-k name' to select)
	$(BIN)/pytest $(ARGS)

e2e: $(STAMP) ## only the end-to-end tests that start the CLI and talk TCP
	$(BIN)/pytest tests/e2e $(ARGS)

sandbox: $(STAMP) ## run the sandbox Cliniko API alone (demo keys printed)
	$(BIN)/appointments-gateway sandbox

bench: $(STAMP) ## install, then run the benchmark suite (about 20 min; ARGS='--profile' adds a cProfile)
	$(BIN)/python -m bench.run $(ARGS)

bench-scaleout: $(STAMP) ## install, then show scale-out on Redis: 2 instances x 2 workers (about 8 min; needs redis-server)
	$(BIN)/python -m bench.scaleout $(ARGS)

schema: $(STAMP) ## regenerate schema.graphql from the code
	$(BIN)/appointments-gateway schema > schema.graphql

format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## remove the virtual environment and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
