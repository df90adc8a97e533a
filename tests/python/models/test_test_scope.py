"""Data tests on what changed (macros/market/incremental_tables.sql): after an incremental build, a test
of a big market relation checks only the series loaded since the build before, from
mwh_test_scope_days before their first new bar; `mwh_full_tests: true` checks every row. A bad row in
scope fails the scoped test; an old bad row is skipped by it and found by the full scan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
from dbt.cli.main import dbtRunner

from market_fixtures import REPO, Warehouse, dbt, load_sample

SELECT_MODELS = ["--select", "+fct_bars_1d", "int_market__build_marks",
                 "--exclude-resource-type", "test", "unit_test"]
OHLC_TEST = "ohlc_is_consistent_fct_bars_1d_"


def _ohlc_test(full: bool = False) -> tuple[str, int]:
    """Run fct_bars_1d's OHLC test; its status and failing rows."""
    args = ["--no-use-colors", "test", "--select", "fct_bars_1d,test_name:ohlc_is_consistent",
            "--project-dir", str(REPO)]
    if full:
        args += ["--vars", "{mwh_full_tests: true}"]
    result = dbtRunner().invoke(args)
    assert result.result is not None, result.exception
    [row] = [r for r in result.result.results if r.node.name == OHLC_TEST]
    return str(row.status), row.failures or 0


def test_scoped_test_fails_in_scope_and_full_scan_finds_old_rows(duckdb_target):
    wh = Warehouse("duckdb")
    wh.create_raw()
    bars, actions = load_sample(symbols=["AAPL", "KO"], start="2020-01-01", crypto=False)
    cut = pd.Timestamp("2021-04-12", tz="UTC")
    first = bars[bars["ts"] < cut].copy()
    first["loaded_at"] = datetime.now(UTC) - timedelta(days=2)
    new = bars[(bars["ts"] >= cut) & (bars["symbol"] == "AAPL")].copy()   # only AAPL gets new sessions
    assert len(new) > 0
    wh.upsert(first, actions[pd.to_datetime(actions["ex_date"]) < cut.tz_localize(None)])
    dbt("build", *SELECT_MODELS, "--full-refresh")
    new["loaded_at"] = datetime.now(UTC)  # loaded after that build
    wh.upsert(new)
    dbt("build", *SELECT_MODELS)  # incremental: the marks of two builds
    assert wh.query("select count(*) as n from intermediate.int_market__build_marks")["n"][0] == 2

    newest = wh.query("select max(ts) as ts from marts.fct_bars_1d where symbol = 'AAPL'")["ts"][0]
    assert pd.Timestamp(newest) >= cut
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
