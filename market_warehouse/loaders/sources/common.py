"""Shared parsing pieces: reading a vendor file as text, typed conversion that records why a field
could not be parsed, and what a file name says about symbol and interval."""

from __future__ import annotations

import csv as csvmod
import functools
import gzip
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

BAR_FIELDS = [
    "ts", "symbol", "exchange", "interval", "open", "high", "low", "close", "volume",
    "adj_close", "vwap", "trade_count", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume",
]
ACTION_FIELDS = ["ex_date", "symbol", "exchange", "action", "value"]
INTERVALS = ("1m", "2m", "5m", "15m", "30m", "60m", "90m", "1h", "4h", "1d", "5d", "1wk", "1mo", "3mo")
DAILY_OR_LONGER = {"1d", "5d", "1wk", "1mo", "3mo"}

# Yahoo ticker suffix -> exchange code (the bars' `exchange` column). No suffix = US composite.
YAHOO_SUFFIX_EXCHANGE = {
    "L": "XLON", "TO": "XTSE", "V": "XTSX", "T": "XTKS", "HK": "XHKG", "DE": "XETR", "F": "XFRA",
    "PA": "XPAR", "AS": "XAMS", "SW": "XSWX", "AX": "XASX", "NS": "XNSE", "BO": "XBOM", "MI": "XMIL",
    "MC": "XMAD", "ST": "XSTO", "OL": "XOSL", "CO": "XCSE", "HE": "XHEL", "KS": "XKRX", "SS": "XSHG",
    "SZ": "XSHE", "SA": "BVMF", "MX": "XMEX", "JO": "XJSE", "SI": "XSES", "NZ": "XNZE",
}


class FormatError(Exception):
    """The file is not what its format says (wrong header, an error body, not text)."""


@dataclass(kw_only=True)
class ParsedBatch:
    """What a parser hands on: typed rows plus everything needed to explain a rejected one."""

    source: str = ""  # set by the format's wrapper (`vendor_format`) for files
    loader: str = ""
    bars: pd.DataFrame  # BAR_FIELDS, typed; NaN/NaT where a field did not parse
    raw: pd.DataFrame  # the fields as read (strings), same index as bars
    row_numbers: pd.Series  # 1-based line number in the file (header = line 1)
    parse_errors: pd.Series  # "" or the reasons a row's fields did not parse
    actions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ACTION_FIELDS))
    parameters: dict = field(default_factory=dict)
    malformed: list[tuple[int | None, str]] = field(default_factory=list)  # (line, text) unsplittable rows


# Every vendor file format, by its `--format` name (filled by @vendor_format as the modules load).
FORMATS: dict[str, Callable[..., ParsedBatch]] = {}


def compact_json(value) -> str:
    """JSON text without spaces (as json.dumps with separators=(",", ":")), by orjson: several times
    faster on the millions of book levels a tick file holds."""
    return orjson.dumps(value).decode()


@dataclass
class ParsedGroup:
    """Several files of one format parsed as ONE batch (one Arrow read, one typed conversion, one
    validation: per-file overhead was most of a load of many small files). The rows of file k are
    rows bounds[k]:bounds[k + 1] of `batch`; its malformed rows are malformed[k]."""

    batch: ParsedBatch  # source/parameters: of the group; `parameters[k]` per file
    sources: list[str]
    bounds: np.ndarray
    parameters: list[dict]
    malformed: list[list[tuple[int | None, str]]]

    def part(self, k: int) -> ParsedBatch:
        """File k's rows as its own batch."""
        a, b = int(self.bounds[k]), int(self.bounds[k + 1])
        whole = self.batch
        return ParsedBatch(source=self.sources[k], loader=whole.loader, bars=whole.bars.iloc[a:b],
                           raw=whole.raw.iloc[a:b], row_numbers=whole.row_numbers.iloc[a:b],
                           parse_errors=whole.parse_errors.iloc[a:b], parameters=self.parameters[k],
                           malformed=self.malformed[k])


# Formats that can also parse a run of files as one batch: name -> parse_many(paths, **options),
# returning, in file order, (positions in `paths`, ParsedGroup) or (position, the file's error).
GROUP_FORMATS: dict[str, Callable[..., list[tuple[list[int], ParsedGroup] | tuple[int, Exception]]]] = {}


def vendor_format(name: str, expected: str, loader: str | None = None, parquet: bool = False):
    """Register a file parser under `name`, wrapped in what every format does the same way.

    Prologue: the file read as text (gzip-aware; a binary or empty file refused) and a vendor error
    body saved under a .csv name refused, both naming the file (`parquet=True`: a .parquet file is
    handed over unread, text None). The parser gets (path, text, **options) and returns the batch.
    Epilogue: the batch's source (the path), loader (default: `name`) and malformed rows set."""

    def register(body: Callable[..., ParsedBatch]) -> Callable[..., ParsedBatch]:
        @functools.wraps(body)
        def parse(path: str | Path, **options) -> ParsedBatch:
            path = Path(path)
            text = None
            if not (parquet and path.suffix.lower() == ".parquet"):
                text = read_text(path)
                reject_non_csv(path, text, expected)
            batch = body(path, text, **options)
            batch.source, batch.loader = str(path), loader or name
            if not batch.malformed:
                batch.malformed = batch.raw.attrs.get("malformed", [])
            return batch

        FORMATS[name] = parse
        return parse

    return register


def read_text(path: Path) -> str:
    """The file's text (gzip-aware). Raises FormatError for a binary or empty file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FormatError(f"{path}: cannot read: {exc.strerror}") from exc
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except OSError as exc:
            raise FormatError(f"{path}: not a valid gzip file: {exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    if not text.strip():
        raise FormatError(f"{path}: file is empty")
    return text


def reject_non_csv(path: Path, text: str, expected: str) -> None:
    """Vendors answer errors with JSON or HTML bodies saved under a .csv name: say so plainly."""
    head = text.lstrip()[:200]
    if head.startswith(("{", "[")):
        snippet = " ".join(text.split())[:120]
        raise FormatError(f"{path}: not {expected}: the file is a JSON body ({snippet!r}), "
                          f"probably a vendor error response")
    if head.lower().startswith("<"):
        raise FormatError(f"{path}: not {expected}: the file is HTML/XML, probably an error page")


def read_csv_table(text: str, header: bool = True,
                   names: list[str] | None = None) -> tuple[pa.Table, np.ndarray, list[tuple[int, str]]]:
    """Every field as a string, nothing guessed, as an Arrow table; with each row's file line and
    the rows with the wrong number of fields as (line number, text) (see `read_csv_strings`)."""
    first_line = text.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r")
    first = next(csvmod.reader([first_line])) if first_line else []
    if header:
        names = [c.strip() for c in first]
    elif names is None:
        names = [f"f{i}" for i in range(len(first))]
    malformed: list[tuple[int, str]] = []

    def on_invalid(row) -> str:
        malformed.append((row.number, row.text))
        return "skip"

    table = pacsv.read_csv(
        io.BytesIO(text.encode()),
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1 if header else 0,
                                       use_threads=False),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid, newlines_in_values=False),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=False,
            quoted_strings_can_be_null=False),
    )
    # pyarrow numbers rows by file line (skipped header included, from 1).
    offset = 1 if header else 0
    total = table.num_rows + len(malformed)
    lines = np.arange(offset + 1, offset + total + 1, dtype="int64")
    bad = [n for n, _ in malformed if n is not None]
    if bad:
        lines = lines[~np.isin(lines, bad)]
    return table, lines[: table.num_rows], malformed


def read_csv_strings(text: str, header: bool = True, names: list[str] | None = None) -> pd.DataFrame:
    """Every field as a string (Arrow-backed), nothing guessed: parsing is the caller's, field by
    field. Rows with the wrong number of fields are not dropped: they are returned in
    ``frame.attrs["malformed"]`` as (line number, text) for quarantine, and the remaining rows' file
    lines in ``frame.attrs["lines"]``."""
    table, lines, malformed = read_csv_table(text, header, names)
    frame = table.to_pandas(types_mapper=pd.ArrowDtype)
    frame.attrs["lines"] = lines
    frame.attrs["malformed"] = malformed
    return frame


def line_numbers(frame: pd.DataFrame, header_lines: int) -> pd.Series:
    """1-based file line of each row (the header is line 1)."""
    lines = frame.attrs.get("lines")
    if lines is not None and len(lines) == len(frame):
        return pd.Series(lines, index=frame.index, dtype="int64")
    return pd.Series(np.arange(len(frame)) + header_lines + 1, index=frame.index, dtype="int64")


class FieldParser:
    """Converts string columns to typed ones and collects, per row, why a field failed."""

    def __init__(self, raw: pd.DataFrame):
        self.raw = raw
        self.errors = pd.Series("", index=raw.index, dtype=object)

    def _note(self, mask: pd.Series, message) -> None:
        if not mask.any():
            return
        msgs = message(mask) if callable(message) else pd.Series(message, index=mask[mask].index)
        cur = self.errors[mask]
        self.errors[mask] = np.where(cur == "", msgs, cur + "; " + msgs)

    def number(self, column: str, name: str | None = None, required: bool = True) -> pd.Series:
        name = name or column
        fields = pa.array(self.raw[column].array, type=pa.string())
        try:  # the usual column: every field a number as written (Arrow's cast refuses blanks and spaces)
            quick = pc.cast(fields, pa.float64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            quick = None
        if quick is not None and not np.isnan(quick).any():  # NaN/'nan' (or null) take the checks below
            if not np.isfinite(quick).all():
                quick[np.isinf(quick)] = np.nan
            return pd.Series(quick, index=self.raw.index, dtype="float64")
        arr = pc.utf8_trim_whitespace(fields)
        empty = pc.is_in(arr, value_set=pa.array(["", "null", "NaN", "nan", "None"]))
        empty_np = empty.to_numpy(zero_copy_only=False)
        nulled = pc.if_else(empty, pa.scalar(None, pa.string()), arr) if empty_np.any() else arr
        index = self.raw.index
        try:  # fast path: every non-empty field parses, so only the empty ones are null
            out = pd.Series(pc.cast(nulled, pa.float64()).to_numpy(zero_copy_only=False),
                            index=index, dtype="float64")
        except pa.ArrowInvalid:
            text = pd.Series(arr.to_numpy(zero_copy_only=False), index=index, dtype=object)
            out = pd.Series(pd.to_numeric(text, errors="coerce"), index=index, dtype="float64")
            bad = out.isna() & ~empty_np
            self._note(bad, lambda m: f"unparsable number in {name}: " + text[m].map(repr))
        if required and empty_np.any():
            self._note(pd.Series(empty_np, index=index), f"missing {name}")
        values = out.to_numpy()
        if not np.isfinite(values[~np.isnan(values)]).all():
            out[np.isinf(values)] = np.nan
        return out

    def integer(self, column: str, name: str | None = None, required: bool = False) -> pd.Series:
        num = self.number(column, name, required)
        frac = num.notna() & (num != np.floor(num.fillna(0)))
        self._note(frac, f"non-integer {name or column}")
        return num.where(~frac).round().astype("Int64")

    def times(self, column: str, fmt: str | None = None, *, epoch_unit: str | None = None,
              date_label: bool = False, name: str = "time") -> pd.Series:
        """UTC timestamps. date_label: keep only the local calendar date and stamp it 00:00 UTC
        (daily bars are labelled by session date, whatever the vendor's offset)."""
        fields = pa.array(self.raw[column].array, type=pa.string())
        index = self.raw.index
        if date_label and not epoch_unit:  # the usual column: every field starts with its date, no spaces
            day = pc.strptime(pc.utf8_slice_codeunits(fields, 0, 10), format="%Y-%m-%d", unit="s",
                              error_is_null=True)
            if day.null_count == 0:
                return pd.Series(day.cast(pa.timestamp("ns", tz="UTC")).to_pandas(), index=index)
        arr = pc.utf8_trim_whitespace(fields)
        if epoch_unit:
            try:
                num = pd.Series(pc.cast(pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr),
                                        pa.float64()).to_numpy(zero_copy_only=False), index=index)
            except pa.ArrowInvalid:
                num = pd.Series(pd.to_numeric(pd.Series(arr.to_numpy(zero_copy_only=False), index=index),
                                              errors="coerce"), index=index, dtype="float64")
            units = (np.where(num > 1e14, "us", "ms") if epoch_unit == "auto"  # Binance: ms, us since 2025
                     else np.full(len(num), epoch_unit))
            out = pd.Series(pd.NaT, index=index, dtype="datetime64[ns, UTC]")
            for u in np.unique(units):
                m = (units == u) & num.notna().to_numpy()
                if m.any():
                    out[m] = pd.to_datetime(num[m].astype("int64"), unit=str(u), utc=True)
        elif date_label:
            day = pc.strptime(pc.utf8_slice_codeunits(arr, 0, 10), format="%Y-%m-%d", unit="s",
                              error_is_null=True)
            out = pd.Series(day.cast(pa.timestamp("ns", tz="UTC")).to_pandas(), index=index)
        else:
            text = pd.Series(arr.to_numpy(zero_copy_only=False), index=index, dtype=object)
            out = pd.to_datetime(text, format=fmt or "ISO8601", errors="coerce", utc=True)
        bad = out.isna()
        if bad.any():
            s = pd.Series(arr.to_numpy(zero_copy_only=False), index=index, dtype=object)
            self._note(bad & (s != ""), lambda m: f"unparsable {name}: " + s[m].map(repr))
            self._note(bad & (s == ""), f"missing {name}")
        return out


def infer_from_name(path: Path) -> dict[str, str]:
    """What vendors put in file names: symbol and interval (e.g. FILUSDT-1m-2023-02.csv,
    DA-AAPL-T-2021-04-21.csv, 4063-T-1d-bad-stock-split.csv)."""
    name = path.name
    for ext in (".gz", ".csv", ".parquet", ".txt"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
    out: dict[str, str] = {}
    m = re.fullmatch(r"DA-(?P<symbol>.+)-T-\d{4}-\d{2}-\d{2}", name)
    if m:
        out["symbol"] = m["symbol"]
        return out
    m = re.search(r"(?:^|[-_])(" + "|".join(INTERVALS) + r")(?=$|[-_.])", name)
    if m:
        out["interval"] = "1h" if m.group(1) == "60m" else m.group(1)
        prefix = name[: m.start()]
        if prefix and re.fullmatch(r"[A-Za-z0-9.^=-]+", prefix):
            out["symbol"] = yahoo_symbol_from_filename(prefix)
    return out


def yahoo_symbol_from_filename(stem: str) -> str:
    """'4063-T' -> '4063.T', 'SCR-TO' -> 'SCR.TO'; 'BRK-B' stays (Yahoo's own spelling)."""
    base, _, suffix = stem.rpartition("-")
    if base and suffix in YAHOO_SUFFIX_EXCHANGE:
        return f"{base}.{suffix}"
    return stem


def exchange_for_yahoo_symbol(symbol: str) -> str:
    _, dot, suffix = symbol.rpartition(".")
    if dot and suffix in YAHOO_SUFFIX_EXCHANGE:
        return YAHOO_SUFFIX_EXCHANGE[suffix]
    return "US"


def empty_actions() -> pd.DataFrame:
    return pd.DataFrame({
        "ex_date": pd.Series(dtype="datetime64[ns]"), "symbol": pd.Series(dtype=object),
        "exchange": pd.Series(dtype=object), "action": pd.Series(dtype=object),
        "value": pd.Series(dtype="float64"), "_src": pd.Series(dtype="int64"),
    })


def actions_from(dates: pd.Series, symbol: str | np.ndarray, exchange: str | np.ndarray,
                 dividends: pd.Series | None, splits: pd.Series | None) -> pd.DataFrame:
    """Corporate-action rows from per-bar dividend and split columns (split ratio > 0, != 1).
    symbol, exchange: one value, or one per bar (a group of files; an array or a Categorical)."""
    parts = []
    for action, values, mask in (
        ("dividend", dividends, None if dividends is None else dividends.to_numpy() > 0),
        ("split", splits, None if splits is None else
         (splits.to_numpy() > 0) & (splits.to_numpy() != 1) & ~np.isnan(splits.to_numpy())),
    ):
        if mask is None or not mask.any():
            continue
        when = dates[mask]
        if when.dt.tz is not None:
            when = when.dt.tz_localize(None).dt.normalize()
        # `_src` keeps the index of the bar row the action came from, so that validation can drop
        # the action together with a rejected row (the row itself lands in quarantine).
        parts.append(pd.DataFrame({"ex_date": when.to_numpy(),
                                   "symbol": symbol if isinstance(symbol, str) else np.asarray(symbol[mask], dtype=object),
                                   "exchange": exchange if isinstance(exchange, str)
                                   else np.asarray(exchange[mask], dtype=object),
                                   "action": action, "value": values[mask].to_numpy(),
                                   "_src": dates.index[mask]}))
    if not parts:
        return empty_actions()
    out = pd.concat(parts, ignore_index=True)
    return out[out["ex_date"].notna()].reset_index(drop=True)


def assemble_bars(index: pd.Index, **columns) -> pd.DataFrame:
    """A frame with every BAR_FIELDS column (missing ones null), typed."""
    n = len(index)
    data = {}
    for col in BAR_FIELDS:
        val = columns.get(col)
        if col == "trade_count":
            data[col] = (pd.arrays.IntegerArray(np.zeros(n, dtype="int64"), np.ones(n, dtype=bool)) if val is None
                         else pd.Series(val, index=index).astype("Int64").array)
        elif col in ("symbol", "exchange", "interval"):
            data[col] = (np.full(n, val, dtype=object) if isinstance(val, str)
                         else val if isinstance(val, pd.Categorical)  # a group's: codes, no string per row
                         else pd.Series(val, index=index).astype(object).to_numpy())
        elif col == "ts":
            data[col] = val
        elif val is None:
            data[col] = np.full(n, np.nan)
        else:
            data[col] = pd.Series(val, index=index).to_numpy(dtype="float64", na_value=np.nan)
    return pd.DataFrame(data, index=index, copy=False)  # no consolidation copy of every column
