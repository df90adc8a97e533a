"""yfinance output, from a CSV or straight from the library: the ``Ticker.history()`` layout (flat
columns: Date|Datetime, Open, High, Low, Close, Adj Close, Volume, Dividends, Stock Splits[, Capital
Gains, Repaired?]) and the ``yf.download()`` layout (a (Price, Ticker) column MultiIndex; in a CSV, the
three header rows Price / Ticker / Datetime). Either row order. Times carry the exchange's UTC offset:
intraday bars are stored at their UTC instant, daily and longer bars at their local session date."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from market_warehouse.loaders.sources.common import (
    DAILY_OR_LONGER,
    FieldParser,
    FormatError,
    ParsedBatch,
    actions_from,
    assemble_bars,
    exchange_for_yahoo_symbol,
    infer_from_name,
    read_csv_strings,
    vendor_format,
)

PRICE_FIELDS = ["Open", "High", "Low", "Close", "Adj Close", "Volume", "Dividends", "Stock Splits",
                "Capital Gains", "Repaired?"]
REQUIRED = ["Open", "High", "Low", "Close", "Volume"]


@vendor_format("yfinance", "a yfinance CSV", loader="yfinance-csv")
def parse_file(path: Path, text: str, symbol: str | None = None, exchange: str | None = None,
               interval: str | None = None) -> ParsedBatch:
    lines = text.lstrip().split("\n", 3)
    first = lines[0].strip().split(",")
    named = infer_from_name(path)
    if first[0] == "Price" and len(lines) > 2 and lines[1].startswith("Ticker"):
        # download() layout: Price row, Ticker row, then the index-name row.
        header = pd.read_csv(io.StringIO(text), header=[0, 1], index_col=0, nrows=0)
        body = read_csv_strings(text, header=False)
        malformed = body.attrs.get("malformed", [])
        body = body.iloc[3:]
        tickers = [t for _, t in header.columns]
        fields = [f for f, _ in header.columns]
        long = _long_from_download(body, fields, tickers, first_line=4)
    elif first[0] in ("Date", "Datetime"):
        raw = read_csv_strings(text)
        malformed = raw.attrs.get("malformed", [])
        missing = [c for c in REQUIRED if c not in raw.columns]
        if missing:
            raise FormatError(f"{path}: not a yfinance history CSV: missing columns {missing}")
        sym = symbol or named.get("symbol")
        if not sym:
            raise FormatError(f"{path}: no symbol in the file or its name; pass --symbol")
        long = raw.rename(columns={first[0]: "time"})
        long.insert(1, "symbol", sym)
        long["_row"] = raw.attrs["lines"]
    else:
        raise FormatError(f"{path}: not a yfinance CSV: first header field is {first[0]!r}, expected "
                          f"'Date'/'Datetime' (history) or 'Price' (download)")
    if symbol:
        long["symbol"] = symbol
    batch = _batch(long, source=str(path), exchange=exchange,
                   interval=interval or named.get("interval"), loader="yfinance-csv")
    batch.malformed = malformed
    return batch


def _long_from_download(body: pd.DataFrame, fields: list[str], tickers: list[str],
                        first_line: int) -> pd.DataFrame:
    """One row per (time, ticker) from the wide download() layout."""
    body = body.reset_index(drop=True)
    rows = []
    for ticker in dict.fromkeys(tickers):
        part = pd.DataFrame({"time": body.iloc[:, 0].values})
        for i, (f, t) in enumerate(zip(fields, tickers)):
            if t == ticker:
                part[f] = body.iloc[:, i + 1].values
        part.insert(1, "symbol", ticker)
        part["_row"] = np.arange(len(part)) + first_line
        rows.append(part)
    return pd.concat(rows, ignore_index=True)


def frame_to_batch(frame: pd.DataFrame, source: str, interval: str, symbol: str | None = None,
                   exchange: str | None = None) -> ParsedBatch:
    """A DataFrame as yfinance returns it (download() or history(); flat or MultiIndex columns)."""
    frame = frame.copy()
    times = pd.Series(frame.index).map(lambda t: t.isoformat(sep=" ") if pd.notna(t) else "")
    if isinstance(frame.columns, pd.MultiIndex):
        lvl0 = set(frame.columns.get_level_values(0))
        if not lvl0 & set(PRICE_FIELDS):  # group_by='ticker': (Ticker, Price)
            frame.columns = frame.columns.swaplevel(0, 1)
        fields = [str(f) for f in frame.columns.get_level_values(0)]
        tickers = [str(t) for t in frame.columns.get_level_values(1)]
        body = frame.astype(str).replace({"nan": "", "<NA>": "", "None": ""})
        body.insert(0, "time", times.values)
        long = _long_from_download(body, fields, tickers, first_line=1)
    else:
        if not symbol:
            raise ValueError("frame_to_batch: a flat frame needs the symbol")
        long = frame.astype(str).replace({"nan": "", "<NA>": "", "None": ""}).reset_index(drop=True)
        long.insert(0, "time", times.values)
        long.insert(1, "symbol", symbol)
        long["_row"] = np.arange(len(long)) + 1
    return _batch(long, source=source, exchange=exchange, interval=interval, loader="yfinance")


def infer_interval(times: pd.Series) -> str:
    diffs = times.dropna().sort_values().diff().dropna()
    if diffs.empty:
        return "1d"
    step = diffs.median()
    minutes = step.total_seconds() / 60
    for label, mins in (("1m", 1), ("2m", 2), ("5m", 5), ("15m", 15), ("30m", 30), ("1h", 60)):
        if minutes <= mins * 1.01:
            return label
    if minutes < 60 * 24:
        return "1h"
    days = minutes / 1440
    return "1d" if days < 4 else "1wk" if days < 20 else "1mo"


def _batch(long: pd.DataFrame, source: str, exchange: str | None, interval: str | None,
           loader: str) -> ParsedBatch:
    for f in PRICE_FIELDS:
        if f not in long.columns:
            long[f] = ""
    long = long.reset_index(drop=True)
    raw = long.drop(columns=["_row"])
    p = FieldParser(raw)
    if interval is None:
        probe = pd.to_datetime(raw["time"].str.strip(), errors="coerce", utc=True)
        interval = infer_interval(probe)
    ts = p.times("time", date_label=interval in DAILY_OR_LONGER)
    symbols = raw["symbol"]
    exchanges = pd.Series(exchange, index=raw.index) if exchange else symbols.map(exchange_for_yahoo_symbol)
    bars = assemble_bars(
        raw.index, ts=ts, symbol=symbols, exchange=exchanges, interval=interval,
        open=p.number("Open"), high=p.number("High"), low=p.number("Low"), close=p.number("Close"),
        volume=p.number("Volume"), adj_close=p.number("Adj Close", required=False),
    )
    dividends = p.number("Dividends", required=False)
    splits = p.number("Stock Splits", required=False)
    actions = [
        actions_from(ts[m], sym, exchanges[m].iloc[0], dividends[m], splits[m])
        for sym, m in ((s, symbols == s) for s in symbols.unique())
    ]
    actions_frame = pd.concat(actions, ignore_index=True) if actions else None
    return ParsedBatch(
        source=source, loader=loader, bars=bars, raw=raw,
        row_numbers=long["_row"].astype("int64"), parse_errors=p.errors,
        actions=actions_frame if actions_frame is not None else actions_from(ts, "", "", None, None),
        parameters={"symbols": sorted(symbols.unique().tolist()), "interval": interval},
    )
