"""The incremental daily union, daily returns and value at risk (issue #11): after one new session (on
DuckDB fct_value_at_risk joins the few as-of rows' window members instead of framing every return), then
more sessions, a late bar, a corrected bar and a late dividend, incremental builds write exactly the rows
a full refresh writes, while the series nothing changed in keep the rows of the build before. MSFT's
as-of row of the one-session build is not rewritten by the later one, so the final comparison covers it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from market_fixtures import Warehouse, assert_frames_match, dbt, load_sample, read_table

SYMBOLS = ["AAPL", "MSFT", "JPM", "XOM", "KO"]  # the portfolio's four, and KO (no new bars)
START = "2019-06-01"
CUT = pd.Timestamp("2021-03-15", tz="UTC")
LATE = ("JPM", pd.Timestamp("2021-03-11", tz="UTC"))       # arrives with the second load
CORRECTED = ("XOM", pd.Timestamp("2021-03-09", tz="UTC"))  # sent wrong first, corrected later
# small windows: the as-of rows fall out of the backtest and whole windows are re-read on a rewrite
VARS = ["--vars", '{"risk_var_window_returns": 20, "risk_backtest_returns": 60}']
SELECT = ["--select", "+fct_var_backtest", "--exclude-resource-type", "test", "unit_test", *VARS]
MARKS = ["checked_through_loaded_at", "built_at", "returns_built_at"]
KEYED = {
    "intermediate.int_market__bars_unioned_1d": ["symbol", "exchange", "ts"],
    "intermediate.int_risk__daily_returns_unioned": ["series_type", "series_name", "exchange", "session_date"],
    "marts.fct_value_at_risk": ["series_type", "series_name", "exchange", "as_of_date", "confidence_level"],
    "marts.fct_var_backtest": ["series_type", "series_name", "exchange", "confidence_level", "var_method"],
}


def _loads():
    bars, actions = load_sample(symbols=SYMBOLS, start=START, crypto=False)
    bars = bars[bars["interval"] == "1d"].copy()
    earlier = datetime.now(UTC) - timedelta(days=2)
    later = datetime.now(UTC) + timedelta(minutes=1)
    late = (bars["symbol"] == LATE[0]) & (bars["ts"] == LATE[1])
    second = ((bars["ts"] >= CUT) & (bars["symbol"] != "KO")) | late
    first = bars[~second & ~((bars["symbol"] == "KO") & (bars["ts"] >= CUT))].copy()
    first["loaded_at"] = earlier
    wrong = (first["symbol"] == CORRECTED[0]) & (first["ts"] == CORRECTED[1])
    assert wrong.sum() == 1 and late.sum() == 1
    correction = first[wrong].copy()
    first.loc[wrong, ["open", "high", "low", "close"]] *= 1.1
    # the first session after the cut comes alone (its own build), the rest after it
    session_ts = bars.loc[bars["ts"] >= CUT, "ts"].min()
    alone = second & (bars["ts"] == session_ts) & ~late
    session = bars[alone].copy()
    session["loaded_at"] = later - timedelta(seconds=30)
    later_bars = pd.concat([bars[second & ~alone], correction], ignore_index=True)
    later_bars["loaded_at"] = later

    actions = actions.copy()
    actions["loaded_at"] = earlier
    ex = pd.to_datetime(actions["ex_date"])
    late_dividend = (actions["symbol"] == "AAPL") & (actions["action"] == "dividend") & (ex.dt.year == 2020)
    late_dividend &= late_dividend.cumsum() == 1
    assert late_dividend.sum() == 1
    first_actions = actions[(ex < CUT.tz_localize(None)) & ~late_dividend]
    actions.loc[late_dividend, "loaded_at"] = later
    return first, session, later_bars, first_actions, actions


@pytest.mark.parametrize("kind", [
    "duckdb",
    pytest.param("timescale", marks=pytest.mark.postgres),
    pytest.param("postgres", marks=pytest.mark.postgres),
])
def test_risk_incremental_equals_full_refresh(kind, request):
    request.getfixturevalue(f"{kind}_target")
    started = time.monotonic()
    wh = Warehouse(kind)
    wh.create_raw()
    first, session, second, first_actions, all_actions = _loads()
    wh.upsert(first, first_actions)
    dbt("build", *SELECT, "--full-refresh")
    first_built = wh.query("select max(built_at) as b from intermediate.int_risk__daily_returns_unioned")["b"][0]

    wh.upsert(session, None)
    dbt("build", *SELECT)
    var_key = KEYED["marts.fct_value_at_risk"]
    one_session = read_table(wh, "marts.fct_value_at_risk", var_key)
    one_session = one_session[one_session["series_name"] == "MSFT"]  # nothing later changes MSFT up to here
    session_date = session["ts"].min().date()
    assert (pd.to_datetime(one_session["as_of_date"]).dt.date == session_date).any()

    wh.upsert(second, all_actions)
    dbt("build", *SELECT)
    incremental = {rel: read_table(wh, rel, key) for rel, key in KEYED.items()}

    # incremental: KO (nothing new) and MSFT's returns before the new sessions are the first build's rows;
    # AAPL's late dividend rewrote its whole series
    returns = incremental["intermediate.int_risk__daily_returns_unioned"]
    kept = pd.to_datetime(returns["built_at"], utc=True) == pd.to_datetime(first_built, utc=True)
    name = returns["series_name"]
    before_cut = pd.to_datetime(returns["session_date"], utc=True) < CUT - timedelta(days=14)
    assert kept[name == "KO"].all()
    assert kept[(name == "MSFT") & before_cut].all() and not kept[name == "MSFT"].all()
    assert not kept[name == "AAPL"].any()
    assert not kept[name == "us_large_caps"].all()

    dbt("build", *SELECT, "--full-refresh")
    full_var = read_table(wh, "marts.fct_value_at_risk", var_key)
    full_var = full_var[(full_var["series_name"] == "MSFT")
                        & (pd.to_datetime(full_var["as_of_date"]).dt.date <= session_date)]
    # as-of rows older than the backtest window are dropped as sessions arrive: compare the ones both hold
    both = one_session[var_key].merge(full_var[var_key], on=var_key)
    at_session = pd.to_datetime(one_session["as_of_date"]).dt.date == session_date
    assert at_session.any() and (pd.to_datetime(both["as_of_date"]).dt.date == session_date).any()
    # the session's outcome columns (the next session, breaches) are unknown until the next session comes
    unknown = [c for c in one_session.columns if one_session.loc[at_session, c].isna().all()]
    assert "historical_var" not in unknown and "window_size" not in unknown and len(unknown) < 6, unknown
    assert_frames_match(one_session.merge(both, on=var_key).drop(columns=MARKS + unknown, errors="ignore"),
                        full_var.merge(both, on=var_key).drop(columns=MARKS + unknown, errors="ignore"),
                        f"{kind}:fct_value_at_risk after one session")
    for rel, key in KEYED.items():
        full = read_table(wh, rel, key)
        inc = incremental[rel]
        assert_frames_match(inc.drop(columns=[c for c in MARKS if c in inc]),
                            full.drop(columns=[c for c in MARKS if c in full]), f"{kind}:{rel}")
    print(f"\n[{kind}] risk incremental == full refresh: {time.monotonic() - started:.1f}s")
