"""`mwh build` as a process. On the command line it ends with os._exit (market_warehouse/dbt.py, exit_process):
its exit code, its printed report and the database file must be what a normal interpreter exit leaves. While
it runs, Python's collector makes no full pass over dbt's objects (dbt.full_collections_paused), and puts its
thresholds back when the build returns."""

from __future__ import annotations

import json
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

    # no node ran (dbt stopped on the selection): its error is the last output, with no data-quality report of
    # the build before passed off as this one's
    unselected = _mwh(["build", "--selector", "no_such_selector"], env)
    assert unselected.returncode == 1, unselected.stdout + unselected.stderr
    assert "== data quality" not in unselected.stdout, unselected.stdout
    assert "Could not find selector named no_such_selector" in unselected.stdout.strip().splitlines()[-1]


# A fresh interpreter that counts the collector's full (generation 2) passes while `mwh build` runs in it.
COUNT_FULL_PASSES = """
import gc, json, sys
full = []
gc.callbacks.append(lambda phase, info: full.append(1) if phase == "start" and info["generation"] == 2 else None)
before = gc.get_threshold()
from market_warehouse.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "full_passes": len(full), "before": before, "after": gc.get_threshold()}))
"""


def test_build_makes_no_full_collections(duckdb_target):
    env = {**os.environ}
    assert _mwh(["load", "csv", str(AAPL), "--format", "alphavantage"], env).returncode == 0

    done = subprocess.run([sys.executable, "-c", COUNT_FULL_PASSES, "build", "--select", "stg_market__bars+",
                           "--exclude-resource-type", "unit_test"],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["code"] == 0, done.stdout
    # dbt imported, the project parsed, models and tests built: no full pass (7 in an incremental build at 5M
    # bars without the pause), and the process's thresholds as they were once the build returned.
    assert seen["full_passes"] == 0, seen
    assert seen["after"] == seen["before"], seen
