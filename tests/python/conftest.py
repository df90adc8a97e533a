"""Shared fixtures: real databases only.

- DuckDB: a fresh file per test under tmp_path.
- PostgreSQL/TimescaleDB: the server this session starts with scripts/timescaledb.sh (a TimescaleDB in
  a Debian trixie chroot on 127.0.0.1:5433), or your own server if MWH_TEST_PG_HOST is set
  (MWH_TEST_PG_PORT, MWH_TEST_PG_USER, MWH_TEST_PG_PASSWORD; the user must be able to create
  databases). Every test gets its own freshly created database, dropped afterwards.

Targets are selected the way users select them: MWH_* environment variables read by the profile
(profiles.example.yml, copied to a temporary DBT_PROFILES_DIR), so tests exercise the real config path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest

from market_warehouse.config import Target, load_target

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"


# The files that take longest (minutes of dbt builds on several targets), longest first, from
# `pytest --durations` of full runs. `make test` runs files on 2 workers (pytest-xdist, --dist loadfile),
# which hands out files in collection order: starting the longest first keeps one long file from
# running alone at the end while the other worker idles.
LONGEST_FIRST = [
    "models/test_real_history.py", "test_jobs.py", "models/test_market_incremental.py",
    "ml/test_ml_models.py", "ml/test_ml_asof.py", "models/test_selected_builds.py",
    "timescale/test_continuous_aggregates.py", "risk/test_risk_and_metrics.py", "spark/",
    "orchestration/test_dagster.py", "test_semantic_layer.py", "test_demo.py", "test_docs_site.py",
    "models/test_market_sample.py", "test_roles.py",
]


def pytest_collection_modifyitems(config, items):
    """Longest files first (a stable sort: a file's own tests keep their order and their fixtures)."""
    def rank(item) -> int:
        path = item.path.as_posix()
        return next((i for i, part in enumerate(LONGEST_FIRST) if f"tests/python/{part}" in path),
                    len(LONGEST_FIRST))
    items.sort(key=rank)


@pytest.fixture(scope="session", autouse=True)
def _isolated_dbt(tmp_path_factory):
    """A private profiles dir, target dir and log dir, so tests never touch the user's files and
    concurrent runs never share dbt's target/."""
    base = tmp_path_factory.mktemp("dbt")
    shutil.copyfile(REPO / "profiles.example.yml", base / "profiles.yml")
    saved = {k: os.environ.get(k) for k in ("DBT_PROFILES_DIR", "DBT_TARGET_PATH", "DBT_LOG_PATH",
                                             "DO_NOT_TRACK", "MWH_TARGET")}
    os.environ["DBT_PROFILES_DIR"] = str(base)
    os.environ["DBT_TARGET_PATH"] = str(base / "target")
    os.environ["DBT_LOG_PATH"] = str(base / "logs")
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ.pop("MWH_TARGET", None)
    yield base
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def pg_server() -> dict:
    """Connection settings of a PostgreSQL server with the timescaledb extension available."""
    if os.environ.get("MWH_TEST_PG_HOST"):
        server = {
            "host": os.environ["MWH_TEST_PG_HOST"],
            "port": int(os.environ.get("MWH_TEST_PG_PORT", "5432")),
            "user": os.environ.get("MWH_TEST_PG_USER", "postgres"),
            "password": os.environ.get("MWH_TEST_PG_PASSWORD", ""),
        }
    else:
        if os.geteuid() != 0:
            pytest.skip("PostgreSQL tests: not root, so cannot provision the TimescaleDB chroot; "
                        "set MWH_TEST_PG_HOST to use your own server")
        port = int(os.environ.get("MWH_PG_PORT", "5433"))
        proc = subprocess.run(["bash", str(REPO / "scripts" / "timescaledb.sh"), "up"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.fail(f"could not provision TimescaleDB: {proc.stderr[-2000:]}")
        server = {"host": "127.0.0.1", "port": port, "user": "postgres", "password": ""}
    return server


def _admin_conninfo(server: dict, dbname: str = "postgres") -> str:
    return (f"host={server['host']} port={server['port']} user={server['user']} dbname={dbname}"
            + (f" password={server['password']}" if server["password"] else ""))


@pytest.fixture
def pg_database(pg_server):
    """Factory: create a fresh database (with or without the extension); all are dropped at teardown."""
    created: list[str] = []

    def make(timescale: bool) -> str:
        name = f"mwh_test_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(_admin_conninfo(pg_server), autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        created.append(name)
        if timescale:
            with psycopg.connect(_admin_conninfo(pg_server, name), autocommit=True) as conn:
                conn.execute("create extension if not exists timescaledb")
        return name

    yield make
    with psycopg.connect(_admin_conninfo(pg_server), autocommit=True) as conn:
        for name in created:
            conn.execute(f'drop database if exists "{name}" with (force)')


def _pg_env(monkeypatch, server: dict) -> None:
    monkeypatch.setenv("MWH_PG_HOST", server["host"])
    monkeypatch.setenv("MWH_PG_PORT", str(server["port"]))
    monkeypatch.setenv("MWH_PG_USER", server["user"])
    monkeypatch.setenv("MWH_PG_PASSWORD", server["password"])


def _target_path(monkeypatch, name: str) -> None:
    """dbt's target/ per target name: dbt re-parses the whole project when the target changes, so a
    shared target/ re-parsed on every switch between the parametrized targets; one each keeps
    partial parsing."""
    monkeypatch.setenv("DBT_TARGET_PATH", str(Path(os.environ["DBT_TARGET_PATH"]).with_name(f"target-{name}")))


@pytest.fixture
def duckdb_target(tmp_path, monkeypatch) -> Target:
    _target_path(monkeypatch, "duckdb")
    monkeypatch.setenv("MWH_TARGET", "duckdb")
    monkeypatch.setenv("MWH_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    return load_target()


@pytest.fixture
def timescale_target(pg_server, pg_database, monkeypatch) -> Target:
    _pg_env(monkeypatch, pg_server)
    _target_path(monkeypatch, "timescale")
    monkeypatch.setenv("MWH_TARGET", "timescale")
    monkeypatch.setenv("MWH_PG_DATABASE", pg_database(timescale=True))
    return load_target()


@pytest.fixture
def postgres_target(pg_server, pg_database, monkeypatch) -> Target:
    _pg_env(monkeypatch, pg_server)
    _target_path(monkeypatch, "postgres")
    monkeypatch.setenv("MWH_TARGET", "postgres")
    monkeypatch.setenv("MWH_PG_PLAIN_DATABASE", pg_database(timescale=False))
    return load_target()


@pytest.fixture(params=["duckdb", "timescale", "postgres"])
def any_target(request) -> Target:
    """Runs the test once per target."""
    return request.getfixturevalue(f"{request.param}_target")
