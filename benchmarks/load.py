"""Load throughput: the loader vs `psql \\copy` vs `pandas.DataFrame.to_sql`, same rows, same table.

Rows: the 40 Alpha Vantage daily files of data/sample (~204k bars). Each method starts from an
empty raw.bars (a fresh database per method, so chunk creation and index growth are the same).
- loader: `load_files` end to end (read, parse, validate, write, audit), as `mwh load csv` runs it;
- \\copy: psql's client-side COPY of the same rows, prepared beforehand as one CSV in file order
  (on DuckDB the same file through DuckDB's own COPY);
- to_sql: pandas with SQLAlchemy (psycopg 3), the same frame, in one call.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import duckdb
import pandas as pd
import psycopg
import sqlalchemy

from market_warehouse.loaders.pipeline import _utcnow, _with_audit, load_files
from market_warehouse.loaders.schema import BARS, MARKET_TABLES
from market_warehouse.loaders.sinks import DuckDBSink, PostgresSink
from market_warehouse.loaders.sources import alphavantage
from market_warehouse.loaders.validate import validate

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "alphavantage"


def sample_files() -> list[Path]:
    return sorted(p for p in SAMPLE.glob("DA-*.csv.gz"))


def prepared_rows(files: list[Path]) -> pd.DataFrame:
    frames = []
    for f in files:
        b = alphavantage.parse(f)
        frames.append(_with_audit(validate(b).bars, b.source, "bench", _utcnow()))
    return pd.concat(frames, ignore_index=True)[BARS.column_names]


class PgServer:
    def __init__(self, host: str, port: int, user: str, password: str):
        self.host, self.port, self.user, self.password = host, port, user, password
        self.created: list[str] = []

    def conninfo(self, db: str) -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={db}" + (
            f" password={self.password}" if self.password else "")

    def fresh_db(self, timescale: bool) -> str:
        name = f"mwh_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as c:
            c.execute(f'create database "{name}"')
        if timescale:
            with psycopg.connect(self.conninfo(name), autocommit=True) as c:
                c.execute("create extension timescaledb")
        self.created.append(name)
        return name

    def drop_all(self) -> None:
        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as c:
            for name in self.created:
                c.execute(f'drop database if exists "{name}" with (force)')


def _empty_pg_table(server: PgServer, timescale: bool) -> tuple[str, PostgresSink]:
    db = server.fresh_db(timescale)
    sink = PostgresSink(server.conninfo(db), use_timescale=timescale)
    sink.ensure_tables(MARKET_TABLES)
    return db, sink


def bench_postgres(server: PgServer, timescale: bool, files: list[Path], rows: pd.DataFrame,
                   csv_path: Path, repeat: int) -> dict:
    n = len(rows)
    out: dict[str, float] = {}
    best = {"loader": float("inf"), "copy": float("inf"), "to_sql": float("inf")}
    for _ in range(repeat):
        _, sink = _empty_pg_table(server, timescale)
        t = time.perf_counter()
        reports = load_files(sink, files, "alphavantage")
        best["loader"] = min(best["loader"], time.perf_counter() - t)
        assert sum(r.loaded for r in reports) == n, "loader did not load every row"
        sink.close()

        db, sink = _empty_pg_table(server, timescale)
        sink.close()
        cols = ", ".join(BARS.column_names)
        t = time.perf_counter()
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", server.conninfo(db), "-c",
                        "set timezone = 'UTC'", "-c",
                        f"\\copy raw.bars ({cols}) from '{csv_path}' with (format csv)"], check=True)
        best["copy"] = min(best["copy"], time.perf_counter() - t)

    db, sink = _empty_pg_table(server, timescale)  # to_sql is slow: once
    sink.close()
    url = sqlalchemy.engine.URL.create("postgresql+psycopg", username=server.user,
                                       password=server.password or None, host=server.host,
                                       port=server.port, database=db)
    engine = sqlalchemy.create_engine(url)
    t = time.perf_counter()
    rows.to_sql("bars", engine, schema="raw", if_exists="append", index=False, chunksize=10_000)
    best["to_sql"] = time.perf_counter() - t
    engine.dispose()
    for k, v in best.items():
        out[k] = n / v
    out["seconds"] = best
    return out


def bench_duckdb(files: list[Path], rows: pd.DataFrame, csv_path: Path, repeat: int, tmp: Path) -> dict:
    n = len(rows)
    best = {"loader": float("inf"), "copy": float("inf")}
    for i in range(repeat):
        path = tmp / f"loader{i}.duckdb"
        sink = DuckDBSink(path)
        sink.ensure_tables(MARKET_TABLES)
        t = time.perf_counter()
        reports = load_files(sink, files, "alphavantage")
        best["loader"] = min(best["loader"], time.perf_counter() - t)
        assert sum(r.loaded for r in reports) == n
        sink.close()
        path = tmp / f"copy{i}.duckdb"
        sink = DuckDBSink(path)
        sink.ensure_tables(MARKET_TABLES)
        sink.close()
        con = duckdb.connect(str(path))
        con.execute("set TimeZone = 'UTC'")
        t = time.perf_counter()
        con.execute(f"copy raw.bars from '{csv_path}' (format csv, header false)")
        best["copy"] = min(best["copy"], time.perf_counter() - t)
        con.close()
    out = {k: n / v for k, v in best.items()}
    out["seconds"] = best
    return out


def run(server: PgServer | None, repeat: int = 3) -> list[str]:
    files = sample_files()
    rows = prepared_rows(files)
    lines = [f"load: {len(files)} Alpha Vantage files, {len(rows):,} daily bars; best of {repeat}"]
    tmp = Path(tempfile.mkdtemp(prefix="mwh_bench_"))
    try:
        csv_path = tmp / "bars.csv"
        pg_rows = rows.copy()
        for c in ("ts", "loaded_at"):  # the same text the loader's COPY sends
            pg_rows[c] = pg_rows[c].dt.tz_convert("UTC").dt.tz_localize(None)
        pg_rows.to_csv(csv_path, index=False, header=False)
        d = bench_duckdb(files, rows, csv_path, repeat, tmp)
        lines.append(f"  duckdb     loader {d['loader']:>9,.0f} rows/s ({d['seconds']['loader']:.2f}s) | "
                     f"duckdb COPY {d['copy']:>9,.0f} rows/s ({d['seconds']['copy']:.2f}s) | "
                     f"loader/COPY {d['loader'] / d['copy']:.0%}")
        if server is None:
            lines.append("  postgres/timescale: skipped (no server)")
            return lines
        for name, ts in (("timescale", True), ("postgres", False)):
            r = bench_postgres(server, ts, files, rows, csv_path, repeat)
            s = r["seconds"]
            lines.append(
                f"  {name:<10} loader {r['loader']:>9,.0f} rows/s ({s['loader']:.2f}s) | "
                f"\\copy {r['copy']:>9,.0f} rows/s ({s['copy']:.2f}s) | "
                f"to_sql {r['to_sql']:>9,.0f} rows/s ({s['to_sql']:.2f}s) | "
                f"loader/\\copy {r['loader'] / r['copy']:.0%}, loader/to_sql {r['loader'] / r['to_sql']:.1f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if server is not None:
            server.drop_all()
    return lines
