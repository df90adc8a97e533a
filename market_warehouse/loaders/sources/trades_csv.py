"""A generic trades CSV with a column mapping (``--map ts=time,price=px,...``). Defaults: Binance's public
trades dumps, `id,price,qty,quote_qty,time,is_buyer_maker` (with or without the header row).

Mappable fields: ts (required), price (required), quantity (required), trade_id (default: the line
number), is_buyer_maker (true/false) or side (buy/sell: the taker's side), symbol, exchange.
Times: ISO strings (naive = UTC) or epoch numbers (``--time-unit``, default: ms, us for 16-digit values).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pandas as pd

from market_warehouse.loaders.sources.binance_ws import TICK_COLUMNS, TICK_FORMATS, TickBatch, empty_bars
from market_warehouse.loaders.sources.common import (
    FORMATS,
    FieldParser,
    FormatError,
    line_numbers,
    read_csv_strings,
    vendor_format,
)

FIELDS = ("ts", "price", "quantity", "trade_id", "is_buyer_maker", "side", "symbol", "exchange")
BINANCE_COLUMNS = ["id", "price", "qty", "quote_qty", "time", "is_buyer_maker"]
BINANCE_MAPPING = {"trade_id": "id", "price": "price", "quantity": "qty", "ts": "time",
                   "is_buyer_maker": "is_buyer_maker"}


def parse_trade_mapping(spec: str | None) -> dict[str, str]:
    """'ts=time,price=px' -> {'ts': 'time', 'price': 'px'}."""
    mapping: dict[str, str] = {}
    for part in filter(None, (spec or "").split(",")):
        name, sep, column = part.partition("=")
        if not sep or name.strip() not in FIELDS:
            raise ValueError(f"--map: {part!r} is not FIELD=COLUMN with FIELD one of {', '.join(FIELDS)}")
        mapping[name.strip()] = column.strip()
    return mapping


@vendor_format("trades-csv", "a trades CSV")
def parse(path: Path, text: str, symbol: str | None = None, exchange: str | None = None,
          mapping: dict[str, str] | None = None, time_unit: str | None = None) -> TickBatch:
    first = text.lstrip("\ufeff").split("\n", 1)[0].strip().split(",")
    headerless = bool(first) and first[0].strip().isdigit()
    if headerless and len(first) == len(BINANCE_COLUMNS) and not mapping:
        raw = read_csv_strings(text, header=False, names=BINANCE_COLUMNS)
    elif headerless:
        raise FormatError(f"{path}: not a trades CSV: no header row, and not the {len(BINANCE_COLUMNS)} columns "
                          f"of a Binance trades dump ({','.join(BINANCE_COLUMNS)})")
    else:
        raw = read_csv_strings(text)
    mapping = mapping or {f: c for f, c in BINANCE_MAPPING.items() if c in raw.columns}
    for required in ("ts", "price", "quantity"):
        column = mapping.get(required, required)
        if column not in raw.columns:
            raise FormatError(f"{path}: no column for {required} (looked for {column!r}; columns: "
                              f"{', '.join(raw.columns)}); pass --map {required}=COLUMN")
        mapping[required] = column
    for name, column in mapping.items():
        if column not in raw.columns:
            raise FormatError(f"{path}: --map {name}={column}: no such column ({', '.join(raw.columns)})")
    if not symbol and "symbol" not in mapping:
        m = re.match(r"([A-Za-z0-9]+)[-_]trades", path.name)
        if not m:
            raise FormatError(f"{path}: cannot tell the symbol (no symbol column, file name not "
                              f"<SYMBOL>-trades-...); pass --symbol")
        symbol = m.group(1).upper()
    p = FieldParser(raw)
    unit = time_unit
    if unit is None:
        sample = raw[mapping["ts"]].iloc[0] if len(raw) else ""
        unit = ("us" if len(str(sample).strip()) >= 16 else "ms") if str(sample).strip().isdigit() else None
    ts = p.times(mapping["ts"], epoch_unit=unit, name="ts") if unit else p.times(mapping["ts"], name="ts")
    price, qty = p.number(mapping["price"], "price"), p.number(mapping["quantity"], "quantity")
    p._note((price <= 0).fillna(False), "price is not positive")
    p._note((qty <= 0).fillna(False), "quantity is not positive")
    rows = line_numbers(raw, 0 if headerless else 1)
    trade_id = p.integer(mapping["trade_id"], "trade_id") if "trade_id" in mapping else rows.astype("Int64")
    maker = pd.Series(pd.NA, index=raw.index, dtype="boolean")
    if "is_buyer_maker" in mapping:
        v = raw[mapping["is_buyer_maker"]].astype(str).str.strip().str.lower()
        maker = v.map({"true": True, "false": False, "1": True, "0": False}).astype("boolean")
        p._note(maker.isna() & (v != ""), lambda m: "is_buyer_maker is not true/false: " + v[m].map(repr))
    elif "side" in mapping:
        v = raw[mapping["side"]].astype(str).str.strip().str.lower()
        maker = v.map({"sell": True, "s": True, "buy": False, "b": False}).astype("boolean")
        p._note(maker.isna() & (v != ""), lambda m: "side is not buy/sell: " + v[m].map(repr))
    sym = raw[mapping["symbol"]].astype(str).str.strip() if "symbol" in mapping else symbol
    exch = raw[mapping["exchange"]].astype(str).str.strip() if "exchange" in mapping else (exchange or "BINANCE")
    frame = pd.DataFrame({
        "_row": rows.to_numpy(), "ts": ts, "symbol": sym, "exchange": exch, "trade_id": trade_id,
        "price": price, "quantity": qty, "is_buyer_maker": maker,
        "event_ts": pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]"),
        "received_at": pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]"),
    }, index=raw.index)
    missing_id = frame["trade_id"].isna()
    p._note(missing_id & (p.errors == ""), "missing trade_id")
    bad = p.errors != ""
    records = raw[bad].astype(str).to_dict(orient="records")
    rejected = pd.DataFrame({"row_number": rows[bad].to_numpy(), "target_table": "trades",
                             "record": [pd.io.json.ujson_dumps(r) for r in records],
                             "reason": p.errors[bad].to_numpy()})
    malformed = raw.attrs.get("malformed", [])
    if malformed:
        rejected = pd.concat([rejected, pd.DataFrame({
            "row_number": [n or 0 for n, _ in malformed], "target_table": "trades",
            "record": [t for _, t in malformed], "reason": "wrong number of fields"})], ignore_index=True)
    frames = {t: pd.DataFrame(columns=["_row", *cols]) for t, cols in TICK_COLUMNS.items()}
    frames["trades"] = frame[~bad].reset_index(drop=True)
    bars = empty_bars()
    return TickBatch(bars=bars, raw=pd.DataFrame(index=bars.index), row_numbers=pd.Series(dtype="int64"),
                     parse_errors=pd.Series(dtype=object), frames=frames, rejected=rejected,
                     events=Counter({"trades": len(raw) + len(malformed)}),
                     parameters={"symbol": symbol, "exchange": exchange or "BINANCE",
                                 "mapping": mapping, "time_unit": unit},
                     )


TICK_FORMATS["trades-csv"] = FORMATS.pop("trades-csv")
