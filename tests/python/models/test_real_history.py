"""Data facts warn, pipeline faults stop (issue 7 item 1), on a real history with vendor gaps.

A copy of the bundled Alpha Vantage sample with 27 sessions removed across 5 symbols (single days and
two-day runs, tests/python/models/real_history.py) is loaded with the loader and built with `mwh build`:
- the build succeeds, every model is built, nothing is skipped, and the gaps are warnings;
- fct_data_quality_issues lists exactly the removed sessions as `missing_sessions` rows (consecutive
  sessions collapsed to one range), and the report after the build names them;
- acknowledging one in the `known_data_issues` seed flips is_acknowledged (first_seen_at kept) and
  takes it out of the warn test;
- an invalid OHLC bar written straight into raw.bars (around the loader) is dropped by staging and
  listed (`invalid_bar_dropped`), and the build goes on;
- a broken key (a bar on an exchange the `exchanges` seed does not know, written around the loader)
  stops the build at the relationships test, and nothing downstream is built.

The dbt project is copied to a temporary directory (MWH_PROJECT_DIR) so the test can edit the seed
without touching the repository.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest

from market_warehouse.loaders.pipeline import load_files
from market_warehouse.loaders.schema import BARS
from market_warehouse.loaders.sinks import open_sink

from market_fixtures import copy_project
from real_history import write_gappy_history

BUILD = ["build"]  # `mwh build`, as a user runs it
# Steps 3 and 4 rebuild only what the data-quality mart stands on (staging, adjustment, the daily rollup
# and bars, the gaps, their tests and seeds): the whole project was built once in step 1, and a
# broken key must stop at the staging test whatever is selected downstream.
DQ_BUILD = ["build", "--select", "+fct_data_quality_issues"]


def _run_results() -> list[dict]:
    target_dir = Path(os.environ["DBT_TARGET_PATH"])
    return json.loads((target_dir / "run_results.json").read_text())["results"]


def _market_models() -> set[str]:
    manifest = json.loads((Path(os.environ["DBT_TARGET_PATH"]) / "manifest.json").read_text())
    return {uid for uid, node in manifest["nodes"].items()
            if node["resource_type"] == "model" and "market" in node["tags"]}


def _query(target, sql: str) -> list[tuple]:
    with open_sink(target, tables=()) as sink:
        return sink.query(sql)


def _insert_next_bar(target, symbol: str, changed: dict[str, str]) -> None:
    """Write a bar straight into raw.bars (around the loader): a copy of the symbol's last bar one day
    later, with `changed` columns (SQL expressions over the copied row)."""
    changed = {"ts": "ts + interval '1 day'", "loaded_at": "current_timestamp",
               "run_id": "'around-the-loader'", **changed}
    columns = ", ".join(f'"{c}"' for c in BARS.column_names)
    select = ", ".join(changed.get(c, f'"{c}"') for c in BARS.column_names)
    with open_sink(target) as sink, sink.transaction() as tx:
        tx.execute(f"insert into {BARS.qualified} ({columns}) select {select} from {BARS.qualified} "
                   f"where symbol = '{symbol}' and ts = (select max(ts) from {BARS.qualified} "
                   f"where symbol = '{symbol}')")


def _missing_session_rows(target) -> list[tuple]:
    return _query(target, """
        select symbol, start_date, end_date, issue_count, is_acknowledged, acknowledgement_reason,
               first_seen_at
        from marts.fct_data_quality_issues
        where check_name = 'missing_sessions' and bar_interval = '1d' and is_current
        order by symbol, start_date
    """)


# duckdb and timescale: plain PostgreSQL runs the same postgres__ SQL for everything this test checks
# (staging, gaps, the data-quality mart); its own fallbacks (rollups without continuous aggregates) are
# are built and checked by test_market_incremental[postgres].
@pytest.mark.parametrize("target_name", ["duckdb", "timescale"])
def test_gappy_history_builds_and_reports_gaps(target_name, request, tmp_path, monkeypatch, capsys):
    from market_warehouse.cli import main as mwh

    target = request.getfixturevalue(f"{target_name}_target")
    project = copy_project(tmp_path / "project")
    monkeypatch.setenv("MWH_PROJECT_DIR", str(project))
    files, removed = write_gappy_history(tmp_path / "vendor")
    expected_sessions = {(symbol, d) for symbol, runs in removed.items() for run in runs for d in run}
    expected_runs = {(symbol, run[0], run[-1], len(run)) for symbol, runs in removed.items() for run in runs}
    assert len(expected_sessions) == 27 and len(removed) == 5 and len(expected_runs) == 22

    with open_sink(target) as sink:
        reports = load_files(sink, [str(p) for p in files], "alphavantage")
    assert all(r.status == "success" and r.quarantined == 0 for r in reports), [r.line() for r in reports]

    # 1. `mwh build` succeeds: every model built, no node skipped; the gaps are warnings.
    capsys.readouterr()
    assert mwh(BUILD) == 0, capsys.readouterr().out[-6000:]
    out = capsys.readouterr().out
    results = _run_results()
    statuses = {r["unique_id"]: r["status"] for r in results}
    assert not [u for u, s in statuses.items() if s in ("skipped", "error", "fail")], statuses
    market_models = _market_models()
    assert len(market_models) >= 20
    assert {u: statuses.get(u) for u in market_models if statuses.get(u) != "success"} == {}
    assert "model.market_warehouse.fct_data_quality_issues" in market_models
    daily_gap_test = [r for r in results if "stg_market__bars_daily_complete" in r["unique_id"]]
    assert [(r["status"], r["failures"]) for r in daily_gap_test] == [("warn", 27)]

    # 2. The mart lists exactly the removed sessions, consecutive ones as one range.
    rows = _missing_session_rows(target)
    assert {(s, a, b, n) for s, a, b, n, *_ in rows} == expected_runs
    assert not any(r[4] for r in rows)  # none acknowledged yet
    listed = {(symbol, d) for (symbol, d) in _query(target, """
        select issues.symbol, sessions.session_date
        from marts.fct_data_quality_issues as issues
        inner join marts.dim_trading_sessions as sessions
            on sessions.calendar = 'XNYS'
            and sessions.session_date between issues.start_date and issues.end_date
        where issues.check_name = 'missing_sessions' and issues.bar_interval = '1d' and issues.is_current
    """)}
    assert listed == expected_sessions
    # the report after the build names the check, its count and the symbols
    report = out.split("== data quality", 1)[1]
    line = next(x for x in report.splitlines() if x.strip().startswith("missing_sessions"))
    assert line.split()[1:3] == ["22", "0"], line
    assert all(f"{s} (" in line for s in ("AAPL", "F", "JPM", "KO", "MSFT")), line
    assert "stg_market__bars_daily_complete" in report and "27 row(s)" in report

    # 3. Acknowledging one run in the seed flips it; first_seen_at is kept; the warn test leaves it out.
    #    Meanwhile an invalid OHLC bar (high below low) written straight into raw.bars, around the
    #    loader's validation, is dropped by staging and recorded, never silently.
    symbol, first, last, n = min(r for r in expected_runs if r[3] == 2)
    first_seen = {(r[0], r[1]): r[6] for r in rows}
    with open(project / "seeds" / "known_data_issues.csv", "a") as f:
        f.write(f'{symbol},US,missing_sessions,{first},{last},"vendor file lacks these sessions (test)"\n')
    _insert_next_bar(target, "IBM", {"high": "low * 0.9"})
    assert mwh(DQ_BUILD) == 0, capsys.readouterr().out[-6000:]
    out = capsys.readouterr().out
    rows = _missing_session_rows(target)
    assert len(rows) == 22
    flipped = [r for r in rows if r[4]]
    assert [(r[0], r[1], r[2]) for r in flipped] == [(symbol, first, last)]
    assert flipped[0][5] == "vendor file lacks these sessions (test)"
    assert {(r[0], r[1]): r[6] for r in rows} == first_seen
    daily_gap_test = [r for r in _run_results() if "stg_market__bars_daily_complete" in r["unique_id"]]
    assert [(r["status"], r["failures"]) for r in daily_gap_test] == [("warn", 27 - n)]
    line = next(x for x in out.split("== data quality", 1)[1].splitlines()
                if x.strip().startswith("missing_sessions"))
    assert line.split()[1:3] == ["21", "1"], line
    assert _query(target, "select symbol, start_date, issue_count from marts.fct_data_quality_issues "
                          "where check_name = 'invalid_bar_dropped'") == [("IBM", date(2021, 4, 22), 1)]
    assert _query(target, "select count(*) from marts.fct_bars_1d where symbol = 'IBM' "
                          "and session_date = '2021-04-22'") == [(0,)]

    # 4. A pipeline fault still stops the build: a bar written straight into raw.bars, around the
    #    loader's validation, on an exchange the `exchanges` seed does not know (a broken key: the
    #    relationships test on stg_market__bars). (An invalid OHLC bar cannot reach a mart that way:
    #    stg_market__bars drops rows breaking the OHLC invariants, which the loader quarantines.)
    _insert_next_bar(target, "XOM", {"exchange": "'NOWHERE'"})
    assert mwh(DQ_BUILD) == 1
    out = capsys.readouterr().out
    results = _run_results()
    failed = {r["unique_id"] for r in results if r["status"] in ("fail", "error")}
    assert any(u.startswith("test.market_warehouse.relationships_stg_market__bars_exchange_") for u in failed), failed
    assert any(r["status"] == "skipped" for r in results)  # nothing built on the broken key
    report = out.split("== data quality", 1)[1]
    assert "stopped the build" in report and "relationships_stg_market__bars_exchange" in report
    # the data-quality mart of the last good build is still there
    assert len(_missing_session_rows(target)) == 22
