"""Alpha Vantage daily (adjusted) CSV: timestamp,open,high,low,close,adjusted_close,volume,
dividend_amount,split_coefficient. O/H/L/C are raw; dividends and splits become corporate actions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from market_warehouse.loaders.sources.common import (
    GROUP_FORMATS,
    FieldParser,
    FormatError,
    ParsedBatch,
    ParsedGroup,
    actions_from,
    assemble_bars,
    infer_from_name,
    line_numbers,
    read_csv_strings,
    read_csv_table,
    read_text,
    reject_non_csv,
    vendor_format,
)

EXPECTED = "an Alpha Vantage daily CSV"

ADJUSTED = ["timestamp", "open", "high", "low", "close", "adjusted_close", "volume",
            "dividend_amount", "split_coefficient"]
PLAIN = ["timestamp", "open", "high", "low", "close", "volume"]


@vendor_format("alphavantage", EXPECTED)
def parse(path: Path, text: str, symbol: str | None = None, exchange: str | None = None,
          interval: str | None = None) -> ParsedBatch:
    raw = read_csv_strings(text)
    raw.columns = _columns(path, list(raw.columns))
    symbol = _symbol(path, symbol)
    exchange = exchange or "US"
    interval = interval or "1d"
    return _typed(raw, line_numbers(raw, 1), symbol, exchange, interval, {
        "symbol": symbol, "exchange": exchange, "interval": interval})


def _columns(path: Path, names: list[str]) -> list[str]:
    cols = [c.strip() for c in names]
    if cols not in (ADJUSTED, PLAIN):
        raise FormatError(f"{path}: not an Alpha Vantage daily CSV: header is {','.join(cols)!r}, "
                          f"expected {','.join(ADJUSTED)!r}")
    return cols


def _symbol(path: Path, symbol: str | None) -> str:
    symbol = symbol or infer_from_name(path).get("symbol")
    if not symbol:
        raise FormatError(f"{path}: no symbol: the file name does not carry one (DA-<SYMBOL>-T-<date>.csv); "
                          f"pass --symbol")
    return symbol


def _typed(raw: pd.DataFrame, rows: pd.Series, symbol: str | pd.Categorical, exchange: str | pd.Categorical,
           interval: str | pd.Categorical, parameters: dict) -> ParsedBatch:
    """The typed batch of one file's or a group's fields (symbol, exchange, interval: one, or one per
    row as a Categorical)."""
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
    return ParsedBatch(bars=bars, raw=raw, row_numbers=rows, parse_errors=p.errors, actions=actions,
                       parameters=parameters)


def _one(value: str, n: int) -> pd.Categorical:
    """`value` for n rows, as a Categorical of one category."""
    return pd.Categorical.from_codes(np.zeros(n, dtype="int8"), categories=pd.Index([value], dtype=object))


def parse_many(paths: list[Path], symbol: str | None = None, exchange: str | None = None,
               interval: str | None = None) -> list:
    """Consecutive files with the same header as one batch (`ParsedGroup`); a file that cannot be
    read or is not this format is its own error, as with `parse`. File order is kept."""
    exchange = exchange or "US"
    interval = interval or "1d"
    out: list = []
    run: list[tuple[int, Path, pa.Table, np.ndarray, list, str]] = []

    def flush() -> None:
        if not run:
            return
        tables = [r[2] for r in run]
        counts = np.array([t.num_rows for t in tables], dtype="int64")
        raw = pa.concat_tables(tables).to_pandas(types_mapper=pd.ArrowDtype)
        # The group's symbol as a Categorical (each file's symbol repeated by code, not by string);
        # exchange and interval too. The rules, the encoding and the writers read the codes.
        codes, names = pd.factorize(pd.Series([r[5] for r in run], dtype=object))
        symbols = pd.Categorical.from_codes(np.repeat(codes, counts), categories=pd.Index(names, dtype=object))
        rows = pd.Series(np.concatenate([r[3] for r in run]), index=raw.index, dtype="int64")
        params = [{"symbol": r[5], "exchange": exchange, "interval": interval} for r in run]
        n = int(counts.sum())
        batch = _typed(raw, rows, symbols, _one(exchange, n), _one(interval, n), params[0])
        batch.source, batch.loader = str(run[0][1]), "alphavantage"
        out.append(([r[0] for r in run], ParsedGroup(
            batch=batch, sources=[str(r[1]) for r in run],
            bounds=np.concatenate([[0], np.cumsum(counts)]), parameters=params,
            malformed=[r[4] for r in run])))
        run.clear()

    for i, path in enumerate(map(Path, paths)):
        try:
            text = read_text(path)
            reject_non_csv(path, text, EXPECTED)
            table, lines, malformed = read_csv_table(text)
            cols = _columns(path, table.column_names)
            table = table.rename_columns(cols)
            sym = _symbol(path, symbol)
        except Exception as exc:  # noqa: BLE001 - this file only, as `parse` would
            flush()
            out.append((i, exc))
            continue
        if run and run[0][2].column_names != cols:
            flush()
        run.append((i, path, table, lines, malformed, sym))
    flush()
    return out


GROUP_FORMATS["alphavantage"] = parse_many
