"""Any CSV or Parquet of bars, with a column mapping: ``--map ts=Date,open=o,high=h,...``.

Mappable fields: ts (required), open, high, low, close, volume (required), symbol, exchange, interval,
adj_close, vwap, trade_count, quote_volume. Unmapped fields of the same name are taken as is.
Times: ISO strings with or without offset (naive = UTC), or epoch seconds/ms/us/ns (``--time-unit``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from market_warehouse.loaders.sources.common import (
    DAILY_OR_LONGER,
    FieldParser,
    FormatError,
    ParsedBatch,
    assemble_bars,
    infer_from_name,
    line_numbers,
    read_csv_strings,
    vendor_format,
)

FIELDS = ["ts", "open", "high", "low", "close", "volume", "symbol", "exchange", "interval",
          "adj_close", "vwap", "trade_count", "quote_volume"]
REQUIRED = ["ts", "open", "high", "low", "close", "volume"]


def parse_mapping(spec: str | None) -> dict[str, str]:
    """'ts=Date,open=o' -> {'ts': 'Date', 'open': 'o'}."""
    mapping: dict[str, str] = {}
    for part in filter(None, (spec or "").split(",")):
        field, sep, column = part.partition("=")
        field = field.strip()
        if not sep or field not in FIELDS:
            raise ValueError(f"--map: {part!r} is not FIELD=COLUMN with FIELD one of {', '.join(FIELDS)}")
        mapping[field] = column.strip()
    return mapping


@vendor_format("generic", "a CSV", parquet=True)
def parse(path: Path, text: str | None, symbol: str | None = None, exchange: str | None = None,
          interval: str | None = None, mapping: dict[str, str] | None = None,
          time_unit: str | None = None) -> ParsedBatch:
    mapping = mapping or {}
    if text is None:
        try:
            table = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise FormatError(f"{path}: not a readable Parquet file: {exc}") from exc
        raw = table.astype(str).replace({"nan": "", "None": "", "NaT": "", "<NA>": ""}).reset_index(drop=True)
        rows = pd.Series(np.arange(len(raw)) + 1, index=raw.index)
    else:
        raw = read_csv_strings(text)
        rows = line_numbers(raw, 1)
    absent = [f"{f}={c}" for f, c in mapping.items() if c not in raw.columns]
    if absent:
        raise FormatError(f"{path}: --map {', '.join(absent)}: no such column in the file; it has "
                          f"{', '.join(map(str, raw.columns))}")
    columns = {f: mapping.get(f, f) for f in FIELDS}
    missing = [f"{f} (column {columns[f]!r})" for f in REQUIRED if columns[f] not in raw.columns]
    if missing:
        raise FormatError(f"{path}: missing required columns: {', '.join(missing)}; "
                          f"file has {', '.join(map(str, raw.columns))}. Map them with --map FIELD=COLUMN")
    named = infer_from_name(path)

    def constant_or_column(field: str, given: str | None) -> pd.Series | str | None:
        if given:
            return given
        if columns[field] in raw.columns:
            return raw[columns[field]].str.strip()
        return named.get(field)

    sym = constant_or_column("symbol", symbol)
    ivl = constant_or_column("interval", interval)
    if sym is None or ivl is None:
        raise FormatError(f"{path}: no {'symbol' if sym is None else 'interval'}: map a column or "
                          f"pass --symbol/--interval")
    exch = constant_or_column("exchange", exchange)
    if exch is None:
        exch = "US"
    p = FieldParser(raw)
    if time_unit:
        ts = p.times(columns["ts"], epoch_unit=time_unit)
    else:
        daily = isinstance(ivl, str) and ivl in DAILY_OR_LONGER
        ts = p.times(columns["ts"], date_label=daily)
    opt = {f: p.number(columns[f], f, required=False)
           for f in ("adj_close", "vwap", "quote_volume") if columns[f] in raw.columns}
    if columns["trade_count"] in raw.columns:
        opt["trade_count"] = p.integer(columns["trade_count"], "trade_count")
    bars = assemble_bars(
        raw.index, ts=ts, symbol=sym, exchange=exch, interval=ivl,
        open=p.number(columns["open"], "open"), high=p.number(columns["high"], "high"),
        low=p.number(columns["low"], "low"), close=p.number(columns["close"], "close"),
        volume=p.number(columns["volume"], "volume"), **opt,
    )
    return ParsedBatch(
        bars=bars, raw=raw, row_numbers=rows, parse_errors=p.errors,
        parameters={"mapping": mapping, "symbol": symbol, "exchange": exchange, "interval": interval},
    )
