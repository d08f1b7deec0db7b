# The two commands of the Quickstart: `make dev` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint types unit bench schema clean clients

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

dev: $(STAMP)
	$(BIN)/xkit dev

test: lint types clients unit

# The JavaScript clients our users run (graphql-ws, graphql-sse, the graphql-http audit, relay-compiler,
# Apollo), pinned by tests/js/package-lock.json, and Debian's Chromium for what a person sees.
JS_STAMP := tests/js/node_modules/.installed
$(JS_STAMP): tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
	touch $(JS_STAMP)

clients: $(JS_STAMP)
	@command -v chromium >/dev/null || { \
		echo "installing Debian's chromium for the browser tests"; \
		$$(command -v sudo >/dev/null && [ "$$(id -u)" != 0 ] && echo sudo) apt-get install -y -q chromium >/dev/null; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks

schema: $(STAMP)
	$(BIN)/xkit export-schema > schema.graphql

clean:
	rm -rf $(VENV) tests/js/node_modules .xkit .mypy_cache .ruff_cache .pytest_cache .hypothesis
