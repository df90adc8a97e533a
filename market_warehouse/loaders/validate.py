"""Row validation, pure: given a parsed batch, what may be loaded and what goes to quarantine (and why).

Rules for bars (a row may fail several; all reasons are kept):
- every required field parsed (time, open, high, low, close, volume);
- prices positive, volume not negative;
- high >= low, high >= open and close, low <= open and close;
- time not in the future (beyond one day of clock skew);
- interval, exchange and symbol are ones the dbt models accept (`BAR_INTERVALS`, the exchanges of
  seeds/exchanges.csv, `SYMBOL_PATTERN`); a bad value that every row of the source shares (an option,
  the file name) refuses the whole source with one line (`UnacceptedValue`) instead;
- a key (symbol, exchange, interval, ts) seen twice in one source with different values: every copy
  is quarantined (which is right cannot be told); identical copies load once and count as duplicates.
"""

from __future__ import annotations

import csv
import functools
import json
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from market_warehouse.config import project_dir
from market_warehouse.loaders.schema import BARS, CORPORATE_ACTIONS
from market_warehouse.loaders.sources.common import FormatError, ParsedBatch

FUTURE_SKEW = pd.Timedelta(days=1)

# The bar intervals the dbt models accept (stg_market__bars' accepted_values test; a pytest keeps the
# two in step). Rollups build 5m, 15m, 1h and 1d from finer bars; 30m and 1wk are kept as loaded.
BAR_INTERVALS = ("1s", "1m", "5m", "15m", "30m", "1h", "1d", "1wk")
# A symbol: 1 to 32 letters, digits and . - ^ = _ / starting with a letter, digit or ^ (AAPL, BRK.B,
# BRK-B, 4063.T, ^GSPC, EURUSD=X, FILUSDT). No spaces, commas or quotes.
SYMBOL_PATTERN = re.compile(r"[A-Za-z0-9^][A-Za-z0-9.\-^=_/]{0,31}")
EXCHANGES_SEED = "seeds/exchanges.csv"


class UnacceptedValue(FormatError):
    """Every row of a source carries an interval, exchange or symbol the models do not accept."""


@functools.cache
def _exchanges_of(path: str, mtime: float) -> frozenset[str]:
    return frozenset(pd.read_csv(path, dtype=str)["exchange"].str.strip())


def known_exchanges() -> frozenset[str]:
    """The exchanges the models know (seeds/exchanges.csv: code, calendar, time zone)."""
    path = project_dir() / EXCHANGES_SEED
    return _exchanges_of(str(path), path.stat().st_mtime)


def _unaccepted(column: str, value: str) -> str | None:
    """Why the models would not accept `value` in `column`, or None."""
    if column == "interval" and value not in BAR_INTERVALS:
        return f"interval {value!r} is not one the models accept ({', '.join(BAR_INTERVALS)})"
    if column == "exchange" and value not in known_exchanges():
        return (f"exchange {value!r} is not in {EXCHANGES_SEED} ({', '.join(sorted(known_exchanges()))}); "
                f"add it there with its calendar first")
    if column == "symbol" and value and not SYMBOL_PATTERN.fullmatch(value):
        return (f"symbol {value!r} is not a symbol (1-32 letters, digits and . - ^ = _ /, starting with a "
                f"letter, digit or ^)")
    return None


def _stripped(column: pd.Series) -> pd.Series:
    """The column as stripped text, '' for null, computed once per distinct value (a file's symbol,
    exchange and interval are usually one value each: no per-row Python work)."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    text = np.array([str(u).strip() for u in uniques] + [""], dtype=object)
    return pd.Series(text[codes], index=column.index)  # code -1 (null) picks the trailing ""


def vocabulary_violations(batch: ParsedBatch) -> pd.Series:
    """Per row: '' or why its interval, exchange or symbol is not accepted. Raises UnacceptedValue
    when a bad value is every row's (one line naming the source and the value)."""
    bars = batch.bars
    reasons = pd.Series("", index=bars.index, dtype=object)
    for column in ("interval", "exchange", "symbol"):
        values = _stripped(bars[column])
        uniques = values.unique()
        bad = {v: why for v in uniques if (why := _unaccepted(column, v))}
        if not bad:
            continue
        if len(uniques) == 1:
            raise UnacceptedValue(f"{batch.source}: {next(iter(bad.values()))}; nothing loaded")
        failing = values.map(bad).fillna("")
        reasons = pd.Series(np.where((reasons != "") & (failing != ""), reasons + "; " + failing,
                                     reasons + failing), index=bars.index)
    return reasons


@dataclass
class Validated:
    bars: pd.DataFrame  # valid bars, unique on BARS.key
    actions: pd.DataFrame  # corporate actions of valid rows, unique on CORPORATE_ACTIONS.key
    rejected: pd.DataFrame  # row_number, record, reason
    duplicates_in_source: int  # identical repeats dropped before loading

    @property
    def rows_read(self) -> int:
        return len(self.bars) + len(self.rejected) + self.duplicates_in_source


def bar_rule_violations(bars: pd.DataFrame, now: pd.Timestamp | None = None,
                        missing_symbol: np.ndarray | None = None) -> pd.Series:
    """Per row: '' or the '; '-joined reasons the bar is invalid (parse errors not included).
    missing_symbol: the rows without a symbol, when the caller knows them already."""
    failing, texts = _rule_failures(bars, now, missing_symbol)
    reasons = np.full(len(bars), "", dtype=object)
    reasons[failing] = texts
    return pd.Series(reasons, index=bars.index, dtype=object)


def _rule_failures(bars: pd.DataFrame, now: pd.Timestamp | None = None,
                   missing_symbol: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`bar_rule_violations` as (positions of the rows that fail a rule, their '; '-joined reasons):
    no text at all for the rows that pass, which is nearly every row."""
    now = now or pd.Timestamp.now(tz="UTC")
    o, h, l, c, v = (bars[k].to_numpy(dtype="float64") for k in ("open", "high", "low", "close", "volume"))
    with np.errstate(invalid="ignore"):  # NaN (unparsed) compares False: its parse error says why
        checks = [
            (o <= 0, "open not positive"), (h <= 0, "high not positive"),
            (l <= 0, "low not positive"), (c <= 0, "close not positive"),
            (v < 0, "negative volume"), (h < l, "high < low"),
            (h < np.fmax(o, c), "high below open/close"), (l > np.fmin(o, c), "low above open/close"),
            ((bars["ts"] > now + FUTURE_SKEW).to_numpy(dtype=bool), "time in the future"),
            ((_stripped(bars["symbol"]) == "").to_numpy(dtype=bool) if missing_symbol is None
             else missing_symbol, "missing symbol"),
        ]
    failing = [(m, text) for m, text in checks if m.any()]
    if not failing:
        return np.zeros(0, dtype="int64"), np.zeros(0, dtype=object)
    # the rare path: build the messages only for rows that fail something
    rows = np.flatnonzero(np.logical_or.reduce([m for m, _ in failing]))
    texts = np.array(["; ".join(text for m, text in failing if m[i]) for i in rows] + [None],
                     dtype=object)[:-1]
    return rows, texts


def _records(batch: ParsedBatch, index: pd.Index) -> list[str]:
    return [json.dumps(r, ensure_ascii=False) for r in batch.raw.loc[index].to_dict(orient="records")]


def _join_reasons(reasons: np.ndarray, rules: np.ndarray) -> np.ndarray:
    """Per row: the reasons so far and the new rules' reasons, '; '-joined ('' = none)."""
    has, new = reasons != "", rules != ""
    if not new.any():
        return reasons
    return np.where(has & new, reasons + "; " + rules, reasons + rules)


def _sort_out_duplicates(dups: pd.DataFrame, by: list[str], lines: pd.Series, reasons: pd.Series
                         ) -> tuple[pd.DataFrame, pd.Series]:
    """Rows that share a key (`by`): where their values differ, every one of them gets the reason
    naming all their lines (into `reasons`); the others are identical repeats. Returns those rows and,
    over them, the repeats after the first (dropped, counted as duplicates in the source)."""
    key = list(BARS.key)
    conflicting = dups.groupby(by, dropna=False)[BARS.compare_columns].transform(
        lambda col: col.nunique(dropna=False) > 1).any(axis=1)
    for _, group in dups[conflicting].groupby(by, dropna=False):
        where = ", ".join(str(n) for n in lines.loc[group.index])
        reasons.loc[group.index] = (f"duplicate key ({', '.join(str(group.iloc[0][k]) for k in key)}) "
                                    f"with different values on lines {where}")
    identical = dups[~conflicting]
    return identical, identical.duplicated(subset=by + BARS.compare_columns, keep="first")


def _malformed_rows(malformed: list[tuple[int | None, str]]) -> pd.DataFrame:
    """Quarantine rows of lines whose field count does not match the header."""
    return pd.DataFrame({
        "row_number": [n if n is not None else -1 for n, _ in malformed],
        "record": [json.dumps({"line": text}, ensure_ascii=False) for _, text in malformed],
        "reason": [f"malformed row: {len(next(csv.reader([t])))} fields do not match the header"
                   for _, t in malformed],
    })


def validate(batch: ParsedBatch, now: pd.Timestamp | None = None) -> Validated:
    bars = batch.bars
    reasons = batch.parse_errors.copy()
    for rules in (vocabulary_violations(batch), bar_rule_violations(bars, now)):
        reasons = pd.Series(_join_reasons(reasons.to_numpy(dtype=object), rules.to_numpy(dtype=object)),
                            index=bars.index)

    ok = reasons == ""
    key = list(BARS.key)
    valid = bars[ok]
    dup_any = valid.duplicated(subset=key, keep=False)
    duplicates_in_source = 0
    if dup_any.any():
        identical, repeat = _sort_out_duplicates(valid[dup_any], key, batch.row_numbers, reasons)
        duplicates_in_source = int(repeat.sum())
        ok = reasons == ""
        ok.loc[identical.index[repeat.values]] = False
    valid = bars[ok]

    bad_idx = reasons.index[reasons != ""]
    rejected = pd.DataFrame({
        "row_number": batch.row_numbers.loc[bad_idx].astype("int64").values,
        "record": _records(batch, bad_idx),
        "reason": reasons.loc[bad_idx].values,
    })
    if batch.malformed:
        rejected = pd.concat([rejected, _malformed_rows(batch.malformed)],
                             ignore_index=True).sort_values("row_number", ignore_index=True)

    actions = batch.actions
    if "_src" in actions.columns:
        # Actions of rejected rows wait in quarantine with their row.
        actions = actions[actions["_src"].isin(reasons.index[reasons == ""])].drop(columns="_src")
    actions = actions.drop_duplicates(subset=list(CORPORATE_ACTIONS.key), keep="last")
    return Validated(bars=valid, actions=actions.reset_index(drop=True), rejected=rejected,
                     duplicates_in_source=duplicates_in_source)


@dataclass
class ValidatedGroup:
    """`validate_many`'s answer: the group's rows checked at once, with each row's file (part).
    Every frame is ordered by part, so file k's rows are one slice (`slices`)."""

    checked: Validated  # bars, actions, rejected of the whole group
    bar_part: np.ndarray
    action_part: np.ndarray
    rejected_part: np.ndarray
    duplicates: np.ndarray  # per part: identical repeats dropped
    refused: dict[int, str]  # part -> why the whole file is refused (UnacceptedValue's line)

    def slices(self, k: int) -> tuple[slice, slice, slice]:
        """File k's rows in bars, actions, rejected."""
        return tuple(slice(*np.searchsorted(p, [k, k + 1])) for p in
                     (self.bar_part, self.action_part, self.rejected_part))


def _codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """The column as codes into its distinct stripped values ('' for null): one factorize per
    column for the whole group, every rule below works on the few distinct values."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    text = [str(u).strip() for u in uniques] + [""]  # code -1 (null): the trailing ""
    same, distinct = pd.factorize(pd.Series(text, dtype=object))  # ' X' and 'X' are one value
    return same[codes], list(distinct)


def _vocabulary_by_part(codes: dict[str, tuple[np.ndarray, list[str]]], part: np.ndarray,
                        sources: list[str]) -> tuple[np.ndarray | None, dict[int, str]]:
    """`vocabulary_violations` per file of a group: a bad value every row of a file shares refuses
    that file alone (same line as `validate` raises); elsewhere the rows are quarantined.
    Returns the per-row reasons (None: none) and the refused files."""
    reasons = None
    refused: dict[int, str] = {}
    n = len(sources)
    size = np.bincount(part, minlength=n)
    for column in ("interval", "exchange", "symbol"):
        col_codes, text = codes[column]
        why = np.array([_unaccepted(column, v) or "" for v in text], dtype=object)
        if not (why != "").any():
            continue
        failing = why[col_codes]
        is_bad = failing != ""
        n_bad = np.bincount(part, weights=is_bad, minlength=n)
        lo = np.full(n, np.iinfo(np.int64).max)
        hi = np.full(n, -1)
        np.minimum.at(lo, part, col_codes)
        np.maximum.at(hi, part, col_codes)
        for k in np.flatnonzero((size > 0) & (n_bad == size) & (lo == hi)):
            refused.setdefault(int(k), f"{sources[k]}: {why[lo[k]]}; nothing loaded")
        reasons = failing if reasons is None else _join_reasons(reasons, failing)
    return reasons, refused


def _duplicated_keys(codes: dict[str, tuple[np.ndarray, list[str]]], ts: np.ndarray, part: np.ndarray,
                     rows: np.ndarray) -> np.ndarray:
    """Among `rows`, those whose (part, symbol, exchange, interval, ts) another of them shares: on
    integer codes (hashing a million object strings per key column was most of the check)."""
    ints = {c: codes[c][0][rows] for c in ("symbol", "exchange", "interval")}
    ints["ts"] = ts[rows]
    ints["_part"] = part[rows]
    if _no_repeated_key(ints):
        return np.zeros(len(rows), dtype=bool)
    return pd.DataFrame(ints).duplicated(keep=False).to_numpy()


def _no_repeated_key(ints: dict[str, np.ndarray]) -> bool:
    """True when no key can repeat, told in one pass: every series (file, symbol, exchange, interval)
    is one contiguous run of rows and its times strictly rise (or all strictly fall) along it, as a
    vendor file's rows are. False: not shown, so the caller hashes the keys."""
    if len(ints["ts"]) < 2:
        return True
    cols = [ints[c].astype("int64") for c in ("_part", "symbol", "exchange", "interval")]
    if min(int(c.min()) for c in cols) < 0 or np.prod([float(c.max()) + 1 for c in cols]) >= 2**62:
        return False  # a null code, or too many combinations to pack into one integer: hash instead
    series = np.zeros(len(ints["ts"]), dtype="int64")
    for col in cols:
        series = series * (int(col.max()) + 1) + col
    same = series[1:] == series[:-1]
    runs = len(series) - int(same.sum())
    if runs != len(pd.unique(series)):
        return False
    step = np.diff(ints["ts"])[same]
    return bool((step > 0).all() or (step < 0).all())


def validate_many(batch: ParsedBatch, bounds: np.ndarray, sources: list[str],
                  malformed: list[list[tuple[int | None, str]]], now: pd.Timestamp | None = None
                  ) -> ValidatedGroup:
    """`validate` for a group of files parsed as one batch (rows of file k: bounds[k]:bounds[k+1]),
    with the same rules and per-file meaning: duplicates are within a file, and a file whose every
    row carries one unaccepted interval/exchange/symbol is refused alone (`refused`)."""
    bars = batch.bars
    if not bars.index.equals(pd.RangeIndex(len(bars))):
        bars = bars.reset_index(drop=True)
    n_parts = len(sources)
    part = np.repeat(np.arange(n_parts), np.diff(bounds))
    codes = {c: _codes(bars[c]) for c in ("symbol", "exchange", "interval")}
    # Reasons are joined only where a row fails something; `failed` says which rows do, so that
    # nothing compares a million empty strings.
    reasons = batch.parse_errors.to_numpy(dtype=object)
    failed = reasons != ""
    vocab, refused = _vocabulary_by_part(codes, part, sources)
    if vocab is not None:
        reasons = _join_reasons(reasons, vocab)
        failed |= vocab != ""
    sym_codes, sym_text = codes["symbol"]
    missing_symbol = np.array([t == "" for t in sym_text], dtype=bool)[sym_codes]
    rule_rows, rule_texts = _rule_failures(bars, now, missing_symbol)
    if len(rule_rows):
        reasons = reasons.copy()
        reasons[rule_rows] = _join_reasons(reasons[rule_rows], rule_texts)
        failed[rule_rows] = True
    reasons = pd.Series(reasons, index=bars.index, dtype=object)
    kept = ~np.isin(part, list(refused))  # a refused file: none of its rows is loaded or quarantined

    ok = ~failed & kept
    key = list(BARS.key)
    pkey = ["_part", *key]
    duplicates = np.zeros(n_parts, dtype="int64")
    lines = batch.row_numbers.reset_index(drop=True)
    ts = bars["ts"].to_numpy(dtype="datetime64[ns]").view("int64")
    ok_rows = np.flatnonzero(ok)
    dup_rows = ok_rows[_duplicated_keys(codes, ts, part, ok_rows)]
    if len(dup_rows):
        dups = bars.iloc[dup_rows].assign(_part=part[dup_rows])
        for c in ("symbol", "exchange", "interval"):  # categoricals would group by every combination
            if isinstance(dups[c].dtype, pd.CategoricalDtype):
                dups[c] = dups[c].astype(object)
        identical, repeat = _sort_out_duplicates(dups, pkey, lines, reasons)
        failed[dup_rows] = (reasons.to_numpy()[dup_rows] != "")
        duplicates = np.bincount(identical["_part"][repeat].to_numpy(), minlength=n_parts).astype("int64")
        ok = ~failed & kept
        ok[identical.index[repeat.values]] = False

    bad = np.flatnonzero(failed & kept)
    raw = batch.raw.reset_index(drop=True)
    rejected = pd.DataFrame({
        "row_number": lines.to_numpy()[bad].astype("int64"),
        "record": [json.dumps(r, ensure_ascii=False) for r in raw.iloc[bad].to_dict(orient="records")],
        "reason": reasons.to_numpy()[bad],
        "_part": part[bad],
    })
    extra = [(k, n, t) for k, rows in enumerate(malformed) if k not in refused for n, t in rows]
    if extra:
        rows = _malformed_rows([(n, t) for _, n, t in extra]).assign(_part=[k for k, _, _ in extra])
        rejected = pd.concat([rejected, rows], ignore_index=True).sort_values(
            ["_part", "row_number"], ignore_index=True, kind="stable")

    actions = batch.actions
    if "_src" in actions.columns:
        src = actions["_src"].to_numpy(dtype="int64")
        actions = actions[ok[src]].assign(_part=part[src[ok[src]]]).drop(columns="_src")
    else:
        actions = actions.assign(_part=0)
    actions = (actions.drop_duplicates(subset=["_part", *CORPORATE_ACTIONS.key], keep="last")
               .sort_values("_part", kind="stable", ignore_index=True))
    rejected_part = rejected.pop("_part").to_numpy(dtype="int64")
    return ValidatedGroup(
        checked=Validated(bars=bars if ok.all() else bars[ok], actions=actions.drop(columns="_part"), rejected=rejected,
                          duplicates_in_source=int(duplicates.sum())),
        bar_part=part[ok], action_part=actions["_part"].to_numpy(dtype="int64"),
        rejected_part=rejected_part, duplicates=duplicates, refused=refused)
