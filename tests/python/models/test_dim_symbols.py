"""dim_symbols' loaded-bar columns (first and last bar, bar count, intervals) against pandas over the same
bars, on every target: a symbol with two intervals, an equity and a crypto feed."""

from __future__ import annotations

import pandas as pd
import pytest

from market_fixtures import Warehouse, dbt, load_sample

KINDS = ["duckdb", pytest.param("timescale", marks=pytest.mark.postgres),
         pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("kind", KINDS)
def test_loaded_bars_per_symbol_match_pandas(kind, request):
    request.getfixturevalue(f"{kind}_target")
    wh = Warehouse(kind)
    wh.create_raw()
    bars, actions = load_sample(symbols=["AAPL", "KO"], start="2021-01-01")
    weekly = bars[bars["symbol"] == "KO"].sort_values("ts").head(12).copy()
    weekly["interval"] = "1wk"  # KO has a second interval: its intervals list both, its count sums them
    bars = pd.concat([bars, weekly], ignore_index=True)
    wh.upsert(bars, actions)
    dbt("build", "--select", "+dim_symbols", "--exclude-resource-type", "test", "unit_test")

    expected = (bars.groupby(["symbol", "exchange"])
                .agg(first_bar_ts=("ts", "min"), last_bar_ts=("ts", "max"), bar_count=("ts", "size"),
                     bar_intervals=("interval", lambda s: ",".join(sorted(set(s)))))
                .reset_index().sort_values(["symbol", "exchange"]).reset_index(drop=True))
    got = wh.query("select symbol, exchange, first_bar_ts, last_bar_ts, bar_count, bar_intervals "
                   "from marts.dim_symbols order by symbol, exchange")
    for col in ("first_bar_ts", "last_bar_ts"):
        got[col] = pd.to_datetime(got[col], utc=True)
        expected[col] = pd.to_datetime(expected[col], utc=True)
    got["bar_count"] = got["bar_count"].astype("int64")
    assert set(expected["bar_intervals"]) == {"1d", "1d,1wk", "1m"}
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
