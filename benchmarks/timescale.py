"""TimescaleDB full edition: compression and continuous-aggregate figures for `make bench`.

On a fresh database of the benchmark server, the sample's minute bars (FILUSDT, Feb and Apr 2023) and
the 41 Alpha Vantage daily files are loaded by the loader, then:

- raw.bars size before and after compressing every chunk (segment by symbol, order by ts) and the
  ratio; the latency of the same reads on uncompressed and on compressed chunks;
- the 1h bars of one symbol over a month three ways: from the continuous aggregate
  (int_market__bars_rolled_up_1h on the full edition), from the incremental table the same model builds
  elsewhere (var mwh_continuous_aggregates: false, in a second database), and time_bucket over raw
  minute bars (the floor to beat).

Latencies are the median of N runs after one warm-up, in milliseconds.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
MINUTE_FILES = sorted((REPO / "data" / "sample" / "binance_klines").glob("FILUSDT-1m-2023-*.csv.gz"))
DAILY_FILES = sorted((REPO / "data" / "sample" / "alphavantage").glob("*.csv.gz"))
MONTH = ("2023-04-01 00:00+00", "2023-05-01 00:00+00")
HOURLY_CAGG = ("select ts, open, high, low, close, volume from intermediate.int_market__bars_rolled_up_1h"
               " where symbol = 'FILUSDT' and ts >= %s and ts < %s order by ts")
HOURLY_RAW = ("select time_bucket('1 hour', ts) as ts, first(open, ts) as open, max(high) as high,"
              " min(low) as low, last(close, ts) as close, sum(volume) as volume from raw.bars"
              " where symbol = 'FILUSDT' and \"interval\" = '1m' and ts >= %s and ts < %s group by 1 order by 1")
READS = {
    "1h over raw, a month": (HOURLY_RAW, MONTH),
    "minute bars, one day": ("select * from raw.bars where symbol = 'FILUSDT' and ts >= %s and ts < %s order by ts",
                             ("2023-04-19 00:00+00", "2023-04-20 00:00+00")),
    "daily bars, all symbols": ("select symbol, count(*), avg(close) from raw.bars where \"interval\" = '1d'"
                                " group by symbol", None),
}


def _median_ms(conn, sql: str, params, n: int) -> float:
    conn.execute(sql, params).fetchall()  # warm-up
    times = []
    for _ in range(n):
        t = time.perf_counter()
        conn.execute(sql, params).fetchall()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def _load(server, db: str) -> int:
    # loaders and dbt are imported when the section runs, not when `make bench` imports it
    from market_warehouse.loaders.pipeline import load_files
    from market_warehouse.loaders.schema import MARKET_TABLES
    from market_warehouse.loaders.sinks import PostgresSink

    sink = PostgresSink(server.conninfo(db), use_timescale=True)
    try:
        sink.ensure_tables(MARKET_TABLES)
        rows = sum(r.loaded for r in load_files(sink, MINUTE_FILES, "binance-klines"))
        rows += sum(r.loaded for r in load_files(sink, DAILY_FILES, "alphavantage"))
    finally:
        sink.close()
    with psycopg.connect(server.conninfo(db), autocommit=True) as conn:
        conn.execute("analyze raw.bars")
    return rows


def _dbt_rollups(server, db: str, cagg: bool) -> float:
    from dbt.cli.main import dbtRunner

    os.environ.update(MWH_TARGET="timescale", MWH_PG_HOST=server.host, MWH_PG_PORT=str(server.port),
                      MWH_PG_USER=server.user, MWH_PG_PASSWORD=server.password, MWH_PG_DATABASE=db)
    args = ["build", "--select", "stg_market__bars", "int_market__bars_rolled_up_1h", "--exclude-resource-type", "test",
            "unit_test", "--project-dir", str(REPO), "--quiet"]
    if not cagg:
        args += ["--vars", "{mwh_continuous_aggregates: false}"]
    t = time.perf_counter()
    result = dbtRunner().invoke(args)
    if not result.success:
        raise RuntimeError(f"dbt build of the rollups failed on {db}: {result.exception}")
    return time.perf_counter() - t


def run(server, repeat: int = 20) -> list[str]:
    if server is None:
        return ["timescale: no PostgreSQL server, skipped"]
    probe = server.fresh_db(timescale=True)
    with psycopg.connect(server.conninfo(probe)) as conn:
        license_ = conn.execute("select current_setting('timescaledb.license', true)").fetchone()[0]
    if license_ != "timescale":
        return [f"timescale: full edition not on {server.host}:{server.port} (timescaledb.license = {license_!r}); "
                "compression and continuous-aggregate figures skipped"]
    if "DBT_PROFILES_DIR" not in os.environ:
        profiles = Path(tempfile.mkdtemp(prefix="bench_profiles_"))
        shutil.copyfile(REPO / "profiles.example.yml", profiles / "profiles.yml")
        os.environ["DBT_PROFILES_DIR"] = str(profiles)
    os.environ.setdefault("DBT_TARGET_PATH", tempfile.mkdtemp(prefix="bench_target_"))
    table_db = server.fresh_db(timescale=True)
    try:
        return _measure(server, probe, table_db, repeat)
    finally:
        with psycopg.connect(server.conninfo("postgres"), autocommit=True) as conn:
            for db in (probe, table_db):
                conn.execute(f'drop database if exists "{db}" with (force)')


def _measure(server, cagg_db: str, table_db: str, repeat: int) -> list[str]:
    lines = []
    rows = _load(server, cagg_db)
    _load(server, table_db)
    lines.append(f"timescale full edition: {rows:,} bars loaded (FILUSDT 1m Feb+Apr 2023, 41 daily files)")
    t_cagg = _dbt_rollups(server, cagg_db, cagg=True)
    t_table = _dbt_rollups(server, table_db, cagg=False)
    lines.append(f"  rollup build (stg + 1h): continuous aggregate {t_cagg:.1f}s, incremental table {t_table:.1f}s")

    with psycopg.connect(server.conninfo(cagg_db), autocommit=True) as cagg, \
            psycopg.connect(server.conninfo(table_db), autocommit=True) as table:
        three = {
            "continuous aggregate": _median_ms(cagg, HOURLY_CAGG, MONTH, repeat),
            "incremental table": _median_ms(table, HOURLY_CAGG, MONTH, repeat),
            "time_bucket over raw": _median_ms(table, HOURLY_RAW, MONTH, repeat),
        }
        n = len(cagg.execute(HOURLY_CAGG, MONTH).fetchall())
        lines.append(f"  1h bars, FILUSDT, April 2023 ({n} rows), median of {repeat}: "
                     + " | ".join(f"{k} {v:.2f} ms" for k, v in three.items()))

        # compression: the same reads before and after, on the table database's raw.bars
        uncompressed = {k: _median_ms(table, sql, p, repeat) for k, (sql, p) in READS.items()}
        before = table.execute("select hypertable_size('raw.bars')").fetchone()[0]
        minute_chunks = ("select sum(before_compression_total_bytes), sum(after_compression_total_bytes)"
                         " from chunk_compression_stats('raw.bars') as s"
                         " inner join timescaledb_information.chunks as c on s.chunk_name = c.chunk_name"
                         " where c.range_start >= '2023-01-01' and c.range_end <= '2023-06-01'")
        table.execute("alter table raw.bars set (timescaledb.compress, timescaledb.compress_segmentby = 'symbol',"
                      " timescaledb.compress_orderby = 'ts')")
        t = time.perf_counter()
        chunks = len(table.execute("select compress_chunk(c) from show_chunks('raw.bars') as c").fetchall())
        t_compress = time.perf_counter() - t
        table.execute("analyze raw.bars")
        after = table.execute("select hypertable_size('raw.bars')").fetchone()[0]
        compressed = {k: _median_ms(table, sql, p, repeat) for k, (sql, p) in READS.items()}
        m_before, m_after = (int(v) for v in table.execute(minute_chunks).fetchone())
    lines.append(f"  raw.bars compression: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB, ratio {before / after:.1f}x "
                 f"({chunks} chunks in {t_compress:.1f}s, indexes included; most are 30-day chunks of daily bars since 1999)")
    lines.append(f"  the chunks holding the minute bars (2023): {m_before / 1e6:.1f} MB -> {m_after / 1e6:.1f} MB, "
                 f"ratio {m_before / m_after:.1f}x")
    for k in READS:
        lines.append(f"  {k:<24} uncompressed {uncompressed[k]:8.2f} ms | compressed {compressed[k]:8.2f} ms")
    return lines


if __name__ == "__main__":
    from benchmarks.run import pg_server

    srv = pg_server()
    try:
        for line in run(srv, repeat=int(sys.argv[1]) if len(sys.argv) > 1 else 20):
            print(line, flush=True)
    finally:
        if srv is not None:
            srv.drop_all()
