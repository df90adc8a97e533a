"""Incremental daily marts on whole histories (about 5,400 bars a symbol): longer than the features'
read-back (the longest window, 252 earlier bars), the exponential averages' window (ewm_window_bars 600; the state
model int_market__ewm_states_daily continues each symbol from its stored row, reading one bar back) and
the labels' 20 bars, so the incremental run takes the bounded path of mwh_bars_to_rewrite (the bars
before the rewrite point found per symbol, the bars read numbered from their count, never a numbering of
the whole history). Its rows must be those of a full refresh, and the averages it writes must continue
the stored state (a changed stored row changes the next bar's average by the recursion's step). tests/python/models/test_market_incremental.py covers late dividends, minute bars and the other
marts on a shorter history (700 bars a symbol: every feature run reads from the first bar there)."""

from __future__ import annotations

import pandas as pd
import pytest

from market_fixtures import (
    Warehouse,
    assert_frames_match,
    build_then_load_incrementally,
    dbt,
    load_sample,
    read_table,
)

SYMBOLS = ["AAPL", "KO"]
# v2, the table every daily feature is computed in (v1 is a view of it): the longest windows (252 bars)
# are v2's, so the read-back is checked where it is longest
SELECTION = ["--select", "+fct_features_daily.v2", "+fct_labels_daily",
             "--exclude-resource-type", "test", "unit_test"]
STATES = "intermediate.int_market__ewm_states_daily"
KEYED = ["marts.fct_bars_1d", "marts.fct_labels_daily", "marts.fct_features_daily_v2", STATES]
KEY = ["symbol", "exchange", "ts"]


@pytest.mark.parametrize("kind", ["duckdb", pytest.param("timescale", marks=pytest.mark.postgres)])
def test_long_history_incremental_equals_full_refresh(kind, request):
    request.getfixturevalue(f"{kind}_target")
    wh = Warehouse(kind)
    wh.create_raw()
    bars, actions = load_sample(symbols=SYMBOLS, crypto=False)
    cut = pd.Timestamp("2021-04-12", tz="UTC")
    late = (bars["symbol"] == "KO") & (bars["ts"] == pd.Timestamp("2021-04-08", tz="UTC"))
    first = bars[(bars["ts"] < cut) & ~late]
    second = bars[(bars["ts"] >= cut) | late]  # the incremental run: the new sessions and KO's late bar
    assert first.groupby("symbol").size().min() > 2_600  # beyond the features' read-back
    check_incremental_equals_full_refresh(wh, first, second, actions, len(bars), kind)
    check_states_continue_from_stored_row(wh, kind)


def check_incremental_equals_full_refresh(wh: Warehouse, first: pd.DataFrame, second: pd.DataFrame,
                                          actions: pd.DataFrame, n_bars: int, what: str) -> None:
    """The KEYED marts after `first` (full refresh) then `second` (incremental) are those a full refresh of
    both computes: within assert_frames_match's tolerance, not to the bit (on DuckDB one macd_signal_9 of
    10,800 differs in its last bits between incremental and full refresh, with the previous whole-history
    numbering as with this one: the same value and row, measured on both)."""
    build_then_load_incrementally(wh, first, second, actions, SELECTION)
    incremental = {rel: read_table(wh, rel, KEY) for rel in KEYED}
    dbt("build", *SELECTION, "--full-refresh")
    for rel in KEYED:
        full = read_table(wh, rel, KEY)
        assert len(full) == n_bars, rel
        assert_frames_match(incremental[rel], full, f"{what}:{rel}")


def check_states_continue_from_stored_row(wh: Warehouse, kind: str) -> None:
    """The state model reads its stored row of the bar before the rewrite point (here > 5,000 bars into
    KO's history, far beyond the 600-bar window) and continues from it: change that row, rerun, and KO's
    first rewritten bar must be one recursion step from the changed values, y = y_b + alpha (x - y_b).
    Fails if the stored row is ignored (recomputed from the first bar: the old value) or seeded wrongly."""
    states = read_table(wh, STATES, KEY)
    ko = states[states["symbol"] == "KO"].reset_index(drop=True)
    # the run rewrites from features_late_window_days (7) before the newest bar; b is the bar before that
    b = int((ko["ts"] < ko["ts"].max() - pd.Timedelta(days=7)).sum()) - 1
    assert b > 5_000 and ko.loc[b, "bar_index"] == b
    changed = {"ema_fast_12": 1.5, "ema_slow_26": 0.5, "macd_signal": 3.0}
    wh.execute(f"update {STATES} set " + ", ".join(f"{c} = {c} * {f}" for c, f in changed.items())
               + f" where symbol = 'KO' and ts = '{ko.loc[b, 'ts'].isoformat()}'")
    dbt("run", "--select", "int_market__ewm_states_daily")
    after = read_table(wh, STATES, KEY)
    after = after[after["symbol"] == "KO"].reset_index(drop=True)
    close = wh.query(f"select close * pit_price_factor as x from marts.fct_bars_1d "
                     f"where symbol = 'KO' and ts = '{ko.loc[b + 1, 'ts'].isoformat()}'")["x"][0]
    y = {c: ko.loc[b, c] * changed.get(c, 1.0) for c in ["ema_fast_12", "ema_slow_26", "macd_signal"]}
    fast = y["ema_fast_12"] + 2 / 13 * (close - y["ema_fast_12"])
    slow = y["ema_slow_26"] + 2 / 27 * (close - y["ema_slow_26"])
    signal = y["macd_signal"] + 0.2 * ((fast - slow) - y["macd_signal"])
    for col, want in (("ema_fast_12", fast), ("ema_slow_26", slow), ("macd_signal", signal)):
        got = after.loc[b + 1, col]
        assert abs(got - want) <= 1e-12 * abs(want), f"{kind}: KO {col} at bar {b + 1}: {got} != {want}"
        assert abs(got - ko.loc[b + 1, col]) > 1e-6 * abs(want), f"{kind}: KO {col} ignored the stored row"
    # the Wilder averages' stored values are unchanged, so their bars are too
    assert_frames_match(after[["wilder_gain_14", "wilder_true_range_14"]],
                        ko[["wilder_gain_14", "wilder_true_range_14"]], f"{kind}: KO Wilder averages")


@pytest.mark.parametrize("kind", ["duckdb", pytest.param("timescale", marks=pytest.mark.postgres)])
def test_hole_before_the_rewrite_point_incremental_equals_full_refresh(kind, request):
    """A five-year hole in one symbol's history just before the rewrite point. DuckDB looks for the bars n before each rewrite point among those of about 1.5 n mean bar spacings
    before it (duckdb__mwh_nth_ts_before), and over the whole series only where fewer than n are there.
    KO here has its bars from 2016 to 2021-03 removed: seven sessions before the rewrite point, then a
    five-year hole, then 4,000 bars, so the features' 252 bars back and the labels' 20 reach across the hole
    (the bounded search finds too few) and only the whole-series search finds them. The incremental rows
    must be those of a full refresh; without that search, v2 reads no bars for KO and they are not.
    On both engines KO's beta_60 looks back 60 of its bars, across the hole, over the equal-weight benchmark
    of those sessions: AAPL's bars of 2015 must be read though AAPL's own 252 bars back start in 2020
    (mwh_bars_to_rewrite's read_across_symbols); without it KO's beta_60 differs from a full refresh."""
    request.getfixturevalue(f"{kind}_target")
    wh = Warehouse(kind)
    wh.create_raw()
    bars, actions = load_sample(symbols=SYMBOLS, crypto=False)
    hole = (bars["symbol"] == "KO") & (bars["ts"] >= pd.Timestamp("2016-01-01", tz="UTC")) \
        & (bars["ts"] < pd.Timestamp("2021-04-01", tz="UTC"))
    bars = bars[~hole].reset_index(drop=True)
    cut = pd.Timestamp("2021-04-12", tz="UTC")
    first, second = bars[bars["ts"] < cut], bars[bars["ts"] >= cut]
    ko_before = first[first["symbol"] == "KO"]
    assert len(ko_before) > 3_500 and (ko_before["ts"] >= pd.Timestamp("2016-01-01", tz="UTC")).sum() < 20
    check_incremental_equals_full_refresh(wh, first, second, actions, len(bars), f"{kind} hole")
