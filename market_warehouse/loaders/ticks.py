"""`mwh load ticks FILE... --format binance-ws|trades-csv`: trades, depth diffs, book tickers and depth
snapshots into the raw tick tables, the order book rebuilt from them (loaders/book.py), and 1s and 1m
bars computed from the trades into raw.bars (loader `bars-from-trades`), with the bars' guarantees:

- one transaction per file: every table of it commits, or none does (the failure is audited);
- idempotent: the same file loaded again adds nothing (its rows count as duplicates);
- rejected messages go to raw.quarantine with their line number and reason;
- one raw.loader_runs row per file and table written.

The live client (market_warehouse/stream/) writes its micro-batches through `write_ticks` too.
"""

from __future__ import annotations

import gc
import json
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from market_warehouse.loaders import book as bookmod
from market_warehouse.loaders.pipeline import prepare_batch
from market_warehouse.loaders.schema import (
    BARS,
    BOOK_SEQUENCE_EVENTS,
    BOOK_STATES,
    BOOK_TICKERS,
    DEPTH_SNAPSHOTS,
    DEPTH_UPDATES,
    LOADER_RUNS,
    MARKET_TABLES,
    QUARANTINE,
    TICK_TABLES,
    TRADES,
    Table,
)
from market_warehouse.loaders.sinks import Sink
from market_warehouse.loaders.sinks.ticks_pg import binary_copies
from market_warehouse.loaders.sources import binance_ws, trades_csv  # noqa: F401 (register)
from market_warehouse.loaders.sources.binance_ws import TICK_FORMATS, TickBatch
from market_warehouse.loaders.sources.common import ParsedBatch, assemble_bars
from market_warehouse.runs import (
    SourceReport,
    audit_row,
    describe_error,
    new_run_id,
    record_failure,
    utcnow,
    with_audit,
)

log = logging.getLogger(__name__)

TABLES = {t.name: t for t in (TRADES, DEPTH_UPDATES, BOOK_TICKERS, DEPTH_SNAPSHOTS)}
ALL_TICK_TABLES = (*MARKET_TABLES, *TICK_TABLES)
BAR_WIDTHS = {"1s": "1s", "1m": "1min"}
BARS_LOADER = "bars-from-trades"
BOOK_LOADER = "book-rebuild"


def bars_from_trades(trades: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None,
                     intervals=("1s", "1m")) -> pd.DataFrame:
    """OHLCV, VWAP, trade count, quote volume and taker-buy volumes per bar, for the bars whose whole
    span lies within [start, end] (the time the source covers): a bar cut by the start or end of a
    capture would be wrong, so it is not written. Bars with no trade have no row."""
    frames = []
    if trades.empty or start is None:
        return assemble_bars(pd.RangeIndex(0), ts=pd.Series(dtype="datetime64[ns, UTC]"))
    t = trades.sort_values(["symbol", "exchange", "ts", "trade_id"], kind="stable")
    qv = t["price"] * t["quantity"]
    taker_buy = ~t["is_buyer_maker"].fillna(False).astype(bool)
    base = pd.DataFrame({"symbol": t["symbol"], "exchange": t["exchange"], "price": t["price"],
                         "volume": t["quantity"], "quote_volume": qv,
                         "taker_buy_volume": t["quantity"].where(taker_buy, 0.0),
                         "taker_buy_quote_volume": qv.where(taker_buy, 0.0)})
    for interval in intervals:
        width = pd.Timedelta(BAR_WIDTHS[interval])
        base["bucket"] = t["ts"].dt.floor(BAR_WIDTHS[interval])
        g = base.groupby(["symbol", "exchange", "bucket"], sort=True)
        agg = g.agg(open=("price", "first"), high=("price", "max"), low=("price", "min"), close=("price", "last"),
                    volume=("volume", "sum"), quote_volume=("quote_volume", "sum"),
                    trade_count=("price", "size"), taker_buy_volume=("taker_buy_volume", "sum"),
                    taker_buy_quote_volume=("taker_buy_quote_volume", "sum")).reset_index()
        agg = agg[(agg["bucket"] >= start) & (agg["bucket"] + width <= end + pd.Timedelta(milliseconds=1))]
        agg["vwap"] = agg["quote_volume"] / agg["volume"]
        agg["interval"] = interval
        frames.append(agg.rename(columns={"bucket": "ts"}))
    out = pd.concat(frames, ignore_index=True)
    return assemble_bars(out.index, ts=out["ts"], symbol=out["symbol"], exchange=out["exchange"],
                         interval=out["interval"], open=out["open"], high=out["high"], low=out["low"],
                         close=out["close"], volume=out["volume"], vwap=out["vwap"],
                         trade_count=out["trade_count"], quote_volume=out["quote_volume"],
                         taker_buy_volume=out["taker_buy_volume"],
                         taker_buy_quote_volume=out["taker_buy_quote_volume"])


RECONCILED = ("open", "high", "low", "close", "volume", "trade_count", "taker_buy_volume", "quote_volume")


def reconcile_with_klines(bars: pd.DataFrame, klines: pd.DataFrame, rtol: float = 1e-9) -> pd.DataFrame:
    """Per minute and column, where our 1m bars from trades and the exchange's 1m klines (both in the
    bars' columns) disagree beyond `rtol`, plus minutes only one side has. Empty: they agree.
    The exchange builds its klines from the same trades, so a difference is a missed, duplicated or
    altered trade."""
    key = ["symbol", "exchange", "ts"]
    ours = bars[bars["interval"] == "1m"][key + list(RECONCILED)]
    theirs = klines[klines["interval"] == "1m"][key + list(RECONCILED)]
    m = ours.merge(theirs, on=key, how="outer", suffixes=("", "_kline"), indicator=True)
    out = [pd.DataFrame({**{k: m.loc[m["_merge"] != "both", k] for k in key}, "column": "(row)",
                         "ours": np.nan, "kline": np.nan,
                         "why": m.loc[m["_merge"] != "both", "_merge"].map(
                             {"left_only": "no kline", "right_only": "no bar from trades"})})]
    both = m[m["_merge"] == "both"]
    for col in RECONCILED:
        a, b = both[col].astype("float64"), both[f"{col}_kline"].astype("float64")
        bad = ~np.isclose(a, b, rtol=rtol, atol=0, equal_nan=True)
        if bad.any():
            out.append(pd.DataFrame({**{k: both.loc[bad, k] for k in key}, "column": col, "ours": a[bad],
                                     "kline": b[bad], "why": "differs"}))
    return pd.concat(out, ignore_index=True)


def _dedupe(table: Table, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Rows of one source sharing a key: identical copies load once (counted as duplicates); copies
    that differ are all rejected (which one is right cannot be told). Returns kept, rejected, dups."""
    if frame.empty:
        return frame, frame.iloc[:0], 0
    key = list(table.key)
    if frame[key[2]].is_unique:  # the id alone is unique (the usual case): no two rows share a key
        return frame, frame.iloc[:0], 0
    data = [c for c in frame.columns if c not in ("_row", "received_at")]
    exact = frame.duplicated(subset=data, keep="first")
    kept = frame[~exact]
    clash = kept.duplicated(subset=key, keep=False)
    return kept[~clash], kept[clash], int(exact.sum())


def _record(row: pd.Series) -> str:
    return json.dumps({k: (None if pd.isna(v) else str(v)) for k, v in row.items() if k != "_row"})


def _quarantine(rejected: pd.DataFrame, run_id: str, source: str, at: pd.Timestamp) -> pd.DataFrame:
    q = rejected.assign(run_id=run_id, source=source, quarantined_at=at,
                        target_table=[f"raw.{t}" if t != "unknown" else "unknown" for t in rejected["target_table"]])
    q["row_number"] = q["row_number"].astype("int64")
    return q[QUARANTINE.column_names]


def write_ticks(sink: Sink, batch: TickBatch, states: pd.DataFrame | None, events: pd.DataFrame | None,
                bars: pd.DataFrame | None, run_id: str, started: pd.Timestamp,
                derived: Future | None = None) -> list[SourceReport]:
    """One source's ticks, book states, sequence events and bars in ONE transaction, with the audit
    rows of every table written. Returns one report per table (the source's line is their sum).
    `derived`: (states, events, bars) still being computed (by another thread) while the raw tables
    are written; taken once they are, in the same transaction (a failure there rolls all back)."""
    at = utcnow()
    source = batch.source
    reports: list[SourceReport] = []
    rejected = [batch.rejected]
    writes: list[tuple[Table, pd.DataFrame, SourceReport]] = []
    for name, table in TABLES.items():
        frame = batch.frames.get(name)
        if frame is None or (frame.empty and not batch.events.get(name)):
            continue
        kept, clash, dups = _dedupe(table, frame)
        if len(clash):
            rejected.append(pd.DataFrame({
                "row_number": clash["_row"].to_numpy(), "target_table": name,
                "record": [_record(r) for _, r in clash.iterrows()],
                "reason": f"same key ({', '.join(table.key)}) as another line of this source with other values"}))
        r = SourceReport(source=source, loader=batch.loader, rows_read=int(batch.events.get(name, 0)),
                         duplicate=dups)
        writes.append((table, with_audit(kept.drop(columns="_row"), source, run_id, at)[table.column_names], r))
    rej = pd.concat([x for x in rejected if len(x)], ignore_index=True) if any(len(x) for x in rejected) else None
    if rej is not None:
        for table, _, r in writes:
            part = rej[rej["target_table"] == table.name]
            r.quarantined = len(part)
            r.examples = [f"line {n}: {why}" for n, why in zip(part["row_number"][:5], part["reason"][:5])]
    with sink.transaction() as tx:
        ticks = binary_copies(tx)  # the tick tables by binary COPY on PostgreSQL (same merge, same transaction)
        audit = []
        for table, frame, r in writes:
            c = ticks.merge(table, frame)
            r.loaded, r.replaced, r.duplicate = c.loaded, c.replaced, c.duplicate + r.duplicate
            reports.append(r)
            audit.append((r, table))
        if derived is not None:
            states, events, bars = derived.result()
        # A resync re-emits the state of the diff it restarts from: one row per key (the last).
        book = [(t, f.drop_duplicates(subset=list(t.key), keep="last") if f is not None else f)
                for t, f in ((BOOK_STATES, states), (BOOK_SEQUENCE_EVENTS, events))]
        for table, frame in book:
            if frame is None or (frame.empty and not batch.events.get("depth_updates")):
                continue
            r = SourceReport(source=source, loader=BOOK_LOADER, rows_read=len(frame), notes=[table.qualified])
            c = ticks.merge(table, with_audit(frame, source, run_id, at)[table.column_names])
            r.loaded, r.replaced, r.duplicate = c.loaded, c.replaced, c.duplicate
            reports.append(r)
            audit.append((r, table))
        if rej is not None:
            unknown = rej[~rej["target_table"].isin([t.name for t, _, _ in writes])]
            if len(unknown):
                r = SourceReport(source=source, loader=batch.loader, rows_read=len(unknown),
                                 quarantined=len(unknown),
                                 examples=[f"line {n}: {why}" for n, why in
                                           zip(unknown["row_number"][:5], unknown["reason"][:5])])
                reports.append(r)
                audit.append((r, "unknown"))
            tx.append(QUARANTINE, _quarantine(rej, run_id, source, at))
        if bars is not None and len(bars):
            prep = prepare_batch(sink, ParsedBatch(
                source=f"{source}#bars", loader=BARS_LOADER, bars=bars,
                raw=bars.astype(str), row_numbers=pd.Series(np.arange(len(bars)) + 1, index=bars.index),
                parse_errors=pd.Series("", index=bars.index, dtype=object),
                parameters={"from": source, "intervals": sorted(bars["interval"].unique().tolist())}), run_id)
            c = tx.merge(BARS, prep.bars, encoded=prep.encoded_bars)
            if len(prep.quarantine):
                tx.append(QUARANTINE, prep.quarantine)
            r = SourceReport(source=f"{source}#bars", loader=BARS_LOADER, rows_read=len(bars), loaded=c.loaded,
                             replaced=c.replaced, duplicate=c.duplicate + prep.checked.duplicates_in_source,
                             quarantined=len(prep.quarantine))
            reports.append(r)
            audit.append((r, BARS))
        finished = utcnow()
        rows = []
        for r, table in audit:
            r.seconds = (finished - started).total_seconds()
            target = table  # "unknown": messages of no known table (all quarantined)
            rows.append(audit_row(r, run_id, target, batch.parameters, started, finished))
        if rows:
            tx.append(LOADER_RUNS, pd.concat(rows, ignore_index=True))
    return reports


def coverage(batch: TickBatch) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """The time span a source covers: its first and last event times over the stream messages (a
    REST snapshot's time is when it was taken, not a point of the stream)."""
    lo, hi = [], []
    for name, frame in batch.frames.items():
        if len(frame) and "ts" in frame and name != "depth_snapshots":
            lo.append(frame["ts"].min())
            hi.append(frame["ts"].max())
    return (min(lo), max(hi)) if lo else (None, None)


def _derive(depth_updates: pd.DataFrame, snapshots: pd.DataFrame, levels: dict, trades: pd.DataFrame | None,
            start, end) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """What the loader computes from a parsed source: book states, sequence events and bars (none
    when `trades` is None). Given shallow copies of the batch's frames, so that nothing it reads is
    shared with the thread writing the batch."""
    states, events = bookmod.rebuild(depth_updates, snapshots, parsed=levels)
    levels.clear()  # the parsed levels (a million small objects): freed before the bars
    bar_frame = bars_from_trades(_dedupe(TRADES, trades)[0], start, end) if trades is not None else None
    return states, events, bar_frame


@contextmanager
def gc_paused():
    """The cyclic garbage collector off for a file's parse and book fold: they allocate a million small
    lists and dicts (the messages and their levels) that live until the write, and each collection
    would walk them all again (a third of the parse's time). Nothing they make is a cycle; the
    collector is back on (if it was) when the file is done."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def load_tick_files(sink: Sink, paths, fmt: str, run_id: str | None = None, bars: bool = True,
                    **options) -> list[SourceReport]:
    """Load tick files one transaction each; returns one summary report per file (the per-table
    reports are in its notes)."""
    if fmt not in TICK_FORMATS:
        raise ValueError(f"unknown tick format {fmt!r}; one of {', '.join(TICK_FORMATS)}")
    sink.ensure_tables(TICK_TABLES)
    run_id = run_id or new_run_id()
    opts = {k: v for k, v in options.items() if v is not None}
    out = []
    for path in paths:
        started = utcnow()
        source = str(Path(path))
        try:
            with gc_paused():
                batch = TICK_FORMATS[fmt](path, **opts)
                # The book fold and the bars run on a second thread while the raw tables are written:
                # the database ingests them meanwhile (its work and waiting release the GIL).
                start, end = coverage(batch)
                levels, batch.levels = batch.levels, {}
                with ThreadPoolExecutor(max_workers=1) as pool:
                    later = pool.submit(_derive, batch.frames["depth_updates"].copy(deep=False),
                                        batch.frames["depth_snapshots"].copy(deep=False), levels,
                                        batch.frames["trades"].copy(deep=False) if bars else None, start, end)
                    try:
                        reports = write_ticks(sink, batch, None, None, None, run_id, started, derived=later)
                    finally:
                        later.cancel()
                events = later.result()[1]
        except Exception as exc:
            log.debug("tick load failed", exc_info=True)
            out.append(record_failure(sink, run_id, source, fmt, describe_error(exc, source), started,
                                      {"format": fmt, **opts}, TRADES))
            continue
        total = SourceReport(source=source, loader=fmt)
        for r in reports:
            if r.loader in (BARS_LOADER, BOOK_LOADER):
                what = "raw.bars" if r.loader == BARS_LOADER else r.notes[0]
                total.notes.append(f"{what} ({r.loader}): {r.rows_read:,} rows, {r.loaded:,} new, "
                                   f"{r.duplicate:,} duplicate, {r.quarantined:,} quarantined")
                continue
            total.rows_read += r.rows_read
            total.loaded += r.loaded
            total.replaced += r.replaced
            total.duplicate += r.duplicate
            total.quarantined += r.quarantined
            total.examples += r.examples
        total.notes = [f"{t}: {n:,} messages" for t, n in sorted(batch.events.items())] + total.notes
        ev = events[events["event"] != "synced"] if len(events) else events
        for _, e in ev.iterrows():
            total.notes.append(f"book {e['event']} at u={e['update_id']}: {e['detail']}")
        total.seconds = (utcnow() - started).total_seconds()
        out.append(total)
    return out
