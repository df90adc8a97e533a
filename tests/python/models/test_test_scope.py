"""Data tests on what changed (macros/market/incremental_tables.sql, macros/market/test_scope.sql): after
an incremental build, a test of a big market relation checks only the series loaded since the build
before, from mwh_test_scope_days before their first new bar; the completeness and rollup tests check the
same series from mwh_test_lookback_days before; `mwh_full_tests: true` checks every row. A bad row in
scope fails the scoped test; an old bad row is skipped by it and found by the full scan. On every
target: the changed series are written into each test as constants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from dbt.cli.main import dbtRunner

from market_fixtures import REPO, Warehouse, dbt, load_sample

SELECT_MODELS = ["--select", "+fct_bars_1d", "int_market__build_marks",
                 "--exclude-resource-type", "test", "unit_test"]
OHLC_TEST = "ohlc_is_consistent_fct_bars_1d_"


KINDS = ["duckdb", pytest.param("timescale", marks=pytest.mark.postgres),
         pytest.param("postgres", marks=pytest.mark.postgres)]


def _run_test(select: str, name: str, full: bool = False) -> tuple[str, int]:
    """Run the data test `name` (selected by `select`); its status and failing rows."""
    args = ["--no-use-colors", "test", "--select", select, "--project-dir", str(REPO)]
    if full:
        args += ["--vars", "{mwh_full_tests: true}"]
    result = dbtRunner().invoke(args)
    assert result.result is not None, result.exception
    [row] = [r for r in result.result.results if r.node.name == name]
    return str(row.status), row.failures or 0


def _ohlc_test(full: bool = False) -> tuple[str, int]:
    """Run fct_bars_1d's OHLC test; its status and failing rows."""
    return _run_test("fct_bars_1d,test_name:ohlc_is_consistent", OHLC_TEST, full)


CUT = pd.Timestamp("2021-04-12", tz="UTC")


def _built_twice(kind: str, models: list[str]) -> Warehouse:
    """AAPL and KO daily bars up to CUT, loaded two days ago and built with `models` (a full refresh); then
    AAPL's sessions from CUT on, loaded now and built again (incremental): the build marks of two builds,
    with only AAPL changed since the one before."""
    wh = Warehouse(kind)
    wh.create_raw()
    bars, actions = load_sample(symbols=["AAPL", "KO"], start="2020-01-01", crypto=False)
    first = bars[bars["ts"] < CUT].copy()
    first["loaded_at"] = datetime.now(UTC) - timedelta(days=2)
    new = bars[(bars["ts"] >= CUT) & (bars["symbol"] == "AAPL")].copy()   # only AAPL gets new sessions
    assert len(new) > 0
    wh.upsert(first, actions[pd.to_datetime(actions["ex_date"]) < CUT.tz_localize(None)])
    dbt("build", *models, "--full-refresh")
    new["loaded_at"] = datetime.now(UTC)  # loaded after that build
    wh.upsert(new)
    dbt("build", *models)  # incremental: the marks of two builds
    assert wh.query("select count(*) as n from intermediate.int_market__build_marks")["n"][0] == 2
    return wh


@pytest.mark.parametrize("kind", KINDS)
def test_scoped_test_fails_in_scope_and_full_scan_finds_old_rows(kind, request):
    request.getfixturevalue(f"{kind}_target")
    wh = _built_twice(kind, SELECT_MODELS)

    newest = wh.query("select max(ts) as ts from marts.fct_bars_1d where symbol = 'AAPL'")["ts"][0]
    assert pd.Timestamp(newest) >= CUT
    assert _ohlc_test() == ("pass", 0)

    def corrupt(where: str) -> None:  # high and low swapped: breaks the OHLC invariant (again: repaired)
        wh.execute(f"update marts.fct_bars_1d set high = low, low = high where {where}")

    repair = corrupt

    recent = f"symbol = 'AAPL' and ts = '{pd.Timestamp(newest).isoformat()}'"
    corrupt(recent)
    assert _ohlc_test() == ("fail", 1), "a bad bar among the new ones must fail the scoped test"
    repair(recent)

    # outside the scope: an AAPL bar a year before its new bars, and KO (nothing loaded since) yesterday
    old = ("(symbol = 'AAPL' and ts = (select min(ts) from marts.fct_bars_1d where symbol = 'AAPL'))"
           " or (symbol = 'KO' and ts = (select max(ts) from marts.fct_bars_1d where symbol = 'KO'))")
    corrupt(old)
    assert _ohlc_test() == ("pass", 0), "the scoped test reads only what the last build could write"
    assert _ohlc_test(full=True) == ("fail", 2), "the full scan (nightly) finds the old bad bars"

    # not_null and accepted_range: unscoped on a DuckDB table (its zone maps answer them), scoped on a view
    # (the training set joins features and labels: unscoped, each test computed the whole join)
    compiled = _compiled_tests(["not_null_fct_bars_1d_ts", "not_null_fct_training_set_daily_ts"])
    assert "mwh_test_scope" in compiled["not_null_fct_training_set_daily_ts"]
    assert ("mwh_test_scope" in compiled["not_null_fct_bars_1d_ts"]) == (kind != "duckdb")


def _compiled_tests(names: list[str]) -> dict[str, str]:
    """The SQL of the data tests `names` as this build's warehouse compiles them."""
    result = dbtRunner().invoke(["--no-use-colors", "compile", "--select", *names, "--project-dir", str(REPO)])
    assert result.result is not None, result.exception
    return {r.node.name: r.node.compiled_code for r in result.result.results if r.node.name in names}


COMPLETE_TEST = "stg_market__bars_1m_complete"
ROLLUP_TEST = "rollup_reconciles_int_market__bars_rolled_up_1h_1_hour__ref_stg_market__bars_"
MINUTE_MODELS = ["--select", "+int_market__bars_rolled_up_1h", "int_market__build_marks", "exchanges", "known_data_issues",
                 "+int_market__trading_sessions", "--exclude-resource-type", "test", "unit_test"]


@pytest.mark.parametrize("kind", KINDS)
def test_completeness_and_rollup_tests_check_the_changed_series(kind, request):
    """The 1m completeness test and the 1h rollup reconciliation check, after an incremental build, the
    series loaded since the build before from mwh_test_lookback_days before its first new bar (not
    the loads of the last mwh_test_window_hours): a bar missing from, or changed in, the new day fails
    them; the same fault in February is left to the full scan."""
    request.getfixturevalue(f"{kind}_target")
    wh = Warehouse(kind)
    wh.create_raw()
    bars, actions = load_sample(symbols=["KO"], start="2023-01-01")   # KO daily, FILUSDT 1m (Feb, Apr 2023)
    cut = pd.Timestamp("2023-04-30", tz="UTC")
    minute = bars["interval"] == "1m"
    first = bars[~minute | (bars["ts"] < cut)].copy()
    first["loaded_at"] = datetime.now(UTC) - timedelta(hours=2)   # within mwh_test_window_hours
    new = bars[minute & (bars["ts"] >= cut)].copy()
    assert len(new) > 1000
    wh.upsert(first, actions)
    dbt("build", *MINUTE_MODELS, "--full-refresh")
    new["loaded_at"] = datetime.now(UTC)
    wh.upsert(new)
    dbt("build", *MINUTE_MODELS)
    complete = (COMPLETE_TEST, COMPLETE_TEST)
    rollup = (ROLLUP_TEST, ROLLUP_TEST)
    assert _run_test(*complete) == ("pass", 0)
    assert _run_test(*rollup) == ("pass", 0)

    def bar(ts: str) -> str:
        return f"symbol = 'FILUSDT' and bar_interval = '1m' and ts = timestamptz '{ts}+00'"

    for ts, in_scope in (("2023-04-30 12:07:00", True), ("2023-02-15 12:07:00", False)):
        wh.execute(f"update staging.stg_market__bars set volume = volume + 1 where {bar(ts)}")
        assert _run_test(*rollup) == (("fail", 1) if in_scope else ("pass", 0)), ts
        assert _run_test(*rollup, full=True) == ("fail", 1), ts
        wh.execute(f"update staging.stg_market__bars set volume = volume - 1 where {bar(ts)}")
    assert _run_test(*rollup, full=True) == ("pass", 0)
    # the open of an hour is its first minute's, the close its last minute's: a changed one fails it, a
    # changed open of a minute inside the hour does not
    for column, ts, fails in (("open", "2023-04-30 12:00:00", True), ("close", "2023-04-30 12:59:00", True),
                              ("open", "2023-04-30 12:30:00", False)):
        wh.execute(f"update staging.stg_market__bars set {column} = {column} * 1.001 where {bar(ts)}")
        assert _run_test(*rollup) == (("fail", 1) if fails else ("pass", 0)), (column, ts)
        wh.execute(f"update staging.stg_market__bars set {column} = {column} / 1.001 where {bar(ts)}")

    wh.execute(f"delete from staging.stg_market__bars where {bar('2023-04-30 12:07:00')}")
    assert _run_test(*complete) == ("warn", 1), "a bar missing from the new day fails the scoped test"
    wh.execute(f"delete from staging.stg_market__bars where {bar('2023-02-15 12:07:00')}")
    assert _run_test(*complete) == ("warn", 1), "February is out of the scope"
    assert _run_test(*complete, full=True) == ("warn", 2), "the full scan (nightly) finds both"


RETURNS = "intermediate.int_risk__daily_returns_unioned"
RETURN_MODELS = ["--select", "+int_risk__daily_returns_unioned", "int_market__build_marks",
                 "--exclude-resource-type", "test", "unit_test"]
GRAIN = "unique_combination_int_risk__daily_returns_unioned_series_type__series_name__exchange__{}__changed_return_series"


@pytest.mark.parametrize("kind", KINDS)
def test_return_grain_tests_check_the_changed_keys_against_every_row(kind, request):
    """The grain tests of the daily returns (scope 'changed_return_series'), after an incremental build,
    check the keys of the rows the build may have written against every row: an old row that takes a
    new row's session or return index fails them; a duplicate among old rows of an unchanged symbol is
    left to the full scan."""
    request.getfixturevalue(f"{kind}_target")
    wh = _built_twice(kind, RETURN_MODELS)

    def grain(column: str, full: bool = False) -> tuple[str, int]:
        return _run_test("int_risk__daily_returns_unioned,test_name:unique_combination", GRAIN.format(column), full)

    assert grain("session_date") == ("pass", 0) and grain("return_index") == ("pass", 0)
    aapl = "series_type = 'symbol' and series_name = 'AAPL'"
    first_date, first_index, newest_date, newest_index = wh.query(
        f"select min(session_date) as d0, min(return_index) as i0, max(session_date) as d1, max(return_index) as i1"
        f" from {RETURNS} where {aapl}").iloc[0]

    def day(value) -> str:
        return f"date '{pd.Timestamp(value).date()}'"

    # the oldest row on the newest session, then with the newest return index: both collide with a new row
    wh.execute(f"update {RETURNS} set session_date = {day(newest_date)} where {aapl} and return_index = {first_index}")
    assert grain("session_date") == ("fail", 1), "an old row on a new row's session is found"
    wh.execute(f"update {RETURNS} set session_date = {day(first_date)} where {aapl} and return_index = {first_index}")
    wh.execute(f"update {RETURNS} set return_index = {newest_index} where {aapl} and session_date = {day(first_date)}")
    assert grain("return_index") == ("fail", 1), "an old row with a new row's return index is found"
    wh.execute(f"update {RETURNS} set return_index = {first_index} where {aapl} and session_date = {day(first_date)}")
    assert grain("session_date") == ("pass", 0) and grain("return_index") == ("pass", 0)

    # KO, loaded before the build before: two of its old rows on one session is the full scan's to find
    ko = "series_type = 'symbol' and series_name = 'KO'"
    wh.execute(f"update {RETURNS} set session_date = (select session_date from {RETURNS} where {ko} "
               f"and return_index = 2) where {ko} and return_index = 1")
    assert grain("session_date") == ("pass", 0), "the scoped test reads the keys the last build could write"
    assert grain("session_date", full=True) == ("fail", 1), "the full scan (nightly) finds the old duplicate"
