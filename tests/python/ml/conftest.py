"""Fixtures of the ML lifecycle tests: a sink on the conftest targets with the ML tables created."""

from __future__ import annotations

import pytest

from market_warehouse.ml.db import open_ml_sink


@pytest.fixture
def ml_duckdb(duckdb_target):
    with open_ml_sink(duckdb_target) as sink:
        yield sink


@pytest.fixture
def ml_timescale(timescale_target):
    with open_ml_sink(timescale_target) as sink:
        yield sink


@pytest.fixture
def ml_postgres(postgres_target):
    with open_ml_sink(postgres_target) as sink:
        yield sink


@pytest.fixture(params=["duckdb", "timescale"])
def ml_any(request):
    """DuckDB, and PostgreSQL with TimescaleDB (plain PostgreSQL shares the postgres code path and is
    covered by the dbt test)."""
    yield request.getfixturevalue(f"ml_{request.param}")
