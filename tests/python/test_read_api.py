"""market_warehouse.read against a built sample (AAPL, MSFT and FILUSDT minute bars), on DuckDB and TimescaleDB:
every function returns what the marts hold, parameters are bound, names come from whitelists."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "models"))
from market_warehouse import read
from market_warehouse.ml import api

from market_fixtures import Warehouse, dbt, load_sample

REPO = Path(__file__).resolve().parents[2]
AAPL = REPO / "data" / "sample" / "alphavantage" / "DA-AAPL-T-2021-04-21.csv.gz"
SELECTION = ["--select", "tag:market", "path:seeds", "+fct_signal_performance",
             "--exclude-resource-type", "test", "unit_test"]


def build_sample(kind: str, target) -> None:
    wh = Warehouse(kind)
    wh.create_raw()
    bars, actions = load_sample(symbols=["AAPL", "MSFT"])
    wh.upsert(bars, actions)
    with api.connect(target) as sink:  # one signal, so fct_signal_performance has a row
        report = api.record_signals(sink, [{
            "strategy": "hand", "symbol": "AAPL", "signal_ts": "2021-03-09T00:00:00Z", "signal_type": "BUY",
            "entry_price": 121.085, "target_price": 123.5, "stop_price": 115.0}])
        assert report.loaded == 1, report.examples
    dbt("build", *SELECTION)


def raw_aapl() -> pd.DataFrame:
    with gzip.open(AAPL, "rt") as fh:
        df = pd.read_csv(fh)
    df["ts"] = pd.to_datetime(df["timestamp"]).dt.tz_localize("UTC")
    return df.sort_values("ts").reset_index(drop=True)


def check_read_api(target) -> None:
    raw = raw_aapl()
    with read.connect(target) as r:
        # bars: raw closes as the vendor sent them; adjusted ones below them before the 2020 split
        last = r.bars("AAPL", "1d", adjusted=False, last=1000)
        assert len(last) == 1000 and last["ts"].is_monotonic_increasing
        assert last["ts"].iloc[-1] == pd.Timestamp("2021-04-21", tz="UTC")
        assert last["close"].tolist() == raw["close"].tail(1000).tolist()
        adj = r.bars(["AAPL", "MSFT"], "1d", "2020-08-25", "2020-09-01")
        assert set(adj["symbol"]) == {"AAPL", "MSFT"} and adj["ts"].max() <= pd.Timestamp("2020-09-01", tz="UTC")
        aapl = adj[adj["symbol"] == "AAPL"].set_index("ts")
        # AAPL's 4:1 split on 2020-08-31: the adjusted close before it is about a quarter of the raw one
        before = aapl.loc[pd.Timestamp("2020-08-28", tz="UTC")]
        assert before["close"] == pytest.approx(before["raw_close"] / 4, rel=0.02)
        minutes = r.bars("FILUSDT", "1m", "2023-02-01 00:00", "2023-02-01 00:09")
        assert len(minutes) == 10 and (minutes["exchange"] == "BINANCE").all()
        # 1-minute bars come from marts.fct_bars_1m: the newest N of a symbol, in time order
        newest = r.bars("FILUSDT", "1m", last=5)
        assert len(newest) == 5 and newest["ts"].is_monotonic_increasing
        assert newest["ts"].iloc[-1] == r.query("select max(ts) as ts from staging.stg_market__bars "
                                                "where symbol = 'FILUSDT' and bar_interval = '1m'")["ts"][0]
        # parameters are bound: a quote in a value is just a value
        assert r.bars("AAPL' or '1'='1", "1d").empty
        with pytest.raises(ValueError, match="interval"):
            r.bars("AAPL", "1d; drop table raw.bars")

        latest = r.latest_bars()
        assert set(latest["symbol"]) == {"AAPL", "MSFT", "FILUSDT"}  # FILUSDT: minutes rolled up to days
        us = latest[latest["exchange"] == "US"]
        assert len(us) == 2 and (us["ts"] == pd.Timestamp("2021-04-21", tz="UTC")).all()
        assert latest.set_index("symbol").loc["FILUSDT", "ts"] == pd.Timestamp("2023-04-30", tz="UTC")
        assert r.latest_bars(["MSFT"])["symbol"].tolist() == ["MSFT"]

        stats = r.price_stats("AAPL", 30).iloc[0]
        window = raw[raw["ts"] > pd.Timestamp("2021-04-21", tz="UTC") - pd.Timedelta(days=30)]
        assert stats["bars"] == len(window) and stats["last_close"] == pytest.approx(133.5)
        assert stats["high"] == pytest.approx(window["high"].max())
        assert stats["return"] == pytest.approx(133.5 / window["close"].iloc[0] - 1)

        prof = r.volume_profile("AAPL", "2021-01-01", "2021-04-21", bins=10)
        span = raw[(raw["ts"] >= pd.Timestamp("2021-01-01", tz="UTC"))]
        assert len(prof) <= 10 and prof["bars"].sum() == len(span)
        assert prof["volume"].sum() == pytest.approx(span["volume"].sum())
        assert prof["volume_share"].sum() == pytest.approx(1.0)

        f2 = r.features(["AAPL"], "2021-04-01", "2021-04-21")
        f1 = r.features("AAPL", "2021-04-01", "2021-04-21", version=1)
        assert len(f2) == len(f1) == 14 and set(f2["feature_version"]) != set(f1["feature_version"])
        with pytest.raises(ValueError, match="feature version"):
            r.features("AAPL", version=7)
        ts = r.training_set(["AAPL", "MSFT"], "2021-01-01", "2021-03-31")
        assert set(ts["symbol"]) == {"AAPL", "MSFT"} and "forward_return_5" in ts.columns

        perf = r.strategy_performance(strategy="hand")
        assert len(perf) >= 1 and set(perf["strategy"]) == {"hand"}
        assert r.strategy_performance(strategy="nope").empty

        sizes = r.table_sizes().set_index(["schema", "table"])
        assert sizes.loc[("raw", "bars"), "rows"] > 0 and ("marts", "fct_bars_1d") in sizes.index
        health = r.health()
        row = health[(health["check"] == "last_bar") & (health["subject"] == "US 1d")].iloc[0]
        assert row["n"] == 2 and row["value"].startswith("2021-04-21")


class PerValueReader(read.Reader):
    """The read API over the per-value PostgreSQL path (a Python object per value, pandas infers each
    column): the reference the column-wise query() must reproduce."""

    def query(self, sql, params=(), reverse=False):
        frame = self._query_rows(sql, params)
        return frame.iloc[::-1].reset_index(drop=True) if reverse else frame


def check_same_as_per_value(target) -> None:
    """Every read API result through the column-wise path equals the per-value path: values, dtypes,
    time zone, order. One difference by design: a double column with NULLs is float64 with NaN (the
    per-value path made it an object column of floats and None)."""
    calls = [
        lambda r: r.bars("AAPL", last=1000), lambda r: r.bars("AAPL", adjusted=False, last=7),
        lambda r: r.bars(["AAPL", "MSFT"], last=10), lambda r: r.bars(["AAPL", "MSFT"], "1d", "2020-08-25", "2020-09-01"),
        lambda r: r.bars("FILUSDT", "1m", "2023-02-01 00:00", "2023-02-01 00:09"), lambda r: r.bars("nope", last=5),
        lambda r: r.latest_bars(), lambda r: r.price_stats("AAPL", 30),
        lambda r: r.volume_profile("AAPL", "2021-01-01", "2021-04-21", bins=10),
        lambda r: r.features(["AAPL"], "2021-04-01", "2021-04-21"), lambda r: r.features("AAPL", version=1),
        lambda r: r.training_set(["AAPL", "MSFT"], "2021-01-01", "2021-03-31"),
        lambda r: r.strategy_performance(), lambda r: r.table_sizes(),
    ]
    with read.connect(target) as fast, PerValueReader(target) as slow:
        for call in calls:
            ours, ref = call(fast), call(slow)
            if ref.empty:  # the per-value path typed an empty result as all object
                assert ours.empty and list(ours.columns) == list(ref.columns)
                continue
            for name in [c for c in ref.columns if pd.api.types.is_object_dtype(ref[c])]:
                # floats and None (or only None) -> float64 with NaN, where ours is a double column
                if ours[name].dtype == "float64" and ref[name].dropna().map(lambda v: isinstance(v, float)).all():
                    ref[name] = ref[name].astype("float64")
            if list(ref.columns) == ["schema", "table", "rows", "bytes"]:
                # table_sizes reads live estimates: autovacuum and the aggregates' refresh jobs change a
                # table's bytes and rows between the two reads (CI: 1,581,056 then 1,507,328 bytes), so
                # these two are compared by type and sign; schema and table exactly
                for name in ("rows", "bytes"):
                    assert ours[name].dtype == ref[name].dtype == "int64" and (ours[name] >= 0).all()
                ours, ref = ours.drop(columns=["rows", "bytes"]), ref.drop(columns=["rows", "bytes"])
            pd.testing.assert_frame_equal(ours, ref, check_exact=True)
        assert fast.bars("AAPL", last=1000)["ts"].dtype == "datetime64[ns, UTC]"
        assert fast.query("select cast(null as timestamptz) as a, timestamptz '2021-01-02 03:04:05.678901+00' as b, "
                          "timestamp '1999-12-31 23:59:59.999999' as c").iloc[0].tolist() == [
            None, pd.Timestamp("2021-01-02 03:04:05.678901", tz="UTC"), pd.Timestamp("1999-12-31 23:59:59.999999")]


def test_read_api_duckdb(duckdb_target):
    build_sample("duckdb", duckdb_target)
    check_read_api(duckdb_target)
    with read.connect(duckdb_target) as r:  # newest first, reversed while converting == in time order
        ordered = r.query("select * from (select symbol, ts, close from marts.fct_bars_1d where symbol = ? "
                          "order by ts desc limit 1000) as x order by ts", ["AAPL"])
        pd.testing.assert_frame_equal(r.bars("AAPL", adjusted=False, last=1000)[["symbol", "ts", "close"]], ordered)
        # fct_bars_1d is written per symbol, newest first (the top-N of bars(last=N) fills from its first rows)
        stored = r.query("select symbol, exchange, ts from marts.fct_bars_1d order by rowid")
        newest_first = stored.sort_values(["symbol", "exchange", "ts"], ascending=[True, True, False], ignore_index=True)
        pd.testing.assert_frame_equal(stored, newest_first)
        # small results convert on this thread, large ones on pyarrow's pool: the same frame either way
        sql = "select * from marts.fct_bars_1d where symbol = ? order by ts desc limit 300"
        one_thread, saved = r.query(sql, ["AAPL"], reverse=True), read.THREADED_CONVERSION_CELLS
        try:
            read.THREADED_CONVERSION_CELLS = 1
            pd.testing.assert_frame_equal(r.query(sql, ["AAPL"], reverse=True), one_thread, check_exact=True)
        finally:
            read.THREADED_CONVERSION_CELLS = saved
        assert one_thread["ts"].is_monotonic_increasing and str(one_thread["ts"].dtype) == "datetime64[us, UTC]"
    # the module-level functions use the profile's default target
    try:
        assert len(read.bars("MSFT", last=5)) == 5
    finally:
        read.close()


def test_read_api_timescale(timescale_target):
    build_sample("timescale", timescale_target)
    check_read_api(timescale_target)
    check_same_as_per_value(timescale_target)
