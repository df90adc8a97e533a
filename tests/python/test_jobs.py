"""`mwh run`, the scheduled job, as a scheduler runs it: a subprocess, a sources file, real files in a
drop folder, a real warehouse (DuckDB, then TimescaleDB)."""

from __future__ import annotations

import fcntl
import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from market_warehouse.jobs import ADVISORY_LOCK_KEY
from market_warehouse.loaders.sinks import open_sink

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"
AAPL = SAMPLE / "alphavantage" / "DA-AAPL-T-2021-04-21.csv.gz"


def mwh(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "market_warehouse.cli", *args], capture_output=True, text=True,
                          env=dict(os.environ), timeout=timeout, cwd=REPO)


def write_sources(tmp: Path, extra: str = "") -> Path:
    (tmp / "drop" / "av").mkdir(parents=True, exist_ok=True)
    (tmp / "drop" / "ml").mkdir(parents=True, exist_ok=True)
    path = tmp / "sources.yml"
    path.write_text(
        "sources:\n"
        "  - name: av_daily\n    type: files\n    glob: drop/av/*.csv*\n    format: alphavantage\n"
        "  - name: predictions\n    type: ml\n    kind: predictions\n    glob: drop/ml/*.jsonl\n" + extra)
    return path


def split_last_day(tmp: Path) -> tuple[Path, Path]:
    """AAPL's file without its last day (the vendor file is oldest first), and a file of that day."""
    with gzip.open(AAPL, "rt") as fh:
        lines = fh.read().splitlines(keepends=True)
    head, rest, last = lines[0], lines[1:-1], lines[-1]
    assert last.startswith("2021-04-21,")
    older = tmp / "DA-AAPL-T-2021-04-20.csv"
    older.write_text(head + "".join(rest))
    new = tmp / "DA-AAPL-T-2021-04-21.csv"
    new.write_text(head + last)
    return older, new


def job_runs(target) -> list[tuple]:
    with open_sink(target, tables=()) as sink:
        return sink.query("select status, exit_code, rows_loaded, selection, models_built, tests_failed, "
                          "message from raw.job_runs order by started_at")


def run_scenario(target, tmp_path: Path) -> None:
    sources = write_sources(tmp_path)
    older, new = split_last_day(tmp_path)
    shutil.copy(older, tmp_path / "drop" / "av" / older.name)

    # 1. first run: loads the history, builds what bars touch (not the ML models)
    res = mwh("run", "--sources", str(sources))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    runs = job_runs(target)
    assert len(runs) == 1 and runs[0][0] in ("ok", "warn") and runs[0][1] == 0
    assert runs[0][2] == 5401 and runs[0][3] == "source:market.bars+ source:market.corporate_actions+"
    assert runs[0][4] > 10 and runs[0][5] == 0
    with open_sink(target, tables=()) as sink:
        assert sink.query("select count(*) from marts.fct_bars_1d where symbol = 'AAPL'")[0][0] == 5401
        ledger = sink.query("select path, sha256, rows_loaded from raw.file_ledger")
    assert [(Path(p).name, n) for p, _, n in ledger] == [(older.name, 5401)]

    # 2. nothing new: no build, exit 0, recorded
    res = mwh("run", "--sources", str(sources), "--log-format", "json")
    assert res.returncode == 0, res.stdout + res.stderr
    events = [json.loads(line) for line in res.stdout.splitlines()]
    assert events[0]["event"] == "started" and events[-1]["event"] == "finished"
    assert "build" not in {e["event"] for e in events}
    assert "nothing new" in events[-1]["message"] and events[-1]["exit_code"] == 0
    # a touched but unchanged file (new mtime, same bytes) is still skipped, by its SHA-256
    os.utime(tmp_path / "drop" / "av" / older.name, (1e9, 1e9))
    assert "nothing new" in mwh("run", "--sources", str(sources)).stdout

    # 3. one new day arrives: only it is loaded, the bars' models are rebuilt
    shutil.copy(new, tmp_path / "drop" / "av" / new.name)
    res = mwh("run", "--sources", str(sources))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    runs = job_runs(target)
    assert len(runs) == 4 and runs[-1][2] == 1 and runs[-1][3].startswith("source:market.bars+")
    with open_sink(target, tables=()) as sink:
        assert sink.query("select max(ts) from marts.fct_bars_1d where symbol = 'AAPL'")[0][0].date().isoformat() \
            == "2021-04-21"

    # 4. a file that is not what its format says: that source fails, the run exits 1 and says so
    (tmp_path / "drop" / "av" / "broken.csv").write_text('{"Error Message": "Invalid API call"}\n')
    res = mwh("run", "--sources", str(sources))
    assert res.returncode == 1, res.stdout + res.stderr
    assert "failed sources: av_daily" in res.stdout.splitlines()[-1] and "Traceback" not in res.stderr
    assert job_runs(target)[-1][:2] == ("failed", 1)


def test_run_loads_incrementally_and_builds_what_changed_duckdb(duckdb_target, tmp_path):
    run_scenario(duckdb_target, tmp_path)


def test_run_loads_incrementally_and_builds_what_changed_timescale(timescale_target, tmp_path):
    run_scenario(timescale_target, tmp_path)


def test_run_lock_calendar_and_bad_config_duckdb(duckdb_target, tmp_path):
    sources = write_sources(tmp_path)
    # a second instance: one line, exit 3
    with open(f"{duckdb_target.path}.run.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fh.write("pid 1 (the test)")
        fh.flush()
        res = mwh("run", "--sources", str(sources))
    assert res.returncode == 3, res.stdout + res.stderr
    assert res.stdout.strip().count("\n") == 0 and "another mwh run is in progress" in res.stdout
    # a closed session (Saturday 2021-04-24 on XNYS, and Good Friday 2021-04-02): skipped, recorded, exit 0
    for day in ("2021-04-24", "2021-04-02"):
        res = mwh("run", "--sources", str(sources), "--skip-closed", "XNYS", "--session-date", day)
        assert res.returncode == 0 and f"skipped: XNYS has no session on {day}" in res.stdout, res.stdout
    # an open one runs (nothing in the drops: nothing new)
    res = mwh("run", "--sources", str(sources), "--skip-closed", "XNYS", "--session-date", "2021-04-23")
    assert res.returncode == 0 and "nothing new" in res.stdout, res.stdout + res.stderr
    assert [r[0] for r in job_runs(duckdb_target)] == ["skipped", "skipped", "ok"]
    # wrong settings: one line naming the file/entry, exit 2
    res = mwh("run", "--sources", str(sources), "--skip-closed", "XNYZ")
    assert res.returncode == 2 and "--skip-closed XNYZ: not a calendar" in res.stdout, res.stdout
    bad = tmp_path / "bad.yml"
    bad.write_text("sources:\n  - name: x\n    type: files\n    glob: '*.csv'\n    format: csvv\n")
    res = mwh("run", "--sources", str(bad))
    assert res.returncode == 2 and "source 'x': `format` must be one of" in res.stdout, res.stdout
    assert "Traceback" not in res.stderr
    res = mwh("run", "--sources", str(tmp_path / "missing.yml"))
    assert res.returncode == 2 and "sources file not found" in res.stdout


def test_run_advisory_lock_timescale(timescale_target, tmp_path):
    sources = write_sources(tmp_path)
    with psycopg.connect(timescale_target.conninfo(), autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        res = mwh("run", "--sources", str(sources))
    assert res.returncode == 3 and "another mwh run is in progress" in res.stdout, res.stdout + res.stderr
    res = mwh("run", "--sources", str(sources))
    assert res.returncode == 0 and "nothing new" in res.stdout, res.stdout + res.stderr


@pytest.mark.parametrize("kind", ["duckdb"])
def test_example_sources_file_is_valid(kind):
    from market_warehouse.jobs import load_config

    config = load_config(REPO / "examples" / "sources.yml")
    assert {s.type for s in config.sources} == {"files", "yfinance", "ml"}
