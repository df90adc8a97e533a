"""The 1-minute metrics built incrementally equal a full refresh, on every target, after new minutes, a late
minute and a corrected one (the split of test_market_incremental): fct_volume_profile rewrites only the
windows (UTC days) that hold a bar loaded since the table's high-water mark, fct_realized_volatility_daily
only those days and the day after a changed 23:59 bar, fct_market_stats_24h each symbol's windows from the
first hour holding such a bar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from test_market_incremental import _split_load

from market_fixtures import Warehouse, assert_frames_match, dbt, read_table

KEY = ["symbol", "exchange", "window_start_ts", "bin_index"]


def _models(model: str) -> list[str]:
    """dbt args: the model and its parents, models only."""
    return ["--select", f"+{model}", "--exclude-resource-type", "test", "unit_test"]


def _minute_batches(kind, request):
    """A fresh warehouse of `kind` and the split load's 1-minute bars: (warehouse, first, second, first actions,
    all actions); the models read only 1-minute bars."""
    request.getfixturevalue(f"{kind}_target")
    wh = Warehouse(kind)
    wh.create_raw()
    first, second, first_actions, all_actions = _split_load()
    first, second = (b[b["interval"] == "1m"] for b in (first, second))
    return wh, first, second, first_actions, all_actions


def _rebuilt_after_marking(wh, model: str, key: list[str], marker: str, batches) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Full build on the first batch; every row of `model` marked (`marker`: a column = value assignment); the
    second batch loaded and an incremental build run. The rows it rewrites lose the marker. Returns the model's
    rows before marking and after the incremental build."""
    first, second, first_actions, all_actions = batches
    wh.upsert(first, first_actions)
    dbt("build", *_models(model), "--full-refresh")
    before = read_table(wh, f"marts.{model}", key)
    wh.execute(f"update marts.{model} set {marker}")
    wh.upsert(second, all_actions)
    dbt("build", *_models(model))
    return before, read_table(wh, f"marts.{model}", key)


def _full_refresh(wh, model: str, key: list[str]) -> pd.DataFrame:
    dbt("build", *_models(model), "--full-refresh")
    return read_table(wh, f"marts.{model}", key)


# DuckDB and TimescaleDB (plain PostgreSQL differs only in the bucket, date_bin; its full build is checked
# against pandas in tests/python/risk/test_risk_and_metrics.py): CI time.
@pytest.mark.parametrize("kind", [
    "duckdb",
    pytest.param("timescale", marks=pytest.mark.postgres),
])
def test_volume_profile_incremental_equals_full_refresh(kind, request):
    wh, first, second, first_actions, all_actions = _minute_batches(kind, request)
    wh.upsert(first, first_actions)
    dbt("build", *_models("fct_volume_profile"), "--full-refresh")
    before = read_table(wh, "marts.fct_volume_profile", KEY)
    # a marker in one window no new bar touches: an incremental run must not rewrite it
    untouched = before["window_start_ts"].min()
    wh.execute(f"update marts.fct_volume_profile set bar_count = -1 "
               f"where window_start_ts = timestamptz '{untouched.isoformat()}'")

    wh.upsert(second, all_actions)
    dbt("build", *_models("fct_volume_profile"))
    incremental = read_table(wh, "marts.fct_volume_profile", KEY)

    # the windows rewritten are exactly the days of the second batch's minute bars (new, late, corrected)
    changed_days = set(second["ts"].dt.floor("D"))
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

    full = _full_refresh(wh, "fct_volume_profile", KEY)
    assert (full["bar_count"] > -1).all()
    incremental.loc[incremental["window_start_ts"] == untouched, "bar_count"] = full.loc[
        full["window_start_ts"] == untouched, "bar_count"].to_numpy()
    assert_frames_match(incremental, full, f"{kind}:fct_volume_profile")


@pytest.mark.parametrize("kind", [
    "duckdb",
    pytest.param("timescale", marks=pytest.mark.postgres),
])
def test_realized_volatility_incremental_equals_full_refresh(kind, request):
    wh, first, second, first_actions, all_actions = _minute_batches(kind, request)
    # a corrected close at 23:59: the next day's first return changes, though none of its bars did
    before_midnight = first["ts"] == pd.Timestamp("2023-04-17 23:59", tz="UTC")
    assert before_midnight.sum() == 1
    moved = first[before_midnight].copy()
    assert (moved["close"] != moved["low"]).all()
    moved["close"] = moved["low"]  # still a valid bar (staging drops one whose close is outside its range)
    moved["loaded_at"] = datetime.now(UTC) + timedelta(minutes=1)
    second = pd.concat([second, moved], ignore_index=True)
    key = ["symbol", "exchange", "session_date"]
    before, incremental = _rebuilt_after_marking(wh, "fct_realized_volatility_daily", key, "days_per_year = -1",
                                                 (first, second, first_actions, all_actions))
    def days(values) -> set[str]:
        return {str(pd.Timestamp(v).date()) for v in values}

    rewritten = days(incremental.loc[incremental["days_per_year"] != -1, "session_date"])
    expected = {str(ts.date()) for ts in second["ts"]} | {str((ts + pd.Timedelta(minutes=1)).date())
                                                          for ts in second["ts"]}
    assert "2023-04-18" in rewritten and rewritten == expected & days(incremental["session_date"])
    assert len(days(before["session_date"]) - rewritten) > 10, "most days are kept"

    full = _full_refresh(wh, "fct_realized_volatility_daily", key)
    kept = incremental["days_per_year"] == -1
    incremental.loc[kept, "days_per_year"] = full.loc[kept.to_numpy(), "days_per_year"].to_numpy()
    assert_frames_match(incremental, full, f"{kind}:fct_realized_volatility_daily")


@pytest.mark.parametrize("kind", [
    "duckdb",
    pytest.param("timescale", marks=pytest.mark.postgres),
])
def test_market_stats_24h_incremental_equals_full_refresh(kind, request):
    wh, first, second, first_actions, all_actions = _minute_batches(kind, request)
    key = ["symbol", "exchange", "window_end_ts"]
    before, incremental = _rebuilt_after_marking(wh, "fct_market_stats_24h", key, "bar_count = -1",
                                                 (first, second, first_actions, all_actions))

    # per symbol, the windows ending after the first hour holding a bar of the second batch (new, late,
    # corrected): that hour's bars are in them; the windows before it are kept
    first_changed = second.groupby("symbol")["ts"].min().dt.floor("h")
    hour = incremental["window_end_ts"] - pd.Timedelta(hours=1)
    expected = hour >= incremental["symbol"].map(first_changed)
    rewritten = incremental["bar_count"] != -1
    assert (rewritten == expected).all(), incremental.loc[rewritten != expected, key]
    assert (~rewritten).sum() > 10 and rewritten.sum() > 24 and len(incremental) > len(before)

    full = _full_refresh(wh, "fct_market_stats_24h", key)
    assert (full["bar_count"] > 0).all()
    incremental.loc[~rewritten, "bar_count"] = full.loc[(~rewritten).to_numpy(), "bar_count"].to_numpy()
    assert_frames_match(incremental, full, f"{kind}:fct_market_stats_24h")
