"""The yfinance loader, offline: frames shaped exactly like yfinance's output (rebuilt from real
yfinance CSVs) are served by a stand-in for the network call."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pytest
from yfinance.exceptions import YFPricesMissingError, YFRateLimitError

from market_warehouse.loaders.sinks import open_sink
from market_warehouse.loaders.sources.yfinance_api import plan_chunks
from market_warehouse.loaders.sources.yfinance_format import frame_to_batch
from market_warehouse.loaders.yfinance_load import load_yfinance

YF = Path(__file__).resolve().parents[3] / "data" / "sample" / "yfinance"
NOW = pd.Timestamp("2026-06-01 12:00", tz="UTC")


def history_frame(name: str, tz: str) -> pd.DataFrame:
    """What Ticker.history(auto_adjust=False, actions=True) returns: a tz-aware DatetimeIndex named
    Date/Datetime and flat columns."""
    df = pd.read_csv(YF / name, index_col=0)
    df.index = pd.DatetimeIndex(pd.to_datetime(df.index, utc=True).tz_convert(tz), name=df.index.name)
    return df.sort_index()[["Open", "High", "Low", "Close", "Adj Close", "Volume", "Dividends", "Stock Splits"]]


def download_frame() -> pd.DataFrame:
    """What yf.download() returns: (Price, Ticker) MultiIndex columns."""
    df = pd.read_csv(YF / "yfinance_download_SPY_5m_head.csv", header=[0, 1], index_col=0)
    df.index = pd.DatetimeIndex(pd.to_datetime(df.index, utc=True).tz_convert("America/New_York"),
                                name="Datetime")
    df.columns.names = ["Price", "Ticker"]
    return df


class FakeYahoo:
    """Serves slices of real frames; records every request; can fail on cue."""

    def __init__(self, frames: dict[str, pd.DataFrame], failures: dict[str, list[Exception]] | None = None):
        self.frames = frames
        self.failures = failures or {}
        self.calls: list[tuple[str, pd.Timestamp, pd.Timestamp, str]] = []

    def __call__(self, symbol, start, end, interval):
        self.calls.append((symbol, start, end, interval))
        queue = self.failures.get(symbol)
        if queue:
            raise queue.pop(0)
        frame = self.frames[symbol]
        idx = frame.index.tz_convert("UTC")
        if interval in ("1d", "1wk"):  # Yahoo takes daily ranges by date
            idx = idx.normalize().tz_localize(None).tz_localize("UTC")
        return frame[(idx >= start) & (idx < end)]


def test_chunks_respect_yahoo_history_limits():
    one_min = plan_chunks(NOW - pd.Timedelta(days=90), NOW, "1m", NOW)
    assert one_min[0][0] >= NOW - pd.Timedelta(days=30)
    assert all(hi - lo <= pd.Timedelta(days=7) for lo, hi in one_min)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(one_min))  # contiguous
    assert one_min[-1][1] == NOW
    hourly = plan_chunks(NOW - pd.Timedelta(days=3000), NOW, "1h", NOW)
    assert hourly[0][0] >= NOW - pd.Timedelta(days=730)
    assert all(hi - lo <= pd.Timedelta(days=730) for lo, hi in hourly)
    five = plan_chunks(NOW - pd.Timedelta(days=59), NOW, "5m", NOW)
    assert len(five) == 1 and five[0][1] - five[0][0] <= pd.Timedelta(days=60)
    assert plan_chunks(pd.Timestamp("2004-01-01", tz="UTC"), NOW, "1d", NOW) == [
        (pd.Timestamp("2004-01-01", tz="UTC"), NOW)]


def test_daily_load_then_incremental_run_fetches_only_the_overlap(duckdb_target):
    calm = history_frame("CALM-1d-no-bad-divs.csv", "America/New_York")
    fake = FakeYahoo({"CALM": calm})
    with open_sink(duckdb_target) as sink:
        (r,) = load_yfinance(sink, ["CALM"], "1d", start="2022-01-01", run_id="r1", fetch=fake, now=NOW)
        assert (r.status, r.loaded) == ("success", 662)
        assert sink.query("select count(*) from raw.corporate_actions where symbol = 'CALM'")[0][0] == 10
        last = sink.query("select max(ts) from raw.bars where symbol = 'CALM'")[0][0]
        (r2,) = load_yfinance(sink, ["CALM"], "1d", start="2022-01-01", run_id="r2", fetch=fake, now=NOW)
        start_asked = fake.calls[-1][1]
        assert start_asked == pd.Timestamp(last) - pd.Timedelta(days=7)
        assert (r2.loaded, r2.replaced) == (0, 0) and 0 < r2.duplicate <= 7
        assert sink.query("select count(*) from raw.bars where symbol = 'CALM'")[0][0] == 662
        # The raw prices are kept and adjusted close beside them (auto_adjust=False).
        close, adj = sink.query("select close, adj_close from raw.bars where symbol = 'CALM' "
                                "and ts = timestamptz '2022-01-03 00:00:00+00'")[0]
        assert close == pytest.approx(37.70000076293945) and adj == pytest.approx(32.6307373046875)


def test_rate_limits_are_retried_with_backoff(duckdb_target):
    fake = FakeYahoo({"EWG": history_frame("EWG-1d-no-bad-divs.csv", "America/New_York")},
                     failures={"EWG": [YFRateLimitError(), YFRateLimitError()]})
    slept: list[float] = []
    with open_sink(duckdb_target) as sink:
        (r,) = load_yfinance(sink, ["EWG"], "1d", start="2022-01-01", fetch=fake, now=NOW,
                                 sleep=slept.append)
    assert r.status == "success" and r.loaded == 662
    assert len(fake.calls) == 3 and len(slept) == 2 and slept[1] > slept[0]


def test_a_failing_symbol_is_reported_and_the_others_load(duckdb_target):
    frames = {"CALM": history_frame("CALM-1d-no-bad-divs.csv", "America/New_York"),
              "EWG": history_frame("EWG-1d-no-bad-divs.csv", "America/New_York")}
    fake = FakeYahoo(frames, failures={"NOPE": [YFPricesMissingError("NOPE", "no data")]})
    with open_sink(duckdb_target) as sink:
        reports = load_yfinance(sink, ["CALM", "NOPE", "EWG"], "1d", start="2022-01-01", run_id="r",
                                    fetch=fake, now=NOW, sleep=lambda s: None)
        assert [r.status for r in reports] == ["success", "failed", "success"]
        assert "yfinance:NOPE:1d" in reports[1].error and "YFPricesMissingError" in reports[1].error
        assert sum(1 for c in fake.calls if c[0] == "NOPE") == 1  # not retried: retrying cannot help
        runs = sink.query("select source, status from raw.loader_runs order by source")
        assert runs == [("yfinance:CALM:1d", "success"), ("yfinance:EWG:1d", "success"),
                        ("yfinance:NOPE:1d", "failed")]


def test_intraday_fetch_in_chunks_keeps_what_succeeded(duckdb_target):
    # The real SPY bars (Apr 24 and Apr 27) served as a 1m history: with `now` on May 15 the
    # 30-day window starts Apr 15 12:00, so the first 6.5-day chunk ends Apr 22 00:00, the second
    # Apr 28 12:00 (all 14 bars); every later chunk keeps failing.
    spy = download_frame()
    now = pd.Timestamp("2026-05-15", tz="UTC")
    fake = FakeYahoo({"SPY": spy})
    chunks = plan_chunks(pd.Timestamp("2026-03-20", tz="UTC"), now, "1m", now)
    assert chunks[1] == (pd.Timestamp("2026-04-22", tz="UTC"), pd.Timestamp("2026-04-28 12:00", tz="UTC"))

    def fetch(symbol, start, end, interval):
        if start > chunks[1][0]:
            raise ConnectionError("network unreachable")
        return fake(symbol, start, end, interval)

    with open_sink(duckdb_target) as sink:
        (r,) = load_yfinance(sink, ["SPY"], "1m", start="2026-03-20", fetch=fetch, now=now,
                                 sleep=lambda s: None)
        assert r.status == "partial" and "network unreachable" in r.error and r.loaded == 14
        assert sink.query("select status from raw.loader_runs") == [("partial",)]


def test_download_multiindex_frame_is_understood():
    b = frame_to_batch(download_frame(), "yfinance:SPY:5m", "5m")
    assert set(b.bars["symbol"]) == {"SPY"} and len(b.bars) == 14
    assert b.bars["ts"].min() == pd.Timestamp("2026-04-24 13:30", tz="UTC")
    grouped = download_frame().swaplevel(0, 1, axis=1)  # group_by='ticker'
    b2 = frame_to_batch(grouped, "yfinance:SPY:5m", "5m")
    pd.testing.assert_frame_equal(b.bars, b2.bars)
