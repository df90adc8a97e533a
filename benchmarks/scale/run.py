"""`make bench-scale`: the warehouse at the seeds' scale, every figure beside its same-run baseline.

Per target (duckdb, timescale): generate the data if needed (benchmarks/scale/generate.py), then
1. load: the baseline first (DuckDB `read_csv` of the same files / PostgreSQL COPY of the same rows,
   into the same empty raw.bars), then `mwh load csv` into a fresh warehouse;
2. the full build, models then tests (`mwh build`), then one new session loaded and the incremental
   build, models then tests;
3. peak memory: each `mwh` process's peak RSS (wait4, in a small launcher: run_measured) and, on
   PostgreSQL, the peak summed PSS of every server process and of this database's backends (sampled
   from /proc every 1 s, about 70 ms of CPU a sample; the server is shared with other work);
4. size on disk, and the lowest free space during the run (sampled every 1 s on the filesystems of the
   work folder and of the provisioned server's data directory);
5. query latencies p50/p95 over `--runs` warm runs, asked as an analyst's Python client asks them (the
   read API, market_warehouse/read.py: a pandas DataFrame, the rows' conversion included), beside the
   same question asked naively of raw (or, with no raw equivalent, of the underlying mart).

Other jobs may share the machine: compare each figure with its baseline from the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from benchmarks.scale import bulk, generate
from market_warehouse.config import Target
from market_warehouse.loaders.schema import BARS, MARKET_TABLES
from market_warehouse.loaders.sinks import DuckDBSink, PostgresSink
from market_warehouse.read import Reader

REPO = Path(__file__).resolve().parents[2]
MWH = str(Path(sys.executable).with_name("mwh"))
LAST_DAY = "2021-04-21"  # the daily set's newest session (new_session/): the training extract ends there


def log(line: str = "") -> None:
    print(line, flush=True)


def gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.2f} GB"


# ---- processes and memory -------------------------------------------------------------------------

class Sampler:
    """A daemon thread that calls `record()` every `interval` s while the `with` block runs."""

    def __init__(self, interval: float):
        self.interval, self._stop = interval, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def record(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            self.record()
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class ServerSampler(Sampler):
    """Peak memory of the PostgreSQL server, sampled from /proc every `interval` s: the summed PSS (RSS when
    PSS is unreadable) of every `postgres` process (the server is shared with other work), and of this
    database's own backends (process title `postgres: USER DB ...`, with their parallel workers), whose
    largest single RSS is kept too (shared buffers it touched included)."""

    def __init__(self, db: str | None = None, interval: float = 1.0):
        super().__init__(interval)
        self.db, self.peak, self.db_peak, self.db_max_rss = db, 0, 0, 0

    def sample(self) -> tuple[int, int, int]:
        """(all postgres processes' summed PSS, this database's backends' summed PSS, their largest RSS)."""
        procs = []
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                if (d / "comm").read_text().strip() != "postgres":
                    continue
                title = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                text = (d / "smaps_rollup").read_text()
            except OSError:
                continue
            rss = re.search(r"^Rss:\s+(\d+) kB", text, re.M)
            pss = re.search(r"^Pss:\s+(\d+) kB", text, re.M) or rss
            procs.append((d.name, title, int(pss[1]) * 1024 if pss else 0, int(rss[1]) * 1024 if rss else 0))
        own = {pid for pid, title, _, _ in procs if self.db and f" {self.db} " in title}
        mine = [(p, r) for pid, title, p, r in procs
                if pid in own or any(title.startswith(f"postgres: parallel worker for PID {o}") for o in own)]
        return (sum(p for _, _, p, _ in procs), sum(p for p, _ in mine), max((r for _, r in mine), default=0))

    def record(self) -> None:
        total, db_sum, db_max = self.sample()
        self.peak, self.db_peak = max(self.peak, total), max(self.db_peak, db_sum)
        self.db_max_rss = max(self.db_max_rss, db_max)


class DiskSampler(Sampler):
    """Free space, sampled every `interval` s, on the filesystems of `paths` (the bench's work folder and,
    for the server this project provisions, its data directory): its lowest, and the largest fall from an
    earlier high (`needed`: the room the run took at its fullest, sorts, temporary files, WAL and the
    tables a full refresh swaps in included; a run that first removes the previous run's warehouse frees
    space before it takes it)."""

    def __init__(self, paths: list[Path], interval: float = 1.0):
        super().__init__(interval)
        devices: dict[int, Path] = {}
        for path in paths:
            if path.exists():
                devices.setdefault(path.stat().st_dev, path)
        self.paths = list(devices.values())
        self.start = {p: shutil.disk_usage(p).free for p in self.paths}
        self.lowest, self.highest, self.needed = dict(self.start), dict(self.start), dict.fromkeys(self.paths, 0)

    def record(self) -> None:
        for p in self.paths:
            free = shutil.disk_usage(p).free
            self.lowest[p], self.highest[p] = min(self.lowest[p], free), max(self.highest[p], free)
            self.needed[p] = max(self.needed[p], self.highest[p] - free)

    def line(self) -> str:
        return "  disk       " + "; ".join(
            f"free space on {p}'s filesystem {gb(self.start[p])} at the start, {gb(self.lowest[p])} at the lowest "
            f"(the run took up to {gb(self.needed[p])})" for p in self.paths)


def provisioned_data_dir() -> Path:
    """The data directory of the server scripts/timescaledb.sh runs (its chroot, as that script finds it)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    root = Path(os.environ.get("MWH_TSDB_ROOT") or cache / "market-warehouse" / "trixie")
    return root / "srv" / "mwh" / "pgdata"


def disk_paths(work: Path, pg: dict | None) -> list[Path]:
    """Where a target's run writes: its work folder, and the provisioned server's data directory (a server
    of your own, MWH_TEST_PG_HOST, is not on this machine's disks as far as the bench knows)."""
    return [work] + ([provisioned_data_dir()] if pg and not os.environ.get("MWH_TEST_PG_HOST") else [])


# Starts a command, waits for it, and writes its exit code, peak RSS and CPU as JSON to argv[1]. The bench
# runs each `mwh` through it: Linux carries the starting process's high-water RSS into a child's ru_maxrss
# across fork/vfork and exec, so a command started by the bench itself (which holds the DuckDB baseline's
# and the latency queries' memory) reported at least the bench's peak (`/bin/true` started by a process
# holding 1.5 GB: 1,511 MB). Started from this small interpreter it reports its own, plus about 10 MB.
_LAUNCHER = """import json, os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as fh:
    json.dump({"rc": os.waitstatus_to_exitcode(status), "rss": usage.ru_maxrss * 1024,
               "cpu": usage.ru_utime + usage.ru_stime}, fh)
"""


def run_measured(cmd: list[str], **popen) -> dict:
    """Run `cmd` to its end: {"rc", "rss" (its peak RSS, bytes), "cpu" (s)}, measured by _LAUNCHER."""
    with tempfile.NamedTemporaryFile("r", suffix=".json") as result:
        subprocess.run([sys.executable, "-c", _LAUNCHER, result.name, *cmd], **popen)
        return json.loads(Path(result.name).read_text())


class StepFailed(Exception):
    """An `mwh` step of the bench exited non-zero: its figures, and every later one, would measure a failure."""


def run_mwh(args: list[str], env: dict, logfile: Path, db: str | None) -> dict:
    """Run `mwh ARGS`; its wall time, exit code, peak RSS (run_measured) and, with `db` (a PostgreSQL database
    name), the server's peak memory: all processes, and that database's backends (ServerSampler). A non-zero
    exit raises StepFailed, naming the command, the log and the log's last line (a data warning exits 0)."""
    command = f"mwh {' '.join(args[:6])}{' ...' if len(args) > 6 else ''}"
    with logfile.open("a") as out:
        out.write(f"\n$ {command}\n")
        out.flush()
        with ServerSampler(db) if db else _Null() as sampler:
            t = time.perf_counter()
            measured = run_measured([MWH, *args], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
            seconds = time.perf_counter() - t
    if measured["rc"] != 0:
        lines = [line.strip() for line in logfile.read_text(errors="replace").splitlines() if line.strip()]
        raise StepFailed(f"`{command}` exited {measured['rc']} "
                         f"(log {logfile}; its last line: {lines[-1][:300] if lines else 'none'})")
    return {"seconds": seconds, **measured,
            "server": getattr(sampler, "peak", 0),
            "db_pss": getattr(sampler, "db_peak", 0), "db_max_rss": getattr(sampler, "db_max_rss", 0)}


def server_memory(r: dict) -> str:
    """One step's server memory, from run_mwh's ServerSampler figures."""
    return (f"server: this database's backends {gb(r['db_pss'])} summed PSS, largest {gb(r['db_max_rss'])} RSS; "
            f"all postgres processes {gb(r['server'])} summed PSS (shared)")


def slowest_nodes(env: dict, n: int = 10) -> str:
    """The last dbt invocation's slowest nodes with their seconds and share of the summed node time, from
    run_results.json in DBT_TARGET_PATH (where the time goes)."""
    path = Path(env["DBT_TARGET_PATH"]) / "run_results.json"
    try:
        results = json.loads(path.read_text())["results"]
    except (OSError, ValueError, KeyError):
        return f"(no {path})"
    total = sum(r.get("execution_time") or 0 for r in results) or 1
    top = sorted(results, key=lambda r: r.get("execution_time") or 0, reverse=True)[:n]
    names = ", ".join(f"{'.'.join(r['unique_id'].split('.')[2:])} {r['execution_time']:.1f} s ({r['execution_time'] / total:.0%})"
                      + ("" if r.get("status") in ("success", "pass") else f" [{r.get('status')}]") for r in top)
    return f"{len(results)} nodes, {total:,.1f} s summed; slowest: {names}"


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


# ---- baselines ------------------------------------------------------------------------------------

def _read_csv_select(folder: Path) -> str:
    cols = ("{'timestamp': 'DATE', 'open': 'DOUBLE', 'high': 'DOUBLE', 'low': 'DOUBLE', 'close': 'DOUBLE', "
            "'adjusted_close': 'DOUBLE', 'volume': 'DOUBLE', 'dividend_amount': 'DOUBLE', "
            "'split_coefficient': 'DOUBLE'}")
    return f"""
        select cast(timestamp as timestamp) as ts, regexp_extract(filename, 'DA-(.+)-T-[0-9]{{4}}', 1) as symbol,
               'US' as exchange, '1d' as interval, open, high, low, close, volume, adjusted_close as adj_close,
               null::double as vwap, null::bigint as trade_count, null::double as quote_volume,
               null::double as taker_buy_volume, null::double as taker_buy_quote_volume,
               filename as source, 'baseline' as run_id, cast(now() as timestamp) as loaded_at
        from read_csv('{folder}/DA-*.csv', filename = true, header = true, columns = {cols})"""


def duckdb_baseline(folder: Path, path: Path) -> tuple[float, int]:
    """DuckDB's read_csv of the same files into the same (empty) raw.bars."""
    with DuckDBSink(path) as sink:
        sink.ensure_tables(MARKET_TABLES)
    con = duckdb.connect(str(path), config={"threads": "2"})
    cols = ", ".join(BARS.column_names)
    t = time.perf_counter()
    con.execute(f"insert into raw.bars ({cols}) select {cols} from ({_read_csv_select(folder)})")
    seconds = time.perf_counter() - t
    n = con.execute("select count(*) from raw.bars").fetchone()[0]
    con.close()
    return seconds, n


def pg_baseline(folder: Path, conninfo: str, work: Path) -> tuple[float, int]:
    """COPY (CSV, client side, like psql's \\copy) of the same rows, in the table's own layout, into
    the same (empty) hypertable."""
    csv_path = work / "baseline_bars.csv"
    if not csv_path.exists():
        con = duckdb.connect()
        cols = ", ".join(BARS.column_names)
        con.execute(f"copy (select {cols} from ({_read_csv_select(folder)})) to '{csv_path}' (header false)")
        con.close()
    with PostgresSink(conninfo) as sink:
        sink.ensure_tables(MARKET_TABLES)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("set timezone = 'UTC'")
        t = time.perf_counter()
        bulk.copy_csv_file(conn, BARS, csv_path)
        seconds = time.perf_counter() - t
        n = conn.execute("select count(*) from raw.bars").fetchone()[0]
    return seconds, n


def bulk_land_warehouse(target: str, folder: Path, work: Path, admin: str | None, db: str | None
                        ) -> tuple[str, dict, Path | None]:
    """--bulk-load: land `folder`'s files through read_csv / COPY into a fresh warehouse (benchmarks/scale/
    bulk.py). Returns the report line, the env naming the warehouse, and the DuckDB path."""
    if db is None:
        wh = work / "warehouse.duckdb"
        for p in (wh, Path(f"{wh}.wal")):
            p.unlink(missing_ok=True)
        seconds, n = bulk.land_duckdb(wh, folder, "daily" if folder.name != "minute" else "minute")
        env = {"MWH_DUCKDB_PATH": str(wh)}
    else:
        wh = None
        u = re.search(r"user=(\S+)", admin)[1]
        seconds, n = bulk.land_postgres(admin.replace("dbname=postgres", f"dbname={db}"), folder,
                                        "daily" if folder.name != "minute" else "minute", work)
        env = {"MWH_PG_HOST": re.search(r"host=(\S+)", admin)[1], "MWH_PG_PORT": re.search(r"port=(\S+)", admin)[1],
               "MWH_PG_USER": u, "MWH_PG_PASSWORD": (re.search(r"password=(\S+)", admin) or [None, ""])[1],
               "MWH_PG_DATABASE": db}
    how = "read_csv" if db is None else "COPY"
    return (f"  load       bulk ({how}, --bulk-load; `mwh load` not measured) {seconds:7.1f} s, {n:,} bars "
            f"({n / seconds:,.0f} rows/s)"), env, wh


# ---- latency --------------------------------------------------------------------------------------
# Every question is asked the way an analyst's Python client asks it: through the read API
# (market_warehouse/read.py: DuckDB results through Arrow into pandas; PostgreSQL through psycopg's binary
# protocol on prepared statements into pandas), so each time includes the rows' conversion into a
# DataFrame. The naive form of each question goes through the same client (Reader.query).

BAR_COLS = "symbol, exchange, ts, open, high, low, close, volume, vwap"


def last_bars_question(r: Reader, symbol: str, interval: str, question: str,
                       mart: str) -> tuple[str, str, object, str, object]:
    """The last 1,000 `interval` bars of `symbol` through the read API, beside the same from raw.bars."""
    return (question, mart, lambda: r.bars(symbol, interval=interval, last=1000),
            "raw.bars", lambda: r.query(f"select {BAR_COLS} from raw.bars where symbol = ? and interval = '{interval}' "
                                        "order by ts desc limit 1000", [symbol]))


def latency_queries(r: Reader, symbols: list[str], last_day: str) -> list[tuple[str, str, object, str, object]]:
    """(question, what the read API reads, its call, naive label, the naive call)."""
    one, hundred = symbols[0], symbols[:100]
    start = str(np.datetime64(last_day) - np.timedelta64(5 * 365 + 1, "D"))  # 5 years back
    naive_latest_bar = (f"select {BAR_COLS} from (select *, row_number() over (partition by symbol, exchange "
                        "order by ts desc) as rn from raw.bars where interval = '1d') as x where rn = 1")
    naive_stats = ("select count(*), min(low), max(high), avg(close), sum(volume) from raw.bars "
                   "where symbol = ? and interval = '1d' and ts > (select max(ts) from raw.bars "
                   "where symbol = ? and interval = '1d') - interval '30 days'")
    return [
        last_bars_question(r, one, "1d", "last 1,000 bars of a symbol", "read.bars(last=1000): fct_bars_1d"),
        ("latest bar of every symbol", "read.latest_bars(): fct_latest_bars", r.latest_bars,
         "raw.bars (row_number)", lambda: r.query(naive_latest_bar)),
        ("30-day stats of a symbol", "read.price_stats(days=30): fct_bars_1d", lambda: r.price_stats(one, 30),
         "raw.bars", lambda: r.query(naive_stats, [one, one])),
        ("latest features of all symbols", "fct_latest_features_daily",
         lambda: r.query("select * from marts.fct_latest_features_daily"),
         "fct_features_daily (row_number)",
         lambda: r.query("select * from (select *, row_number() over (partition by symbol, exchange "
                         "order by ts desc) as rn from marts.fct_features_daily) as x where rn = 1")),
        ("training set, 100 symbols x 5 years", "read.training_set(): fct_training_set_daily",
         lambda: r.training_set(hundred, start=start),
         "raw.bars (bars only)",
         lambda: r.query("select * from raw.bars where interval = '1d' and list_contains(?, symbol) and ts >= ?"
                         if r.dialect == "duckdb" else
                         "select * from raw.bars where interval = '1d' and symbol = any(?) and ts >= ?",
                         [hundred, pd.Timestamp(start, tz="UTC")])),
    ]


def minute_latency_queries(r: Reader, symbols: list[str]) -> list[tuple[str, str, object, str, object]]:
    """The 1-minute set's question (#14 item 5): the last 1,000 1-minute bars of a symbol, from the analysts'
    mart through the read API, beside raw."""
    return [last_bars_question(r, symbols[0], "1m", "last 1,000 1-minute bars of a symbol",
                               "read.bars('1m', last=1000): fct_bars_1m")]


def timed(call, runs: int, warm: int = 3) -> tuple[float, float, int, float]:
    """p50 and p95 wall ms, rows, and the median client CPU ms a call (process_time: the load affects it least)."""
    for _ in range(warm):
        frame = call()
    times, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        frame = call()
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95)), len(frame), float(np.median(cpu))


def latency_lines(r: Reader, questions: list[tuple[str, str, object, str, object]], runs: int) -> list[str]:
    out = [f"  {'query (p50 / p95 ms, ' + str(runs) + ' warm runs, read API)':<40} {'mart':>17}   "
           f"{'naive':>17}  rows"]
    for question, mart, call, naive, naive_call in questions:
        # Seconds-long questions run fewer times: the training extract, and the naive whole-history numbering
        # (89 s a run on TimescaleDB at 5M, load 17), which is warmed once and run 3 times.
        bulky = "training" in question
        m_runs = max(3, runs // 10) if bulky else runs
        n_runs = max(3, runs // 10) if bulky else 3 if "row_number" in naive else runs
        try:
            m50, m95, n, mcpu = timed(call, m_runs)
            r50, r95, _, rcpu = timed(naive_call, n_runs, warm=1 if "row_number" in naive else 3)
        except Exception as exc:  # noqa: BLE001 - a mart this checkout does not build: say so
            out.append(f"  {question:<40} failed: {str(exc).splitlines()[0][:120]}")
            continue
        runs_note = f", {m_runs}/{n_runs} runs" if (m_runs, n_runs) != (runs, runs) else ""
        out.append(f"  {question:<40} {m50:>8.1f} / {m95:>7.1f}   {r50:>8.1f} / {r95:>7.1f}  {n:,}"
                   f"   (client CPU {mcpu:.1f} / {rcpu:.1f} ms a call; load {os.getloadavg()[0]:.1f}; "
                   f"{mart} | {naive}{runs_note})")
    return out


@contextmanager
def opened_warehouse(duckdb_path: Path | None = None, conninfo: str | None = None):
    """A built warehouse opened for the latency queries: (a read API Reader on it, its size on disk in
    bytes). DuckDB read-only (the file and its WAL), or a PostgreSQL database (pg_database_size)."""
    if duckdb_path is not None:
        r = Reader(Target(name="bench", type="duckdb", path=str(duckdb_path)))
        size = sum(p.stat().st_size for p in duckdb_path.parent.glob(duckdb_path.name + "*") if p.is_file())
    else:
        parts = conninfo_to_dict(conninfo)
        r = Reader(Target(name="bench", type="postgres", host=parts.get("host"), port=int(parts.get("port", 5432)),
                          user=parts.get("user"), password=parts.get("password"), dbname=parts.get("dbname")))
        size = int(r.query("select pg_database_size(current_database()) as n")["n"][0])
    try:
        yield r, size
    finally:
        r.close()


def queries_only(target: str, warehouse: str, symbols: list[str], runs: int, pg: dict | None,
                 minute: bool = False) -> list[str]:
    """--only queries --warehouse PATH|DB: the latencies alone, on a warehouse built before (DuckDB: the file,
    opened read-only; PostgreSQL: the database name on the server), with the same queries as a full run
    (`minute`: the 1-minute set's, with --size minute)."""
    if target == "duckdb":
        if not Path(warehouse).is_file():
            raise SystemExit(f"bench-scale: --warehouse {warehouse}: no such DuckDB file")
        opened = opened_warehouse(duckdb_path=Path(warehouse))
    else:
        opened = opened_warehouse(conninfo=make_conninfo(host=pg["host"], port=pg["port"], user=pg["user"],
                                                         password=pg["password"], dbname=warehouse))
    interval, label = ("1m", "1-minute") if minute else ("1d", "daily")
    with opened as (r, size):
        n = int(r.query(f"select count(*) as n from raw.bars where interval = '{interval}'")["n"][0])
        questions = minute_latency_queries(r, symbols) if minute else latency_queries(r, symbols, LAST_DAY)
        return [f"{target}: queries only on {warehouse} ({gb(size)}, {n:,} {label} bars in raw)",
                *latency_lines(r, questions, runs)]


# ---- one target -----------------------------------------------------------------------------------

def bench_target(target: str, data: Path, manifest: dict, work: Path, runs: int, keep: bool,
                 pg: dict, skip_load: bool = False, bulk_load: bool = False, only_load: bool = False,
                 database: str | None = None) -> list[str]:
    daily = sorted((data / "daily").glob("DA-*.csv"))
    new_session = sorted((data / "new_session").glob("DA-*.csv"))
    n_bars = manifest["daily_bars"]
    logfile = work / f"{target}.log"
    env = {**os.environ, "MWH_TARGET": target, "DBT_TARGET_PATH": str(work / f"{target}_target"),
           "DBT_LOG_PATH": str(work / f"{target}_logs"), "DO_NOT_TRACK": "1"}
    server = target != "duckdb"
    out = [f"{target}: {len(daily):,} daily files, {n_bars:,} bars ({manifest['dividends']:,} dividends, "
           f"{manifest['splits']:,} splits); log {logfile}"]
    log(out[-1])
    dbs: list[str] = []
    admin, db = None, None
    if server:
        admin = (f"host={pg['host']} port={pg['port']} user={pg['user']} dbname=postgres"
                 + (f" password={pg['password']}" if pg["password"] else ""))

        def fresh_db() -> str:
            name = database or f"mwh_scale_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(admin, autocommit=True) as c:
                if database:  # --database: landed afresh under that name
                    c.execute(f'drop database if exists "{name}" with (force)')
                c.execute(f'create database "{name}"')
            with psycopg.connect(admin.replace("dbname=postgres", f"dbname={name}"), autocommit=True) as c:
                c.execute("create extension if not exists timescaledb")
            dbs.append(name)
            return name
    try:
        # 1. load: baseline, then the loader, each into an empty raw.bars
        if bulk_load:  # --bulk-load: read_csv / COPY straight into the warehouse, no `mwh load`
            db = fresh_db() if server else None
            line, env_extra, wh = bulk_land_warehouse(target, data / "daily", work, admin, db)
            env.update(env_extra)
        elif skip_load and server:  # --skip-load --database NAME: build on the database landed before
            db = database
            with psycopg.connect(admin, autocommit=True) as c:
                if not c.execute("select 1 from pg_database where datname = %s", [db]).fetchone():
                    raise SystemExit(f"bench-scale: --database {db}: no such database (land it first with "
                                     "--bulk-load --only load --keep --database ...)")
            env.update(MWH_PG_HOST=pg["host"], MWH_PG_PORT=str(pg["port"]), MWH_PG_USER=pg["user"],
                       MWH_PG_PASSWORD=pg["password"], MWH_PG_DATABASE=db)
        elif server:
            base_db = fresh_db()
            b_s, b_n = pg_baseline(data / "daily", admin.replace("dbname=postgres", f"dbname={base_db}"), work)
            base_name = "COPY"
            with psycopg.connect(admin, autocommit=True) as c:
                c.execute(f'drop database "{base_db}" with (force)')
            dbs.remove(base_db)
            db = fresh_db()
            env.update(MWH_PG_HOST=pg["host"], MWH_PG_PORT=str(pg["port"]), MWH_PG_USER=pg["user"],
                       MWH_PG_PASSWORD=pg["password"], MWH_PG_DATABASE=db)
        elif skip_load:
            wh = work / "warehouse.duckdb"
            env["MWH_DUCKDB_PATH"] = str(wh)
        else:
            base_path = work / "baseline.duckdb"
            base_path.unlink(missing_ok=True)
            b_s, b_n = duckdb_baseline(data / "daily", base_path)
            base_path.unlink(missing_ok=True)
            base_name = "read_csv"
            wh = work / "warehouse.duckdb"
            for p in (wh, Path(f"{wh}.wal")):
                p.unlink(missing_ok=True)
            env["MWH_DUCKDB_PATH"] = str(wh)
        mem: list[tuple[str, dict]] = []
        if bulk_load:
            out.append(line)
        elif skip_load:
            out.append("  load       skipped (--skip-load: the warehouse of the previous run)")
        else:
            r = run_mwh(["load", "csv", *map(str, daily), "--format", "alphavantage"], env, logfile, db)
            mem.append(("load", r))
            ratio = (n_bars / r["seconds"]) / (b_n / b_s)
            failed = "" if r["rc"] == 0 else f"  (exit {r['rc']}: see the log)"
            out.append(f"  load       mwh {r['seconds']:7.1f} s {n_bars / r['seconds']:>9,.0f} rows/s"
                       f" | {base_name} {b_s:6.1f} s {b_n / b_s:>9,.0f} rows/s | mwh/{base_name} {ratio:.2f}x"
                       f"{failed}")
            out.append(f"  load       peak RSS mwh {gb(r['rss'])}" + (f" | {server_memory(r)}" if server else ""))
        log("\n".join(out[-2:]) if not (bulk_load or skip_load) else out[-1])
        if only_load:  # --only load: the loader against its baseline, no builds
            return out

        # 2. builds: full, then one new session and incremental; models, then tests
        def build(label: str) -> tuple[dict, dict]:
            full = ["--full-refresh"] if label == "full" else []  # same as a first build, and honest on reuse
            m = run_mwh(["build", *full, "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"],
                        env, logfile, db)
            nodes.append(f"  nodes      {label} models: {slowest_nodes(env)}")
            t = run_mwh(["build", "--resource-type", "test"], env, logfile, db)
            nodes.append(f"  nodes      {label} tests: {slowest_nodes(env)}")
            mem.extend([(f"{label} models", m), (f"{label} tests", t)])
            return m, t

        nodes: list[str] = []
        fm, ft = build("full")
        nl = run_mwh(["load", "csv", *map(str, new_session), "--format", "alphavantage"], env, logfile, db)
        mem.append(("new-session load", nl))
        im, it = build("incremental")
        for label, m, t in (("full", fm, ft), ("incremental", im, it)):
            flags = "".join(f"  ({what} exit {x['rc']}: see the log)" for what, x in (("models", m), ("tests", t))
                            if x["rc"])
            out.append(f"  {label:<11} build models {m['seconds']:7.1f} s | tests {t['seconds']:7.1f} s"
                       f" | with tests {m['seconds'] + t['seconds']:7.1f} s{flags}")
            log(out[-1])
        out.append(f"  incremental/full   models {im['seconds'] / fm['seconds']:.0%}"
                   f" | with tests {(im['seconds'] + it['seconds']) / (fm['seconds'] + ft['seconds']):.0%}"
                   f"   (new session: {len(new_session):,} bars loaded in {nl['seconds']:.1f} s)")
        log(out[-1])
        for line in nodes:
            out.append(line)
            log(line)

        # 3. memory
        peak = max(mem, key=lambda x: x[1]["rss"])
        line = "  peak RSS   mwh " + ", ".join(f"{k} {gb(v['rss'])}" for k, v in mem)
        out.append(line)
        out.append(f"  peak RSS   highest mwh process: {gb(peak[1]['rss'])} ({peak[0]})")
        log(out[-2])
        log(out[-1])
        if server:
            for k, v in mem:
                out.append(f"  server     {k:<17} {server_memory(v)}")
                log(out[-1])
            top = max(mem, key=lambda x: x[1]["db_max_rss"])
            out.append(f"  server     peak: this database's backends {gb(max(v['db_pss'] for _, v in mem))} "
                       f"summed PSS, largest backend {gb(top[1]['db_max_rss'])} RSS ({top[0]}); all postgres "
                       f"processes {gb(max(v['server'] for _, v in mem))} summed PSS (shared with other work)")
            log(out[-1])

        # 4. size and latency
        with opened_warehouse(conninfo=admin.replace("dbname=postgres", f"dbname={db}")) if server \
                else opened_warehouse(duckdb_path=wh) as (r, size):
            out.append(f"  size on disk {gb(size)} ({n_bars + len(new_session):,} daily bars, all models built)")
            log(out[-1])
            for line in latency_lines(r, latency_queries(r, manifest["daily_symbols"], LAST_DAY), runs):
                out.append(line)
                log(line)
    finally:
        if server and not keep and not database:
            with psycopg.connect(admin, autocommit=True) as c:
                for name in dbs:
                    c.execute(f'drop database if exists "{name}" with (force)')
    return out


def bench_minute(target: str, data: Path, manifest: dict, work: Path, pg: dict | None, runs: int = 50,
                 keep: bool = False) -> list[str]:
    """--size minute: the 1-minute files landed through read_csv / COPY (bulk.py), then the full build,
    models then tests, with the time, CPU and peak memory of each (the 1-minute scale question: does it
    finish, and in how much memory); then, when the set holds a session back (new_session/: the last UTC
    day of every minute symbol), that day loaded by `mwh load csv` and the incremental build, models then
    tests, beside the full build of the same run; then the last 1,000 1-minute bars of a symbol (`runs` warm
    runs). `keep`: the PostgreSQL database is kept (its name printed), else dropped."""
    logfile = work / f"{target}.log"
    env = {**os.environ, "MWH_TARGET": target, "DBT_TARGET_PATH": str(work / f"{target}_target"),
           "DBT_LOG_PATH": str(work / f"{target}_logs"), "DO_NOT_TRACK": "1"}
    server, admin, db = target != "duckdb", None, None
    if server:
        admin = (f"host={pg['host']} port={pg['port']} user={pg['user']} dbname=postgres"
                 + (f" password={pg['password']}" if pg["password"] else ""))
        db = f"mwh_scale_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'create database "{db}"')
        with psycopg.connect(admin.replace("dbname=postgres", f"dbname={db}"), autocommit=True) as c:
            c.execute("create extension if not exists timescaledb")
    new_session = sorted((data / "new_session").glob("*-1m-*.csv"))
    out = [f"{target}: {manifest['minute_files']:,} 1-minute files, {manifest['minute_bars']:,} bars "
           f"({len(set(manifest['minute_symbols'])):,} symbols; {manifest.get('minute_new_session_bars', 0):,} "
           f"held back in {len(new_session):,} files); log {logfile}"]
    log(out[-1])

    def step(label: str, r: dict) -> None:
        out.append(f"  {label:<24} {r['seconds']:7.1f} s, {r['cpu']:7.1f} CPU-s, exit {r['rc']}, "
                   f"peak RSS mwh {gb(r['rss'])}, load {os.getloadavg()[0]:.1f}"
                   + (f", {server_memory(r)}" if server else ""))
        log(out[-1])

    def build(label: str, full: bool) -> tuple[dict, dict]:
        m = run_mwh(["build", *(["--full-refresh"] if full else []), "--exclude-resource-type", "test",
                     "--exclude-resource-type", "unit_test"], env, logfile, db)
        step(f"{label} build models", m)
        nodes.append(f"  nodes      {label} models: {slowest_nodes(env)}")
        t = run_mwh(["build", "--resource-type", "test"], env, logfile, db)
        step(f"{label} build tests", t)
        nodes.append(f"  nodes      {label} tests: {slowest_nodes(env)}")
        return m, t

    nodes: list[str] = []
    try:
        line, env_extra, _ = bulk_land_warehouse(target, data / "minute", work, admin, db)
        env.update(env_extra)
        out.append(line)
        log(line)
        fm, ft = build("full", True)
        if new_session:
            nl = run_mwh(["load", "csv", *map(str, new_session), "--format", "binance-klines"], env, logfile, db)
            step(f"new session load ({manifest.get('minute_new_session_bars', 0):,} bars)", nl)
            im, it = build("incremental", False)
            out.append(f"  incremental/full   models {im['seconds'] / fm['seconds']:.0%}"
                       f" | with tests {(im['seconds'] + it['seconds']) / (fm['seconds'] + ft['seconds']):.0%}")
            log(out[-1])
        else:
            out.append("  incremental build  not measured (no held-back session in new_session/: regenerate the set)")
            log(out[-1])
        for line in nodes:
            out.append(line)
            log(line)
        if server:
            with psycopg.connect(admin.replace("dbname=postgres", f"dbname={db}")) as c:
                size = c.execute("select pg_database_size(current_database())").fetchone()[0]
        else:
            size = sum(p.stat().st_size for p in work.glob("warehouse.duckdb*") if p.is_file())
        out.append(f"  size on disk {gb(size)}")
        log(out[-1])
        with opened_warehouse(conninfo=admin.replace("dbname=postgres", f"dbname={db}")) if server \
                else opened_warehouse(duckdb_path=work / "warehouse.duckdb") as (r, _):
            for line in latency_lines(r, minute_latency_queries(r, manifest["minute_symbols"]), runs):
                out.append(line)
                log(line)
    finally:
        if server and keep:
            log(f"  kept       database {db}")
        elif server:
            with psycopg.connect(admin, autocommit=True) as c:
                c.execute(f'drop database if exists "{db}" with (force)')
    return out


def pg_server() -> dict | None:
    if os.environ.get("MWH_TEST_PG_HOST"):
        return {"host": os.environ["MWH_TEST_PG_HOST"], "port": int(os.environ.get("MWH_TEST_PG_PORT", "5432")),
                "user": os.environ.get("MWH_TEST_PG_USER", "postgres"),
                "password": os.environ.get("MWH_TEST_PG_PASSWORD", "")}
    if os.geteuid() != 0:
        return None
    subprocess.run(["bash", str(REPO / "scripts" / "timescaledb.sh"), "up"], check=True)
    return {"host": "127.0.0.1", "port": int(os.environ.get("MWH_PG_PORT", "5433")), "user": "postgres",
            "password": ""}


def main(argv: list[str] | None = None) -> int:
    """`make bench-scale` (bench). A failed `mwh` step stops it with one line on stderr and exit 1, after the finally
    blocks dropped its PostgreSQL databases: the figures of a failed build, and the slowest nodes of the last
    build that did not fail, would otherwise print as if measured."""
    try:
        return bench(argv)
    except StepFailed as exc:
        print(f"bench-scale: {exc}; the run stops here", file=sys.stderr)
        return 1


def bench(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(generate.SIZES), default="daily")
    ap.add_argument("--targets", default="duckdb,timescale")
    ap.add_argument("--runs", type=int, default=50, help="warm runs per latency query")
    ap.add_argument("--keep", action="store_true", help="keep the PostgreSQL databases")
    ap.add_argument("--minute-bars", type=int, help="--size minute: 1-minute bars to generate (default 10M)")
    ap.add_argument("--bulk-load", action="store_true",
                    help="land raw through read_csv / COPY (no `mwh load`, no loader baseline), then build")
    ap.add_argument("--only", choices=["load", "queries"],
                    help="load: the loader against read_csv/COPY only (no builds); queries: the latencies only, "
                         "on --warehouse")
    ap.add_argument("--warehouse", help="--only queries: the DuckDB file, or the PostgreSQL database name, to query")
    ap.add_argument("--skip-load", action="store_true",
                    help="duckdb: reuse the loaded warehouse of the previous run; timescale (with --database): "
                         "build on that landed database (builds and queries only)")
    ap.add_argument("--database", help="timescale: the PostgreSQL database to land into (dropped and created "
                                       "afresh), or with --skip-load to build on; kept")
    args = ap.parse_args(argv)
    if args.skip_load and "timescale" in args.targets.split(",") and not args.database:
        print("bench-scale: --skip-load on timescale needs --database (the database landed before)", file=sys.stderr)
        return 2
    if args.only == "queries" and not args.warehouse:
        print("bench-scale: --only queries needs --warehouse (a DuckDB file or a PostgreSQL database)",
              file=sys.stderr)
        return 2
    data = REPO / ".bench" / "scale" / args.size
    daily_symbols, minute_bars = generate.SIZES[args.size]
    if args.minute_bars:  # --size minute --minute-bars N: its own folder per size
        minute_bars, data = args.minute_bars, data.with_name(f"minute_{args.minute_bars // 1_000_000}m")
    manifest_path = data / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
    if (manifest is None or manifest.get("seed") != generate.SEED
            or manifest.get("daily_files") != daily_symbols
            or (minute_bars and manifest.get("minute_bars", 0) < minute_bars)):
        t = time.perf_counter()
        try:
            manifest = generate.generate(data, daily_symbols, minute_bars)
        except generate.GeneratorError as exc:
            print(f"bench-scale: {exc}", file=sys.stderr)
            return 2
        log(f"generated {data} in {time.perf_counter() - t:.0f} s from {manifest['source']}")
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    log(f"bench-scale {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {os.cpu_count()} cores, "
        f"{gb(mem)} RAM, {platform.platform()}, load average {os.getloadavg()[0]:.1f} at start")
    if args.only == "queries":
        minute = args.size == "minute"
        for target in args.targets.split(","):
            for line in queries_only(target, args.warehouse,
                                     manifest["minute_symbols" if minute else "daily_symbols"], args.runs,
                                     None if target == "duckdb" else pg_server(), minute=minute):
                log(line)
        log(f"load average at the end {os.getloadavg()[0]:.1f}")
        return 0
    if args.size == "minute" or (args.minute_bars and not manifest["daily_bars"]):
        for target in args.targets.split(","):
            work = REPO / ".bench" / "scale" / f"{data.name}_{target}_bulk"
            work.mkdir(parents=True, exist_ok=True)
            (work / f"{target}.log").unlink(missing_ok=True)
            pg = pg_server() if target != "duckdb" else None
            with DiskSampler(disk_paths(work, pg)) as disk:
                bench_minute(target, data, manifest, work, pg, args.runs, keep=args.keep)
            log(disk.line())
        log(f"load average at the end {os.getloadavg()[0]:.1f}")
        return 0
    if not manifest["daily_bars"]:
        print(f"bench-scale: size {args.size} has no daily bars; this benchmark measures the daily set",
              file=sys.stderr)
        return 2
    pg = None
    for target in args.targets.split(","):
        work = REPO / ".bench" / "scale" / (f"{args.size}_{target}{'_bulk' if args.bulk_load else ''}"
                                            f"{'_load' if args.only else ''}")
        work.mkdir(parents=True, exist_ok=True)
        if not args.skip_load:
            (work / f"{target}.log").unlink(missing_ok=True)
        if target != "duckdb":
            pg = pg or pg_server()
            if pg is None:
                log(f"{target}: skipped (not root and MWH_TEST_PG_HOST unset)")
                continue
        with DiskSampler(disk_paths(work, pg if target != "duckdb" else None)) as disk:
            bench_target(target, data, manifest, work, args.runs, args.keep, pg,
                         skip_load=args.skip_load, bulk_load=args.bulk_load,
                         only_load=args.only == "load", database=args.database if target != "duckdb" else None)
        log(disk.line())
    log(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
