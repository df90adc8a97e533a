"""`mwh build` on the command line ends with os._exit (market_warehouse/dbt.py, exit_process): its exit code,
its printed report and the database file must be what a normal interpreter exit leaves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[3]
AAPL = REPO / "data" / "sample" / "alphavantage" / "DA-AAPL-T-2021-04-21.csv.gz"
MWH = [sys.executable, "-m", "market_warehouse.cli"]


def _mwh(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([*MWH, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_build_exit_keeps_code_output_and_data(duckdb_target, tmp_path):
    env = {**os.environ}
    path = Path(env["MWH_DUCKDB_PATH"])
    assert _mwh(["load", "csv", str(AAPL), "--format", "alphavantage"], env).returncode == 0

    done = _mwh(["build", "--select", "stg_market__bars", "--exclude-resource-type", "test",
                 "--exclude-resource-type", "unit_test"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "== data quality" in done.stdout  # printed after dbt, flushed before the exit
    assert not Path(f"{path}.wal").exists()  # dbt's connection closed: the build's writes are in the file
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("select count(*) from staging.stg_market__bars").fetchone()[0] > 5000

    failed = _mwh(["build", "--select", "stg_market__bars", "--no-such-dbt-flag"], env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
