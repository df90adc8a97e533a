"""The microstructure dbt models on a loaded capture (DuckDB, TimescaleDB): fct_book_snapshots on the
1 s grid (default) and the 100 ms grid (var), its mid/spread/depth arithmetic, the sequence events mart.
(That the models build with no tick table at all is exercised by every full `dbt build` of the other
tests: the staging models then read empty relations.)"""

from __future__ import annotations

import pytest

from market_warehouse.dbt import run_dbt
from market_warehouse.loaders.sinks import open_sink
from market_warehouse.loaders.ticks import ALL_TICK_TABLES, load_tick_files
from tests.python.microstructure import capture

SELECT = ["--select", "+fct_book_snapshots", "+fct_book_sequence_events"]


@pytest.fixture(params=["duckdb", "timescale"])
def target(request):
    return request.getfixturevalue(f"{request.param}_target")


def _snapshots(target):
    with open_sink(target, tables=ALL_TICK_TABLES) as sink:
        return sink.query("select count(*), min(snapshot_interval_ms), max(snapshot_interval_ms), "
                          "sum(case when abs(spread_bps - spread / mid_price * 10000) > 1e-9 "
                          "or abs(mid_price - (best_bid + best_ask) / 2) > 1e-9 or spread < 0 "
                          "or bid_depth_50bps < bid_depth_10bps or ask_depth_50bps < ask_depth_10bps "
                          "or bid_depth_10bps < best_bid_qty then 1 else 0 end), "
                          "count(distinct update_id) from marts.fct_book_snapshots")[0]


def test_book_snapshot_marts(target, tmp_path):
    path = capture.write(tmp_path / "capture.txt", capture.lines(12_000))
    with open_sink(target, tables=ALL_TICK_TABLES) as sink:
        [report] = load_tick_files(sink, [path], "binance-ws", bars=False)
        assert report.status == "success"
        states = sink.query("select count(*), count(distinct cast(ts as date)) from raw.book_states")[0][0]
    res = run_dbt(["build", *SELECT], target, quiet=True)
    assert res.success
    n_1s, lo, hi, bad, distinct = _snapshots(target)
    assert (lo, hi, bad) == (1000, 1000, 0)
    assert 30 < n_1s < states and distinct == n_1s
    with open_sink(target, tables=ALL_TICK_TABLES) as sink:
        assert sink.query("select event, is_break from marts.fct_book_sequence_events") == [("synced", False)]
    if target.name != "duckdb":
        return  # the 100 ms grid is the same SQL on every target (mwh_time_bucket): once is enough for CI
    res = run_dbt(["run", "--select", "int_microstructure__book_states_sampled", "fct_book_snapshots",
                   "--vars", "{book_snapshot_interval_ms: 100}"], target, quiet=True)
    assert res.success
    n_100ms, lo, hi, bad, _ = _snapshots(target)
    assert (lo, hi, bad) == (100, 100, 0)
    assert n_1s < n_100ms <= states
