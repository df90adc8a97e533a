"""Alpha Vantage daily (adjusted) CSV: timestamp,open,high,low,close,adjusted_close,volume,
dividend_amount,split_coefficient. O/H/L/C are raw; dividends and splits become corporate actions."""

from __future__ import annotations

from pathlib import Path

from market_warehouse.loaders.sources.common import (
    FieldParser,
    FormatError,
    ParsedBatch,
    actions_from,
    assemble_bars,
    infer_from_name,
    line_numbers,
    read_csv_strings,
    vendor_format,
)

ADJUSTED = ["timestamp", "open", "high", "low", "close", "adjusted_close", "volume",
            "dividend_amount", "split_coefficient"]
PLAIN = ["timestamp", "open", "high", "low", "close", "volume"]


@vendor_format("alphavantage", "an Alpha Vantage daily CSV")
def parse(path: Path, text: str, symbol: str | None = None, exchange: str | None = None,
          interval: str | None = None) -> ParsedBatch:
    raw = read_csv_strings(text)
    cols = [c.strip() for c in raw.columns]
    if cols not in (ADJUSTED, PLAIN):
        raise FormatError(f"{path}: not an Alpha Vantage daily CSV: header is {','.join(cols)!r}, "
                          f"expected {','.join(ADJUSTED)!r}")
    raw.columns = cols
    symbol = symbol or infer_from_name(path).get("symbol")
    if not symbol:
        raise FormatError(f"{path}: no symbol: the file name does not carry one (DA-<SYMBOL>-T-<date>.csv); "
                          f"pass --symbol")
    exchange = exchange or "US"
    interval = interval or "1d"
    p = FieldParser(raw)
    ts = p.times("timestamp", date_label=True)
    adjusted = "adjusted_close" in raw
    bars = assemble_bars(
        raw.index, ts=ts, symbol=symbol, exchange=exchange, interval=interval,
        open=p.number("open"), high=p.number("high"), low=p.number("low"), close=p.number("close"),
        volume=p.number("volume"),
        adj_close=p.number("adjusted_close") if adjusted else None,
    )
    actions = actions_from(
        ts, symbol, exchange,
        p.number("dividend_amount", required=False) if adjusted else None,
        p.number("split_coefficient", required=False) if adjusted else None,
    )
    return ParsedBatch(
        bars=bars, raw=raw, row_numbers=line_numbers(raw, 1), parse_errors=p.errors, actions=actions,
        parameters={"symbol": symbol, "exchange": exchange, "interval": interval},
    )
