"""`mwh status [--json] [--sla-sessions N]`: is the warehouse healthy? For people and for monitoring.

It prints the target, the database edition and extensions (on TimescaleDB: the license, the version,
the background jobs with their last run and result, and the chunks per hypertable); per source
(symbol, exchange, interval) the last bar, its freshness against the exchange calendar and the
result of the loader run that wrote it; the last loader run; table sizes and row counts; quarantine
counts; and the last `mwh run` (raw.job_runs, "none" when there is none).

Freshness uses the rule of tests/generic/bars_are_fresh.sql, computed from the seeds' calendars
(seeds/trading_sessions.csv, seeds/exchanges.csv; the 24/7 calendar's sessions are the UTC days), so
it needs no dbt build:
  - sessions_behind: sessions of the source's calendar that closed (plus 6 hours for the nightly
    load) after its last bar (daily/weekly bars: sessions after the bar's date; intraday bars:
    sessions that opened after the last bar);
  - a source is *stale* as the dbt test says (daily: more than 1 session behind; intraday: more than
    30 minutes of open market behind), and *beyond its SLA* when sessions_behind > --sla-sessions
    (default 1).

Exit code: 0, or 2 when any source is beyond its SLA (so cron/monitoring can alert on it).
`--json` prints the same report as one JSON object.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import sys
from functools import cache
from pathlib import Path

import pandas as pd

from market_warehouse.config import Target, load_target, project_dir
from market_warehouse.errors import ConnectionProblem
from market_warehouse.loaders.sinks import open_sink

LOAD_GRACE = dt.timedelta(hours=6)  # bars_are_fresh's load_grace_hours
MAX_OPEN_MINUTES_BEHIND = 30  # bars_are_fresh's max_open_minutes_behind
EXIT_STALE = 2
SKIP_SCHEMAS = ("information_schema", "pg_catalog", "pg_toast", "timescaledb_information",
                "timescaledb_experimental", "_timescaledb_catalog", "_timescaledb_internal",
                "_timescaledb_config", "_timescaledb_cache", "_timescaledb_functions", "_timescaledb_debug",
                "toolkit_experimental")


def _utcnow() -> dt.datetime:
    # MWH_STATUS_NOW (ISO time, UTC) pins "now" for reproducible checks of a historical dataset.
    env = os.environ.get("MWH_STATUS_NOW")
    return _naive(env) if env else dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _naive(value) -> dt.datetime:
    """A time as naive UTC (the raw tables hold UTC; some drivers return it tz-aware)."""
    ts = pd.Timestamp(value)
    return (ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts).to_pydatetime()


@cache
def _calendars() -> tuple[dict[str, str], pd.DataFrame]:
    seeds = project_dir() / "seeds"
    with open(seeds / "exchanges.csv", newline="") as fh:
        exchange_calendar = {row["exchange"]: row["calendar"] for row in csv.DictReader(fh)}
    sessions = pd.read_csv(seeds / "trading_sessions.csv", usecols=["calendar", "session_date", "open_utc",
                                                                    "close_utc"])
    sessions["session_date"] = pd.to_datetime(sessions["session_date"])
    for col in ("open_utc", "close_utc"):
        sessions[col] = pd.to_datetime(sessions[col], utc=True).dt.tz_localize(None)
    return exchange_calendar, sessions


def _sessions_of(calendar: str, start: dt.datetime, now: dt.datetime) -> pd.DataFrame:
    _, sessions = _calendars()
    if calendar == "24/7":
        days = pd.date_range(pd.Timestamp(start).normalize(), pd.Timestamp(now).normalize(), freq="D")
        return pd.DataFrame({"session_date": days, "open_utc": days, "close_utc": days + pd.Timedelta(days=1)})
    s = sessions[sessions["calendar"] == calendar]
    return s[(s["close_utc"] > pd.Timestamp(start) - pd.Timedelta(days=1)) & (s["open_utc"] < pd.Timestamp(now))]


def freshness(exchange: str, interval: str, last_ts: dt.datetime, now: dt.datetime) -> dict:
    """How far behind a source's last bar is, by its exchange's calendar (see the module doc)."""
    exchange_calendar, _ = _calendars()
    calendar = exchange_calendar.get(exchange)
    if calendar is None:
        return {"calendar": None, "sessions_behind": None, "open_minutes_behind": None, "stale": None}
    last_ts = _naive(last_ts)
    last = pd.Timestamp(last_ts)
    s = _sessions_of(calendar, last_ts, now)
    closed = s["close_utc"] + LOAD_GRACE <= pd.Timestamp(now)
    if interval in ("1d", "1wk"):
        behind = int(((s["session_date"] > last.normalize()) & closed).sum())
        return {"calendar": calendar, "sessions_behind": behind, "open_minutes_behind": None,
                "stale": behind > 1}
    behind = int(((s["open_utc"] > last) & closed).sum())
    live = s[(s["close_utc"] > last) & (s["open_utc"] < pd.Timestamp(now))]
    minutes = 0.0
    for o, c in zip(live["open_utc"], live["close_utc"], strict=True):
        minutes += max((min(c, pd.Timestamp(now)) - max(o, last)).total_seconds() / 60, 0.0)
    return {"calendar": calendar, "sessions_behind": behind, "open_minutes_behind": round(minutes),
            "stale": minutes > MAX_OPEN_MINUTES_BEHIND}


def _tables(sink, dialect: str) -> list[tuple[str, str]]:
    rows = sink.query("select table_schema, table_name from information_schema.tables "
                      "where table_type = 'BASE TABLE' order by 1, 2")
    return [(s, t) for s, t in rows if s not in SKIP_SCHEMAS and not s.startswith("pg_temp")]


def _iso(v):
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat(sep=" ") if isinstance(v, dt.datetime) else v.isoformat()
    if isinstance(v, dt.timedelta):
        return str(v)
    return v


def collect(target: Target, sla_sessions: int = 1) -> dict:
    """The status report as a dict (what --json prints)."""
    now = _utcnow()
    report: dict = {"target": target.name, "type": target.type, "where": target.describe(),
                    "checked_at": now.isoformat(sep=" ", timespec="seconds"), "sla_sessions": sla_sessions}
    if target.type == "duckdb" and Path(target.path).parent.is_dir() and not Path(target.path).exists():
        # Monitoring a path nothing was loaded into must not pass (nor create an empty warehouse).
        raise ConnectionProblem(f"no warehouse at {target.path}: load data first (`mwh load`, `mwh demo`) "
                                f"or set MWH_DUCKDB_PATH")
    with open_sink(target) as sink:
        tables = _tables(sink, target.type)
        have = set(tables)
        # Edition and extensions.
        if target.type == "duckdb":
            report["edition"] = f"DuckDB {sink.query('select version()')[0][0]}"
            report["extensions"] = [r[0] for r in sink.query(
                "select extension_name from duckdb_extensions() where loaded order by 1")]
            report["timescaledb"] = None
        else:
            report["edition"] = sink.query("select version()")[0][0].split(" on ")[0]
            report["extensions"] = [f"{n} {v}" for n, v in sink.query(
                "select extname, extversion from pg_extension order by 1")]
            report["timescaledb"] = _timescaledb(sink)
        # Sources.
        sources = []
        if ("raw", "bars") in have:
            runs = {}
            if ("raw", "loader_runs") in have:
                for run_id, n, failed, finished in sink.query(
                        "select run_id, count(*), sum(case when status = 'failed' then 1 else 0 end), "
                        "max(finished_at) from raw.loader_runs group by run_id"):
                    runs[run_id] = {"run_id": run_id, "sources": int(n), "failed": int(failed or 0),
                                    "finished_at": _iso(finished)}
            rows = sink.query(
                "select symbol, exchange, interval, count(*), max(ts), max(loaded_at) "
                "from raw.bars group by symbol, exchange, interval order by symbol, exchange, interval")
            last_run = {(s, e, i): r for s, e, i, r in sink.query(
                "select b.symbol, b.exchange, b.interval, max(b.run_id) from raw.bars b "
                "join (select symbol, exchange, interval, max(loaded_at) as at from raw.bars "
                "group by symbol, exchange, interval) m on b.symbol = m.symbol and b.exchange = m.exchange "
                "and b.interval = m.interval and b.loaded_at = m.at group by b.symbol, b.exchange, b.interval")}
            for symbol, exchange, interval, n, last_ts, loaded_at in rows:
                f = freshness(exchange, interval, last_ts, now)
                run = runs.get(last_run.get((symbol, exchange, interval)))
                beyond = f["sessions_behind"] is not None and f["sessions_behind"] > sla_sessions
                sources.append({"symbol": symbol, "exchange": exchange, "interval": interval, "bars": int(n),
                                "last_bar": _iso(_naive(last_ts)), "last_loaded_at": _iso(_naive(loaded_at)), **f,
                                "beyond_sla": beyond,
                                "last_run": None if run is None else
                                {**run, "status": "failed" if run["failed"] else "success"}})
        report["sources"] = sources
        report["stale_beyond_sla"] = [f"{s['symbol']}/{s['exchange']}/{s['interval']}"
                                      for s in sources if s["beyond_sla"]]
        # The last loader run.
        report["last_loader_run"] = None
        if ("raw", "loader_runs") in have:
            last = sink.query(
                "select run_id, min(started_at), max(finished_at), count(*), "
                "sum(case when status = 'failed' then 1 else 0 end), sum(rows_read), sum(rows_loaded), "
                "sum(rows_quarantined) from raw.loader_runs "
                "where run_id = (select run_id from raw.loader_runs order by finished_at desc limit 1) "
                "group by run_id")
            if last:
                r = last[0]
                errors = [e for (e,) in sink.query(
                    "select source || ': ' || coalesce(error, '') from raw.loader_runs "
                    "where run_id = ? and status = 'failed' order by source limit 5", [r[0]])]
                report["last_loader_run"] = {
                    "run_id": r[0], "started_at": _iso(r[1]), "finished_at": _iso(r[2]), "sources": int(r[3]),
                    "failed": int(r[4] or 0), "rows_read": int(r[5] or 0), "rows_loaded": int(r[6] or 0),
                    "rows_quarantined": int(r[7] or 0), "status": "failed" if r[4] else "success",
                    "errors": errors}
        # Quarantine.
        report["quarantine"] = {"total": 0, "by_table": {}, "top_reasons": []}
        if ("raw", "quarantine") in have:
            by_table = sink.query("select target_table, count(*) from raw.quarantine group by 1 order by 1")
            report["quarantine"] = {
                "total": sum(int(n) for _, n in by_table),
                "by_table": {t: int(n) for t, n in by_table},
                "top_reasons": [{"reason": r, "rows": int(n)} for r, n in sink.query(
                    "select reason, count(*) from raw.quarantine group by reason order by 2 desc, 1 limit 5")]}
        # The last `mwh run`.
        report["last_job_run"] = None
        if ("raw", "job_runs") in have:
            cols = ["job_run_id", "started_at", "finished_at", "duration_s", "rows_loaded", "models_built",
                    "tests_warned", "tests_failed", "status", "exit_code", "message"]
            r = sink.query(f"select {', '.join(cols)} from raw.job_runs order by started_at desc limit 1")
            if r:
                report["last_job_run"] = {c: _iso(v) for c, v in zip(cols, r[0], strict=True)}
        # Tables: rows and sizes.
        report["tables"] = _table_sizes(sink, target.type, tables)
        report["database_size_bytes"] = _database_size(sink, target.type)
    report["exit_code"] = EXIT_STALE if report["stale_beyond_sla"] else 0
    return report


def _timescaledb(sink) -> dict | None:
    ext = sink.query("select extversion from pg_extension where extname = 'timescaledb'")
    if not ext:
        return None
    license_ = sink.query("select current_setting('timescaledb.license', true)")[0][0]
    jobs = [{"job_id": j, "application": a, "proc": p, "hypertable": h, "schedule_interval": _iso(si),
             "last_run_started_at": _iso(lr), "last_run_status": ls, "next_start": _iso(ns),
             "total_runs": int(tr or 0), "total_failures": int(tf or 0)}
            for j, a, p, h, si, lr, ls, ns, tr, tf in sink.query(
                "select j.job_id, j.application_name, j.proc_name, "
                "coalesce(j.hypertable_schema || '.' || j.hypertable_name, ''), j.schedule_interval, "
                # A job that has not run yet reports -infinity, which Python's datetime cannot hold.
                "case when isfinite(s.last_run_started_at) then s.last_run_started_at end, s.last_run_status, "
                "case when isfinite(s.next_start) then s.next_start end, s.total_runs, s.total_failures "
                "from timescaledb_information.jobs j "
                "left join timescaledb_information.job_stats s on s.job_id = j.job_id order by j.job_id")]
    chunks = {f"{s}.{t}": int(n) for s, t, n in sink.query(
        "select hypertable_schema, hypertable_name, num_chunks from timescaledb_information.hypertables "
        "order by 1, 2")}
    return {"version": ext[0][0], "license": license_, "jobs": jobs, "chunks": chunks}


def _table_sizes(sink, dialect: str, tables: list[tuple[str, str]]) -> list[dict]:
    out = []
    sizes: dict[tuple[str, str], int] = {}
    if dialect == "postgres":
        hyper = {(s, t) for s, t in sink.query(
            "select hypertable_schema, hypertable_name from timescaledb_information.hypertables")} \
            if sink.query("select 1 from pg_extension where extname = 'timescaledb'") else set()
        for s, t in tables:
            fn = "hypertable_size" if (s, t) in hyper else "pg_total_relation_size"
            sizes[(s, t)] = int(sink.query(f"select {fn}(cast(? as regclass))", [f'"{s}"."{t}"'])[0][0] or 0)
    failures = [(s, t) for s, t in tables if s.endswith("test_failures")]
    for s, t in tables:
        if (s, t) in failures:
            continue
        n = sink.query(f'select count(*) from "{s}"."{t}"')[0][0]
        out.append({"table": f"{s}.{t}", "rows": int(n), "bytes": sizes.get((s, t))})
    if failures:
        out.append({"table": f"{failures[0][0]}.* ({len(failures)} tables of stored test failures)",
                    "rows": sum(int(sink.query(f'select count(*) from "{s}"."{t}"')[0][0]) for s, t in failures),
                    "bytes": sum(sizes.get(k, 0) for k in failures) if sizes else None})
    return out


def _database_size(sink, dialect: str) -> int | None:
    if dialect == "duckdb":
        rows = sink.query("select total_blocks * block_size from pragma_database_size() "
                          "where database_name = current_database()")
        return int(rows[0][0]) if rows else None
    return int(sink.query("select pg_database_size(current_database())")[0][0])


def _size(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return ""


def render(report: dict) -> str:
    lines = [f"target:      {report['where']}", f"edition:     {report['edition']}",
             f"extensions:  {', '.join(report['extensions']) or 'none'}",
             f"checked at:  {report['checked_at']} UTC"]
    if report["database_size_bytes"] is not None:
        lines.append(f"size:        {_size(report['database_size_bytes'])}")
    ts = report.get("timescaledb")
    if ts:
        lines.append(f"timescaledb: {ts['version']}, license {ts['license']}")
        lines.append("  chunks:    " + (", ".join(f"{h} {n}" for h, n in ts["chunks"].items()) or "no hypertables"))
        if ts["jobs"]:
            lines.append("  jobs:")
            for j in ts["jobs"]:
                last = (f"last run {j['last_run_started_at']} {j['last_run_status']}"
                        if j["last_run_started_at"] else "never run")
                lines.append(f"    {j['job_id']:>5} {j['application']:<40} {j['hypertable'] or '-':<28} every "
                             f"{j['schedule_interval']}, {last}, {j['total_failures']} failures")
        else:
            lines.append("  jobs:      none")
    sla = report["sla_sessions"]
    lines.append(f"\nsources (stale: as tests/generic/bars_are_fresh.sql; SLA: at most {sla} session(s) behind)")
    if not report["sources"]:
        lines.append("  no bars loaded")
    for s in report["sources"]:
        behind = ("calendar unknown" if s["sessions_behind"] is None else
                  f"{s['sessions_behind']:,} sessions behind"
                  + (f", {s['open_minutes_behind']:,} open min" if s["open_minutes_behind"] is not None else ""))
        flag = "BEYOND SLA" if s["beyond_sla"] else ("stale" if s["stale"] else "fresh")
        run = s["last_run"]
        run_txt = (f"run {run['run_id']}: " + (f"{run['failed']} of {run['sources']} sources failed"
                                                if run["failed"] else f"{run['sources']} sources ok")
                   if run else "run unknown")
        lines.append(f"  {s['symbol']:<12} {s['exchange']:<8} {s['interval']:<4} last bar {s['last_bar'][:16]:<16} "
                     f"{s['bars']:>9,} bars  {flag:<10} ({behind}; {run_txt})")
    r = report["last_loader_run"]
    lines.append("\nlast loader run: " + ("none" if r is None else
                 f"{r['run_id']} {r['status']} at {r['finished_at']}: {r['sources']} sources "
                 f"({r['failed']} failed), {r['rows_read']:,} rows read, {r['rows_loaded']:,} new, "
                 f"{r['rows_quarantined']:,} quarantined"))
    for e in (r or {}).get("errors", []):
        lines.append(f"  failed: {e[:160]}")
    j = report["last_job_run"]
    lines.append("last mwh run:    " + ("none" if j is None else
                 f"{j['job_run_id']} {j['status']} (exit {j['exit_code']}) at {j['started_at']}, "
                 f"{j['duration_s']:.1f}s, {j['rows_loaded']:,} rows new, {j['models_built']} models built, "
                 f"{j['tests_warned']} warned, {j['tests_failed']} failed"))
    q = report["quarantine"]
    lines.append(f"quarantine:      {q['total']:,} rows"
                 + (" (" + ", ".join(f"{t} {n:,}" for t, n in q["by_table"].items()) + ")" if q["by_table"] else ""))
    for reason in q["top_reasons"]:
        lines.append(f"  {reason['rows']:>8,}  {reason['reason'][:120]}")
    lines.append("\ntables")
    for t in report["tables"]:
        lines.append(f"  {t['table']:<60} {t['rows']:>12,} rows  {_size(t['bytes']):>10}")
    if report["stale_beyond_sla"]:
        lines.append(f"\n{len(report['stale_beyond_sla'])} source(s) beyond the SLA of {sla} session(s): "
                     + ", ".join(report["stale_beyond_sla"][:10])
                     + (" ..." if len(report["stale_beyond_sla"]) > 10 else "") + f" (exit {EXIT_STALE})")
    else:
        lines.append(f"\nevery source within the SLA of {sla} session(s)")
    return "\n".join(lines)


def cmd_status(args) -> int:
    if args.sla_sessions < 0:
        print("mwh: --sla-sessions must be 0 or more", file=sys.stderr)
        return 2
    report = collect(load_target(args.target), args.sla_sessions)
    print(json.dumps(report, indent=2, default=str) if args.json else render(report))
    return report["exit_code"]


def register(sub) -> None:
    st = sub.add_parser(
        "status", help="warehouse health: freshness per source, runs, sizes, quarantine, jobs",
        description=__doc__, formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    st.add_argument("--json", action="store_true", help="print the report as one JSON object")
    st.add_argument("--sla-sessions", type=int, default=1, metavar="N",
                    help="exit 2 when a source is more than N closed sessions behind (default 1)")
    st.set_defaults(func=cmd_status)


__all__ = ["collect", "freshness", "register", "render"]
