"""`mwh` as a user runs it: a subprocess, the profile steered by environment variables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "data" / "sample"


def mwh(*args: str, env_extra: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "market_warehouse.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=REPO)


def test_load_csv_reports_each_file_and_exits_nonzero_when_one_fails(duckdb_target):
    bad = SAMPLE / "alphavantage" / "DA-BF.B-T-2021-04-21.csv"
    good = SAMPLE / "alphavantage" / "DA-AAPL-T-2021-04-21.csv.gz"
    res = mwh("load", "csv", str(bad), str(good), "--format", "alphavantage")
    assert res.returncode == 1, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("FAILED") and str(bad) in lines[0] and "JSON" in lines[0]
    assert lines[1].startswith("ok") and "loaded 5402" in lines[1]
    assert any(line.startswith("1/2 sources loaded") for line in lines[-2:]), lines[-2:]
    with duckdb.connect(duckdb_target.path, read_only=True) as con:
        assert con.execute("select count(*) from raw.bars").fetchone()[0] == 5402


def test_load_csv_glob_and_bad_options(duckdb_target):
    res = mwh("load", "csv", str(SAMPLE / "binance_klines" / "FILUSDT-1m-2023-0*.csv.gz"),
              "--format", "binance-klines")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2/2 sources loaded, 83,520 rows read" in res.stdout
    res = mwh("load", "csv", "x.csv", "--format", "alphavantage", "--map", "ts=Date")
    assert res.returncode != 0 and "--map and --time-unit go with --format generic" in res.stderr


def test_build_with_a_project_folder_without_dbt_project_is_one_line(duckdb_target, tmp_path):
    """A wrong MWH_PROJECT_DIR (profiles found, no dbt project there): one line naming the folder and what to
    change, exit 2, and no warehouse file created (dbt's own error was several lines, followed by a
    data-quality report of a warehouse it had not built)."""
    res = mwh("build", env_extra={"MWH_PROJECT_DIR": str(tmp_path), "MWH_DUCKDB_PATH": str(tmp_path / "w.duckdb")})
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stderr.strip() == (f"mwh: configuration: no dbt_project.yml in {tmp_path}: set MWH_PROJECT_DIR to "
                                  "the project folder (the repository root), or unset it"), res.stderr
    assert res.stdout == "" and not (tmp_path / "w.duckdb").exists()
