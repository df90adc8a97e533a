"""The market models on the whole shared sample (40 Alpha Vantage symbols, FILUSDT 1m Feb + Apr 2023),
built with real dbt on a real DuckDB file: the acceptance numbers of the issue."""

from __future__ import annotations

import pandas as pd
import pytest

from market_fixtures import ALPHAVANTAGE, MARKET_SELECTION, Warehouse, dbt, load_sample


@pytest.fixture(scope="module")
def built_sample(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    path = tmp_path_factory.mktemp("sample") / "warehouse.duckdb"
    mp.setenv("MWH_TARGET", "duckdb")
    mp.setenv("MWH_DUCKDB_PATH", str(path))
    wh = Warehouse("duckdb")
    bars, actions = load_sample()
    wh.upsert(bars, actions)
    dbt("build", *MARKET_SELECTION)
    yield wh
    mp.undo()


def test_adjusted_close_matches_vendor(built_sample):
    """The vendor's adjusted close is the reference: on every symbol at least 99.5% of bars within 0.5%
    of it, and no daily return more than 5% from the vendor-implied return (F's 2000 recapitalisation
    booked as a 5.40 dividend, JPM's and GOOGL's distributions included)."""
    per_symbol = built_sample.query("""
        with returns as (
            select
                symbol, adj_close, vendor_adj_close,
                adj_close / lag(adj_close) over w - 1 as ret,
                vendor_adj_close / lag(vendor_adj_close) over w - 1 as vendor_ret
            from marts.fct_bars_1d
            where vendor_adj_close is not null
            window w as (partition by symbol, exchange order by ts)
        )
        select
            symbol,
            count(*) as n,
            avg(case when abs(adj_close - vendor_adj_close) <= 0.005 * vendor_adj_close then 1.0 else 0.0 end) as share,
            max(abs(ret - vendor_ret)) as worst_return_gap
        from returns
        group by symbol
    """).set_index("symbol")
    assert len(per_symbol) >= len(ALPHAVANTAGE)  # 41 files (40 S&P symbols + BRK.B) and the yfinance files
    low = per_symbol[per_symbol["share"] < 0.995]
    assert low.empty, low
    assert per_symbol["worst_return_gap"].max() < 0.05, per_symbol["worst_return_gap"].nlargest(3)
    assert per_symbol.loc[["F", "JPM"], "share"].min() == 1.0


def test_unexplained_adjustments_are_flagged(built_sample):
    issues = built_sample.query("""
        select check_name, symbol, cast(issue_date as varchar) as issue_date
        from intermediate.int_market__adjustment_issues
    """)
    flagged = set(map(tuple, issues.to_numpy()))
    assert ("dividend_over_10pct_of_price", "F", "2000-08-03") in flagged
    assert ("factor_disagrees_with_vendor", "F", "2000-08-03") in flagged
    # GOOGL's 2014 class C distribution, booked by the vendor as a 567.97 "dividend"
    assert ("dividend_over_10pct_of_price", "GOOGL", "2014-04-03") in flagged
    f_event = built_sample.query("""
        select factor_source, event_factor from marts.fct_bars_1d
        where symbol = 'F' and session_date = date '2000-08-03'
    """).iloc[0]
    assert f_event["factor_source"] == "vendor"
    assert f_event["event_factor"] == pytest.approx(0.844156, abs=1e-5)


def test_aapl_split_factors(built_sample):
    splits = built_sample.query("""
        select session_date, split_ratio from marts.fct_bars_1d
        where symbol = 'AAPL' and split_ratio != 1 order by session_date
    """)
    assert [str(d)[:10] for d in splits["session_date"]] == ["2000-06-21", "2005-02-28", "2014-06-09", "2020-08-31"]
    first = built_sample.query("select volume_factor from marts.fct_bars_1d where symbol = 'AAPL' order by ts limit 1")
    assert first["volume_factor"][0] == pytest.approx(2 * 2 * 7 * 4, rel=1e-5)  # the vendor writes 7-for-1 as 7.00000700001


def test_gaps_only_march_2023_for_filusdt(built_sample):
    gaps = built_sample.query("select * from marts.fct_bar_gaps order by symbol, bar_interval, first_missing_ts")
    # The 40 Alpha Vantage symbols are complete against XNYS: holidays, weekends, 2001-09-11..14 and
    # 2012-10-29..30 are not sessions, so not gaps. FILUSDT's March 2023 outage is one range, not a row
    # per missing minute.
    assert len(gaps) == 1
    gap = gaps.iloc[0]
    assert (gap["symbol"], gap["bar_interval"]) == ("FILUSDT", "1m")
    assert pd.Timestamp(gap["first_missing_ts"]) == pd.Timestamp("2023-03-01 00:00", tz="UTC")
    assert pd.Timestamp(gap["last_missing_ts"]) == pd.Timestamp("2023-03-31 23:59", tz="UTC")
    assert [str(gap["first_session_date"])[:10], str(gap["last_session_date"])[:10]] == ["2023-03-01", "2023-03-31"]
    assert (gap["missing_sessions"], gap["missing_bars"]) == (31, 31 * 1440)


def test_gap_test_names_symbol_and_sessions(built_sample):
    """The completeness test's stored rows name the symbol and each missing session. FILUSDT's real
    March 2023 gap is acknowledged in seeds/known_data_issues.csv: kept in the data-quality mart as
    acknowledged, left out of the warning. A gap is a data fact: the test warns, the build goes on."""
    assert built_sample.query("select * from test_failures.stg_market__bars_1m_complete").empty
    gap = built_sample.query("""
        select cast(start_date as varchar) as start_date, cast(end_date as varchar) as end_date, is_acknowledged
        from marts.fct_data_quality_issues
        where check_name = 'missing_sessions' and symbol = 'FILUSDT'
    """)
    assert gap.to_dict("records") == [{"start_date": "2023-03-01", "end_date": "2023-03-31", "is_acknowledged": True}]
    # remove a real session of one symbol: the daily test now warns and names exactly it
    built_sample.execute("delete from raw.bars where symbol = 'KO' and ts = '2012-10-31 00:00:00+00'")
    # a deletion in raw reaches the (incremental) staging table only with a full refresh
    dbt("build", "--select", "stg_market__bars", "--full-refresh", "--exclude-resource-type", "test", "unit_test")
    dbt("test", "--select", "stg_market__bars_daily_complete")  # a warning, not a failure
    missing = built_sample.query("select symbol, session_date from test_failures.stg_market__bars_daily_complete")
    assert missing["symbol"].tolist() == ["KO"]
    assert str(missing["session_date"][0])[:10] == "2012-10-31"


def test_calendar_closures_are_not_sessions(built_sample):
    sessions = built_sample.query("""
        select cast(session_date as varchar) as d from marts.dim_trading_sessions
        where calendar = 'XNYS' and session_date between '2001-09-10' and '2001-09-18'
           or calendar = 'XNYS' and session_date between '2012-10-26' and '2012-11-01'
        order by 1
    """)["d"].tolist()
    assert sessions == ["2001-09-10", "2001-09-17", "2001-09-18", "2012-10-26", "2012-10-31", "2012-11-01"]
    early = built_sample.query("""
        select session_minutes from marts.dim_trading_sessions
        where calendar = 'XNYS' and session_date = '2020-11-27'
    """)
    assert early["session_minutes"][0] == 210


def test_daily_rollup_follows_sessions(built_sample):
    """FILUSDT daily bars rolled up from minutes: one per UTC day, 1,440 minutes each."""
    days = built_sample.query("""
        select count(*) as n, min(source_bar_count) as lo, max(source_bar_count) as hi
        from marts.fct_bars_1d where symbol = 'FILUSDT'
    """)
    assert days["n"][0] == 28 + 30
    assert days["lo"][0] == days["hi"][0] == 1440


def test_docs_describe_every_market_model_and_column(built_sample, tmp_path):
    """`dbt docs generate` shows every market model and every column of its relation described."""
    import json
    import os

    dbt("docs", "generate", *MARKET_SELECTION)
    target = os.environ.get("DBT_TARGET_PATH", "target")
    with open(os.path.join(target, "manifest.json")) as f:
        manifest = json.load(f)
    with open(os.path.join(target, "catalog.json")) as f:
        catalog = json.load(f)
    undocumented, checked = [], 0
    for uid, node in manifest["nodes"].items():
        is_market_model = node["resource_type"] == "model" and "market" in node["tags"]
        if not (is_market_model or node["resource_type"] == "seed"):
            continue
        checked += 1
        if not node.get("description", "").strip():
            undocumented.append(uid)
        described = {c.lower() for c, col in node["columns"].items() if col.get("description", "").strip()}
        actual = catalog["nodes"].get(uid, {}).get("columns", {})
        assert actual, f"{uid} missing from the catalog"
        undocumented += [f"{uid}.{c}" for c in actual if c.lower() not in described]
    assert checked >= 20, checked
    assert not undocumented, undocumented
    assert "Market data warehouse" in manifest["docs"]["doc.market_warehouse.__overview__"]["block_contents"]
