# The two commands of the Quickstart: `make dev` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test lint types unit bench schema clean clients ide

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

dev: $(STAMP) ide
	$(BIN)/xkit dev

test: lint types clients ide unit

# GraphiQL as the gateway serves it at /graphql, from the pinned package in gateway/ide/package-lock.json
# (its self-contained builds copied into gateway/ide/assets/; no CDN, no bundler).
IDE := gateway/ide
IDE_FILES := graphiql/graphiql.min.js graphiql/graphiql.min.css react/umd/react.production.min.js \
	react-dom/umd/react-dom.production.min.js
$(IDE)/assets/.built: $(IDE)/package-lock.json
	@command -v npm >/dev/null || { echo "GraphiQL's files come from npm: install Node.js (with npm), then run make ide"; exit 1; }
	npm ci --prefix $(IDE) --ignore-scripts --no-audit --no-fund --loglevel=error
	rm -rf $(IDE)/assets && mkdir -p $(IDE)/assets
	cp $(addprefix $(IDE)/node_modules/,$(IDE_FILES)) $(IDE)/assets/
	for package in graphiql react react-dom; do cp $(IDE)/node_modules/$$package/LICENSE $(IDE)/assets/LICENSE.$$package; done
	touch $@

ide: $(IDE)/assets/.built

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
	$(BIN)/pytest -q -n 3

bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks

schema: $(STAMP)
	$(BIN)/xkit export-schema > schema.graphql

clean:
	rm -rf $(VENV) tests/js/node_modules $(IDE)/node_modules $(IDE)/assets .xkit .mypy_cache .ruff_cache .pytest_cache .hypothesis
