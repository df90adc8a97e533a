"""A batch that dies midway leaves no partial rows, and a rerun completes it.

Both ways a load can die are exercised on real databases: the loader process killed with SIGKILL
while its transaction is open, and (PostgreSQL) the server dropping the connection during COPY.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from market_warehouse.loaders.pipeline import load_files
from market_warehouse.loaders.sinks import open_sink

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample"
SMALL = SAMPLE / "binance_klines" / "FILUSDT-1m-2023-02.csv.gz"
BIG_ROWS = 400_000


@pytest.fixture(scope="module")
def big_klines(tmp_path_factory) -> Path:
    """A headerless Binance-format file of 400k one-minute bars (a random walk), big enough that
    writing it takes a while."""
    path = tmp_path_factory.mktemp("big") / "SYNTHUSDT-1m-2020-01.csv"
    rng = np.random.default_rng(7)
    n = BIG_ROWS
    open_time = 1577836800000 + np.arange(n, dtype=np.int64) * 60_000
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 1e-3, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 1e-3, n))
    vol = rng.uniform(1, 1000, n).round(3)
    table = pa.table({
        "open_time": open_time, "open": open_.round(4), "high": high.round(4), "low": low.round(4),
        "close": close.round(4), "volume": vol, "close_time": open_time + 59_999,
        "quote_volume": (vol * close).round(4), "count": rng.integers(1, 500, n),
        "taker_buy_volume": (vol / 2).round(3), "taker_buy_quote_volume": (vol * close / 2).round(4),
        "ignore": np.zeros(n, dtype=np.int64),
    })
    pacsv.write_csv(table, path, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return path


def _env_for(target, group_rows: int | None) -> dict:
    env = dict(os.environ)
    env["MWH_TARGET"] = target.name
    if group_rows:
        env["MWH_LOAD_GROUP_ROWS"] = str(group_rows)
    return env


def _count(target, symbol: str) -> int:
    with open_sink(target) as sink:
        return sink.query("select count(*) from raw.bars where symbol = ?", [symbol])[0][0]


# TimescaleDB's COPY into a hypertable does not report in pg_stat_progress_copy, so watch the
# loader's backend run its COPY statement instead.
COPY_RUNNING = ("select 1 from pg_stat_activity where state = 'active' and query like 'copy raw.bars %%' "
                "and datname = current_database()")


def _copy_in_progress(target, pid: int | None = None) -> bool:
    with psycopg.connect(target.conninfo(), autocommit=True) as conn:
        sql = COPY_RUNNING + (" and pid = %s" if pid else "")
        return bool(conn.execute(sql, (pid,) if pid else None).fetchall())


# Files are written in groups (one transaction per MWH_LOAD_GROUP_ROWS bars). With groups of 30k
# the small file (40,320 bars) commits alone before the big one starts; with the default (1M) both
# files share the killed transaction and neither may leave a row.
@pytest.mark.parametrize("target_name,group_rows,committed_before", [
    ("duckdb", 30_000, 40320), ("timescale", 30_000, 40320), ("postgres", 30_000, 40320),
    ("timescale", None, 0),
])
def test_killed_loader_leaves_no_partial_rows_and_rerun_completes(request, target_name, group_rows,
                                                                  committed_before, big_klines):
    target = request.getfixturevalue(f"{target_name}_target")
    with open_sink(target):
        pass  # create the raw tables first, so the killed run's only open work is its batch
    proc = subprocess.Popen(
        [sys.executable, "-m", "market_warehouse.cli", "-v", "load", "csv", str(SMALL), str(big_klines),
         "--format", "binance-klines"],
        env=_env_for(target, group_rows), stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    marker = f"writing {big_klines}"
    deadline = time.monotonic() + 120
    seen = False
    for line in proc.stderr:
        if marker in line:
            seen = True
            break
        assert time.monotonic() < deadline, "loader never reached the big batch"
    assert seen, f"no '{marker}' in the loader's log"
    if target.type == "postgres":
        while not _copy_in_progress(target):
            assert proc.poll() is None, "the batch finished before it could be killed"
            time.sleep(0.01)
        time.sleep(0.3)  # rows are streaming into the open transaction
    # DuckDB: the marker is logged inside the open transaction; kill at once.
    assert proc.poll() is None, "the batch finished before it could be killed; make it bigger"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    assert _count(target, "FILUSDT") == committed_before  # an earlier group had committed, or not
    assert _count(target, "SYNTHUSDT") == 0  # nothing of the killed batch
    with open_sink(target) as sink:
        reports = load_files(sink, [SMALL, big_klines], "binance-klines")
        assert [(r.status, r.loaded, r.duplicate) for r in reports] == [
            ("success", 40320 - committed_before, committed_before), ("success", BIG_ROWS, 0)]
    assert _count(target, "SYNTHUSDT") == BIG_ROWS


@pytest.mark.parametrize("target_name", ["timescale", "postgres"])
def test_connection_lost_during_copy_leaves_no_partial_rows(request, target_name, big_klines):
    target = request.getfixturevalue(f"{target_name}_target")
    sink = open_sink(target)
    loader_pid = sink.conn.info.backend_pid
    result: list = []
    worker = threading.Thread(target=lambda: result.extend(load_files(sink, [big_klines], "binance-klines")))
    worker.start()
    while not _copy_in_progress(target, loader_pid):
        assert worker.is_alive(), "the load finished before the connection could be cut"
        time.sleep(0.01)
    time.sleep(0.5)  # let rows stream into the open transaction
    assert worker.is_alive(), "the load finished before the connection could be cut"
    with psycopg.connect(target.conninfo(), autocommit=True) as admin:
        admin.execute("select pg_terminate_backend(%s)", (loader_pid,))
    worker.join(timeout=120)
    (report,) = result
    assert report.status == "failed" and str(big_klines) in report.error
    assert _count(target, "SYNTHUSDT") == 0
    with open_sink(target) as fresh:
        (again,) = load_files(fresh, [big_klines], "binance-klines")
    assert (again.status, again.loaded) == ("success", BIG_ROWS)
