"""Fixtures for TimescaleDB's full edition (continuous aggregates, compression, policies).

The tests here need `timescaledb.license = 'timescale'`. scripts/timescaledb.sh provisions that edition;
they skip, saying why, only when the server the tests point at (MWH_TEST_PG_HOST) lacks it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "models"))  # market_fixtures


def conninfo(server: dict, dbname: str) -> str:
    return (f"host={server['host']} port={server['port']} user={server['user']} dbname={dbname}"
            + (f" password={server['password']}" if server["password"] else ""))


@pytest.fixture
def full_edition(pg_server, pg_database, monkeypatch):
    """Factory: a fresh database with the extension on a full-edition server, selected as the
    `timescale` target; skips when the server runs the Apache edition."""
    import os

    def make() -> str:
        name = pg_database(timescale=True)
        with psycopg.connect(conninfo(pg_server, name)) as conn:
            license_ = conn.execute("select current_setting('timescaledb.license', true)").fetchone()[0]
        if license_ != "timescale":
            pytest.skip(f"needs TimescaleDB's full edition: {pg_server['host']}:{pg_server['port']} has "
                        f"timescaledb.license = {license_!r} (scripts/timescaledb.sh up builds the full edition)")
        return name

    monkeypatch.setenv("MWH_PG_HOST", pg_server["host"])
    monkeypatch.setenv("MWH_PG_PORT", str(pg_server["port"]))
    monkeypatch.setenv("MWH_PG_USER", pg_server["user"])
    monkeypatch.setenv("MWH_PG_PASSWORD", pg_server["password"])
    monkeypatch.setenv("MWH_TARGET", "timescale")
    yield make
    os.environ.pop("MWH_PG_DATABASE", None)
