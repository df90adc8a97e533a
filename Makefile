# market-warehouse: `make demo` runs the main job on DuckDB, `make test` runs every test.
# Every install step lives here, so a fresh clone (Python 3.11, the package index, nothing else) works.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false

.PHONY: venv demo test test-python test-dbt timescaledb timescaledb-down bench bench-scale docs lint clean chromium bi bi-venv test-bi spark orchestration

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

## The main job on the embedded default: load the bundled sample, dbt build, print a summary.
demo: venv
	$(BIN)/mwh demo

## Every test: Python tests and dbt builds on DuckDB and on a local TimescaleDB/PostgreSQL
## (provisioned by scripts/timescaledb.sh unless MWH_TEST_PG_HOST points at your own server).
## Tests run on PYTEST_WORKERS processes (pytest-xdist; a file's tests stay on one worker, as some share a
## module-level warehouse). Each test has its own DuckDB file or PostgreSQL database, so workers never meet.
PYTEST_WORKERS ?= 2
test: venv lint chromium spark orchestration
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

## The optional Spark target (docs/spark.md): dbt-spark and pyspark (the engine; Java 17) into the same
## venv, pinned in spark/requirements.lock; --no-deps, as requirements.lock already holds dbt-core.
spark: $(VENV)/.spark-installed

$(VENV)/.spark-installed: spark/requirements.lock $(STAMP)
	$(BIN)/pip install -q --no-deps -r spark/requirements.lock
	touch $@

## The optional Dagster orchestration (orchestration/, docs/orchestration.md): dagster, dagster-dbt and
## dagster-webserver into the same venv, pinned in orchestration/requirements.lock, with the main lock as
## a constraint so no main pin moves. `make test` installs it; `make demo` does not need it.
orchestration: $(VENV)/.orchestration-installed

$(VENV)/.orchestration-installed: orchestration/requirements.lock $(STAMP)
	$(BIN)/pip install -q -r orchestration/requirements.lock -c requirements.lock
	touch $@

## Debian's chromium for the docs-site test (tests/python/test_docs_site.py); installed only when
## missing and only as root (otherwise the test is skipped with the reason).
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium not installed and not root: the docs-site test will be skipped"; fi; }

## Apache Superset in its own venv (.venv-bi, pinned in bi/requirements.lock) on the TimescaleDB target as
## mwh_analyst (run `mwh roles` first): init once, serve on 127.0.0.1:8088, provision bi/dashboards/ (docs/bi.md).
bi-venv: .venv-bi/.installed

.venv-bi/.installed: bi/requirements.lock
	test -x .venv-bi/bin/python || $(PYTHON) -m venv .venv-bi
	.venv-bi/bin/pip install -q --upgrade pip
	.venv-bi/bin/pip install -q -r bi/requirements.lock
	touch $@

bi: venv bi-venv
	$(BIN)/python bi/superset_bi.py up

test-bi: venv bi-venv chromium
	$(BIN)/python -m pytest -q -m bi tests/python/bi $(PYTEST_ARGS)

timescaledb:
	bash scripts/timescaledb.sh up

timescaledb-down:
	bash scripts/timescaledb.sh down

## Load and build throughput on every target; prints figures.
bench: venv
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

## The seeds' scale (5M daily bars, 1,000 symbols; data generated under .bench/ by benchmarks/scale/):
## load, full and incremental builds, peak memory, size, latencies, each beside a same-run baseline.
## BENCH_SCALE_ARGS="--size small" for a quick run, "--targets duckdb" for one target.
bench-scale: venv
	$(BIN)/python -m benchmarks.scale.run $(BENCH_SCALE_ARGS)

docs: venv
	$(BIN)/mwh docs

## Lint (part of `make test`; fails on any violation): ruff on the Python (rules in pyproject.toml),
## sqlfluff on the SQL (.sqlfluff; the dbt templater compiles against the profile's DuckDB target,
## here a scratch file, so the user's warehouse is never touched). Two processes: 1 min 51 s instead of 2 min 50 s.
lint: venv
	$(BIN)/ruff check .
	lintdir=$$(mktemp -d) && trap 'rm -rf "$$lintdir"' EXIT && \
	DBT_PROFILES_DIR=$$($(BIN)/python -c 'from market_warehouse.config import profiles_dir; print(profiles_dir())') \
	MWH_TARGET=duckdb MWH_DUCKDB_PATH="$$lintdir/lint.duckdb" DBT_TARGET_PATH="$$lintdir/target" \
	DBT_LOG_PATH="$$lintdir/logs" $(BIN)/sqlfluff lint --processes 2 models macros analyses

clean:
	rm -rf target logs dbt_packages warehouse.duckdb .bench
