# Partner Analytics: `make run` to try it, `make test` to check it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: install db run test test-sqlite test-postgres lint serve bench bench-quick bench-deps fuzz load clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

db: install
	$(BIN)/flask init-db

run: db
	$(BIN)/flask seed-demo
	@echo ""
	@echo "Partner Analytics dashboard: http://$(HOST):$(PORT)/   (Ctrl+C stops it)"
	@echo ""
	$(BIN)/flask run --host $(HOST) --port $(PORT)

# The whole suite on SQLite, then again on PostgreSQL when TEST_DATABASE_URL is set.
test: install
	bash .ci/suite sqlite
	@if [ -n "$$TEST_DATABASE_URL" ]; then bash .ci/suite postgresql; \
	else echo "TEST_DATABASE_URL not set: PostgreSQL pass skipped"; fi

lint: install
	$(BIN)/ruff check app tests bench
	$(BIN)/mypy app

# gunicorn with WORKERS (default 2 x cores + 1); rate limits in RATELIMIT_STORAGE_URI, else
# in the Redis on 127.0.0.1:6379; refuses several workers with in-memory limits, and a
# SECRET_KEY under 32 bytes (app/serving.py).
serve: db
	$(BIN)/python -m app.serving $(HOST):$(PORT)

# Benchmarks (bench/): SQLite, then PostgreSQL when it answers (BENCH_PG_URL, default
# postgres@127.0.0.1:5432). Writes bench/results/latest.md; data is kept in bench/data/.
bench-deps: install
	@$(BIN)/python -c 'import duckdb' 2>/dev/null || $(BIN)/python -m pip install --quiet -e ".[dev,bench]"

bench: bench-deps
	$(BIN)/python -m bench.run

bench-quick: bench-deps
	$(BIN)/python -m bench.run --quick --out bench/results/quick.md

# Schemathesis over /api/v1/openapi.json with a valid key until >= 10,000 requests; fails on
# any 5xx or any answer that does not match the document (tests/fuzz_api.py).
FUZZ_REQUESTS ?= 10000
fuzz: install
	$(BIN)/python tests/fuzz_api.py --min-requests $(FUZZ_REQUESTS)

# gunicorn on 127.0.0.1 under 16 connections for 60 s (reads and batched writes, 10 %
# re-sent events), then a raw recount and `flask rollups verify` (bench/load.py).
# LOAD_BACKEND=postgresql uses a throwaway database on TEST_DATABASE_URL's server.
LOAD_BACKEND ?= sqlite
LOAD_SECONDS ?= 60
load: install
	$(BIN)/python -m bench.load --backend $(LOAD_BACKEND) --duration $(LOAD_SECONDS) \
		--connections 16

clean:
	rm -rf $(VENV) build *.egg-info tests/artifacts
