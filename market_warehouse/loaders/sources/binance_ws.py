"""Binance websocket capture (USD-M or spot): one message per line, `<receive ns> <json>`, where the json
is a combined-stream message `{"stream": ..., "data": {...}}` with `data.e` in `trade`, `depthUpdate`,
`bookTicker`, or a REST depth snapshot `{"lastUpdateId": ..., "bids": [...], "asks": [...]}`.

The same message -> row code serves the live client (market_warehouse/stream/binance.py): `TickRows`.
A line that is not `<ns> <json>`, an unknown event type or a field that does not parse goes to
quarantine with its line number and the reason; nothing is dropped silently.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path

import duckdb
import numpy as np
import orjson  # parses and writes the capture's JSON several times faster than json
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from market_warehouse.loaders.sources.common import (
    BAR_FIELDS,
    FORMATS,
    FormatError,
    ParsedBatch,
    compact_json,
    vendor_format,
)

# raw table name -> the typed columns a parser fills (the sinks add the audit columns)
TICK_COLUMNS = {
    "trades": ["ts", "symbol", "exchange", "trade_id", "price", "quantity", "is_buyer_maker", "event_ts",
               "received_at"],
    "depth_updates": ["ts", "symbol", "exchange", "first_update_id", "final_update_id", "prev_final_update_id",
                      "transaction_ts", "bids", "asks", "received_at"],
    "book_tickers": ["ts", "symbol", "exchange", "update_id", "bid_price", "bid_qty", "ask_price", "ask_qty",
                     "transaction_ts", "received_at"],
    "depth_snapshots": ["ts", "symbol", "exchange", "last_update_id", "bids", "asks", "received_at"],
}
_TIME_COLUMNS = ("ts", "event_ts", "transaction_ts", "received_at")
_INT_COLUMNS = ("trade_id", "first_update_id", "final_update_id", "prev_final_update_id", "update_id",
                "last_update_id")
_EVENT_TABLE = {"trade": "trades", "depthUpdate": "depth_updates", "bookTicker": "book_tickers"}

# Field checks of the two bulk streams, done column-wise: column -> (rule, name in the message).
_COLUMN_RULES = {
    "trades": {"ts": ("integer", "trade time `T`"), "trade_id": ("integer", "trade id `t`"),
               "price": ("positive", "price `p`"), "quantity": ("positive", "quantity `q`"),
               "event_ts": ("optional", "event time `E`"), "is_buyer_maker": ("boolean", "buyer-maker flag `m`")},
    "book_tickers": {"ts": ("integer", "event time `E`"), "update_id": ("integer", "update id `u`"),
                     "bid_price": ("positive", "bid `b`"), "bid_qty": ("non_negative", "bid qty `B`"),
                     "ask_price": ("positive", "ask `a`"), "ask_qty": ("non_negative", "ask qty `A`"),
                     "transaction_ts": ("optional", "transaction time `T`")},
}
_RULE_TEXT = {"integer": "an integer", "optional": "an integer", "positive": "a positive number",
              "non_negative": "a non-negative number", "boolean": "true, false or absent"}
_EVENT_OF = {"trades": "trade", "book_tickers": "bookTicker"}

# Tick formats are kept apart from the bar formats of `mwh load csv` (see `TICK_FORMATS`).
TICK_FORMATS: dict = {}


@dataclass(kw_only=True)
class TickBatch(ParsedBatch):
    """A parsed tick source: one typed frame per raw table, plus the rejected messages."""

    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    rejected: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["row_number", "target_table", "record", "reason"]))
    events: Counter = field(default_factory=Counter)  # messages read, by table
    # line number -> the parsed levels of a depth diff or snapshot: (bids, asks, (bid prices, bid qtys),
    # (ask prices, ask qtys)), so that the book rebuild neither parses the JSON nor the numbers again
    levels: dict = field(default_factory=dict)


_PRICE, _QTY = itemgetter(0), itemgetter(1)


def _levels(value, name: str, parsed: list | None = None) -> str:
    """Validated `[[price, qty], ...]` as compact JSON text (the strings as sent). With `parsed`, the
    levels' prices and quantities as floats are appended to it (the book rebuild reuses them)."""
    if not isinstance(value, list):
        raise ValueError(f"{name} is not a list")
    if not value:
        if parsed is not None:
            parsed.append(((), ()))
        return "[]"
    try:
        prices = list(map(float, map(_PRICE, value)))
        qtys = list(map(float, map(_QTY, value)))
    except (TypeError, IndexError, KeyError, ValueError):
        bad = next((lvl for lvl in value if not _is_level(lvl)), value[0])
        raise ValueError(f"{name} level {bad!r} is not [price, qty]") from None
    if not (min(prices) > 0 and math.isfinite(max(prices))):
        raise ValueError(f"{name}: a price is not a positive number")
    if not (min(qtys) >= 0 and math.isfinite(max(qtys))):
        raise ValueError(f"{name}: a quantity is negative or not a number")
    if parsed is not None:
        parsed.append((prices, qtys))
    return compact_json(value)


def _is_level(lvl) -> bool:
    try:
        float(lvl[0]), float(lvl[1])
    except (TypeError, IndexError, KeyError, ValueError):
        return False
    return True


def _int(value, name: str) -> int:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name} is missing")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{name} {value!r} is not an integer")
    return int(value)


class TickRows:
    """Messages -> rows of the raw tick tables. Feed it with `add`, then take `frames()`."""

    def __init__(self, exchange: str = "BINANCE", symbol: str | None = None):
        self.exchange, self.symbol = exchange, symbol
        self.rows: dict[str, list[tuple]] = {t: [] for t in TICK_COLUMNS}
        self.rejected: list[tuple[int, str, str, str]] = []
        self.events: Counter = Counter()
        self.levels: dict[int, tuple] = {}
        self._pending_snapshots: list[tuple[int, dict, int | None, str, str | None]] = []

    def reject(self, row_number: int, table: str, record: str, reason: str) -> None:
        self.rejected.append((row_number, table, record, reason))
        self.events[table] += 1

    def add(self, row_number: int, received_ns: int | None, message: dict, text: str,
            snapshot_symbol: str | None = None) -> str | None:
        """One message; returns the raw table it went to (None: rejected). A REST snapshot names no
        symbol: `snapshot_symbol` (the one it was fetched for), else the source's."""
        data = message.get("data", message) if isinstance(message, dict) else None
        if not isinstance(data, dict):
            self.reject(row_number, "unknown", text, "not a JSON object")
            return None
        if "lastUpdateId" in data:
            table = "depth_snapshots"
            self.events[table] += 1
            # The REST snapshot names no symbol: it is the file's (set once the messages are read).
            self._pending_snapshots.append((row_number, data, received_ns, text, snapshot_symbol))
            return table
        event = data.get("e")
        table = _EVENT_TABLE.get(event)
        if table is None:
            self.reject(row_number, "unknown", text, f"unknown event type {event!r}")
            return None
        try:
            symbol = data["s"]
            if not isinstance(symbol, str) or not symbol:
                raise ValueError("symbol `s` is missing")
            if event == "trade":  # checked column-wise in `frames` (the bulk of the messages)
                row = (data["T"], symbol, self.exchange, data["t"], data["p"], data["q"], data.get("m"),
                       data.get("E"), received_ns, text)
            elif event == "depthUpdate":
                first, final = _int(data["U"], "U"), _int(data["u"], "u")
                if first > final:
                    raise ValueError(f"U {first} > u {final}")
                pu = data.get("pu")
                parsed: list = []
                row = (_int(data["E"], "event time `E`"), symbol, self.exchange, first, final,
                       None if pu is None else _int(pu, "pu"), data.get("T"),
                       _levels(data["b"], "bids `b`", parsed), _levels(data["a"], "asks `a`", parsed), received_ns)
                self.levels[row_number] = (data["b"], data["a"], *parsed)
            else:
                row = (data["E"] if "E" in data else data["T"], symbol, self.exchange, data["u"], data["b"],
                       data["B"], data["a"], data["A"], data.get("T"), received_ns, text)
        except KeyError as exc:
            self.reject(row_number, table, text, f"{event}: field {exc.args[0]!r} is missing")
            return None
        except (TypeError, ValueError) as exc:
            self.reject(row_number, table, text, f"{event}: {exc}")
            return None
        if self.symbol is None:
            self.symbol = symbol
        self.rows[table].append((row_number, *row))
        self.events[table] += 1
        return table

    def _take_snapshots(self) -> None:
        for row_number, data, received_ns, text, hint in self._pending_snapshots:
            symbol = hint or self.symbol
            try:
                if not symbol:
                    raise ValueError("no symbol: the capture has no stream message naming one (pass --symbol)")
                ts = data.get("E", data.get("T"))
                if ts is None and received_ns is None:
                    raise ValueError("neither `E` nor a receive time")
                ts_ms = int(ts) if ts is not None else received_ns // 1_000_000
                parsed: list = []
                row = (ts_ms, symbol, self.exchange, _int(data["lastUpdateId"], "lastUpdateId"),
                       _levels(data["bids"], "bids", parsed), _levels(data["asks"], "asks", parsed), received_ns)
                self.levels[row_number] = (data["bids"], data["asks"], *parsed)
            except KeyError as exc:
                self.reject(row_number, "depth_snapshots", text, f"snapshot: field {exc.args[0]!r} is missing")
                self.events["depth_snapshots"] -= 1
                continue
            except (TypeError, ValueError) as exc:
                self.reject(row_number, "depth_snapshots", text, f"snapshot: {exc}")
                self.events["depth_snapshots"] -= 1
                continue
            self.rows["depth_snapshots"].append((row_number, *row))
        self._pending_snapshots = []

    def _check_columns(self, table: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
        """Vectorised field checks (see `_COLUMN_RULES`); failing rows go to `rejected`. Returns the
        rows that pass and, for them, the checked columns as numbers (`frames` reuses them)."""
        reasons = pd.Series("", index=frame.index, dtype=object)
        numbers = {}
        for column, (rule, label) in _COLUMN_RULES[table].items():
            raw = frame[column]
            if rule == "boolean":  # JSON true/false only: 1 or "yes" is not a flag
                bad = raw.notna() & ~raw.map(lambda v: type(v) is bool)
            else:
                value = numbers[column] = pd.to_numeric(raw, errors="coerce")
                bad = value.isna() & raw.notna() if rule == "optional" else value.isna()
                if rule == "positive":
                    bad |= value <= 0
                elif rule == "non_negative":
                    bad |= value < 0
                elif rule in ("integer", "optional"):  # whole, and within a bigint
                    bad |= value.notna() & ((value != value.round()) | (value.abs() >= 2**63))
                bad |= ~np.isfinite(value.fillna(0).astype("float64"))
            if bad.any():
                why = f"{_EVENT_OF[table]}: {label} " + raw[bad].map(repr) + f" is not {_RULE_TEXT[rule]}"
                reasons[bad] = np.where(reasons[bad] == "", why, reasons[bad] + "; " + why)
        rejected = reasons != ""
        if not rejected.any():
            return frame.drop(columns="_text"), numbers
        for row_number, text, why in zip(frame.loc[rejected, "_row"], frame.loc[rejected, "_text"],
                                         reasons[rejected], strict=True):
            self.rejected.append((int(row_number), table, text, why))
        return (frame.loc[~rejected].drop(columns="_text").reset_index(drop=True),
                {c: v[~rejected].reset_index(drop=True) for c, v in numbers.items()})

    def frames(self) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
        """Typed frames per table (with a `_row` column: the line number) and the rejected rows."""
        self._take_snapshots()
        out = {table: self.typed(table) for table in TICK_COLUMNS}
        return out, self.rejected_frame()

    def rejected_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rejected, columns=["row_number", "target_table", "record", "reason"])

    def typed(self, table: str) -> pd.DataFrame:
        """One table's rows as a typed frame, after the column checks (failing rows to `rejected`)."""
        cols = TICK_COLUMNS[table]
        checked = table in _COLUMN_RULES
        frame = pd.DataFrame(self.rows[table], columns=["_row", *cols, *(["_text"] if checked else [])])
        numbers: dict[str, pd.Series] = {}
        if checked:
            frame, numbers = self._check_columns(table, frame)
        for c in cols:
            # A checked column's numbers are reused where converting the kept rows again would
            # give the same (floats; integers and times when no row made the column float).
            number = numbers.get(c)
            if c in _TIME_COLUMNS:
                unit = "ns" if c == "received_at" else "ms"
                if number is None or number.dtype.kind not in "iu":
                    number = pd.to_numeric(frame[c], errors="coerce")
                frame[c] = pd.to_datetime(number, unit=unit, utc=True)
                if unit == "ns":  # the databases keep microseconds
                    frame[c] = frame[c].dt.floor("us")
            elif c in _INT_COLUMNS:
                if number is None or number.dtype.kind not in "iu":
                    number = pd.to_numeric(frame[c])
                frame[c] = number.astype("Int64")
            elif c in ("price", "quantity", "bid_price", "bid_qty", "ask_price", "ask_qty"):
                frame[c] = (pd.to_numeric(frame[c]) if number is None else number).astype("float64")
            elif c == "is_buyer_maker":
                frame[c] = frame[c].where(frame[c].isin([True, False])).astype("boolean")
            else:
                frame[c] = frame[c].astype(object)
        return frame


def empty_bars() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in BAR_FIELDS})


def tick_batch(source_rows: TickRows, parameters: dict) -> TickBatch:
    frames, rejected = source_rows.frames()
    bars = empty_bars()
    return TickBatch(bars=bars, raw=pd.DataFrame(index=bars.index), row_numbers=pd.Series(dtype="int64"),
                     parse_errors=pd.Series(dtype=object), frames=frames, rejected=rejected,
                     events=source_rows.events, parameters=parameters, levels=source_rows.levels)


@vendor_format("binance-ws", "a Binance websocket capture (<receive ns> <json> per line)")
def parse(path: Path, text: str, symbol: str | None = None, exchange: str | None = None) -> TickBatch:
    first = text.lstrip().split("\n", 1)[0]
    ns, _, body = first.partition(" ")
    if not (ns.isdigit() and body.lstrip().startswith("{")):
        raise FormatError(f"{path}: not a Binance websocket capture: line 1 is not `<receive ns> <json>` "
                          f"({first[:80]!r})")
    exchange = exchange or "BINANCE"
    cut = _cut(text) if parse_processes() > 1 else -1
    if cut >= 0:
        return _parse_split(text, cut, exchange, symbol)
    return _parse_columnar(text, exchange, symbol)


# With MWH_TICK_PARSE_PROCESSES=2, a capture larger than this is parsed by two processes, a half each.
SPLIT_MIN_CHARS = 4_000_000


def parse_processes() -> int:
    """Processes for the parse of one capture: MWH_TICK_PARSE_PROCESSES, 1 (default: the columnar parse)
    or 2 (the per-message path split in two; slower than the columnar parse since it came). Two cost
    about 0.3-0.45 s more CPU on the 94k-message capture (the second half's frames pickled back) and
    gain wall time only with a core to spare: at load 12-17 on 2 cores they were slower (see
    docs/microstructure.md, Throughput), so one is the default."""
    raw = os.environ.get("MWH_TICK_PARSE_PROCESSES", "1")
    if raw not in ("1", "2"):
        raise ValueError(f"MWH_TICK_PARSE_PROCESSES={raw!r}: 1 or 2")
    return int(raw)


def _cut(text: str) -> int:
    """Where to split `text` in two: the newline nearest its middle (-1: too small, or no newline)."""
    if len(text) < SPLIT_MIN_CHARS:
        return -1
    return text.find("\n", len(text) // 2)


def _scan(rows: TickRows, text: str, first_number: int) -> None:
    """The lines of `text` (the first numbered `first_number`) into `rows`."""
    _scan_lines(rows, enumerate(text.split("\n"), start=first_number))


def _scan_lines(rows: TickRows, numbered) -> None:
    """(line number, line) pairs into `rows`, message by message."""
    exchange = rows.exchange
    trades, tickers = rows.rows["trades"], rows.rows["book_tickers"]
    taken = Counter()
    loads = orjson.loads
    for number, line in numbered:
        line = line.rstrip("\r")
        if not line.strip():
            continue
        ns, _, body = line.partition(" ")
        try:
            received = int(ns)
            message = loads(body)
        except ValueError as exc:
            rows.reject(number, "unknown", line, f"not `<receive ns> <json>`: {exc}")
            continue
        # The bulk of a capture (trades, book tickers) appended here as `TickRows.add` would append
        # it, without its per-message dispatch; any message this does not take plainly (a field
        # missing, no symbol, a snapshot) goes through `add`, which takes or rejects it as always.
        data = message.get("data", message) if type(message) is dict else None
        if type(data) is dict and "lastUpdateId" not in data:
            event = data.get("e")
            try:
                if event == "trade":
                    ts, sym, trade_id, price, qty = _TRADE(data)
                    if type(sym) is str and sym:
                        trades.append((number, ts, sym, exchange, trade_id, price, qty, data.get("m"),
                                       data.get("E"), received, line))
                        taken["trades"] += 1
                        if rows.symbol is None:
                            rows.symbol = sym
                        continue
                elif event == "bookTicker" and "E" in data:
                    ts, sym, update_id, bid, bid_qty, ask, ask_qty = _TICKER(data)
                    if type(sym) is str and sym:
                        tickers.append((number, ts, sym, exchange, update_id, bid, bid_qty, ask, ask_qty,
                                        data.get("T"), received, line))
                        taken["book_tickers"] += 1
                        if rows.symbol is None:
                            rows.symbol = sym
                        continue
            except KeyError:
                pass
        rows.add(number, received, message, line)
    rows.events.update(taken)


_STREAM_TABLES = ("trades", "depth_updates", "book_tickers")  # typed per half; snapshots once, at the end


def _half(text: str, first_number: int, exchange: str, symbol: str | None) -> dict:
    """One half of a split parse: its rows typed and checked, what it rejected (the parse's and each
    table's checks' apart, to be put back in the one-process order), and its snapshots still pending
    (they take the file's symbol, which the first half may name)."""
    rows = TickRows(exchange=exchange, symbol=symbol)
    _scan(rows, text, first_number)
    out = {"symbol": rows.symbol, "events": rows.events, "levels": rows.levels,
           "pending": rows._pending_snapshots, "rejected": rows.rejected, "frames": {}, "checks": {}}
    for table in _STREAM_TABLES:
        rows.rejected = []
        out["frames"][table] = rows.typed(table)
        out["checks"][table] = rows.rejected
    return out


def _second_half(conn, text: str, first_number: int, exchange: str, symbol: str | None) -> None:
    try:
        half = _half(text, first_number, exchange, symbol)
        # Its depth levels are not sent back (a million small objects: pickling them costs more than
        # the book fold's reading them again from the rows' JSON text, see book.rebuild).
        half["levels"] = {}
        conn.send(("ok", half))
    except Exception as exc:  # noqa: BLE001 - handed to the parent, which raises it as its own
        conn.send(("error", exc))
    finally:
        conn.close()


def _parse_split(text: str, cut: int, exchange: str, symbol: str | None) -> TickBatch:
    """The capture parsed by two processes: this one the lines before `cut`, a forked one the lines
    after it (numbered on from the first half's). The halves are put together in line order, with
    the rows, rejections, counts and levels one process would give (tests/python/microstructure/
    test_tick_parse_split.py compares them)."""
    head, tail = text[:cut], text[cut + 1:]
    context = multiprocessing.get_context("fork")  # the child reads `tail` from the parent's memory
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_second_half, args=(send, tail, head.count("\n") + 2, exchange, symbol),
                            daemon=True)
    child.start()
    send.close()
    try:
        first = _half(head, 1, exchange, symbol)
        try:
            status, second = receive.recv()
        except EOFError:
            raise RuntimeError(f"the second parse process ended without a result (exit code "
                               f"{child.exitcode})") from None
    finally:
        receive.close()
        child.join()
    if status == "error":
        raise second
    rows = TickRows(exchange=exchange, symbol=first["symbol"] or second["symbol"])
    rows.rejected = first["rejected"] + second["rejected"]
    rows.events = first["events"] + second["events"]
    rows.levels = {**first["levels"], **second["levels"]}
    rows._pending_snapshots = first["pending"] + second["pending"]
    rows._take_snapshots()
    frames = {}
    for table in _STREAM_TABLES:
        rows.rejected += first["checks"][table] + second["checks"][table]
        parts = [h["frames"][table] for h in (first, second) if len(h["frames"][table])]
        frames[table] = (pd.concat(parts, ignore_index=True) if len(parts) > 1 else
                         parts[0] if parts else first["frames"][table])
    frames["depth_snapshots"] = rows.typed("depth_snapshots")
    bars = empty_bars()
    return TickBatch(bars=bars, raw=pd.DataFrame(index=bars.index), row_numbers=pd.Series(dtype="int64"),
                     parse_errors=pd.Series(dtype=object), frames={t: frames[t] for t in TICK_COLUMNS},
                     rejected=rows.rejected_frame(), events=rows.events,
                     parameters={"symbol": rows.symbol, "exchange": rows.exchange}, levels=rows.levels)


# The fields of the two bulk messages, in the order of their rows (see `TickRows.add`).
_TRADE = itemgetter("T", "s", "t", "p", "q")
_TICKER = itemgetter("E", "s", "u", "b", "B", "a", "A")


# ---- the columnar parse: the whole capture's lines read in C (DuckDB's JSON), not message by message ----
#
# Every line in the exchange's plain form (a trade, a book ticker or a depth diff inside its stream
# envelope, every field of the JSON type and the number format Binance sends, every check passed) is
# taken here, column-wise; ANY other line (a snapshot, a blank or malformed line, a missing, odd or
# failing field, a message without its envelope, CRLF) goes, with its line number, through the
# per-message path above (`_scan_lines`: `TickRows.add` and the column checks), which takes or
# rejects it exactly as before. So the rows, the quarantine and the counts are the per-message
# path's (tests/python/microstructure/test_book_grid.py and test_tick_columnar.py compare them).

_FIELDS = {"e": "VARCHAR", "s": "JSON", "E": "VARCHAR", "T": "VARCHAR", "t": "VARCHAR", "p": "VARCHAR",
           "q": "VARCHAR", "m": "JSON", "u": "VARCHAR", "b": "VARCHAR", "B": "VARCHAR", "a": "VARCHAR",
           "A": "VARCHAR", "U": "VARCHAR", "pu": "VARCHAR", "lastUpdateId": "VARCHAR"}
# SQL names of the fields (DuckDB's names ignore case: `E` and `e` would be one column)
_ALIAS = {"e": "event", "s": "sym", "E": "e_time", "T": "t_time", "t": "t_id", "p": "price", "q": "qty",
          "m": "maker", "u": "u_id", "b": "bid", "B": "bid_qty", "a": "ask", "A": "ask_qty", "U": "u_first",
          "pu": "u_prev", "lastUpdateId": "last_id"}
# Each line's message fields as text, one JSON parse per line in C (a number's or a string's text; the
# levels' JSON; the symbol and buyer-maker flag as JSON, whose type the per-message path checks).
_COLUMNAR_SQL = f"""
create temp table m as
select n, ns, ns_text, {", ".join(f"struct_extract_at(d, {i + 1}) as {_ALIAS[k]}" for i, k in enumerate(_FIELDS))}
from (
  select n, try_cast(left(line, sp - 1) as bigint) as ns, left(line, sp - 1) as ns_text,
         try(json_transform(substr(line, sp + 1), '{orjson.dumps({"data": _FIELDS}).decode()}')).data as d
  from (select n, line, strpos(line, ' ') as sp from lines)
  where sp > 1 and right(line, 1) = '}}'
)
"""
_INT = "[0-9]{1,18}"
_NUM = r"[0-9]{1,20}(\.[0-9]{1,20})?"  # a plain decimal, as Binance writes prices and quantities
_LEVEL = f'\\["{_NUM}","{_NUM}"\\]'
_LEVELS = f"\\[({_LEVEL}(,{_LEVEL})*)?\\]"


def _text_rule(fields: list[tuple[str, str]]) -> str:
    """One regular expression over the fields' texts joined by spaces: each an integer (`i`) or a
    plain decimal (`n`), the receive time first; an absent field passes as 0 (the caller requires
    the ones that must be there)."""
    text = "concat_ws(' ', ns_text, " + ", ".join(f"coalesce({_ALIAS[f]}, '0')" for f, _ in fields) + ")"
    rule = " ".join(["[0-9]{1,19}", *(_INT if k == "i" else _NUM for _, k in fields)])
    return f"regexp_full_match({text}, '{rule}')"


_COMMON = ("ns is not null and last_id is null and sym like '\"_%\"' and not contains(sym, '\\') "
           "and length(sym) <= 64")
_COLUMNAR_SELECT = {
    "trades": f"""
select n, cast(t_time as bigint) as ts, sym[2:-2] as symbol, cast(t_id as bigint) as trade_id,
       cast(price as double) as price, cast(qty as double) as quantity,
       cast(maker as varchar) = 'true' as is_buyer_maker, cast(e_time as bigint) as event_ts, ns as received_at
from m
where event = 'trade' and {_COMMON} and t_time is not null and t_id is not null and price is not null
  and qty is not null and (maker is null or cast(maker as varchar) in ('true', 'false'))
  and {_text_rule([("T", "i"), ("t", "i"), ("p", "n"), ("q", "n"), ("E", "i")])}
  and cast(price as double) > 0 and cast(qty as double) > 0""",
    "book_tickers": f"""
select n, cast(e_time as bigint) as ts, sym[2:-2] as symbol, cast(u_id as bigint) as update_id,
       cast(bid as double) as bid_price, cast(bid_qty as double) as bid_qty,
       cast(ask as double) as ask_price, cast(ask_qty as double) as ask_qty,
       cast(t_time as bigint) as transaction_ts, ns as received_at
from m
where event = 'bookTicker' and {_COMMON} and e_time is not null and u_id is not null and bid is not null
  and bid_qty is not null and ask is not null and ask_qty is not null
  and {_text_rule([("E", "i"), ("u", "i"), ("b", "n"), ("B", "n"), ("a", "n"), ("A", "n"), ("T", "i")])}
  and cast(bid as double) > 0 and cast(ask as double) > 0""",
    "depth_updates": f"""
select n, ts, symbol, first_update_id, final_update_id, prev_final_update_id, transaction_ts, bids, asks,
       received_at, cast(bid_price_text as double[]) as bid_prices, cast(bid_qty_text as double[]) as bid_qtys,
       bid_price_text, bid_qty_text, cast(ask_price_text as double[]) as ask_prices,
       cast(ask_qty_text as double[]) as ask_qtys, ask_price_text, ask_qty_text
from (
  select *, list_transform(bid_levels, x -> x[1]) as bid_price_text, list_transform(bid_levels, x -> x[2]) as bid_qty_text,
         list_transform(ask_levels, x -> x[1]) as ask_price_text, list_transform(ask_levels, x -> x[2]) as ask_qty_text
  from (
    select n, cast(e_time as bigint) as ts, sym[2:-2] as symbol, cast(u_first as bigint) as first_update_id,
           cast(u_id as bigint) as final_update_id, cast(u_prev as bigint) as prev_final_update_id,
           cast(t_time as bigint) as transaction_ts, bid as bids, ask as asks, ns as received_at,
           cast(json_transform(bid, '[["VARCHAR"]]') as varchar[][]) as bid_levels,
           cast(json_transform(ask, '[["VARCHAR"]]') as varchar[][]) as ask_levels
    from m
    where event = 'depthUpdate' and {_COMMON} and e_time is not null and u_first is not null and u_id is not null
      and {_text_rule([("E", "i"), ("U", "i"), ("u", "i"), ("pu", "i"), ("T", "i")])}
      and cast(u_first as bigint) <= cast(u_id as bigint)
      and regexp_full_match(bid, '{_LEVELS}') and regexp_full_match(ask, '{_LEVELS}')
  )
)
where coalesce(list_min(bid_prices) > 0, true) and coalesce(list_min(ask_prices) > 0, true)""",
}


class Levels(Mapping):
    """Line number -> the parsed levels of a depth diff or snapshot (`TickBatch.levels`): the rows the
    per-message path parsed in `rows` (line -> (bids, asks, (bid prices, bid qtys), (ask prices, ask
    qtys))), and the diffs the columnar parse took as flat arrays (`flat`: one `FlatLevels`), which the
    book fold reads without making a Python object per level. As a mapping it gives every line's tuple
    (made on demand for the flat ones)."""

    def __init__(self, rows: dict | None = None, flat: FlatLevels | None = None):
        self.rows = rows if rows is not None else {}
        self.flat = flat

    def __getitem__(self, row: int):
        if row in self.rows:
            return self.rows[row]
        if self.flat is not None:
            at = self.flat.index.get(row)
            if at is not None:
                return self.flat.tuple(at)
        raise KeyError(row)

    def __len__(self) -> int:
        return len(self.rows) + (len(self.flat.lines) if self.flat is not None else 0)

    def __iter__(self):
        yield from self.rows
        if self.flat is not None:
            yield from self.flat.lines.tolist()

    def clear(self) -> None:
        self.rows.clear()
        self.flat = None


@dataclass
class FlatSide:
    """One side's levels of several rows, flat: row k's levels are [offsets[k], offsets[k + 1]). The
    texts as sent are codes into a vocabulary of the distinct texts (a few thousand strings for half a
    million levels): the book fold moves integers, not Python objects, and makes a str only for the top
    levels it writes."""

    offsets: np.ndarray  # int64, rows + 1
    prices: np.ndarray  # float64
    qtys: np.ndarray  # float64
    price_code: np.ndarray  # integer, an index into price_vocab
    qty_code: np.ndarray  # integer, an index into qty_vocab
    price_vocab: np.ndarray  # object (str, as sent)
    qty_vocab: np.ndarray  # object (str, as sent)

    @classmethod
    def from_arrow(cls, prices, qtys, price_text, qty_text) -> FlatSide:
        def flat(column):
            column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
            return column.flatten()

        def texts(column) -> tuple[np.ndarray, np.ndarray]:
            column = flat(column)
            if not len(column):
                return np.empty(0, dtype=np.int32), np.empty(0, dtype=object)
            codes = pc.dictionary_encode(column)
            return (codes.indices.to_numpy(zero_copy_only=False),
                    codes.dictionary.to_numpy(zero_copy_only=False).astype(object, copy=False))

        chunk = prices.combine_chunks() if isinstance(prices, pa.ChunkedArray) else prices
        offsets = chunk.offsets.to_numpy().astype(np.int64)
        offsets = offsets - offsets[0]
        (price_code, price_vocab), (qty_code, qty_vocab) = texts(price_text), texts(qty_text)
        return cls(offsets, *(flat(c).to_numpy(zero_copy_only=False).astype("float64", copy=False) for c in (prices, qtys)),
                   price_code, qty_code, price_vocab, qty_vocab)

    def level_tuple(self, k: int) -> tuple[list, tuple[list, list]]:
        a, b = int(self.offsets[k]), int(self.offsets[k + 1])
        return ([[p, q] for p, q in zip(self.price_vocab[self.price_code[a:b]].tolist(),
                                        self.qty_vocab[self.qty_code[a:b]].tolist(), strict=True)],
                (self.prices[a:b].tolist(), self.qtys[a:b].tolist()))


@dataclass
class FlatLevels:
    """The depth diffs the columnar parse took: their line numbers and each side's levels, flat."""

    lines: np.ndarray  # int64, the line number of each row
    bids: FlatSide
    asks: FlatSide

    def __post_init__(self):
        self.index = {int(r): k for k, r in enumerate(self.lines.tolist())}

    def tuple(self, k: int) -> tuple:
        bids, bid_parsed = self.bids.level_tuple(k)
        asks, ask_parsed = self.asks.level_tuple(k)
        return bids, asks, bid_parsed, ask_parsed


def _lines_table(data: bytes) -> tuple[pa.Table, np.ndarray]:
    """The lines of `data` (split at every \\n, numbered from 1, as str.split gives them) as an Arrow
    table (n, line), without a Python object per line: the offsets of the newlines, found by numpy."""
    view = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(view == 10)
    offsets = np.empty(len(ends) + 2, dtype=np.int64)
    offsets[0] = 0
    offsets[1:-1] = ends  # line k is data[offsets[k] (+1 after the first) : ends[k]]
    offsets[-1] = len(data)
    # Lines as [start, end) spans: a string array over the same buffer needs contiguous spans, so each
    # line keeps its leading newline (none for the first), dropped in SQL with ltrim.
    n = len(offsets) - 1
    lines = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    return pa.table({"n": np.arange(1, n + 1, dtype=np.int64), "line": lines}), offsets


def _int64(column) -> pd.api.extensions.ExtensionArray:
    return pd.array(column.to_numpy(zero_copy_only=False) if column.null_count == 0 else
                    column.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get), dtype="Int64")


def _times(column, unit: str) -> pd.Series:
    # with a null: float64 with NaN, as the per-message path converts such a column
    out = pd.to_datetime(pd.Series(column.to_numpy(zero_copy_only=False)), unit=unit, utc=True)
    return out.dt.floor("us") if unit == "ns" else out


def _columnar_frame(table: str, got: pa.Table, exchange: str) -> pd.DataFrame:
    """The rows the columnar parse took for `table`, typed as `TickRows.typed` types them."""
    out = {"_row": got.column("n").to_numpy()}
    for c in TICK_COLUMNS[table]:
        if c == "exchange":
            out[c] = np.full(got.num_rows, exchange, dtype=object)
        elif c in _TIME_COLUMNS:
            out[c] = _times(got.column(c), "ns" if c == "received_at" else "ms")
        elif c in _INT_COLUMNS:
            out[c] = _int64(got.column(c))
        elif c == "is_buyer_maker":
            out[c] = got.column(c).to_pandas(types_mapper={pa.bool_(): pd.BooleanDtype()}.get).astype("boolean")
        elif c in ("symbol", "bids", "asks"):
            out[c] = np.array(got.column(c).to_pylist(), dtype=object) if got.num_rows else \
                np.empty(0, dtype=object)
        else:
            out[c] = got.column(c).to_numpy().astype("float64")
    frame = pd.DataFrame(out)
    return frame


def _in_line_order(table: pa.Table) -> pa.Table:
    """The rows in line order. DuckDB keeps a scan's order (preserve_insertion_order, on by default),
    so they come so and no `order by` sorts the wide rows (the depth levels); checked, and sorted if not."""
    n = table.column("n").to_numpy()
    return table if len(n) < 2 or bool((n[1:] > n[:-1]).all()) else table.sort_by("n")


def columnar_threads() -> int:
    """DuckDB threads of the columnar parse: MWH_TICK_PARSE_THREADS (default 1: on 2 shared cores the
    other one serves the database and the book fold)."""
    raw = os.environ.get("MWH_TICK_PARSE_THREADS", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= 64:
        raise ValueError(f"MWH_TICK_PARSE_THREADS={raw!r}: a whole number of threads, 1 to 64")
    return int(raw)


def _parse_columnar(text: str, exchange: str, symbol: str | None) -> TickBatch:
    """The capture parsed column-wise (see the note above `_PATHS`), the rest line by line."""
    data = text.encode()
    lines, offsets = _lines_table(data)
    con = duckdb.connect(config={"threads": columnar_threads()})
    try:
        con.register("raw_lines", lines)
        con.execute("create temp view lines as select n, ltrim(line, chr(10)) as line from raw_lines")
        con.execute(_COLUMNAR_SQL)
        got = {t: _in_line_order(con.execute(sql).to_arrow_table()) for t, sql in _COLUMNAR_SELECT.items()}
    finally:
        con.close()
    taken = np.zeros(len(lines) + 1, dtype=bool)
    for t in got.values():
        taken[t.column("n").to_numpy()] = True
    slow = np.flatnonzero(~taken[1:]) + 1
    rows = TickRows(exchange=exchange, symbol=symbol)
    _scan_lines(rows, ((int(k), data[offsets[k - 1]:offsets[k]].decode().lstrip("\n")) for k in slow))
    if symbol is None:  # the file's symbol: the first message (either path) that named one
        first = [(t.column("n")[0].as_py(), t.column("symbol")[0].as_py()) for t in got.values() if t.num_rows]
        first += [(r[0][0], r[0][2]) for name, r in rows.rows.items() if r and name != "depth_snapshots"]
        rows.symbol = min(first)[1] if first else None
    rows._take_snapshots()
    frames = {}
    for table in TICK_COLUMNS:
        fast = _columnar_frame(table, got[table], exchange) if table in got and got[table].num_rows else None
        if fast is not None and not rows.rows[table]:
            frames[table] = fast
            continue
        part = rows.typed(table)
        frames[table] = (part if fast is None else fast if not len(part) else
                         pd.concat([fast, part], ignore_index=True).sort_values("_row", kind="stable", ignore_index=True))
    rows.events.update({t: g.num_rows for t, g in got.items() if g.num_rows})
    du = got["depth_updates"]
    flat = FlatLevels(du.column("n").to_numpy().astype(np.int64),
                      FlatSide.from_arrow(*(du.column(f"bid_{c}") for c in ("prices", "qtys", "price_text", "qty_text"))),
                      FlatSide.from_arrow(*(du.column(f"ask_{c}") for c in ("prices", "qtys", "price_text", "qty_text"))))
    bars = empty_bars()
    return TickBatch(bars=bars, raw=pd.DataFrame(index=bars.index), row_numbers=pd.Series(dtype="int64"),
                     parse_errors=pd.Series(dtype=object), frames=frames, rejected=rows.rejected_frame(),
                     events=rows.events, parameters={"symbol": rows.symbol, "exchange": rows.exchange},
                     levels=Levels(rows.levels, flat if du.num_rows else None))


TICK_FORMATS["binance-ws"] = FORMATS.pop("binance-ws")
