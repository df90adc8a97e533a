"""Binance kline CSV (public data dumps): open_time,open,high,low,close,volume,close_time,
quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore — with or without the header row
(older dumps have none); times in epoch milliseconds (microseconds in newer spot dumps)."""

from __future__ import annotations

from pathlib import Path

from market_warehouse.loaders.sources.common import (
    FieldParser,
    FormatError,
    ParsedBatch,
    assemble_bars,
    infer_from_name,
    line_numbers,
    read_csv_strings,
    vendor_format,
)

COLUMNS = ["open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
           "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore"]


@vendor_format("binance-klines", "a Binance klines CSV")
def parse(path: Path, text: str, symbol: str | None = None, exchange: str | None = None,
          interval: str | None = None) -> ParsedBatch:
    first = text.lstrip().split("\n", 1)[0].strip().split(",")
    has_header = first[0].strip() == "open_time"
    if len(first) != len(COLUMNS):
        raise FormatError(f"{path}: not a Binance klines CSV: first line has {len(first)} fields, "
                          f"expected {len(COLUMNS)} ({','.join(COLUMNS)})")
    if has_header and [c.strip() for c in first] != COLUMNS:
        raise FormatError(f"{path}: not a Binance klines CSV: header is {','.join(first)!r}")
    if not has_header and not first[0].strip().isdigit():
        raise FormatError(f"{path}: not a Binance klines CSV: first field {first[0]!r} is neither the "
                          f"header 'open_time' nor an epoch time")
    raw = read_csv_strings(text, header=has_header, names=None if has_header else COLUMNS)
    named = infer_from_name(path)
    symbol = symbol or named.get("symbol")
    interval = interval or named.get("interval")
    if not symbol or not interval:
        raise FormatError(f"{path}: cannot tell symbol/interval from the file name "
                          f"(<SYMBOL>-<interval>-<date>.csv); pass --symbol and --interval")
    exchange = exchange or "BINANCE"
    p = FieldParser(raw)
    bars = assemble_bars(
        raw.index, ts=p.times("open_time", epoch_unit="auto", name="open_time"),
        symbol=symbol, exchange=exchange, interval=interval,
        open=p.number("open"), high=p.number("high"), low=p.number("low"), close=p.number("close"),
        volume=p.number("volume"), quote_volume=p.number("quote_volume", required=False),
        trade_count=p.integer("count", "count"),
        taker_buy_volume=p.number("taker_buy_volume", required=False),
        taker_buy_quote_volume=p.number("taker_buy_quote_volume", required=False),
    )
    qv, vol = bars["quote_volume"], bars["volume"]
    bars["vwap"] = (qv / vol).where(vol > 0)
    return ParsedBatch(
        bars=bars, raw=raw, row_numbers=line_numbers(raw, 1 if has_header else 0), parse_errors=p.errors,
        parameters={"symbol": symbol, "exchange": exchange, "interval": interval},
    )
