"""fct_value_at_risk after one new session (issue #11, the daily incremental build): on DuckDB a series
with few as-of rows to write joins its window's members instead of framing every return it reads. The
rows must be those of a full refresh, to the bit: checked after one new session for four symbols and
the portfolio (KO gets none)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from market_fixtures import Warehouse, assert_frames_match, dbt, load_sample, read_table

SYMBOLS = ["AAPL", "MSFT", "JPM", "XOM", "KO"]
START = "2019-06-01"
VARS = ["--vars", '{"risk_var_window_returns": 20, "risk_backtest_returns": 60}']
SELECT = ["--select", "+fct_value_at_risk", "--exclude-resource-type", "test", "unit_test", *VARS]
KEY = ["series_type", "series_name", "exchange", "as_of_date", "confidence_level"]
MARKS = ["returns_built_at"]


@pytest.mark.parametrize("kind", ["duckdb", pytest.param("timescale", marks=pytest.mark.postgres)])
def test_value_at_risk_new_session_equals_full_refresh(kind, request):
    request.getfixturevalue(f"{kind}_target")
    wh = Warehouse(kind)
    wh.create_raw()
    bars, actions = load_sample(symbols=SYMBOLS, start=START, crypto=False)
    bars = bars[bars["interval"] == "1d"].copy()
    last = bars["ts"].max()
    new = (bars["ts"] == last) & (bars["symbol"] != "KO")
    first = bars[~new & ~((bars["symbol"] == "KO") & (bars["ts"] == last))].copy()
    first["loaded_at"] = datetime.now(UTC) - timedelta(days=2)
    session = bars[new].copy()
    session["loaded_at"] = datetime.now(UTC) + timedelta(minutes=1)
    actions = actions.copy()
    actions["loaded_at"] = first["loaded_at"].iloc[0]

    wh.upsert(first, actions)
    dbt("build", *SELECT, "--full-refresh")
    before = read_table(wh, "marts.fct_value_at_risk", KEY)
    wh.upsert(session, None)
    dbt("build", *SELECT)
    incremental = read_table(wh, "marts.fct_value_at_risk", KEY)
    assert incremental["as_of_date"].max() > before["as_of_date"].max()  # the new session's as-of rows

    dbt("build", *SELECT, "--full-refresh")
    full = read_table(wh, "marts.fct_value_at_risk", KEY)
    assert_frames_match(incremental.drop(columns=MARKS), full.drop(columns=MARKS), f"{kind}:fct_value_at_risk")
