"""fct_volume_profile built incrementally equals a full refresh, on every target, after new minutes, a late
minute and a corrected one (the split of test_market_incremental); the incremental run rewrites only the
windows (UTC days) that hold a bar loaded since the table's high-water mark."""

from __future__ import annotations

import pandas as pd
import pytest
from test_market_incremental import _split_load

from market_fixtures import Warehouse, assert_frames_match, dbt, read_table

SELECTION = ["--select", "+fct_volume_profile", "--exclude-resource-type", "test", "unit_test"]
KEY = ["symbol", "exchange", "window_start_ts", "bin_index"]


# DuckDB and TimescaleDB (plain PostgreSQL differs only in the bucket, date_bin; its full build is checked
# against pandas in tests/python/risk/test_risk_and_metrics.py): CI time.
@pytest.mark.parametrize("kind", [
    "duckdb",
    pytest.param("timescale", marks=pytest.mark.postgres),
])
def test_volume_profile_incremental_equals_full_refresh(kind, request):
    request.getfixturevalue(f"{kind}_target")
    wh = Warehouse(kind)
    wh.create_raw()
    first, second, first_actions, all_actions = _split_load()
    first, second = (b[b["interval"] == "1m"] for b in (first, second))  # the model reads only 1m bars
    wh.upsert(first, first_actions)
    dbt("build", *SELECTION, "--full-refresh")
    before = read_table(wh, "marts.fct_volume_profile", KEY)
    # a marker in one window no new bar touches: an incremental run must not rewrite it
    untouched = before["window_start_ts"].min()
    wh.execute(f"update marts.fct_volume_profile set bar_count = -1 "
               f"where window_start_ts = timestamptz '{untouched.isoformat()}'")

    wh.upsert(second, all_actions)
    dbt("build", *SELECTION)
    incremental = read_table(wh, "marts.fct_volume_profile", KEY)

    # the windows rewritten are exactly the days of the second batch's minute bars (new, late, corrected)
    minutes = second[second["interval"] == "1m"]
    changed_days = set(minutes["ts"].dt.floor("D"))
    assert len(changed_days) >= 3
    windows = incremental.groupby(["symbol", "window_start_ts"])["loaded_at"].max()
    old = before.groupby(["symbol", "window_start_ts"])["loaded_at"].max()
    rewritten = {ts for (symbol, ts), at in windows.items() if (symbol, ts) not in old or old[(symbol, ts)] != at}
    assert rewritten == changed_days
    kept = [k for k in old.index if k[1] not in changed_days]
    assert len(kept) > 10 and untouched not in changed_days
    assert (incremental.loc[incremental["window_start_ts"] == untouched, "bar_count"] == -1).all()
    unchanged = before.set_index(KEY).loc[lambda f: ~f.index.get_level_values(2).isin(list(changed_days))]
    ours = incremental.set_index(KEY).loc[unchanged.index].drop(columns="bar_count")
    pd.testing.assert_frame_equal(ours, unchanged.drop(columns="bar_count"))

    dbt("build", *SELECTION, "--full-refresh")
    full = read_table(wh, "marts.fct_volume_profile", KEY)
    assert (full["bar_count"] > -1).all()
    incremental.loc[incremental["window_start_ts"] == untouched, "bar_count"] = full.loc[
        full["window_start_ts"] == untouched, "bar_count"].to_numpy()
    assert_frames_match(incremental, full, f"{kind}:fct_volume_profile")
