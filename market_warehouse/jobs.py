"""`mwh run`: one unattended load-and-build job, driven by a sources file (see docs/operations.md).

    mwh run [--sources sources.yml] [--skip-closed XNYS] [--session-date D] [--log-format text|json]

1. Takes the job lock (a lock file next to a DuckDB warehouse, a PostgreSQL advisory lock): a second
   instance prints one line and exits 3.
2. Market-aware: with `--skip-closed MIC` (or `skip_closed:` in the file) a session the exchange
   calendar (seeds/trading_sessions.csv) says is closed is recorded as `skipped` and nothing runs.
3. Loads every source incrementally: a drop file whose path, size, mtime (or SHA-256) match the
   ledger (raw.file_ledger) is skipped; yfinance is incremental from the last loaded bar.
4. Builds only what the new rows touch: `dbt build --select source:market.bars+ ...` for the raw
   tables that received new or replaced rows in this run; nothing new -> no build.
5. Records the run in raw.job_runs. Exit codes: 0 ok (test warnings too, with a summary line),
   1 a source or the build failed, 2 bad sources file or settings, 3 another instance is running.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import glob as globlib
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from market_warehouse.config import ConfigError, Target, load_target, project_dir
from market_warehouse.dbt import _all_seeds_loaded, plan_build, run_dbt, seeds_checksum
from market_warehouse.loaders.pipeline import load_files
from market_warehouse.loaders.schema import FILE_LEDGER, JOB_RUNS, JOB_TABLES, LOADER_RUNS, MARKET_TABLES
from market_warehouse.loaders.sinks import open_sink
from market_warehouse.loaders.sources import FORMATS
from market_warehouse.loaders.sources.generic import parse_mapping
from market_warehouse.loaders.yfinance_load import load_yfinance
from market_warehouse.ml.db import open_ml_sink
from market_warehouse.ml.records import load_record_files
from market_warehouse.ml.schema import ML_TABLES
from market_warehouse.runs import new_run_id, utcnow

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_LOCKED = 0, 1, 2, 3
ADVISORY_LOCK_KEY = 0x6D7768_72756E  # "mwh" "run": one job per PostgreSQL database
ML_KINDS = ("predictions", "signals", "agent-decisions", "agent-episodes", "training-runs", "models")
FILE_OPTIONS = ("symbol", "exchange", "interval", "map", "time_unit")
SEEDS_SESSIONS = Path("seeds") / "trading_sessions.csv"


class JobConfigError(Exception):
    """The sources file is missing or wrong: one line naming the file, the entry and the reason."""


class JobLocked(Exception):
    """Another `mwh run` holds the lock."""


# ---- the sources file ------------------------------------------------------------------------------

@dataclass
class SourceSpec:
    name: str
    type: str  # files | yfinance | ml
    glob: str | None = None  # files, ml (relative to the sources file's folder)
    format: str | None = None  # files: a `mwh load csv` format
    kind: str | None = None  # ml: a `mwh ml load` kind
    options: dict = field(default_factory=dict)  # files: symbol, exchange, interval, map, time_unit
    symbols: list[str] = field(default_factory=list)  # yfinance
    interval: str = "1d"  # yfinance


@dataclass
class JobConfig:
    path: Path
    sources: list[SourceSpec]
    skip_closed: str | None = None


def load_config(path: str | Path) -> JobConfig:
    """Read and check a sources file; JobConfigError names what is wrong."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise JobConfigError(f"{path}: sources file not found (pass --sources PATH)") from exc
    except yaml.YAMLError as exc:
        raise JobConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("sources"), list) or not doc["sources"]:
        raise JobConfigError(f"{path}: needs a non-empty `sources:` list")
    base = path.resolve().parent
    specs, names = [], set()
    for i, entry in enumerate(doc["sources"], 1):
        where = f"{path}: source #{i}"
        if not isinstance(entry, dict):
            raise JobConfigError(f"{where}: must be a mapping with `name` and `type`")
        name = str(entry.get("name") or "")
        if not name:
            raise JobConfigError(f"{where}: missing `name`")
        where = f"{path}: source {name!r}"
        if name in names:
            raise JobConfigError(f"{where}: name used twice")
        names.add(name)
        kind = entry.get("type")
        known = {"name", "type"}
        if kind == "files":
            known |= {"glob", "format", *FILE_OPTIONS}
            fmt = entry.get("format")
            if fmt not in FORMATS:
                raise JobConfigError(f"{where}: `format` must be one of {', '.join(sorted(FORMATS))}, "
                                     f"not {fmt!r}")
            spec = SourceSpec(name, "files", glob=_glob(entry, where, base), format=fmt,
                              options={k: entry[k] for k in FILE_OPTIONS if entry.get(k) is not None})
        elif kind == "ml":
            known |= {"glob", "kind"}
            if entry.get("kind") not in ML_KINDS:
                raise JobConfigError(f"{where}: `kind` must be one of {', '.join(ML_KINDS)}, "
                                     f"not {entry.get('kind')!r}")
            spec = SourceSpec(name, "ml", glob=_glob(entry, where, base), kind=entry["kind"])
        elif kind == "yfinance":
            known |= {"symbols", "interval"}
            symbols = entry.get("symbols")
            if isinstance(symbols, str):
                symbols = [s.strip() for s in symbols.split(",") if s.strip()]
            if not symbols or not all(isinstance(s, str) for s in symbols):
                raise JobConfigError(f"{where}: `symbols` must list at least one symbol")
            interval = str(entry.get("interval", "1d"))
            if interval not in ("1m", "5m", "15m", "1h", "1d", "1wk"):
                raise JobConfigError(f"{where}: interval {interval!r} not one of 1m, 5m, 15m, 1h, 1d, 1wk")
            spec = SourceSpec(name, "yfinance", symbols=list(symbols), interval=interval)
        else:
            raise JobConfigError(f"{where}: `type` must be files, yfinance or ml, not {kind!r}")
        unknown = set(entry) - known
        if unknown:
            raise JobConfigError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))} for type {kind}")
        specs.append(spec)
    return JobConfig(path=path, sources=specs, skip_closed=doc.get("skip_closed"))


def _glob(entry: dict, where: str, base: Path) -> str:
    pattern = entry.get("glob")
    if not pattern or not isinstance(pattern, str):
        raise JobConfigError(f"{where}: missing `glob` (files to pick up, relative to the sources file)")
    pattern = os.path.expanduser(os.path.expandvars(pattern))
    return pattern if os.path.isabs(pattern) else str(base / pattern)


# ---- the lock ----------------------------------------------------------------------------------------

@contextlib.contextmanager
def job_lock(target: Target) -> Iterator[str]:
    """One `mwh run` per warehouse: an exclusive lock file next to a DuckDB file, an advisory lock on
    PostgreSQL (released with its session, so a killed job never leaves it held)."""
    if target.type == "duckdb":

        path = f"{target.path}.run.lock"
        if not Path(path).parent.is_dir():
            raise ConfigError(f"DuckDB path {target.path}: folder does not exist (set MWH_DUCKDB_PATH)")
        with open(path, "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                raise JobLocked(f"another mwh run is in progress on {target.path} ({holder}; lock "
                                f"file {path})") from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
            fh.flush()
            try:
                yield path
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    else:
        import psycopg  # deferred: a DuckDB-only run need not load psycopg

        with psycopg.connect(target.conninfo(), autocommit=True) as conn:
            got = conn.execute("select pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,)).fetchone()[0]
            if not got:
                raise JobLocked(f"another mwh run is in progress on {target.describe()} "
                                f"(advisory lock {ADVISORY_LOCK_KEY})")
            try:
                yield f"advisory lock {ADVISORY_LOCK_KEY}"
            finally:
                conn.execute("select pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))


# ---- market calendar -----------------------------------------------------------------------------------

def session_is_open(calendar: str, day: str) -> bool:
    """Whether `calendar` (a MIC of the trading-sessions seed, or 24/7) has a session on `day`."""
    if calendar in ("24/7", "CRYPTO"):
        return True
    seed = project_dir() / SEEDS_SESSIONS
    sessions = pd.read_csv(seed, usecols=["calendar", "session_date"], dtype=str)
    known = sessions[sessions["calendar"] == calendar]
    if known.empty:
        cals = ", ".join(sorted(sessions["calendar"].unique()))
        raise JobConfigError(f"--skip-closed {calendar}: not a calendar of {seed} (have: {cals}, 24/7; "
                             f"`mwh calendars --calendars ...` adds one)")
    if not (known["session_date"].min() <= day <= known["session_date"].max()):
        raise JobConfigError(f"--session-date {day}: outside {calendar}'s sessions in {seed} "
                             f"({known['session_date'].min()}..{known['session_date'].max()})")
    return bool((known["session_date"] == day).any())


# ---- one run ------------------------------------------------------------------------------------------

@dataclass
class SourceResult:
    name: str
    type: str
    files_seen: int = 0
    files_loaded: int = 0
    files_skipped: int = 0
    files_failed: int = 0
    rows_new: int = 0
    status: str = "ok"
    errors: list[str] = field(default_factory=list)


class Log:
    """Progress lines: plain text, or one JSON object per line (`--log-format json`)."""

    def __init__(self, fmt: str = "text", stream=None):
        self.fmt = fmt
        self.stream = stream or sys.stdout

    def __call__(self, event: str, message: str, **fields) -> None:
        if self.fmt == "json":
            rec = {"ts": utcnow().isoformat(), "event": event, "message": message, **fields}
            print(json.dumps(rec, default=str), file=self.stream, flush=True)
        else:
            print(message, file=self.stream, flush=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _ledger(sink) -> dict[str, list[tuple]]:
    """path -> [(size, mtime, sha256)] of files loaded successfully by runs not undone since."""
    rows = sink.query(
        f"select l.path, l.size_bytes, l.mtime, l.sha256 from {FILE_LEDGER.qualified} as l "
        f"where l.status = 'success' and not exists (select 1 from {LOADER_RUNS.qualified} as r "
        f"where r.run_id = l.run_id and r.source = l.path and r.status = 'undone')")
    out: dict[str, list[tuple]] = {}
    for path, size, mtime, sha in rows:
        out.setdefault(path, []).append((int(size), pd.Timestamp(mtime).timestamp(), sha))
    return out


def _new_files(spec: SourceSpec, ledger: dict[str, list[tuple]], result: SourceResult
               ) -> list[tuple[Path, int, float, str]]:
    """The files of a drop that are not in the ledger unchanged: (path, size, mtime, sha256)."""
    out = []
    for name in sorted(globlib.glob(spec.glob)):
        path = Path(name).resolve()
        if not path.is_file():
            continue
        result.files_seen += 1
        st = path.stat()
        entries = ledger.get(str(path), [])
        # Same size and mtime: unchanged without reading it; else the content decides.
        if any(size == st.st_size and abs(mtime - st.st_mtime) < 1e-3 for size, mtime, _ in entries):
            result.files_skipped += 1
            continue
        sha = sha256_of(path)
        if any(s == sha for _, _, s in entries):
            result.files_skipped += 1
            continue
        out.append((path, st.st_size, st.st_mtime, sha))
    return out


def _load_source(sink, spec: SourceSpec, run_id: str, ledger, log: Log) -> SourceResult:

    result = SourceResult(spec.name, spec.type)
    if spec.type == "yfinance":
        reports = load_yfinance(sink, spec.symbols, interval=spec.interval, incremental=True, run_id=run_id)
        result.files_seen = len(reports)
    else:
        files = _new_files(spec, ledger, result)
        if not files:
            log("source", f"{spec.name}: {result.files_seen} file(s), nothing new", source=asdict(result))
            return result
        paths = [f[0] for f in files]
        if spec.type == "files":
            opts = dict(spec.options)
            if "map" in opts:
                opts["mapping"] = parse_mapping(opts.pop("map"))
            reports = load_files(sink, paths, spec.format, run_id=run_id, **opts)
            loader = spec.format
        else:
            reports = load_record_files(sink, spec.kind, paths, run_id=run_id)
            loader = f"ml-{spec.kind}"
        by_source = {r.source: r for r in reports}
        at = utcnow()
        rows = []
        for path, size, mtime, sha in files:
            r = by_source.get(str(path))
            if r is None or r.status != "success":
                continue
            rows.append({"path": str(path), "size_bytes": size,
                         "mtime": pd.Timestamp(mtime, unit="s", tz="UTC").floor("us"), "sha256": sha,
                         "source_name": spec.name, "kind": loader, "status": r.status,
                         "rows_loaded": r.loaded + r.replaced, "run_id": run_id, "loaded_at": at})
        if rows:
            with sink.transaction() as tx:
                for row in rows:
                    tx.execute(f"delete from {FILE_LEDGER.qualified} where path = ? and sha256 = ?",
                               [row["path"], row["sha256"]])
                tx.append(FILE_LEDGER, pd.DataFrame(rows, columns=FILE_LEDGER.column_names))
    for r in reports:
        ok = r.status == "success"
        result.files_loaded += ok
        result.files_failed += not ok
        result.rows_new += r.loaded + r.replaced
        if not ok:
            result.errors.append(r.error or r.line())
    result.status = "failed" if result.files_failed else "ok"
    log("source", f"{spec.name}: {result.files_seen} seen, {result.files_loaded} loaded, "
        f"{result.files_skipped} unchanged, {result.files_failed} failed, {result.rows_new:,} rows new",
        source=asdict(result))
    for err in result.errors:
        log("source_error", f"  FAILED {err}", source_name=spec.name, error=err)
    return result


def touched_selection(sink, run_id: str) -> list[str]:
    """dbt selectors for the raw tables this run wrote new or replaced rows to."""
    rows = sink.query(
        f"select target_table, sum(rows_loaded + rows_replaced) from {LOADER_RUNS.qualified} "
        f"where run_id = ? group by target_table order by target_table", [run_id])

    ml_names = {t.name for t in ML_TABLES}
    selectors = []
    for table, n in rows:
        if not n:
            continue
        name = str(table).split(".", 1)[-1]
        if name == "bars":
            # The bars' loads also land corporate actions (Alpha Vantage, yfinance).
            selectors += ["source:market.bars+", "source:market.corporate_actions+"]
        elif name == "corporate_actions":
            selectors.append("source:market.corporate_actions+")
        elif name in ml_names:
            selectors.append(f"source:ml.{name}+")
    return list(dict.fromkeys(selectors))


@dataclass
class BuildCounts:
    success: bool = True
    models_built: int = 0
    tests_passed: int = 0
    tests_warned: int = 0
    tests_failed: int = 0
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def build_selection(target: Target, selectors: list[str]) -> BuildCounts:
    """`mwh build --select <selectors>` (seeds kept when unchanged, missing parents added), counted."""

    checksum = seeds_checksum()
    with open_sink(target) as sink:
        stored = sink.stored_seeds_checksum()
        sink.refresh_statistics(MARKET_TABLES)
    parsed = run_dbt(["parse"], target, quiet=True)
    if not parsed.success:
        return BuildCounts(success=False, failures=[f"dbt parse: {parsed.exception or 'see logs/dbt.log'}"])
    manifest = parsed.result
    plan = plan_build(["--select", *selectors], target, manifest, stored, checksum)
    res = run_dbt(plan.args, target, quiet=True, manifest=manifest)
    counts = BuildCounts(success=bool(res.success))
    for r in getattr(res.result, "results", None) or []:
        kind, status = r.node.resource_type, str(r.status)
        if kind in ("test", "unit_test"):
            if status == "pass":
                counts.tests_passed += 1
            elif status == "warn":
                counts.tests_warned += 1
                counts.warnings.append(f"{r.node.name}: {r.message}")
            elif status in ("fail", "error"):
                counts.tests_failed += 1
                counts.failures.append(f"{r.node.name}: {status}: {r.message}")
        elif status == "success":
            counts.models_built += 1
        elif status == "error":
            counts.tests_failed += 1
            counts.failures.append(f"{r.node.name}: error: {r.message}")
    if not res.success and not counts.failures:
        counts.failures.append(f"dbt build: {res.exception or 'failed (see logs/dbt.log)'}")
    if not plan.seeds_excluded and _all_seeds_loaded(manifest, res.result):
        with open_sink(target) as sink:
            sink.store_seeds_checksum(checksum)
    return counts


def _record(target: Target, row: dict) -> None:

    with open_sink(target, tables=JOB_TABLES) as sink, sink.transaction() as tx:
        tx.append(JOB_RUNS, pd.DataFrame([row], columns=JOB_RUNS.column_names))


def run_job(config: JobConfig, target: Target, log: Log, skip_closed: str | None = None,
            session_date: str | None = None) -> int:
    """One run (the lock already held); returns the exit code and records the run in raw.job_runs."""

    t0 = time.monotonic()
    started = utcnow()
    run_id = new_run_id()
    row = {"job_run_id": run_id, "sources_file": str(config.path.resolve()), "started_at": started,
           "rows_loaded": 0, "selection": None, "models_built": 0, "tests_passed": 0, "tests_warned": 0,
           "tests_failed": 0, "sources": "[]", "message": None}

    def finish(status: str, code: int, message: str) -> int:
        row.update(status=status, exit_code=code, message=message, finished_at=utcnow(),
                   duration_s=round(time.monotonic() - t0, 3))
        _record(target, row)
        log("finished", message, job_run_id=run_id, status=status, exit_code=code,
            duration_s=row["duration_s"], rows_loaded=row["rows_loaded"], models_built=row["models_built"],
            tests_warned=row["tests_warned"], tests_failed=row["tests_failed"])
        return code

    log("started", f"mwh run {run_id}: {len(config.sources)} source(s) from {config.path} on "
        f"{target.describe()}", job_run_id=run_id, target=target.name)
    calendar = skip_closed or config.skip_closed
    if calendar:
        day = session_date or pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d")
        if not session_is_open(calendar, day):
            return finish("skipped", EXIT_OK, f"skipped: {calendar} has no session on {day}")
    results: list[SourceResult] = []
    with open_ml_sink(target) as sink:
        sink.ensure_tables(JOB_TABLES)
        ledger = _ledger(sink)
        for spec in config.sources:
            try:
                results.append(_load_source(sink, spec, run_id, ledger, log))
            except Exception as exc:  # noqa: BLE001 - a source that cannot run fails alone
                r = SourceResult(spec.name, spec.type, status="failed", errors=[f"{spec.name}: {exc}"])
                log("source_error", f"{spec.name}: FAILED {exc}", source_name=spec.name, error=str(exc))
                results.append(r)
        selectors = touched_selection(sink, run_id)
    row["sources"] = json.dumps([asdict(r) for r in results], default=str)
    row["rows_loaded"] = sum(r.rows_new for r in results)
    failed_sources = [r.name for r in results if r.status != "ok"]
    load_note = f"; failed sources: {', '.join(failed_sources)}" if failed_sources else ""
    if not selectors:
        status = "failed" if failed_sources else "ok"
        return finish(status, EXIT_FAILED if failed_sources else EXIT_OK,
                      f"{status}: nothing new ({sum(r.files_skipped for r in results)} unchanged file(s)), "
                      f"no build{load_note} ({time.monotonic() - t0:.1f}s)")
    row["selection"] = " ".join(selectors)
    log("build", f"dbt build --select {row['selection']}", selection=selectors)
    counts = build_selection(target, selectors)
    row.update(models_built=counts.models_built, tests_passed=counts.tests_passed,
               tests_warned=counts.tests_warned, tests_failed=counts.tests_failed)
    for w in counts.warnings:
        log("test_warning", f"  warn: {w}", warning=w)
    for f in counts.failures:
        log("build_failure", f"  FAILED {f}", failure=f)
    summary = (f"{row['rows_loaded']:,} new rows, {counts.models_built} built, {counts.tests_passed} tests "
               f"passed, {counts.tests_warned} warned, {counts.tests_failed} failed{load_note} "
               f"({time.monotonic() - t0:.1f}s)")
    if not counts.success or failed_sources:
        return finish("failed", EXIT_FAILED, "failed: " + summary)
    if counts.tests_warned:
        return finish("warn", EXIT_OK, "ok with warnings: " + summary)
    return finish("ok", EXIT_OK, "ok: " + summary)


def cmd_run(args) -> int:
    log = Log(args.log_format)
    try:
        target = load_target(args.target)
        config = load_config(args.sources)
        with job_lock(target):
            return run_job(config, target, log, skip_closed=args.skip_closed, session_date=args.session_date)
    except JobLocked as exc:
        log("locked", f"mwh run: {exc}", exit_code=EXIT_LOCKED)
        return EXIT_LOCKED
    except (JobConfigError, ConfigError) as exc:
        log("config_error", f"mwh run: {exc}", exit_code=EXIT_CONFIG)
        return EXIT_CONFIG
    except Exception as exc:  # noqa: BLE001 - a pipeline fault: one line for the scheduler's log, exit 1
        log("error", f"mwh run: failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            exit_code=EXIT_FAILED)
        return EXIT_FAILED


def register(sub) -> None:
    """`mwh run` on the CLI's subparsers."""
    p = sub.add_parser(
        "run", help="the scheduled job: load what is new from a sources file, build what it touches",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sources", default="sources.yml",
                   help="the sources file (default: sources.yml; example: examples/sources.yml)")
    p.add_argument("--skip-closed", metavar="MIC",
                   help="do nothing when this exchange calendar (XNYS, XLON, ...) has no session today")
    p.add_argument("--session-date", metavar="YYYY-MM-DD",
                   help="the day --skip-closed checks (default: today, UTC)")
    p.add_argument("--log-format", choices=["text", "json"], default="text",
                   help="progress as text lines or JSON lines (one object per event)")
    p.set_defaults(func=cmd_run)
