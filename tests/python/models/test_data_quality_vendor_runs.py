"""fct_data_quality_issues' vendor check: consecutive bars whose adjusted close is off the vendor's are one
issue per run. The mart numbers the bars only of the series that have a disagreeing bar (numbering every
series' whole history was most of its time at 5M bars); this checks that the runs still come out right:
two runs of one symbol kept apart by one agreeing bar, and nothing for the symbol that agrees."""

from __future__ import annotations

import pandas as pd
import pytest

from market_fixtures import Warehouse, dbt, load_sample

SELECT = ["--select", "+fct_data_quality_issues", "--exclude-resource-type", "test", "unit_test"]
CHECK = "adjusted_close_disagrees_with_vendor"


@pytest.mark.parametrize("kind", ["duckdb", pytest.param("timescale", marks=pytest.mark.postgres)])
def test_disagreeing_runs(kind, request):
    request.getfixturevalue(f"{kind}_target")
    wh = Warehouse(kind)
    wh.create_raw()
    bars, actions = load_sample(symbols=["AAPL", "KO"], start="2020-09-01", crypto=False)
    aapl = bars.index[bars["symbol"] == "AAPL"].sort_values()
    # the vendor's adjusted close 20% off on three consecutive sessions, then (one agreeing session
    # between) on one more: two runs of AAPL
    runs = [list(aapl[40:43]), [aapl[44]]]
    for run in runs:
        bars.loc[run, "adj_close"] = bars.loc[run, "adj_close"] * 1.2
    wh.upsert(bars, actions)
    dbt("build", *SELECT)

    found = wh.query(f"select symbol, start_date, end_date, issue_count from marts.fct_data_quality_issues "
                     f"where check_name = '{CHECK}' and is_current order by symbol, start_date")
    expected = [("AAPL", bars.loc[run[0], "ts"].date(), bars.loc[run[-1], "ts"].date(), len(run)) for run in runs]
    injected = found[(found["symbol"] == "AAPL")
                     & (pd.to_datetime(found["start_date"]) >= pd.Timestamp(expected[0][1]))
                     & (pd.to_datetime(found["end_date"]) <= pd.Timestamp(expected[-1][2]))]
    assert [(s, pd.Timestamp(a).date(), pd.Timestamp(b).date(), int(n))
            for s, a, b, n in injected.itertuples(index=False)] == expected
    # AAPL's share row counts every disagreeing bar of its series
    share = wh.query("select issue_count from marts.fct_data_quality_issues "
                     "where check_name = 'adjusted_close_share_below_min' and symbol = 'AAPL' and is_current")
    assert len(share) == 1 and int(share["issue_count"][0]) == int(found[found["symbol"] == "AAPL"]["issue_count"].sum())
