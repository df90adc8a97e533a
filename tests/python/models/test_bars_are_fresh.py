"""The calendar-aware freshness test (tests/generic/bars_are_fresh.sql) and the data-quality mart's
stale_source rows, on every target: the same stale series from two paths, the test on staging itself (on
PostgreSQL each series' newest bar by an index probe, mwh_series_newest) and the mart on a select of the
last bars (an aggregate, indexed=false). Real sample bars that end in 2021 are stale; a series whose last
bar is the last closed XNYS session is not."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from dbt.cli.main import dbtRunner

from market_fixtures import REPO, Warehouse, closed_xnys_sessions, dbt, load_sample

FRESHNESS_TEST = "bars_are_fresh_stg_market__bars_stale_source"
KINDS = ["duckdb", pytest.param("timescale", marks=pytest.mark.postgres),
         pytest.param("postgres", marks=pytest.mark.postgres)]


def _fresh_copy(bars: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """KO's last five bars as `symbol`, on the last five closed sessions."""
    fresh = bars[bars["symbol"] == "KO"].sort_values("ts").tail(5).copy()
    fresh["symbol"] = symbol
    fresh["ts"] = closed_xnys_sessions(5)
    fresh["loaded_at"] = datetime.now(UTC)
    return fresh


def _freshness_failures() -> int:
    result = dbtRunner().invoke(["--no-use-colors", "test", "--select", FRESHNESS_TEST,
                                 "--vars", "{mwh_full_tests: true}", "--project-dir", str(REPO)])
    assert result.result is not None, result.exception
    [row] = [r for r in result.result.results if r.node.name == FRESHNESS_TEST]
    return row.failures or 0


@pytest.mark.parametrize("kind", KINDS)
def test_stale_series_are_the_same_in_the_test_and_the_mart(kind, request):
    request.getfixturevalue(f"{kind}_target")
    wh = Warehouse(kind)
    wh.create_raw()
    bars, actions = load_sample(symbols=["AAPL", "KO", "MSFT"], start="2021-01-01", crypto=False)
    wh.upsert(pd.concat([bars, _fresh_copy(bars, "FRSH")], ignore_index=True), actions)
    dbt("build", "--select", "+fct_data_quality_issues",
        "--exclude-resource-type", "test", "unit_test")

    stale = wh.query("select symbol, bar_interval from marts.fct_data_quality_issues "
                     "where check_name = 'stale_source' order by symbol")
    assert stale.to_dict("records") == [{"symbol": s, "bar_interval": "1d"} for s in ("AAPL", "KO", "MSFT")]
    assert _freshness_failures() == 3  # the same three series; FRSH is fresh

    # A fourth series falls behind: both see it.
    wh.execute("delete from raw.bars where symbol = 'FRSH' and ts >= "
                f"'{closed_xnys_sessions(3)[0].isoformat()}'")
    dbt("build", "--select", "+fct_data_quality_issues", "--full-refresh",
        "--exclude-resource-type", "test", "unit_test")
    assert _freshness_failures() == 4
    stale = wh.query("select symbol from marts.fct_data_quality_issues where check_name = 'stale_source'")
    assert sorted(stale["symbol"]) == ["AAPL", "FRSH", "KO", "MSFT"]
