"""`mwh`: load market data, build the dbt project, print what is in the warehouse.

    mwh load csv PATH... --format alphavantage|yfinance|binance-klines|generic [--symbol S ...]
    mwh load yfinance --symbols AAPL,MSFT --start 2004-01-01 --interval 1d
    mwh build [dbt args...]                mwh docs [--serve]      mwh status [--json]
    mwh summary                            mwh demo
    mwh runs list [--limit N]              mwh runs undo RUN_ID
    mwh schema [--write]                   (the dbt sources' YAML, from the Python table declarations)
"""

from __future__ import annotations

import argparse
import glob
import logging
import sys
import time
from collections import Counter
from pathlib import Path

# Only what every command needs is imported here: the loaders, the ML records and the docs site import pandas
# and pyarrow (about a second), which `mwh build` never uses. Each command imports its own modules, and
# `build_parser(command)` registers only that command's parser when it is one of LIGHT_COMMANDS.
from market_warehouse import errors
from market_warehouse.config import ConfigError, load_target, project_dir

SAMPLE_DIR = Path("data") / "sample"


def _print_reports(reports: list, wall_seconds: float | None = None) -> int:
    from market_warehouse.summary import load_times_note

    failed = 0
    for r in reports:
        print(r.line())
        for ex in r.examples:
            print(f"        quarantined {ex}")
        for note in r.notes:
            print(f"        {note}")
        failed += r.status != "success"
    note = load_times_note(reports, wall_seconds)  # before the totals, which stay the last line
    if note:
        print(note)
    total = sum(r.rows_read for r in reports)
    print(f"{len(reports) - failed}/{len(reports)} sources loaded, {total:,} rows read, "
          f"{sum(r.loaded for r in reports):,} new, {sum(r.replaced for r in reports):,} replaced, "
          f"{sum(r.quarantined for r in reports):,} quarantined")
    return 1 if failed else 0


def cmd_load_csv(args) -> int:
    from market_warehouse.loaders.pipeline import load_files
    from market_warehouse.loaders.sinks import open_sink
    from market_warehouse.loaders.sources.generic import parse_mapping

    options = {"symbol": args.symbol, "exchange": args.exchange, "interval": args.interval}
    if args.format == "generic":
        try:
            options["mapping"] = parse_mapping(args.map)
        except ValueError as exc:
            print(f"mwh: {exc}", file=sys.stderr)
            return 2
        options["time_unit"] = args.time_unit
    elif args.map or args.time_unit:
        raise SystemExit("--map and --time-unit go with --format generic")
    paths: list[str] = []
    for p in args.paths:
        paths.extend(sorted(glob.glob(p)) or [p])
    with open_sink(args.target) as sink:
        t0 = time.monotonic()
        reports = load_files(sink, paths, args.format, **options)
        return _print_reports(reports, time.monotonic() - t0)


def cmd_load_yfinance(args) -> int:
    from market_warehouse.loaders.sinks import open_sink
    from market_warehouse.loaders.yfinance_load import load_yfinance
    from market_warehouse.runs import new_run_id

    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    with open_sink(args.target) as sink:
        reports = load_yfinance(
            sink, symbols, interval=args.interval, start=args.start, end=args.end,
            incremental=not args.full, run_id=new_run_id(),
        )
        return _print_reports(reports)


def _refresh_statistics(target) -> None:
    from market_warehouse.loaders.schema import MARKET_TABLES
    from market_warehouse.loaders.sinks import open_sink

    with open_sink(target) as sink:
        sink.refresh_statistics(MARKET_TABLES)


def cmd_build(args, extra: list[str]) -> int:
    # Statistics refreshed, seeds reloaded only when needed, selected builds get their missing parents: see
    # market_warehouse/dbt.py. Then the data-quality report (market_warehouse/build_report.py).
    from market_warehouse.build_report import build_and_report

    return build_and_report(args.target, extra)


def cmd_calendars(args) -> int:
    from market_warehouse.calendars import SEED_PATH, write_sessions_seed

    calendars = tuple(c.strip() for c in args.calendars.split(",") if c.strip())
    n = write_sessions_seed(calendars=calendars, start=args.start, end=args.end)
    print(f"{n:,} sessions of {', '.join(calendars)} written to {SEED_PATH}; run `mwh build` to load them")
    return 0


def cmd_runs_list(args) -> int:
    from market_warehouse.loaders.sinks import open_sink
    from market_warehouse.runs import list_runs

    with open_sink(args.target) as sink:
        runs = list_runs(sink, args.limit)
    for run in runs:
        print(run.line())
    if not runs:
        print("no loader runs yet")
    return 0


def cmd_runs_undo(args) -> int:
    from market_warehouse.loaders.schema import TICK_TABLES  # `mwh load ticks` / `mwh stream`
    from market_warehouse.loaders.sinks import open_sink
    from market_warehouse.ml.db import ALL_TABLES
    from market_warehouse.runs import RunError, undo_run

    # Every table a run may have written, market and ML (those that exist in this warehouse).
    with open_sink(args.target) as sink:
        try:
            report = undo_run(sink, args.run_id, (*ALL_TABLES, *TICK_TABLES))
        except RunError as exc:
            print(f"mwh: {exc}", file=sys.stderr)
            return 1
    print("\n".join(report.lines()))
    print("the models built from these tables still hold the undone rows: run `mwh build --full-refresh`")
    return 0


def cmd_schema(args) -> int:
    from market_warehouse import source_yaml

    stale = source_yaml.check(write=args.write)
    for path in stale:
        print(f"{'written' if args.write else 'out of date'}: {path}")
    if not stale:
        print("the sources' YAML matches market_warehouse/loaders/schema.py and market_warehouse/ml/schema.py")
    return 1 if stale and not args.write else 0


def cmd_summary(args) -> int:
    from market_warehouse.loaders.sinks import open_sink
    from market_warehouse.summary import warehouse_summary

    with open_sink(args.target) as sink:
        print(warehouse_summary(sink))
    return 0


def cmd_demo(args) -> int:
    """Load the bundled real sample, build everything, print a summary."""
    from market_warehouse.build_report import print_build_report
    from market_warehouse.dbt import run_dbt
    from market_warehouse.loaders.pipeline import load_files
    from market_warehouse.loaders.sinks import open_sink
    from market_warehouse.runs import new_run_id
    from market_warehouse.summary import warehouse_summary

    t0 = time.monotonic()
    sample = project_dir() / SAMPLE_DIR
    target = load_target(args.target)
    print(f"target: {target.describe()}")
    plan = [
        ("alphavantage", sorted(sample.glob("alphavantage/*"))),
        ("binance-klines", sorted(sample.glob("binance_klines/*"))),
        # A vendor file with a repaired twin (`*-fixed.csv`) is shown only in its repaired form.
        ("yfinance", sorted(p for p in sample.glob("yfinance/*.csv")
                            if not p.with_name(p.stem + "-fixed.csv").exists())),
    ]
    status = 0
    run_id = new_run_id()
    with open_sink(target) as sink:
        for fmt, paths in plan:
            print(f"\n== load {fmt}: {len(paths)} files")
            t_files = time.monotonic()
            reports = load_files(sink, paths, fmt, run_id=run_id)
            status |= _print_reports(reports, time.monotonic() - t_files)
    t_load = time.monotonic() - t0
    print("\n== dbt build")
    _refresh_statistics(target)
    res = run_dbt(["build"], target, quiet=not args.dbt_output)
    counts = Counter(str(r.status) for r in getattr(res.result, "results", None) or [])
    print("dbt build " + ("ok" if res.success else "FAILED (see logs/dbt.log)") + ": "
          + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    print_build_report(res, target)
    if not res.success:
        status = 2
    else:  # the demo's ML sample: a baseline trained, registered, scored, then the ML marts built
        from market_warehouse.ml import demo_sample  # deferred: only the demo needs it
        status = 2 if demo_sample.generate_and_build(target) else status
    t_build = time.monotonic() - t0 - t_load
    print("\n== summary")
    with open_sink(target) as sink:
        print(warehouse_summary(sink))
    print(f"time taken:         {time.monotonic() - t0:.1f}s (load {t_load:.1f}s, dbt build {t_build:.1f}s)")
    if status == 1:
        print("note: some sample sources failed on purpose (e.g. DA-BF.B-...csv is a vendor error "
              "body); see the FAILED lines above and raw.loader_runs")
        status = 0 if res.success else 2
    return status


# Commands whose parser needs no other module: `mwh build` starts without importing pandas, the loaders or the
# ML records (a daily incremental build is a few tens of seconds; these imports were a second of it).
LIGHT_COMMANDS = ("build",)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """`mwh`'s parser. With `command` in LIGHT_COMMANDS, only that command's parser (the others import
    modules it does not need); otherwise every command's."""
    parser = argparse.ArgumentParser(prog="mwh", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", help="profile target (default: MWH_TARGET or duckdb)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="dbt build (extra arguments pass through to dbt)",
                       usage="mwh build [--target T] [dbt build arguments...]",
                       description="Runs `dbt build` on the profile's target. Every argument other than "
                                   "--target passes through to `dbt build` (e.g. --select staging, --full-refresh, "
                                   "--threads 4); seeds are reloaded only when their files changed.")
    b.set_defaults(func=cmd_build, passthrough=True)
    if command in LIGHT_COMMANDS:
        return parser
    from market_warehouse import docs_site, retention, status
    from market_warehouse.calendars import DEFAULT_CALENDARS, DEFAULT_END, DEFAULT_START
    from market_warehouse.loaders.sources import FORMATS
    from market_warehouse.ml import cli as ml_cli

    load = sub.add_parser("load", help="land market data in the raw tables")
    lsub = load.add_subparsers(dest="source", required=True)
    csv = lsub.add_parser(
        "csv", help="vendor files (CSV, CSV.gz, Parquet)",
        epilog="Files of one command that share bars (same symbol, exchange, interval and time): the later "
               "file's values are kept, except that a repaired file (X-fixed.csv, X_repaired.csv) always "
               "wins over its original X.csv; each such collision is printed and recorded in the file's "
               "audit row (parameters.collides_with). Intervals, exchanges and symbols the dbt models "
               "would refuse are refused here: a value every row shares fails the file with one line, a "
               "value in some rows sends those rows to raw.quarantine.")
    csv.add_argument("paths", nargs="+", help="files or glob patterns")
    csv.add_argument("--format", required=True, choices=sorted(FORMATS), help="the files' layout")
    csv.add_argument("--symbol", help="symbol, where the file does not say")
    csv.add_argument("--exchange", help="exchange code (default: US for equities, BINANCE for klines)")
    csv.add_argument("--interval", help="bar interval (1m, 5m, 15m, 1h, 1d, 1wk), where the file does not say")
    csv.add_argument("--map", help="generic: FIELD=COLUMN pairs, e.g. ts=Date,open=o,volume=vol")
    csv.add_argument("--time-unit", choices=["s", "ms", "us", "ns"], help="generic: epoch time unit")
    csv.set_defaults(func=cmd_load_csv)

    yf = lsub.add_parser("yfinance", help="fetch from Yahoo Finance (the only network use)")
    yf.add_argument("--symbols", required=True, help="comma-separated, e.g. AAPL,MSFT")
    yf.add_argument("--start", help="first date (default: from the last loaded bar, or the "
                                    "interval's history limit)")
    yf.add_argument("--end", help="last date (default: now)")
    yf.add_argument("--interval", default="1d", choices=["1m", "5m", "15m", "1h", "1d", "1wk"],
                    help="bar interval (default 1d)")
    yf.add_argument("--full", action="store_true", help="ignore what is loaded; fetch the whole range")
    yf.set_defaults(func=cmd_load_yfinance)
    from market_warehouse.stream import cli as stream_cli  # `mwh load ticks`, `mwh stream binance`
    stream_cli.register_load(lsub)
    stream_cli.register_stream(sub)
    docs_site.register(sub)  # `mwh docs [--serve]`
    status.register(sub)  # `mwh status [--json]`
    cal = sub.add_parser("calendars", help="regenerate the trading-sessions seed from exchange_calendars")
    cal.add_argument("--calendars", default=",".join(DEFAULT_CALENDARS), help="MICs, comma-separated")
    cal.add_argument("--start", default=DEFAULT_START, help=f"first session (default {DEFAULT_START})")
    cal.add_argument("--end", default=DEFAULT_END, help=f"last session (default {DEFAULT_END})")
    cal.set_defaults(func=cmd_calendars)
    s = sub.add_parser("summary", help="what the warehouse holds")
    s.set_defaults(func=cmd_summary)
    demo = sub.add_parser("demo", help="load the bundled sample, build, summarize")
    demo.add_argument("--dbt-output", action="store_true", help="show dbt's full output")
    demo.set_defaults(func=cmd_demo)

    runs = sub.add_parser("runs", help="loader runs: list them, undo one")
    rsub = runs.add_subparsers(dest="runs_command", required=True)
    rl = rsub.add_parser("list", help="recent runs, newest first (from raw.loader_runs)")
    rl.add_argument("--limit", type=int, default=20, help="how many runs (default 20)")
    rl.set_defaults(func=cmd_runs_list)
    ru = rsub.add_parser("undo", help="remove what a run wrote and restore the rows it replaced")
    ru.add_argument("run_id", help="the run's id, as `mwh runs list` prints it")
    ru.set_defaults(func=cmd_runs_undo)

    sch = sub.add_parser("schema", help="check (or --write) the dbt sources' YAML against the Python tables")
    sch.add_argument("--write", action="store_true", help="rewrite models/staging/*/_*__sources.yml")
    sch.set_defaults(func=cmd_schema)
    ml_cli.register(sub)  # `mwh ml ...`, `mwh retrain ...`
    retention.register(sub)  # `mwh retention`
    from market_warehouse import jobs  # `mwh run` (the scheduled job)
    jobs.register(sub)
    from market_warehouse import roles  # `mwh roles` (least-privilege roles, PostgreSQL/TimescaleDB)
    roles.register(sub)
    return parser


def _command(argv: list[str]) -> str | None:
    """The subcommand named in `argv` (its first word after the global options), if any."""
    words = iter(argv)
    for word in words:
        if word == "--target":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def main(argv: list[str] | None = None) -> int:
    command_line = argv is None
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_command(argv))
    args, extra = parser.parse_known_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO if args.verbose == 1 else logging.DEBUG,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        if getattr(args, "passthrough", False):
            # `mwh build --target X ...`: the target is ours to resolve (dbt gets it from us).
            for flag in ("--target", "-t"):
                if flag in extra[:-1]:
                    i = extra.index(flag)
                    args.target = extra[i + 1]
                    del extra[i:i + 2]
            code = args.func(args, extra)
            if command_line and args.func is cmd_build:  # `mwh build` ends here (dbt.exit_process)
                from market_warehouse.dbt import exit_process

                exit_process(code)
            return code
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        return args.func(args)
    except ConfigError as exc:
        print(f"mwh: configuration: {exc}", file=sys.stderr)
        return 2
    except errors.ConnectionProblem as exc:
        print(f"mwh: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        # A warehouse that cannot be reached is one line naming the setting (market_warehouse/errors.py).
        msg = errors.describe(exc, _target_or_none(args.target))
        if msg is None:
            raise
        print(f"mwh: {msg}", file=sys.stderr)
        return 2


def _target_or_none(name):
    try:
        return load_target(name)
    except ConfigError:
        return None


if __name__ == "__main__":
    sys.exit(main())
