"""An incremental build produces exactly the rows a full refresh produces, on every target, including
after late and corrected bars; and the features are point-in-time correct (truncating history after t
leaves every feature of bars up to t unchanged)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from market_fixtures import (
    MARKET_SELECTION,
    MODELS_ONLY,
    Warehouse,
    assert_frames_match,
    dbt,
    load_sample,
    read_table,
)

SYMBOLS = ["AAPL", "KO", "MSFT"]
START = "2018-06-01"

KEYED = {
    "staging.stg_market__bars": ["symbol", "exchange", "bar_interval", "ts"],
    "intermediate.int_market__bars_rolled_up_5m": ["symbol", "exchange", "ts"],
    "intermediate.int_market__bars_rolled_up_15m": ["symbol", "exchange", "ts"],
    "intermediate.int_market__bars_rolled_up_1h": ["symbol", "exchange", "ts"],
    "intermediate.int_market__bars_rolled_up_1d": ["symbol", "exchange", "ts"],
    "marts.fct_bars_1d": ["symbol", "exchange", "ts"],
    "marts.fct_bars_1h": ["symbol", "exchange", "ts"],
    "marts.fct_features_daily_v1": ["symbol", "exchange", "ts"],
    "marts.fct_features_daily_v2": ["symbol", "exchange", "ts"],
    "intermediate.int_market__adjustment_events": ["symbol", "exchange", "session_date"],
    "marts.fct_features_hourly_v1": ["symbol", "exchange", "ts"],
    "marts.fct_labels_daily": ["symbol", "exchange", "ts"],
    "marts.fct_training_set_daily": ["symbol", "exchange", "ts"],
    "marts.fct_bar_gaps": ["symbol", "exchange", "bar_interval", "first_missing_ts"],
    "marts.fct_bars_1m": ["symbol", "exchange", "ts"],
    "marts.fct_latest_bars": ["symbol", "exchange", "bar_interval"],
    "marts.fct_latest_features_daily": ["symbol", "exchange"],
}


def _snapshot(wh: Warehouse) -> dict[str, pd.DataFrame]:
    return {rel: read_table(wh, rel, key) for rel, key in KEYED.items()}


def _split_load():
    """The subset, cut into what arrives first and what arrives later (new days, late and corrected bars)."""
    bars, actions = load_sample(symbols=SYMBOLS, start=START)
    daily_cut = pd.Timestamp("2021-04-12", tz="UTC")
    minute_cut = pd.Timestamp("2023-04-20 12:00", tz="UTC")
    late_daily = pd.Timestamp("2021-04-08", tz="UTC")           # a daily bar that arrives a day late
    late_minute = pd.Timestamp("2023-04-19 08:30", tz="UTC")    # a minute bar that arrives late
    corrected_minute = pd.Timestamp("2023-04-19 09:00", tz="UTC")  # first sent wrong, corrected later

    is_daily = bars["interval"] == "1d"
    later = (is_daily & (bars["ts"] >= daily_cut)) | (~is_daily & (bars["ts"] >= minute_cut))
    late = ((is_daily & (bars["ts"] == late_daily) & (bars["symbol"] == "KO"))
            | (~is_daily & (bars["ts"] == late_minute)))
    first = bars[~later & ~late].copy()
    second = bars[later | late].copy()

    # the first batch was loaded two days ago, so the staging model's increment (by loaded_at) only
    # takes the second batch
    first["loaded_at"] = datetime.now(UTC) - timedelta(days=2)
    wrong = first["ts"] == corrected_minute
    correction = first[wrong].copy()
    first.loc[wrong, ["high", "volume"]] = first.loc[wrong, ["high", "volume"]] * [1.5, 10]
    correction["loaded_at"] = datetime.now(UTC) + timedelta(minutes=1)
    second["loaded_at"] = datetime.now(UTC) + timedelta(minutes=1)
    second = pd.concat([second, correction], ignore_index=True)

    # a 2019 KO dividend the vendor reports late: KO's whole adjusted history must be rewritten
    ex = pd.to_datetime(actions["ex_date"])
    late_dividend = (actions["symbol"] == "KO") & (actions["action"] == "dividend") & (ex.dt.year == 2019)
    late_dividend &= late_dividend.cumsum() == 1
    assert late_dividend.sum() == 1
    first_actions = actions[(ex < daily_cut.tz_localize(None)) & ~late_dividend]
    actions = actions.copy()
    actions.loc[late_dividend, "loaded_at"] = datetime.now(UTC) + timedelta(minutes=1)
    return first, second, first_actions, actions


@pytest.mark.parametrize("kind", [
    "duckdb",
    pytest.param("timescale", marks=pytest.mark.postgres),
    pytest.param("postgres", marks=pytest.mark.postgres),
])
def test_incremental_equals_full_refresh(kind, request):
    request.getfixturevalue(f"{kind}_target")
    wh = Warehouse(kind)
    wh.create_raw()
    first, second, first_actions, all_actions = _split_load()

    wh.upsert(first, first_actions)
    dbt("build", *MODELS_ONLY, "--full-refresh")
    before = wh.query("select count(*) as n from marts.fct_features_hourly_v1")["n"][0]

    wh.upsert(second, all_actions)
    dbt("build", *MARKET_SELECTION)  # incremental, with every data test and unit test
    incremental = _snapshot(wh)
    assert len(incremental["marts.fct_features_hourly_v1"]) > before

    # the late and corrected minute bars reached their hour and their day
    hour = incremental["intermediate.int_market__bars_rolled_up_1h"]
    h9 = hour[hour["ts"] == pd.Timestamp("2023-04-19 09:00", tz="UTC")].iloc[0]
    h8 = hour[hour["ts"] == pd.Timestamp("2023-04-19 08:00", tz="UTC")].iloc[0]
    assert h8["source_bar_count"] == 60 and h9["source_bar_count"] == 60
    minute = first[(first["interval"] == "1m")]
    true_9 = second[second["ts"].between(pd.Timestamp("2023-04-19 09:00", tz="UTC"),
                                         pd.Timestamp("2023-04-19 09:00", tz="UTC"))]
    expected_volume = (minute[(minute["ts"] >= pd.Timestamp("2023-04-19 09:00", tz="UTC"))
                              & (minute["ts"] < pd.Timestamp("2023-04-19 10:00", tz="UTC"))
                              & (minute["ts"] != pd.Timestamp("2023-04-19 09:00", tz="UTC"))]["volume"].sum()
                       + true_9["volume"].sum())
    assert h9["volume"] == pytest.approx(expected_volume, rel=1e-12)

    dbt("build", *MODELS_ONLY, "--full-refresh")
    full = _snapshot(wh)
    for relation in KEYED:
        assert_frames_match(incremental[relation], full[relation], f"{kind}:{relation}")


def test_features_are_point_in_time(duckdb_target):
    """Features of bars up to t are the same whether or not any later bar (or corporate action) exists.
    The cut-off precedes AAPL's 4-for-1 split of 2020-08-31 and several dividends, so this also shows
    that later adjustments do not leak into earlier features."""
    wh = Warehouse("duckdb")
    wh.create_raw()
    bars, actions = load_sample(symbols=SYMBOLS, start=START)
    wh.upsert(bars, actions)
    dbt("build", *MODELS_ONLY, "--full-refresh")
    cutoff = "2020-06-30 00:00:00+00"
    query = f"select * from marts.fct_training_set_daily where ts <= '{cutoff}'"
    key = ["symbol", "exchange", "ts"]

    with_future = read_table_query(wh, query, key)
    hourly_cut = "2023-04-10 00:00:00+00"
    hourly_with_future = read_table_query(
        wh, f"select * from marts.fct_features_hourly_v1 where ts < '{hourly_cut}'", key)

    # minute bars from the cut-off hour on are removed, so the last hour kept is whole
    wh.execute(f"""
        delete from raw.bars where ("interval" = '1d' and ts > '{cutoff}') or ("interval" = '1m' and ts >= '{hourly_cut}');
        delete from raw.corporate_actions where ex_date > date '2020-06-30';
    """)
    dbt("build", *MODELS_ONLY, "--full-refresh")
    truncated = read_table_query(
        wh, f"select * from marts.fct_features_daily where ts <= '{cutoff}'", key)
    feature_columns = [c for c in truncated.columns]
    assert_frames_match(with_future[feature_columns], truncated, "daily features, truncated history")
    hourly_truncated = read_table_query(
        wh, f"select * from marts.fct_features_hourly_v1 where ts < '{hourly_cut}'", key)
    assert_frames_match(hourly_with_future, hourly_truncated, "hourly features, truncated history")


def read_table_query(wh: Warehouse, sql: str, key: list[str]) -> pd.DataFrame:
    df = wh.query(sql)
    for col in df.columns:
        if str(df[col].dtype).startswith("datetime64"):
            df[col] = pd.to_datetime(df[col], utc=True)
    return df.sort_values(key).reset_index(drop=True)
