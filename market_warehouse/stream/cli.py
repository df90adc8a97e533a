"""`mwh load ticks FILE... --format binance-ws|trades-csv` and `mwh stream binance ...`."""

from __future__ import annotations

import glob
import sys
import time


def cmd_load_ticks(args) -> int:
    from market_warehouse.cli import _print_reports
    from market_warehouse.loaders.sinks import open_sink
    from market_warehouse.loaders.sources.trades_csv import parse_trade_mapping
    from market_warehouse.loaders.ticks import ALL_TICK_TABLES, load_tick_files

    options = {"symbol": args.symbol, "exchange": args.exchange}
    if args.format == "trades-csv":
        try:
            options["mapping"] = parse_trade_mapping(args.map) or None
        except ValueError as exc:
            print(f"mwh: {exc}", file=sys.stderr)
            return 2
        options["time_unit"] = args.time_unit
    elif args.map or args.time_unit:
        print("mwh: --map and --time-unit go with --format trades-csv", file=sys.stderr)
        return 2
    paths: list[str] = []
    for p in args.paths:
        paths.extend(sorted(glob.glob(p)) or [p])
    with open_sink(args.target, tables=ALL_TICK_TABLES) as sink:
        t0 = time.monotonic()
        reports = load_tick_files(sink, paths, args.format, bars=not args.no_bars, **options)
        return _print_reports(reports, time.monotonic() - t0)


def cmd_stream_binance(args) -> int:
    from market_warehouse.stream.binance import run_stream_command

    return run_stream_command(args)


def register_load(lsub) -> None:
    """`mwh load ticks` (under `mwh load`)."""
    t = lsub.add_parser(
        "ticks", help="trades, depth diffs, book tickers and snapshots (Binance capture or trades CSV)",
        epilog="Also rebuilds the order book (raw.book_states, raw.book_sequence_events) and writes 1s and 1m "
               "bars from the trades into raw.bars (source FILE#bars, loader bars-from-trades). One transaction "
               "per file; loading a file again adds nothing.")
    t.add_argument("paths", nargs="+", help="files or glob patterns (.gz read as gzip)")
    t.add_argument("--format", required=True, choices=["binance-ws", "trades-csv"], help="the files' layout")
    t.add_argument("--symbol", help="symbol, where the file does not say")
    t.add_argument("--exchange", help="exchange code (default BINANCE)")
    t.add_argument("--map", help="trades-csv: FIELD=COLUMN pairs, e.g. ts=time,price=px,quantity=size,side=side")
    t.add_argument("--time-unit", choices=["s", "ms", "us", "ns"], help="trades-csv: epoch time unit")
    t.add_argument("--no-bars", action="store_true", help="do not write bars from the trades")
    t.set_defaults(func=cmd_load_ticks)


def register_stream(sub) -> None:
    """`mwh stream binance`."""
    s = sub.add_parser("stream", help="live ingestion from exchange websockets")
    ssub = s.add_subparsers(dest="stream_source", required=True)
    b = ssub.add_parser(
        "binance", help="Binance USD-M combined streams, written in micro-batches",
        epilog="Settings (environment): MWH_BINANCE_WS_URL (default wss://fstream.binance.com/stream), "
               "MWH_BINANCE_SNAPSHOT_URL (default https://fapi.binance.com/fapi/v1/depth?symbol={symbol}&limit=1000). "
               "Ctrl-C writes what is buffered and stops.")
    b.add_argument("--symbols", required=True, help="comma-separated, e.g. BTCUSDT")
    b.add_argument("--streams", default="trade,depth,bookTicker", help="trade,depth,bookTicker (default: all)")
    b.add_argument("--batch-seconds", type=float, default=1.0, help="micro-batch length (default 1 s)")
    b.add_argument("--batch-messages", type=int, default=20_000, help="flush at this many messages (default 20000)")
    b.add_argument("--buffer", type=int, default=100_000,
                   help="bounded buffer: at most this many messages wait for the writer; the reader then "
                        "stops reading (backpressure) (default 100000)")
    b.add_argument("--max-messages", type=int, help="stop after this many messages (tests, demos)")
    b.add_argument("--max-seconds", type=float, help="stop after this many seconds")
    b.set_defaults(func=cmd_stream_binance)
