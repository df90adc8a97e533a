"""`mwh stream binance --symbols BTCUSDT --streams trade,depth,bookTicker`: live ingestion from Binance's
combined websocket streams (the `websockets` library), written in micro-batches through the same code as
`mwh load ticks` (TickRows -> write_ticks: one transaction per batch, audited, idempotent).

- Bounded buffer with backpressure: the reader puts every message on an asyncio.Queue of `--buffer`
  slots; when the writer falls behind, `put` waits, the reader stops reading the socket and TCP flow
  control slows the sender. Nothing is dropped.
- Reconnect: a dropped connection is retried with backoff; after every (re)connect the book is
  resynced from a fresh REST snapshot (MWH_BINANCE_SNAPSHOT_URL), fetched once the stream is open so
  that the diffs after it are buffered (Binance's procedure).
- A sequence gap (`pu` != previous `u`) is recorded (raw.book_sequence_events) and triggers a fresh
  snapshot; the book emits no state until it is resynced.
- Bars from trades: 1s and 1m bars are written once complete (event-time watermark minus a 2 s
  allowance for late trades), and at shutdown up to the last event.
- Ctrl-C (SIGINT) or SIGTERM: stop reading, write what is buffered, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
import urllib.request
from dataclasses import dataclass, field

import pandas as pd

from market_warehouse.loaders import book as bookmod
from market_warehouse.loaders.sinks import Sink, open_sink
from market_warehouse.loaders.sources.binance_ws import TickRows, tick_batch
from market_warehouse.loaders.ticks import ALL_TICK_TABLES, BAR_WIDTHS, bars_from_trades, write_ticks
from market_warehouse.runs import new_run_id, utcnow

log = logging.getLogger(__name__)

WS_URL = "wss://fstream.binance.com/stream"
SNAPSHOT_URL = "https://fapi.binance.com/fapi/v1/depth?symbol={symbol}&limit=1000"
STREAM_SUFFIX = {"trade": "@trade", "depth": "@depth@0ms", "bookTicker": "@bookTicker"}
LATE_ALLOWANCE = pd.Timedelta(seconds=2)


class StreamSettingsError(ValueError):
    """A bad command-line option or setting (one line)."""


@dataclass
class StreamConfig:
    symbols: list[str]
    streams: list[str]
    ws_url: str = WS_URL
    snapshot_url: str = SNAPSHOT_URL
    batch_seconds: float = 1.0
    batch_messages: int = 20_000
    buffer: int = 100_000
    max_messages: int | None = None
    max_seconds: float | None = None
    max_reconnects: int = 1000
    exchange: str = "BINANCE"

    @classmethod
    def from_env(cls, symbols: list[str], streams: list[str], **kw) -> StreamConfig:
        unknown = [s for s in streams if s not in STREAM_SUFFIX]
        if unknown:
            raise StreamSettingsError(f"--streams: unknown {', '.join(unknown)} (one of {', '.join(STREAM_SUFFIX)})")
        if not symbols:
            raise StreamSettingsError("--symbols: give at least one symbol, e.g. BTCUSDT")
        snapshot_url = os.environ.get("MWH_BINANCE_SNAPSHOT_URL", SNAPSHOT_URL)
        if "{symbol}" not in snapshot_url:
            raise StreamSettingsError(f"MWH_BINANCE_SNAPSHOT_URL={snapshot_url!r}: must contain {{symbol}}")
        return cls(symbols=[s.upper() for s in symbols], streams=streams,
                   ws_url=os.environ.get("MWH_BINANCE_WS_URL", WS_URL), snapshot_url=snapshot_url, **kw)

    def url(self) -> str:
        names = "/".join(f"{s.lower()}{STREAM_SUFFIX[k]}" for s in self.symbols for k in self.streams)
        return f"{self.ws_url}?streams={names}"


@dataclass
class StreamStats:
    messages: int = 0
    batches: int = 0
    connects: int = 0
    snapshots: int = 0
    gaps: int = 0
    max_queue: int = 0
    rows_loaded: int = 0
    quarantined: int = 0
    reports: list = field(default_factory=list)


_SNAPSHOT = object()  # queue marker kinds
_END = object()


class BinanceStream:
    """Reader (socket -> bounded queue) and writer (queue -> micro-batches -> warehouse)."""

    def __init__(self, sink: Sink, config: StreamConfig, run_id: str | None = None):
        self.sink, self.config = sink, config
        self.run_id = run_id or new_run_id()
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=config.buffer)
        self.stop = asyncio.Event()
        self.stats = StreamStats()
        self.books = {s: bookmod.BookBuilder(s, config.exchange) for s in config.symbols}
        self.need_snapshot: asyncio.Queue = asyncio.Queue()
        self.pending_trades = pd.DataFrame()
        self.first_ts: pd.Timestamp | None = None
        self.last_ts: pd.Timestamp | None = None
        self.bars_until: pd.Timestamp | None = None  # bars ending by then are written
        self._markers: list[tuple[int, str]] = []  # (message number, symbol): a snapshot was asked for
        self.seq = 0
        self.started = time.monotonic()

    # ---- reader --------------------------------------------------------------------------------
    async def _fetch_snapshot(self, symbol: str) -> None:
        url = self.config.snapshot_url.format(symbol=symbol)

        def get() -> str:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return resp.read().decode()

        for attempt in range(5):
            try:
                text = await asyncio.to_thread(get)
                break
            except OSError as exc:
                log.warning("snapshot %s failed (%s), retrying", url, exc)
                await asyncio.sleep(min(0.2 * 2 ** attempt, 5))
        else:
            log.error("no snapshot from %s: the book stays invalid until one arrives", url)
            return
        self.stats.snapshots += 1
        await self.queue.put((time.time_ns(), text, symbol))

    async def _snapshots(self) -> None:
        while True:
            symbol = await self.need_snapshot.get()
            await self._fetch_snapshot(symbol)

    async def _read(self) -> None:
        import websockets

        delay = 0.1
        while not self.stop.is_set():
            try:
                # Binance pings the client (answered by the library); the client sends none of its own,
                # so a writer busy for a while cannot make the connection time out on our side.
                async with websockets.connect(self.config.url(), max_queue=64, open_timeout=10,
                                              ping_interval=None) as ws:
                    self.stats.connects += 1
                    delay = 0.1
                    for symbol in self.config.symbols:  # resync every book once the stream is open
                        await self.queue.put((0, None, symbol))  # the book buffers diffs from here
                        self.need_snapshot.put_nowait(symbol)
                    async for message in ws:
                        await self.queue.put((time.time_ns(), message, None))  # waits when full
                        self.stats.messages += 1
                        self.stats.max_queue = max(self.stats.max_queue, self.queue.qsize())
                        if self.config.max_messages and self.stats.messages >= self.config.max_messages:
                            self.stop.set()
                        if self.stop.is_set():
                            return
            except (TimeoutError, OSError) as exc:
                log.warning("connection failed: %s", exc)
            except Exception as exc:  # websockets.ConnectionClosed and protocol errors
                if exc.__class__.__module__.startswith("websockets"):
                    log.warning("connection lost: %s", exc)
                else:
                    raise
            if self.stop.is_set() or self.stats.connects > self.config.max_reconnects:
                return
            log.info("reconnecting in %.1fs", delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)

    # ---- writer --------------------------------------------------------------------------------
    async def _write(self) -> None:
        while True:
            items, done = [], False
            deadline = time.monotonic() + self.config.batch_seconds
            while len(items) < self.config.batch_messages:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self.queue.get(), timeout)
                except TimeoutError:
                    break
                if item is _END:
                    done = True
                    break
                items.append(item)
            if items:
                await asyncio.to_thread(self._write_batch, items, False)
            if done:
                await asyncio.to_thread(self._write_batch, [], True)
                return

    def _write_batch(self, items: list, final: bool) -> None:
        started = utcnow()
        if not items and (not final or not len(self.pending_trades)):
            return
        rows = TickRows(exchange=self.config.exchange,
                        symbol=self.config.symbols[0] if len(self.config.symbols) == 1 else None)
        self._markers = []
        for received, text, snapshot_symbol in items:
            self.seq += 1
            if text is None:  # a resync is coming for this symbol
                self._markers.append((self.seq, snapshot_symbol))
                continue
            try:
                message = json.loads(text)
            except ValueError as exc:
                rows.reject(self.seq, "unknown", text, f"not JSON: {exc}")
                continue
            rows.add(self.seq, received, message, text, snapshot_symbol)
        self.stats.batches += 1
        batch = tick_batch(rows, {"symbols": self.config.symbols, "streams": self.config.streams,
                                  "batch": self.stats.batches})
        batch.source = f"stream:binance:{','.join(self.config.symbols)}#{self.stats.batches}"
        batch.loader = "binance-stream"
        states, events = self._book(batch)
        bars = self._bars(batch, final)
        reports = write_ticks(self.sink, batch, states, events, bars, self.run_id, started)
        self.stats.rows_loaded += sum(r.loaded for r in reports)
        self.stats.quarantined += sum(r.quarantined for r in reports if r.loader != "book-rebuild")
        self.stats.reports.extend(reports)

    def _book(self, batch) -> tuple[pd.DataFrame, pd.DataFrame]:
        du, sn = batch.frames["depth_updates"], batch.frames["depth_snapshots"]
        feed = sorted([(int(r), 1, i) for i, r in enumerate(du["_row"])]
                      + [(int(r), 0, i) for i, r in enumerate(sn["_row"])]
                      + [(r, 2, i) for i, (r, _) in enumerate(self._markers)])
        for _, kind, i in feed:
            if kind == 2:
                symbol = self._markers[i][1]
                self.books.setdefault(symbol, bookmod.BookBuilder(symbol, self.config.exchange)).expect_snapshot()
            elif kind == 0:
                s = sn.iloc[i]
                b = self.books.setdefault(s["symbol"], bookmod.BookBuilder(s["symbol"], s["exchange"]))
                b.snapshot(s["ts"], int(s["last_update_id"]), json.loads(s["bids"]), json.loads(s["asks"]))
            else:
                r = du.iloc[i]
                b = self.books.setdefault(r["symbol"], bookmod.BookBuilder(r["symbol"], r["exchange"]))
                before = b.status
                prev = r["prev_final_update_id"]
                b.diff(bookmod.Diff(r["ts"], int(r["first_update_id"]), int(r["final_update_id"]),
                                    None if pd.isna(prev) else int(prev), json.loads(r["bids"]),
                                    json.loads(r["asks"])))
                if b.status == "invalid" and before != "invalid":
                    self.stats.gaps += 1
                    self._loop.call_soon_threadsafe(self.need_snapshot.put_nowait, r["symbol"])
        parts = [b.take() for b in self.books.values()]
        return (pd.concat([p[0] for p in parts], ignore_index=True),
                pd.concat([p[1] for p in parts], ignore_index=True))

    def _bars(self, batch, final: bool) -> pd.DataFrame | None:
        for name, frame in batch.frames.items():
            # A REST snapshot is stamped with the server's "now", which runs ahead of a lagging
            # stream: event time is the stream messages' only.
            if len(frame) and name != "depth_snapshots":
                lo, hi = frame["ts"].min(), frame["ts"].max()
                self.first_ts = lo if self.first_ts is None else min(self.first_ts, lo)
                self.last_ts = hi if self.last_ts is None else max(self.last_ts, hi)
        trades = batch.frames["trades"]
        if len(trades):
            self.pending_trades = pd.concat([self.pending_trades, trades], ignore_index=True) \
                if len(self.pending_trades) else trades
        if self.first_ts is None or not len(self.pending_trades):
            return None
        watermark = self.last_ts if final else self.last_ts - LATE_ALLOWANCE
        trades = self.pending_trades.drop_duplicates(subset=["symbol", "exchange", "trade_id"])
        parts = []
        for interval, width in BAR_WIDTHS.items():
            # Bars ending by the previous watermark were written complete: a trade later than the
            # allowance does not rewrite them (it is in raw.trades all the same).
            start = self.first_ts if self.bars_until is None else max(self.first_ts, self.bars_until.floor(width))
            parts.append(bars_from_trades(trades[trades["ts"] >= start], start, watermark, intervals=(interval,)))
        self.bars_until = watermark
        self.pending_trades = self.pending_trades[self.pending_trades["ts"] >= watermark.floor("1min")]
        return pd.concat(parts, ignore_index=True)

    # ---- run -----------------------------------------------------------------------------------
    async def run(self) -> StreamStats:
        self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
                self._loop.add_signal_handler(sig, self.stop.set)
        writer = asyncio.create_task(self._write())
        snapshots = asyncio.create_task(self._snapshots())
        reader = asyncio.create_task(self._read())
        stopper = asyncio.create_task(self._watch_limits())
        try:
            await asyncio.wait({reader, asyncio.create_task(self.stop.wait())},
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    self._loop.remove_signal_handler(sig)
            self.stop.set()
            for t in (reader, snapshots, stopper):
                t.cancel()
            await asyncio.gather(reader, snapshots, stopper, return_exceptions=True)
            await self.queue.put(_END)  # the writer drains what is queued, then writes the last bars
            await writer
        return self.stats

    async def _watch_limits(self) -> None:
        if not self.config.max_seconds:
            return
        await asyncio.sleep(self.config.max_seconds)
        self.stop.set()


def run_stream(sink: Sink, config: StreamConfig, run_id: str | None = None) -> StreamStats:
    return asyncio.run(BinanceStream(sink, config, run_id).run())


def run_stream_command(args) -> int:
    try:
        config = StreamConfig.from_env(
            [s.strip() for s in args.symbols.split(",") if s.strip()],
            [s.strip() for s in args.streams.split(",") if s.strip()],
            batch_seconds=args.batch_seconds, batch_messages=args.batch_messages, buffer=args.buffer,
            max_messages=args.max_messages, max_seconds=args.max_seconds)
    except StreamSettingsError as exc:
        print(f"mwh: {exc}", file=sys.stderr)
        return 2
    with open_sink(args.target, tables=ALL_TICK_TABLES) as sink:
        print(f"streaming {config.url()} (Ctrl-C writes what is buffered and stops)", flush=True)
        stats = run_stream(sink, config)
    print(f"stopped: {stats.messages:,} messages in {stats.batches:,} batches, {stats.rows_loaded:,} rows new, "
          f"{stats.quarantined:,} quarantined, {stats.connects} connections, {stats.snapshots} snapshots, "
          f"{stats.gaps} sequence gaps, buffer peak {stats.max_queue:,}/{config.buffer:,}")
    return 0
