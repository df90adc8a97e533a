"""Parsing real vendor files into typed rows (no database)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pandas as pd
import pytest

from market_warehouse.loaders.sources import alphavantage, binance_klines, generic, yfinance_format
from market_warehouse.loaders.sources.common import FormatError, infer_from_name
from market_warehouse.loaders.validate import validate

SAMPLE = Path(__file__).resolve().parents[3] / "data" / "sample"
AAPL = SAMPLE / "alphavantage" / "DA-AAPL-T-2021-04-21.csv.gz"
YF = SAMPLE / "yfinance"
FIL_FEB = SAMPLE / "binance_klines" / "FILUSDT-1m-2023-02.csv.gz"


def test_alphavantage_daily_adjusted_with_splits_and_dividends():
    b = alphavantage.parse(AAPL)
    assert len(b.bars) == 5402
    assert set(b.bars["symbol"]) == {"AAPL"} and set(b.bars["exchange"]) == {"US"}
    first = b.bars.iloc[0]
    assert first["ts"] == pd.Timestamp("1999-11-01", tz="UTC")
    assert (first["open"], first["high"], first["low"], first["close"]) == (80.0, 80.69, 77.37, 77.62)
    assert first["adj_close"] == pytest.approx(0.596878742448)
    splits = b.actions[b.actions["action"] == "split"].sort_values("ex_date")
    assert [str(d.date()) for d in splits["ex_date"]] == ["2000-06-21", "2005-02-28", "2014-06-09", "2020-08-31"]
    assert splits["value"].round(3).tolist() == [2.0, 2.0, 7.0, 4.0]
    assert (b.actions["action"] == "dividend").sum() > 30
    assert b.row_numbers.iloc[0] == 2 and b.row_numbers.iloc[-1] == 5403


def test_alphavantage_error_body_is_a_format_error_naming_the_file():
    bad = SAMPLE / "alphavantage" / "DA-BF.B-T-2021-04-21.csv"
    with pytest.raises(FormatError) as err:
        alphavantage.parse(bad)
    assert str(bad) in str(err.value) and "JSON" in str(err.value)


def test_alphavantage_symbol_from_name_and_wrong_header(tmp_path):
    assert infer_from_name(Path("DA-BRK.B-T-2021-04-21.csv.gz")) == {"symbol": "BRK.B"}
    f = tmp_path / "DA-X-T-2021-01-01.csv"
    f.write_text("date,o,h,l,c\n2020-01-02,1,2,0.5,1.5\n")
    with pytest.raises(FormatError, match="header is"):
        alphavantage.parse(f)


@pytest.mark.parametrize("name,symbol,exchange,interval,rows", [
    ("CALM-1d-no-bad-divs.csv", "CALM", "US", "1d", 662),
    ("4063-T-1d-bad-stock-split-fixed.csv", "4063.T", "XTKS", "1d", 22),  # newest first
    ("ASAI-L-1h-bad-unit.csv", "ASAI.L", "XLON", "1h", 20),
    ("AV-L-1wk-bad-stock-split.csv", "AV.L", "XLON", "1wk", 84),
    ("EA-15m-no-bad-divs.csv", "EA", "US", "15m", 319),
    ("DODFX-1d-cg-double-count.csv", "DODFX", "US", "1d", 502),  # has Capital Gains
    ("SCR-TO-1d-bad-div-fixed.csv", "SCR.TO", "XTSE", "1d", 722),  # has Repaired?
])
def test_yfinance_history_layout(name, symbol, exchange, interval, rows):
    b = yfinance_format.parse_file(YF / name)
    v = validate(b)
    assert len(v.bars) == rows and v.rejected.empty
    assert set(b.bars["symbol"]) == {symbol} and set(b.bars["exchange"]) == {exchange}
    assert set(b.bars["interval"]) == {interval}


def test_yfinance_daily_bars_keep_the_local_session_date():
    # Tokyo daily bars are stamped 00:00+09:00 = 15:00 UTC the day before: keep the session date.
    b = yfinance_format.parse_file(YF / "4063-T-1d-bad-stock-split-fixed.csv")
    assert pd.Timestamp("2023-04-14", tz="UTC") in set(b.bars["ts"])
    assert (b.bars["ts"].dt.hour == 0).all()


def test_yfinance_intraday_is_utc_across_offsets():
    b = yfinance_format.parse_file(YF / "EA-15m-no-bad-divs.csv")
    # 2026-05-26 04:00:00-04:00 -> 08:00 UTC
    assert b.bars["ts"].min() == pd.Timestamp("2026-05-26 08:00", tz="UTC")


def test_yfinance_either_row_order_gives_the_same_rows(tmp_path):
    src = YF / "CALM-1d-no-bad-divs.csv"
    lines = src.read_text().splitlines()
    rev = tmp_path / "CALM-1d-reversed.csv"
    rev.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    a = validate(yfinance_format.parse_file(src)).bars.sort_values("ts").reset_index(drop=True)
    b = validate(yfinance_format.parse_file(rev)).bars.sort_values("ts").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_yfinance_download_layout_multiindex_header():
    b = yfinance_format.parse_file(YF / "yfinance_download_SPY_5m_head.csv")
    v = validate(b)
    assert len(v.bars) == 14 and set(v.bars["symbol"]) == {"SPY"} and set(v.bars["interval"]) == {"5m"}
    first = v.bars.sort_values("ts").iloc[0]
    assert first["ts"] == pd.Timestamp("2026-04-24 13:30", tz="UTC")
    assert first["open"] == pytest.approx(710.75) and first["volume"] == 3339728
    assert b.row_numbers.min() == 4  # three header rows


def test_yfinance_dividends_and_splits_become_actions():
    b = yfinance_format.parse_file(YF / "4063-T-1d-bad-stock-split-fixed.csv")
    acts = b.actions
    assert {"split", "dividend"} <= set(acts["action"])
    split = acts[acts["action"] == "split"].iloc[0]
    assert split["value"] == 5.0 and str(split["ex_date"].date()) == "2023-03-30"


def test_binance_klines_with_and_without_header(tmp_path):
    with_header = binance_klines.parse(FIL_FEB)
    text = gzip.decompress(FIL_FEB.read_bytes()).decode().split("\n", 1)[1]
    headerless = tmp_path / "FILUSDT-1m-2023-02.csv"
    headerless.write_text(text)
    without = binance_klines.parse(headerless)
    assert len(with_header.bars) == len(without.bars) == 40320
    pd.testing.assert_frame_equal(with_header.bars, without.bars)
    assert without.row_numbers.iloc[0] == 1 and with_header.row_numbers.iloc[0] == 2
    first = with_header.bars.iloc[0]
    assert first["ts"] == pd.Timestamp("2023-02-01 00:00", tz="UTC")
    assert first["trade_count"] == 403 and first["quote_volume"] == pytest.approx(185580.3531)
    assert first["vwap"] == pytest.approx(185580.3531 / 35462.8)


def test_binance_microsecond_times(tmp_path):
    f = tmp_path / "BTCUSDT-1m-2025-01.csv"
    f.write_text("1735689600000000,1,2,0.5,1.5,10,1735689659999999,15,3,5,7.5,0\n")
    assert binance_klines.parse(f).bars["ts"].iloc[0] == pd.Timestamp("2025-01-01", tz="UTC")


def test_generic_csv_and_parquet_with_a_mapping(tmp_path):
    frame = pd.DataFrame({"Date": ["2024-01-02", "2024-01-03"], "o": [1.0, 2.0], "h": [2.0, 3.0],
                          "l": [0.5, 1.5], "c": [1.5, 2.5], "vol": [100, 200], "ticker": ["XYZ", "XYZ"]})
    mapping = generic.parse_mapping("ts=Date,open=o,high=h,low=l,close=c,volume=vol,symbol=ticker")
    csv = tmp_path / "bars.csv"
    frame.to_csv(csv, index=False)
    pq = tmp_path / "bars.parquet"
    frame.to_parquet(pq)
    a = generic.parse(csv, interval="1d", mapping=mapping)
    b = generic.parse(pq, interval="1d", mapping=mapping)
    pd.testing.assert_frame_equal(a.bars, b.bars)
    assert list(a.bars["symbol"]) == ["XYZ", "XYZ"] and a.bars["close"].tolist() == [1.5, 2.5]
    with pytest.raises(FormatError, match="missing required columns"):
        generic.parse(csv, interval="1d", mapping={"ts": "Date"})
    with pytest.raises(ValueError, match="FIELD=COLUMN"):
        generic.parse_mapping("when=Date")


def test_unparsable_and_malformed_rows_are_reported_by_line(tmp_path):
    f = tmp_path / "DA-ZZZ-T-2021-01-01.csv"
    shutil.copyfile(AAPL, tmp_path / "x.gz")
    f.write_text(
        "timestamp,open,high,low,close,adjusted_close,volume,dividend_amount,split_coefficient\n"
        "2020-01-02,10,11,9,10.5,10.5,100,0,1\n"
        "2020-01-03,abc,11,9,10.5,10.5,100,0,1\n"
        "2020-01-06,10,11,9\n"
        "not-a-date,10,11,9,10.5,10.5,100,0,1\n"
        "2020-01-07,10,11,9,10.5,10.5,,0,1\n"
    )
    v = validate(alphavantage.parse(f))
    assert len(v.bars) == 1
    got = dict(zip(v.rejected["row_number"], v.rejected["reason"]))
    assert got[3] == "unparsable number in open: 'abc'"
    assert got[4].startswith("malformed row")
    assert got[5] == "unparsable time: 'not-a-date'"
    assert got[6] == "missing volume"
    assert '"open": "abc"' in v.rejected.set_index("row_number").loc[3, "record"]
