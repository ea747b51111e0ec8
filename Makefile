# Partner Analytics: `make run` to try it, `make test` to check it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A stamp per installed lock file: a change to pyproject.toml or a lock reinstalls.
RUNTIME_STAMP := $(VENV)/.runtime-$(shell cat pyproject.toml requirements/runtime.lock | cksum | cut -d' ' -f1)
DEV_STAMP := $(VENV)/.dev-$(shell cat pyproject.toml requirements/dev.lock | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: install install-dev lock db run test test-sqlite test-postgres lint coverage serve bench bench-page bench-quick bench-deps bench-rebucket bench-cache fuzz load clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The exact versions of requirements/*.lock, then the app itself (editable, no deps).
$(RUNTIME_STAMP): pyproject.toml requirements/runtime.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements/runtime.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.runtime-*
	touch $@

$(DEV_STAMP): pyproject.toml requirements/dev.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements/dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.dev-* $(VENV)/.runtime-*
	touch $@ $(RUNTIME_STAMP)

# What the dashboard needs (make run, make serve) ...
install: $(RUNTIME_STAMP)

# ... and the test, lint and benchmark tools on top.
install-dev: $(DEV_STAMP)

# Regenerate the lock files from pyproject.toml's ranges (newest versions that fit).
lock: $(BIN)/python
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile -q --strip-extras --no-header --no-annotate --no-emit-index-url \
		--no-emit-find-links -o requirements/runtime.lock pyproject.toml
	$(BIN)/pip-compile -q --strip-extras --no-header --no-annotate --no-emit-index-url \
		--no-emit-find-links --extra dev -o requirements/dev.lock pyproject.toml

db: install
	$(BIN)/flask init-db

# The demo data and the compressed static files are made side by side (two processes).
run: db
	$(BIN)/flask compress-static & compress=$$!; \
	$(BIN)/flask seed-demo; seeded=$$?; \
	wait $$compress && exit $$seeded
	@echo ""
	@echo "Partner Analytics dashboard: http://$(HOST):$(PORT)/   (Ctrl+C stops it)"
	@echo ""
	@# The worker (webhook deliveries, app/worker.py) runs beside the server and stops with
	@# it. Local development may send webhooks to this machine (WEBHOOK_ALLOW_PRIVATE).
	export WEBHOOK_ALLOW_PRIVATE=$${WEBHOOK_ALLOW_PRIVATE:-1}; \
	$(BIN)/flask worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/flask run --host $(HOST) --port $(PORT)

# The whole suite on SQLite, then again on PostgreSQL when TEST_DATABASE_URL is set.
test: install-dev
	bash .ci/suite sqlite
	@if [ -n "$$TEST_DATABASE_URL" ]; then bash .ci/suite postgresql; \
	else echo "TEST_DATABASE_URL not set: PostgreSQL pass skipped"; fi

lint: install-dev
	$(BIN)/ruff check app tests bench gunicorn.conf.py
	$(BIN)/ruff format --check app tests bench gunicorn.conf.py
	$(BIN)/mypy app

# The suite on SQLite with line coverage of app/ (htmlcov/index.html).
coverage: install-dev
	$(BIN)/python -m pytest -q --cov=app --cov-report=term-missing:skip-covered \
		--cov-report=html

# gunicorn with WORKERS (default 2 x cores + 1), and beside it the worker (app/worker.py,
# stopped with it, same REDIS_URL); rate limits in RATELIMIT_STORAGE_URI, else
# in the Redis on 127.0.0.1:6379; refuses several workers with in-memory limits, and a
# SECRET_KEY under 32 bytes (app/serving.py).
# Static files are compressed once first (brotli 11 takes ~12 s on plotly.js; later runs
# find them in instance/compressed-static).
serve: db
	$(BIN)/flask compress-static
	$(BIN)/python -m app.serving --worker $(HOST):$(PORT) & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python -m app.serving $(HOST):$(PORT)

# Benchmarks (bench/): SQLite, then PostgreSQL when it answers (BENCH_PG_URL, default
# postgres@127.0.0.1:5432). Writes bench/results/latest.md; data is kept in bench/data/.
bench-deps: install-dev
	@$(BIN)/python -c 'import duckdb, chdb' 2>/dev/null || $(BIN)/python -m pip install --quiet -e ".[bench]"

bench: bench-deps
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.page

# A cold overview in headless Chromium: bytes on the wire and time to the first chart
# (writes bench/results/page.md).
bench-page: install-dev
	$(BIN)/python -m bench.page

bench-quick: bench-deps
	$(BIN)/python -m bench.run --quick --out bench/results/quick.md

# How long set-timezone, rollups rebuild and verify take per million events (both back ends).
REBUCKET_EVENTS ?= 1000000
bench-rebucket: install-dev
	$(BIN)/python -m bench.rebucket --events $(REBUCKET_EVENTS)

# What keeping the closed-period figures in Redis (CACHE_URL) costs a cached request.
bench-cache: install-dev
	$(BIN)/python -m bench.cache_store

# Schemathesis over /api/v1/openapi.json with a valid key until >= 10,000 requests; fails on
# any 5xx or any answer that does not match the document (tests/fuzz_api.py).
FUZZ_REQUESTS ?= 10000
fuzz: install-dev
	$(BIN)/python tests/fuzz_api.py --min-requests $(FUZZ_REQUESTS)

# gunicorn on 127.0.0.1 under 16 connections for 60 s (reads and batched writes, 10 %
# re-sent events), then a raw recount and `flask rollups verify` (bench/load.py).
# LOAD_BACKEND=postgresql uses a throwaway database on TEST_DATABASE_URL's server.
# With --operator (LOAD_OPERATOR=) set-timezone and rollups rebuild run on the live partner
# meanwhile; clients wait out their 503s and send the batch again.
LOAD_BACKEND ?= sqlite
LOAD_SECONDS ?= 60
LOAD_OPERATOR ?= --operator
load: install-dev
	$(BIN)/python -m bench.load --backend $(LOAD_BACKEND) --duration $(LOAD_SECONDS) \
		--connections 16 $(LOAD_OPERATOR)

clean:
	rm -rf $(VENV) build *.egg-info tests/artifacts
