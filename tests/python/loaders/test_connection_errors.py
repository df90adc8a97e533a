"""Connection problems end in one line naming what is wrong and the setting to change, never a traceback.

Real failures only: a DuckDB path in a folder that does not exist, a port where no server listens, a
database and a user the real PostgreSQL server does not have. `mwh` is run as a user runs it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def _mwh(args: list[str], env: dict) -> subprocess.CompletedProcess:
    full = {**os.environ, **env}
    return subprocess.run([sys.executable, "-m", "market_warehouse.cli", *args], cwd=REPO, env=full,
                          capture_output=True, text=True, timeout=300)


def _one_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", [["summary"], ["status"], ["runs", "list"],
                                     ["load", "csv", "data/sample/alphavantage/*.csv.gz",
                                      "--format", "alphavantage"]])
def test_duckdb_path_in_missing_folder(tmp_path, command):
    missing = tmp_path / "no" / "such" / "folder" / "w.duckdb"
    line = _one_line(_mwh(command, {"MWH_TARGET": "duckdb", "MWH_DUCKDB_PATH": str(missing)}))
    assert str(missing.parent) in line and "does not exist" in line and "MWH_DUCKDB_PATH" in line
    assert not missing.parent.exists()


@pytest.mark.parametrize("command", [["summary"], ["status"], ["build", "--select", "staging"], ["docs"]])
def test_no_server(command):
    port = _free_port()
    line = _one_line(_mwh(command, {"MWH_TARGET": "timescale", "MWH_PG_HOST": "127.0.0.1",
                                    "MWH_PG_PORT": str(port)}))
    assert f"127.0.0.1:{port}" in line and "MWH_PG_HOST/MWH_PG_PORT" in line
    assert "no PostgreSQL server answers" in line


@pytest.mark.parametrize("target, variable", [("timescale", "MWH_PG_DATABASE"),
                                              ("postgres", "MWH_PG_PLAIN_DATABASE")])
def test_wrong_database(pg_server, target, variable):
    env = {"MWH_TARGET": target, "MWH_PG_HOST": pg_server["host"], "MWH_PG_PORT": str(pg_server["port"]),
           "MWH_PG_USER": pg_server["user"], "MWH_PG_PASSWORD": pg_server["password"],
           variable: "mwh_no_such_database"}
    line = _one_line(_mwh(["summary"], env))
    assert "'mwh_no_such_database' does not exist" in line and variable in line


def test_wrong_user(pg_server):
    env = {"MWH_TARGET": "timescale", "MWH_PG_HOST": pg_server["host"], "MWH_PG_PORT": str(pg_server["port"]),
           "MWH_PG_USER": "mwh_no_such_user", "MWH_PG_PASSWORD": ""}
    line = _one_line(_mwh(["summary"], env))
    assert "mwh_no_such_user" in line and "MWH_PG_USER" in line


def test_status_of_a_missing_duckdb_file(tmp_path):
    missing = tmp_path / "nothing-loaded.duckdb"
    line = _one_line(_mwh(["status"], {"MWH_TARGET": "duckdb", "MWH_DUCKDB_PATH": str(missing)}))
    assert f"no warehouse at {missing}" in line and "MWH_DUCKDB_PATH" in line
    assert not missing.exists()
