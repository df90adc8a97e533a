"""fct_bar_gaps keeps its high-water mark when the mart holds no gap (a clean 5M daily history: an empty
mart used to be rechecked over all history on every run, 44.6 s at 5M). The mark lives in a one-row table
beside int_market__build_marks; an incremental run with nothing loaded since reads no series, and a run
after new bars recomputes the changed series only, with the rows a full refresh gives."""

from __future__ import annotations

import pytest
from test_market_incremental import _split_load

from market_fixtures import Warehouse, assert_frames_match, dbt, read_table

SELECTION = ["--select", "+fct_bar_gaps", "--exclude-resource-type", "test", "unit_test"]
KEY = ["symbol", "exchange", "bar_interval", "first_missing_ts"]
MARK = "intermediate.fct_bar_gaps__checked_through"


@pytest.mark.parametrize("kind", [
    "duckdb",
    pytest.param("timescale", marks=pytest.mark.postgres),
])
def test_empty_bar_gaps_keeps_its_mark(kind, request):
    request.getfixturevalue(f"{kind}_target")
    wh = Warehouse(kind)
    wh.create_raw()
    first, second, first_actions, all_actions = _split_load()
    wh.upsert(first, first_actions)
    dbt("build", *SELECTION, "--full-refresh")
    gaps = read_table(wh, "marts.fct_bar_gaps", KEY)
    assert len(gaps) > 0
    staged = "(select max(loaded_at) from staging.stg_market__bars)"
    assert wh.query(f"select count(*) as n from {MARK} where checked_through_loaded_at = {staged}")["n"][0] == 1

    # a mart without gaps: the gaps are real, so only a run that rereads all history would find them again
    wh.execute("delete from marts.fct_bar_gaps")
    dbt("build", *SELECTION)
    assert wh.query("select count(*) as n from marts.fct_bar_gaps")["n"][0] == 0
    assert wh.query(f"select count(*) as n from {MARK}")["n"][0] == 1

    # new, late and corrected bars: their series are recomputed after the bar before the first changed one
    # (no gap there in this sample); the other gaps stay forgotten (never reread)
    wh.upsert(second, all_actions)
    dbt("build", *SELECTION)
    incremental = read_table(wh, "marts.fct_bar_gaps", KEY)
    assert wh.query(f"select count(*) as n from {MARK} where checked_through_loaded_at = {staged}")["n"][0] == 1
    dbt("build", *SELECTION, "--full-refresh")
    full = read_table(wh, "marts.fct_bar_gaps", KEY)
    assert len(incremental) < len(full)
    recomputed = full.merge(incremental[KEY], on=KEY)
    assert_frames_match(incremental.drop(columns="checked_through_loaded_at"),
                        recomputed.drop(columns="checked_through_loaded_at"), f"{kind}:fct_bar_gaps")


def test_gap_longer_than_the_nearby_search_is_found_incrementally(duckdb_target):
    """On DuckDB the bar before a series' first changed bar is looked for among the 31 days before it, then
    over the whole series (mwh_bar_gaps_window). Here AAPL's next load starts 60 days after its last bar, so
    only the whole-series search finds that bar: the incremental run must report the 60-day gap as a full
    refresh does (with the window starting at the changed bar, the gap before it is never found)."""
    import pandas as pd

    from market_fixtures import build_then_load_incrementally, load_sample

    wh = Warehouse("duckdb")
    wh.create_raw()
    bars, actions = load_sample(symbols=["AAPL"], start="2020-01-01", end="2021-06-01", crypto=False)
    cut, resume = pd.Timestamp("2020-09-01", tz="UTC"), pd.Timestamp("2020-10-31", tz="UTC")
    build_then_load_incrementally(wh, bars[bars["ts"] < cut], bars[bars["ts"] >= resume], actions, SELECTION)
    incremental = read_table(wh, "marts.fct_bar_gaps", KEY)
    long_gaps = incremental[incremental["first_missing_ts"].between(cut - pd.Timedelta(days=5), resume)]
    assert len(long_gaps) == 1, incremental
    dbt("build", *SELECTION, "--full-refresh")
    full = read_table(wh, "marts.fct_bar_gaps", KEY)
    assert_frames_match(incremental.drop(columns="checked_through_loaded_at"),
                        full.drop(columns="checked_through_loaded_at"), "duckdb:fct_bar_gaps")
