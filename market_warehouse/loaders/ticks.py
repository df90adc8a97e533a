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
import queue
import threading
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

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


def _raw_writes(batch: TickBatch, run_id: str, at: pd.Timestamp
                ) -> tuple[list[tuple[Table, pd.DataFrame, SourceReport]], list[pd.DataFrame]]:
    """A batch's raw tick rows to merge, one (table, rows with their audit columns, report) per
    table it has messages for, and its rejected rows (the parse's, then the key clashes)."""
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
        r = SourceReport(source=batch.source, loader=batch.loader, rows_read=int(batch.events.get(name, 0)),
                         duplicate=dups)
        writes.append((table, with_audit(kept.drop(columns="_row"), batch.source, run_id, at)[table.column_names], r))
    return writes, rejected


def write_ticks(sink: Sink, batch: TickBatch, states: pd.DataFrame | None, events: pd.DataFrame | None,
                bars: pd.DataFrame | None, run_id: str, started: pd.Timestamp,
                derived: Future | None = None) -> list[SourceReport]:
    """One source's ticks, book states, sequence events and bars in ONE transaction, with the audit
    rows of every table written. Returns one report per table (the source's line is their sum).
    `derived`: (states, events, bars) still being computed (by another thread) while the raw tables
    are written; taken once they are, in the same transaction (a failure there rolls all back)."""
    at = utcnow()
    writes, rejected = _raw_writes(batch, run_id, at)
    with sink.transaction() as tx:
        ticks = binary_copies(tx)  # the tick tables by binary COPY on PostgreSQL (same merge, same transaction)
        for table, frame, r in writes:
            c = ticks.merge(table, frame)
            r.loaded, r.replaced, r.duplicate = c.loaded, c.replaced, c.duplicate + r.duplicate
        if derived is not None:
            states, events, bars = derived.result()
        return _write_derived(sink, tx, ticks, batch, [(t, r) for t, _, r in writes], rejected, states, events, bars,
                              run_id, at, started)


def _write_derived(sink: Sink, tx, ticks, batch: TickBatch, raw: list[tuple[Table, SourceReport]], rejected: list[pd.DataFrame],
                   states: pd.DataFrame | None, events: pd.DataFrame | None, bars: pd.DataFrame | None,
                   run_id: str, at: pd.Timestamp, started: pd.Timestamp) -> list[SourceReport]:
    """After a source's raw tick tables (`raw`: each table and its report, merged): its book states,
    sequence events, quarantine, bars and audit rows, in the same transaction. Returns every report."""
    source = batch.source
    reports = [r for _, r in raw]
    audit: list[tuple[SourceReport, Table | str]] = [(r, t) for t, r in raw]
    rej = pd.concat([x for x in rejected if len(x)], ignore_index=True) if any(len(x) for x in rejected) else None
    if rej is not None:
        for table, r in raw:
            part = rej[rej["target_table"] == table.name]
            r.quarantined = len(part)
            r.examples = [f"line {n}: {why}" for n, why in zip(part["row_number"][:5], part["reason"][:5])]
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
        unknown = rej[~rej["target_table"].isin([t.name for t, _ in raw])]
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


class _Unchunkable(Exception):
    """A key of a tick table in two chunks of one file: whether the copies are duplicates or a clash
    (both rejected) is the whole-file dedupe's to decide, so the file is loaded whole instead."""


def _produce(path, lines: int, opts: dict, bars: bool, out: queue.Queue, stop: threading.Event) -> None:
    """The parse thread of a chunked load: each chunk handed over as it is parsed, then the book fold
    and the bars of the whole file (computed while the writer writes the last chunks). The writer gets
    its own shallow copies of the frames: nothing either thread reads is a pandas object the other uses."""

    def put(item) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    try:
        kept: dict[str, list[pd.DataFrame]] = {"depth_updates": [], "depth_snapshots": [], "trades": []}
        levels = []
        for chunk in binance_ws.parse_chunks(path, lines, **opts):
            for name, parts in kept.items():
                parts.append(chunk.frames[name])
            levels.append(chunk.levels)
            chunk.frames = {n: f.copy(deep=False) for n, f in chunk.frames.items()}
            chunk.levels = {}
            log.debug("chunk parsed")
            if not put(("chunk", chunk)):
                return
        whole = {n: pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0] for n, parts in kept.items()}
        span = coverage(SimpleNamespace(frames=whole))
        log.debug("all parsed: book fold and bars")
        put(("done", _derive(whole["depth_updates"], whole["depth_snapshots"], binance_ws.concat_levels(levels),
                             whole["trades"] if bars else None, *span)))
    except BaseException as exc:  # noqa: BLE001 - handed to the writer, which raises it in its transaction
        put(("error", exc))


def _load_chunked(sink: Sink, path, lines: int, opts: dict, bars: bool, run_id: str, started: pd.Timestamp):
    """One capture in chunks of `lines` lines, in ONE transaction: a thread parses chunk k + 1 while
    this one writes chunk k (the database ingests it meanwhile: its work and waiting release the GIL),
    then the book, bars, quarantine and audit as `write_ticks` writes them. The rows landed and the
    counts are those of the whole-file path (`write_ticks`); a key in two chunks raises `_Unchunkable`
    (all rolled back). Returns (reports, messages per table, sequence events)."""
    out: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    producer = threading.Thread(target=_produce, args=(path, lines, opts, bars, out, stop), daemon=True,
                                name="mwh-tick-parse")
    producer.start()
    try:
        at, source = utcnow(), str(Path(path))
        totals: dict[str, SourceReport] = {}
        rejected: list[pd.DataFrame] = []
        seen: dict[str, np.ndarray] = {}
        messages: Counter = Counter()
        parameters = None
        with sink.transaction() as tx:
            ticks = binary_copies(tx)
            while True:
                kind, item = out.get()
                if kind == "error":
                    raise item
                if kind == "done":
                    log.debug("book fold and bars taken")
                    break
                messages.update(item.events)
                parameters = parameters or item.parameters
                for name, table in TABLES.items():  # the ids of every row, kept or not (the dedupe's input)
                    ids = item.frames[name][table.key[2]].to_numpy(dtype="int64", na_value=-1)
                    prev = seen.get(name)
                    if prev is not None and len(ids) and np.isin(ids, prev).any():
                        raise _Unchunkable(f"{source}: a {name} key in two chunks")
                    seen[name] = ids if prev is None else np.concatenate([prev, ids])
                writes, rej = _raw_writes(item, run_id, at)
                rejected += rej
                for table, frame, r in writes:
                    c = ticks.merge(table, frame)
                    t = totals.setdefault(table.name, SourceReport(source=source, loader=item.loader))
                    t.rows_read += r.rows_read
                    t.loaded, t.replaced = t.loaded + c.loaded, t.replaced + c.replaced
                    t.duplicate += c.duplicate + r.duplicate
                log.debug("chunk written")
            states, events, bar_frame = item
            whole = SimpleNamespace(source=source, loader="binance-ws", events=messages, parameters=parameters or {})
            raw = [(TABLES[n], totals[n]) for n in TABLES if n in totals]
            reports = _write_derived(sink, tx, ticks, whole, raw, rejected, states, events, bar_frame, run_id, at,
                                     started)
        return reports, messages, events
    finally:
        stop.set()
        producer.join()


def load_tick_files(sink: Sink, paths, fmt: str, run_id: str | None = None, bars: bool = True,
                    **options) -> list[SourceReport]:
    """Load tick files one transaction each; returns one summary report per file (the per-table
    reports are in its notes). With MWH_TICK_CHUNK_LINES=N (opt-in), a Binance capture is parsed in
    chunks of N lines, each written while the next is parsed (`_load_chunked`); the same rows land."""
    if fmt not in TICK_FORMATS:
        raise ValueError(f"unknown tick format {fmt!r}; one of {', '.join(TICK_FORMATS)}")
    sink.ensure_tables(TICK_TABLES)
    run_id = run_id or new_run_id()
    opts = {k: v for k, v in options.items() if v is not None}
    lines = binance_ws.chunk_lines() if fmt == "binance-ws" and binance_ws.parse_processes() == 1 else 0
    out = []
    for path in paths:
        started = utcnow()
        source = str(Path(path))
        try:
            with gc_paused():
                done = None
                if lines:
                    try:
                        done = _load_chunked(sink, path, lines, opts, bars, run_id, started)
                    except (_Unchunkable, binance_ws.SymbolUnknown):
                        log.debug("tick load in chunks not possible, whole file", exc_info=True)
                if done is None:
                    done = _load_whole(sink, path, fmt, opts, bars, run_id, started)
                reports, messages, events = done
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
        total.notes = [f"{t}: {n:,} messages" for t, n in sorted(messages.items())] + total.notes
        ev = events[events["event"] != "synced"] if len(events) else events
        for _, e in ev.iterrows():
            total.notes.append(f"book {e['event']} at u={e['update_id']}: {e['detail']}")
        total.seconds = (utcnow() - started).total_seconds()
        out.append(total)
    return out


def _load_whole(sink: Sink, path, fmt: str, opts: dict, bars: bool, run_id: str, started: pd.Timestamp):
    """One file parsed whole, then written in one transaction, the book fold and bars on a second
    thread while the raw tables are written. Returns (reports, messages per table, sequence events)."""
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
    return reports, batch.events, later.result()[1]
